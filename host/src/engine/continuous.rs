//! The continuous trigger (Spark's `ContinuousExecution`): one long-lived loop polls the job's
//! source for whatever has arrived, puts it through the map operators and hands it to the sink
//! at once; nothing is planned per record or per poll. Every interval an epoch ends:
//!
//! 1. the source says which range the epoch read, and it is written to `offsets/N`, the same
//!    entry a micro-batch writes before it runs;
//! 2. dead letters are written, then the sink commits the epoch (Kafka: its transaction, with
//!    the epoch's marker);
//! 3. `commits/N` is written and the epoch's progress record reported.
//!
//! A crash before step 1 leaves nothing: the epoch's Kafka transaction is aborted when the next
//! run fences the producer, and the next run reads from the last committed epoch's end. A crash
//! after step 1 leaves an epoch with offsets and no commit: the next run (in either trigger)
//! replays it as a micro-batch over exactly that range, and the sink's marker tells whether it
//! is in already. So an epoch is exactly once in a Kafka sink, and a checkpoint moves freely
//! between continuous and micro-batch runs. Hot swaps and retention happen between epochs.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow::record_batch::RecordBatch;

use super::batch::{non_null_rows, operator_watermarks, push, Finished};
use super::operator::{BatchContext, Clocks};
use super::Engine;
use crate::checkpoint::{CommitEntry, OffsetsEntry};
use crate::deadletter::BadRecords;
use crate::progress::DurationMs;
use crate::swap;

/// Longest a poll waits for records, so that a stop request is seen promptly.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// What the epoch in progress read and wrote.
#[derive(Default)]
struct Epoch {
    input_rows: u64,
    output_rows: u64,
    /// Time spent reading (polls that returned rows) and writing to the sink.
    read: Duration,
    write: Duration,
}

impl Engine {
    /// Runs epochs of `interval` until stopped. `start` has run (a pending epoch is replayed).
    pub(super) fn run_continuous(&mut self, interval: Duration) -> anyhow::Result<()> {
        self.sources.continuous()?.open().context("opening the source for continuous processing")?;
        while !self.stop.load(Ordering::Relaxed) {
            // A hot swap takes effect here, between two epochs.
            let (mut graph, swaps) = self.graph();
            swaps.serve(&mut graph);
            self.query.set_status(format!("Processing epoch {}", self.cursor.next_id), true, true);
            self.run_epoch(interval)?;
        }
        Ok(())
    }

    /// One epoch: records through the graph as they arrive until `interval` has passed (or a
    /// stop), then the epoch's offsets, the sink's commit and the checkpoint's commit.
    fn run_epoch(&mut self, interval: Duration) -> anyhow::Result<()> {
        let id = self.cursor.next_id;
        let t0 = Instant::now();
        let since_last = self.last_trigger_start.map(|t| t.elapsed());
        self.last_trigger_start = Some(t0);
        let timestamp_ms = chrono::Utc::now().timestamp_millis();
        let mut bad = BadRecords::new(self.job.on_bad_record);
        let mut epoch = Epoch::default();
        let result = self.stream_epoch(id, t0 + interval, timestamp_ms, &mut bad, &mut epoch);
        let range = match result {
            Ok(range) => range,
            Err(e) => {
                self.sink.abort_epoch();
                // A version on probation that fails goes back to the one it replaced, and the
                // epoch starts again from its beginning with it.
                let Some(op) = self.swaps.failed_on_probation(&self.operators, &e) else { return Err(e) };
                let (mut graph, swaps) = self.graph();
                let event = swaps.roll_back(&mut graph, op, &format!("{e:#}"))?;
                eprintln!("warning: {}", event["message"].as_str().unwrap_or_default());
                self.sources.continuous()?.rewind_epoch().context("going back to the epoch's start")?;
                return Ok(());
            }
        };
        // Nothing arrived: no epoch is recorded (as no micro-batch runs without new data).
        let Some(range) = range else { return Ok(()) };
        let t_commit = Instant::now();
        let entry = OffsetsEntry {
            batch_id: id,
            timestamp_ms,
            source: range.clone(),
            watermark_micros: 0,
            late_watermark_micros: 0,
            plugins: swap::plugin_digests(&self.operators),
            operator_inputs: BTreeMap::new(),
        };
        // From here the epoch is the checkpoint's: a crash replays exactly this range.
        self.checkpoint.write_offsets(&entry)?;
        let dead = bad.take();
        self.dead_letter.write(id, &dead).with_context(|| {
            format!("epoch {id}: writing the dead-letter output in {}", self.dead_letter.dir().display())
        })?;
        self.sink
            .commit_epoch(id)
            .with_context(|| format!("epoch {id}: committing it in {}", self.sink.description()))?;
        self.checkpoint.write_commit(&CommitEntry {
            batch_id: id,
            plugins: self.plugin_versions(),
            next_watermark_micros: 0,
            source_watermarks_micros: BTreeMap::new(),
        })?;
        let commit = t_commit.elapsed();
        let total = t0.elapsed();
        self.cursor.summary.batches += 1;
        self.cursor.summary.input_rows += epoch.input_rows;
        self.cursor.summary.output_rows += epoch.output_rows;
        self.report(Finished {
            id,
            total,
            since_last,
            ranges: vec![range],
            rows_per_source: vec![epoch.input_rows],
            output_rows: epoch.output_rows,
            dead_letter_rows: dead.len() as u64,
            event_time: None,
            state_operators: Vec::new(),
            duration_ms: DurationMs {
                get_batch: epoch.read.as_millis() as u64,
                add_batch: epoch.write.as_millis() as u64,
                commit_offsets: commit.as_millis() as u64,
                trigger_execution: total.as_millis() as u64,
                ..DurationMs::default()
            },
        })?;
        self.swaps.end_of_probation_batch(self.checkpoint.dir());
        self.swaps.purge_stored_plugins(&self.operators, &self.checkpoint, id, self.job.min_batches_to_retain);
        self.purge_logs(id);
        self.cursor.next_id += 1;
        self.cursor.new_batches += 1;
        Ok(())
    }

