//! What a foreachBatch plugin emits: a batch built column by column, from input rows or from
//! builders.

use crate::batch::{Batch, Column, ColumnData};
use crate::builder::{BinaryBuilder, PrimitiveBuilder, StrBuilder};
use crate::output::BatchError;

/// A batch to [`emit`](crate::Emitter::emit), built column by column.
///
/// Routing rows is the common case: [`EmitBatch::take`] copies every column of the input at the
/// given rows. Computed columns come from the builders ([`I64Builder`](crate::I64Builder),
/// [`StrBuilder`]...) or the `push_*` shorthands. Every column needs one value per row: the row
/// count is the taken rows' count, else the first column's length. A mistake (a row out of
/// range, a short column, a name given twice) fails the emit with a message naming the output
/// and the column.
///
/// ```
/// use weir_guest::prelude::*;
///
/// let input = Batch::new(3, vec![Column::new("amount", F64Builder::from_values(vec![5.0, 150.0, 7.0]))]).unwrap();
/// // Rows 1 and 2, with every input column, plus a computed one.
/// let b = EmitBatch::take(&input, &[1, 2]).push_str("size", [Some("big"), Some("small")]).finish().unwrap();
/// assert_eq!(b.f64s("amount").unwrap().values(), &[150.0, 7.0]);
/// // A one-row batch of computed columns.
/// let counts = EmitBatch::new().push_i64("batch_id", [Some(7)]).push_i64("rows", [Some(3)]).finish().unwrap();
/// assert_eq!(counts.num_rows(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
#[must_use = "an EmitBatch does nothing until emitted"]
pub struct EmitBatch {
    /// Set by `take` (the taken rows) or by the first column.
    num_rows: Option<usize>,
    columns: Vec<Column>,
    /// The first mistake, reported when the batch is finished (so calls chain).
    error: Option<String>,
}

impl EmitBatch {
    /// An empty batch: its row count is the first column's length (0 rows without columns).
    pub fn new() -> EmitBatch {
        EmitBatch::default()
    }

    /// Every column of `input`, in input order, at `rows` (in that order, repeats allowed): the
    /// rows a router sends to one output. The values are copied; an empty `rows` gives an empty
    /// batch with the input's columns.
    pub fn take(input: &Batch, rows: &[u32]) -> EmitBatch {
        let mut b = EmitBatch { num_rows: Some(rows.len()), columns: Vec::new(), error: None };
        if let Some(e) = out_of_range("EmitBatch::take", input, rows) {
            b.error = Some(e);
            return b;
        }
        b.columns = input.columns().iter().map(|c| Column { name: c.name.clone(), data: c.data.take(rows) }).collect();
        b
    }

    /// Every row and column of `input` (a copy).
    pub fn all(input: &Batch) -> EmitBatch {
        EmitBatch { num_rows: Some(input.num_rows()), columns: input.columns().to_vec(), error: None }
    }

    /// Appends the input column `name` at `rows` (as [`take`](Self::take) does for all columns).
    /// A missing column or a row out of range fails the emit, naming it.
    pub fn take_column(mut self, input: &Batch, name: &str, rows: &[u32]) -> EmitBatch {
        if self.error.is_some() {
            return self;
        }
        if let Some(e) = out_of_range("EmitBatch::take_column", input, rows) {
            self.error = Some(e);
            return self;
        }
        match input.column(name) {
            Ok(c) => self.column(name, c.data.take(rows)),
            Err(e) => {
                self.error = Some(format!("take_column(\"{name}\"): {}", e.message));
                self
            }
        }
    }

    /// Appends a computed column: a finished builder or any [`ColumnData`].
    pub fn column(mut self, name: &str, data: impl Into<ColumnData>) -> EmitBatch {
        let data = data.into();
        self.num_rows.get_or_insert(data.len());
        self.columns.push(Column { name: name.to_string(), data });
        self
    }

    /// Appends a computed `double` column, one `Option` per row (`None` = null).
    pub fn push_f64(self, name: &str, values: impl IntoIterator<Item = Option<f64>>) -> EmitBatch {
        self.column(name, values.into_iter().collect::<PrimitiveBuilder<f64>>())
    }

    /// Appends a computed `int` column, one `Option` per row.
    pub fn push_i32(self, name: &str, values: impl IntoIterator<Item = Option<i32>>) -> EmitBatch {
        self.column(name, values.into_iter().collect::<PrimitiveBuilder<i32>>())
    }

    /// Appends a computed `bigint` column, one `Option` per row.
    pub fn push_i64(self, name: &str, values: impl IntoIterator<Item = Option<i64>>) -> EmitBatch {
        self.column(name, values.into_iter().collect::<PrimitiveBuilder<i64>>())
    }

    /// Appends a computed `timestamp` column (microseconds since the Unix epoch).
    pub fn push_timestamp(self, name: &str, values: impl IntoIterator<Item = Option<i64>>) -> EmitBatch {
        self.column(name, values.into_iter().collect::<PrimitiveBuilder<i64>>().finish_timestamp())
    }

    /// Appends a computed `boolean` column, one `Option` per row.
    pub fn push_bool(self, name: &str, values: impl IntoIterator<Item = Option<bool>>) -> EmitBatch {
        self.column(name, values.into_iter().collect::<PrimitiveBuilder<bool>>())
    }

