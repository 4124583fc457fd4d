//! A directory of files (json lines, csv, parquet), new files picked up as they arrive, each
//! read exactly once across restarts: a batch's offsets entry is the list of its files.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use super::{Source, SourceError};
use crate::config::{CsvOptions, FileFormat, FileSourceConfig};
use crate::deadletter::{BadRecord, BadRecords};
use crate::format::{csv::decode_csv, json::decode_json_lines, parquet};

/// One file of a batch, as recorded in the offsets log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub mtime_ms: i64,
}

/// The offset range of a file-source batch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileRange {
    pub files: Vec<FileEntry>,
}

pub struct FileSource {
    dir: PathBuf,
    format: FileFormat,
    schema: SchemaRef,
    declared: bool,
    csv: CsvOptions,
    max_files: Option<usize>,
    /// Every file already planned into a batch (restored from the offsets log).
    seen: HashSet<String>,
    /// `available_now`: only these files may be planned.
    snapshot: Option<HashSet<String>>,
    /// `once`: the next plan takes everything.
    unlimited: bool,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> SourceError {
    move |source| SourceError::Io { context, source }
}

impl FileSource {
    pub fn new(config: &FileSourceConfig) -> Result<FileSource, SourceError> {
        let dir = config.path.clone();
        if !dir.is_dir() {
            return Err(SourceError::Invalid(format!(
                "source.path {} is not a directory; create it (files are then picked up as they arrive) or fix source.path",
                dir.display()
            )));
        }
        let mut source = FileSource {
            dir,
            format: config.format,
            schema: config.schema.clone().unwrap_or_else(|| std::sync::Arc::new(arrow::datatypes::Schema::empty())),
            declared: config.schema.is_some(),
            csv: config.csv,
            max_files: config.max_files_per_trigger,
            seen: HashSet::new(),
            snapshot: None,
            unlimited: false,
        };
        if config.schema.is_none() {
            let first = source.list()?.into_iter().next().ok_or_else(|| {
                SourceError::Invalid(format!(
                    "no schema declared and no parquet file in {} to infer it from; declare source.schema",
                    source.dir.display()
                ))
            })?;
            source.schema = parquet::parquet_schema(Path::new(&first.path))?;
        }
        Ok(source)
    }

    /// The directory's candidate files, oldest first (modification time, then name).
    fn list(&self) -> Result<Vec<FileEntry>, SourceError> {
        let rd = std::fs::read_dir(&self.dir).map_err(io(format!("listing {}", self.dir.display())))?;
        let mut files = Vec::new();
        for entry in rd {
            let entry = entry.map_err(io(format!("listing {}", self.dir.display())))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            let meta = entry.metadata().map_err(io(format!("reading {}", entry.path().display())))?;
            if !meta.is_file() {
                continue;
            }
            let mtime_ms = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as i64);
            files.push(FileEntry { path: entry.path().display().to_string(), size: meta.len(), mtime_ms });
        }
        files.sort_by(|a, b| (a.mtime_ms, &a.path).cmp(&(b.mtime_ms, &b.path)));
        Ok(files)
    }

    fn read_file(&self, path: &str, bad: &mut BadRecords) -> Result<Vec<RecordBatch>, SourceError> {
        match self.format {
            FileFormat::Parquet => parquet::read_parquet(Path::new(path), self.declared.then_some(&self.schema)),
            FileFormat::Json | FileFormat::Csv => {
                let bytes = std::fs::read(path).map_err(io(format!(
                    "reading {path} (a file planned into a batch must stay until the batch is committed)"
                )))?;
                Ok(match self.format {
                    FileFormat::Json => decode_json_lines(path, &bytes, &self.schema, bad)?,
                    _ => decode_csv(path, &bytes, &self.schema, self.csv, bad)?,
                })
            }
        }
    }
}

fn parse_range(range: &serde_json::Value) -> Result<FileRange, SourceError> {
    serde_json::from_value(range.clone()).map_err(|e| {
        SourceError::Invalid(format!(
            "offsets entry {range} is not a file source's ({e}); was the job's source changed? use a new checkpoint"
        ))
    })
}

