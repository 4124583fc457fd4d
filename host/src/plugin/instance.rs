//! One live instance of a plugin at a time, whatever its world: made on first use, initialised
//! with the operator's config, given a CPU deadline per call, and dropped after a trap so that
//! the next call gets a fresh one (one bad batch never poisons the rest).

use std::path::{Path, PathBuf};

use wasmtime::component::{InstancePre, Linker};
use wasmtime::Store;

use super::limiter::{EmitLimitHit, MemoryLimitHit};
use super::log::LogPrinter;
use super::runtime::Runtime;
use super::sandbox::{arm_deadline, new_store, PluginState};
use super::{BatchLabel, PluginError};
use crate::config::PluginLimits;

/// What differs between worlds: how an instance is made from its pre-instance, and its `init`.
pub(super) trait World: Sized + Send + 'static {
    /// The generated pre-instance (`MapperPre`, `StatefulPre`, ...).
    type Pre: Send + 'static;

    /// Checks that the linked component is of this world.
    fn pre(instance_pre: InstancePre<PluginState>) -> Result<Self::Pre, String>;

    fn engine(pre: &Self::Pre) -> &wasmtime::Engine;

    /// Makes an instance. `Err(Ok(e))`: a trap while instantiating; `Err(Err(m))`: the component
    /// does not fit (the job's fault).
    fn instantiate(pre: &Self::Pre, store: &mut Store<PluginState>) -> Result<Self, Result<wasmtime::Error, String>>;

    fn init(&self, store: &mut Store<PluginState>, config: &str) -> wasmtime::Result<Result<(), String>>;
}

/// The export `name` of a fresh instance, checked to have the type `(P) -> R`: the hot export a
/// world calls with borrowed input through `TypedFunc::new_unchecked`.
pub(super) fn checked_export<P, R>(
    instance: &wasmtime::component::Instance,
    store: &mut Store<PluginState>,
    name: &str,
) -> Result<wasmtime::component::Func, Result<wasmtime::Error, String>>
where
    P: wasmtime::component::ComponentNamedList + wasmtime::component::Lower,
    R: wasmtime::component::ComponentNamedList + wasmtime::component::Lift,
{
    let f = instance.get_func(&mut *store, name).ok_or_else(|| Err(format!("no `{name}` export")))?;
    f.typed::<P, R>(&*store).map_err(|e| Err(format!("`{name}` has the wrong type: {e:#}")))?;
    Ok(f)
}

/// A loaded plugin of world `W`: the validated component and at most one live instance.
pub(super) struct Instances<W: World> {
    path: PathBuf,
    digest: String,
    pre: W::Pre,
    limits: PluginLimits,
    config: String,
    live: Option<(Store<PluginState>, W)>,
    /// Prints what the live instance logs.
    log: LogPrinter,
    /// Calls, time and memory since the figures were last taken.
    metrics: super::PluginMetrics,
}

