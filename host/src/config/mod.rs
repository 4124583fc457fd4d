//! The job file (TOML, Spark's option names where they exist), parsed once into typed structs
//! and validated into a [`Job`] before anything runs. Every refusal names the field and says
//! what is allowed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow::datatypes::SchemaRef;

pub use delta::{DeltaSinkConfig, DEFAULT_MAX_LOG_FILE_BYTES as DEFAULT_DELTA_MAX_LOG_FILE_BYTES};
pub use join::{JoinKeys, JoinSpec, JoinType, KeyPair, Refresh, Side};
pub use values::{
    AggFn, LogLimits, MultipleWatermarkPolicy, OnBadRecord, WindowKind, DEFAULT_MAX_UPLOAD, FUNCTION_NAMES,
};

/// `[sink] format = "delta"`: its fields and settings.
mod delta;
/// Joins: types, keys, sides, static tables' refresh.
pub mod join;
/// Operator kinds, source and sink formats, trigger forms: checked before the typed parse.
pub mod kinds;
/// `[[listener]]`: webhooks and commands told of the query's events.
pub mod listener;
/// `[sink] format = "postgres"`: its fields and settings; passwords kept out of every print.
mod postgres;
/// The file as written: serde structs that refuse unknown fields, an enum per kind or format.
mod spec;
/// Reading a table by its `kind` or `format` into the structs of that variant, positions kept.
mod tagged;
/// Human durations and sizes: `"1 second"`, `"500 ms"`, `"64 MiB"`.
pub mod units;
/// From spec to validated job.
mod validate;
/// The values other modules give meaning to (kept here so that the config is a leaf).
mod values;

pub use self::postgres::{
    mask_url, table_parts as postgres_table_parts, ConnectionUrl, PostgresConnection, PostgresMode, PostgresSinkConfig,
    Secret,
};
pub use validate::load_job;

/// A job that passed validation: what the engine runs.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job file it came from (for messages).
    pub file: PathBuf,
    pub name: String,
    /// The streaming inputs, in the job file's order. Those no join names are unioned (they
    /// share one schema) into the stream the operators take; one a join names is that join's
    /// other side.
    pub sources: Vec<InputConfig>,
    /// Static tables (`[[source]]` with `static = true`), read whole, joined by a stream-static
    /// join.
    pub tables: Vec<TableConfig>,
    /// Event-time watermark on a source column (Spark's `withWatermark`).
    pub watermark: Option<WatermarkConfig>,
    pub operators: Vec<OperatorConfig>,
    pub sink: SinkConfig,
    pub checkpoint: PathBuf,
    pub trigger: Trigger,
    pub on_bad_record: OnBadRecord,
    /// Where bad records go under `on_bad_record = "dead_letter"` (`dead_letter_path`); none:
    /// the checkpoint's own directory for them.
    pub dead_letter: Option<PathBuf>,
    pub state_store: StateStoreKind,
    /// How many batch versions of state are kept (Spark's `minBatchesToRetain`, default 100):
    /// a replay or restart can go back to any of them; older ones are deleted.
    pub min_batches_to_retain: u64,
    /// The admin HTTP API, when configured (`[admin]` or `weir run --admin`).
    pub admin: Option<AdminConfig>,
    /// `[[listener]]`: where the query's events go, in the job file's order.
    pub listeners: Vec<listener::ListenerConfig>,
}

/// The admin API: where it listens, the bearer token it requires (the job file's, required
/// beyond loopback; else one generated at start into `CHECKPOINT/admin-token`), how many
/// batches a swapped-in plugin is on probation, and the largest upload it takes.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminConfig {
    pub listen: std::net::SocketAddr,
    pub token: Option<String>,
    pub probation_batches: u64,
    /// `[admin].max_upload`, bytes (default 64 MiB).
    pub max_upload: u64,
}

