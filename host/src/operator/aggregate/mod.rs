//! `aggregate`: Spark's streaming `groupBy(...).agg(...)`, optionally over an event-time window
//! (tumbling, sliding or session). Each micro-batch is first aggregated on its own (a hash map
//! from group and window to accumulators), then merged into the state store, one entry per
//! group and window (per group for sessions, holding its open sessions). What is emitted
//! depends on the output mode, as in Spark:
//! - append: a window once the watermark reaches its end (then it leaves the state);
//! - update: every group/window this batch changed (windows behind the watermark then leave);
//! - complete: the whole result table, every batch (nothing is evicted; no row is late, except
//!   for session windows, where Spark drops late rows in every mode).
//!
//! The watermarks follow Spark (3.5+): in batch N a row is late when every window it belongs to
//! ends at or before the watermark of batch N−1, and windows ending at or before the watermark
//! of batch N are emitted (append) and evicted at the end of batch N.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, RowParser, SortField};
use rustc_hash::FxHashMap;

use self::function::{encode, merge, update, Acc, BoundAggregate, Column, Decoder, Overflow};
use self::window::WindowKind;
use super::{key_indices, StateOperatorProgress};
use crate::config::{AggregateConfig, OutputMode};
use crate::engine::operator::{state_progress, BatchContext, Operator};
use crate::schema::timestamp_column;
use crate::state::{StateError, StateStore};

/// Aggregate functions: accumulators, their state encoding and output columns.
pub mod function;
/// approx_count_distinct's sketch.
pub mod hll;
/// Window assignment.
pub mod window;

#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("aggregate `{name}`: {source}; the group's values are too large for a bigint sum (use a double column)")]
    Overflow {
        name: String,
        #[source]
        source: Overflow,
    },
}

/// One open session of a group: `[start, end)` and its accumulators.
#[derive(Debug, Clone)]
struct Session {
    start: i64,
    end: i64,
    accs: Vec<Acc>,
}

/// A micro-batch's own aggregation, before it is merged into the state.
#[derive(Default)]
struct Partial {
    /// Group key (arrow row bytes) → group id.
    groups: FxHashMap<Box<[u8]>, u32>,
    group_keys: Vec<Box<[u8]>>,
    /// (group id, window start) → slot; without a window the start is 0.
    slots: FxHashMap<(u32, i64), u32>,
    slot_keys: Vec<(u32, i64)>,
    /// Slot-major: the accumulators of slot s are `accs[s * n .. (s + 1) * n]`.
    accs: Vec<Acc>,
    /// Session windows: per group id, its sessions in this batch, sorted by start.
    sessions: FxHashMap<u32, Vec<Session>>,
}

/// One row of output before it becomes columns.
struct OutRow {
    window: Option<(i64, i64)>,
    group: Box<[u8]>,
    accs: Vec<Acc>,
}

pub struct AggregateOperator {
    index: usize,
    /// The `stateOperators[]` entry of the last batch.
    last_progress: Option<serde_json::Value>,
    group: Vec<usize>,
    /// None when there are no group columns (one global group).
    converter: Option<(RowConverter, RowParser)>,
    /// The event-time column and the window kind.
    window: Option<(usize, WindowKind)>,
    aggs: Vec<BoundAggregate>,
    mode: OutputMode,
    /// Old windows are evicted (the window is on the watermark column and the mode is not
    /// complete).
    watermarked: bool,
    /// Late rows are dropped: as `watermarked`, and also for session windows in complete mode
    /// (Spark filters late rows before merging sessions whatever the mode).
    drops_late: bool,
    store: Box<dyn StateStore>,
    output: SchemaRef,
    partial: Partial,
    dropped_late: u64,
    null_event_time: u64,
}

/// Group column indices, the window (event-time column index and kind), the bound aggregates and
/// the output schema.
pub type Plan = (Vec<usize>, Option<(usize, WindowKind)>, Vec<BoundAggregate>, SchemaRef);

