//! `dedup`: Spark's `dropDuplicates(keys)` and `dropDuplicatesWithinWatermark(keys)`
//! (StreamingDeduplicateExec and StreamingDeduplicateWithinWatermarkExec). A row passes the first
//! time its key is seen; the keys seen are kept in a state store.
//!
//! Spark's two watermarks, as for every stateful operator: when the input has the job's
//! watermark column, rows at or behind the previous batch's watermark are dropped as late and
//! counted, whatever the keys; keys leave the state at the end of a batch by this batch's
//! watermark. Which keys leave depends on the kind:
//! - `dropDuplicates` with the watermark column among the keys: a key whose event time is at or
//!   behind the watermark. Without it among the keys, no key ever leaves (the state grows).
//! - `dropDuplicatesWithinWatermark`: a key whose first row's event time plus the watermark
//!   delay is at or behind the watermark (Spark stores that sum, `expiresAtMicros`).
//!
//! Both store, per key, the watermark at or past which it leaves (8 bytes, µs), or nothing for a
//! key that never leaves; so the eviction at the end of a batch is one rule for both kinds.

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};

use anyhow::Context;

use super::{key_indices, StateOperatorProgress};
use crate::engine::operator::{state_progress, BatchContext, Operator};
use crate::state::{StateError, StateStore};

/// The job's watermark, as a dedup sees it.
#[derive(Debug, Clone, Copy)]
pub struct DedupWatermark<'a> {
    /// The watermark column (the event time).
    pub column: &'a str,
    /// The delay of the event-time column, µs: a key of `dropDuplicatesWithinWatermark` is kept
    /// for this long past its first row's event time.
    pub delay_micros: i64,
}

/// How keys leave the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// Never: `dropDuplicates` without the event time among its keys.
    Never,
    /// `dropDuplicates` with the event time among its keys: when the watermark reaches it.
    AtEventTime,
    /// `dropDuplicatesWithinWatermark`: when the watermark reaches event time + delay.
    WithinWatermark { delay_micros: i64 },
}

pub struct DedupOperator {
    keys: Vec<usize>,
    converter: RowConverter,
    /// Index of the watermark column among the input columns, when the input has it: then late
    /// rows are dropped (Spark's `watermarkPredicateForDataForLateEvents`).
    event_time: Option<usize>,
    expiry: Expiry,
    /// Whether the job has a watermark at all: then, as in Spark, a moving watermark alone runs a
    /// (no-data) batch for this operator.
    has_watermark: bool,
    store: Box<dyn StateStore>,
    dropped_late: u64,
    dropped_duplicates: u64,
    /// Keys put in the batch (Spark's `numUpdatedStateRows` for dedup counts every put, also of
    /// a key evicted again at the batch's end, which the store's net figure would not).
    put: u64,
    /// Which `[[operator]]` this is, for messages (see [`DedupOperator::at`]).
    index: usize,
    /// Its input's columns, which it outputs unchanged.
    schema: SchemaRef,
    /// The `stateOperators[]` entry of the last batch.
    last_progress: Option<serde_json::Value>,
}

impl DedupOperator {
    /// `keys`: column names (checked against `schema`); `watermark`: the job's, if any;
    /// `within_watermark`: Spark's dropDuplicatesWithinWatermark, which needs the watermark
    /// column in `schema`. The error names the field at fault (`keys`, `within_watermark`).
    pub fn new(
        schema: &SchemaRef,
        keys: &[String],
        watermark: Option<DedupWatermark<'_>>,
        within_watermark: bool,
        store: Box<dyn StateStore>,
    ) -> Result<DedupOperator, (&'static str, String)> {
        let (idx, event_time, expiry) = layout(schema, keys, watermark, within_watermark)?;
        let fields = idx.iter().map(|&i| SortField::new(schema.field(i).data_type().clone())).collect();
        let converter = RowConverter::new(fields).map_err(|e| ("keys", e.to_string()))?;
        Ok(DedupOperator {
            keys: idx,
            converter,
            event_time,
            expiry,
            has_watermark: watermark.is_some(),
            store,
            dropped_late: 0,
            dropped_duplicates: 0,
            put: 0,
            index: 0,
            schema: schema.clone(),
            last_progress: None,
        })
    }

    /// The operator's position in the job file (`operator[i]` in messages).
    pub fn at(mut self, index: usize) -> Self {
        self.index = index;
        self
    }

