//! The input batch and zero-copy, typed views over its columns.

use crate::output::BatchError;
use crate::schema::{names, DataType};

/// Variable-length values laid out as Arrow does: value `i` is `data[offsets[i]..offsets[i + 1]]`,
/// so `offsets` has one entry more than there are rows. Two flat lists, whatever the row count.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VarLen {
    /// `rows + 1` offsets into `data`, never decreasing, starting at 0.
    pub offsets: Vec<u32>,
    /// All values, back to back.
    pub data: Vec<u8>,
}

/// The values of one column, one flat list per column as they cross the boundary.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// `boolean`.
    Boolean(Vec<bool>),
    /// `int`.
    Int32(Vec<i32>),
    /// `bigint`.
    Int64(Vec<i64>),
    /// `double`.
    Float64(Vec<f64>),
    /// `string`: UTF-8 (the host checks it when it comes back).
    Utf8(VarLen),
    /// `binary`.
    Binary(VarLen),
    /// `timestamp`: microseconds since the Unix epoch, UTC.
    Timestamp(Vec<i64>),
}

impl Values {
    /// The column type these values are of.
    pub fn data_type(&self) -> DataType {
        match self {
            Values::Boolean(_) => DataType::Boolean,
            Values::Int32(_) => DataType::Int32,
            Values::Int64(_) => DataType::Int64,
            Values::Float64(_) => DataType::Float64,
            Values::Utf8(_) => DataType::Utf8,
            Values::Binary(_) => DataType::Binary,
            Values::Timestamp(_) => DataType::Timestamp,
        }
    }

    /// The number of values (rows).
    pub fn len(&self) -> usize {
        match self {
            Values::Boolean(v) => v.len(),
            Values::Int32(v) => v.len(),
            Values::Int64(v) | Values::Timestamp(v) => v.len(),
            Values::Float64(v) => v.len(),
            Values::Utf8(v) | Values::Binary(v) => v.offsets.len().saturating_sub(1),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A column's values and which of them are null.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnData {
    /// The values; the value at a null slot is unspecified.
    pub values: Values,
    /// One entry per row, `false` where the value is null; `None` when nothing is null.
    pub validity: Option<Vec<bool>>,
}

impl ColumnData {
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The column type.
    pub fn data_type(&self) -> DataType {
        self.values.data_type()
    }

    /// The values at `rows` (in that order, repeats allowed): what the host does with a
    /// passed-through column under [`Output::select`](crate::Output::select).
    pub fn take(&self, rows: &[u32]) -> ColumnData {
        fn pick<T: Copy>(v: &[T], rows: &[u32]) -> Vec<T> {
            rows.iter().map(|&r| v[r as usize]).collect()
        }
        fn pick_var(v: &VarLen, rows: &[u32]) -> VarLen {
            let mut out = VarLen { offsets: Vec::with_capacity(rows.len() + 1), data: Vec::new() };
            out.offsets.push(0);
            for &r in rows {
                let r = r as usize;
                out.data.extend_from_slice(&v.data[v.offsets[r] as usize..v.offsets[r + 1] as usize]);
                out.offsets.push(out.data.len() as u32);
            }
            out
        }
        let values = match &self.values {
            Values::Boolean(v) => Values::Boolean(pick(v, rows)),
            Values::Int32(v) => Values::Int32(pick(v, rows)),
            Values::Int64(v) => Values::Int64(pick(v, rows)),
            Values::Float64(v) => Values::Float64(pick(v, rows)),
            Values::Utf8(v) => Values::Utf8(pick_var(v, rows)),
            Values::Binary(v) => Values::Binary(pick_var(v, rows)),
            Values::Timestamp(v) => Values::Timestamp(pick(v, rows)),
        };
        ColumnData { values, validity: self.validity.as_ref().map(|v| pick(v, rows)) }.normalize()
    }

    /// Drops a validity list that marks nothing null, so one only crosses when needed.
    pub(crate) fn normalize(mut self) -> ColumnData {
        if self.validity.as_ref().is_some_and(|v| v.iter().all(|&b| b)) {
            self.validity = None;
        }
        self
    }
}

/// A named column of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The column's name.
    pub name: String,
    /// Its values and validity.
    pub data: ColumnData,
}

impl Column {
    /// A column; `data` can come from a builder (`F64Builder::finish` and so on).
    pub fn new(name: impl Into<String>, data: impl Into<ColumnData>) -> Column {
        Column { name: name.into(), data: data.into() }
    }
}

/// The batch `map_batch` receives: `num_rows` rows, one flat list per column.
///
/// Read columns by name with the typed getters ([`Batch::f64s`], [`Batch::strs`]...), which
/// check the type and give views borrowing the received lists: nothing is copied.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    num_rows: usize,
    columns: Vec<Column>,
}

