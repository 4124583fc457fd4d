//! `[sink] format = "delta"`: the job file's fields, and the typed settings they validate into
//! (docs/delta.md).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::units::{parse_duration, parse_size};
use super::OutputMode;

/// The delta sink's fields as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeltaSinkSpec {
    pub path: Option<String>,
    #[serde(default)]
    pub partition_by: Vec<String>,
    pub merge_schema: Option<bool>,
    pub merge_on: Option<Vec<String>>,
    pub checkpoint_interval: Option<i64>,
    pub max_commit_retries: Option<i64>,
    /// Log entries and checkpoints older than this are deleted after a checkpoint.
    pub log_retention: Option<String>,
    /// The largest log file (commit, checkpoint, `_last_checkpoint`) the sink reads.
    pub max_log_file_bytes: Option<String>,
}

/// A Delta Lake table written exactly once per batch (a `txn` action per commit).
#[derive(Debug, Clone)]
pub struct DeltaSinkConfig {
    /// The table's directory.
    pub path: PathBuf,
    /// Hive-style partition columns (empty: the table's, or none for a new table).
    pub partition_by: Vec<String>,
    /// Spark's `mergeSchema`: a batch may add nullable columns to the table.
    pub merge_schema: bool,
    /// Each batch is a MERGE on these columns (upsert); empty: append or complete.
    pub merge_on: Vec<String>,
    /// A Delta checkpoint every this many commits (Delta's `checkpointInterval`, default 10).
    pub checkpoint_interval: u64,
    /// Versions a batch may lose to other writers before it stops the job (default 10).
    pub max_commit_retries: u32,
    /// After each checkpoint, commits and checkpoints older than this (before the newest
    /// checkpoint that is older) are deleted, as Delta's metadata cleanup
    /// (`delta.logRetentionDuration`, default 30 days).
    pub log_retention: Duration,
    /// The largest log file (a commit, a checkpoint, `_last_checkpoint`) the sink reads: a
    /// larger one is refused, naming it (default 1 GiB).
    pub max_log_file_bytes: u64,
}

/// Default of `checkpoint_interval` (Delta's).
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 10;
/// Default of `max_commit_retries`.
pub const DEFAULT_MAX_COMMIT_RETRIES: u32 = 10;

/// Default of `max_log_file_bytes`.
pub const DEFAULT_MAX_LOG_FILE_BYTES: u64 = 1 << 30;

/// Default of `log_retention` (Delta's `delta.logRetentionDuration`).
pub const DEFAULT_LOG_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Validates the fields of a delta sink at `at` (`sink`): `Err((field, message))`.
pub(super) fn delta_sink(at: &str, s: &DeltaSinkSpec) -> Result<DeltaSinkConfig, (String, String)> {
    let f = |name: &str| format!("{at}.{name}");
    let path = s.path.as_ref().filter(|p| !p.trim().is_empty()).ok_or_else(|| {
        (
            f("path"),
            "is required for format = \"delta\": the table's directory (created with the first commit)".to_string(),
        )
    })?;
    let unique = |field: &str, list: &[String]| -> Result<(), (String, String)> {
        for (i, col) in list.iter().enumerate() {
            if col.trim().is_empty() {
                return Err((f(field), "a column name is empty".into()));
            }
            if list[..i].contains(col) {
                return Err((f(field), format!("column `{col}` is listed twice")));
            }
        }
        Ok(())
    };
    unique("partition_by", &s.partition_by)?;
    let merge_on = s.merge_on.clone().unwrap_or_default();
    if s.merge_on.is_some() && merge_on.is_empty() {
        return Err((
            f("merge_on"),
            "is empty: name the key columns to merge on, or leave merge_on out to append".into(),
        ));
    }
    unique("merge_on", &merge_on)?;
    if let Some(k) = merge_on.iter().find(|k| s.partition_by.contains(k)) {
        return Err((
            f("merge_on"),
            format!("column `{k}` is also a partition_by column; weir matches merge keys inside the data files: merge on data columns"),
        ));
    }
    let checkpoint_interval = match s.checkpoint_interval {
        None => DEFAULT_CHECKPOINT_INTERVAL,
        Some(n) if n >= 1 => n as u64,
        Some(n) => {
            return Err((
                f("checkpoint_interval"),
                format!("must be at least 1 (commits between two Delta checkpoints), not {n}"),
            ))
        }
    };
    let max_commit_retries = match s.max_commit_retries {
        None => DEFAULT_MAX_COMMIT_RETRIES,
        Some(n) if (0..=1000).contains(&n) => n as u32,
        Some(n) => return Err((f("max_commit_retries"), format!("must be between 0 and 1000, not {n}"))),
    };
    let log_retention = match &s.log_retention {
        None => DEFAULT_LOG_RETENTION,
        Some(t) => parse_duration(t).map_err(|e| (f("log_retention"), e))?,
    };
    let max_log_file_bytes = match &s.max_log_file_bytes {
        None => DEFAULT_MAX_LOG_FILE_BYTES,
        Some(t) => match parse_size(t).map_err(|e| (f("max_log_file_bytes"), e))? {
            0 => return Err((f("max_log_file_bytes"), "must be more than 0 bytes (e.g. \"1 GiB\")".into())),
            n => n as u64,
        },
    };
    Ok(DeltaSinkConfig {
        path: PathBuf::from(path),
        partition_by: s.partition_by.clone(),
        merge_schema: s.merge_schema.unwrap_or(false),
        merge_on,
        checkpoint_interval,
        max_commit_retries,
        log_retention,
        max_log_file_bytes,
    })
}

