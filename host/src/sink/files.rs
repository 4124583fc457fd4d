//! Parquet, JSON-lines and CSV files with an exactly-once commit log.
//!
//! Layout of the output directory `OUT`:
//! ```text
//! OUT/_weir_log/<batch id>          {"batch_id": N, "writer": <query id>, "files": [{"path", "rows", "bytes"}]}
//! OUT/[col=value/]part-<N>-<k>-<attempt>.<ext>
//! ```
//! A batch's files are written first (each to a temporary sibling, fsynced, renamed), then its
//! log entry, which is created and never replaced (written aside, then hard-linked to its name:
//! the link fails when the name exists). A batch whose log entry this query wrote is never
//! written again, so a batch replayed after a crash cannot be committed twice; an entry another
//! query wrote (two jobs given one output directory) is an error, never a reason to skip. Data
//! file names carry a random suffix per sink instance (`<attempt>`), so no other writer, nor a
//! replay, can overwrite a file a log entry names; a batch cut short leaves files that no log
//! entry names. **Readers follow the log** ([`committed_files`]), like Spark's
//! `_spark_metadata`.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, UInt32Array};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use super::{Sink, SinkError};
use crate::atomic_file::sync_dir;
use crate::format::encode::{write_csv, write_json_lines};
use crate::format::timestamp::format_timestamp_micros;
use crate::job::FileFormat;

/// The commit-log directory inside the output directory.
pub const LOG_DIR: &str = "_weir_log";
/// Hive's directory name for a null partition value (as Spark writes it).
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

#[derive(Debug, Serialize, Deserialize)]
struct LogEntry {
    batch_id: u64,
    /// The query (checkpoint id) that committed the batch; absent in entries of older weir
    /// versions, which are taken as this query's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    writer: Option<String>,
    files: Vec<LogFile>,
}

#[derive(Debug, Serialize, Deserialize)]
struct LogFile {
    /// Relative to the output directory.
    path: String,
    rows: u64,
    bytes: u64,
}

pub struct FileSink {
    format: FileFormat,
    dir: PathBuf,
    /// Indices of the partition columns in the input schema.
    partition_cols: Vec<usize>,
    /// The schema written inside the files (without the partition columns).
    data_schema: SchemaRef,
    data_cols: Vec<usize>,
    partition_by: Vec<String>,
    /// This sink instance's part of data file names: random, so that no other writer (another
    /// process, or a replay of the same batch) picks the same name.
    attempt: String,
    /// The query's id (set by `start`), recorded in each log entry.
    writer: Option<String>,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> SinkError {
    move |source| SinkError::Io { context, source }
}

impl FileSink {
    /// Checks the partition columns exist and creates the output directory. Temporary files
    /// left by a crash are removed.
    pub fn new(
        format: FileFormat,
        dir: &Path,
        partition_by: &[String],
        schema: SchemaRef,
    ) -> Result<FileSink, SinkError> {
        let mut partition_cols = Vec::new();
        for name in partition_by {
            let i = schema.index_of(name).map_err(|_| {
                SinkError::Invalid(format!(
                    "partition_by column `{name}` is not in the output (its columns are: {})",
                    schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
                ))
            })?;
            partition_cols.push(i);
        }
        let data_cols: Vec<usize> = (0..schema.fields().len()).filter(|i| !partition_cols.contains(i)).collect();
        if data_cols.is_empty() {
            return Err(SinkError::Invalid(
                "partition_by lists every column; at least one must be left to write in the files".into(),
            ));
        }
        let data_schema = Arc::new(Schema::new(data_cols.iter().map(|&i| schema.field(i).clone()).collect::<Vec<_>>()));
        std::fs::create_dir_all(dir.join(LOG_DIR))
            .map_err(io(format!("creating output directory {}", dir.display())))?;
        remove_temporaries(dir);
        Ok(FileSink {
            format,
            dir: dir.to_path_buf(),
            partition_by: partition_by.to_vec(),
            partition_cols,
            data_schema,
            data_cols,
            attempt: crate::checkpoint::random_hex()[..12].to_string(),
            writer: None,
        })
    }