impl Batch {
    /// A batch of `num_rows` rows. Fails when a column's length is not `num_rows`, its validity
    /// list has another length, or its var-len offsets are malformed (the views rely on this).
    pub fn new(num_rows: usize, columns: Vec<Column>) -> Result<Batch, BatchError> {
        for c in &columns {
            check_column(&c.name, &c.data, num_rows).map_err(BatchError::new)?;
        }
        Ok(Batch { num_rows, columns })
    }

    /// The number of rows.
    pub fn num_rows(&self) -> usize {
        self.num_rows
    }

    /// All columns, in input order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The position of the column named `name`, if any.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The column named `name`, or an error listing the columns there are.
    pub fn column(&self, name: &str) -> Result<&Column, BatchError> {
        self.columns.iter().find(|c| c.name == name).ok_or_else(|| {
            BatchError::new(format!(
                "input has no column `{name}`; its columns are: {}",
                names(self.columns.iter().map(|c| c.name.as_str()))
            ))
        })
    }

    /// The `double` column `name`.
    pub fn f64s(&self, name: &str) -> Result<PrimitiveView<'_, f64>, BatchError> {
        let c = self.column(name)?;
        match &c.data.values {
            Values::Float64(v) => Ok(PrimitiveView::new(v, c.data.validity.as_deref())),
            other => Err(wrong_type(name, DataType::Float64, other.data_type())),
        }
    }

    /// The `int` column `name`.
    pub fn i32s(&self, name: &str) -> Result<PrimitiveView<'_, i32>, BatchError> {
        let c = self.column(name)?;
        match &c.data.values {
            Values::Int32(v) => Ok(PrimitiveView::new(v, c.data.validity.as_deref())),
            other => Err(wrong_type(name, DataType::Int32, other.data_type())),
        }
    }

    /// The `bigint` column `name`.
    pub fn i64s(&self, name: &str) -> Result<PrimitiveView<'_, i64>, BatchError> {
        let c = self.column(name)?;
        match &c.data.values {
            Values::Int64(v) => Ok(PrimitiveView::new(v, c.data.validity.as_deref())),
            other => Err(wrong_type(name, DataType::Int64, other.data_type())),
        }
    }

    /// The `timestamp` column `name`, as microseconds since the Unix epoch.
    pub fn timestamps(&self, name: &str) -> Result<PrimitiveView<'_, i64>, BatchError> {
        let c = self.column(name)?;
        match &c.data.values {
            Values::Timestamp(v) => Ok(PrimitiveView::new(v, c.data.validity.as_deref())),
            other => Err(wrong_type(name, DataType::Timestamp, other.data_type())),
        }
    }

    /// The `boolean` column `name`.
    pub fn bools(&self, name: &str) -> Result<PrimitiveView<'_, bool>, BatchError> {
        let c = self.column(name)?;
        match &c.data.values {
            Values::Boolean(v) => Ok(PrimitiveView::new(v, c.data.validity.as_deref())),
            other => Err(wrong_type(name, DataType::Boolean, other.data_type())),
        }
    }

    /// The `string` column `name`. Its bytes are checked to be UTF-8 once, here, so reading a
    /// value is a slice, not a check.
    pub fn strs(&self, name: &str) -> Result<StrView<'_>, BatchError> {
        let c = self.column(name)?;
        match &c.data.values {
            Values::Utf8(v) => {
                check_utf8(name, v)?;
                Ok(StrView { inner: BinaryView::new(v, c.data.validity.as_deref()) })
            }
            other => Err(wrong_type(name, DataType::Utf8, other.data_type())),
        }
    }

    /// The `string` column `name` as raw UTF-8 bytes, without the one-pass UTF-8 check
    /// [`strs`](Self::strs) makes: for hashing or comparing bytes, where the check is wasted.
    pub fn utf8_bytes(&self, name: &str) -> Result<BinaryView<'_>, BatchError> {
        let c = self.column(name)?;
        match &c.data.values {
            Values::Utf8(v) => Ok(BinaryView::new(v, c.data.validity.as_deref())),
            other => Err(wrong_type(name, DataType::Utf8, other.data_type())),
        }
    }

    /// The `binary` column `name`.
    pub fn binaries(&self, name: &str) -> Result<BinaryView<'_>, BatchError> {
        let c = self.column(name)?;
        match &c.data.values {
            Values::Binary(v) => Ok(BinaryView::new(v, c.data.validity.as_deref())),
            other => Err(wrong_type(name, DataType::Binary, other.data_type())),
        }
    }

    /// The rows and columns, for the glue that sends a batch back to the host.
    pub(crate) fn into_parts(self) -> (usize, Vec<Column>) {
        (self.num_rows, self.columns)
    }
}