    /// Checks what [`DedupOperator::new`] checks, before the state store is opened, so that a
    /// refused job leaves no state behind.
    pub fn check(
        schema: &SchemaRef,
        keys: &[String],
        watermark: Option<DedupWatermark<'_>>,
        within_watermark: bool,
    ) -> Result<(), (&'static str, String)> {
        layout(schema, keys, watermark, within_watermark).map(|_| ())
    }

    /// Whether the state is bounded by the watermark (else the job warns at start).
    pub fn bounded(&self) -> bool {
        self.expiry != Expiry::Never
    }

    /// Whether a moving watermark alone gives this operator a batch to run (Spark's
    /// `shouldRunAnotherBatch` for dedup: whenever the job has a watermark, whatever the keys).
    pub fn runs_on_watermark(&self) -> bool {
        self.has_watermark
    }

    /// Spark's `operatorName` in progress records.
    pub fn progress_name(&self) -> &'static str {
        match self.expiry {
            Expiry::WithinWatermark { .. } => "dedupeWithinWatermark",
            _ => "dedupe",
        }
    }

    /// Rows dropped as duplicates in the batch (Spark's custom metric `numDroppedDuplicateRows`).
    pub fn dropped_duplicates(&self) -> u64 {
        self.dropped_duplicates
    }

    /// Starts batch `batch_id` from the state committed by the batch before.
    pub fn begin(&mut self, batch_id: u64) -> Result<(), StateError> {
        self.dropped_late = 0;
        self.dropped_duplicates = 0;
        self.put = 0;
        self.store.begin(batch_id)
    }

    /// The rows of `input` whose key is new, in input order, and the indices of the rows
    /// dropped as late: at or behind `late_watermark` (the watermark of the batch before, µs
    /// since the epoch, as Spark's watermark for late events), whenever the input has the
    /// watermark column. Late rows are dropped before the state is looked at, so they neither
    /// pass nor enter the state.
    pub fn process(&mut self, input: &RecordBatch, late_watermark: i64) -> Result<(RecordBatch, Vec<u32>), StateError> {
        let cols: Vec<_> = self.keys.iter().map(|&i| input.column(i).clone()).collect();
        let rows = self.converter.convert_columns(&cols).expect("key columns match the converter's fields");
        let times = self.event_time.map(|i| input.column(i).as_primitive::<TimestampMicrosecondType>().clone());
        let mut keep = Vec::with_capacity(input.num_rows());
        let mut late = Vec::new();
        for r in 0..input.num_rows() {
            // A null event time is never late (Spark's comparison with null is not true).
            let time = times.as_ref().and_then(|t| t.is_valid(r).then(|| t.value(r)));
            if time.is_some_and(|t| t <= late_watermark) {
                self.dropped_late += 1;
                late.push(r as u32);
                keep.push(false);
                continue;
            }
            let key = rows.row(r);
            if self.store.get(key.as_ref())?.is_some() {
                self.dropped_duplicates += 1;
                keep.push(false);
                continue;
            }
            // The watermark at or past which the key leaves the state; none: it stays.
            let leaves_at = match self.expiry {
                Expiry::Never => None,
                Expiry::AtEventTime => time,
                // Spark reads a null event time as 0 here (an UnsafeRow's null slot), so such a
                // key leaves once the watermark reaches the delay itself.
                Expiry::WithinWatermark { delay_micros } => Some(time.unwrap_or(0).saturating_add(delay_micros)),
            };
            let value = leaves_at.map(|t| t.to_le_bytes().to_vec()).unwrap_or_default();
            self.store.put(key.as_ref(), &value);
            self.put += 1;
            keep.push(true);
        }
        let kept =
            arrow::compute::filter_record_batch(input, &BooleanArray::from(keep)).expect("mask has one entry per row");
        Ok((kept, late))
    }

    /// Evicts keys whose time is at or behind `watermark` (this batch's) and commits. The
    /// updated and removed figures are Spark's: every put and every eviction of the batch, also
    /// of a key put and evicted in it (the store's own figures are net changes).
    pub fn end(&mut self, watermark: i64) -> Result<StateOperatorProgress, StateError> {
        let mut expired: Vec<Vec<u8>> = Vec::new();
        if self.expiry != Expiry::Never {
            self.store.for_each(&mut |k, v| {
                if v.len() == 8 && i64::from_le_bytes(v.try_into().expect("8 bytes")) <= watermark {
                    expired.push(k.to_vec());
                }
            })?;
            for k in &expired {
                self.store.remove(k);
            }
        }
        let mut metrics = self.store.commit()?;
        metrics.num_rows_updated = self.put;
        metrics.num_rows_removed = expired.len() as u64;
        Ok(StateOperatorProgress { metrics, num_rows_dropped_by_watermark: self.dropped_late })
    }
}

