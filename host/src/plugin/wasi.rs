//! The WASI interfaces a plugin is linked with, and the ones it is not.
//!
//! Linked: what a component built by an ordinary toolchain imports to start at all (the CLI
//! environment, stdio, clocks, random, filesystem types with no directory opened, streams and
//! poll). Not linked: sockets and name lookup (no job can grant the network). A component that
//! imports them anyway (CPython's, from componentize-py, always does) gets stubs that trap when
//! called, naming the function: not wasmtime's sockets with every address denied, which would
//! still open a real socket per `create-tcp-socket` call.
//!
//! Nothing a plugin imports may block the host: the epoch deadline (`max_call_time`) interrupts
//! Wasm code only, not a host call. So the monotonic clock is weir's own: a subscription to it
//! (a sleep, a poll with a timeout) is ready at once instead of waiting on a timer. With the
//! clock frozen no time passes anyway; with `grant = ["clock"]` a plugin that waits for time to
//! pass spins in Wasm, where the CPU deadline stops it. stdin is empty (ready, at its end) and
//! stdout/stderr go to the plugin's log (`log.rs`), which never blocks.

use std::sync::OnceLock;
use std::time::Instant;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, HasData, Linker, Resource, ResourceTable, ResourceType};
use wasmtime_wasi::clocks::WasiClocks;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::{DynPollable, Pollable};

use super::sandbox::PluginState;

/// Links the WASI interfaces plugins may import (see the module doc).
pub fn add_to_linker(l: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::WasiClocksView;
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random, sync};
    use wasmtime_wasi::random::{WasiRandom, WasiRandomView};
    use wasmtime_wasi::WasiView;

    wasmtime_wasi::p2::bindings::io::error::add_to_linker::<PluginState, HasTable>(l, |s| s.ctx().table)?;
    sync::io::poll::add_to_linker::<PluginState, HasTable>(l, |s| s.ctx().table)?;
    sync::io::streams::add_to_linker::<PluginState, HasTable>(l, |s| s.ctx().table)?;
    clocks::wall_clock::add_to_linker::<PluginState, WasiClocks>(l, PluginState::clocks)?;
    monotonic_clock::add_to_linker::<PluginState, PluginClock>(l, |s| PluginClockView {
        granted: s.clock_granted,
        table: s.ctx().table,
    })?;
    filesystem::preopens::add_to_linker::<PluginState, WasiFilesystem>(l, PluginState::filesystem)?;
    sync::filesystem::types::add_to_linker::<PluginState, WasiFilesystem>(l, PluginState::filesystem)?;
    random::random::add_to_linker::<PluginState, WasiRandom>(l, PluginState::random)?;
    random::insecure::add_to_linker::<PluginState, WasiRandom>(l, PluginState::random)?;
    random::insecure_seed::add_to_linker::<PluginState, WasiRandom>(l, PluginState::random)?;
    cli::exit::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::environment::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::stdin::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::stdout::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::stderr::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::terminal_input::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::terminal_output::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::terminal_stdin::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::terminal_stdout::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::terminal_stderr::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    Ok(())
}

/// The `wasi:sockets/*` interfaces `component` imports, defined as functions that trap ("plugins
/// have no network") and resources no function can make. Any other import weir does not
/// provide still makes the component fail to load.
pub fn stub_sockets(l: &mut Linker<PluginState>, component: &Component) -> wasmtime::Result<()> {
    let engine = l.engine().clone();
    let ty = component.component_type();
    for (name, import) in ty.imports(&engine) {
        let ComponentItem::ComponentInstance(instance) = import.ty else { continue };
        if !name.starts_with("wasi:sockets/") {
            continue;
        }
        let mut li = l.instance(name)?;
        for (export, item) in instance.exports(&engine) {
            match item.ty {
                ComponentItem::Resource(_) => li.resource(export, socket_resource_type(export), |_, _| Ok(()))?,
                ComponentItem::ComponentFunc(_) => {
                    let what = format!("{name}#{export}");
                    li.func_new(export, move |_, _, _, _| {
                        wasmtime::bail!("called `{what}`: plugins have no network (no job can grant it)")
                    })?
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The host type of a resource a sockets interface names: the WASI io types it uses are the
/// ones the linked `wasi:io` serves; the sockets' own (network, tcp-socket, ...) are types no
/// function makes, so no value of them is ever handed out.
fn socket_resource_type(name: &str) -> ResourceType {
    struct NoNetwork;
    struct NoTcpSocket;
    struct NoUdpSocket;
    struct NoDatagramStream;
    struct NoResolveStream;
    struct NoSocketResource;
    match name {
        "pollable" => ResourceType::host::<DynPollable>(),
        "input-stream" => ResourceType::host::<wasmtime_wasi::p2::DynInputStream>(),
        "output-stream" => ResourceType::host::<wasmtime_wasi::p2::DynOutputStream>(),
        "error" => ResourceType::host::<wasmtime_wasi::p2::IoError>(),
        "network" => ResourceType::host::<NoNetwork>(),
        "tcp-socket" => ResourceType::host::<NoTcpSocket>(),
        "udp-socket" => ResourceType::host::<NoUdpSocket>(),
        "incoming-datagram-stream" | "outgoing-datagram-stream" => ResourceType::host::<NoDatagramStream>(),
        "resolve-address-stream" => ResourceType::host::<NoResolveStream>(),
        _ => ResourceType::host::<NoSocketResource>(),
    }
}

struct HasTable;

impl HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

/// weir's `wasi:clocks/monotonic-clock`: frozen at 0 unless granted, and never a real wait.
struct PluginClock;

impl HasData for PluginClock {
    type Data<'a> = PluginClockView<'a>;
}

struct PluginClockView<'a> {
    granted: bool,
    table: &'a mut ResourceTable,
}

/// A pollable that is always ready: what a clock subscription gives a plugin.
struct Ready;

#[wasmtime_wasi::async_trait]
impl Pollable for Ready {
    async fn ready(&mut self) {}
}

/// The granted monotonic clock: nanoseconds since the first time any plugin read it.
fn real_monotonic_now() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

impl monotonic_clock::Host for PluginClockView<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        Ok(if self.granted { real_monotonic_now() } else { 0 })
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        Ok(if self.granted { 1 } else { 1_000_000_000 })
    }

    fn subscribe_instant(&mut self, _when: monotonic_clock::Instant) -> wasmtime::Result<Resource<DynPollable>> {
        let ready = self.table.push(Ready)?;
        wasmtime_wasi::p2::subscribe(self.table, ready)
    }

    fn subscribe_duration(&mut self, _when: monotonic_clock::Duration) -> wasmtime::Result<Resource<DynPollable>> {
        let ready = self.table.push(Ready)?;
        wasmtime_wasi::p2::subscribe(self.table, ready)
    }
}
