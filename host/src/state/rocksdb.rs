//! The RocksDB state store, for state larger than memory (`state_store = "rocksdb"`).
//!
//! The state is the `default` column family of one database in `DIR`. A batch's changes stay in
//! memory until it commits; then one atomic, synced write applies them together with an undo
//! record per changed key (its previous value, in the `meta` column family) and the new version
//! number. Going back to version N−1 (a batch replayed after a crash that came after its state
//! commit) applies the undo records of N. Undo records of the last `keep` versions are kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rocksdb::{ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};

use super::{StateError, StateMetrics, StateStore};

const META: &str = "meta";
const VERSION_KEY: &[u8] = b"version";
const ROWS_KEY: &[u8] = b"rows";
/// Undo records: `undo/` + batch (u64 big-endian) + key → [0] (absent before) or [1] + value.
const UNDO: &[u8] = b"undo/";
/// `done/` + batch: the batch committed here and its undo records exist (even if none).
const DONE: &[u8] = b"done/";

fn done_key(version: u64) -> Vec<u8> {
    [DONE, &version.to_be_bytes()].concat()
}

pub struct RocksDbStateStore {
    dir: PathBuf,
    keep: u64,
    db: DB,
    batch: Option<u64>,
    changes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl RocksDbStateStore {
    pub fn open(dir: &Path, keep: u64) -> Result<RocksDbStateStore, StateError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let cfs = vec![ColumnFamilyDescriptor::new(META, Options::default())];
        let db = DB::open_cf_descriptors(&opts, dir, cfs).map_err(|e| StateError::Io {
            dir: dir.to_path_buf(),
            context: "opening the RocksDB database".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(RocksDbStateStore { dir: dir.to_path_buf(), keep: keep.max(1), db, batch: None, changes: BTreeMap::new() })
    }

    fn err(&self, context: &str) -> impl FnOnce(rocksdb::Error) -> StateError + '_ {
        let context = context.to_string();
        move |e| StateError::Io { dir: self.dir.clone(), context, source: std::io::Error::other(e.to_string()) }
    }

    fn meta(&self) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(META).expect("opened with the meta column family")
    }

    fn meta_u64(&self, key: &[u8]) -> Result<Option<u64>, StateError> {
        let v = self.db.get_cf(self.meta(), key).map_err(self.err("reading metadata"))?;
        Ok(v.map(|b| u64::from_be_bytes(b.as_slice().try_into().unwrap_or([0; 8]))))
    }

    /// The committed version, `None` before the first commit.
    fn version(&self) -> Result<Option<u64>, StateError> {
        self.meta_u64(VERSION_KEY)
    }

    fn undo_prefix(version: u64) -> Vec<u8> {
        [UNDO, &version.to_be_bytes()].concat()
    }

    /// Applies the undo records of `version`, bringing the state back to `version − 1`.
    fn roll_back(&mut self, version: u64) -> Result<(), StateError> {
        let prefix = Self::undo_prefix(version);
        let mut wb = WriteBatch::default();
        let mut found = false;
        let mut rows = self.meta_u64(ROWS_KEY)?.unwrap_or(0) as i64;
        for item in self.db.iterator_cf(self.meta(), IteratorMode::From(&prefix, Direction::Forward)) {
            let (k, v) = item.map_err(self.err("reading undo records"))?;
            if !k.starts_with(&prefix) {
                break;
            }
            found = true;
            let key = &k[prefix.len()..];
            let existed_now = self.db.get(key).map_err(self.err("reading state"))?.is_some();
            match v.first() {
                Some(1) => {
                    wb.put(key, &v[1..]);
                    rows += i64::from(!existed_now);
                }
                _ => {
                    wb.delete(key);
                    rows -= i64::from(existed_now);
                }
            }
            wb.delete_cf(self.meta(), &k);
        }
        if !found && self.meta_u64(&done_key(version))?.is_none() {
            return Err(StateError::Corrupt {
                dir: self.dir.clone(),
                message: format!("cannot go back from batch {version}: its undo records were cleaned up"),
            });
        }
        wb.delete_cf(self.meta(), done_key(version));
        match version.checked_sub(1) {
            Some(prev) => wb.put_cf(self.meta(), VERSION_KEY, prev.to_be_bytes()),
            None => wb.delete_cf(self.meta(), VERSION_KEY),
        }
        wb.put_cf(self.meta(), ROWS_KEY, (rows.max(0) as u64).to_be_bytes());
        self.write(wb)
    }

