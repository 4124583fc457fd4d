//! Event-time watermarks with Spark's semantics: after each batch the watermark becomes
//! `max(current, max event time of the batch − delay)`; it never goes back, starts at the epoch
//! (1970-01-01, as Spark's 0), and the value computed after batch N is the one batch N+1 runs
//! with. It is written into each batch's offsets entry, so a replayed batch runs with the
//! watermark it had and a restart resumes from it. Rows with a null event time do not move it.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Schema, TimeUnit, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;

use crate::format::timestamp::format_timestamp_micros;
use crate::schema::type_name;

/// Event-time statistics of one batch (Spark's `eventTime` progress fields, plus counts).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EventTimeStats {
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub sum: i128,
    pub count: u64,
    /// Rows whose event time is null: not assigned to any window, counted.
    pub nulls: u64,
}

impl EventTimeStats {
    pub fn avg(&self) -> Option<i64> {
        (self.count > 0).then(|| (self.sum / self.count as i128) as i64)
    }

    /// Adds the event times of `batch`'s column `index` (a µs timestamp column).
    pub fn observe(&mut self, batch: &RecordBatch, index: usize) {
        let col = batch.column(index).as_primitive::<TimestampMicrosecondType>();
        self.nulls += col.null_count() as u64;
        for t in col.iter().flatten() {
            self.min = Some(self.min.map_or(t, |m| m.min(t)));
            self.max = Some(self.max.map_or(t, |m| m.max(t)));
            self.sum += t as i128;
            self.count += 1;
        }
    }
}

/// The watermark of one query.
#[derive(Debug, Clone)]
pub struct Watermark {
    column: String,
    index: usize,
    delay_micros: i64,
    current: i64,
}

impl Watermark {
    /// Checks that `column` is a timestamp column of `schema`; the error names the column and
    /// what it found.
    pub fn new(column: &str, delay: std::time::Duration, schema: &Schema) -> Result<Watermark, String> {
        let (index, field) = schema.column_with_name(column).ok_or_else(|| {
            format!(
                "column `{column}` is not in the source's schema (its columns are: {})",
                schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
            )
        })?;
        if !matches!(field.data_type(), DataType::Timestamp(TimeUnit::Microsecond, _)) {
            return Err(format!(
                "column `{column}` is {}, but a watermark needs a timestamp column",
                type_name(field.data_type())
            ));
        }
        Ok(Watermark { column: column.to_string(), index, delay_micros: delay.as_micros() as i64, current: 0 })
    }

    pub fn column(&self) -> &str {
        &self.column
    }

    pub fn index(&self) -> usize {
        self.index
    }

    /// The watermark in force for the batch being run (µs since the epoch).
    pub fn current(&self) -> i64 {
        self.current
    }

    /// Sets the watermark a batch runs with (from its offsets entry, on replay or restart).
    pub fn restore(&mut self, micros: i64) {
        self.current = micros;
    }

    /// The watermark the next batch will run with, once this batch's event times are in.
    pub fn peek_next(&self, stats: &EventTimeStats) -> i64 {
        stats.max.map_or(self.current, |max| self.current.max(max.saturating_sub(self.delay_micros)))
    }

    /// After a batch: the watermark for the next one.
    pub fn advance(&mut self, stats: &EventTimeStats) -> i64 {
        if let Some(max) = stats.max {
            self.current = self.current.max(max.saturating_sub(self.delay_micros));
        }
        self.current
    }
}

/// Spark's `eventTime` progress object: watermark, and the batch's min, max and avg event time;
/// plus (not a Spark field) `numRowsWithNullEventTime`, rows no window or watermark can use.
pub fn progress_json(watermark: i64, stats: &EventTimeStats) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("watermark".into(), format_timestamp_micros(watermark).into());
    for (k, v) in [("min", stats.min), ("max", stats.max), ("avg", stats.avg())] {
        if let Some(v) = v {
            m.insert(k.into(), format_timestamp_micros(v).into());
        }
    }
    if stats.nulls > 0 {
        m.insert("numRowsWithNullEventTime".into(), stats.nulls.into());
    }
    serde_json::Value::Object(m)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use arrow::array::TimestampMicrosecondArray;

    use super::*;
    use crate::schema::parse_ddl;

    const MIN: i64 = 60_000_000;

    fn batch(times: &[Option<i64>]) -> RecordBatch {
        RecordBatch::try_new(
            parse_ddl("id string, at timestamp").unwrap(),
            vec![
                Arc::new(arrow::array::StringArray::from(vec!["x"; times.len()])),
                Arc::new(TimestampMicrosecondArray::from(times.to_vec()).with_timezone("UTC")),
            ],
        )
        .unwrap()
    }

    #[test]
    fn watermark_is_max_event_time_minus_delay_and_never_goes_back() {
        let schema = batch(&[]).schema();
        let mut wm = Watermark::new("at", Duration::from_secs(600), &schema).unwrap();
        assert_eq!(wm.current(), 0, "starts at the epoch, as Spark's");
        let mut s = EventTimeStats::default();
        s.observe(&batch(&[Some(30 * MIN), None, Some(12 * MIN)]), 1);
        assert_eq!((s.min, s.max, s.count, s.nulls), (Some(12 * MIN), Some(30 * MIN), 2, 1));
        assert_eq!(s.avg(), Some(21 * MIN));
        assert_eq!(wm.advance(&s), 20 * MIN);
        let mut late = EventTimeStats::default();
        late.observe(&batch(&[Some(5 * MIN)]), 1);
        assert_eq!(wm.advance(&late), 20 * MIN, "an older batch does not move it back");
        assert_eq!(wm.advance(&EventTimeStats::default()), 20 * MIN, "an empty batch does not move it");
    }

    #[test]
    fn column_must_exist_and_be_a_timestamp() {
        let schema = batch(&[]).schema();
        let e = Watermark::new("ts", Duration::ZERO, &schema).unwrap_err();
        assert_eq!(e, "column `ts` is not in the source's schema (its columns are: id, at)");
        let e = Watermark::new("id", Duration::ZERO, &schema).unwrap_err();
        assert_eq!(e, "column `id` is string, but a watermark needs a timestamp column");
    }

    #[test]
    fn progress_uses_spark_names_and_timestamp_text() {
        let mut s = EventTimeStats::default();
        s.observe(&batch(&[Some(MIN), Some(3 * MIN)]), 1);
        let mut with_null = s;
        with_null.observe(&batch(&[None]), 1);
        assert_eq!(progress_json(MIN, &with_null)["numRowsWithNullEventTime"], 1);
        assert_eq!(
            progress_json(MIN, &s),
            serde_json::json!({"watermark": "1970-01-01T00:01:00.000Z", "min": "1970-01-01T00:01:00.000Z",
                               "max": "1970-01-01T00:03:00.000Z", "avg": "1970-01-01T00:02:00.000Z"})
        );
    }
}
