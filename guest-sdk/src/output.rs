//! What `map_batch` returns: which input rows, which columns (passed through or computed).

use std::fmt;

use crate::batch::{check_column, Batch, Column, ColumnData};
use crate::builder::{BinaryBuilder, PrimitiveBuilder, StrBuilder};
use crate::schema::names;

/// A failed batch. `row`, when set, names the input row at fault, so the host can send that
/// record to the dead-letter output and go on (if the job allows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError {
    /// What went wrong, for the job's log.
    pub message: String,
    /// The input row at fault, when one is.
    pub row: Option<u32>,
}

impl BatchError {
    /// An error about the batch as a whole.
    pub fn new(message: impl Into<String>) -> BatchError {
        BatchError { message: message.into(), row: None }
    }

    /// An error about input row `row`.
    pub fn at_row(row: u32, message: impl Into<String>) -> BatchError {
        BatchError { message: message.into(), row: Some(row) }
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.row {
            Some(r) => write!(f, "row {r}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for BatchError {}

/// So `?` works on `Result<_, String>` (e.g. a helper shared with `output_schema`).
impl From<String> for BatchError {
    fn from(message: String) -> BatchError {
        BatchError::new(message)
    }
}

/// So `?` and `.into()` work on string literals.
impl From<&str> for BatchError {
    fn from(message: &str) -> BatchError {
        BatchError::new(message)
    }
}

/// Which input rows the output rows come from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rows {
    /// Output row i is input row i.
    Same,
    /// Output row i is input row `rows[i]`.
    Select(Vec<u32>),
}

/// One output column, before it is checked against the input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OutputColumn {
    /// An input column, by index: its data does not cross back.
    Input { name: String, index: u32 },
    /// An input column by name, resolved against the input when the output is finished.
    InputNamed { name: String },
    /// Values computed by the plugin, one per output row.
    Computed { name: String, data: ColumnData },
}

/// The output of `map_batch`, built column by column.
///
/// Start with [`Output::same_rows`] (a map: one output row per input row) or
/// [`Output::select`] (a filter or flatMap: the input rows to emit, in order, repeats allowed),
/// then add columns in the order of the output schema: input columns passed through (their data
/// stays on the host) and computed columns (one value per output row).
#[derive(Debug, Clone, PartialEq)]
#[must_use = "an Output does nothing until returned from map_batch"]
pub struct Output {
    pub(crate) rows: Rows,
    pub(crate) columns: Vec<OutputColumn>,
}

impl Output {
    /// Output row i is input row i: a map.
    pub fn same_rows() -> Output {
        Output { rows: Rows::Same, columns: Vec::new() }
    }

    /// Output row i is input row `rows[i]`: a filter keeps some rows, a flatMap repeats some.
    /// Passed-through columns are taken at these rows by the host; computed columns must have
    /// `rows.len()` values.
    pub fn select(rows: Vec<u32>) -> Output {
        Output { rows: Rows::Select(rows), columns: Vec::new() }
    }

    /// Appends every input column, in input order, passed through (no data crosses back).
    pub fn pass_through_all(mut self, input: &Batch) -> Output {
        for (i, c) in input.columns().iter().enumerate() {
            self.columns.push(OutputColumn::Input { name: c.name.clone(), index: i as u32 });
        }
        self
    }

    /// Appends the input column `name`, passed through (no data crosses back). A missing column
    /// fails the batch with a message naming it.
    pub fn pass_through(mut self, name: &str) -> Output {
        self.columns.push(OutputColumn::InputNamed { name: name.to_string() });
        self
    }

    /// Appends a computed column: a finished builder or any [`ColumnData`].
    pub fn column(mut self, name: &str, data: impl Into<ColumnData>) -> Output {
        self.columns.push(OutputColumn::Computed { name: name.to_string(), data: data.into() });
        self
    }

    /// Appends a computed `double` column, one `Option` per output row (`None` = null).
    pub fn push_f64(self, name: &str, values: impl IntoIterator<Item = Option<f64>>) -> Output {
        self.column(name, values.into_iter().collect::<PrimitiveBuilder<f64>>())
    }

    /// Appends a computed `int` column, one `Option` per output row.
    pub fn push_i32(self, name: &str, values: impl IntoIterator<Item = Option<i32>>) -> Output {
        self.column(name, values.into_iter().collect::<PrimitiveBuilder<i32>>())
    }

    /// Appends a computed `bigint` column, one `Option` per output row.
    pub fn push_i64(self, name: &str, values: impl IntoIterator<Item = Option<i64>>) -> Output {
        self.column(name, values.into_iter().collect::<PrimitiveBuilder<i64>>())
    }

    /// Appends a computed `timestamp` column (microseconds since the Unix epoch), one `Option` per
    /// output row.
    pub fn push_timestamp(self, name: &str, values: impl IntoIterator<Item = Option<i64>>) -> Output {
        self.column(name, values.into_iter().collect::<PrimitiveBuilder<i64>>().finish_timestamp())
    }

    /// Appends a computed `boolean` column, one `Option` per output row.
    pub fn push_bool(self, name: &str, values: impl IntoIterator<Item = Option<bool>>) -> Output {
        self.column(name, values.into_iter().collect::<PrimitiveBuilder<bool>>())
    }

    /// Appends a computed `string` column, one `Option` per output row.
    pub fn push_str<S: AsRef<str>>(self, name: &str, values: impl IntoIterator<Item = Option<S>>) -> Output {
        self.column(name, values.into_iter().collect::<StrBuilder>())
    }

    /// Appends a computed `binary` column, one `Option` per output row.
    pub fn push_binary<B: AsRef<[u8]>>(self, name: &str, values: impl IntoIterator<Item = Option<B>>) -> Output {
        self.column(name, values.into_iter().collect::<BinaryBuilder>())
    }

    /// The output as the host will see it, as a [`Batch`]: passed-through columns are copied
    /// (taken at the selected rows). For unit tests of a plugin run natively; the real export
    /// never copies them.
    pub fn to_batch(self, input: &Batch) -> Result<Batch, BatchError> {
        let r = self.resolve(input)?;
        let columns = r
            .columns
            .into_iter()
            .map(|c| match c {
                ResolvedColumn::Input { name, index } => {
                    let data = &input.columns()[index as usize].data;
                    let data = match &r.rows {
                        None => data.clone(),
                        Some(rows) => data.take(rows),
                    };
                    Column { name, data }
                }
                ResolvedColumn::Computed { name, data } => Column { name, data },
            })
            .collect();
        Batch::new(r.num_rows as usize, columns)
    }

    /// Checks the output against `input` (row indices in range, names resolved and unique,
    /// computed columns one value per output row) and settles the row count.
    pub(crate) fn resolve(self, input: &Batch) -> Result<Resolved, BatchError> {
        let n_in = input.num_rows();
        let (num_rows, rows) = match self.rows {
            Rows::Same => (n_in, None),
            Rows::Select(rows) => {
                if let Some(bad) = rows.iter().find(|&&r| r as usize >= n_in) {
                    return Err(BatchError::new(format!(
                        "Output::select: row {bad} is out of range (the input has {n_in} rows)"
                    )));
                }
                (rows.len(), Some(rows))
            }
        };
        let mut columns: Vec<ResolvedColumn> = Vec::with_capacity(self.columns.len());
        for c in self.columns {
            let col = match c {
                OutputColumn::Input { name, index } => ResolvedColumn::Input { name, index },
                OutputColumn::InputNamed { name } => match input.index_of(&name) {
                    Some(i) => ResolvedColumn::Input { name, index: i as u32 },
                    None => {
                        return Err(BatchError::new(format!(
                            "pass_through(\"{name}\"): the input has no such column; its columns are: {}",
                            names(input.columns().iter().map(|c| c.name.as_str()))
                        )))
                    }
                },
                OutputColumn::Computed { name, data } => {
                    check_column(&name, &data, num_rows)
                        .map_err(|e| BatchError::new(format!("output {e} (one value per output row is needed)")))?;
                    ResolvedColumn::Computed { name, data }
                }
            };
            if columns.iter().any(|c| c.name() == col.name()) {
                return Err(BatchError::new(format!("output column `{}` is given twice", col.name())));
            }
            columns.push(col);
        }
        Ok(Resolved { num_rows: num_rows as u32, rows, columns })
    }
}

/// An output checked against its input, ready to cross the boundary.
#[derive(Debug, PartialEq)]
pub(crate) struct Resolved {
    pub num_rows: u32,
    pub rows: Option<Vec<u32>>,
    pub columns: Vec<ResolvedColumn>,
}

/// An output column with its input index known.
#[derive(Debug, PartialEq)]
pub(crate) enum ResolvedColumn {
    Input { name: String, index: u32 },
    Computed { name: String, data: ColumnData },
}

impl ResolvedColumn {
    fn name(&self) -> &str {
        match self {
            ResolvedColumn::Input { name, .. } | ResolvedColumn::Computed { name, .. } => name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Values;
    use crate::builder::F64Builder;

    fn input() -> Batch {
        Batch::new(
            3,
            vec![
                Column::new("user_id", [Some("a"), Some("b"), None].into_iter().collect::<StrBuilder>()),
                Column::new("amount", F64Builder::from_values(vec![1.0, 2.0, 3.0])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn map_passes_through_by_index_and_computes() {
        let b = input();
        let out = Output::same_rows().pass_through_all(&b).push_bool("big", [Some(false), None, Some(true)]);
        let r = out.resolve(&b).unwrap();
        assert_eq!(r.num_rows, 3);
        assert_eq!(r.rows, None);
        assert_eq!(r.columns[0], ResolvedColumn::Input { name: "user_id".into(), index: 0 });
        assert_eq!(r.columns[1], ResolvedColumn::Input { name: "amount".into(), index: 1 });
        let ResolvedColumn::Computed { data, .. } = &r.columns[2] else { panic!() };
        assert_eq!(data.values, Values::Boolean(vec![false, false, true]));
        assert_eq!(data.validity, Some(vec![true, false, true]));
    }

    #[test]
    fn select_sets_rows_and_row_count() {
        let b = input();
        let r = Output::select(vec![2, 0, 0])
            .pass_through("amount")
            .push_i32("k", [Some(1), Some(2), Some(3)])
            .resolve(&b)
            .unwrap();
        assert_eq!(r.num_rows, 3);
        assert_eq!(r.rows, Some(vec![2, 0, 0]));
        assert_eq!(r.columns[0], ResolvedColumn::Input { name: "amount".into(), index: 1 });
        let empty = Output::select(vec![]).pass_through_all(&b).resolve(&b).unwrap();
        assert_eq!(empty.num_rows, 0);
    }

    #[test]
    fn contract_breaks_are_caught_in_the_plugin_with_clear_messages() {
        let b = input();
        let e = |o: Output| o.resolve(&b).unwrap_err().message;
        assert_eq!(e(Output::select(vec![3])), "Output::select: row 3 is out of range (the input has 3 rows)");
        assert_eq!(
            e(Output::same_rows().pass_through("nope")),
            "pass_through(\"nope\"): the input has no such column; its columns are: user_id, amount"
        );
        assert_eq!(
            e(Output::select(vec![0]).push_f64("x", [Some(1.0), Some(2.0)])),
            "output column `x` has 2 values for 1 rows (one value per output row is needed)"
        );
        assert_eq!(
            e(Output::same_rows().pass_through("amount").pass_through("amount")),
            "output column `amount` is given twice"
        );
    }

    #[test]
    fn to_batch_takes_passed_through_columns_at_the_rows() {
        let b = input();
        let out = Output::select(vec![2, 0]).pass_through_all(&b).push_i64("n", [Some(7), None]).to_batch(&b).unwrap();
        assert_eq!(out.num_rows(), 2);
        assert_eq!(out.strs("user_id").unwrap().iter().collect::<Vec<_>>(), vec![None, Some("a")]);
        assert_eq!(out.f64s("amount").unwrap().values(), &[3.0, 1.0]);
        assert_eq!(out.i64s("n").unwrap().iter().collect::<Vec<_>>(), vec![Some(7), None]);
    }

    #[test]
    fn errors_convert_and_display() {
        let e: BatchError = "bad".into();
        assert_eq!(e, BatchError::new("bad"));
        assert_eq!(BatchError::at_row(4, "oops").to_string(), "row 4: oops");
    }
}
