//! `weir check`: the job as a user reads it — sources, each operator with the columns it takes
//! and gives, its state, the watermark, the sink — with durations and sizes in their units.
//! Secrets are never printed: the admin token, and any `kafka` setting whose name says
//! password, secret or key (SASL passwords, key stores) shows as `***`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use arrow::datatypes::SchemaRef;

use super::operators::{plan_operators, LazyRuntime};
use crate::config::*;
use crate::schema::to_ddl;

/// The job's plan as text. Plugins are loaded (not run on data) to learn their output columns;
/// nothing is written, no checkpoint is created.
pub fn describe(job: &Job) -> anyhow::Result<String> {
    let mut out = String::new();
    let o = &mut out;
    let _ = writeln!(o, "job {:?} ({})", job.name, job.file.display());
    let mut schema: Option<SchemaRef> = None;
    let mut streams = BTreeMap::new();
    for input in &job.sources {
        let (text, columns) = source(&input.source)?;
        if let Some(name) = &input.name {
            streams.insert(name.clone(), columns.clone());
        }
        let _ = writeln!(o, "{}: {text}", input.label());
        if let Some(d) = input.watermark_delay {
            let _ = writeln!(o, "  watermark delay: {}", duration(d));
        }
        if let Some(c) = &input.watermark_column {
            let _ = writeln!(o, "  watermark column: `{c}`");
        }
        match &columns {
            Some(c) => {
                let _ = writeln!(o, "  columns: {}", to_ddl(c));
            }
            None => {
                let _ = writeln!(o, "  columns: those of the first parquet file (none yet)");
            }
        }
        // The stream the operators take: the sources no join takes as its other side.
        if schema.is_none() && super::sources::joined_by(job, input.name.as_deref()).is_none() {
            schema = columns;
        }
    }
    for t in &job.tables {
        o.push_str(&table(t));
    }
    if let Some(w) = &job.watermark {
        let late = match w.late_rows {
            LateRows::Drop => "dropped and counted",
            LateRows::DeadLetter => "kept in the dead-letter output",
        };
        let policy = if job.sources.len() > 1 {
            match w.policy {
                MultipleWatermarkPolicy::Min => "; with several sources, the slowest one's",
                MultipleWatermarkPolicy::Max => "; with several sources, the fastest one's",
            }
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "watermark: `{}`, {} behind the latest event time seen{policy}; late rows are {late}",
            w.column,
            duration(w.delay)
        );
    }
    let mut runtime = LazyRuntime::new(None);
    for op in plan_operators(job, schema, &streams, &mut runtime, &|m: &MapConfig| m.plugin.clone())? {
        let _ = writeln!(o, "operator[{}]: {}", op.index, op.text);
        let cols = |s: &Option<SchemaRef>| s.as_deref().map_or("(known once the first file arrives)".into(), to_ddl);
        let _ = writeln!(o, "  in:    {}", cols(&op.input));
        let _ = writeln!(o, "  out:   {}", cols(&op.output));
        if let Some(state) = &op.state {
            let _ = writeln!(o, "  state: {state}");
        }
    }
    let mode = match job.sink.output_mode {
        OutputMode::Append => "append",
        OutputMode::Update => "update",
        OutputMode::Complete => "complete",
    };
    let _ = writeln!(o, "sink: {}, output mode {mode}", sink(&job.sink.kind));
    if let SinkKind::ForeachBatch(p) | SinkKind::Foreach(p) = &job.sink.kind {
        for out in &p.outputs {
            let _ = writeln!(o, "  output {:?}: {}", out.name, sink(&out.kind));
        }
    }
    let trigger = match job.trigger {
        Trigger::ProcessingTime(d) if d.is_zero() => "each batch as soon as the previous one ends".to_string(),
        Trigger::ProcessingTime(d) => format!("a batch every {}", duration(d)),
        Trigger::Once => "one batch, then stop".to_string(),
        Trigger::AvailableNow => "what is available at start, then stop".to_string(),
        Trigger::Continuous(d) => {
            format!("continuously, records as they arrive; an epoch commits every {}", duration(d))
        }
    };
    let _ = writeln!(o, "trigger: {trigger}");
    let _ = writeln!(o, "checkpoint: {}", job.checkpoint.display());
    let state_store = match job.state_store {
        StateStoreKind::Memory => "memory",
        StateStoreKind::RocksDb => "rocksdb",
    };
    let _ = writeln!(o, "state store: {state_store}, {} batch versions kept", job.min_batches_to_retain);
    let bad = match job.on_bad_record {
        crate::deadletter::OnBadRecord::Fail => "stop the job".to_string(),
        crate::deadletter::OnBadRecord::DeadLetter => {
            format!("go to {}", job.dead_letter_dir(crate::checkpoint::layout::dead_letter).display())
        }
    };
    let _ = writeln!(o, "bad records: {bad}");
    if let Some(a) = &job.admin {
        let token = match a.token {
            Some(_) => "the job file's [admin].token (not shown)".to_string(),
            None => format!(
                "generated at each start into {}",
                crate::checkpoint::layout::admin_token(&job.checkpoint).display()
            ),
        };
        let _ = writeln!(
            o,
            "admin API: {}, token: {token}; new versions on probation for {} batches; uploads up to {}",
            a.listen,
            a.probation_batches,
            size(a.max_upload)
        );
    }
    for l in &job.listeners {
        let _ = writeln!(o, "{}", listener(l));
    }
    Ok(out)
}

