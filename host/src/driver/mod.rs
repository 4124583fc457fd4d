//! The micro-batch loop: the only place that knows triggers and checkpoints.
//!
//! For batch N: plan each source's next range, write `offsets/N` (write-ahead), read the union
//! of the sources and run the operators, write bad records to the dead-letter output, write the
//! sink's output for N (idempotent per batch id), write `commits/N`. On restart a batch with
//! offsets and no commit is run again with the same offsets: with idempotent sinks that is
//! exactly-once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use std::path::Path;

use crate::admin::{AdminRequest, History};
use crate::checkpoint::lock::CheckpointLock;
use crate::checkpoint::{Checkpoint, CommitEntry, OffsetsEntry, PluginVersion};
use crate::deadletter::{BadRecord, BadRecords, DeadLetterOutput};
use crate::format::timestamp::format_timestamp_micros;
use crate::config::{Job, LateRows, OperatorConfig, OutputMode, SinkKind, SourceConfig, StateStoreKind, Trigger};
use crate::operator::aggregate::{self, AggregateOperator};
use crate::operator::dedup::{DedupOperator, DedupWatermark};
use crate::operator::map::row_as_json;
use crate::operator::stateful::entry::Clocks;
use crate::operator::stateful::StatefulOperator;
use crate::operator::MapOperator;
use crate::operator::StateOperatorProgress;
use crate::plugin::{MapperPlugin, Runtime, StatefulPlugin};
use crate::progress::{DurationMs, ProgressReporter, QueryProgress, SinkProgress, SourceProgress};
use crate::sink::foreach::ForeachSink;
use crate::sink::kafka::KafkaSink;
use crate::sink::{console::ConsoleSink, files::FileSink, foreach_batch::ForeachBatchSink, Sink};
use crate::source::union::{Input, Union};
use crate::source::{files::FileSource, kafka::KafkaSource, rate::RateSource, Source};
use crate::state::memory::MemoryStateStore;
use crate::state::rocksdb::RocksDbStateStore;
use crate::state::StateStore;
use crate::watermark::{progress_json, EventTimeStats, Watermark};

/// How long an idle query waits before asking its source again (Spark polls every 10 ms; files
/// rarely arrive that fast, and listing a directory is not free).
const IDLE_POLL: Duration = Duration::from_millis(100);

/// What a run did, for the CLI's last line and for tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    pub batches: u64,
    pub input_rows: u64,
    pub output_rows: u64,
}

/// What one `step` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A batch ran.
    Ran,
    /// Nothing to do now; ask again later.
    Idle,
    /// The trigger has nothing more to do (once, available_now).
    Done,
}

/// Where the run is, between steps.
#[derive(Debug, Default)]
struct Cursor {
    summary: RunSummary,
    next_id: u64,
    /// The watermark of the last planned batch: the next batch's watermark for late rows.
    prev_watermark: i64,
    /// available_now: the clock at start.
    frozen_now: Option<i64>,
    new_batches: u64,
}

/// One operator of the job, in order.
enum Operator {
    Map(MapOperator),
    Dedup { index: usize, op: DedupOperator },
    Aggregate(AggregateOperator),
    Stateful(StatefulOperator),
}

impl Operator {
    /// Whether the operator's state is bounded by the watermark, so that a moving watermark
    /// alone gives it work (eviction, closed windows): then a no-data batch runs.
    fn evicts_by_watermark(&self) -> bool {
        match self {
            Operator::Map(_) => false,
            Operator::Dedup { op, .. } => op.runs_on_watermark(),
            Operator::Aggregate(op) => op.bounded(),
            Operator::Stateful(op) => op.evicts_by_watermark(),
        }
    }
}

fn state_dir(job: &Job, index: usize) -> std::path::PathBuf {
    job.checkpoint.join("state").join(index.to_string())
}

fn open_state_store(job: &Job, index: usize) -> anyhow::Result<Box<dyn StateStore>> {
    let dir = state_dir(job, index);
    Ok(match job.state_store {
        StateStoreKind::Memory => Box::new(MemoryStateStore::open(&dir, job.min_batches_to_retain)?),
        StateStoreKind::RocksDb => Box::new(RocksDbStateStore::open(&dir, job.min_batches_to_retain)?),
    })
}

fn state_progress(name: &str, p: &StateOperatorProgress, custom: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "operatorName": name,
        "numRowsTotal": p.metrics.num_rows_total,
        "numRowsUpdated": p.metrics.num_rows_updated,
        "numRowsRemoved": p.metrics.num_rows_removed,
        "memoryUsedBytes": p.metrics.memory_used_bytes,
        "numRowsDroppedByWatermark": p.num_rows_dropped_by_watermark,
        "customMetrics": custom,
    })
}

/// A job wired up and ready to run: sources, operators, sink, checkpoint.
pub struct Driver {
    job: Job,
    checkpoint: Checkpoint,
    /// Held while the driver lives (a scale-out task's is released when its partition moves).
    _lock: CheckpointLock,
    sources: Union,
    operators: Vec<Operator>,
    sink: Box<dyn Sink>,
    watermark: Option<Watermark>,
    dead_letter: DeadLetterOutput,
    progress: ProgressReporter,
    stop: Arc<AtomicBool>,
    run_id: String,
    last_trigger_start: Option<Instant>,
    cursor: Cursor,
    swaps: Swaps,
}

/// The version a swap replaced, kept while the new one is on probation.
enum Previous {
    Map(MapperPlugin),
    Stateful(StatefulPlugin),
}

impl Previous {
    fn digest(&self) -> &str {
        match self {
            Previous::Map(p) => p.digest(),
            Previous::Stateful(p) => p.digest(),
        }
    }
}

/// Hot swaps of plugins: the admin API's requests, the versions under probation, what
/// happened (for progress records and the API's history).
#[derive(Default)]
struct Swaps {
    requests: Option<std::sync::mpsc::Receiver<AdminRequest>>,
    history: History,
    /// Loads swapped-in versions (the compiled code comes from the cache the API filled).
    runtime: Option<Runtime>,
    /// By operator position: the version a swapped-in plugin replaced, and how many more
    /// successful batches the new one must run before the old one is let go.
    probation: BTreeMap<usize, (Previous, u64)>,
    probation_batches: u64,
    /// Events for the next progress record.
    events: Vec<serde_json::Value>,
    /// How the API names each operator (besides its index): its plugin file's stem in the job.
    names: Vec<String>,
    /// Plugin versions stored in the checkpoint by earlier runs (found at start): retention
    /// deletes them once no kept batch needs them.
    stored_before: std::collections::BTreeSet<String>,
}

