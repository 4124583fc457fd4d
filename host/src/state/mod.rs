//! State stores: where stateful operators keep their state between micro-batches, versioned by
//! batch id. Batch N starts from exactly the state committed by batch N−1, whatever happened
//! since (a crash mid-batch, a replay), which is what makes stateful output exactly-once.

use std::path::PathBuf;

/// The in-memory provider, persisted as per-batch deltas and periodic snapshots.
pub mod memory;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state store {dir}: {context}: {source}; check the checkpoint directory is readable and writable")]
    Io {
        dir: PathBuf,
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("state store {dir}: {message}; the checkpoint is damaged: restore it, or start with a new checkpoint directory (the job then reprocesses its input)")]
    Corrupt { dir: PathBuf, message: String },
}

/// Spark's per-operator state metrics (`stateOperators[]` in progress records).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateMetrics {
    pub num_rows_total: u64,
    pub num_rows_updated: u64,
    pub num_rows_removed: u64,
    pub memory_used_bytes: u64,
}

/// A versioned key-value store for one stateful operator. Keys and values are bytes: the
/// operator decides their encoding.
pub trait StateStore: Send {
    /// Starts batch `batch_id` from the state committed by batch `batch_id − 1` (empty for the
    /// first batch), discarding any change not committed.
    fn begin(&mut self, batch_id: u64) -> Result<(), StateError>;

    fn get(&self, key: &[u8]) -> Option<&[u8]>;

    fn put(&mut self, key: &[u8], value: &[u8]);

    fn remove(&mut self, key: &[u8]);

    /// Every entry, in key order (for eviction behind the watermark, complete mode).
    fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_>;

    /// Makes the batch's changes durable as the state of `batch_id`, and returns the metrics.
    fn commit(&mut self) -> Result<StateMetrics, StateError>;
}
