//! A window join's window columns: Spark's `window(column, size)` (tumbling) on each side, as
//! `window_start` and `window_end` (weir's columns for Spark's `window` struct), appended to the
//! side's columns before the join.

use std::sync::Arc;

use arrow::array::{Array, AsArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

/// The windows of one side: which column holds the event time, the window size (µs), and the
/// columns with the window appended.
#[derive(Debug, Clone)]
pub struct SideWindow {
    pub time: usize,
    /// The time column's zone, which the window's columns keep.
    zone: Option<Arc<str>>,
    pub size_micros: i64,
    pub schema: SchemaRef,
}

impl SideWindow {
    /// `schema` with `window_start`, `window_end` appended (nullable as the time column is).
    /// Refused when the time column is missing or not a timestamp, or the names are taken.
    pub fn new(schema: &Schema, column: &str, size_micros: i64) -> Result<SideWindow, String> {
        let time = schema
            .index_of(column)
            .map_err(|_| format!("has no column `{column}` (its columns: {})", crate::schema::to_ddl(schema)))?;
        let field = schema.field(time);
        if !matches!(field.data_type(), DataType::Timestamp(TimeUnit::Microsecond, _)) {
            return Err(format!(
                "`{column}` is {}; a window needs a timestamp column",
                crate::schema::type_name(field.data_type())
            ));
        }
        for name in ["window_start", "window_end"] {
            if schema.index_of(name).is_ok() {
                return Err(format!("already has a column `{name}`, which the window would add"));
            }
        }
        let ts = field.data_type().clone();
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new("window_start", ts.clone(), field.is_nullable()));
        fields.push(Field::new("window_end", ts, field.is_nullable()));
        let zone = match field.data_type() {
            DataType::Timestamp(_, zone) => zone.clone(),
            _ => None,
        };
        Ok(SideWindow { time, zone, size_micros, schema: Arc::new(Schema::new(fields)) })
    }

    /// `batch` with each row's window appended: `[start, start + size)` with starts on
    /// multiples of the size from the epoch; a null time gives a null window.
    pub fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
        let times = batch.column(self.time).as_primitive::<TimestampMicrosecondType>();
        let size = self.size_micros;
        let start: TimestampMicrosecondArray = times.iter().map(|t| t.map(|t| t - t.rem_euclid(size))).collect();
        let end: TimestampMicrosecondArray = start
            .iter()
            .map(|s| s.map(|s| s + size))
            .collect::<TimestampMicrosecondArray>()
            .with_timezone_opt(self.zone.clone());
        let start = start.with_timezone_opt(self.zone.clone());
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(start) as Arc<dyn Array>);
        columns.push(Arc::new(end) as Arc<dyn Array>);
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::parse_ddl;

    #[test]
    fn windows_start_on_multiples_of_the_size_and_nulls_stay_null() {
        let schema = parse_ddl("k string, t timestamp").unwrap();
        let w = SideWindow::new(&schema, "t", 600_000_000).unwrap();
        assert_eq!(
            crate::schema::to_ddl(&w.schema),
            "k string, t timestamp, window_start timestamp, window_end timestamp"
        );
        let t = TimestampMicrosecondArray::from(vec![Some(0), Some(599_999_999), Some(600_000_000), None, Some(-1)])
            .with_timezone("UTC");
        let k = arrow::array::StringArray::from(vec!["a", "b", "c", "d", "e"]);
        let b = RecordBatch::try_new(schema.clone(), vec![Arc::new(k), Arc::new(t)]).unwrap();
        let out = w.apply(&b).unwrap();
        let col = |i: usize| -> Vec<Option<i64>> {
            out.column(i).as_primitive::<TimestampMicrosecondType>().iter().collect()
        };
        assert_eq!(col(2), vec![Some(0), Some(0), Some(600_000_000), None, Some(-600_000_000)]);
        assert_eq!(col(3), vec![Some(600_000_000), Some(600_000_000), Some(1_200_000_000), None, Some(0)]);
    }

    #[test]
    fn a_missing_or_non_timestamp_column_is_refused() {
        let schema = parse_ddl("k string, t timestamp").unwrap();
        assert!(SideWindow::new(&schema, "x", 1).unwrap_err().contains("has no column `x`"));
        assert!(SideWindow::new(&schema, "k", 1).unwrap_err().contains("a window needs a timestamp column"));
    }
}