    /// Appends a computed `string` column, one `Option` per row.
    pub fn push_str<S: AsRef<str>>(self, name: &str, values: impl IntoIterator<Item = Option<S>>) -> EmitBatch {
        self.column(name, values.into_iter().collect::<StrBuilder>())
    }

    /// Appends a computed `binary` column, one `Option` per row.
    pub fn push_binary<B: AsRef<[u8]>>(self, name: &str, values: impl IntoIterator<Item = Option<B>>) -> EmitBatch {
        self.column(name, values.into_iter().collect::<BinaryBuilder>())
    }

    /// The finished batch: fails on the first mistake made while building it, a column whose
    /// length is not the row count, or a name given twice.
    pub fn finish(self) -> Result<Batch, BatchError> {
        if let Some(e) = self.error {
            return Err(BatchError::new(e));
        }
        for (i, c) in self.columns.iter().enumerate() {
            if self.columns[..i].iter().any(|o| o.name == c.name) {
                return Err(BatchError::new(format!("column `{}` is given twice", c.name)));
            }
        }
        Batch::new(self.num_rows.unwrap_or(0), self.columns)
    }
}

/// A whole batch emitted as is (e.g. the input, or one a test made).
impl From<Batch> for EmitBatch {
    fn from(b: Batch) -> EmitBatch {
        let (num_rows, columns) = b.into_parts();
        EmitBatch { num_rows: Some(num_rows), columns, error: None }
    }
}

fn out_of_range(what: &str, input: &Batch, rows: &[u32]) -> Option<String> {
    let n = input.num_rows();
    rows.iter()
        .find(|&&r| r as usize >= n)
        .map(|bad| format!("{what}: row {bad} is out of range (the input has {n} rows)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Values;
    use crate::builder::{F64Builder, I64Builder};

    fn input() -> Batch {
        Batch::new(
            3,
            vec![
                Column::new("user", [Some("a"), None, Some("ccc")].into_iter().collect::<StrBuilder>()),
                Column::new("amount", [Some(1.0), Some(200.0), None].into_iter().collect::<F64Builder>()),
            ],
        )
        .unwrap()
    }

    #[test]
    fn take_copies_every_column_at_the_rows_in_order() {
        let b = EmitBatch::take(&input(), &[2, 0, 2]).finish().unwrap();
        assert_eq!(b.num_rows(), 3);
        assert_eq!(b.strs("user").unwrap().iter().collect::<Vec<_>>(), vec![Some("ccc"), Some("a"), Some("ccc")]);
        assert_eq!(b.f64s("amount").unwrap().iter().collect::<Vec<_>>(), vec![None, Some(1.0), None]);
        let none = EmitBatch::take(&input(), &[]).finish().unwrap();
        assert_eq!(none.num_rows(), 0);
        assert_eq!(none.columns().len(), 2, "an empty take keeps the columns");
        // The validity list only stays when a taken row is null.
        let b = EmitBatch::take(&input(), &[0, 1]).finish().unwrap();
        assert_eq!(b.columns()[0].data.validity, Some(vec![true, false]));
        assert_eq!(b.columns()[1].data.validity, None);
    }

    #[test]
    fn computed_columns_set_the_row_count_and_can_follow_taken_ones() {
        let b = EmitBatch::new()
            .column("n", I64Builder::from_values(vec![4, 5]))
            .push_bool("ok", [Some(true), None])
            .push_timestamp("t", [Some(1), Some(2)])
            .finish()
            .unwrap();
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.columns()[2].data.values, Values::Timestamp(vec![1, 2]));
        let b = EmitBatch::take(&input(), &[1]).take_column(&input(), "user", &[0]).finish();
        assert_eq!(b.unwrap_err().message, "column `user` is given twice");
        let b = EmitBatch::new().take_column(&input(), "amount", &[1]).push_str("size", [Some("big")]).finish();
        assert_eq!(b.unwrap().strs("size").unwrap().get(0), Some("big"));
        assert_eq!(EmitBatch::new().finish().unwrap().num_rows(), 0);
        assert_eq!(EmitBatch::from(input()).finish().unwrap(), input());
        assert_eq!(EmitBatch::all(&input()).finish().unwrap(), input());
    }

    #[test]
    fn mistakes_fail_the_batch_naming_row_and_column() {
        let e = |b: EmitBatch| b.finish().unwrap_err().message;
        assert_eq!(
            e(EmitBatch::take(&input(), &[0, 3])),
            "EmitBatch::take: row 3 is out of range (the input has 3 rows)"
        );
        assert_eq!(
            e(EmitBatch::new().take_column(&input(), "price", &[0])),
            "take_column(\"price\"): input has no column `price`; its columns are: user, amount"
        );
        assert_eq!(
            e(EmitBatch::new().take_column(&input(), "user", &[9])),
            "EmitBatch::take_column: row 9 is out of range (the input has 3 rows)"
        );
        assert_eq!(
            e(EmitBatch::take(&input(), &[0]).push_i64("n", [Some(1), Some(2)])),
            "column `n` has 2 values for 1 rows"
        );
    }
}
