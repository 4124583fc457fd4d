use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store};
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::limiter::StoreBudget;
use super::log::PluginLog;
use super::EPOCH_TICK;
use crate::config::PluginLimits;

/// Everything a plugin instance can reach: a WASI context that grants nothing (no preopened
/// directories, no sockets, empty environment and arguments, stdin empty, stdout/stderr into
/// the plugin's log, clocks frozen at the epoch, randomness from fixed seeds; a job may grant
/// the clock and randomness) and its memory budget (all memories and tables together).
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    budget: StoreBudget,
    /// Whether the monotonic clock reads real time (`wasi.rs` serves it).
    pub(super) clock_granted: bool,
    /// What the plugin wrote to stdout and stderr, until the host prints it.
    pub(super) log: PluginLog,
    /// What a batch-sink plugin emitted during the current call.
    pub(super) emits: Emits,
}

/// The batches a `batch-sink` plugin emits during one `write-batch` call, held by the host
/// until the call returns (nothing is written before the whole batch succeeded).
#[derive(Default)]
pub(crate) struct Emits {
    /// The output names the job declares.
    pub allowed: Vec<String>,
    pub batches: Vec<(String, super::mapper::wit::Batch)>,
    /// Bytes of the batches held so far, and the most a call may emit (`max_emit_bytes`): the
    /// emit that would pass it traps, so the host holds at most the limit plus the one batch
    /// it just lifted, however often a plugin emits.
    pub bytes: usize,
    pub max_bytes: usize,
    /// Emits the host refused (an undeclared output): the batch fails even if the plugin
    /// ignores the error, so that nothing it meant to write is silently lost.
    pub refused: Vec<String>,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// A clock that always says 1970-01-01T00:00:00Z: plugins get no time source unless a job
/// grants one, so their output depends on their input only.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl PluginState {
    /// Bytes of memories and tables the instance holds now.
    pub fn memory_bytes(&self) -> usize {
        self.budget.used_bytes()
    }
}

/// A new store for one plugin instance, with its memory budget installed. Unless the job grants
/// them, the clocks read the epoch and randomness comes from fixed seeds, so a replayed batch
/// gets the same answers as its first run.
pub fn new_store(engine: &Engine, limits: &PluginLimits) -> Store<PluginState> {
    let mut builder = WasiCtxBuilder::new();
    // The monotonic clock is weir's own (wasi.rs), frozen unless granted.
    if !limits.grant_clock {
        builder.wall_clock(FrozenClock);
    }
    let log = PluginLog::new(&limits.log);
    builder.stdout(log.clone()).stderr(log.clone());
    if !limits.grant_random {
        use wasi_rand::SeedableRng;
        builder
            .secure_random(wasi_rand::rngs::StdRng::seed_from_u64(0))
            .insecure_random(wasi_rand::rngs::StdRng::seed_from_u64(1))
            .insecure_random_seed(0);
    }
    let wasi = builder.build();
    let state = PluginState {
        wasi,
        table: ResourceTable::new(),
        budget: StoreBudget::new(limits.memory_bytes),
        clock_granted: limits.grant_clock,
        log,
        emits: Emits::default(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.budget);
    store
}

/// Arms the CPU deadline for the next call: the call traps once this much time has passed.
pub fn arm_deadline(store: &mut Store<PluginState>, limits: &PluginLimits) {
    let ticks = limits.cpu_time_per_call.as_nanos().div_ceil(EPOCH_TICK.as_nanos()).max(1) as u64;
    store.set_epoch_deadline(ticks);
}
