//! The glue between the generated `mapper` bindings and [`Mapper`]: used by
//! [`export_mapper!`](crate::export_mapper) only; not part of the API.
//!
//! Converting between the WIT records and the SDK's types moves the lists (no copy): the
//! received `list<f64>` becomes the `Vec<f64>` a view borrows, a builder's `Vec` becomes the
//! returned list.

/// The conversions between the SDK's types and a bindings module's `types` interface: each
/// world's bindings generate their own copy of the WIT types, so each glue module expands this
/// once with its own `wit` in scope.
macro_rules! wit_conversions {
    () => {
        fn data_type_from_wit(t: wit::DataType) -> DataType {
            match t {
                wit::DataType::Boolean => DataType::Boolean,
                wit::DataType::Int32 => DataType::Int32,
                wit::DataType::Int64 => DataType::Int64,
                wit::DataType::Float64 => DataType::Float64,
                wit::DataType::Utf8 => DataType::Utf8,
                wit::DataType::Binary => DataType::Binary,
                wit::DataType::Timestamp => DataType::Timestamp,
            }
        }

        fn data_type_to_wit(t: DataType) -> wit::DataType {
            match t {
                DataType::Boolean => wit::DataType::Boolean,
                DataType::Int32 => wit::DataType::Int32,
                DataType::Int64 => wit::DataType::Int64,
                DataType::Float64 => wit::DataType::Float64,
                DataType::Utf8 => wit::DataType::Utf8,
                DataType::Binary => wit::DataType::Binary,
                DataType::Timestamp => wit::DataType::Timestamp,
            }
        }

        fn schema_from_wit(s: Vec<wit::Field>) -> Schema {
            Schema::new(
                s.into_iter()
                    .map(|f| Field { name: f.name, data_type: data_type_from_wit(f.data_type), nullable: f.nullable })
                    .collect(),
            )
        }

        fn schema_to_wit(s: Schema) -> Vec<wit::Field> {
            s.fields
                .into_iter()
                .map(|f| wit::Field { name: f.name, data_type: data_type_to_wit(f.data_type), nullable: f.nullable })
                .collect()
        }

        fn var_len_from_wit(v: wit::VarLen) -> VarLen {
            VarLen { offsets: v.offsets, data: v.data }
        }

        fn var_len_to_wit(v: VarLen) -> wit::VarLen {
            wit::VarLen { offsets: v.offsets, data: v.data }
        }

        fn batch_from_wit(b: wit::Batch) -> Result<Batch, BatchError> {
            let columns = b
                .columns
                .into_iter()
                .map(|c| {
                    let values = match c.data.values {
                        wit::ColumnValues::Boolean(v) => Values::Boolean(v),
                        wit::ColumnValues::Int32(v) => Values::Int32(v),
                        wit::ColumnValues::Int64(v) => Values::Int64(v),
                        wit::ColumnValues::Float64(v) => Values::Float64(v),
                        wit::ColumnValues::Utf8(v) => Values::Utf8(var_len_from_wit(v)),
                        wit::ColumnValues::Binary(v) => Values::Binary(var_len_from_wit(v)),
                        wit::ColumnValues::Timestamp(v) => Values::Timestamp(v),
                    };
                    Column { name: c.name, data: ColumnData { values, validity: c.data.validity } }
                })
                .collect();
            Batch::new(b.num_rows as usize, columns)
                .map_err(|e| BatchError::new(format!("the host sent a malformed batch: {}", e.message)))
        }

        fn column_data_to_wit(d: ColumnData) -> wit::ColumnData {
            let values = match d.values {
                Values::Boolean(v) => wit::ColumnValues::Boolean(v),
                Values::Int32(v) => wit::ColumnValues::Int32(v),
                Values::Int64(v) => wit::ColumnValues::Int64(v),
                Values::Float64(v) => wit::ColumnValues::Float64(v),
                Values::Utf8(v) => wit::ColumnValues::Utf8(var_len_to_wit(v)),
                Values::Binary(v) => wit::ColumnValues::Binary(var_len_to_wit(v)),
                Values::Timestamp(v) => wit::ColumnValues::Timestamp(v),
            };
            wit::ColumnData { values, validity: d.validity }
        }

        fn error_to_wit(e: BatchError) -> wit::BatchError {
            wit::BatchError { message: e.message, row: e.row }
        }

        #[allow(dead_code)]
        fn batch_to_wit(b: crate::batch::Batch) -> wit::Batch {
            let (num_rows, columns) = b.into_parts();
            let columns =
                columns.into_iter().map(|c| wit::Column { name: c.name, data: column_data_to_wit(c.data) }).collect();
            // Wasm memory is at most 4 GiB, so a batch's row count always fits.
            wit::Batch { num_rows: num_rows as u32, columns }
        }
    };
}

pub mod batch_sink;
pub mod stateful;

use std::cell::RefCell;

use crate::batch::{Batch, Column, ColumnData, Values, VarLen};
use crate::config::Config;
use crate::output::{BatchError, Resolved, ResolvedColumn};
use crate::schema::{DataType, Field, Schema};
use crate::Mapper;

/// The bindings generated from `wit/weir.wit`, world `mapper`.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "mapper",
        pub_export_macro: true,
        export_macro_name: "__weir_export_bindings",
    });
}

use bindings::weir::plugin::types as wit;