impl Driver {
    /// Builds every part of the job and checks that they fit (plugin output schemas, sink
    /// columns) before any data moves.
    pub fn new(job: Job, runtime: &Runtime, progress: ProgressReporter) -> anyhow::Result<Driver> {
        // Before anything touches the checkpoint or the outputs: one writer per checkpoint.
        let mut lock = CheckpointLock::acquire(&job.checkpoint)?;
        let several = job.sources.len() > 1;
        let mut inputs = Vec::with_capacity(job.sources.len());
        for input in &job.sources {
            let source: Box<dyn Source> = match &input.source {
                SourceConfig::Files(cfg) => {
                    let s = FileSource::new(cfg);
                    Box::new(if several { s.with_context(|| format!("starting {}", input.label()))? } else { s? })
                }
                SourceConfig::Rate(cfg) => Box::new(RateSource::new(cfg)),
                SourceConfig::Kafka(cfg) => {
                    let s = KafkaSource::new(cfg);
                    Box::new(if several { s.with_context(|| format!("starting {}", input.label()))? } else { s? })
                }
            };
            inputs.push(Input {
                key: input.name.clone().unwrap_or_else(|| input.field.clone()),
                label: input.label(),
                field: input.field.clone(),
                source,
            });
        }
        // Checked before any state or checkpoint exists: a refused job leaves nothing behind.
        let sources = Union::new(inputs)
            .map_err(|(field, e)| anyhow::anyhow!("job file {}: `{field}`: {e}", job.file.display()))?;
        let watermark = match &job.watermark {
            Some(w) => {
                let delays: Vec<Duration> = job.sources.iter().map(|s| s.watermark_delay.unwrap_or(w.delay)).collect();
                Some(
                    Watermark::new(&w.column, &delays, w.policy, &sources.schema())
                        .map_err(|e| anyhow::anyhow!("job file {}: `watermark.column`: {e}", job.file.display()))?,
                )
            }
            None => None,
        };
        let mut schema: SchemaRef = sources.schema();
        let mut operators = Vec::new();
        let op_names: Vec<String> = job
            .operators
            .iter()
            .map(|op| match op {
                OperatorConfig::Map(m) | OperatorConfig::Stateful(crate::config::StatefulConfig { plugin: m, .. }) => {
                    m.plugin.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
                }
                _ => String::new(),
            })
            .collect();
        for op in &job.operators {
            match op {
                OperatorConfig::Map(m) => {
                    // A version swapped in while the job ran stays in after a restart, unless
                    // the job file now names another plugin than the one it replaced.
                    let path = active_swap(&job.checkpoint, m.index, &m.plugin).unwrap_or_else(|| m.plugin.clone());
                    let plugin = MapperPlugin::load(runtime, &path, &m.config, m.limits, schema.clone())
                        .with_context(|| format!("starting operator[{}] (kind = \"map\")", m.index))?;
                    schema = plugin.output_schema();
                    operators.push(Operator::Map(MapOperator::new(plugin, m.index, m.on_error)));
                }
                OperatorConfig::Stateful(st) => {
                    let m = &st.plugin;
                    let keys_err = |e: String| {
                        anyhow::anyhow!("job file {}: `operator[{}].group_by`: {e}", job.file.display(), m.index)
                    };
                    let key_schema = StatefulOperator::key_schema_of(&schema, &st.group_by).map_err(keys_err)?;
                    let path = active_swap(&job.checkpoint, m.index, &m.plugin).unwrap_or_else(|| m.plugin.clone());
                    let plugin = StatefulPlugin::load(runtime, &path, &m.config, m.limits, &key_schema, &schema)
                        .with_context(|| format!("starting operator[{}] (kind = \"stateful\")", m.index))?;
                    let store = open_state_store(&job, m.index)?;
                    let wm_column = job.watermark.as_ref().map(|w| w.column.as_str());
                    let op = StatefulOperator::new(
                        m.index,
                        plugin,
                        m.on_error,
                        st.timeout,
                        &schema,
                        &st.group_by,
                        wm_column,
                        store,
                        state_dir(&job, m.index),
                    )
                    .map_err(keys_err)?;
                    schema = op.output_schema();
                    operators.push(Operator::Stateful(op));
                }
                OperatorConfig::Dedup(d) => {
                    let field_err = |(field, e): (&str, String)| {
                        anyhow::anyhow!("job file {}: `operator[{}].{field}`: {e}", job.file.display(), d.index)
                    };
                    // The event-time column's delay: the first source's (a union's column carries
                    // its first input's watermark metadata in Spark).
                    let wm = job.watermark.as_ref().map(|w| DedupWatermark {
                        column: w.column.as_str(),
                        delay_micros: job.sources.first().and_then(|s| s.watermark_delay).unwrap_or(w.delay).as_micros()
                            as i64,
                    });
                    // Checked before the state store is opened: a refused job leaves no state.
                    DedupOperator::check(&schema, &d.keys, wm, d.within_watermark).map_err(field_err)?;
                    let store = open_state_store(&job, d.index)?;
                    let op = DedupOperator::new(&schema, &d.keys, wm, d.within_watermark, store).map_err(field_err)?;
                    if !op.bounded() {
                        eprintln!(
                            "warning: operator[{}] (dedup on {}) keeps every key it sees, forever: its state grows without bound. Add a [watermark] and put its column among the keys, or set within_watermark = true, to let old keys expire.",
                            d.index,
                            d.keys.join(", ")
                        );
                    }
                    operators.push(Operator::Dedup { index: d.index, op });
                }
                OperatorConfig::Aggregate(a) => {
                    let field_err = |(field, e): (String, String)| {
                        anyhow::anyhow!("job file {}: `operator[{}].{field}`: {e}", job.file.display(), a.index)
                    };
                    // Checked before the state store is opened: a refused job leaves no state.
                    aggregate::plan(&schema, a).map_err(field_err)?;
                    let store = open_state_store(&job, a.index)?;
                    let wm_column = job.watermark.as_ref().map(|w| w.column.as_str());
                    let op = AggregateOperator::new(&schema, a, job.sink.output_mode, wm_column, store)
                        .map_err(field_err)?;
                    if !op.bounded() && job.sink.output_mode != OutputMode::Complete {
                        eprintln!(
                            "warning: operator[{}] (aggregate) keeps every group it sees, forever: its state grows without bound. Add a window and a [watermark] on the window's column to let old windows leave the state.",
                            a.index
                        );
                    }
                    schema = op.output_schema();
                    operators.push(Operator::Aggregate(op));
                }
            }
        }
        let mut sink: Box<dyn Sink> = match &job.sink.kind {
            SinkKind::Files { format, path, partition_by } => Box::new(
                FileSink::new(*format, path, partition_by, schema.clone())
                    .context("starting the sink (check sink.partition_by)")?
                    .with_min_batches_to_retain(job.min_batches_to_retain),
            ),
            SinkKind::Console { num_rows } => Box::new(ConsoleSink::new(*num_rows)),
            SinkKind::ForeachBatch(f) => Box::new(
                ForeachBatchSink::new(runtime, f, schema.clone())
                    .context("starting the sink (format = \"foreach_batch\")")?
                    .with_min_batches_to_retain(job.min_batches_to_retain),
            ),
            SinkKind::Foreach(f) => Box::new(
                ForeachSink::new(runtime, f, schema.clone()).context("starting the sink (format = \"foreach\")")?,
            ),
            SinkKind::Kafka(k) => {
                KafkaSink::check_columns(k, &schema)
                    .map_err(|(field, e)| anyhow::anyhow!("job file {}: `sink.{field}`: {e}", job.file.display()))?;
                Box::new(KafkaSink::new(k))
            }
        };
        let checkpoint = Checkpoint::open(&job.checkpoint)?;
        lock.keep();
        sink.start(&checkpoint.metadata().id).with_context(|| format!("starting the sink ({})", sink.description()))?;
        let dead_letter = DeadLetterOutput::new(job.dead_letter_dir(crate::checkpoint::layout::dead_letter));
        // A random UUID per start, as Spark's runId (the query id stays across restarts).
        let run_id = crate::random::uuid_v4().context("reading /dev/urandom for the runId")?;
        Ok(Driver {
            job,
            checkpoint,
            _lock: lock,
            sources,
            operators,
            sink,
            watermark,
            dead_letter,
            progress,
            stop: Arc::new(AtomicBool::new(false)),
            run_id,
            last_trigger_start: None,
            cursor: Cursor::default(),
            swaps: Swaps { names: op_names, ..Swaps::default() },
        })
    }