impl Source for FileSource {
    fn description(&self) -> String {
        format!("FileStreamSource[{}]", self.dir.display())
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// One range with every file: what `restore` needs is the set of files seen.
    fn compact_ranges(&self, planned: Vec<serde_json::Value>) -> Result<Vec<serde_json::Value>, SourceError> {
        let mut files = Vec::new();
        for range in &planned {
            files.extend(parse_range(range)?.files);
        }
        Ok(vec![serde_json::to_value(FileRange { files }).expect("plain struct")])
    }

    fn restore(&mut self, planned: &[serde_json::Value]) -> Result<(), SourceError> {
        for range in planned {
            for f in parse_range(range)?.files {
                self.seen.insert(f.path);
            }
        }
        Ok(())
    }

    fn plan_next(&mut self, _now_micros: i64) -> Result<Option<serde_json::Value>, SourceError> {
        let limit = if std::mem::take(&mut self.unlimited) { None } else { self.max_files };
        let files: Vec<FileEntry> = self
            .list()?
            .into_iter()
            .filter(|f| !self.seen.contains(&f.path))
            .filter(|f| self.snapshot.as_ref().is_none_or(|s| s.contains(&f.path)))
            .take(limit.unwrap_or(usize::MAX))
            .collect();
        if files.is_empty() {
            return Ok(None);
        }
        for f in &files {
            self.seen.insert(f.path.clone());
        }
        Ok(Some(serde_json::to_value(FileRange { files }).expect("plain struct")))
    }

    /// Decodes the range's files on every core (file k on worker k mod n), then assembles the
    /// batches and bad records in file order, so the result does not depend on the threads: the
    /// same range gives the same rows, and under `on_bad_record = "fail"` the error reported is
    /// the first bad file's in range order (each worker goes in file order and stops at its first).
    fn read(&mut self, range: &serde_json::Value, bad: &mut BadRecords) -> Result<Vec<RecordBatch>, SourceError> {
        let files = parse_range(range)?.files;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(files.len()).max(1);
        let this = &*self;
        let policy = bad.policy();
        type FileResult = (usize, Result<Vec<RecordBatch>, SourceError>, Vec<BadRecord>);
        let mut results: Vec<FileResult> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    let files = &files;
                    scope.spawn(move || {
                        let mut done: Vec<FileResult> = Vec::new();
                        for (i, f) in files.iter().enumerate().skip(w).step_by(workers) {
                            let mut local = BadRecords::new(policy);
                            let r = this.read_file(&f.path, &mut local);
                            let failed = r.is_err();
                            done.push((i, r, local.take()));
                            if failed {
                                break;
                            }
                        }
                        done
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().expect("a decoding thread panicked")).collect()
        });
        results.sort_by_key(|r| r.0);
        let mut out = Vec::new();
        for (_, r, records) in results {
            for record in records {
                bad.keep(record);
            }
            out.extend(r?);
        }
        Ok(out)
    }

    /// Two files per core: enough to keep every core decoding, few enough that a batch of many
    /// files never holds them all in memory.
    fn pieces(&self, range: &serde_json::Value) -> Result<Vec<serde_json::Value>, SourceError> {
        let files = parse_range(range)?.files;
        let per_piece = 2 * std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(files
            .chunks(per_piece)
            .map(|c| serde_json::to_value(FileRange { files: c.to_vec() }).expect("plain struct"))
            .collect())
    }

    fn snapshot_available_now(&mut self) -> Result<(), SourceError> {
        self.snapshot = Some(self.list()?.into_iter().map(|f| f.path).collect());
        Ok(())
    }

    fn ignore_trigger_limits(&mut self) {
        self.unlimited = true;
    }

    fn describe_range(&self, range: &serde_json::Value) -> String {
        match parse_range(range) {
            Ok(r) => r.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>().join(", "),
            Err(_) => range.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deadletter::OnBadRecord;
    use crate::schema::parse_ddl;

    fn source(dir: &Path, max: Option<usize>) -> FileSource {
        FileSource::new(&FileSourceConfig {
            path: dir.to_path_buf(),
            format: FileFormat::Json,
            schema: Some(parse_ddl("a int").unwrap()),
            max_files_per_trigger: max,
            csv: CsvOptions::default(),
        })
        .unwrap()
    }

    fn names(range: &serde_json::Value) -> Vec<String> {
        parse_range(range)
            .unwrap()
            .files
            .iter()
            .map(|f| Path::new(&f.path).file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn plans_new_files_oldest_first_bounded_and_never_twice() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["b.json", "a.json", "c.json", ".hidden", "_meta"] {
            std::fs::write(dir.path().join(n), "{\"a\":1}\n").unwrap();
        }
        let mut s = source(dir.path(), Some(2));
        let first = s.plan_next(0).unwrap().unwrap();
        assert_eq!(names(&first), vec!["a.json", "b.json"], "same mtime: by name; hidden files skipped");
        let second = s.plan_next(0).unwrap().unwrap();
        assert_eq!(names(&second), vec!["c.json"]);
        assert!(s.plan_next(0).unwrap().is_none());

        // A restarted source knows what was planned.
        let mut again = source(dir.path(), Some(2));
        again.restore(&[first, second.clone()]).unwrap();
        assert!(again.plan_next(0).unwrap().is_none());
        let mut bad = BadRecords::new(OnBadRecord::Fail);
        assert_eq!(
            again.read(&second, &mut bad).unwrap()[0].num_rows(),
            1,
            "a planned range reads the same after restart"
        );
    }

    #[test]
    fn available_now_ignores_files_that_arrive_later_and_once_ignores_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), "{}\n").unwrap();
        std::fs::write(dir.path().join("b.json"), "{}\n").unwrap();
        let mut s = source(dir.path(), Some(1));
        s.snapshot_available_now().unwrap();
        std::fs::write(dir.path().join("c.json"), "{}\n").unwrap();
        assert_eq!(names(&s.plan_next(0).unwrap().unwrap()), vec!["a.json"]);
        assert_eq!(names(&s.plan_next(0).unwrap().unwrap()), vec!["b.json"]);
        assert!(s.plan_next(0).unwrap().is_none());

        let mut once = source(dir.path(), Some(1));
        once.ignore_trigger_limits();
        assert_eq!(names(&once.plan_next(0).unwrap().unwrap()).len(), 3);
    }

    #[test]
    fn a_missing_directory_says_what_to_do() {
        let e = FileSource::new(&FileSourceConfig {
            path: "/nonexistent/in".into(),
            format: FileFormat::Csv,
            schema: Some(parse_ddl("a int").unwrap()),
            max_files_per_trigger: None,
            csv: CsvOptions::default(),
        })
        .err()
        .unwrap();
        assert!(e.to_string().contains("/nonexistent/in is not a directory; create it"), "{e}");
    }
}
