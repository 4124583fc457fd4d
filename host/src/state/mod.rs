//! State stores: where stateful operators keep their state between micro-batches, versioned by
//! batch id. Batch N starts from exactly the state committed by batch N−1, whatever happened
//! since (a crash mid-batch, a replay), which is what makes stateful output exactly-once.

use std::path::PathBuf;

/// The in-memory provider, persisted as per-batch deltas and periodic snapshots.
pub mod memory;
/// The RocksDB provider, for state larger than memory.
#[cfg(feature = "rocksdb")]
pub mod rocksdb;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state store {dir}: {context}: {source}; check the checkpoint directory is readable and writable")]
    Io {
        dir: PathBuf,
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("state store {dir}: {message}; the checkpoint is damaged: restore it, or start with a new checkpoint directory (the job then reprocesses its input)")]
    Corrupt { dir: PathBuf, message: String },
}

/// Spark's per-operator state metrics (`stateOperators[]` in progress records).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateMetrics {
    pub num_rows_total: u64,
    pub num_rows_updated: u64,
    pub num_rows_removed: u64,
    pub memory_used_bytes: u64,
}

/// A versioned key-value store for one stateful operator. Keys and values are bytes: the
/// operator decides their encoding.
pub trait StateStore: Send {
    /// Starts batch `batch_id` from the state committed by batch `batch_id − 1` (empty for the
    /// first batch), discarding any change not committed.
    fn begin(&mut self, batch_id: u64) -> Result<(), StateError>;

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;

    fn put(&mut self, key: &[u8], value: &[u8]);

    fn remove(&mut self, key: &[u8]);

    /// Visits every entry, including this batch's changes, in no particular order (for eviction
    /// behind the watermark, complete mode).
    fn for_each(&self, f: &mut dyn FnMut(&[u8], &[u8])) -> Result<(), StateError>;

    /// Makes the batch's changes durable as the state of `batch_id`, and returns the metrics.
    fn commit(&mut self) -> Result<StateMetrics, StateError>;
}

/// Behaviour every provider must show; each provider's tests run it.
#[cfg(test)]
pub(crate) mod contract {
    use std::path::Path;

    use super::StateStore;

    type Open = fn(&Path, u64) -> Box<dyn StateStore>;

    fn entries(s: &dyn StateStore) -> Vec<(String, String)> {
        let mut out = Vec::new();
        s.for_each(&mut |k, v| out.push((String::from_utf8_lossy(k).into(), String::from_utf8_lossy(v).into())))
            .unwrap();
        out.sort();
        out
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    pub fn run_all(open: Open) {
        a_batch_sees_its_own_changes_and_a_retry_starts_from_the_previous_commit(open);
        a_batch_replayed_after_its_state_commit_starts_from_the_batch_before(open);
        a_reopened_store_resumes_and_can_go_back_within_keep(open);
    }

    fn a_batch_sees_its_own_changes_and_a_retry_starts_from_the_previous_commit(open: Open) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path(), 5);
        s.begin(0).unwrap();
        s.put(b"a", b"1");
        s.put(b"b", b"1");
        assert_eq!(s.get(b"a").unwrap().as_deref(), Some(&b"1"[..]), "reads see the batch's own writes");
        let m = s.commit().unwrap();
        assert_eq!((m.num_rows_total, m.num_rows_updated, m.num_rows_removed), (2, 2, 0));
        s.begin(1).unwrap();
        s.put(b"a", b"2");
        s.remove(b"b");
        assert_eq!(entries(s.as_ref()), pairs(&[("a", "2")]));
        s.begin(1).unwrap();
        assert_eq!(entries(s.as_ref()), pairs(&[("a", "1"), ("b", "1")]), "an uncommitted attempt leaves nothing");
        s.put(b"c", b"1");
        s.remove(b"a");
        let m = s.commit().unwrap();
        assert_eq!((m.num_rows_total, m.num_rows_updated, m.num_rows_removed), (2, 1, 1));
    }

    fn a_batch_replayed_after_its_state_commit_starts_from_the_batch_before(open: Open) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path(), 5);
        s.begin(0).unwrap();
        s.put(b"a", b"0");
        s.commit().unwrap();
        s.begin(1).unwrap();
        s.put(b"a", b"1");
        s.put(b"b", b"1");
        s.commit().unwrap();
        // A crash after the state commit of batch 1 but before the checkpoint's: batch 1 again,
        // in a new process.
        drop(s);
        let mut s = open(dir.path(), 5);
        s.begin(1).unwrap();
        assert_eq!(entries(s.as_ref()), pairs(&[("a", "0")]));
        s.put(b"a", b"1");
        s.put(b"b", b"1");
        assert_eq!(s.commit().unwrap().num_rows_total, 2);
    }

    fn a_reopened_store_resumes_and_can_go_back_within_keep(open: Open) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path(), 3);
        let mut after: Vec<Vec<(String, String)>> = Vec::new();
        for b in 0..25u64 {
            s.begin(b).unwrap();
            s.put(format!("k{}", b % 7).as_bytes(), b.to_string().as_bytes());
            if b % 5 == 4 {
                s.remove(b"k0");
            }
            s.commit().unwrap();
            after.push(entries(s.as_ref()));
        }
        drop(s);
        let mut s = open(dir.path(), 3);
        s.begin(25).unwrap();
        assert_eq!(entries(s.as_ref()), after[24]);
        s.begin(23).unwrap();
        assert_eq!(entries(s.as_ref()), after[22], "batch 23 starts from what 22 committed");
    }
}
