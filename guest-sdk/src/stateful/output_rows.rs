//! The output rows of a `process-groups` call, written row by row into one builder per
//! output column.

use crate::batch::{Batch, Column, ColumnData, Values};
use crate::builder::{BinaryBuilder, BoolBuilder, F64Builder, I32Builder, I64Builder, StrBuilder};
use crate::output::BatchError;
use crate::schema::{DataType, Schema};
use crate::stateful::groups::Group;

/// The output of all groups of a call, of the schema `output_schema` returned.
///
/// The SDK makes one per call, with one builder per output column; a plugin appends rows with
/// [`row`](Self::row), writing the values in the output schema's column order. Values go
/// straight into the lists that cross back (a string is a copy of its bytes, never a `String`).
///
/// ```
/// # use weir_guest::prelude::*;
/// let schema = Schema::new(vec![
///     Field::new("user_id", DataType::Utf8, true),
///     Field::new("total", DataType::Float64, false),
/// ]);
/// let mut out = OutputRows::new(&schema);
/// out.row().str("alice").f64(12.5);
/// out.row().str("bob").f64(3.0);
/// let batch = out.finish().unwrap();
/// assert_eq!(batch.f64s("total").unwrap().values(), &[12.5, 3.0]);
/// ```
///
/// A mistake (a value of the wrong type, a null in a non-nullable column, too few or too many
/// values in a row) is recorded and fails the call when the group returns, naming the output
/// row and column.
#[derive(Debug)]
pub struct OutputRows {
    schema: Schema,
    columns: Vec<ColumnBuilder>,
    num_rows: usize,
    error: Option<BatchError>,
}

#[derive(Debug)]
enum ColumnBuilder {
    Boolean(BoolBuilder),
    Int32(I32Builder),
    Int64(I64Builder),
    Float64(F64Builder),
    Utf8(StrBuilder),
    Binary(BinaryBuilder),
    Timestamp(I64Builder),
}

impl ColumnBuilder {
    fn new(t: DataType) -> ColumnBuilder {
        match t {
            DataType::Boolean => ColumnBuilder::Boolean(BoolBuilder::new()),
            DataType::Int32 => ColumnBuilder::Int32(I32Builder::new()),
            DataType::Int64 => ColumnBuilder::Int64(I64Builder::new()),
            DataType::Float64 => ColumnBuilder::Float64(F64Builder::new()),
            DataType::Utf8 => ColumnBuilder::Utf8(StrBuilder::new()),
            DataType::Binary => ColumnBuilder::Binary(BinaryBuilder::new()),
            DataType::Timestamp => ColumnBuilder::Timestamp(I64Builder::new()),
        }
    }

    fn push_null(&mut self) {
        match self {
            ColumnBuilder::Boolean(b) => b.push_null(),
            ColumnBuilder::Int32(b) => b.push_null(),
            ColumnBuilder::Int64(b) | ColumnBuilder::Timestamp(b) => b.push_null(),
            ColumnBuilder::Float64(b) => b.push_null(),
            ColumnBuilder::Utf8(b) => b.push_null(),
            ColumnBuilder::Binary(b) => b.push_null(),
        }
    }

    /// Appends value `row` of `data`; `Err` when the types differ.
    fn push_from(&mut self, data: &ColumnData, row: usize) -> Result<(), ()> {
        if data.validity.as_ref().is_some_and(|v| !v[row]) {
            if self.data_type() != data.data_type() {
                return Err(());
            }
            self.push_null();
            return Ok(());
        }
        fn bytes(v: &crate::batch::VarLen, row: usize) -> &[u8] {
            &v.data[v.offsets[row] as usize..v.offsets[row + 1] as usize]
        }
        match (self, &data.values) {
            (ColumnBuilder::Boolean(b), Values::Boolean(v)) => b.push_value(v[row]),
            (ColumnBuilder::Int32(b), Values::Int32(v)) => b.push_value(v[row]),
            (ColumnBuilder::Int64(b), Values::Int64(v)) | (ColumnBuilder::Timestamp(b), Values::Timestamp(v)) => {
                b.push_value(v[row])
            }
            (ColumnBuilder::Float64(b), Values::Float64(v)) => b.push_value(v[row]),
            // Copied as bytes: the host sent UTF-8 and checks strings again when they come back.
            (ColumnBuilder::Utf8(b), Values::Utf8(v)) => b.push_utf8_bytes(bytes(v, row)),
            (ColumnBuilder::Binary(b), Values::Binary(v)) => b.push_value(bytes(v, row)),
            _ => return Err(()),
        }
        Ok(())
    }

