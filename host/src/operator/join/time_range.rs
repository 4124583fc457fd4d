//! The event-time side of a stream-stream join: the optional range condition between the two
//! sides' time columns, and how far back each side's buffered rows are still needed (Spark's
//! *state watermarks*).
//!
//! Spark (`StreamingSymmetricHashJoinHelper.getStateWatermarkPredicates`, with
//! `StreamingJoinHelper.getStateValueWatermark` solving the condition) gives each side one of:
//! - a **key** state watermark, when a join key is the watermark column (both sides joined on the
//!   same event time or window): a buffered row leaves once that key's time (a window's end) is
//!   at or behind the input watermark, on both sides;
//! - else a **value** state watermark, when the side has a watermark column and the range
//!   condition bounds the side's time from below by the *other* side's watermarked time:
//!   `right + from <= left` gives the left side `W + from − 1 ms`, `left <= right + to` gives the
//!   right side `W − to − 1 ms` (a strict `<` gives no −1 ms: Spark evicts at or behind the state
//!   watermark, so a non-strict bound must keep the row at exactly the bound). A buffered row
//!   leaves when its side's watermark column is at or behind that value;
//! - else none: the side's rows stay forever.
//!
//! Spark solves in milliseconds: the watermark is in ms, the sum is divided by 1000 and truncated
//! toward zero, then 1 ms is taken off. weir's watermarks are µs; they are floored to ms first
//! (they are whole ms when the events' times are).

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Schema, TimeUnit, TimestampMicrosecondType};

use super::spec::Side;
use crate::schema::type_name;

/// `right + from <= left <= right + to` between a left and a right time column (µs timestamps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// The time column's index in the left input.
    pub left: usize,
    /// The time column's index in the right input.
    pub right: usize,
    /// Lower bound of `left − right`, µs (may be negative).
    pub from_micros: i64,
    /// Upper bound of `left − right`, µs.
    pub to_micros: i64,
    /// `right + from < left` instead of `<=`.
    pub from_strict: bool,
    /// `left < right + to` instead of `<=`.
    pub to_strict: bool,
}

impl TimeRange {
    /// The job file's form: both bounds inclusive.
    pub fn inclusive(left: usize, right: usize, from_micros: i64, to_micros: i64) -> TimeRange {
        TimeRange { left, right, from_micros, to_micros, from_strict: false, to_strict: false }
    }

    /// Whether a left time and a right time satisfy the condition; a null time satisfies nothing
    /// (SQL comparison with null is not true).
    pub fn matches(&self, left: Option<i64>, right: Option<i64>) -> bool {
        let (Some(l), Some(r)) = (left, right) else { return false };
        let (l, r) = (l as i128, r as i128);
        let low = r + self.from_micros as i128;
        let high = r + self.to_micros as i128;
        let above = if self.from_strict { low < l } else { low <= l };
        let below = if self.to_strict { l < high } else { l <= high };
        above && below
    }

    /// Both columns are µs timestamps; the error names the column and its type.
    pub fn check(&self, left: &Schema, right: &Schema) -> Result<(), String> {
        for (side, schema, i) in [(Side::Left, left, self.left), (Side::Right, right, self.right)] {
            let field = schema.fields().get(i).ok_or_else(|| {
                format!("time_range {side} column {i} is not in the join's {side} input (a bug in the join's planning)")
            })?;
            if !matches!(field.data_type(), DataType::Timestamp(TimeUnit::Microsecond, _)) {
                return Err(format!(
                    "time_range {side} column `{}` is {}, but a time range compares timestamps; name a timestamp \
                     column of the {side} input",
                    field.name(),
                    type_name(field.data_type())
                ));
            }
        }
        Ok(())
    }

    /// The bound the condition puts on `side`'s time from below, in terms of the other side's
    /// time: Spark's `getStateValueWatermark` finds exactly one such conjunct per side.
    fn lower_bound(&self, side: Side) -> Bound {
        match side {
            // right + from <= left
            Side::Left => Bound { offset_micros: self.from_micros, strict: self.from_strict },
            // left <= right + to, i.e. left − to <= right
            Side::Right => Bound { offset_micros: self.to_micros.saturating_neg(), strict: self.to_strict },
        }
    }