/// The operator's output schema and bound aggregates, checked against the input schema before
/// any state is opened. Errors name the job field at fault (relative to the operator).
pub fn plan(schema: &SchemaRef, cfg: &AggregateConfig) -> Result<Plan, (String, String)> {
    let group = key_indices(schema, &cfg.group_by).map_err(|e| ("group_by".to_string(), e))?;
    let window = match &cfg.window {
        Some(w) => Some((
            timestamp_column(schema, &w.column, "the input", "a window")
                .map_err(|e| ("window.column".to_string(), e))?,
            w.kind,
        )),
        None => None,
    };
    let mut aggs = Vec::new();
    let mut fields: Vec<Field> = Vec::new();
    if let Some((i, _)) = window {
        let t = schema.field(i).data_type().clone();
        fields.push(Field::new("window_start", t.clone(), false));
        fields.push(Field::new("window_end", t, false));
    }
    fields.extend(group.iter().map(|&i| schema.field(i).clone()));
    for (n, a) in cfg.aggregates.iter().enumerate() {
        let bound = BoundAggregate::bind(a.func, a.column.as_deref(), &a.name, schema)
            .map_err(|e| (format!("aggregates[{n}]"), e))?;
        if fields.iter().any(|f| f.name() == &a.name) {
            return Err((
                format!("aggregates[{n}].as"),
                format!("the output already has a column `{}`; choose another name", a.name),
            ));
        }
        fields.push(bound.field());
        aggs.push(bound);
    }
    Ok((group, window, aggs, Arc::new(Schema::new(fields))))
}

/// Keys of fixed windows end with the window start, big-endian with the sign bit flipped so that
/// keys sort by time.
fn start_bytes(start: i64) -> [u8; 8] {
    ((start as u64) ^ (1 << 63)).to_be_bytes()
}

fn start_from(bytes: &[u8]) -> i64 {
    (u64::from_be_bytes(bytes.try_into().expect("8 bytes")) ^ (1 << 63)) as i64
}

impl AggregateOperator {
    /// `watermark_column`: the job's. Checks the configuration against `schema` (see [`plan`]).
    pub fn new(
        schema: &SchemaRef,
        cfg: &AggregateConfig,
        mode: OutputMode,
        watermark_column: Option<&str>,
        store: Box<dyn StateStore>,
    ) -> Result<AggregateOperator, (String, String)> {
        let (group, window, aggs, output) = plan(schema, cfg)?;
        let converter = if group.is_empty() {
            None
        } else {
            let fields = group.iter().map(|&i| SortField::new(schema.field(i).data_type().clone())).collect();
            let c = RowConverter::new(fields).map_err(|e| ("group_by".to_string(), e.to_string()))?;
            let p = c.parser();
            Some((c, p))
        };
        let on_watermark = cfg.window.as_ref().is_some_and(|w| Some(w.column.as_str()) == watermark_column);
        let watermarked = on_watermark && mode != OutputMode::Complete;
        let drops_late = watermarked || (on_watermark && matches!(window, Some((_, WindowKind::Session { .. }))));
        Ok(AggregateOperator {
            index: cfg.index,
            last_progress: None,
            group,
            converter,
            window,
            aggs,
            mode,
            watermarked,
            drops_late,
            store,
            output,
            partial: Partial::default(),
            dropped_late: 0,
            null_event_time: 0,
        })
    }

    pub fn index(&self) -> usize {
        self.index
    }

    pub fn output_schema(&self) -> SchemaRef {
        self.output.clone()
    }

    /// Whether state is bounded by the watermark (else it grows with every new group/window).
    pub fn bounded(&self) -> bool {
        self.watermarked
    }

    pub fn is_session(&self) -> bool {
        matches!(self.window, Some((_, WindowKind::Session { .. })))
    }

