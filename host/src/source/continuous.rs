//! The continuous trigger's view of a source (Spark's `ContinuousStream`): it stays open from
//! where the checkpoint's last batch ended, hands over whatever records have arrived, and at
//! each epoch's end says which range the epoch read: the same kind of range `plan_next` gives,
//! written to the offsets log as a batch's, so that a micro-batch run replays it exactly and a
//! checkpoint moves between the two triggers.

use std::time::Duration;

use arrow::record_batch::RecordBatch;

use super::SourceError;
use crate::deadletter::BadRecords;

/// Most rows one poll hands over: the piece that goes through the plugins and to the sink.
pub const MAX_POLL_ROWS: usize = 4096;
/// Most time one poll spends gathering rows that have arrived, after the first one.
pub const MAX_POLL_GATHER: Duration = Duration::from_micros(500);

pub trait ContinuousSource {
    /// Opens the reader where the batches restored so far end.
    fn open(&mut self) -> Result<(), SourceError>;

    /// The records that arrived since the last poll: waits up to `wait` for the first, then
    /// takes what is there without waiting, up to [`MAX_POLL_ROWS`] rows or
    /// [`MAX_POLL_GATHER`]. An empty result means nothing arrived in `wait`.
    fn poll(&mut self, wait: Duration, bad: &mut BadRecords) -> Result<Vec<RecordBatch>, SourceError>;

    /// The epoch ends: the range it read since the last call (none: nothing), as `plan_next`
    /// would have planned it. The next epoch starts there.
    fn end_epoch(&mut self) -> Result<Option<serde_json::Value>, SourceError>;

    /// Goes back to where the epoch started (its rows will be read again).
    fn rewind_epoch(&mut self) -> Result<(), SourceError>;
}
