//! foreachBatch in every language: the router examples (plugins/router on the Rust SDK,
//! plugins/router-py, ...) run the same job over the same input and must write exactly the same
//! outputs: the expected text, and byte-identical Parquet. The convention they follow: rows with
//! a non-null `amount >= threshold` (config, default 100.0) to `big`, the others to `small`, one
//! row (batch_id, rows) per batch to `counts`.

use crate::common::*;

/// The routers compared, by plugin directory name (plugins/NAME, built to
/// target/plugins/NAME.wasm). Add each language's router here; the first is the reference for
/// the byte comparison. A router whose component is missing fails the tests, it is not skipped.
pub const ROUTERS: &[&str] = &["router", "router-py", "router-js", "router-c"];

/// Two files, one batch each: amounts 50, 150, null / 100, 99.5.
const FIRST: &str =
    "{\"id\":\"a1\",\"amount\":50.0}\n{\"id\":\"a2\",\"amount\":150.0}\n{\"id\":\"a3\",\"amount\":null}\n";
const SECOND: &str = "{\"id\":\"b1\",\"amount\":100.0}\n{\"id\":\"b2\",\"amount\":99.5}\n";

/// The router job: json input with `schema`, the three outputs in `format` (`text`: json, json
/// and csv; else that format for all three).
fn job(s: &Scratch, router: &str, config: &str, schema: &str, format: &str) -> std::path::PathBuf {
    let fmt = |text: &str| if format == "text" { text.to_string() } else { format.to_string() };
    s.job(&format!(
        r#"
[source]
format = "json"
path = "{{dir}}/in"
schema = "{schema}"
max_files_per_trigger = 1

[sink]
format = "foreach_batch"
plugin = "{{plugin:{router}}}"
config = "{config}"
checkpoint = "{{dir}}/ckpt"
trigger = {{ available_now = true }}

[[sink.output]]
name = "big"
format = "{big}"
path = "{{dir}}/out/big"

[[sink.output]]
name = "small"
format = "{small}"
path = "{{dir}}/out/small"

[[sink.output]]
name = "counts"
format = "{counts}"
path = "{{dir}}/out/counts"
"#,
        big = fmt("json"),
        small = fmt("json"),
        counts = fmt("csv"),
    ))
}

/// What `router` wrote to each output, as text.
fn outputs(s: &Scratch) -> [String; 3] {
    ["big", "small", "counts"].map(|o| committed_text(&s.path(&format!("out/{o}"))))
}

#[test]
fn every_router_writes_exactly_the_expected_outputs_through_a_restart() {
    for router in ROUTERS {
        let s = Scratch::new();
        // Batch 0, a stop, then batch 1 in a second run from the checkpoint.
        s.write("in/a.json", FIRST);
        run_ok(&job(&s, router, "", "id string, amount double", "text"));
        s.write("in/b.json", SECOND);
        run_ok(&job(&s, router, "", "id string, amount double", "text"));
        let [big, small, counts] = outputs(&s);
        assert_eq!(big, "{\"id\":\"a2\",\"amount\":150.0}\n{\"id\":\"b1\",\"amount\":100.0}\n", "{router}: big");
        assert_eq!(
            small, "{\"id\":\"a1\",\"amount\":50.0}\n{\"id\":\"a3\"}\n{\"id\":\"b2\",\"amount\":99.5}\n",
            "{router}: small"
        );
        assert_eq!(counts, "batch_id,rows\n0,3\nbatch_id,rows\n1,2\n", "{router}: counts");
        // A third run has nothing new and writes nothing again.
        run_ok(&job(&s, router, "", "id string, amount double", "text"));
        assert_eq!(committed_files(&s.path("out/counts")).len(), 2, "{router}: counts files");
    }
}

#[test]
fn every_router_honours_the_threshold() {
    for router in ROUTERS {
        let s = Scratch::new();
        s.write("in/a.json", FIRST);
        s.write("in/b.json", SECOND);
        run_ok(&job(&s, router, "threshold=99.5", "id string, amount double", "text"));
        let [big, small, counts] = outputs(&s);
        assert_eq!(
            big,
            "{\"id\":\"a2\",\"amount\":150.0}\n{\"id\":\"b1\",\"amount\":100.0}\n{\"id\":\"b2\",\"amount\":99.5}\n",
            "{router}: big"
        );
        assert_eq!(small, "{\"id\":\"a1\",\"amount\":50.0}\n{\"id\":\"a3\"}\n", "{router}: small");
        assert_eq!(counts, "batch_id,rows\n0,3\nbatch_id,rows\n1,2\n", "{router}: counts");
    }
}

#[test]
fn every_router_writes_byte_identical_parquet() {
    let run = |router: &str| {
        let s = Scratch::new();
        s.write("in/a.json", FIRST);
        s.write("in/b.json", SECOND);
        run_ok(&job(&s, router, "", "id string, amount double", "parquet"));
        ["big", "small", "counts"].map(|o| {
            let dir = s.path(&format!("out/{o}"));
            let files = committed_files(&dir);
            assert_eq!(files.len(), 2, "{router}: {o}: one file per batch");
            files.iter().map(|f| std::fs::read(dir.join(f)).unwrap()).collect::<Vec<_>>()
        })
    };
    let reference = run(ROUTERS[0]);
    for router in &ROUTERS[1..] {
        let other = run(router);
        for (o, (a, b)) in ["big", "small", "counts"].iter().zip(reference.iter().zip(&other)) {
            for (batch, (x, y)) in a.iter().zip(b).enumerate() {
                assert!(x == y, "{o}, batch {batch}: {router} wrote other Parquet bytes than {}", ROUTERS[0]);
            }
        }
    }
}

#[test]
fn every_router_names_a_bad_threshold_and_a_missing_or_mistyped_amount() {
    for router in ROUTERS {
        let s = Scratch::new();
        s.write("in/a.json", FIRST);
        let err = run_err(&job(&s, router, "threshold=lots", "id string, amount double", "text"));
        assert!(err.contains("threshold") && err.contains("lots"), "{router}: {err}");

        let s = Scratch::new();
        s.write("in/a.json", "{\"id\":\"a1\",\"price\":50.0}\n");
        let err = run_err(&job(&s, router, "", "id string, price double", "text"));
        assert!(err.contains("`write-batch` returned an error (batch 0)") && err.contains("amount"), "{router}: {err}");

        let s = Scratch::new();
        s.write("in/a.json", "{\"id\":\"a1\",\"amount\":\"50\"}\n");
        let err = run_err(&job(&s, router, "", "id string, amount string", "text"));
        assert!(err.contains("`write-batch` returned an error (batch 0)") && err.contains("amount"), "{router}: {err}");
        assert!(!s.path("out/big/_weir_log/0").exists(), "{router}: a failed batch is not committed");
    }
}
