//! The `batch-sink` world (foreachBatch): init, write-batch, and the host import `emit`. What a
//! call emits is held by the host and handed back only when the call succeeded, so a failed or
//! replayed batch starts with nothing emitted.

use std::path::Path;

use arrow::record_batch::RecordBatch;
use wasmtime::component::{Func, HasSelf, InstancePre, TypedFunc};
use wasmtime::Store;

use super::convert::batch_from_wit_inferred;
use super::input::{batch_ref, owned_parts, BatchRef};
use super::instance::{checked_export, Instances, World};
use super::limiter::EmitLimitHit;
use super::mapper::wit::Batch;
use super::runtime::Runtime;
use super::sandbox::PluginState;
use super::{BatchLabel, PluginError};
use crate::config::PluginLimits;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "batch-sink",
        with: { "weir:plugin/types": crate::plugin::mapper::wit },
        // `emit` may trap: once a call has emitted more than `max_emit_bytes`, the plugin is
        // stopped there instead of being left to emit (and the host to lift) without end.
        imports: { "weir:plugin/outputs.emit": trappable },
    });
}

use bindings::{BatchSink, BatchSinkPre};

/// The `types` interface has no functions; the linker still asks for its (empty) host side.
impl super::mapper::wit::Host for PluginState {}

impl bindings::weir::plugin::outputs::Host for PluginState {
    fn emit(&mut self, output: String, data: Batch) -> wasmtime::Result<Result<(), String>> {
        if !self.emits.allowed.contains(&output) {
            let message = format!(
                "emit to {output:?}: the job declares no such output (declared: {}); add a [[sink.output]] with name = {output:?}",
                self.emits.allowed.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
            );
            if self.emits.refused.len() < 16 {
                self.emits.refused.push(message.clone());
            }
            return Ok(Err(message));
        }
        let bytes = super::bounds::batch_bytes(&data) as usize;
        if self.emits.bytes.saturating_add(bytes) > self.emits.max_bytes {
            // The call stops here: the host holds at most the limit, and a plugin that
            // ignored a refusal could go on emitting (and the host lifting) without end.
            return Err(wasmtime::Error::new(EmitLimitHit { max_bytes: self.emits.max_bytes }));
        }
        self.emits.bytes += bytes;
        self.emits.batches.push((output, data));
        Ok(Ok(()))
    }
}

type WriteBatch<'a> = TypedFunc<(u64, &'a BatchRef<'a>), (Result<(), String>,)>;

struct Live {
    sink: BatchSink,
    write_batch: Func,
}

impl World for Live {
    type Pre = BatchSinkPre<PluginState>;

    fn pre(instance_pre: InstancePre<PluginState>) -> Result<Self::Pre, String> {
        BatchSinkPre::new(instance_pre).map_err(|e| format!("{e:#}"))
    }

    fn engine(pre: &Self::Pre) -> &wasmtime::Engine {
        pre.engine()
    }

    fn instantiate(pre: &Self::Pre, store: &mut Store<PluginState>) -> Result<Self, Result<wasmtime::Error, String>> {
        let instance = pre.instance_pre().instantiate(&mut *store).map_err(Ok)?;
        let sink = BatchSink::new(&mut *store, &instance).map_err(Ok)?;
        let write_batch =
            checked_export::<(u64, &BatchRef<'static>), (Result<(), String>,)>(&instance, store, "write-batch")?;
        Ok(Live { sink, write_batch })
    }

    fn init(&self, store: &mut Store<PluginState>, config: &str) -> wasmtime::Result<Result<(), String>> {
        self.sink.call_init(store, config)
    }
}

/// A loaded `batch-sink` plugin and the output names it may emit to.
pub struct BatchSinkPlugin {
    instances: Instances<Live>,
    outputs: Vec<String>,
}

impl BatchSinkPlugin {
    /// Loads the component and calls `init(config)`, so a refused config stops the job at start.
    pub fn load(
        runtime: &Runtime,
        path: &Path,
        config: &str,
        limits: PluginLimits,
        outputs: Vec<String>,
    ) -> Result<BatchSinkPlugin, PluginError> {
        let link = |l: &mut wasmtime::component::Linker<PluginState>| {
            BatchSink::add_to_linker::<PluginState, HasSelf<PluginState>>(l, |s| s)
        };
        let mut instances: Instances<Live> = Instances::load(runtime, path, config, limits, "batch-sink", link)?;
        instances.call("init", None, |_, _| Ok(()))?;
        Ok(BatchSinkPlugin { instances, outputs })
    }

    pub fn path(&self) -> &Path {
        self.instances.path()
    }

    pub fn digest(&self) -> &str {
        self.instances.digest()
    }

    /// Calls `write-batch(batch_id, data)` and returns what it emitted, in order, as Arrow
    /// batches; an emit to an undeclared output fails the batch.
    pub fn write_batch(
        &mut self,
        batch_id: u64,
        data: &RecordBatch,
    ) -> Result<Vec<(String, RecordBatch)>, PluginError> {
        let label = BatchLabel(Some(batch_id));
        let owned = owned_parts(data);
        let batch = batch_ref(data, &owned);
        let allowed = self.outputs.clone();
        let limits = *self.instances.limits();
        let (result, emits) = self.instances.call("write-batch", Some(batch_id), |store, live| {
            let emits = &mut store.data_mut().emits;
            *emits = super::sandbox::Emits {
                allowed,
                max_bytes: usize::try_from(limits.emit_bytes).unwrap_or(usize::MAX),
                ..Default::default()
            };
            // SAFETY: checked as `WriteBatch` when the instance was made; only the lifetime of
            // the borrowed input differs, which the type check ignores.
            let f: WriteBatch<'_> = unsafe { TypedFunc::new_unchecked(live.write_batch) };
            let (r,) = f.call(&mut *store, (batch_id, &batch))?;
            Ok((r, std::mem::take(&mut store.data_mut().emits)))
        })?;
        let path = || self.instances.path().to_path_buf();
        let refused = |message: String| PluginError::Refused {
            plugin: path(),
            export: "write-batch",
            batch: label,
            message,
            row: None,
        };
        result.map_err(|m| refused(super::cut_message(m, limits.error_bytes)))?;
        if let Some(first) = emits.refused.into_iter().next() {
            return Err(refused(first));
        }
        let rows: u64 = emits.batches.iter().map(|(_, b)| u64::from(b.num_rows)).sum();
        if rows > limits.output_rows {
            return Err(PluginError::Limit {
                plugin: path(),
                export: "write-batch",
                batch: label,
                what: format!("emitted {rows} rows"),
                limit: format!("{} rows per call", limits.output_rows),
                setting: "max_output_rows",
            });
        }
        emits
            .batches
            .into_iter()
            .map(|(name, b)| {
                let batch = batch_from_wit_inferred(b).map_err(|message| PluginError::InvalidOutput {
                    plugin: path(),
                    export: "emit",
                    batch: label,
                    message: format!("output {name:?}: {message}"),
                })?;
                Ok((name, batch))
            })
            .collect()
    }
}
