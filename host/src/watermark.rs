//! Event-time watermarks with Spark's semantics (its `WatermarkTracker`). Each input (source) has
//! its own watermark: the max event time it has seen minus its delay, never going back, at the
//! epoch (1970-01-01, Spark's 0) until it sees data. The query's global watermark is the minimum
//! over the inputs (or the maximum, Spark's `multipleWatermarkPolicy = max`), and never goes back
//! either. It is computed at the end of a batch, and the value computed after batch N is the one
//! batch N+1 runs with. It is written into each batch's offsets entry, so a replayed batch runs
//! with the watermark it had and a restart resumes from it; the inputs' own watermarks are in
//! each commit. Rows with a null event time do not move it.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Schema, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;

pub use crate::config::MultipleWatermarkPolicy;

use crate::format::timestamp::format_timestamp_micros;
use crate::schema::timestamp_column;

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

    /// The statistics of two parts of a batch together (its inputs).
    pub fn merge(&self, other: &EventTimeStats) -> EventTimeStats {
        let pick = |a: Option<i64>, b: Option<i64>, f: fn(i64, i64) -> i64| match (a, b) {
            (Some(a), Some(b)) => Some(f(a, b)),
            (a, b) => a.or(b),
        };
        EventTimeStats {
            min: pick(self.min, other.min, i64::min),
            max: pick(self.max, other.max, i64::max),
            sum: self.sum + other.sum,
            count: self.count + other.count,
            nulls: self.nulls + other.nulls,
        }
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

/// The global watermark after a batch: `policy` over the inputs' own watermarks, never below the
/// `current` one. Without inputs it stays where it is.
pub fn global_watermark(policy: MultipleWatermarkPolicy, current: i64, inputs: &[i64]) -> i64 {
    let chosen = match policy {
        MultipleWatermarkPolicy::Min => inputs.iter().min(),
        MultipleWatermarkPolicy::Max => inputs.iter().max(),
    };
    chosen.map_or(current, |&c| current.max(c))
}

/// The watermark of one query: one per input, and the global one the batches run with.
#[derive(Debug, Clone)]
pub struct Watermark {
    column: String,
    index: usize,
    /// Per input: the index of its event-time column in its batches (`index` unless the input
    /// has its own column, as a stream joined to another has).
    indices: Vec<usize>,
    policy: MultipleWatermarkPolicy,
    /// Per input: its delay (µs).
    delays: Vec<i64>,
    /// Per input: its own watermark (µs since the epoch; 0 before it sees data).
    inputs: Vec<i64>,
    /// The global watermark in force for the batch being run.
    current: i64,
}

impl Watermark {
    /// Checks that `column` is a timestamp column of `schema` (every input has that schema); the
    /// error names the column and what it found. `delays` has one entry per input.
    pub fn new(
        column: &str,
        delays: &[std::time::Duration],
        policy: MultipleWatermarkPolicy,
        schema: &Schema,
    ) -> Result<Watermark, String> {
        let index = timestamp_column(schema, column, "the source's schema", "a watermark")?;
        Ok(Watermark {
            column: column.to_string(),
            index,
            indices: vec![index; delays.len()],
            policy,
            delays: delays.iter().map(|d| d.as_micros() as i64).collect(),
            inputs: vec![0; delays.len()],
            current: 0,
        })
    }

    pub fn column(&self) -> &str {
        &self.column
    }

    pub fn index(&self) -> usize {
        self.index
    }

    /// Gives input `i` its own event-time column, a timestamp column of `schema` (its batches').
    pub fn set_input_column(&mut self, i: usize, column: &str, schema: &Schema) -> Result<(), String> {
        self.indices[i] = timestamp_column(schema, column, "the source's schema", "a watermark")?;
        Ok(())
    }

    /// The index of input `i`'s event-time column in its batches.
    pub fn index_of(&self, i: usize) -> usize {
        self.indices[i]
    }

    /// The watermark in force for the batch being run (µs since the epoch).
    pub fn current(&self) -> i64 {
        self.current
    }

    /// Sets the watermark a batch runs with (from its offsets entry, on replay or restart).
    pub fn restore(&mut self, micros: i64) {
        self.current = micros;
    }

    /// Each input's own watermark, in the job's order of sources.
    pub fn inputs(&self) -> &[i64] {
        &self.inputs
    }

    /// Sets each input's own watermark (from the last commit, on restart).
    pub fn restore_inputs(&mut self, micros: &[i64]) {
        assert_eq!(micros.len(), self.inputs.len(), "one watermark per input");
        self.inputs.copy_from_slice(micros);
    }

    /// After a batch, with the event times each input had in it (one entry per input): moves
    /// each input's watermark, then the global one; returns the watermark for the next batch.
    pub fn advance(&mut self, stats: &[EventTimeStats]) -> i64 {
        assert_eq!(stats.len(), self.inputs.len(), "event-time statistics per input");
        for ((wm, delay), s) in self.inputs.iter_mut().zip(&self.delays).zip(stats) {
            if let Some(max) = s.max {
                *wm = (*wm).max(max.saturating_sub(*delay));
            }
        }
        self.current = global_watermark(self.policy, self.current, &self.inputs);
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

    fn stats(times: &[Option<i64>]) -> EventTimeStats {
        let mut s = EventTimeStats::default();
        s.observe(&batch(times), 1);
        s
    }

    #[test]
    fn watermark_is_max_event_time_minus_delay_and_never_goes_back() {
        let schema = batch(&[]).schema();
        let mut wm = Watermark::new("at", &[Duration::from_secs(600)], MultipleWatermarkPolicy::Min, &schema).unwrap();
        assert_eq!(wm.current(), 0, "starts at the epoch, as Spark's");
        let s = stats(&[Some(30 * MIN), None, Some(12 * MIN)]);
        assert_eq!((s.min, s.max, s.count, s.nulls), (Some(12 * MIN), Some(30 * MIN), 2, 1));
        assert_eq!(s.avg(), Some(21 * MIN));
        assert_eq!(wm.advance(&[s]), 20 * MIN);
        assert_eq!(wm.advance(&[stats(&[Some(5 * MIN)])]), 20 * MIN, "an older batch does not move it back");
        assert_eq!(wm.advance(&[EventTimeStats::default()]), 20 * MIN, "an empty batch does not move it");
    }

    #[test]
    fn global_watermark_is_the_min_or_max_over_inputs_and_never_goes_back() {
        use MultipleWatermarkPolicy::{Max, Min};
        assert_eq!(global_watermark(Min, 0, &[20 * MIN, 5 * MIN]), 5 * MIN);
        assert_eq!(global_watermark(Max, 0, &[20 * MIN, 5 * MIN]), 20 * MIN);
        // An input without data counts as the epoch: under min nothing moves until every input has data.
        assert_eq!(global_watermark(Min, 0, &[20 * MIN, 0]), 0);
        assert_eq!(global_watermark(Max, 0, &[20 * MIN, 0]), 20 * MIN);
        // Never back: the inputs' min is 5 min, behind the current 8 min.
        assert_eq!(global_watermark(Min, 8 * MIN, &[20 * MIN, 5 * MIN]), 8 * MIN);
        assert_eq!(global_watermark(Max, 30 * MIN, &[20 * MIN, 5 * MIN]), 30 * MIN);
        assert_eq!(global_watermark(Min, 7, &[]), 7);
    }

    /// Two inputs, delays 10 min (a) and 2 min (b).
    fn two_inputs(policy: MultipleWatermarkPolicy) -> Watermark {
        let delays = [Duration::from_secs(600), Duration::from_secs(120)];
        Watermark::new("at", &delays, policy, &batch(&[]).schema()).unwrap()
    }

    #[test]
    fn under_min_an_input_without_data_holds_the_global_watermark_at_the_epoch() {
        let mut wm = two_inputs(MultipleWatermarkPolicy::Min);
        let none = EventTimeStats::default();
        // a: 30 − 10 = 20 min; b has no data yet: the epoch. min = epoch.
        assert_eq!(wm.advance(&[stats(&[Some(30 * MIN)]), none]), 0);
        assert_eq!(wm.inputs(), &[20 * MIN, 0]);
        // b: 12 − 2 = 10 min. min(20, 10) = 10 min.
        assert_eq!(wm.advance(&[none, stats(&[Some(12 * MIN)])]), 10 * MIN);
        // a's older rows do not move it back: a stays 20, b goes to 50 − 2 = 48. min = 20.
        assert_eq!(wm.advance(&[stats(&[Some(MIN)]), stats(&[Some(50 * MIN)])]), 20 * MIN);
        assert_eq!(wm.inputs(), &[20 * MIN, 48 * MIN]);
    }

    #[test]
    fn under_max_the_fastest_input_decides_and_the_global_watermark_never_goes_back() {
        let mut wm = two_inputs(MultipleWatermarkPolicy::Max);
        let none = EventTimeStats::default();
        // a: 30 − 10 = 20 min; b has no data (epoch). max = 20 min.
        assert_eq!(wm.advance(&[stats(&[Some(30 * MIN)]), none]), 20 * MIN);
        // b: 25 − 2 = 23 min. max = 23 min.
        assert_eq!(wm.advance(&[none, stats(&[Some(25 * MIN)])]), 23 * MIN);
        // A restart restores the global watermark and each input's: the same next step follows.
        let mut restarted = two_inputs(MultipleWatermarkPolicy::Max);
        restarted.restore(wm.current());
        restarted.restore_inputs(wm.inputs());
        // a: 35 − 10 = 25 min; b stays 23. max = 25 min.
        assert_eq!(restarted.advance(&[stats(&[Some(35 * MIN)]), none]), 25 * MIN);
        // Restored at 40 min while the inputs' are behind (as after a restart in Spark, which keeps
        // only the global one): the inputs' 25 min does not pull it back.
        restarted.restore(40 * MIN);
        assert_eq!(restarted.advance(&[none, none]), 40 * MIN);
    }

    #[test]
    fn statistics_of_the_inputs_merge_into_the_batch_ones() {
        let a = stats(&[Some(3 * MIN), None]);
        let b = stats(&[Some(MIN), Some(5 * MIN)]);
        let m = a.merge(&b).merge(&EventTimeStats::default());
        assert_eq!((m.min, m.max, m.count, m.nulls, m.avg()), (Some(MIN), Some(5 * MIN), 3, 1, Some(3 * MIN)));
    }

    #[test]
    fn column_must_exist_and_be_a_timestamp() {
        let schema = batch(&[]).schema();
        let new = |column| Watermark::new(column, &[Duration::ZERO], MultipleWatermarkPolicy::Min, &schema);
        let e = new("ts").unwrap_err();
        assert_eq!(e, "column `ts` is not in the source's schema (its columns are: id, at)");
        let e = new("id").unwrap_err();
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