    /// Splits rows by partition values, in order of first appearance: (relative dir, rows).
    fn partitions(&self, data: &[RecordBatch]) -> Result<Vec<(String, Vec<RecordBatch>)>, SinkError> {
        if self.partition_cols.is_empty() {
            let batches = data.iter().map(|b| self.project(b)).collect::<Result<Vec<_>, _>>()?;
            return Ok(vec![(String::new(), batches)]);
        }
        let mut order: Vec<String> = Vec::new();
        let mut groups: HashMap<String, Vec<RecordBatch>> = HashMap::new();
        let opts = FormatOptions::default();
        for batch in data {
            let mut rows_of: HashMap<String, Vec<u32>> = HashMap::new();
            let mut local_order = Vec::new();
            for row in 0..batch.num_rows() {
                let mut key = String::new();
                for &c in &self.partition_cols {
                    let col = batch.column(c);
                    let field = batch.schema_ref().field(c).clone();
                    let value = partition_value(col.as_ref(), row, &opts)?;
                    key.push_str(&escape(field.name()));
                    key.push('=');
                    key.push_str(&value);
                    key.push('/');
                }
                rows_of.entry(key.clone()).or_insert_with(|| {
                    local_order.push(key.clone());
                    Vec::new()
                });
                rows_of.get_mut(&key).expect("inserted above").push(row as u32);
            }
            for key in local_order {
                let idx = UInt32Array::from(rows_of.remove(&key).expect("every key has rows"));
                let cols: Vec<ArrayRef> = self
                    .data_cols
                    .iter()
                    .map(|&c| arrow::compute::take(batch.column(c).as_ref(), &idx, None))
                    .collect::<Result<_, _>>()
                    .map_err(|e| SinkError::Invalid(e.to_string()))?;
                let part = RecordBatch::try_new(self.data_schema.clone(), cols)
                    .map_err(|e| SinkError::Invalid(e.to_string()))?;
                if !groups.contains_key(&key) {
                    order.push(key.clone());
                }
                groups.entry(key).or_default().push(part);
            }
        }
        Ok(order
            .into_iter()
            .map(|k| {
                let batches = groups.remove(&k).expect("ordered keys are in groups");
                (k, batches)
            })
            .collect())
    }

    fn project(&self, b: &RecordBatch) -> Result<RecordBatch, SinkError> {
        b.project(&self.data_cols).map_err(|e| SinkError::Invalid(e.to_string()))
    }

    fn encode(&self, batches: &[RecordBatch], context: &str) -> Result<Vec<u8>, SinkError> {
        let mut out = Vec::new();
        match self.format {
            FileFormat::Json => batches.iter().for_each(|b| write_json_lines(b, &mut out)),
            FileFormat::Csv => write_csv(&self.data_schema, batches, &mut out),
            FileFormat::Parquet => {
                let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
                let enc = |e: parquet::errors::ParquetError| SinkError::Encode {
                    context: context.to_string(),
                    message: e.to_string(),
                };
                let mut w = ArrowWriter::try_new(&mut out, self.data_schema.clone(), Some(props)).map_err(enc)?;
                for b in batches {
                    w.write(b).map_err(enc)?;
                }
                w.close().map_err(enc)?;
            }
        }
        Ok(out)
    }
}

impl Sink for FileSink {
    fn set_schema(&mut self, schema: SchemaRef) -> Result<(), SinkError> {
        let fresh = FileSink::new(self.format, &self.dir, &self.partition_by, schema)?;
        (self.partition_cols, self.data_schema, self.data_cols) =
            (fresh.partition_cols, fresh.data_schema, fresh.data_cols);
        Ok(())
    }

    fn description(&self) -> String {
        format!("FileSink[{}]", self.dir.display())
    }

