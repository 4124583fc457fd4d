//! The named outputs a sink plugin (`foreach_batch`, `foreach`) emits to: each a files, console,
//! Kafka, Delta or PostgreSQL sink, made when the plugin first emits to it (its schema is the
//! emitted batch's); every later emit to it must have the same columns, except that a delta or
//! postgres output takes new columns as those sinks take a hot swap's (`merge_schema`,
//! `create_table`).
//!
//! Each output writes write id N at most once, by its own record: a file output's log, a Kafka
//! output's markers, a delta output's `txn` (appId `<query id>-<output name>`), a postgres
//! output's progress row (query id `<query id>-<output name>`). So two outputs of one job, or of
//! two jobs, writing the same table never take each other's batches for their own.

use std::path::PathBuf;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::console::ConsoleSink;
use super::delta::DeltaSink;
use super::files::FileSink;
#[cfg(feature = "kafka")]
use super::kafka::KafkaSink;
/// Without the `kafka` feature there are no Kafka outputs (a job with one is refused when checked).
#[cfg(not(feature = "kafka"))]
type KafkaSink = std::convert::Infallible;
use super::postgres::PostgresSink;
use super::{Sink, SinkError};
use crate::config::{NamedOutput, OnBadRecord, OutputMode, SinkKind};

struct Output {
    name: String,
    kind: SinkKind,
    sink: Option<(Box<dyn Sink>, SchemaRef)>,
    /// A Kafka output, connected at start.
    kafka: Option<KafkaSink>,
}

pub struct Outputs {
    outputs: Vec<Output>,
    /// Who emits, for messages (`plugin PATH`).
    emitter: String,
    /// The query's id (set when the sink starts): a Kafka output's transactional id and default
    /// marker topic, a delta output's `txn` appId and a postgres output's progress row derive
    /// from it and the output's name ([`output_id`]).
    query_id: Option<String>,
    /// Writes kept readable in each file output's log (the job's `min_batches_to_retain` for a
    /// foreach_batch sink, whose write ids are its batch ids; `None`: the file sink's default).
    min_batches_to_retain: Option<u64>,
    /// The job's dead-letter directory and `on_bad_record`: a postgres output under
    /// `on_bad_record = "dead_letter"` (its own, else the job's) writes the rows its table
    /// refuses to `DIR/output-<name>/batch-<write id>.sink.jsonl`.
    dead_letter_dir: PathBuf,
    on_bad_record: OnBadRecord,
    /// Rows the outputs' targets refused and sent to the dead letters since [`Outputs::new_batch`].
    dead_letter_rows: u64,
}

/// The identity of output `name` of query `query_id` in its target: a Kafka output's
/// transactional id, a delta output's `txn` appId, a postgres output's progress-table query id.
pub fn output_id(query_id: &str, name: &str) -> String {
    format!("{query_id}-{name}")
}

/// `output "NAME": <message>`, where a sink's message that points at its fields in `[sink]`
/// points at the output's `[[sink.output]]` instead.
fn in_its_output(name: &str, message: &str) -> String {
    format!("output {name:?}: {}", message.replace(" in [sink]", &format!(" in the [[sink.output]] named {name:?}")))
}

/// A postgres output's own directory of dead letters, under the job's.
fn dead_letter_subdir(dir: &std::path::Path, name: &str) -> PathBuf {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    dir.join(format!("output-{safe}"))
}

impl Outputs {
    pub fn new(declared: &[NamedOutput], emitter: String) -> Outputs {
        let outputs = declared
            .iter()
            .map(|o| Output { name: o.name.clone(), kind: o.kind.clone(), sink: None, kafka: None })
            .collect();
        Outputs {
            outputs,
            emitter,
            query_id: None,
            min_batches_to_retain: None,
            dead_letter_dir: PathBuf::from("dead_letter"),
            on_bad_record: OnBadRecord::Fail,
            dead_letter_rows: 0,
        }
    }

    /// Keeps `n` writes readable in each file output's log, as the job keeps `n` batches.
    pub fn with_min_batches_to_retain(mut self, n: u64) -> Outputs {
        self.min_batches_to_retain = Some(n);
        self
    }

    /// The job's dead-letter directory and `on_bad_record`, for postgres outputs.
    pub fn with_dead_letters(mut self, dir: PathBuf, on_bad_record: OnBadRecord) -> Outputs {
        self.dead_letter_dir = dir;
        self.on_bad_record = on_bad_record;
        self
    }

