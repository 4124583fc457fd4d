//! Stored plugin versions (`CHECKPOINT/plugins/<digest>.wasm`) are kept while a batch may
//! still be replayed with them, and deleted after: a version swapped out (or rolled back) is
//! deleted once no retained offsets or commits entry names it, it is not running, and
//! `plugins/active.json` does not point at it. With `min_batches_to_retain` entries kept, that
//! is the first purge after the last batch it ran falls out of the logs. A refused upload (it
//! does not compile, or does not fit the operator) is never kept.

use std::collections::BTreeSet;
use std::path::Path;

use super::{stored_plugin, History};
use crate::checkpoint::Checkpoint;

/// Deletes the stored versions the history names that nothing can load any more; `running`:
/// the digests the operators hold now (on probation too). Returns the digests deleted.
pub fn purge(checkpoint: &Checkpoint, history: &History, running: &BTreeSet<String>) -> std::io::Result<Vec<String>> {
    purge_among(checkpoint, history, &BTreeSet::new(), running)
}

/// The versions stored in `CHECKPOINT/plugins/`. Taken at start, before the admin API can
/// store an upload, these are versions of earlier runs: candidates for [`purge_among`] even
/// when this run's history does not name them.
pub fn stored_digests(checkpoint: &Path) -> BTreeSet<String> {
    let Ok(rd) = std::fs::read_dir(crate::checkpoint::layout::plugins_dir(checkpoint)) else { return BTreeSet::new() };
    rd.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.strip_suffix(".wasm")?.to_string();
            let (algo, hex) = name.split_once('-')?;
            Some(format!("{algo}:{hex}"))
        })
        .collect()
}

/// [`purge`], with `stored_before` (versions of earlier runs, [`stored_digests`] at start) as
/// candidates too.
pub fn purge_among(
    checkpoint: &Checkpoint,
    history: &History,
    stored_before: &BTreeSet<String>,
    running: &BTreeSet<String>,
) -> std::io::Result<Vec<String>> {
    let mut candidates: BTreeSet<String> = history
        .lock()
        .expect("not poisoned")
        .iter()
        .flat_map(|h| [h["digest"].as_str(), h["replaced"].as_str()])
        .flatten()
        .map(str::to_string)
        .collect();
    candidates.extend(stored_before.iter().cloned());
    let mut keep = running.clone();
    let io = |e: crate::checkpoint::CheckpointError| std::io::Error::other(e.to_string());
    for entry in checkpoint.offsets().map_err(io)? {
        keep.extend(entry.plugins.into_values());
    }
    for entry in checkpoint.commits().map_err(io)? {
        keep.extend(entry.plugins.into_iter().map(|p| p.digest));
    }
    keep.extend(active_digests(checkpoint.dir()));
    let mut deleted = Vec::new();
    for digest in candidates.difference(&keep) {
        let path = stored_plugin(checkpoint.dir(), digest);
        match std::fs::remove_file(&path) {
            Ok(()) => deleted.push(digest.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

/// The versions `plugins/active.json` keeps swapped in across restarts.
fn active_digests(checkpoint: &Path) -> Vec<String> {
    let file = crate::checkpoint::layout::active_swaps(checkpoint);
    let Some(active) = std::fs::read(file).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        return Vec::new();
    };
    active
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(|v| v["digest"].as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{CommitEntry, OffsetsEntry};

    // Built from JSON, so that fields added to the entries later do not break this test.
    fn offsets(batch_id: u64, digest: &str) -> OffsetsEntry {
        serde_json::from_value(serde_json::json!({
            "batch_id": batch_id, "timestamp_ms": 0, "source": null, "plugins": { "0": digest },
        }))
        .unwrap()
    }

    #[test]
    fn a_version_no_retained_batch_names_is_deleted_and_the_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpoint::open(dir.path()).unwrap();
        for d in ["sha256:aa", "sha256:bb", "sha256:cc", "sha256:dd"] {
            let p = stored_plugin(dir.path(), d);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"wasm").unwrap();
        }
        // aa ran batch 0 (still in the logs); bb replaced aa and was replaced by cc before it
        // ran a batch; cc runs now; dd is in active.json.
        cp.write_offsets(&offsets(0, "sha256:aa")).unwrap();
        let commit: CommitEntry = serde_json::from_value(serde_json::json!({ "batch_id": 0, "plugins": [] })).unwrap();
        cp.write_commit(&commit).unwrap();
        std::fs::write(dir.path().join("plugins/active.json"), r#"{"0": {"digest": "sha256:dd"}}"#).unwrap();
        let history: History = std::sync::Arc::new(std::sync::Mutex::new(vec![
            serde_json::json!({ "digest": "sha256:aa", "event": "ran" }),
            serde_json::json!({ "digest": "sha256:bb", "replaced": "sha256:aa", "event": "swap" }),
            serde_json::json!({ "digest": "sha256:cc", "replaced": "sha256:bb", "event": "swap" }),
            serde_json::json!({ "digest": "sha256:dd", "replaced": "sha256:cc", "event": "swap" }),
        ]));
        let running: BTreeSet<String> = ["sha256:cc".to_string()].into();
        assert_eq!(purge(&cp, &history, &running).unwrap(), vec!["sha256:bb".to_string()]);
        for (d, kept) in [("sha256:aa", true), ("sha256:bb", false), ("sha256:cc", true), ("sha256:dd", true)] {
            assert_eq!(stored_plugin(dir.path(), d).exists(), kept, "{d}");
        }
    }

    /// After a restart the history only knows the batches kept: versions an earlier run stored
    /// (found at start) are candidates too, and go once no kept entry names them.
    #[test]
    fn versions_of_earlier_runs_go_once_no_kept_batch_needs_them() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpoint::open(dir.path()).unwrap();
        for d in ["sha256:aa", "sha256:bb", "sha256:ee"] {
            let p = stored_plugin(dir.path(), d);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"wasm").unwrap();
        }
        cp.write_offsets(&offsets(7, "sha256:aa")).unwrap();
        let stored = stored_digests(dir.path());
        assert_eq!(stored, ["sha256:aa", "sha256:bb", "sha256:ee"].map(String::from).into());
        let history: History = Default::default();
        let running: BTreeSet<String> = ["sha256:ee".to_string()].into();
        assert_eq!(purge_among(&cp, &history, &stored, &running).unwrap(), vec!["sha256:bb".to_string()]);
        assert!(stored_plugin(dir.path(), "sha256:aa").exists() && stored_plugin(dir.path(), "sha256:ee").exists());
    }
}
