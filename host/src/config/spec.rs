use serde::Deserialize;

use super::OnBadRecord;

/// The job file as written. Unknown fields are refused so a typo never silently falls back to a
/// default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JobSpec {
    pub name: Option<String>,
    pub source: SourcesSpec,
    pub watermark: Option<WatermarkSpec>,
    pub multiple_watermark_policy: Option<String>,
    #[serde(default, rename = "operator")]
    pub operators: Vec<OperatorSpec>,
    pub sink: SinkSpec,
    #[serde(default)]
    pub on_bad_record: OnBadRecord,
    pub dead_letter_path: Option<String>,
    pub state_store: Option<String>,
    pub min_batches_to_retain: Option<i64>,
    pub admin: Option<AdminSpec>,
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
pub(super) struct SourceSpec {
    pub name: Option<String>,
    pub format: String,
    pub path: Option<String>,
    pub schema: Option<String>,
    pub max_files_per_trigger: Option<i64>,
    pub header: Option<bool>,
    pub delimiter: Option<String>,
    pub rows_per_second: Option<i64>,
    pub num_partitions: Option<i64>,
    pub watermark_delay: Option<String>,
    /// kafka: topics to read (one of `subscribe`, `subscribe_pattern`, `assign`).
    pub subscribe: Option<Vec<String>>,
    pub subscribe_pattern: Option<String>,
    pub assign: Option<std::collections::BTreeMap<String, Vec<i64>>>,
    /// kafka: "earliest", "latest", or `{ topic = { "partition" = offset } }`.
    pub starting_offsets: Option<toml::Value>,
    pub max_offsets_per_trigger: Option<i64>,
    /// kafka: librdkafka settings, passed through (Spark's `kafka.` options).
    pub kafka: Option<std::collections::BTreeMap<String, toml::Value>>,
    /// kafka: decode `value` as "json" or "csv" with `schema`.
    pub value_format: Option<String>,
    pub include_headers: Option<bool>,
    pub fail_on_data_loss: Option<bool>,
    pub wait_for_topics: Option<bool>,
    /// kafka: how long to wait for the brokers before an error.
    pub kafka_timeout: Option<String>,
    /// kafka: scale out: processes with this group share the topic's partitions.
    pub consumer_group: Option<String>,
    /// A static table (read whole, joined by a stream-static join) instead of a stream.
    #[serde(rename = "static")]
    pub is_static: Option<bool>,
    /// Static tables: "never", "on_change" or an interval.
    pub refresh: Option<String>,
    /// This source's event-time column, instead of `[watermark].column`.
    pub watermark_column: Option<String>,
}

/// `[source]` (one input) or `[[source]]` (several, unioned). Written by hand rather than as an
/// untagged enum so that a mistake inside a source table keeps its own message (unknown field,
/// with its position) instead of "did not match any variant".
#[derive(Debug)]
pub(super) enum SourcesSpec {
    One(SourceSpec),
    Many(Vec<SourceSpec>),
}

impl<'de> Deserialize<'de> for SourcesSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SourcesSpec;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a [source] table or [[source]] tables")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<SourcesSpec, A::Error> {
                SourceSpec::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(SourcesSpec::One)
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<SourcesSpec, A::Error> {
                Vec::<SourceSpec>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(SourcesSpec::Many)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WatermarkSpec {
    pub column: String,
    pub delay: String,
    pub late_rows: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OperatorSpec {
    pub kind: String,
    pub plugin: Option<String>,
    pub config: Option<String>,
    /// Memory per plugin instance (`memory_limit` is the name it had before).
    #[serde(alias = "memory_limit")]
    pub max_memory: Option<String>,
    /// CPU time per plugin call (`cpu_time_limit` is the name it had before).
    #[serde(alias = "cpu_time_limit")]
    pub max_call_time: Option<String>,
    pub keys: Option<Vec<String>>,
    /// `dedup`: Spark's dropDuplicatesWithinWatermark (a key is forgotten once the watermark
    /// passes its first row's event time plus the delay).
    pub within_watermark: Option<bool>,
    pub on_error: Option<String>,
    pub grant: Option<Vec<String>>,
    /// Plugin limits besides max_memory and max_call_time (README, "Limits").
    pub max_output_rows: Option<i64>,
    pub max_output_bytes: Option<String>,
    pub max_error_length: Option<String>,
    pub max_log_lines: Option<i64>,
    pub max_component_size: Option<String>,
    pub max_compile_time: Option<String>,
    pub retries: Option<i64>,
    /// Plugin operators: swap the plugin when its file changes.
    pub watch: Option<bool>,
    pub group_by: Option<Vec<String>>,
    /// `stateful`: which timeouts and timers the plugin may set (Spark's GroupStateTimeout).
    pub timeout: Option<String>,
    pub window: Option<WindowSpec>,
    pub aggregates: Option<Vec<AggregateSpec>>,
    /// `join`: the other input by source name, on the left or on the right (one of the two).
    pub left: Option<String>,
    pub right: Option<String>,
    /// `join`: "inner" (default), "left_outer", ...
    #[serde(rename = "type")]
    pub join_type: Option<String>,
    /// `join`: `["k", ...]` or `[{ left = "a", right = "b" }, ...]`, checked by hand for messages
    /// that show both forms.
    pub on: Option<toml::Value>,
    pub left_prefix: Option<String>,
    pub right_prefix: Option<String>,
    /// `join` of two streams: `right + from <= left <= right + to`.
    pub time_range: Option<TimeRangeSpec>,
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
pub(super) struct AggregateSpec {
    #[serde(rename = "fn")]
    pub func: String,
    pub column: Option<String>,
    #[serde(rename = "as")]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SinkSpec {
    pub format: String,
    pub path: Option<String>,
    #[serde(default)]
    pub partition_by: Vec<String>,
    pub output_mode: Option<String>,
    pub checkpoint: Option<String>,
    pub trigger: Option<TriggerSpec>,
    pub num_rows: Option<i64>,
    /// `foreach_batch`: the plugin (a component of the batch-sink world) and its settings.
    pub plugin: Option<String>,
    pub config: Option<String>,
    #[serde(alias = "memory_limit")]
    pub max_memory: Option<String>,
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
    /// `foreach_batch`, `foreach`: bytes one `write-batch` call may emit.
    pub max_emit_bytes: Option<String>,
    /// `foreach`: rows per plugin call.
    pub rows_per_call: Option<i64>,
    /// `kafka`: the topic written to; it overrides a `topic` column (as Spark's option does),
    /// which is used only when this is not set.
    pub topic: Option<String>,
    /// `kafka`: librdkafka settings, passed through.
    pub kafka: Option<std::collections::BTreeMap<String, toml::Value>>,
    pub kafka_timeout: Option<String>,
    /// `kafka`: where committed batches leave their markers.
    pub marker_topic: Option<String>,
    /// `foreach_batch`, `foreach`: the outputs the plugin may emit to.
    #[serde(default, rename = "output")]
    pub outputs: Vec<OutputSpec>,
}

/// One `[[sink.output]]` of a foreach_batch sink.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OutputSpec {
    pub name: String,
    pub format: String,
    pub path: Option<String>,
    #[serde(default)]
    pub partition_by: Vec<String>,
    pub num_rows: Option<i64>,
    /// format = "kafka": as the kafka sink's.
    pub topic: Option<String>,
    pub kafka: Option<std::collections::BTreeMap<String, toml::Value>>,
    pub kafka_timeout: Option<String>,
    pub marker_topic: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TriggerSpec {
    pub processing_time: Option<String>,
    pub once: Option<bool>,
    pub available_now: Option<bool>,
}
