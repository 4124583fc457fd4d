//! `GET /metrics`: the query's progress as Prometheus metrics (text exposition format 0.0.4).
//!
//! An observer of the query: each progress record is folded into counters, gauges and a
//! histogram here, on the engine's thread (a few map updates under a lock nobody holds for
//! long); a scrape copies them under the same lock and renders the text outside it, so a
//! scraper never holds up a batch. Names follow Prometheus' conventions: prefix `weir_`, base
//! units (seconds, bytes), counters end in `_total`, labels only of low cardinality (operator
//! and source positions, operator names, Kafka topic and partition; a plugin's digest only on
//! the `weir_plugin_info` gauge, the info pattern). Counters count since the process started,
//! as Prometheus expects (`rate()` handles the reset at a restart).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

use super::query::{QueryEvent, QueryObserver};

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the batch-duration histogram's buckets, in seconds: from a tiny batch
/// (milliseconds) to a slow one (minutes).
pub const DURATION_BUCKETS: [f64; 14] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Spark's phases of `durationMs`, in the order a batch runs them.
const PHASES: [(&str, &str); 7] = [
    ("latestOffset", "latest_offset"),
    ("queryPlanning", "query_planning"),
    ("walCommit", "wal_commit"),
    ("getBatch", "get_batch"),
    ("addBatch", "add_batch"),
    ("commitOffsets", "commit_offsets"),
    ("triggerExecution", "trigger_execution"),
];

/// The metrics shared by the observer (writer) and the API (reader).
pub type SharedMetrics = Arc<Mutex<Metrics>>;

#[derive(Debug, Clone, Default)]
struct StateOperator {
    rows: u64,
    updated: u64,
    removed: u64,
    memory_bytes: u64,
    dropped_by_watermark: u64,
}

#[derive(Debug, Clone, Default)]
struct Plugin {
    digest: String,
    calls: u64,
    time_ms: f64,
    bytes_in: u64,
    bytes_out: u64,
    peak_memory_bytes: u64,
    swaps: u64,
    rollbacks: u64,
}

#[derive(Debug, Clone, Default)]
struct KafkaPartition {
    /// Where the job has read to (the end of its last range).
    end: Option<i64>,
    /// The partition's latest offset when the batch was planned.
    latest: Option<i64>,
}

/// What the query has done since the process started, as Prometheus will be told it.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// id, runId, name (from the started event).
    query: Option<[String; 3]>,
    active: bool,
    batches: u64,
    last_batch_id: Option<u64>,
    input_rows: u64,
    output_rows: u64,
    dead_letter_rows: u64,
    input_rate: f64,
    processed_rate: f64,
    /// Batches per duration bucket (not cumulative), then those above the last bound.
    duration_buckets: [u64; DURATION_BUCKETS.len() + 1],
    duration_sum_seconds: f64,
    phase_ms: BTreeMap<usize, u64>,
    /// Per source position: rows read.
    source_rows: BTreeMap<usize, u64>,
    /// Per position in `stateOperators[]` and operator name.
    state: BTreeMap<(usize, String), StateOperator>,
    /// The event-time watermark in milliseconds since the epoch, as of the last batch.
    watermark_ms: Option<i64>,
    /// Per plugin operator (its index in the job).
    plugins: BTreeMap<u64, Plugin>,
    /// Per Kafka source position, topic and partition.
    kafka: BTreeMap<(usize, String, i64), KafkaPartition>,
}

fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().or_else(|| v.as_f64().map(|f| f.max(0.0) as u64)).unwrap_or(0)
}

impl Metrics {
    /// Folds one event in. Progress records are read leniently: a field a record lacks counts 0.
    pub fn observe(&mut self, event: &QueryEvent) {
        match event {
            QueryEvent::Started(v) => {
                let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
                self.query = Some([s("id"), s("runId"), s("name")]);
                self.active = true;
            }
            QueryEvent::Terminated(_) => self.active = false,
            QueryEvent::Idle(_) => {}
            QueryEvent::Progress(p) => self.progress(p),
        }
    }