    /// Set it to stop after the batch in progress (Ctrl-C).
    pub fn stop_handle(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Runs until the trigger says stop (once, available_now) or `stop_handle` is set.
    pub fn run(&mut self) -> anyhow::Result<RunSummary> {
        self.start()?;
        let watched: Vec<(usize, std::path::PathBuf)> = self
            .job
            .operators
            .iter()
            .enumerate()
            .filter_map(|(i, op)| match op {
                OperatorConfig::Map(m) | OperatorConfig::Stateful(crate::config::StatefulConfig { plugin: m, .. })
                    if m.watch =>
                {
                    Some((i, m.plugin.clone()))
                }
                _ => None,
            })
            .collect();
        if self.job.admin.is_some() || !watched.is_empty() {
            self.swaps.history = self.initial_history();
            let (tx, rx) = std::sync::mpsc::channel();
            self.swaps.requests = Some(rx);
            self.swaps.probation_batches = self.job.admin.as_ref().map_or(10, |a| a.probation_batches);
            if let Some(admin) = self.job.admin.clone() {
                crate::admin::start(&admin, self.checkpoint.dir(), self.swaps.history.clone(), tx.clone())?;
            }
            for (i, file) in watched {
                crate::admin::watch(i, file, self.checkpoint.dir().to_path_buf(), tx.clone());
            }
        }
        while !self.stop.load(Ordering::Relaxed) {
            self.serve_admin();
            let trigger_start = Instant::now();
            let ran = match self.step()? {
                Step::Ran => true,
                Step::Idle => false,
                Step::Done => break,
            };
            let interval = match self.job.trigger {
                Trigger::ProcessingTime(d) => d,
                _ => Duration::ZERO,
            };
            let wait = if ran { interval } else { interval.max(IDLE_POLL) };
            self.sleep_until(trigger_start + wait);
        }
        self.progress.finish();
        Ok(self.cursor.summary)
    }

    /// Restores the sources and the watermark from the checkpoint and replays a batch that was
    /// planned but not committed (a crash mid-batch). Then `step` runs the next batches.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let mut summary = RunSummary::default();
        self.swaps.stored_before = crate::admin::uploads::stored_digests(self.checkpoint.dir());
        self.store_running_versions()?;
        self.restore_probation();
        // Retention: the ranges of purged batches, folded, then the entries kept (those the
        // folded ranges cover already, left by a crash mid-purge, are skipped).
        let compact = self.checkpoint.sources_compact()?;
        let through = compact.as_ref().map(|c| c.through_batch);
        let planned: Vec<OffsetsEntry> =
            self.checkpoint.offsets()?.into_iter().filter(|e| through.is_none_or(|t| e.batch_id > t)).collect();
        let committed = self.checkpoint.last_commit()?;
        // No-data batches (null ranges) read nothing: the source never planned them.
        let ranges: Vec<serde_json::Value> = compact
            .map(|c| c.ranges)
            .unwrap_or_default()
            .into_iter()
            .chain(planned.iter().filter(|e| !e.source.is_null()).map(|e| e.source.clone()))
            .collect();
        // The watermark of the last planned batch: the next batch's watermark for late rows.
        let mut prev_watermark = planned.last().map_or(0, |e| e.watermark_micros);
        self.sources.restore(&ranges).context("restoring the sources' positions from the checkpoint's offsets log")?;
        if let Some(wm) = self.watermark.as_mut() {
            // After a committed batch: the watermark its commit recorded for the next one, and
            // each source's own. A batch pending replay runs with the one in its offsets entry
            // (set in run_batch), from the sources' watermarks of the commit before it.
            if let Some(last) = committed {
                let commit = self.checkpoint.commit(last)?;
                wm.restore(commit.next_watermark_micros);
                // One source: its own watermark is the global one. Several: each by name; a
                // source the commit does not know starts at the epoch (as every source does in
                // Spark after a restart).
                let single = self.sources.len() == 1;
                let inputs: Vec<i64> = self
                    .sources
                    .keys()
                    .map(|k| match commit.source_watermarks_micros.get(k) {
                        Some(&micros) => micros,
                        None if single => commit.next_watermark_micros,
                        None => 0,
                    })
                    .collect();
                wm.restore_inputs(&inputs);
            }
        }
        let next_id = match (planned.last(), committed) {
            (None, None) => 0,
            (Some(last), c) if c == Some(last.batch_id) => last.batch_id + 1,
            (Some(last), c) if c.map_or(last.batch_id == 0, |c| c + 1 == last.batch_id) => {
                // Planned but never committed: a crash, or a failure (a plugin bug), mid-batch.
                // Run it again on the same offsets. If some output already committed it, with
                // the plugin versions that wrote that output, then back to the current ones;
                // else with the current ones (the job file's, or the last swapped in), as Spark
                // reruns a failed batch with the new code.
                // Only a change of version needs the question (after a plain crash the
                // running versions are the ones that planned the batch).
                let current = self.map_digests();
                let entry = if current == last.plugins
                    || self
                        .sink
                        .committed(last.batch_id)
                        .with_context(|| format!("asking the sink whether batch {} is committed", last.batch_id))?
                {
                    last.clone()
                } else {
                    let entry = OffsetsEntry { plugins: current, ..last.clone() };
                    self.checkpoint.write_offsets(&entry)?;
                    eprintln!(
                        "batch {}: no output has committed it, so it runs again with the job's current plugin versions",
                        entry.batch_id
                    );
                    entry
                };
                let current = self.use_versions_of(&entry)?;
                self.run_batch(&entry, &mut summary)?;
                for (i, version) in current {
                    self.put_version(i, version);
                }
                prev_watermark = entry.watermark_micros;
                entry.batch_id + 1
            }
            (last, c) => {
                let name = |b: Option<u64>| b.map_or("no batch".to_string(), |b| format!("batch {b}"));
                anyhow::bail!(
                    "checkpoint {}: the offsets log ends at {} but the commits log at {}; only the last planned batch may lack a commit, so the checkpoint was changed by hand or by another program. Restore it, or use a new checkpoint directory (the job then reprocesses its input)",
                    self.checkpoint.dir().display(),
                    name(last.map(|l| l.batch_id)),
                    name(c)
                )
            }
        };
        // available_now: everything there at start, then stop; the rate source counts "there" by
        // the clock at start.
        let frozen_now = matches!(self.job.trigger, Trigger::AvailableNow).then(now_micros);
        match self.job.trigger {
            Trigger::AvailableNow => self.sources.snapshot_available_now()?,
            Trigger::Once => self.sources.ignore_trigger_limits(),
            Trigger::ProcessingTime(_) => {}
        }
        self.cursor = Cursor { summary, next_id, prev_watermark, frozen_now, new_batches: 0 };
        Ok(())
    }

