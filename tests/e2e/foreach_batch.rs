//! foreachBatch: a batch-sink plugin (tests/plugins/router-raw) gets each micro-batch and emits to
//! the outputs the job declares; each output holds what was emitted for a batch exactly once.
//! `foreach` runs the same plugin over calls of `rows_per_call` rows, each call's emits written
//! as it returns. (Killed runs: crash.rs.)

use crate::common::*;

/// Two files, one batch each: amounts 50, 150, null / 100, 99.5.
fn write_input(s: &Scratch) {
    s.write(
        "in/a.json",
        "{\"id\":\"a1\",\"amount\":50.0}\n{\"id\":\"a2\",\"amount\":150.0}\n{\"id\":\"a3\",\"amount\":null}\n",
    );
    s.write("in/b.json", "{\"id\":\"b1\",\"amount\":100.0}\n{\"id\":\"b2\",\"amount\":99.5}\n");
}

fn job(s: &Scratch, config: &str) -> std::path::PathBuf {
    job_as(s, "format = \"foreach_batch\"", config)
}

fn job_as(s: &Scratch, format: &str, config: &str) -> std::path::PathBuf {
    s.job(&format!(
        r#"
[source]
format = "json"
path = "{{dir}}/in"
schema = "id string, amount double"
max_files_per_trigger = 1

[sink]
{format}
plugin = "{{plugin:router-raw}}"
config = "{config}"
checkpoint = "{{dir}}/ckpt"
trigger = {{ available_now = true }}

[[sink.output]]
name = "big"
format = "json"
path = "{{dir}}/out/big"

[[sink.output]]
name = "small"
format = "json"
path = "{{dir}}/out/small"

[[sink.output]]
name = "counts"
format = "csv"
path = "{{dir}}/out/counts"
"#
    ))
}

#[test]
fn each_output_gets_what_the_plugin_emitted_per_batch() {
    let s = Scratch::new();
    write_input(&s);
    run_ok(&job(&s, ""));
    assert_eq!(
        committed_text(&s.path("out/big")),
        "{\"id\":\"a2\",\"amount\":150.0}\n{\"id\":\"b1\",\"amount\":100.0}\n"
    );
    assert_eq!(
        committed_text(&s.path("out/small")),
        "{\"id\":\"a1\",\"amount\":50.0}\n{\"id\":\"a3\"}\n{\"id\":\"b2\",\"amount\":99.5}\n"
    );
    assert_eq!(committed_text(&s.path("out/counts")), "batch_id,rows\n0,3\nbatch_id,rows\n1,2\n");
    let p = progress(&s.path("ckpt"));
    assert_eq!(p.len(), 2);
    assert_eq!(p[0]["sink"]["numOutputRows"], 3, "the rows the query handed to the sink (the plugin wrote 4)");
    // A second run has nothing new and writes nothing again.
    run_ok(&job(&s, ""));
    assert_eq!(committed_files(&s.path("out/counts")).len(), 2);
}

#[test]
fn an_emit_to_an_undeclared_output_fails_the_batch_and_nothing_of_it_is_visible() {
    let s = Scratch::new();
    write_input(&s);
    let err = run_err(&job(&s, "emit_to_undeclared=true"));
    assert!(
        err.contains("batch 0: writing to ForeachBatchSink[") && err.contains("emit to \"nowhere\": the job declares no such output (declared: \"big\", \"small\", \"counts\"); add a [[sink.output]] with name = \"nowhere\""),
        "{err}"
    );
    for out in ["big", "small", "counts"] {
        assert!(!s.path(&format!("out/{out}/_weir_log/0")).exists(), "{out}: batch 0 must not be committed");
    }
}

#[test]
fn a_plugin_error_stops_the_job_naming_plugin_and_batch_and_a_restart_resumes() {
    let s = Scratch::new();
    write_input(&s);
    let err = run_err(&job(&s, "fail_at_batch=1"));
    assert!(
        err.contains("router-raw.wasm: `write-batch` returned an error (batch 1): router: asked to fail at batch 1"),
        "{err}"
    );
    assert_eq!(committed_text(&s.path("out/counts")), "batch_id,rows\n0,3\n", "batch 0 committed, batch 1 not");
    // Fixed: batch 1 runs again from its offsets, once.
    run_ok(&job(&s, ""));
    assert_eq!(committed_text(&s.path("out/counts")), "batch_id,rows\n0,3\nbatch_id,rows\n1,2\n");
}

/// foreach: calls of at most 2 rows; each call's emits are written as their own commit-log
/// entry (id batch × 1,000,000 + call), so they are visible before the batch commits.
#[test]
fn foreach_writes_each_call_of_rows_as_it_returns() {
    let s = Scratch::new();
    write_input(&s);
    run_ok(&job_as(&s, "format = \"foreach\"\nrows_per_call = 2", ""));
    assert_eq!(
        committed_text(&s.path("out/counts")),
        "batch_id,rows\n0,2\nbatch_id,rows\n0,1\nbatch_id,rows\n1,2\n",
        "one row per call: batch 0 in calls of 2 and 1 rows, batch 1 in one"
    );
    let mut ids: Vec<String> = std::fs::read_dir(s.path("out/counts/_weir_log"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    // Write ids jump from 1 to 1000000 over the compaction batch 999999: its compact file
    // holds what came before (as Spark's log compacts every 10 batches).
    assert_eq!(ids, ["0", "1", "1000000", "999999.compact"]);
    assert_eq!(
        committed_text(&s.path("out/big")),
        "{\"id\":\"a2\",\"amount\":150.0}\n{\"id\":\"b1\",\"amount\":100.0}\n"
    );
}