impl AdminConfig {
    /// The API every job serves when the job file has no `[admin]`: on a loopback port the
    /// system chooses, with a token generated at start (`CHECKPOINT/admin-token`).
    pub fn loopback() -> AdminConfig {
        AdminConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            token: None,
            probation_batches: 10,
            max_upload: DEFAULT_MAX_UPLOAD,
        }
    }
}

/// Written by hand so that no debug print shows the token.
impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("probation_batches", &self.probation_batches)
            .field("max_upload", &self.max_upload)
            .finish()
    }
}

/// Which provider keeps the state of stateful operators (`state_store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateStoreKind {
    /// In memory, persisted as deltas and snapshots: fast, for state that fits in memory.
    #[default]
    Memory,
    /// RocksDB on disk: for state larger than memory.
    RocksDb,
}

/// One input of the job: a `[source]` table, or one of several `[[source]]` tables.
#[derive(Debug, Clone)]
pub struct InputConfig {
    /// Required with several sources (it keys their ranges in the offsets log and their
    /// watermarks in the commits log), optional with one.
    pub name: Option<String>,
    /// Where it is in the job file, for messages: `source` or `source[i]`.
    pub field: String,
    pub source: SourceConfig,
    /// This input's watermark delay, instead of `[watermark].delay`.
    pub watermark_delay: Option<Duration>,
    /// This input's event-time column (`watermark_column`), instead of `[watermark].column`: a
    /// stream joined to another has its own columns.
    pub watermark_column: Option<String>,
}

/// A static table: `[[source]]` with `static = true`. Every file of the directory, read as one
/// table (Spark's `spark.read`), re-read when its files change (`refresh`).
#[derive(Debug, Clone)]
pub struct TableConfig {
    /// Required: a join names the table by it.
    pub name: String,
    /// Where it is in the job file (`source[i]`), for messages.
    pub field: String,
    pub path: PathBuf,
    pub format: FileFormat,
    /// Declared schema; required for json and csv, for parquet the first file's when absent.
    pub schema: Option<SchemaRef>,
    pub csv: CsvOptions,
    pub refresh: Refresh,
}