/// `listener[0] http://host/path: started, progress; headers Authorization (values not shown); ...`
fn listener(l: &crate::config::listener::ListenerConfig) -> String {
    use crate::config::listener::ListenerTarget;
    let mut text = format!("{}: {}", l.label(), l.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", "));
    if let ListenerTarget::Webhook(w) = &l.target {
        if !w.headers.is_empty() {
            let names: Vec<&str> = w.headers.iter().map(|(n, _)| n.as_str()).collect();
            text.push_str(&format!("; headers {} (values not shown)", names.join(", ")));
        }
    }
    format!(
        "{text}; {} {}, {} per attempt, up to {} events queued",
        l.retries,
        if l.retries == 1 { "retry" } else { "retries" },
        duration(l.timeout),
        l.max_queue
    )
}

fn source(s: &SourceConfig) -> anyhow::Result<(String, Option<SchemaRef>)> {
    Ok(match s {
        SourceConfig::Files(f) => {
            let mut text = format!("{} files in {}", f.format.extension(), f.path.display());
            if let Some(n) = f.max_files_per_trigger {
                let _ = write!(text, ", at most {n} per batch");
            }
            if f.format == FileFormat::Csv {
                let header = if f.csv.header { "a header line" } else { "no header" };
                let _ = write!(text, ", {header}, delimiter {:?}", f.csv.delimiter as char);
            }
            let columns = match &f.schema {
                Some(s) => Some(s.clone()),
                None => {
                    let src = crate::source::files::FileSource::new(f)?;
                    let s = crate::source::Source::schema(&src);
                    (!s.fields().is_empty()).then_some(s)
                }
            };
            (text, columns)
        }
        SourceConfig::Rate(r) => {
            let src = crate::source::rate::RateSource::new(r);
            (
                format!("rate, {} rows per second over {} partitions", r.rows_per_second, r.num_partitions),
                Some(crate::source::Source::schema(&src)),
            )
        }
        SourceConfig::Kafka(k) => {
            let topics = match &k.topics {
                KafkaTopics::Subscribe(t) => format!("topics {}", t.join(", ")),
                KafkaTopics::Pattern(p) => format!("topics matching {p:?}"),
                KafkaTopics::Assign(a) => {
                    let parts: Vec<String> = a.iter().map(|(t, p)| format!("{t} {p:?}")).collect();
                    format!("partitions {}", parts.join(", "))
                }
            };
            let start = match &k.starting_offsets {
                StartingOffsets::Earliest => "earliest".to_string(),
                StartingOffsets::Latest => "latest".to_string(),
                StartingOffsets::Specific(m) => format!("{m:?}"),
            };
            let mut text = format!("kafka, {topics}, starting at {start}");
            if let Some(n) = k.max_offsets_per_trigger {
                let _ = write!(text, ", at most {n} records per batch");
            }
            if let Some(v) = &k.value {
                let f = match v.format {
                    KafkaValueFormat::Json => "json",
                    KafkaValueFormat::Csv => "csv",
                };
                let _ = write!(text, ", value decoded as {f}");
            }
            if let Some(g) = &k.consumer_group {
                let _ = write!(text, ", scaled out in consumer group {g:?}");
            }
            let _ = write!(text, ", broker timeout {}; settings: {}", duration(k.timeout), kafka_settings(&k.client));
            #[cfg(feature = "kafka")]
            let schema = Some(crate::source::kafka::schema_of(k));
            #[cfg(not(feature = "kafka"))]
            let schema = None;
            (text, schema)
        }
    })
}

