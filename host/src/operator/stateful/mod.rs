//! `stateful`: a plugin of the `stateful` world over the rows of each key, with state the host
//! keeps (Spark's flatMapGroupsWithState / applyInPandasWithState, and transformWithState's
//! timers and TTL).
//!
//! Per micro-batch the operator takes every piece of the batch, groups the rows by the key
//! columns, and at the end calls the plugin once (in chunks, for large batches) with every key
//! that has new rows, a timeout that fired, or timers that fired: its rows, its state bytes and
//! why it is called. The plugin answers per key (state kept, updated or removed; a timeout; a
//! TTL; timers registered or deleted) and gives output rows. All of it is written to the state
//! store as the batch's version, so a replayed batch starts from exactly the state before it.
//!
//! Keys whose TTL passed lose their state without a call. Finding due keys reads the whole
//! store, but only in batches where some deadline may be due: the earliest deadline of each
//! clock is tracked from batch to batch.

/// A key's stored entry: state bytes, timeout, timers, TTL.
pub mod entry;

use std::path::PathBuf;

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::datatypes::{Schema, SchemaRef, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use rustc_hash::FxHashMap;

use self::entry::{decode_stored, Clocks, Deadline, Domain, Entry};
use super::map::row_as_json;
use super::{key_indices, StateOperatorProgress};
use crate::config::{OnPluginError, PluginLimits, TimeoutMode};
use crate::deadletter::{BadRecord, BadRecords, OnBadRecord};
use crate::engine::operator::{state_progress, BatchContext, Operator, PluginSlot, PluginVersion};
use crate::plugin::stateful::wit;
use crate::plugin::stateful::GroupsCall;
use crate::plugin::{BatchLabel, PluginError, Runtime, StatefulPlugin};
use crate::state::{StateError, StateStore};

/// Rows per `process-groups` call: a large batch goes in several calls, each within the
/// plugin's memory limit for ordinary rows.
const CALL_ROWS: usize = 1 << 18;
/// Groups per call (keys without rows, such as timeouts, weigh little but are not free).
const CALL_GROUPS: usize = 1 << 16;

#[derive(Debug, thiserror::Error)]
pub enum StatefulError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

/// Per-batch counts shown as `customMetrics` in progress records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatefulMetrics {
    pub timed_out_groups: u64,
    pub expired_timers: u64,
    pub registered_timers: u64,
    pub deleted_timers: u64,
    pub removed_by_ttl: u64,
    /// Keys whose state was migrated from another state version (after a hot swap).
    pub migrated: u64,
}

/// One key called in this batch.
struct Group {
    key: Vec<u8>,
    /// Input rows of the batch: (piece, row in the piece).
    rows: Vec<(u32, u32)>,
    /// The entry as the plugin sees it: TTL applied, fired timers and timeout taken out.
    entry: Entry,
    existed: bool,
    timed_out: bool,
    fired: Vec<Deadline>,
}

pub struct StatefulOperator {
    index: usize,
    plugin: StatefulPlugin,
    /// The plugin's `init` config and limits, to load another version (a hot swap).
    settings: Option<(String, PluginLimits)>,
    /// The `stateOperators[]` entry of the last batch.
    last_progress: Option<serde_json::Value>,
    on_error: OnPluginError,
    mode: TimeoutMode,
    keys: Vec<usize>,
    key_schema: SchemaRef,
    input_schema: SchemaRef,
    converter: RowConverter,
    /// The watermark column, under `timeout = "event_time"`: rows behind the watermark are late.
    event_time: Option<usize>,
    store: Box<dyn StateStore>,
    store_dir: PathBuf,
    pending: Vec<RecordBatch>,
    batch_id: u64,
    dropped_late: u64,
    metrics: StatefulMetrics,
    /// The earliest deadline per clock over the whole store, as committed by batch `.0`.
    earliest: Option<(u64, Option<i64>, Option<i64>)>,
    /// Being computed for the batch in progress.
    next_earliest: (Option<i64>, Option<i64>),
}

