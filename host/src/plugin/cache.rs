use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use wasmtime::component::Component;
use wasmtime::Engine;

use crate::atomic_file::write_atomic;

/// Compiled components on disk, keyed by the component's digest and the engine's compatibility
/// hash (wasmtime version and settings), so a job restart or a second job with the same plugin
/// skips Cranelift. A cache that cannot be written is not an error: the component is compiled
/// again next time.
pub struct ComponentCache {
    dir: Option<PathBuf>,
}

impl ComponentCache {
    pub fn from_env() -> Self {
        let dir = match std::env::var_os("WEIR_CACHE_DIR") {
            Some(d) if d.is_empty() => None,
            Some(d) => Some(PathBuf::from(d)),
            None => std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .map(|d| d.join("weir")),
        };
        Self { dir: dir.map(|d| d.join("components")) }
    }

    pub fn get_or_compile(&self, engine: &Engine, bytes: &[u8], digest: &str) -> wasmtime::Result<Component> {
        let Some(dir) = &self.dir else { return Component::new(engine, bytes) };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let file = dir.join(format!("{}-{:016x}.cwasm", digest.trim_start_matches("sha256:"), h.finish()));
        if file.exists() {
            // SAFETY: the file was written by `serialize` below for this engine configuration
            // (the name carries the compatibility hash), in a directory only weir writes to;
            // wasmtime additionally checks its header and version before using it.
            if let Ok(c) = unsafe { Component::deserialize_file(engine, &file) } {
                return Ok(c);
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Ok(serialized) = component.serialize() {
            let _ = write_atomic(&file, &serialized);
        }
        Ok(component)
    }
}