/// A static table: its files, when it is re-read, its columns (two lines).
fn table(t: &TableConfig) -> String {
    let mut text = format!("{} files in {}", t.format.extension(), t.path.display());
    if t.format == FileFormat::Csv {
        let header = if t.csv.header { "a header line" } else { "no header" };
        let _ = write!(text, ", {header}, delimiter {:?}", t.csv.delimiter as char);
    }
    // Parquet without a declared schema: the first file's, when there is one yet.
    let columns = t.schema.clone().or_else(|| {
        use crate::operator::join::static_table::{scan, table_schema};
        let version = scan(&t.path).ok()?;
        table_schema(&t.path, &version, t.format, None).ok()
    });
    let refresh = match t.refresh {
        Refresh::Never => "read once when the job starts".to_string(),
        Refresh::OnChange => "re-read when its files change".to_string(),
        Refresh::Every(d) => format!("re-read when its files change, looked at every {}", duration(d)),
    };
    let columns = match &columns {
        Some(c) => to_ddl(c),
        None => "those of the first parquet file (none yet)".to_string(),
    };
    format!("source {:?}: static table, {text}, {refresh}\n  columns: {columns}\n", t.name)
}

fn sink(kind: &SinkKind) -> String {
    match kind {
        SinkKind::Files { format, path, partition_by } => {
            let by = if partition_by.is_empty() {
                String::new()
            } else {
                format!(", partitioned by {}", partition_by.join(", "))
            };
            format!("{} files in {}{by}", format.extension(), path.display())
        }
        SinkKind::Console { num_rows } => format!("console, up to {num_rows} rows per batch"),
        SinkKind::ForeachBatch(p) => format!(
            "foreach_batch, plugin {} (memory {}, {} per call{}), exactly once per batch",
            p.plugin.display(),
            size(p.limits.memory_bytes as u64),
            duration(p.limits.cpu_time_per_call),
            other_limits(&p.limits)
        ),
        SinkKind::Foreach(p) => format!(
            "foreach, plugin {} (memory {}, {} per call{}), {} rows per call, at least once",
            p.plugin.display(),
            size(p.limits.memory_bytes as u64),
            duration(p.limits.cpu_time_per_call),
            other_limits(&p.limits),
            p.rows_per_call
        ),
        SinkKind::Delta(d) => format!(
            "delta table {}{}{}{}, exactly once (a txn per commit), a checkpoint every {} commits, log kept {}",
            d.path.display(),
            if d.partition_by.is_empty() {
                String::new()
            } else {
                format!(", partitioned by {}", d.partition_by.join(", "))
            },
            if d.merge_on.is_empty() { String::new() } else { format!(", MERGE on {}", d.merge_on.join(", ")) },
            if d.merge_schema { ", merge_schema (new columns are added)" } else { "" },
            d.checkpoint_interval,
            duration(d.log_retention)
        ),
        SinkKind::Kafka(k) => format!(
            "kafka topic {} (a transaction per batch), markers in {}, broker timeout {}; settings: {}",
            k.topic.as_deref().map_or("from each row's `topic` column".to_string(), |t| format!("{t:?}")),
            k.marker_topic.as_deref().map_or("weir-sink-<query id>".to_string(), |t| format!("{t:?}")),
            duration(k.timeout),
            kafka_settings(&k.client)
        ),
        SinkKind::Postgres(p) => crate::sink::postgres::describe(p),
    }
}

pub(super) fn plugin_settings(m: &MapConfig) -> String {
    let on_error = match m.on_error {
        OnPluginError::Fail => "stop the job".to_string(),
        OnPluginError::Retry(n) => format!("retry {n} times"),
        OnPluginError::DeadLetter => "dead-letter the failing rows".to_string(),
    };
    let mut grants = Vec::new();
    if m.limits.grant_clock {
        grants.push("clock");
    }
    if m.limits.grant_random {
        grants.push("random");
    }
    let grants = if grants.is_empty() { "nothing".to_string() } else { grants.join(", ") };
    let watch = if m.watch { "; swapped when its file changes" } else { "" };
    format!(
        " (memory {}, {} per call{}; granted {grants}; on error: {on_error}{watch})",
        size(m.limits.memory_bytes as u64),
        duration(m.limits.cpu_time_per_call),
        other_limits(&m.limits)
    )
}

