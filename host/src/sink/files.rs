//! Parquet, JSON-lines and CSV files with an exactly-once commit log.
//!
//! Layout of the output directory `OUT`:
//! ```text
//! OUT/_weir_log/<batch id>          {"batch_id": N, "writer": <query id>, "files": [{"path", "rows", "bytes"}]}
//! OUT/_weir_log/<batch id>.compact  every 10th batch: one such line per batch, all batches up to it
//! OUT/_spark_metadata/<batch id>[.compact]   the same commits in Spark's FileStreamSinkLog format
//! OUT/_weir_pending/<batch id>-<attempt>     the files an attempt is about to write (until it commits)
//! OUT/[col=value/]part-<N>-<k>-<attempt>.<ext>
//! ```
//! A batch's files are written first (each to a temporary sibling, fsynced, renamed), then its
//! log entry, which is created and never replaced (written aside, then hard-linked to its name:
//! the link fails when the name exists). A batch whose log entry this query wrote is never
//! written again, so a batch replayed after a crash cannot be committed twice; an entry another
//! query wrote (two jobs given one output directory) is an error, never a reason to skip. Data
//! file names carry a random suffix per sink instance (`<attempt>`), so no other writer, nor a
//! replay, can overwrite a file a log entry names. **Readers follow the log** ([`committed_files`]),
//! like Spark's `_spark_metadata`.
//!
//! Long-running jobs: both logs compact every 10 batches as Spark's `CompactibleFileStreamLog`
//! does (see [`super::file_log`]), and files before the compaction that keeps
//! `min_batches_to_retain` batches are deleted, so listing the committed files reads one compact
//! file and at most nine batch files. An attempt records the names of the files it will write in
//! `_weir_pending/` before it writes them; when batch N commits, the files of batch N that an
//! attempt recorded and the committed entry does not name (left by a crashed attempt) are
//! deleted. Files of other batches are never touched.
//!
//! Other readers: `_spark_metadata` holds the same batches as Spark's own file sink writes them
//! (`v1`, then one `SinkFileStatus` JSON object per file; compaction every 10 batches), so
//! `spark.read.parquet(OUT)` reads exactly the committed files, never a crashed attempt's.

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

use super::file_log::{self, CompactLog};
use super::{Sink, SinkError};
use crate::atomic_file::{sync_dir, write_atomic};
use crate::config::FileFormat;
use crate::format::encode::{write_csv, write_json_lines};
use crate::format::timestamp::format_timestamp_micros;

/// The commit-log directory inside the output directory.
pub const LOG_DIR: &str = "_weir_log";
/// Spark's file sink log, kept beside weir's for Spark (and other) readers.
pub const SPARK_LOG_DIR: &str = "_spark_metadata";
/// The files each attempt is about to write, by batch, until the batch commits.
pub const PENDING_DIR: &str = "_weir_pending";
/// Spark's `minBatchesToRetain` default, for outputs that are not told the job's.
pub const DEFAULT_MIN_BATCHES_TO_RETAIN: u64 = 100;
/// Test hook: a process whose environment sets this to a batch id aborts after writing that
/// batch's data files and before committing them, as a crash there would (the e2e tests use it
/// to leave a crashed attempt's files behind).
const CRASH_BEFORE_COMMIT_ENV: &str = "WEIR_TEST_CRASH_BEFORE_COMMIT";
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
    /// `_weir_log/`.
    log: CompactLog,
    /// `_spark_metadata/`.
    spark_log: CompactLog,
    /// The output directory as an absolute path, for `_spark_metadata`'s `file://` URIs.
    absolute: PathBuf,
}

