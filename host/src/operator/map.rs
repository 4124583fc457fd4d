use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::config::{MapConfig, OnPluginError, PluginLimits};
use crate::deadletter::{BadRecord, BadRecords, OnBadRecord};
use crate::engine::operator::{BatchContext, Operator, PluginSlot, PluginVersion};
use crate::plugin::{MapperPlugin, PluginError, Runtime};

/// Runs a `mapper` plugin over each batch. When the plugin refuses a batch and names the input
/// row at fault, and the job routes bad records to the dead-letter output, that row is set
/// aside with the plugin's message and the rest of the batch is mapped again, so one bad record
/// does not stop the job and is not lost. Other failures (a trap, a limit, an error without a
/// row) follow the operator's `on_error` policy.
pub struct MapOperator {
    plugin: MapperPlugin,
    /// Which `[[operator]]` this is, for messages.
    index: usize,
    on_error: OnPluginError,
    /// The plugin's `init` config and limits, to load another version (a hot swap).
    config: String,
    limits: PluginLimits,
}

impl MapOperator {
    pub fn new(plugin: MapperPlugin, settings: &MapConfig) -> Self {
        Self {
            plugin,
            index: settings.index,
            on_error: settings.on_error,
            config: settings.config.clone(),
            limits: settings.limits,
        }
    }

    fn origin(&self) -> String {
        format!("operator[{}] plugin {}", self.index, self.plugin.path().display())
    }

    pub fn output_schema(&self) -> SchemaRef {
        self.plugin.output_schema()
    }

    pub fn plugin(&self) -> &MapperPlugin {
        &self.plugin
    }

    /// Puts another version of the plugin in (a hot swap or a rollback); returns the one it
    /// replaces.
    pub fn replace_plugin(&mut self, plugin: MapperPlugin) -> MapperPlugin {
        std::mem::replace(&mut self.plugin, plugin)
    }

    pub fn index(&self) -> usize {
        self.index
    }