    fn data_type(&self) -> DataType {
        match self {
            ColumnBuilder::Boolean(_) => DataType::Boolean,
            ColumnBuilder::Int32(_) => DataType::Int32,
            ColumnBuilder::Int64(_) => DataType::Int64,
            ColumnBuilder::Float64(_) => DataType::Float64,
            ColumnBuilder::Utf8(_) => DataType::Utf8,
            ColumnBuilder::Binary(_) => DataType::Binary,
            ColumnBuilder::Timestamp(_) => DataType::Timestamp,
        }
    }

    fn finish(self) -> ColumnData {
        match self {
            ColumnBuilder::Boolean(b) => b.finish(),
            ColumnBuilder::Int32(b) => b.finish(),
            ColumnBuilder::Int64(b) => b.finish(),
            ColumnBuilder::Float64(b) => b.finish(),
            ColumnBuilder::Utf8(b) => b.finish(),
            ColumnBuilder::Binary(b) => b.finish(),
            ColumnBuilder::Timestamp(b) => b.finish_timestamp(),
        }
    }
}

impl OutputRows {
    /// No rows yet, one empty builder per column of `schema`.
    pub fn new(schema: &Schema) -> OutputRows {
        OutputRows {
            columns: schema.fields.iter().map(|f| ColumnBuilder::new(f.data_type)).collect(),
            schema: schema.clone(),
            num_rows: 0,
            error: None,
        }
    }

    /// The output schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The number of rows started so far.
    pub fn num_rows(&self) -> usize {
        self.num_rows
    }

    /// Starts an output row: write one value per output column, in the schema's order, with
    /// the returned writer's methods. The row ends when the writer is dropped.
    pub fn row(&mut self) -> RowWriter<'_> {
        let row = self.num_rows;
        self.num_rows += 1;
        RowWriter { out: self, row, next: 0 }
    }

    /// The first mistake made writing rows, if any (cleared).
    pub(crate) fn take_error(&mut self) -> Option<BatchError> {
        self.error.take()
    }

    /// The rows written, as a batch of the output schema; fails with the first mistake made
    /// writing them.
    pub fn finish(mut self) -> Result<Batch, BatchError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let columns = self
            .schema
            .fields
            .iter()
            .zip(self.columns)
            .map(|(f, b)| Column { name: f.name.clone(), data: b.finish() })
            .collect();
        Batch::new(self.num_rows, columns)
    }

    fn fail(&mut self, row: usize, column: usize, what: String) {
        if self.error.is_none() {
            let name = self.schema.fields.get(column).map_or("?", |f| f.name.as_str());
            self.error = Some(BatchError::new(format!("output row {row}, column {column} (`{name}`): {what}")));
        }
    }
}

/// Writes one output row, a value per column in the output schema's order. Each method writes
/// the next column; [`keys`](Self::keys) writes the group's key columns at once.
pub struct RowWriter<'o> {
    out: &'o mut OutputRows,
    row: usize,
    next: usize,
}

