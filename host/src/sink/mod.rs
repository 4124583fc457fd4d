//! Sinks: where rows go. Every sink writes the output of a batch id at most once, however often
//! the engine retries the batch after a crash: that, with the write-ahead offsets log, is what
//! makes the pipeline exactly-once.

use arrow::record_batch::RecordBatch;

/// Prints each batch as a table (for trying things out; no exactly-once promise).
pub mod console;
/// A Delta Lake table: a commit per batch with its `txn`, MERGE upserts, schema evolution.
pub mod delta;
/// A compactible metadata log (Spark's `CompactibleFileStreamLog`): a file sink's logs.
pub mod file_log;
/// Parquet, json-lines and csv files with a commit log (`_weir_log/`) beside the data.
pub mod files;
/// foreach: a batch-sink plugin over calls of a few rows, outputs written per call (at least once).
pub mod foreach;
/// foreachBatch: a batch-sink plugin emits to declared outputs, each written exactly once.
pub mod foreach_batch;
/// Kafka, exactly once: a transaction per batch, with a marker of the batch committed in it.
#[cfg(feature = "kafka")]
pub mod kafka;
/// The named outputs of a sink plugin.
mod outputs;
/// PostgreSQL, exactly once: a transaction per batch with a progress row; binary COPY, upserts.
pub mod postgres;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {message}")]
    Encode { context: String, message: String },
    /// The output does not fit the sink (a `partition_by` column missing from the output).
    #[error("{0}")]
    Invalid(String),
    /// A foreach_batch plugin failed on the batch.
    #[error(transparent)]
    Plugin(Box<crate::plugin::PluginError>),
}

/// What the engine needs from any sink.
pub trait Sink: Send {
    /// Shown in progress records (`sink.description`).
    fn description(&self) -> String;

    /// Connects, once the checkpoint exists (`query_id` is its id): a sink that talks to a
    /// service does it here, so a job refused for its job file leaves no checkpoint behind.
    fn start(&mut self, _query_id: &str) -> Result<(), SinkError> {
        Ok(())
    }

    /// The rows now have these columns (a hot swap of the last operator added nullable ones):
    /// later batches are written with them.
    fn set_schema(&mut self, _schema: arrow::datatypes::SchemaRef) -> Result<(), SinkError> {
        Ok(())
    }

    /// Writes the output of `batch_id`. Idempotent: when the batch is already committed in the
    /// sink (a crash came after the sink's commit and before the checkpoint's), it writes nothing.
    /// Returns the number of rows written by this call.
    fn write_batch(&mut self, batch_id: u64, data: &[RecordBatch]) -> Result<u64, SinkError>;

    /// Whether this query's batch `batch_id` is already committed here (the sink's own log or
    /// markers have it). A restart asks before replaying a batch the checkpoint has no commit
    /// for: a batch some output has committed replays with the plugin versions that wrote it;
    /// one no output has is run with the job's current plugins. Sinks that keep no record of
    /// their own (console, foreach: at least once) say no.
    fn committed(&mut self, _batch_id: u64) -> Result<bool, SinkError> {
        Ok(false)
    }

    /// Rows of the last `write_batch` that the sink's target refused and sent to the dead-letter
    /// output itself (the postgres sink under `on_bad_record = "dead_letter"`); counted in the
    /// progress record's `numDeadLetterRows`.
    fn dead_letter_rows(&self) -> u64 {
        0
    }

    /// Continuous trigger: rows of epoch `epoch` as they come (the plan lets only sinks that
    /// take them run continuously). The default writes them at once as a batch of their own
    /// (console; at least once). Returns the number of rows written.
    fn write_now(&mut self, epoch: u64, data: &[RecordBatch]) -> Result<u64, SinkError> {
        self.write_batch(epoch, data)
    }

    /// Continuous trigger: epoch `epoch` ended and its offsets are in the checkpoint: what
    /// `write_now` wrote for it becomes final (Kafka: its transaction commits, with the
    /// epoch's marker, so a replay of the epoch writes nothing again).
    fn commit_epoch(&mut self, _epoch: u64) -> Result<(), SinkError> {
        Ok(())
    }

    /// Continuous trigger: the epoch failed; what it wrote that is not final is dropped.
    fn abort_epoch(&mut self) {}
}
