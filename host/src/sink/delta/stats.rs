//! Per-file statistics of an `add` (Delta's `stats`): `numRecords`, and per column `nullCount`,
//! `minValues`, `maxValues`, as Spark's Delta writer collects them, so that readers can skip
//! files by predicate.
//!
//! - Like Spark (`delta.dataSkippingNumIndexedCols`), the first [`INDEXED_COLUMNS`] columns of
//!   the file get statistics.
//! - Strings: the minimum is cut to its first [`STRING_PREFIX`] characters (a prefix is never
//!   larger); a maximum longer than that is left out (no upper bound is stated, which is always
//!   safe), where Spark appends a tie-breaker character.
//! - Timestamps are truncated down to milliseconds, as the protocol says readers expect.
//! - Doubles: a column holding NaN or an infinity gets no minimum or maximum (JSON cannot carry
//!   them, and a bound that ignored NaN would let a reader skip the file wrongly).
//! - Booleans, binary and lists get a null count only (Spark's choice as well).

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::{max, max_string, max_string_view, min, min_string, min_string_view};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    TimeUnit, TimestampMicrosecondType,
};
use arrow::record_batch::RecordBatch;
use serde_json::{json, Map, Value};

/// Columns with statistics, counted from the first (Spark's default).
pub const INDEXED_COLUMNS: usize = 32;
/// Characters of a string statistic (Spark's `dataSkippingStringPrefixLength`).
pub const STRING_PREFIX: usize = 32;

/// The `stats` JSON of a file holding `batches` (all of one schema, without partition columns).
pub fn file_stats(batches: &[RecordBatch]) -> String {
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mut min_values = Map::new();
    let mut max_values = Map::new();
    let mut null_count = Map::new();
    if let Some(first) = batches.first() {
        let schema = first.schema();
        for (i, field) in schema.fields().iter().enumerate().take(INDEXED_COLUMNS) {
            let columns: Vec<&ArrayRef> = batches.iter().map(|b| b.column(i)).collect();
            let nulls: usize = columns.iter().map(|c| c.null_count()).sum();
            null_count.insert(field.name().clone(), json!(nulls));
            if let Some((min, max)) = bounds(&columns) {
                if let Some(min) = min {
                    min_values.insert(field.name().clone(), min);
                }
                if let Some(max) = max {
                    max_values.insert(field.name().clone(), max);
                }
            }
        }
    }
    json!({
        "numRecords": rows,
        "minValues": min_values,
        "maxValues": max_values,
        "nullCount": null_count,
    })
    .to_string()
}

/// The (min, max) of non-null values across `columns`, as JSON; `None` for a type without
/// bounds or a column of nulls only. Arrow's aggregate kernels do the scanning.
fn bounds(columns: &[&ArrayRef]) -> Option<(Option<Value>, Option<Value>)> {
    let data_type = columns.first()?.data_type().clone();
    let ints = |(lo, hi): (i64, i64)| Some((Some(json!(lo)), Some(json!(hi))));
    match data_type {
        DataType::Int8 => prim::<Int8Type>(columns, |_| false).and_then(|(a, b)| ints((a.into(), b.into()))),
        DataType::Int16 => prim::<Int16Type>(columns, |_| false).and_then(|(a, b)| ints((a.into(), b.into()))),
        DataType::Int32 => prim::<Int32Type>(columns, |_| false).and_then(|(a, b)| ints((a.into(), b.into()))),
        DataType::Int64 => prim::<Int64Type>(columns, |_| false).and_then(ints),
        DataType::Float32 => prim::<Float32Type>(columns, f32::is_nan).and_then(|(a, b)| floats(a.into(), b.into())),
        DataType::Float64 => prim::<Float64Type>(columns, f64::is_nan).and_then(|(a, b)| floats(a, b)),
        DataType::Date32 => {
            let (min, max) = prim::<Date32Type>(columns, |_| false)?;
            Some((Some(json!(format_date(min))), Some(json!(format_date(max)))))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let (min, max) = prim::<TimestampMicrosecondType>(columns, |_| false)?;
            Some((Some(json!(format_millis(min))), Some(json!(format_millis(max)))))
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let mut min: Option<&str> = None;
            let mut max: Option<&str> = None;
            for c in columns {
                let (lo, hi) = match c.data_type() {
                    DataType::Utf8 => (min_string(c.as_string::<i32>()), max_string(c.as_string::<i32>())),
                    DataType::LargeUtf8 => (min_string(c.as_string::<i64>()), max_string(c.as_string::<i64>())),
                    _ => (min_string_view(c.as_string_view()), max_string_view(c.as_string_view())),
                };
                min = match (min, lo) {
                    (Some(m), Some(v)) => Some(if v < m { v } else { m }),
                    (m, v) => m.or(v),
                };
                max = match (max, hi) {
                    (Some(m), Some(v)) => Some(if v > m { v } else { m }),
                    (m, v) => m.or(v),
                };
            }
            let (min, max) = (min?, max?);
            let min: String = min.chars().take(STRING_PREFIX).collect();
            let max = (max.chars().count() <= STRING_PREFIX).then_some(max);
            Some((Some(json!(min)), max.map(|m| json!(m))))
        }
        _ => None,
    }
}