/// The key columns, the event-time column (when the input has the watermark column, a µs
/// timestamp) and how keys leave the state.
fn layout(
    schema: &SchemaRef,
    keys: &[String],
    watermark: Option<DedupWatermark<'_>>,
    within_watermark: bool,
) -> Result<(Vec<usize>, Option<usize>, Expiry), (&'static str, String)> {
    let idx = key_indices(schema, keys).map_err(|e| ("keys", e))?;
    // Spark finds the event-time column in the operator's input, wherever the keys are.
    let event_time = watermark.and_then(|w| {
        schema
            .column_with_name(w.column)
            .filter(|(_, f)| matches!(f.data_type(), DataType::Timestamp(TimeUnit::Microsecond, _)))
            .map(|(i, _)| i)
    });
    let expiry = match (watermark, event_time) {
        (Some(w), Some(_)) if within_watermark => Expiry::WithinWatermark { delay_micros: w.delay_micros },
        (None, _) if within_watermark => {
            return Err(("within_watermark", "needs a [watermark] (Spark: dropDuplicatesWithinWatermark is not supported on streaming DataFrames/DataSets without watermark)".to_string()))
        }
        (Some(w), None) if within_watermark => {
            return Err((
                "within_watermark",
                format!(
                    "needs the watermark column `{}` (a timestamp) in the operator's input, and its columns are: {} (Spark: dropDuplicatesWithinWatermark is not supported on streaming DataFrames/DataSets without watermark); keep the column through the operators before it",
                    w.column,
                    schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
                ),
            ))
        }
        (_, Some(t)) if idx.contains(&t) => Expiry::AtEventTime,
        _ => Expiry::Never,
    };
    Ok((idx, event_time, expiry))
}

impl Operator for DedupOperator {
    fn index(&self) -> usize {
        self.index
    }

    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn begin(&mut self, ctx: &mut BatchContext) -> anyhow::Result<()> {
        let (id, index) = (ctx.batch_id, self.index);
        DedupOperator::begin(self, id).with_context(|| format!("batch {id}: operator[{index}] (dedup): loading state"))
    }

    fn process(&mut self, ctx: &mut BatchContext, input: &RecordBatch) -> anyhow::Result<Vec<RecordBatch>> {
        let (id, index) = (ctx.batch_id, self.index);
        let (kept, late) = DedupOperator::process(self, input, ctx.late_watermark)
            .with_context(|| format!("batch {id}: operator[{index}] (dedup): reading state"))?;
        ctx.late_rows(&format!("operator[{index}] (dedup)"), input, &late);
        Ok(vec![kept])
    }

    fn finish(&mut self, ctx: &mut BatchContext) -> anyhow::Result<Vec<RecordBatch>> {
        let (id, index) = (ctx.batch_id, self.index);
        let p = self
            .end(ctx.watermark)
            .with_context(|| format!("batch {id}: operator[{index}] (dedup): committing state"))?;
        let custom = serde_json::json!({ "numDroppedDuplicateRows": self.dropped_duplicates() });
        self.last_progress = Some(state_progress(self.progress_name(), &p, custom));
        Ok(Vec::new())
    }

    fn progress(&self) -> Option<serde_json::Value> {
        self.last_progress.clone()
    }

    fn wants_no_data_batch(&self, watermark_moved: bool, _now_micros: i64) -> bool {
        watermark_moved && self.runs_on_watermark()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{StringArray, TimestampMicrosecondArray};

    use super::*;
    use crate::schema::parse_ddl;
    use crate::state::memory::MemoryStateStore;

    const MIN: i64 = 60_000_000;

    fn batch(rows: &[(&str, i64)]) -> RecordBatch {
        RecordBatch::try_new(
            parse_ddl("id string, at timestamp").unwrap(),
            vec![
                Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
                Arc::new(
                    TimestampMicrosecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>()).with_timezone("UTC"),
                ),
            ],
        )
        .unwrap()
    }

    fn ids(b: &RecordBatch) -> Vec<String> {
        b.column(0).as_string::<i32>().iter().map(|s| s.unwrap().to_string()).collect()
    }

