//! The WebAssembly runtime. The only module that knows wasmtime: the rest of the host sees
//! plugins as Rust values taking and giving Arrow batches.
//!
//! One [`Runtime`] (one wasmtime `Engine`) per process; components are compiled once and cached
//! on disk by content hash; each plugin instance runs in its own `Store` with a memory cap, a CPU
//! deadline per call (epoch interruption) and WASI linked with nothing granted.

use std::path::PathBuf;
use std::time::Duration;

/// The `batch-sink` world (foreachBatch): write-batch and the `emit` import.
pub mod batch_sink;
/// How much a plugin's result may cost the host: rows and bytes, counted before copying.
mod bounds;
/// Turning a plugin's source directory into a component (`weir plugin build`).
pub mod build;
/// Compiled components cached on disk by content hash.
mod cache;
/// Arrow batches to and from the WIT `batch` / `output-batch` types.
mod convert;
/// The input batch lowered into the guest straight from Arrow's buffers.
mod input;
/// One live instance per plugin, whatever its world; CPU deadline and trap handling.
mod instance;
/// The memory budget of one instance: all its memories and tables, and how many it may have.
mod limiter;
/// What a plugin writes to stdout/stderr, printed to the job's log within limits.
mod log;
/// The `mapper` world: init, output-schema, map-batch.
pub mod mapper;
/// `weir plugin new`: a plugin directory from the embedded templates.
pub mod new;
/// The process-wide engine and its epoch ticker.
mod runtime;
/// What one plugin instance may touch: WASI with nothing granted, memory and CPU caps.
mod sandbox;
/// The `stateful` world: init, output-schema, state-version, process-groups.
pub mod stateful;
/// The WASI interfaces a plugin is linked with; none of them can block the host.
mod wasi;

pub use batch_sink::BatchSinkPlugin;
pub use log::LogLimits;
pub use mapper::MapperPlugin;
pub use runtime::Runtime;
pub use stateful::StatefulPlugin;

/// Why a plugin could not be loaded or a call failed. Each names the plugin and, for calls, the
/// export and batch, and says whose fault it is.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The file is missing, not a component, or not of the expected world (the job's fault).
    #[error("plugin {plugin}: cannot load: {message}")]
    Load { plugin: PathBuf, message: String },
    /// The plugin ran out of CPU time, memory, or trapped (a bug in the plugin, or a limit set
    /// too low in the job). The host is unaffected; the instance is replaced before next use.
    #[error("plugin {plugin}: `{export}` {what} (batch {batch}); {hint}")]
    Aborted { plugin: PathBuf, export: &'static str, batch: BatchLabel, what: String, hint: &'static str },
    /// The plugin returned an error of its own (bad data, a refused config).
    #[error("plugin {plugin}: `{export}` returned an error (batch {batch}): {message}")]
    Refused { plugin: PathBuf, export: &'static str, batch: BatchLabel, message: String, row: Option<u32> },
    /// `on_error = "retry"` gave up: every attempt failed; the last error is kept.
    #[error("{last} (tried {attempts} times: on_error = \"retry\" gave up; fix the plugin or its limits, or set on_error = \"dead_letter\" to set the failing rows aside)")]
    Retried { attempts: u32, last: Box<PluginError> },
    /// The plugin returned (or emitted) more than a limit of the job allows: too many rows or
    /// bytes for one call. Checked before the host copies anything, so the host's memory stays
    /// bounded; follows the operator's `on_error` like a trap.
    #[error("plugin {plugin}: `{export}` {what} (batch {batch}), past the limit of {limit}; raise the {setting} setting of the operator or sink if this is expected")]
    Limit {
        plugin: PathBuf,
        export: &'static str,
        batch: BatchLabel,
        what: String,
        limit: String,
        setting: &'static str,
    },
    /// The plugin returned a batch that breaks the contract (wrong length, type, schema).
    #[error(
        "plugin {plugin}: `{export}` returned an invalid batch (batch {batch}): {message}; this is a bug in the plugin"
    )]
    InvalidOutput { plugin: PathBuf, export: &'static str, batch: BatchLabel, message: String },
}

/// The micro-batch a call belongs to, or none for calls made at start (`init`, `output-schema`).
#[derive(Debug, Clone, Copy)]
pub struct BatchLabel(pub Option<u64>);

impl std::fmt::Display for BatchLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(id) => write!(f, "{id}"),
            None => f.write_str("none, at start"),
        }
    }
}

/// How often the epoch ticker advances; CPU deadlines are rounded up to it.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// `sha256:<hex>` of a component's bytes: the name of a plugin version everywhere (offsets
/// entries, `CHECKPOINT/plugins/`, the admin API, the code cache).
pub fn component_digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// An error message from a plugin, cut to `max` bytes (at a character boundary) so that a
/// plugin cannot make the host copy megabytes per dead-lettered row.
pub(crate) fn cut_message(mut message: String, max: usize) -> String {
    if message.len() <= max {
        return message;
    }
    let total = message.len();
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    message.push_str(&format!(" [cut: the plugin's message had {total} bytes; max_error_length is {max}]"));
    message
}

#[cfg(test)]
mod tests {
    use super::cut_message;

    #[test]
    fn long_messages_are_cut_at_a_character_boundary_saying_so() {
        assert_eq!(cut_message("short".into(), 10), "short");
        let cut = cut_message("ééééé".into(), 5);
        assert!(cut.starts_with("éé [cut: the plugin's message had 10 bytes; max_error_length is 5]"), "{cut}");
    }
}

/// What a plugin did since the figures were last taken (a batch): calls, time inside the plugin,
/// bytes of batches handed in and returned, the most memory its instance held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PluginMetrics {
    pub calls: u64,
    pub nanos: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub peak_memory_bytes: u64,
}

impl PluginMetrics {
    /// Spark-style JSON for a progress record (`plugins[]`, weir's own field).
    pub fn to_json(&self, operator: usize, digest: &str) -> serde_json::Value {
        serde_json::json!({
            "operator": operator,
            "digest": digest,
            "calls": self.calls,
            // Milliseconds with microseconds: a fast plugin's batch takes well under one.
            "timeMs": (self.nanos / 1_000) as f64 / 1000.0,
            "bytesIn": self.bytes_in,
            "bytesOut": self.bytes_out,
            "peakMemoryBytes": self.peak_memory_bytes,
        })
    }
}
