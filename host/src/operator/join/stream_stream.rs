//! A stream joined to a stream: Spark's symmetric hash join (`StreamingSymmetricHashJoinExec`,
//! state format 2), batch by batch.
//!
//! Each side buffers its rows ([`SideState`]) so that rows of the other side arriving later can
//! still join them. Within a batch every left piece is processed before any right piece, as Spark
//! does: a left row joins the right rows buffered by earlier batches and is buffered; a right row
//! joins every buffered left row, this batch's included, so each pair is emitted exactly once.
//! A buffered row records whether anything joined it (`matched`); when the side's state
//! watermark passes it at the end of a batch it leaves, and an outer side's unmatched rows are
//! emitted null-padded then. Left semi joins emit a left row once, at its first match.
//!
//! Rows whose key (or range-condition time) is null match nothing. On a side whose rows must all
//! come out (the outer side of an outer join) they are buffered and emitted unmatched when they
//! leave; on the other sides they are dropped before the join, as the `isnotnull` filters Spark's
//! optimizer infers from the join condition drop them.

use arrow::array::{ArrayRef, UInt32Array};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};

use super::keys::KeyEncoder;
use super::output::{output_schema, OutputLayout};
use super::spec::{JoinSpec, JoinType, Side};
use super::stream_state::{SideMetrics, SideState, NULL_KEY};
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

/// Spark's refusal of stream-stream joins in another output mode than append
/// (`UnsupportedOperationChecker`); `mode` as the job names it (`append`, `update`, `complete`).
pub fn check_output_mode(mode: &str) -> Result<(), String> {
    if mode.eq_ignore_ascii_case("append") {
        return Ok(());
    }
    let mut spark = mode.to_ascii_lowercase();
    if let Some(first) = spark.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    Err(format!(
        "Join between two streaming DataFrames/Datasets is not supported in {spark} output mode, only in Append \
         output mode (Spark's rule); set output_mode = \"append\""
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
    /// A right piece was processed in this batch: no left piece may follow.
    right_started: bool,
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
            right_started: false,
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
        self.right_started = false;
        self.dropped_late = 0;
        Ok(())
    }

    /// Joins a piece of one side's input: the output rows it produces now, and the indices of
    /// its rows dropped as late (event time at or behind the late watermark; counted as
    /// `numRowsDroppedByWatermark`). Every left piece of a batch comes before its right pieces.
    pub fn process(&mut self, side: Side, batch: &RecordBatch) -> Result<(RecordBatch, Vec<u32>), StreamJoinError> {
        let wms = self.batch.ok_or_else(|| StreamJoinError::Order("a piece came outside a batch".into()))?;
        match side {
            Side::Right => self.right_started = true,
            Side::Left if self.right_started => {
                return Err(StreamJoinError::Order(
                    "a left piece came after a right piece of the same batch (Spark joins all the left input first)"
                        .into(),
                ))
            }
            Side::Left => {}
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
        let mut pool: Vec<Vec<u8>> = Vec::new();
        let mut late = Vec::new();
        for r in 0..batch.num_rows() {
            let key = keys.get(r);
            let range_time = range_times.as_ref().and_then(|t| t[r]);
            if !keeps_all && (key.is_none() || (range.is_some() && range_time.is_none())) {
                continue;
            }
            if late_times.as_ref().and_then(|t| t[r]).is_some_and(|t| t <= wms.late) {
                late.push(r as u32);
                continue;
            }
            let mut matched = false;
            if let Some(key) = key {
                for candidate in other.state.get(key)? {
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
                    if !candidate.matched {
                        other.state.mark_matched(key, &candidate);
                    }
                    if semi && side == Side::Left {
                        // Spark asks only whether a match exists.
                        break;
                    }
                    if semi {
                        this_rows.push(None);
                    } else {
                        this_rows.push(Some(r as u32));
                    }
                    other_rows.push(Some(pool.len() as u32));
                    pool.push(candidate.row);
                }
            }
            if semi && side == Side::Left && matched {
                this_rows.push(Some(r as u32));
                other_rows.push(None);
            }
            let evict_at = evict_times.as_ref().and_then(|t| t[r]);
            let buffer = match side {
                Side::Left => !(semi && matched),
                // Spark: a right row the state watermark already passes can meet no later left
                // row (this batch's left rows came first), unless it must come out unmatched.
                Side::Right => {
                    let evicted_now = matches!((threshold, evict_at), (Some(th), Some(at)) if at <= th);
                    !evicted_now || (!matched && matches!(t, JoinType::RightOuter | JoinType::FullOuter))
                }
            };
            if buffer {
                this.state.append(key.unwrap_or(NULL_KEY), rows.row(r).data(), evict_at, range_time, matched)?;
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
                Some(th) => input.state.evict(th)?,
                None => Vec::new(),
            })
        };
        let left_gone = evict(&mut self.left, Side::Left, &self.watermarks)?;
        let right_gone = evict(&mut self.right, Side::Right, &self.watermarks)?;
        // Spark counts as removed only what its cleanup pass removes, not the outer side's rows
        // it removes while emitting them (so a full outer join reports none).
        let (left_outer, right_outer) = match t {
            JoinType::LeftOuter => (true, false),
            JoinType::RightOuter => (false, true),
            JoinType::FullOuter => (true, true),
            _ => (false, false),
        };
        let removed = if left_outer { 0 } else { left_gone.len() } + if right_outer { 0 } else { right_gone.len() };
        let unmatched = |gone: Vec<super::stream_state::Evicted>, outer: bool| -> Vec<Vec<u8>> {
            if outer {
                gone.into_iter().filter(|e| !e.matched).map(|e| e.row).collect()
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
        self.progress = progress(&l, &r, removed as u64, self.dropped_late);
        Ok((out, progress_json(&self.progress)))
    }
}

/// The rows `rows` (a side's row format) as a batch of that side's schema.
fn decode(input: &Input, rows: &[Vec<u8>]) -> Result<RecordBatch, ArrowError> {
    if rows.is_empty() {
        return Ok(RecordBatch::new_empty(input.schema.clone()));
    }
    let parser = input.converter.parser();
    let columns: Vec<ArrayRef> = input.converter.convert_rows(rows.iter().map(|r| parser.parse(r)))?;
    RecordBatch::try_new(input.schema.clone(), columns)
}

fn progress(left: &SideMetrics, right: &SideMetrics, removed: u64, dropped_late: u64) -> StateOperatorProgress {
    StateOperatorProgress {
        metrics: StateMetrics {
            num_rows_total: left.rows + right.rows,
            num_rows_updated: left.appended + right.appended,
            num_rows_removed: removed,
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