impl StatefulOperator {
    /// `group_by`: the key columns (checked against `schema`); `watermark_column`: the job's.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        plugin: StatefulPlugin,
        on_error: OnPluginError,
        mode: TimeoutMode,
        schema: &SchemaRef,
        group_by: &[String],
        watermark_column: Option<&str>,
        store: Box<dyn StateStore>,
        store_dir: PathBuf,
    ) -> Result<StatefulOperator, String> {
        let keys = key_indices(schema, group_by)?;
        let key_schema = key_schema(schema, &keys);
        let fields = keys.iter().map(|&i| SortField::new(schema.field(i).data_type().clone())).collect();
        let converter = RowConverter::new(fields).map_err(|e| e.to_string())?;
        let event_time = match (mode, watermark_column) {
            (TimeoutMode::EventTime, Some(w)) => Some(schema.index_of(w).map_err(|e| e.to_string())?),
            _ => None,
        };
        Ok(StatefulOperator {
            index,
            plugin,
            settings: None,
            last_progress: None,
            on_error,
            mode,
            keys,
            key_schema,
            input_schema: schema.clone(),
            converter,
            event_time,
            store,
            store_dir,
            pending: Vec::new(),
            batch_id: 0,
            dropped_late: 0,
            metrics: StatefulMetrics::default(),
            earliest: None,
            next_earliest: (None, None),
        })
    }

    /// The schema of the key columns, in `group_by` order (what `output-schema` gets as `key`).
    /// The plugin's `init` config and limits, which a swapped-in version gets too.
    pub fn with_plugin_settings(mut self, config: &str, limits: PluginLimits) -> Self {
        self.settings = Some((config.to_string(), limits));
        self
    }

    pub fn key_schema_of(schema: &SchemaRef, group_by: &[String]) -> Result<SchemaRef, String> {
        Ok(key_schema(schema, &key_indices(schema, group_by)?))
    }

    pub fn index(&self) -> usize {
        self.index
    }

    pub fn plugin(&self) -> &StatefulPlugin {
        &self.plugin
    }

    pub fn output_schema(&self) -> SchemaRef {
        self.plugin.output_schema()
    }

    /// Whether a moving watermark alone gives it work (event-time timeouts and timers).
    pub fn evicts_by_watermark(&self) -> bool {
        self.mode == TimeoutMode::EventTime
    }

    /// Whether a processing-time deadline (timeout, timer, TTL) is due at `now` (µs), so that a
    /// batch should run even without new rows. Unknown before the first batch of this process:
    /// then yes, once, under `timeout = "processing_time"`.
    pub fn processing_deadline_due(&self, now: i64) -> bool {
        match self.earliest {
            Some((_, p, _)) => p.is_some_and(|p| p <= now),
            None => self.mode == TimeoutMode::ProcessingTime,
        }
    }

    pub fn metrics(&self) -> StatefulMetrics {
        self.metrics
    }

    /// Starts batch `batch_id` from the state committed by the batch before.
    pub fn begin(&mut self, batch_id: u64) -> Result<(), StateError> {
        self.pending.clear();
        self.dropped_late = 0;
        self.metrics = StatefulMetrics::default();
        if self.earliest.is_some_and(|(v, _, _)| v + 1 != batch_id) {
            self.earliest = None;
        }
        self.batch_id = batch_id;
        self.store.begin(batch_id)
    }

    /// Takes a piece of the batch; returns the rows dropped as late (under event-time timeouts:
    /// at or behind `late_watermark`, the previous batch's watermark, as Spark filters them).
    pub fn process(&mut self, input: &RecordBatch, late_watermark: i64) -> Vec<u32> {
        let Some(c) = self.event_time else {
            self.pending.push(input.clone());
            return Vec::new();
        };
        let times = input.column(c).as_primitive::<TimestampMicrosecondType>();
        let is_late = |r: usize| times.is_valid(r) && times.value(r) <= late_watermark;
        let late: Vec<u32> = (0..input.num_rows()).filter(|&r| is_late(r)).map(|r| r as u32).collect();
        if late.is_empty() {
            self.pending.push(input.clone());
        } else {
            self.dropped_late += late.len() as u64;
            let keep = BooleanArray::from_iter((0..input.num_rows()).map(|r| Some(!is_late(r))));
            self.pending.push(arrow::compute::filter_record_batch(input, &keep).expect("mask has one entry per row"));
        }
        late
    }

    /// Calls the plugin for every key due in this batch, writes the state, commits it, and
    /// returns the output rows.
    pub fn end(
        &mut self,
        clocks: Clocks,
        bad: &mut BadRecords,
    ) -> Result<(RecordBatch, StateOperatorProgress), StatefulError> {
        // The pieces stay as they came (no concatenated copy of the batch): each call takes its
        // groups' rows from them.
        let input = std::mem::take(&mut self.pending);
        let key_rows: Vec<_> = input
            .iter()
            .map(|piece| {
                let cols: Vec<_> = self.keys.iter().map(|&i| piece.column(i).clone()).collect();
                self.converter.convert_columns(&cols).expect("key columns match the converter's fields")
            })
            .collect();
        let mut index: FxHashMap<&[u8], usize> = FxHashMap::default();
        let mut groups: Vec<Group> = Vec::new();
        for (p, r) in key_rows.iter().enumerate().flat_map(|(p, rows)| (0..rows.num_rows()).map(move |r| (p, r))) {
            let key = key_rows[p].row(r);
            let g = *index.entry(key.data()).or_insert_with(|| {
                groups.push(Group {
                    key: key.data().to_vec(),
                    rows: Vec::new(),
                    entry: Entry::default(),
                    existed: false,
                    timed_out: false,
                    fired: Vec::new(),
                });
                groups.len() - 1
            });
            groups[g].rows.push((p as u32, r as u32));
        }
        // Keys with rows: their stored entry. A timeout does not fire for a key with rows
        // (Spark); its timers do.
        for g in &mut groups {
            if let Some(bytes) = self.store.get(&g.key)? {
                g.entry = decode_stored(&bytes, &self.store_dir)?;
                self.migrate(&mut g.entry)?;
                g.existed = true;
                if g.entry.expire_ttl(&clocks) {
                    self.metrics.removed_by_ttl += 1;
                }
                g.fired = g.entry.take_fired_timers(&clocks);
            }
        }
        // Keys without rows: those with a deadline due. The store is read only when one may be.
        self.next_earliest = (None, None);
        let scan = match self.earliest {
            None => true,
            Some((_, p, e)) => {
                p.is_some_and(|p| p <= clocks.processing) || e.zip(clocks.watermark).is_some_and(|(e, w)| e <= w)
            }
        };
        if !scan {
            let (_, p, e) = self.earliest.expect("known when not scanning");
            self.next_earliest = (p, e);
        } else {
            let mut due: Vec<(Vec<u8>, Entry)> = Vec::new();
            let mut failed: Option<StateError> = None;
            let mut untouched = (None, None);
            self.store.for_each(&mut |k, v| {
                if failed.is_some() || index.contains_key(k) {
                    return;
                }
                match decode_stored(v, &self.store_dir) {
                    Ok(e) if e.due(&clocks) => due.push((k.to_vec(), e)),
                    Ok(e) => untouched = min_pair(untouched, e.earliest()),
                    Err(e) => failed = Some(e),
                }
            })?;
            if let Some(e) = failed {
                return Err(e.into());
            }
            self.next_earliest = untouched;
            // A deterministic order for keys without rows, after the keys with rows.
            due.sort_by(|a, b| a.0.cmp(&b.0));
            for (key, mut entry) in due {
                self.migrate(&mut entry)?;
                if entry.expire_ttl(&clocks) {
                    self.metrics.removed_by_ttl += 1;
                }
                let timed_out = match entry.timeout {
                    Some(t) if clocks.timeout_fired(t) => {
                        entry.timeout = None;
                        true
                    }
                    _ => false,
                };
                let fired = entry.take_fired_timers(&clocks);
                if !timed_out && fired.is_empty() {
                    // Only the TTL passed: no call.
                    self.write_entry(&key, &entry, true);
                    continue;
                }
                groups.push(Group { key, rows: Vec::new(), entry, existed: true, timed_out, fired });
            }
        }
        // The key bytes were copied into the groups: the batch-wide encoding can go.
        drop(index);
        drop(key_rows);
        for g in &groups {
            self.metrics.timed_out_groups += u64::from(g.timed_out);
            self.metrics.expired_timers += g.fired.len() as u64;
        }
        // The calls, in chunks of whole groups.
        let mut outputs = Vec::new();
        let mut start = 0;
        while start < groups.len() {
            let mut end = start;
            let mut rows = 0;
            while end < groups.len()
                && end - start < CALL_GROUPS
                && (end == start || rows + groups[end].rows.len() <= CALL_ROWS)
            {
                rows += groups[end].rows.len();
                end += 1;
            }
            self.run_chunk(&mut groups[start..end], &input, &clocks, bad, &mut outputs)?;
            start = end;
        }
        let metrics = self.store.commit()?;
        let (p, e) = self.next_earliest;
        self.earliest = Some((self.batch_id, p, e));
        let output = arrow::compute::concat_batches(&self.output_schema(), &outputs).expect("outputs share the schema");
        Ok((output, StateOperatorProgress { metrics, num_rows_dropped_by_watermark: self.dropped_late }))
    }

    /// State written by another version of the plugin (a hot swap changed its state version)
    /// is migrated when its key is next loaded: lazily, by the plugin's `migrate-state`. The
    /// store keeps the state as it was before the batch until the batch commits.
    fn migrate(&mut self, entry: &mut Entry) -> Result<(), PluginError> {
        let want = self.plugin.state_version();
        if let Some((version, bytes)) = entry.state.as_ref().filter(|(v, _)| *v != want) {
            let migrated = self.plugin.migrate_state(self.batch_id, *version, bytes)?;
            entry.state = Some((want, migrated));
            self.metrics.migrated += 1;
        }
        Ok(())
    }

    /// Puts another version of the plugin in (a hot swap or a rollback); returns the one it
    /// replaces.
    pub fn replace_plugin(&mut self, plugin: StatefulPlugin) -> StatefulPlugin {
        std::mem::replace(&mut self.plugin, plugin)
    }

    pub fn input_schema(&self) -> SchemaRef {
        self.input_schema.clone()
    }

    pub fn key_schema(&self) -> SchemaRef {
        self.key_schema.clone()
    }

    fn origin(&self) -> String {
        format!("operator[{}] plugin {}", self.index, self.plugin.path().display())
    }

    /// Runs `groups` through the plugin under the operator's error policy, applying each
    /// successful call's results to the store.
    fn run_chunk(
        &mut self,
        groups: &mut [Group],
        input: &[RecordBatch],
        clocks: &Clocks,
        bad: &mut BadRecords,
        outputs: &mut Vec<RecordBatch>,
    ) -> Result<(), StatefulError> {
        let attempts = match self.on_error {
            OnPluginError::Retry(n) => n + 1,
            _ => 1,
        };
        let mut tried = 0;
        loop {
            tried += 1;
            let e = match self.call(groups, input, clocks, bad, outputs) {
                Ok(()) => return Ok(()),
                Err(StatefulError::Plugin(e @ PluginError::Load { .. })) => return Err(e.into()),
                Err(StatefulError::Plugin(e)) => e,
                Err(e) => return Err(e),
            };
            match self.on_error {
                OnPluginError::Retry(_) if tried < attempts => continue,
                OnPluginError::Retry(_) => {
                    return Err(PluginError::Retried { attempts: tried, last: Box::new(e) }.into())
                }
                OnPluginError::Fail => return Err(e.into()),
                OnPluginError::DeadLetter if groups.len() > 1 => {
                    let half = groups.len() / 2;
                    let (head, tail) = groups.split_at_mut(half);
                    self.run_chunk(head, input, clocks, bad, outputs)?;
                    return self.run_chunk(tail, input, clocks, bad, outputs);
                }
                OnPluginError::DeadLetter => {
                    // One key the plugin fails on: its rows are set aside with the error, its
                    // state stays as it was (fired timers and timeout are spent, so that it is
                    // not called again and again for them).
                    let g = &groups[0];
                    let reason = format!(
                        "{e} (on_error = \"dead_letter\": the key's rows were set aside, its state left unchanged)"
                    );
                    if g.rows.is_empty() {
                        bad.keep(BadRecord {
                            origin: self.origin(),
                            line: None,
                            reason,
                            raw: row_as_json(&self.keys_batch(std::slice::from_ref(g)), 0),
                        });
                    } else {
                        for &(p, r) in &g.rows {
                            bad.keep(BadRecord {
                                origin: self.origin(),
                                line: None,
                                reason: reason.clone(),
                                raw: row_as_json(&input[p as usize], r as usize),
                            });
                        }
                    }
                    let (key, entry, existed) = (g.key.clone(), g.entry.clone(), g.existed);
                    self.write_entry(&key, &entry, existed);
                    return Ok(());
                }
            }
        }
    }

    /// One call for `groups`. A refused row, when the job sends bad records to the dead-letter
    /// output, is set aside and the call made again without it.
    fn call(
        &mut self,
        groups: &mut [Group],
        input: &[RecordBatch],
        clocks: &Clocks,
        bad: &mut BadRecords,
        outputs: &mut Vec<RecordBatch>,
    ) -> Result<(), StatefulError> {
        let pieces: Vec<&RecordBatch> = input.iter().collect();
        let time =
            wit::BatchTime { batch_id: self.batch_id, watermark: clocks.watermark, processing_time: clocks.processing };
        let mut refused = BadRecords::new(bad.policy());
        loop {
            let keys = self.keys_batch(groups);
            let mut offsets = Vec::with_capacity(groups.len() + 1);
            offsets.push(0u32);
            let mut take = Vec::with_capacity(groups.iter().map(|g| g.rows.len()).sum());
            for g in groups.iter() {
                take.extend_from_slice(&g.rows);
                offsets.push(take.len() as u32);
            }
            let rows = if take.is_empty() {
                RecordBatch::new_empty(self.input_schema.clone())
            } else {
                let at: Vec<(usize, usize)> = take.iter().map(|&(p, r)| (p as usize, r as usize)).collect();
                arrow::compute::interleave_record_batch(&pieces, &at).expect("row indices come from these pieces")
            };
            let timed_out: Vec<bool> = groups.iter().map(|g| g.timed_out).collect();
            let expired: Vec<Vec<wit::Timer>> =
                groups.iter().map(|g| g.fired.iter().map(|d| timer_to_wit(*d)).collect()).collect();
            let call = GroupsCall {
                keys: &keys,
                rows: &rows,
                row_offsets: &offsets,
                states: groups.iter().map(|g| g.entry.state.as_ref().map(|(_, b)| b.as_slice())).collect(),
                timed_out: &timed_out,
                expired_timers: &expired,
            };
            match self.plugin.process_groups(time, &call) {
                Ok((results, output)) => {
                    for (g, res) in groups.iter().zip(results) {
                        self.apply(g, res, clocks)?;
                    }
                    outputs.push(output);
                    for record in refused.take() {
                        bad.keep(record);
                    }
                    return Ok(());
                }
                Err(PluginError::Refused { row: Some(row), message, .. })
                    if bad.policy() == OnBadRecord::DeadLetter && (row as usize) < take.len() =>
                {
                    let g = offsets.partition_point(|&o| o <= row) - 1;
                    let at = (row - offsets[g]) as usize;
                    let (p, r) = groups[g].rows.remove(at);
                    refused
                        .report(BadRecord {
                            origin: self.origin(),
                            line: None,
                            reason: message,
                            raw: row_as_json(&input[p as usize], r as usize),
                        })
                        .expect("dead_letter policy keeps records");
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The key columns of `groups`, one row each.
    fn keys_batch(&self, groups: &[Group]) -> RecordBatch {
        let parser = self.converter.parser();
        let cols = self
            .converter
            .convert_rows(groups.iter().map(|g| parser.parse(&g.key)))
            .expect("keys were encoded by this converter");
        RecordBatch::try_new(self.key_schema.clone(), cols).expect("key columns match the key schema")
    }

    /// Applies the plugin's answer for one group and writes its entry.
    fn apply(&mut self, g: &Group, res: wit::GroupResult, clocks: &Clocks) -> Result<(), StatefulError> {
        let mut entry = g.entry.clone();
        match res.state {
            wit::StateUpdate::Keep => {}
            wit::StateUpdate::Update(bytes) => entry.state = Some((self.plugin.state_version(), bytes)),
            wit::StateUpdate::Remove => {
                entry.state = None;
                entry.ttl_expires = None;
            }
        }
        if let Some(ms) = res.ttl_ms {
            if entry.state.is_some() {
                entry.ttl_expires = Some(clocks.processing.saturating_add((ms as i64).saturating_mul(1000)));
            }
        }
        entry.timeout = match res.timeout {
            wit::TimeoutUpdate::Keep => entry.timeout,
            wit::TimeoutUpdate::Clear => None,
            wit::TimeoutUpdate::ProcessingTimeMs(ms) => {
                self.allowed(Domain::Processing, "a processing-time timeout")?;
                Some(Deadline {
                    domain: Domain::Processing,
                    at: clocks.processing.saturating_add((ms as i64).saturating_mul(1000)),
                })
            }
            wit::TimeoutUpdate::EventTime(at) => {
                self.allowed(Domain::Event, "an event-time timeout")?;
                Some(Deadline { domain: Domain::Event, at })
            }
        };
        for t in res.delete_timers {
            if entry.delete_timer(timer_from_wit(t)) {
                self.metrics.deleted_timers += 1;
            }
        }
        for t in res.register_timers {
            let d = timer_from_wit(t);
            self.allowed(d.domain, "a timer")?;
            if entry.add_timer(d) {
                self.metrics.registered_timers += 1;
            }
        }
        self.write_entry(&g.key, &entry, g.existed);
        Ok(())
    }

    /// Checks the job's `timeout` allows a deadline of `domain`.
    fn allowed(&self, domain: Domain, what: &str) -> Result<(), PluginError> {
        let ok = matches!(
            (domain, self.mode),
            (Domain::Processing, TimeoutMode::ProcessingTime) | (Domain::Event, TimeoutMode::EventTime)
        );
        if ok {
            return Ok(());
        }
        let (want, mode) = match domain {
            Domain::Processing => ("processing_time", "processing-time"),
            Domain::Event => ("event_time", "event-time"),
        };
        let have = match self.mode {
            TimeoutMode::None => "none",
            TimeoutMode::ProcessingTime => "processing_time",
            TimeoutMode::EventTime => "event_time",
        };
        Err(PluginError::InvalidOutput {
            plugin: self.plugin.path().to_path_buf(),
            export: "process-groups",
            batch: BatchLabel(Some(self.batch_id)),
            message: format!(
                "it set {what} ({mode}) but operator[{}] has timeout = \"{have}\"; set timeout = \"{want}\" in the job file if the plugin is meant to",
                self.index
            ),
        })
    }

    fn write_entry(&mut self, key: &[u8], entry: &Entry, existed: bool) {
        if entry.is_empty() {
            if existed {
                self.store.remove(key);
            }
        } else {
            self.store.put(key, &entry.encode());
            self.next_earliest = min_pair(self.next_earliest, entry.earliest());
        }
    }
}

fn key_schema(schema: &SchemaRef, keys: &[usize]) -> SchemaRef {
    std::sync::Arc::new(Schema::new(keys.iter().map(|&i| schema.field(i).clone()).collect::<Vec<_>>()))
}

fn min_pair(a: (Option<i64>, Option<i64>), b: (Option<i64>, Option<i64>)) -> (Option<i64>, Option<i64>) {
    let min = |x: Option<i64>, y: Option<i64>| match (x, y) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    (min(a.0, b.0), min(a.1, b.1))
}

fn timer_to_wit(d: Deadline) -> wit::Timer {
    let domain = match d.domain {
        Domain::Processing => wit::TimeDomain::ProcessingTime,
        Domain::Event => wit::TimeDomain::EventTime,
    };
    wit::Timer { domain, at: d.at }
}

fn timer_from_wit(t: wit::Timer) -> Deadline {
    let domain = match t.domain {
        wit::TimeDomain::ProcessingTime => Domain::Processing,
        wit::TimeDomain::EventTime => Domain::Event,
    };
    Deadline { domain, at: t.at }
}

impl Operator for StatefulOperator {
    fn index(&self) -> usize {
        self.index
    }

    fn output_schema(&self) -> SchemaRef {
        StatefulOperator::output_schema(self)
    }

    fn begin(&mut self, ctx: &mut BatchContext) -> anyhow::Result<()> {
        use anyhow::Context;
        let (id, index) = (ctx.batch_id, self.index);
        StatefulOperator::begin(self, id)
            .with_context(|| format!("batch {id}: operator[{index}] (stateful): loading state"))
    }

    /// Takes the rows in; the plugin is called per key when the batch finishes.
    fn process(&mut self, ctx: &mut BatchContext, input: &RecordBatch) -> anyhow::Result<Vec<RecordBatch>> {
        let late = StatefulOperator::process(self, input, ctx.late_watermark);
        ctx.late_rows(&format!("operator[{}] (stateful)", self.index), input, &late);
        Ok(Vec::new())
    }

    fn finish(&mut self, ctx: &mut BatchContext) -> anyhow::Result<Vec<RecordBatch>> {
        use anyhow::Context;
        let (id, index) = (ctx.batch_id, self.index);
        let (result, p) =
            self.end(ctx.clocks, ctx.bad).with_context(|| format!("batch {id}: operator[{index}] (stateful)"))?;
        let m = self.metrics();
        let custom = serde_json::json!({
            "numTimedOutGroups": m.timed_out_groups,
            "numExpiredTimers": m.expired_timers,
            "numRegisteredTimers": m.registered_timers,
            "numDeletedTimers": m.deleted_timers,
            "numValuesRemovedDueToTTLExpiry": m.removed_by_ttl,
            "numStatesMigrated": m.migrated,
        });
        self.last_progress = Some(state_progress("flatMapGroupsWithState", &p, custom));
        Ok(vec![result])
    }

    fn progress(&self) -> Option<serde_json::Value> {
        self.last_progress.clone()
    }

    fn wants_no_data_batch(&self, watermark_moved: bool, now_micros: i64) -> bool {
        (watermark_moved && self.evicts_by_watermark()) || self.processing_deadline_due(now_micros)
    }

    fn plugin(&self) -> Option<&dyn PluginSlot> {
        Some(self)
    }

    fn plugin_mut(&mut self) -> Option<&mut dyn PluginSlot> {
        Some(self)
    }
}

impl PluginSlot for StatefulOperator {
    fn digest(&self) -> &str {
        self.plugin.digest()
    }

    fn path(&self) -> &std::path::Path {
        self.plugin.path()
    }

    fn state_version(&self) -> Option<u32> {
        Some(self.plugin.state_version())
    }

    fn load(&self, runtime: &Runtime, path: &std::path::Path) -> Result<Box<dyn PluginVersion>, String> {
        let (config, limits) = self.settings.clone().unwrap_or_default();
        let p = StatefulPlugin::load(runtime, path, &config, limits, &self.key_schema(), &self.input_schema())
            .map_err(|e| e.to_string())?;
        Ok(Box::new(p))
    }

    fn replace(&mut self, version: Box<dyn PluginVersion>) -> Box<dyn PluginVersion> {
        let any: Box<dyn std::any::Any> = version;
        let new = any.downcast::<StatefulPlugin>().expect("a version this slot loaded, of the stateful world");
        Box::new(self.replace_plugin(*new))
    }

    fn take_metrics(&mut self) -> crate::plugin::PluginMetrics {
        self.plugin.take_metrics()
    }
}

impl PluginVersion for StatefulPlugin {
    fn digest(&self) -> &str {
        StatefulPlugin::digest(self)
    }

    fn output_schema(&self) -> SchemaRef {
        StatefulPlugin::output_schema(self)
    }

    fn state_version(&self) -> Option<u32> {
        Some(StatefulPlugin::state_version(self))
    }
}