    /// Records the query's id, and connects the Kafka outputs now (fencing any earlier producer
    /// of theirs) rather than at their first emit. Delta and postgres outputs are made at their
    /// first emit (a postgres output's `password_env` is checked with the job, in plan::sink).
    pub fn start(&mut self, query_id: &str) -> Result<(), SinkError> {
        self.query_id = Some(query_id.to_string());
        #[cfg(feature = "kafka")]
        for out in &mut self.outputs {
            if let SinkKind::Kafka(k) = &out.kind {
                let mut sink = KafkaSink::new(k);
                sink.start(&output_id(query_id, &out.name))
                    .map_err(|e| SinkError::Invalid(format!("output {:?}: {e}", out.name)))?;
                // Its schema is fixed by the first emit; a Kafka output takes any columns.
                out.kafka = Some(sink);
            }
        }
        Ok(())
    }

    /// Whether any output has committed write `id` (file outputs: their log; Kafka outputs:
    /// their markers; delta outputs: their table's `txn`; postgres outputs: their progress
    /// row). Outputs made lazily on the first emit are looked at in their targets.
    pub fn committed(&mut self, id: u64) -> Result<bool, SinkError> {
        let query_id = self.query_id.clone();
        for out in &mut self.outputs {
            let own_id = query_id.as_deref().map(|q| output_id(q, &out.name));
            let in_output = |e: SinkError| SinkError::Invalid(format!("output {:?}: {e}", out.name));
            let done = match (&mut out.sink, &out.kind, &mut out.kafka) {
                (Some((sink, _)), _, _) => sink.committed(id)?,
                (None, SinkKind::Files { path, .. }, _) => super::files::is_committed(path, id)?,
                #[cfg(feature = "kafka")]
                (None, SinkKind::Kafka(_), Some(kafka)) => kafka.committed(id)?,
                (None, SinkKind::Delta(d), _) => match &own_id {
                    Some(app_id) => super::delta::is_committed(&d.path, app_id, id).map_err(in_output)?,
                    None => false,
                },
                (None, SinkKind::Postgres(p), _) => match &own_id {
                    Some(q) => super::postgres::is_committed(p, q, id).map_err(in_output)?,
                    None => false,
                },
                _ => false,
            };
            if done {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub fn names(&self) -> Vec<String> {
        self.outputs.iter().map(|o| o.name.clone()).collect()
    }

    /// A new batch: [`Outputs::dead_letter_rows`] counts from zero.
    pub fn new_batch(&mut self) {
        self.dead_letter_rows = 0;
    }

    /// Rows the postgres outputs' tables refused (sent to the dead letters) since
    /// [`Outputs::new_batch`].
    pub fn dead_letter_rows(&self) -> u64 {
        self.dead_letter_rows
    }

    /// Writes `emitted` (output name, batch), output by output, as write `id` of each output
    /// (idempotent per id). File, console and Kafka outputs made earlier get the write even when
    /// nothing was emitted to them, so their log has every id; a delta or postgres output
    /// writes nothing then (no empty version, no transaction: their record of the last id
    /// covers the ids before it). Returns the rows written.
    pub fn write(&mut self, id: u64, batch_label: u64, emitted: &[(String, RecordBatch)]) -> Result<u64, SinkError> {
        let mut written = 0;
        for out in &mut self.outputs {
            let batches: Vec<&RecordBatch> = emitted.iter().filter(|(n, _)| n == &out.name).map(|(_, b)| b).collect();
            let own_record = matches!(out.kind, SinkKind::Delta(_) | SinkKind::Postgres(_));
            if own_record && batches.is_empty() {
                continue;
            }
            let cannot_write = |field: &str, e: String| {
                SinkError::Invalid(format!(
                    "batch {batch_label}: {} emitted to output {:?} rows it cannot write: `{field}` {e}",
                    self.emitter, out.name
                ))
            };
            if out.sink.is_none() {
                let Some(first) = batches.first() else { continue };
                let schema = first.schema();
                let own_id = || {
                    self.query_id.as_deref().map(|q| output_id(q, &out.name)).ok_or_else(|| {
                        SinkError::Invalid(format!("output {:?}: the sink was not started (no query id)", out.name))
                    })
                };
                let sink: Box<dyn Sink> = match &out.kind {
                    SinkKind::Files { format, path, partition_by } => {
                        let mut sink = FileSink::new(*format, path, partition_by, schema.clone())
                            .map_err(|e| SinkError::Invalid(format!("output {:?}: {e}", out.name)))?;
                        if let Some(n) = self.min_batches_to_retain {
                            sink = sink.with_min_batches_to_retain(n);
                        }
                        // Its log entries name the query, so another job's are never taken
                        // for this one's.
                        if let Some(id) = &self.query_id {
                            sink.start(id)?;
                        }
                        Box::new(sink)
                    }
                    SinkKind::Console { num_rows } => Box::new(ConsoleSink::new(*num_rows)),
                    #[cfg(feature = "kafka")]
                    SinkKind::Kafka(k) => {
                        KafkaSink::check_columns(k, &schema).map_err(|(field, e)| cannot_write(field, e))?;
                        Box::new(out.kafka.take().expect("kafka outputs connect when the sink starts"))
                    }
                    SinkKind::Delta(d) => {
                        super::delta::check_columns(d, &schema).map_err(|(field, e)| cannot_write(field, e))?;
                        // Each emit is appended (or MERGEd, with merge_on).
                        let mut sink = DeltaSink::new(d, OutputMode::Append, schema.clone())
                            .map_err(|e| SinkError::Invalid(in_its_output(&out.name, &e.to_string())))?;
                        sink.start(&own_id()?)?;
                        Box::new(sink)
                    }
                    SinkKind::Postgres(p) => {
                        let mut sink = PostgresSink::new(
                            p,
                            p.on_bad_record.unwrap_or(self.on_bad_record),
                            schema.clone(),
                            dead_letter_subdir(&self.dead_letter_dir, &out.name),
                        )
                        .map_err(|(field, e)| cannot_write(field, e))?;
                        sink.start(&own_id()?)
                            .map_err(|e| SinkError::Invalid(in_its_output(&out.name, &e.to_string())))?;
                        Box::new(sink)
                    }
                    #[cfg(not(feature = "kafka"))]
                    SinkKind::Kafka(_) => {
                        return Err(SinkError::Invalid(format!(
                            "output {:?} {}",
                            out.name,
                            crate::features::not_built("kafka")
                        )))
                    }
                    SinkKind::ForeachBatch(_) | SinkKind::Foreach(_) => {
                        unreachable!("outputs are files, console, kafka, delta or postgres (checked with the job)")
                    }
                };
                out.sink = Some((sink, schema));
            }
            let (sink, schema) = out.sink.as_mut().expect("made just above");
            // A delta or postgres output takes other columns as its sink takes a hot swap's:
            // the sink checks them against its table (merge_schema, create_table).
            if let Some(first) = batches.first().filter(|b| own_record && !same_columns(&b.schema(), schema)) {
                sink.set_schema(first.schema()).map_err(|e| {
                    SinkError::Invalid(format!("batch {batch_label}: {}", in_its_output(&out.name, &e.to_string())))
                })?;
                *schema = first.schema();
            }
            if let Some(b) = batches.iter().find(|b| !same_columns(&b.schema(), schema)) {
                return Err(SinkError::Invalid(format!(
                    "batch {batch_label}: {} emitted to output {:?} the columns ({}), but its first batch had ({}); one output takes one schema: emit the same columns, or declare another output",
                    self.emitter,
                    out.name,
                    columns(&b.schema()),
                    columns(schema)
                )));
            }
            // The first batch's schema for all: nullability may differ between emits.
            let batches: Vec<RecordBatch> = batches
                .into_iter()
                .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()).expect("same columns"))
                .collect();
            written += sink.write_batch(id, &batches).map_err(|e| match e {
                SinkError::Io { context, source } => {
                    SinkError::Io { context: format!("output {:?}: {context}", out.name), source }
                }
                other => SinkError::Invalid(in_its_output(&out.name, &other.to_string())),
            })?;
            self.dead_letter_rows += sink.dead_letter_rows();
        }
        Ok(written)
    }
}

fn same_columns(a: &SchemaRef, b: &SchemaRef) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields().iter().zip(b.fields()).all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

fn columns(s: &SchemaRef) -> String {
    s.fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), crate::schema::type_name(f.data_type())))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;

    use super::*;
    use crate::config::FileFormat;

    fn outputs(dir: &std::path::Path, query: &str) -> Outputs {
        let declared = [NamedOutput {
            name: "o".into(),
            kind: SinkKind::Files { format: FileFormat::Json, path: dir.to_path_buf(), partition_by: vec![] },
        }];
        let mut o = Outputs::new(&declared, "plugin p.wasm".into());
        o.start(query).unwrap();
        o
    }

    fn emit(v: i64) -> Vec<(String, RecordBatch)> {
        let schema = crate::schema::parse_ddl("v bigint").unwrap();
        vec![("o".into(), RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![v]))]).unwrap())]
    }

    /// Two jobs whose foreach_batch outputs share a directory: the second neither overwrites
    /// the first's files nor takes its log entry for its own write.
    #[test]
    fn a_file_output_does_not_skip_a_write_another_query_committed() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(outputs(dir.path(), "query-a").write(0, 0, &emit(1)).unwrap(), 1);
        let e = outputs(dir.path(), "query-b").write(0, 0, &emit(2)).unwrap_err().to_string();
        assert!(
            e.contains("output \"o\"")
                && e.contains(
                    "already committed in this output directory by another query (id query-a; this one is query-b)"
                ),
            "{e}"
        );
        // The same query's replay finds its own entry: nothing written twice.
        assert_eq!(outputs(dir.path(), "query-a").write(0, 0, &emit(1)).unwrap(), 0);
    }

    /// A foreach_batch sink's file outputs keep the job's `min_batches_to_retain`, not the
    /// file sink's default: after 40 writes with 5 kept, the log holds compact files and at
    /// most the writes since the last compaction that keeps 5 readable.
    #[test]
    fn file_outputs_keep_the_jobs_min_batches_to_retain() {
        let dir = tempfile::tempdir().unwrap();
        let declared = [NamedOutput {
            name: "o".into(),
            kind: SinkKind::Files { format: FileFormat::Json, path: dir.path().to_path_buf(), partition_by: vec![] },
        }];
        let mut o = Outputs::new(&declared, "plugin p.wasm".into()).with_min_batches_to_retain(5);
        o.start("q").unwrap();
        for id in 0..40 {
            o.write(id, id, &emit(id as i64)).unwrap();
        }
        let log = std::fs::read_dir(dir.path().join(super::super::files::LOG_DIR)).unwrap().count();
        assert!(log < 20, "{log} log files: old entries were not purged (the default keeps 100)");
        let files = super::super::files::committed_files(dir.path()).unwrap();
        assert_eq!(files.len(), 40, "every write stays readable through the compact files");
    }

    fn delta_outputs(table: &std::path::Path, names: &[&str], query: &str) -> Outputs {
        let config = crate::config::DeltaSinkConfig {
            path: table.to_path_buf(),
            partition_by: vec![],
            merge_schema: false,
            merge_on: vec![],
            checkpoint_interval: 10,
            max_commit_retries: 10,
            log_retention: std::time::Duration::from_secs(3600),
            max_log_file_bytes: crate::config::DEFAULT_DELTA_MAX_LOG_FILE_BYTES,
        };
        let declared: Vec<NamedOutput> =
            names.iter().map(|n| NamedOutput { name: n.to_string(), kind: SinkKind::Delta(config.clone()) }).collect();
        let mut o = Outputs::new(&declared, "plugin p.wasm".into());
        o.start(query).unwrap();
        o
    }

    fn emit_to(names: &[&str], v: i64) -> Vec<(String, RecordBatch)> {
        names.iter().map(|n| (n.to_string(), emit(v).remove(0).1)).collect()
    }

    /// Two delta outputs of one table: each has its own `txn` (`<query id>-<name>`), so each
    /// commits every write once, and neither takes the other's for its own.
    #[test]
    fn two_delta_outputs_of_one_table_each_commit_every_write_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = delta_outputs(dir.path(), &["a", "b"], "q");
        assert_eq!(o.write(0, 0, &emit_to(&["a", "b"], 1)).unwrap(), 2);
        assert_eq!(o.write(1, 1, &emit_to(&["a", "b"], 2)).unwrap(), 2);
        // A replay of write 1 (the process restarted): nothing twice.
        let mut again = delta_outputs(dir.path(), &["a", "b"], "q");
        assert_eq!(again.write(1, 1, &emit_to(&["a", "b"], 2)).unwrap(), 0);
        let table = crate::sink::delta::read_table(dir.path()).unwrap();
        assert_eq!(
            (table.txn_version("q-a"), table.txn_version("q-b"), table.txn_version("q")),
            (Some(1), Some(1), None)
        );
        assert_eq!(table.version, Some(3), "four commits: two writes of two outputs");
    }

    /// A restart asks an output not made yet (it is made at its first emit) whether a write is
    /// committed: a delta output reads its table's `txn` of this query and output.
    #[test]
    fn a_delta_output_not_made_yet_reads_its_txn_for_committed() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!delta_outputs(dir.path(), &["a"], "q").committed(0).unwrap(), "no table yet");
        delta_outputs(dir.path(), &["a"], "q").write(4, 4, &emit_to(&["a"], 1)).unwrap();
        let mut fresh = delta_outputs(dir.path(), &["a"], "q");
        assert_eq!((fresh.committed(4).unwrap(), fresh.committed(5).unwrap()), (true, false));
        assert!(!delta_outputs(dir.path(), &["b"], "q").committed(4).unwrap(), "another output's txn");
        assert!(!delta_outputs(dir.path(), &["a"], "other").committed(4).unwrap(), "another query's txn");
        // A write that emitted nothing to it adds no version.
        fresh.write(5, 5, &[]).unwrap();
        assert_eq!(crate::sink::delta::read_table(dir.path()).unwrap().version, Some(0));
    }
}
