//! Sources: where rows come from. A source plans batches as serialisable offset ranges (written
//! to the offsets log before the batch runs) and reads a planned range deterministically, so a
//! batch replayed after a crash sees exactly the same rows.

use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::deadletter::{BadRecordError, BadRecords};

/// [`Source::idle_poll`]'s default: how long an idle query waits before asking a source again.
/// Spark polls every 10 ms; files rarely arrive that fast, and listing a directory is not free.
pub const IDLE_POLL: Duration = Duration::from_millis(100);

/// The continuous trigger's view of a source: records as they arrive, ranges per epoch.
pub mod continuous;
/// Files arriving in a directory (json lines, csv, parquet).
pub mod files;
/// Kafka topics: offset ranges per partition, read from the brokers.
#[cfg(feature = "kafka")]
pub mod kafka;
/// The rate generator: `timestamp`, `value` rows at a fixed rate.
pub mod rate;
/// Several sources read as one stream (Spark's union), their ranges keyed by name.
pub mod union;

/// Why a source could not plan or read a batch.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A record that the job's policy says must stop the job.
    #[error(transparent)]
    BadRecord(#[from] BadRecordError),
    /// The input cannot be read at all (missing directory, unreadable file, parquet footer).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The input does not fit the job (a parquet file whose schema differs from the declared one,
    /// an offsets entry written by another kind of source).
    #[error("{0}")]
    Invalid(String),
}

/// What the engine needs from any source.
pub trait Source: Send {
    /// Shown in progress records (`sources[].description`), as Spark's `FileStreamSource[path]`.
    fn description(&self) -> String;

    /// The schema of every batch `read` returns.
    fn schema(&self) -> SchemaRef;

    /// Called once at start with the offsets of every batch already planned in the checkpoint,
    /// oldest first, so the source knows what it has handed out (files seen, rows generated).
    fn restore(&mut self, planned: &[serde_json::Value]) -> Result<(), SourceError>;

    /// Folds ranges this source planned (oldest first) into fewer that `restore` takes to the
    /// same effect, so that the checkpoint can drop the offsets entries of old batches (past
    /// `min_batches_to_retain`) and a restart reads what it keeps, not every batch's entry.
    /// The default keeps them all.
    fn compact_ranges(&self, planned: Vec<serde_json::Value>) -> Result<Vec<serde_json::Value>, SourceError> {
        Ok(planned)
    }

    /// Plans the next batch after everything planned so far: the offset range it covers, or
    /// `None` when there is no new data. `now_micros` is the engine's clock (injected for tests).
    fn plan_next(&mut self, now_micros: i64) -> Result<Option<serde_json::Value>, SourceError>;

    /// Reads the rows of a range returned by `plan_next` (now or before a restart). The same range
    /// must give the same rows. Records that cannot be decoded go to `bad` (which errors under
    /// `on_bad_record = "fail"`).
    fn read(&mut self, range: &serde_json::Value, bad: &mut BadRecords) -> Result<Vec<RecordBatch>, SourceError>;

    /// `available_now`: from here on, plan only data that exists now (Spark fixes the end
    /// offset when the query starts), still in batches bounded by the per-trigger limits.
    fn snapshot_available_now(&mut self) -> Result<(), SourceError> {
        Ok(())
    }

    /// `once`: the next plan takes everything available in one batch, ignoring
    /// `max_files_per_trigger` (as Spark's Trigger.Once does).
    fn ignore_trigger_limits(&mut self) {}

    /// Splits a planned range into pieces that `read` takes one after another, in order, so a
    /// batch's rows need not all be in memory at once (files: a few files per piece). Reading the
    /// pieces in order gives the rows of the whole range, in the same order.
    fn pieces(&self, range: &serde_json::Value) -> Result<Vec<serde_json::Value>, SourceError> {
        Ok(vec![range.clone()])
    }

    /// A short description of a range for messages (e.g. the files it covers).
    fn describe_range(&self, range: &serde_json::Value) -> String {
        range.to_string()
    }

    /// Spark's `latestOffset` in progress records: the newest data the source knew of when it
    /// last planned (Kafka: the partitions' end offsets). None where there is no such thing.
    fn latest_offset(&self) -> Option<serde_json::Value> {
        None
    }

    /// How long an idle query (nothing new at its last plan) waits before planning again, when
    /// the trigger interval is shorter (`processing_time = "0 seconds"`): what a record that
    /// arrives just after an empty plan waits at most before its batch starts. Files: 100 ms,
    /// since listing a directory is not free.
    fn idle_poll(&self, _now_micros: i64) -> Duration {
        IDLE_POLL
    }

    /// The continuous trigger reads it as records arrive (Kafka, rate); None: it cannot be.
    fn continuous(&mut self) -> Option<&mut dyn continuous::ContinuousSource> {
        None
    }
}
