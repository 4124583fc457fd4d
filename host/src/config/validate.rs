use std::path::{Path, PathBuf};

use super::spec::{AggregateSpec, JobSpec, OperatorSpec, SinkSpec, SourceSpec, SourcesSpec, TriggerSpec, WindowSpec};
use super::units::{parse_duration, parse_size};
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
    let spec: JobSpec = toml::from_str(text)
        .map_err(|e| JobError::Syntax { file: file.to_path_buf(), message: e.to_string().trim_end().to_string() })?;
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

    fn job(&self, spec: JobSpec) -> Result<Job, JobError> {
        let sources = self.sources(&spec.source, spec.watermark.is_some())?;
        let tables: Vec<TableConfig> = Vec::new();
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
            None => None,
        };
        let operators =
            spec.operators.iter().enumerate().map(|(i, op)| self.operator(i, op)).collect::<Result<Vec<_>, _>>()?;
        let (sink, checkpoint, trigger) = self.sink(&spec.sink, &operators)?;
        self.stateful_plan(&operators, watermark.as_ref(), sink.output_mode)?;
        let name =
            spec.name.unwrap_or_else(|| self.file.file_stem().and_then(|s| s.to_str()).unwrap_or("job").to_string());
        let dead_letter = spec.dead_letter_path.map(PathBuf::from);
        let state_store = match spec.state_store.as_deref() {
            None | Some("memory") => StateStoreKind::Memory,
            Some("rocksdb") => StateStoreKind::RocksDb,
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
                    "a job that scales out (source.consumer_group) runs until stopped: use trigger = { processing_time = \"...\" }, not once or available_now",
                ));
            }
        }
        let admin = match &spec.admin {
            None => None,
            Some(a) => Some(self.admin(&a.listen, a.token.clone(), a.probation_batches, a.max_upload.as_deref())?),
        };
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

    /// One `[source]`, or several `[[source]]` with unique names.
    fn sources(&self, spec: &SourcesSpec, has_watermark: bool) -> Result<Vec<InputConfig>, JobError> {
        let specs: Vec<(String, &SourceSpec)> = match spec {
            SourcesSpec::One(s) => vec![("source".to_string(), s)],
            SourcesSpec::Many(list) => list.iter().enumerate().map(|(i, s)| (format!("source[{i}]"), s)).collect(),
        };
        if specs.is_empty() {
            return Err(self.err("source", "is empty: declare at least one [[source]] (or one [source])"));
        }
        let several = specs.len() > 1;
        let mut inputs: Vec<InputConfig> = Vec::with_capacity(specs.len());
        for (at, s) in specs {
            let name = match &s.name {
                Some(n) if n.trim().is_empty() => {
                    return Err(self.err(&format!("{at}.name"), "is empty: name the source, e.g. name = \"orders\""))
                }
                Some(n) => {
                    if let Some(other) = inputs.iter().find(|i| i.name.as_deref() == Some(n.as_str())) {
                        return Err(self.err(
                            &format!("{at}.name"),
                            format!("{n:?} is already the name of {}; each source needs its own name", other.field),
                        ));
                    }
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
            let watermark_delay = match &s.watermark_delay {
                Some(_) if !has_watermark => {
                    return Err(self.err(
                        &format!("{at}.watermark_delay"),
                        "needs a [watermark] (it overrides [watermark].delay for this source); add [watermark] column = ..., delay = ..., or remove it",
                    ))
                }
                Some(d) => Some(parse_duration(d).map_err(|e| self.err(&format!("{at}.watermark_delay"), e))?),
                None => None,
            };
            let source = self.source(&at, s)?;
            inputs.push(InputConfig { name, field: at, source, watermark_delay, watermark_column: None });
        }
        Ok(inputs)
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

    /// Refuses the Kafka-only fields on another source.
    fn not_kafka(&self, at: &str, s: &SourceSpec) -> Result<(), JobError> {
        let f = |name: &str| format!("{at}.{name}");
        self.only_for(
            &[
                (&f("subscribe"), s.subscribe.is_some()),
                (&f("subscribe_pattern"), s.subscribe_pattern.is_some()),
                (&f("assign"), s.assign.is_some()),
                (&f("starting_offsets"), s.starting_offsets.is_some()),
                (&f("max_offsets_per_trigger"), s.max_offsets_per_trigger.is_some()),
                (&f("kafka"), s.kafka.is_some()),
                (&f("value_format"), s.value_format.is_some()),
                (&f("include_headers"), s.include_headers.is_some()),
                (&f("fail_on_data_loss"), s.fail_on_data_loss.is_some()),
                (&f("wait_for_topics"), s.wait_for_topics.is_some()),
                (&f("kafka_timeout"), s.kafka_timeout.is_some()),
                (&f("consumer_group"), s.consumer_group.is_some()),
            ],
            &s.format,
        )
    }

    fn kafka_source(&self, at: &str, s: &SourceSpec) -> Result<SourceConfig, JobError> {
        let f = |name: &str| format!("{at}.{name}");
        self.only_for(
            &[
                (&f("path"), s.path.is_some()),
                (&f("max_files_per_trigger"), s.max_files_per_trigger.is_some()),
                (&f("rows_per_second"), s.rows_per_second.is_some()),
                (&f("num_partitions"), s.num_partitions.is_some()),
            ],
            "kafka",
        )?;
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
        if s.header.is_some() {
            return Err(self.err(
                &f("header"),
                "does not apply to a kafka source (each value is one record, without a header); remove it",
            ));
        }
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

    fn source(&self, at: &str, s: &SourceSpec) -> Result<SourceConfig, JobError> {
        let f = |name: &str| format!("{at}.{name}");
        let format = match s.format.as_str() {
            "json" => FileFormat::Json,
            "csv" => FileFormat::Csv,
            "parquet" => FileFormat::Parquet,
            "kafka" => return self.kafka_source(at, s),
            "rate" => {
                self.only_for(
                    &[
                        (&f("path"), s.path.is_some()),
                        (&f("schema"), s.schema.is_some()),
                        (&f("max_files_per_trigger"), s.max_files_per_trigger.is_some()),
                        (&f("header"), s.header.is_some()),
                        (&f("delimiter"), s.delimiter.is_some()),
                    ],
                    "rate",
                )?;
                self.not_kafka(at, s)?;
                let rows_per_second = self.positive(&f("rows_per_second"), s.rows_per_second)?.unwrap_or(1);
                let num_partitions = self.positive(&f("num_partitions"), s.num_partitions)?.unwrap_or(1);
                if num_partitions > 1024 {
                    return Err(self.err(&f("num_partitions"), "must be at most 1024"));
                }
                return Ok(SourceConfig::Rate(RateSourceConfig {
                    rows_per_second,
                    num_partitions: num_partitions as u32,
                }));
            }
            other => {
                return Err(self.err(
                    &f("format"),
                    format!("unknown format {other:?}; allowed: \"json\", \"csv\", \"parquet\", \"rate\", \"kafka\""),
                ))
            }
        };
        self.only_for(
            &[(&f("rows_per_second"), s.rows_per_second.is_some()), (&f("num_partitions"), s.num_partitions.is_some())],
            &s.format,
        )?;
        self.not_kafka(at, s)?;
        if format != FileFormat::Csv {
            self.only_for(&[(&f("header"), s.header.is_some()), (&f("delimiter"), s.delimiter.is_some())], &s.format)?;
        }
        let path = s.path.as_ref().ok_or_else(|| {
            self.err(
                &f("path"),
                format!("is required for format = \"{}\": the directory to watch for new files", s.format),
            )
        })?;
        let schema = match &s.schema {
            Some(ddl) => Some(parse_ddl(ddl).map_err(|e| self.err(&f("schema"), e.to_string()))?),
            None if format == FileFormat::Parquet => None,
            None => {
                return Err(self.err(&f("schema"),
                    format!(
                        "is required for format = \"{}\": declare the columns in Spark DDL, e.g. \"event_id string, amount double, event_time timestamp\"",
                        s.format
                    ),
                ))
            }
        };
        let mut csv = CsvOptions::default();
        if let Some(h) = s.header {
            csv.header = h;
        }
        if let Some(d) = &s.delimiter {
            let bytes = d.as_bytes();
            if bytes.len() != 1 || bytes[0] == b'"' || bytes[0] == b'\n' || bytes[0] == b'\r' {
                return Err(self.err(
                    &f("delimiter"),
                    format!("must be one ASCII character other than a quote or newline, got {d:?}"),
                ));
            }
            csv.delimiter = bytes[0];
        }
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
        if op.kind != "stateful" {
            self.only_for(&[(&field("timeout"), op.timeout.is_some())], &op.kind)?;
        }
        if op.kind != "stateful" && op.kind != "map" {
            self.only_for(&[(&field("watch"), op.watch.is_some())], &op.kind)?;
        }
        if op.kind != "dedup" {
            self.only_for(&[(&field("within_watermark"), op.within_watermark.is_some())], &op.kind)?;
        }
        if op.kind != "aggregate" {
            self.only_for(
                &[
                    (&field("group_by"), op.group_by.is_some() && op.kind != "stateful"),
                    (&field("window"), op.window.is_some()),
                    (&field("aggregates"), op.aggregates.is_some()),
                ],
                &op.kind,
            )?;
        }
        if op.kind != "map" && op.kind != "stateful" {
            self.only_for(
                &[
                    (&field("max_output_rows"), op.max_output_rows.is_some()),
                    (&field("max_output_bytes"), op.max_output_bytes.is_some()),
                    (&field("max_error_length"), op.max_error_length.is_some()),
                    (&field("max_log_lines"), op.max_log_lines.is_some()),
                    (&field("max_component_size"), op.max_component_size.is_some()),
                    (&field("max_compile_time"), op.max_compile_time.is_some()),
                ],
                &op.kind,
            )?;
        }
        match op.kind.as_str() {
            "aggregate" => {
                self.only_for(
                    &[
                        (&field("plugin"), op.plugin.is_some()),
                        (&field("config"), op.config.is_some()),
                        (&field("max_memory"), op.max_memory.is_some()),
                        (&field("max_call_time"), op.max_call_time.is_some()),
                        (&field("keys"), op.keys.is_some()),
                        (&field("on_error"), op.on_error.is_some()),
                        (&field("retries"), op.retries.is_some()),
                        (&field("grant"), op.grant.is_some()),
                    ],
                    "aggregate",
                )?;
                self.aggregate(index, op)
            }
            "dedup" => {
                self.only_for(
                    &[
                        (&field("plugin"), op.plugin.is_some()),
                        (&field("config"), op.config.is_some()),
                        (&field("max_memory"), op.max_memory.is_some()),
                        (&field("max_call_time"), op.max_call_time.is_some()),
                        (&field("on_error"), op.on_error.is_some()),
                        (&field("retries"), op.retries.is_some()),
                        (&field("grant"), op.grant.is_some()),
                    ],
                    "dedup",
                )?;
                let keys = op.keys.clone().unwrap_or_default();
                if keys.is_empty() {
                    return Err(self.err(&field("keys"), "is required for kind = \"dedup\": the columns that identify a duplicate, e.g. [\"event_id\", \"event_time\"]"));
                }
                let within_watermark = op.within_watermark.unwrap_or(false);
                Ok(OperatorConfig::Dedup(DedupConfig { index, keys, within_watermark }))
            }
            "map" => {
                if op.keys.is_some() {
                    return Err(self.err(&field("keys"), "does not apply to kind = \"map\"; remove it"));
                }
                let plugin = self.plugin(index, op, "mapper")?;
                Ok(OperatorConfig::Map(plugin))
            }
            "stateful" => {
                if op.keys.is_some() {
                    return Err(self
                        .err(&field("keys"), "does not apply to kind = \"stateful\"; the key columns are `group_by`"));
                }
                let group_by = op.group_by.clone().unwrap_or_default();
                if group_by.is_empty() {
                    return Err(self.err(&field("group_by"), "is required for kind = \"stateful\": the key columns whose rows share one state, e.g. [\"user_id\"]"));
                }
                for (i, col) in group_by.iter().enumerate() {
                    if group_by[..i].contains(col) {
                        return Err(self.err(&field("group_by"), format!("column `{col}` is listed twice")));
                    }
                }
                let timeout = match op.timeout.as_deref().unwrap_or("none") {
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
                let plugin = self.plugin(index, op, "stateful")?;
                Ok(OperatorConfig::Stateful(StatefulConfig { plugin, group_by, timeout }))
            }
            other => Err(self.err(
                &field("kind"),
                format!("unknown operator kind {other:?}; allowed: \"map\", \"stateful\", \"dedup\", \"aggregate\""),
            )),
        }
    }

    /// A plugin's limits and grants, from the table at `at` (`operator[i]` or `sink`).
    fn limits(&self, at: &str, spec: LimitFields<'_>) -> Result<PluginLimits, JobError> {
        let LimitFields { max_memory, max_call_time, grant, .. } = spec;
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
        if let Some(n) = size("max_output_bytes", spec.max_output_bytes)? {
            limits.output_bytes = n;
        }
        if let Some(n) = size("max_emit_bytes", spec.max_emit_bytes)? {
            limits.emit_bytes = n;
        }
        if let Some(n) = size("max_error_length", spec.max_error_length)? {
            limits.error_bytes = n as usize;
        }
        if let Some(n) = size("max_component_size", spec.max_component_size)? {
            limits.component_bytes = n;
        }
        if let Some(n) = spec.max_log_lines {
            if n < 0 {
                return Err(self.err(&field("max_log_lines"), format!("must be 0 (no plugin log) or more, got {n}")));
            }
            limits.log.lines_per_batch = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(c) = spec.max_compile_time {
            limits.compile_time = parse_duration(c).map_err(|e| self.err(&field("max_compile_time"), e))?;
            if limits.compile_time.is_zero() {
                return Err(self.err(&field("max_compile_time"), "must be more than zero"));
            }
        }
        for g in grant.into_iter().flatten() {
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
    fn plugin(&self, index: usize, op: &OperatorSpec, world: &str) -> Result<MapConfig, JobError> {
        let field = |name: &str| format!("operator[{index}].{name}");
        let plugin = op.plugin.as_ref().ok_or_else(|| {
            self.err(
                &field("plugin"),
                format!(
                    "is required for kind = \"{}\": the path of a .wasm component of the weir:plugin {world} world",
                    op.kind
                ),
            )
        })?;
        let limits = self.limits(
            &format!("operator[{index}]"),
            LimitFields {
                max_memory: op.max_memory.as_deref(),
                max_call_time: op.max_call_time.as_deref(),
                grant: op.grant.as_deref(),
                max_output_rows: op.max_output_rows,
                max_output_bytes: op.max_output_bytes.as_deref(),
                max_emit_bytes: None,
                max_error_length: op.max_error_length.as_deref(),
                max_log_lines: op.max_log_lines,
                max_component_size: op.max_component_size.as_deref(),
                max_compile_time: op.max_compile_time.as_deref(),
            },
        )?;
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
            config: op.config.clone().unwrap_or_default(),
            limits,
            on_error,
            watch: op.watch.unwrap_or(false),
        })
    }

    fn aggregate(&self, index: usize, op: &OperatorSpec) -> Result<OperatorConfig, JobError> {
        let field = |name: &str| format!("operator[{index}].{name}");
        let group_by = op.group_by.clone().unwrap_or_default();
        for (i, col) in group_by.iter().enumerate() {
            if group_by[..i].contains(col) {
                return Err(self.err(&field("group_by"), format!("column `{col}` is listed twice")));
            }
        }
        let window = op.window.as_ref().map(|w| self.window(&field("window"), w)).transpose()?;
        let specs: &[AggregateSpec] = op.aggregates.as_deref().unwrap_or_default();
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
                self.err(
                    &f("fn"),
                    format!(
                        "unknown function {:?}; allowed: {}",
                        a.func,
                        super::FUNCTION_NAMES
                    ),
                )
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

    /// Spark's checks on stateful plans, before anything starts: one aggregation, followed only by
    /// stateless operators; append mode on an aggregation needs a window on the watermark column.
    fn stateful_plan(
        &self,
        operators: &[OperatorConfig],
        watermark: Option<&WatermarkConfig>,
        mode: OutputMode,
    ) -> Result<(), JobError> {
        for op in operators {
            if let OperatorConfig::Dedup(d) = op {
                if d.within_watermark && watermark.is_none() {
                    return Err(self.err(
                        &format!("operator[{}].within_watermark", d.index),
                        "needs a [watermark]: as in Spark, dropDuplicatesWithinWatermark is not supported on streaming DataFrames/DataSets without watermark (a key is kept until the watermark passes its event time plus the delay); add [watermark] column = ..., delay = ..., or remove within_watermark",
                    ));
                }
            }
            if let OperatorConfig::Stateful(st) = op {
                if st.timeout == TimeoutMode::EventTime && watermark.is_none() {
                    return Err(self.err(
                        &format!("operator[{}].timeout", st.plugin.index),
                        "\"event_time\" needs a [watermark] (event-time timeouts fire when the watermark passes them, as Spark's EventTimeTimeout); add [watermark] column = ..., delay = ..., or use \"processing_time\"",
                    ));
                }
            }
        }
        let Some(first) =
            operators.iter().position(|o| matches!(o, OperatorConfig::Aggregate(_) | OperatorConfig::Stateful(_)))
        else {
            return Ok(());
        };
        let what = if matches!(operators[first], OperatorConfig::Stateful(_)) {
            "a stateful operator"
        } else {
            "an aggregation"
        };
        for later in &operators[first + 1..] {
            match later {
                OperatorConfig::Map(_) => {}
                OperatorConfig::Aggregate(a) => {
                    return Err(self.err(
                        &format!("operator[{}].kind", a.index),
                        format!("an aggregation after {what} is not supported (as in Spark's append mode chains, it would need the first one's output watermark); use one stateful step"),
                    ))
                }
                OperatorConfig::Stateful(st) => {
                    return Err(self.err(
                        &format!("operator[{}].kind", st.plugin.index),
                        format!("a stateful operator after {what} is not supported; use one stateful step"),
                    ))
                }
                OperatorConfig::Dedup(d) => {
                    return Err(self.err(
                        &format!("operator[{}].kind", d.index),
                        format!("dedup after {what} is not supported; put the dedup before it"),
                    ))
                }
                OperatorConfig::Join(j) => {
                    return Err(self.err(
                        &format!("operator[{}].kind", j.index),
                        format!("a join after {what} is not supported; join first, then aggregate"),
                    ))
                }
            }
        }
        let OperatorConfig::Aggregate(agg) = &operators[first] else {
            // A stateful operator allows append and update (Spark's flatMapGroupsWithState);
            // complete is refused with the sink, for want of an aggregation.
            return Ok(());
        };
        if mode == OutputMode::Update
            && agg.window.as_ref().is_some_and(|w| matches!(w.kind, WindowKind::Session { .. }))
        {
            return Err(self.err(
                "sink.output_mode",
                "\"update\" is not supported for session windows, as in Spark (a session that merges others would leave them in the output); use \"append\" or \"complete\"",
            ));
        }
        if mode == OutputMode::Append {
            let Some(w) = &agg.window else {
                return Err(self.err(
                    "sink.output_mode",
                    format!(
                        "\"append\" needs a window on operator[{}] (an aggregation without one never finishes a group); add window = {{ column = ..., size = ... }}, or use \"update\" or \"complete\"",
                        agg.index
                    ),
                ));
            };
            if watermark.map(|wm| wm.column.as_str()) != Some(w.column.as_str()) {
                return Err(self.err(
                    "sink.output_mode",
                    format!(
                        "\"append\" on an aggregation needs a [watermark] on the window's column `{}` (Spark's rule: without one a window never closes); add [watermark] column = \"{}\", delay = \"10 minutes\", or use \"update\" or \"complete\"",
                        w.column, w.column
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A files or console sink (the job's sink, or an output of a foreach_batch sink at `at`).
    fn sink_kind(
        &self,
        at: &str,
        format: &str,
        path: Option<&str>,
        partition_by: &[String],
        num_rows: Option<i64>,
    ) -> Result<SinkKind, JobError> {
        let f = |name: &str| format!("{at}.{name}");
        Ok(match format {
            "parquet" | "json" | "csv" => {
                self.only_for(&[(&f("num_rows"), num_rows.is_some())], format)?;
                let file_format = match format {
                    "parquet" => FileFormat::Parquet,
                    "json" => FileFormat::Json,
                    _ => FileFormat::Csv,
                };
                let path = path.ok_or_else(|| {
                    self.err(&f("path"), format!("is required for format = \"{format}\": the output directory"))
                })?;
                for (i, col) in partition_by.iter().enumerate() {
                    if partition_by[..i].contains(col) {
                        return Err(self.err(&f("partition_by"), format!("column `{col}` is listed twice")));
                    }
                }
                SinkKind::Files { format: file_format, path: PathBuf::from(path), partition_by: partition_by.to_vec() }
            }
            "console" => {
                self.only_for(
                    &[(&f("path"), path.is_some()), (&f("partition_by"), !partition_by.is_empty())],
                    "console",
                )?;
                let num_rows = self.positive(&f("num_rows"), num_rows)?.unwrap_or(20) as usize;
                SinkKind::Console { num_rows }
            }
            other => {
                let also = if at == "sink" { ", \"kafka\", \"foreach_batch\", \"foreach\"" } else { "" };
                return Err(self.err(
                    &f("format"),
                    format!("unknown format {other:?}; allowed: \"parquet\", \"json\", \"csv\", \"console\", \"kafka\"{also}"),
                ));
            }
        })
    }

    fn sink(&self, s: &SinkSpec, operators: &[OperatorConfig]) -> Result<(SinkConfig, PathBuf, Trigger), JobError> {
        let plugin_sink = s.format == "foreach_batch" || s.format == "foreach";
        if s.format != "foreach" {
            self.only_for(&[("sink.rows_per_call", s.rows_per_call.is_some())], &s.format)?;
        }
        if !plugin_sink {
            self.only_for(
                &[
                    ("sink.plugin", s.plugin.is_some()),
                    ("sink.config", s.config.is_some()),
                    ("sink.max_memory", s.max_memory.is_some()),
                    ("sink.max_call_time", s.max_call_time.is_some()),
                    ("sink.grant", s.grant.is_some()),
                    ("sink.max_output_rows", s.max_output_rows.is_some()),
                    ("sink.max_output_bytes", s.max_output_bytes.is_some()),
                    ("sink.max_emit_bytes", s.max_emit_bytes.is_some()),
                    ("sink.max_error_length", s.max_error_length.is_some()),
                    ("sink.max_log_lines", s.max_log_lines.is_some()),
                    ("sink.max_component_size", s.max_component_size.is_some()),
                    ("sink.max_compile_time", s.max_compile_time.is_some()),
                    ("sink.output", !s.outputs.is_empty()),
                ],
                &s.format,
            )?;
        }
        if s.format != "kafka" {
            self.only_for(
                &[
                    ("sink.topic", s.topic.is_some()),
                    ("sink.kafka", s.kafka.is_some()),
                    ("sink.kafka_timeout", s.kafka_timeout.is_some()),
                    ("sink.marker_topic", s.marker_topic.is_some()),
                ],
                &s.format,
            )?;
        }
        let kind = match s.format.as_str() {
            "kafka" => {
                self.only_for(
                    &[
                        ("sink.path", s.path.is_some()),
                        ("sink.partition_by", !s.partition_by.is_empty()),
                        ("sink.num_rows", s.num_rows.is_some()),
                    ],
                    "kafka",
                )?;
                // Spark's `topic` option: when set, it wins over the rows' `topic` column.
                let topic = s.topic.clone();
                if topic.as_ref().is_some_and(|t| t.trim().is_empty()) {
                    return Err(self.err("sink.topic", "must not be empty: name the topic to write to, or leave it out to take each row's `topic` column"));
                }
                SinkKind::Kafka(KafkaSinkConfig {
                    topic,
                    marker_topic: s.marker_topic.clone(),
                    marker_partition: 0,
                    client: self.kafka_client("sink", s.kafka.as_ref())?,
                    timeout: self.kafka_timeout("sink", s.kafka_timeout.as_deref())?,
                })
            }
            "foreach_batch" | "foreach" => {
                let format = s.format.as_str();
                self.only_for(
                    &[
                        ("sink.path", s.path.is_some()),
                        ("sink.partition_by", !s.partition_by.is_empty()),
                        ("sink.num_rows", s.num_rows.is_some()),
                    ],
                    format,
                )?;
                let plugin = s.plugin.as_ref().ok_or_else(|| {
                    self.err("sink.plugin", format!("is required for format = \"{format}\": the path of a .wasm component of the weir:plugin batch-sink world"))
                })?;
                let limits = self.limits(
                    "sink",
                    LimitFields {
                        max_memory: s.max_memory.as_deref(),
                        max_call_time: s.max_call_time.as_deref(),
                        grant: s.grant.as_deref(),
                        max_output_rows: s.max_output_rows,
                        max_output_bytes: s.max_output_bytes.as_deref(),
                        max_emit_bytes: s.max_emit_bytes.as_deref(),
                        max_error_length: s.max_error_length.as_deref(),
                        max_log_lines: s.max_log_lines,
                        max_component_size: s.max_component_size.as_deref(),
                        max_compile_time: s.max_compile_time.as_deref(),
                    },
                )?;
                if s.outputs.is_empty() {
                    return Err(self.err("sink.output", format!("is required for format = \"{format}\": at least one [[sink.output]] with a name, and a format and path like a sink's, for the plugin to emit to")));
                }
                let rows_per_call = self.positive("sink.rows_per_call", s.rows_per_call)?.unwrap_or(1000) as usize;
                let mut outputs = Vec::new();
                for (i, o) in s.outputs.iter().enumerate() {
                    let at = format!("sink.output[{i}]");
                    if o.name.is_empty() {
                        return Err(self.err(&format!("{at}.name"), "must not be empty"));
                    }
                    if s.outputs[..i].iter().any(|p| p.name == o.name) {
                        return Err(self.err(&format!("{at}.name"), format!("output {:?} is declared twice", o.name)));
                    }
                    let kind = if o.format == "kafka" {
                        self.only_for(
                            &[
                                (&format!("{at}.path"), o.path.is_some()),
                                (&format!("{at}.partition_by"), !o.partition_by.is_empty()),
                                (&format!("{at}.num_rows"), o.num_rows.is_some()),
                            ],
                            "kafka",
                        )?;
                        let topic = o.topic.clone();
                        if topic.as_ref().is_some_and(|t| t.trim().is_empty()) {
                            return Err(self.err(&format!("{at}.topic"), "must not be empty: name the topic to write to, or leave it out to take each row's `topic` column"));
                        }
                        SinkKind::Kafka(KafkaSinkConfig {
                            topic,
                            marker_topic: o.marker_topic.clone(),
                            marker_partition: 0,
                            client: self.kafka_client(&at, o.kafka.as_ref())?,
                            timeout: self.kafka_timeout(&at, o.kafka_timeout.as_deref())?,
                        })
                    } else {
                        self.only_for(
                            &[
                                (&format!("{at}.topic"), o.topic.is_some()),
                                (&format!("{at}.kafka"), o.kafka.is_some()),
                                (&format!("{at}.kafka_timeout"), o.kafka_timeout.is_some()),
                                (&format!("{at}.marker_topic"), o.marker_topic.is_some()),
                            ],
                            &o.format,
                        )?;
                        self.sink_kind(&at, &o.format, o.path.as_deref(), &o.partition_by, o.num_rows)?
                    };
                    outputs.push(NamedOutput { name: o.name.clone(), kind });
                }
                let config = PluginSinkConfig {
                    plugin: PathBuf::from(plugin),
                    config: s.config.clone().unwrap_or_default(),
                    limits,
                    outputs,
                    rows_per_call,
                };
                if format == "foreach" {
                    SinkKind::Foreach(config)
                } else {
                    SinkKind::ForeachBatch(config)
                }
            }
            _ => self.sink_kind("sink", &s.format, s.path.as_deref(), &s.partition_by, s.num_rows)?,
        };
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
        // Spark's unsupported-operation check: complete mode needs an aggregation to rebuild
        // the whole result table from.
        let has_aggregate = operators.iter().any(|o| matches!(o, OperatorConfig::Aggregate(_)));
        if output_mode == OutputMode::Complete && !has_aggregate {
            return Err(self.err(
                "sink.output_mode",
                "\"complete\" is not supported when there are no streaming aggregations (the result table would be the whole unbounded input); use \"append\"",
            ));
        }
        if output_mode != OutputMode::Append && matches!(kind, SinkKind::Files { .. }) {
            return Err(self.err(
                "sink.output_mode",
                "file sinks support only \"append\", as in Spark (a file cannot take back a row it wrote); use format = \"console\" for update and complete, or append with a watermark",
            ));
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
        match chosen.as_slice() {
            [one] => Ok(*one),
            [] => Err(self
                .err("sink.trigger", "set one of processing_time = \"1 second\", once = true, available_now = true")),
            _ => Err(self.err("sink.trigger", "set only one of processing_time, once, available_now")),
        }
    }
}

/// The limit settings of one plugin's table (an operator or the sink), as written.
#[derive(Clone, Copy)]
struct LimitFields<'a> {
    max_memory: Option<&'a str>,
    max_call_time: Option<&'a str>,
    grant: Option<&'a [String]>,
    max_output_rows: Option<i64>,
    max_output_bytes: Option<&'a str>,
    max_emit_bytes: Option<&'a str>,
    max_error_length: Option<&'a str>,
    max_log_lines: Option<i64>,
    max_component_size: Option<&'a str>,
    max_compile_time: Option<&'a str>,
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
                OK.replace("trigger = {", "output_mode = \"complete\"\ntrigger = {"),
                "\"complete\" is not supported when there are no streaming aggregations",
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
}
