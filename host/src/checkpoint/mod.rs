//! The checkpoint directory, as Spark lays it out:
//! `metadata` (query id), `offsets/<batch>` (written before a batch runs: what it reads),
//! `commits/<batch>` (written after the sink committed it). A batch with an offsets entry and
//! no commit is rerun on restart with the same offsets.
//!
//! Retention: entries of batches more than `min_batches_to_retain` behind are deleted, as
//! Spark's `MetadataLog.purge` does; what the sources need of them to restore their position
//! (files seen, where a partition stopped) is folded first into `offsets/<B>.compact` (the
//! sources' ranges of every batch up to B, compacted by the sources). A restart reads that file
//! and the entries kept, never every batch's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic_file::write_atomic;

/// Where everything lives in a checkpoint directory.
pub mod layout;
/// One writer per checkpoint: the lock file held for the process's life.
pub mod lock;

/// Written once when the checkpoint is created; the query id survives restarts (Spark's `id`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Metadata {
    pub id: String,
}

/// `offsets/<batch>`: the write-ahead entry for a batch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OffsetsEntry {
    pub batch_id: u64,
    /// When the batch was planned (ms since the epoch): the batch's processing time.
    pub timestamp_ms: i64,
    /// The source's range for this batch, as the source wrote it; with several sources, an
    /// object keyed by source name whose values are their ranges (null: nothing new from that
    /// one). Null for a batch without new data, run only because the watermark moved (Spark's
    /// no-data batch).
    pub source: serde_json::Value,
    /// The event-time watermark this batch runs with (µs since the epoch; 0 without one), as
    /// Spark's `batchWatermarkMs`.
    #[serde(default)]
    pub watermark_micros: i64,
    /// The watermark of the batch before (0 for the first): Spark (3.5+) drops a row as late
    /// when it is behind this one, while eviction uses `watermark_micros`.
    #[serde(default)]
    pub late_watermark_micros: i64,
    /// The plugin version (digest) of each map operator (by position) this batch runs with, so
    /// that a replay after a hot swap runs the same version.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub plugins: std::collections::BTreeMap<usize, String>,
    /// What operators (by position) recorded when the batch was planned, so that a replay reads
    /// the same input: a stream-static join's table version (its files and their digests).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub operator_inputs: std::collections::BTreeMap<usize, serde_json::Value>,
}

/// `commits/<batch>`: the batch is done; which plugin versions produced it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CommitEntry {
    pub batch_id: u64,
    pub plugins: Vec<PluginVersion>,
    /// The watermark the next batch runs with (Spark's `nextBatchWatermarkMs`), so a restart
    /// resumes with it.
    #[serde(default)]
    pub next_watermark_micros: i64,
    /// With several sources: each one's own watermark after this batch (its max event time
    /// minus its delay, never going back), by name, so that a restart resumes each exactly
    /// (Spark keeps only the global one). Absent with one source: its own is the global one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_watermarks_micros: BTreeMap<String, i64>,
}

/// `offsets/<B>.compact`: what the sources handed out in batches 0..=B, whose entries are
/// gone, in as few ranges as the sources fold them into (`Source::compact_ranges`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SourcesCompact {
    pub through_batch: u64,
    pub ranges: Vec<serde_json::Value>,
}

const COMPACT_SUFFIX: &str = ".compact";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PluginVersion {
    pub operator: usize,
    pub path: String,
    pub digest: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {path}: {source}; check the directory exists and is writable")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("checkpoint {path}: cannot parse: {message}; the file is damaged or from another program — restore it, or start with a new checkpoint directory (the job will then reprocess its input)")]
    Corrupt { path: PathBuf, message: String },
    #[error("checkpoint {dir} is in use by {}: one checkpoint takes one writer (two would repeat or lose output). Stop that job first (Ctrl-C, or SIGTERM to its pid), or give this one another checkpoint directory", holder.as_ref().map_or_else(|| "another weir process (its lock file names none yet)".to_string(), |h| format!("weir {h}")))]
    InUse { dir: PathBuf, holder: Option<lock::Holder> },
}

/// An open checkpoint directory.
pub struct Checkpoint {
    dir: PathBuf,
    metadata: Metadata,
}