    /// Plans the next batch and runs it, if there is one (new data, or a no-data batch due).
    pub fn step(&mut self) -> anyhow::Result<Step> {
        if self.job.trigger == Trigger::Once && self.cursor.new_batches == 1 {
            return Ok(Step::Done);
        }
        let prev_watermark = self.cursor.prev_watermark;
        // A batch when any source has new data; the others add nothing to it.
        let planned_range = match self.sources.plan_next(self.cursor.frozen_now.unwrap_or_else(now_micros))? {
            Some(range) => Some(range),
            // Spark's no-data batch: no new rows, but the watermark moved, so windows close
            // and state expires now rather than when the next row arrives.
            None if self.no_data_batch_due(prev_watermark) => Some(serde_json::Value::Null),
            None => None,
        };
        match planned_range {
            Some(range) => {
                let entry = OffsetsEntry {
                    batch_id: self.cursor.next_id,
                    timestamp_ms: chrono::Utc::now().timestamp_millis(),
                    source: range,
                    watermark_micros: self.watermark.as_ref().map_or(0, Watermark::current),
                    late_watermark_micros: prev_watermark,
                    plugins: self.map_digests(),
                };
                self.checkpoint.write_offsets(&entry)?;
                let mut summary = self.cursor.summary;
                if let Err(e) = self.run_batch(&entry, &mut summary) {
                    // A version on probation that fails goes back to the one it replaced, and
                    // the batch runs again with it.
                    let Some(op) = self.failed_on_probation(&e) else { return Err(e) };
                    let event = self.roll_back(op, &format!("{e:#}"))?;
                    eprintln!("warning: {}", event["message"].as_str().unwrap_or_default());
                    let entry = OffsetsEntry { plugins: self.map_digests(), ..entry.clone() };
                    self.checkpoint.write_offsets(&entry)?;
                    self.run_batch(&entry, &mut summary)?;
                }
                self.end_of_probation_batch();
                self.purge_stored_plugins(entry.batch_id);
                self.purge_logs(entry.batch_id);
                self.cursor.summary = summary;
                self.cursor.prev_watermark = entry.watermark_micros;
                self.cursor.next_id += 1;
                self.cursor.new_batches += 1;
                Ok(Step::Ran)
            }
            None if matches!(self.job.trigger, Trigger::Once | Trigger::AvailableNow) => Ok(Step::Done),
            None => Ok(Step::Idle),
        }
    }

    /// What the run did so far.
    pub fn summary(&self) -> RunSummary {
        self.cursor.summary
    }

    /// Ends the progress output (a run's last step).
    pub fn finish(&mut self) {
        self.progress.finish();
    }

    /// The digest of each map operator's plugin, by position.
    fn map_digests(&self) -> BTreeMap<usize, String> {
        self.operators
            .iter()
            .enumerate()
            .filter_map(|(i, op)| match op {
                Operator::Map(m) => Some((i, m.plugin().digest().to_string())),
                Operator::Stateful(s) => Some((i, s.plugin().digest().to_string())),
                _ => None,
            })
            .collect()
    }

    fn swap_runtime(&mut self) -> anyhow::Result<&Runtime> {
        if self.swaps.runtime.is_none() {
            self.swaps.runtime = Some(Runtime::new().context("starting the WebAssembly runtime for swaps")?);
        }
        Ok(self.swaps.runtime.as_ref().expect("set just above"))
    }

    /// Loads, for a replayed batch, the plugin versions its offsets entry names (stored in the
    /// checkpoint when they first planned a batch); returns the versions they replaced, to put
    /// back after the replay.
    fn use_versions_of(&mut self, entry: &OffsetsEntry) -> anyhow::Result<Vec<(usize, Previous)>> {
        let mut replaced = Vec::new();
        for (&i, digest) in &entry.plugins {
            let current = match self.operators.get(i) {
                Some(Operator::Map(m)) => m.plugin().digest().to_string(),
                Some(Operator::Stateful(s)) => s.plugin().digest().to_string(),
                _ => continue,
            };
            if &current == digest {
                continue;
            }
            let path = crate::admin::stored_plugin(self.checkpoint.dir(), digest);
            let previous = self.load_version(i, &path).map_err(|e| {
                anyhow::anyhow!(
                    "batch {}: loading operator[{i}]'s plugin {digest}, the version that ran it: {e}",
                    entry.batch_id
                )
            })?;
            replaced.push((i, self.put_version(i, previous)));
        }
        Ok(replaced)
    }

    /// Keeps a copy of every plugin version that runs in the checkpoint
    /// (`CHECKPOINT/plugins/<digest>.wasm`), so that a batch it plans can be replayed with it
    /// after the job file names another (a fixed plugin, an upgrade).
    fn store_running_versions(&self) -> anyhow::Result<()> {
        for op in &self.operators {
            let (path, digest) = match op {
                Operator::Map(m) => (m.plugin().path().to_path_buf(), m.plugin().digest().to_string()),
                Operator::Stateful(s) => (s.plugin().path().to_path_buf(), s.plugin().digest().to_string()),
                _ => continue,
            };
            let stored = crate::admin::stored_plugin(self.checkpoint.dir(), &digest);
            if stored.exists() || path == stored {
                continue;
            }
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            if crate::plugin::component_digest(&bytes) != digest {
                anyhow::bail!(
                    "{} changed while the job started (it is no longer the version loaded, {digest}); start the job again",
                    path.display()
                );
            }
            crate::atomic_file::write_atomic(&stored, &bytes)
                .with_context(|| format!("keeping plugin version {digest} in {}", stored.display()))?;
        }
        Ok(())
    }

    /// `CHECKPOINT/plugins/probation.json`: per operator on probation, the version it replaced
    /// and the successful batches still to run, so that a restart keeps the probation (and a
    /// failure after it still rolls back).
    fn persist_probation(&self) {
        let file = self.checkpoint.dir().join("plugins").join("probation.json");
        let state: BTreeMap<String, serde_json::Value> = self
            .swaps
            .probation
            .iter()
            .map(|(i, (p, left))| (i.to_string(), serde_json::json!({ "previous": p.digest(), "left": left })))
            .collect();
        let result = if state.is_empty() {
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        } else {
            crate::atomic_file::write_atomic(&file, &serde_json::to_vec_pretty(&state).expect("plain json"))
        };
        if let Err(e) = result {
            eprintln!("warning: recording the probation of swapped plugins in {}: {e}", file.display());
        }
    }

