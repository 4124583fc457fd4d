//! Spark's rate source: rows `timestamp`, `value` at `rows_per_second`, for demos and tests.
//! Value v carries the timestamp `start + v / rows_per_second`; a batch covers the values
//! generated up to the moment it was planned, and reads the same rows whenever it is replayed.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, TimestampMicrosecondArray};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use super::continuous::{ContinuousSource, MAX_POLL_ROWS};
use super::{Source, SourceError};
use crate::config::RateSourceConfig;
use crate::deadletter::BadRecords;
use crate::format::DECODE_BATCH_ROWS;
use crate::schema::parse_ddl;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct RateRange {
    /// First value of the batch.
    pub start: i64,
    /// One past the last value.
    pub end: i64,
    /// The query's start: timestamp of value 0 (µs since the epoch).
    pub start_time_micros: i64,
}

pub struct RateSource {
    rows_per_second: u64,
    num_partitions: u32,
    schema: SchemaRef,
    start_time_micros: Option<i64>,
    next_value: i64,
    /// The continuous trigger: the first value of the current epoch.
    epoch_start: i64,
}

impl RateSource {
    pub fn new(config: &RateSourceConfig) -> RateSource {
        RateSource {
            rows_per_second: config.rows_per_second,
            num_partitions: config.num_partitions,
            schema: parse_ddl("timestamp timestamp NOT NULL, value bigint NOT NULL").expect("fixed schema"),
            start_time_micros: None,
            next_value: 0,
            epoch_start: 0,
        }
    }

    fn timestamp_of(&self, start: i64, v: i64) -> i64 {
        start + ((v as i128 * 1_000_000) / self.rows_per_second as i128) as i64
    }
}

fn parse_range(range: &serde_json::Value) -> Result<RateRange, SourceError> {
    serde_json::from_value(range.clone()).map_err(|e| {
        SourceError::Invalid(format!(
            "offsets entry {range} is not a rate source's ({e}); was the job's source changed? use a new checkpoint"
        ))
    })
}

impl Source for RateSource {
    fn description(&self) -> String {
        format!("RateStreamV2[rowsPerSecond={}, numPartitions={}]", self.rows_per_second, self.num_partitions)
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The last range: `restore` only needs where the rows stopped.
    fn compact_ranges(&self, mut planned: Vec<serde_json::Value>) -> Result<Vec<serde_json::Value>, SourceError> {
        Ok(planned.pop().into_iter().collect())
    }

    fn restore(&mut self, planned: &[serde_json::Value]) -> Result<(), SourceError> {
        if let Some(last) = planned.last() {
            let r = parse_range(last)?;
            self.start_time_micros = Some(r.start_time_micros);
            self.next_value = r.end;
        }
        Ok(())
    }

    fn plan_next(&mut self, now_micros: i64) -> Result<Option<serde_json::Value>, SourceError> {
        let start_time = *self.start_time_micros.get_or_insert(now_micros);
        let elapsed = (now_micros - start_time).max(0) as i128;
        let end = (elapsed * self.rows_per_second as i128 / 1_000_000) as i64;
        if end <= self.next_value {
            return Ok(None);
        }
        let range = RateRange { start: self.next_value, end, start_time_micros: start_time };
        self.next_value = end;
        Ok(Some(serde_json::to_value(range).expect("plain struct")))
    }

    fn read(&mut self, range: &serde_json::Value, _bad: &mut BadRecords) -> Result<Vec<RecordBatch>, SourceError> {
        let r = parse_range(range)?;
        let mut out = Vec::new();
        let mut v = r.start;
        while v < r.end {
            let n = (r.end - v).min(DECODE_BATCH_ROWS as i64);
            let values: Vec<i64> = (v..v + n).collect();
            let times: Vec<i64> = values.iter().map(|&x| self.timestamp_of(r.start_time_micros, x)).collect();
            out.push(
                RecordBatch::try_new(
                    self.schema.clone(),
                    vec![
                        Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")),
                        Arc::new(Int64Array::from(values)),
                    ],
                )
                .expect("columns follow the fixed schema"),
            );
            v += n;
        }
        Ok(out)
    }

    /// Until the next row is due (a plan takes the rows whose time has fully passed), at most
    /// 100 ms: at 1000 rows/s a row is due every millisecond.
    fn idle_poll(&self, now_micros: i64) -> std::time::Duration {
        let Some(start) = self.start_time_micros else { return std::time::Duration::ZERO };
        let due = self.timestamp_of(start, self.next_value + 1);
        std::time::Duration::from_micros((due - now_micros).clamp(0, super::IDLE_POLL.as_micros() as i64) as u64)
    }

    fn continuous(&mut self) -> Option<&mut dyn ContinuousSource> {
        Some(self)
    }

    fn describe_range(&self, range: &serde_json::Value) -> String {
        match parse_range(range) {
            Ok(r) => format!("rate values {}..{}", r.start, r.end),
            Err(_) => range.to_string(),
        }
    }
}

/// Continuous: each value is handed over as soon as its timestamp is reached (Spark's
/// `RateStreamContinuousStream`), a range per epoch.
impl ContinuousSource for RateSource {
    fn open(&mut self) -> Result<(), SourceError> {
        self.start_time_micros.get_or_insert_with(|| chrono::Utc::now().timestamp_micros());
        self.epoch_start = self.next_value;
        Ok(())
    }

