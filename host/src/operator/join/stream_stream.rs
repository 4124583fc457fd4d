//! A stream joined to a stream: Spark's symmetric hash join (`StreamingSymmetricHashJoinExec`),
//! batch by batch, as Spark 4.3 runs it (checked against its output and progress figures in
//! `tests/joins/stream-stream` and `tests/joins/null-keys`).
//!
//! Each side buffers its rows ([`SideState`]) so that rows of the other side arriving later can
//! still join them. Within a batch every left piece is processed before any right piece, as Spark
//! does: a left row joins the right rows buffered by earlier batches and is buffered; a right row
//! joins every buffered left row, this batch's included, so each pair is emitted exactly once.
//! A right row that its side's state watermark already passes is not buffered (no later left row
//! can meet it), unless it must come out unmatched. A buffered row records whether anything
//! joined it (`matched`); when its side's state watermark passes it at the end of a batch it
//! leaves, and an outer side's unmatched rows are emitted null-padded then.
//!
//! A left semi join emits a left row once, at its first match, and (Spark 4.3, SPARK-55973)
//! processes the right side first: a left row matched on arrival is emitted and never buffered,
//! and a buffered left row leaves the state as soon as a right row matches it.
//!
//! Null keys and range-condition times: on a side that is not kept whole (every side of an inner
//! or semi join, the inner side of a left or right outer join) such rows are dropped before the
//! join, as the `isnotnull` filters Spark's optimizer infers from the join condition drop them.
//! On an outer side they are buffered; a null time matches nothing, and a key compares as Spark's
//! key rows do, a null equal to a null, so in a full outer join (the one join with both sides
//! kept whole) a null key matches a null key, as Spark 4.3 does
//! (`tests/joins/null-keys/full_outer`).

use arrow::array::{ArrayRef, UInt32Array};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};

use super::keys::KeyEncoder;
use super::output::{output_schema, OutputLayout};
use super::spec::{JoinSpec, JoinType, Side};
use super::stream_state::{Evicted, RowId, SideMetrics, SideState};
use super::time_range::{event_times, Eviction, StateWatermarks, TimeRange, WatermarkInputs};
use crate::operator::StateOperatorProgress;
use crate::schema::type_name;
use crate::state::{StateError, StateMetrics, StateStore};

/// Why a batch of a stream-stream join failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamJoinError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("stream-stream join: {0} (a bug in weir: please report it with the job file)")]
    Arrow(#[from] ArrowError),
    /// The engine called the join out of order (a bug in weir's engine).
    #[error("stream-stream join: {0} (a bug in weir's engine: please report it with the job file)")]
    Order(String),
}

/// Spark 4.3's refusal of a stream-stream outer join in another output mode than append
/// (`tests/joins/spark_refusals.txt`); `mode` as the job names it (`append`, `update`,
/// `complete`). Inner and left semi joins pass in any mode: Spark 4.3 starts them in update mode
/// (their output is the same), and refuses complete mode without an aggregation by its general
/// rule, which is not the join's to check.
pub fn check_output_mode(join_type: JoinType, mode: &str) -> Result<(), String> {
    let outer = matches!(join_type, JoinType::LeftOuter | JoinType::RightOuter | JoinType::FullOuter);
    if mode.eq_ignore_ascii_case("append") || !outer {
        return Ok(());
    }
    let mut spark = mode.to_ascii_lowercase();
    if let Some(first) = spark.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    Err(format!(
        "{} join between two streaming DataFrames/Datasets is not supported in {spark} output mode, only in \
         Append output mode (Spark's rule: an outer row comes out once, when it can no longer match); set \
         output_mode = \"append\"",
        join_type.spark_name()
    ))
}

/// One input of the join.
struct Input {
    schema: SchemaRef,
    /// Key columns, in key order.
    keys: Vec<usize>,
    /// The job's watermark column in this input, when it has it: rows at or behind the previous
    /// batch's watermark are late.
    watermark: Option<usize>,
    /// Whole rows as bytes, for the state.
    converter: RowConverter,
    state: SideState,
}

/// A stream-stream join: both sides' state, and what the current batch has done.
pub struct StreamStreamJoin {
    join_type: JoinType,
    layout: OutputLayout,
    encoder: KeyEncoder,
    range: Option<TimeRange>,
    watermarks: StateWatermarks,
    left: Input,
    right: Input,
    /// The batch in progress, with its two watermarks (µs): rows at or behind `late` are late;
    /// state is evicted at the state watermarks solved from `eviction`.
    batch: Option<BatchWatermarks>,
    /// A piece of the side processed second was processed in this batch: no piece of the first
    /// side may follow.
    second_started: bool,
    dropped_late: u64,
    progress: StateOperatorProgress,
}

#[derive(Debug, Clone, Copy)]
struct BatchWatermarks {
    late: i64,
    eviction: i64,
}

fn spark_watermark_refusal(join_type: JoinType) -> String {
    format!(
        "Stream-stream {} join between two streaming DataFrame/Datasets is not supported without a watermark in \
         the join keys, or a watermark on the nullable side and an appropriate range condition",
        join_type.spark_name()
    )
}

fn is_event_time(t: &DataType) -> bool {
    match t {
        DataType::Timestamp(TimeUnit::Microsecond, _) => true,
        DataType::Struct(f) => {
            f.len() >= 2 && matches!(f[1].data_type(), DataType::Timestamp(TimeUnit::Microsecond, _))
        }
        _ => false,
    }
}

