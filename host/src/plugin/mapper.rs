use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use wasmtime::component::{Func, Linker, TypedFunc};
use wasmtime::Store;

use super::convert::{output_from_wit, schema_from_wit, schema_to_wit};
use super::input::{batch_ref, owned_parts, BatchRef};
use super::runtime::Runtime;
use super::sandbox::{arm_deadline, new_store, PluginState};
use super::{BatchLabel, PluginError};
use crate::job::PluginLimits;

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

/// One live instance: its store, the generated bindings, and `map-batch` as a raw function
/// whose type was checked against [`MapBatch`] when the instance was made.
struct Live {
    store: Store<PluginState>,
    mapper: Mapper,
    map_batch: Func,
}

/// A loaded `mapper` plugin: validated against the world, initialised, its output schema known.
/// Holds one live instance; an instance that trapped is dropped and a fresh one (re-initialised
/// with the same config) serves the next call, so one bad batch never poisons the rest.
pub struct MapperPlugin {
    path: PathBuf,
    digest: String,
    pre: MapperPre<PluginState>,
    limits: PluginLimits,
    config: String,
    instance: Option<Live>,
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
        let loaded = runtime.load(path)?;
        let load_err = |message: String| PluginError::Load { plugin: path.to_path_buf(), message };
        let mut linker: Linker<PluginState> = Linker::new(runtime.engine());
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| load_err(format!("linking WASI: {e}")))?;
        let instance_pre = linker.instantiate_pre(&loaded.component).map_err(|e| {
            load_err(format!("it imports something weir does not provide (only WASI, granting nothing): {e:#}"))
        })?;
        let pre = MapperPre::new(instance_pre)
            .map_err(|e| load_err(format!("not a component of the weir:plugin mapper world: {e:#}")))?;
        let mut plugin = MapperPlugin {
            path: path.to_path_buf(),
            digest: loaded.digest,
            pre,
            limits,
            config: config.to_string(),
            instance: None,
            output_schema: input_schema.clone(),
            input_schema,
        };
        let wit_schema = schema_to_wit(&plugin.input_schema).map_err(load_err)?;
        let result = plugin.call("output-schema", None, |store, m, _| m.call_output_schema(store, &wit_schema))?;
        let fields = result.map_err(|message| PluginError::Refused {
            plugin: path.to_path_buf(),
            export: "output-schema",
            batch: BatchLabel(None),
            message,
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
        &self.path
    }

    /// `sha256:<hex>` of the component: recorded per batch in the checkpoint.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn output_schema(&self) -> SchemaRef {
        self.output_schema.clone()
    }

    /// Runs `map-batch` over one Arrow batch.
    pub fn map_batch(&mut self, batch_id: u64, input: &RecordBatch) -> Result<RecordBatch, PluginError> {
        let label = BatchLabel(Some(batch_id));
        let owned = owned_parts(input);
        let batch = batch_ref(input, &owned);
        let out = self.call("map-batch", Some(batch_id), |store, _, map_batch| {
            // SAFETY: `map_batch` was type-checked as `MapBatch` when the instance was made;
            // only the lifetime of the borrowed input differs, which the type check ignores.
            let f: MapBatch<'_> = unsafe { TypedFunc::new_unchecked(*map_batch) };
            f.call(store, (&batch,)).map(|(r,)| r)
        })?;
        let out = out.map_err(|e| PluginError::Refused {
            plugin: self.path.clone(),
            export: "map-batch",
            batch: label,
            message: e.message,
            row: e.row,
        })?;
        output_from_wit(out, input, &self.output_schema).map_err(|message| PluginError::InvalidOutput {
            plugin: self.path.clone(),
            export: "map-batch",
            batch: label,
            message,
        })
    }

    /// Makes sure an initialised instance exists, arms the CPU deadline, and makes the call;
    /// a trap drops the instance.
    fn call<R>(
        &mut self,
        export: &'static str,
        batch: Option<u64>,
        f: impl FnOnce(&mut Store<PluginState>, &Mapper, &Func) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        if self.instance.is_none() {
            let mut store = new_store(self.pre.engine(), &self.limits);
            arm_deadline(&mut store, &self.limits);
            let instance =
                self.pre.instance_pre().instantiate(&mut store).map_err(|e| self.aborted("instantiate", batch, e))?;
            let mapper = Mapper::new(&mut store, &instance).map_err(|e| self.aborted("instantiate", batch, e))?;
            let map_batch = instance.get_func(&mut store, "map-batch").ok_or_else(|| PluginError::Load {
                plugin: self.path.clone(),
                message: "no `map-batch` export".into(),
            })?;
            map_batch.typed::<(&BatchRef<'static>,), (Result<wit::OutputBatch, wit::BatchError>,)>(&store).map_err(
                |e| PluginError::Load {
                    plugin: self.path.clone(),
                    message: format!("`map-batch` has the wrong type: {e:#}"),
                },
            )?;
            arm_deadline(&mut store, &self.limits);
            let init = mapper.call_init(&mut store, &self.config).map_err(|e| self.aborted("init", batch, e))?;
            init.map_err(|message| PluginError::Refused {
                plugin: self.path.clone(),
                export: "init",
                batch: BatchLabel(batch),
                message,
                row: None,
            })?;
            self.instance = Some(Live { store, mapper, map_batch });
        }
        let live = self.instance.as_mut().expect("set just above");
        arm_deadline(&mut live.store, &self.limits);
        match f(&mut live.store, &live.mapper, &live.map_batch) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.instance = None;
                Err(self.aborted(export, batch, e))
            }
        }
    }

    fn aborted(&self, export: &'static str, batch: Option<u64>, e: wasmtime::Error) -> PluginError {
        let (what, hint) = classify_abort(&e, &self.limits);
        PluginError::Aborted { plugin: self.path.clone(), export, batch: BatchLabel(batch), what, hint }
    }
}

/// Says which limit a failed call hit, in words a job author can act on.
fn classify_abort(e: &wasmtime::Error, limits: &PluginLimits) -> (String, &'static str) {
    let text = format!("{e:?}");
    if let Some(wasmtime::Trap::Interrupt) = e.downcast_ref::<wasmtime::Trap>() {
        return (
            format!("ran longer than its CPU time limit of {:?}", limits.cpu_time_per_call),
            "raise the operator's max_call_time if the plugin is slow but correct",
        );
    }
    if text.contains("growing memory") || text.contains("memory.grow") || text.contains("forcing trap when growing") {
        return (
            format!("needed more than its memory limit of {} MiB", limits.memory_bytes >> 20),
            "raise the operator's max_memory, or make the plugin use less memory per batch",
        );
    }
    (
        format!("trapped: {}", text.trim()),
        "this is a bug in the plugin (a panic or invalid operation); the host is unaffected",
    )
}
