//! The job file as written. Unknown fields are refused so that a typo never silently falls back
//! to a default. Sources, operators, sinks and outputs are enums over their `format` or `kind`:
//! each variant holds only the fields that apply to it (read by `tagged`, which keeps the
//! position of a misspelled field and names the table of a misplaced one).

use serde::de::IgnoredAny;
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::kinds::{OPERATOR_KINDS, OUTPUT_FORMATS, SINK_FORMATS, SOURCE_FORMATS};
use super::tagged::{read_list, Item, Reader, Tagged, Variant};
use super::{FileFormat, JobError, OnBadRecord};

/// The whole job file.
#[derive(Debug)]
pub(super) struct JobSpec {
    pub settings: SettingsSpec,
    pub source: SourcesSpec,
    pub operators: Vec<OperatorSpec>,
    pub sink: SinkSpec,
}

impl JobSpec {
    /// Parses the job text: a syntax error or a misspelled field is shown at its line.
    pub fn parse(r: &Reader) -> Result<JobSpec, JobError> {
        let doc = DeTable::parse(r.text).map_err(|e| r.syntax(e))?;
        let span = doc.span();
        let doc = doc.into_inner();
        let take = |key: &str| doc.get(key).cloned();
        // The tagged tables after the rest, which also says when one is missing.
        let settings: SettingsSpec = r.read(Spanned::new(span, DeValue::Table(doc.clone())))?;
        let source = take("source").expect("settings require a source");
        let source = match source.get_ref() {
            DeValue::Array(_) => SourcesSpec::Many(read_list(r, "source", source)?),
            DeValue::Table(_) => SourcesSpec::One(SourceSpec::read(r, "source", source)?),
            other => {
                let message =
                    format!("invalid type: {}, expected a [source] table or [[source]] tables", other.type_str());
                return Err(r.error_at(source.span(), message));
            }
        };
        let operators = match take("operator") {
            Some(list) => read_list(r, "operator", list)?,
            None => Vec::new(),
        };
        let sink = SinkSpec::read(r, "sink", take("sink").expect("settings require a sink"))?;
        Ok(JobSpec { settings, source, operators, sink })
    }
}

/// The job file's top level besides its sources, operators and sink.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SettingsSpec {
    pub name: Option<String>,
    /// Read by its format in `JobSpec::parse`; required here.
    #[serde(rename = "source")]
    _source: IgnoredAny,
    pub watermark: Option<WatermarkSpec>,
    pub multiple_watermark_policy: Option<String>,
    /// Read by kind in `JobSpec::parse`.
    #[serde(default, rename = "operator")]
    _operators: IgnoredAny,
    /// Read by its format in `JobSpec::parse`; required here.
    #[serde(rename = "sink")]
    _sink: IgnoredAny,
    #[serde(default)]
    pub on_bad_record: OnBadRecord,
    pub dead_letter_path: Option<String>,
    pub state_store: Option<String>,
    pub min_batches_to_retain: Option<i64>,
    pub admin: Option<AdminSpec>,
    /// `[[listener]]`: webhooks and commands told of the query's events.
    #[serde(default, rename = "listener", deserialize_with = "super::listener::listener_tables")]
    pub listeners: Vec<super::listener::ListenerSpec>,
}

/// `[admin]`: the job's admin HTTP API (plugin swaps).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AdminSpec {
    pub listen: String,
    pub token: Option<String>,
    pub probation_batches: Option<i64>,
    /// The largest component an upload may be, e.g. "64 MiB".
    pub max_upload: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WatermarkSpec {
    pub column: String,
    pub delay: String,
    pub late_rows: Option<String>,
}

/// `[source]` (one input) or `[[source]]` (several, unioned).
#[derive(Debug)]
pub(super) enum SourcesSpec {
    One(SourceSpec),
    Many(Vec<SourceSpec>),
}

/// One source: what every source has, and what its format reads.
#[derive(Debug)]
pub(super) struct SourceSpec {
    pub common: SourceCommonSpec,
    pub format: SourceFormatSpec,
}