    fn poll(&mut self, wait: Duration, bad: &mut BadRecords) -> Result<Vec<RecordBatch>, SourceError> {
        let start_time = self.start_time_micros.expect("opened");
        // Values whose timestamp has been reached: v <= elapsed × rate.
        let due = |now: i64| ((now - start_time).max(0) as i128 * self.rows_per_second as i128 / 1_000_000) as i64 + 1;
        let now = chrono::Utc::now().timestamp_micros();
        if due(now) <= self.next_value {
            let next_at = self.timestamp_of(start_time, self.next_value);
            std::thread::sleep(Duration::from_micros((next_at - now).max(0) as u64).min(wait));
        }
        let end = due(chrono::Utc::now().timestamp_micros()).min(self.next_value + MAX_POLL_ROWS as i64);
        if end <= self.next_value {
            return Ok(Vec::new());
        }
        let range = RateRange { start: self.next_value, end, start_time_micros: start_time };
        self.next_value = end;
        self.read(&serde_json::to_value(range).expect("plain struct"), bad)
    }

    fn end_epoch(&mut self) -> Result<Option<serde_json::Value>, SourceError> {
        if self.next_value == self.epoch_start {
            return Ok(None);
        }
        let start_time_micros = self.start_time_micros.expect("opened");
        let range = RateRange { start: self.epoch_start, end: self.next_value, start_time_micros };
        self.epoch_start = self.next_value;
        Ok(Some(serde_json::to_value(range).expect("plain struct")))
    }