impl InputConfig {
    /// How messages name this input: its name, else where it is in the job file.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("source {n:?}"),
            None => self.field.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum SourceConfig {
    Files(FileSourceConfig),
    Rate(RateSourceConfig),
    Kafka(KafkaSourceConfig),
}

/// A Kafka source (Spark's `format("kafka")`).
#[derive(Debug, Clone)]
pub struct KafkaSourceConfig {
    pub topics: KafkaTopics,
    pub starting_offsets: StartingOffsets,
    /// At most this many records per batch, over all partitions (`maxOffsetsPerTrigger`).
    pub max_offsets_per_trigger: Option<u64>,
    /// librdkafka settings (`bootstrap.servers`, security, ...), passed through.
    pub client: std::collections::BTreeMap<String, String>,
    /// Decode `value` into these columns (Spark's `from_json` / `from_csv`); `None`: the raw
    /// Kafka columns.
    pub value: Option<KafkaValue>,
    pub include_headers: bool,
    /// Offsets no longer in the topic (retention) stop the job (`failOnDataLoss`, default), or
    /// are skipped and counted.
    pub fail_on_data_loss: bool,
    /// A subscribed topic that does not exist: wait for it instead of an error.
    pub wait_for_topics: bool,
    /// How long to wait for the brokers before an error.
    pub timeout: Duration,
    /// Scale-out: the Kafka consumer group through which processes running this job share the
    /// partitions (each partition a task with its own checkpoint, state and output).
    pub consumer_group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KafkaTopics {
    Subscribe(Vec<String>),
    Pattern(String),
    Assign(std::collections::BTreeMap<String, Vec<i32>>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartingOffsets {
    Earliest,
    Latest,
    /// Per topic and partition; -2 is earliest, -1 latest (Spark's JSON form). Partitions not
    /// listed start at the earliest.
    Specific(std::collections::BTreeMap<String, std::collections::BTreeMap<i32, i64>>),
}

#[derive(Debug, Clone)]
pub struct KafkaValue {
    pub format: KafkaValueFormat,
    pub schema: SchemaRef,
    pub csv: CsvOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaValueFormat {
    Json,
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Json,
    Csv,
    Parquet,
}

impl FileFormat {
    /// The file extension written by sinks and expected (not required) of source files.
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Json => "json",
            FileFormat::Csv => "csv",
            FileFormat::Parquet => "parquet",
        }
    }
}

#[derive(Debug, Clone)]
pub struct FileSourceConfig {
    pub path: PathBuf,
    pub format: FileFormat,
    /// Declared schema; for parquet without one, the first file's schema.
    pub schema: Option<SchemaRef>,
    /// At most this many new files per micro-batch (Spark's `maxFilesPerTrigger`).
    pub max_files_per_trigger: Option<usize>,
    pub csv: CsvOptions,
}

#[derive(Debug, Clone, Copy)]
pub struct CsvOptions {
    /// The first line of each file names the columns (Spark's `header`); skipped when true.
    pub header: bool,
    pub delimiter: u8,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self { header: true, delimiter: b',' }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RateSourceConfig {
    pub rows_per_second: u64,
    pub num_partitions: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatermarkConfig {
    /// A timestamp column of the source (checked against the schema when the job starts).
    pub column: String,
    /// How late an event may be: an input's watermark is the max event time it has seen minus
    /// this (or minus its own `watermark_delay`).
    pub delay: Duration,
    /// With several sources: whether the slowest or the fastest input's watermark is the query's.
    pub policy: MultipleWatermarkPolicy,
    /// What stateful operators do with rows behind the watermark.
    pub late_rows: LateRows,
}

/// Rows behind the watermark are dropped by stateful operators, as in Spark, and counted; they
/// can also be kept in the dead-letter output with the reason `late`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LateRows {
    #[default]
    Drop,
    DeadLetter,
}

#[derive(Debug, Clone)]
pub enum OperatorConfig {
    Map(MapConfig),
    Stateful(StatefulConfig),
    Dedup(DedupConfig),
    Aggregate(AggregateConfig),
    Join(JoinConfig),
}

/// A `join` operator: the stream so far (the operators before it, over the unioned streams) on
/// one side, and on the other a static table or another streaming source, named.
#[derive(Debug, Clone)]
pub struct JoinConfig {
    pub index: usize,
    /// The other input's name: a `[[source]]` (static table or stream) the job names.
    pub other: String,
    /// Which side the other input is on (`right = "users"`: Right; `left = "users"`: Left).
    pub other_side: Side,
    /// Type, keys, prefixes.
    pub spec: JoinSpec,
    /// Stream-stream only: `right + from <= left <= right + to` on the sides' event-time columns.
    pub time_range: Option<TimeRange>,
    /// Stream-stream only: both sides windowed on the same tumbling window, joined on it too.
    pub window: Option<JoinWindow>,
}

/// `window = { left = "click_time", right = "impression_time", size = "10 minutes" }`: each side
/// gets Spark's `window(column, size)` as `window_start`, `window_end`, and the join matches rows
/// of the same window (Spark's join on `[keys..., "window"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinWindow {
    pub left: String,
    pub right: String,
    pub size_micros: i64,
}

/// `time_range = { left = "click_time", right = "impression_time", from = "0 seconds", to = "1 hour" }`:
/// `right + from <= left <= right + to` (both bounds inclusive; from and to may be negative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeRange {
    pub left: String,
    pub right: String,
    pub from_micros: i64,
    pub to_micros: i64,
}

/// An `aggregate` operator: Spark's `groupBy(group_by [, window]).agg(aggregates)`.
#[derive(Debug, Clone)]
pub struct AggregateConfig {
    pub index: usize,
    pub group_by: Vec<String>,
    pub window: Option<WindowConfig>,
    pub aggregates: Vec<AggregateCall>,
}

/// An event-time window over a timestamp column.
#[derive(Debug, Clone)]
pub struct WindowConfig {
    pub column: String,
    pub kind: WindowKind,
}

/// One aggregate: `func(column) AS name` (no column: `count(*)`).
#[derive(Debug, Clone)]
pub struct AggregateCall {
    pub func: AggFn,
    pub column: Option<String>,
    pub name: String,
}

/// A `dedup` operator: Spark's `dropDuplicates(keys)` or `dropDuplicatesWithinWatermark(keys)`.
#[derive(Debug, Clone)]
pub struct DedupConfig {
    pub index: usize,
    pub keys: Vec<String>,
    /// Spark's `dropDuplicatesWithinWatermark(keys)`: needs a watermark; each key is kept until
    /// the watermark passes its first row's event time plus the delay.
    pub within_watermark: bool,
}

/// A `stateful` operator: a component of the `stateful` world over the rows of each key
/// (Spark's flatMapGroupsWithState / applyInPandasWithState / transformWithState).
#[derive(Debug, Clone)]
pub struct StatefulConfig {
    /// The component and its settings (as a map operator's).
    pub plugin: MapConfig,
    pub group_by: Vec<String>,
    pub timeout: TimeoutMode,
}

/// Which timeouts and timers a stateful plugin may set: `timeout` in the job (Spark's
/// GroupStateTimeout). Under `event_time`, rows behind the watermark are late and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutMode {
    None,
    ProcessingTime,
    EventTime,
}

/// The settings of a plugin operator (`map`, `stateful`): a component of the operator's world.
#[derive(Debug, Clone)]
pub struct MapConfig {
    /// Position in the job's `[[operator]]` list, for messages.
    pub index: usize,
    pub plugin: PathBuf,
    /// Passed to the plugin's `init`.
    pub config: String,
    pub limits: PluginLimits,
    pub on_error: OnPluginError,
    /// Swap the plugin in whenever its file changes (`watch = true`, for development).
    pub watch: bool,
}

/// What a map operator does when its plugin fails on a batch (a trap, a limit, an error
/// without a row): `on_error` in the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnPluginError {
    /// Stop the job with the error (default).
    #[default]
    Fail,
    /// Call again up to this many times (a fresh instance each time), then fail.
    Retry(u32),
    /// Find the rows that make it fail (by halving the batch), write them to the dead-letter
    /// output with the error, and go on with the others.
    DeadLetter,
}