    fn progress(&mut self, p: &serde_json::Value) {
        self.batches += 1;
        self.last_batch_id = p["batchId"].as_u64().or(self.last_batch_id);
        self.input_rows += u(&p["numInputRows"]);
        self.output_rows += u(&p["sink"]["numOutputRows"]);
        self.dead_letter_rows += u(&p["numDeadLetterRows"]);
        self.input_rate = p["inputRowsPerSecond"].as_f64().unwrap_or(0.0);
        self.processed_rate = p["processedRowsPerSecond"].as_f64().unwrap_or(0.0);
        let seconds = u(&p["batchDuration"]) as f64 / 1000.0;
        let bucket = DURATION_BUCKETS.iter().position(|&b| seconds <= b).unwrap_or(DURATION_BUCKETS.len());
        self.duration_buckets[bucket] += 1;
        self.duration_sum_seconds += seconds;
        for (i, (field, _)) in PHASES.iter().enumerate() {
            *self.phase_ms.entry(i).or_default() += u(&p["durationMs"][field]);
        }
        for (i, s) in p["sources"].as_array().into_iter().flatten().enumerate() {
            *self.source_rows.entry(i).or_default() += u(&s["numInputRows"]);
            self.kafka_offsets(i, s);
        }
        for (i, s) in p["stateOperators"].as_array().into_iter().flatten().enumerate() {
            let name = s["operatorName"].as_str().unwrap_or("").to_string();
            let op = self.state.entry((i, name)).or_default();
            op.rows = u(&s["numRowsTotal"]);
            op.memory_bytes = u(&s["memoryUsedBytes"]);
            op.updated += u(&s["numRowsUpdated"]);
            op.removed += u(&s["numRowsRemoved"]);
            op.dropped_by_watermark += u(&s["numRowsDroppedByWatermark"]);
        }
        if let Some(w) = p["eventTime"]["watermark"].as_str() {
            self.watermark_ms = chrono::DateTime::parse_from_rfc3339(w).ok().map(|t| t.timestamp_millis());
        }
        for m in p["plugins"].as_array().into_iter().flatten() {
            let op = self.plugins.entry(u(&m["operator"])).or_default();
            op.digest = m["digest"].as_str().unwrap_or("").to_string();
            op.calls += u(&m["calls"]);
            op.time_ms += m["timeMs"].as_f64().unwrap_or(0.0);
            op.bytes_in += u(&m["bytesIn"]);
            op.bytes_out += u(&m["bytesOut"]);
            op.peak_memory_bytes = u(&m["peakMemoryBytes"]);
        }
        for e in p["pluginEvents"].as_array().into_iter().flatten() {
            let op = self.plugins.entry(u(&e["operator"])).or_default();
            match e["event"].as_str() {
                Some("swap") => op.swaps += 1,
                Some("rollback") => op.rollbacks += 1,
                _ => {}
            }
            if op.digest.is_empty() {
                op.digest = e["digest"].as_str().unwrap_or("").to_string();
            }
        }
    }

    /// A Kafka source's offsets: the batch's range ends (weir's `{"offsets": {topic:
    /// {partition: [start, end]}}}`) and, when the source reports it, Spark's `latestOffset`
    /// (`{topic: {partition: offset}}`). A partition the batch did not read keeps its last end.
    fn kafka_offsets(&mut self, source: usize, s: &serde_json::Value) {
        for (topic, parts) in s["endOffset"]["offsets"].as_object().into_iter().flatten() {
            for (part, range) in parts.as_object().into_iter().flatten() {
                if let (Ok(p), Some(end)) = (part.parse::<i64>(), range[1].as_i64()) {
                    self.kafka.entry((source, topic.clone(), p)).or_default().end = Some(end);
                }
            }
        }
        for (topic, parts) in s["latestOffset"].as_object().into_iter().flatten() {
            for (part, latest) in parts.as_object().into_iter().flatten() {
                if let (Ok(p), Some(latest)) = (part.parse::<i64>(), latest.as_i64()) {
                    self.kafka.entry((source, topic.clone(), p)).or_default().latest = Some(latest);
                }
            }
        }
    }

