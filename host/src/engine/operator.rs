//! The one interface the engine runs operators through. The engine never knows which kinds of
//! operator exist: it begins each operator, pushes the batch's pieces through them in order,
//! finishes them in order (what an operator holds back until the batch's end, an aggregation's
//! result, goes through the operators after it), and collects their progress.

use std::any::Any;
use std::path::Path;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::deadletter::row_as_json;
use crate::deadletter::{BadRecord, BadRecords};
use crate::format::timestamp::format_timestamp_micros;
use crate::plugin::Runtime;

/// The clocks of one batch (µs since the epoch): its processing time (from the offsets log, so
/// a replay sees the same) and the watermark state is evicted by (none without a watermark).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clocks {
    pub processing: i64,
    pub watermark: Option<i64>,
}

/// What every operator sees of the batch in progress.
pub struct BatchContext<'a> {
    pub batch_id: u64,
    /// The watermark the batch runs with (µs): windows close and state is evicted up to it.
    pub watermark: i64,
    /// Rows at or behind this watermark (the previous batch's) are late.
    pub late_watermark: i64,
    /// Late rows are kept in the dead-letter output (`late_rows = "dead_letter"`).
    pub keep_late: bool,
    /// The batch's processing time and event-time watermark, for timeouts and timers.
    pub clocks: Clocks,
    /// Records that could not be processed, for the dead-letter output.
    pub bad: &'a mut BadRecords,
    /// What each operator (by position) recorded when the batch was planned (see
    /// [`Operator::plan_batch`]), from the batch's offsets entry.
    pub planned: &'a std::collections::BTreeMap<usize, serde_json::Value>,
}

impl BatchContext<'_> {
    /// Keeps the rows `origin` dropped as late in the dead-letter output, if the job asks so.
    pub fn late_rows(&mut self, origin: &str, batch: &RecordBatch, rows: &[u32]) {
        if !self.keep_late {
            return;
        }
        for &r in rows {
            self.bad.keep(BadRecord {
                origin: origin.to_string(),
                line: None,
                reason: format!(
                    "late: event time is behind the watermark {}",
                    format_timestamp_micros(self.late_watermark)
                ),
                raw: row_as_json(batch, r as usize),
            });
        }
    }
}

/// An operator of the graph. Errors say which batch and operator failed and why.
pub trait Operator: Send {
    /// Its position in the job file (`operator[i]`): names it in messages and keys its state.
    fn index(&self) -> usize;

    /// The columns it outputs.
    fn output_schema(&self) -> SchemaRef;

    /// When the engine plans a batch, before its offsets entry is written: what the operator
    /// must record there so that a replay reads the same input (a static table's version). It
    /// comes back in [`BatchContext::planned`].
    fn plan_batch(&mut self, _now_micros: i64) -> anyhow::Result<Option<serde_json::Value>> {
        Ok(None)
    }

    /// Retention: what the batches still kept recorded for this operator; anything only older
    /// batches needed may be deleted.
    fn retain(&mut self, _planned: &[serde_json::Value]) -> anyhow::Result<()> {
        Ok(())
    }

    /// Before the batch's first piece: state is loaded as the batch before committed it.
    fn begin(&mut self, _ctx: &mut BatchContext) -> anyhow::Result<()> {
        Ok(())
    }

    /// One piece of the batch's input; returns the rows to pass on now.
    fn process(&mut self, ctx: &mut BatchContext, input: &RecordBatch) -> anyhow::Result<Vec<RecordBatch>>;

    /// One piece of the operator's other input (a stream-stream join's other side, a source
    /// routed to it); returns the rows to pass on now.
    fn process_other(&mut self, _ctx: &mut BatchContext, _input: &RecordBatch) -> anyhow::Result<Vec<RecordBatch>> {
        anyhow::bail!("operator[{}] takes no other input", self.index())
    }

    /// After the batch's last piece: the rows held back until now (an aggregation's result, a
    /// stateful plugin's output), with state committed as the batch's version.
    fn finish(&mut self, _ctx: &mut BatchContext) -> anyhow::Result<Vec<RecordBatch>> {
        Ok(Vec::new())
    }

    /// Its `stateOperators[]` entry for the batch just finished (none without state).
    fn progress(&self) -> Option<serde_json::Value> {
        None
    }

    /// Whether a batch without new rows has work for it now: the watermark moved past the last
    /// batch's (`watermark_moved`) and it evicts by it, or a processing-time deadline is due.
    fn wants_no_data_batch(&self, _watermark_moved: bool, _now_micros: i64) -> bool {
        false
    }

    /// The watermark the operators after it run with, given its own (Spark 3.5's watermark
    /// propagation: a stream-stream join's output may hold rows older than its input watermark).
    fn output_watermark(&self, input_micros: i64) -> i64 {
        input_micros
    }

    /// Its plugin, if it has one a user may swap.
    fn plugin(&self) -> Option<&dyn PluginSlot> {
        None
    }

    fn plugin_mut(&mut self) -> Option<&mut dyn PluginSlot> {
        None
    }
}

/// The plugin of an operator, as hot swap sees it: which version runs, loading another with the
/// operator's own settings, and putting one in.
pub trait PluginSlot {
    fn digest(&self) -> &str;
    fn path(&self) -> &Path;
    /// The stateful world's state format version (none for other worlds).
    fn state_version(&self) -> Option<u32>;
    /// Loads another version of the plugin, of the same world, with the operator's settings and
    /// input columns (`init` and `output-schema` run).
    fn load(&self, runtime: &Runtime, path: &Path) -> Result<Box<dyn PluginVersion>, String>;
    /// Puts `version` in (one this slot loaded); returns the one it replaces.
    fn replace(&mut self, version: Box<dyn PluginVersion>) -> Box<dyn PluginVersion>;
    /// Calls, time, bytes and memory of the running version since last taken (a batch).
    fn take_metrics(&mut self) -> crate::plugin::PluginMetrics;
}

/// A loaded version of a plugin, not necessarily running.
pub trait PluginVersion: Any + Send {
    fn digest(&self) -> &str;
    fn output_schema(&self) -> SchemaRef;
    fn state_version(&self) -> Option<u32>;
}

/// The Spark `stateOperators[]` entry of an operator with state.
pub fn state_progress(
    name: &str,
    p: &crate::operator::StateOperatorProgress,
    custom: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "operatorName": name,
        "numRowsTotal": p.metrics.num_rows_total,
        "numRowsUpdated": p.metrics.num_rows_updated,
        "numRowsRemoved": p.metrics.num_rows_removed,
        "memoryUsedBytes": p.metrics.memory_used_bytes,
        "numRowsDroppedByWatermark": p.num_rows_dropped_by_watermark,
        "customMetrics": custom,
    })
}