    fn write(&self, wb: WriteBatch) -> Result<(), StateError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(wb, &wo).map_err(self.err("writing"))
    }
}

impl StateStore for RocksDbStateStore {
    fn begin(&mut self, batch_id: u64) -> Result<(), StateError> {
        self.changes.clear();
        let want = batch_id.checked_sub(1);
        loop {
            let have = self.version()?;
            match (have, want) {
                (h, w) if h == w => break,
                (Some(h), w) if w.is_none_or(|w| h > w) => self.roll_back(h)?,
                (h, w) => {
                    return Err(StateError::Corrupt {
                        dir: self.dir.clone(),
                        message: format!(
                            "the state is at batch {} but batch {batch_id} needs batch {}",
                            h.map_or("none".into(), |h| h.to_string()),
                            w.map_or("none".into(), |w| w.to_string())
                        ),
                    })
                }
            }
        }
        self.batch = Some(batch_id);
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        if let Some(change) = self.changes.get(key) {
            return Ok(change.clone());
        }
        self.db.get(key).map_err(self.err("reading state"))
    }

    fn put(&mut self, key: &[u8], value: &[u8]) {
        assert!(self.batch.is_some(), "put outside a batch: call begin first");
        self.changes.insert(key.to_vec(), Some(value.to_vec()));
    }

    fn remove(&mut self, key: &[u8]) {
        assert!(self.batch.is_some(), "remove outside a batch: call begin first");
        self.changes.insert(key.to_vec(), None);
    }

    fn for_each(&self, f: &mut dyn FnMut(&[u8], &[u8])) -> Result<(), StateError> {
        for item in self.db.iterator(IteratorMode::Start) {
            let (k, v) = item.map_err(self.err("scanning state"))?;
            match self.changes.get(k.as_ref()) {
                Some(Some(new)) => f(&k, new),
                Some(None) => {}
                None => f(&k, &v),
            }
        }
        for (k, v) in &self.changes {
            if let Some(v) = v {
                if self.db.get(k).map_err(self.err("reading state"))?.is_none() {
                    f(k, v);
                }
            }
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<StateMetrics, StateError> {
        let batch = self.batch.expect("commit outside a batch: call begin first");
        let prefix = Self::undo_prefix(batch);
        let mut wb = WriteBatch::default();
        let mut rows = self.meta_u64(ROWS_KEY)?.unwrap_or(0);
        let (mut updated, mut removed) = (0, 0);
        for (k, v) in &self.changes {
            let old = self.db.get(k).map_err(self.err("reading state"))?;
            let undo = match &old {
                Some(old) => [&[1u8][..], old].concat(),
                None => vec![0u8],
            };
            match v {
                Some(v) => {
                    wb.put(k, v);
                    updated += 1;
                    rows += u64::from(old.is_none());
                }
                None if old.is_some() => {
                    wb.delete(k);
                    removed += 1;
                    rows -= 1;
                }
                None => continue,
            }
            wb.put_cf(self.meta(), [prefix.as_slice(), k].concat(), undo);
        }
        // Marks the version as having had its undo records (even none), for roll_back's check.
        wb.put_cf(self.meta(), done_key(batch), 1u64.to_be_bytes());
        wb.put_cf(self.meta(), VERSION_KEY, batch.to_be_bytes());
        wb.put_cf(self.meta(), ROWS_KEY, rows.to_be_bytes());
        if let Some(old) = batch.checked_sub(self.keep) {
            wb.delete_range_cf(self.meta(), Self::undo_prefix(0), Self::undo_prefix(old + 1));
            wb.delete_range_cf(self.meta(), done_key(0), done_key(old + 1));
        }
        self.write(wb)?;
        self.changes.clear();
        self.batch = None;
        let mem = self.db.property_int_value("rocksdb.cur-size-all-mem-tables").ok().flatten().unwrap_or(0);
        let live = self.db.property_int_value("rocksdb.estimate-live-data-size").ok().flatten().unwrap_or(0);
        Ok(StateMetrics {
            num_rows_total: rows,
            num_rows_updated: updated,
            num_rows_removed: removed,
            memory_used_bytes: mem + live,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path, keep: u64) -> Box<dyn StateStore> {
        Box::new(RocksDbStateStore::open(dir, keep).unwrap())
    }

    #[test]
    fn follows_the_state_store_contract() {
        super::super::contract::run_all(open);
    }
}
