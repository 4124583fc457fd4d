//! One batch through the graph: the sources' pieces through the operators as they come, then
//! each operator finished in order (what it held back goes through the operators after it), the
//! dead letters, the sink, the commit and the progress record.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow::record_batch::RecordBatch;

use super::operator::{BatchContext, Clocks, Operator};
use super::{Engine, RunSummary};
use crate::checkpoint::{CommitEntry, OffsetsEntry, PluginVersion};
use crate::config::LateRows;
use crate::deadletter::BadRecords;
use crate::progress::{DurationMs, QueryProgress, SinkProgress, SourceProgress};
use crate::watermark::{progress_json, EventTimeStats, Watermark};

/// The rows of `batch` whose `columns` are all non-null.
pub(super) fn non_null_rows(batch: &RecordBatch, columns: &[usize]) -> Result<RecordBatch, arrow::error::ArrowError> {
    if columns.iter().all(|&c| batch.column(c).null_count() == 0) {
        return Ok(batch.clone());
    }
    let mut keep = arrow::compute::is_not_null(batch.column(columns[0]))?;
    for &c in &columns[1..] {
        keep = arrow::compute::and(&keep, &arrow::compute::is_not_null(batch.column(c))?)?;
    }
    arrow::compute::filter_record_batch(batch, &keep)
}

/// Each operator's watermarks (µs): (eviction, late), the batch's for the first operator, then
/// as each operator passes them on (see [`Operator::output_watermark`]).
pub(super) fn operator_watermarks(operators: &[Box<dyn Operator>], now: i64, late: i64) -> Vec<(i64, i64)> {
    let mut marks = Vec::with_capacity(operators.len());
    let (mut now, mut late) = (now, late);
    for op in operators {
        marks.push((now, late));
        (now, late) = (op.output_watermark(now), op.output_watermark(late));
    }
    marks
}

/// Puts operator `k`'s watermarks into the context.
fn at(ctx: &mut BatchContext, marks: &[(i64, i64)], k: usize) {
    (ctx.watermark, ctx.late_watermark) = marks[k];
}

/// Runs `input` through `operators[from..]`; empty pieces are not passed on.
pub(super) fn push(
    operators: &mut [Box<dyn Operator>],
    marks: &[(i64, i64)],
    from: usize,
    ctx: &mut BatchContext,
    input: Vec<RecordBatch>,
) -> anyhow::Result<Vec<RecordBatch>> {
    let mut batches = input;
    for (k, op) in operators.iter_mut().enumerate().skip(from) {
        at(ctx, marks, k);
        let mut out: Vec<RecordBatch> = Vec::with_capacity(batches.len());
        for b in batches.iter().filter(|b| b.num_rows() > 0) {
            out.extend(op.process(ctx, b)?);
        }
        batches = out;
    }
    Ok(batches)
}

