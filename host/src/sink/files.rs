//! Parquet, JSON-lines and CSV files with an exactly-once commit log.
//!
//! Layout of the output directory `OUT`:
//! ```text
//! OUT/_weir_log/<batch id>          {"batch_id": N, "files": [{"path", "rows", "bytes"}]}
//! OUT/[col=value/]part-<N>-<k>.<ext>
//! ```
//! A batch's files are written first (each to a temporary sibling, fsynced, renamed), then its
//! log entry, atomically. A batch whose log entry exists is never written again, so a batch
//! replayed after a crash cannot be committed twice; a batch cut short leaves files that no log
//! entry names, which its replay overwrites (names are deterministic). **Readers follow the
//! log** ([`committed_files`]), like Spark's `_spark_metadata`.

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
use crate::atomic_file::{sync_dir, write_atomic};
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

    fn write_batch(&mut self, batch_id: u64, data: &[RecordBatch]) -> Result<u64, SinkError> {
        let log_path = self.dir.join(LOG_DIR).join(batch_id.to_string());
        if log_path.exists() {
            return Ok(0);
        }
        let mut files = Vec::new();
        let mut total = 0u64;
        for (k, (part_dir, batches)) in self.partitions(data)?.into_iter().enumerate() {
            let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
            if rows == 0 {
                continue;
            }
            let rel = format!("{part_dir}part-{batch_id:05}-{k:04}.{}", self.format.extension());
            let path = self.dir.join(&rel);
            let bytes = self.encode(&batches, &rel)?;
            write_file(&path, &bytes)?;
            total += rows;
            files.push(LogFile { path: rel, rows, bytes: bytes.len() as u64 });
        }
        let entry = serde_json::to_vec(&LogEntry { batch_id, files }).expect("plain struct");
        write_atomic(&log_path, &entry)
            .map_err(io(format!("committing batch {batch_id} in {}", log_path.display())))?;
        Ok(total)
    }
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

    #[test]
    fn a_committed_batch_is_never_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = FileSink::new(FileFormat::Json, dir.path(), &[], batch(&[], &[]).schema()).unwrap();
        assert_eq!(sink.write_batch(0, &[batch(&[1, 2], &[Some("a"), None])]).unwrap(), 2);
        assert_eq!(
            sink.write_batch(0, &[batch(&[9], &[Some("z")])]).unwrap(),
            0,
            "replay of a committed batch writes nothing"
        );
        assert_eq!(committed_files(dir.path()).unwrap(), vec![PathBuf::from("part-00000-0000.json")]);
        let text = std::fs::read_to_string(dir.path().join("part-00000-0000.json")).unwrap();
        assert_eq!(text, "{\"id\":1,\"k\":\"a\"}\n{\"id\":2}\n");
    }

    #[test]
    fn partitions_are_hive_dirs_in_first_seen_order_without_the_column() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink =
            FileSink::new(FileFormat::Csv, dir.path(), &["k".to_string()], batch(&[], &[]).schema()).unwrap();
        sink.write_batch(3, &[batch(&[1, 2, 3, 4], &[Some("b/x"), None, Some("b/x"), Some("a=1")])]).unwrap();
        let files: Vec<String> = committed_files(dir.path()).unwrap().iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            files,
            vec![
                "k=b%2Fx/part-00003-0000.csv",
                "k=__HIVE_DEFAULT_PARTITION__/part-00003-0001.csv",
                "k=a%3D1/part-00003-0002.csv"
            ]
        );
        assert_eq!(std::fs::read_to_string(dir.path().join(&files[0])).unwrap(), "id\n1\n3\n");
    }

    #[test]
    fn an_uncommitted_batch_is_invisible_and_its_replay_overwrites_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("part-00000-0000.json"), "torn").unwrap();
        std::fs::write(dir.path().join(".part-00000-0000.json.tmp"), "torn").unwrap();
        let mut sink = FileSink::new(FileFormat::Json, dir.path(), &[], batch(&[], &[]).schema()).unwrap();
        assert!(!dir.path().join(".part-00000-0000.json.tmp").exists(), "temporaries of a crash are removed");
        assert!(committed_files(dir.path()).unwrap().is_empty());
        sink.write_batch(0, &[batch(&[1], &[Some("a")])]).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("part-00000-0000.json")).unwrap(),
            "{\"id\":1,\"k\":\"a\"}\n"
        );
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