    /// The epoch's records, from the source through the operators into the sink as they come,
    /// until `deadline`; returns the range the epoch read (none: nothing arrived).
    fn stream_epoch(
        &mut self,
        id: u64,
        deadline: Instant,
        timestamp_ms: i64,
        bad: &mut BadRecords,
        epoch: &mut Epoch,
    ) -> anyhow::Result<Option<serde_json::Value>> {
        let planned = BTreeMap::new();
        let mut ctx = BatchContext {
            batch_id: id,
            watermark: 0,
            late_watermark: 0,
            keep_late: false,
            clocks: Clocks { processing: timestamp_ms.saturating_mul(1000), watermark: None },
            bad,
            planned: &planned,
        };
        let marks = operator_watermarks(&self.operators, 0, 0);
        for op in self.operators.iter_mut() {
            op.begin(&mut ctx)?;
        }
        let source = self.sources.description(0);
        let what = || format!("epoch {id}: reading {source}");
        loop {
            let now = Instant::now();
            if now >= deadline || self.stop.load(Ordering::Relaxed) {
                break;
            }
            let t_read = Instant::now();
            let mut read =
                self.sources.continuous()?.poll((deadline - now).min(STOP_CHECK), ctx.bad).with_context(what)?;
            if read.is_empty() {
                continue;
            }
            epoch.read += t_read.elapsed();
            if !self.not_null[0].is_empty() {
                read = read.iter().map(|b| non_null_rows(b, &self.not_null[0])).collect::<Result<_, _>>()?;
            }
            epoch.input_rows += read.iter().map(|b| b.num_rows() as u64).sum::<u64>();
            let out = push(&mut self.operators, &marks, 0, &mut ctx, read)?;
            self.write_now(id, &out, epoch)?;
        }
        // Map operators hold nothing back; anything an operator does at the end goes out too.
        for k in 0..self.operators.len() {
            let held = self.operators[k].finish(&mut ctx)?;
            let out = push(&mut self.operators, &marks, k + 1, &mut ctx, held)?;
            self.write_now(id, &out, epoch)?;
        }
        Ok(self.sources.continuous()?.end_epoch().with_context(what)?)
    }

    fn write_now(&mut self, id: u64, out: &[RecordBatch], epoch: &mut Epoch) -> anyhow::Result<()> {
        if out.iter().all(|b| b.num_rows() == 0) {
            return Ok(());
        }
        let t = Instant::now();
        self.sink.write_now(id, out).with_context(|| format!("epoch {id}: writing to {}", self.sink.description()))?;
        epoch.output_rows += out.iter().map(|b| b.num_rows() as u64).sum::<u64>();
        epoch.write += t.elapsed();
        Ok(())
    }
}