    /// Puts back the probations a previous run recorded (see `persist_probation`), for the
    /// operators still running the version on probation.
    fn restore_probation(&mut self) {
        let file = self.checkpoint.dir().join("plugins").join("probation.json");
        let Ok(bytes) = std::fs::read(&file) else { return };
        let Ok(state) = serde_json::from_slice::<BTreeMap<String, serde_json::Value>>(&bytes) else {
            eprintln!("warning: {} is damaged; swapped plugins are no longer on probation", file.display());
            return;
        };
        for (i, v) in state {
            let (Ok(i), Some(previous), Some(left)) = (i.parse::<usize>(), v["previous"].as_str(), v["left"].as_u64())
            else {
                continue;
            };
            if i >= self.operators.len() || left == 0 {
                continue;
            }
            let path = crate::admin::stored_plugin(self.checkpoint.dir(), previous);
            match self.load_version(i, &path) {
                Ok(version) => {
                    self.swaps.probation.insert(i, (version, left));
                }
                Err(e) => eprintln!("warning: operator[{i}]: the version before the swap ({previous}) cannot be loaded, so there is no rollback to it: {e}"),
            }
        }
    }

    /// Loads a version of operator `i`'s plugin (map or stateful), with the operator's settings.
    fn load_version(&mut self, i: usize, path: &Path) -> Result<Previous, String> {
        let (config, limits) = match self.job.operators.get(i) {
            Some(OperatorConfig::Map(c)) => (c.config.clone(), c.limits),
            Some(OperatorConfig::Stateful(c)) => (c.plugin.config.clone(), c.plugin.limits),
            _ => return Err(format!("operator[{i}] has no plugin")),
        };
        let schemas = match &self.operators[i] {
            Operator::Map(m) => (None, m.plugin().input_schema()),
            Operator::Stateful(s) => (Some(s.key_schema()), s.input_schema()),
            _ => return Err(format!("operator[{i}] has no plugin")),
        };
        let runtime = self.swap_runtime().map_err(|e| format!("{e:#}"))?;
        Ok(match schemas {
            (None, input) => {
                Previous::Map(MapperPlugin::load(runtime, path, &config, limits, input).map_err(|e| e.to_string())?)
            }
            (Some(key), input) => Previous::Stateful(
                StatefulPlugin::load(runtime, path, &config, limits, &key, &input).map_err(|e| e.to_string())?,
            ),
        })
    }

    /// Puts a version into operator `i`; returns the one it replaces.
    fn put_version(&mut self, i: usize, version: Previous) -> Previous {
        match (&mut self.operators[i], version) {
            (Operator::Map(m), Previous::Map(p)) => Previous::Map(m.replace_plugin(p)),
            (Operator::Stateful(s), Previous::Stateful(p)) => Previous::Stateful(s.replace_plugin(p)),
            _ => unreachable!("a version of the operator's own world"),
        }
    }

    fn output_schema_of(&self, i: usize) -> SchemaRef {
        match &self.operators[i] {
            Operator::Map(m) => m.output_schema(),
            Operator::Stateful(s) => s.output_schema(),
            _ => unreachable!("an operator with a plugin"),
        }
    }

    /// The versions run so far, from the commits log: per operator, each digest with its first
    /// and last batch.
    fn initial_history(&self) -> History {
        let mut out: Vec<serde_json::Value> = Vec::new();
        if let Ok(commits) = self.checkpoint.commits() {
            for entry in commits {
                let c = entry.batch_id;
                for p in entry.plugins {
                    let last = out.iter_mut().rev().find(|h| h["operator"] == p.operator);
                    match last {
                        Some(h) if h["digest"] == p.digest.as_str() => h["last_batch"] = c.into(),
                        _ => out.push(serde_json::json!({
                            "operator": p.operator, "digest": p.digest, "path": p.path,
                            "first_batch": c, "last_batch": c, "event": "ran",
                        })),
                    }
                }
            }
        }
        std::sync::Arc::new(std::sync::Mutex::new(out))
    }

    fn record(&mut self, event: serde_json::Value) {
        self.swaps.history.lock().expect("not poisoned").push(event.clone());
        self.swaps.events.push(event);
    }

    /// The operator position an API name (index or plugin file stem) refers to.
    fn operator_named(&self, name: &str) -> Result<usize, String> {
        let i = match name.parse::<usize>() {
            Ok(i) if i < self.operators.len() => i,
            _ => self.swaps.names.iter().position(|n| n == name).ok_or_else(|| {
                format!(
                    "no operator {name:?}: name one by index (0..{}) or by its plugin file's name ({})",
                    self.operators.len(),
                    self.swaps.names.iter().filter(|n| !n.is_empty()).cloned().collect::<Vec<_>>().join(", ")
                )
            })?,
        };
        match &self.operators[i] {
            Operator::Map(_) | Operator::Stateful(_) => Ok(i),
            _ => Err(format!("operator[{i}] has no plugin to swap")),
        }
    }

    /// Answers the admin API's requests (between two batches).
    fn serve_admin(&mut self) {
        let Some(rx) = self.swaps.requests.as_ref() else { return };
        let requests: Vec<AdminRequest> = rx.try_iter().collect();
        for req in requests {
            match req {
                AdminRequest::Swap { operator, path, digest, reply } => {
                    let _ = reply.send(self.swap(&operator, &path, &digest));
                }
                AdminRequest::Rollback { operator, reply } => {
                    let r = self
                        .operator_named(&operator)
                        .and_then(|i| self.roll_back(i, "asked through the admin API").map_err(|e| format!("{e:#}")));
                    let _ = reply.send(r);
                }
            }
        }
    }

    /// Swaps a new version in, between two batches, if it fits: same world, `init` and
    /// `output-schema` succeed, the same output columns (new nullable columns may be added at
    /// the end).
    fn swap(&mut self, name: &str, path: &Path, digest: &str) -> Result<serde_json::Value, String> {
        let i = self.operator_named(name)?;
        let old_schema = self.output_schema_of(i);
        let (old_digest, old_state_version) = match &self.operators[i] {
            Operator::Map(m) => (m.plugin().digest().to_string(), None),
            Operator::Stateful(s) => (s.plugin().digest().to_string(), Some(s.plugin().state_version())),
            _ => unreachable!("checked"),
        };
        if old_digest == digest {
            return Err(format!("operator[{i}] already runs {digest}"));
        }
        let new = self.load_version(i, path)?;
        let (new_schema, new_state_version) = match &new {
            Previous::Map(p) => (p.output_schema(), None),
            Previous::Stateful(p) => (p.output_schema(), Some(p.state_version())),
        };
        compatible(&old_schema, &new_schema)
            .map_err(|e| format!("operator[{i}]: the new version's output does not fit: {e}"))?;
        let widens = new_schema.fields().len() > old_schema.fields().len();
        if widens && i + 1 != self.operators.len() {
            return Err(format!(
                "operator[{i}]: the new version adds columns, which only the job's last operator may do (the operators after it were set up for the old columns); keep the columns, or add them in the last operator"
            ));
        }
        if widens {
            self.sink
                .set_schema(new_schema.clone())
                .map_err(|e| format!("the sink cannot take the new columns: {e}"))?;
        }
        let old = self.put_version(i, new);
        let from_batch = self.cursor.next_id;
        persist_active_swap(self.checkpoint.dir(), i, digest, &self.job.operators).map_err(|e| e.to_string())?;
        // State in another format cannot go back to the old version once migrated: no probation.
        let migrates = old_state_version != new_state_version;
        let probation = if migrates { 0 } else { self.swaps.probation_batches };
        if probation > 0 {
            self.swaps.probation.insert(i, (old, probation));
        } else {
            self.swaps.probation.remove(&i);
        }
        self.persist_probation();
        let mut event = serde_json::json!({
            "operator": i, "digest": digest, "replaced": old_digest, "first_batch": from_batch,
            "event": "swap", "probation_batches": probation,
        });
        if migrates {
            event["state_version"] = serde_json::json!({ "from": old_state_version, "to": new_state_version });
        }
        self.record(event.clone());
        eprintln!("operator[{i}]: swapped in {digest} from batch {from_batch} (was {old_digest})");
        Ok(event)
    }