/// What [`StrView`] relies on: the bytes are UTF-8 and every offset is on a character boundary.
pub(crate) fn check_utf8(name: &str, v: &VarLen) -> Result<(), BatchError> {
    std::str::from_utf8(&v.data).map_err(|e| BatchError::new(format!("column `{name}` is not valid UTF-8: {e}")))?;
    if let Some(bad) = v.offsets.iter().position(|&o| !is_char_boundary(&v.data, o as usize)) {
        return Err(BatchError::at_row(
            bad as u32,
            format!("column `{name}`: a value starts or ends inside a UTF-8 character"),
        ));
    }
    Ok(())
}

fn is_char_boundary(data: &[u8], i: usize) -> bool {
    // Past-the-end counts as a boundary; offsets beyond it were refused by `check_column`.
    i >= data.len() || (data[i] as i8) >= -0x40
}

fn wrong_type(name: &str, wanted: DataType, found: DataType) -> BatchError {
    BatchError::new(format!("column `{name}` is {found}, not {wanted}"))
}

/// Checks what the views rely on: lengths match the row count, offsets are in range and in order.
pub(crate) fn check_column(name: &str, data: &ColumnData, num_rows: usize) -> Result<(), String> {
    if let Values::Utf8(v) | Values::Binary(v) = &data.values {
        if v.offsets.len() != num_rows + 1 {
            return Err(format!(
                "column `{name}` has {} offsets for {num_rows} rows (there must be one more offset than rows)",
                v.offsets.len()
            ));
        }
        if v.offsets[0] != 0 || v.offsets.windows(2).any(|w| w[0] > w[1]) {
            return Err(format!("column `{name}`: offsets must start at 0 and never decrease"));
        }
        if v.offsets[num_rows] as usize > v.data.len() {
            return Err(format!(
                "column `{name}`: the last offset is {} but there are {} bytes",
                v.offsets[num_rows],
                v.data.len()
            ));
        }
    } else if data.values.len() != num_rows {
        return Err(format!("column `{name}` has {} values for {num_rows} rows", data.values.len()));
    }
    if let Some(v) = &data.validity {
        if v.len() != num_rows {
            return Err(format!("column `{name}` has {} validity entries for {num_rows} rows", v.len()));
        }
    }
    Ok(())
}

/// A typed view of a fixed-width column (`f64`, `i32`, `i64`, `bool`): the received list,
/// borrowed. [`get`](Self::get) honours nulls; [`values`](Self::values) is the raw slice for
/// tight loops.
#[derive(Debug, Clone, Copy)]
pub struct PrimitiveView<'a, T> {
    values: &'a [T],
    validity: Option<&'a [bool]>,
}

impl<'a, T: Copy> PrimitiveView<'a, T> {
    /// A view over `values`, with `validity` (`false` = null) when some are null.
    pub fn new(values: &'a [T], validity: Option<&'a [bool]>) -> Self {
        PrimitiveView { values, validity }
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The value at `row`, or `None` when it is null. Panics when `row` is out of range.
    #[inline]
    pub fn get(&self, row: usize) -> Option<T> {
        let v = self.values[row];
        match self.validity {
            Some(valid) if !valid[row] => None,
            _ => Some(v),
        }
    }

    /// Whether the value at `row` is null.
    #[inline]
    pub fn is_null(&self, row: usize) -> bool {
        self.validity.is_some_and(|v| !v[row])
    }

    /// How many values are null.
    pub fn null_count(&self) -> usize {
        self.validity.map_or(0, |v| v.iter().filter(|b| !**b).count())
    }

    /// The raw values, one per row; the value at a null slot is unspecified (check
    /// [`validity`](Self::validity)).
    pub fn values(&self) -> &'a [T] {
        self.values
    }