#[derive(Debug)]
pub(super) enum SourceFormatSpec {
    /// json, csv or parquet files; a static table when `static = true`.
    Files(FileFormat, FileSourceSpec),
    Rate(RateSourceSpec),
    Kafka(KafkaSourceSpec),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SourceCommonSpec {
    pub name: Option<String>,
    /// This source's watermark delay, instead of `[watermark].delay`.
    pub watermark_delay: Option<String>,
    /// This source's event-time column, instead of `[watermark].column`.
    pub watermark_column: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSourceSpec {
    pub path: Option<String>,
    pub schema: Option<String>,
    pub max_files_per_trigger: Option<i64>,
    /// csv only.
    pub header: Option<bool>,
    pub delimiter: Option<String>,
    /// A static table (read whole, joined by a stream-static join) instead of a stream.
    #[serde(rename = "static")]
    pub is_static: Option<bool>,
    /// Static tables: "never", "on_change" or an interval.
    pub refresh: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RateSourceSpec {
    pub rows_per_second: Option<i64>,
    pub num_partitions: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KafkaSourceSpec {
    /// Topics to read (one of `subscribe`, `subscribe_pattern`, `assign`).
    pub subscribe: Option<Vec<String>>,
    pub subscribe_pattern: Option<String>,
    pub assign: Option<std::collections::BTreeMap<String, Vec<i64>>>,
    /// "earliest", "latest", or `{ topic = { "partition" = offset } }`.
    pub starting_offsets: Option<toml::Value>,
    pub max_offsets_per_trigger: Option<i64>,
    /// librdkafka settings, passed through (Spark's `kafka.` options).
    pub kafka: Option<std::collections::BTreeMap<String, toml::Value>>,
    /// Decode `value` as "json" or "csv" with `schema` (and `delimiter` for csv).
    pub value_format: Option<String>,
    pub schema: Option<String>,
    pub delimiter: Option<String>,
    pub include_headers: Option<bool>,
    pub fail_on_data_loss: Option<bool>,
    pub wait_for_topics: Option<bool>,
    /// How long to wait for the brokers before an error.
    pub kafka_timeout: Option<String>,
    /// Scale out: processes with this group share the topic's partitions.
    pub consumer_group: Option<String>,
}

/// Why a stream's field is refused on a static table.
pub(super) const NOT_FOR_A_STATIC_TABLE: &str =
    "does not apply to a static table (static = true), which is read whole from its files, not as a stream; remove it";

/// A file format's tag value as the enum the engine reads.
fn file_format(tag: &str) -> FileFormat {
    match tag {
        "json" => FileFormat::Json,
        "csv" => FileFormat::Csv,
        _ => FileFormat::Parquet,
    }
}

impl Tagged for SourceSpec {
    const TAG: &'static str = "format";
    const TAGS: &'static [&'static str] = SOURCE_FORMATS;

    fn variant(tag: &str) -> Variant<Self> {
        let make = |common: SourceCommonSpec, format| SourceSpec { common, format };
        match tag {
            "rate" => Variant::of(move |(c, s): (_, RateSourceSpec)| make(c, SourceFormatSpec::Rate(s))),
            "kafka" => Variant::of(move |(c, s): (_, KafkaSourceSpec)| make(c, SourceFormatSpec::Kafka(s))),
            files => {
                let format = file_format(files);
                Variant::of(move |(c, s): (SourceCommonSpec, FileSourceSpec)| {
                    make(c, SourceFormatSpec::Files(format, s))
                })
            }
        }
    }

    fn foreign(field: &str, tag: &str, table: &DeTable<'_>) -> String {
        let is_static = table.get("static").is_some_and(|v| matches!(v.get_ref(), DeValue::Boolean(true)));
        match field {
            _ if is_static => NOT_FOR_A_STATIC_TABLE.into(),
            "refresh" => "applies only to a static table (static = true), which is re-read when its files change; a stream reads new files as they come: remove it".into(),
            "header" if tag == "kafka" => "does not apply to a kafka source (each value is one record, without a header); remove it".into(),
            _ => format!("does not apply to format = \"{tag}\"; remove it"),
        }
    }
}

/// One `[[operator]]`, by its kind.
#[derive(Debug)]
pub(super) enum OperatorSpec {
    Map(PluginSpec, PluginOperatorSpec),
    Stateful(PluginSpec, PluginOperatorSpec, StatefulSpec),
    Dedup(DedupSpec),
    Aggregate(AggregateSpec),
    Join(JoinOperatorSpec),
}

impl Tagged for OperatorSpec {
    const TAG: &'static str = "kind";
    const TAGS: &'static [&'static str] = OPERATOR_KINDS;

    fn variant(tag: &str) -> Variant<Self> {
        match tag {
            "map" => Variant::of(|(p, o): (PluginSpec, PluginOperatorSpec)| OperatorSpec::Map(p, o)),
            "stateful" => {
                Variant::of(|(p, o, s): (PluginSpec, PluginOperatorSpec, StatefulSpec)| OperatorSpec::Stateful(p, o, s))
            }
            "dedup" => Variant::of(|(d,): (DedupSpec,)| OperatorSpec::Dedup(d)),
            "aggregate" => Variant::of(|(a,): (AggregateSpec,)| OperatorSpec::Aggregate(a)),
            _ => Variant::of(|(j,): (JoinOperatorSpec,)| OperatorSpec::Join(j)),
        }
    }

    fn foreign(field: &str, tag: &str, _: &DeTable<'_>) -> String {
        match (field, tag) {
            ("keys", "stateful") => "does not apply to kind = \"stateful\"; the key columns are `group_by`".into(),
            _ => format!("does not apply to kind = \"{tag}\"; remove it"),
        }
    }
}

/// What every plugin takes, an operator's or a sink's: the component, its config, its limits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PluginSpec {
    pub plugin: Option<String>,
    pub config: Option<String>,
    /// Memory per plugin instance (`memory_limit` is the name it had before).
    #[serde(alias = "memory_limit")]
    pub max_memory: Option<String>,
    /// CPU time per plugin call (`cpu_time_limit` is the name it had before).
    #[serde(alias = "cpu_time_limit")]
    pub max_call_time: Option<String>,
    pub grant: Option<Vec<String>>,
    /// Plugin limits besides max_memory and max_call_time (README, "Limits").
    pub max_output_rows: Option<i64>,
    pub max_output_bytes: Option<String>,
    pub max_error_length: Option<String>,
    pub max_log_lines: Option<i64>,
    pub max_component_size: Option<String>,
    pub max_compile_time: Option<String>,
}

/// What a plugin operator (`map`, `stateful`) takes besides its plugin: its error policy, and
/// whether its file is watched.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PluginOperatorSpec {
    pub on_error: Option<String>,
    pub retries: Option<i64>,
    /// Swap the plugin when its file changes.
    pub watch: Option<bool>,
}

