//! `router`: a foreachBatch plugin (the `batch-sink` world) on the SDK.
//!
//! For each batch, the rows whose `amount` (double) is non-null and `>= threshold` (config,
//! default 100.0) are emitted, with all their columns, to the output `big`; the others (and
//! null amounts) to `small`; then one row to `counts`: `batch_id` (bigint) and `rows` (bigint,
//! the batch's row count). `big` and `small` are emitted even when empty. A batch without an
//! `amount` column, or with one that is not a double, fails naming the column.
//!
//! `plugins/router-py` (and router-js, router-c) are the same logic in other languages; the
//! end-to-end test (tests/e2e/routers.rs) checks they write identical outputs.

use weir_guest::prelude::*;

struct Router {
    threshold: f64,
}

impl Router {
    /// The rows going to `big` and to `small`, in input order.
    fn split(&self, input: &Batch) -> Result<(Vec<u32>, Vec<u32>), BatchError> {
        let amount = input.f64s("amount")?;
        Ok((0..input.num_rows() as u32).partition(|&r| amount.get(r as usize).is_some_and(|a| a >= self.threshold)))
    }
}

impl BatchSink for Router {
    fn init(config: &Config) -> Result<Self, String> {
        config.reject_unknown(&["threshold"])?;
        Ok(Router { threshold: config.get_f64("threshold", 100.0)? })
    }

    fn write_batch(&mut self, batch_id: u64, input: &Batch, out: &mut Emitter) -> Result<(), BatchError> {
        let (big, small) = self.split(input)?;
        out.emit("big", EmitBatch::take(input, &big))?;
        out.emit("small", EmitBatch::take(input, &small))?;
        let counts = EmitBatch::new()
            .push_i64("batch_id", [Some(batch_id as i64)])
            .push_i64("rows", [Some(input.num_rows() as i64)]);
        out.emit("counts", counts)
    }
}

weir_guest::export_batch_sink!(Router);

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(ids: &[&str], amounts: &[Option<f64>]) -> Batch {
        Batch::new(
            ids.len(),
            vec![
                Column::new("id", ids.iter().map(|s| Some(*s)).collect::<StrBuilder>()),
                Column::new("amount", amounts.iter().copied().collect::<F64Builder>()),
            ],
        )
        .unwrap()
    }

    fn ids(b: &Batch) -> Vec<&str> {
        b.strs("id").unwrap().iter().map(|s| s.unwrap()).collect()
    }

    #[test]
    fn rows_are_routed_by_amount_and_counted() {
        let mut r = Router::init(&Config::default()).unwrap();
        let input = batch(&["a1", "a2", "a3", "a4"], &[Some(50.0), Some(150.0), None, Some(100.0)]);
        let emitted = write_batch(&mut r, 4, &input).unwrap();
        assert_eq!(emitted.iter().map(|e| e.output.as_str()).collect::<Vec<_>>(), ["big", "small", "counts"]);
        assert_eq!(ids(&emitted[0].batch), ["a2", "a4"]);
        assert_eq!(ids(&emitted[1].batch), ["a1", "a3"]);
        assert_eq!(emitted[1].batch.f64s("amount").unwrap().iter().collect::<Vec<_>>(), [Some(50.0), None]);
        let counts = &emitted[2].batch;
        assert_eq!(counts.columns().iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["batch_id", "rows"]);
        assert_eq!(
            (counts.i64s("batch_id").unwrap().values(), counts.i64s("rows").unwrap().values()),
            (&[4][..], &[4][..])
        );
    }

    #[test]
    fn empty_outputs_are_still_emitted_and_the_threshold_is_configurable() {
        let mut r = Router::init(&Config::parse("threshold=1000").unwrap()).unwrap();
        let emitted = write_batch(&mut r, 0, &batch(&["x"], &[Some(999.0)])).unwrap();
        assert_eq!(emitted[0].batch.num_rows(), 0);
        assert_eq!(emitted[0].batch.columns().len(), 2, "an empty `big` keeps the columns");
        assert_eq!(ids(&emitted[1].batch), ["x"]);
    }

    #[test]
    fn bad_config_and_bad_input_are_named() {
        let e = |c: &str| Router::init(&Config::parse(c).unwrap()).err().unwrap();
        assert_eq!(e("threshold=lots"), "config key `threshold`: `lots` is not a number");
        assert_eq!(e("treshold=1"), "unknown config key `treshold` (known keys: threshold)");
        let mut r = Router::init(&Config::default()).unwrap();
        let no_amount =
            Batch::new(1, vec![Column::new("id", [Some("a")].into_iter().collect::<StrBuilder>())]).unwrap();
        assert_eq!(
            write_batch(&mut r, 0, &no_amount).unwrap_err().message,
            "input has no column `amount`; its columns are: id"
        );
        let text = Batch::new(1, vec![Column::new("amount", [Some("1")].into_iter().collect::<StrBuilder>())]).unwrap();
        assert_eq!(
            write_batch(&mut r, 0, &text).unwrap_err().message,
            "column `amount` is utf8 (string), not float64 (double)"
        );
    }
}