    /// One entry per row, `false` where null; `None` when nothing is null.
    pub fn validity(&self) -> Option<&'a [bool]> {
        self.validity
    }

    /// The values as `Option`s, row by row.
    pub fn iter(&self) -> impl Iterator<Item = Option<T>> + 'a {
        let values = self.values;
        let validity = self.validity;
        (0..values.len()).map(move |i| match validity {
            Some(valid) if !valid[i] => None,
            _ => Some(values[i]),
        })
    }

    /// A new column of `f(value)` for every row, null where this one is null.
    ///
    /// The fast path: one branch-free loop over the raw slice (the compiler can vectorise it) and
    /// the validity copied as is. `f` is therefore also called on the unspecified value of null
    /// slots, so it must not panic or have side effects; use [`iter`](Self::iter) when it may.
    /// (`finish` then sets those slots to the default value.)
    pub fn map<U: Copy + Default>(&self, f: impl FnMut(T) -> U) -> crate::PrimitiveBuilder<U> {
        let values: Vec<U> = self.values.iter().copied().map(f).collect();
        crate::PrimitiveBuilder::from_parts(values, self.validity.map(<[bool]>::to_vec))
    }
}

/// A view of a `binary` column: the received offsets and bytes, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct BinaryView<'a> {
    offsets: &'a [u32],
    data: &'a [u8],
    validity: Option<&'a [bool]>,
}

impl<'a> BinaryView<'a> {
    fn new(v: &'a VarLen, validity: Option<&'a [bool]>) -> Self {
        BinaryView { offsets: &v.offsets, data: &v.data, validity }
    }

    /// The rows `rows` of a column, borrowed: the offsets are sliced (they keep pointing into
    /// the whole column's bytes), nothing is copied. `rows` must be in range.
    pub(crate) fn slice(v: &'a VarLen, validity: Option<&'a [bool]>, rows: std::ops::Range<usize>) -> Self {
        BinaryView {
            offsets: &v.offsets[rows.start..rows.end + 1],
            data: &v.data,
            validity: validity.map(|b| &b[rows.clone()]),
        }
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes at `row`, or `None` when null. Panics when `row` is out of range.
    #[inline]
    pub fn get(&self, row: usize) -> Option<&'a [u8]> {
        if self.is_null(row) {
            None
        } else {
            Some(self.value(row))
        }
    }

    /// The bytes at `row`, ignoring validity (whatever a null slot holds, usually nothing).
    #[inline]
    pub fn value(&self, row: usize) -> &'a [u8] {
        &self.data[self.offsets[row] as usize..self.offsets[row + 1] as usize]
    }

    /// Whether the value at `row` is null.
    #[inline]
    pub fn is_null(&self, row: usize) -> bool {
        self.validity.is_some_and(|v| !v[row])
    }

    /// The values as `Option`s, row by row.
    pub fn iter(&self) -> impl Iterator<Item = Option<&'a [u8]>> + 'a {
        let this = *self;
        (0..this.len()).map(move |i| this.get(i))
    }

    /// The raw offsets (`rows + 1` of them) into [`data`](Self::data). In a view of a group's
    /// rows they start where the group starts, not at 0.
    pub fn offsets(&self) -> &'a [u32] {
        self.offsets
    }

    /// The raw bytes of all values, back to back.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// One entry per row, `false` where null; `None` when nothing is null.
    pub fn validity(&self) -> Option<&'a [bool]> {
        self.validity
    }
}

/// A view of a `string` column: like [`BinaryView`], but values are `&str` (checked once when
/// the view was made).
#[derive(Debug, Clone, Copy)]
pub struct StrView<'a> {
    inner: BinaryView<'a>,
}

impl<'a> StrView<'a> {
    /// A view over bytes already checked by [`check_utf8`].
    pub(crate) fn from_checked(inner: BinaryView<'a>) -> Self {
        StrView { inner }
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The text at `row`, or `None` when null. Panics when `row` is out of range.
    #[inline]
    pub fn get(&self, row: usize) -> Option<&'a str> {
        if self.inner.is_null(row) {
            None
        } else {
            Some(self.value(row))
        }
    }

