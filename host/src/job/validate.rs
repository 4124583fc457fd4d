use std::path::{Path, PathBuf};

use super::spec::{JobSpec, OperatorSpec, SinkSpec, SourceSpec, TriggerSpec};
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
        let source = self.source(&spec.source)?;
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
                Some(WatermarkConfig { column: w.column.clone(), delay, late_rows })
            }
            None => None,
        };
        let operators =
            spec.operators.iter().enumerate().map(|(i, op)| self.operator(i, op)).collect::<Result<Vec<_>, _>>()?;
        let (sink, checkpoint, trigger) = self.sink(&spec.sink)?;
        let name =
            spec.name.unwrap_or_else(|| self.file.file_stem().and_then(|s| s.to_str()).unwrap_or("job").to_string());
        let dead_letter = match spec.dead_letter_path {
            Some(p) => PathBuf::from(p),
            None => checkpoint.join("dead_letter"),
        };
        let state_store = match spec.state_store.as_deref() {
            None | Some("memory") => StateStoreKind::Memory,
            Some("rocksdb") => StateStoreKind::RocksDb,
            Some(other) => {
                return Err(
                    self.err("state_store", format!("unknown provider {other:?}; allowed: \"memory\", \"rocksdb\""))
                )
            }
        };
        Ok(Job {
            file: self.file.to_path_buf(),
            name,
            source,
            watermark,
            operators,
            sink,
            checkpoint,
            trigger,
            on_bad_record: spec.on_bad_record,
            dead_letter,
            state_store,
        })
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

    fn source(&self, s: &SourceSpec) -> Result<SourceConfig, JobError> {
        let format = match s.format.as_str() {
            "json" => FileFormat::Json,
            "csv" => FileFormat::Csv,
            "parquet" => FileFormat::Parquet,
            "rate" => {
                self.only_for(
                    &[
                        ("source.path", s.path.is_some()),
                        ("source.schema", s.schema.is_some()),
                        ("source.max_files_per_trigger", s.max_files_per_trigger.is_some()),
                        ("source.header", s.header.is_some()),
                        ("source.delimiter", s.delimiter.is_some()),
                    ],
                    "rate",
                )?;
                let rows_per_second = self.positive("source.rows_per_second", s.rows_per_second)?.unwrap_or(1);
                let num_partitions = self.positive("source.num_partitions", s.num_partitions)?.unwrap_or(1);
                if num_partitions > 1024 {
                    return Err(self.err("source.num_partitions", "must be at most 1024"));
                }
                return Ok(SourceConfig::Rate(RateSourceConfig {
                    rows_per_second,
                    num_partitions: num_partitions as u32,
                }));
            }
            other => {
                return Err(self.err(
                    "source.format",
                    format!("unknown format {other:?}; allowed: \"json\", \"csv\", \"parquet\", \"rate\""),
                ))
            }
        };
        self.only_for(
            &[
                ("source.rows_per_second", s.rows_per_second.is_some()),
                ("source.num_partitions", s.num_partitions.is_some()),
            ],
            &s.format,
        )?;
        if format != FileFormat::Csv {
            self.only_for(
                &[("source.header", s.header.is_some()), ("source.delimiter", s.delimiter.is_some())],
                &s.format,
            )?;
        }
        let path = s.path.as_ref().ok_or_else(|| {
            self.err(
                "source.path",
                format!("is required for format = \"{}\": the directory to watch for new files", s.format),
            )
        })?;
        let schema = match &s.schema {
            Some(ddl) => Some(parse_ddl(ddl).map_err(|e| self.err("source.schema", e.to_string()))?),
            None if format == FileFormat::Parquet => None,
            None => {
                return Err(self.err(
                    "source.schema",
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
                    "source.delimiter",
                    format!("must be one ASCII character other than a quote or newline, got {d:?}"),
                ));
            }
            csv.delimiter = bytes[0];
        }
        let max_files_per_trigger =
            self.positive("source.max_files_per_trigger", s.max_files_per_trigger)?.map(|n| n as usize);
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
        match op.kind.as_str() {
            "dedup" => {
                self.only_for(
                    &[
                        (&field("plugin"), op.plugin.is_some()),
                        (&field("config"), op.config.is_some()),
                        (&field("memory_limit"), op.memory_limit.is_some()),
                        (&field("cpu_time_limit"), op.cpu_time_limit.is_some()),
                    ],
                    "dedup",
                )?;
                let keys = op.keys.clone().unwrap_or_default();
                if keys.is_empty() {
                    return Err(self.err(&field("keys"), "is required for kind = \"dedup\": the columns that identify a duplicate, e.g. [\"event_id\", \"event_time\"]"));
                }
                Ok(OperatorConfig::Dedup(DedupConfig { index, keys }))
            }
            "map" => {
                if op.keys.is_some() {
                    return Err(self.err(&field("keys"), "does not apply to kind = \"map\"; remove it"));
                }
                let plugin = op.plugin.as_ref().ok_or_else(|| {
                    self.err(
                        &field("plugin"),
                        "is required for kind = \"map\": the path of a .wasm component of the weir:plugin mapper world",
                    )
                })?;
                let mut limits = PluginLimits::default();
                if let Some(m) = &op.memory_limit {
                    limits.memory_bytes = parse_size(m).map_err(|e| self.err(&field("memory_limit"), e))?;
                }
                if let Some(c) = &op.cpu_time_limit {
                    limits.cpu_time_per_call = parse_duration(c).map_err(|e| self.err(&field("cpu_time_limit"), e))?;
                    if limits.cpu_time_per_call.is_zero() {
                        return Err(self.err(&field("cpu_time_limit"), "must be more than zero"));
                    }
                }
                Ok(OperatorConfig::Map(MapConfig {
                    index,
                    plugin: PathBuf::from(plugin),
                    config: op.config.clone().unwrap_or_default(),
                    limits,
                }))
            }
            other => {
                Err(self.err(&field("kind"), format!("unknown operator kind {other:?}; allowed: \"map\", \"dedup\"")))
            }
        }
    }

    fn sink(&self, s: &SinkSpec) -> Result<(SinkConfig, PathBuf, Trigger), JobError> {
        let kind = match s.format.as_str() {
            "parquet" | "json" | "csv" => {
                self.only_for(&[("sink.num_rows", s.num_rows.is_some())], &s.format)?;
                let format = match s.format.as_str() {
                    "parquet" => FileFormat::Parquet,
                    "json" => FileFormat::Json,
                    _ => FileFormat::Csv,
                };
                let path = s.path.as_ref().ok_or_else(|| {
                    self.err("sink.path", format!("is required for format = \"{}\": the output directory", s.format))
                })?;
                for (i, col) in s.partition_by.iter().enumerate() {
                    if s.partition_by[..i].contains(col) {
                        return Err(self.err("sink.partition_by", format!("column `{col}` is listed twice")));
                    }
                }
                SinkKind::Files { format, path: PathBuf::from(path), partition_by: s.partition_by.clone() }
            }
            "console" => {
                self.only_for(
                    &[("sink.path", s.path.is_some()), ("sink.partition_by", !s.partition_by.is_empty())],
                    "console",
                )?;
                let num_rows = self.positive("sink.num_rows", s.num_rows)?.unwrap_or(20) as usize;
                SinkKind::Console { num_rows }
            }
            other => {
                return Err(self.err(
                    "sink.format",
                    format!("unknown format {other:?}; allowed: \"parquet\", \"json\", \"csv\", \"console\""),
                ))
            }
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
        // the whole result table from; this job has none.
        if output_mode == OutputMode::Complete {
            return Err(self.err(
                "sink.output_mode",
                "\"complete\" is not supported when there are no streaming aggregations (the result table would be the whole unbounded input); use \"append\"",
            ));
        }
        if output_mode == OutputMode::Update && matches!(kind, SinkKind::Files { .. }) {
            return Err(self.err("sink.output_mode", "file sinks support only \"append\", as in Spark"));
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
memory_limit = "32 MiB"

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
            matches!(&j.source, SourceConfig::Files(f) if f.max_files_per_trigger == Some(2) && f.format == FileFormat::Json)
        );
        let OperatorConfig::Map(m) = &j.operators[0] else { panic!("a map operator") };
        assert_eq!(m.limits.memory_bytes, 32 << 20);
        assert_eq!(m.config, "tax_rate=0.1");
        assert_eq!(j.trigger, Trigger::ProcessingTime(std::time::Duration::from_secs(1)));
        assert_eq!(j.dead_letter, PathBuf::from("ckpt/dead_letter"));
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
        assert!(matches!(j.source, SourceConfig::Rate(RateSourceConfig { rows_per_second: 100, num_partitions: 1 })));
        assert_eq!(j.trigger, Trigger::Once);
    }
}