/// What a plugin may use per instance and per call. Every limit has a default a job does not
/// hit by accident and a setting of the operator (or sink) to change it (README, "Limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// `max_memory`: all linear memories and tables of one instance together.
    pub memory_bytes: usize,
    /// `max_call_time`.
    pub cpu_time_per_call: Duration,
    /// The real wall and monotonic clocks (else both read the epoch).
    pub grant_clock: bool,
    /// Fresh randomness (else a fixed-seed generator: the same numbers every call and run).
    pub grant_random: bool,
    /// `max_output_rows`: rows one call may return (a map's `rows` selection, a stateful call's
    /// outputs, the rows a batch-sink call emits).
    pub output_rows: u64,
    /// `max_output_bytes`: bytes one call's result may take once materialised, counting input
    /// columns passed through at the selected rows (checked before they are copied).
    pub output_bytes: u64,
    /// `max_emit_bytes`: bytes a batch-sink plugin may emit during one `write-batch` call.
    pub emit_bytes: u64,
    /// `max_error_length`: an error message a plugin returns is cut to this many bytes.
    pub error_bytes: usize,
    /// `max_component_size`: a component file larger than this is refused before it is read.
    pub component_bytes: u64,
    /// `max_compile_time`: a component that takes longer to compile is refused.
    pub compile_time: Duration,
    /// `max_log_lines` and the fixed limits of the plugin's log.
    pub log: LogLimits,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            cpu_time_per_call: Duration::from_secs(10),
            grant_clock: false,
            grant_random: false,
            output_rows: 1 << 24,
            output_bytes: 512 << 20,
            emit_bytes: 512 << 20,
            error_bytes: 4096,
            component_bytes: 128 << 20,
            compile_time: Duration::from_secs(300),
            log: LogLimits::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub kind: SinkKind,
    pub output_mode: OutputMode,
}