    fn start(&mut self, query_id: &str) -> Result<(), SinkError> {
        self.writer = Some(query_id.to_string());
        Ok(())
    }

    fn committed(&mut self, batch_id: u64) -> Result<bool, SinkError> {
        self.committed_by_us(batch_id, &self.dir.join(LOG_DIR).join(batch_id.to_string()))
    }

    fn write_batch(&mut self, batch_id: u64, data: &[RecordBatch]) -> Result<u64, SinkError> {
        let log_path = self.dir.join(LOG_DIR).join(batch_id.to_string());
        if self.committed_by_us(batch_id, &log_path)? {
            return Ok(0);
        }
        let mut files = Vec::new();
        let mut total = 0u64;
        for (k, (part_dir, batches)) in self.partitions(data)?.into_iter().enumerate() {
            let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
            if rows == 0 {
                continue;
            }
            let rel = format!("{part_dir}part-{batch_id:05}-{k:04}-{}.{}", self.attempt, self.format.extension());
            let path = self.dir.join(&rel);
            let bytes = self.encode(&batches, &rel)?;
            write_file(&path, &bytes)?;
            total += rows;
            files.push(LogFile { path: rel, rows, bytes: bytes.len() as u64 });
        }
        let entry =
            serde_json::to_vec(&LogEntry { batch_id, writer: self.writer.clone(), files }).expect("plain struct");
        match create_new(&log_path, &entry) {
            Ok(()) => Ok(total),
            // Another writer committed the batch between our check and now.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match self.committed_by_us(batch_id, &log_path)? {
                true => Ok(0),
                false => Err(SinkError::Invalid(format!(
                    "{}: the commit log entry of batch {batch_id} appeared and vanished while this job committed it: another program is changing {}",
                    log_path.display(),
                    self.dir.display()
                ))),
            },
            Err(e) => Err(io(format!("committing batch {batch_id} in {}", log_path.display()))(e)),
        }
    }
}

impl FileSink {
    /// Whether batch `batch_id` is committed here already, by this query (a replay after a
    /// crash between the sink's commit and the checkpoint's): then it is not written again.
    /// An entry another query wrote is an error: two jobs write to one directory, and skipping
    /// the batch would lose this one's rows.
    fn committed_by_us(&self, batch_id: u64, log_path: &Path) -> Result<bool, SinkError> {
        let bytes = match std::fs::read(log_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io(format!("reading {}", log_path.display()))(e)),
        };
        let entry: LogEntry = serde_json::from_slice(&bytes).map_err(|e| {
            SinkError::Invalid(format!(
                "{}: damaged commit log entry of batch {batch_id}: {e}; restore it or use a new output directory",
                log_path.display()
            ))
        })?;
        match (&entry.writer, &self.writer) {
            (Some(theirs), Some(ours)) if theirs != ours => Err(SinkError::Invalid(format!(
                "{}: batch {batch_id} is already committed in this output directory by another query (id {theirs}; this one is {ours}): two jobs (or two checkpoints) write to {}. Give each job its own output path; nothing of batch {batch_id} was committed by this one",
                log_path.display(),
                self.dir.display()
            ))),
            _ => Ok(true),
        }
    }
}

/// Creates `path` with `bytes`, durably, and only if it does not exist yet (the error is then
/// `AlreadyExists`): an existing entry is never replaced, and a reader sees the whole file or
/// none. The bytes go to a temporary sibling first; a hard link gives them the name.
fn create_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("log entries live in the log directory");
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

/// Writes a data file durably under its final name (via a temporary sibling and a rename).
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let dir = path.parent().expect("data files live in the output directory");
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let name = path.file_name().and_then(|n| n.to_str()).expect("names are ASCII");
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = File::create(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("renaming {} to {}", tmp.display(), path.display())))?;
    sync_dir(dir).map_err(io(format!("syncing {}", dir.display())))
}

