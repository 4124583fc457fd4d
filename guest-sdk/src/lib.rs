//! # weir-guest: write a weir map plugin as an ordinary Rust type
//!
//! A weir plugin is a WebAssembly component of the `weir:plugin/mapper` world (`wit/weir.wit`).
//! This crate hides the generated bindings: implement [`Mapper`] for your type and export it
//! with [`export_mapper!`]. Everything else (config parsing, keeping the state between calls,
//! turning the WIT records into column views and back) is done here.
//!
//! ```
//! use weir_guest::prelude::*;
//!
//! /// Adds `amount_with_tax` to every row.
//! struct Tax {
//!     rate: f64,
//! }
//!
//! impl Mapper for Tax {
//!     fn init(config: &Config) -> Result<Self, String> {
//!         Ok(Tax { rate: config.get_f64("tax_rate", 0.2)? })
//!     }
//!
//!     fn output_schema(&self, input: &Schema) -> Result<Schema, String> {
//!         input.require("amount", DataType::Float64)?;
//!         input.try_with(Field::new("amount_with_tax", DataType::Float64, true))
//!     }
//!
//!     fn map_batch(&mut self, input: &Batch) -> Result<Output, BatchError> {
//!         let factor = 1.0 + self.rate;
//!         let amount = input.f64s("amount")?;
//!         Ok(Output::same_rows()
//!             .pass_through_all(input)
//!             .column("amount_with_tax", amount.map(|a| a * factor)))
//!     }
//! }
//!
//! weir_guest::export_mapper!(Tax);
//! ```
//!
//! Data crosses the boundary once per batch, one flat list per column. The views
//! ([`PrimitiveView`], [`StrView`], [`BinaryView`]) borrow those lists without copying, the
//! builders ([`PrimitiveBuilder`], [`StrBuilder`], [`BinaryBuilder`]) write straight into the
//! lists that go back, and input columns returned unchanged ([`Output::pass_through`]) do not
//! cross back at all: the host reuses its own copy.
//!
//! Everything but [`export_mapper!`] is plain Rust and works on any target, so a plugin's logic
//! can be unit-tested natively with `cargo test` (the macro expands to nothing off Wasm).

#![warn(missing_docs)]

mod batch;
mod builder;
mod config;
mod output;
mod schema;

#[doc(hidden)]
pub mod __private;

pub use batch::{Batch, BinaryView, Column, ColumnData, PrimitiveView, StrView, Values, VarLen};
pub use builder::{
    BinaryBuilder, BoolBuilder, F64Builder, I32Builder, I64Builder, Primitive, PrimitiveBuilder, StrBuilder,
};
pub use config::Config;
pub use output::{BatchError, Output};
pub use schema::{DataType, Field, Schema};

/// Everything a plugin usually needs, in one `use weir_guest::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Batch, BatchError, BinaryBuilder, BoolBuilder, Column, ColumnData, Config, DataType, F64Builder, Field,
        I32Builder, I64Builder, Mapper, Output, PrimitiveBuilder, Schema, StrBuilder, Values,
    };
}

/// A map plugin: a function from a batch to a batch, with state set up once by `init`.
///
/// The host creates one instance per operator, calls [`Mapper::init`] once, then
/// [`Mapper::output_schema`] when the job starts (so a schema mismatch stops the job before any
/// data moves), then [`Mapper::map_batch`] for every micro-batch. A trap (a panic) discards the
/// instance; the host makes a fresh one, with `init` called again, for the next batch.
pub trait Mapper: Sized + 'static {
    /// Builds the plugin's state from the operator's `config` string in the job file.
    /// An `Err` stops the job with this message, naming the plugin.
    fn init(config: &Config) -> Result<Self, String>;

    /// The schema `map_batch` returns for this input schema. Check here that the columns you
    /// need exist with the right types: an `Err` stops the job at start, with this message.
    fn output_schema(&self, input: &Schema) -> Result<Schema, String>;

    /// Maps one batch. Return an [`Output`] whose columns match `output_schema`'s in order,
    /// name and type. A [`BatchError`] naming a row lets the host dead-letter that record.
    fn map_batch(&mut self, input: &Batch) -> Result<Output, BatchError>;
}

/// Exports a [`Mapper`] type as the plugin's `init`, `output-schema` and `map-batch`.
///
/// Use it once, at the top level of the plugin crate (crate-type `cdylib`). The state built by
/// `init` lives in a static for the life of the instance. On targets other than Wasm the macro
/// expands to nothing, so the crate still builds and unit-tests natively.
#[macro_export]
macro_rules! export_mapper {
    ($ty:ty) => {
        #[cfg(target_family = "wasm")]
        const _: () = {
            static __WEIR_STATE: $crate::__private::State<$ty> = $crate::__private::State::new();

            struct __WeirExport;

            impl $crate::__private::Guest for __WeirExport {
                fn init(config: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::init(&__WEIR_STATE, config)
                }

                fn output_schema(
                    input: $crate::__private::WitSchema,
                ) -> ::std::result::Result<$crate::__private::WitSchema, ::std::string::String> {
                    $crate::__private::output_schema(&__WEIR_STATE, input)
                }

                fn map_batch(
                    input: $crate::__private::WitBatch,
                ) -> ::std::result::Result<$crate::__private::WitOutputBatch, $crate::__private::WitBatchError> {
                    $crate::__private::map_batch(&__WEIR_STATE, input)
                }
            }

            $crate::__private::bindings::__weir_export_bindings!(__WeirExport with_types_in $crate::__private::bindings);
        };
        // Off Wasm nothing is exported; naming the methods keeps the plugin free of dead-code
        // warnings in native builds and tests.
        #[cfg(not(target_family = "wasm"))]
        const _: () = {
            let _ = <$ty as $crate::Mapper>::init;
            let _ = <$ty as $crate::Mapper>::output_schema;
            let _ = <$ty as $crate::Mapper>::map_batch;
        };
    };
}
