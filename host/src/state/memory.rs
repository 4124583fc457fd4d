//! The in-memory state store. All state lives in a `BTreeMap`; each batch's changes are written
//! as `DIR/<batch>.delta` when it commits, and every `SNAPSHOT_EVERY` batches the whole map as
//! `DIR/<batch>.snapshot`, by a background thread (as Spark's maintenance task writes the HDFS
//! store's snapshots) from a copy of the map that shares its values: the batch does not wait for
//! it, and a snapshot counts only once its file is complete, until then the deltas before it stay.
//! Loading version N reads the newest snapshot at or before N and the deltas after it. Files older
//! than what the last `keep` versions need are deleted.
//!
//! File format (both kinds): `WEIRSTATE1`, then records `[u32 key len][key][u32 value len or
//! u32::MAX for a removal][value]`, little-endian, then a `u64` record count. Files are written
//! whole or not at all (temporary file + rename).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::{StateError, StateMetrics, StateStore};
use crate::atomic_file::write_atomic_with;

const MAGIC: &[u8] = b"WEIRSTATE1";
const REMOVED: u32 = u32::MAX;
/// A snapshot every this many batches bounds how many deltas a restart replays.
pub const SNAPSHOT_EVERY: u64 = 10;

pub struct MemoryStateStore {
    dir: PathBuf,
    keep: u64,
    map: BTreeMap<Vec<u8>, Arc<[u8]>>,
    /// The version `map` holds when no batch is in progress (`None`: empty, before batch 0).
    loaded: Option<u64>,
    /// The batch in progress and its changes (`None` value: removed).
    batch: Option<u64>,
    changes: BTreeMap<Vec<u8>, Option<Arc<[u8]>>>,
    bytes: u64,
    /// The snapshot being written in the background: (its batch, the writer).
    snapshot: Option<(u64, JoinHandle<Result<(), StateError>>)>,
}

impl MemoryStateStore {
    /// Opens (creating) the store in `dir`, keeping the files of the last `keep` versions.
    /// The directory is created at the first commit.
    pub fn open(dir: &Path, keep: u64) -> Result<MemoryStateStore, StateError> {
        Ok(MemoryStateStore {
            dir: dir.to_path_buf(),
            keep: keep.max(1),
            map: BTreeMap::new(),
            loaded: None,
            batch: None,
            changes: BTreeMap::new(),
            bytes: 0,
            snapshot: None,
        })
    }

