//! Builders for computed output columns: they write straight into the lists that cross back.

use crate::batch::{ColumnData, Values, VarLen};

mod sealed {
    pub trait Sealed {}
    impl Sealed for bool {}
    impl Sealed for i32 {}
    impl Sealed for i64 {}
    impl Sealed for f64 {}
}

/// The fixed-width value types a [`PrimitiveBuilder`] can build: `bool`, `i32`, `i64`, `f64`.
/// (`i64` builds `bigint`; use [`PrimitiveBuilder::finish_timestamp`] for `timestamp`.)
pub trait Primitive: sealed::Sealed + Copy + Default + 'static {
    /// Wraps a list of these values as column values.
    #[doc(hidden)]
    fn into_values(values: Vec<Self>) -> Values;
}

impl Primitive for bool {
    fn into_values(values: Vec<Self>) -> Values {
        Values::Boolean(values)
    }
}
impl Primitive for i32 {
    fn into_values(values: Vec<Self>) -> Values {
        Values::Int32(values)
    }
}
impl Primitive for i64 {
    fn into_values(values: Vec<Self>) -> Values {
        Values::Int64(values)
    }
}
impl Primitive for f64 {
    fn into_values(values: Vec<Self>) -> Values {
        Values::Float64(values)
    }
}

/// Builds a fixed-width column. The validity list is only made at the first null, so a column
/// without nulls sends none.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PrimitiveBuilder<T> {
    values: Vec<T>,
    validity: Option<Vec<bool>>,
}

/// Builds a `double` column.
pub type F64Builder = PrimitiveBuilder<f64>;
/// Builds an `int` column.
pub type I32Builder = PrimitiveBuilder<i32>;
/// Builds a `bigint` (or, with `finish_timestamp`, a `timestamp`) column.
pub type I64Builder = PrimitiveBuilder<i64>;
/// Builds a `boolean` column.
pub type BoolBuilder = PrimitiveBuilder<bool>;

impl<T: Copy + Default> PrimitiveBuilder<T> {
    /// An empty builder.
    pub fn new() -> Self {
        PrimitiveBuilder { values: Vec::new(), validity: None }
    }

    /// An empty builder with room for `rows` values: no reallocation while filling a batch.
    pub fn with_capacity(rows: usize) -> Self {
        PrimitiveBuilder { values: Vec::with_capacity(rows), validity: None }
    }

    /// A column of these values, none null. The vector becomes the output list as is.
    pub fn from_values(values: Vec<T>) -> Self {
        PrimitiveBuilder { values, validity: None }
    }

    /// A column of these values and validity (`false` = null; same length as `values`).
    pub fn from_parts(values: Vec<T>, validity: Option<Vec<bool>>) -> Self {
        PrimitiveBuilder { values, validity }
    }

    /// Appends a value, or a null for `None`.
    #[inline]
    pub fn push(&mut self, value: Option<T>) {
        match value {
            Some(v) => self.push_value(v),
            None => self.push_null(),
        }
    }

    /// Appends a value.
    #[inline]
    pub fn push_value(&mut self, value: T) {
        self.values.push(value);
        if let Some(v) = &mut self.validity {
            v.push(true);
        }
    }

    /// Appends a null.
    #[inline]
    pub fn push_null(&mut self) {
        let len = self.values.len();
        self.validity.get_or_insert_with(|| {
            let mut v = Vec::with_capacity(self.values.capacity());
            v.resize(len, true);
            v
        });
        self.values.push(T::default());
        if let Some(v) = &mut self.validity {
            v.push(false);
        }
    }

    /// The number of values so far.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether nothing was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values so far, for reading back or editing in place (null slots hold `T::default()`).
    pub fn values_mut(&mut self) -> &mut [T] {
        &mut self.values
    }
}

impl<T: Copy + Default> PrimitiveBuilder<T> {
    /// Sets every null slot to `T::default()`, whatever `map` or `from_parts` left there, so the
    /// output does not depend on the unspecified values of the input's null slots (a Rust and a
    /// Python plugin with the same logic give identical lists).
    fn zero_null_slots(&mut self) {
        if let Some(valid) = &self.validity {
            for (v, &ok) in self.values.iter_mut().zip(valid) {
                if !ok {
                    *v = T::default();
                }
            }
        }
    }
}

