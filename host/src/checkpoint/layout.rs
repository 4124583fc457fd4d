//! Where everything lives in a checkpoint directory. Every path below the checkpoint is made
//! here, so that the layout is read in one place:
//!
//! ```text
//! metadata                 the query id
//! offsets/<batch>          write-ahead entry of each batch (offsets/<B>.compact after retention)
//! commits/<batch>          each committed batch
//! state/<operator>/        each stateful operator's versioned state store
//! plugins/<digest>.wasm    every plugin version that ran or was uploaded
//! plugins/active.json      versions swapped in that outlive a restart
//! plugins/probation.json   versions on probation and what they replaced
//! tables/<source>/         static tables' files, by digest (a replay reads the version it joined)
//! dead_letter/<batch>.jsonl  bad records (unless the job sets dead_letter_path)
//! progress.jsonl           progress records (unless `weir run --progress` says otherwise)
//! admin-token, admin-address  the admin API's token and address while the job runs
//! last-run.json            how the last run ended (runId, time, the exception that stopped it)
//! partitions/<topic>-<p>/  scale-out: each task's own checkpoint
//! lock                     held by the one process writing the checkpoint
//! ```

use std::path::{Path, PathBuf};

/// The state store directory of the operator at `operator` (its position in the job file).
pub fn state_dir(checkpoint: &Path, operator: usize) -> PathBuf {
    checkpoint.join("state").join(operator.to_string())
}

/// Where plugin versions are kept.
pub fn plugins_dir(checkpoint: &Path) -> PathBuf {
    checkpoint.join("plugins")
}

/// The stored copy of a plugin version (`sha256:<hex>`).
pub fn stored_plugin(checkpoint: &Path, digest: &str) -> PathBuf {
    plugins_dir(checkpoint).join(format!("{}.wasm", digest.replace(':', "-")))
}

/// Per operator, the version swapped in and the job file's plugin it replaced.
pub fn active_swaps(checkpoint: &Path) -> PathBuf {
    plugins_dir(checkpoint).join("active.json")
}

/// Per operator on probation, the version it replaced and the batches still to run.
pub fn probation(checkpoint: &Path) -> PathBuf {
    plugins_dir(checkpoint).join("probation.json")
}

/// The stored files of the static table read from source `name`.
pub fn table_dir(checkpoint: &Path, name: &str) -> PathBuf {
    checkpoint.join("tables").join(name)
}

/// The dead-letter output's default directory.
pub fn dead_letter(checkpoint: &Path) -> PathBuf {
    checkpoint.join("dead_letter")
}

/// The progress records' default file.
pub fn progress(checkpoint: &Path) -> PathBuf {
    checkpoint.join("progress.jsonl")
}

/// How the last run ended: its runId, when, and the error that stopped it (for `weir status`
/// on a stopped job).
pub fn last_run(checkpoint: &Path) -> PathBuf {
    checkpoint.join("last-run.json")
}

/// The admin API's generated token.
pub fn admin_token(checkpoint: &Path) -> PathBuf {
    checkpoint.join("admin-token")
}

/// The address the admin API listens on, while the job runs.
pub fn admin_address(checkpoint: &Path) -> PathBuf {
    checkpoint.join("admin-address")
}

/// A scale-out task's own checkpoint (`task` is `<topic>-<partition>`).
pub fn partition_task(checkpoint: &Path, task: &str) -> PathBuf {
    checkpoint.join("partitions").join(task)
}
