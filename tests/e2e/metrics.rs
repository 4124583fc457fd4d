//! `GET /metrics` on a running job: Prometheus' text format, read back by a real parser (the
//! Python client's `text_string_to_metric_families`), with the values the progress records
//! give; and the token required as for the rest of the API.

use std::path::PathBuf;
use std::process::Command;

use crate::common::*;
use crate::hot_swap::{tagger, wait_until};

/// A Python with `prometheus_client`: `WEIR_TEST_PY`, else `.spark-venv/bin/python` (which
/// `scripts/test.sh` installs it into), else `python3`.
fn prometheus_python() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("WEIR_TEST_PY").map(PathBuf::from),
        Some(repo().join(".spark-venv/bin/python")),
        Some(PathBuf::from("python3")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|py| Command::new(py).args(["-c", "import prometheus_client"]).output().is_ok_and(|o| o.status.success()))
}

/// Parses the exposition with prometheus_client; prints, per family, its type and samples.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    out[f.name] = {"type": f.type, "help": f.documentation,
                   "samples": [[s.name, s.labels, s.value] for s in f.samples]}
print(json.dumps(out))
"#;

fn get(addr: &str, path: &str, headers: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// The value of the sample `name` with `labels` (a subset of its labels).
fn value(families: &serde_json::Value, family: &str, name: &str, labels: serde_json::Value) -> f64 {
    let samples = families[family]["samples"].as_array().unwrap_or_else(|| panic!("no family {family}: {families}"));
    samples
        .iter()
        .find(|s| s[0] == name && labels.as_object().unwrap().iter().all(|(k, v)| &s[1][k] == v))
        .and_then(|s| s[2].as_f64())
        .unwrap_or_else(|| panic!("no sample {name}{labels} in {family}: {}", families[family]))
}

#[test]
fn metrics_parse_as_prometheus_text_and_match_the_progress_records() {
    let Some(py) = prometheus_python() else {
        eprintln!(
            "SKIPPED metrics_parse_as_prometheus_text_and_match_the_progress_records: prometheus_client is not installed; \
             `.spark-venv/bin/pip install prometheus-client==0.26.0` (scripts/test.sh does), or point WEIR_TEST_PY at a Python that has it"
        );
        return;
    };
    let s = Scratch::new();
    let job = s.job(&format!(
        r#"name = "metered"
[source]
format = "rate"
rows_per_second = 200

[watermark]
column = "timestamp"
delay = "5 seconds"

[[operator]]
kind = "dedup"
keys = ["value"]
within_watermark = true

[[operator]]
kind = "map"
plugin = "{}"

[sink]
format = "json"
path = "{{dir}}/out"
checkpoint = "{{dir}}/ckpt"
trigger = {{ processing_time = "100 milliseconds" }}
"#,
        tagger("v1").display()
    ));
    let mut child = weir().args(["run", "--quiet"]).arg(&job).spawn().unwrap();
    wait_until("three batches", || progress(&s.path("ckpt")).len() >= 3);
    let addr = std::fs::read_to_string(s.path("ckpt/admin-address")).unwrap().trim().to_string();
    let token = std::fs::read_to_string(s.path("ckpt/admin-token")).unwrap().trim().to_string();

    // Without the token, or from a web page: refused like the rest of the API.
    let (head, body) = get(&addr, "/metrics", "");
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(!body.contains("weir_"), "{body}");
    let auth = format!("Authorization: Bearer {token}\r\n");
    let (head, _) = get(&addr, "/metrics", &format!("{auth}Origin: http://evil.example\r\n"));
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");

    let (head, text) = get(&addr, "/metrics", &auth);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{text}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    // For a person to look at.
    let _ = std::fs::write(repo().join("target/e2e-metrics.txt"), &text);
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    child.wait().unwrap();

    let f = parse(&py, &text);
    assert_eq!(f.as_object().unwrap().len(), text.matches("# TYPE ").count(), "every family parsed: {f}");
    let samples: usize = f.as_object().unwrap().values().map(|v| v["samples"].as_array().unwrap().len()).sum();
    assert_eq!(samples, text.lines().filter(|l| !l.starts_with('#')).count(), "every sample parsed");
    // Every family has its type and help; counters are read as counters (their _total stripped).
    for (name, family) in f.as_object().unwrap() {
        assert!(name.starts_with("weir_"), "{name}");
        assert_ne!(family["type"], "unknown", "{name} has no TYPE line");
        assert!(!family["help"].as_str().unwrap_or("").is_empty(), "{name} has no HELP line");
    }
    for counter in ["weir_input_rows", "weir_batches", "weir_output_rows", "weir_dead_letter_rows", "weir_plugin_calls"]
    {
        assert_eq!(f[counter]["type"], "counter", "{counter}: {}", f[counter]);
    }
    assert_eq!(f["weir_batch_duration_seconds"]["type"], "histogram");

    // The scrape saw batches up to weir_last_batch_id: the records up to it are in the file.
    let last = value(&f, "weir_last_batch_id", "weir_last_batch_id", serde_json::json!({})) as u64;
    let records: Vec<serde_json::Value> =
        progress(&s.path("ckpt")).into_iter().filter(|p| p["batchId"].as_u64().unwrap() <= last).collect();
    assert_eq!(records.last().unwrap()["batchId"], last);
    let sum = |f: &dyn Fn(&serde_json::Value) -> u64| records.iter().map(f).sum::<u64>() as f64;
    assert_eq!(value(&f, "weir_batches", "weir_batches_total", serde_json::json!({})), records.len() as f64);
    let input = sum(&|p| p["numInputRows"].as_u64().unwrap());
    assert!(input > 0.0);
    assert_eq!(value(&f, "weir_input_rows", "weir_input_rows_total", serde_json::json!({})), input);
    assert_eq!(
        value(&f, "weir_source_input_rows", "weir_source_input_rows_total", serde_json::json!({"source": "0"})),
        input
    );
    assert_eq!(
        value(&f, "weir_output_rows", "weir_output_rows_total", serde_json::json!({})),
        sum(&|p| p["sink"]["numOutputRows"].as_u64().unwrap())
    );
    assert_eq!(
        value(&f, "weir_batch_duration_seconds", "weir_batch_duration_seconds_count", serde_json::json!({})),
        records.len() as f64
    );
    assert_eq!(
        value(
            &f,
            "weir_batch_duration_seconds",
            "weir_batch_duration_seconds_bucket",
            serde_json::json!({"le": "+Inf"})
        ),
        records.len() as f64
    );
    // State: the last record's rows, the sum of its updates.
    let state = &records.last().unwrap()["stateOperators"][0];
    let dedup = serde_json::json!({"operator": "0", "operator_name": state["operatorName"]});
    assert_eq!(
        value(&f, "weir_state_rows", "weir_state_rows", dedup.clone()),
        state["numRowsTotal"].as_u64().unwrap() as f64
    );
    assert_eq!(
        value(&f, "weir_state_memory_bytes", "weir_state_memory_bytes", dedup.clone()),
        state["memoryUsedBytes"].as_u64().unwrap() as f64
    );
    assert_eq!(
        value(&f, "weir_state_rows_updated", "weir_state_rows_updated_total", dedup.clone()),
        sum(&|p| p["stateOperators"][0]["numRowsUpdated"].as_u64().unwrap())
    );
    assert_eq!(
        value(&f, "weir_state_rows_dropped_by_watermark", "weir_state_rows_dropped_by_watermark_total", dedup),
        sum(&|p| p["stateOperators"][0]["numRowsDroppedByWatermark"].as_u64().unwrap())
    );
    // The plugin (operator 1): calls summed, its digest on the info gauge.
    let plugin = &records.last().unwrap()["plugins"][0];
    assert_eq!(plugin["operator"], 1, "{plugin}");
    assert_eq!(
        value(&f, "weir_plugin_calls", "weir_plugin_calls_total", serde_json::json!({"operator": "1"})),
        sum(&|p| p["plugins"][0]["calls"].as_u64().unwrap())
    );
    assert_eq!(
        value(
            &f,
            "weir_plugin_info",
            "weir_plugin_info",
            serde_json::json!({"operator": "1", "digest": plugin["digest"]})
        ),
        1.0
    );
    // The watermark: the last record's, in seconds; its lag is positive (the rate source's
    // event times are the wall clock's, the watermark 5 s behind them).
    let wm = records.last().unwrap()["eventTime"]["watermark"].as_str().unwrap();
    let wm_ms = chrono::DateTime::parse_from_rfc3339(wm).unwrap().timestamp_millis();
    assert_eq!(
        value(&f, "weir_watermark_seconds", "weir_watermark_seconds", serde_json::json!({})),
        wm_ms as f64 / 1000.0
    );
    if wm_ms > 0 {
        assert!(value(&f, "weir_watermark_lag_seconds", "weir_watermark_lag_seconds", serde_json::json!({})) > 0.0);
    }
    assert_eq!(
        value(&f, "weir_query_info", "weir_query_info", serde_json::json!({"name": "metered", "id": records[0]["id"]})),
        1.0
    );
}

/// The exposition as prometheus_client's parser reads it (fails the test if it refuses it).
fn parse(py: &std::path::Path, text: &str) -> serde_json::Value {
    use std::io::Write;
    let mut parser = Command::new(py)
        .args(["-c", PARSE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    parser.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let parsed = parser.wait_with_output().unwrap();
    assert!(
        parsed.status.success(),
        "prometheus_client refused the exposition:\n{}\n{text}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    serde_json::from_slice(&parsed.stdout).unwrap()
}

/// Scrapes the running job whose checkpoint is `ckpt` in `s`, with its token, and parses it.
fn scrape_parsed(py: &std::path::Path, s: &Scratch) -> serde_json::Value {
    let addr = std::fs::read_to_string(s.path("ckpt/admin-address")).unwrap().trim().to_string();
    let token = std::fs::read_to_string(s.path("ckpt/admin-token")).unwrap().trim().to_string();
    let (head, text) = get(&addr, "/metrics", &format!("Authorization: Bearer {token}\r\n"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{text}");
    parse(py, &text)
}

/// Kafka consumer lag per partition: the partition's end offset when the last batch was
/// planned (`latestOffset`) minus the end of what the job has read of it.
#[test]
fn kafka_consumer_lag_per_partition_is_latest_minus_what_was_read() {
    let Some(py) = prometheus_python() else {
        eprintln!("SKIPPED kafka_consumer_lag_per_partition_is_latest_minus_what_was_read: prometheus_client is not installed (see above)");
        return;
    };
    let broker = crate::kafka::Broker::start();
    crate::kafka::create_topic(&broker.addr, "clicks", 2);
    let values: Vec<String> = (0..40).map(|n| format!("c{n}")).collect();
    let recs: Vec<(i32, Option<&str>, &str)> =
        values.iter().enumerate().map(|(i, v)| ((i % 2) as i32, None, v.as_str())).collect();
    crate::kafka::produce(&broker.addr, "clicks", &recs);
    let s = Scratch::new();
    let job = s.job(&format!(
        r#"[source]
format = "kafka"
subscribe = ["clicks"]
starting_offsets = "earliest"
max_offsets_per_trigger = 4
kafka = {{ "bootstrap.servers" = "{}" }}
kafka_timeout = "5 seconds"

[sink]
format = "json"
path = "{{dir}}/out"
checkpoint = "{{dir}}/ckpt"
trigger = {{ processing_time = "300 milliseconds" }}
"#,
        broker.addr
    ));
    let mut child = weir().args(["run", "--quiet"]).arg(&job).spawn().unwrap();
    wait_until("two batches", || progress(&s.path("ckpt")).len() >= 2);
    let f = scrape_parsed(&py, &s);
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    child.wait().unwrap();

    let last = value(&f, "weir_last_batch_id", "weir_last_batch_id", serde_json::json!({})) as u64;
    let records: Vec<serde_json::Value> =
        progress(&s.path("ckpt")).into_iter().filter(|p| p["batchId"].as_u64().unwrap() <= last).collect();
    let latest = &records.last().unwrap()["sources"][0]["latestOffset"]["clicks"];
    assert_eq!(latest, &serde_json::json!({ "0": 20, "1": 20 }), "{records:?}");
    for part in ["0", "1"] {
        let read = records
            .iter()
            .filter_map(|p| p["sources"][0]["endOffset"]["offsets"]["clicks"][part][1].as_i64())
            .last()
            .unwrap_or_else(|| panic!("partition {part} was not read in {records:?}"));
        let labels = serde_json::json!({"source": "0", "topic": "clicks", "partition": part});
        assert_eq!(
            value(&f, "weir_kafka_consumer_lag", "weir_kafka_consumer_lag", labels),
            (20 - read) as f64,
            "partition {part}"
        );
    }
    assert_eq!(f["weir_kafka_consumer_lag"]["type"], "gauge");
}