    /// Spark's name for the operator in progress records.
    pub fn progress_name(&self) -> &'static str {
        if self.is_session() {
            "sessionWindowStateStoreSaveExec"
        } else {
            "stateStoreSave"
        }
    }

    /// Rows whose event time was null in this batch (in no window).
    pub fn null_event_time_rows(&self) -> u64 {
        self.null_event_time
    }

    /// Starts batch `batch_id` from the state committed by the batch before.
    pub fn begin(&mut self, batch_id: u64) -> Result<(), StateError> {
        self.partial = Partial::default();
        self.dropped_late = 0;
        self.null_event_time = 0;
        self.store.begin(batch_id)
    }

    fn overflow(&self, a: usize) -> impl Fn(Overflow) -> AggregateError + '_ {
        move |source| AggregateError::Overflow { name: self.aggs[a].name.clone(), source }
    }

    /// Adds `input`'s rows to this batch's aggregation. `late_watermark` is the watermark of the
    /// batch before (µs); returns the indices of rows dropped as late (in no open window).
    pub fn process(&mut self, input: &RecordBatch, late_watermark: i64) -> Result<Vec<u32>, AggregateError> {
        let n = input.num_rows();
        let group_rows = match &self.converter {
            Some((c, _)) => {
                let cols: Vec<ArrayRef> = self.group.iter().map(|&i| input.column(i).clone()).collect();
                Some(c.convert_columns(&cols).expect("group columns match the converter's fields"))
            }
            None => None,
        };
        let mut gids = Vec::with_capacity(n);
        let p = &mut self.partial;
        for r in 0..n {
            let key: &[u8] = group_rows.as_ref().map_or(&[], |rows| rows.row(r).data());
            let gid = match p.groups.get(key) {
                Some(&g) => g,
                None => {
                    let g = p.group_keys.len() as u32;
                    p.groups.insert(key.into(), g);
                    p.group_keys.push(key.into());
                    g
                }
            };
            gids.push(gid);
        }
        let cols: Vec<Option<Column>> =
            self.aggs.iter().map(|a| a.column.map(|c| Column::new(input.column(c)))).collect();
        let stride = self.aggs.len();
        let mut late = Vec::new();
        let Some((tcol, kind)) = self.window else {
            // A running aggregation: one slot per group.
            let pairs: Vec<(u32, u32)> =
                gids.iter().enumerate().map(|(r, &g)| (slot(p, stride, &self.aggs, g, 0), r as u32)).collect();
            return self.update_pairs(&cols, &pairs).map(|()| late);
        };
        let times: TimestampMicrosecondArray = input.column(tcol).as_primitive::<TimestampMicrosecondType>().clone();
        let drops_late = self.drops_late;
        if let WindowKind::Session { gap } = kind {
            for (r, &gid) in gids.iter().enumerate() {
                if times.is_null(r) {
                    self.null_event_time += 1;
                    continue;
                }
                let t = times.value(r);
                if drops_late && t + gap <= late_watermark {
                    self.dropped_late += 1;
                    late.push(r as u32);
                    continue;
                }
                let sessions = self.partial.sessions.entry(gid).or_default();
                let accs = add_to_sessions(sessions, t, t + gap, &self.aggs)
                    .map_err(|(a, source)| AggregateError::Overflow { name: self.aggs[a].name.clone(), source })?;
                for (a, acc) in accs.iter_mut().enumerate() {
                    update(acc, cols[a].as_ref(), r)
                        .map_err(|source| AggregateError::Overflow { name: self.aggs[a].name.clone(), source })?;
                }
            }
            return Ok(late);
        }
        let mut pairs: Vec<(u32, u32)> = Vec::with_capacity(n);
        for (r, &g) in gids.iter().enumerate() {
            if times.is_null(r) {
                self.null_event_time += 1;
                continue;
            }
            let t = times.value(r);
            if drops_late && kind.latest_end(t) <= late_watermark {
                self.dropped_late += 1;
                late.push(r as u32);
                continue;
            }
            kind.for_each_fixed(t, |start| {
                // A sliding window of this row may already be closed while later ones are open.
                if !drops_late || kind.end(start) > late_watermark {
                    pairs.push((slot(&mut self.partial, stride, &self.aggs, g, start), r as u32));
                }
            });
        }
        self.update_pairs(&cols, &pairs)?;
        Ok(late)
    }

    fn update_pairs(&mut self, cols: &[Option<Column>], pairs: &[(u32, u32)]) -> Result<(), AggregateError> {
        let stride = self.aggs.len();
        let accs = &mut self.partial.accs;
        for (a, col) in cols.iter().enumerate() {
            for &(s, r) in pairs {
                update(&mut accs[s as usize * stride + a], col.as_ref(), r as usize)
                    .map_err(|source| AggregateError::Overflow { name: self.aggs[a].name.clone(), source })?;
            }
        }
        Ok(())
    }

    /// Merges the batch into the state, applies the output mode, evicts windows ending at or
    /// before `watermark` (this batch's), commits, and returns the output rows.
    pub fn end(&mut self, watermark: i64) -> Result<(RecordBatch, StateOperatorProgress), AggregateError> {
        let partial = std::mem::take(&mut self.partial);
        let stride = self.aggs.len();
        let mut updated: Vec<OutRow> = Vec::new();
        let mut value = Vec::new();
        match self.window {
            Some((_, WindowKind::Session { .. })) => {
                for (gid, new_sessions) in partial.sessions {
                    let group = &partial.group_keys[gid as usize];
                    let mut all = match self.store.get(group)? {
                        Some(bytes) => self.decode_sessions(group, &bytes)?,
                        None => Vec::new(),
                    };
                    all.extend(new_sessions.into_iter().map(|s| (s, true)));
                    let merged = self.merge_sessions(all)?;
                    for (s, changed) in &merged {
                        if *changed {
                            updated.push(OutRow {
                                window: Some((s.start, s.end)),
                                group: group.clone(),
                                accs: s.accs.clone(),
                            });
                        }
                    }
                    value.clear();
                    encode_sessions(merged.iter().map(|(s, _)| s), &mut value);
                    self.store.put(group, &value);
                }
            }
            _ => {
                let mut accs = partial.accs.into_iter();
                for &(gid, start) in &partial.slot_keys {
                    let fresh: Vec<Acc> = accs.by_ref().take(stride).collect();
                    let group = &partial.group_keys[gid as usize];
                    let mut key = group.to_vec();
                    if self.window.is_some() {
                        key.extend(start_bytes(start));
                    }
                    let merged = match self.store.get(&key)? {
                        Some(bytes) => {
                            let mut old = self.decode_accs(&key, &bytes)?;
                            for (a, (o, f)) in old.iter_mut().zip(&fresh).enumerate() {
                                merge(o, f).map_err(self.overflow(a))?;
                            }
                            old
                        }
                        None => fresh,
                    };
                    value.clear();
                    encode(&merged, &mut value);
                    self.store.put(&key, &value);
                    if self.mode == OutputMode::Update {
                        let window = self.window.map(|(_, k)| (start, k.end(start)));
                        updated.push(OutRow { window, group: group.clone(), accs: merged });
                    }
                }
            }
        }
        let mut out = match self.mode {
            OutputMode::Update => updated,
            OutputMode::Complete => self.scan(None)?,
            OutputMode::Append => Vec::new(),
        };
        if self.watermarked {
            let closed = self.scan(Some(watermark))?;
            if self.mode == OutputMode::Append {
                out = closed;
            }
        }
        out.sort_by(|a, b| (a.window, &a.group).cmp(&(b.window, &b.group)));
        let batch = self.to_batch(&out);
        let metrics = self.store.commit()?;
        Ok((batch, StateOperatorProgress { metrics, num_rows_dropped_by_watermark: self.dropped_late }))
    }

    /// Every group/window in the state; with `evict_until`, only windows ending at or before it,
    /// which are removed from the state.
    fn scan(&mut self, evict_until: Option<i64>) -> Result<Vec<OutRow>, AggregateError> {
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let session = self.is_session();
        let fixed = self.window.map(|(_, k)| k);
        self.store.for_each(&mut |k, v| {
            let keep = match (evict_until, fixed) {
                // Sessions: decoded below (the value holds several).
                (Some(_), _) if session => true,
                (Some(wm), Some(kind)) => k.len() >= 8 && kind.end(start_from(&k[k.len() - 8..])) <= wm,
                _ => true,
            };
            if keep {
                entries.push((k.to_vec(), v.to_vec()));
            }
        })?;
        let mut out = Vec::new();
        let mut value = Vec::new();
        for (key, bytes) in entries {
            if session {
                let sessions = self.decode_sessions(&key, &bytes)?;
                let (closed, open): (Vec<_>, Vec<_>) =
                    sessions.into_iter().map(|(s, _)| s).partition(|s| evict_until.is_some_and(|wm| s.end <= wm));
                let emitted = if evict_until.is_some() { closed.clone() } else { open.clone() };
                for s in emitted {
                    out.push(OutRow { window: Some((s.start, s.end)), group: key.clone().into(), accs: s.accs });
                }
                if evict_until.is_some() && !closed.is_empty() {
                    if open.is_empty() {
                        self.store.remove(&key);
                    } else {
                        value.clear();
                        encode_sessions(open.iter(), &mut value);
                        self.store.put(&key, &value);
                    }
                }
                continue;
            }
            let accs = self.decode_accs(&key, &bytes)?;
            let (group, window) = match fixed {
                Some(kind) => {
                    let start = start_from(&key[key.len() - 8..]);
                    (key[..key.len() - 8].into(), Some((start, kind.end(start))))
                }
                None => (key.clone().into(), None),
            };
            if evict_until.is_some() {
                self.store.remove(&key);
            }
            out.push(OutRow { window, group, accs });
        }
        Ok(out)
    }

    fn corrupt(&self, key: &[u8]) -> StateError {
        StateError::Corrupt {
            dir: std::path::PathBuf::from(format!("operator[{}]", self.index)),
            message: format!("the aggregate state of key {key:02x?} cannot be decoded"),
        }
    }

    fn decode_accs(&self, key: &[u8], bytes: &[u8]) -> Result<Vec<Acc>, StateError> {
        let mut d = Decoder::new(bytes);
        match d.accs(self.aggs.len()) {
            Some(a) if d.is_empty() => Ok(a),
            _ => Err(self.corrupt(key)),
        }
    }

    /// A group's stored sessions, each marked unchanged.
    fn decode_sessions(&self, key: &[u8], bytes: &[u8]) -> Result<Vec<(Session, bool)>, StateError> {
        let mut d = Decoder::new(bytes);
        let parse = |d: &mut Decoder| -> Option<Vec<(Session, bool)>> {
            let n = d.u32()?;
            (0..n)
                .map(|_| Some((Session { start: d.i64()?, end: d.i64()?, accs: d.accs(self.aggs.len())? }, false)))
                .collect()
        };
        match parse(&mut d) {
            Some(s) if d.is_empty() => Ok(s),
            _ => Err(self.corrupt(key)),
        }
    }

    /// Sorts sessions by start and merges those that overlap or touch; a result is changed
    /// when it holds a changed session. Stored sessions come first in `all` (they arrived
    /// earlier), and the sort is stable, so first/last keep arrival order for equal starts.
    fn merge_sessions(&self, mut all: Vec<(Session, bool)>) -> Result<Vec<(Session, bool)>, AggregateError> {
        all.sort_by_key(|(s, _)| s.start);
        let mut out: Vec<(Session, bool)> = Vec::with_capacity(all.len());
        for (s, changed) in all {
            match out.last_mut() {
                Some((cur, cur_changed)) if s.start <= cur.end => {
                    cur.end = cur.end.max(s.end);
                    for (a, (acc, later)) in cur.accs.iter_mut().zip(&s.accs).enumerate() {
                        merge(acc, later).map_err(self.overflow(a))?;
                    }
                    *cur_changed |= changed;
                }
                _ => out.push((s, changed)),
            }
        }
        Ok(out)
    }

    fn to_batch(&self, rows: &[OutRow]) -> RecordBatch {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.output.fields().len());
        if self.window.is_some() {
            let tz = match self.output.field(0).data_type() {
                DataType::Timestamp(_, tz) => tz.clone(),
                _ => None,
            };
            let bounds: Vec<(i64, i64)> = rows.iter().map(|r| r.window.expect("a windowed row")).collect();
            for a in [
                TimestampMicrosecondArray::from_iter_values(bounds.iter().map(|w| w.0)),
                TimestampMicrosecondArray::from_iter_values(bounds.iter().map(|w| w.1)),
            ] {
                columns.push(Arc::new(a.with_timezone_opt(tz.clone())));
            }
        }
        if let Some((c, p)) = &self.converter {
            columns.extend(
                c.convert_rows(rows.iter().map(|r| p.parse(&r.group)))
                    .expect("group keys were written by this converter"),
            );
        }
        for (a, agg) in self.aggs.iter().enumerate() {
            columns.push(function::output_column(agg, a, rows.iter().map(|r| r.accs.as_slice())));
        }
        RecordBatch::try_new(self.output.clone(), columns).expect("columns match the output schema")
    }
}

