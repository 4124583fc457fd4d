//! A compactible metadata log, as Spark's `CompactibleFileStreamLog`: one file per batch
//! (`<N>`), and every `COMPACT_INTERVAL`th batch (`(N + 1) % 10 == 0`) a file `<N>.compact`
//! holding every live line of the batches before it plus its own, so that a reader reads one
//! compact file and at most nine batch files whatever the number of batches. Files of batches
//! older than the compaction that keeps `min_batches_to_retain` batches readable are deleted
//! after each add (Spark's `deleteExpiredLog`, without its clean-up delay: weir's readers are
//! local and retry when a compaction deletes what they listed).
//!
//! A file holds lines: an optional header (Spark's `v1`), then one JSON object per line. Files
//! are created, never replaced: written aside, fsynced, then hard-linked to their name.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::atomic_file::sync_dir;

/// Spark's `spark.sql.streaming.fileSink.log.compactInterval` default.
pub const COMPACT_INTERVAL: u64 = 10;
const COMPACT_SUFFIX: &str = ".compact";

/// Whether batch `id` is written as a compact file.
pub fn is_compaction(id: u64) -> bool {
    (id + 1) % COMPACT_INTERVAL == 0
}

/// The batches a reader of a log whose latest batch is `latest` needs, as Spark's
/// `getAllValidBatches`: the compaction before it (or 0), then every batch up to it.
pub fn valid_batches(latest: u64) -> std::ops::RangeInclusive<u64> {
    ((latest + 1) / COMPACT_INTERVAL * COMPACT_INTERVAL).saturating_sub(1)..=latest
}

#[derive(Debug, Clone)]
pub struct CompactLog {
    dir: PathBuf,
    header: Option<&'static str>,
    /// Which lines of earlier batches a compact file keeps (all by default): lines that only
    /// say "nothing here" would make it grow with the batches rather than with the output.
    keep_in_compact: fn(&str) -> bool,
    min_batches_to_retain: u64,
}

impl CompactLog {
    pub fn new(dir: PathBuf, header: Option<&'static str>, min_batches_to_retain: u64) -> CompactLog {
        CompactLog { dir, header, keep_in_compact: |_| true, min_batches_to_retain: min_batches_to_retain.max(1) }
    }