/// Removes `.*.tmp` files left in the output tree by a crash mid-write.
fn remove_temporaries(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for entry in rd.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() && name != LOG_DIR {
            remove_temporaries(&path);
        } else if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// The partition directory value of a row: Hive-escaped text, or the null partition.
fn partition_value(col: &dyn Array, row: usize, opts: &FormatOptions) -> Result<String, SinkError> {
    if col.is_null(row) {
        return Ok(NULL_PARTITION.to_string());
    }
    let text = match col.data_type() {
        arrow::datatypes::DataType::Timestamp(..) => format_timestamp_micros(
            col.as_any()
                .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
                .expect("weir timestamps are µs")
                .value(row),
        ),
        _ => ArrayFormatter::try_new(col, opts).map_err(|e| SinkError::Invalid(e.to_string()))?.value(row).to_string(),
    };
    Ok(escape(&text))
}

/// Escapes what cannot stand in a path segment as `%XX`, as Hive and Spark do.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control()
            || matches!(c, '/' | '\\' | '=' | '%' | ':' | '"' | '#' | '\'' | '*' | '?' | '[' | ']' | '^' | '{' | '}')
        {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    if out.is_empty() {
        // An empty string cannot name a directory; Spark treats it as null.
        return NULL_PARTITION.to_string();
    }
    out
}

/// The committed files of a file sink's output directory, relative to it, in batch order:
/// what a reader must read. Files of batches that never committed are left out.
pub fn committed_files(dir: &Path) -> Result<Vec<PathBuf>, SinkError> {
    let log = dir.join(LOG_DIR);
    let rd = std::fs::read_dir(&log).map_err(io(format!(
        "reading {} (is {} a weir file sink's output?)",
        log.display(),
        dir.display()
    )))?;
    let mut ids: Vec<u64> = rd.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
    ids.sort_unstable();
    let mut files = Vec::new();
    for id in ids {
        let path = log.join(id.to_string());
        let bytes = std::fs::read(&path).map_err(io(format!("reading {}", path.display())))?;
        let entry: LogEntry = serde_json::from_slice(&bytes)
            .map_err(|e| SinkError::Invalid(format!("{}: damaged commit log entry: {e}", path.display())))?;
        files.extend(entry.files.into_iter().map(|f| PathBuf::from(f.path)));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray};

    use super::*;
    use crate::schema::parse_ddl;

    fn batch(ids: &[i64], keys: &[Option<&str>]) -> RecordBatch {
        RecordBatch::try_new(
            parse_ddl("id bigint, k string").unwrap(),
            vec![Arc::new(Int64Array::from(ids.to_vec())), Arc::new(StringArray::from(keys.to_vec()))],
        )
        .unwrap()
    }

    fn sink(dir: &Path, format: FileFormat, partition_by: &[String], query: &str) -> FileSink {
        let mut sink = FileSink::new(format, dir, partition_by, batch(&[], &[]).schema()).unwrap();
        sink.start(query).unwrap();
        sink
    }

    /// File names as the log lists them, with each sink's random part replaced by `X`.
    fn names(dir: &Path) -> Vec<String> {
        let re = regex::Regex::new(r"-[0-9a-f]{12}\.").unwrap();
        committed_files(dir).unwrap().iter().map(|p| re.replace(&p.display().to_string(), "-X.").into_owned()).collect()
    }

    #[test]
    fn a_committed_batch_is_never_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(dir.path(), FileFormat::Json, &[], "q1");
        assert_eq!(s.write_batch(0, &[batch(&[1, 2], &[Some("a"), None])]).unwrap(), 2);
        assert_eq!(
            s.write_batch(0, &[batch(&[9], &[Some("z")])]).unwrap(),
            0,
            "replay of a committed batch writes nothing"
        );
        // A restart of the same query (another sink instance) replays it: nothing either.
        let mut again = sink(dir.path(), FileFormat::Json, &[], "q1");
        assert_eq!(again.write_batch(0, &[batch(&[9], &[Some("z")])]).unwrap(), 0);
        assert_eq!(names(dir.path()), vec!["part-00000-0000-X.json"]);
        let file = &committed_files(dir.path()).unwrap()[0];
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
        assert_eq!(text, "{\"id\":1,\"k\":\"a\"}\n{\"id\":2}\n");
    }

    #[test]
    fn partitions_are_hive_dirs_in_first_seen_order_without_the_column() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(dir.path(), FileFormat::Csv, &["k".to_string()], "q1");
        s.write_batch(3, &[batch(&[1, 2, 3, 4], &[Some("b/x"), None, Some("b/x"), Some("a=1")])]).unwrap();
        assert_eq!(
            names(dir.path()),
            vec![
                "k=b%2Fx/part-00003-0000-X.csv",
                "k=__HIVE_DEFAULT_PARTITION__/part-00003-0001-X.csv",
                "k=a%3D1/part-00003-0002-X.csv"
            ]
        );
        let first = &committed_files(dir.path()).unwrap()[0];
        assert_eq!(std::fs::read_to_string(dir.path().join(first)).unwrap(), "id\n1\n3\n");
    }

    #[test]
    fn an_uncommitted_batch_is_invisible_and_its_replay_writes_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let crashed = sink(dir.path(), FileFormat::Json, &[], "q1");
        let torn = dir.path().join(format!("part-00000-0000-{}.json", crashed.attempt));
        std::fs::write(&torn, "torn").unwrap();
        std::fs::write(dir.path().join(".part-00000-0000-abc.json.tmp"), "torn").unwrap();
        let mut s = sink(dir.path(), FileFormat::Json, &[], "q1");
        assert!(!dir.path().join(".part-00000-0000-abc.json.tmp").exists(), "temporaries of a crash are removed");
        assert!(committed_files(dir.path()).unwrap().is_empty());
        s.write_batch(0, &[batch(&[1], &[Some("a")])]).unwrap();
        let files = committed_files(dir.path()).unwrap();
        assert_eq!(files.len(), 1);
        assert_ne!(dir.path().join(&files[0]), torn, "the replay's file has a name of its own");
        assert_eq!(std::fs::read_to_string(dir.path().join(&files[0])).unwrap(), "{\"id\":1,\"k\":\"a\"}\n");
    }

    /// Two writers on one output directory (two jobs, or a job started twice on two
    /// checkpoints): neither overwrites the other's files, and the second does not skip its
    /// batch because the first's log entry exists: it stops, naming the entry.
    #[test]
    fn another_writers_batch_is_an_error_naming_the_entry_never_a_silent_skip() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = sink(dir.path(), FileFormat::Json, &[], "query-a");
        let mut b = sink(dir.path(), FileFormat::Json, &[], "query-b");
        assert_eq!(a.write_batch(0, &[batch(&[1], &[Some("a")])]).unwrap(), 1);
        let e = b.write_batch(0, &[batch(&[2], &[Some("b")])]).unwrap_err().to_string();
        assert!(
            e.contains("_weir_log/0: batch 0 is already committed in this output directory by another query (id query-a; this one is query-b)"),
            "{e}"
        );
        let files = committed_files(dir.path()).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(std::fs::read_to_string(dir.path().join(&files[0])).unwrap(), "{\"id\":1,\"k\":\"a\"}\n");
        // Their data files of any batch have names of their own: none can overwrite another's.
        assert_ne!(a.attempt, b.attempt);
    }

    #[test]
    fn a_log_entry_is_created_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("0");
        create_new(&entry, b"first").unwrap();
        let e = create_new(&entry, b"second").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&entry).unwrap(), b"first");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 1, "no temporary left: {left:?}");
    }

    #[test]
    fn unknown_partition_column_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = FileSink::new(FileFormat::Parquet, dir.path(), &["nope".to_string()], batch(&[], &[]).schema())
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "partition_by column `nope` is not in the output (its columns are: id, k)");
    }
}
