//! The micro-batch loop: the only place that knows triggers and checkpoints. It runs the
//! planned graph (sources unioned → operators in order → sink) over one [`Operator`] trait and
//! never knows which kinds of operator, source or sink exist.
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

use crate::checkpoint::lock::CheckpointLock;
use crate::checkpoint::{layout, Checkpoint, OffsetsEntry};
use crate::config::{Job, StateStoreKind, Trigger};
use crate::deadletter::DeadLetterOutput;
use crate::plan::{open_sink, Graph};
use crate::plugin::Runtime;
use crate::progress::ProgressReporter;
use crate::sink::Sink;
use crate::source::union::Union;
use crate::state::memory::MemoryStateStore;
#[cfg(feature = "rocksdb")]
use crate::state::rocksdb::RocksDbStateStore;
use crate::state::StateStore;
use crate::swap::{self, Swaps};
use crate::watermark::Watermark;

use self::operator::Operator;

/// One batch through the graph: read, operators, dead letters, sink, commit, progress.
mod batch;
/// The continuous trigger: records through the graph as they arrive, an epoch per interval.
mod continuous;
/// The interface every operator is run through.
pub mod operator;

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

/// How long planning the next batch took (ms), for its progress record (none for a replay,
/// planned by an earlier run).
#[derive(Debug, Default, Clone, Copy)]
struct PlanTimes {
    latest_offset: u64,
    query_planning: u64,
    wal_commit: u64,
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
    /// The batch about to run: how long planning it took.
    plan_times: PlanTimes,
    /// Per source: the end of the last range it gave (the next batch's `startOffset`).
    last_ends: Vec<serde_json::Value>,
}

/// Operator `index`'s state store (`sub`: one of several it keeps, or `""`).
fn open_state_store(job: &Job, index: usize, sub: &str) -> anyhow::Result<Box<dyn StateStore>> {
    let dir = layout::state_dir(&job.checkpoint, index);
    let dir = if sub.is_empty() { dir } else { dir.join(sub) };
    Ok(match job.state_store {
        StateStoreKind::Memory => Box::new(MemoryStateStore::open(&dir, job.min_batches_to_retain)?),
        #[cfg(feature = "rocksdb")]
        StateStoreKind::RocksDb => Box::new(RocksDbStateStore::open(&dir, job.min_batches_to_retain)?),
        #[cfg(not(feature = "rocksdb"))]
        StateStoreKind::RocksDb => anyhow::bail!("state_store = \"rocksdb\" {}", crate::features::not_built("rocksdb")),
    })
}

/// A job wired up and ready to run: sources, operators, sink, checkpoint.
pub struct Engine {
    job: Job,
    checkpoint: Checkpoint,
    /// Held while the engine lives (a scale-out task's is released when its partition moves).
    _lock: CheckpointLock,
    sources: Union,
    /// Per source: columns a row must have non-null to be taken in (see [`scan_filters`]).
    not_null: Vec<Vec<usize>>,
    operators: Vec<Box<dyn Operator>>,
    sink: Box<dyn Sink>,
    watermark: Option<Watermark>,
    dead_letter: DeadLetterOutput,
    progress: ProgressReporter,
    stop: Arc<AtomicBool>,
    run_id: String,
    last_trigger_start: Option<Instant>,
    cursor: Cursor,
    swaps: Swaps,
    /// The process's plugin runtime (the admin API compiles uploads with it too).
    runtime: Arc<Runtime>,
    /// The query's handle (status, progress, exception, stop) for the API and listeners.
    query: crate::monitor::QueryHandle,
    /// This run's entry among the jobs running on this machine (`weir list`).
    registered: Option<std::path::PathBuf>,
}

