//! Files in, a Wasm map plugin, files out: exact output for each format and plugin.

use crate::common::*;

const SCHEMA: &str = "event_id string, user_id string, amount double, event_time timestamp";

const EVENTS_A: &str = r#"{"event_id":"e1","user_id":"alice","amount":10.5,"event_time":"2024-01-01T00:00:00Z"}
{"event_id":"e2","user_id":"bob","amount":250.0,"event_time":"2024-01-01 00:01:00"}
"#;
const EVENTS_B: &str = r#"{"event_id":"e3","user_id":null,"amount":99.99,"event_time":"2024-01-01T00:02:00.5Z"}
{"event_id":"e4","user_id":"carol","event_time":"2024-01-01T00:03:00Z"}
{"event_id":"e5","user_id":"dave","amount":100.0,"event_time":"2024-01-01T00:04:00+01:00"}
"#;

/// Hand-worked: amount * 1.2; FNV-1a("alice") % 16 = 7, bob 4, carol 2, dave 15; nulls stay null
/// and null fields are omitted, as Spark's JSON writer does.
pub(crate) const ENRICHED: &str = r#"{"event_id":"e1","user_id":"alice","amount":10.5,"event_time":"2024-01-01T00:00:00.000Z","amount_with_tax":12.6,"user_bucket":7,"is_large":false}
{"event_id":"e2","user_id":"bob","amount":250.0,"event_time":"2024-01-01T00:01:00.000Z","amount_with_tax":300.0,"user_bucket":4,"is_large":true}
{"event_id":"e3","amount":99.99,"event_time":"2024-01-01T00:02:00.500Z","amount_with_tax":119.98799999999999,"is_large":false}
{"event_id":"e4","user_id":"carol","event_time":"2024-01-01T00:03:00.000Z","user_bucket":2}
{"event_id":"e5","user_id":"dave","amount":100.0,"event_time":"2023-12-31T23:04:00.000Z","amount_with_tax":120.0,"user_bucket":15,"is_large":true}
"#;

pub(crate) fn enrich_job(s: &Scratch, plugin: &str, sink_format: &str, extra_sink: &str) -> std::path::PathBuf {
    s.write("in/a.json", EVENTS_A);
    s.write("in/b.json", EVENTS_B);
    s.job(&format!(
        r#"
[source]
format = "json"
path = "{{dir}}/in"
schema = "{SCHEMA}"
max_files_per_trigger = 1

[[operator]]
kind = "map"
plugin = "{{plugin:{plugin}}}"

[sink]
format = "{sink_format}"
path = "{{dir}}/out"
checkpoint = "{{dir}}/ckpt"
trigger = {{ available_now = true }}
{extra_sink}
"#
    ))
}

#[test]
fn json_files_through_the_rust_enrich_plugin_give_exact_json() {
    let s = Scratch::new();
    run_ok(&enrich_job(&s, "enrich", "json", ""));
    assert_eq!(committed_text(&s.path("out")), ENRICHED);
}

/// The Parquet output of the enrich job with `plugin`, compared byte for byte with the Rust one's.
pub(crate) fn assert_parquet_identical_to_rust(plugin: &str) {
    let rust = Scratch::new();
    let other = Scratch::new();
    run_ok(&enrich_job(&rust, "enrich", "parquet", ""));
    run_ok(&enrich_job(&other, plugin, "parquet", ""));
    let (a, b) = (committed_files(&rust.path("out")), committed_files(&other.path("out")));
    assert_eq!(a.len(), 2, "one file per batch, one batch per input file");
    // Names differ only in each writer's random part.
    let unique = regex::Regex::new(r"-[0-9a-f]{12}\.").unwrap();
    let plain = |f: &std::path::PathBuf| unique.replace(&f.display().to_string(), ".").into_owned();
    assert_eq!(a.iter().map(plain).collect::<Vec<_>>(), b.iter().map(plain).collect::<Vec<_>>(), "same file names");
    for (f, g) in a.iter().zip(&b) {
        let x = std::fs::read(rust.path("out").join(f)).unwrap();
        let y = std::fs::read(other.path("out").join(g)).unwrap();
        assert!(x == y, "{} differs between the Rust and the {plugin} plugin", f.display());
    }
}

#[test]
fn rust_and_python_plugins_give_byte_identical_parquet() {
    assert_parquet_identical_to_rust("enrich-py");
}

