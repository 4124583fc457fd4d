//! The glue between the generated `batch-sink` bindings and [`BatchSink`]: used by
//! [`export_batch_sink!`](crate::export_batch_sink) only; not part of the API.
//!
//! The received batch's lists move into the SDK's [`Batch`] (no copy); an emitted batch's lists
//! move into the WIT record handed to the host's `emit`.


use crate::batch::Batch;
use crate::config::Config;
use crate::sink::{BatchSink, Emitter};

/// The bindings generated from `wit/weir.wit`, world `batch-sink`.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "batch-sink",
        pub_export_macro: true,
        export_macro_name: "__weir_export_batch_sink_bindings",
    });
}

pub use bindings::Guest;
/// The WIT `batch`.
pub type WitBatch = bindings::weir::plugin::types::Batch;

/// The WIT conversions, for this world's copy of the types (only the batch ones are used).
#[allow(dead_code)]
mod convert {
    use super::bindings::weir::plugin::types as wit;
    use crate::batch::{Batch, Column, ColumnData, Values, VarLen};
    use crate::output::BatchError;
    use crate::schema::{DataType, Field, Schema};

    wit_conversions!();

    pub(super) fn batch_in(b: wit::Batch) -> Result<Batch, BatchError> {
        batch_from_wit(b)
    }

    pub(super) fn batch_out(b: Batch) -> wit::Batch {
        batch_to_wit(b)
    }
}

/// The plugin between calls, set by `init`: the same holder as a mapper's.
pub use super::State as Instance;
use super::NOT_INITIALISED;

/// `init`: parses the config and builds the plugin (replacing any earlier one).
pub fn init<T: BatchSink>(instance: &Instance<T>, config: String) -> Result<(), String> {
    let config = Config::parse(&config)?;
    let plugin = T::init(&config)?;
    *instance.0.borrow_mut() = Some(plugin);
    Ok(())
}

/// `write-batch`, emitting through the host's `outputs.emit`.
pub fn write_batch<T: BatchSink>(instance: &Instance<T>, batch_id: u64, data: WitBatch) -> Result<(), String> {
    let mut out =
        Emitter::to_host(|output, batch| bindings::weir::plugin::outputs::emit(output, &convert::batch_out(batch)));
    write_batch_to(instance, batch_id, data, &mut out)
}

/// `write-batch` with any emitter (a recording one in the tests below).
fn write_batch_to<T: BatchSink>(
    instance: &Instance<T>,
    batch_id: u64,
    data: WitBatch,
    out: &mut Emitter,
) -> Result<(), String> {
    let mut guard = instance.0.borrow_mut();
    let plugin = guard.as_mut().ok_or(NOT_INITIALISED)?;
    let batch: Batch = convert::batch_in(data).map_err(|e| e.to_string())?;
    plugin.write_batch(batch_id, &batch, out).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::bindings::weir::plugin::types as wit;
    use super::*;
    use crate::prelude::*;

    /// Emits the rows whose `x` is positive to `pos`.
    struct Positive;

    impl BatchSink for Positive {
        fn init(config: &Config) -> Result<Self, String> {
            config.reject_unknown(&[])?;
            Ok(Positive)
        }
        fn write_batch(&mut self, _: u64, input: &Batch, out: &mut Emitter) -> Result<(), BatchError> {
            let x = input.f64s("x")?;
            let rows: Vec<u32> = (0..x.len() as u32).filter(|&r| x.get(r as usize).is_some_and(|v| v > 0.0)).collect();
            out.emit("pos", EmitBatch::take(input, &rows))
        }
    }

    fn wit_batch(values: Vec<f64>) -> WitBatch {
        wit::Batch {
            num_rows: values.len() as u32,
            columns: vec![wit::Column {
                name: "x".into(),
                data: wit::ColumnData { values: wit::ColumnValues::Float64(values), validity: None },
            }],
        }
    }

    #[test]
    fn the_glue_decodes_the_batch_and_emits_through_the_emitter() {
        let instance = Instance::<Positive>::new();
        let mut out = Emitter::recording();
        assert_eq!(write_batch_to(&instance, 0, wit_batch(vec![]), &mut out).unwrap_err(), NOT_INITIALISED);
        assert_eq!(init(&instance, "y=1".into()).unwrap_err(), "unknown config key `y` (known keys: )");
        init(&instance, String::new()).unwrap();
        write_batch_to(&instance, 0, wit_batch(vec![-1.0, 2.0, 3.0]), &mut out).unwrap();
        assert_eq!(out.batches("pos")[0].f64s("x").unwrap().values(), &[2.0, 3.0]);
        let mut bad = wit_batch(vec![1.0]);
        bad.columns[0].name = "z".into();
        assert_eq!(
            write_batch_to(&instance, 1, bad, &mut out).unwrap_err(),
            "input has no column `x`; its columns are: z"
        );
        let mut malformed = wit_batch(vec![1.0]);
        malformed.num_rows = 2;
        assert!(write_batch_to(&instance, 1, malformed, &mut out)
            .unwrap_err()
            .starts_with("the host sent a malformed batch"));
    }

    #[test]
    fn an_emitted_batch_becomes_the_wit_record() {
        let b = EmitBatch::new().push_str("s", [Some("ab"), None]).finish().unwrap();
        let w = convert::batch_out(b);
        assert_eq!(w.num_rows, 2);
        let wit::ColumnValues::Utf8(v) = &w.columns[0].data.values else { panic!("not utf8") };
        assert_eq!((v.offsets.as_slice(), v.data.as_slice()), (&[0, 2, 2][..], &b"ab"[..]));
        assert_eq!(w.columns[0].data.validity, Some(vec![true, false]));
    }
}
