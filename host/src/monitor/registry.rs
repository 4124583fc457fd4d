//! The jobs running on this machine (`weir list`): each run leaves a small file in the registry
//! directory while it runs — `$WEIR_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/weir`, else
//! `/tmp/weir-<uid>` — named by its pid and runId, made only readable by its owner. A file
//! whose process is gone (a killed job) is skipped and removed when listed.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What `weir list` shows of a running job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub pid: u32,
    pub id: String,
    pub run_id: String,
    pub name: String,
    pub job_file: String,
    pub checkpoint: String,
    /// The job's API (status, progress, stop), on loopback unless [admin] says otherwise.
    pub address: String,
    pub started: String,
}

/// The registry directory.
pub fn dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WEIR_RUNTIME_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        return PathBuf::from(d).join("weir");
    }
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("weir-{uid}"))
}

/// Records a running job; returns its file (to remove at the end). A failure is a warning: the
/// job runs, only `weir list` will not show it.
pub fn register(entry: &Entry) -> Option<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = dir();
    let file = dir.join(format!("{}-{}.json", entry.pid, entry.run_id));
    let result = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).and_then(|()| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&file)?;
        f.write_all(&serde_json::to_vec(entry).expect("plain struct"))
    });
    match result {
        Ok(()) => Some(file),
        Err(e) => {
            eprintln!("warning: recording the job in {} for `weir list`: {e}", dir.display());
            None
        }
    }
}

pub fn unregister(file: &PathBuf) {
    let _ = std::fs::remove_file(file);
}

/// The jobs running now, oldest first; files of processes that are gone are removed.
pub fn list() -> Vec<Entry> {
    let Ok(rd) = std::fs::read_dir(dir()) else { return Vec::new() };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let path = e.path();
        let Ok(entry) =
            std::fs::read(&path).map_err(|_| ()).and_then(|b| serde_json::from_slice::<Entry>(&b).map_err(|_| ()))
        else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{}", entry.pid)).exists() {
            out.push(entry);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
    out.sort_by(|a, b| (&a.started, a.pid).cmp(&(&b.started, b.pid)));
    out
}