impl Engine {
    /// Plans the job (sources, operators with their columns, sink) and opens it: nothing is
    /// written before every part is known to fit.
    pub fn new(job: Job, runtime: &Arc<Runtime>, progress: ProgressReporter) -> anyhow::Result<Engine> {
        // Before anything touches the checkpoint or the outputs: one writer per checkpoint.
        let mut lock = CheckpointLock::acquire(&job.checkpoint)?;
        // A version swapped in while the job ran stays in after a restart, unless the job file
        // now names another plugin than the one it replaced.
        let checkpoint_dir = job.checkpoint.clone();
        let plugin_path = move |m: &crate::config::MapConfig| {
            swap::active_swap(&checkpoint_dir, m.index, &m.plugin).unwrap_or_else(|| m.plugin.clone())
        };
        let Graph { sources, watermark, operators: planned, not_null, output } =
            Graph::plan(&job, runtime, &plugin_path)?;
        let mut plugins = BTreeMap::new();
        let mut operators = Vec::with_capacity(planned.len());
        for (i, p) in planned.into_iter().enumerate() {
            if let Some(plugin) = &p.plugin {
                plugins.insert(i, plugin.clone());
            }
            let index = p.index;
            let mut op = p.open(&|sub| open_state_store(&job, index, sub))?;
            // Planning called the plugin (`output-schema`): batches count their own calls.
            if let Some(slot) = op.plugin_mut() {
                slot.take_metrics();
            }
            operators.push(op);
        }
        let mut sink = open_sink(&job, runtime, &output)?;
        let checkpoint = Checkpoint::open(&job.checkpoint)?;
        lock.keep();
        sink.start(&checkpoint.metadata().id).with_context(|| format!("starting the sink ({})", sink.description()))?;
        let dead_letter = DeadLetterOutput::new(job.dead_letter_dir(layout::dead_letter));
        // A random UUID per start, as Spark's runId (the query id stays across restarts).
        let run_id = crate::random::uuid_v4().context("reading /dev/urandom for the runId")?;
        let stop = Arc::new(AtomicBool::new(false));
        Ok(Engine {
            query: crate::monitor::QueryHandle::new(stop.clone()),
            registered: None,
            job,
            checkpoint,
            _lock: lock,
            sources,
            not_null,
            operators,
            sink,
            watermark,
            dead_letter,
            progress,
            stop,
            run_id,
            last_trigger_start: None,
            cursor: Cursor::default(),
            swaps: Swaps::new(plugins, runtime.clone()),
            runtime: runtime.clone(),
        })
    }

