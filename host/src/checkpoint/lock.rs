//! One writer per checkpoint: `CHECKPOINT/lock`, held with an OS advisory lock (`flock`) for
//! the whole life of the process that runs the query. Two writers on one checkpoint would both
//! plan batch N and both commit it: output repeated or lost. The file's text names the holder
//! (pid, host, start time) so that a second `weir run` can say who has it.
//!
//! The kernel releases the lock when its holder exits, however it exits (SIGKILL too), so a
//! lock file left by a dead process is stale and is simply taken over: only the lock counts,
//! never the file's existence. `flock` is local to a machine (and on NFS emulated with POSIX
//! locks, which the server keeps); a checkpoint shared between machines must be on a file system
//! whose locks all of them see.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::CheckpointError;

/// The lock file's name inside the checkpoint directory.
pub const LOCK_FILE: &str = "lock";

/// Who holds a checkpoint: what the lock file says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    /// RFC 3339, UTC.
    pub started: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on host {} (running since {})", self.pid, self.host, self.started)
    }
}

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct CheckpointLock {
    file: File,
    path: PathBuf,
    /// Directories this lock created (the checkpoint did not exist): removed again with the
    /// lock file when the job is refused before it ran ([`CheckpointLock::keep`] not called),
    /// so a refused job leaves nothing behind.
    created: Vec<PathBuf>,
}

impl CheckpointLock {
    /// Takes the lock of `dir`, creating the directory when absent. Refused at once (no
    /// waiting) when another process holds it, naming that process.
    pub fn acquire(dir: &Path) -> Result<CheckpointLock, CheckpointError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CheckpointError::Io { path, source }
        };
        let mut created = Vec::new();
        let mut missing = dir.to_path_buf();
        while !missing.as_os_str().is_empty() && !missing.exists() {
            created.push(missing.clone());
            match missing.parent() {
                Some(p) => missing = p.to_path_buf(),
                None => break,
            }
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(LOCK_FILE);
        // A lock file is never deleted while the lock may be held, except by its holder when a
        // job is refused (Drop); a process that locked a file just unlinked that way would hold
        // a lock nobody else sees, so it checks the path still names the file it locked.
        for _ in 0..10 {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io(&path))?;
            // SAFETY: flock on a file descriptor this function owns; no memory is passed.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc != 0 {
                let err = std::io::Error::last_os_error();
                if err.kind() == std::io::ErrorKind::WouldBlock {
                    return Err(CheckpointError::InUse { dir: dir.to_path_buf(), holder: read_holder(&path) });
                }
                return Err(CheckpointError::Io { path, source: err });
            }
            let same = match (file.metadata(), std::fs::metadata(&path)) {
                (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                _ => false,
            };
            if !same {
                continue;
            }
            let mut lock = CheckpointLock { file, path, created };
            lock.write_holder().map_err(io(&lock.path))?;
            return Ok(lock);
        }
        Err(CheckpointError::Io {
            path,
            source: std::io::Error::other("the lock file kept being replaced while it was taken"),
        })
    }

    /// The job started: keep the checkpoint directory even after the lock is released.
    pub fn keep(&mut self) {
        self.created.clear();
    }

    fn write_holder(&mut self) -> std::io::Result<()> {
        let holder = Holder {
            pid: std::process::id(),
            host: hostname(),
            started: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let text = serde_json::to_vec(&holder).expect("plain struct");
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(&text)?;
        self.file.sync_all()
    }
}

impl Drop for CheckpointLock {
    fn drop(&mut self) {
        if !self.created.is_empty() {
            // Still locked: nobody else can be using the file.
            let _ = std::fs::remove_file(&self.path);
            for dir in &self.created {
                // Only empty directories go: anything else there is someone's.
                let _ = std::fs::remove_dir(dir);
            }
        }
        // Closing the file releases the lock.
    }
}

/// Who holds the checkpoint `dir` now, if anyone (for `weir checkpoint inspect`); `None` when
/// it is free (a lock file left by a process that ended does not count).
pub fn current_holder(dir: &Path) -> Option<Holder> {
    let path = dir.join(LOCK_FILE);
    let file = File::open(&path).ok()?;
    // SAFETY: flock on a file descriptor this function owns; no memory is passed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    if rc == 0 {
        return None; // Free: closing the file lets go of the shared lock just taken.
    }
    read_holder(&path)
}

/// What the lock file of a held checkpoint says. Its holder writes it right after locking, so
/// a reader may see it empty for a moment: read again briefly.
fn read_holder(path: &Path) -> Option<Holder> {
    for _ in 0..20 {
        let mut text = String::new();
        if let Ok(mut f) = File::open(path) {
            let _ = f.read_to_string(&mut text);
        }
        if let Ok(h) = serde_json::from_str(&text) {
            return Some(h);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    None
}

/// This machine's name (as `hostname` prints it).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer it is given.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_naming_the_first_and_may_take_it_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = dir.path().join("ckpt");
        let mut first = CheckpointLock::acquire(&ckpt).unwrap();
        first.keep();
        let e = CheckpointLock::acquire(&ckpt).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(&format!("pid {} on host {}", std::process::id(), hostname())), "{text}");
        assert!(matches!(e, CheckpointError::InUse { holder: Some(_), .. }));
        drop(first);
        assert!(ckpt.join(LOCK_FILE).exists(), "the file stays; the lock is what counts");
        let _second = CheckpointLock::acquire(&ckpt).unwrap();
    }

    #[test]
    fn inspect_names_the_holder_only_while_the_lock_is_held() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(current_holder(dir.path()), None);
        let lock = CheckpointLock::acquire(dir.path()).unwrap();
        assert_eq!(current_holder(dir.path()).map(|h| h.pid), Some(std::process::id()));
        drop(lock);
        assert_eq!(current_holder(dir.path()), None);
    }

    #[test]
    fn a_stale_lock_file_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), r#"{"pid":1,"host":"gone","started":"2020-01-01T00:00:00Z"}"#)
            .unwrap();
        let _lock = CheckpointLock::acquire(dir.path()).unwrap();
        let holder: Holder = serde_json::from_slice(&std::fs::read(dir.path().join(LOCK_FILE)).unwrap()).unwrap();
        assert_eq!(holder.pid, std::process::id());
    }

    #[test]
    fn a_refused_job_leaves_no_checkpoint_directory() {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = dir.path().join("a/ckpt");
        drop(CheckpointLock::acquire(&ckpt).unwrap());
        assert!(!dir.path().join("a").exists());
    }
}
