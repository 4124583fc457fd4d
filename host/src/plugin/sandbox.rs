use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::EPOCH_TICK;
use crate::job::PluginLimits;

/// Everything a plugin instance can reach: a WASI context that grants nothing (no preopened
/// directories, no sockets, empty environment and arguments, stdin empty, stdout/stderr
/// discarded, clocks frozen at the epoch, randomness from fixed seeds; a job may grant the
/// clock and randomness) and its memory cap.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    /// What a batch-sink plugin emitted during the current call.
    pub(super) emits: Emits,
}

/// The batches a `batch-sink` plugin emits during one `write-batch` call, held by the host
/// until the call returns (nothing is written before the whole batch succeeded).
#[derive(Default)]
pub(super) struct Emits {
    /// The output names the job declares.
    pub allowed: Vec<String>,
    pub batches: Vec<(String, super::mapper::wit::Batch)>,
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

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// A new store for one plugin instance, with its memory cap installed. Unless the job grants
/// them, the clocks read the epoch and randomness comes from fixed seeds, so a replayed batch
/// gets the same answers as its first run.
pub fn new_store(engine: &Engine, limits: &PluginLimits) -> Store<PluginState> {
    let mut builder = WasiCtxBuilder::new();
    if !limits.grant_clock {
        builder.wall_clock(FrozenClock).monotonic_clock(FrozenClock);
    }
    if !limits.grant_random {
        use wasi_rand::SeedableRng;
        builder
            .secure_random(wasi_rand::rngs::StdRng::seed_from_u64(0))
            .insecure_random(wasi_rand::rngs::StdRng::seed_from_u64(1))
            .insecure_random_seed(0);
    }
    let wasi = builder.build();
    let limits = StoreLimitsBuilder::new().memory_size(limits.memory_bytes).trap_on_grow_failure(true).build();
    let mut store =
        Store::new(engine, PluginState { wasi, table: ResourceTable::new(), limits, emits: Emits::default() });
    store.limiter(|s| &mut s.limits);
    store
}

/// Arms the CPU deadline for the next call: the call traps once this much time has passed.
pub fn arm_deadline(store: &mut Store<PluginState>, limits: &PluginLimits) {
    let ticks = limits.cpu_time_per_call.as_nanos().div_ceil(EPOCH_TICK.as_nanos()).max(1) as u64;
    store.set_epoch_deadline(ticks);
}