/// The slot of (group, window start) in the partial aggregation, created empty when new.
#[inline]
fn slot(p: &mut Partial, stride: usize, aggs: &[BoundAggregate], g: u32, start: i64) -> u32 {
    if let Some(&s) = p.slots.get(&(g, start)) {
        return s;
    }
    let s = p.slot_keys.len() as u32;
    p.slots.insert((g, start), s);
    p.slot_keys.push((g, start));
    p.accs.extend(aggs.iter().map(BoundAggregate::empty));
    debug_assert_eq!(p.accs.len(), (s as usize + 1) * stride);
    s
}

/// Adds the event window `[start, end)` to a group's sorted sessions, merging every session it
/// overlaps or touches; returns the accumulators of the session that now holds the event (or
/// which aggregate overflowed while merging).
fn add_to_sessions<'a>(
    sessions: &'a mut Vec<Session>,
    start: i64,
    end: i64,
    aggs: &[BoundAggregate],
) -> Result<&'a mut Vec<Acc>, (usize, Overflow)> {
    // Events come mostly in time order: first try the latest session (one memory access, where
    // a binary search over a group's sessions costs a cache miss per step).
    match sessions.last() {
        None => {}
        Some(last) if last.end < start => {
            sessions.push(Session { start, end, accs: aggs.iter().map(BoundAggregate::empty).collect() });
            return Ok(&mut sessions.last_mut().expect("just pushed").accs);
        }
        Some(last) if last.start <= end && (sessions.len() == 1 || sessions[sessions.len() - 2].end < start) => {
            let last = sessions.last_mut().expect("not empty");
            last.start = last.start.min(start);
            last.end = last.end.max(end);
            return Ok(&mut last.accs);
        }
        Some(_) => {}
    }
    // Sessions overlapping [start, end]: those with s.start <= end and s.end >= start.
    let first = sessions.partition_point(|s| s.end < start);
    let mut last = first;
    while last < sessions.len() && sessions[last].start <= end {
        last += 1;
    }
    if first == last {
        sessions.insert(first, Session { start, end, accs: aggs.iter().map(BoundAggregate::empty).collect() });
        return Ok(&mut sessions[first].accs);
    }
    let merged: Vec<Session> = sessions.drain(first + 1..last).collect();
    let target = &mut sessions[first];
    target.start = target.start.min(start);
    target.end = target.end.max(end);
    for m in merged {
        target.end = target.end.max(m.end);
        for (a, (acc, later)) in target.accs.iter_mut().zip(&m.accs).enumerate() {
            merge(acc, later).map_err(|e| (a, e))?;
        }
    }
    Ok(&mut sessions[first].accs)
}