    /// The text at `row`, ignoring validity.
    #[inline]
    pub fn value(&self, row: usize) -> &'a str {
        // SAFETY: `Batch::strs` checked that `data` is UTF-8 and that every offset falls on a
        // character boundary, so every value slice is UTF-8 too.
        unsafe { std::str::from_utf8_unchecked(self.inner.value(row)) }
    }

    /// The UTF-8 bytes at `row`, or `None` when null: for hashing or comparing without `str`.
    #[inline]
    pub fn get_bytes(&self, row: usize) -> Option<&'a [u8]> {
        self.inner.get(row)
    }

    /// Whether the value at `row` is null.
    #[inline]
    pub fn is_null(&self, row: usize) -> bool {
        self.inner.is_null(row)
    }

    /// The values as `Option`s, row by row.
    pub fn iter(&self) -> impl Iterator<Item = Option<&'a str>> + 'a {
        let this = *self;
        (0..this.len()).map(move |i| this.get(i))
    }

    /// The same column as bytes: raw offsets, data and validity.
    pub fn as_binary(&self) -> BinaryView<'a> {
        self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::{F64Builder, StrBuilder};

    fn batch() -> Batch {
        Batch::new(
            3,
            vec![
                Column::new("user_id", StrBuilder::from_iter([Some("alice"), None, Some("ünï")])),
                Column::new("amount", F64Builder::from_iter([Some(1.5), Some(2.0), None])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn typed_getters_honour_validity() {
        let b = batch();
        let amount = b.f64s("amount").unwrap();
        assert_eq!(amount.iter().collect::<Vec<_>>(), vec![Some(1.5), Some(2.0), None]);
        assert_eq!(amount.null_count(), 1);
        assert_eq!(amount.values().len(), 3);
        let users = b.strs("user_id").unwrap();
        assert_eq!(users.iter().collect::<Vec<_>>(), vec![Some("alice"), None, Some("ünï")]);
        assert_eq!(users.get_bytes(0), Some(&b"alice"[..]));
        assert_eq!(users.as_binary().offsets(), &[0, 5, 5, 10]);
        assert_eq!(b.utf8_bytes("user_id").unwrap().get(2), Some("ünï".as_bytes()));
        assert!(b.utf8_bytes("amount").is_err());
    }

    #[test]
    fn missing_and_mistyped_columns_are_named() {
        let b = batch();
        assert_eq!(
            b.f64s("price").unwrap_err().message,
            "input has no column `price`; its columns are: user_id, amount"
        );
        assert_eq!(b.i32s("amount").unwrap_err().message, "column `amount` is float64 (double), not int32 (int)");
        assert_eq!(b.f64s("user_id").unwrap_err().message, "column `user_id` is utf8 (string), not float64 (double)");
    }

    #[test]
    fn malformed_columns_are_refused() {
        let bad = |values: Values, validity: Option<Vec<bool>>| {
            Batch::new(2, vec![Column { name: "c".into(), data: ColumnData { values, validity } }]).unwrap_err().message
        };
        assert!(bad(Values::Float64(vec![1.0]), None).contains("1 values for 2 rows"));
        assert!(bad(Values::Float64(vec![1.0, 2.0]), Some(vec![true])).contains("1 validity entries"));
        let v = |offsets: Vec<u32>, data: &[u8]| Values::Utf8(VarLen { offsets, data: data.to_vec() });
        assert!(bad(v(vec![0, 1], b"a"), None).contains("has 2 offsets for 2 rows"));
        assert!(bad(v(vec![0, 2, 1], b"ab"), None).contains("never decrease"));
        assert!(bad(v(vec![0, 1, 3], b"ab"), None).contains("last offset is 3"));
    }

    #[test]
    fn strs_refuses_bad_utf8_and_split_characters() {
        let mk = |offsets: Vec<u32>, data: &[u8]| {
            Batch::new(
                2,
                vec![Column {
                    name: "s".into(),
                    data: ColumnData { values: Values::Utf8(VarLen { offsets, data: data.to_vec() }), validity: None },
                }],
            )
            .unwrap()
        };
        assert!(mk(vec![0, 1, 2], &[b'a', 0xff]).strs("s").unwrap_err().message.contains("not valid UTF-8"));
        let e = mk(vec![0, 1, 2], "é".as_bytes()).strs("s").unwrap_err();
        assert_eq!(e.row, Some(1));
        assert!(mk(vec![0, 1, 2], "é".as_bytes()).binaries("s").is_err(), "utf8 is not binary");
    }

    #[test]
    fn map_keeps_nulls_and_copies_no_validity_when_none() {
        let b = batch();
        let doubled = b.f64s("amount").unwrap().map(|a| a * 2.0).finish();
        assert_eq!(doubled.values, Values::Float64(vec![3.0, 4.0, 0.0]), "null slots are zeroed");
        assert_eq!(doubled.validity, Some(vec![true, true, false]));
    }
}