    fn column(&self, side: Side) -> usize {
        match side {
            Side::Left => self.left,
            Side::Right => self.right,
        }
    }
}

/// A side's time is above `other side's time + offset` (strictly or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub offset_micros: i64,
    pub strict: bool,
}

impl Bound {
    /// Spark's state value watermark for input watermark `watermark_micros`, as µs: rows at or
    /// behind it can no longer match a row the other side may still send.
    pub fn state_watermark(&self, watermark_micros: i64) -> i64 {
        let watermark_ms = watermark_micros.div_euclid(1000);
        // Spark: (watermarkMs * 1000.0 + offsetMicros) / 1000.0, truncated toward zero, in doubles.
        let solved = ((watermark_ms as f64 * 1000.0 + self.offset_micros as f64) / 1000.0) as i64;
        let ms = if self.strict { solved } else { solved.saturating_sub(1) };
        ms.saturating_mul(1000)
    }
}

/// How one side's buffered rows leave the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// They never do: no watermark bounds the side (Spark: no state watermark predicate).
    Never,
    /// Spark's `JoinStateKeyWatermarkPredicate`: when join key number `key` (a timestamp, or a
    /// window's end) is at or behind the input watermark.
    Key { key: usize },
    /// Spark's `JoinStateValueWatermarkPredicate`: when the side's watermark column `column` (a
    /// timestamp, or a window's end) is at or behind the state watermark `bound` gives.
    Value { column: usize, bound: Bound },
}

/// Both sides' eviction rules, fixed when the join is planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateWatermarks {
    pub left: Eviction,
    pub right: Eviction,
}

/// The inputs of the join that decide its state watermarks: key columns per side (in key order)
/// and each side's watermark column, when the side has the job's watermark column.
#[derive(Debug, Clone, Copy)]
pub struct WatermarkInputs<'a> {
    pub left_keys: &'a [usize],
    pub right_keys: &'a [usize],
    pub left_watermark: Option<usize>,
    pub right_watermark: Option<usize>,
    pub range: Option<&'a TimeRange>,
}

impl WatermarkInputs<'_> {
    fn keys(&self, side: Side) -> &[usize] {
        match side {
            Side::Left => self.left_keys,
            Side::Right => self.right_keys,
        }
    }

    fn watermark(&self, side: Side) -> Option<usize> {
        match side {
            Side::Left => self.left_watermark,
            Side::Right => self.right_watermark,
        }
    }

    /// Spark's `findJoinKeyOrdinalForWatermark`: the first left key that is the left watermark
    /// column, else the first right key that is the right one.
    pub fn watermark_key(&self) -> Option<usize> {
        let find = |side: Side| {
            let wm = self.watermark(side)?;
            self.keys(side).iter().position(|&k| k == wm)
        };
        find(Side::Left).or_else(|| find(Side::Right))
    }

    /// Spark's `getStateValueWatermark(side, other side)`: the range condition bounds `side`'s
    /// time from below by the other side's time, and that time column is the other side's
    /// watermark column (Spark substitutes the watermark for the watermarked attribute only).
    /// Whether `side` itself has a watermark column does not matter here (it does for eviction).
    pub fn value_bound(&self, side: Side) -> Option<Bound> {
        let range = self.range?;
        let other = side.other();
        (self.watermark(other)? == range.column(other)).then(|| range.lower_bound(side))
    }

    /// Spark's `getOneSideStateWatermarkPredicate` for both sides.
    pub fn solve(&self) -> StateWatermarks {
        let one = |side: Side| match self.watermark_key() {
            Some(key) => Eviction::Key { key },
            None => match (self.watermark(side), self.value_bound(side)) {
                (Some(column), Some(bound)) => Eviction::Value { column, bound },
                _ => Eviction::Never,
            },
        };
        StateWatermarks { left: one(Side::Left), right: one(Side::Right) }
    }
}

impl StateWatermarks {
    pub fn side(&self, side: Side) -> Eviction {
        match side {
            Side::Left => self.left,
            Side::Right => self.right,
        }
    }

