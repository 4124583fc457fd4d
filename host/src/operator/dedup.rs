//! `dedup`: Spark's `dropDuplicates(keys)`. A row passes the first time its key is seen; the
//! keys seen are kept in a state store. When the job's watermark column is one of the keys
//! (Spark's rule), rows older than the watermark are dropped and counted, and keys behind the
//! watermark leave the state; otherwise the state grows without bound.

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::datatypes::{SchemaRef, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};

use super::{key_indices, StateOperatorProgress};
use crate::state::{StateError, StateStore};

pub struct DedupOperator {
    keys: Vec<usize>,
    converter: RowConverter,
    /// Index of the watermark column among the input columns, when it is one of the keys.
    event_time: Option<usize>,
    store: Box<dyn StateStore>,
    dropped_late: u64,
}

impl DedupOperator {
    /// `keys`: column names (checked against `schema`); `watermark_column`: the job's, if any.
    pub fn new(
        schema: &SchemaRef,
        keys: &[String],
        watermark_column: Option<&str>,
        store: Box<dyn StateStore>,
    ) -> Result<DedupOperator, String> {
        let idx = key_indices(schema, keys)?;
        let fields = idx.iter().map(|&i| SortField::new(schema.field(i).data_type().clone())).collect();
        let converter = RowConverter::new(fields).map_err(|e| e.to_string())?;
        let event_time =
            watermark_column.filter(|w| keys.iter().any(|k| k == w)).map(|w| schema.index_of(w).expect("a key"));
        Ok(DedupOperator { keys: idx, converter, event_time, store, dropped_late: 0 })
    }

    /// Whether the state is bounded by the watermark (else the job warns at start).
    pub fn bounded(&self) -> bool {
        self.event_time.is_some()
    }

    /// Starts batch `batch_id` from the state committed by the batch before.
    pub fn begin(&mut self, batch_id: u64) -> Result<(), StateError> {
        self.dropped_late = 0;
        self.store.begin(batch_id)
    }

    /// The rows of `input` whose key is new, in input order, and the indices of the rows
    /// dropped as late: at or behind `late_watermark` (the watermark of the batch before, µs
    /// since the epoch, as Spark's watermark for late events).
    pub fn process(&mut self, input: &RecordBatch, late_watermark: i64) -> Result<(RecordBatch, Vec<u32>), StateError> {
        let cols: Vec<_> = self.keys.iter().map(|&i| input.column(i).clone()).collect();
        let rows = self.converter.convert_columns(&cols).expect("key columns match the converter's fields");
        let times = self.event_time.map(|i| input.column(i).as_primitive::<TimestampMicrosecondType>().clone());
        let mut keep = Vec::with_capacity(input.num_rows());
        let mut late = Vec::new();
        for r in 0..input.num_rows() {
            let mut value = Vec::new();
            if let Some(t) = &times {
                // A null event time is never late (Spark's comparison with null is not true).
                if t.is_valid(r) && t.value(r) <= late_watermark {
                    self.dropped_late += 1;
                    late.push(r as u32);
                    keep.push(false);
                    continue;
                }
                if t.is_valid(r) {
                    value = t.value(r).to_le_bytes().to_vec();
                }
            }
            let key = rows.row(r);
            if self.store.get(key.as_ref())?.is_some() {
                keep.push(false);
            } else {
                self.store.put(key.as_ref(), &value);
                keep.push(true);
            }
        }
        let kept =
            arrow::compute::filter_record_batch(input, &BooleanArray::from(keep)).expect("mask has one entry per row");
        Ok((kept, late))
    }

    /// Evicts keys at or behind `watermark` (this batch's) and commits.
    pub fn end(&mut self, watermark: i64) -> Result<StateOperatorProgress, StateError> {
        if self.event_time.is_some() {
            let mut expired: Vec<Vec<u8>> = Vec::new();
            self.store.for_each(&mut |k, v| {
                if v.len() == 8 && i64::from_le_bytes(v.try_into().expect("8 bytes")) <= watermark {
                    expired.push(k.to_vec());
                }
            })?;
            for k in expired {
                self.store.remove(&k);
            }
        }
        let metrics = self.store.commit()?;
        Ok(StateOperatorProgress { metrics, num_rows_dropped_by_watermark: self.dropped_late })
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

    impl DedupOperator {
        fn process_kept(&mut self, input: &RecordBatch, watermark: i64) -> RecordBatch {
            self.process(input, watermark).unwrap().0
        }
    }

    #[test]
    fn duplicates_within_and_across_batches_pass_once_and_a_replay_sees_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let store = Box::new(MemoryStateStore::open(dir.path(), 5).unwrap());
        let mut d = DedupOperator::new(&batch(&[]).schema(), &["id".into()], None, store).unwrap();
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
        let mut d = DedupOperator::new(&batch(&[]).schema(), &keys, Some("at"), store).unwrap();
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
        let e = DedupOperator::new(&batch(&[]).schema(), &["nope".into()], None, store).err().unwrap();
        assert_eq!(e, "key column `nope` is not in the input (its columns are: id, at)");
    }
}