#[test]
fn rust_and_javascript_plugins_give_byte_identical_parquet() {
    assert_parquet_identical_to_rust("enrich-js");
}

#[test]
fn javascript_plugin_gives_the_same_json_as_the_rust_one() {
    let s = Scratch::new();
    run_ok(&enrich_job(&s, "enrich-js", "json", ""));
    assert_eq!(committed_text(&s.path("out")), ENRICHED);
}

#[test]
fn python_plugin_gives_the_same_json_as_the_rust_one() {
    let s = Scratch::new();
    run_ok(&enrich_job(&s, "enrich-py", "json", ""));
    assert_eq!(committed_text(&s.path("out")), ENRICHED);
}

#[test]
fn filter_plugin_keeps_rows_at_or_above_min_amount_into_csv() {
    let s = Scratch::new();
    s.write("in/a.json", EVENTS_A);
    s.write("in/b.json", EVENTS_B);
    let job = s.job(&format!(
        r#"
[source]
format = "json"
path = "{{dir}}/in"
schema = "{SCHEMA}"

[[operator]]
kind = "map"
plugin = "{{plugin:filter}}"
config = "min_amount=99.99"

[sink]
format = "csv"
path = "{{dir}}/out"
checkpoint = "{{dir}}/ckpt"
trigger = {{ once = true }}
"#
    ));
    run_ok(&job);
    assert_eq!(
        committed_text(&s.path("out")),
        "event_id,user_id,amount,event_time\n\
         e2,bob,250.0,2024-01-01T00:01:00.000Z\n\
         e3,,99.99,2024-01-01T00:02:00.500Z\n\
         e5,dave,100.0,2023-12-31T23:04:00.000Z\n"
    );
}

#[test]
fn csv_and_parquet_sources_read_the_same_rows_as_json() {
    // json -> parquet (no plugin) gives a parquet input; csv written by hand.
    let s = Scratch::new();
    s.write("in/a.json", EVENTS_A);
    s.write("in/b.json", EVENTS_B);
    run_ok(&s.job(&format!(
        "[source]\nformat = \"json\"\npath = \"{{dir}}/in\"\nschema = \"{SCHEMA}\"\n[sink]\nformat = \"parquet\"\npath = \"{{dir}}/pq\"\ncheckpoint = \"{{dir}}/ck1\"\ntrigger = {{ once = true }}\n"
    )));
    run_ok(&s.job(&format!(
        "[source]\nformat = \"parquet\"\npath = \"{{dir}}/pq\"\nschema = \"{SCHEMA}\"\n[[operator]]\nkind = \"map\"\nplugin = \"{{plugin:enrich}}\"\n[sink]\nformat = \"json\"\npath = \"{{dir}}/from_parquet\"\ncheckpoint = \"{{dir}}/ck2\"\ntrigger = {{ once = true }}\n"
    )));
    assert_eq!(committed_text(&s.path("from_parquet")), ENRICHED);

    s.write(
        "csv/a.csv",
        "event_id,user_id,amount,event_time\ne1,alice,10.5,2024-01-01T00:00:00Z\ne2,bob,250.0,2024-01-01 00:01:00\n\
         e3,,99.99,2024-01-01T00:02:00.5Z\ne4,carol,,2024-01-01T00:03:00Z\ne5,dave,100.0,2024-01-01T00:04:00+01:00\n",
    );
    run_ok(&s.job(&format!(
        "[source]\nformat = \"csv\"\npath = \"{{dir}}/csv\"\nschema = \"{SCHEMA}\"\n[[operator]]\nkind = \"map\"\nplugin = \"{{plugin:enrich}}\"\n[sink]\nformat = \"json\"\npath = \"{{dir}}/from_csv\"\ncheckpoint = \"{{dir}}/ck3\"\ntrigger = {{ once = true }}\n"
    )));
    assert_eq!(committed_text(&s.path("from_csv")), ENRICHED);
}

