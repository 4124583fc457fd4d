use std::hash::{Hash, Hasher};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use wasmtime::component::Component;
use wasmtime::Engine;

use crate::atomic_file::write_atomic;

/// Compiled components on disk, keyed by the component's digest and the engine's compatibility
/// hash (wasmtime version and settings), so a job restart or a second job with the same plugin
/// skips Cranelift. A cache that cannot be written is not an error: the component is compiled
/// again next time.
///
/// Compiled code is native code that weir runs as it is, so the cache is trusted only when no
/// one else could have written it: the directory is created 0700, and a directory or an entry
/// that is owned by another user or writable by group or others (or is a symbolic link) is not
/// used; weir says so once and compiles instead.
#[derive(Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
    /// Whether the directory was already checked (and found unsafe: `dir` is then unused).
    checked: Arc<AtomicBool>,
    refused: Arc<AtomicBool>,
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
        Self {
            dir: dir.map(|d| d.join("components")),
            checked: Arc::new(AtomicBool::new(false)),
            refused: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The directory, created 0700 if missing, or `None` when there is none or it is not safe.
    fn usable_dir(&self) -> Option<&Path> {
        let dir = self.dir.as_deref()?;
        if !self.checked.swap(true, Ordering::SeqCst) {
            let made = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir);
            let verdict = made.map_err(|e| e.to_string()).and_then(|()| {
                // The weir directory above `components/` too: whoever can write it can swap
                // `components/` for their own.
                match dir.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => trusted(parent)?,
                    _ => {}
                }
                trusted(dir)
            });
            if let Err(why) = verdict {
                eprintln!(
                    "weir: not using the compiled-code cache {}: {why}; plugins are compiled at every start \
                     (fix: `chmod 700` the directory and make it yours, or set WEIR_CACHE_DIR to another)",
                    dir.display()
                );
                self.refused.store(true, Ordering::SeqCst);
            }
        }
        (!self.refused.load(Ordering::SeqCst)).then_some(dir)
    }

    pub fn get_or_compile(&self, engine: &Engine, bytes: &[u8], digest: &str) -> wasmtime::Result<Component> {
        let Some(dir) = self.usable_dir() else { return Component::new(engine, bytes) };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let file = dir.join(format!("{}-{:016x}.cwasm", digest.trim_start_matches("sha256:"), h.finish()));
        match trusted_file(&file) {
            Ok(true) => {
                // SAFETY: the file was written by `serialize` below for this engine
                // configuration (its name carries the component's digest and the engine's
                // compatibility hash), in a directory only this user can write, and it is owned
                // by this user and writable by no one else (checked just above); wasmtime also
                // checks its header and version before using it.
                if let Ok(c) = unsafe { Component::deserialize_file(engine, &file) } {
                    return Ok(c);
                }
            }
            Ok(false) => {}
            Err(why) => {
                eprintln!("weir: not using the compiled-code cache entry {}: {why}; compiling instead", file.display())
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Ok(serialized) = component.serialize() {
            let _ = write_atomic(&file, &serialized);
        }
        Ok(component)
    }
}

/// A directory weir may trust: owned by this user, writable by no one else.
fn trusted(path: &Path) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let me = current_uid();
    if meta.uid() != me {
        return Err(format!("{} is owned by user {}, not by this user ({me})", path.display(), meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!("{} is writable by group or others (mode {:o})", path.display(), meta.mode() & 0o777));
    }
    Ok(())
}

/// Whether a cache entry exists and may be loaded; an error says why one that exists may not.
fn trusted_file(path: &Path) -> Result<bool, String> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.to_string()),
    };
    if !meta.file_type().is_file() {
        return Err("not a regular file".into());
    }
    trusted(path).map(|()| true)
}

fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn directories_and_entries_others_can_write_are_not_trusted() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("weir");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(trusted(&dir).is_ok());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(trusted(&dir).unwrap_err().contains("writable by group or others (mode 777)"));
        let entry = d.path().join("x.cwasm");
        assert_eq!(trusted_file(&entry), Ok(false), "a missing entry is simply compiled");
        std::fs::write(&entry, b"x").unwrap();
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(trusted_file(&entry).is_err());
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(trusted_file(&entry), Ok(true));
        std::os::unix::fs::symlink(&entry, d.path().join("link.cwasm")).unwrap();
        assert!(trusted_file(&d.path().join("link.cwasm")).unwrap_err().contains("not a regular file"));
    }
}