    /// Puts back the version operator `i`'s current one replaced.
    fn roll_back(&mut self, i: usize, reason: &str) -> anyhow::Result<serde_json::Value> {
        let Some((previous, _)) = self.swaps.probation.remove(&i) else {
            anyhow::bail!("operator[{i}] has no previous version to roll back to (none was swapped in, its probation ended, or the swap changed its state format)")
        };
        let prev_digest = previous.digest().to_string();
        let failed_schema = self.output_schema_of(i);
        let failed = self.put_version(i, previous);
        self.persist_probation();
        // A swap that added columns (only the last operator may) gave the sink the wider
        // schema: the version rolled back to writes the old columns again.
        let schema = self.output_schema_of(i);
        if schema != failed_schema && i + 1 == self.operators.len() {
            self.sink.set_schema(schema).map_err(|e| {
                anyhow::anyhow!(
                    "operator[{i}]: rolling back: the sink cannot take the previous version's columns again: {e}"
                )
            })?;
        }
        persist_active_swap(self.checkpoint.dir(), i, &prev_digest, &self.job.operators)?;
        let event = serde_json::json!({
            "operator": i, "digest": prev_digest, "replaced": failed.digest(), "first_batch": self.cursor.next_id,
            "event": "rollback", "reason": reason,
            "message": format!("operator[{i}]: rolled back from {} to {prev_digest}: {reason}", failed.digest()),
        });
        self.record(event.clone());
        Ok(event)
    }

    /// The operator on probation whose plugin made the batch fail, if any.
    fn failed_on_probation(&self, e: &anyhow::Error) -> Option<usize> {
        let text = format!("{e:#}");
        self.swaps.probation.keys().copied().find(|&i| match &self.operators[i] {
            Operator::Map(m) => text.contains(&m.plugin().path().display().to_string()),
            Operator::Stateful(s) => text.contains(&s.plugin().path().display().to_string()),
            _ => false,
        })
    }

    /// Every 100 batches (or `min_batches_to_retain`, if fewer) of a job that swaps plugins:
    /// deletes the stored versions that no retained offsets or commits entry, running operator,
    /// probation or active swap names any more (see `admin::uploads`).
    fn purge_stored_plugins(&mut self, batch_id: u64) {
        let every = self.job.min_batches_to_retain.clamp(1, 100);
        if (batch_id + 1) % every != 0
            || (self.swaps.history.lock().expect("not poisoned").is_empty() && self.swaps.stored_before.is_empty())
        {
            return;
        }
        let mut running: std::collections::BTreeSet<String> = self.map_digests().into_values().collect();
        running.extend(self.swaps.probation.values().map(|(p, _)| p.digest().to_string()));
        let (history, before) = (&self.swaps.history, &self.swaps.stored_before);
        if let Err(e) = crate::admin::uploads::purge_among(&self.checkpoint, history, before, &running) {
            eprintln!(
                "warning: deleting plugin versions no batch needs from {}: {e}",
                self.checkpoint.dir().join("plugins").display()
            );
        }
    }

    /// Retention, every `min_batches_to_retain` batches (at least 10, at most 100): the
    /// offsets and commits entries and the dead letters (in the checkpoint) of batches more
    /// than `min_batches_to_retain` behind are deleted, the sources' ranges folded first into
    /// `offsets/<B>.compact`. A failure is a warning: the logs only grow until the next try.
    fn purge_logs(&mut self, batch_id: u64) {
        let keep = self.job.min_batches_to_retain.max(1);
        if (batch_id + 1) % keep.clamp(10, 100) != 0 || batch_id + 1 <= keep {
            return;
        }
        let threshold = batch_id + 1 - keep;
        if let Err(e) = self.purge_logs_before(threshold) {
            eprintln!(
                "warning: deleting the checkpoint entries of batches before {threshold} from {}: {e:#}",
                self.checkpoint.dir().display()
            );
        }
    }

    fn purge_logs_before(&mut self, threshold: u64) -> anyhow::Result<()> {
        let compact = self.checkpoint.sources_compact()?;
        let from = compact.as_ref().map_or(0, |c| c.through_batch + 1);
        if from >= threshold {
            return Ok(());
        }
        let mut ranges = compact.map(|c| c.ranges).unwrap_or_default();
        ranges.extend(
            self.checkpoint
                .offsets()?
                .into_iter()
                .filter(|e| (from..threshold).contains(&e.batch_id) && !e.source.is_null())
                .map(|e| e.source),
        );
        let folded = self.sources.compact(&ranges).context("folding the sources' ranges of old batches")?;
        self.checkpoint.purge_before(threshold, folded)?;
        // Dead letters in the checkpoint go with their batches; a dead_letter_path the job
        // file sets elsewhere is the user's to keep.
        if self.dead_letter.dir().starts_with(self.checkpoint.dir()) {
            self.dead_letter
                .purge_before(threshold)
                .with_context(|| format!("deleting old dead letters in {}", self.dead_letter.dir().display()))?;
        }
        Ok(())
    }

    /// Counts a successful batch against every probation.
    fn end_of_probation_batch(&mut self) {
        if self.swaps.probation.is_empty() {
            return;
        }
        self.swaps.probation.retain(|_, (_, left)| {
            *left -= 1;
            *left > 0
        });
        self.persist_probation();
    }

    /// Whether the watermark has moved past the last batch's and a stateful operator evicts by
    /// it, or a stateful plugin has a processing-time timeout, timer or TTL due now.
    fn no_data_batch_due(&self, last_batch_watermark: i64) -> bool {
        let now = now_micros();
        (self.watermark.as_ref().is_some_and(|wm| wm.current() > last_batch_watermark)
            && self.operators.iter().any(Operator::evicts_by_watermark))
            || self.operators.iter().any(|op| matches!(op, Operator::Stateful(s) if s.processing_deadline_due(now)))
    }