    /// The job's watermark on `at`, `delay` minutes.
    fn wm(delay: i64) -> DedupWatermark<'static> {
        DedupWatermark { column: "at", delay_micros: delay * MIN }
    }

    fn store(dir: &tempfile::TempDir) -> Box<dyn StateStore> {
        Box::new(MemoryStateStore::open(dir.path(), 5).unwrap())
    }

    impl DedupOperator {
        fn process_kept(&mut self, input: &RecordBatch, watermark: i64) -> RecordBatch {
            self.process(input, watermark).unwrap().0
        }
    }

    #[test]
    fn duplicates_within_and_across_batches_pass_once_and_a_replay_sees_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let store = Box::new(MemoryStateStore::open(dir.path(), 5).unwrap());
        let mut d = DedupOperator::new(&batch(&[]).schema(), &["id".into()], None, false, store).unwrap();
        assert!(!d.bounded());
        d.begin(0).unwrap();
        assert_eq!(ids(&d.process_kept(&batch(&[("a", 0), ("b", 0), ("a", 1)]), 0)), vec!["a", "b"]);
        assert_eq!(d.end(0).unwrap().metrics.num_rows_total, 2);
        d.begin(1).unwrap();
        assert_eq!(ids(&d.process_kept(&batch(&[("b", 5), ("c", 5)]), 0)), vec!["c"]);
        // Batch 1 again (a replay): same answer, from batch 0's state.
        d.begin(1).unwrap();
        assert_eq!(ids(&d.process_kept(&batch(&[("b", 5), ("c", 5)]), 0)), vec!["c"]);
        assert_eq!(d.end(0).unwrap().metrics.num_rows_total, 3);
    }

    #[test]
    fn with_the_event_time_among_keys_late_rows_are_dropped_and_state_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = Box::new(MemoryStateStore::open(dir.path(), 5).unwrap());
        let keys = ["id".to_string(), "at".to_string()];
        let mut d = DedupOperator::new(&batch(&[]).schema(), &keys, Some(wm(10)), false, store).unwrap();
        assert!(d.bounded());
        d.begin(0).unwrap();
        assert_eq!(
            ids(&d.process_kept(&batch(&[("a", 10 * MIN), ("a", 10 * MIN), ("b", 30 * MIN)]), 0)),
            vec!["a", "b"]
        );
        assert_eq!(d.end(0).unwrap().metrics.num_rows_total, 2);
        // Batch 1 runs with watermark 20 min; rows are late only behind batch 0's (the epoch), so
        // (a, 10 min) is still a duplicate, not late. At its end, (a, 10 min) leaves the state.
        d.begin(1).unwrap();
        let out = d.process_kept(&batch(&[("a", 10 * MIN), ("b", 30 * MIN), ("c", 25 * MIN)]), 0);
        assert_eq!(ids(&out), vec!["c"]);
        let p = d.end(20 * MIN).unwrap();
        assert_eq!((p.metrics.num_rows_total, p.metrics.num_rows_removed), (2, 1), "(a, 10 min) evicted");
        assert_eq!(p.num_rows_dropped_by_watermark, 0);
        // Batch 2: late behind 20 min, inclusive (Spark's `event_time <= watermark`).
        d.begin(2).unwrap();
        let out = d.process_kept(&batch(&[("a", 10 * MIN), ("e", 20 * MIN), ("f", 20 * MIN + 1)]), 20 * MIN);
        assert_eq!(ids(&out), vec!["f"]);
        assert_eq!(d.end(20 * MIN).unwrap().num_rows_dropped_by_watermark, 2);
    }

    #[test]
    fn unknown_key_columns_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = Box::new(MemoryStateStore::open(dir.path(), 5).unwrap());
        let e = DedupOperator::new(&batch(&[]).schema(), &["nope".into()], None, false, store).err().unwrap();
        assert_eq!(e.0, "keys");
        assert_eq!(e.1, "key column `nope` is not in the input (its columns are: id, at)");
    }

    #[test]
    fn late_rows_are_dropped_and_counted_even_when_the_event_time_is_not_a_key() {
        // Spark drops input rows at or behind the previous batch's watermark whenever its input
        // has the event-time column; only the eviction of keys needs it among the keys.
        let dir = tempfile::tempdir().unwrap();
        let mut d = DedupOperator::new(&batch(&[]).schema(), &["id".into()], Some(wm(10)), false, store(&dir)).unwrap();
        assert!(!d.bounded(), "no key ever leaves: the event time is not a key");
        assert!(d.runs_on_watermark());
        assert_eq!(d.progress_name(), "dedupe");
        d.begin(0).unwrap();
        assert_eq!(ids(&d.process_kept(&batch(&[("a", 30 * MIN), ("a", 31 * MIN)]), 0)), vec!["a"]);
        assert_eq!(d.dropped_duplicates(), 1);
        d.end(20 * MIN).unwrap();
        d.begin(1).unwrap();
        // Late behind 20 min, inclusive: b (20 min) and c (5 min) are dropped before the state is
        // looked at, so they do not enter it; d passes; a stays a duplicate forever.
        let (kept, late) =
            d.process(&batch(&[("b", 20 * MIN), ("c", 5 * MIN), ("d", 21 * MIN), ("a", 40 * MIN)]), 20 * MIN).unwrap();
        assert_eq!((ids(&kept), late), (vec!["d".to_string()], vec![0, 1]));
        let p = d.end(30 * MIN).unwrap();
        assert_eq!((p.num_rows_dropped_by_watermark, p.metrics.num_rows_total), (2, 2));
        d.begin(2).unwrap();
        assert_eq!(ids(&d.process_kept(&batch(&[("b", 50 * MIN), ("a", 50 * MIN)]), 30 * MIN)), vec!["b"]);
    }

    #[test]
    fn without_a_watermark_column_in_the_input_nothing_is_late() {
        let dir = tempfile::tempdir().unwrap();
        let other = DedupWatermark { column: "elsewhere", delay_micros: MIN };
        let mut d = DedupOperator::new(&batch(&[]).schema(), &["id".into()], Some(other), false, store(&dir)).unwrap();
        d.begin(0).unwrap();
        assert_eq!(ids(&d.process_kept(&batch(&[("a", 0), ("b", 0)]), 10 * MIN)), vec!["a", "b"]);
        assert_eq!(d.end(10 * MIN).unwrap().num_rows_dropped_by_watermark, 0);
    }

    #[test]
    fn within_watermark_keeps_a_key_until_the_watermark_reaches_its_first_event_time_plus_the_delay() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = DedupOperator::new(&batch(&[]).schema(), &["id".into()], Some(wm(10)), true, store(&dir)).unwrap();
        assert!(d.bounded() && d.runs_on_watermark());
        assert_eq!(d.progress_name(), "dedupeWithinWatermark");
        d.begin(0).unwrap();
        // a expires at 10 + 10 = 20 min; its later duplicate (15 min) does not move that.
        assert_eq!(
            ids(&d.process_kept(&batch(&[("a", 10 * MIN), ("a", 15 * MIN), ("b", 12 * MIN)]), 0)),
            vec!["a", "b"]
        );
        // Watermark 19:59.999999: nothing expires yet (a at 20, b at 22).
        assert_eq!(d.end(20 * MIN - 1).unwrap().metrics.num_rows_total, 2);
        d.begin(1).unwrap();
        assert!(d.process_kept(&batch(&[("a", 25 * MIN)]), 0).num_rows() == 0, "still a duplicate");
        // Watermark exactly 20 min: a leaves (Spark: watermark >= expiresAt), b stays.
        let p = d.end(20 * MIN).unwrap();
        assert_eq!((p.metrics.num_rows_total, p.metrics.num_rows_removed), (1, 1));
        d.begin(2).unwrap();
        // A key put and evicted in the same batch still counts as updated, as in Spark.
        d.process_kept(&batch(&[("x", MIN)]), 0);
        let p = d.end(20 * MIN).unwrap();
        assert_eq!((p.metrics.num_rows_total, p.metrics.num_rows_updated, p.metrics.num_rows_removed), (1, 1, 1));
        d.begin(2).unwrap();
        // Batch 2 again (a replay, from batch 1's state, without x): a passes again (forgotten);
        // b is still a duplicate; c at 20 min is late (<= 20 min).
        let (kept, late) = d.process(&batch(&[("a", 30 * MIN), ("b", 30 * MIN), ("c", 20 * MIN)]), 20 * MIN).unwrap();
        assert_eq!((ids(&kept), late), (vec!["a".to_string()], vec![2]));
        let p = d.end(22 * MIN).unwrap();
        assert_eq!((p.metrics.num_rows_total, p.num_rows_dropped_by_watermark), (1, 1), "b left at 22 min");
    }

    #[test]
    fn within_watermark_needs_the_watermark_column_in_its_input() {
        let dir = tempfile::tempdir().unwrap();
        let e = DedupOperator::check(&batch(&[]).schema(), &["id".into()], None, true).err().unwrap();
        assert_eq!(e.0, "within_watermark");
        assert!(e.1.starts_with("needs a [watermark]"), "{}", e.1);
        let other = DedupWatermark { column: "event_time", delay_micros: MIN };
        let e = DedupOperator::new(&batch(&[]).schema(), &["id".into()], Some(other), true, store(&dir)).err().unwrap();
        assert_eq!(e.0, "within_watermark");
        assert!(
            e.1.starts_with("needs the watermark column `event_time` (a timestamp) in the operator's input, and its columns are: id, at"),
            "{}",
            e.1
        );
    }
}