impl Checkpoint {
    /// Opens `dir`, creating it (with a new query id) when absent.
    pub fn open(dir: &Path) -> Result<Checkpoint, CheckpointError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CheckpointError::Io { path, source }
        };
        for sub in ["offsets", "commits"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(io(&dir.join(sub)))?;
        }
        let meta_path = dir.join("metadata");
        let metadata = if meta_path.exists() {
            read_json(&meta_path)?
        } else {
            let m = Metadata { id: new_query_id() };
            write_atomic(&meta_path, &serde_json::to_vec(&m).expect("plain struct")).map_err(io(&meta_path))?;
            m
        };
        Ok(Checkpoint { dir: dir.to_path_buf(), metadata })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Every offsets entry kept (the last `min_batches_to_retain` or more), oldest first.
    pub fn offsets(&self) -> Result<Vec<OffsetsEntry>, CheckpointError> {
        self.read_log("offsets")
    }

    /// Every commit entry kept, oldest first.
    pub fn commits(&self) -> Result<Vec<CommitEntry>, CheckpointError> {
        self.read_log("commits")
    }

    /// The commit entry of `batch_id`.
    pub fn commit(&self, batch_id: u64) -> Result<CommitEntry, CheckpointError> {
        read_json(&self.dir.join("commits").join(batch_id.to_string()))
    }

    pub fn last_commit(&self) -> Result<Option<u64>, CheckpointError> {
        Ok(self.batch_ids("commits")?.last().copied())
    }

    /// The last offsets entry (one read, whatever the number of batches).
    pub fn last_offsets(&self) -> Result<Option<OffsetsEntry>, CheckpointError> {
        match self.batch_ids("offsets")?.last() {
            Some(id) => Ok(Some(read_json(&self.dir.join("offsets").join(id.to_string()))?)),
            None => Ok(None),
        }
    }

    /// The ranges of the batches whose offsets entries were purged, if any were.
    pub fn sources_compact(&self) -> Result<Option<SourcesCompact>, CheckpointError> {
        match self.compact_ids()?.last() {
            Some(b) => Ok(Some(read_json(&self.dir.join("offsets").join(format!("{b}{COMPACT_SUFFIX}")))?)),
            None => Ok(None),
        }
    }

    fn compact_ids(&self) -> Result<Vec<u64>, CheckpointError> {
        let dir = self.dir.join("offsets");
        let rd = std::fs::read_dir(&dir).map_err(|source| CheckpointError::Io { path: dir.clone(), source })?;
        let mut ids: Vec<u64> =
            rd.flatten().filter_map(|e| e.file_name().to_str()?.strip_suffix(COMPACT_SUFFIX)?.parse().ok()).collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// Deletes the offsets and commits entries of batches before `threshold` (Spark's
    /// `purge(threshold)`), after `compact` (the sources' ranges of every batch before it) is
    /// durable in `offsets/<threshold - 1>.compact`; older compact files go too. A crash in
    /// between leaves entries the compact file already covers: a restart skips them.
    pub fn purge_before(&self, threshold: u64, compact: Vec<serde_json::Value>) -> Result<(), CheckpointError> {
        let Some(through) = threshold.checked_sub(1) else { return Ok(()) };
        let path = self.dir.join("offsets").join(format!("{through}{COMPACT_SUFFIX}"));
        let bytes =
            serde_json::to_vec(&SourcesCompact { through_batch: through, ranges: compact }).expect("plain values");
        write_atomic(&path, &bytes).map_err(|source| CheckpointError::Io { path: path.clone(), source })?;
        let remove = |path: PathBuf| match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CheckpointError::Io { path, source: e }),
            _ => Ok(()),
        };
        for old in self.compact_ids()?.into_iter().filter(|&b| b < through) {
            remove(self.dir.join("offsets").join(format!("{old}{COMPACT_SUFFIX}")))?;
        }
        for log in ["offsets", "commits"] {
            for id in self.batch_ids(log)?.into_iter().take_while(|&id| id < threshold) {
                remove(self.dir.join(log).join(id.to_string()))?;
            }
        }
        Ok(())
    }

    pub fn write_offsets(&self, entry: &OffsetsEntry) -> Result<(), CheckpointError> {
        self.write_entry("offsets", entry.batch_id, entry)
    }

    pub fn write_commit(&self, entry: &CommitEntry) -> Result<(), CheckpointError> {
        self.write_entry("commits", entry.batch_id, entry)
    }

    fn write_entry<T: Serialize>(&self, log: &str, batch_id: u64, entry: &T) -> Result<(), CheckpointError> {
        let path = self.dir.join(log).join(batch_id.to_string());
        let bytes = serde_json::to_vec(entry).expect("plain struct");
        write_atomic(&path, &bytes).map_err(|source| CheckpointError::Io { path, source })
    }

    fn batch_ids(&self, log: &str) -> Result<Vec<u64>, CheckpointError> {
        let dir = self.dir.join(log);
        let rd = std::fs::read_dir(&dir).map_err(|source| CheckpointError::Io { path: dir.clone(), source })?;
        let mut ids = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|source| CheckpointError::Io { path: dir.clone(), source })?;
            // Temporary files of an interrupted write start with '.'; only plain numbers count.
            if let Some(id) = entry.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    fn read_log<T: for<'de> Deserialize<'de>>(&self, log: &str) -> Result<Vec<T>, CheckpointError> {
        self.batch_ids(log)?.into_iter().map(|id| read_json(&self.dir.join(log).join(id.to_string()))).collect()
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io { path: path.to_path_buf(), source })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| CheckpointError::Corrupt { path: path.to_path_buf(), message: e.to_string() })
}

