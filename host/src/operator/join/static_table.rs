//! Static tables (`[[source]] static = true`): a directory of json/csv/parquet files read as one
//! table, versioned by the digests of its files so that every batch can record the version it
//! joined and a replay can join against exactly that version, even after the files changed.
//!
//! The engine's order at a batch that (re)reads the table: [`scan`] the directory, [`snapshot`]
//! the version into the checkpoint (copies of new files, by digest), write the batch's offsets
//! entry naming the version, then [`load`] it from the snapshot. A replay skips the scan and loads
//! the version its offsets entry names. [`purge`] removes copies that no retained batch names.
//!
//! [`snapshot`]: TableSnapshots::snapshot
//! [`load`]: TableSnapshots::load
//! [`purge`]: TableSnapshots::purge

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::atomic_file::write_atomic;
use crate::config::{CsvOptions, FileFormat};
use crate::deadletter::BadRecords;
use crate::format::{csv::decode_csv, json::decode_json_lines, parquet};
use crate::source::SourceError;

/// One file of a table version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableFile {
    /// The file's name in the table's directory.
    pub name: String,
    /// Its size.
    pub bytes: u64,
    /// The lowercase hex SHA-256 of its content; also the name of its copy in the snapshot store.
    pub sha256: String,
}

/// A version of a static table: its files, sorted by name. Recorded in each batch's offsets
/// entry; two versions are the same table exactly when they are equal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableVersion {
    pub files: Vec<TableFile>,
}