impl<T: Primitive> PrimitiveBuilder<T> {
    /// The finished column: null slots hold `T::default()`, and the validity is dropped when
    /// nothing is null.
    pub fn finish(mut self) -> ColumnData {
        self.zero_null_slots();
        ColumnData { values: T::into_values(self.values), validity: self.validity }.normalize()
    }
}

impl PrimitiveBuilder<i64> {
    /// The finished column as a `timestamp` (microseconds since the Unix epoch); null slots
    /// hold 0.
    pub fn finish_timestamp(mut self) -> ColumnData {
        self.zero_null_slots();
        ColumnData { values: Values::Timestamp(self.values), validity: self.validity }.normalize()
    }
}

impl<T: Copy + Default> FromIterator<Option<T>> for PrimitiveBuilder<T> {
    fn from_iter<I: IntoIterator<Item = Option<T>>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut b = Self::with_capacity(iter.size_hint().0);
        for v in iter {
            b.push(v);
        }
        b
    }
}

impl<T: Primitive> From<PrimitiveBuilder<T>> for ColumnData {
    fn from(b: PrimitiveBuilder<T>) -> ColumnData {
        b.finish()
    }
}

/// Shared by [`StrBuilder`] and [`BinaryBuilder`]: Arrow-style offsets and flat bytes.
#[derive(Debug, Clone, PartialEq)]
struct VarLenBuilder {
    offsets: Vec<u32>,
    data: Vec<u8>,
    validity: Option<Vec<bool>>,
}

impl VarLenBuilder {
    fn with_capacity(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        VarLenBuilder { offsets, data: Vec::with_capacity(bytes), validity: None }
    }

    #[inline]
    fn push_value(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
        self.end_value();
        if let Some(v) = &mut self.validity {
            v.push(true);
        }
    }

    #[inline]
    fn push_null(&mut self) {
        let len = self.len();
        self.validity.get_or_insert_with(|| vec![true; len]).push(false);
        self.end_value();
    }

    #[inline]
    fn end_value(&mut self) {
        // Wasm memory is at most 4 GiB, so the bytes of one batch always fit a u32 offset.
        let end = u32::try_from(self.data.len()).expect("a column's bytes exceed 4 GiB");
        self.offsets.push(end);
    }

    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    fn finish(self) -> (VarLen, Option<Vec<bool>>) {
        (VarLen { offsets: self.offsets, data: self.data }, self.validity)
    }
}

/// Builds a `string` column straight into one flat byte list and its offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct StrBuilder(VarLenBuilder);

impl Default for StrBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl StrBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::with_capacity(0, 0)
    }

    /// An empty builder with room for `rows` values totalling `bytes` bytes.
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        StrBuilder(VarLenBuilder::with_capacity(rows, bytes))
    }

    /// Appends a value, or a null for `None`.
    #[inline]
    pub fn push(&mut self, value: Option<&str>) {
        match value {
            Some(s) => self.0.push_value(s.as_bytes()),
            None => self.0.push_null(),
        }
    }

    /// Appends a value.
    #[inline]
    pub fn push_value(&mut self, value: &str) {
        self.0.push_value(value.as_bytes());
    }

    /// Appends a null.
    #[inline]
    pub fn push_null(&mut self) {
        self.0.push_null();
    }

    /// Appends bytes known to be UTF-8 (copied from a checked column), without checking again.
    #[inline]
    pub(crate) fn push_utf8_bytes(&mut self, value: &[u8]) {
        self.0.push_value(value);
    }

    /// Appends a value written in place, e.g. with `write!`, without a temporary `String`.
    /// What `f` appends to the buffer becomes the value; it must only append UTF-8 text.
    pub fn push_with(&mut self, f: impl FnOnce(&mut String)) {
        let mut s = String::from_utf8(std::mem::take(&mut self.0.data)).unwrap_or_default();
        f(&mut s);
        self.0.data = s.into_bytes();
        self.0.end_value();
        if let Some(v) = &mut self.0.validity {
            v.push(true);
        }
    }

    /// The number of values so far.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// The finished column.
    pub fn finish(self) -> ColumnData {
        let (v, validity) = self.0.finish();
        ColumnData { values: Values::Utf8(v), validity }.normalize()
    }
}