    /// Compact files keep only the earlier batches' lines `keep` accepts (a compaction batch's
    /// own lines are always kept).
    pub fn keeping_in_compact(mut self, keep: fn(&str) -> bool) -> CompactLog {
        self.keep_in_compact = keep;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file batch `id` is written to.
    pub fn path(&self, id: u64) -> PathBuf {
        if is_compaction(id) {
            self.dir.join(format!("{id}{COMPACT_SUFFIX}"))
        } else {
            self.dir.join(id.to_string())
        }
    }

    /// The batch files present, (batch id, compact?), by batch id: one listing, no reads.
    pub fn list(&self) -> io::Result<Vec<(u64, bool)>> {
        let mut ids = Vec::new();
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(e),
        };
        for entry in rd {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            // Temporary files start with '.'; only `<N>` and `<N>.compact` are batches.
            let (id, compact) = match name.strip_suffix(COMPACT_SUFFIX) {
                Some(n) => (n, true),
                None => (name, false),
            };
            if let Ok(id) = id.parse::<u64>() {
                ids.push((id, compact));
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// The latest batch with a file.
    pub fn latest(&self) -> io::Result<Option<u64>> {
        Ok(self.list()?.last().map(|&(id, _)| id))
    }

    /// Whether batch `id` has a file (no read).
    pub fn exists(&self, id: u64) -> bool {
        self.dir.join(id.to_string()).exists() || self.dir.join(format!("{id}{COMPACT_SUFFIX}")).exists()
    }

    /// The lines of batch `id`'s own file (`<N>` or `<N>.compact`), without the header; `None`
    /// when it has none.
    pub fn get(&self, id: u64) -> io::Result<Option<Vec<String>>> {
        for path in [self.dir.join(id.to_string()), self.dir.join(format!("{id}{COMPACT_SUFFIX}"))] {
            match std::fs::read_to_string(&path) {
                Ok(text) => return self.lines(&path, &text).map(Some),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    fn lines(&self, path: &Path, text: &str) -> io::Result<Vec<String>> {
        let mut lines = text.lines();
        if let Some(header) = self.header {
            match lines.next() {
                Some(h) if h == header => {}
                other => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: the first line is {:?}, not the log version {header:?}; the file is damaged or from another program",
                            path.display(),
                            other.unwrap_or("")
                        ),
                    ))
                }
            }
        }
        Ok(lines.filter(|l| !l.trim().is_empty()).map(str::to_string).collect())
    }

    /// Every live line of the batches up to `through` (all batches: `u64::MAX`), in batch
    /// order: the latest compact file at or before it, then the batch files after that one.
    /// Reads at most one compact file and `COMPACT_INTERVAL - 1` batch files (more only in a
    /// log written before compaction existed). Retries when a compaction deletes a file
    /// between the listing and the read.
    pub fn read_through(&self, through: u64) -> io::Result<Vec<String>> {
        let mut attempts = 0;
        loop {
            match self.try_read_through(through) {
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 5 => attempts += 1,
                other => return other,
            }
        }
    }

    fn try_read_through(&self, through: u64) -> io::Result<Vec<String>> {
        let files: Vec<(u64, bool)> = self.list()?.into_iter().filter(|&(id, _)| id <= through).collect();
        let start = files.iter().rposition(|&(_, compact)| compact).unwrap_or(0);
        let mut out = Vec::new();
        for &(id, compact) in &files[start..] {
            let path =
                if compact { self.dir.join(format!("{id}{COMPACT_SUFFIX}")) } else { self.dir.join(id.to_string()) };
            let text = std::fs::read_to_string(&path)?;
            out.extend(self.lines(&path, &text)?);
        }
        Ok(out)
    }

    /// Every live line, in batch order.
    pub fn read_all(&self) -> io::Result<Vec<String>> {
        self.read_through(u64::MAX)
    }

    /// Writes batch `id` with `lines` (a compaction batch: with every live line before it), if
    /// it has no file yet; `Ok(false)` when it has one (never replaced). When the log jumps
    /// over a compaction batch (ids need not be dense: a sink plugin's outputs), that batch's
    /// compact file is written first, so a reader still reads at most one compact file and
    /// nine batch files. Then deletes what has expired.
    pub fn add(&self, id: u64, lines: &[String]) -> io::Result<bool> {
        if self.exists(id) {
            return Ok(false);
        }
        std::fs::create_dir_all(&self.dir)?;
        if let Some(skipped) = (id + 1).checked_sub(id % COMPACT_INTERVAL + 2).filter(|_| !is_compaction(id)) {
            // `skipped`: the compaction batch just before `id`.
            if self.latest()?.is_some_and(|l| l < skipped) {
                let mut whole = self.read_through(skipped)?;
                whole.retain(|l| (self.keep_in_compact)(l));
                self.add_whole(skipped, &whole)?;
            }
        }
        let mut all = Vec::new();
        if is_compaction(id) && id > 0 {
            all = self.read_through(id - 1)?;
            all.retain(|l| (self.keep_in_compact)(l));
        }
        all.extend(lines.iter().cloned());
        let added = self.add_whole(id, &all)?;
        if added {
            self.delete_expired(id)?;
        }
        Ok(added)
    }

    /// Writes batch `id`'s file with exactly `lines` (for a compaction batch: every live line
    /// up to it), if it has no file yet.
    pub fn add_whole(&self, id: u64, lines: &[String]) -> io::Result<bool> {
        std::fs::create_dir_all(&self.dir)?;
        let mut text = String::new();
        if let Some(h) = self.header {
            text.push_str(h);
        }
        for line in lines {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(line);
        }
        match create_new(&self.path(id), text.as_bytes()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Spark's `deleteExpiredLog`: keeps the compaction that keeps `min_batches_to_retain`
    /// batches readable and everything after it; deletes the files before it. Only files a
    /// compact file present covers are deleted (the batch ids of a log need not be dense).
    fn delete_expired(&self, current: u64) -> io::Result<()> {
        let Some(min_batch) = (current + 1).checked_sub(self.min_batches_to_retain) else { return Ok(()) };
        if min_batch < COMPACT_INTERVAL {
            return Ok(());
        }
        let min_compaction = min_batch - min_batch % COMPACT_INTERVAL - 1;
        let files = self.list()?;
        let Some(keep_from) = files.iter().rev().find(|&&(id, c)| c && id <= min_compaction).map(|&(id, _)| id) else {
            return Ok(());
        };
        for (id, compact) in files {
            if id >= keep_from {
                break;
            }
            let path =
                if compact { self.dir.join(format!("{id}{COMPACT_SUFFIX}")) } else { self.dir.join(id.to_string()) };
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Creates `path` with `bytes`, durably, and only if it does not exist yet (the error is then
/// `AlreadyExists`): an existing file is never replaced, and a reader sees the whole file or
/// none. The bytes go to a temporary sibling first; a hard link gives them the name.
pub fn create_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().expect("log files live in a directory");
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("entry");
    let tmp = dir.join(format!(".{name}.{}.tmp", crate::checkpoint::random_hex().get(..12).unwrap_or("0")));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    result?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(log: &CompactLog) -> Vec<String> {
        log.list()
            .unwrap()
            .into_iter()
            .map(|(id, c)| if c { format!("{id}.compact") } else { id.to_string() })
            .collect()
    }

    #[test]
    fn every_tenth_batch_is_a_compact_file_and_a_reader_reads_at_most_ten_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = CompactLog::new(dir.path().join("log"), Some("v1"), 100);
        for id in 0..25u64 {
            assert!(log.add(id, &[format!("{{\"b\":{id}}}")]).unwrap());
        }
        let all = log.read_all().unwrap();
        assert_eq!(all.len(), 25);
        assert_eq!(all[24], "{\"b\":24}");
        assert!(dir.path().join("log/9.compact").exists() && dir.path().join("log/19.compact").exists());
        let compact = std::fs::read_to_string(dir.path().join("log/19.compact")).unwrap();
        assert!(compact.starts_with("v1\n{\"b\":0}\n"), "{compact}");
        assert_eq!(compact.lines().count(), 21, "header and batches 0..=19");
        // Never replaced.
        assert!(!log.add(24, &["other".to_string()]).unwrap());
        assert_eq!(log.get(24).unwrap().unwrap(), vec!["{\"b\":24}".to_string()]);
        assert_eq!(log.get(19).unwrap().unwrap().len(), 20);
        assert_eq!(log.read_through(15).unwrap().len(), 16);
    }

    #[test]
    fn files_before_the_compaction_keeping_min_batches_to_retain_are_deleted_as_spark_does() {
        let dir = tempfile::tempdir().unwrap();
        let log = CompactLog::new(dir.path().join("log"), None, 5);
        for id in 0..=42u64 {
            log.add(id, &[id.to_string()]).unwrap();
        }
        // minBatchId = 43 - 5 = 38; its compaction 29: everything before 29 goes.
        assert_eq!(
            names(&log),
            ["29.compact", "30", "31", "32", "33", "34", "35", "36", "37", "38", "39.compact", "40", "41", "42"]
        );
        let all = log.read_all().unwrap();
        assert_eq!(all, (0..=42).map(|i| i.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn a_log_without_compactions_is_read_whole_and_compacted_at_the_next_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let log = CompactLog::new(dir.path().join("log"), None, 100);
        std::fs::create_dir_all(log.dir()).unwrap();
        // Written by an older version: plain files at compaction ids too.
        for id in 0..12u64 {
            std::fs::write(log.dir().join(id.to_string()), id.to_string()).unwrap();
        }
        log.add(12, &["12".to_string()]).unwrap();
        assert_eq!(log.read_all().unwrap().len(), 13);
        for id in 13..=19u64 {
            log.add(id, &[id.to_string()]).unwrap();
        }
        assert_eq!(log.get(19).unwrap().unwrap().len(), 20);
        assert_eq!(log.read_all().unwrap(), (0..=19).map(|i| i.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn sparse_ids_get_the_compaction_they_jump_over_and_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = CompactLog::new(dir.path().join("log"), None, 100);
        for id in [0u64, 1, 1_000_000, 1_000_001, 2_000_000] {
            log.add(id, &[id.to_string()]).unwrap();
        }
        // The compaction at 1999999 covers 0 and 1: the retention deletes them (none is lost).
        assert_eq!(names(&log), ["999999.compact", "1000000", "1000001", "1999999.compact", "2000000"]);
        assert_eq!(log.read_all().unwrap(), ["0", "1", "1000000", "1000001", "2000000"]);
    }

    #[test]
    fn a_compact_file_keeps_only_the_earlier_lines_asked_for_and_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let log = CompactLog::new(dir.path().join("log"), None, 100).keeping_in_compact(|l| l != "empty");
        for id in 0..10u64 {
            let line = if id % 4 == 0 { id.to_string() } else { "empty".to_string() };
            log.add(id, &[line]).unwrap();
        }
        assert_eq!(log.get(9).unwrap().unwrap(), ["0", "4", "8", "empty"]);
    }

    #[test]
    fn valid_batches_follow_spark() {
        assert_eq!(valid_batches(5), 0..=5);
        assert_eq!(valid_batches(9), 9..=9);
        assert_eq!(valid_batches(25), 19..=25);
    }

    #[test]
    fn a_damaged_header_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = CompactLog::new(dir.path().to_path_buf(), Some("v1"), 100);
        std::fs::write(dir.path().join("0"), "v9\n{}").unwrap();
        let e = log.read_all().unwrap_err().to_string();
        assert!(e.contains("/0: the first line is \"v9\", not the log version \"v1\""), "{e}");
    }
}