#[test]
fn partition_by_writes_hive_style_directories_without_the_column() {
    let s = Scratch::new();
    run_ok(&enrich_job(&s, "enrich", "json", "partition_by = [\"is_large\"]"));
    let files: Vec<String> = committed_files(&s.path("out")).iter().map(|p| p.display().to_string()).collect();
    // Each file name ends in a random part of the writer's own (no two writers collide).
    let unique = regex::Regex::new(r"-[0-9a-f]{12}\.json$").unwrap();
    assert!(files.iter().all(|f| unique.is_match(f)), "{files:?}");
    assert_eq!(
        files.iter().map(|f| unique.replace(f, ".json").into_owned()).collect::<Vec<_>>(),
        vec![
            "is_large=false/part-00000-0000.json",
            "is_large=true/part-00000-0001.json",
            "is_large=false/part-00001-0000.json",
            "is_large=__HIVE_DEFAULT_PARTITION__/part-00001-0001.json",
            "is_large=true/part-00001-0002.json",
        ]
    );
    let text = std::fs::read_to_string(s.path("out").join(&files[1])).unwrap();
    assert_eq!(text, "{\"event_id\":\"e2\",\"user_id\":\"bob\",\"amount\":250.0,\"event_time\":\"2024-01-01T00:01:00.000Z\",\"amount_with_tax\":300.0,\"user_bucket\":4}\n");
}

#[test]
fn max_files_per_trigger_and_progress_records_in_spark_field_names() {
    let s = Scratch::new();
    run_ok(&enrich_job(&s, "enrich", "json", ""));
    let p = progress(&s.path("ckpt"));
    assert_eq!(p.len(), 2);
    assert_eq!(p[0]["batchId"], 0);
    assert_eq!(p[0]["numInputRows"], 2);
    assert_eq!(p[1]["batchId"], 1);
    assert_eq!(p[1]["numInputRows"], 3);
    assert_eq!(p[1]["sink"]["numOutputRows"], 3);
    for key in [
        "id",
        "runId",
        "name",
        "timestamp",
        "batchDuration",
        "inputRowsPerSecond",
        "processedRowsPerSecond",
        "durationMs",
        "sources",
    ] {
        assert!(p[0].get(key).is_some(), "progress record lacks {key}: {}", p[0]);
    }
    assert!(p[0]["sources"][0]["description"].as_str().unwrap().starts_with("FileStreamSource["));
    assert_eq!(p[0]["id"], p[1]["id"], "one query id per checkpoint");
}

#[test]
fn a_restart_reads_only_files_that_arrived_since() {
    let s = Scratch::new();
    let job = enrich_job(&s, "enrich", "json", "");
    run_ok(&job);
    s.write(
        "in/c.json",
        "{\"event_id\":\"e6\",\"user_id\":\"alice\",\"amount\":1.0,\"event_time\":\"2024-01-02T00:00:00Z\"}\n",
    );
    run_ok(&job);
    let text = committed_text(&s.path("out"));
    assert_eq!(text.lines().count(), 6, "{text}");
    assert!(text.ends_with("{\"event_id\":\"e6\",\"user_id\":\"alice\",\"amount\":1.0,\"event_time\":\"2024-01-02T00:00:00.000Z\",\"amount_with_tax\":1.2,\"user_bucket\":7,\"is_large\":false}\n"));
    let p = progress(&s.path("ckpt"));
    assert_eq!(p.last().unwrap()["batchId"], 2);
    // Nothing new: a third run plans no batch at all.
    run_ok(&job);
    assert_eq!(progress(&s.path("ckpt")).len(), 3);
}

#[test]
fn rate_source_generates_consecutive_values_at_the_declared_rate() {
    let s = Scratch::new();
    let job = s.job(
        "[source]\nformat = \"rate\"\nrows_per_second = 1000\nnum_partitions = 2\n[sink]\nformat = \"json\"\npath = \"{dir}/out\"\ncheckpoint = \"{dir}/ckpt\"\ntrigger = { processing_time = \"100 ms\" }\n",
    );
    let mut child = weir().args(["run", "--quiet"]).arg(&job).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SIGINT: stops after the batch in progress, cleanly.
    send_signal(child.id(), "INT");
    let status = child.wait().unwrap();
    assert!(status.success(), "Ctrl-C should stop cleanly, got {status:?}");
    let text = committed_text(&s.path("out"));
    let rows: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(rows.len() > 100, "expected over a second of rows at 1000/s, got {}", rows.len());
    let parse = |v: &serde_json::Value| chrono_like_micros(v["timestamp"].as_str().unwrap());
    let t0 = parse(&rows[0]);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["value"], i as i64, "values are consecutive from 0");
        assert_eq!(parse(r) - t0, i as i64 * 1000, "row {i} is 1 ms after the previous one");
    }
}

