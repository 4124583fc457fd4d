//! Rows of Arrow batches as binary COPY rows: each value encoded straight from its column in
//! PostgreSQL's binary form (no text round trip), through `BinaryCopyInWriter`.

use std::error::Error;

use arrow::array::{
    Array, AsArray, BinaryArray, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType};
use bytes::{BufMut, BytesMut};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{IsNull, ToSql, Type};

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from the Unix epoch to PostgreSQL's.
const PG_EPOCH_DAYS: i32 = 10_957;

/// One value, borrowed from its column.
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    Null,
    Bool(bool),
    I32(i32),
    I64(i64),
    F64(f64),
    Text(&'a str),
    Bytes(&'a [u8]),
    /// Microseconds since the Unix epoch, UTC.
    Micros(i64),
    /// Days since the Unix epoch.
    Days(i32),
}

impl ToSql for Cell<'_> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match *self {
            Cell::Null => return Ok(IsNull::Yes),
            Cell::Bool(v) => out.put_u8(v as u8),
            Cell::I32(v) => out.put_i32(v),
            Cell::I64(v) => out.put_i64(v),
            Cell::F64(v) => out.put_f64(v),
            Cell::Text(v) => out.put_slice(v.as_bytes()),
            Cell::Bytes(v) => out.put_slice(v),
            Cell::Micros(v) => out.put_i64(v.checked_sub(PG_EPOCH_MICROS).ok_or("timestamp out of range")?),
            Cell::Days(v) => out.put_i32(v.checked_sub(PG_EPOCH_DAYS).ok_or("date out of range")?),
        }
        Ok(IsNull::No)
    }

    /// The columns were checked against the table before the first row.
    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        self.to_sql(ty, out)
    }
}

/// A column, downcast once per batch.
enum Column<'a> {
    Bool(&'a BooleanArray),
    I32(&'a Int32Array),
    I64(&'a Int64Array),
    F64(&'a Float64Array),
    Text(&'a StringArray),
    Bytes(&'a BinaryArray),
    Micros(&'a TimestampMicrosecondArray),
    Days(&'a Date32Array),
}

impl<'a> Column<'a> {
    fn of(a: &'a dyn Array) -> Column<'a> {
        match a.data_type() {
            DataType::Boolean => Column::Bool(a.as_boolean()),
            DataType::Int32 => Column::I32(a.as_primitive::<Int32Type>()),
            DataType::Int64 => Column::I64(a.as_primitive::<Int64Type>()),
            DataType::Float64 => Column::F64(a.as_primitive::<Float64Type>()),
            DataType::Utf8 => Column::Text(a.as_string::<i32>()),
            DataType::Binary => Column::Bytes(a.as_binary::<i32>()),
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                Column::Micros(a.as_primitive::<TimestampMicrosecondType>())
            }
            DataType::Date32 => Column::Days(a.as_primitive::<Date32Type>()),
            other => unreachable!("column type {other} is refused before start"),
        }
    }

    fn cell(&self, row: usize) -> Cell<'a> {
        macro_rules! get {
            ($a:expr, $v:ident) => {
                if $a.is_null(row) {
                    Cell::Null
                } else {
                    Cell::$v($a.value(row))
                }
            };
        }
        match self {
            Column::Bool(a) => get!(a, Bool),
            Column::I32(a) => get!(a, I32),
            Column::I64(a) => get!(a, I64),
            Column::F64(a) => get!(a, F64),
            Column::Text(a) => get!(a, Text),
            Column::Bytes(a) => get!(a, Bytes),
            Column::Micros(a) => get!(a, Micros),
            Column::Days(a) => get!(a, Days),
        }
    }
}

/// The rows of one batch id (several record batches), addressed by their place in the batch.
pub struct Rows<'a> {
    batches: Vec<&'a RecordBatch>,
    /// The place of each record batch's first row.
    starts: Vec<usize>,
    len: usize,
}

impl<'a> Rows<'a> {
    pub fn new(data: &'a [RecordBatch]) -> Rows<'a> {
        let batches: Vec<&RecordBatch> = data.iter().filter(|b| b.num_rows() > 0).collect();
        let mut starts = Vec::with_capacity(batches.len());
        let mut len = 0;
        for b in &batches {
            starts.push(len);
            len += b.num_rows();
        }
        Rows { batches, starts, len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The record batch holding row `i`, and the row's index in it.
    pub fn locate(&self, i: usize) -> (&'a RecordBatch, usize) {
        let k = self.starts.partition_point(|&s| s <= i) - 1;
        (self.batches[k], i - self.starts[k])
    }

    /// Writes rows `from..to` to a COPY; with `row_numbers`, each row's place is written after
    /// its columns (the upsert's `__weir_row`).
    pub fn write(
        &self,
        w: &mut BinaryCopyInWriter<'_>,
        from: usize,
        to: usize,
        row_numbers: bool,
    ) -> Result<(), postgres::Error> {
        for (k, b) in self.batches.iter().enumerate() {
            let (start, end) = (self.starts[k], self.starts[k] + b.num_rows());
            let (lo, hi) = (from.max(start), to.min(end));
            if lo >= hi {
                continue;
            }
            let cols: Vec<Column<'_>> = b.columns().iter().map(|c| Column::of(c.as_ref())).collect();
            let mut cells: Vec<Cell<'_>> = Vec::with_capacity(cols.len() + 1);
            for i in lo..hi {
                let r = i - start;
                cells.clear();
                cells.extend(cols.iter().map(|c| c.cell(r)));
                if row_numbers {
                    cells.push(Cell::I64(i as i64));
                }
                w.write_raw(cells.iter())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::ArrayRef;
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn bytes_of(c: Cell<'_>) -> Option<Vec<u8>> {
        let mut out = BytesMut::new();
        match c.to_sql(&Type::TEXT, &mut out).unwrap() {
            IsNull::Yes => None,
            IsNull::No => Some(out.to_vec()),
        }
    }

    #[test]
    fn values_take_postgres_binary_forms() {
        assert_eq!(bytes_of(Cell::Null), None);
        assert_eq!(bytes_of(Cell::Bool(true)), Some(vec![1]));
        assert_eq!(bytes_of(Cell::I32(-2)), Some((-2i32).to_be_bytes().to_vec()));
        assert_eq!(bytes_of(Cell::F64(1.5)), Some(1.5f64.to_be_bytes().to_vec()));
        assert_eq!(bytes_of(Cell::Text("é")), Some("é".as_bytes().to_vec()));
        // 2000-01-01T00:00:00Z is PostgreSQL's zero; a second later is 1_000_000.
        assert_eq!(bytes_of(Cell::Micros(946_684_801_000_000)), Some(1_000_000i64.to_be_bytes().to_vec()));
        assert_eq!(bytes_of(Cell::Days(10_958)), Some(1i32.to_be_bytes().to_vec()));
    }

    #[test]
    fn rows_are_found_across_record_batches() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let batch = |v: Vec<i64>| {
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(v)) as ArrayRef]).unwrap()
        };
        let data = [batch(vec![0, 1]), batch(vec![]), batch(vec![2, 3, 4])];
        let rows = Rows::new(&data);
        assert_eq!(rows.len(), 5);
        let (b, r) = rows.locate(3);
        assert_eq!((b.column(0).as_primitive::<Int64Type>().value(r), r), (3, 1));
        let (b, r) = rows.locate(1);
        assert_eq!((b.num_rows(), r), (2, 1));
    }
}
