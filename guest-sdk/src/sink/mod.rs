//! foreachBatch plugins: the `weir:plugin/batch-sink` world (Spark's `foreachBatch`).
//!
//! Implement [`BatchSink`] and export it with [`export_batch_sink!`](crate::export_batch_sink).
//! The host calls [`BatchSink::write_batch`] once per micro-batch (`format = "foreach_batch"`),
//! or once per call of `rows_per_call` rows (`format = "foreach"`), with the batch id, the rows
//! as a [`Batch`] (typed column views by name, nothing copied), and an [`Emitter`]: every
//! [`Emitter::emit`] writes a batch to one of the job's `[[sink.output]]`s by name. What a call
//! emits becomes visible only when it returns `Ok`, exactly once per batch id; a failed or
//! replayed batch starts with nothing emitted.
//!
//! An emitted batch is an [`EmitBatch`]: input rows with all their columns
//! ([`EmitBatch::take`]), computed columns from the builders, or both.
//!
//! ```
//! use weir_guest::prelude::*;
//!
//! /// Rows with `amount >= threshold` go to `big`, the others (and null amounts) to `small`;
//! /// one row per batch to `counts`.
//! struct Router {
//!     threshold: f64,
//! }
//!
//! impl BatchSink for Router {
//!     fn init(config: &Config) -> Result<Self, String> {
//!         config.reject_unknown(&["threshold"])?;
//!         Ok(Router { threshold: config.get_f64("threshold", 100.0)? })
//!     }
//!
//!     fn write_batch(&mut self, batch_id: u64, input: &Batch, out: &mut Emitter) -> Result<(), BatchError> {
//!         let amount = input.f64s("amount")?;
//!         let (big, small): (Vec<u32>, Vec<u32>) =
//!             (0..input.num_rows() as u32).partition(|&r| amount.get(r as usize).is_some_and(|a| a >= self.threshold));
//!         out.emit("big", EmitBatch::take(input, &big))?;
//!         out.emit("small", EmitBatch::take(input, &small))?;
//!         let counts = EmitBatch::new()
//!             .push_i64("batch_id", [Some(batch_id as i64)])
//!             .push_i64("rows", [Some(input.num_rows() as i64)]);
//!         out.emit("counts", counts)
//!     }
//! }
//!
//! weir_guest::export_batch_sink!(Router);
//!
//! // The same call the export makes, natively: the emits are recorded.
//! let input = Batch::new(3, vec![Column::new("amount", [Some(50.0), Some(150.0), None].into_iter().collect::<F64Builder>())]).unwrap();
//! let mut router = Router::init(&Config::default()).unwrap();
//! let emitted = write_batch(&mut router, 7, &input).unwrap();
//! assert_eq!(emitted.iter().map(|e| e.output.as_str()).collect::<Vec<_>>(), ["big", "small", "counts"]);
//! assert_eq!(emitted[0].batch.f64s("amount").unwrap().values(), &[150.0]);
//! assert_eq!(emitted[1].batch.num_rows(), 2);
//! assert_eq!(emitted[2].batch.i64s("batch_id").unwrap().values(), &[7]);
//! ```

mod emit_batch;
mod emitter;

pub use emit_batch::EmitBatch;
pub use emitter::{Emitted, Emitter};

use crate::batch::Batch;
use crate::config::Config;
use crate::output::BatchError;

/// A foreachBatch plugin: gets each micro-batch whole and writes it to the job's outputs.
///
/// The host creates one instance per sink, calls [`init`](Self::init) once, then
/// [`write_batch`](Self::write_batch) per batch (or per call of rows, for `foreach`). A trap (a
/// panic) or an `Err` fails the batch with nothing of it visible; the job stops, and a restart
/// runs the batch again from its offsets on a fresh instance.
pub trait BatchSink: Sized + 'static {
    /// Builds the plugin from the sink's `config` string in the job file. An `Err` stops the job
    /// at start with this message, naming the plugin.
    fn init(config: &Config) -> Result<Self, String>;

    /// Writes one batch: `batch_id` is the micro-batch's id (the same when a batch is replayed),
    /// `input` its rows, `out` the outputs to emit to. An `Err` fails the batch (the host reports
    /// the message, and `row N: ` before it when the error names a row).
    fn write_batch(&mut self, batch_id: u64, input: &Batch, out: &mut Emitter) -> Result<(), BatchError>;
}

/// Runs `plugin` over one batch with a recording [`Emitter`] and returns what it emitted, in
/// order: what the exported `write-batch` does, callable natively so a plugin's logic can be
/// unit-tested without Wasm.
pub fn write_batch<P: BatchSink>(plugin: &mut P, batch_id: u64, input: &Batch) -> Result<Vec<Emitted>, BatchError> {
    let mut out = Emitter::recording();
    plugin.write_batch(batch_id, input, &mut out)?;
    Ok(out.into_emitted())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Column;
    use crate::builder::StrBuilder;

    /// Emits each batch to `copy` and fails on a configured batch id.
    struct Copier {
        fail_at: i64,
    }

    impl BatchSink for Copier {
        fn init(config: &Config) -> Result<Self, String> {
            Ok(Copier { fail_at: config.get_i64("fail_at", -1)? })
        }
        fn write_batch(&mut self, batch_id: u64, input: &Batch, out: &mut Emitter) -> Result<(), BatchError> {
            if batch_id as i64 == self.fail_at {
                return Err(BatchError::at_row(1, format!("asked to fail at batch {batch_id}")));
            }
            input.strs("s")?;
            out.emit("copy", EmitBatch::all(input))
        }
    }

    fn input() -> Batch {
        Batch::new(2, vec![Column::new("s", [Some("x"), None].into_iter().collect::<StrBuilder>())]).unwrap()
    }

    #[test]
    fn write_batch_runs_the_plugin_natively_and_returns_its_emits() {
        let mut p = Copier::init(&Config::parse("fail_at=3").unwrap()).unwrap();
        let emitted = write_batch(&mut p, 0, &input()).unwrap();
        assert_eq!(emitted, vec![Emitted { output: "copy".into(), batch: input() }]);
        let e = write_batch(&mut p, 3, &input()).unwrap_err();
        assert_eq!(e.to_string(), "row 1: asked to fail at batch 3");
        let other = Batch::new(0, vec![]).unwrap();
        assert_eq!(
            write_batch(&mut p, 1, &other).unwrap_err().message,
            "input has no column `s`; its columns are: (none)"
        );
    }
}