    fn io(&self, context: String) -> impl FnOnce(std::io::Error) -> StateError + '_ {
        move |source| StateError::Io { dir: self.dir.clone(), context, source }
    }

    fn corrupt(&self, message: String) -> StateError {
        StateError::Corrupt { dir: self.dir.clone(), message }
    }

    /// (version, is_snapshot) of every state file, oldest first.
    fn files(&self) -> Result<Vec<(u64, bool)>, StateError> {
        if !self.dir.exists() {
            return Ok(Vec::new());
        }
        let rd = std::fs::read_dir(&self.dir).map_err(self.io("listing".into()))?;
        let mut out = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some((v, ext)) = name.split_once('.') {
                if let (Ok(v), "delta" | "snapshot") = (v.parse::<u64>(), ext) {
                    out.push((v, ext == "snapshot"));
                }
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Rebuilds the map as committed by `version` from the files.
    fn load(&mut self, version: u64) -> Result<(), StateError> {
        let files = self.files()?;
        let base = files.iter().filter(|(v, snap)| *snap && *v <= version).map(|(v, _)| *v).next_back();
        let mut map = BTreeMap::new();
        let first_delta = match base {
            Some(v) => {
                self.apply_file(&mut map, &format!("{v}.snapshot"))?;
                v + 1
            }
            None => 0,
        };
        for v in first_delta..=version {
            if !files.contains(&(v, false)) {
                return Err(self
                    .corrupt(format!("state of batch {v} ({v}.delta) is missing, needed to rebuild batch {version}")));
            }
            self.apply_file(&mut map, &format!("{v}.delta"))?;
        }
        self.bytes = map.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
        self.map = map;
        self.loaded = Some(version);
        Ok(())
    }

    fn apply_file(&self, map: &mut BTreeMap<Vec<u8>, Arc<[u8]>>, name: &str) -> Result<(), StateError> {
        let bytes = std::fs::read(self.dir.join(name)).map_err(self.io(format!("reading {name}")))?;
        let bad = |what: &str| self.corrupt(format!("{name}: {what}"));
        let body = bytes.strip_prefix(MAGIC).ok_or_else(|| bad("not a weir state file"))?;
        if body.len() < 8 {
            return Err(bad("truncated"));
        }
        let (mut rest, count) = body.split_at(body.len() - 8);
        let count = u64::from_le_bytes(count.try_into().expect("8 bytes"));
        let read_u32 = |rest: &mut &[u8]| -> Result<u32, StateError> {
            if rest.len() < 4 {
                return Err(bad("truncated record"));
            }
            let (n, r) = rest.split_at(4);
            *rest = r;
            Ok(u32::from_le_bytes(n.try_into().expect("4 bytes")))
        };
        fn split<'b>(rest: &mut &'b [u8], n: usize) -> Option<&'b [u8]> {
            let (a, r) = rest.split_at_checked(n)?;
            *rest = r;
            Some(a)
        }
        let truncated = || self.corrupt(format!("{name}: truncated record"));
        let mut records = 0u64;
        while !rest.is_empty() {
            let klen = read_u32(&mut rest)? as usize;
            let key = split(&mut rest, klen).ok_or_else(truncated)?;
            match read_u32(&mut rest)? {
                REMOVED => {
                    map.remove(key);
                }
                vlen => {
                    let value = split(&mut rest, vlen as usize).ok_or_else(truncated)?;
                    map.insert(key.to_vec(), value.into());
                }
            }
            records += 1;
        }
        if records != count {
            return Err(bad("record count does not match"));
        }
        Ok(())
    }

    fn write_file<'a>(
        &self,
        name: &str,
        records: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    ) -> Result<(), StateError> {
        write_state_file(&self.dir, name, records)
    }

    /// Waits for the snapshot being written, if any: its error, if it failed.
    fn join_snapshot(&mut self) -> Result<(), StateError> {
        match self.snapshot.take() {
            None => Ok(()),
            Some((batch, writer)) => writer.join().unwrap_or_else(|_| {
                Err(self.corrupt(format!("the thread writing the snapshot of batch {batch} panicked")))
            }),
        }
    }

    /// Waits for the snapshot being written and deletes the files it makes unneeded.
    pub fn settle(&mut self) -> Result<(), StateError> {
        self.join_snapshot()?;
        match self.loaded {
            Some(v) => self.clean(v),
            None => Ok(()),
        }
    }

    /// Deletes files no longer needed to rebuild the last `keep` versions.
    fn clean(&self, newest: u64) -> Result<(), StateError> {
        let oldest_kept = newest.saturating_sub(self.keep - 1);
        let files = self.files()?;
        // The newest snapshot at or before the oldest kept version is still needed.
        let base = files.iter().filter(|(v, snap)| *snap && *v <= oldest_kept).map(|(v, _)| *v).next_back();
        let Some(base) = base else { return Ok(()) };
        for (v, snap) in files {
            if v < base || (v == base && !snap) {
                let name = format!("{v}.{}", if snap { "snapshot" } else { "delta" });
                std::fs::remove_file(self.dir.join(&name)).map_err(self.io(format!("removing {name}")))?;
            }
        }
        Ok(())
    }
}

/// Writes a state file `DIR/name` of `records` (a `None` value: a removal), whole or not at all.
fn write_state_file<'a>(
    dir: &Path,
    name: &str,
    records: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
) -> Result<(), StateError> {
    let path = dir.join(name);
    write_atomic_with(&path, |out| {
        out.write_all(MAGIC)?;
        let mut count = 0u64;
        for (k, v) in records {
            out.write_all(&(k.len() as u32).to_le_bytes())?;
            out.write_all(k)?;
            match v {
                Some(v) => {
                    out.write_all(&(v.len() as u32).to_le_bytes())?;
                    out.write_all(v)?;
                }
                None => out.write_all(&REMOVED.to_le_bytes())?,
            }
            count += 1;
        }
        out.write_all(&count.to_le_bytes())
    })
    .map_err(|source| StateError::Io { dir: dir.to_path_buf(), context: format!("writing {name}"), source })
}