/// One line of Spark's file sink log (`SinkFileStatus`), fields in Spark's order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SinkFileStatus {
    path: String,
    size: u64,
    is_dir: bool,
    modification_time: i64,
    block_replication: u32,
    block_size: u64,
    action: String,
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
        let absolute = dir.canonicalize().map_err(io(format!("resolving output directory {}", dir.display())))?;
        Ok(FileSink {
            log: weir_log(dir, DEFAULT_MIN_BATCHES_TO_RETAIN),
            spark_log: CompactLog::new(dir.join(SPARK_LOG_DIR), Some("v1"), DEFAULT_MIN_BATCHES_TO_RETAIN),
            absolute,
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

    /// Keeps this many batches readable in the logs (the job's `min_batches_to_retain`).
    pub fn with_min_batches_to_retain(mut self, n: u64) -> FileSink {
        self.log = weir_log(&self.dir, n);
        self.spark_log = CompactLog::new(self.dir.join(SPARK_LOG_DIR), Some("v1"), n);
        self
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
        self.committed_by_us(batch_id)
    }

    fn write_batch(&mut self, batch_id: u64, data: &[RecordBatch]) -> Result<u64, SinkError> {
        if self.committed_by_us(batch_id)? {
            // A replay after a crash that came after the commit: finish what follows it.
            self.after_commit(batch_id)?;
            return Ok(0);
        }
        let mut planned = Vec::new();
        for (k, (part_dir, batches)) in self.partitions(data)?.into_iter().enumerate() {
            let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
            if rows == 0 {
                continue;
            }
            let rel = format!("{part_dir}part-{batch_id:05}-{k:04}-{}.{}", self.attempt, self.format.extension());
            planned.push((rel, batches, rows));
        }
        // Before any data file: the names this attempt will write, so that whatever a crash
        // leaves of them is found (without listing the output) and deleted when the batch commits.
        if !planned.is_empty() {
            let record = self.pending_record(batch_id, &self.attempt);
            let names: String = planned.iter().map(|(rel, _, _)| format!("{rel}\n")).collect();
            write_atomic(&record, names.as_bytes())
                .map_err(io(format!("batch {batch_id}: recording the files it writes in {}", record.display())))?;
        }
        let mut files = Vec::new();
        let mut total = 0u64;
        for (rel, batches, rows) in planned {
            let path = self.dir.join(&rel);
            let bytes = self.encode(&batches, &rel)?;
            write_file(&path, &bytes)?;
            total += rows;
            files.push(LogFile { path: rel, rows, bytes: bytes.len() as u64 });
        }
        if std::env::var(CRASH_BEFORE_COMMIT_ENV).is_ok_and(|v| v == batch_id.to_string()) {
            eprintln!("{CRASH_BEFORE_COMMIT_ENV}={batch_id}: aborting before the commit of batch {batch_id}");
            std::process::abort();
        }
        let entry =
            serde_json::to_string(&LogEntry { batch_id, writer: self.writer.clone(), files }).expect("plain struct");
        let log_path = self.log.path(batch_id);
        match self.log.add(batch_id, &[entry]) {
            Ok(true) => {}
            // Another writer committed the batch between our check and now.
            Ok(false) => {
                if !self.committed_by_us(batch_id)? {
                    return Err(SinkError::Invalid(format!(
                        "{}: the commit log entry of batch {batch_id} appeared and vanished while this job committed it: another program is changing {}",
                        log_path.display(),
                        self.dir.display()
                    )));
                }
                total = 0;
            }
            Err(e) => return Err(io(format!("committing batch {batch_id} in {}", log_path.display()))(e)),
        }
        self.after_commit(batch_id)?;
        Ok(total)
    }
}

impl FileSink {
    /// The log entry of batch `batch_id`, if the log has it (its own file, or the compact
    /// file written at it).
    fn entry(&self, batch_id: u64) -> Result<Option<LogEntry>, SinkError> {
        let path = self.log.path(batch_id);
        let lines = self.log.get(batch_id).map_err(io(format!("reading {}", path.display())))?;
        for line in lines.into_iter().flatten() {
            let entry: LogEntry = serde_json::from_str(&line).map_err(|e| {
                SinkError::Invalid(format!(
                    "{}: damaged commit log entry of batch {batch_id}: {e}; restore it or use a new output directory",
                    path.display()
                ))
            })?;
            if entry.batch_id == batch_id {
                return Ok(Some(entry));
            }
        }
        Ok(None)
    }

    /// Whether batch `batch_id` is committed here already, by this query (a replay after a
    /// crash between the sink's commit and the checkpoint's): then it is not written again.
    /// An entry another query wrote is an error: two jobs write to one directory, and skipping
    /// the batch would lose this one's rows.
    fn committed_by_us(&self, batch_id: u64) -> Result<bool, SinkError> {
        let Some(entry) = self.entry(batch_id)? else { return Ok(false) };
        match (&entry.writer, &self.writer) {
            (Some(theirs), Some(ours)) if theirs != ours => Err(SinkError::Invalid(format!(
                "{}: batch {batch_id} is already committed in this output directory by another query (id {theirs}; this one is {ours}): two jobs (or two checkpoints) write to {}. Give each job its own output path; nothing of batch {batch_id} was committed by this one",
                self.log.path(batch_id).display(),
                self.dir.display()
            ))),
            _ => Ok(true),
        }
    }

    fn pending_record(&self, batch_id: u64, attempt: &str) -> PathBuf {
        self.dir.join(PENDING_DIR).join(format!("{batch_id}-{attempt}"))
    }

    /// What follows batch `batch_id`'s commit (also when a replay finds it committed):
    /// `_spark_metadata` gets the batch, and files of the batch that crashed attempts left are
    /// deleted.
    fn after_commit(&self, batch_id: u64) -> Result<(), SinkError> {
        self.sync_spark_log(batch_id)?;
        self.remove_orphans(batch_id)
    }

    /// Deletes, for every attempt record of a batch up to `batch_id` that is committed, the
    /// files the record names and the committed entry does not (a crashed attempt's), then the
    /// record. Records of later batches (in flight) are left alone.
    fn remove_orphans(&self, batch_id: u64) -> Result<(), SinkError> {
        let dir = self.dir.join(PENDING_DIR);
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(format!("listing {}", dir.display()))(e)),
        };
        let mut removed_any = false;
        for record in rd.flatten() {
            let name = record.file_name().to_string_lossy().into_owned();
            let Some(id) = name.split_once('-').and_then(|(id, _)| id.parse::<u64>().ok()) else { continue };
            if id > batch_id {
                continue;
            }
            let entry = match self.entry(id)? {
                Some(e) => e,
                // Committed long ago and compacted away, or never committed: the record can
                // only be resolved with the whole log; an older batch's stray files are rare.
                None if id == batch_id => continue,
                None => match self.entry_in_whole_log(id)? {
                    Some(e) => e,
                    None => continue,
                },
            };
            let committed: std::collections::HashSet<&str> = entry.files.iter().map(|f| f.path.as_str()).collect();
            let names = std::fs::read_to_string(record.path()).unwrap_or_default();
            for rel in names.lines().filter(|l| !l.is_empty() && !committed.contains(l)) {
                // Only data files of this batch, inside the output: a record is ours, but check.
                if rel.contains("..")
                    || !rel.rsplit('/').next().is_some_and(|n| n.starts_with(&format!("part-{id:05}-")))
                {
                    continue;
                }
                // The file, or its temporary sibling when the crash came mid-write.
                let path = self.dir.join(rel);
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let tmp = path.with_file_name(format!(".{name}.tmp"));
                for p in [&path, &tmp] {
                    match std::fs::remove_file(p) {
                        Ok(()) => {
                            eprintln!("batch {id}: deleted {}, left by an attempt that did not commit", p.display())
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(
                                io(format!("batch {id}: deleting {} (left by a crashed attempt)", p.display()))(e),
                            )
                        }
                    }
                }
            }
            std::fs::remove_file(record.path()).map_err(io(format!("deleting {}", record.path().display())))?;
            removed_any = true;
        }
        if removed_any {
            sync_dir(&dir).map_err(io(format!("syncing {}", dir.display())))?;
        }
        Ok(())
    }

    fn entry_in_whole_log(&self, batch_id: u64) -> Result<Option<LogEntry>, SinkError> {
        Ok(read_entries(&self.log, batch_id)?.into_iter().find(|e| e.batch_id == batch_id))
    }

    /// Brings `_spark_metadata` up to batch `batch_id` from weir's log: the batch, and any
    /// batch Spark's reader needs before it that is missing (an output made after the job
    /// started, or one written before weir kept this log).
    fn sync_spark_log(&self, batch_id: u64) -> Result<(), SinkError> {
        let spark = &self.spark_log;
        let err = |id: u64| io(format!("batch {id}: writing {}", spark.path(id).display()));
        for id in file_log::valid_batches(batch_id) {
            if spark.exists(id) {
                continue;
            }
            let has_previous = id > 0 && spark.exists(id - 1);
            if file_log::is_compaction(id) && !has_previous {
                // Spark's log has nothing before it: the whole of weir's, up to `id`.
                let mut lines = Vec::new();
                for e in read_entries(&self.log, id)? {
                    lines.extend(self.spark_statuses(&e)?);
                }
                spark.add_whole(id, &lines).map_err(err(id))?;
            } else {
                let lines = match self.entry(id)? {
                    Some(e) => self.spark_statuses(&e)?,
                    None => Vec::new(),
                };
                spark.add(id, &lines).map_err(err(id))?;
            }
        }
        Ok(())
    }

    /// Spark's `SinkFileStatus` lines of a log entry's files.
    fn spark_statuses(&self, entry: &LogEntry) -> Result<Vec<String>, SinkError> {
        entry
            .files
            .iter()
            .map(|f| {
                let path = self.dir.join(&f.path);
                let meta = std::fs::metadata(&path).map_err(io(format!(
                    "batch {}: reading {} (a committed file) for _spark_metadata",
                    entry.batch_id,
                    path.display()
                )))?;
                let modified = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_millis() as i64);
                let status = SinkFileStatus {
                    path: file_uri(&self.absolute.join(&f.path)),
                    size: meta.len(),
                    is_dir: false,
                    modification_time: modified,
                    // What Hadoop's local file system reports.
                    block_replication: 1,
                    block_size: 33_554_432,
                    action: "add".to_string(),
                };
                Ok(serde_json::to_string(&status).expect("plain struct"))
            })
            .collect()
    }
}

