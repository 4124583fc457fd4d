use std::path::Path;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use wasmtime::component::{Func, InstancePre, TypedFunc};
use wasmtime::Store;

use super::convert::{output_from_wit, schema_from_wit, schema_to_wit};
use super::input::{batch_ref, owned_parts, BatchRef};
use super::instance::{checked_export, Instances, World};
use super::runtime::Runtime;
use super::sandbox::PluginState;
use super::{BatchLabel, PluginError};
use crate::config::PluginLimits;

mod bindings {
    wasmtime::component::bindgen!({ path: "../wit", world: "mapper" });
}

/// The WIT types of the contract, as Rust types (generated from `wit/weir.wit`).
pub mod wit {
    pub use super::bindings::weir::plugin::types::*;
}

use bindings::{Mapper, MapperPre};

/// `map-batch` called with a borrowed input batch (see `input.rs`).
type MapBatch<'a> = TypedFunc<(&'a BatchRef<'a>,), (Result<wit::OutputBatch, wit::BatchError>,)>;

/// One live instance: the generated bindings, and `map-batch` as a raw function whose type was
/// checked against [`MapBatch`] when the instance was made.
struct Live {
    mapper: Mapper,
    map_batch: Func,
}

impl World for Live {
    type Pre = MapperPre<PluginState>;

    fn pre(instance_pre: InstancePre<PluginState>) -> Result<Self::Pre, String> {
        MapperPre::new(instance_pre).map_err(|e| format!("{e:#}"))
    }

    fn engine(pre: &Self::Pre) -> &wasmtime::Engine {
        pre.engine()
    }

    fn instantiate(pre: &Self::Pre, store: &mut Store<PluginState>) -> Result<Self, Result<wasmtime::Error, String>> {
        let instance = pre.instance_pre().instantiate(&mut *store).map_err(Ok)?;
        let mapper = Mapper::new(&mut *store, &instance).map_err(Ok)?;
        let map_batch = checked_export::<(&BatchRef<'static>,), (Result<wit::OutputBatch, wit::BatchError>,)>(
            &instance,
            store,
            "map-batch",
        )?;
        Ok(Live { mapper, map_batch })
    }

    fn init(&self, store: &mut Store<PluginState>, config: &str) -> wasmtime::Result<Result<(), String>> {
        self.mapper.call_init(store, config)
    }
}

/// A loaded `mapper` plugin: validated against the world, initialised, its output schema known.
/// An instance that trapped is dropped and a fresh one (re-initialised with the same config)
/// serves the next call, so one bad batch never poisons the rest.
pub struct MapperPlugin {
    instances: Instances<Live>,
    input_schema: SchemaRef,
    output_schema: SchemaRef,
}

impl MapperPlugin {
    /// Loads the component at `path`, checks it is of the `mapper` world and imports nothing but
    /// WASI, calls `init(config)` and `output-schema(input_schema)`. Any failure here stops the
    /// job before data moves.
    pub fn load(
        runtime: &Runtime,
        path: &Path,
        config: &str,
        limits: PluginLimits,
        input_schema: SchemaRef,
    ) -> Result<MapperPlugin, PluginError> {
        let instances = Instances::load(runtime, path, config, limits, "mapper", |_| Ok(()))?;
        let load_err = |message: String| PluginError::Load { plugin: path.to_path_buf(), message };
        let mut plugin = MapperPlugin { instances, output_schema: input_schema.clone(), input_schema };
        let wit_schema = schema_to_wit(&plugin.input_schema).map_err(load_err)?;
        let result = plugin
            .instances
            .call("output-schema", None, |store, live| live.mapper.call_output_schema(store, &wit_schema))?;
        let fields = result.map_err(|message| PluginError::Refused {
            plugin: path.to_path_buf(),
            export: "output-schema",
            batch: BatchLabel(None),
            message: super::cut_message(message, limits.error_bytes),
            row: None,
        })?;
        plugin.output_schema = schema_from_wit(&fields).map_err(|message| PluginError::InvalidOutput {
            plugin: path.to_path_buf(),
            export: "output-schema",
            batch: BatchLabel(None),
            message,
        })?;
        Ok(plugin)
    }

    pub fn path(&self) -> &Path {
        self.instances.path()
    }

    /// `sha256:<hex>` of the component: recorded per batch in the checkpoint.
    pub fn digest(&self) -> &str {
        self.instances.digest()
    }

    pub fn output_schema(&self) -> SchemaRef {
        self.output_schema.clone()
    }

    pub fn input_schema(&self) -> SchemaRef {
        self.input_schema.clone()
    }

    /// Runs `map-batch` over one Arrow batch.
    pub fn map_batch(&mut self, batch_id: u64, input: &RecordBatch) -> Result<RecordBatch, PluginError> {
        let label = BatchLabel(Some(batch_id));
        let owned = owned_parts(input);
        let batch = batch_ref(input, &owned);
        let out = self.instances.call("map-batch", Some(batch_id), |store, live| {
            // SAFETY: `map_batch` was type-checked as `MapBatch` when the instance was made;
            // only the lifetime of the borrowed input differs, which the type check ignores.
            let f: MapBatch<'_> = unsafe { TypedFunc::new_unchecked(live.map_batch) };
            f.call(store, (&batch,)).map(|(r,)| r)
        })?;
        let path = || self.instances.path().to_path_buf();
        let limits = *self.instances.limits();
        let out = out.map_err(|e| PluginError::Refused {
            plugin: path(),
            export: "map-batch",
            batch: label,
            message: super::cut_message(e.message, limits.error_bytes),
            row: e.row,
        })?;
        super::bounds::check_output(&out, input, &limits)
            .map_err(|e| e.into_error(self.instances.path(), "map-batch", Some(batch_id)))?;
        let out = output_from_wit(out, input, &self.output_schema).map_err(|message| PluginError::InvalidOutput {
            plugin: path(),
            export: "map-batch",
            batch: label,
            message,
        })?;
        self.instances.count_bytes(input.get_array_memory_size() as u64, out.get_array_memory_size() as u64);
        Ok(out)
    }

    /// Calls, time, bytes and memory since the figures were last taken.
    pub fn take_metrics(&mut self) -> super::PluginMetrics {
        self.instances.take_metrics()
    }
}