impl StateStore for MemoryStateStore {
    fn begin(&mut self, batch_id: u64) -> Result<(), StateError> {
        let want = batch_id.checked_sub(1);
        // Uncommitted changes of an earlier attempt are in the map: start again from the files.
        if self.batch.is_some() || self.loaded != want {
            self.changes.clear();
            match want {
                Some(v) => self.load(v)?,
                None => {
                    self.map.clear();
                    self.bytes = 0;
                    self.loaded = None;
                }
            }
        }
        self.batch = Some(batch_id);
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.map.get(key).map(|v| v.to_vec()))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) {
        assert!(self.batch.is_some(), "put outside a batch: call begin first");
        let value: Arc<[u8]> = value.into();
        if let Some(old) = self.map.insert(key.to_vec(), value.clone()) {
            self.bytes -= (key.len() + old.len()) as u64;
        }
        self.bytes += (key.len() + value.len()) as u64;
        self.changes.insert(key.to_vec(), Some(value));
    }

    fn remove(&mut self, key: &[u8]) {
        assert!(self.batch.is_some(), "remove outside a batch: call begin first");
        if let Some(old) = self.map.remove(key) {
            self.bytes -= (key.len() + old.len()) as u64;
            self.changes.insert(key.to_vec(), None);
        }
    }

    fn for_each(&self, f: &mut dyn FnMut(&[u8], &[u8])) -> Result<(), StateError> {
        self.map.iter().for_each(|(k, v)| f(k, v));
        Ok(())
    }

    fn commit(&mut self) -> Result<StateMetrics, StateError> {
        let batch = self.batch.expect("commit outside a batch: call begin first");
        self.write_file(&format!("{batch}.delta"), self.changes.iter().map(|(k, v)| (k.as_slice(), v.as_deref())))?;
        if (batch + 1).is_multiple_of(SNAPSHOT_EVERY) {
            // The one before is long done, normally; a failed one stops the job here.
            self.join_snapshot()?;
            let (dir, map) = (self.dir.clone(), self.map.clone());
            let writer = std::thread::Builder::new()
                .name(format!("weir-snapshot-{batch}"))
                .spawn(move || {
                    write_state_file(
                        &dir,
                        &format!("{batch}.snapshot"),
                        map.iter().map(|(k, v)| (k.as_slice(), Some(&v[..]))),
                    )
                })
                .map_err(self.io(format!("starting the thread writing {batch}.snapshot")))?;
            self.snapshot = Some((batch, writer));
        }
        self.clean(batch)?;
        let metrics = StateMetrics {
            num_rows_total: self.map.len() as u64,
            num_rows_updated: self.changes.values().filter(|v| v.is_some()).count() as u64,
            num_rows_removed: self.changes.values().filter(|v| v.is_none()).count() as u64,
            // Keys and values, plus the map's per-entry overhead (two Vec headers and a node share).
            memory_used_bytes: self.bytes + self.map.len() as u64 * 64,
        };
        self.changes.clear();
        self.loaded = Some(batch);
        self.batch = None;
        Ok(metrics)
    }
}

impl Drop for MemoryStateStore {
    /// A snapshot being written is finished (its error, if any, only costs a longer restart).
    fn drop(&mut self) {
        let _ = self.join_snapshot();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_state_store_contract() {
        fn open(dir: &Path, keep: u64) -> Box<dyn StateStore> {
            Box::new(MemoryStateStore::open(dir, keep).unwrap())
        }
        super::super::contract::run_all(open);
    }

    /// (Rebuilding versions after a restart is in the shared contract; this is the file layout.)
    #[test]
    fn cleanup_keeps_the_snapshot_and_deltas_the_last_versions_need() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = MemoryStateStore::open(dir.path(), 3).unwrap();
        for b in 0..25u64 {
            s.begin(b).unwrap();
            s.put(format!("k{}", b % 7).as_bytes(), b.to_string().as_bytes());
            s.commit().unwrap();
        }
        s.settle().unwrap();
        let mut names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, vec!["19.snapshot", "20.delta", "21.delta", "22.delta", "23.delta", "24.delta"]);
    }

    #[test]
    fn a_missing_or_damaged_file_is_reported_with_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = MemoryStateStore::open(dir.path(), 10).unwrap();
        for b in 0..3 {
            s.begin(b).unwrap();
            s.put(b"k", b"v");
            s.commit().unwrap();
        }
        std::fs::remove_file(dir.path().join("1.delta")).unwrap();
        let e = MemoryStateStore::open(dir.path(), 10).unwrap().begin(3).err().unwrap().to_string();
        assert!(e.contains("state of batch 1 (1.delta) is missing, needed to rebuild batch 2"), "{e}");
        std::fs::write(dir.path().join("1.delta"), b"WEIRSTATE1\x01\x00").unwrap();
        let e = MemoryStateStore::open(dir.path(), 10).unwrap().begin(3).err().unwrap().to_string();
        assert!(e.contains("1.delta: truncated"), "{e}");
    }
}
