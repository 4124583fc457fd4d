//! # weir-guest: write a weir plugin as an ordinary Rust type
//!
//! A weir plugin is a WebAssembly component of one of the worlds of `wit/weir.wit`. This crate
//! hides the generated bindings; implement one trait for your type and export it with its macro:
//!
//! - **`mapper`** (map, filter, flatMap, enrichment): [`Mapper`], exported with
//!   [`export_mapper!`]; a function from a batch to a batch (example below).
//! - **`stateful`** (`flatMapGroupsWithState` / `transformWithState`): [`StatefulProcessor`],
//!   exported with [`export_stateful!`]; called per key with the key's rows and its typed state,
//!   with Spark's timeouts, timers and TTL. See the [`stateful`] module for its guide and example.
//! - **`batch-sink`** (foreachBatch, foreach): [`BatchSink`], exported with
//!   [`export_batch_sink!`]; gets each micro-batch whole and [`emit`](Emitter::emit)s batches
//!   ([`EmitBatch`]: input rows taken with all their columns, or builders) to the job's outputs.
//!   See the [`sink`] module for its guide and example.
//!
//! Everything else (config parsing, keeping the plugin between calls, turning the WIT records
//! into column views and back, encoding states) is done here.
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
//! Everything but the export macros is plain Rust and works on any target, so a plugin's logic
//! can be unit-tested natively with `cargo test` (the macros expand to nothing off Wasm; a
//! stateful plugin runs a whole call natively with [`process_groups`], a foreachBatch plugin with
//! [`write_batch`], which records the emits).

#![warn(missing_docs)]

mod batch;
mod builder;
mod config;
mod output;
mod schema;
pub mod sink;
pub mod stateful;

#[doc(hidden)]
pub mod __private;

pub use batch::{Batch, BinaryView, Column, ColumnData, PrimitiveView, StrView, Values, VarLen};
pub use builder::{
    BinaryBuilder, BoolBuilder, F64Builder, I32Builder, I64Builder, Primitive, PrimitiveBuilder, StrBuilder,
};
pub use config::Config;
pub use output::{BatchError, Output};
pub use schema::{DataType, Field, Schema};
pub use sink::{write_batch, BatchSink, EmitBatch, Emitted, Emitter};
pub use stateful::{
    decode_state, encode_state, process_groups, BatchTime, Group, GroupResult, GroupRows, GroupState, Groups, KeyRow,
    OutputRows, OutputValue, RowWriter, StateUpdate, StatefulOutput, StatefulProcessor, TimeDomain, TimeoutUpdate,
    Timer,
};

/// Everything a plugin usually needs, in one `use weir_guest::prelude::*;`.
pub mod prelude {
    pub use crate::{
        decode_state, encode_state, process_groups, write_batch, Batch, BatchError, BatchSink, BatchTime, BinaryBuilder,
        BoolBuilder, Column, ColumnData, Config, DataType, EmitBatch, Emitted, Emitter, F64Builder, Field, Group,
        GroupRows, GroupState, Groups, I32Builder, I64Builder, KeyRow, Mapper, Output, OutputRows, PrimitiveBuilder,
        Schema, StateUpdate, StatefulOutput, StatefulProcessor, StrBuilder, TimeDomain, TimeoutUpdate, Timer, Values,
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

/// Exports a [`StatefulProcessor`] type as the plugin's `init`, `output-schema`,
/// `state-version`, `migrate-state` and `process-groups` (the `stateful` world).
///
/// Use it once, at the top level of the plugin crate (crate-type `cdylib`). The plugin built by
/// `init` lives in a static for the life of the instance. On targets other than Wasm the macro
/// expands to nothing, so the crate still builds and unit-tests natively.
#[macro_export]
macro_rules! export_stateful {
    ($ty:ty) => {
        #[cfg(target_family = "wasm")]
        const _: () = {
            static __WEIR_STATE: $crate::__private::stateful::Instance<$ty> =
                $crate::__private::stateful::Instance::new();

            struct __WeirExport;

            impl $crate::__private::stateful::Guest for __WeirExport {
                fn init(config: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::stateful::init(&__WEIR_STATE, config)
                }

                fn output_schema(
                    key: $crate::__private::stateful::WitSchema,
                    input: $crate::__private::stateful::WitSchema,
                ) -> ::std::result::Result<$crate::__private::stateful::WitSchema, ::std::string::String> {
                    $crate::__private::stateful::output_schema(&__WEIR_STATE, key, input)
                }

                fn state_version() -> u32 {
                    $crate::__private::stateful::state_version(&__WEIR_STATE)
                }

                fn migrate_state(
                    from_version: u32,
                    state: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                    $crate::__private::stateful::migrate_state(&__WEIR_STATE, from_version, state)
                }

                fn process_groups(
                    time: $crate::__private::stateful::WitBatchTime,
                    input: $crate::__private::stateful::WitGroups,
                ) -> ::std::result::Result<
                    $crate::__private::stateful::WitStatefulOutput,
                    $crate::__private::stateful::WitBatchError,
                > {
                    $crate::__private::stateful::process_groups(&__WEIR_STATE, time, input)
                }
            }

            $crate::__private::stateful::bindings::__weir_export_stateful_bindings!(
                __WeirExport with_types_in $crate::__private::stateful::bindings
            );
        };
        // Off Wasm nothing is exported; naming the methods keeps the plugin free of dead-code
        // warnings in native builds and tests.
        #[cfg(not(target_family = "wasm"))]
        const _: () = {
            let _ = <$ty as $crate::StatefulProcessor>::init;
            let _ = <$ty as $crate::StatefulProcessor>::output_schema;
            let _ = <$ty as $crate::StatefulProcessor>::process_group;
        };
    };
}

/// Exports a [`BatchSink`] type as the plugin's `init` and `write-batch` (the `batch-sink` world,
/// foreachBatch), with the host's `emit` behind [`Emitter::emit`].
///
/// Use it once, at the top level of the plugin crate (crate-type `cdylib`). The plugin built by
/// `init` lives in a static for the life of the instance. On targets other than Wasm the macro
/// expands to nothing, so the crate still builds and unit-tests natively ([`write_batch`]).
#[macro_export]
macro_rules! export_batch_sink {
    ($ty:ty) => {
        #[cfg(target_family = "wasm")]
        const _: () = {
            static __WEIR_STATE: $crate::__private::batch_sink::Instance<$ty> =
                $crate::__private::batch_sink::Instance::new();

            struct __WeirExport;

            impl $crate::__private::batch_sink::Guest for __WeirExport {
                fn init(config: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::batch_sink::init(&__WEIR_STATE, config)
                }

                fn write_batch(
                    batch_id: u64,
                    data: $crate::__private::batch_sink::WitBatch,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::batch_sink::write_batch(&__WEIR_STATE, batch_id, data)
                }
            }

            $crate::__private::batch_sink::bindings::__weir_export_batch_sink_bindings!(
                __WeirExport with_types_in $crate::__private::batch_sink::bindings
            );
        };
        // Off Wasm nothing is exported; naming the methods keeps the plugin free of dead-code
        // warnings in native builds and tests.
        #[cfg(not(target_family = "wasm"))]
        const _: () = {
            let _ = <$ty as $crate::BatchSink>::init;
            let _ = <$ty as $crate::BatchSink>::write_batch;
        };
    };
}
