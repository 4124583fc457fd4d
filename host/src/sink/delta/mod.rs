//! A Delta Lake table as the sink (`[sink] format = "delta"`), exactly once, following the
//! Delta protocol so that any Delta reader (Spark, delta-rs, Trino, DuckDB) reads it.
//!
//! Each batch is one commit, `_delta_log/<version>.json`, that carries a `txn` action
//! (`appId` = the query id, `version` = the batch id), as Spark's Delta sink does: a batch the
//! table's latest `txn` of this query already covers is never written again (a replay after a
//! crash between the table's commit and the checkpoint's). Data files are written first, under
//! names of their own; the commit is created put-if-absent and never overwritten. When another
//! writer took the version first, the sink re-reads the log, checks its `txn` again, and
//! commits on the next version (a MERGE is planned again on the newer table).
//!
//! Output modes: `append` adds the batch's files; `complete` removes every live file and adds
//! the new ones in the same commit (the table is the result table); with `merge_on`, each
//! batch is a MERGE ([`merge`]). `merge_schema = true` lets a batch add nullable columns
//! (a `metaData` action with the wider schema in the batch's commit); without it a new column
//! is refused, naming it. A checkpoint is written every `checkpoint_interval` commits; then
//! log entries older than `log_retention` are deleted (Delta's metadata cleanup).
//!
//! Files of an attempt that crashed before its commit are in no commit: readers never see
//! them. Each attempt records the names of the files it is about to write in
//! `_weir_pending/<query id>/<batch>-<attempt>`; when the batch commits (or its replay finds it committed),
//! the recorded files no version of the table names are deleted, then the records.

/// Checkpoints: the table's state in Parquet every N commits, and `_last_checkpoint`.
pub mod checkpoint;
/// The log's actions, the table state they reconcile to, put-if-absent commits.
pub mod log;
/// MERGE by key, copy on write.
pub mod merge;
/// Per-file statistics of an `add`.
pub mod stats;
/// Data files: partition directories, Parquet, `add` actions.
pub mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde_json::json;

use self::log::{Action, Add, Column, Format, Metadata, Protocol, Remove, TableState, Txn};
use super::{Sink, SinkError};
use crate::config::{DeltaSinkConfig, OutputMode};

/// Test hook (as the file sink's): a process whose environment sets this to a batch id aborts
/// after writing that batch's data files and before its commit.
const CRASH_BEFORE_COMMIT_ENV: &str = "WEIR_TEST_CRASH_BEFORE_COMMIT";
/// Test hook: before its first commit attempt of this batch id, the sink itself creates the
/// version it is about to take, as another writer would (a commit of appId
/// `weir-test-other-writer`), so that the retry on the next version is exercised end to end.
const OTHER_WRITER_ENV: &str = "WEIR_TEST_DELTA_OTHER_WRITER_BEFORE";
/// The data files each attempt is about to write, by query and batch, until the batch commits
/// (`_weir_pending/<query id>/<batch>-<attempt>`; readers and VACUUM ignore a directory whose
/// name starts with `_`).
pub const PENDING_DIR: &str = "_weir_pending";

pub struct DeltaSink {
    dir: PathBuf,
    config: DeltaSinkConfig,
    mode: OutputMode,
    /// The output's columns (widened by a hot swap through `set_schema`).
    schema: SchemaRef,
    /// The partition columns written: the job's `partition_by`, or the table's when the job
    /// names none.
    partition_by: Vec<String>,
    /// The table as of the latest version read.
    table: TableState,
    /// The query id (set by `start`): the `txn` appId.
    app_id: Option<String>,
    /// Random per sink instance, in data file names, with a counter.
    attempt: String,
    files_written: u64,
    /// The data files this instance wrote for the batch in progress (relative paths), as
    /// recorded in `_weir_pending/<batch>-<attempt>`.
    pending: Vec<String>,
    /// The batch before whose commit another writer's commit is staged ([`OTHER_WRITER_ENV`]).
    other_writer_before: Option<u64>,
}