    /// The time (µs) at or behind which `side`'s buffered rows leave, for the batch's input
    /// watermark; `None` when they never do.
    pub fn threshold(&self, side: Side, watermark_micros: i64) -> Option<i64> {
        match self.side(side) {
            Eviction::Never => None,
            // Spark: key <= watermarkMs * 1000.
            Eviction::Key { .. } => Some(watermark_micros.div_euclid(1000).saturating_mul(1000)),
            Eviction::Value { bound, .. } => Some(bound.state_watermark(watermark_micros)),
        }
    }

    /// Whether a moving watermark alone gives the join work (Spark's `shouldRunAnotherBatch`:
    /// some side has a state watermark).
    pub fn evicts(&self) -> bool {
        self.left != Eviction::Never || self.right != Eviction::Never
    }

    /// The watermark the join passes downstream (Spark's `produceOutputWatermark`): the lowest of
    /// the input watermark and both sides' state watermarks, so that an operator after the join
    /// never sees a row as late that the join may still emit.
    pub fn output_watermark(&self, watermark_micros: i64) -> i64 {
        [Side::Left, Side::Right]
            .into_iter()
            .filter_map(|s| self.threshold(s, watermark_micros))
            .fold(watermark_micros.div_euclid(1000).saturating_mul(1000), i64::min)
    }
}