impl Engine {
    pub(super) fn run_batch(&mut self, entry: &OffsetsEntry, summary: &mut RunSummary) -> anyhow::Result<()> {
        let id = entry.batch_id;
        let t0 = Instant::now();
        self.query.set_status(format!("Processing batch {id}"), true, true);
        // A replay was planned by an earlier run: no planning times.
        let plan_times = std::mem::take(&mut self.cursor.plan_times);
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
        let now = self.watermark.as_ref().map_or(0, Watermark::current);
        let mut ctx = BatchContext {
            batch_id: id,
            watermark: now,
            late_watermark: entry.late_watermark_micros,
            keep_late: self.job.watermark.as_ref().is_some_and(|w| w.late_rows == LateRows::DeadLetter),
            clocks: Clocks {
                processing: entry.timestamp_ms.saturating_mul(1000),
                watermark: self.watermark.is_some().then_some(now),
            },
            bad: &mut bad,
            planned: &entry.operator_inputs,
        };
        let marks = operator_watermarks(&self.operators, ctx.watermark, ctx.late_watermark);
        for (k, op) in self.operators.iter_mut().enumerate() {
            at(&mut ctx, &marks, k);
            op.begin(&mut ctx)?;
        }
        // The union, source by source in the job's order, each read in pieces that go through
        // the operators as they come (up to an operator that holds rows until the batch ends).
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
                let mut read = self.sources.read(i, &piece, ctx.bad).with_context(|| what.clone())?;
                if !self.not_null[i].is_empty() {
                    read = read.iter().map(|b| non_null_rows(b, &self.not_null[i])).collect::<Result<_, _>>()?;
                }
                t_read += t.elapsed();
                for b in &read {
                    rows_per_source[i] += b.num_rows() as u64;
                    if let Some(wm) = &self.watermark {
                        event_times[i].observe(b, wm.index_of(i));
                    }
                }
                match self.sources.joined_by(i) {
                    // A join's other side: into that join, then through the operators after it.
                    Some(k) => {
                        let mut out = Vec::new();
                        at(&mut ctx, &marks, k);
                        for b in read.iter().filter(|b| b.num_rows() > 0) {
                            out.extend(self.operators[k].process_other(&mut ctx, b)?);
                        }
                        batches.extend(push(&mut self.operators, &marks, k + 1, &mut ctx, out)?);
                    }
                    None => batches.extend(push(&mut self.operators, &marks, 0, &mut ctx, read)?),
                }
            }
        }
        let num_input_rows: u64 = rows_per_source.iter().sum();
        // Then the operators finish, in order: state committed, what each held back through
        // the operators after it.
        let mut state_operators = Vec::new();
        for k in 0..self.operators.len() {
            at(&mut ctx, &marks, k);
            let held = self.operators[k].finish(&mut ctx)?;
            if let Some(p) = self.operators[k].progress() {
                state_operators.push(p);
            }
            batches.extend(push(&mut self.operators, &marks, k + 1, &mut ctx, held)?);
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
        let plugins = self.plugin_versions();
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
        self.report(Finished {
            id,
            total,
            since_last,
            ranges,
            rows_per_source,
            output_rows,
            dead_letter_rows: dead.len() as u64,
            event_time,
            state_operators,
            duration_ms: DurationMs {
                latest_offset: plan_times.latest_offset,
                query_planning: plan_times.query_planning,
                wal_commit: plan_times.wal_commit,
                get_batch: t_read.as_millis() as u64,
                add_batch: add_batch.as_millis() as u64,
                commit_offsets: commit.as_millis() as u64,
                trigger_execution: total.as_millis() as u64,
            },
        })
    }

    /// The versions of the plugins running now, for a commit entry.
    pub(super) fn plugin_versions(&self) -> Vec<PluginVersion> {
        self.operators
            .iter()
            .filter_map(|op| {
                op.plugin().map(|p| PluginVersion {
                    operator: op.index(),
                    path: p.path().display().to_string(),
                    digest: p.digest().to_string(),
                })
            })
            .collect()
    }

    /// The progress record of a batch (or continuous epoch) that finished, to the reporter and
    /// the query's listeners.
    pub(super) fn report(&mut self, f: Finished) -> anyhow::Result<()> {
        let plugin_metrics: Vec<serde_json::Value> = self
            .operators
            .iter_mut()
            .filter_map(|op| {
                let index = op.index();
                op.plugin_mut().map(|p| {
                    let digest = p.digest().to_string();
                    p.take_metrics().to_json(index, &digest)
                })
            })
            .collect();
        let Finished { id, total, since_last, ranges, rows_per_source, output_rows, .. } = f;
        let num_input_rows: u64 = rows_per_source.iter().sum();
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
            event_time: f.event_time,
            duration_ms: f.duration_ms,
            num_dead_letter_rows: f.dead_letter_rows + self.sink.dead_letter_rows(),
            state_operators: f.state_operators,
            plugin_events: std::mem::take(&mut self.swaps.events),
            plugins: plugin_metrics,
            sources: ranges
                .into_iter()
                .zip(&rows_per_source)
                .enumerate()
                .map(|(i, (range, &rows))| SourceProgress {
                    description: self.sources.description(i),
                    // Spark's startOffset: where the source was before this batch (its last range).
                    start_offset: if range.is_null() {
                        self.cursor.last_ends[i].clone()
                    } else {
                        std::mem::replace(&mut self.cursor.last_ends[i], range.clone())
                    },
                    end_offset: range,
                    latest_offset: self.sources.latest_offset(i),
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
        self.query.progress(serde_json::to_value(&progress).expect("plain struct"));
        Ok(())
    }
}

/// What a finished batch (or continuous epoch) did, for its progress record.
pub(super) struct Finished {
    pub id: u64,
    pub total: Duration,
    /// Since the previous batch started (the input rate's denominator).
    pub since_last: Option<Duration>,
    /// Per source: the range it read (null: nothing).
    pub ranges: Vec<serde_json::Value>,
    pub rows_per_source: Vec<u64>,
    pub output_rows: u64,
    pub dead_letter_rows: u64,
    pub event_time: Option<serde_json::Value>,
    pub state_operators: Vec<serde_json::Value>,
    pub duration_ms: DurationMs,
}