    /// The text exposition; `now_ms` (milliseconds since the epoch) for the watermark's lag.
    pub fn render(&self, now_ms: i64) -> String {
        let mut out = Out::default();
        if let Some([id, run_id, name]) = &self.query {
            let labels = labels(&[("id", id), ("run_id", run_id), ("name", name)]);
            out.family(
                "weir_query_info",
                "gauge",
                "The query: its id (kept across restarts), this run's id and its name; always 1.",
                [(labels, "1".into())],
            );
        }
        out.one(
            "weir_query_active",
            "gauge",
            "1 while the query runs, 0 once it stopped.",
            (self.active as u8).to_string(),
        );
        out.one("weir_batches_total", "counter", "Micro-batches completed by this process.", self.batches.to_string());
        if let Some(b) = self.last_batch_id {
            out.one("weir_last_batch_id", "gauge", "The id of the last completed micro-batch.", b.to_string());
        }
        out.one("weir_input_rows_total", "counter", "Rows read from the sources.", self.input_rows.to_string());
        out.family(
            "weir_source_input_rows_total",
            "counter",
            "Rows read, per source (its position in the job).",
            self.source_rows.iter().map(|(i, n)| (labels(&[("source", &i.to_string())]), n.to_string())),
        );
        out.one("weir_output_rows_total", "counter", "Rows written to the sink.", self.output_rows.to_string());
        out.one(
            "weir_dead_letter_rows_total",
            "counter",
            "Records sent to the dead-letter output.",
            self.dead_letter_rows.to_string(),
        );
        out.one(
            "weir_input_rows_per_second",
            "gauge",
            "Rows per second arriving, over the last batch (Spark's inputRowsPerSecond).",
            float(self.input_rate),
        );
        out.one(
            "weir_processed_rows_per_second",
            "gauge",
            "Rows per second processed, over the last batch (Spark's processedRowsPerSecond).",
            float(self.processed_rate),
        );
        out.header("weir_batch_duration_seconds", "histogram", "How long micro-batches took.");
        let mut cumulative = 0;
        for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
            cumulative += self.duration_buckets[i];
            let _ = writeln!(out.0, "weir_batch_duration_seconds_bucket{{le=\"{}\"}} {cumulative}", float(*bound));
        }
        cumulative += self.duration_buckets[DURATION_BUCKETS.len()];
        let _ = writeln!(out.0, "weir_batch_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out.0, "weir_batch_duration_seconds_sum {}", float(self.duration_sum_seconds));
        let _ = writeln!(out.0, "weir_batch_duration_seconds_count {cumulative}");
        out.family(
            "weir_batch_phase_seconds_total",
            "counter",
            "Time spent in each phase of the micro-batches (Spark's durationMs; trigger_execution is the whole batch).",
            self.phase_ms.iter().map(|(&i, ms)| (labels(&[("phase", PHASES[i].1)]), float(*ms as f64 / 1000.0))),
        );
        type StateField = fn(&StateOperator) -> u64;
        let state: [(&str, &str, &str, StateField); 5] = [
            (
                "weir_state_rows",
                "gauge",
                "Rows held in state, per stateful operator (its position in stateOperators[]).",
                |s| s.rows,
            ),
            ("weir_state_rows_updated_total", "counter", "State rows written (added or updated).", |s| s.updated),
            ("weir_state_rows_removed_total", "counter", "State rows removed (expired or evicted).", |s| s.removed),
            ("weir_state_memory_bytes", "gauge", "Memory used by the operator's state.", |s| s.memory_bytes),
            (
                "weir_state_rows_dropped_by_watermark_total",
                "counter",
                "Rows dropped because they arrived behind the watermark.",
                |s| s.dropped_by_watermark,
            ),
        ];
        for (name, kind, help, field) in state {
            let samples = self.state.iter().map(|((i, op), s)| {
                (labels(&[("operator", &i.to_string()), ("operator_name", op)]), field(s).to_string())
            });
            out.family(name, kind, help, samples);
        }
        if let Some(w) = self.watermark_ms {
            out.one(
                "weir_watermark_seconds",
                "gauge",
                "The event-time watermark, in seconds since the epoch.",
                float(w as f64 / 1000.0),
            );
            // Before any event the watermark is the epoch: a lag of decades would say nothing.
            if w > 0 {
                out.one(
                    "weir_watermark_lag_seconds",
                    "gauge",
                    "How far the watermark is behind the wall clock, at the scrape.",
                    float((now_ms - w) as f64 / 1000.0),
                );
            }
        }
        out.family(
            "weir_plugin_info",
            "gauge",
            "The plugin version each operator runs (its digest); always 1.",
            self.plugins
                .iter()
                .filter(|(_, p)| !p.digest.is_empty())
                .map(|(op, p)| (labels(&[("operator", &op.to_string()), ("digest", &p.digest)]), "1".to_string())),
        );
        type PluginField = fn(&Plugin) -> String;
        let plugin: [(&str, &str, &str, PluginField); 7] = [
            ("weir_plugin_calls_total", "counter", "Calls into the plugin.", |p| p.calls.to_string()),
            ("weir_plugin_time_seconds_total", "counter", "Time spent inside the plugin.", |p| {
                float(p.time_ms / 1000.0)
            }),
            ("weir_plugin_input_bytes_total", "counter", "Bytes handed to the plugin.", |p| p.bytes_in.to_string()),
            ("weir_plugin_output_bytes_total", "counter", "Bytes the plugin returned.", |p| p.bytes_out.to_string()),
            (
                "weir_plugin_peak_memory_bytes",
                "gauge",
                "The plugin instance's peak memory during the last batch.",
                |p| p.peak_memory_bytes.to_string(),
            ),
            ("weir_plugin_swaps_total", "counter", "Plugin versions swapped in.", |p| p.swaps.to_string()),
            ("weir_plugin_rollbacks_total", "counter", "Swapped plugin versions rolled back.", |p| {
                p.rollbacks.to_string()
            }),
        ];
        for (name, kind, help, field) in plugin {
            let samples = self.plugins.iter().map(|(op, p)| (labels(&[("operator", &op.to_string())]), field(p)));
            out.family(name, kind, help, samples);
        }
        out.family(
            "weir_kafka_consumer_lag",
            "gauge",
            "Records a Kafka partition holds beyond what the job has read, as of the last batch's planning.",
            self.kafka.iter().filter_map(|((source, topic, part), k)| {
                let (end, latest) = (k.end?, k.latest?);
                let l = labels(&[("source", &source.to_string()), ("topic", topic), ("partition", &part.to_string())]);
                Some((l, (latest - end).max(0).to_string()))
            }),
        );
        out.0
    }