/// Per row of `column`, its event time: the timestamp, or for a window (a struct whose second
/// field is its end) the end, as Spark's `watermarkExpression`; `None` where null.
pub fn event_times(column: &ArrayRef) -> Result<Vec<Option<i64>>, String> {
    let times = |a: &dyn Array| -> Option<Vec<Option<i64>>> {
        match a.data_type() {
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                Some(a.as_primitive::<TimestampMicrosecondType>().iter().collect())
            }
            _ => None,
        }
    };
    if let Some(t) = times(column.as_ref()) {
        return Ok(t);
    }
    if let DataType::Struct(fields) = column.data_type() {
        let s = column.as_struct();
        if fields.len() >= 2 {
            if let Some(ends) = times(s.column(1).as_ref()) {
                return Ok(ends.into_iter().enumerate().map(|(i, e)| if s.is_null(i) { None } else { e }).collect());
            }
        }
    }
    Err(format!("is {}, but an event time is a timestamp or a window (start, end)", type_name(column.data_type())))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{StructArray, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Fields};

    use super::*;

    const MS: i64 = 1000;
    const MIN: i64 = 60_000_000;

    fn inputs<'a>(range: Option<&'a TimeRange>, lwm: Option<usize>, rwm: Option<usize>) -> WatermarkInputs<'a> {
        WatermarkInputs { left_keys: &[0], right_keys: &[0], left_watermark: lwm, right_watermark: rwm, range }
    }

    #[test]
    fn inclusive_bounds_match_at_both_ends_and_nulls_never() {
        let r = TimeRange::inclusive(1, 1, 0, 60 * MIN);
        assert!(r.matches(Some(10 * MIN), Some(10 * MIN)));
        assert!(r.matches(Some(70 * MIN), Some(10 * MIN)));
        assert!(!r.matches(Some(70 * MIN + 1), Some(10 * MIN)));
        assert!(!r.matches(Some(10 * MIN - 1), Some(10 * MIN)));
        assert!(!r.matches(None, Some(0)) && !r.matches(Some(0), None));
        let strict = TimeRange { from_strict: true, to_strict: true, ..r };
        assert!(!strict.matches(Some(10 * MIN), Some(10 * MIN)));
        assert!(!strict.matches(Some(70 * MIN), Some(10 * MIN)));
        assert!(strict.matches(Some(10 * MIN + 1), Some(10 * MIN)));
    }

    /// Spark's class doc: `leftTime > rightTime - 8 min AND leftTime < rightTime + 1 hour` with
    /// the watermark at 12:34 gives left 12:26 and right 11:34 (strict bounds: no 1 ms).
    #[test]
    fn strict_range_from_sparks_doc_gives_1226_and_1134() {
        let range = TimeRange {
            left: 1,
            right: 1,
            from_micros: -8 * MIN,
            to_micros: 60 * MIN,
            from_strict: true,
            to_strict: true,
        };
        let w = inputs(Some(&range), Some(1), Some(1)).solve();
        let wm = (12 * 60 + 34) * MIN;
        assert_eq!(w.threshold(Side::Left, wm), Some((12 * 60 + 26) * MIN));
        assert_eq!(w.threshold(Side::Right, wm), Some((11 * 60 + 34) * MIN));
        assert_eq!(w.output_watermark(wm), (11 * 60 + 34) * MIN);
    }

    #[test]
    fn inclusive_bounds_keep_one_more_millisecond() {
        let range = TimeRange::inclusive(1, 2, 0, 60 * MIN);
        let w = inputs(Some(&range), Some(1), Some(2)).solve();
        assert_eq!(w.left, Eviction::Value { column: 1, bound: Bound { offset_micros: 0, strict: false } });
        assert_eq!(w.right, Eviction::Value { column: 2, bound: Bound { offset_micros: -60 * MIN, strict: false } });
        assert_eq!(w.threshold(Side::Left, 120 * MIN), Some(120 * MIN - MS));
        assert_eq!(w.threshold(Side::Right, 120 * MIN), Some(60 * MIN - MS));
        // A watermark that is not whole milliseconds is floored first, as Spark's is in ms.
        assert_eq!(w.threshold(Side::Left, 120 * MIN + 999), Some(120 * MIN - MS));
        // Spark truncates toward zero: before the epoch that rounds up.
        let neg = Bound { offset_micros: -1500, strict: true };
        assert_eq!(neg.state_watermark(0), -MS);
        assert!(w.evicts());
    }

    #[test]
    fn a_side_is_bounded_only_through_the_other_sides_watermarked_column() {
        let range = TimeRange::inclusive(1, 2, 0, 60 * MIN);
        // Right's range column is not its watermark column: nothing bounds the left side.
        let w = inputs(Some(&range), Some(1), Some(3));
        assert_eq!(w.value_bound(Side::Left), None);
        assert!(w.value_bound(Side::Right).is_some());
        assert_eq!(w.solve().left, Eviction::Never);
        // Without a watermark column of its own, a side solvable by Spark's check still never evicts.
        let w = inputs(Some(&range), None, Some(2));
        assert!(w.value_bound(Side::Left).is_some());
        assert_eq!(w.solve().left, Eviction::Never);
        assert_eq!(w.solve().right, Eviction::Never);
        // No range, no watermarked key: nothing.
        let w = inputs(None, Some(1), Some(2)).solve();
        assert_eq!(w, StateWatermarks { left: Eviction::Never, right: Eviction::Never });
        assert!(!w.evicts());
    }

    #[test]
    fn a_watermarked_join_key_evicts_both_sides_at_the_watermark() {
        let keys_l = [3, 1];
        let keys_r = [0, 4];
        let w = WatermarkInputs {
            left_keys: &keys_l,
            right_keys: &keys_r,
            left_watermark: Some(1),
            right_watermark: None,
            range: None,
        };
        assert_eq!(w.watermark_key(), Some(1));
        let s = w.solve();
        assert_eq!((s.left, s.right), (Eviction::Key { key: 1 }, Eviction::Key { key: 1 }));
        assert_eq!(s.threshold(Side::Right, 90 * MIN), Some(90 * MIN));
        // The key case wins over a range condition (Spark's case 3).
        let range = TimeRange::inclusive(1, 4, 0, MIN);
        let w = WatermarkInputs { range: Some(&range), right_watermark: Some(4), ..w };
        assert_eq!(w.solve().left, Eviction::Key { key: 1 });
    }

    #[test]
    fn event_times_read_timestamps_and_window_ends() {
        let ts: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![Some(5), None]).with_timezone("UTC"));
        assert_eq!(event_times(&ts).unwrap(), vec![Some(5), None]);
        let t = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let fields = Fields::from(vec![Field::new("start", t.clone(), true), Field::new("end", t, true)]);
        let start: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![0, 10]).with_timezone("UTC"));
        let end: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![10, 20]).with_timezone("UTC"));
        let window: ArrayRef = Arc::new(StructArray::new(
            fields,
            vec![start, end],
            Some(arrow::buffer::NullBuffer::from(vec![true, false])),
        ));
        assert_eq!(event_times(&window).unwrap(), vec![Some(10), None]);
        let s: ArrayRef = Arc::new(arrow::array::StringArray::from(vec!["x"]));
        assert_eq!(
            event_times(&s).unwrap_err(),
            "is string, but an event time is a timestamp or a window (start, end)"
        );
    }
}