/// What can go wrong reading a static table.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// A file or directory cannot be read or written.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A file's content is not what the scan digested: it was being written or replaced.
    #[error(
        "static table file {path} changed after the table was scanned (it has {bytes} bytes, digest {sha256}); \
         rescan the table (the next batch does) and replace table files by writing a new file and renaming \
         it over the old one"
    )]
    Changed { path: String, bytes: u64, sha256: String },
    /// The table does not fit the job (no schema, a corrupt stored copy, a bad file).
    #[error("{0}")]
    Invalid(String),
    /// A decoder's error: a bad record under `on_bad_record = "fail"`, a parquet file that does
    /// not match the schema.
    #[error(transparent)]
    Decode(#[from] SourceError),
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> TableError {
    move |source| TableError::Io { context, source }
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// A file's size and modification time: when both are unchanged, its digest is reused.
type FileStamp = (u64, Option<SystemTime>);

/// Scans table directories, remembering each file's digest by (name, size, mtime) so that a
/// rescan at every batch reads only the files that changed. A file rewritten in place with the
/// same size within the file system's mtime resolution is not noticed until its mtime or size
/// differs; replace files by rename (a new mtime) to be safe.
#[derive(Debug, Default)]
pub struct TableScanner {
    digests: HashMap<String, (FileStamp, String)>,
}

impl TableScanner {
    pub fn new() -> TableScanner {
        TableScanner::default()
    }

    /// The table's current version: every regular file of `dir` whose name does not start with
    /// `.` or `_` (the file source's rule: hidden and in-progress files), sorted by name.
    pub fn scan(&mut self, dir: &Path) -> Result<TableVersion, TableError> {
        let listing = format!("listing static table directory {}", dir.display());
        let mut files = Vec::new();
        let mut seen = HashSet::new();
        for entry in std::fs::read_dir(dir).map_err(io(listing.clone()))? {
            let entry = entry.map_err(io(listing.clone()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            let path = entry.path();
            let meta = std::fs::metadata(&path).map_err(io(format!("reading {}", path.display())))?;
            if !meta.is_file() {
                continue;
            }
            let stamp: FileStamp = (meta.len(), meta.modified().ok());
            let sha256 = match self.digests.get(&name) {
                Some((s, sha)) if *s == stamp && stamp.1.is_some() => sha.clone(),
                _ => {
                    let bytes = std::fs::read(&path).map_err(io(format!("reading {}", path.display())))?;
                    let sha = sha256_hex(&bytes);
                    // The size read is the one recorded: a file growing meanwhile is caught by the
                    // snapshot's digest check.
                    let stamp = (bytes.len() as u64, stamp.1);
                    self.digests.insert(name.clone(), (stamp, sha.clone()));
                    sha
                }
            };
            let bytes = self.digests[&name].0 .0;
            seen.insert(name.clone());
            files.push(TableFile { name, bytes, sha256 });
        }
        self.digests.retain(|name, _| seen.contains(name));
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(TableVersion { files })
    }
}

/// The table's current version, every file digested (see [`TableScanner`] to digest only the
/// files that changed since the last scan).
pub fn scan(dir: &Path) -> Result<TableVersion, TableError> {
    TableScanner::new().scan(dir)
}

/// Copies of table files in the checkpoint, one per distinct content, named by SHA-256: what a
/// replay reads when the table's directory has moved on.
#[derive(Debug, Clone)]
pub struct TableSnapshots {
    dir: PathBuf,
}

impl TableSnapshots {
    /// A store in `dir`, created on first snapshot. One directory per table (e.g.
    /// `<checkpoint>/tables/<source name>`): [`TableSnapshots::purge`] deletes every copy its
    /// `keep` list does not name, so tables sharing a directory would purge each other's copies.
    pub fn new(dir: impl Into<PathBuf>) -> TableSnapshots {
        TableSnapshots { dir: dir.into() }
    }

    /// Where the copy of `file` is kept.
    pub fn path(&self, file: &TableFile) -> PathBuf {
        self.dir.join(&file.sha256)
    }

    /// Copies every file of `version` not yet stored from `source_dir` into the store (written
    /// whole then renamed, so a crash leaves no partial copy). The copied bytes are digested: a
    /// file that changed since the scan is refused with [`TableError::Changed`] and nothing of it
    /// is stored.
    pub fn snapshot(&self, source_dir: &Path, version: &TableVersion) -> Result<(), TableError> {
        for file in &version.files {
            let target = self.path(file);
            if target.is_file() {
                continue;
            }
            let source = source_dir.join(&file.name);
            let bytes = std::fs::read(&source).map_err(io(format!(
                "reading static table file {} (a file listed by the scan must stay until it is copied)",
                source.display()
            )))?;
            let sha256 = sha256_hex(&bytes);
            if sha256 != file.sha256 || bytes.len() as u64 != file.bytes {
                return Err(TableError::Changed {
                    path: source.display().to_string(),
                    bytes: bytes.len() as u64,
                    sha256,
                });
            }
            write_atomic(&target, &bytes).map_err(io(format!(
                "storing a copy of static table file {} as {}",
                source.display(),
                target.display()
            )))?;
        }
        Ok(())
    }

    /// Reads `version` from the stored copies, every file checked against its digest, decoded
    /// with `schema` (required for json and csv; for parquet without one, the first file's
    /// schema). Returns the schema and the rows in file order. Bad json/csv records go to `bad`
    /// under its policy, named by the table file's name and line.
    pub fn load(
        &self,
        version: &TableVersion,
        format: FileFormat,
        schema: Option<&SchemaRef>,
        csv: CsvOptions,
        bad: &mut BadRecords,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), TableError> {
        let schema = match (schema, format, version.files.first()) {
            (Some(s), _, _) => s.clone(),
            (None, FileFormat::Parquet, Some(first)) => {
                self.read_checked(first)?;
                parquet::parquet_schema(&self.path(first)).map_err(|e| self.named(first, e))?
            }
            (None, _, _) => return Err(missing_schema(format, "the static table")),
        };
        let mut out = Vec::new();
        for file in &version.files {
            let bytes = self.read_checked(file)?;
            let batches = match format {
                FileFormat::Parquet => {
                    drop(bytes);
                    parquet::read_parquet(&self.path(file), Some(&schema)).map_err(|e| self.named(file, e))?
                }
                FileFormat::Json => decode_json_lines(&file.name, &bytes, &schema, bad).map_err(SourceError::from)?,
                FileFormat::Csv => decode_csv(&file.name, &bytes, &schema, csv, bad).map_err(SourceError::from)?,
            };
            out.extend(batches);
        }
        Ok((schema, out))
    }

    /// The stored copy of `file`, refused if its content is not the recorded one.
    fn read_checked(&self, file: &TableFile) -> Result<Vec<u8>, TableError> {
        let path = self.path(file);
        let bytes = std::fs::read(&path).map_err(io(format!(
            "reading the stored copy of static table file {} ({}); was the checkpoint's table store deleted? \
             the batch cannot be replayed without it",
            file.name,
            path.display()
        )))?;
        if sha256_hex(&bytes) != file.sha256 {
            return Err(TableError::Invalid(format!(
                "the stored copy of static table file {} ({}) does not have its recorded digest: the checkpoint \
                 is corrupt; restore it from a backup or start with a new checkpoint",
                file.name,
                path.display()
            )));
        }
        Ok(bytes)
    }

    /// A parquet decoder's message names the stored copy; say which table file it is.
    fn named(&self, file: &TableFile, e: SourceError) -> TableError {
        match e {
            SourceError::Invalid(msg) => {
                TableError::Invalid(format!("static table file {} (stored copy): {msg}", file.name))
            }
            other => TableError::Decode(other),
        }
    }

    /// Deletes the stored copies that none of `keep` names (and temporary files a crash left);
    /// returns how many files were deleted. Not to be run during a [`TableSnapshots::snapshot`].
    pub fn purge(&self, keep: &[TableVersion]) -> Result<usize, TableError> {
        let kept: HashSet<&str> = keep.iter().flat_map(|v| v.files.iter().map(|f| f.sha256.as_str())).collect();
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io(format!("listing {}", self.dir.display()))(e)),
        };
        let mut deleted = 0;
        for entry in rd {
            let entry = entry.map_err(io(format!("listing {}", self.dir.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let stored = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
            let leftover = name.starts_with('.') && name.ends_with(".tmp");
            if (stored && !kept.contains(name.as_str())) || leftover {
                let path = entry.path();
                std::fs::remove_file(&path).map_err(io(format!("deleting {}", path.display())))?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

pub use crate::config::Refresh;

/// Decides, batch by batch, whether the table is rescanned. The clock is the caller's (the
/// batch's planning time), so tests never wait.
#[derive(Debug, Clone)]
pub struct RefreshPolicy {
    refresh: Refresh,
    /// When the table was last scanned in this run (µs since the epoch).
    last_scan_micros: Option<i64>,
}

impl RefreshPolicy {
    pub fn new(refresh: Refresh) -> RefreshPolicy {
        RefreshPolicy { refresh, last_scan_micros: None }
    }

    /// Whether a new batch planned at `now_micros` rescans the table. The first batch of a run
    /// always does; replays never call this (they join the version their offsets entry names).
    pub fn due(&self, now_micros: i64) -> bool {
        let Some(last) = self.last_scan_micros else {
            return true;
        };
        match self.refresh {
            Refresh::Never => false,
            Refresh::OnChange => true,
            Refresh::Every(interval) => {
                now_micros.saturating_sub(last) >= i64::try_from(interval.as_micros()).unwrap_or(i64::MAX)
            }
        }
    }

    /// Records a scan at `now_micros`.
    pub fn scanned(&mut self, now_micros: i64) {
        self.last_scan_micros = Some(now_micros);
    }
}

/// The schema a version would be read with, for planning: the declared one, or for parquet the
/// first file's (read from `dir`, the table's own directory).
pub fn table_schema(
    dir: &Path,
    version: &TableVersion,
    format: FileFormat,
    declared: Option<&SchemaRef>,
) -> Result<SchemaRef, TableError> {
    match (declared, format, version.files.first()) {
        (Some(s), _, _) => Ok(s.clone()),
        (None, FileFormat::Parquet, Some(first)) => Ok(parquet::parquet_schema(&dir.join(&first.name))?),
        (None, _, _) => Err(missing_schema(format, &dir.display().to_string())),
    }
}

/// No schema declared and none to infer: say what to declare.
fn missing_schema(format: FileFormat, table: &str) -> TableError {
    TableError::Invalid(match format {
        FileFormat::Parquet => {
            format!("no schema declared and no parquet file in {table} to infer it from; declare the source's `schema`")
        }
        _ => format!("a {} static table needs a declared `schema` (only parquet can go without)", format.extension()),
    })
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use tempfile::TempDir;

    use super::*;
    use crate::deadletter::OnBadRecord;

    const T1: &str = "{\"k\":\"a\",\"n\":1}\n{\"k\":\"b\",\"n\":2}\n";
    const T1_SHA: &str = "8b1528309e5fa0d937fdf47dfa1645cd6a9ef80ee7f883e44c223ad37b39a0e4";
    const T2: &str = "{\"k\":\"a\",\"n\":10}\n";
    const T2_SHA: &str = "641b935f3167293329d1df7165e1d4a33b774d42e2fbf3bf2ff654fb66f4c0bc";

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true), Field::new("n", DataType::Int64, true)]))
    }

    /// A table directory and a snapshot store in a checkpoint directory of its own.
    struct Fixture {
        table: TempDir,
        ckpt: TempDir,
        store: TableSnapshots,
    }

    fn fixture(files: &[(&str, &str)]) -> Fixture {
        let (table, ckpt) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let store = TableSnapshots::new(ckpt.path().join("users"));
        let f = Fixture { table, ckpt, store };
        for (name, text) in files {
            f.write(name, text);
        }
        f
    }

    impl Fixture {
        fn write(&self, name: &str, text: &str) {
            fs::write(self.table.path().join(name), text).unwrap();
        }

        fn stored(&self) -> PathBuf {
            self.ckpt.path().join("users")
        }

        /// Scans the table and snapshots the version, as the engine does at a batch.
        fn scan_and_snapshot(&self) -> TableVersion {
            let v = scan(self.table.path()).unwrap();
            self.store.snapshot(self.table.path(), &v).unwrap();
            v
        }

        fn load(
            &self,
            v: &TableVersion,
            format: FileFormat,
            schema: Option<&SchemaRef>,
        ) -> Result<(SchemaRef, Vec<RecordBatch>), TableError> {
            self.store.load(v, format, schema, CsvOptions::default(), &mut BadRecords::new(OnBadRecord::Fail))
        }

        /// The rows of a json version, as `k=n` strings.
        fn json_rows(&self, v: &TableVersion) -> Vec<String> {
            let (s, batches) = self.load(v, FileFormat::Json, Some(&schema())).unwrap();
            assert_eq!(s, schema());
            rows(&batches)
        }
    }

    /// The rows as `k=n` strings, in order.
    fn rows(batches: &[RecordBatch]) -> Vec<String> {
        let mut out = Vec::new();
        for b in batches {
            let k = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            let n = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
            for i in 0..b.num_rows() {
                out.push(format!("{}={}", k.value(i), n.value(i)));
            }
        }
        out
    }

    #[test]
    fn scan_lists_regular_files_by_name_with_sizes_and_digests() {
        let f = fixture(&[("t2.json", T2), ("t1.json", T1), (".t3.json.tmp", "hidden"), ("_SUCCESS", "")]);
        fs::create_dir(f.table.path().join("sub")).unwrap();
        let version = scan(f.table.path()).unwrap();
        assert_eq!(
            version,
            TableVersion {
                files: vec![
                    TableFile { name: "t1.json".into(), bytes: 32, sha256: T1_SHA.into() },
                    TableFile { name: "t2.json".into(), bytes: 17, sha256: T2_SHA.into() },
                ]
            }
        );
        assert_eq!(
            serde_json::to_string(&version).unwrap(),
            format!(
                "{{\"files\":[{{\"name\":\"t1.json\",\"bytes\":32,\"sha256\":\"{T1_SHA}\"}},\
                 {{\"name\":\"t2.json\",\"bytes\":17,\"sha256\":\"{T2_SHA}\"}}]}}"
            )
        );
        let back: TableVersion = serde_json::from_str(&serde_json::to_string(&version).unwrap()).unwrap();
        assert_eq!(back, version);
    }

    #[test]
    fn a_cached_scan_sees_a_replaced_file_and_a_removed_one() {
        let f = fixture(&[("t.json", T1), ("u.json", T2)]);
        let mut scanner = TableScanner::new();
        assert_eq!(scanner.scan(f.table.path()).unwrap().files[0].sha256, T1_SHA);
        // Replaced by rename (the safe way): another size, a new mtime.
        f.write(".t.json.new", T2);
        fs::rename(f.table.path().join(".t.json.new"), f.table.path().join("t.json")).unwrap();
        fs::remove_file(f.table.path().join("u.json")).unwrap();
        assert_eq!(
            scanner.scan(f.table.path()).unwrap(),
            TableVersion { files: vec![TableFile { name: "t.json".into(), bytes: 17, sha256: T2_SHA.into() }] }
        );
    }

    #[test]
    fn a_snapshot_still_loads_the_old_rows_after_the_source_file_changed() {
        let f = fixture(&[("t.json", T1)]);
        let v1 = f.scan_and_snapshot();
        assert!(f.stored().join(T1_SHA).is_file());
        f.write("t.json", T2);
        let v2 = f.scan_and_snapshot();
        assert_ne!(v1, v2);
        // A replay of the earlier batch joins the old rows; the next batch the new ones.
        assert_eq!(f.json_rows(&v1), ["a=1", "b=2"]);
        assert_eq!(f.json_rows(&v2), ["a=10"]);

        // Keeping only v2 deletes v1's copy; v2 still loads, v1 no longer.
        assert_eq!(f.store.purge(std::slice::from_ref(&v2)).unwrap(), 1);
        assert!(!f.stored().join(T1_SHA).exists());
        assert_eq!(f.json_rows(&v2), ["a=10"]);
        let err = f.load(&v1, FileFormat::Json, Some(&schema())).unwrap_err();
        assert!(err.to_string().starts_with("reading the stored copy of static table file t.json ("), "{err}");
    }

    #[test]
    fn a_file_changed_between_scan_and_copy_is_refused_and_not_stored() {
        let f = fixture(&[("t.json", T1)]);
        let v1 = scan(f.table.path()).unwrap();
        f.write("t.json", T2);
        let err = f.store.snapshot(f.table.path(), &v1).unwrap_err();
        assert!(matches!(&err, TableError::Changed { bytes: 17, sha256, .. } if sha256 == T2_SHA), "{err}");
        assert!(
            err.to_string().ends_with(&format!(
                "/t.json changed after the table was scanned (it has 17 bytes, digest {T2_SHA}); rescan the table \
                 (the next batch does) and replace table files by writing a new file and renaming it over the old one"
            )),
            "{err}"
        );
        assert!(!f.stored().exists());
    }

    #[test]
    fn a_corrupt_stored_copy_is_refused() {
        let f = fixture(&[("t.json", T1)]);
        let v1 = f.scan_and_snapshot();
        fs::write(f.stored().join(T1_SHA), T2).unwrap();
        let err = f.load(&v1, FileFormat::Json, Some(&schema())).unwrap_err();
        assert!(err.to_string().contains("does not have its recorded digest: the checkpoint is corrupt"), "{err}");
    }

    #[test]
    fn purge_keeps_every_named_copy_and_leaves_other_files() {
        let f = fixture(&[("a.json", T1), ("b.json", T2)]);
        let both = f.scan_and_snapshot();
        fs::write(f.stored().join(format!(".{T1_SHA}.123.tmp")), "partial").unwrap();
        fs::write(f.stored().join("README"), "not ours").unwrap();
        let only_b = TableVersion { files: vec![both.files[1].clone()] };
        assert_eq!(f.store.purge(&[only_b.clone(), only_b]).unwrap(), 2);
        let mut left: Vec<String> =
            fs::read_dir(f.stored()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, [T2_SHA, "README"]);
        // A store never written to purges nothing.
        assert_eq!(TableSnapshots::new(f.ckpt.path().join("none")).purge(&[]).unwrap(), 0);
    }

    #[test]
    fn csv_tables_load_in_file_order_and_need_a_schema() {
        let f = fixture(&[("1.csv", "k,n\nx,1\n"), ("2.csv", "k,n\ny,2\nz,3\n")]);
        let v = f.scan_and_snapshot();
        assert_eq!(rows(&f.load(&v, FileFormat::Csv, Some(&schema())).unwrap().1), ["x=1", "y=2", "z=3"]);
        assert_eq!(
            f.load(&v, FileFormat::Csv, None).unwrap_err().to_string(),
            "a csv static table needs a declared `schema` (only parquet can go without)"
        );
        let (_, none) = f.load(&TableVersion::default(), FileFormat::Json, Some(&schema())).unwrap();
        assert_eq!(none.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
    }

    #[test]
    fn a_parquet_table_without_a_schema_is_read_with_its_first_files() {
        let f = fixture(&[]);
        let batch = RecordBatch::try_new(
            schema(),
            vec![Arc::new(StringArray::from(vec!["p"])), Arc::new(Int64Array::from(vec![7]))],
        )
        .unwrap();
        let file = fs::File::create(f.table.path().join("p.parquet")).unwrap();
        let mut w = ::parquet::arrow::ArrowWriter::try_new(file, schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let v = f.scan_and_snapshot();
        assert_eq!(table_schema(f.table.path(), &v, FileFormat::Parquet, None).unwrap(), schema());
        let (s, batches) = f.load(&v, FileFormat::Parquet, None).unwrap();
        assert_eq!(s, schema());
        assert_eq!(rows(&batches), ["p=7"]);
        assert_eq!(
            f.load(&TableVersion::default(), FileFormat::Parquet, None).unwrap_err().to_string(),
            "no schema declared and no parquet file in the static table to infer it from; declare the source's \
             `schema`"
        );
    }

    #[test]
    fn a_bad_record_in_a_table_names_the_table_file_and_line() {
        let f = fixture(&[("users.json", "{\"k\":\"a\",\"n\":1}\n{\"k\":\"b\",\"n\":\"two\"}\n")]);
        let v = f.scan_and_snapshot();
        let err = f.load(&v, FileFormat::Json, Some(&schema())).unwrap_err();
        assert!(err.to_string().starts_with("bad record in users.json line 2: "), "{err}");
        let mut dead = BadRecords::new(OnBadRecord::DeadLetter);
        let (_, batches) =
            f.store.load(&v, FileFormat::Json, Some(&schema()), CsvOptions::default(), &mut dead).unwrap();
        assert_eq!(rows(&batches), ["a=1"]);
        let where_: Vec<(String, Option<u64>)> = dead.take().into_iter().map(|r| (r.origin, r.line)).collect();
        assert_eq!(where_, [("users.json".to_string(), Some(2))]);
    }

    #[test]
    fn refresh_policy_decisions() {
        let minute = 60_000_000;
        let mut never = RefreshPolicy::new(Refresh::Never);
        assert!(never.due(0), "the first batch of a run reads the table");
        never.scanned(0);
        assert!(!never.due(1000 * minute));

        let mut on_change = RefreshPolicy::new(Refresh::OnChange);
        assert!(on_change.due(0));
        on_change.scanned(0);
        assert!(on_change.due(0), "rescanned at every batch");
        assert!(on_change.due(1));

        let mut every = RefreshPolicy::new(Refresh::Every(std::time::Duration::from_secs(600)));
        assert!(every.due(5 * minute));
        every.scanned(5 * minute);
        assert!(!every.due(5 * minute));
        assert!(!every.due(15 * minute - 1));
        assert!(every.due(15 * minute), "exactly the interval later");
        assert!(!every.due(4 * minute), "a clock that went back does not rescan");
        every.scanned(15 * minute);
        assert!(!every.due(20 * minute));
        assert_eq!(Refresh::default(), Refresh::OnChange);
    }
}