fn encode_sessions<'a>(sessions: impl ExactSizeIterator<Item = &'a Session>, out: &mut Vec<u8>) {
    out.extend((sessions.len() as u32).to_le_bytes());
    for s in sessions {
        out.extend(s.start.to_le_bytes());
        out.extend(s.end.to_le_bytes());
        encode(&s.accs, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::parse_ddl;

    fn spans(sessions: &[Session]) -> Vec<(i64, i64, i64)> {
        sessions
            .iter()
            .map(|s| match s.accs[0] {
                Acc::Count(n) => (s.start, s.end, n),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn events_in_any_order_build_the_same_merged_sessions() {
        let schema = parse_ddl("t timestamp").unwrap();
        let aggs = vec![BoundAggregate::bind(function::AggFn::Count, None, "n", &schema).unwrap()];
        // Gap 5: 0 and 3 make [0, 8); 20 → [20, 25); 12 → [12, 17); 8 touches [0, 8) and overlaps
        // [12, 17): one session [0, 17) of 4. 30 → [30, 35); 25 touches both [20, 25) and
        // [30, 35): [20, 35) of 3. 50 → [50, 55).
        let mut sessions = Vec::new();
        for t in [0, 3, 20, 12, 8, 30, 25, 50] {
            let accs = add_to_sessions(&mut sessions, t, t + 5, &aggs).unwrap();
            update(&mut accs[0], None, 0).unwrap();
        }
        assert_eq!(spans(&sessions), vec![(0, 17, 4), (20, 35, 3), (50, 55, 1)]);
        // The same events in time order give the same sessions.
        let mut ordered = Vec::new();
        for t in [0, 3, 8, 12, 20, 25, 30, 50] {
            let accs = add_to_sessions(&mut ordered, t, t + 5, &aggs).unwrap();
            update(&mut accs[0], None, 0).unwrap();
        }
        assert_eq!(spans(&ordered), spans(&sessions));
    }
}

impl Operator for AggregateOperator {
    fn index(&self) -> usize {
        self.index
    }

    fn output_schema(&self) -> SchemaRef {
        self.output.clone()
    }

    fn begin(&mut self, ctx: &mut BatchContext) -> anyhow::Result<()> {
        use anyhow::Context;
        let (id, index) = (ctx.batch_id, self.index);
        AggregateOperator::begin(self, id)
            .with_context(|| format!("batch {id}: operator[{index}] (aggregate): loading state"))
    }

    /// Takes the rows in; the result comes when the batch finishes.
    fn process(&mut self, ctx: &mut BatchContext, input: &RecordBatch) -> anyhow::Result<Vec<RecordBatch>> {
        use anyhow::Context;
        let (id, index) = (ctx.batch_id, self.index);
        let late = AggregateOperator::process(self, input, ctx.late_watermark)
            .with_context(|| format!("batch {id}: operator[{index}] (aggregate): aggregating"))?;
        ctx.late_rows(&format!("operator[{index}] (aggregate)"), input, &late);
        Ok(Vec::new())
    }

    fn finish(&mut self, ctx: &mut BatchContext) -> anyhow::Result<Vec<RecordBatch>> {
        use anyhow::Context;
        let (id, index) = (ctx.batch_id, self.index);
        let (result, p) = self
            .end(ctx.watermark)
            .with_context(|| format!("batch {id}: operator[{index}] (aggregate): updating state"))?;
        let custom = serde_json::json!({ "numRowsWithNullEventTime": self.null_event_time_rows() });
        self.last_progress = Some(state_progress(self.progress_name(), &p, custom));
        Ok(vec![result])
    }

    fn progress(&self) -> Option<serde_json::Value> {
        self.last_progress.clone()
    }

    fn wants_no_data_batch(&self, watermark_moved: bool, _now_micros: i64) -> bool {
        watermark_moved && self.bounded()
    }
}