/// A random-enough id without another dependency: time, pid and address entropy hashed.
fn new_query_id() -> String {
    let h = random_hex();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// 64 hex digits no other process (here or on another machine) comes up with: the kernel's
/// randomness when it can be read, hashed with the time, pid, host and an address.
pub fn random_hex() -> String {
    use sha2::{Digest, Sha256};
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let local = 0u8;
    let mut entropy = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut entropy);
    }
    let seed = format!("{}-{}-{}-{:p}-{entropy:?}", now.as_nanos(), std::process::id(), lock::hostname(), &local);
    format!("{:x}", Sha256::digest(seed.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_round_trip_in_batch_order_and_the_id_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpoint::open(dir.path()).unwrap();
        let id = cp.metadata().id.clone();
        for b in [0u64, 2, 10, 1] {
            cp.write_offsets(&OffsetsEntry {
                batch_id: b,
                timestamp_ms: 5,
                source: serde_json::json!({"end": b}),
                watermark_micros: 0,
                late_watermark_micros: 0,
                plugins: Default::default(),
                operator_inputs: Default::default(),
            })
            .unwrap();
        }
        cp.write_commit(&CommitEntry {
            batch_id: 0,
            plugins: vec![],
            next_watermark_micros: 0,
            source_watermarks_micros: BTreeMap::new(),
        })
        .unwrap();
        std::fs::write(dir.path().join("offsets/.11.123.tmp"), "torn").unwrap();
        let cp = Checkpoint::open(dir.path()).unwrap();
        assert_eq!(cp.metadata().id, id);
        let ids: Vec<u64> = cp.offsets().unwrap().iter().map(|e| e.batch_id).collect();
        assert_eq!(ids, vec![0, 1, 2, 10]);
        assert_eq!(cp.last_commit().unwrap(), Some(0));
    }

    #[test]
    fn purge_keeps_the_compacted_ranges_and_the_entries_from_the_threshold_on() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpoint::open(dir.path()).unwrap();
        for b in 0..30u64 {
            cp.write_offsets(&OffsetsEntry {
                batch_id: b,
                timestamp_ms: 0,
                source: serde_json::json!({ "end": b }),
                watermark_micros: 0,
                late_watermark_micros: 0,
                plugins: Default::default(),
                operator_inputs: Default::default(),
            })
            .unwrap();
            let commit = CommitEntry {
                batch_id: b,
                plugins: vec![],
                next_watermark_micros: 0,
                source_watermarks_micros: BTreeMap::new(),
            };
            cp.write_commit(&commit).unwrap();
        }
        cp.purge_before(10, vec![serde_json::json!({ "end": 9 })]).unwrap();
        cp.purge_before(20, vec![serde_json::json!({ "end": 19 })]).unwrap();
        let ids: Vec<u64> = cp.offsets().unwrap().iter().map(|e| e.batch_id).collect();
        assert_eq!(ids, (20..30).collect::<Vec<_>>());
        assert_eq!(cp.commits().unwrap().len(), 10);
        let compact = cp.sources_compact().unwrap().unwrap();
        assert_eq!(compact, SourcesCompact { through_batch: 19, ranges: vec![serde_json::json!({ "end": 19 })] });
        assert!(!dir.path().join("offsets/9.compact").exists(), "the older compact file is gone");
        assert_eq!(cp.last_offsets().unwrap().unwrap().batch_id, 29);
        assert_eq!(cp.last_commit().unwrap(), Some(29));
    }

    #[test]
    fn a_damaged_entry_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpoint::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("commits/3"), "{not json").unwrap();
        let e = cp.commits().unwrap_err().to_string();
        assert!(e.contains("commits/3: cannot parse"), "{e}");
    }

    #[test]
    fn commits_keep_the_one_source_format_and_read_entries_without_source_watermarks() {
        let one = CommitEntry {
            batch_id: 3,
            plugins: vec![],
            next_watermark_micros: 7,
            source_watermarks_micros: BTreeMap::new(),
        };
        assert_eq!(
            serde_json::to_string(&one).unwrap(),
            r#"{"batch_id":3,"plugins":[],"next_watermark_micros":7}"#,
            "unchanged for one source"
        );
        let old: CommitEntry =
            serde_json::from_str(r#"{"batch_id":3,"plugins":[],"next_watermark_micros":7}"#).unwrap();
        assert_eq!(old, one);
        let several = CommitEntry {
            source_watermarks_micros: BTreeMap::from([("b".to_string(), 7), ("a".to_string(), 9)]),
            ..one
        };
        assert_eq!(
            serde_json::to_string(&several).unwrap(),
            r#"{"batch_id":3,"plugins":[],"next_watermark_micros":7,"source_watermarks_micros":{"a":9,"b":7}}"#
        );
    }
}
