use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmtime::component::Component;
use wasmtime::{Config, Engine, OptLevel};

use super::cache::ComponentCache;
use super::{PluginError, EPOCH_TICK};
use crate::config::PluginLimits;

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
    /// How long compiling (or loading it from the code cache) took.
    pub compile_time: Duration,
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

    /// Reads and compiles (or loads from the cache) the component at `path`, under the default
    /// limits. Refuses a file that is not a component with a message saying how to make one.
    pub fn load(&self, path: &Path) -> Result<LoadedComponent, PluginError> {
        self.load_limited(path, &PluginLimits::default())
    }

    /// [`Runtime::load`] under a plugin's limits: a file larger than `max_component_size` is
    /// refused before it is read, and a component whose compilation takes longer than
    /// `max_compile_time` is refused (compilation happens on its own thread; the job stops, so
    /// the thread's work is abandoned). The compile time is reported on the job's log.
    pub fn load_limited(&self, path: &Path, limits: &PluginLimits) -> Result<LoadedComponent, PluginError> {
        let load_err = |message: String| PluginError::Load { plugin: path.to_path_buf(), message };
        let bytes = read_capped(path, limits.component_bytes).map_err(load_err)?;
        check_is_component(&bytes).map_err(load_err)?;
        let digest = super::component_digest(&bytes);
        let size = bytes.len();
        let started = Instant::now();
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let engine = self.engine.clone();
            let cache = self.cache.clone();
            let digest = digest.clone();
            std::thread::Builder::new()
                .name("weir-compile".into())
                .spawn(move || {
                    let _ = tx.send(cache.get_or_compile(&engine, &bytes, &digest));
                })
                .map_err(|e| load_err(format!("cannot start a thread to compile it: {e}")))?;
        }
        let component = match rx.recv_timeout(limits.compile_time) {
            Ok(r) => r.map_err(|e| load_err(format!("not a valid component: {e:#}")))?,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                return Err(load_err(format!(
                    "compiling it took longer than max_compile_time ({:?}); the component ({} bytes) is too \
                     large or too complex: make it smaller, or raise max_compile_time",
                    limits.compile_time, size
                )))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(load_err("the compiler thread stopped without an answer (a bug in weir)".into()))
            }
        };
        let took = started.elapsed();
        // Loading from the code cache takes milliseconds; anything slower was a compile.
        if took >= Duration::from_millis(100) {
            eprintln!(
                "plugin {}: compiled in {} ms ({} KiB)",
                path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned()),
                took.as_millis(),
                size >> 10
            );
        }
        Ok(LoadedComponent { component, digest, compile_time: took })
    }
}

/// The file's bytes, refusing one larger than `max` without reading it (and reading at most
/// `max + 1` bytes, should it grow meanwhile).
fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let too_big = |len: u64| {
        format!(
            "the file is {len} bytes, more than max_component_size ({max} bytes); a plugin this large is \
             refused (raise max_component_size if it is really meant to be)"
        )
    };
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let len = file.metadata().map_err(|e| format!("cannot read the file: {e}"))?.len();
    if len > max {
        return Err(too_big(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    std::io::Read::read_to_end(&mut std::io::Read::take(file, max + 1), &mut bytes)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
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
    fn a_file_past_the_size_cap_is_refused_before_it_is_read() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("big.wasm");
        std::fs::write(&f, vec![0u8; 2048]).unwrap();
        let e = read_capped(&f, 1024).unwrap_err();
        assert!(e.contains("2048 bytes, more than max_component_size (1024 bytes)"), "{e}");
        assert_eq!(read_capped(&f, 2048).unwrap().len(), 2048);
    }

    #[test]
    fn core_modules_and_non_wasm_are_refused_with_the_fix() {
        assert!(check_is_component(b"hello world").unwrap_err().contains("not a WebAssembly file"));
        let core = b"\0asm\x01\0\0\0";
        assert!(check_is_component(core).unwrap_err().contains("core WebAssembly module, not a component"));
        let comp = b"\0asm\x0d\0\x01\0";
        assert!(check_is_component(comp).is_ok());
    }
}