/// The output modes a delta sink takes: append and complete, and update only as a MERGE.
pub(super) fn check_output_mode(d: &DeltaSinkConfig, mode: OutputMode) -> Result<(), (String, String)> {
    match mode {
        OutputMode::Update if d.merge_on.is_empty() => Err((
            "sink.output_mode".into(),
            "\"update\" needs sink.merge_on with a Delta table (as in Spark, the Delta sink takes only \"append\" and \"complete\"; an update of a row is a MERGE on its key): set merge_on = [\"<key column>\", ...]".into(),
        )),
        OutputMode::Complete if !d.merge_on.is_empty() => Err((
            "sink.merge_on".into(),
            "does not go with output_mode = \"complete\", which replaces the whole table each batch: remove merge_on, or use \"update\"".into(),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> DeltaSinkSpec {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults_and_refusals_name_the_field() {
        let d = delta_sink("sink", &spec("path = \"t\"")).unwrap();
        assert_eq!((d.checkpoint_interval, d.max_commit_retries, d.merge_schema), (10, 10, false));
        assert_eq!(d.log_retention, Duration::from_secs(30 * 24 * 3600));
        assert_eq!(
            delta_sink("sink", &spec("path = \"t\"\nlog_retention = \"2 hours\"")).unwrap().log_retention,
            Duration::from_secs(7200)
        );
        let e = |text: &str| delta_sink("sink", &spec(text)).unwrap_err();
        assert_eq!(e("").0, "sink.path");
        assert_eq!(
            e("path = \"t\"\ncheckpoint_interval = 0").1,
            "must be at least 1 (commits between two Delta checkpoints), not 0"
        );
        assert_eq!(e("path = \"t\"\nmerge_on = [\"a\", \"a\"]").1, "column `a` is listed twice");
        assert_eq!(e("path = \"t\"\nmerge_on = []").0, "sink.merge_on");
        assert_eq!(e("path = \"t\"\nmax_commit_retries = -1").0, "sink.max_commit_retries");
        assert_eq!(e("path = \"t\"\nlog_retention = \"soon\"").0, "sink.log_retention");
        assert_eq!(d.max_log_file_bytes, 1 << 30);
        let capped = delta_sink("sink", &spec("path = \"t\"\nmax_log_file_bytes = \"64 KiB\"")).unwrap();
        assert_eq!(capped.max_log_file_bytes, 64 << 10);
        assert_eq!(e("path = \"t\"\nmax_log_file_bytes = \"0\"").0, "sink.max_log_file_bytes");
        assert_eq!(e("path = \"t\"\nmax_log_file_bytes = \"lots\"").0, "sink.max_log_file_bytes");
        assert!(e("path = \"t\"\nmerge_on = [\"k\"]\npartition_by = [\"k\"]")
            .1
            .starts_with("column `k` is also a partition_by column"));
        let m = delta_sink("sink", &spec("path = \"t\"\nmerge_on = [\"id\"]\ncheckpoint_interval = 3")).unwrap();
        assert_eq!(m.checkpoint_interval, 3);
        assert!(check_output_mode(&m, OutputMode::Update).is_ok());
        assert_eq!(check_output_mode(&m, OutputMode::Complete).unwrap_err().0, "sink.merge_on");
        assert_eq!(check_output_mode(&d, OutputMode::Update).unwrap_err().0, "sink.output_mode");
        assert!(check_output_mode(&d, OutputMode::Complete).is_ok());
    }
}
