//! weir: Spark Structured Streaming semantics in one native process, with user logic as
//! sandboxed WebAssembly components.
//!
//! Data flows through the modules in this order:
//! `config` (the job file's typed structs) → `plan` (schemas, Spark's checks, the graph of
//! `source`s, `operator`s and the `sink`) → `engine` (runs the graph as checkpointed
//! micro-batches over one `Operator` trait, using `checkpoint`, `state` and `plugin`, and
//! reports `progress`); `swap` puts new plugin versions in between batches; `cli` is the
//! `weir` command.

/// The job's admin HTTP API: plugin hot swaps, rollback, history.
pub mod admin;
/// Writing a file so that readers see all of it or nothing.
pub mod atomic_file;
/// The job file's typed structs (a leaf: it imports nothing above it).
pub mod config;
/// The job file's structs under the name they had before `config` (kept for code that names them so).
pub use config as job;
/// The checkpoint directory: write-ahead offsets log, commits log, metadata.
pub mod checkpoint;
/// The `weir` command line.
pub mod cli;
/// Records that could not be processed, kept with the reason instead of vanishing.
pub mod deadletter;
/// The micro-batch loop over the planned graph: trigger, offsets, run, commit.
pub mod engine;
/// Which optional parts (cargo features `kafka`, `rocksdb`) this binary was built with.
pub mod features;
/// Decoding input files (json lines, csv, parquet) into Arrow batches and encoding output files.
pub mod format;
/// Watching a running query: status, progress, events for listeners and metrics, stop.
pub mod monitor;
/// Operators over Arrow batches.
pub mod operator;
/// From config to the graph the engine runs: schemas, Spark's checks, operators ready to open.
pub mod plan;
/// The wasmtime runtime: components compiled once, instantiated cheaply, sandboxed and capped.
pub mod plugin;
/// Per-batch progress records with Spark's `StreamingQueryProgress` field names.
pub mod progress;
/// Unpredictable bytes from the OS: the admin API's generated token, each run's `runId`.
pub mod random;
/// Scale-out across processes: a Kafka consumer group shares the partitions, one task each.
#[cfg(feature = "kafka")]
pub mod scale_out;
/// Spark DDL schema strings (`"id string, amount double"`) to Arrow schemas.
pub mod schema;
/// Where rows go: files with an exactly-once commit log, the console.
pub mod sink;
/// Where rows come from: a directory of files, the rate generator; several unioned.
pub mod source;
/// Versioned state of stateful operators: batch N starts from what batch N−1 committed.
pub mod state;
/// Hot swap of plugins between batches: versions kept, probation, rollback.
pub mod swap;
/// Event-time watermarks: max event time seen minus the delay, carried from batch to batch.
pub mod watermark;
