use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::deadletter::{BadRecord, BadRecords, OnBadRecord};
use crate::plugin::{MapperPlugin, PluginError};

/// Runs a `mapper` plugin over each batch. When the plugin refuses a batch and names the input
/// row at fault, and the job routes bad records to the dead-letter output, that row is set
/// aside with the plugin's message and the rest of the batch is mapped again, so one bad record
/// does not stop the job and is not lost.
pub struct MapOperator {
    plugin: MapperPlugin,
    /// Which `[[operator]]` this is, for messages.
    index: usize,
}

impl MapOperator {
    pub fn new(plugin: MapperPlugin, index: usize) -> Self {
        Self { plugin, index }
    }

    pub fn output_schema(&self) -> SchemaRef {
        self.plugin.output_schema()
    }

    pub fn plugin(&self) -> &MapperPlugin {
        &self.plugin
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
        let mut current = input.clone();
        loop {
            match self.plugin.map_batch(batch_id, &current) {
                Ok(out) => return Ok(out),
                Err(PluginError::Refused { row: Some(row), message, .. })
                    if bad.policy() == OnBadRecord::DeadLetter && (row as usize) < current.num_rows() =>
                {
                    let record = BadRecord {
                        origin: format!("operator[{}] plugin {}", self.index, self.plugin.path().display()),
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

/// The row as a JSON object of display strings: what the dead-letter output keeps of a record
/// a plugin refused.
pub fn row_as_json(batch: &RecordBatch, row: usize) -> String {
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let opts = FormatOptions::default();
    let batch = &crate::format::for_display(&batch.slice(row, 1));
    let row = 0;
    let mut obj = serde_json::Map::new();
    for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
        let value = if col.is_null(row) {
            serde_json::Value::Null
        } else {
            match ArrayFormatter::try_new(col.as_ref(), &opts) {
                Ok(f) => serde_json::Value::String(f.value(row).to_string()),
                Err(e) => serde_json::Value::String(format!("<{e}>")),
            }
        };
        obj.insert(field.name().clone(), value);
    }
    serde_json::Value::Object(obj).to_string()
}
