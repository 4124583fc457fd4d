use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, OptLevel};

use super::cache::ComponentCache;
use super::{PluginError, EPOCH_TICK};

/// The process-wide wasmtime engine, the compiled-component cache, and the thread that advances
/// the engine's epoch so that CPU deadlines fire. Create one per process and share it.
pub struct Runtime {
    engine: Engine,
    cache: ComponentCache,
    ticker: Option<Ticker>,
}

/// A component ready to instantiate, with the digest recorded in checkpoints.
#[derive(Clone)]
pub struct LoadedComponent {
    pub component: Component,
    /// `sha256:<hex>` of the component's bytes: which plugin version ran a batch.
    pub digest: String,
}

struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Runtime {
    /// Builds the engine (Cranelift, optimised for speed, epoch interruption on) and starts the
    /// epoch ticker. The compiled-component cache lives in `WEIR_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/weir`, else `~/.cache/weir`.
    pub fn new() -> anyhow::Result<Runtime> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.cranelift_opt_level(OptLevel::Speed);
        let engine = Engine::new(&config)?;
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::Builder::new().name("weir-epoch".into()).spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?
        };
        Ok(Runtime { engine, cache: ComponentCache::from_env(), ticker: Some(Ticker { stop, handle: Some(handle) }) })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Reads and compiles (or loads from the cache) the component at `path`. Refuses a file that
    /// is not a component with a message saying how to make one.
    pub fn load(&self, path: &Path) -> Result<LoadedComponent, PluginError> {
        let load_err = |message: String| PluginError::Load { plugin: path.to_path_buf(), message };
        let bytes = std::fs::read(path).map_err(|e| load_err(format!("cannot read the file: {e}")))?;
        check_is_component(&bytes).map_err(load_err)?;
        let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
        let component = self
            .cache
            .get_or_compile(&self.engine, &bytes, &digest)
            .map_err(|e| load_err(format!("not a valid component: {e:#}")))?;
        Ok(LoadedComponent { component, digest })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker.take();
    }
}

/// A component starts with the wasm magic and the component-model version/layer; a core module
/// (what `cargo build --target wasm32-unknown-unknown` gives) has version 1, layer 0.
fn check_is_component(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 8 || &bytes[0..4] != b"\0asm" {
        return Err("not a WebAssembly file (no \\0asm header); build the plugin with `weir plugin build DIR`".into());
    }
    if bytes[6..8] == [0, 0] {
        return Err("a core WebAssembly module, not a component; wrap it with `weir plugin build DIR` (or `wasm-tools component new`)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_modules_and_non_wasm_are_refused_with_the_fix() {
        assert!(check_is_component(b"hello world").unwrap_err().contains("not a WebAssembly file"));
        let core = b"\0asm\x01\0\0\0";
        assert!(check_is_component(core).unwrap_err().contains("core WebAssembly module, not a component"));
        let comp = b"\0asm\x0d\0\x01\0";
        assert!(check_is_component(comp).is_ok());
    }
}