impl StreamStreamJoin {
    /// A join of `spec` between streams of `left_schema` and `right_schema`, with an optional
    /// range condition (`time_range`, column indices into each side), each side's watermark
    /// column (the job's watermark column, when that side's input has it) and one state store
    /// per side. Refuses, with Spark's words (`UnsupportedOperationChecker`), a left anti join
    /// and an outer or semi join that no watermark could ever let emit or forget a row.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        spec: &JoinSpec,
        left_schema: SchemaRef,
        right_schema: SchemaRef,
        time_range: Option<TimeRange>,
        left_wm_col: Option<usize>,
        right_wm_col: Option<usize>,
        left_store: Box<dyn StateStore>,
        right_store: Box<dyn StateStore>,
    ) -> Result<StreamStreamJoin, String> {
        let t = spec.join_type;
        if t == JoinType::LeftAnti {
            return Err("LeftAnti joins with a streaming DataFrame/Dataset on the right are not supported (Spark's \
                        rule); a left_anti join needs a static table on the right (a [[source]] with static = true)"
                .to_string());
        }
        let layout = output_schema(&left_schema, &right_schema, spec)?;
        if let Some(r) = &time_range {
            r.check(&left_schema, &right_schema)?;
        }
        for (side, schema, col) in [(Side::Left, &left_schema, left_wm_col), (Side::Right, &right_schema, right_wm_col)]
        {
            if let Some(c) = col {
                let field = schema.fields().get(c).ok_or_else(|| {
                    format!("the {side} watermark column {c} is not in the join's {side} input (a bug in the join's planning)")
                })?;
                if !is_event_time(field.data_type()) {
                    return Err(format!(
                        "the watermark column `{}` of the join's {side} input is {}; a watermark column is a timestamp",
                        field.name(),
                        type_name(field.data_type())
                    ));
                }
            }
        }
        let inputs = WatermarkInputs {
            left_keys: &layout.keys.left,
            right_keys: &layout.keys.right,
            left_watermark: left_wm_col,
            right_watermark: right_wm_col,
            range: time_range.as_ref(),
        };
        let in_keys = inputs.watermark_key().is_some();
        let valid_range = match t {
            JoinType::LeftOuter | JoinType::LeftSemi => inputs.value_bound(Side::Left).is_some(),
            JoinType::RightOuter => inputs.value_bound(Side::Right).is_some(),
            JoinType::FullOuter => {
                inputs.value_bound(Side::Left).is_some() || inputs.value_bound(Side::Right).is_some()
            }
            JoinType::Inner | JoinType::LeftAnti => true,
        };
        if !in_keys && !valid_range {
            let (side, other) = match t {
                JoinType::RightOuter => (Side::Right, Side::Left),
                _ => (Side::Left, Side::Right),
            };
            return Err(format!(
                "{} (Spark's rule: a {} join must know when a {side} row can no longer match); give the join a \
                 time_range whose {other} column is the {other} input's watermark column, or join on the watermark \
                 column",
                spark_watermark_refusal(t),
                t.as_str()
            ));
        }
        let watermarks = inputs.solve();
        let converter = |schema: &SchemaRef, side: Side| {
            RowConverter::new(schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect())
                .map_err(|e| format!("the join's {side} input cannot be buffered: {e}"))
        };
        let encoder = KeyEncoder::new(layout.keys.types.clone()).map_err(|e| format!("join keys: {e}"))?;
        Ok(StreamStreamJoin {
            join_type: t,
            encoder,
            range: time_range,
            watermarks,
            left: Input {
                keys: layout.keys.left.clone(),
                watermark: left_wm_col,
                converter: converter(&left_schema, Side::Left)?,
                schema: left_schema,
                state: SideState::new(left_store, "left"),
            },
            right: Input {
                keys: layout.keys.right.clone(),
                watermark: right_wm_col,
                converter: converter(&right_schema, Side::Right)?,
                schema: right_schema,
                state: SideState::new(right_store, "right"),
            },
            layout,
            batch: None,
            second_started: false,
            dropped_late: 0,
            progress: StateOperatorProgress::default(),
        })
    }

    /// The output's schema (left columns then right ones, `USING` keys merged).
    pub fn schema(&self) -> SchemaRef {
        self.layout.schema.clone()
    }

    /// How each side's rows leave the state.
    pub fn state_watermarks(&self) -> StateWatermarks {
        self.watermarks
    }

    /// Whether a moving watermark alone gives the join work (then a no-data batch runs), as
    /// Spark's `shouldRunAnotherBatch`.
    pub fn evicts_by_watermark(&self) -> bool {
        self.watermarks.evicts()
    }

    /// The watermark for the operators after the join, given its input watermark (Spark's
    /// `produceOutputWatermark`).
    pub fn output_watermark(&self, input_watermark: i64) -> i64 {
        self.watermarks.output_watermark(input_watermark)
    }

    /// The last finished batch's figures.
    pub fn progress(&self) -> StateOperatorProgress {
        self.progress
    }

    /// Starts batch `batch_id` from the state the batch before committed. `late_watermark`: the
    /// watermark of the batch before (µs; rows at or behind it are late); `eviction_watermark`:
    /// this batch's (µs; the state watermarks are solved from it). Both as Spark 3.5's
    /// `eventTimeWatermarkForLateEvents` / `ForEviction`.
    pub fn begin(
        &mut self,
        batch_id: u64,
        late_watermark: i64,
        eviction_watermark: i64,
    ) -> Result<(), StreamJoinError> {
        self.batch = None;
        self.left.state.begin(batch_id)?;
        self.right.state.begin(batch_id)?;
        self.batch = Some(BatchWatermarks { late: late_watermark, eviction: eviction_watermark });
        self.second_started = false;
        self.dropped_late = 0;
        Ok(())
    }

    /// The side whose pieces a batch processes first: the left one, but the right one for a left
    /// semi join (Spark 4.3, SPARK-55973: a left row that a right row of its own batch matches
    /// then needs no buffering).
    pub fn first_side(&self) -> Side {
        if self.join_type == JoinType::LeftSemi {
            Side::Right
        } else {
            Side::Left
        }
    }

    /// Joins a piece of one side's input: the output rows it produces now, and the indices of
    /// its rows dropped as late (event time at or behind the late watermark; counted as
    /// `numRowsDroppedByWatermark`). Every piece of [`Self::first_side`] comes before the other
    /// side's pieces of the batch.
    pub fn process(&mut self, side: Side, batch: &RecordBatch) -> Result<(RecordBatch, Vec<u32>), StreamJoinError> {
        let wms = self.batch.ok_or_else(|| StreamJoinError::Order("a piece came outside a batch".into()))?;
        let first = self.first_side();
        if side != first {
            self.second_started = true;
        } else if self.second_started {
            return Err(StreamJoinError::Order(format!(
                "a {first} piece came after a {} piece of the same batch (Spark joins all the {first} input first)",
                first.other()
            )));
        }
        let t = self.join_type;
        let range = self.range;
        let eviction = self.watermarks.side(side);
        let threshold = self.watermarks.threshold(side, wms.eviction);
        let (this, other) = match side {
            Side::Left => (&mut self.left, &mut self.right),
            Side::Right => (&mut self.right, &mut self.left),
        };
        if batch.schema().fields() != this.schema.fields() {
            return Err(StreamJoinError::Order(format!(
                "a {side} piece has columns ({}) that are not the {side} input's ({})",
                crate::schema::to_ddl(&batch.schema()),
                crate::schema::to_ddl(&this.schema)
            )));
        }
        let rows = this.converter.convert_columns(batch.columns())?;
        let keys = self.encoder.encode(batch, &this.keys)?;
        let column_times = |c: usize| -> Result<Vec<Option<i64>>, StreamJoinError> {
            event_times(batch.column(c))
                .map_err(|e| StreamJoinError::Order(format!("{side} column `{}` {e}", batch.schema().field(c).name())))
        };
        let late_times = this.watermark.map(&column_times).transpose()?;
        let evict_times = match eviction {
            Eviction::Never => None,
            Eviction::Key { key } => Some(column_times(this.keys[key])?),
            Eviction::Value { column, .. } => Some(column_times(column)?),
        };
        let range_times = range.map(|r| column_times(if side == Side::Left { r.left } else { r.right })).transpose()?;
        let keeps_all = match side {
            Side::Left => matches!(t, JoinType::LeftOuter | JoinType::FullOuter),
            Side::Right => matches!(t, JoinType::RightOuter | JoinType::FullOuter),
        };
        let semi = t == JoinType::LeftSemi;

        // Output row n: this piece's row `this_rows[n]` with buffered row `other_rows[n]` of the
        // other side (an index into `pool`).
        let mut this_rows: Vec<Option<u32>> = Vec::new();
        let mut other_rows: Vec<Option<u32>> = Vec::new();
        let mut pool: Vec<RowId> = Vec::new();
        let mut late = Vec::new();
        let mut candidates: Vec<RowId> = Vec::new();
        // Left semi: the left rows a right row matches, emitted now and dropped from the state.
        let mut done: Vec<RowId> = Vec::new();
        for r in 0..batch.num_rows() {
            // Keys compare as Spark's key rows do, a null equal to a null: on a side Spark filters
            // null keys from, they are gone by now; where it does not, they can meet only on a
            // full outer join (both sides kept whole).
            let key = keys.bytes(r);
            let range_time = range_times.as_ref().and_then(|t| t[r]);
            if !keeps_all && (keys.get(r).is_none() || (range.is_some() && range_time.is_none())) {
                continue;
            }
            if late_times.as_ref().and_then(|t| t[r]).is_some_and(|t| t <= wms.late) {
                late.push(r as u32);
                continue;
            }
            let mut matched = false;
            done.clear();
            other.state.lookup(key, &mut candidates);
            for &id in &candidates {
                let candidate = other.state.row(id);
                if semi && side == Side::Right && candidate.matched {
                    continue;
                }
                if let Some(rg) = &range {
                    let ok = match side {
                        Side::Left => rg.matches(range_time, candidate.range_time),
                        Side::Right => rg.matches(candidate.range_time, range_time),
                    };
                    if !ok {
                        continue;
                    }
                }
                matched = true;
                if semi && side == Side::Right {
                    done.push(id);
                } else if !candidate.matched {
                    other.state.mark_matched(id);
                }
                if semi && side == Side::Left {
                    // Spark asks only whether a match exists.
                    break;
                }
                this_rows.push(if semi { None } else { Some(r as u32) });
                other_rows.push(Some(pool.len() as u32));
                pool.push(id);
            }
            if !done.is_empty() {
                other.state.remove(&done);
            }
            if semi && side == Side::Left && matched {
                this_rows.push(Some(r as u32));
                other_rows.push(None);
            }
            let evict_at = evict_times.as_ref().and_then(|t| t[r]);
            let buffer = if semi && side == Side::Left && matched {
                // Emitted once, never needed again.
                false
            } else if side == first {
                true
            } else {
                // Spark: a row of the side processed second that its state watermark already
                // passes can meet no later row of the other side (this batch's came first), so
                // it is not buffered, unless it must come out unmatched.
                let evicted_now = matches!((threshold, evict_at), (Some(th), Some(at)) if at <= th);
                !evicted_now || (!matched && keeps_all)
            };
            if buffer {
                this.state.append(key, rows.row(r).data(), evict_at, range_time, matched);
            }
        }
        self.dropped_late += late.len() as u64;
        let pooled = decode(if side == Side::Left { &self.right } else { &self.left }, &pool)?;
        let (this_rows, other_rows) = (UInt32Array::from(this_rows), UInt32Array::from(other_rows));
        let out = match side {
            Side::Left => self.layout.assemble(batch, &this_rows, &pooled, &other_rows)?,
            Side::Right => self.layout.assemble(&pooled, &other_rows, batch, &this_rows)?,
        };
        Ok((out, late))
    }

    /// Ends the batch: evicts each side's rows at or behind its state watermark, emits the
    /// unmatched ones of an outer side null-padded (left ones first), commits both sides, and
    /// returns those rows with the batch's `stateOperators[]` entry (Spark's
    /// `symmetricHashJoin`).
    pub fn finish(&mut self) -> Result<(RecordBatch, serde_json::Value), StreamJoinError> {
        let wms = self.batch.ok_or_else(|| StreamJoinError::Order("finish came outside a batch".into()))?;
        let t = self.join_type;
        let evict = |input: &mut Input, side: Side, w: &StateWatermarks| -> Result<_, StreamJoinError> {
            Ok(match w.threshold(side, wms.eviction) {
                Some(th) => input.state.evict(th),
                None => Vec::new(),
            })
        };
        let left_gone = evict(&mut self.left, Side::Left, &self.watermarks)?;
        let right_gone = evict(&mut self.right, Side::Right, &self.watermarks)?;
        let (left_outer, right_outer) = match t {
            JoinType::LeftOuter => (true, false),
            JoinType::RightOuter => (false, true),
            JoinType::FullOuter => (true, true),
            _ => (false, false),
        };
        let unmatched = |gone: Vec<Evicted>, outer: bool| -> Vec<RowId> {
            if outer {
                gone.into_iter().filter(|e| !e.matched).map(|e| e.id).collect()
            } else {
                Vec::new()
            }
        };
        let (left_rows, right_rows) = (unmatched(left_gone, left_outer), unmatched(right_gone, right_outer));
        let (nl, nr) = (left_rows.len() as u32, right_rows.len() as u32);
        let lb = decode(&self.left, &left_rows)?;
        let rb = decode(&self.right, &right_rows)?;
        let li = UInt32Array::from((0..nl).map(Some).chain((0..nr).map(|_| None)).collect::<Vec<_>>());
        let ri = UInt32Array::from((0..nl).map(|_| None).chain((0..nr).map(Some)).collect::<Vec<_>>());
        let out = self.layout.assemble(&lb, &li, &rb, &ri)?;

        let l = self.left.state.commit()?;
        let r = self.right.state.commit()?;
        self.batch = None;
        self.progress = progress(&l, &r, self.dropped_late);
        Ok((out, progress_json(&self.progress)))
    }
}