    fn rewind_epoch(&mut self) -> Result<(), SourceError> {
        self.next_value = self.epoch_start;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;
    use arrow::datatypes::{Int64Type, TimestampMicrosecondType};

    use super::*;
    use crate::deadletter::OnBadRecord;

    #[test]
    fn an_idle_query_asks_again_when_the_next_row_is_due_and_at_most_after_100_ms() {
        let mut s = RateSource::new(&RateSourceConfig { rows_per_second: 4, num_partitions: 1 });
        assert_eq!(s.idle_poll(0), Duration::ZERO, "not started: plan now");
        let t0 = 1_000_000_000;
        assert!(s.plan_next(t0).unwrap().is_none());
        // Row 0 is planned once 250 ms have passed: at most 100 ms at a time.
        assert_eq!(s.idle_poll(t0), Duration::from_millis(100));
        assert_eq!(s.idle_poll(t0 + 200_000), Duration::from_millis(50));
        assert_eq!(s.idle_poll(t0 + 300_000), Duration::ZERO, "overdue");
        s.plan_next(t0 + 1_600_000).unwrap().unwrap();
        // Rows 0..6 planned; row 6 is planned at 1.75 s.
        assert_eq!(s.idle_poll(t0 + 1_700_000), Duration::from_millis(50));
        let mut fast = RateSource::new(&RateSourceConfig { rows_per_second: 1000, num_partitions: 1 });
        fast.plan_next(t0).unwrap();
        assert_eq!(fast.idle_poll(t0 + 400), Duration::from_micros(600));
    }

    #[test]
    fn continuously_each_value_comes_once_its_time_is_reached_and_an_epoch_is_its_range() {
        let cfg = RateSourceConfig { rows_per_second: 4, num_partitions: 1 };
        let mut s = RateSource::new(&cfg);
        // Started 1.1 s ago: values 0..=4 (timestamps 0, 0.25, ..., 1.0 s) are due.
        let t0 = chrono::Utc::now().timestamp_micros() - 1_100_000;
        s.restore(&[serde_json::to_value(RateRange { start: 0, end: 0, start_time_micros: t0 }).unwrap()]).unwrap();
        ContinuousSource::open(&mut s).unwrap();
        let mut bad = BadRecords::new(OnBadRecord::Fail);
        let values = |b: &[RecordBatch]| -> Vec<i64> {
            b.iter().flat_map(|b| b.column(1).as_primitive::<Int64Type>().values().to_vec()).collect()
        };
        let first = s.poll(Duration::ZERO, &mut bad).unwrap();
        assert_eq!(values(&first), vec![0, 1, 2, 3, 4]);
        assert!(s.poll(Duration::ZERO, &mut bad).unwrap().is_empty(), "value 5 is not due before 1.25 s");
        let epoch = s.end_epoch().unwrap().unwrap();
        assert_eq!(parse_range(&epoch).unwrap(), RateRange { start: 0, end: 5, start_time_micros: t0 });
        assert_eq!(s.end_epoch().unwrap(), None, "an epoch that read nothing has no range");
        // Waiting for the next value: it comes when due.
        let next = s.poll(Duration::from_secs(1), &mut bad).unwrap();
        assert_eq!(values(&next), vec![5]);
        // Rewound, the epoch's values come again, then the epoch covers them once.
        s.rewind_epoch().unwrap();
        assert_eq!(values(&s.poll(Duration::ZERO, &mut bad).unwrap()), vec![5]);
        let epoch = s.end_epoch().unwrap().unwrap();
        assert_eq!((parse_range(&epoch).unwrap().start, parse_range(&epoch).unwrap().end), (5, 6));
        // A micro-batch replay of the epoch reads the same rows.
        assert_eq!(values(&s.read(&epoch, &mut bad).unwrap()), vec![5]);
    }

    #[test]
    fn values_follow_the_clock_and_replay_identically_after_restore() {
        let cfg = RateSourceConfig { rows_per_second: 4, num_partitions: 1 };
        let mut s = RateSource::new(&cfg);
        let t0 = 1_000_000_000;
        assert!(s.plan_next(t0).unwrap().is_none(), "nothing generated at the start instant");
        let r1 = s.plan_next(t0 + 1_000_000).unwrap().unwrap();
        assert_eq!(parse_range(&r1).unwrap(), RateRange { start: 0, end: 4, start_time_micros: t0 });
        let r2 = s.plan_next(t0 + 1_600_000).unwrap().unwrap();
        assert_eq!((parse_range(&r2).unwrap().start, parse_range(&r2).unwrap().end), (4, 6));

        let mut bad = BadRecords::new(OnBadRecord::Fail);
        let b = &s.read(&r2, &mut bad).unwrap()[0];
        assert_eq!(b.column(1).as_primitive::<Int64Type>().values().to_vec(), vec![4, 5]);
        assert_eq!(
            b.column(0).as_primitive::<TimestampMicrosecondType>().values().to_vec(),
            vec![t0 + 1_000_000, t0 + 1_250_000]
        );

        let mut restarted = RateSource::new(&cfg);
        restarted.restore(&[r1, r2.clone()]).unwrap();
        assert_eq!(restarted.read(&r2, &mut bad).unwrap()[0], *b);
        let r3 = restarted.plan_next(t0 + 2_000_000).unwrap().unwrap();
        assert_eq!(parse_range(&r3).unwrap(), RateRange { start: 6, end: 8, start_time_micros: t0 });
    }
}
