//! Spark's `foreachBatch`, with exactly-once outputs: a `batch-sink` plugin gets each
//! micro-batch whole and emits batches to the outputs the job declares (`[[sink.output]]`,
//! each a files or console sink). The host holds what a call emitted; only when the call has
//! returned is it written, output by output, each output writing batch N at most once (its own
//! commit log), and then the checkpoint commits N. A crash anywhere replays batch N: the plugin
//! runs again (with the same input, clock and random seed), and outputs that already hold N
//! skip it. So every output shows what the plugin emitted for N exactly once.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::console::ConsoleSink;
use super::files::FileSink;
use super::{Sink, SinkError};
use crate::job::{ForeachBatchConfig, SinkKind};
use crate::plugin::{BatchSinkPlugin, PluginError, Runtime};

/// One declared output: made when the plugin first emits to it (its schema is the emitted
/// batch's), then every batch's emits must have that schema.
struct Output {
    name: String,
    kind: SinkKind,
    sink: Option<(Box<dyn Sink>, SchemaRef)>,
}

pub struct ForeachBatchSink {
    plugin: BatchSinkPlugin,
    input_schema: SchemaRef,
    outputs: Vec<Output>,
}

impl ForeachBatchSink {
    pub fn new(
        runtime: &Runtime,
        config: &ForeachBatchConfig,
        input_schema: SchemaRef,
    ) -> Result<ForeachBatchSink, PluginError> {
        let names = config.outputs.iter().map(|o| o.name.clone()).collect();
        let plugin = BatchSinkPlugin::load(runtime, &config.plugin, &config.config, config.limits, names)?;
        let outputs =
            config.outputs.iter().map(|o| Output { name: o.name.clone(), kind: o.kind.clone(), sink: None }).collect();
        Ok(ForeachBatchSink { plugin, input_schema, outputs })
    }

    pub fn plugin(&self) -> &BatchSinkPlugin {
        &self.plugin
    }
}

fn same_columns(a: &SchemaRef, b: &SchemaRef) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields().iter().zip(b.fields()).all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

fn columns(s: &SchemaRef) -> String {
    s.fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), crate::schema::type_name(f.data_type())))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Sink for ForeachBatchSink {
    fn description(&self) -> String {
        format!("ForeachBatchSink[{}]", self.plugin.path().display())
    }

    fn write_batch(&mut self, batch_id: u64, data: &[RecordBatch]) -> Result<u64, SinkError> {
        let input = arrow::compute::concat_batches(&self.input_schema, data).expect("batches share the schema");
        let emitted = self.plugin.write_batch(batch_id, &input).map_err(|e| SinkError::Plugin(Box::new(e)))?;
        let mut written = 0;
        for out in &mut self.outputs {
            let batches: Vec<RecordBatch> =
                emitted.iter().filter(|(n, _)| n == &out.name).map(|(_, b)| b.clone()).collect();
            if out.sink.is_none() {
                let Some(first) = batches.first() else { continue };
                let schema = first.schema();
                let sink: Box<dyn Sink> = match &out.kind {
                    SinkKind::Files { format, path, partition_by } => Box::new(
                        FileSink::new(*format, path, partition_by, schema.clone())
                            .map_err(|e| SinkError::Invalid(format!("output {:?}: {e}", out.name)))?,
                    ),
                    SinkKind::Console { num_rows } => Box::new(ConsoleSink::new(*num_rows)),
                    SinkKind::ForeachBatch(_) => unreachable!("outputs are files or console (checked with the job)"),
                };
                out.sink = Some((sink, schema));
            }
            let (sink, schema) = out.sink.as_mut().expect("made just above");
            if let Some(b) = batches.iter().find(|b| !same_columns(&b.schema(), schema)) {
                return Err(SinkError::Invalid(format!(
                    "batch {batch_id}: plugin {} emitted to output {:?} the columns ({}), but its first batch had ({}); one output takes one schema: emit the same columns, or declare another output",
                    self.plugin.path().display(),
                    out.name,
                    columns(&b.schema()),
                    columns(schema)
                )));
            }
            // The first batch's schema for all: nullability may differ between emits.
            let batches = batches
                .into_iter()
                .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()).expect("same columns"))
                .collect::<Vec<_>>();
            written += sink.write_batch(batch_id, &batches).map_err(|e| match e {
                SinkError::Io { context, source } => {
                    SinkError::Io { context: format!("output {:?}: {context}", out.name), source }
                }
                other => SinkError::Invalid(format!("output {:?}: {other}", out.name)),
            })?;
        }
        Ok(written)
    }
}