/// The plugin limits a job set to other values than their defaults (docs/sandbox.md), each as
/// `, setting value`.
fn other_limits(l: &crate::config::PluginLimits) -> String {
    let d = crate::config::PluginLimits::default();
    let mut out = String::new();
    let mut add = |changed: bool, text: String| {
        if changed {
            out.push_str(", ");
            out.push_str(&text);
        }
    };
    add(l.output_rows != d.output_rows, format!("max_output_rows {}", l.output_rows));
    add(l.output_bytes != d.output_bytes, format!("max_output_bytes {}", size(l.output_bytes)));
    add(l.emit_bytes != d.emit_bytes, format!("max_emit_bytes {}", size(l.emit_bytes)));
    add(l.error_bytes != d.error_bytes, format!("max_error_length {}", size(l.error_bytes as u64)));
    add(l.log.lines_per_batch != d.log.lines_per_batch, format!("max_log_lines {}", l.log.lines_per_batch));
    add(l.component_bytes != d.component_bytes, format!("max_component_size {}", size(l.component_bytes)));
    add(l.compile_time != d.compile_time, format!("max_compile_time {}", duration(l.compile_time)));
    out
}

pub(super) fn window(w: &WindowConfig) -> String {
    let d = |micros: i64| duration(Duration::from_micros(micros.max(0) as u64));
    match w.kind {
        WindowKind::Tumbling { size } => format!("window({}, {})", w.column, d(size)),
        WindowKind::Sliding { size, slide } => format!("window({}, {}, sliding every {})", w.column, d(size), d(slide)),
        WindowKind::Session { gap } => format!("session_window({}, gap {})", w.column, d(gap)),
    }
}

/// Whether a client setting holds a secret: its name says password, secret or key.
pub fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "secret", "key"].iter().any(|w| n.contains(w))
}