/// `_weir_log/`. Its compact files keep the entries that name files (and the compaction
/// batch's own): a batch that wrote nothing need not be found again once later batches have
/// committed (only the last batch is ever replayed), so a compact file grows with the output,
/// not with the number of batches, as Spark's `_spark_metadata` does.
fn weir_log(dir: &Path, min_batches_to_retain: u64) -> CompactLog {
    CompactLog::new(dir.join(LOG_DIR), None, min_batches_to_retain)
        .keeping_in_compact(|line| serde_json::from_str::<LogEntry>(line).map_or(true, |e| !e.files.is_empty()))
}

/// Every log entry up to `through`, in batch order.
fn read_entries(log: &CompactLog, through: u64) -> Result<Vec<LogEntry>, SinkError> {
    let lines = log.read_through(through).map_err(io(format!("reading {}", log.dir().display())))?;
    lines
        .iter()
        .map(|l| {
            serde_json::from_str(l)
                .map_err(|e| SinkError::Invalid(format!("{}: damaged commit log entry: {e}", log.dir().display())))
        })
        .collect()
}

/// A `file://` URI of an absolute path, each byte outside `[A-Za-z0-9-._~/=]` escaped as
/// `%XX` (a Hive partition directory's own escapes, `%2F`, become `%252F`), as Hadoop's
/// `Path.toUri` does.
fn file_uri(path: &Path) -> String {
    let mut out = String::from("file://");
    for &b in path.to_string_lossy().as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/=".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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

/// Removes `.*.tmp` files a crash mid-write left in the logs. Temporaries of data files are
/// removed with the crashed attempt's files when their batch commits (`remove_orphans`): the
/// data directories are never listed, so a start costs the same however large the output.
fn remove_temporaries(dir: &Path) {
    for sub in [LOG_DIR, SPARK_LOG_DIR, PENDING_DIR] {
        let Ok(rd) = std::fs::read_dir(dir.join(sub)) else { continue };
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
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

/// [`escape_segment`], with an empty value as Spark's null partition (an empty string cannot
/// name a directory).
fn escape(s: &str) -> String {
    let out = escape_segment(s);
    if out.is_empty() {
        return NULL_PARTITION.to_string();
    }
    out
}

/// Escapes what cannot stand in a path segment as `%XX`, as Hive and Spark do.
pub fn escape_segment(s: &str) -> String {
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
    out
}

/// The committed files of a file sink's output directory, relative to it, in batch order:
/// what a reader must read. Files of batches that never committed are left out. Reads the
/// latest compact file and the batch files after it (at most nine).
pub fn committed_files(dir: &Path) -> Result<Vec<PathBuf>, SinkError> {
    let log = dir.join(LOG_DIR);
    if !log.is_dir() {
        return Err(SinkError::Invalid(format!(
            "{} has no commit log ({LOG_DIR}/): is {} a weir file sink's output?",
            log.display(),
            dir.display()
        )));
    }
    let log = CompactLog::new(log, None, DEFAULT_MIN_BATCHES_TO_RETAIN);
    Ok(read_entries(&log, u64::MAX)?.into_iter().flat_map(|e| e.files).map(|f| PathBuf::from(f.path)).collect())
}

/// Whether the file output in `dir` has committed write `batch_id` (a log entry of any query).
pub fn is_committed(dir: &Path, batch_id: u64) -> Result<bool, SinkError> {
    let log = CompactLog::new(dir.join(LOG_DIR), None, DEFAULT_MIN_BATCHES_TO_RETAIN);
    let lines = log.get(batch_id).map_err(io(format!("reading {}", log.path(batch_id).display())))?;
    Ok(lines.into_iter().flatten().any(|l| serde_json::from_str::<LogEntry>(&l).is_ok_and(|e| e.batch_id == batch_id)))
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
        // The crashed attempt recorded two files: wrote one, was writing the other.
        let names = format!("part-00000-0000-{0}.json\npart-00000-0001-{0}.json\n", crashed.attempt);
        std::fs::create_dir_all(dir.path().join(PENDING_DIR)).unwrap();
        std::fs::write(crashed.pending_record(0, &crashed.attempt), names).unwrap();
        let torn = dir.path().join(format!("part-00000-0000-{}.json", crashed.attempt));
        std::fs::write(&torn, "torn").unwrap();
        let half = dir.path().join(format!(".part-00000-0001-{}.json.tmp", crashed.attempt));
        std::fs::write(&half, "half").unwrap();
        std::fs::write(dir.path().join("_weir_log/.3.abc.tmp"), "torn").unwrap();
        let mut s = sink(dir.path(), FileFormat::Json, &[], "q1");
        assert!(!dir.path().join("_weir_log/.3.abc.tmp").exists(), "temporaries of the log are removed at start");
        assert!(committed_files(dir.path()).unwrap().is_empty());
        s.write_batch(0, &[batch(&[1], &[Some("a")])]).unwrap();
        assert!(!torn.exists() && !half.exists(), "the crashed attempt's file and temporary go at the commit");
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
        file_log::create_new(&entry, b"first").unwrap();
        let e = file_log::create_new(&entry, b"second").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&entry).unwrap(), b"first");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left.len(), 1, "no temporary left: {left:?}");
    }

    /// A crashed attempt of batch 1 left a file; an attempt of batch 2 is in flight. When batch
    /// 1 commits, the crashed attempt's file goes, the committed file and batch 2's stay.
    #[test]
    fn a_crashed_attempts_files_go_when_their_batch_commits_and_no_other_batchs() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(dir.path(), FileFormat::Json, &[], "q1");
        s.write_batch(0, &[batch(&[1], &[Some("a")])]).unwrap();
        let plant = |batch_id: u64, attempt: &str| {
            let rel = format!("part-{batch_id:05}-0000-{attempt}.json");
            std::fs::write(dir.path().join(&rel), "orphan\n").unwrap();
            let record = s.pending_record(batch_id, attempt);
            std::fs::create_dir_all(record.parent().unwrap()).unwrap();
            std::fs::write(record, format!("{rel}\n")).unwrap();
            dir.path().join(rel)
        };
        let crashed = plant(1, "0123456789ab");
        let in_flight = plant(2, "ba9876543210");
        let mut restarted = sink(dir.path(), FileFormat::Json, &[], "q1");
        restarted.write_batch(1, &[batch(&[2], &[Some("b")])]).unwrap();
        assert!(!crashed.exists(), "the crashed attempt's file of batch 1 is deleted");
        assert!(in_flight.exists(), "batch 2's file is not touched");
        let files = committed_files(dir.path()).unwrap();
        assert_eq!(files.len(), 2);
        assert!(files.iter().all(|f| dir.path().join(f).exists()));
        let left: Vec<String> = std::fs::read_dir(dir.path().join(PENDING_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["2-ba9876543210"], "only the in-flight batch's record is left");
    }

    #[test]
    fn both_logs_compact_every_ten_batches_and_old_files_go_past_min_batches_to_retain() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(dir.path(), FileFormat::Json, &[], "q1").with_min_batches_to_retain(5);
        for b in 0..43u64 {
            s.write_batch(b, &[batch(&[b as i64], &[Some("a")])]).unwrap();
        }
        let listing = |sub: &str| {
            let mut v: Vec<String> = std::fs::read_dir(dir.path().join(sub))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort_by_key(|n| n.trim_end_matches(".compact").parse::<u64>().unwrap());
            v
        };
        let expected =
            ["29.compact", "30", "31", "32", "33", "34", "35", "36", "37", "38", "39.compact", "40", "41", "42"];
        assert_eq!(listing(LOG_DIR), expected);
        assert_eq!(listing(SPARK_LOG_DIR), expected);
        let files = committed_files(dir.path()).unwrap();
        assert_eq!(files.len(), 43, "every batch's file is still listed");
        assert!(files[0].display().to_string().starts_with("part-00000-"));
        // A replay of the last batch (in no compact file) and of a compacted one: nothing written.
        assert_eq!(s.write_batch(42, &[batch(&[9], &[Some("z")])]).unwrap(), 0);
        assert_eq!(s.write_batch(39, &[batch(&[9], &[Some("z")])]).unwrap(), 0);
        assert!(is_committed(dir.path(), 39).unwrap() && is_committed(dir.path(), 41).unwrap());
        assert!(!is_committed(dir.path(), 43).unwrap());
    }

    /// Spark's FileStreamSinkLog format: `v1`, then one SinkFileStatus per file, with a
    /// `file://` URI; a compact file holds every batch's.
    #[test]
    fn spark_metadata_is_in_sparks_format() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(dir.path(), FileFormat::Json, &["k".to_string()], "q1");
        s.write_batch(0, &[batch(&[1, 2], &[Some("a/b"), Some("c")])]).unwrap();
        s.write_batch(1, &[]).unwrap();
        let text = std::fs::read_to_string(dir.path().join("_spark_metadata/0")).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("v1"));
        let first: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        let keys: Vec<&str> = first.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["action", "blockReplication", "blockSize", "isDir", "modificationTime", "path", "size"]);
        let abs = dir.path().canonicalize().unwrap();
        let committed = &committed_files(dir.path()).unwrap()[0];
        let expected = format!("file://{}/{}", abs.display(), committed.display()).replace("%2F", "%252F");
        assert_eq!(first["path"], expected.as_str());
        assert!(expected.contains("/k=a%252Fb/part-00000-"), "{expected}");
        assert_eq!(first["size"], std::fs::metadata(dir.path().join(committed)).unwrap().len());
        assert_eq!((first["action"].as_str(), first["isDir"].as_bool()), (Some("add"), Some(false)));
        assert_eq!(lines.count(), 1, "one line per file");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("_spark_metadata/1")).unwrap(),
            "v1",
            "no files: the header"
        );
        for b in 2..10u64 {
            s.write_batch(b, &[batch(&[b as i64], &[Some("x")])]).unwrap();
        }
        let compact = std::fs::read_to_string(dir.path().join("_spark_metadata/9.compact")).unwrap();
        assert_eq!(compact.lines().count(), 1 + 2 + 8);
        // weir's compact file keeps entries that name files: batch 1 wrote none.
        let weir = std::fs::read_to_string(dir.path().join("_weir_log/9.compact")).unwrap();
        assert_eq!(weir.lines().count(), 9, "{weir}");
        assert!(!weir.contains("\"batch_id\":1,"), "{weir}");
    }

    /// An output directory written before weir kept `_spark_metadata` (or an output a sink
    /// plugin made at batch 25): Spark's log gets every batch its reader needs.
    #[test]
    fn spark_metadata_is_filled_in_from_weirs_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(dir.path(), FileFormat::Json, &[], "q1");
        for b in 0..23u64 {
            s.write_batch(b, &[batch(&[b as i64], &[Some("a")])]).unwrap();
        }
        std::fs::remove_dir_all(dir.path().join(SPARK_LOG_DIR)).unwrap();
        s.write_batch(23, &[batch(&[23], &[Some("a")])]).unwrap();
        let names: Vec<String> = {
            let mut v: Vec<String> = std::fs::read_dir(dir.path().join(SPARK_LOG_DIR))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names, ["19.compact", "20", "21", "22", "23"]);
        let compact = std::fs::read_to_string(dir.path().join("_spark_metadata/19.compact")).unwrap();
        assert_eq!(compact.lines().count(), 21, "v1 and batches 0..=19");
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