    pub fn process(
        &mut self,
        batch_id: u64,
        input: &RecordBatch,
        bad: &mut BadRecords,
    ) -> Result<RecordBatch, PluginError> {
        match self.on_error {
            OnPluginError::Fail => self.map(batch_id, input, bad),
            OnPluginError::Retry(retries) => {
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    match self.map(batch_id, input, bad) {
                        Ok(out) => return Ok(out),
                        Err(e @ PluginError::Load { .. }) => return Err(e),
                        Err(e) if attempts > retries => {
                            return Err(PluginError::Retried { attempts, last: Box::new(e) })
                        }
                        // The plugin replaces a failed instance before the next call.
                        Err(_) => {}
                    }
                }
            }
            OnPluginError::DeadLetter => self.map_isolating(batch_id, input, bad),
        }
    }

    /// Maps `input`; when the plugin fails, maps each half again, down to single rows: the rows
    /// it fails on go to the dead-letter output with the error, the others are mapped. A plugin
    /// that fails on k rows of n is called about 2·k·log2(n) more times.
    fn map_isolating(
        &mut self,
        batch_id: u64,
        input: &RecordBatch,
        bad: &mut BadRecords,
    ) -> Result<RecordBatch, PluginError> {
        let e = match self.map(batch_id, input, bad) {
            Ok(out) => return Ok(out),
            Err(e @ PluginError::Load { .. }) => return Err(e),
            Err(e) => e,
        };
        let n = input.num_rows();
        if n <= 1 {
            for r in 0..n {
                bad.keep(BadRecord {
                    origin: self.origin(),
                    line: None,
                    reason: format!("{e} (on_error = \"dead_letter\": the row was set aside)"),
                    raw: row_as_json(input, r),
                });
            }
            return Ok(RecordBatch::new_empty(self.output_schema()));
        }
        let head = self.map_isolating(batch_id, &input.slice(0, n / 2), bad)?;
        let tail = self.map_isolating(batch_id, &input.slice(n / 2, n - n / 2), bad)?;
        Ok(arrow::compute::concat_batches(&self.output_schema(), [&head, &tail])
            .expect("outputs of one plugin share its output schema"))
    }

    /// One attempt at `input`, setting refused rows aside under `on_bad_record = "dead_letter"`.
    /// The rows it set aside reach `bad` only if the attempt succeeds, so a retried or halved
    /// batch does not write them twice.
    fn map(&mut self, batch_id: u64, input: &RecordBatch, bad: &mut BadRecords) -> Result<RecordBatch, PluginError> {
        let mut refused = BadRecords::new(bad.policy());
        let out = self.map_attempt(batch_id, input, &mut refused)?;
        for record in refused.take() {
            bad.keep(record);
        }
        Ok(out)
    }

    fn map_attempt(
        &mut self,
        batch_id: u64,
        input: &RecordBatch,
        bad: &mut BadRecords,
    ) -> Result<RecordBatch, PluginError> {
        let mut current = input.clone();
        loop {
            match self.plugin.map_batch(batch_id, &current) {
                Ok(out) => return Ok(out),
                Err(PluginError::Refused { row: Some(row), message, .. })
                    if bad.policy() == OnBadRecord::DeadLetter && (row as usize) < current.num_rows() =>
                {
                    let record = BadRecord {
                        origin: self.origin(),
                        line: None,
                        reason: message,
                        raw: row_as_json(&current, row as usize),
                    };
                    bad.report(record).expect("dead_letter policy keeps records");
                    current = remove_row(&current, row as usize);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn remove_row(batch: &RecordBatch, row: usize) -> RecordBatch {
    let head = batch.slice(0, row);
    let tail = batch.slice(row + 1, batch.num_rows() - row - 1);
    arrow::compute::concat_batches(&batch.schema(), [&head, &tail]).expect("slices of one batch share its schema")
}

impl Operator for MapOperator {
    fn index(&self) -> usize {
        self.index
    }

    fn output_schema(&self) -> SchemaRef {
        self.plugin.output_schema()
    }

    fn process(&mut self, ctx: &mut BatchContext, input: &RecordBatch) -> anyhow::Result<Vec<RecordBatch>> {
        Ok(vec![MapOperator::process(self, ctx.batch_id, input, ctx.bad)?])
    }

    fn plugin(&self) -> Option<&dyn PluginSlot> {
        Some(self)
    }

    fn plugin_mut(&mut self) -> Option<&mut dyn PluginSlot> {
        Some(self)
    }
}

impl PluginSlot for MapOperator {
    fn digest(&self) -> &str {
        self.plugin.digest()
    }

    fn path(&self) -> &std::path::Path {
        self.plugin.path()
    }

    fn state_version(&self) -> Option<u32> {
        None
    }

    fn load(&self, runtime: &Runtime, path: &std::path::Path) -> Result<Box<dyn PluginVersion>, String> {
        let p = MapperPlugin::load(runtime, path, &self.config, self.limits, self.plugin.input_schema())
            .map_err(|e| e.to_string())?;
        Ok(Box::new(p))
    }

    fn replace(&mut self, version: Box<dyn PluginVersion>) -> Box<dyn PluginVersion> {
        let any: Box<dyn std::any::Any> = version;
        let new = any.downcast::<MapperPlugin>().expect("a version this slot loaded, of the mapper world");
        Box::new(self.replace_plugin(*new))
    }

    fn take_metrics(&mut self) -> crate::plugin::PluginMetrics {
        self.plugin.take_metrics()
    }
}

impl PluginVersion for MapperPlugin {
    fn digest(&self) -> &str {
        MapperPlugin::digest(self)
    }

    fn output_schema(&self) -> SchemaRef {
        MapperPlugin::output_schema(self)
    }

    fn state_version(&self) -> Option<u32> {
        None
    }
}

pub use crate::deadletter::row_as_json;