/// The buffered rows `rows` of a side as a batch of that side's schema.
fn decode(input: &Input, rows: &[RowId]) -> Result<RecordBatch, ArrowError> {
    if rows.is_empty() {
        return Ok(RecordBatch::new_empty(input.schema.clone()));
    }
    let parser = input.converter.parser();
    let columns: Vec<ArrayRef> =
        input.converter.convert_rows(rows.iter().map(|&id| parser.parse(input.state.row(id).row)))?;
    RecordBatch::try_new(input.schema.clone(), columns)
}

/// The batch's figures. Every row that left the state counts as removed, the outer side's
/// evicted rows too: Spark 4.3 reports them all (`tests/joins/stream-stream/*/expected.txt`),
/// though the 3.5 source counts only its cleanup pass.
fn progress(left: &SideMetrics, right: &SideMetrics, dropped_late: u64) -> StateOperatorProgress {
    StateOperatorProgress {
        metrics: StateMetrics {
            num_rows_total: left.rows + right.rows,
            num_rows_updated: left.appended + right.appended,
            num_rows_removed: left.removed + right.removed,
            memory_used_bytes: left.memory_used_bytes + right.memory_used_bytes,
        },
        num_rows_dropped_by_watermark: dropped_late,
    }
}

/// Spark's `stateOperators[]` entry of a stream-stream join. One partition; weir keeps one store
/// per side (Spark four per partition: two per side).
pub fn progress_json(p: &StateOperatorProgress) -> serde_json::Value {
    serde_json::json!({
        "operatorName": "symmetricHashJoin",
        "numRowsTotal": p.metrics.num_rows_total,
        "numRowsUpdated": p.metrics.num_rows_updated,
        "numRowsRemoved": p.metrics.num_rows_removed,
        "memoryUsedBytes": p.metrics.memory_used_bytes,
        "numRowsDroppedByWatermark": p.num_rows_dropped_by_watermark,
        "numShufflePartitions": 1,
        "numStateStoreInstances": 2,
        "customMetrics": {},
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, AsArray, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::TimestampMicrosecondType;

    use super::super::spec::JoinKeys;
    use super::*;
    use crate::schema::parse_ddl;
    use crate::state::memory::MemoryStateStore;
    #[cfg(feature = "rocksdb")]
    use crate::state::rocksdb::RocksDbStateStore;

    const MIN: i64 = 60_000_000;
    const MS: i64 = 1000;

    /// (key, event time in µs, value): a row of either side.
    type Row<'a> = (Option<&'a str>, i64, &'a str);

    fn left_schema() -> SchemaRef {
        parse_ddl("k string, lt timestamp, lv string").unwrap()
    }

    fn right_schema() -> SchemaRef {
        parse_ddl("k string, rt timestamp, rv string").unwrap()
    }

    fn batch(schema: SchemaRef, rows: &[Row]) -> RecordBatch {
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
                Arc::new(
                    TimestampMicrosecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>()).with_timezone("UTC"),
                ),
                Arc::new(StringArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
            ],
        )
        .unwrap()
    }

    /// Every row of `b` as `k|lt|lv|rt|rv`: strings as they are, times in minutes (µs when not
    /// whole minutes), `-` for null.
    fn render(b: &RecordBatch) -> Vec<String> {
        (0..b.num_rows())
            .map(|r| {
                b.columns()
                    .iter()
                    .map(|c| {
                        if c.is_null(r) {
                            "-".to_string()
                        } else if let Some(s) = c.as_string_opt::<i32>() {
                            s.value(r).to_string()
                        } else {
                            let t = c.as_primitive::<TimestampMicrosecondType>().value(r);
                            if t % MIN == 0 {
                                (t / MIN).to_string()
                            } else {
                                format!("{t}us")
                            }
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect()
    }

    fn spec(t: JoinType) -> JoinSpec {
        JoinSpec { join_type: t, keys: JoinKeys::Using(vec!["k".into()]), left_prefix: None, right_prefix: None }
    }

    /// `impression + 0 <= click <= impression + 1 hour`: left = clicks, right = impressions.
    fn hour_range() -> Option<TimeRange> {
        Some(TimeRange::inclusive(1, 1, 0, 60 * MIN))
    }

    type Open = fn(&std::path::Path) -> Box<dyn StateStore>;

    fn memory(dir: &std::path::Path) -> Box<dyn StateStore> {
        Box::new(MemoryStateStore::open(dir, 10).unwrap())
    }

    #[cfg(feature = "rocksdb")]
    fn rocksdb(dir: &std::path::Path) -> Box<dyn StateStore> {
        Box::new(RocksDbStateStore::open(dir, 10).unwrap())
    }

    struct Harness {
        join: StreamStreamJoin,
        _dirs: (tempfile::TempDir, tempfile::TempDir),
    }

    fn harness(t: JoinType, open: Open) -> Harness {
        let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let join = StreamStreamJoin::new(
            &spec(t),
            left_schema(),
            right_schema(),
            hour_range(),
            Some(1),
            Some(1),
            open(dirs.0.path()),
            open(dirs.1.path()),
        )
        .unwrap();
        Harness { join, _dirs: dirs }
    }

    /// What one batch did.
    #[derive(Debug, PartialEq)]
    struct Step {
        /// Rows joined while the input was processed, in output order.
        joined: Vec<String>,
        /// Rows emitted at the end of the batch (sorted).
        evicted: Vec<String>,
        late_left: Vec<u32>,
        late_right: Vec<u32>,
        /// numRowsTotal, numRowsUpdated, numRowsRemoved, numRowsDroppedByWatermark.
        counts: [u64; 4],
    }

    impl Harness {
        /// Batch `id` with the watermarks in minutes.
        fn run(&mut self, id: u64, late: i64, eviction: i64, left: &[Row], right: &[Row]) -> Step {
            self.run_micros(id, late * MIN, eviction * MIN, left, right)
        }

        fn run_micros(&mut self, id: u64, late: i64, eviction: i64, left: &[Row], right: &[Row]) -> Step {
            self.join.begin(id, late, eviction).unwrap();
            let (left, right) = (batch(left_schema(), left), batch(right_schema(), right));
            let first = self.join.first_side();
            let pieces: Vec<(Side, &RecordBatch)> = match first {
                Side::Left => vec![(Side::Left, &left), (Side::Right, &right)],
                Side::Right => vec![(Side::Right, &right), (Side::Left, &left)],
            };
            let (mut joined, mut late_left, mut late_right) = (Vec::new(), Vec::new(), Vec::new());
            for (side, piece) in pieces {
                let (out, late) = self.join.process(side, piece).unwrap();
                assert_eq!(out.schema(), self.join.schema());
                joined.extend(render(&out));
                match side {
                    Side::Left => late_left = late,
                    Side::Right => late_right = late,
                }
            }
            let (e, json) = self.join.finish().unwrap();
            assert_eq!(e.schema(), self.join.schema());
            let mut evicted = render(&e);
            evicted.sort();
            let n = |f: &str| json[f].as_u64().unwrap();
            assert_eq!(json["operatorName"], "symmetricHashJoin");
            assert!(json["memoryUsedBytes"].as_u64().is_some());
            Step {
                joined,
                evicted,
                late_left,
                late_right,
                counts: [n("numRowsTotal"), n("numRowsUpdated"), n("numRowsRemoved"), n("numRowsDroppedByWatermark")],
            }
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn step(joined: &[&str], evicted: &[&str], late: (&[u32], &[u32]), counts: [u64; 4]) -> Step {
        Step {
            joined: strings(joined),
            evicted: strings(evicted),
            late_left: late.0.to_vec(),
            late_right: late.1.to_vec(),
            counts,
        }
    }

    /// The inner join worked by hand in four batches (times in minutes, watermarks: late /
    /// eviction). State watermarks: left = W − 1 ms, right = W − 60 min − 1 ms.
    fn inner_batches(h: &mut Harness) -> Vec<Step> {
        let a = Some("a");
        let b = Some("b");
        let c = Some("c");
        vec![
            // 0: l1 is buffered before the right rows come; r1 joins it (a pair within one
            // batch, once); r2 is out of range, r3 has no partner.
            h.run(0, 0, 0, &[(a, 10 * MIN, "l1")], &[(a, 5 * MIN, "r1"), (a, 20 * MIN, "r2"), (b, 10 * MIN, "r3")]),
            // 1: l2 joins r1 and r2 of batch 0; l3 joins r3 at the range's upper end (70 =
            // 10 + 60); r4 is past every buffered left row. Left rows at or behind 29:59.999 go.
            h.run(1, 0, 30, &[(a, 25 * MIN, "l2"), (b, 70 * MIN, "l3")], &[(a, 40 * MIN, "r4")]),
            // 2: 30 and 29 are late (at or behind 30); l5 joins r4; r6, r7 join nothing. Left
            // rows to 89:59.999 and right rows to 29:59.999 go.
            h.run(
                2,
                30,
                90,
                &[(a, 30 * MIN, "late"), (a, 95 * MIN, "l5")],
                &[(a, 29 * MIN, "late"), (a, 100 * MIN, "r6"), (b, 80 * MIN, "r7")],
            ),
            // 3: r9 joins l9 of the same batch, and is not buffered: the right state watermark
            // (139:59.999) already passes it (Spark's rule). Everything goes.
            h.run(3, 90, 200, &[(c, 120 * MIN, "l9")], &[(c, 100 * MIN, "r9")]),
        ]
    }

    fn inner_expected() -> Vec<Step> {
        vec![
            step(&["a|10|l1|5|r1"], &[], (&[], &[]), [4, 4, 0, 0]),
            step(&["a|25|l2|5|r1", "a|25|l2|20|r2", "b|70|l3|10|r3"], &[], (&[], &[]), [5, 3, 2, 0]),
            step(&["a|95|l5|40|r4"], &[], (&[0], &[0]), [4, 3, 4, 2]),
            step(&["c|120|l9|100|r9"], &[], (&[], &[]), [0, 1, 5, 0]),
        ]
    }

    #[test]
    fn inner_join_with_a_range_emits_each_pair_once_across_batches_and_evicts_by_state_watermark() {
        let mut h = harness(JoinType::Inner, memory);
        assert_eq!(inner_batches(&mut h), inner_expected());
    }

    #[test]
    #[cfg(feature = "rocksdb")]
    fn inner_join_gives_the_same_on_rocksdb() {
        let mut h = harness(JoinType::Inner, rocksdb);
        assert_eq!(inner_batches(&mut h), inner_expected());
    }

    #[test]
    fn a_replayed_batch_starts_from_the_batch_before_and_gives_the_same_output() {
        let mut h = harness(JoinType::Inner, memory);
        let want = inner_expected();
        let a = Some("a");
        let b = Some("b");
        let c = Some("c");
        assert_eq!(
            h.run(0, 0, 0, &[(a, 10 * MIN, "l1")], &[(a, 5 * MIN, "r1"), (a, 20 * MIN, "r2"), (b, 10 * MIN, "r3")]),
            want[0]
        );
        // Batch 1 fails half-way (nothing committed) ...
        h.join.begin(1, 0, 30 * MIN).unwrap();
        h.join.process(Side::Left, &batch(left_schema(), &[(a, 25 * MIN, "l2"), (b, 70 * MIN, "l3")])).unwrap();
        // ... and runs again from batch 0's state.
        let step1 = h.run(1, 0, 30, &[(a, 25 * MIN, "l2"), (b, 70 * MIN, "l3")], &[(a, 40 * MIN, "r4")]);
        assert_eq!(step1, want[1]);
        let batch2 = |h: &mut Harness| {
            h.run(
                2,
                30,
                90,
                &[(a, 30 * MIN, "late"), (a, 95 * MIN, "l5")],
                &[(a, 29 * MIN, "late"), (a, 100 * MIN, "r6"), (b, 80 * MIN, "r7")],
            )
        };
        assert_eq!(batch2(&mut h), want[2]);
        // Batch 2 committed its state, but say the checkpoint did not: it runs again.
        assert_eq!(batch2(&mut h), want[2]);
        assert_eq!(h.run(3, 90, 200, &[(c, 120 * MIN, "l9")], &[(c, 100 * MIN, "r9")]), want[3]);
    }

    /// Left outer: a left row waits until the left state watermark (W − 1 ms) passes it, then
    /// comes out null-padded unless something joined it.
    fn left_outer_batches(h: &mut Harness) -> Vec<Step> {
        let a = Some("a");
        let b = Some("b");
        vec![
            h.run(0, 0, 0, &[(a, 10 * MIN, "l1"), (b, 10 * MIN, "l2"), (None, 10 * MIN, "l3")], &[(a, 5 * MIN, "r1")]),
            // A no-data batch at watermark 10: the state watermark is 9:59.999, nothing goes.
            h.run(1, 0, 10, &[], &[]),
            // One ms later the rows at 10 go: l1 silently (matched), l2 and the null-key l3
            // null-padded. b at 9 would have joined l2 but is late; the null-key right row is
            // dropped before the join (it could match nothing), not counted as late.
            h.run_micros(2, 10 * MIN, 10 * MIN + MS, &[], &[(b, 9 * MIN, "late"), (None, 50 * MIN, "rn")]),
        ]
    }

    fn left_outer_expected() -> Vec<Step> {
        vec![
            step(&["a|10|l1|5|r1"], &[], (&[], &[]), [4, 4, 0, 0]),
            step(&[], &[], (&[], &[]), [4, 0, 0, 0]),
            // Spark 4.3 counts the outer side's evicted rows as removed too.
            step(&[], &["-|10|l3|-|-", "b|10|l2|-|-"], (&[], &[0]), [1, 0, 3, 1]),
        ]
    }

    #[test]
    fn left_outer_emits_an_unmatched_left_row_in_the_batch_its_state_watermark_passes_it() {
        let mut h = harness(JoinType::LeftOuter, memory);
        assert_eq!(left_outer_batches(&mut h), left_outer_expected());
    }

    #[test]
    #[cfg(feature = "rocksdb")]
    fn left_outer_gives_the_same_on_rocksdb() {
        let mut h = harness(JoinType::LeftOuter, rocksdb);
        assert_eq!(left_outer_batches(&mut h), left_outer_expected());
    }

    #[test]
    fn right_outer_emits_unmatched_right_rows_also_those_the_state_watermark_passes_on_arrival() {
        let mut h = harness(JoinType::RightOuter, memory);
        let (a, b, c, d) = (Some("a"), Some("b"), Some("c"), Some("d"));
        // Right outer `USING (k)`: the key comes from the right side.
        assert_eq!(
            h.run(0, 0, 0, &[(a, 30 * MIN, "l1")], &[(a, MIN, "r1"), (b, MIN, "r2")]),
            step(&["a|30|l1|1|r1"], &[], (&[], &[]), [3, 3, 0, 0])
        );
        // At 60 the right state watermark is −0:00.001: the rows at 1 stay; the left one (59:59.999)
        // goes, counted as removed (the left side is not the outer one).
        assert_eq!(h.run(1, 0, 60, &[], &[]), step(&[], &[], (&[], &[]), [2, 0, 1, 0]));
        // At 200 the right state watermark is 139:59.999: r3 (100) is behind it on arrival, yet
        // buffered since it must come out unmatched, and comes out in this batch with r2; r1 and
        // l2 go too.
        assert_eq!(
            h.run(2, 60, 200, &[(d, 150 * MIN, "l2")], &[(c, 100 * MIN, "r3")]),
            step(&[], &["b|-|-|1|r2", "c|-|-|100|r3"], (&[], &[]), [0, 2, 4, 0])
        );
    }

    #[test]
    fn full_outer_emits_both_sides_unmatched_rows_and_a_null_key_matches_a_null_key_as_in_spark() {
        let mut h = harness(JoinType::FullOuter, memory);
        let (a, b, c) = (Some("a"), Some("b"), Some("c"));
        assert_eq!(
            h.run(
                0,
                0,
                0,
                &[(a, 10 * MIN, "l1"), (b, 10 * MIN, "l2"), (None, 10 * MIN, "l3")],
                &[(a, MIN, "r1"), (c, MIN, "r2"), (None, MIN, "r3")]
            ),
            step(&["a|10|l1|1|r1", "-|10|l3|1|r3"], &[], (&[], &[]), [6, 6, 0, 0])
        );
        // Left rows to 61:59.999 and right rows to 1:59.999 go; the full outer USING key is
        // coalesce(left k, right k).
        assert_eq!(h.run(1, 0, 62, &[], &[]), step(&[], &["b|10|l2|-|-", "c|-|-|1|r2"], (&[], &[]), [0, 0, 6, 0]));
    }

    #[test]
    fn left_semi_emits_a_left_row_once_at_its_first_match() {
        let mut h = harness(JoinType::LeftSemi, memory);
        let a = Some("a");
        let b = Some("b");
        assert_eq!(h.join.first_side(), Side::Right);
        // The right rows come first (Spark 4.3): l1 meets r1 on arrival, is emitted and never
        // buffered; l2 has no partner yet and waits.
        assert_eq!(
            h.run(0, 0, 0, &[(a, 10 * MIN, "l1"), (b, 10 * MIN, "l2")], &[(a, MIN, "r1"), (a, 5 * MIN, "r2")]),
            step(&["a|10|l1"], &[], (&[], &[]), [3, 3, 0, 0])
        );
        // r3 matches the buffered l2: emitted and dropped from the state at once (counted as
        // removed), so r4 finds nothing; l3 meets r1 on arrival.
        assert_eq!(
            h.run(1, 0, 0, &[(a, 20 * MIN, "l3")], &[(b, 2 * MIN, "r3"), (b, 3 * MIN, "r4")]),
            step(&["b|10|l2", "a|20|l3"], &[], (&[], &[]), [4, 2, 1, 0])
        );
        // Right rows to 9:59.999 go.
        assert_eq!(h.run(2, 0, 70, &[], &[]), step(&[], &[], (&[], &[]), [0, 0, 4, 0]));
    }

    #[test]
    fn inner_join_drops_null_keys_and_null_times_before_the_join_without_counting_them() {
        let mut h = harness(JoinType::Inner, memory);
        let a = Some("a");
        h.join.begin(0, 5 * MIN, 5 * MIN).unwrap();
        let mut left = batch(left_schema(), &[(None, 10 * MIN, "x"), (a, 10 * MIN, "y"), (a, MIN, "late")]);
        // Null the time of row 1.
        let times = TimestampMicrosecondArray::from(vec![Some(10 * MIN), None, Some(MIN)]).with_timezone("UTC");
        left =
            RecordBatch::try_new(left.schema(), vec![left.column(0).clone(), Arc::new(times), left.column(2).clone()])
                .unwrap();
        let (out, late) = h.join.process(Side::Left, &left).unwrap();
        assert_eq!((out.num_rows(), late), (0, vec![2]));
        let (_, json) = h.join.finish().unwrap();
        assert_eq!((json["numRowsTotal"].as_u64(), json["numRowsDroppedByWatermark"].as_u64()), (Some(0), Some(1)));
    }

    #[test]
    fn a_watermarked_join_key_evicts_at_the_watermark_itself() {
        let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let l = parse_ddl("k string, w timestamp, lv string").unwrap();
        let r = parse_ddl("k string, w timestamp, rv string").unwrap();
        let s = JoinSpec {
            join_type: JoinType::LeftOuter,
            keys: JoinKeys::Using(vec!["k".into(), "w".into()]),
            left_prefix: None,
            right_prefix: None,
        };
        let mut j = StreamStreamJoin::new(
            &s,
            l.clone(),
            r.clone(),
            None,
            Some(1),
            Some(1),
            memory(dirs.0.path()),
            memory(dirs.1.path()),
        )
        .unwrap();
        assert_eq!(j.state_watermarks().left, Eviction::Key { key: 1 });
        j.begin(0, 0, 0).unwrap();
        j.process(Side::Left, &batch(l.clone(), &[(Some("a"), 10 * MIN, "l1"), (Some("a"), 20 * MIN, "l2")])).unwrap();
        let (out, _) = j.process(Side::Right, &batch(r.clone(), &[(Some("a"), 20 * MIN, "r1")])).unwrap();
        assert_eq!(render(&out), ["a|20|l2|r1"]);
        j.finish().unwrap();
        // Key state watermark = the watermark: the key at 10 goes at watermark 10 (no 1 ms).
        j.begin(1, 0, 10 * MIN).unwrap();
        let (out, json) = j.finish().unwrap();
        assert_eq!(render(&out), ["a|10|l1|-"]);
        assert_eq!(json["numRowsTotal"], 2);
        assert_eq!(j.output_watermark(10 * MIN), 10 * MIN);
    }

    #[test]
    fn a_left_piece_after_a_right_piece_of_the_same_batch_is_refused() {
        let mut h = harness(JoinType::Inner, memory);
        h.join.begin(0, 0, 0).unwrap();
        h.join.process(Side::Right, &batch(right_schema(), &[])).unwrap();
        let e = h.join.process(Side::Left, &batch(left_schema(), &[])).unwrap_err();
        assert!(e.to_string().contains("a left piece came after a right piece"), "{e}");
    }

    fn refusal(t: JoinType, range: Option<TimeRange>, lwm: Option<usize>, rwm: Option<usize>) -> Result<(), String> {
        let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        StreamStreamJoin::new(
            &spec(t),
            left_schema(),
            right_schema(),
            range,
            lwm,
            rwm,
            memory(dirs.0.path()),
            memory(dirs.1.path()),
        )
        .map(|_| ())
    }

    #[test]
    fn spark_refuses_left_anti_and_outer_or_semi_joins_nothing_bounds() {
        assert_eq!(
            refusal(JoinType::LeftAnti, hour_range(), Some(1), Some(1)).unwrap_err(),
            "LeftAnti joins with a streaming DataFrame/Dataset on the right are not supported (Spark's rule); a \
             left_anti join needs a static table on the right (a [[source]] with static = true)"
        );
        assert_eq!(
            refusal(JoinType::LeftOuter, None, Some(1), Some(1)).unwrap_err(),
            "Stream-stream LeftOuter join between two streaming DataFrame/Datasets is not supported without a \
             watermark in the join keys, or a watermark on the nullable side and an appropriate range condition \
             (Spark's rule: a left_outer join must know when a left row can no longer match); give the join a \
             time_range whose right column is the right input's watermark column, or join on the watermark column"
        );
        // The right side has no watermark: nothing bounds how long a left row waits.
        assert!(refusal(JoinType::LeftSemi, hour_range(), Some(1), None)
            .unwrap_err()
            .starts_with("Stream-stream LeftSemi join between two streaming DataFrame/Datasets is not supported"));
        assert!(refusal(JoinType::RightOuter, hour_range(), None, Some(1)).unwrap_err().contains(
            "a right_outer join must know when a right row can no longer match); give the join a time_range whose \
             left column is the left input's watermark column"
        ));
        // Spark accepts a full outer join when either side is bounded, and an inner join always.
        assert!(refusal(JoinType::FullOuter, hour_range(), None, Some(1)).is_ok());
        assert!(refusal(JoinType::Inner, None, None, None).is_ok());
        assert!(refusal(JoinType::RightOuter, hour_range(), Some(1), None).is_ok());
        assert_eq!(
            check_output_mode(JoinType::LeftOuter, "update").unwrap_err(),
            "LeftOuter join between two streaming DataFrames/Datasets is not supported in Update output mode, only \
             in Append output mode (Spark's rule: an outer row comes out once, when it can no longer match); set \
             output_mode = \"append\""
        );
        assert!(check_output_mode(JoinType::FullOuter, "append").is_ok());
        assert!(check_output_mode(JoinType::Inner, "update").is_ok());
        assert!(check_output_mode(JoinType::LeftSemi, "update").is_ok());
        assert_eq!(
            refusal(JoinType::Inner, Some(TimeRange::inclusive(2, 1, 0, MIN)), Some(1), Some(1)).unwrap_err(),
            "time_range left column `lv` is string, but a time range compares timestamps; name a timestamp column \
             of the left input"
        );
    }

    /// One case of `tests/joins/<scenario>/` run through the kernel, batch by batch, with the
    /// watermarks Spark 4.3 ran each batch with (its progress lines; a batch's late watermark is
    /// the one before), compared with what Spark 4.3 emitted and reported (`expected.txt`, by
    /// `bench/spark_crosscheck.py`): the rows of every batch, and the join's numRowsTotal,
    /// numRowsUpdated, numRowsRemoved and numRowsDroppedByWatermark.
    fn spark_case(scenario: &str, case: &str, spec: JoinSpec) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/joins").join(scenario);
        let text = std::fs::read_to_string(root.join(case).join("expected.txt")).unwrap();
        // Per batch: watermark (µs), the join's counts, the rows (JSON, sorted).
        let mut expected: Vec<(i64, [u64; 4], Vec<String>)> = Vec::new();
        for line in text.lines() {
            if line.starts_with("batch ") {
                expected.push((0, [0; 4], Vec::new()));
            } else if let Some(p) = line.strip_prefix("progress ") {
                let p: serde_json::Value = serde_json::from_str(p).unwrap();
                let wm = p["watermark"].as_str().unwrap();
                expected.last_mut().unwrap().0 = crate::format::timestamp::parse_timestamp_micros(wm).unwrap();
            } else if let Some(p) = line.strip_prefix("stateOperator[0] ") {
                let p: serde_json::Value = serde_json::from_str(p).unwrap();
                assert_eq!(p["operatorName"], "symmetricHashJoin");
                let n = |f: &str| p[f].as_u64().unwrap();
                expected.last_mut().unwrap().1 =
                    [n("numRowsTotal"), n("numRowsUpdated"), n("numRowsRemoved"), n("numRowsDroppedByWatermark")];
            } else if line.starts_with('{') {
                let row: serde_json::Value = serde_json::from_str(line).unwrap();
                expected.last_mut().unwrap().2.push(row.to_string());
            }
        }
        let read = |source: &str, time: &str, n: usize| -> RecordBatch {
            let schema = parse_ddl(&format!("ad_id string, {time} timestamp")).unwrap();
            let mut rows: Vec<(Option<String>, i64)> = Vec::new();
            if let Ok(dir) = std::fs::read_dir(root.join("in").join(source).join(n.to_string())) {
                for f in dir {
                    for line in std::fs::read_to_string(f.unwrap().path()).unwrap().lines().filter(|l| !l.is_empty()) {
                        let v: serde_json::Value = serde_json::from_str(line).unwrap();
                        let t = crate::format::timestamp::parse_timestamp_micros(v[time].as_str().unwrap()).unwrap();
                        rows.push((v["ad_id"].as_str().map(String::from), t));
                    }
                }
            }
            RecordBatch::try_new(
                schema,
                vec![
                    Arc::new(StringArray::from(rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>())),
                    Arc::new(
                        TimestampMicrosecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())
                            .with_timezone("UTC"),
                    ),
                ],
            )
            .unwrap()
        };
        let json_rows = |b: &RecordBatch| -> Vec<String> {
            (0..b.num_rows())
                .map(|r| {
                    let mut m = serde_json::Map::new();
                    for (f, c) in b.schema().fields().iter().zip(b.columns()) {
                        let v = if c.is_null(r) {
                            serde_json::Value::Null
                        } else if let Some(s) = c.as_string_opt::<i32>() {
                            s.value(r).into()
                        } else {
                            let t = c.as_primitive::<TimestampMicrosecondType>().value(r);
                            chrono::DateTime::from_timestamp_micros(t)
                                .unwrap()
                                .format("%Y-%m-%d %H:%M:%S")
                                .to_string()
                                .into()
                        };
                        m.insert(f.name().clone(), v);
                    }
                    serde_json::Value::Object(m).to_string()
                })
                .collect()
        };
        let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut j = StreamStreamJoin::new(
            &spec,
            parse_ddl("ad_id string, click_time timestamp").unwrap(),
            parse_ddl("ad_id string, impression_time timestamp").unwrap(),
            hour_range(),
            Some(1),
            Some(1),
            memory(dirs.0.path()),
            memory(dirs.1.path()),
        )
        .unwrap();
        let mut late = 0;
        for (n, (wm, counts, rows)) in expected.iter().enumerate() {
            j.begin(n as u64, late, *wm).unwrap();
            let (clicks, impressions) = (read("clicks", "click_time", n), read("impressions", "impression_time", n));
            let order = match j.first_side() {
                Side::Left => [(Side::Left, &clicks), (Side::Right, &impressions)],
                Side::Right => [(Side::Right, &impressions), (Side::Left, &clicks)],
            };
            let mut got: Vec<String> = Vec::new();
            for (side, piece) in order {
                got.extend(json_rows(&j.process(side, piece).unwrap().0));
            }
            let (e, json) = j.finish().unwrap();
            got.extend(json_rows(&e));
            got.sort();
            let mut want = rows.clone();
            want.sort();
            assert_eq!(got, want, "{scenario}/{case} batch {n}: rows");
            let c = |f: &str| json[f].as_u64().unwrap();
            let got_counts =
                [c("numRowsTotal"), c("numRowsUpdated"), c("numRowsRemoved"), c("numRowsDroppedByWatermark")];
            assert_eq!(got_counts, *counts, "{scenario}/{case} batch {n}: total, updated, removed, late");
            late = *wm;
        }
    }

    fn on_ad_id(t: JoinType) -> JoinSpec {
        JoinSpec { join_type: t, keys: JoinKeys::Using(vec!["ad_id".into()]), left_prefix: None, right_prefix: None }
    }

    #[test]
    fn every_stream_stream_case_gives_what_spark_4_3_gave() {
        for (case, t) in [
            ("inner", JoinType::Inner),
            ("left_outer", JoinType::LeftOuter),
            ("right_outer", JoinType::RightOuter),
            ("full_outer", JoinType::FullOuter),
            ("left_semi", JoinType::LeftSemi),
        ] {
            spark_case("stream-stream", case, on_ad_id(t));
        }
        let pairs = JoinSpec {
            join_type: JoinType::LeftOuter,
            keys: JoinKeys::Pairs(vec![super::super::spec::KeyPair { left: "ad_id".into(), right: "ad_id".into() }]),
            left_prefix: None,
            right_prefix: Some("imp_".into()),
        };
        spark_case("stream-stream", "left_outer_pairs", pairs);
    }

    #[test]
    fn null_keys_give_what_spark_4_3_gave() {
        for (case, t) in [
            ("inner", JoinType::Inner),
            ("left_outer", JoinType::LeftOuter),
            ("right_outer", JoinType::RightOuter),
            ("full_outer", JoinType::FullOuter),
            ("left_semi", JoinType::LeftSemi),
        ] {
            spark_case("null-keys", case, on_ad_id(t));
        }
    }

    #[test]
    fn the_join_can_move_between_threads() {
        fn send<T: Send>(_: &T) {}
        send(&harness(JoinType::Inner, memory).join);
    }
}