/// `stateful`: the key columns, and which timeouts and timers the plugin may set (Spark's
/// GroupStateTimeout).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StatefulSpec {
    pub group_by: Option<Vec<String>>,
    pub timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DedupSpec {
    pub keys: Option<Vec<String>>,
    /// Spark's dropDuplicatesWithinWatermark (a key is forgotten once the watermark passes its
    /// first row's event time plus the delay).
    pub within_watermark: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AggregateSpec {
    pub group_by: Option<Vec<String>>,
    pub window: Option<WindowSpec>,
    pub aggregates: Option<Vec<AggregateCallSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JoinOperatorSpec {
    /// The other input by source name, on the left or on the right (one of the two).
    pub left: Option<String>,
    pub right: Option<String>,
    /// "inner" (default), "left_outer", ...
    #[serde(rename = "type")]
    pub join_type: Option<String>,
    /// `["k", ...]` or `[{ left = "a", right = "b" }, ...]`, checked by hand for messages that
    /// show both forms.
    pub on: Option<toml::Value>,
    pub left_prefix: Option<String>,
    pub right_prefix: Option<String>,
    /// A join of two streams: `right + from <= left <= right + to`.
    pub time_range: Option<TimeRangeSpec>,
    /// A join of two streams, both windowed on the same tumbling window.
    pub window: Option<JoinWindowSpec>,
}

/// `window = { left = "click_time", right = "impression_time", size = "10 minutes" }`; every field
/// optional here so that a missing one gets a message of its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JoinWindowSpec {
    pub left: Option<String>,
    pub right: Option<String>,
    pub size: Option<String>,
}

/// `time_range = { left = "click_time", right = "impression_time", from = "0 seconds", to = "1 hour" }`;
/// every field optional here so that a missing one gets a message of its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TimeRangeSpec {
    pub left: Option<String>,
    pub right: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WindowSpec {
    pub column: String,
    pub size: Option<String>,
    pub slide: Option<String>,
    pub gap: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AggregateCallSpec {
    #[serde(rename = "fn")]
    pub func: String,
    pub column: Option<String>,
    #[serde(rename = "as")]
    pub name: Option<String>,
}

/// `[sink]`: what every sink has, and what its format writes.
#[derive(Debug)]
pub(super) struct SinkSpec {
    pub common: SinkCommonSpec,
    pub format: SinkFormatSpec,
}

#[derive(Debug)]
pub(super) enum SinkFormatSpec {
    /// Files, the console or Kafka: what an output of a plugin sink may also be.
    Output(OutputFormatSpec),
    /// `foreach_batch` (no `rows_per_call`) or `foreach`: a plugin that emits to outputs.
    Plugin { foreach: bool, plugin: PluginSpec, sink: PluginSinkSpec, outputs: Vec<OutputSpec> },
    /// A PostgreSQL table.
    Postgres(super::postgres::PostgresSinkSpec),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SinkCommonSpec {
    pub output_mode: Option<String>,
    pub checkpoint: Option<String>,
    pub trigger: Option<TriggerSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TriggerSpec {
    pub processing_time: Option<String>,
    pub once: Option<bool>,
    pub available_now: Option<bool>,
    pub continuous: Option<String>,
}

/// A plugin sink's own fields (`foreach`; `foreach_batch` has no `rows_per_call`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PluginSinkSpec {
    /// Bytes one `write-batch` call may emit.
    pub max_emit_bytes: Option<String>,
    /// Rows per plugin call.
    pub rows_per_call: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchSinkSpec {
    max_emit_bytes: Option<String>,
}

impl Tagged for SinkSpec {
    const TAG: &'static str = "format";
    const TAGS: &'static [&'static str] = SINK_FORMATS;

    fn variant(tag: &str) -> Variant<Self> {
        let plugin = |common, plugin, sink, foreach| SinkSpec {
            common,
            format: SinkFormatSpec::Plugin { foreach, plugin, sink, outputs: Vec::new() },
        };
        match tag {
            "foreach_batch" => Variant::of(move |(c, p, s): (SinkCommonSpec, PluginSpec, BatchSinkSpec)| {
                plugin(c, p, PluginSinkSpec { max_emit_bytes: s.max_emit_bytes, rows_per_call: None }, false)
            })
            .with("output", sink_outputs),
            "foreach" => {
                Variant::of(move |(c, p, s): (SinkCommonSpec, PluginSpec, PluginSinkSpec)| plugin(c, p, s, true))
                    .with("output", sink_outputs)
            }
            "postgres" => Variant::of(|(common, p): (SinkCommonSpec, super::postgres::PostgresSinkSpec)| SinkSpec {
                common,
                format: SinkFormatSpec::Postgres(p),
            }),
            _ => output_variant(tag, |common: SinkCommonSpec, format| SinkSpec {
                common,
                format: SinkFormatSpec::Output(format),
            }),
        }
    }
}

/// `[[sink.output]]` of a plugin sink, read by their formats.
fn sink_outputs(r: &Reader, _: &str, list: Option<Item<'_>>, mut sink: SinkSpec) -> Result<SinkSpec, JobError> {
    if let (Some(list), SinkFormatSpec::Plugin { outputs, .. }) = (list, &mut sink.format) {
        *outputs = read_list(r, "sink.output", list)?;
    }
    Ok(sink)
}

/// One `[[sink.output]]` of a plugin sink.
#[derive(Debug)]
pub(super) struct OutputSpec {
    pub name: String,
    pub format: OutputFormatSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputNameSpec {
    name: String,
}

#[derive(Debug)]
pub(super) enum OutputFormatSpec {
    Files(FileFormat, FileOutputSpec),
    Console(ConsoleOutputSpec),
    Kafka(KafkaOutputSpec),
    Delta(super::delta::DeltaSinkSpec),
    /// An output of a plugin sink (the job's sink is read as `SinkFormatSpec::Postgres`).
    Postgres(super::postgres::PostgresSinkSpec),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileOutputSpec {
    pub path: Option<String>,
    #[serde(default)]
    pub partition_by: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConsoleOutputSpec {
    pub num_rows: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KafkaOutputSpec {
    /// The topic written to; it overrides a `topic` column (as Spark's option does), which is
    /// used only when this is not set.
    pub topic: Option<String>,
    /// librdkafka settings, passed through.
    pub kafka: Option<std::collections::BTreeMap<String, toml::Value>>,
    pub kafka_timeout: Option<String>,
    /// Where committed batches leave their markers.
    pub marker_topic: Option<String>,
}

/// The variant of a files, console, kafka, delta or postgres output (`tag`), with the fields `C` beside it: a
/// sink's checkpoint and trigger, or an output's name.
fn output_variant<C, T>(tag: &str, make: impl Fn(C, OutputFormatSpec) -> T + 'static) -> Variant<T>
where
    C: serde::de::DeserializeOwned + 'static,
    T: 'static,
{
    match tag {
        "console" => Variant::of(move |(c, o): (C, ConsoleOutputSpec)| make(c, OutputFormatSpec::Console(o))),
        "kafka" => Variant::of(move |(c, o): (C, KafkaOutputSpec)| make(c, OutputFormatSpec::Kafka(o))),
        "delta" => Variant::of(move |(c, o): (C, super::delta::DeltaSinkSpec)| make(c, OutputFormatSpec::Delta(o))),
        "postgres" => {
            Variant::of(move |(c, o): (C, super::postgres::PostgresSinkSpec)| make(c, OutputFormatSpec::Postgres(o)))
        }
        files => {
            let format = file_format(files);
            Variant::of(move |(c, o): (C, FileOutputSpec)| make(c, OutputFormatSpec::Files(format, o)))
        }
    }
}

impl Tagged for OutputSpec {
    const TAG: &'static str = "format";
    const TAGS: &'static [&'static str] = OUTPUT_FORMATS;

    fn variant(tag: &str) -> Variant<Self> {
        output_variant(tag, |n: OutputNameSpec, format| OutputSpec { name: n.name, format })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::tagged::fields_of;
    use super::*;

    fn parse(text: &str) -> Result<JobSpec, String> {
        JobSpec::parse(&Reader { file: Path::new("job.toml"), text }).map_err(|e| e.to_string())
    }

    const SINK: &str = "[sink]\nformat = \"console\"\ncheckpoint = \"c\"\n";

    #[test]
    fn a_misspelled_field_is_shown_where_it_is_with_the_fields_its_kind_takes() {
        let e = parse(&format!("[source]\nformat = \"rate\"\n[[operator]]\nkind = \"dedup\"\nkey = [\"a\"]\n{SINK}"))
            .unwrap_err();
        assert_eq!(
            e,
            "job file job.toml: TOML parse error at line 5, column 1\n  |\n5 | key = [\"a\"]\n  | ^^^\nunknown field `key`, expected one of `kind`, `keys`, `within_watermark`"
        );
        // Shared parts (a plugin's limits, a sink's checkpoint) are listed with the variant's own.
        let e =
            parse(&format!("[source]\nformat = \"rate\"\n[[operator]]\nkind = \"map\"\nplugn = \"a.wasm\"\n{SINK}"))
                .unwrap_err();
        assert!(e.contains("line 5, column 1"), "{e}");
        assert!(e.ends_with("expected one of `kind`, `plugin`, `config`, `max_memory`, `memory_limit`, `cpu_time_limit`, `max_call_time`, `grant`, `max_output_rows`, `max_output_bytes`, `max_error_length`, `max_log_lines`, `max_component_size`, `max_compile_time`, `on_error`, `retries`, `watch`"), "{e}");
        let e = parse("[source]\nformat = \"rate\"\n[sink]\nformat = \"foreach\"\ncheckpoint = \"c\"\n[[sink.output]]\nname = \"a\"\nformat = \"csv\"\npaht = \"x\"\n").unwrap_err();
        assert!(e.contains("line 9, column 1"), "{e}");
        assert!(e.ends_with("unknown field `paht`, expected one of `format`, `name`, `path`, `partition_by`"), "{e}");
        // Inside a variant's own tables too.
        let e = parse(&format!("[source]\nformat = \"rate\"\n[[operator]]\nkind = \"aggregate\"\nwindow = {{ column = \"t\", sise = \"1 minute\" }}\n{SINK}")).unwrap_err();
        assert!(
            e.contains("line 5, column 26")
                && e.ends_with("unknown field `sise`, expected one of `column`, `size`, `slide`, `gap`"),
            "{e}"
        );
    }

    #[test]
    fn a_field_of_another_kind_is_named_with_its_table() {
        let cases = [
            ("[source]\nformat = \"rate\"\npath = \"in\"\n", "`source.path`: does not apply to format = \"rate\"; remove it"),
            ("[[source]]\nname = \"a\"\nformat = \"kafka\"\nmax_files_per_trigger = 1\n", "`source[0].max_files_per_trigger`: does not apply to format = \"kafka\"; remove it"),
            ("[source]\nformat = \"rate\"\n[[operator]]\nkind = \"map\"\n[[operator]]\nkind = \"stateful\"\nkeys = [\"k\"]\n", "`operator[1].keys`: does not apply to kind = \"stateful\"; the key columns are `group_by`"),
            ("[source]\nformat = \"rate\"\n[[operator]]\nkind = \"join\"\nwatch = true\n", "`operator[0].watch`: does not apply to kind = \"join\"; remove it"),
            ("[source]\nformat = \"rate\"\n[sink]\nformat = \"kafka\"\npath = \"out\"\n", "`sink.path`: does not apply to format = \"kafka\"; remove it"),
            ("[source]\nformat = \"rate\"\n[sink]\nformat = \"console\"\nplugin = \"p.wasm\"\n", "`sink.plugin`: does not apply to format = \"console\"; remove it"),
            ("[source]\nformat = \"rate\"\n[sink]\nformat = \"foreach\"\n[[sink.output]]\nname = \"a\"\nformat = \"console\"\n[[sink.output]]\nname = \"b\"\nformat = \"kafka\"\nnum_rows = 5\n", "`sink.output[1].num_rows`: does not apply to format = \"kafka\"; remove it"),
        ];
        for (text, want) in cases {
            let text = if text.contains("[sink]") { text.to_string() } else { format!("{text}{SINK}") };
            let e = parse(&text).unwrap_err();
            assert!(e.ends_with(want), "want {want:?} in {e:?}");
        }
    }

    #[test]
    fn each_variant_reads_into_its_own_structs() {
        let spec = parse("[source]\nformat = \"csv\"\npath = \"in\"\nheader = false\nname = \"s\"\n[[operator]]\nkind = \"stateful\"\nplugin = \"s.wasm\"\nmemory_limit = \"8 MiB\"\nretries = 2\ngroup_by = [\"k\"]\n[sink]\nformat = \"foreach\"\nplugin = \"p.wasm\"\nrows_per_call = 10\ncheckpoint = \"c\"\n[[sink.output]]\nname = \"o\"\nformat = \"parquet\"\npath = \"out\"\n").unwrap();
        let SourcesSpec::One(SourceSpec { common, format: SourceFormatSpec::Files(FileFormat::Csv, files) }) =
            &spec.source
        else {
            panic!("one csv source: {:?}", spec.source)
        };
        assert_eq!((common.name.as_deref(), files.path.as_deref(), files.header), (Some("s"), Some("in"), Some(false)));
        let [OperatorSpec::Stateful(plugin, on_error, stateful)] = spec.operators.as_slice() else {
            panic!("{:?}", spec.operators)
        };
        assert_eq!((plugin.max_memory.as_deref(), on_error.retries), (Some("8 MiB"), Some(2)));
        assert_eq!(stateful.group_by.as_deref(), Some(&["k".to_string()][..]));
        let SinkFormatSpec::Plugin { foreach: true, sink, outputs, .. } = &spec.sink.format else {
            panic!("{:?}", spec.sink)
        };
        assert_eq!(sink.rows_per_call, Some(10));
        assert!(matches!(&outputs[..], [OutputSpec { format: OutputFormatSpec::Files(FileFormat::Parquet, _), .. }]));
        assert_eq!(spec.sink.common.checkpoint.as_deref(), Some("c"));
    }

    #[test]
    fn the_fields_of_a_struct_include_its_aliases() {
        let fields = fields_of::<PluginSpec>();
        assert!(fields.contains(&"max_memory") && fields.contains(&"memory_limit"), "{fields:?}");
        assert_eq!(fields_of::<RateSourceSpec>(), ["rows_per_second", "num_partitions"]);
    }
}