/// The smallest and largest non-null value of primitive columns (`None`: all null, or a NaN:
/// Arrow orders NaN above every number, so a column holding one has NaN as its maximum).
fn prim<T: ArrowPrimitiveType>(
    columns: &[&ArrayRef],
    is_nan: impl Fn(T::Native) -> bool,
) -> Option<(T::Native, T::Native)>
where
    T::Native: PartialOrd,
{
    let mut acc: Option<(T::Native, T::Native)> = None;
    for c in columns {
        let a = c.as_primitive::<T>();
        let (Some(lo), Some(hi)) = (min(a), max(a)) else { continue };
        if is_nan(hi) {
            return None;
        }
        acc = Some(match acc {
            None => (lo, hi),
            Some((l, h)) => (if lo < l { lo } else { l }, if hi > h { hi } else { h }),
        });
    }
    acc
}

/// Bounds of a double column: none when it holds NaN or an infinity.
fn floats(min: f64, max: f64) -> Option<(Option<Value>, Option<Value>)> {
    if !(min.is_finite() && max.is_finite()) {
        return None;
    }
    Some((Some(json!(min)), Some(json!(max))))
}

/// A timestamp statistic: ISO 8601 in UTC, truncated down to milliseconds.
pub fn format_millis(micros: i64) -> String {
    let millis = micros.div_euclid(1000);
    match chrono::DateTime::from_timestamp_millis(millis) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => millis.to_string(),
    }
}

fn format_date(days: i32) -> String {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
    epoch
        .checked_add_signed(chrono::TimeDelta::days(days as i64))
        .map_or_else(|| days.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{BooleanArray, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn stats_count_rows_and_nulls_and_bound_each_column() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("x", DataType::Float64, true),
            Field::new("t", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
            Field::new("ok", DataType::Boolean, true),
        ]));
        let long = "z".repeat(40);
        let b1 = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![Some(5), None, Some(-2)])),
                Arc::new(StringArray::from(vec![Some("b"), Some("a"), None])),
                Arc::new(Float64Array::from(vec![Some(1.5), Some(-0.25), None])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![
                        Some(1_704_067_200_123_999),
                        None,
                        Some(1_704_067_200_000_000),
                    ])
                    .with_timezone("UTC"),
                ),
                Arc::new(BooleanArray::from(vec![Some(true), None, None])),
            ],
        )
        .unwrap();
        let b2 = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(9)])),
                Arc::new(StringArray::from(vec![Some(long.as_str())])),
                Arc::new(Float64Array::from(vec![Some(2.0)])),
                Arc::new(TimestampMicrosecondArray::from(vec![None::<i64>]).with_timezone("UTC")),
                Arc::new(BooleanArray::from(vec![Some(false)])),
            ],
        )
        .unwrap();
        let stats: Value = serde_json::from_str(&file_stats(&[b1, b2])).unwrap();
        assert_eq!(
            stats,
            json!({
                "numRecords": 4,
                "minValues": {"id": -2, "name": "a", "x": -0.25, "t": "2024-01-01T00:00:00.000Z"},
                "maxValues": {"id": 9, "x": 2.0, "t": "2024-01-01T00:00:00.123Z"},
                "nullCount": {"id": 1, "name": 1, "x": 1, "t": 2, "ok": 2},
            })
        );
    }

    #[test]
    fn nan_leaves_a_double_column_unbounded_and_all_nulls_have_no_bounds() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Float64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let b = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Float64Array::from(vec![Some(1.0), Some(f64::NAN)])),
                Arc::new(StringArray::from(vec![None::<&str>, None])),
            ],
        )
        .unwrap();
        let stats: Value = serde_json::from_str(&file_stats(&[b])).unwrap();
        assert_eq!(stats, json!({"numRecords": 2, "minValues": {}, "maxValues": {}, "nullCount": {"x": 0, "s": 2}}));
        assert_eq!(format_millis(-1), "1969-12-31T23:59:59.999Z", "truncated down, also before 1970");
        // A NaN or an infinity in a later batch of the file, too.
        let x = |v: f64| {
            RecordBatch::try_new(
                Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, true)])),
                vec![Arc::new(Float64Array::from(vec![v]))],
            )
            .unwrap()
        };
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let stats: Value = serde_json::from_str(&file_stats(&[x(1.0), x(bad)])).unwrap();
            assert_eq!(stats["minValues"], json!({}), "{bad}");
        }
        let stats: Value = serde_json::from_str(&file_stats(&[x(1.0), x(-3.5)])).unwrap();
        assert_eq!((stats["minValues"]["x"].as_f64(), stats["maxValues"]["x"].as_f64()), (Some(-3.5), Some(1.0)));
    }
}
