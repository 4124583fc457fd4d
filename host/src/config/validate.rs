use std::path::{Path, PathBuf};

use super::spec::{
    AggregateCallSpec, AggregateSpec, FileSourceSpec, JobSpec, JoinOperatorSpec, KafkaSourceSpec, OperatorSpec,
    OutputFormatSpec, PluginOperatorSpec, PluginSpec, SinkFormatSpec, SinkSpec, SourceCommonSpec, SourceFormatSpec,
    SourceSpec, SourcesSpec, TriggerSpec, WindowSpec, NOT_FOR_A_STATIC_TABLE,
};
use super::tagged::Reader;
use super::units::{parse_duration, parse_signed_duration, parse_size};
use super::*;
use crate::schema::parse_ddl;

/// Reads, parses and validates a job file.
pub fn load_job(file: &Path) -> Result<Job, JobError> {
    let text = std::fs::read_to_string(file).map_err(|source| JobError::Read { file: file.to_path_buf(), source })?;
    parse_job(file, &text)
}

/// Parses and validates job text; `file` is used for messages only.
pub fn parse_job(file: &Path, text: &str) -> Result<Job, JobError> {
    // Kinds and formats first: a mistyped one explains the fields it does not take.
    super::kinds::check(file, text)?;
    let spec = JobSpec::parse(&Reader { file, text })?;
    let v = Validator { file };
    v.job(spec)
}

struct Validator<'a> {
    file: &'a Path,
}

