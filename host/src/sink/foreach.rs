//! Spark's `foreach` (a ForeachWriter), **at-least-once**: a `batch-sink` plugin gets the rows of
//! a micro-batch in calls of at most `rows_per_call` rows, and what each call emits is written to
//! the outputs as soon as the call returns, before the batch commits, as Spark's writer makes
//! each row visible as it goes. A batch that fails, or is replayed after a crash, calls the
//! plugin again for all its rows, so an output may get a call's rows twice. File outputs write
//! each call as its own entry in their commit log (id `batch × 1,000,000 + call`) and skip an
//! entry they already hold, so a replay cut into the same calls (the same input and
//! `rows_per_call`) adds nothing twice there; a console output prints it again.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::outputs::Outputs;
use super::{Sink, SinkError};
use crate::config::PluginSinkConfig;
use crate::plugin::{BatchSinkPlugin, PluginError, Runtime};

/// Calls per batch that file outputs can tell apart (their commit-log id is
/// `batch × CALLS_PER_BATCH + call`).
pub const CALLS_PER_BATCH: u64 = 1_000_000;

pub struct ForeachSink {
    plugin: BatchSinkPlugin,
    input_schema: SchemaRef,
    outputs: Outputs,
    rows_per_call: usize,
    /// Continuous: the epoch being written and its next call number.
    epoch_calls: Option<(u64, u64)>,
}

impl ForeachSink {
    pub fn new(
        runtime: &Runtime,
        config: &PluginSinkConfig,
        input_schema: SchemaRef,
    ) -> Result<ForeachSink, PluginError> {
        let outputs = Outputs::new(&config.outputs, format!("plugin {}", config.plugin.display()));
        let plugin = BatchSinkPlugin::load(runtime, &config.plugin, &config.config, config.limits, outputs.names())?;
        Ok(ForeachSink { plugin, input_schema, outputs, rows_per_call: config.rows_per_call, epoch_calls: None })
    }
}

impl ForeachSink {
    /// The job's dead-letter directory and `on_bad_record`, for postgres outputs.
    pub fn with_dead_letters(
        mut self,
        dir: std::path::PathBuf,
        on_bad_record: crate::config::OnBadRecord,
    ) -> ForeachSink {
        self.outputs = self.outputs.with_dead_letters(dir, on_bad_record);
        self
    }
}

impl Sink for ForeachSink {
    fn description(&self) -> String {
        format!("ForeachSink[{}]", self.plugin.path().display())
    }

    fn set_schema(&mut self, schema: SchemaRef) -> Result<(), SinkError> {
        self.input_schema = schema;
        Ok(())
    }

    fn start(&mut self, query_id: &str) -> Result<(), SinkError> {
        self.outputs.start(query_id)
    }

    fn dead_letter_rows(&self) -> u64 {
        self.outputs.dead_letter_rows()
    }

    fn write_batch(&mut self, batch_id: u64, data: &[RecordBatch]) -> Result<u64, SinkError> {
        self.outputs.new_batch();
        self.write_calls(batch_id, data, 0).map(|(written, _)| written)
    }

    /// Continuous: each piece of the epoch is written as it comes, its calls numbered on from
    /// the epoch's earlier pieces.
    fn write_now(&mut self, epoch: u64, data: &[RecordBatch]) -> Result<u64, SinkError> {
        let first = match self.epoch_calls {
            Some((e, next)) if e == epoch => next,
            _ => {
                self.outputs.new_batch();
                0
            }
        };
        let (written, calls) = self.write_calls(epoch, data, first)?;
        self.epoch_calls = Some((epoch, first + calls));
        Ok(written)
    }
}

impl ForeachSink {
    /// Calls the plugin over `data` in calls of `rows_per_call` rows, numbered from `first`;
    /// returns the rows written to the outputs and the number of calls.
    fn write_calls(&mut self, batch_id: u64, data: &[RecordBatch], first: u64) -> Result<(u64, u64), SinkError> {
        let input = arrow::compute::concat_batches(&self.input_schema, data).expect("batches share the schema");
        let calls = input.num_rows().div_ceil(self.rows_per_call) as u64;
        if first + calls >= CALLS_PER_BATCH {
            return Err(SinkError::Invalid(format!(
                "batch {batch_id} has {} calls of rows_per_call = {} ({} rows in this piece); at most {} calls per batch: raise sink.rows_per_call",
                first + calls,
                self.rows_per_call,
                input.num_rows(),
                CALLS_PER_BATCH - 1
            )));
        }
        let mut written = 0;
        for call in 0..calls {
            let start = call as usize * self.rows_per_call;
            let rows = input.slice(start, self.rows_per_call.min(input.num_rows() - start));
            let emitted = self.plugin.write_batch(batch_id, &rows).map_err(|e| SinkError::Plugin(Box::new(e)))?;
            written += self.outputs.write(batch_id * CALLS_PER_BATCH + first + call, batch_id, &emitted)?;
        }
        Ok((written, calls))
    }
}
