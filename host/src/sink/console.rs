//! Prints each batch as a table, as Spark's console sink does. For trying things out: it keeps
//! no commit log, so a replayed batch is printed again.

use arrow::record_batch::RecordBatch;

use super::{Sink, SinkError};

pub struct ConsoleSink {
    num_rows: usize,
}

impl ConsoleSink {
    pub fn new(num_rows: usize) -> Self {
        Self { num_rows }
    }
}

impl Sink for ConsoleSink {
    fn description(&self) -> String {
        "ConsoleSink".into()
    }

    fn write_batch(&mut self, batch_id: u64, data: &[RecordBatch]) -> Result<u64, SinkError> {
        let total: usize = data.iter().map(|b| b.num_rows()).sum();
        let mut shown = Vec::new();
        let mut left = self.num_rows;
        for b in data {
            if left == 0 {
                break;
            }
            let n = left.min(b.num_rows());
            shown.push(crate::format::for_display(&b.slice(0, n)));
            left -= n;
        }
        let table = arrow::util::pretty::pretty_format_batches(&shown)
            .map_err(|e| SinkError::Encode { context: format!("printing batch {batch_id}"), message: e.to_string() })?;
        let more =
            if total > self.num_rows { format!("only showing top {} rows\n", self.num_rows) } else { String::new() };
        println!("-------------------------------------------\nBatch: {batch_id}\n-------------------------------------------\n{table}\n{more}");
        Ok(total as u64)
    }
}