    /// Set it to stop after the batch in progress (Ctrl-C).
    pub fn stop_handle(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    fn graph(&mut self) -> (swap::Graph<'_>, &mut Swaps) {
        (
            swap::Graph {
                operators: &mut self.operators,
                sink: self.sink.as_mut(),
                checkpoint: &self.checkpoint,
                next_batch: self.cursor.next_id,
            },
            &mut self.swaps,
        )
    }

    /// Runs until the trigger says stop (once, available_now) or `stop_handle` is set.
    pub fn run(&mut self) -> anyhow::Result<RunSummary> {
        // `[[listener]]`s hear every event from started on, on their own threads.
        let listeners = crate::monitor::listener::Listeners::start(&self.job.listeners, &self.query)?;
        let result = self.run_until_stopped();
        // Spark's onQueryTerminated, with the error that stopped the query.
        let exception = result.as_ref().err().map(|e| format!("{e:#}"));
        let mut ended = serde_json::json!({
            "runId": self.run_id,
            "name": self.job.name,
            "ended": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            "exception": exception,
        });
        self.query.terminated(exception);
        let _ = std::fs::remove_file(layout::admin_address(self.checkpoint.dir()));
        if let Some(entry) = self.registered.take() {
            crate::monitor::registry::unregister(&entry);
        }
        // Each listener's timeout to deliver what is queued, the terminated event last.
        listeners.finish();
        // Kept for `weir status` once the process is gone, with the listeners' final counts.
        ended["listeners"] = self.query.snapshot()["listeners"].clone();
        let file = layout::last_run(self.checkpoint.dir());
        if let Err(e) = crate::atomic_file::write_atomic(&file, &serde_json::to_vec_pretty(&ended).expect("plain json"))
        {
            eprintln!("warning: recording how the run ended in {}: {e}", file.display());
        }
        result
    }

    fn run_until_stopped(&mut self) -> anyhow::Result<RunSummary> {
        self.start()?;
        // Prometheus metrics (GET /metrics), fed by the query's events from here on.
        let metrics = crate::monitor::metrics::SharedMetrics::default();
        self.query.observe(Box::new(crate::monitor::metrics::MetricsObserver(metrics.clone())));
        self.query.started(&self.checkpoint.metadata().id, &self.run_id, &self.job.name, self.describe());
        let watched = self.swaps.watched();
        self.swaps.load_history(&self.checkpoint);
        let (tx, rx) = std::sync::mpsc::channel();
        self.swaps.requests = Some(rx);
        self.swaps.probation_batches = self.job.admin.as_ref().map_or(10, |a| a.probation_batches);
        // Every job serves its API (status, progress, stop, hot swap): where [admin] says, else
        // on a loopback port of the system's choosing, with a generated token.
        let (admin, announce) = match self.job.admin.clone() {
            Some(a) => (a, true),
            None => (crate::config::AdminConfig::loopback(), false),
        };
        let addr = crate::admin::start(
            &admin,
            crate::admin::Serving {
                checkpoint: self.checkpoint.dir(),
                history: self.swaps.history.clone(),
                requests: tx.clone(),
                runtime: self.runtime.clone(),
                query: self.query.clone(),
                metrics,
                announce,
            },
        )?;
        self.registered = crate::monitor::registry::register(&crate::monitor::registry::Entry {
            pid: std::process::id(),
            id: self.checkpoint.metadata().id.clone(),
            run_id: self.run_id.clone(),
            name: self.job.name.clone(),
            job_file: self.job.file.display().to_string(),
            checkpoint: self.checkpoint.dir().display().to_string(),
            address: addr.to_string(),
            started: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        for (i, file) in watched {
            crate::admin::watch(i, file, self.checkpoint.dir().to_path_buf(), tx.clone(), self.runtime.clone());
        }
        if let Trigger::Continuous(interval) = self.job.trigger {
            self.run_continuous(interval)?;
            self.progress.finish();
            return Ok(self.cursor.summary);
        }
        let mut idle = false;
        while !self.stop.load(Ordering::Relaxed) {
            let (mut graph, swaps) = self.graph();
            swaps.serve(&mut graph);
            let trigger_start = Instant::now();
            self.query.set_status("Getting offsets from the sources", false, true);
            let ran = match self.step()? {
                Step::Ran => true,
                Step::Idle => false,
                Step::Done => break,
            };
            if ran {
                self.query.set_status("Waiting for next trigger", true, false);
                idle = false;
            } else {
                self.query.set_status("Waiting for data to arrive", false, false);
                // Spark's onQueryIdle: once when the query finds nothing to do.
                if !idle {
                    self.query.idle();
                    idle = true;
                }
            }
            let interval = match self.job.trigger {
                Trigger::ProcessingTime(d) => d,
                _ => Duration::ZERO,
            };
            // Idle: each source says how soon to ask again (files 100 ms, Kafka 10 ms, rate
            // when its next row is due).
            let wait = if ran { interval } else { interval.max(self.sources.idle_poll(now_micros())) };
            self.sleep_until(trigger_start + wait);
        }
        self.progress.finish();
        Ok(self.cursor.summary)
    }

    /// The query's handle: status, progress, exception, stop.
    pub fn query(&self) -> &crate::monitor::QueryHandle {
        &self.query
    }

    /// What `weir status` and the UI show of the job besides its progress.
    fn describe(&self) -> serde_json::Value {
        let trigger = match self.job.trigger {
            Trigger::ProcessingTime(d) => format!("ProcessingTime({} ms)", d.as_millis()),
            Trigger::Once => "Once".to_string(),
            Trigger::AvailableNow => "AvailableNow".to_string(),
            Trigger::Continuous(d) => format!("Continuous({} ms)", d.as_millis()),
        };
        serde_json::json!({
            "trigger": trigger,
            "checkpoint": self.checkpoint.dir().display().to_string(),
            "jobFile": self.job.file.display().to_string(),
            "sources": (0..self.sources.len()).map(|i| self.sources.description(i)).collect::<Vec<_>>(),
            "operators": self.operators.iter().map(|op| serde_json::json!({
                "index": op.index(),
                "plugin": op.plugin().map(|p| serde_json::json!({ "path": p.path().display().to_string(), "digest": p.digest() })),
            })).collect::<Vec<_>>(),
            "sink": self.sink.description(),
        })
    }

    /// Restores the sources and the watermark from the checkpoint and replays a batch that was
    /// planned but not committed (a crash mid-batch). Then `step` runs the next batches.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let mut summary = RunSummary::default();
        self.swaps.start(&self.operators, &self.checkpoint)?;
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
        // Each source's last range before the pending batch (if any): its startOffset.
        self.cursor.last_ends = vec![serde_json::Value::Null; self.sources.len()];
        let settled = planned.iter().filter(|e| committed.is_some_and(|c| e.batch_id <= c));
        for e in settled.filter(|e| !e.source.is_null()) {
            if let Ok(ranges) = self.sources.split(&e.source) {
                for (end, r) in self.cursor.last_ends.iter_mut().zip(ranges) {
                    if !r.is_null() {
                        *end = r;
                    }
                }
            }
        }
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
                let current = swap::plugin_digests(&self.operators);
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
                let (mut graph, swaps) = self.graph();
                let current = swaps.use_versions_of(&mut graph, &entry)?;
                self.run_batch(&entry, &mut summary)?;
                for (i, version) in current {
                    swap::put_version(&mut self.operators, i, version);
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
            Trigger::ProcessingTime(_) | Trigger::Continuous(_) => {}
        }
        let last_ends = self.cursor.last_ends.clone();
        self.cursor = Cursor {
            summary,
            next_id,
            prev_watermark,
            frozen_now,
            new_batches: 0,
            plan_times: PlanTimes::default(),
            last_ends,
        };
        Ok(())
    }

    /// Plans the next batch and runs it, if there is one (new data, or a no-data batch due).
    pub fn step(&mut self) -> anyhow::Result<Step> {
        if self.job.trigger == Trigger::Once && self.cursor.new_batches == 1 {
            return Ok(Step::Done);
        }
        let prev_watermark = self.cursor.prev_watermark;
        // A batch when any source has new data; the others add nothing to it.
        let t_latest = Instant::now();
        let next = self.sources.plan_next(self.cursor.frozen_now.unwrap_or_else(now_micros))?;
        let latest_offset = t_latest.elapsed().as_millis() as u64;
        let planned_range = match next {
            Some(range) => Some(range),
            // Spark's no-data batch: no new rows, but the watermark moved, so windows close
            // and state expires now rather than when the next row arrives.
            None if self.no_data_batch_due(prev_watermark) => Some(serde_json::Value::Null),
            None => None,
        };
        match planned_range {
            Some(range) => {
                let timestamp_ms = chrono::Utc::now().timestamp_millis();
                let t_planning = Instant::now();
                let mut operator_inputs = BTreeMap::new();
                for (i, op) in self.operators.iter_mut().enumerate() {
                    let planned = op
                        .plan_batch(timestamp_ms.saturating_mul(1000))
                        .with_context(|| format!("planning batch {}: operator[{i}]", self.cursor.next_id))?;
                    if let Some(v) = planned {
                        operator_inputs.insert(i, v);
                    }
                }
                let entry = OffsetsEntry {
                    batch_id: self.cursor.next_id,
                    timestamp_ms,
                    source: range,
                    watermark_micros: self.watermark.as_ref().map_or(0, Watermark::current),
                    late_watermark_micros: prev_watermark,
                    plugins: swap::plugin_digests(&self.operators),
                    operator_inputs,
                };
                let query_planning = t_planning.elapsed().as_millis() as u64;
                let t_wal = Instant::now();
                self.checkpoint.write_offsets(&entry)?;
                let wal_commit = t_wal.elapsed().as_millis() as u64;
                self.cursor.plan_times = PlanTimes { latest_offset, query_planning, wal_commit };
                let mut summary = self.cursor.summary;
                if let Err(e) = self.run_batch(&entry, &mut summary) {
                    // A version on probation that fails goes back to the one it replaced, and
                    // the batch runs again with it.
                    let Some(op) = self.swaps.failed_on_probation(&self.operators, &e) else { return Err(e) };
                    let (mut graph, swaps) = self.graph();
                    let event = swaps.roll_back(&mut graph, op, &format!("{e:#}"))?;
                    eprintln!("warning: {}", event["message"].as_str().unwrap_or_default());
                    let entry = OffsetsEntry { plugins: swap::plugin_digests(&self.operators), ..entry.clone() };
                    self.checkpoint.write_offsets(&entry)?;
                    self.run_batch(&entry, &mut summary)?;
                }
                self.swaps.end_of_probation_batch(self.checkpoint.dir());
                self.swaps.purge_stored_plugins(
                    &self.operators,
                    &self.checkpoint,
                    entry.batch_id,
                    self.job.min_batches_to_retain,
                );
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
        // What operators recorded for the batches kept: the rest (old table versions) may go.
        let kept = self.checkpoint.offsets()?;
        for (i, op) in self.operators.iter_mut().enumerate() {
            let planned: Vec<serde_json::Value> =
                kept.iter().filter_map(|e| e.operator_inputs.get(&i).cloned()).collect();
            op.retain(&planned).with_context(|| format!("operator[{i}]: deleting what old batches read"))?;
        }
        // Dead letters in the checkpoint go with their batches; a dead_letter_path the job
        // file sets elsewhere is the user's to keep.
        if self.dead_letter.dir().starts_with(self.checkpoint.dir()) {
            self.dead_letter
                .purge_before(threshold)
                .with_context(|| format!("deleting old dead letters in {}", self.dead_letter.dir().display()))?;
        }
        Ok(())
    }

    /// Whether an operator has work without new rows: the watermark moved past the last
    /// batch's and it evicts by it, or a processing-time deadline is due.
    fn no_data_batch_due(&self, last_batch_watermark: i64) -> bool {
        let now = now_micros();
        let moved = self.watermark.as_ref().is_some_and(|wm| wm.current() > last_batch_watermark);
        self.operators.iter().any(|op| op.wants_no_data_batch(moved, now))
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
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