#[derive(Debug, Clone)]
pub enum SinkKind {
    Files {
        format: FileFormat,
        path: PathBuf,
        partition_by: Vec<String>,
    },
    Console {
        num_rows: usize,
    },
    /// Spark's foreachBatch: a batch-sink plugin gets each micro-batch and emits to `outputs`,
    /// exactly once per batch.
    ForeachBatch(PluginSinkConfig),
    /// Spark's foreach: the same plugin over calls of `rows_per_call` rows, each call's emits
    /// written as it returns (at least once).
    Foreach(PluginSinkConfig),
    /// Kafka, exactly once (a transaction per batch).
    Kafka(KafkaSinkConfig),
    /// A Delta Lake table, exactly once (a `txn` action in each batch's commit).
    Delta(DeltaSinkConfig),
    /// PostgreSQL, exactly once (a transaction per batch, with a progress row).
    Postgres(PostgresSinkConfig),
}

#[derive(Debug, Clone)]
pub struct KafkaSinkConfig {
    /// Spark's `topic` option: every row goes there, whatever its `topic` column says. Unset,
    /// each row's `topic` column names its topic.
    pub topic: Option<String>,
    /// The topic where each committed batch leaves a marker (default `weir-sink-<query id>`,
    /// one partition, created at start).
    pub marker_topic: Option<String>,
    /// The marker topic's partition this query writes its markers to (scale-out: the input
    /// partition of the task).
    pub marker_partition: i32,
    /// librdkafka settings, passed through.
    pub client: std::collections::BTreeMap<String, String>,
    /// How long to wait for the brokers (init, commit) before an error.
    pub timeout: Duration,
}

/// A `foreach_batch` or `foreach` sink: the plugin and the outputs it may emit to.
#[derive(Debug, Clone)]
pub struct PluginSinkConfig {
    pub plugin: PathBuf,
    pub config: String,
    pub limits: PluginLimits,
    pub outputs: Vec<NamedOutput>,
    /// foreach only: rows per `write-batch` call.
    pub rows_per_call: usize,
}

/// An output a foreach_batch or foreach plugin emits to by name: files, console, Kafka, Delta
/// or PostgreSQL.
#[derive(Debug, Clone)]
pub struct NamedOutput {
    pub name: String,
    pub kind: SinkKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    Append,
    Update,
    Complete,
}

/// When micro-batches run (Spark's `Trigger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Start a batch every interval (zero: as soon as the previous one ends, Spark's default).
    ProcessingTime(Duration),
    /// One batch over what is available, then stop.
    Once,
    /// Everything available at start, in as many batches as the limits allow, then stop.
    AvailableNow,
    /// Spark's continuous processing: records go through as they arrive; every interval an
    /// epoch ends (its offsets checkpointed, the sink committed). Map-like jobs only.
    Continuous(Duration),
}

impl Job {
    /// Where bad records go: `dead_letter_path`, else the checkpoint's own directory for them.
    pub fn dead_letter_dir(&self, checkpoint_default: impl FnOnce(&Path) -> PathBuf) -> PathBuf {
        self.dead_letter.clone().unwrap_or_else(|| checkpoint_default(&self.checkpoint))
    }

    /// Loads and validates `path`.
    pub fn load(path: &Path) -> Result<Job, JobError> {
        load_job(path)
    }
}

/// A job file that cannot run, with the field at fault and what is allowed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cannot read job file {file}: {source}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("job file {file}: {message}")]
    Syntax { file: PathBuf, message: String },
    #[error("job file {file}: `{field}`: {message}")]
    Field { file: PathBuf, field: String, message: String },
}