fn kafka_settings(client: &BTreeMap<String, String>) -> String {
    client
        .iter()
        .map(|(k, v)| if is_secret(k) { format!("{k} = ***") } else { format!("{k} = {v:?}") })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A duration as a person writes it: `500 ms`, `1 second`, `10 minutes`, `90 seconds`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 || ms == 0 {
        return if d.subsec_nanos() % 1_000_000 == 0 { format!("{ms} ms") } else { format!("{d:?}") };
    }
    let s = (ms / 1000) as u64;
    let (n, unit) = match s {
        _ if s % 86_400 == 0 => (s / 86_400, "day"),
        _ if s % 3_600 == 0 => (s / 3_600, "hour"),
        _ if s % 60 == 0 => (s / 60, "minute"),
        _ => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// A size as a person writes it: `64 MiB`, `1 GiB`, `1500 bytes`.
pub fn size(bytes: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_in_their_units() {
        assert_eq!(duration(Duration::from_secs(1)), "1 second");
        assert_eq!(duration(Duration::from_secs(600)), "10 minutes");
        assert_eq!(duration(Duration::from_secs(90)), "90 seconds");
        assert_eq!(duration(Duration::from_millis(500)), "500 ms");
        assert_eq!(duration(Duration::from_secs(7200)), "2 hours");
        assert_eq!(size(64 << 20), "64 MiB");
        assert_eq!(size(1500), "1500 bytes");
    }

    #[test]
    fn a_static_table_shows_its_files_refresh_and_columns() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = TableConfig {
            name: "users".into(),
            field: "source[1]".into(),
            path: dir.path().join("tables/users"),
            format: FileFormat::Parquet,
            schema: None,
            csv: CsvOptions::default(),
            refresh: Refresh::OnChange,
        };
        std::fs::create_dir_all(&t.path).unwrap();
        let at = t.path.display().to_string();
        assert_eq!(
            table(&t),
            format!("source \"users\": static table, parquet files in {at}, re-read when its files change\n  columns: those of the first parquet file (none yet)\n")
        );
        // A parquet file there: its columns.
        let schema = crate::schema::parse_ddl("user_id string, age bigint").unwrap();
        let file = std::fs::File::create(t.path.join("part-0.parquet")).unwrap();
        let mut w = ::parquet::arrow::ArrowWriter::try_new(file, schema.clone(), None).unwrap();
        w.write(&arrow::record_batch::RecordBatch::new_empty(schema)).unwrap();
        w.close().unwrap();
        assert!(table(&t).ends_with("\n  columns: user_id string, age bigint\n"), "{}", table(&t));
        t.format = FileFormat::Csv;
        t.schema = Some(crate::schema::parse_ddl("user_id string, country string").unwrap());
        t.refresh = Refresh::Every(Duration::from_secs(600));
        assert_eq!(
            table(&t),
            format!("source \"users\": static table, csv files in {at}, a header line, delimiter ',', re-read when its files change, looked at every 10 minutes\n  columns: user_id string, country string\n")
        );
        t.refresh = Refresh::Never;
        assert!(table(&t).contains(", read once when the job starts\n"));
    }

    #[test]
    fn plugin_limits_are_shown_only_where_the_job_changed_them() {
        let mut l = crate::config::PluginLimits::default();
        assert_eq!(other_limits(&l), "");
        l.output_rows = 1000;
        l.emit_bytes = 64 << 20;
        l.log.lines_per_batch = 5;
        assert_eq!(other_limits(&l), ", max_output_rows 1000, max_emit_bytes 64 MiB, max_log_lines 5");
    }

    #[test]
    fn the_check_output_reads_as_the_job_and_hides_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("job.toml");
        std::fs::write(
            &file,
            r#"
[admin]
listen = "127.0.0.1:7070"
token = "tok-SECRET-1"

[[listener]]
url = "http://127.0.0.1:9000/hooks/weir"
headers = { Authorization = "Bearer SECRET-8" }
events = ["progress", "terminated"]

[source]
format = "kafka"
subscribe = ["orders"]
kafka = { "bootstrap.servers" = "b:9092", "sasl.password" = "pw-SECRET-2", "ssl.key.password" = "pw-SECRET-3", "sasl.oauthbearer.client.secret" = "SECRET-4", "ssl.keystore.location" = "SECRET-5" }
value_format = "json"
schema = "user_id string, amount double, event_time timestamp"
watermark_column = "event_time"

[watermark]
column = "event_time"
delay = "10 minutes"

[[operator]]
kind = "aggregate"
group_by = ["user_id"]
window = { column = "event_time", size = "5 minutes" }
aggregates = [{ fn = "sum", column = "amount", as = "total" }]

[sink]
format = "foreach_batch"
plugin = "sink.wasm"
checkpoint = "ckpt"
trigger = { processing_time = "1 second" }

[[sink.output]]
name = "k"
format = "kafka"
topic = "out"
kafka = { "bootstrap.servers" = "b:9092", "SASL.Password" = "pw-SECRET-6", "Sasl.Api.Key" = "SECRET-7" }
"#,
        )
        .unwrap();
        let job = Job::load(&file).unwrap();
        let text = describe(&job).unwrap();
        assert!(!text.contains("SECRET"), "a secret is printed:\n{text}");
        for want in [
            "source: kafka, topics orders, starting at latest",
            "bootstrap.servers = \"b:9092\"",
            "sasl.password = ***",
            "SASL.Password = ***",
            "\n  watermark column: `event_time`\n",
            "watermark: `event_time`, 10 minutes behind the latest event time seen",
            "operator[0]: aggregate by window(event_time, 5 minutes), user_id: sum(amount) as total",
            "  in:    user_id string, amount double, event_time timestamp",
            "  out:   window_start timestamp NOT NULL, window_end timestamp NOT NULL, user_id string, total double",
            "  state: one row per group and window, dropped once the watermark passes the window's end",
            "output \"k\": kafka topic \"out\"",
            "trigger: a batch every 1 second",
            "admin API: 127.0.0.1:7070, token: the job file's [admin].token (not shown)",
            "uploads up to 64 MiB",
            "listener[0] http://127.0.0.1:9000/hooks/weir: progress, terminated; headers Authorization (values not shown); 3 retries, 10 seconds per attempt, up to 1000 events queued",
        ] {
            assert!(text.contains(want), "want {want:?} in:\n{text}");
        }
        assert!(!text.contains("Some("), "a debug dump:\n{text}");
        assert!(!format!("{job:?}").contains("tok-SECRET"), "a debug print of the job shows the admin token");
        assert!(!format!("{job:?}").contains("SECRET-8"), "a debug print of the job shows a listener's header");
    }
}