pub use bindings::Guest;
/// The WIT `schema` (for the macro's signatures).
pub type WitSchema = bindings::Schema;
/// The WIT `batch`.
pub type WitBatch = bindings::Batch;
/// The WIT `output-batch`.
pub type WitOutputBatch = bindings::OutputBatch;
/// The WIT `batch-error`.
pub type WitBatchError = bindings::BatchError;

/// The plugin's state between calls: set by `init`, used by the other exports.
pub struct State<T>(RefCell<Option<T>>);

impl<T> State<T> {
    /// No state yet (before `init`).
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        State(RefCell::new(None))
    }
}

// SAFETY: a Wasm instance without the threads proposal runs one call at a time on one thread,
// so the state is never touched concurrently. Off Wasm the macro makes no static, so no impl.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
unsafe impl<T> Sync for State<T> {}

/// `init`: parses the config, builds the state (replacing any earlier one).
pub fn init<T: Mapper>(state: &State<T>, config: String) -> Result<(), String> {
    let config = Config::parse(&config)?;
    let value = T::init(&config)?;
    *state.0.borrow_mut() = Some(value);
    Ok(())
}

/// The error of a call before `init` (also the batch-sink world's).
pub(crate) const NOT_INITIALISED: &str = "the plugin was called before `init` (a bug in the host)";

/// `output-schema`.
pub fn output_schema<T: Mapper>(state: &State<T>, input: WitSchema) -> Result<WitSchema, String> {
    let guard = state.0.borrow();
    let plugin = guard.as_ref().ok_or(NOT_INITIALISED)?;
    let out = plugin.output_schema(&schema_from_wit(input))?;
    Ok(schema_to_wit(out))
}

/// `map-batch`.
pub fn map_batch<T: Mapper>(state: &State<T>, input: WitBatch) -> Result<WitOutputBatch, WitBatchError> {
    let mut guard = state.0.borrow_mut();
    let plugin = guard.as_mut().ok_or_else(|| error_to_wit(BatchError::new(NOT_INITIALISED)))?;
    let batch = batch_from_wit(input).map_err(error_to_wit)?;
    let out = plugin.map_batch(&batch).map_err(error_to_wit)?;
    let resolved = out.resolve(&batch).map_err(error_to_wit)?;
    Ok(output_to_wit(resolved))
}

wit_conversions!();

fn output_to_wit(r: Resolved) -> WitOutputBatch {
    let columns = r
        .columns
        .into_iter()
        .map(|c| match c {
            ResolvedColumn::Input { name, index } => wit::OutputColumn { name, data: wit::OutputData::Input(index) },
            ResolvedColumn::Computed { name, data } => {
                wit::OutputColumn { name, data: wit::OutputData::Computed(column_data_to_wit(data)) }
            }
        })
        .collect();
    wit::OutputBatch { num_rows: r.num_rows, rows: r.rows, columns }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    struct Doubler {
        factor: f64,
    }

    impl Mapper for Doubler {
        fn init(config: &Config) -> Result<Self, String> {
            Ok(Doubler { factor: config.get_f64("factor", 2.0)? })
        }
        fn output_schema(&self, input: &Schema) -> Result<Schema, String> {
            input.require("x", DataType::Float64)?;
            input.try_with(Field::new("y", DataType::Float64, true))
        }
        fn map_batch(&mut self, input: &Batch) -> Result<Output, BatchError> {
            let f = self.factor;
            Ok(Output::same_rows().pass_through("x").column("y", input.f64s("x")?.map(|x| x * f)))
        }
    }

    fn wit_batch() -> WitBatch {
        wit::Batch {
            num_rows: 2,
            columns: vec![wit::Column {
                name: "x".into(),
                data: wit::ColumnData {
                    values: wit::ColumnValues::Float64(vec![1.5, 9.0]),
                    validity: Some(vec![true, false]),
                },
            }],
        }
    }

    #[test]
    fn the_glue_round_trips_through_the_wit_types() {
        let state = State::<Doubler>::new();
        assert_eq!(output_schema(&state, vec![]).unwrap_err(), NOT_INITIALISED);
        assert_eq!(init(&state, "factor=oops".into()).unwrap_err(), "config key `factor`: `oops` is not a number");
        init(&state, "factor=3".into()).unwrap();
        let schema = output_schema(
            &state,
            vec![wit::Field { name: "x".into(), data_type: wit::DataType::Float64, nullable: true }],
        )
        .unwrap();
        assert_eq!(schema.len(), 2);
        assert_eq!(schema[1].name, "y");
        let wit::OutputBatch { num_rows, rows, columns } = map_batch(&state, wit_batch()).unwrap();
        assert_eq!((num_rows, rows), (2, None));
        assert!(matches!(columns[0].data, wit::OutputData::Input(0)));
        let wit::OutputData::Computed(wit::ColumnData { values: wit::ColumnValues::Float64(v), validity }) =
            &columns[1].data
        else {
            panic!("not a computed f64 column")
        };
        assert_eq!(v[0], 4.5);
        assert_eq!(validity.as_deref(), Some(&[true, false][..]));
    }

    #[test]
    fn plugin_errors_reach_the_host_as_batch_errors() {
        let state = State::<Doubler>::new();
        init(&state, String::new()).unwrap();
        let mut b = wit_batch();
        b.columns[0].name = "z".into();
        let e = map_batch(&state, b).unwrap_err();
        assert_eq!(e.message, "input has no column `x`; its columns are: z");
        let mut b = wit_batch();
        b.num_rows = 3;
        assert!(map_batch(&state, b).unwrap_err().message.starts_with("the host sent a malformed batch"));
    }
}