/// A Delta type as a person reads it (`long`, or the JSON of a nested type).
fn type_name(t: &serde_json::Value) -> String {
    t.as_str().map_or_else(|| t.to_string(), str::to_string)
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> SinkError {
    move |source| SinkError::Io { context, source }
}

impl DeltaSink {
    /// Reads the table (if it exists) and checks that the output fits it: partition columns,
    /// column types, new columns only under `merge_schema`, a protocol weir can write.
    pub fn new(config: &DeltaSinkConfig, mode: OutputMode, schema: SchemaRef) -> Result<DeltaSink, SinkError> {
        let table = TableState::load_with(&config.path, config.max_log_file_bytes)?;
        let mut sink = DeltaSink {
            dir: config.path.clone(),
            config: config.clone(),
            mode,
            schema: schema.clone(),
            partition_by: config.partition_by.clone(),
            table,
            app_id: None,
            attempt: crate::checkpoint::random_hex()[..16].to_string(),
            files_written: 0,
            pending: Vec::new(),
            other_writer_before: std::env::var(OTHER_WRITER_ENV).ok().and_then(|v| v.parse().ok()),
        };
        sink.check_table()?;
        sink.check_output(&schema)?;
        Ok(sink)
    }

    fn table_name(&self) -> String {
        format!("the Delta table {}", self.dir.display())
    }

    /// The table's protocol and partitioning, checked against this writer and job.
    fn check_table(&mut self) -> Result<(), SinkError> {
        if let Some(p) = &self.table.protocol {
            if p.min_reader_version > log::READER_VERSION || p.min_writer_version > log::WRITER_VERSION {
                return Err(SinkError::Invalid(format!(
                    "{} needs Delta readers of version {} and writers of version {}{}; weir writes tables of reader version {} and writer version {} (no table features): write to another path",
                    self.table_name(),
                    p.min_reader_version,
                    p.min_writer_version,
                    p.writer_features.as_ref().map(|f| format!(" (features: {})", f.join(", "))).unwrap_or_default(),
                    log::READER_VERSION,
                    log::WRITER_VERSION
                )));
            }
        }
        if let Some(m) = &self.table.metadata {
            if m.format.provider != "parquet" {
                return Err(SinkError::Invalid(format!(
                    "{} stores its data as {:?}; weir writes Parquet tables only",
                    self.table_name(),
                    m.format.provider
                )));
            }
            if self.config.partition_by.is_empty() {
                self.partition_by = m.partition_columns.clone();
            } else if m.partition_columns != self.config.partition_by {
                return Err(SinkError::Invalid(format!(
                    "{} is partitioned by [{}] but the job's sink.partition_by is [{}]: use the table's partition columns (or leave partition_by out), or another path",
                    self.table_name(),
                    m.partition_columns.join(", "),
                    self.config.partition_by.join(", ")
                )));
            }
            let append_only = m.configuration.get("delta.appendOnly").and_then(|v| v.as_deref()) == Some("true");
            if append_only && (self.mode == OutputMode::Complete || !self.config.merge_on.is_empty()) {
                return Err(SinkError::Invalid(format!(
                    "{} is append-only (delta.appendOnly = true): output_mode = \"complete\" and merge_on would remove files from it; append to it, or write to another path",
                    self.table_name()
                )));
            }
        }
        Ok(())
    }

    /// Checks that `schema` can be written: its partition and merge columns, its types, and
    /// the columns the table lacks (allowed under `merge_schema`).
    fn check_output(&self, schema: &SchemaRef) -> Result<(), SinkError> {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let missing = |what: &str, col: &str| {
            SinkError::Invalid(format!(
                "{what} column `{col}` is not in the output (its columns are: {})",
                names.join(", ")
            ))
        };
        for c in &self.partition_by {
            if !names.contains(&c.as_str()) {
                return Err(missing("partition_by", c));
            }
        }
        if names.iter().all(|n| self.partition_by.iter().any(|p| p == n)) {
            return Err(SinkError::Invalid(
                "partition_by lists every column; at least one must be left to write in the data files".into(),
            ));
        }
        for k in &self.config.merge_on {
            if !names.contains(&k.as_str()) {
                return Err(missing("merge_on", k));
            }
            if self.partition_by.contains(k) {
                return Err(SinkError::Invalid(format!(
                    "merge_on column `{k}` is a partition column of {}; weir matches keys in the data files: merge on data columns",
                    self.table_name()
                )));
            }
        }
        self.target_columns(schema).map(|_| ())
    }

    /// The table's columns after this output is written: the table's, with the output's new
    /// columns at the end (`merge_schema`), or the output's for a new table.
    fn target_columns(&self, schema: &SchemaRef) -> Result<Vec<Column>, SinkError> {
        let ours = log::columns_of(schema).map_err(|e| SinkError::Invalid(format!("{}: {e}", self.table_name())))?;
        let Some(meta) = &self.table.metadata else { return Ok(ours) };
        let mut columns = log::parse_schema(&meta.schema_string)
            .map_err(|e| SinkError::Invalid(format!("{}: {e}; the table's metaData is damaged", self.table_name())))?;
        let mut new = Vec::new();
        for c in ours {
            match columns.iter().find(|t| t.name.eq_ignore_ascii_case(&c.name)) {
                Some(t) if t.name != c.name => {
                    return Err(SinkError::Invalid(format!(
                        "the output's column `{}` differs only in case from `{}` of {} (Delta column names ignore case): rename it",
                        c.name,
                        t.name,
                        self.table_name()
                    )))
                }
                Some(t) if t.delta_type != c.delta_type => {
                    return Err(SinkError::Invalid(format!(
                        "column `{}` is {} in {} but {} in the job's output: give it the table's type, or write to another path",
                        c.name,
                        type_name(&t.delta_type),
                        self.table_name(),
                        type_name(&c.delta_type)
                    )))
                }
                Some(_) => {}
                None => new.push(c),
            }
        }
        if !new.is_empty() && !self.config.merge_schema {
            let names: Vec<String> =
                new.iter().map(|c| format!("`{}` ({})", c.name, type_name(&c.delta_type))).collect();
            return Err(SinkError::Invalid(format!(
                "the job's output has columns that {} does not: {}; set merge_schema = true in [sink] to add them to the table (as Spark's mergeSchema option), or leave them out of the output",
                self.table_name(),
                names.join(", ")
            )));
        }
        columns.extend(new);
        Ok(columns)
    }

    /// The `metaData` action this commit needs: a new table's, or the wider schema's.
    fn metadata_action(&self, columns: &[Column], now: i64) -> Option<Metadata> {
        let schema_string = log::schema_string(columns);
        match &self.table.metadata {
            None => Some(Metadata {
                id: log::random_uuid(),
                name: None,
                description: None,
                format: Format { provider: "parquet".into(), options: BTreeMap::new() },
                schema_string,
                partition_columns: self.partition_by.clone(),
                configuration: BTreeMap::new(),
                created_time: Some(now),
            }),
            Some(m) if log::parse_schema(&m.schema_string).ok().as_deref() != Some(columns) => {
                Some(Metadata { schema_string, ..m.clone() })
            }
            Some(_) => None,
        }
    }

    fn app_id(&self) -> Result<String, SinkError> {
        self.app_id.clone().ok_or_else(|| SinkError::Invalid("the Delta sink was not started (no query id)".into()))
    }

    /// Whether the table's `txn` of this query covers `batch_id`.
    fn done(&self, batch_id: u64) -> Result<bool, SinkError> {
        Ok(self.table.txn_version(&self.app_id()?).is_some_and(|v| v >= batch_id as i64))
    }

    fn partition_cols(&self) -> Vec<usize> {
        self.partition_by.iter().filter_map(|c| self.schema.index_of(c).ok()).collect()
    }

    fn next_file_name(&mut self, batch_id: u64, dir: &str) -> String {
        let k = self.files_written;
        self.files_written += 1;
        format!("{dir}part-{batch_id:05}-{k:04}-{}.snappy.parquet", self.attempt)
    }

    /// Writes the rows of `data` (the output's columns) as data files, one per partition.
    fn write_files(&mut self, batch_id: u64, data: &[RecordBatch]) -> Result<Vec<Add>, SinkError> {
        let cols = self.partition_cols();
        let data_schema = writer::data_schema(&self.schema, &cols);
        let parts = writer::split(data, &cols, &data_schema)?;
        let names: Vec<String> = parts
            .iter()
            .map(|part| {
                let dir = writer::partition_dir(&self.partition_by, &part.values);
                self.next_file_name(batch_id, &dir)
            })
            .collect();
        self.record_pending(batch_id, &names)?;
        let mut adds = Vec::new();
        for (part, rel) in parts.iter().zip(&names) {
            let values: BTreeMap<String, Option<String>> =
                self.partition_by.iter().cloned().zip(part.values.iter().cloned()).collect();
            adds.push(writer::write_file(&self.dir, rel, &data_schema, &part.batches, values)?);
        }
        Ok(adds)
    }

    /// A MERGE of `input` (deduplicated) into the table as it is now: the files to remove and
    /// the files to add (rewritten ones and the input's).
    fn plan_merge(
        &mut self,
        batch_id: u64,
        input: &RecordBatch,
        keys: &merge::Keys,
        now: i64,
    ) -> Result<(Vec<Remove>, Vec<Add>), SinkError> {
        let mut removes = Vec::new();
        let mut adds = Vec::new();
        let live: Vec<Add> = self.table.files.values().cloned().collect();
        for file in &live {
            if !keys.may_hold(file) {
                continue;
            }
            match merge::rewrite(&self.dir, file, keys)? {
                merge::Rewrite::Untouched => {}
                merge::Rewrite::Without { schema, batches } => {
                    removes.push(Remove::of(file, now));
                    if !batches.is_empty() {
                        let rel = log::decode_path(&file.path);
                        let dir = rel.rsplit_once('/').map(|(d, _)| format!("{d}/")).unwrap_or_default();
                        let name = self.next_file_name(batch_id, &dir);
                        self.record_pending(batch_id, std::slice::from_ref(&name))?;
                        adds.push(writer::write_file(
                            &self.dir,
                            &name,
                            &schema,
                            &batches,
                            file.partition_values.clone(),
                        )?);
                    }
                }
            }
        }
        adds.extend(self.write_files(batch_id, std::slice::from_ref(input))?);
        Ok((removes, adds))
    }

    /// This query's records: another query writing the table at the same time has its own
    /// (only its own process may resolve them; one process runs a query, by its checkpoint's lock).
    fn pending_dir(&self) -> PathBuf {
        self.dir.join(PENDING_DIR).join(self.app_id.as_deref().unwrap_or("_"))
    }

    fn pending_record(&self, batch_id: u64) -> PathBuf {
        self.pending_dir().join(format!("{batch_id}-{}", self.attempt))
    }

    /// Records, before they are written, the names of data files of `batch_id`: whatever a
    /// crash leaves of them is found without listing the table, and deleted when the batch
    /// commits ([`Self::resolve_pending`]).
    fn record_pending(&mut self, batch_id: u64, names: &[String]) -> Result<(), SinkError> {
        if names.is_empty() {
            return Ok(());
        }
        self.pending.extend(names.iter().cloned());
        let record = self.pending_record(batch_id);
        let text: String = self.pending.iter().map(|n| format!("{n}\n")).collect();
        crate::atomic_file::write_atomic(&record, text.as_bytes())
            .map_err(io(format!("batch {batch_id}: recording the data files it writes in {}", record.display())))
    }

    /// Once batch `batch_id` is in the table: the recorded files of it and earlier batches that
    /// no version of the table holds (a crashed or losing attempt's) are deleted, then the
    /// records. Files the log names (live or removed) are never touched. Failures are warnings:
    /// the batch is committed, and VACUUM deletes what is left.
    fn resolve_pending(&mut self, batch_id: u64) {
        self.pending.clear();
        let dir = self.pending_dir();
        let Ok(entries) = std::fs::read_dir(&dir) else { return };
        for record in entries.flatten() {
            let name = record.file_name().to_string_lossy().into_owned();
            let Some(id) = name.split_once('-').and_then(|(id, _)| id.parse::<u64>().ok()) else { continue };
            if id > batch_id {
                continue;
            }
            let names = std::fs::read_to_string(record.path()).unwrap_or_default();
            for rel in names.lines().filter(|l| !l.is_empty()) {
                let key = log::encode_path(rel);
                let ours = rel.rsplit('/').next().is_some_and(|n| n.starts_with(&format!("part-{id:05}-")));
                if rel.contains("..")
                    || !ours
                    || self.table.files.contains_key(&key)
                    || self.table.tombstones.contains_key(&key)
                {
                    continue;
                }
                let path = self.dir.join(rel);
                let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                for p in [path.clone(), path.with_file_name(format!(".{file_name}.tmp"))] {
                    match std::fs::remove_file(&p) {
                        Ok(()) => {
                            eprintln!("batch {id}: deleted {}, written by an attempt that did not commit", p.display())
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => eprintln!(
                            "warning: batch {id}: deleting {} (an attempt that did not commit wrote it): {e}",
                            p.display()
                        ),
                    }
                }
            }
            if let Err(e) = std::fs::remove_file(record.path()) {
                eprintln!("warning: deleting {}: {e}", record.path().display());
            }
        }
    }

    /// Deletes data files this instance wrote for a commit that did not happen.
    fn discard(&self, adds: &[Add]) {
        for a in adds {
            let _ = std::fs::remove_file(self.dir.join(log::decode_path(&a.path)));
        }
    }

    /// Creates the commit of another writer at `version` (the [`OTHER_WRITER_ENV`] hook).
    fn stage_other_writer(&self, version: u64, batch_id: u64) -> Result<(), SinkError> {
        let actions = [
            Action::CommitInfo(
                json!({"timestamp": log::now_ms(), "operation": "WRITE", "engineInfo": "weir test: another writer"}),
            ),
            Action::Txn(Txn { app_id: "weir-test-other-writer".into(), version: batch_id as i64, last_updated: None }),
        ];
        log::try_commit(&self.dir, version, &actions)?;
        eprintln!("{OTHER_WRITER_ENV}={batch_id}: committed version {version} as another writer");
        Ok(())
    }

    /// After commit `version`: a checkpoint every `checkpoint_interval` commits. A checkpoint
    /// that cannot be written is a warning: the commit stands, and readers read the log.
    fn after_commit(&self, version: u64, now: i64) {
        let every = self.config.checkpoint_interval.max(1);
        if version == 0 || !version.is_multiple_of(every) {
            return;
        }
        if let Err(e) = checkpoint::write(&self.dir, &self.table, now) {
            eprintln!("warning: {}: writing the checkpoint of version {version}: {e}", self.table_name());
            return;
        }
        let keep_after = log::now_ms() - self.config.log_retention.as_millis().min(i64::MAX as u128) as i64;
        if let Err(e) = checkpoint::clean_up(&self.dir, keep_after) {
            eprintln!("warning: {}: deleting log entries older than log_retention: {e}", self.table_name());
        }
    }
}

impl Sink for DeltaSink {
    fn description(&self) -> String {
        format!("DeltaSink[{}]", self.dir.display())
    }

    fn start(&mut self, query_id: &str) -> Result<(), SinkError> {
        self.app_id = Some(query_id.to_string());
        Ok(())
    }

    fn set_schema(&mut self, schema: SchemaRef) -> Result<(), SinkError> {
        self.table.refresh(&self.dir)?;
        self.check_output(&schema)?;
        self.schema = schema;
        Ok(())
    }

    fn committed(&mut self, batch_id: u64) -> Result<bool, SinkError> {
        self.table.refresh(&self.dir)?;
        self.done(batch_id)
    }

    fn write_batch(&mut self, batch_id: u64, data: &[RecordBatch]) -> Result<u64, SinkError> {
        let app_id = self.app_id()?;
        self.table.refresh(&self.dir)?;
        if self.done(batch_id)? {
            // A replay of a committed batch: what its crashed attempts left goes.
            self.resolve_pending(batch_id);
            return Ok(0);
        }
        // Append and complete: the files do not depend on the table's state, so they are
        // written once, whatever the retries. A MERGE is planned on each version tried.
        let merging = !self.config.merge_on.is_empty();
        let (rows, files, merge_input) = if merging {
            let (input, keys) = merge::last_row_per_key(&self.schema, data, &self.config.merge_on)?;
            (input.num_rows() as u64, Vec::new(), Some((input, keys)))
        } else {
            let rows: u64 = data.iter().map(|b| b.num_rows() as u64).sum();
            (rows, self.write_files(batch_id, data)?, None)
        };
        for attempt in 0..=self.config.max_commit_retries {
            self.check_table()?;
            let columns = self.target_columns(&self.schema)?;
            let now = log::now_ms();
            let version = self.table.version.map_or(0, |v| v + 1);
            let (removes, adds) = match &merge_input {
                Some((input, keys)) => self.plan_merge(batch_id, input, keys, now)?,
                None if self.mode == OutputMode::Complete => {
                    (self.table.files.values().map(|f| Remove::of(f, now)).collect(), files.clone())
                }
                None => (Vec::new(), files.clone()),
            };
            let operation = if merging { "MERGE" } else { "STREAMING UPDATE" };
            let mode = match self.mode {
                OutputMode::Append => "Append",
                OutputMode::Update => "Update",
                OutputMode::Complete => "Complete",
            };
            let mut actions = vec![Action::CommitInfo(json!({
                "timestamp": now,
                "operation": operation,
                "operationParameters": {"outputMode": mode, "queryId": app_id, "epochId": batch_id.to_string()},
                "readVersion": self.table.version,
                "isBlindAppend": !merging && self.mode == OutputMode::Append,
                "engineInfo": format!("weir/{}", env!("CARGO_PKG_VERSION")),
            }))];
            if self.table.protocol.is_none() {
                actions.push(Action::Protocol(Protocol {
                    min_reader_version: log::READER_VERSION,
                    min_writer_version: log::WRITER_VERSION,
                    reader_features: None,
                    writer_features: None,
                }));
            }
            if let Some(m) = self.metadata_action(&columns, now) {
                actions.push(Action::MetaData(m));
            }
            actions.push(Action::Txn(Txn {
                app_id: app_id.clone(),
                version: batch_id as i64,
                last_updated: Some(now),
            }));
            actions.extend(removes.into_iter().map(Action::Remove));
            actions.extend(adds.iter().cloned().map(Action::Add));
            if std::env::var(CRASH_BEFORE_COMMIT_ENV).is_ok_and(|v| v == batch_id.to_string()) {
                eprintln!("{CRASH_BEFORE_COMMIT_ENV}={batch_id}: aborting before the commit of batch {batch_id}");
                std::process::abort();
            }
            if attempt == 0 && self.other_writer_before == Some(batch_id) {
                self.stage_other_writer(version, batch_id)?;
            }
            if log::try_commit(&self.dir, version, &actions)? {
                for a in actions {
                    self.table.apply(a);
                }
                self.table.version = Some(version);
                self.resolve_pending(batch_id);
                self.after_commit(version, now);
                return Ok(rows);
            }
            eprintln!(
                "{}: version {version} was committed by another writer first; re-reading the log and committing batch {batch_id} on a later version",
                self.table_name()
            );
            if merging {
                self.discard(&adds);
            }
            self.table.refresh(&self.dir)?;
            if self.done(batch_id)? {
                self.discard(&files);
                self.resolve_pending(batch_id);
                return Ok(0);
            }
        }
        self.discard(&files);
        Err(SinkError::Invalid(format!(
            "{}: batch {batch_id} lost the race for a version {} times in a row to other writers; nothing of it was committed. Raise sink.max_commit_retries, or give this job the table alone; a restart retries the batch",
            self.table_name(),
            self.config.max_commit_retries + 1
        )))
    }
}

/// Checks the job's `partition_by` and `merge_on` against the output's columns, before
/// anything is opened: `Err((field, message))` names the field of `[sink]`.
pub fn check_columns(config: &DeltaSinkConfig, schema: &SchemaRef) -> Result<(), (&'static str, String)> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let missing = |col: &str| format!("column `{col}` is not in the output (its columns are: {})", names.join(", "));
    if let Some(c) = config.partition_by.iter().find(|c| !names.contains(&c.as_str())) {
        return Err(("partition_by", missing(c)));
    }
    if let Some(c) = config.merge_on.iter().find(|c| !names.contains(&c.as_str())) {
        return Err(("merge_on", missing(c)));
    }
    if !config.partition_by.is_empty() && names.iter().all(|n| config.partition_by.iter().any(|p| p == n)) {
        return Err((
            "partition_by",
            "lists every column; at least one must be left to write in the data files".into(),
        ));
    }
    Ok(())
}

/// Whether the table at `table` has a `txn` of `app_id` covering `batch_id`, read from its log
/// without a schema: a foreach_batch plugin's delta output, not made yet (it is made at its
/// first emit), answers a restart's "is batch N committed" with this. No table: no.
pub fn is_committed(table: &Path, app_id: &str, batch_id: u64) -> Result<bool, SinkError> {
    Ok(TableState::load(table)?.txn_version(app_id).is_some_and(|v| v >= batch_id as i64))
}

/// The path of a table's data file, from its `add` (for tests and tools).
pub fn file_path(table: &Path, add: &Add) -> PathBuf {
    table.join(log::decode_path(&add.path))
}

/// Reads the commits a table has, for `weir` tools and tests: the state at its latest version.
pub fn read_table(table: &Path) -> Result<TableState, SinkError> {
    if !table.join(log::LOG_DIR).is_dir() {
        return Err(io(format!("reading {}", table.join(log::LOG_DIR).display()))(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "not a Delta table (no _delta_log)",
        )));
    }
    TableState::load(table)
}

#[cfg(test)]
mod tests;