    /// Sleeps in short slices so that a stop request is seen promptly.
    fn sleep_until(&self, deadline: Instant) {
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
        }
    }

    fn run_batch(&mut self, entry: &OffsetsEntry, summary: &mut RunSummary) -> anyhow::Result<()> {
        let id = entry.batch_id;
        let t0 = Instant::now();
        let since_last = self.last_trigger_start.map(|t| t.elapsed());
        self.last_trigger_start = Some(t0);
        let mut bad = BadRecords::new(self.job.on_bad_record);
        // Exactly the ranges of the offsets entry, one per source (null: nothing from it).
        let ranges =
            self.sources.split(&entry.source).with_context(|| format!("batch {id}: reading its offsets entry"))?;
        // The batch runs with the watermark planned into its offsets entry; each source's event
        // times move its own watermark at the end. Spark's two watermarks: rows are late behind
        // the previous batch's; state is evicted (and windows closed) up to this batch's.
        if let Some(wm) = self.watermark.as_mut() {
            wm.restore(entry.watermark_micros);
        }
        let wm_index = self.watermark.as_ref().map(Watermark::index);
        let marks = Marks {
            now: self.watermark.as_ref().map_or(0, Watermark::current),
            late: entry.late_watermark_micros,
            keep_late: self.job.watermark.as_ref().is_some_and(|w| w.late_rows == LateRows::DeadLetter),
        };
        let clocks = Clocks {
            processing: entry.timestamp_ms.saturating_mul(1000),
            watermark: self.watermark.is_some().then_some(marks.now),
        };
        for op in &mut self.operators {
            match op {
                Operator::Map(_) => Ok(()),
                Operator::Dedup { index, op } => {
                    op.begin(id).with_context(|| format!("batch {id}: operator[{index}] (dedup): loading state"))
                }
                Operator::Aggregate(op) => {
                    let index = op.index();
                    op.begin(id).with_context(|| format!("batch {id}: operator[{index}] (aggregate): loading state"))
                }
                Operator::Stateful(op) => {
                    let index = op.index();
                    op.begin(id).with_context(|| format!("batch {id}: operator[{index}] (stateful): loading state"))
                }
            }?;
        }
        // The union, source by source in the job's order, each read in pieces that go through
        // the operators as they come (up to an aggregation, which takes them all first).
        let mut batches: Vec<RecordBatch> = Vec::new();
        let mut rows_per_source = vec![0u64; ranges.len()];
        let mut event_times = vec![EventTimeStats::default(); ranges.len()];
        let mut t_read = Duration::ZERO;
        for (i, range) in ranges.iter().enumerate() {
            if range.is_null() {
                continue;
            }
            let what = format!("batch {id}: reading {}", self.sources.describe_range(i, range));
            for piece in self.sources.pieces(i, range).with_context(|| what.clone())? {
                let t = Instant::now();
                let read = self.sources.read(i, &piece, &mut bad).with_context(|| what.clone())?;
                t_read += t.elapsed();
                for b in &read {
                    rows_per_source[i] += b.num_rows() as u64;
                    if let Some(c) = wm_index {
                        event_times[i].observe(b, c);
                    }
                }
                batches.extend(run_operators(&mut self.operators, 0, id, read, &mut bad, marks)?);
            }
        }
        let num_input_rows: u64 = rows_per_source.iter().sum();
        // Then the stateful operators finish, in order: state committed, an aggregation's result
        // through the operators after it.
        let mut state_operators = Vec::new();
        for k in 0..self.operators.len() {
            match &mut self.operators[k] {
                Operator::Map(_) => {}
                Operator::Dedup { index, op } => {
                    let p = op
                        .end(marks.now)
                        .with_context(|| format!("batch {id}: operator[{index}] (dedup): committing state"))?;
                    let custom = serde_json::json!({ "numDroppedDuplicateRows": op.dropped_duplicates() });
                    state_operators.push(state_progress(op.progress_name(), &p, custom));
                }
                Operator::Aggregate(op) => {
                    let index = op.index();
                    let (result, p) = op
                        .end(marks.now)
                        .with_context(|| format!("batch {id}: operator[{index}] (aggregate): updating state"))?;
                    let custom = serde_json::json!({ "numRowsWithNullEventTime": op.null_event_time_rows() });
                    state_operators.push(state_progress(op.progress_name(), &p, custom));
                    batches.extend(run_operators(&mut self.operators, k + 1, id, vec![result], &mut bad, marks)?);
                }
                Operator::Stateful(op) => {
                    let index = op.index();
                    let (result, p) = op
                        .end(clocks, &mut bad)
                        .with_context(|| format!("batch {id}: operator[{index}] (stateful)"))?;
                    let m = op.metrics();
                    let custom = serde_json::json!({
                        "numTimedOutGroups": m.timed_out_groups,
                        "numExpiredTimers": m.expired_timers,
                        "numRegisteredTimers": m.registered_timers,
                        "numDeletedTimers": m.deleted_timers,
                        "numValuesRemovedDueToTTLExpiry": m.removed_by_ttl,
                        "numStatesMigrated": m.migrated,
                    });
                    state_operators.push(state_progress("flatMapGroupsWithState", &p, custom));
                    batches.extend(run_operators(&mut self.operators, k + 1, id, vec![result], &mut bad, marks)?);
                }
            }
        }
        let dead = bad.take();
        self.dead_letter.write(id, &dead).with_context(|| {
            format!("batch {id}: writing the dead-letter output in {}", self.dead_letter.dir().display())
        })?;
        let t_sink = Instant::now();
        let output_rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        self.sink
            .write_batch(id, &batches)
            .with_context(|| format!("batch {id}: writing to {}", self.sink.description()))?;
        let add_batch = t_sink.elapsed();
        let t_commit = Instant::now();
        let plugins = self
            .operators
            .iter()
            .filter_map(|op| match op {
                Operator::Map(m) => Some(PluginVersion {
                    operator: m.index(),
                    path: m.plugin().path().display().to_string(),
                    digest: m.plugin().digest().to_string(),
                }),
                Operator::Stateful(s) => Some(PluginVersion {
                    operator: s.index(),
                    path: s.plugin().path().display().to_string(),
                    digest: s.plugin().digest().to_string(),
                }),
                Operator::Dedup { .. } | Operator::Aggregate(_) => None,
            })
            .collect();
        let all_event_times = event_times.iter().fold(EventTimeStats::default(), |a, s| a.merge(s));
        let event_time = self.watermark.as_ref().map(|wm| progress_json(wm.current(), &all_event_times));
        let next_watermark_micros = self.watermark.as_mut().map_or(0, |wm| wm.advance(&event_times));
        // With several sources, each one's own watermark, so that a restart resumes it exactly.
        let source_watermarks_micros: BTreeMap<String, i64> = match &self.watermark {
            Some(wm) if self.sources.len() > 1 => {
                self.sources.keys().map(str::to_string).zip(wm.inputs().iter().copied()).collect()
            }
            _ => BTreeMap::new(),
        };
        self.checkpoint.write_commit(&CommitEntry {
            batch_id: id,
            plugins,
            next_watermark_micros,
            source_watermarks_micros,
        })?;
        let commit = t_commit.elapsed();
        let total = t0.elapsed();

        summary.batches += 1;
        summary.input_rows += num_input_rows;
        summary.output_rows += output_rows;
        let secs = total.as_secs_f64().max(1e-9);
        let processed = num_input_rows as f64 / secs;
        let input_rate = since_last.map_or(0.0, |d| num_input_rows as f64 / d.as_secs_f64().max(1e-9));
        let progress = QueryProgress {
            id: self.checkpoint.metadata().id.clone(),
            run_id: self.run_id.clone(),
            name: self.job.name.clone(),
            timestamp: chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now() - total)
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string(),
            batch_id: id,
            batch_duration: total.as_millis() as u64,
            num_input_rows,
            input_rows_per_second: input_rate,
            processed_rows_per_second: processed,
            event_time,
            duration_ms: DurationMs {
                latest_offset: 0,
                wal_commit: 0,
                get_batch: t_read.as_millis() as u64,
                add_batch: add_batch.as_millis() as u64,
                commit_offsets: commit.as_millis() as u64,
                trigger_execution: total.as_millis() as u64,
            },
            num_dead_letter_rows: dead.len() as u64,
            state_operators,
            plugin_events: std::mem::take(&mut self.swaps.events),
            sources: ranges
                .into_iter()
                .zip(&rows_per_source)
                .enumerate()
                .map(|(i, (range, &rows))| SourceProgress {
                    description: self.sources.description(i),
                    start_offset: serde_json::Value::Null,
                    end_offset: range,
                    num_input_rows: rows,
                    input_rows_per_second: since_last.map_or(0.0, |d| rows as f64 / d.as_secs_f64().max(1e-9)),
                    processed_rows_per_second: rows as f64 / secs,
                })
                .collect(),
            sink: SinkProgress { description: self.sink.description(), num_output_rows: output_rows },
        };
        self.progress
            .report(&progress)
            .context("writing the progress record (check the progress file's directory is writable)")?;
        Ok(())
    }
}

