use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use wasmtime::component::Linker;
use wasmtime::Store;

use super::convert::{batch_to_wit, output_from_wit, schema_from_wit, schema_to_wit};
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

/// A loaded `mapper` plugin: validated against the world, initialised, its output schema known.
/// Holds one live instance; an instance that trapped is dropped and a fresh one (re-initialised
/// with the same config) serves the next call, so one bad batch never poisons the rest.
pub struct MapperPlugin {
    path: PathBuf,
    digest: String,
    pre: MapperPre<PluginState>,
    limits: PluginLimits,
    config: String,
    instance: Option<(Store<PluginState>, Mapper)>,
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
        let result = plugin.call("output-schema", None, |store, m| m.call_output_schema(store, &wit_schema))?;
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
        let wit_batch = batch_to_wit(input);
        let out = self.call("map-batch", Some(batch_id), |store, m| m.call_map_batch(store, &wit_batch))?;
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
        f: impl FnOnce(&mut Store<PluginState>, &Mapper) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        if self.instance.is_none() {
            let mut store = new_store(self.pre.engine(), &self.limits);
            arm_deadline(&mut store, &self.limits);
            let mapper = self.pre.instantiate(&mut store).map_err(|e| self.aborted("instantiate", batch, e))?;
            arm_deadline(&mut store, &self.limits);
            let init = mapper.call_init(&mut store, &self.config).map_err(|e| self.aborted("init", batch, e))?;
            init.map_err(|message| PluginError::Refused {
                plugin: self.path.clone(),
                export: "init",
                batch: BatchLabel(batch),
                message,
                row: None,
            })?;
            self.instance = Some((store, mapper));
        }
        let (store, mapper) = self.instance.as_mut().expect("set just above");
        arm_deadline(store, &self.limits);
        match f(store, mapper) {
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
            "raise the operator's cpu_time_limit if the plugin is slow but correct",
        );
    }
    if text.contains("growing memory") || text.contains("memory.grow") || text.contains("forcing trap when growing") {
        return (
            format!("needed more than its memory limit of {} MiB", limits.memory_bytes >> 20),
            "raise the operator's memory_limit, or make the plugin use less memory per batch",
        );
    }
    (format!("trapped: {}", text.trim()), "this is a bug in the plugin (a panic or invalid operation); the host is unaffected")
}