impl Validator<'_> {
    fn err(&self, field: &str, message: impl Into<String>) -> JobError {
        JobError::Field { file: self.file.to_path_buf(), field: field.to_string(), message: message.into() }
    }

    fn job(&self, job: JobSpec) -> Result<Job, JobError> {
        let spec = job.settings;
        let (sources, tables) = self.sources(&job.source, spec.watermark.is_some())?;
        let policy = match spec.multiple_watermark_policy.as_deref() {
            None | Some("min") => MultipleWatermarkPolicy::Min,
            Some("max") => MultipleWatermarkPolicy::Max,
            Some(other) => {
                return Err(self.err(
                    "multiple_watermark_policy",
                    format!("unknown policy {other:?}; allowed: \"min\" (the slowest source's watermark, Spark's default), \"max\" (the fastest source's)"),
                ))
            }
        };
        let watermark = match &spec.watermark {
            Some(w) => {
                if w.column.trim().is_empty() {
                    return Err(self.err("watermark.column", "is empty: name the source's event-time column"));
                }
                let delay = parse_duration(&w.delay).map_err(|e| self.err("watermark.delay", e))?;
                let late_rows = match w.late_rows.as_deref() {
                    None | Some("drop") => LateRows::Drop,
                    Some("dead_letter") => LateRows::DeadLetter,
                    Some(other) => {
                        return Err(self.err(
                            "watermark.late_rows",
                            format!("unknown value {other:?}; allowed: \"drop\", \"dead_letter\""),
                        ))
                    }
                };
                Some(WatermarkConfig { column: w.column.clone(), delay, policy, late_rows })
            }
            // Each source's own watermark (watermark_column and watermark_delay on every stream):
            // the first one's stands for the job's, the others keep theirs.
            None => match sources.iter().find(|s| s.watermark_column.is_none() || s.watermark_delay.is_none()) {
                Some(without) if sources.iter().any(|s| s.watermark_column.is_some()) => {
                    return Err(self.err(
                        &without.field,
                        format!("has no watermark while another source has its own: without a [watermark], give every streaming source watermark_column and watermark_delay, or add a [watermark] for {} to use", without.label()),
                    ))
                }
                Some(_) => None,
                None => Some(WatermarkConfig {
                    column: sources[0].watermark_column.clone().expect("checked: every source has one"),
                    delay: sources[0].watermark_delay.expect("checked: every source has one"),
                    policy,
                    late_rows: LateRows::Drop,
                }),
            },
        };
        let operators =
            job.operators.iter().enumerate().map(|(i, op)| self.operator(i, op)).collect::<Result<Vec<_>, _>>()?;
        self.joined_sources(&operators, &sources, &tables)?;
        let (sink, checkpoint, trigger) = self.sink(&job.sink)?;
        let name =
            spec.name.unwrap_or_else(|| self.file.file_stem().and_then(|s| s.to_str()).unwrap_or("job").to_string());
        let dead_letter = spec.dead_letter_path.map(PathBuf::from);
        let state_store = match spec.state_store.as_deref() {
            None | Some("memory") => StateStoreKind::Memory,
            Some("rocksdb") if crate::features::ROCKSDB => StateStoreKind::RocksDb,
            Some("rocksdb") => return Err(self.err("state_store", crate::features::not_built("rocksdb"))),
            Some(other) => {
                return Err(
                    self.err("state_store", format!("unknown provider {other:?}; allowed: \"memory\", \"rocksdb\""))
                )
            }
        };
        let min_batches_to_retain = self.positive("min_batches_to_retain", spec.min_batches_to_retain)?.unwrap_or(100);
        let scaled_out =
            sources.iter().any(|i| matches!(&i.source, SourceConfig::Kafka(k) if k.consumer_group.is_some()));
        if scaled_out {
            if sources.len() > 1 {
                return Err(self.err("source", "a kafka source with consumer_group must be the job's only source (each process runs one task per partition of its topic)"));
            }
            if !matches!(trigger, Trigger::ProcessingTime(_)) {
                return Err(self.err(
                    "sink.trigger",
                    "a job that scales out (source.consumer_group) runs micro-batches until stopped: use trigger = { processing_time = \"...\" }, not once, available_now or continuous",
                ));
            }
        }
        let admin = match &spec.admin {
            None => None,
            Some(a) => Some(self.admin(&a.listen, a.token.clone(), a.probation_batches, a.max_upload.as_deref())?),
        };
        let listeners = spec
            .listeners
            .iter()
            .enumerate()
            .map(|(i, l)| super::listener::listener(&format!("listener[{i}]"), l).map_err(|(f, m)| self.err(&f, m)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Job {
            file: self.file.to_path_buf(),
            name,
            sources,
            tables,
            watermark,
            operators,
            sink,
            checkpoint,
            trigger,
            on_bad_record: spec.on_bad_record,
            dead_letter,
            state_store,
            min_batches_to_retain,
            admin,
            listeners,
        })
    }

    fn admin(
        &self,
        listen: &str,
        token: Option<String>,
        probation: Option<i64>,
        max_upload: Option<&str>,
    ) -> Result<AdminConfig, JobError> {
        let listen: std::net::SocketAddr = listen.parse().map_err(|_| {
            self.err("admin.listen", format!("{listen:?} is not an address: write host:port, e.g. \"127.0.0.1:7070\""))
        })?;
        if !listen.ip().is_loopback() && token.as_deref().is_none_or(|t| t.trim().is_empty()) {
            return Err(self.err(
                "admin.token",
                format!("is required when the admin API listens on {listen} (not a loopback address): set a bearer token, or listen on 127.0.0.1"),
            ));
        }
        let probation_batches = self.positive("admin.probation_batches", probation)?.unwrap_or(10);
        let max_upload = match max_upload {
            None => super::DEFAULT_MAX_UPLOAD,
            Some(m) => match parse_size(m).map_err(|e| self.err("admin.max_upload", e))? {
                0 => return Err(self.err("admin.max_upload", "must be more than zero")),
                n => n as u64,
            },
        };
        Ok(AdminConfig { listen, token, probation_batches, max_upload })
    }

    fn positive(&self, field: &str, value: Option<i64>) -> Result<Option<u64>, JobError> {
        match value {
            None => Ok(None),
            Some(n) if n > 0 => Ok(Some(n as u64)),
            Some(n) => Err(self.err(field, format!("must be a positive whole number, got {n}"))),
        }
    }

    /// Refuses options that the chosen format does not read, so they are not silently ignored.
    fn only_for(&self, present: &[(&str, bool)], format: &str) -> Result<(), JobError> {
        match present.iter().find(|(_, p)| *p) {
            Some((field, _)) => {
                let what = if field.starts_with("operator[") { "kind" } else { "format" };
                Err(self.err(field, format!("does not apply to {what} = \"{format}\"; remove it")))
            }
            None => Ok(()),
        }
    }

    /// One `[source]`, or several `[[source]]` with unique names: the streams, then the static
    /// tables (`static = true`). Names are unique across both; a job needs one stream at least.
    fn sources(
        &self,
        spec: &SourcesSpec,
        has_watermark: bool,
    ) -> Result<(Vec<InputConfig>, Vec<TableConfig>), JobError> {
        let specs: Vec<(String, &SourceSpec)> = match spec {
            SourcesSpec::One(s) => vec![("source".to_string(), s)],
            SourcesSpec::Many(list) => list.iter().enumerate().map(|(i, s)| (format!("source[{i}]"), s)).collect(),
        };
        if specs.is_empty() {
            return Err(self.err("source", "is empty: declare at least one [[source]] (or one [source])"));
        }
        let several = specs.len() > 1;
        let mut inputs: Vec<InputConfig> = Vec::with_capacity(specs.len());
        let mut tables: Vec<TableConfig> = Vec::new();
        // (name, field) of every source so far, static or not.
        let mut names: Vec<(String, String)> = Vec::new();
        for (at, s) in specs {
            let SourceSpec { common, format } = s;
            let name = match &common.name {
                Some(n) if n.trim().is_empty() => {
                    return Err(self.err(&format!("{at}.name"), "is empty: name the source, e.g. name = \"orders\""))
                }
                Some(n) => {
                    if let Some((_, other)) = names.iter().find(|(m, _)| m == n) {
                        return Err(self.err(
                            &format!("{at}.name"),
                            format!("{n:?} is already the name of {other}; each source needs its own name"),
                        ));
                    }
                    names.push((n.clone(), at.clone()));
                    Some(n.clone())
                }
                None if several => {
                    return Err(self.err(
                        &format!("{at}.name"),
                        "is required when the job has several sources: it keys the source's offsets and watermark in the checkpoint, e.g. name = \"orders\"",
                    ))
                }
                None => None,
            };
            if let SourceFormatSpec::Files(format, f) = format {
                if f.is_static == Some(true) {
                    tables.push(self.table(&at, common, *format, f, name)?);
                    continue;
                }
            }
            if let SourceFormatSpec::Files(_, FileSourceSpec { refresh: Some(_), .. }) = format {
                return Err(self.err(
                    &format!("{at}.refresh"),
                    "applies only to a static table (static = true), which is re-read when its files change; a stream reads new files as they come: remove it",
                ));
            }
            // Without a [watermark], a source may have its own: both its column and its delay
            // (Spark's withWatermark on each stream, as a stream-stream join needs).
            let own = common.watermark_delay.is_some() && common.watermark_column.is_some();
            let watermark_delay = match &common.watermark_delay {
                Some(_) if !has_watermark && !own => {
                    return Err(self.err(
                        &format!("{at}.watermark_delay"),
                        "needs a [watermark] (it overrides [watermark].delay for this source), or a watermark_column beside it (this source's own watermark); add [watermark] column = ..., delay = ..., or watermark_column = ..., or remove it",
                    ))
                }
                Some(d) => Some(parse_duration(d).map_err(|e| self.err(&format!("{at}.watermark_delay"), e))?),
                None => None,
            };
            let watermark_column = match &common.watermark_column {
                Some(_) if !has_watermark && !own => {
                    return Err(self.err(
                        &format!("{at}.watermark_column"),
                        "needs a [watermark] (it overrides [watermark].column for this source), or a watermark_delay beside it (this source's own watermark); add [watermark] column = ..., delay = ..., or watermark_delay = ..., or remove it",
                    ))
                }
                Some(c) if c.trim().is_empty() => {
                    return Err(self.err(&format!("{at}.watermark_column"), "is empty: name this source's event-time column"))
                }
                Some(c) => Some(c.clone()),
                None => None,
            };
            let source = self.source(&at, format)?;
            inputs.push(InputConfig { name, field: at, source, watermark_delay, watermark_column });
        }
        if inputs.is_empty() {
            return Err(self.err(
                "source",
                "has only static tables: a job needs at least one streaming source (a [[source]] without static = true) for the tables to be joined to",
            ));
        }
        Ok((inputs, tables))
    }

    /// A static table: `[[source]]` with `static = true`, read from files (its format was
    /// checked by `kinds`). What only a stream has is refused, named (the fields of other
    /// formats are refused as they are read).
    fn table(
        &self,
        at: &str,
        common: &SourceCommonSpec,
        format: FileFormat,
        s: &FileSourceSpec,
        name: Option<String>,
    ) -> Result<TableConfig, JobError> {
        let f = |name: &str| format!("{at}.{name}");
        let streaming_only = [
            ("max_files_per_trigger", s.max_files_per_trigger.is_some()),
            ("watermark_delay", common.watermark_delay.is_some()),
            ("watermark_column", common.watermark_column.is_some()),
        ];
        if let Some((field, _)) = streaming_only.iter().find(|(_, present)| *present) {
            return Err(self.err(&f(field), NOT_FOR_A_STATIC_TABLE));
        }
        let name = name.ok_or_else(|| {
            self.err(&f("name"), "is required for a static table: a join names the table by it, e.g. name = \"users\"")
        })?;
        if format != FileFormat::Csv {
            self.only_for(
                &[(&f("header"), s.header.is_some()), (&f("delimiter"), s.delimiter.is_some())],
                format.extension(),
            )?;
        }
        let path = s.path.as_ref().ok_or_else(|| {
            self.err(&f("path"), "is required for a static table: the directory whose files are read as the table")
        })?;
        let schema = match &s.schema {
            Some(ddl) => Some(parse_ddl(ddl).map_err(|e| self.err(&f("schema"), e.to_string()))?),
            None if format == FileFormat::Parquet => None,
            None => {
                return Err(self.err(
                    &f("schema"),
                    format!(
                        "is required for a static table of format = \"{}\": declare the columns in Spark DDL, e.g. \"user_id string, country string\"",
                        format.extension()
                    ),
                ))
            }
        };
        let csv = self.csv_options(at, s)?;
        let refresh = match s.refresh.as_deref() {
            None | Some("on_change") => Refresh::OnChange,
            Some("never") => Refresh::Never,
            Some(interval) => {
                let d = parse_duration(interval).map_err(|e| {
                    self.err(
                        &f("refresh"),
                        format!(
                            "must be \"never\", \"on_change\" (the default) or an interval like \"10 minutes\"; {e}"
                        ),
                    )
                })?;
                if d.is_zero() {
                    return Err(self.err(
                        &f("refresh"),
                        "must be more than zero; use \"on_change\" to look for changed files at every batch",
                    ));
                }
                Refresh::Every(d)
            }
        };
        Ok(TableConfig { name, field: at.to_string(), path: PathBuf::from(path), format, schema, csv, refresh })
    }

    /// `header` and `delimiter` of a csv file source or static table.
    fn csv_options(&self, at: &str, s: &FileSourceSpec) -> Result<CsvOptions, JobError> {
        let mut csv = CsvOptions::default();
        if let Some(h) = s.header {
            csv.header = h;
        }
        if let Some(d) = &s.delimiter {
            let bytes = d.as_bytes();
            if bytes.len() != 1 || bytes[0] == b'"' || bytes[0] == b'\n' || bytes[0] == b'\r' {
                return Err(self.err(
                    &format!("{at}.delimiter"),
                    format!("must be one ASCII character other than a quote or newline, got {d:?}"),
                ));
            }
            csv.delimiter = bytes[0];
        }
        Ok(csv)
    }

    /// The `kafka` table: librdkafka settings as strings; `bootstrap.servers` is required.
    fn kafka_client(
        &self,
        at: &str,
        table: Option<&std::collections::BTreeMap<String, toml::Value>>,
    ) -> Result<std::collections::BTreeMap<String, String>, JobError> {
        let mut client = std::collections::BTreeMap::new();
        for (k, v) in table.into_iter().flatten() {
            let v = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Float(x) => x.to_string(),
                other => {
                    return Err(self.err(
                        &format!("{at}.kafka.{k}"),
                        format!("{other} is not a librdkafka setting value; use a string, number or boolean"),
                    ))
                }
            };
            client.insert(k.clone(), v);
        }
        if !client.contains_key("bootstrap.servers") {
            return Err(self.err(
                &format!("{at}.kafka"),
                "needs \"bootstrap.servers\": the brokers to connect to, e.g. kafka = { \"bootstrap.servers\" = \"127.0.0.1:9092\" }",
            ));
        }
        Ok(client)
    }

    fn kafka_timeout(&self, at: &str, t: Option<&str>) -> Result<Duration, JobError> {
        match t {
            Some(t) => {
                let d = parse_duration(t).map_err(|e| self.err(&format!("{at}.kafka_timeout"), e))?;
                if d.is_zero() {
                    return Err(self.err(&format!("{at}.kafka_timeout"), "must be more than zero"));
                }
                Ok(d)
            }
            None => Ok(Duration::from_secs(30)),
        }
    }

    fn kafka_source(&self, at: &str, s: &KafkaSourceSpec) -> Result<SourceConfig, JobError> {
        let f = |name: &str| format!("{at}.{name}");
        if !crate::features::KAFKA {
            return Err(self.err(&f("format"), crate::features::not_built("kafka")));
        }
        let topics = match (&s.subscribe, &s.subscribe_pattern, &s.assign) {
            (Some(list), None, None) => {
                if list.is_empty() || list.iter().any(|t| t.trim().is_empty()) {
                    return Err(self.err(&f("subscribe"), "must list one or more topic names, e.g. [\"orders\"]"));
                }
                KafkaTopics::Subscribe(list.clone())
            }
            (None, Some(p), None) => {
                regex::Regex::new(p)
                    .map_err(|e| self.err(&f("subscribe_pattern"), format!("is not a valid regular expression: {e}")))?;
                KafkaTopics::Pattern(p.clone())
            }
            (None, None, Some(a)) => {
                if a.is_empty() {
                    return Err(self.err(&f("assign"), "must name one or more topics, e.g. { orders = [0, 1] }"));
                }
                let mut out = std::collections::BTreeMap::new();
                for (t, parts) in a {
                    if parts.is_empty() || parts.iter().any(|&p| !(0..=i32::MAX as i64).contains(&p)) {
                        return Err(self.err(
                            &f("assign"),
                            format!("topic {t:?}: list its partitions as numbers from 0, e.g. [0, 1]"),
                        ));
                    }
                    out.insert(t.clone(), parts.iter().map(|&p| p as i32).collect());
                }
                KafkaTopics::Assign(out)
            }
            _ => {
                return Err(self.err(
                    &f("subscribe"),
                    "set exactly one of subscribe = [\"topic\", ...], subscribe_pattern = \"regex\" or assign = { topic = [partitions] } (Spark's subscribe, subscribePattern, assign)",
                ))
            }
        };
        let starting_offsets = match &s.starting_offsets {
            None => StartingOffsets::Latest,
            Some(toml::Value::String(v)) if v == "earliest" => StartingOffsets::Earliest,
            Some(toml::Value::String(v)) if v == "latest" => StartingOffsets::Latest,
            Some(toml::Value::Table(t)) => {
                let mut out = std::collections::BTreeMap::new();
                for (topic, parts) in t {
                    let toml::Value::Table(parts) = parts else {
                        return Err(self.err(&f("starting_offsets"), format!("topic {topic:?}: give a table of partition = offset, e.g. {{ \"0\" = 23, \"1\" = -2 }}")));
                    };
                    let mut offsets = std::collections::BTreeMap::new();
                    for (p, o) in parts {
                        let (Ok(p), Some(o)) = (p.parse::<i32>(), o.as_integer()) else {
                            return Err(self.err(&f("starting_offsets"), format!("topic {topic:?}: partition {p:?} = {o}: partitions are numbers, offsets are numbers (-2: earliest, -1: latest)")));
                        };
                        if o < -2 {
                            return Err(self.err(&f("starting_offsets"), format!("topic {topic:?} partition {p}: offset {o} is not an offset (-2: earliest, -1: latest)")));
                        }
                        offsets.insert(p, o);
                    }
                    out.insert(topic.clone(), offsets);
                }
                StartingOffsets::Specific(out)
            }
            Some(other) => {
                return Err(self.err(
                    &f("starting_offsets"),
                    format!("{other} is not allowed; use \"earliest\", \"latest\" or {{ topic = {{ \"0\" = 23 }} }}"),
                ))
            }
        };
        let client = self.kafka_client(at, s.kafka.as_ref())?;
        let value = match (&s.value_format, &s.schema) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(self.err(
                    &f("schema"),
                    "applies to the decoded value of a kafka source: set value_format = \"json\" (or \"csv\") to decode `value` into these columns, or remove it",
                ))
            }
            (Some(_), None) => {
                return Err(self.err(&f("schema"), "is required with value_format: the columns of the decoded value, in Spark DDL"))
            }
            (Some(fmt), Some(ddl)) => {
                let format = match fmt.as_str() {
                    "json" => KafkaValueFormat::Json,
                    "csv" => KafkaValueFormat::Csv,
                    other => {
                        return Err(self.err(&f("value_format"), format!("unknown format {other:?}; allowed: \"json\", \"csv\"")))
                    }
                };
                let schema = parse_ddl(ddl).map_err(|e| self.err(&f("schema"), e.to_string()))?;
                let mut csv = CsvOptions { header: false, ..CsvOptions::default() };
                if let Some(d) = &s.delimiter {
                    let bytes = d.as_bytes();
                    if bytes.len() != 1 || bytes[0] == b'"' || bytes[0] == b'\n' || bytes[0] == b'\r' {
                        return Err(self.err(&f("delimiter"), format!("must be one ASCII character other than a quote or newline, got {d:?}")));
                    }
                    csv.delimiter = bytes[0];
                }
                Some(KafkaValue { format, schema, csv })
            }
        };
        if s.delimiter.is_some() && value.as_ref().map(|v| v.format) != Some(KafkaValueFormat::Csv) {
            return Err(self.err(&f("delimiter"), "applies only with value_format = \"csv\"; remove it"));
        }
        let timeout = self.kafka_timeout(at, s.kafka_timeout.as_deref())?;
        let consumer_group = match &s.consumer_group {
            None => None,
            Some(g) if g.trim().is_empty() => return Err(self.err(&f("consumer_group"), "must not be empty")),
            Some(_) if !matches!(&topics, KafkaTopics::Subscribe(t) if t.len() == 1) => {
                return Err(self.err(
                    &f("consumer_group"),
                    "needs subscribe = [\"one-topic\"]: scale-out shares one topic's partitions between processes (its tasks are keyed by partition number)",
                ))
            }
            Some(g) => Some(g.clone()),
        };
        Ok(SourceConfig::Kafka(KafkaSourceConfig {
            topics,
            starting_offsets,
            max_offsets_per_trigger: self.positive(&f("max_offsets_per_trigger"), s.max_offsets_per_trigger)?,
            client,
            value,
            include_headers: s.include_headers.unwrap_or(false),
            fail_on_data_loss: s.fail_on_data_loss.unwrap_or(true),
            wait_for_topics: s.wait_for_topics.unwrap_or(false),
            timeout,
            consumer_group,
        }))
    }

    fn source(&self, at: &str, s: &SourceFormatSpec) -> Result<SourceConfig, JobError> {
        let f = |name: &str| format!("{at}.{name}");
        let (format, s) = match s {
            SourceFormatSpec::Kafka(k) => return self.kafka_source(at, k),
            SourceFormatSpec::Rate(r) => {
                let rows_per_second = self.positive(&f("rows_per_second"), r.rows_per_second)?.unwrap_or(1);
                let num_partitions = self.positive(&f("num_partitions"), r.num_partitions)?.unwrap_or(1);
                if num_partitions > 1024 {
                    return Err(self.err(&f("num_partitions"), "must be at most 1024"));
                }
                return Ok(SourceConfig::Rate(RateSourceConfig {
                    rows_per_second,
                    num_partitions: num_partitions as u32,
                }));
            }
            SourceFormatSpec::Files(format, s) => (*format, s),
        };
        if format != FileFormat::Csv {
            self.only_for(
                &[(&f("header"), s.header.is_some()), (&f("delimiter"), s.delimiter.is_some())],
                format.extension(),
            )?;
        }
        let path = s.path.as_ref().ok_or_else(|| {
            self.err(
                &f("path"),
                format!("is required for format = \"{}\": the directory to watch for new files", format.extension()),
            )
        })?;
        let schema = match &s.schema {
            Some(ddl) => Some(parse_ddl(ddl).map_err(|e| self.err(&f("schema"), e.to_string()))?),
            None if format == FileFormat::Parquet => None,
            None => {
                return Err(self.err(&f("schema"),
                    format!(
                        "is required for format = \"{}\": declare the columns in Spark DDL, e.g. \"event_id string, amount double, event_time timestamp\"",
                        format.extension()
                    ),
                ))
            }
        };
        let csv = self.csv_options(at, s)?;
        let max_files_per_trigger =
            self.positive(&f("max_files_per_trigger"), s.max_files_per_trigger)?.map(|n| n as usize);
        Ok(SourceConfig::Files(FileSourceConfig {
            path: PathBuf::from(path),
            format,
            schema,
            max_files_per_trigger,
            csv,
        }))
    }

    fn operator(&self, index: usize, op: &OperatorSpec) -> Result<OperatorConfig, JobError> {
        let field = |name: &str| format!("operator[{index}].{name}");
        match op {
            OperatorSpec::Aggregate(a) => self.aggregate(index, a),
            OperatorSpec::Dedup(d) => {
                let keys = d.keys.clone().unwrap_or_default();
                if keys.is_empty() {
                    return Err(self.err(&field("keys"), "is required for kind = \"dedup\": the columns that identify a duplicate, e.g. [\"event_id\", \"event_time\"]"));
                }
                let within_watermark = d.within_watermark.unwrap_or(false);
                Ok(OperatorConfig::Dedup(DedupConfig { index, keys, within_watermark }))
            }
            OperatorSpec::Map(p, o) => Ok(OperatorConfig::Map(self.plugin(index, "map", p, o, "mapper")?)),
            OperatorSpec::Stateful(p, o, s) => {
                let group_by = s.group_by.clone().unwrap_or_default();
                if group_by.is_empty() {
                    return Err(self.err(&field("group_by"), "is required for kind = \"stateful\": the key columns whose rows share one state, e.g. [\"user_id\"]"));
                }
                for (i, col) in group_by.iter().enumerate() {
                    if group_by[..i].contains(col) {
                        return Err(self.err(&field("group_by"), format!("column `{col}` is listed twice")));
                    }
                }
                let timeout = match s.timeout.as_deref().unwrap_or("none") {
                    "none" => TimeoutMode::None,
                    "processing_time" => TimeoutMode::ProcessingTime,
                    "event_time" => TimeoutMode::EventTime,
                    other => {
                        return Err(self.err(
                            &field("timeout"),
                            format!("unknown timeout {other:?}; allowed: \"none\", \"processing_time\", \"event_time\" (Spark's GroupStateTimeout)"),
                        ))
                    }
                };
                let plugin = self.plugin(index, "stateful", p, o, "stateful")?;
                Ok(OperatorConfig::Stateful(StatefulConfig { plugin, group_by, timeout }))
            }
            OperatorSpec::Join(j) => self.join(index, j),
        }
    }

    /// A `join` as written: its other input (checked against the sources by `joined_sources`),
    /// type, keys, prefixes and time range.
    fn join(&self, index: usize, op: &JoinOperatorSpec) -> Result<OperatorConfig, JobError> {
        let field = |name: &str| format!("operator[{index}].{name}");
        let (other, other_side) = match (&op.left, &op.right) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    &field("left"),
                    "set only one of left and right: the other input, by its source name (the stream so far is the other side)",
                ))
            }
            (Some(n), None) => (n, Side::Left),
            (None, Some(n)) => (n, Side::Right),
            (None, None) => {
                return Err(self.err(
                    &field("right"),
                    "is required for kind = \"join\": the source to join, by name, e.g. right = \"users\" (a static table or another stream; the stream so far is the other side), or left = \"...\" to put it on the left",
                ))
            }
        };
        if other.trim().is_empty() {
            return Err(self.err(&field(other_side.as_str()), "is empty: name the source to join, e.g. \"users\""));
        }
        let join_type = match op.join_type.as_deref() {
            None => JoinType::Inner,
            Some(t) => JoinType::parse(t).map_err(|e| self.err(&field("type"), e))?,
        };
        let keys = self.join_keys(index, op.on.as_ref())?;
        let prefix = |name: &str, p: &Option<String>| -> Result<Option<String>, JobError> {
            match p {
                Some(p) if p.is_empty() => {
                    Err(self.err(&field(name), "is empty: give a prefix such as \"user_\", or remove it"))
                }
                p => Ok(p.clone()),
            }
        };
        let left_prefix = prefix("left_prefix", &op.left_prefix)?;
        let right_prefix = prefix("right_prefix", &op.right_prefix)?;
        let time_range = match &op.time_range {
            None => None,
            Some(t) => {
                let required = |name: &str, v: &Option<String>, what: &str| -> Result<String, JobError> {
                    match v {
                        None => Err(self.err(
                            &field(&format!("time_range.{name}")),
                            format!("is required: {what}; time_range = {{ left = \"click_time\", right = \"impression_time\", from = \"0 seconds\", to = \"1 hour\" }} means right + from <= left <= right + to"),
                        )),
                        Some(v) if v.trim().is_empty() => {
                            Err(self.err(&field(&format!("time_range.{name}")), format!("is empty: {what}")))
                        }
                        Some(v) => Ok(v.clone()),
                    }
                };
                let left = required("left", &t.left, "the left side's event-time column")?;
                let right = required("right", &t.right, "the right side's event-time column")?;
                let bound = |name: &str, v: &Option<String>| -> Result<i64, JobError> {
                    let text = required(name, v, "a duration, which may be negative, e.g. \"-5 minutes\"")?;
                    parse_signed_duration(&text).map_err(|e| {
                        self.err(
                            &field(&format!("time_range.{name}")),
                            format!("{e} (a bound may be negative: \"-5 minutes\")"),
                        )
                    })
                };
                let from_micros = bound("from", &t.from)?;
                let to_micros = bound("to", &t.to)?;
                if from_micros > to_micros {
                    return Err(self.err(
                        &field("time_range"),
                        format!(
                            "from ({}) is after to ({}): no pair of rows could match right + from <= left <= right + to; swap them",
                            t.from.as_deref().unwrap_or_default().trim(),
                            t.to.as_deref().unwrap_or_default().trim()
                        ),
                    ));
                }
                Some(TimeRange { left, right, from_micros, to_micros })
            }
        };
        let window = match &op.window {
            None => None,
            Some(w) => {
                let example = "window = { left = \"click_time\", right = \"impression_time\", size = \"10 minutes\" } windows both sides on the same tumbling window and joins rows of the same window";
                let required = |name: &str, v: &Option<String>, what: &str| -> Result<String, JobError> {
                    match v {
                        None => {
                            Err(self.err(&field(&format!("window.{name}")), format!("is required: {what}; {example}")))
                        }
                        Some(v) if v.trim().is_empty() => {
                            Err(self.err(&field(&format!("window.{name}")), format!("is empty: {what}")))
                        }
                        Some(v) => Ok(v.clone()),
                    }
                };
                let left = required("left", &w.left, "the left side's event-time column")?;
                let right = required("right", &w.right, "the right side's event-time column")?;
                let size = required("size", &w.size, "the window's length, e.g. \"10 minutes\"")?;
                let size = parse_duration(&size).map_err(|e| self.err(&field("window.size"), e))?;
                if size.is_zero() {
                    return Err(self.err(&field("window.size"), "must be more than zero, e.g. \"10 minutes\""));
                }
                Some(JoinWindow { left, right, size_micros: size.as_micros() as i64 })
            }
        };
        Ok(OperatorConfig::Join(JoinConfig {
            index,
            other: other.clone(),
            other_side,
            spec: JoinSpec { join_type, keys, left_prefix, right_prefix },
            time_range,
            window,
        }))
    }

    /// `on`: column names (the same on both sides) or `{ left, right }` pairs, not both.
    fn join_keys(&self, index: usize, on: Option<&toml::Value>) -> Result<JoinKeys, JobError> {
        let field = |name: &str| format!("operator[{index}].{name}");
        const FORMS: &str =
            "on = [\"user_id\"] (the same name on both sides) or on = [{ left = \"uid\", right = \"id\" }]";
        let list = match on {
            None => {
                return Err(
                    self.err(&field("on"), format!("is required for kind = \"join\": the equi-join keys, {FORMS}"))
                )
            }
            Some(toml::Value::Array(list)) if list.is_empty() => {
                return Err(self.err(&field("on"), format!("is empty: list the equi-join keys, {FORMS}")))
            }
            Some(toml::Value::Array(list)) => list,
            Some(other) => return Err(self.err(&field("on"), format!("{other} is not a list of keys; write {FORMS}"))),
        };
        if list.iter().any(toml::Value::is_str) && list.iter().any(toml::Value::is_table) {
            return Err(self.err(
                &field("on"),
                "mixes column names and { left, right } pairs; use one form: all names (the same on both sides) or all pairs",
            ));
        }
        let mut names: Vec<String> = Vec::new();
        let mut pairs: Vec<KeyPair> = Vec::new();
        for (n, key) in list.iter().enumerate() {
            let at = field(&format!("on[{n}]"));
            match key {
                toml::Value::String(name) => {
                    if name.trim().is_empty() {
                        return Err(self.err(&at, "is empty: name a column"));
                    }
                    if names.contains(name) {
                        return Err(self.err(&field("on"), format!("column `{name}` is listed twice")));
                    }
                    names.push(name.clone());
                }
                toml::Value::Table(t) => {
                    if let Some(k) = t.keys().find(|k| *k != "left" && *k != "right") {
                        return Err(self.err(
                            &format!("{at}.{k}"),
                            "is not a field of a key pair; write { left = \"uid\", right = \"id\" }",
                        ));
                    }
                    let side = |s: &str| -> Result<String, JobError> {
                        match t.get(s) {
                            Some(toml::Value::String(c)) if !c.trim().is_empty() => Ok(c.clone()),
                            Some(toml::Value::String(_)) => Err(self.err(&format!("{at}.{s}"), "is empty: name a column")),
                            Some(v) => Err(self.err(&format!("{at}.{s}"), format!("{v} is not a column name; write a string"))),
                            None => Err(self.err(
                                &format!("{at}.{s}"),
                                format!("is required in a key pair: the {s} side's column, e.g. {{ left = \"uid\", right = \"id\" }}"),
                            )),
                        }
                    };
                    let pair = KeyPair { left: side("left")?, right: side("right")? };
                    if pairs.contains(&pair) {
                        return Err(self.err(
                            &field("on"),
                            format!("the pair {{ left = {:?}, right = {:?} }} is listed twice", pair.left, pair.right),
                        ));
                    }
                    pairs.push(pair);
                }
                other => {
                    return Err(self.err(
                        &at,
                        format!("{other} is not a key; write a column name such as \"user_id\" or a pair {{ left = \"uid\", right = \"id\" }}"),
                    ))
                }
            }
        }
        Ok(if pairs.is_empty() { JoinKeys::Using(names) } else { JoinKeys::Pairs(pairs) })
    }

    /// What a join's other input may be: a source the job names — a static table, or a stream
    /// that is then not unioned into the stream so far — joined once, with at least one stream
    /// left for the other side; a time range only between two streams.
    fn joined_sources(
        &self,
        operators: &[OperatorConfig],
        sources: &[InputConfig],
        tables: &[TableConfig],
    ) -> Result<(), JobError> {
        let streams_joined = |upto: usize| {
            operators[..upto].iter().filter(|o| matches!(o, OperatorConfig::Join(j) if sources.iter().any(|s| s.name.as_deref() == Some(j.other.as_str())))).count()
        };
        for (at, op) in operators.iter().enumerate() {
            let OperatorConfig::Join(j) = op else { continue };
            let field = format!("operator[{}].{}", j.index, j.other_side);
            if let Some(first) = operators[..at].iter().find_map(|o| match o {
                OperatorConfig::Join(k) if k.other == j.other => Some(k.index),
                _ => None,
            }) {
                return Err(self.err(
                    &field,
                    format!("source {:?} is already joined by operator[{first}]; a source can be joined once (from there on its columns are in the stream)", j.other),
                ));
            }
            let is_table = tables.iter().any(|t| t.name == j.other);
            let is_stream = sources.iter().any(|s| s.name.as_deref() == Some(j.other.as_str()));
            if !is_table && !is_stream {
                let known: Vec<String> = sources
                    .iter()
                    .filter_map(|s| s.name.as_ref())
                    .chain(tables.iter().map(|t| &t.name))
                    .map(|n| format!("{n:?}"))
                    .collect();
                let known = if known.is_empty() {
                    "the job names no source (give each [[source]] a name)".to_string()
                } else {
                    format!("the sources are {}", known.join(", "))
                };
                return Err(self.err(&field, format!("no source is named {:?}; {known}", j.other)));
            }
            if is_stream && streams_joined(at + 1) >= sources.len() {
                return Err(self.err(
                    &field,
                    format!(
                        "source {:?} is the last streaming source no join names: joining it leaves no stream for the other side of this join (the stream so far comes from the streaming sources no join names); add another streaming [[source]], or join a static table (static = true)",
                        j.other
                    ),
                ));
            }
            if is_table && j.time_range.is_some() {
                return Err(self.err(
                    &format!("operator[{}].time_range", j.index),
                    format!("applies only to a join of two streams: source {:?} is a static table, which has no event time; remove time_range", j.other),
                ));
            }
            if is_table && j.window.is_some() {
                return Err(self.err(
                    &format!("operator[{}].window", j.index),
                    format!("applies only to a join of two streams: source {:?} is a static table, which has no event time; remove window", j.other),
                ));
            }
        }
        // A table no join names would be read for nothing: most likely a join misnames it.
        if let Some(t) =
            tables.iter().find(|t| !operators.iter().any(|o| matches!(o, OperatorConfig::Join(j) if j.other == t.name)))
        {
            return Err(self.err(
                &t.field,
                format!("is a static table no join names: join it ([[operator]] kind = \"join\", right = {:?}, on = [...]) or remove it", t.name),
            ));
        }
        Ok(())
    }

    /// A plugin's limits and grants, from the table at `at` (`operator[i]` or `sink`);
    /// `max_emit_bytes` is a plugin sink's.
    fn limits(&self, at: &str, spec: &PluginSpec, max_emit_bytes: Option<&str>) -> Result<PluginLimits, JobError> {
        let PluginSpec { max_memory, max_call_time, grant, .. } = spec;
        let field = |name: &str| format!("{at}.{name}");
        let mut limits = PluginLimits::default();
        if let Some(m) = max_memory {
            limits.memory_bytes = parse_size(m).map_err(|e| self.err(&field("max_memory"), e))?;
        }
        if let Some(c) = max_call_time {
            limits.cpu_time_per_call = parse_duration(c).map_err(|e| self.err(&field("max_call_time"), e))?;
            if limits.cpu_time_per_call.is_zero() {
                return Err(self.err(&field("max_call_time"), "must be more than zero"));
            }
        }
        let size = |name: &str, v: Option<&str>| -> Result<Option<u64>, JobError> {
            match v {
                None => Ok(None),
                Some(text) => match parse_size(text) {
                    Ok(0) => Err(self.err(&field(name), "must be more than zero")),
                    Ok(n) => Ok(Some(n as u64)),
                    Err(e) => Err(self.err(&field(name), e)),
                },
            }
        };
        if let Some(n) = self.positive(&field("max_output_rows"), spec.max_output_rows)? {
            limits.output_rows = n;
        }
        if let Some(n) = size("max_output_bytes", spec.max_output_bytes.as_deref())? {
            limits.output_bytes = n;
        }
        if let Some(n) = size("max_emit_bytes", max_emit_bytes)? {
            limits.emit_bytes = n;
        }
        if let Some(n) = size("max_error_length", spec.max_error_length.as_deref())? {
            limits.error_bytes = n as usize;
        }
        if let Some(n) = size("max_component_size", spec.max_component_size.as_deref())? {
            limits.component_bytes = n;
        }
        if let Some(n) = spec.max_log_lines {
            if n < 0 {
                return Err(self.err(&field("max_log_lines"), format!("must be 0 (no plugin log) or more, got {n}")));
            }
            limits.log.lines_per_batch = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(c) = &spec.max_compile_time {
            limits.compile_time = parse_duration(c).map_err(|e| self.err(&field("max_compile_time"), e))?;
            if limits.compile_time.is_zero() {
                return Err(self.err(&field("max_compile_time"), "must be more than zero"));
            }
        }
        for g in grant.iter().flatten() {
            match g.as_str() {
                "clock" => limits.grant_clock = true,
                "random" => limits.grant_random = true,
                other => {
                    return Err(self.err(
                        &field("grant"),
                        format!("unknown grant {other:?}; allowed: \"clock\", \"random\" (files, network and the environment cannot be granted)"),
                    ))
                }
            }
        }
        Ok(limits)
    }

    /// The settings every plugin operator has: the component, its config, limits and error policy.
    fn plugin(
        &self,
        index: usize,
        kind: &str,
        p: &PluginSpec,
        op: &PluginOperatorSpec,
        world: &str,
    ) -> Result<MapConfig, JobError> {
        let field = |name: &str| format!("operator[{index}].{name}");
        let plugin = p.plugin.as_ref().ok_or_else(|| {
            self.err(
                &field("plugin"),
                format!(
                    "is required for kind = \"{kind}\": the path of a .wasm component of the weir:plugin {world} world"
                ),
            )
        })?;
        let limits = self.limits(&format!("operator[{index}]"), p, None)?;
        let on_error = match (op.on_error.as_deref(), op.retries) {
            (None | Some("fail"), None) => OnPluginError::Fail,
            (Some("retry"), n) => {
                let n = self.positive(&field("retries"), n)?.unwrap_or(3);
                if n > 100 {
                    return Err(self.err(&field("retries"), "must be at most 100"));
                }
                OnPluginError::Retry(n as u32)
            }
            (Some("dead_letter"), None) => OnPluginError::DeadLetter,
            (None | Some("fail") | Some("dead_letter"), Some(_)) => {
                return Err(self.err(&field("retries"), "applies only with on_error = \"retry\"; remove it"))
            }
            (Some(other), _) => {
                return Err(self.err(
                    &field("on_error"),
                    format!("unknown policy {other:?}; allowed: \"fail\", \"retry\", \"dead_letter\""),
                ))
            }
        };
        Ok(MapConfig {
            index,
            plugin: PathBuf::from(plugin),
            config: p.config.clone().unwrap_or_default(),
            limits,
            on_error,
            watch: op.watch.unwrap_or(false),
        })
    }

    fn aggregate(&self, index: usize, op: &AggregateSpec) -> Result<OperatorConfig, JobError> {
        let field = |name: &str| format!("operator[{index}].{name}");
        let group_by = op.group_by.clone().unwrap_or_default();
        for (i, col) in group_by.iter().enumerate() {
            if group_by[..i].contains(col) {
                return Err(self.err(&field("group_by"), format!("column `{col}` is listed twice")));
            }
        }
        let window = op.window.as_ref().map(|w| self.window(&field("window"), w)).transpose()?;
        let specs: &[AggregateCallSpec] = op.aggregates.as_deref().unwrap_or_default();
        if specs.is_empty() {
            return Err(self.err(
                &field("aggregates"),
                "is required for kind = \"aggregate\": e.g. [{ fn = \"count\", as = \"n\" }, { fn = \"sum\", column = \"amount\", as = \"total\" }]",
            ));
        }
        let mut aggregates: Vec<AggregateCall> = Vec::new();
        for (n, a) in specs.iter().enumerate() {
            let f = |name: &str| format!("operator[{index}].aggregates[{n}].{name}");
            let func = AggFn::parse(&a.func).ok_or_else(|| {
                self.err(&f("fn"), format!("unknown function {:?}; allowed: {}", a.func, super::FUNCTION_NAMES))
            })?;
            if a.column.is_none() && func != AggFn::Count {
                return Err(self.err(&f("column"), format!("is required for fn = \"{}\"", func.name())));
            }
            // Spark's default names: count(1), sum(amount), ...
            let name =
                a.name.clone().unwrap_or_else(|| format!("{}({})", func.name(), a.column.as_deref().unwrap_or("1")));
            if name.is_empty() {
                return Err(self.err(&f("as"), "is empty: name the output column"));
            }
            if aggregates.iter().any(|b| b.name == name) || group_by.contains(&name) {
                return Err(
                    self.err(&f("as"), format!("the output already has a column `{name}`; choose another name"))
                );
            }
            aggregates.push(AggregateCall { func, column: a.column.clone(), name });
        }
        Ok(OperatorConfig::Aggregate(AggregateConfig { index, group_by, window, aggregates }))
    }

    fn window(&self, field: &str, w: &WindowSpec) -> Result<WindowConfig, JobError> {
        let micros = |name: &str, text: &str| -> Result<i64, JobError> {
            let d = parse_duration(text).map_err(|e| self.err(&format!("{field}.{name}"), e))?;
            if d.is_zero() {
                return Err(self.err(&format!("{field}.{name}"), "must be more than zero"));
            }
            Ok(d.as_micros() as i64)
        };
        let kind = match (&w.size, &w.slide, &w.gap) {
            (None, None, Some(gap)) => WindowKind::Session { gap: micros("gap", gap)? },
            (Some(_), _, Some(_)) | (None, Some(_), Some(_)) => return Err(self.err(
                field,
                "set either size (and slide) for a tumbling or sliding window, or gap for a session window, not both",
            )),
            (Some(size), None, None) => WindowKind::Tumbling { size: micros("size", size)? },
            (Some(size), Some(slide), None) => {
                let (size, slide) = (micros("size", size)?, micros("slide", slide)?);
                if slide > size {
                    return Err(self.err(
                        &format!("{field}.slide"),
                        "must not be longer than size (Spark's rule: the slide duration must be less than or equal to the window duration)",
                    ));
                }
                if slide == size {
                    WindowKind::Tumbling { size }
                } else {
                    WindowKind::Sliding { size, slide }
                }
            }
            (None, _, None) => {
                return Err(self.err(
                    field,
                    "needs size = \"5 minutes\" (tumbling; add slide for sliding) or gap = \"5 minutes\" (session)",
                ))
            }
        };
        if w.column.trim().is_empty() {
            return Err(self.err(&format!("{field}.column"), "is empty: name a timestamp column"));
        }
        Ok(WindowConfig { column: w.column.clone(), kind })
    }

    /// A files, console or kafka sink: the job's sink, or an output of a plugin sink at `at`.
    fn sink_kind(&self, at: &str, format: &OutputFormatSpec) -> Result<SinkKind, JobError> {
        let f = |name: &str| format!("{at}.{name}");
        Ok(match format {
            OutputFormatSpec::Files(file_format, o) => {
                let path = o.path.as_ref().ok_or_else(|| {
                    self.err(
                        &f("path"),
                        format!("is required for format = \"{}\": the output directory", file_format.extension()),
                    )
                })?;
                for (i, col) in o.partition_by.iter().enumerate() {
                    if o.partition_by[..i].contains(col) {
                        return Err(self.err(&f("partition_by"), format!("column `{col}` is listed twice")));
                    }
                }
                SinkKind::Files {
                    format: *file_format,
                    path: PathBuf::from(path),
                    partition_by: o.partition_by.clone(),
                }
            }
            OutputFormatSpec::Console(o) => {
                let num_rows = self.positive(&f("num_rows"), o.num_rows)?.unwrap_or(20) as usize;
                SinkKind::Console { num_rows }
            }
            OutputFormatSpec::Delta(o) => {
                SinkKind::Delta(super::delta::delta_sink(at, o).map_err(|(field, message)| self.err(&field, message))?)
            }
            OutputFormatSpec::Postgres(o) => SinkKind::Postgres(
                super::postgres::postgres_sink(at, o).map_err(|(field, message)| self.err(&field, message))?,
            ),
            OutputFormatSpec::Kafka(_) if !crate::features::KAFKA => {
                return Err(self.err(&f("format"), crate::features::not_built("kafka")));
            }
            OutputFormatSpec::Kafka(o) => {
                // Spark's `topic` option: when set, it wins over the rows' `topic` column.
                if o.topic.as_ref().is_some_and(|t| t.trim().is_empty()) {
                    return Err(self.err(&f("topic"), "must not be empty: name the topic to write to, or leave it out to take each row's `topic` column"));
                }
                SinkKind::Kafka(KafkaSinkConfig {
                    topic: o.topic.clone(),
                    marker_topic: o.marker_topic.clone(),
                    marker_partition: 0,
                    client: self.kafka_client(at, o.kafka.as_ref())?,
                    timeout: self.kafka_timeout(at, o.kafka_timeout.as_deref())?,
                })
            }
        })
    }

    fn sink(&self, s: &SinkSpec) -> Result<(SinkConfig, PathBuf, Trigger), JobError> {
        let kind = match &s.format {
            SinkFormatSpec::Output(format) => self.sink_kind("sink", format)?,
            SinkFormatSpec::Postgres(p) => {
                SinkKind::Postgres(super::postgres::postgres_sink("sink", p).map_err(|(f, m)| self.err(&f, m))?)
            }
            SinkFormatSpec::Plugin { foreach, plugin: p, sink, outputs: specs } => {
                let format = if *foreach { "foreach" } else { "foreach_batch" };
                let plugin = p.plugin.as_ref().ok_or_else(|| {
                    self.err("sink.plugin", format!("is required for format = \"{format}\": the path of a .wasm component of the weir:plugin batch-sink world"))
                })?;
                let limits = self.limits("sink", p, sink.max_emit_bytes.as_deref())?;
                if specs.is_empty() {
                    return Err(self.err("sink.output", format!("is required for format = \"{format}\": at least one [[sink.output]] with a name, and a format and path like a sink's, for the plugin to emit to")));
                }
                let rows_per_call = self.positive("sink.rows_per_call", sink.rows_per_call)?.unwrap_or(1000) as usize;
                let mut outputs = Vec::new();
                for (i, o) in specs.iter().enumerate() {
                    let at = format!("sink.output[{i}]");
                    if o.name.is_empty() {
                        return Err(self.err(&format!("{at}.name"), "must not be empty"));
                    }
                    if specs[..i].iter().any(|p| p.name == o.name) {
                        return Err(self.err(&format!("{at}.name"), format!("output {:?} is declared twice", o.name)));
                    }
                    let kind = self.sink_kind(&at, &o.format)?;
                    // A delta output's name is part of its `txn` appId and of a directory name
                    // in the table (`_weir_pending/<query id>-<name>`).
                    let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.';
                    if matches!(kind, SinkKind::Delta(_)) && (!o.name.chars().all(plain) || o.name.starts_with('.')) {
                        return Err(self.err(
                            &format!("{at}.name"),
                            format!("{:?} names a delta output, whose name goes into directory names of the table: use letters, digits, `_`, `-` and `.` (not first)", o.name),
                        ));
                    }
                    outputs.push(NamedOutput { name: o.name.clone(), kind });
                }
                let config = PluginSinkConfig {
                    plugin: PathBuf::from(plugin),
                    config: p.config.clone().unwrap_or_default(),
                    limits,
                    outputs,
                    rows_per_call,
                };
                if *foreach {
                    SinkKind::Foreach(config)
                } else {
                    SinkKind::ForeachBatch(config)
                }
            }
        };
        let s = &s.common;
        let output_mode = match s.output_mode.as_deref().unwrap_or("append") {
            "append" => OutputMode::Append,
            "update" => OutputMode::Update,
            "complete" => OutputMode::Complete,
            other => {
                return Err(self.err(
                    "sink.output_mode",
                    format!("unknown mode {other:?}; allowed: \"append\", \"update\", \"complete\""),
                ))
            }
        };
        if let SinkKind::Delta(d) = &kind {
            super::delta::check_output_mode(d, output_mode).map_err(|(field, message)| self.err(&field, message))?;
        }
        let checkpoint = s.checkpoint.as_ref().ok_or_else(|| {
            self.err(
                "sink.checkpoint",
                "is required: the directory where weir keeps offsets and commits so a restart resumes exactly once",
            )
        })?;
        let trigger = self.trigger(s.trigger.as_ref())?;
        Ok((SinkConfig { kind, output_mode }, PathBuf::from(checkpoint), trigger))
    }

    fn trigger(&self, t: Option<&TriggerSpec>) -> Result<Trigger, JobError> {
        let Some(t) = t else { return Ok(Trigger::ProcessingTime(std::time::Duration::ZERO)) };
        let mut chosen = Vec::new();
        if let Some(p) = &t.processing_time {
            let d = parse_duration(p).map_err(|e| self.err("sink.trigger.processing_time", e))?;
            chosen.push(Trigger::ProcessingTime(d));
        }
        if t.once == Some(true) {
            chosen.push(Trigger::Once);
        }
        if t.available_now == Some(true) {
            chosen.push(Trigger::AvailableNow);
        }
        if let Some(c) = &t.continuous {
            let d = parse_duration(c).map_err(|e| self.err("sink.trigger.continuous", e))?;
            if d.is_zero() {
                return Err(self.err(
                    "sink.trigger.continuous",
                    "is the epoch (checkpoint) interval and must be more than 0, e.g. \"1 second\"",
                ));
            }
            chosen.push(Trigger::Continuous(d));
        }
        match chosen.as_slice() {
            [one] => Ok(*one),
            [] => Err(self.err(
                "sink.trigger",
                "set one of processing_time = \"1 second\", once = true, available_now = true, continuous = \"1 second\"",
            )),
            _ => Err(self.err("sink.trigger", "set only one of processing_time, once, available_now, continuous")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(text: &str) -> Result<Job, String> {
        parse_job(Path::new("job.toml"), text).map_err(|e| e.to_string())
    }

    const OK: &str = r#"
[source]
format = "json"
path = "in"
schema = "user_id string, amount double"
max_files_per_trigger = 2

[[operator]]
kind = "map"
plugin = "enrich.wasm"
config = "tax_rate=0.1"
max_memory = "32 MiB"

[sink]
format = "parquet"
path = "out"
checkpoint = "ckpt"
trigger = { processing_time = "1 second" }
"#;

    #[test]
    fn a_full_job_validates_into_typed_config() {
        let j = job(OK).unwrap();
        assert_eq!(j.name, "job");
        assert!(
            matches!(&j.sources[0].source, SourceConfig::Files(f) if f.max_files_per_trigger == Some(2) && f.format == FileFormat::Json)
        );
        let OperatorConfig::Map(m) = &j.operators[0] else { panic!("a map operator") };
        assert_eq!(m.limits.memory_bytes, 32 << 20);
        // The former names still work.
        let old_names = job(&OK.replace("max_memory", "memory_limit")).unwrap();
        assert!(matches!(&old_names.operators[0], OperatorConfig::Map(m) if m.limits.memory_bytes == 32 << 20));
        assert_eq!(m.config, "tax_rate=0.1");
        assert_eq!(j.trigger, Trigger::ProcessingTime(std::time::Duration::from_secs(1)));
        assert_eq!(j.dead_letter_dir(crate::checkpoint::layout::dead_letter), PathBuf::from("ckpt/dead_letter"));
        assert_eq!(j.min_batches_to_retain, 100, "Spark's default");
        assert_eq!(m.on_error, OnPluginError::Fail);
        let r = job(&OK.replace("max_memory = \"32 MiB\"", "on_error = \"retry\"")).unwrap();
        assert!(matches!(&r.operators[0], OperatorConfig::Map(m) if m.on_error == OnPluginError::Retry(3)));
        assert_eq!(job(&format!("min_batches_to_retain = 7\n{OK}")).unwrap().min_batches_to_retain, 7);
    }

    #[test]
    fn errors_name_the_field_and_what_is_allowed() {
        let cases = [
            (
                OK.replace("format = \"json\"", "format = \"xml\""),
                "`source.format`: unknown format \"xml\"; allowed: \"json\", \"csv\", \"parquet\", \"rate\"",
            ),
            (
                OK.replace("schema = \"user_id string, amount double\"\n", ""),
                "`source.schema`: is required for format = \"json\"",
            ),
            (OK.replace("amount double", "amount money"), "column `amount` has unknown type `money`"),
            (OK.replace("kind = \"map\"", "kind = \"reduce\""), "`operator[0].kind`: unknown operator kind \"reduce\""),
            (OK.replace("checkpoint = \"ckpt\"\n", ""), "`sink.checkpoint`: is required"),
            (
                OK.replace("processing_time = \"1 second\"", "processing_time = \"1 fortnight\""),
                "`sink.trigger.processing_time`",
            ),
            (
                format!("min_batches_to_retain = 0\n{OK}"),
                "`min_batches_to_retain`: must be a positive whole number, got 0",
            ),
            (
                OK.replace("max_memory = \"32 MiB\"", "retries = 2"),
                "`operator[0].retries`: applies only with on_error = \"retry\"; remove it",
            ),
            (
                OK.replace("max_memory = \"32 MiB\"", "on_error = \"retry\"\nretries = 0"),
                "`operator[0].retries`: must be a positive whole number, got 0",
            ),
            (
                OK.replace("max_files_per_trigger = 2", "max_files_per_trigger = 0"),
                "must be a positive whole number, got 0",
            ),
            (
                OK.replace("max_files_per_trigger = 2", "rows_per_second = 5"),
                "`source.rows_per_second`: does not apply to format = \"json\"",
            ),
            (
                OK.replace("max_files_per_trigger = 2", "max_file_per_trigger = 2"),
                "unknown field `max_file_per_trigger`",
            ),
        ];
        for (text, want) in cases {
            let e = job(&text).unwrap_err();
            assert!(e.contains(want), "want {want:?} in {e:?}");
            assert!(e.starts_with("job file job.toml"), "{e}");
        }
    }

    #[test]
    fn rate_source_defaults_and_once_trigger() {
        let j = job("[source]\nformat = \"rate\"\nrows_per_second = 100\n[sink]\nformat = \"console\"\ncheckpoint = \"c\"\ntrigger = { once = true }\n").unwrap();
        assert!(matches!(
            j.sources[0].source,
            SourceConfig::Rate(RateSourceConfig { rows_per_second: 100, num_partitions: 1 })
        ));
        assert_eq!(j.trigger, Trigger::Once);
    }

    const TWO_SOURCES: &str = r#"
multiple_watermark_policy = "max"

[[source]]
name = "a"
format = "json"
path = "in/a"
schema = "k string, event_time timestamp"

[[source]]
name = "b"
format = "csv"
path = "in/b"
schema = "k string, event_time timestamp"
watermark_delay = "2 minutes"

[watermark]
column = "event_time"
delay = "10 minutes"

[sink]
format = "json"
path = "out"
checkpoint = "ckpt"
"#;

    #[test]
    fn several_sources_keep_their_names_order_and_own_delays() {
        let j = job(TWO_SOURCES).unwrap();
        let names: Vec<_> = j.sources.iter().map(|s| (s.name.as_deref(), s.field.as_str())).collect();
        assert_eq!(names, vec![(Some("a"), "source[0]"), (Some("b"), "source[1]")]);
        assert_eq!(j.sources[0].watermark_delay, None);
        assert_eq!(j.sources[1].watermark_delay, Some(std::time::Duration::from_secs(120)));
        assert!(matches!(&j.sources[1].source, SourceConfig::Files(f) if f.format == FileFormat::Csv));
        let wm = j.watermark.unwrap();
        assert_eq!((wm.delay, wm.policy), (std::time::Duration::from_secs(600), MultipleWatermarkPolicy::Max));
        // One [source] table: no name needed, the policy defaults to Spark's "min".
        let one = job(OK).unwrap();
        assert_eq!(
            (one.sources.len(), one.sources[0].field.as_str(), one.sources[0].name.as_deref()),
            (1, "source", None)
        );
        let one_named = job(&OK.replace("[source]\n", "[source]\nname = \"orders\"\n")).unwrap();
        assert_eq!(one_named.sources[0].label(), "source \"orders\"");
    }

    #[test]
    fn several_sources_errors_name_the_source_table() {
        let cases = [
            (
                TWO_SOURCES.replace("name = \"b\"\n", ""),
                "`source[1].name`: is required when the job has several sources",
            ),
            (
                TWO_SOURCES.replace("name = \"b\"", "name = \"a\""),
                "`source[1].name`: \"a\" is already the name of source[0]",
            ),
            (TWO_SOURCES.replace("name = \"b\"", "name = \" \""), "`source[1].name`: is empty"),
            (TWO_SOURCES.replace("path = \"in/b\"\n", ""), "`source[1].path`: is required for format = \"csv\""),
            (TWO_SOURCES.replace("\"2 minutes\"", "\"2 fortnights\""), "`source[1].watermark_delay`"),
            (
                TWO_SOURCES.replace("\"max\"", "\"latest\""),
                "`multiple_watermark_policy`: unknown policy \"latest\"; allowed: \"min\"",
            ),
            (
                TWO_SOURCES.replace("[watermark]\ncolumn = \"event_time\"\ndelay = \"10 minutes\"\n", ""),
                "`source[1].watermark_delay`: needs a [watermark]",
            ),
            (TWO_SOURCES.replace("watermark_delay", "watermark_dely"), "unknown field `watermark_dely`"),
        ];
        for (text, want) in cases {
            let e = job(&text).unwrap_err();
            assert!(e.contains(want), "want {want:?} in {e:?}");
        }
    }

    const JOINED: &str = r#"
[[source]]
name = "clicks"
format = "json"
path = "in/clicks"
schema = "user_id string, click_time timestamp"
watermark_column = "click_time"

[[source]]
name = "impressions"
format = "json"
path = "in/impressions"
schema = "uid string, impression_time timestamp"
watermark_delay = "2 hours"
watermark_column = "impression_time"

[[source]]
name = "users"
static = true
format = "csv"
path = "tables/users"
schema = "user_id string, country string"
delimiter = ";"

[watermark]
column = "event_time"
delay = "3 hours"

[[operator]]
kind = "join"
right = "users"
on = ["user_id"]

[[operator]]
kind = "join"
right = "impressions"
type = "left_outer"
on = [{ left = "user_id", right = "uid" }]
right_prefix = "imp_"
time_range = { left = "click_time", right = "impression_time", from = "-5 minutes", to = "1 hour" }

[sink]
format = "json"
path = "out"
checkpoint = "ckpt"
"#;

    #[test]
    fn a_static_table_goes_to_tables_not_to_the_streams() {
        let j = job(JOINED).unwrap();
        let names: Vec<_> = j.sources.iter().map(|s| s.name.as_deref().unwrap()).collect();
        assert_eq!(names, vec!["clicks", "impressions"]);
        assert_eq!(j.tables.len(), 1);
        let t = &j.tables[0];
        assert_eq!(
            (t.name.as_str(), t.field.as_str(), t.path.as_path()),
            ("users", "source[2]", Path::new("tables/users"))
        );
        assert_eq!(t.format, FileFormat::Csv);
        assert_eq!((t.csv.header, t.csv.delimiter), (true, b';'));
        assert_eq!(t.schema.as_ref().unwrap().fields().len(), 2);
        assert_eq!(t.refresh, Refresh::OnChange, "the default");
        let never = job(&JOINED.replace("delimiter = \";\"", "refresh = \"never\"")).unwrap();
        assert_eq!(never.tables[0].refresh, Refresh::Never);
        let every = job(&JOINED.replace("delimiter = \";\"", "refresh = \"10 minutes\"")).unwrap();
        assert_eq!(every.tables[0].refresh, Refresh::Every(std::time::Duration::from_secs(600)));
        // Parquet needs no schema.
        let parquet = job(&JOINED
            .replace("format = \"csv\"", "format = \"parquet\"")
            .replace("delimiter = \";\"\n", "")
            .replace("schema = \"user_id string, country string\"\n", ""))
        .unwrap();
        assert!(parquet.tables[0].schema.is_none());
    }

    #[test]
    fn each_stream_can_name_its_own_event_time_column() {
        let j = job(JOINED).unwrap();
        let cols: Vec<_> = j.sources.iter().map(|s| s.watermark_column.as_deref()).collect();
        assert_eq!(cols, vec![Some("click_time"), Some("impression_time")]);
        assert_eq!(j.watermark.unwrap().column, "event_time");
        assert_eq!(job(TWO_SOURCES).unwrap().sources[0].watermark_column, None);
    }

    #[test]
    fn a_join_with_using_keys_defaults_to_inner() {
        let j = job(JOINED).unwrap();
        let OperatorConfig::Join(join) = &j.operators[0] else { panic!("a join") };
        assert_eq!((join.index, join.other.as_str(), join.other_side), (0, "users", Side::Right));
        assert_eq!(
            join.spec,
            JoinSpec {
                join_type: JoinType::Inner,
                keys: JoinKeys::Using(vec!["user_id".into()]),
                left_prefix: None,
                right_prefix: None
            }
        );
        assert_eq!(join.time_range, None);
        let on_left = job(&JOINED.replace("right = \"users\"", "left = \"users\"\ntype = \"right_outer\"")).unwrap();
        let OperatorConfig::Join(join) = &on_left.operators[0] else { panic!("a join") };
        assert_eq!((join.other_side, join.spec.join_type), (Side::Left, JoinType::RightOuter));
    }

    #[test]
    fn a_join_with_key_pairs_prefixes_and_a_time_range_with_a_negative_bound() {
        let j = job(JOINED).unwrap();
        let OperatorConfig::Join(join) = &j.operators[1] else { panic!("a join") };
        assert_eq!((join.other.as_str(), join.other_side), ("impressions", Side::Right));
        assert_eq!(join.spec.join_type, JoinType::LeftOuter);
        assert_eq!(join.spec.keys, JoinKeys::Pairs(vec![KeyPair { left: "user_id".into(), right: "uid".into() }]));
        assert_eq!((join.spec.left_prefix.as_deref(), join.spec.right_prefix.as_deref()), (None, Some("imp_")));
        assert_eq!(
            join.time_range,
            Some(TimeRange {
                left: "click_time".into(),
                right: "impression_time".into(),
                from_micros: -300_000_000,
                to_micros: 3_600_000_000
            })
        );
        // from == to is a point, not empty.
        job(&JOINED.replace("\"-5 minutes\"", "\"1 hour\"")).unwrap();
    }

    #[test]
    fn join_and_static_table_errors_name_the_field() {
        let cases = [
            (JOINED.replace("static = true\n", "static = true\nmax_files_per_trigger = 1\n"), "`source[2].max_files_per_trigger`: does not apply to a static table (static = true), which is read whole from its files, not as a stream; remove it"),
            (JOINED.replace("static = true\n", "static = true\nwatermark_column = \"t\"\n"), "`source[2].watermark_column`: does not apply to a static table"),
            (JOINED.replace("format = \"csv\"", "format = \"kafka\""), "`source[2].format`: \"kafka\" is not a format of a static table, which is read from files; allowed: \"json\", \"csv\", \"parquet\""),
            (JOINED.replace("path = \"tables/users\"\n", ""), "`source[2].path`: is required for a static table"),
            (JOINED.replace("schema = \"user_id string, country string\"\n", ""), "`source[2].schema`: is required for a static table of format = \"csv\""),
            (JOINED.replace("delimiter = \";\"", "refresh = \"sometimes\""), "`source[2].refresh`: must be \"never\", \"on_change\" (the default) or an interval like \"10 minutes\"; \"sometimes\" is not a duration"),
            (JOINED.replace("delimiter = \";\"", "refresh = \"0 seconds\""), "`source[2].refresh`: must be more than zero"),
            (JOINED.replace("watermark_column = \"click_time\"", "refresh = \"never\""), "`source[0].refresh`: applies only to a static table"),
            (JOINED.replace("watermark_column = \"click_time\"", "watermark_column = \"\""), "`source[0].watermark_column`: is empty"),
            (JOINED.replace("name = \"users\"", "name = \"clicks\""), "`source[2].name`: \"clicks\" is already the name of source[0]"),
            (JOINED.replace("right = \"users\"", "right = \"users\"\nleft = \"clicks\""), "`operator[0].left`: set only one of left and right"),
            (JOINED.replace("right = \"users\"\n", ""), "`operator[0].right`: is required for kind = \"join\""),
            (JOINED.replace("right = \"users\"", "right = \"user\""), "`operator[0].right`: no source is named \"user\"; the sources are \"clicks\", \"impressions\", \"users\""),
            (JOINED.replace("right = \"impressions\"", "right = \"users\""), "`operator[1].right`: source \"users\" is already joined by operator[0]"),
            (JOINED.replace("right = \"users\"", "right = \"clicks\""), "`operator[1].right`: source \"impressions\" is the last streaming source no join names: joining it leaves no stream for the other side of this join"),
            (JOINED.replace("type = \"left_outer\"", "type = \"left\""), "`operator[1].type`: join type \"left\" is not one of"),
            (JOINED.replace("on = [\"user_id\"]\n", ""), "`operator[0].on`: is required for kind = \"join\""),
            (JOINED.replace("on = [\"user_id\"]", "on = []"), "`operator[0].on`: is empty"),
            (JOINED.replace("on = [\"user_id\"]", "on = \"user_id\""), "`operator[0].on`: \"user_id\" is not a list of keys"),
            (JOINED.replace("on = [\"user_id\"]", "on = [\"user_id\", { left = \"a\", right = \"b\" }]"), "`operator[0].on`: mixes column names and { left, right } pairs"),
            (JOINED.replace("on = [\"user_id\"]", "on = [\"user_id\", \"user_id\"]"), "`operator[0].on`: column `user_id` is listed twice"),
            (JOINED.replace("right = \"uid\" }", "rigth = \"uid\" }"), "`operator[1].on[0].rigth`: is not a field of a key pair"),
            (JOINED.replace(", right = \"uid\" }", " }"), "`operator[1].on[0].right`: is required in a key pair"),
            (JOINED.replace("right_prefix = \"imp_\"", "right_prefix = \"\""), "`operator[1].right_prefix`: is empty"),
            (JOINED.replace("from = \"-5 minutes\"", "from = \"2 hours\""), "`operator[1].time_range`: from (2 hours) is after to (1 hour)"),
            (JOINED.replace("from = \"-5 minutes\", ", ""), "`operator[1].time_range.from`: is required"),
            (JOINED.replace("\"-5 minutes\"", "\"-5 fortnights\""), "`operator[1].time_range.from`: \"-5 fortnights\": unknown unit `fortnights`"),
            (JOINED.replace("to = \"1 hour\"", "to = \"1 hour\", within = \"1 day\""), "unknown field `within`"),
            (JOINED.replace("on = [\"user_id\"]", "on = [\"user_id\"]\ntime_range = { left = \"click_time\", right = \"t\", from = \"0 seconds\", to = \"1 hour\" }"), "`operator[0].time_range`: applies only to a join of two streams: source \"users\" is a static table, which has no event time"),
            (JOINED.replace("on = [\"user_id\"]", "on = [\"user_id\"]\nplugin = \"a.wasm\""), "`operator[0].plugin`: does not apply to kind = \"join\""),
            (JOINED.replace("on = [\"user_id\"]", "on = [\"user_id\"]\njoin_type = \"inner\""), "unknown field `join_type`"),
            (OK.replace("max_memory = \"32 MiB\"", "right = \"users\""), "`operator[0].right`: does not apply to kind = \"map\""),
            (
                TWO_SOURCES.replace("watermark_delay = \"2 minutes\"", "watermark_column = \"t\"").replace("[watermark]\ncolumn = \"event_time\"\ndelay = \"10 minutes\"\n", ""),
                "`source[1].watermark_column`: needs a [watermark] (it overrides [watermark].column for this source)",
            ),
        ];
        for (text, want) in cases {
            let e = job(&text).unwrap_err();
            assert!(e.contains(want), "want {want:?} in {e:?}");
        }
        let unjoined = JOINED.replace(
            "kind = \"join\"\nright = \"users\"\non = [\"user_id\"]\n",
            "kind = \"map\"\nplugin = \"a.wasm\"\n",
        );
        let e = job(&unjoined).unwrap_err();
        assert!(e.ends_with("`source[2]`: is a static table no join names: join it ([[operator]] kind = \"join\", right = \"users\", on = [...]) or remove it"), "{e}");
        // A job of static tables only: no stream to join them to.
        let only = "[[source]]\nname = \"users\"\nstatic = true\nformat = \"parquet\"\npath = \"t\"\n[sink]\nformat = \"console\"\ncheckpoint = \"c\"\n";
        assert!(job(only).unwrap_err().ends_with("`source`: has only static tables: a job needs at least one streaming source (a [[source]] without static = true) for the tables to be joined to"));
        // One [source] that is static: its name is still required.
        let one = "[source]\nstatic = true\nformat = \"parquet\"\npath = \"t\"\n[sink]\nformat = \"console\"\ncheckpoint = \"c\"\n";
        assert!(job(one)
            .unwrap_err()
            .contains("`source.name`: is required for a static table: a join names the table by it"));
    }
}