/// The watermarks a batch runs with (µs): `now` closes windows and evicts state, rows at or
/// behind `late` are late; `keep_late` keeps late rows in the dead-letter output.
#[derive(Clone, Copy)]
struct Marks {
    now: i64,
    late: i64,
    keep_late: bool,
}

/// Runs `input` through `operators[from..]`, up to and including the first aggregation, which
/// only takes the rows in (its result comes when it ends). Stateful operators must have begun.
fn run_operators(
    operators: &mut [Operator],
    from: usize,
    id: u64,
    input: Vec<RecordBatch>,
    bad: &mut BadRecords,
    marks: Marks,
) -> anyhow::Result<Vec<RecordBatch>> {
    let mut batches = input;
    for op in &mut operators[from..] {
        let mut out: Vec<RecordBatch> = Vec::with_capacity(batches.len());
        match op {
            Operator::Map(m) => {
                for b in batches.iter().filter(|b| b.num_rows() > 0) {
                    out.push(m.process(id, b, bad)?);
                }
            }
            Operator::Dedup { index, op } => {
                for b in batches.iter().filter(|b| b.num_rows() > 0) {
                    let (kept, late) = op
                        .process(b, marks.late)
                        .with_context(|| format!("batch {id}: operator[{index}] (dedup): reading state"))?;
                    if marks.keep_late {
                        keep_late_rows(bad, &format!("operator[{index}] (dedup)"), marks.late, b, &late);
                    }
                    out.push(kept);
                }
            }
            Operator::Aggregate(op) => {
                let index = op.index();
                for b in batches.iter().filter(|b| b.num_rows() > 0) {
                    let late = op
                        .process(b, marks.late)
                        .with_context(|| format!("batch {id}: operator[{index}] (aggregate): aggregating"))?;
                    if marks.keep_late {
                        keep_late_rows(bad, &format!("operator[{index}] (aggregate)"), marks.late, b, &late);
                    }
                }
                return Ok(Vec::new());
            }
            Operator::Stateful(op) => {
                let index = op.index();
                for b in batches.iter().filter(|b| b.num_rows() > 0) {
                    let late = op.process(b, marks.late);
                    if marks.keep_late {
                        keep_late_rows(bad, &format!("operator[{index}] (stateful)"), marks.late, b, &late);
                    }
                }
                return Ok(Vec::new());
            }
        }
        batches = out;
    }
    Ok(batches)
}

/// Keeps the rows a stateful operator dropped as late in the dead-letter output.
fn keep_late_rows(bad: &mut BadRecords, origin: &str, watermark: i64, batch: &RecordBatch, rows: &[u32]) {
    for &r in rows {
        bad.keep(BadRecord {
            origin: origin.to_string(),
            line: None,
            reason: format!("late: event time is behind the watermark {}", format_timestamp_micros(watermark)),
            raw: row_as_json(batch, r as usize),
        });
    }
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A new version's output must keep the old columns (names and types, in order); it may add
/// nullable ones at the end.
fn compatible(old: &SchemaRef, new: &SchemaRef) -> Result<(), String> {
    let (o, n) = (old.fields(), new.fields());
    for (i, f) in o.iter().enumerate() {
        match n.get(i) {
            Some(g) if g.name() == f.name() && g.data_type() == f.data_type() => {}
            Some(g) => {
                return Err(format!(
                    "column {i} is `{}` {} but was `{}` {}",
                    g.name(),
                    crate::schema::type_name(g.data_type()),
                    f.name(),
                    crate::schema::type_name(f.data_type())
                ))
            }
            None => return Err(format!("column `{}` is missing", f.name())),
        }
    }
    if let Some(g) = n.iter().skip(o.len()).find(|g| !g.is_nullable()) {
        return Err(format!("new column `{}` must be nullable (rows written before the swap have none)", g.name()));
    }
    Ok(())
}

/// `CHECKPOINT/plugins/active.json`: per operator, the version swapped in and the job file's
/// plugin it replaced, so that a restart keeps the swap unless the job file changed.
fn persist_active_swap(checkpoint: &Path, i: usize, digest: &str, ops: &[OperatorConfig]) -> anyhow::Result<()> {
    let file = checkpoint.join("plugins").join("active.json");
    let mut active: BTreeMap<String, serde_json::Value> =
        std::fs::read(&file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let m = match ops.get(i) {
        Some(OperatorConfig::Map(m)) | Some(OperatorConfig::Stateful(crate::config::StatefulConfig { plugin: m, .. })) => {
            m
        }
        _ => return Ok(()),
    };
    let job_file_digest = file_digest(&m.plugin)?;
    if job_file_digest == digest {
        active.remove(&i.to_string());
    } else {
        active.insert(i.to_string(), serde_json::json!({ "digest": digest, "job_file_plugin": job_file_digest }));
    }
    std::fs::create_dir_all(file.parent().expect("in plugins/"))?;
    crate::atomic_file::write_atomic(&file, &serde_json::to_vec_pretty(&active)?)?;
    Ok(())
}

fn file_digest(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(crate::plugin::component_digest(&bytes))
}

/// The stored version swapped into operator `i` in an earlier run, if the job file still names
/// the plugin it replaced.
fn active_swap(checkpoint: &Path, i: usize, job_file_plugin: &Path) -> Option<std::path::PathBuf> {
    let file = checkpoint.join("plugins").join("active.json");
    let active: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
    let entry = active.get(&i.to_string())?;
    if entry["job_file_plugin"].as_str()? != file_digest(job_file_plugin).ok()? {
        return None;
    }
    let path = crate::admin::stored_plugin(checkpoint, entry["digest"].as_str()?);
    path.exists().then_some(path)
}