impl<W: World> Instances<W> {
    /// Loads the component at `path` and checks it is of world `W`, linked with WASI (granting
    /// nothing) and whatever `link` adds. No instance is made yet.
    pub fn load(
        runtime: &Runtime,
        path: &Path,
        config: &str,
        limits: PluginLimits,
        world: &str,
        link: impl FnOnce(&mut Linker<PluginState>) -> wasmtime::Result<()>,
    ) -> Result<Self, PluginError> {
        let loaded = runtime.load_limited(path, &limits)?;
        let load_err = |message: String| PluginError::Load { plugin: path.to_path_buf(), message };
        let mut linker: Linker<PluginState> = Linker::new(runtime.engine());
        super::wasi::add_to_linker(&mut linker).map_err(|e| load_err(format!("linking WASI: {e}")))?;
        link(&mut linker).map_err(|e| load_err(format!("linking the host's imports: {e:#}")))?;
        super::wasi::stub_sockets(&mut linker, &loaded.component)
            .map_err(|e| load_err(format!("linking the sockets it imports as traps: {e:#}")))?;
        let instance_pre = linker.instantiate_pre(&loaded.component).map_err(|e| {
            load_err(format!(
                "it imports something weir does not provide: {e:#} (plugins get WASI's cli, clocks, random, io and \
                 filesystem with no directory, sockets that trap when called, and nothing else)"
            ))
        })?;
        let pre = W::pre(instance_pre)
            .map_err(|e| load_err(format!("not a component of the weir:plugin {world} world: {e}")))?;
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        Ok(Instances {
            path: path.to_path_buf(),
            digest: loaded.digest,
            pre,
            log: LogPrinter::new(format!("plugin {name}"), limits.log),
            limits,
            config: config.to_string(),
            live: None,
            metrics: super::PluginMetrics::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `sha256:<hex>` of the component: recorded per batch in the checkpoint.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Makes sure an initialised instance exists, arms the CPU deadline, and makes the call; a
    /// trap drops the instance.
    pub fn call<R>(
        &mut self,
        export: &'static str,
        batch: Option<u64>,
        f: impl FnOnce(&mut Store<PluginState>, &W) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        if self.live.is_none() {
            let mut store = new_store(W::engine(&self.pre), &self.limits);
            arm_deadline(&mut store, &self.limits);
            let instance = W::instantiate(&self.pre, &mut store);
            self.log.drain(&store.data().log, batch, true);
            let instance = instance.map_err(|e| match e {
                Ok(trap) => self.aborted("instantiate", batch, trap),
                Err(message) => PluginError::Load { plugin: self.path.clone(), message },
            })?;
            arm_deadline(&mut store, &self.limits);
            let init = instance.init(&mut store, &self.config);
            self.log.drain(&store.data().log, batch, true);
            let init = init.map_err(|e| self.aborted("init", batch, e))?;
            init.map_err(|message| PluginError::Refused {
                plugin: self.path.clone(),
                export: "init",
                batch: BatchLabel(batch),
                message: super::cut_message(message, self.limits.error_bytes),
                row: None,
            })?;
            self.live = Some((store, instance));
        }
        let (store, instance) = self.live.as_mut().expect("set just above");
        arm_deadline(store, &self.limits);
        let started = std::time::Instant::now();
        let result = f(store, instance);
        self.metrics.calls += 1;
        self.metrics.nanos += started.elapsed().as_nanos() as u64;
        self.metrics.peak_memory_bytes = self.metrics.peak_memory_bytes.max(store.data().memory_bytes() as u64);
        match result {
            Ok(r) => {
                self.log.drain(&store.data().log, batch, false);
                Ok(r)
            }
            Err(e) => {
                self.log.drain(&store.data().log, batch, true);
                self.live = None;
                Err(self.aborted(export, batch, e))
            }
        }
    }

    /// Counts bytes handed to the plugin and returned by it.
    pub fn count_bytes(&mut self, bytes_in: u64, bytes_out: u64) {
        self.metrics.bytes_in += bytes_in;
        self.metrics.bytes_out += bytes_out;
    }

    /// The figures since they were last taken, and starts counting again.
    pub fn take_metrics(&mut self) -> super::PluginMetrics {
        std::mem::take(&mut self.metrics)
    }

    /// The limits the plugin runs under (the worlds check results against them).
    pub fn limits(&self) -> &PluginLimits {
        &self.limits
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
    if let Some(hit) = e.downcast_ref::<EmitLimitHit>() {
        return (
            format!("emitted more than {} MiB, past the limit of max_emit_bytes", hit.max_bytes >> 20),
            "emit less per batch, or raise the sink's max_emit_bytes if this is expected",
        );
    }
    if e.downcast_ref::<MemoryLimitHit>().is_some()
        || text.contains("growing memory")
        || text.contains("memory.grow")
        || text.contains("forcing trap when growing")
    {
        return (
            format!(
                "needed more than its memory limit of {} MiB (all its memories and tables together)",
                limits.memory_bytes >> 20
            ),
            "raise the operator's max_memory, or make the plugin use less memory per batch",
        );
    }
    (
        format!("trapped: {}", text.trim()),
        "this is a bug in the plugin (a panic or invalid operation); the host is unaffected",
    )
}

impl<W: World> Drop for Instances<W> {
    /// Says what the last batch's log dropped, if anything.
    fn drop(&mut self) {
        if let Some(line) = self.log.summary() {
            eprint!("{line}");
        }
    }
}
