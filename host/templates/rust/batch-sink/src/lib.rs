//! `{{name}}`: a foreachBatch plugin (the `batch-sink` world).
//!
//! For each micro-batch, the rows whose `amount` is 100.0 or more are emitted, with all their
//! columns, to the output `big`, the others (and null amounts) to `small`; both are emitted even
//! when empty. The job declares the outputs (`[[sink.output]]` in job.toml); each holds what was
//! emitted for a batch exactly once. Change `write_batch` to make it yours.

use weir_guest::prelude::*;

struct Plugin {
    threshold: f64,
}

impl BatchSink for Plugin {
    fn init(_config: &Config) -> Result<Self, String> {
        Ok(Plugin { threshold: 100.0 })
    }

    fn write_batch(&mut self, _batch_id: u64, input: &Batch, out: &mut Emitter) -> Result<(), BatchError> {
        let amount = input.f64s("amount")?;
        let (big, small): (Vec<u32>, Vec<u32>) = (0..input.num_rows() as u32)
            .partition(|&row| amount.get(row as usize).is_some_and(|a| a >= self.threshold));
        out.emit("big", EmitBatch::take(input, &big))?;
        out.emit("small", EmitBatch::take(input, &small))
    }
}

weir_guest::export_batch_sink!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_go_to_big_or_small_by_amount() {
        let input = Batch::new(
            3,
            vec![
                Column::new("user", [Some("ann"), Some("bob"), Some("cid")].into_iter().collect::<StrBuilder>()),
                Column::new("amount", [Some(120.0), None, Some(99.5)].into_iter().collect::<F64Builder>()),
            ],
        )
        .unwrap();
        let mut plugin = Plugin::init(&Config::default()).unwrap();
        // The emits are recorded natively, in order.
        let emitted = write_batch(&mut plugin, 0, &input).unwrap();
        assert_eq!(emitted.iter().map(|e| e.output.as_str()).collect::<Vec<_>>(), ["big", "small"]);
        assert_eq!(emitted[0].batch.strs("user").unwrap().iter().collect::<Vec<_>>(), [Some("ann")]);
        assert_eq!(emitted[1].batch.strs("user").unwrap().iter().collect::<Vec<_>>(), [Some("bob"), Some("cid")]);
        assert_eq!(emitted[1].batch.f64s("amount").unwrap().iter().collect::<Vec<_>>(), [None, Some(99.5)]);
    }
}