impl<S: AsRef<str>> FromIterator<Option<S>> for StrBuilder {
    fn from_iter<I: IntoIterator<Item = Option<S>>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut b = Self::with_capacity(iter.size_hint().0, 0);
        for v in iter {
            b.push(v.as_ref().map(AsRef::as_ref));
        }
        b
    }
}

impl From<StrBuilder> for ColumnData {
    fn from(b: StrBuilder) -> ColumnData {
        b.finish()
    }
}

/// Builds a `binary` column straight into one flat byte list and its offsets.
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryBuilder(VarLenBuilder);

impl Default for BinaryBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BinaryBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::with_capacity(0, 0)
    }

    /// An empty builder with room for `rows` values totalling `bytes` bytes.
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        BinaryBuilder(VarLenBuilder::with_capacity(rows, bytes))
    }

    /// Appends a value, or a null for `None`.
    #[inline]
    pub fn push(&mut self, value: Option<&[u8]>) {
        match value {
            Some(b) => self.0.push_value(b),
            None => self.0.push_null(),
        }
    }

    /// Appends a value.
    #[inline]
    pub fn push_value(&mut self, value: &[u8]) {
        self.0.push_value(value);
    }

    /// Appends a null.
    #[inline]
    pub fn push_null(&mut self) {
        self.0.push_null();
    }

    /// The number of values so far.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// The finished column.
    pub fn finish(self) -> ColumnData {
        let (v, validity) = self.0.finish();
        ColumnData { values: Values::Binary(v), validity }.normalize()
    }
}

impl<B: AsRef<[u8]>> FromIterator<Option<B>> for BinaryBuilder {
    fn from_iter<I: IntoIterator<Item = Option<B>>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut b = Self::with_capacity(iter.size_hint().0, 0);
        for v in iter {
            b.push(v.as_ref().map(AsRef::as_ref));
        }
        b
    }
}

impl From<BinaryBuilder> for ColumnData {
    fn from(b: BinaryBuilder) -> ColumnData {
        b.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_appears_only_with_a_null() {
        let no_nulls: F64Builder = [Some(1.0), Some(2.0)].into_iter().collect();
        assert_eq!(no_nulls.finish().validity, None);
        let mut b = I32Builder::with_capacity(3);
        b.push_value(1);
        b.push(None);
        b.push(Some(3));
        let c = b.finish();
        assert_eq!(c.values, Values::Int32(vec![1, 0, 3]));
        assert_eq!(c.validity, Some(vec![true, false, true]));
    }

    #[test]
    fn null_slots_are_zeroed() {
        let c = I32Builder::from_parts(vec![5, 6, 7], Some(vec![true, false, true])).finish();
        assert_eq!(c.values, Values::Int32(vec![5, 0, 7]));
    }

    #[test]
    fn all_true_validity_is_dropped() {
        let c = BoolBuilder::from_parts(vec![true, false], Some(vec![true, true])).finish();
        assert_eq!(c.validity, None);
    }

    #[test]
    fn strings_use_arrow_offsets() {
        let mut b: StrBuilder = [Some("ab"), None, Some("")].into_iter().collect();
        b.push_with(|s| s.push_str("xyz"));
        let c = b.finish();
        assert_eq!(c.values, Values::Utf8(VarLen { offsets: vec![0, 2, 2, 2, 5], data: b"abxyz".to_vec() }));
        assert_eq!(c.validity, Some(vec![true, false, true, true]));
        let bin: BinaryBuilder = [Some(&[1u8, 2][..]), Some(&[][..])].into_iter().collect();
        let c = bin.finish();
        assert_eq!(c.values, Values::Binary(VarLen { offsets: vec![0, 2, 2], data: vec![1, 2] }));
        assert_eq!(c.validity, None);
    }

    #[test]
    fn timestamps_are_their_own_type() {
        let c = I64Builder::from_values(vec![1, 2]).finish_timestamp();
        assert_eq!(c.values, Values::Timestamp(vec![1, 2]));
        assert_eq!(I64Builder::from_values(vec![1]).finish().values, Values::Int64(vec![1]));
    }
}