    /// Renders the shared metrics: copied under the lock, rendered outside it.
    pub fn scrape(shared: &Mutex<Metrics>) -> String {
        let copy = shared.lock().unwrap_or_else(|p| p.into_inner()).clone();
        copy.render(chrono::Utc::now().timestamp_millis())
    }
}

/// Feeds the shared metrics from the query's events.
pub struct MetricsObserver(pub SharedMetrics);

impl QueryObserver for MetricsObserver {
    fn on_event(&mut self, event: &QueryEvent) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).observe(event);
    }
}

/// A sample value as Prometheus reads floats (`+Inf`, `-Inf`, `NaN`).
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        v.to_string()
    }
}

/// `{a="x",b="y"}`, values escaped as the format asks (backslash, double quote, newline).
fn labels(pairs: &[(&str, &str)]) -> String {
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")))
        .collect();
    format!("{{{}}}", body.join(","))
}

#[derive(Default)]
struct Out(String);

impl Out {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: String) {
        self.family(name, kind, help, [(String::new(), value)]);
    }

    /// A family with its samples (label set, value); nothing at all when it has none.
    fn family(&mut self, name: &str, kind: &str, help: &str, samples: impl IntoIterator<Item = (String, String)>) {
        let mut samples = samples.into_iter().peekable();
        if samples.peek().is_none() {
            return;
        }
        self.header(name, kind, help);
        for (labels, value) in samples {
            let _ = writeln!(self.0, "{name}{labels} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn started() -> QueryEvent {
        QueryEvent::Started(
            json!({ "id": "q-1", "runId": "r-1", "name": "ticker", "timestamp": "2026-11-27T14:00:00.000Z" }),
        )
    }

    #[test]
    fn a_stateless_batch_renders_exactly() {
        let mut m = Metrics::default();
        m.observe(&started());
        m.observe(&QueryEvent::Progress(json!({
            "batchId": 0, "batchDuration": 42, "numInputRows": 10,
            "inputRowsPerSecond": 0.0, "processedRowsPerSecond": 238.1,
            "durationMs": { "latestOffset": 1, "queryPlanning": 0, "walCommit": 2, "getBatch": 3,
                            "addBatch": 30, "commitOffsets": 4, "triggerExecution": 42 },
            "numDeadLetterRows": 0, "stateOperators": [],
            "sources": [{ "description": "RateStreamV2[rowsPerSecond=10]", "numInputRows": 10,
                          "startOffset": null, "endOffset": 10 }],
            "sink": { "description": "FileSink[out]", "numOutputRows": 10 },
        })));
        let expected = r#"# HELP weir_query_info The query: its id (kept across restarts), this run's id and its name; always 1.
# TYPE weir_query_info gauge
weir_query_info{id="q-1",run_id="r-1",name="ticker"} 1
# HELP weir_query_active 1 while the query runs, 0 once it stopped.
# TYPE weir_query_active gauge
weir_query_active 1
# HELP weir_batches_total Micro-batches completed by this process.
# TYPE weir_batches_total counter
weir_batches_total 1
# HELP weir_last_batch_id The id of the last completed micro-batch.
# TYPE weir_last_batch_id gauge
weir_last_batch_id 0
# HELP weir_input_rows_total Rows read from the sources.
# TYPE weir_input_rows_total counter
weir_input_rows_total 10
# HELP weir_source_input_rows_total Rows read, per source (its position in the job).
# TYPE weir_source_input_rows_total counter
weir_source_input_rows_total{source="0"} 10
# HELP weir_output_rows_total Rows written to the sink.
# TYPE weir_output_rows_total counter
weir_output_rows_total 10
# HELP weir_dead_letter_rows_total Records sent to the dead-letter output.
# TYPE weir_dead_letter_rows_total counter
weir_dead_letter_rows_total 0
# HELP weir_input_rows_per_second Rows per second arriving, over the last batch (Spark's inputRowsPerSecond).
# TYPE weir_input_rows_per_second gauge
weir_input_rows_per_second 0
# HELP weir_processed_rows_per_second Rows per second processed, over the last batch (Spark's processedRowsPerSecond).
# TYPE weir_processed_rows_per_second gauge
weir_processed_rows_per_second 238.1
# HELP weir_batch_duration_seconds How long micro-batches took.
# TYPE weir_batch_duration_seconds histogram
weir_batch_duration_seconds_bucket{le="0.005"} 0
weir_batch_duration_seconds_bucket{le="0.01"} 0
weir_batch_duration_seconds_bucket{le="0.025"} 0
weir_batch_duration_seconds_bucket{le="0.05"} 1
weir_batch_duration_seconds_bucket{le="0.1"} 1
weir_batch_duration_seconds_bucket{le="0.25"} 1
weir_batch_duration_seconds_bucket{le="0.5"} 1
weir_batch_duration_seconds_bucket{le="1"} 1
weir_batch_duration_seconds_bucket{le="2.5"} 1
weir_batch_duration_seconds_bucket{le="5"} 1
weir_batch_duration_seconds_bucket{le="10"} 1
weir_batch_duration_seconds_bucket{le="30"} 1
weir_batch_duration_seconds_bucket{le="60"} 1
weir_batch_duration_seconds_bucket{le="300"} 1
weir_batch_duration_seconds_bucket{le="+Inf"} 1
weir_batch_duration_seconds_sum 0.042
weir_batch_duration_seconds_count 1
# HELP weir_batch_phase_seconds_total Time spent in each phase of the micro-batches (Spark's durationMs; trigger_execution is the whole batch).
# TYPE weir_batch_phase_seconds_total counter
weir_batch_phase_seconds_total{phase="latest_offset"} 0.001
weir_batch_phase_seconds_total{phase="query_planning"} 0
weir_batch_phase_seconds_total{phase="wal_commit"} 0.002
weir_batch_phase_seconds_total{phase="get_batch"} 0.003
weir_batch_phase_seconds_total{phase="add_batch"} 0.03
weir_batch_phase_seconds_total{phase="commit_offsets"} 0.004
weir_batch_phase_seconds_total{phase="trigger_execution"} 0.042
"#;
        assert_eq!(m.render(0), expected);
    }

    fn stateful(
        batch: u64,
        duration_ms: u64,
        rows: u64,
        state_rows: u64,
        updated: u64,
        dropped: u64,
        events: serde_json::Value,
    ) -> QueryEvent {
        QueryEvent::Progress(json!({
            "batchId": batch, "batchDuration": duration_ms, "numInputRows": rows,
            "inputRowsPerSecond": 5.5, "processedRowsPerSecond": 100.0,
            "eventTime": { "watermark": "2026-11-27T14:00:00.000Z" },
            "numDeadLetterRows": 1,
            "stateOperators": [{ "operatorName": "dedupe", "numRowsTotal": state_rows, "numRowsUpdated": updated,
                                 "numRowsRemoved": 0, "memoryUsedBytes": 2048, "numRowsDroppedByWatermark": dropped }],
            "plugins": [{ "operator": 1, "digest": "sha256:ab\"c", "calls": 2, "timeMs": 1500,
                          "bytesIn": 100, "bytesOut": 80, "peakMemoryBytes": 65536 }],
            "pluginEvents": events,
            "sources": [{ "description": "KafkaV2[Subscribe[orders]]", "numInputRows": rows,
                          "endOffset": { "offsets": { "orders": { "0": [0, 10 * batch + 10] } } },
                          "latestOffset": { "orders": { "0": 50, "1": 7 } } }],
            "sink": { "numOutputRows": 1 },
        }))
    }

    #[test]
    fn state_plugins_watermark_and_kafka_lag_render_exactly() {
        let mut m = Metrics::default();
        m.observe(&stateful(0, 3, 10, 8, 8, 0, json!([])));
        m.observe(&stateful(
            1,
            700_000,
            10,
            12,
            4,
            2,
            json!([{ "operator": 1, "event": "swap", "digest": "x" }, { "operator": 1, "event": "rollback" }]),
        ));
        m.observe(&QueryEvent::Terminated(json!({ "exception": null })));
        let text =
            m.render(chrono::DateTime::parse_from_rfc3339("2026-11-27T14:00:30.500Z").unwrap().timestamp_millis());
        let from = text.find("# HELP weir_state_rows ").expect("state rows");
        let expected = r#"# HELP weir_state_rows Rows held in state, per stateful operator (its position in stateOperators[]).
# TYPE weir_state_rows gauge
weir_state_rows{operator="0",operator_name="dedupe"} 12
# HELP weir_state_rows_updated_total State rows written (added or updated).
# TYPE weir_state_rows_updated_total counter
weir_state_rows_updated_total{operator="0",operator_name="dedupe"} 12
# HELP weir_state_rows_removed_total State rows removed (expired or evicted).
# TYPE weir_state_rows_removed_total counter
weir_state_rows_removed_total{operator="0",operator_name="dedupe"} 0
# HELP weir_state_memory_bytes Memory used by the operator's state.
# TYPE weir_state_memory_bytes gauge
weir_state_memory_bytes{operator="0",operator_name="dedupe"} 2048
# HELP weir_state_rows_dropped_by_watermark_total Rows dropped because they arrived behind the watermark.
# TYPE weir_state_rows_dropped_by_watermark_total counter
weir_state_rows_dropped_by_watermark_total{operator="0",operator_name="dedupe"} 2
# HELP weir_watermark_seconds The event-time watermark, in seconds since the epoch.
# TYPE weir_watermark_seconds gauge
weir_watermark_seconds 1795788000
# HELP weir_watermark_lag_seconds How far the watermark is behind the wall clock, at the scrape.
# TYPE weir_watermark_lag_seconds gauge
weir_watermark_lag_seconds 30.5
# HELP weir_plugin_info The plugin version each operator runs (its digest); always 1.
# TYPE weir_plugin_info gauge
weir_plugin_info{operator="1",digest="sha256:ab\"c"} 1
# HELP weir_plugin_calls_total Calls into the plugin.
# TYPE weir_plugin_calls_total counter
weir_plugin_calls_total{operator="1"} 4
# HELP weir_plugin_time_seconds_total Time spent inside the plugin.
# TYPE weir_plugin_time_seconds_total counter
weir_plugin_time_seconds_total{operator="1"} 3
# HELP weir_plugin_input_bytes_total Bytes handed to the plugin.
# TYPE weir_plugin_input_bytes_total counter
weir_plugin_input_bytes_total{operator="1"} 200
# HELP weir_plugin_output_bytes_total Bytes the plugin returned.
# TYPE weir_plugin_output_bytes_total counter
weir_plugin_output_bytes_total{operator="1"} 160
# HELP weir_plugin_peak_memory_bytes The plugin instance's peak memory during the last batch.
# TYPE weir_plugin_peak_memory_bytes gauge
weir_plugin_peak_memory_bytes{operator="1"} 65536
# HELP weir_plugin_swaps_total Plugin versions swapped in.
# TYPE weir_plugin_swaps_total counter
weir_plugin_swaps_total{operator="1"} 1
# HELP weir_plugin_rollbacks_total Swapped plugin versions rolled back.
# TYPE weir_plugin_rollbacks_total counter
weir_plugin_rollbacks_total{operator="1"} 1
# HELP weir_kafka_consumer_lag Records a Kafka partition holds beyond what the job has read, as of the last batch's planning.
# TYPE weir_kafka_consumer_lag gauge
weir_kafka_consumer_lag{source="0",topic="orders",partition="0"} 30
"#;
        assert_eq!(&text[from..], expected);
        assert!(text.contains("weir_query_active 0\n"), "terminated: {text}");
        assert!(
            text.contains("weir_input_rows_total 20\n") && text.contains("weir_dead_letter_rows_total 2\n"),
            "{text}"
        );
        // 3 ms in the first bucket, 700 s above the last bound.
        assert!(text.contains("weir_batch_duration_seconds_bucket{le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("weir_batch_duration_seconds_bucket{le=\"300\"} 1\n"), "{text}");
        assert!(text.contains("weir_batch_duration_seconds_bucket{le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("weir_batch_duration_seconds_sum 700.003\n"), "{text}");
    }

    #[test]
    fn an_epoch_watermark_has_no_lag_and_labels_are_escaped() {
        let mut m = Metrics::default();
        m.observe(&QueryEvent::Started(json!({ "id": "a", "runId": "b", "name": "say \"hi\"\\\n" })));
        m.observe(&QueryEvent::Progress(json!({ "eventTime": { "watermark": "1970-01-01T00:00:00.000Z" } })));
        let text = m.render(1_000_000);
        assert!(text.contains("weir_watermark_seconds 0\n"), "{text}");
        assert!(!text.contains("weir_watermark_lag_seconds"), "{text}");
        assert!(text.contains(r#"name="say \"hi\"\\\n"} 1"#), "{text}");
    }
}
