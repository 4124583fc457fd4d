use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic_file::write_atomic;
pub use crate::config::OnBadRecord;

/// One record that could not be processed, kept whole with where it came from and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BadRecord {
    /// The file (or source description) the record came from.
    pub origin: String,
    /// 1-based line in `origin`, when the format has lines.
    pub line: Option<u64>,
    /// Why it was refused: malformed, wrong field count, a value that does not fit its column,
    /// or the plugin's message.
    pub reason: String,
    /// The record as it was read, so nothing is lost.
    pub raw: String,
}

impl fmt::Display for BadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} line {}: {}", self.origin, line, self.reason),
            None => write!(f, "{}: {}", self.origin, self.reason),
        }
    }
}

/// A bad record under `on_bad_record = "fail"`: the job stops and says which record.
#[derive(Debug, thiserror::Error)]
#[error("bad record in {record}; fix the input, or set on_bad_record = \"dead_letter\" in the job to route such records to the dead-letter output and go on")]
pub struct BadRecordError {
    pub record: BadRecord,
}

/// Collects the bad records of one micro-batch under the job's policy.
#[derive(Debug)]
pub struct BadRecords {
    policy: OnBadRecord,
    records: Vec<BadRecord>,
}

impl BadRecords {
    pub fn new(policy: OnBadRecord) -> Self {
        Self { policy, records: Vec::new() }
    }

    pub fn policy(&self) -> OnBadRecord {
        self.policy
    }

    /// Reports a record that cannot be processed: an error under `fail`, kept under
    /// `dead_letter`. Callers skip the record when this returns `Ok`.
    pub fn report(&mut self, record: BadRecord) -> Result<(), BadRecordError> {
        match self.policy {
            OnBadRecord::Fail => Err(BadRecordError { record }),
            OnBadRecord::DeadLetter => {
                self.records.push(record);
                Ok(())
            }
        }
    }

    /// Keeps a record whatever the policy: rows that are not errors but must not vanish (rows
    /// behind the watermark, when the job asks to keep them).
    pub fn keep(&mut self, record: BadRecord) {
        self.records.push(record);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn take(&mut self) -> Vec<BadRecord> {
        std::mem::take(&mut self.records)
    }
}

/// The dead-letter output: one JSON-lines file per micro-batch that had bad records,
/// `DIR/batch-<id>.jsonl`, each line `{"batch_id", "origin", "line", "reason", "raw"}`.
/// Written atomically and keyed by batch id, so a replayed batch rewrites the same file.
#[derive(Clone, Debug)]
pub struct DeadLetterOutput {
    dir: PathBuf,
}

#[derive(Serialize)]
struct DeadLetterLine<'a> {
    batch_id: u64,
    #[serde(flatten)]
    record: &'a BadRecord,
}

impl DeadLetterOutput {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the bad records of `batch_id`; does nothing when there are none.
    pub fn write(&self, batch_id: u64, records: &[BadRecord]) -> std::io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut out = Vec::new();
        for record in records {
            serde_json::to_writer(&mut out, &DeadLetterLine { batch_id, record })
                .expect("serialising a struct of strings and numbers cannot fail");
            out.push(b'\n');
        }
        write_atomic(&self.dir.join(format!("batch-{batch_id}.jsonl")), &out)
    }

    /// Deletes the files of batches before `threshold` (retention: the checkpoint keeps the
    /// last `min_batches_to_retain` batches). Returns how many went.
    pub fn purge_before(&self, threshold: u64) -> std::io::Result<usize> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut deleted = 0;
        for entry in rd {
            let entry = entry?;
            let name = entry.file_name();
            // A postgres output of a plugin sink keeps its refused rows in `output-<name>/`.
            if name.to_str().is_some_and(|n| n.starts_with("output-")) && entry.path().is_dir() {
                deleted += DeadLetterOutput::new(entry.path()).purge_before(threshold)?;
                continue;
            }
            // batch-<N>.jsonl, and batch-<N>.sink.jsonl (rows a sink's target refused).
            let id = name.to_str().and_then(|n| {
                n.strip_prefix("batch-")?.strip_suffix(".jsonl")?.trim_end_matches(".sink").parse::<u64>().ok()
            });
            if id.is_some_and(|id| id < threshold) {
                std::fs::remove_file(entry.path())?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

/// The row as a JSON object of display strings: what the dead-letter output keeps of a record
/// a plugin refused.
pub fn row_as_json(batch: &arrow::record_batch::RecordBatch, row: usize) -> String {
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let opts = FormatOptions::default();
    let batch = &crate::format::for_display(&batch.slice(row, 1));
    let row = 0;
    let mut obj = serde_json::Map::new();
    for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
        let value = if col.is_null(row) {
            serde_json::Value::Null
        } else {
            match ArrayFormatter::try_new(col.as_ref(), &opts) {
                Ok(f) => serde_json::Value::String(f.value(row).to_string()),
                Err(e) => serde_json::Value::String(format!("<{e}>")),
            }
        };
        obj.insert(field.name().clone(), value);
    }
    serde_json::Value::Object(obj).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> BadRecord {
        BadRecord { origin: "in/a.json".into(), line: Some(3), reason: "malformed JSON".into(), raw: "{x".into() }
    }

    #[test]
    fn purge_deletes_the_files_of_older_batches_only() {
        let dir = tempfile::tempdir().unwrap();
        let out = DeadLetterOutput::new(dir.path());
        for b in [3u64, 9, 10, 12] {
            out.write(b, &[rec()]).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        std::fs::write(dir.path().join("batch-9.sink.jsonl"), "{}\n").unwrap();
        std::fs::create_dir(dir.path().join("output-pg")).unwrap();
        std::fs::write(dir.path().join("output-pg/batch-8.sink.jsonl"), "{}\n").unwrap();
        std::fs::write(dir.path().join("output-pg/batch-11.sink.jsonl"), "{}\n").unwrap();
        assert_eq!(out.purge_before(10).unwrap(), 4);
        assert!(dir.path().join("output-pg/batch-11.sink.jsonl").exists());
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["batch-10.jsonl", "batch-12.jsonl", "notes.txt", "output-pg"]);
    }

    #[test]
    fn fail_policy_names_file_and_line() {
        let e = BadRecords::new(OnBadRecord::Fail).report(rec()).unwrap_err().to_string();
        assert!(e.contains("in/a.json line 3: malformed JSON"), "{e}");
        assert!(e.contains("dead_letter"), "{e}");
    }

    #[test]
    fn dead_letter_policy_keeps_records_and_writes_them_per_batch() {
        let mut bad = BadRecords::new(OnBadRecord::DeadLetter);
        bad.report(rec()).unwrap();
        assert_eq!(bad.len(), 1);
        let dir = tempfile::tempdir().unwrap();
        let out = DeadLetterOutput::new(dir.path());
        out.write(7, &bad.take()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("batch-7.jsonl")).unwrap();
        assert_eq!(
            text,
            "{\"batch_id\":7,\"origin\":\"in/a.json\",\"line\":3,\"reason\":\"malformed JSON\",\"raw\":\"{x\"}\n"
        );
    }
}