/// Sends a signal with the `kill` command (no libc dependency in tests).
pub fn send_signal(pid: u32, signal: &str) {
    let st = std::process::Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().unwrap();
    assert!(st.success());
}

/// Microseconds since the epoch of an RFC 3339 timestamp.
fn chrono_like_micros(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}")).timestamp_micros()
}

#[test]
fn console_sink_prints_each_batch_as_a_table() {
    let s = Scratch::new();
    s.write("in/a.json", EVENTS_A);
    let job = s.job(&format!(
        "[source]\nformat = \"json\"\npath = \"{{dir}}/in\"\nschema = \"{SCHEMA}\"\n[sink]\nformat = \"console\"\nnum_rows = 1\ncheckpoint = \"{{dir}}/ckpt\"\ntrigger = {{ once = true }}\n"
    ));
    let out = run_ok(&job);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with(
            "-------------------------------------------\nBatch: 0\n-------------------------------------------\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "+----------+---------+--------+---------------------+\n\
         | event_id | user_id | amount | event_time          |\n\
         +----------+---------+--------+---------------------+\n\
         | e1       | alice   | 10.5   | 2024-01-01T00:00:00 |\n\
         +----------+---------+--------+---------------------+\n"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("e2"), "num_rows = 1 shows one row: {stdout}");
    assert!(stdout.contains("only showing top 1 rows"), "{stdout}");
}

#[test]
fn checkpoint_inspect_shows_batches_and_plugin_digests() {
    let s = Scratch::new();
    run_ok(&enrich_job(&s, "enrich", "json", ""));
    let out = weir().args(["checkpoint", "inspect"]).arg(s.path("ckpt")).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("batches planned: 2\nbatches committed: 2\npending:         none (last batch 1 committed)"),
        "{text}"
    );
    assert!(text.contains("operator[0]:") && text.contains("enrich.wasm sha256:"), "{text}");
    // A planned batch without a commit is reported as pending replay.
    std::fs::remove_file(s.path("ckpt/commits/1")).unwrap();
    let text =
        String::from_utf8(weir().args(["checkpoint", "inspect"]).arg(s.path("ckpt")).output().unwrap().stdout).unwrap();
    assert!(text.contains("pending:         batch 1 (planned, not committed: replayed on restart)"), "{text}");
}

#[test]
fn a_checkpoint_whose_commits_lag_more_than_one_batch_is_refused_not_half_replayed() {
    let s = Scratch::new();
    let job = enrich_job(&s, "enrich", "json", "");
    run_ok(&job);
    // Offsets for batches 0 and 1 but no commit at all: only batch 0 could be pending, so this
    // checkpoint was damaged; replaying batch 1 alone would silently skip batch 0.
    std::fs::remove_file(s.path("ckpt/commits/0")).unwrap();
    std::fs::remove_file(s.path("ckpt/commits/1")).unwrap();
    let err = run_err(&job);
    assert!(err.contains("the offsets log ends at batch 1 but the commits log at no batch; only the last planned batch may lack a commit"), "{err}");
}

/// Each batch's progress record says what each plugin did in it: calls, time, bytes, memory.
#[test]
fn progress_records_what_each_plugin_did_in_the_batch() {
    let s = Scratch::new();
    run_ok(&enrich_job(&s, "enrich", "json", ""));
    let p = progress(&s.path("ckpt"));
    assert_eq!(p.len(), 2);
    for (b, rec) in p.iter().enumerate() {
        let plugins = rec["plugins"].as_array().unwrap_or_else(|| panic!("batch {b}: no plugins[]: {rec}"));
        assert_eq!(plugins.len(), 1);
        let m = &plugins[0];
        assert_eq!(m["operator"], 0);
        assert!(m["digest"].as_str().unwrap().starts_with("sha256:"));
        // One map-batch call per batch (each batch is one file, read in one piece).
        assert_eq!(m["calls"], 1, "batch {b}: {m}");
        assert!(m["timeMs"].as_f64().is_some_and(|t| t > 0.0), "a call takes some time: {m}");
        assert!(m["bytesIn"].as_u64().unwrap() > 0 && m["bytesOut"].as_u64().unwrap() > 0, "{m}");
        assert!(m["peakMemoryBytes"].as_u64().unwrap() >= 64 << 10, "a Wasm instance holds at least one page: {m}");
    }
}