/// A value a [`RowWriter`] can write: `bool`, `i32`, `i64` (for `bigint` and `timestamp`
/// columns), `f64`, `&str`, `&[u8]`, and `Option`s of them (`None` is a null).
pub trait OutputValue: sealed::Sealed {
    #[doc(hidden)]
    fn write(self, w: &mut RowWriter<'_>);
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for bool {}
    impl Sealed for i32 {}
    impl Sealed for i64 {}
    impl Sealed for f64 {}
    impl Sealed for &str {}
    impl Sealed for &[u8] {}
    impl<T: Sealed> Sealed for Option<T> {}
}

impl OutputValue for bool {
    fn write(self, w: &mut RowWriter<'_>) {
        w.put(DataType::Boolean, |b| match b {
            ColumnBuilder::Boolean(b) => {
                b.push_value(self);
                true
            }
            _ => false,
        })
    }
}
impl OutputValue for i32 {
    fn write(self, w: &mut RowWriter<'_>) {
        w.put(DataType::Int32, |b| match b {
            ColumnBuilder::Int32(b) => {
                b.push_value(self);
                true
            }
            _ => false,
        })
    }
}
impl OutputValue for i64 {
    fn write(self, w: &mut RowWriter<'_>) {
        w.put(DataType::Int64, |b| match b {
            ColumnBuilder::Int64(b) | ColumnBuilder::Timestamp(b) => {
                b.push_value(self);
                true
            }
            _ => false,
        })
    }
}
impl OutputValue for f64 {
    fn write(self, w: &mut RowWriter<'_>) {
        w.put(DataType::Float64, |b| match b {
            ColumnBuilder::Float64(b) => {
                b.push_value(self);
                true
            }
            _ => false,
        })
    }
}
impl OutputValue for &str {
    fn write(self, w: &mut RowWriter<'_>) {
        w.put(DataType::Utf8, |b| match b {
            ColumnBuilder::Utf8(b) => {
                b.push_value(self);
                true
            }
            _ => false,
        })
    }
}
impl OutputValue for &[u8] {
    fn write(self, w: &mut RowWriter<'_>) {
        w.put(DataType::Binary, |b| match b {
            ColumnBuilder::Binary(b) => {
                b.push_value(self);
                true
            }
            _ => false,
        })
    }
}
impl<T: OutputValue> OutputValue for Option<T> {
    fn write(self, w: &mut RowWriter<'_>) {
        match self {
            Some(v) => v.write(w),
            None => w.put_null(),
        }
    }
}

impl RowWriter<'_> {
    /// Writes the group's key values into the next columns, one per key column (of the same
    /// types, in the key's order): the usual start of a row, as Spark's grouping columns come
    /// first.
    pub fn keys(mut self, group: &Group<'_>) -> Self {
        let key = group.key();
        let row = key.row();
        for c in key.columns() {
            let Some(col) = self.column() else { return self };
            let out = &mut *self.out;
            if out.columns[col].push_from(&c.data, row).is_err() {
                let msg = format!(
                    "the key column `{}` is {}, but this output column is {}",
                    c.name,
                    c.data.data_type(),
                    out.columns[col].data_type()
                );
                out.fail(self.row, col, msg);
            } else if !out.schema.fields[col].nullable && c.data.validity.as_ref().is_some_and(|v| !v[row]) {
                out.fail(self.row, col, format!("the key column `{}` is null but this column is not nullable", c.name));
            }
        }
        self
    }

    /// Writes a value into the next column: `bool`, `i32`, `i64` (bigint or timestamp), `f64`,
    /// `&str`, `&[u8]` or an `Option` of one (`None` for null).
    pub fn value(mut self, v: impl OutputValue) -> Self {
        v.write(&mut self);
        self
    }

    /// Writes a `boolean` value into the next column.
    pub fn bool(self, v: bool) -> Self {
        self.value(v)
    }

    /// Writes an `int` value into the next column.
    pub fn i32(self, v: i32) -> Self {
        self.value(v)
    }

    /// Writes a `bigint` value into the next column.
    pub fn i64(self, v: i64) -> Self {
        self.value(v)
    }

    /// Writes a `timestamp` (microseconds since the Unix epoch) into the next column.
    pub fn timestamp(mut self, micros: i64) -> Self {
        self.put(DataType::Timestamp, |b| match b {
            ColumnBuilder::Timestamp(b) => {
                b.push_value(micros);
                true
            }
            _ => false,
        });
        self
    }

    /// Writes a `double` value into the next column.
    pub fn f64(self, v: f64) -> Self {
        self.value(v)
    }

    /// Writes a `string` value into the next column (its bytes are copied into the column).
    pub fn str(self, v: &str) -> Self {
        self.value(v)
    }

    /// Writes a `binary` value into the next column.
    pub fn binary(self, v: &[u8]) -> Self {
        self.value(v)
    }

    /// Writes a null into the next column (which must be nullable).
    pub fn null(mut self) -> Self {
        self.put_null();
        self
    }

    /// The next column's index, or `None` (and a recorded mistake) when the row is full.
    fn column(&mut self) -> Option<usize> {
        let col = self.next;
        self.next += 1;
        if col >= self.out.columns.len() {
            let n = self.out.columns.len();
            self.out.fail(self.row, col, format!("more values than the {n} output columns"));
            return None;
        }
        Some(col)
    }

    fn put(&mut self, wrote: DataType, push: impl FnOnce(&mut ColumnBuilder) -> bool) {
        let Some(col) = self.column() else { return };
        let b = &mut self.out.columns[col];
        if !push(b) {
            let msg = format!("a {wrote} value was written into a {} column", b.data_type());
            self.out.fail(self.row, col, msg);
        }
    }

    fn put_null(&mut self) {
        let Some(col) = self.column() else { return };
        if !self.out.schema.fields[col].nullable {
            self.out.fail(self.row, col, "a null was written into a column that is not nullable".to_string());
        }
        self.out.columns[col].push_null();
    }
}

impl Drop for RowWriter<'_> {
    fn drop(&mut self) {
        let n = self.out.columns.len();
        if self.next < n {
            let msg = format!("the row ended after {} of the {n} columns", self.next);
            self.out.fail(self.row, self.next, msg);
        }
    }
}
