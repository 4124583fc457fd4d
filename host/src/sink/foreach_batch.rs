//! Spark's `foreachBatch`, with exactly-once outputs: a `batch-sink` plugin gets each
//! micro-batch whole and emits batches to the outputs the job declares (`[[sink.output]]`,
//! each a files, console, Kafka, Delta or PostgreSQL sink). The host holds what a call
//! emitted; only when the call has returned is it written, output by output, each output
//! writing batch N at most once (its own commit log, markers, `txn` or progress row), and then
//! the checkpoint commits N. A crash anywhere replays batch N: the plugin
//! runs again (with the same input, clock and random seed), and outputs that already hold N
//! skip it. So every output shows what the plugin emitted for N exactly once.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::outputs::Outputs;
use super::{Sink, SinkError};
use crate::config::PluginSinkConfig;
use crate::plugin::{BatchSinkPlugin, PluginError, Runtime};

pub struct ForeachBatchSink {
    plugin: BatchSinkPlugin,
    input_schema: SchemaRef,
    outputs: Outputs,
}

impl ForeachBatchSink {
    pub fn new(
        runtime: &Runtime,
        config: &PluginSinkConfig,
        input_schema: SchemaRef,
    ) -> Result<ForeachBatchSink, PluginError> {
        let outputs = Outputs::new(&config.outputs, format!("plugin {}", config.plugin.display()));
        let plugin = BatchSinkPlugin::load(runtime, &config.plugin, &config.config, config.limits, outputs.names())?;
        Ok(ForeachBatchSink { plugin, input_schema, outputs })
    }

    /// Keeps the job's `min_batches_to_retain` batches readable in each file output's log.
    pub fn with_min_batches_to_retain(mut self, n: u64) -> ForeachBatchSink {
        self.outputs = self.outputs.with_min_batches_to_retain(n);
        self
    }
}

impl ForeachBatchSink {
    /// The job's dead-letter directory and `on_bad_record`, for postgres outputs.
    pub fn with_dead_letters(
        mut self,
        dir: std::path::PathBuf,
        on_bad_record: crate::config::OnBadRecord,
    ) -> ForeachBatchSink {
        self.outputs = self.outputs.with_dead_letters(dir, on_bad_record);
        self
    }
}

impl Sink for ForeachBatchSink {
    fn description(&self) -> String {
        format!("ForeachBatchSink[{}]", self.plugin.path().display())
    }

    fn set_schema(&mut self, schema: SchemaRef) -> Result<(), SinkError> {
        self.input_schema = schema;
        Ok(())
    }

    fn start(&mut self, query_id: &str) -> Result<(), SinkError> {
        self.outputs.start(query_id)
    }

    fn committed(&mut self, batch_id: u64) -> Result<bool, SinkError> {
        self.outputs.committed(batch_id)
    }

    fn dead_letter_rows(&self) -> u64 {
        self.outputs.dead_letter_rows()
    }

    fn write_batch(&mut self, batch_id: u64, data: &[RecordBatch]) -> Result<u64, SinkError> {
        self.outputs.new_batch();
        let input = arrow::compute::concat_batches(&self.input_schema, data).expect("batches share the schema");
        let emitted = self.plugin.write_batch(batch_id, &input).map_err(|e| SinkError::Plugin(Box::new(e)))?;
        self.outputs.write(batch_id, batch_id, &emitted)
    }
}
