//! Aggregate functions: what each keeps per group (its accumulator), how input rows update it,
//! how two accumulators merge (state + this batch, or two sessions), how it is stored in state,
//! and the output column. Types follow Spark: `count` is bigint and never null, `sum` of
//! integers is bigint and of doubles double, `avg` is double, `min`/`max`/`first`/`last` keep
//! the input type; `sum`, `avg`, `min`, `max` ignore nulls and are null for a group with none.

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryBuilder, BooleanArray, BooleanBuilder, Float64Array, Float64Builder,
    Int32Array, Int32Builder, Int64Array, Int64Builder, StringArray, StringBuilder, TimestampMicrosecondArray,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema, TimeUnit, TimestampMicrosecondType};

use super::hll::{hash_bytes, hash_u64, Hll};
pub use crate::config::{AggFn, FUNCTION_NAMES};
use crate::schema::{find_column, type_name};

/// An aggregate bound to the input schema: which column it reads and what it outputs.
#[derive(Debug, Clone)]
pub struct BoundAggregate {
    pub func: AggFn,
    /// The input column (none for `count(*)`).
    pub column: Option<usize>,
    pub name: String,
    pub output: DataType,
}

fn is_orderable(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Boolean
            | DataType::Int32
            | DataType::Int64
            | DataType::Float64
            | DataType::Utf8
            | DataType::Binary
            | DataType::Timestamp(TimeUnit::Microsecond, _)
    )
}

impl BoundAggregate {
    /// Checks `func(column)` against `schema`; the error says what is wrong with the column.
    pub fn bind(func: AggFn, column: Option<&str>, name: &str, schema: &Schema) -> Result<BoundAggregate, String> {
        let Some(column) = column else {
            if func == AggFn::Count {
                return Ok(BoundAggregate { func, column: None, name: name.into(), output: DataType::Int64 });
            }
            return Err(format!("`{}` needs a column: add column = \"...\"", func.name()));
        };
        let (index, field) = find_column(schema, column, "the input")?;
        let t = field.data_type();
        let bad = |what: &str| format!("`{}` needs {what}, but column `{column}` is {}", func.name(), type_name(t));
        let output = match func {
            AggFn::Count | AggFn::ApproxCountDistinct => DataType::Int64,
            AggFn::Sum => match t {
                DataType::Int32 | DataType::Int64 => DataType::Int64,
                DataType::Float64 => DataType::Float64,
                _ => return Err(bad("a numeric column (int, bigint, double)")),
            },
            AggFn::Avg => match t {
                DataType::Int32 | DataType::Int64 | DataType::Float64 => DataType::Float64,
                _ => return Err(bad("a numeric column (int, bigint, double)")),
            },
            AggFn::Min | AggFn::Max | AggFn::First | AggFn::Last => {
                if !is_orderable(t) {
                    return Err(bad("a boolean, int, bigint, double, string, binary or timestamp column"));
                }
                t.clone()
            }
        };
        Ok(BoundAggregate { func, column: Some(index), name: name.into(), output })
    }

    pub fn field(&self) -> Field {
        // count and approx_count_distinct are never null; the others are null for a group
        // without a non-null value (first/last: when the first/last value was null).
        let nullable = !matches!(self.func, AggFn::Count | AggFn::ApproxCountDistinct);
        Field::new(&self.name, self.output.clone(), nullable)
    }

    /// The accumulator of a group that has seen no row yet.
    pub fn empty(&self) -> Acc {
        match self.func {
            AggFn::Count => Acc::Count(0),
            AggFn::Sum if self.output == DataType::Int64 => Acc::SumInt(None),
            AggFn::Sum => Acc::SumFloat(None),
            AggFn::Avg => Acc::Avg { sum: 0.0, count: 0 },
            AggFn::Min => Acc::Min(None),
            AggFn::Max => Acc::Max(None),
            AggFn::First => Acc::First(None),
            AggFn::Last => Acc::Last(None),
            AggFn::ApproxCountDistinct => Acc::Distinct(Hll::default()),
        }
    }
}

/// One value of a column, for min/max/first/last.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Bytes(Box<[u8]>),
}

impl Scalar {
    /// Spark's ordering within one type: NaN above every other double.
    fn compare(&self, other: &Scalar) -> Ordering {
        match (self, other) {
            (Scalar::Bool(a), Scalar::Bool(b)) => a.cmp(b),
            (Scalar::Int(a), Scalar::Int(b)) => a.cmp(b),
            (Scalar::Float(a), Scalar::Float(b)) => match (a.is_nan(), b.is_nan()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                _ => a.partial_cmp(b).expect("not NaN"),
            },
            (Scalar::Bytes(a), Scalar::Bytes(b)) => a.cmp(b),
            _ => Ordering::Equal,
        }
    }
}

/// A column of the input, typed once per batch.
pub enum Column<'a> {
    Bool(&'a BooleanArray),
    Int32(&'a Int32Array),
    Int64(&'a Int64Array),
    Timestamp(&'a TimestampMicrosecondArray),
    Float(&'a Float64Array),
    Utf8(&'a StringArray),
    Binary(&'a BinaryArray),
}

impl<'a> Column<'a> {
    pub fn new(array: &'a ArrayRef) -> Column<'a> {
        match array.data_type() {
            DataType::Boolean => Column::Bool(array.as_boolean()),
            DataType::Int32 => Column::Int32(array.as_primitive::<Int32Type>()),
            DataType::Int64 => Column::Int64(array.as_primitive::<Int64Type>()),
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                Column::Timestamp(array.as_primitive::<TimestampMicrosecondType>())
            }
            DataType::Float64 => Column::Float(array.as_primitive()),
            DataType::Utf8 => Column::Utf8(array.as_string::<i32>()),
            DataType::Binary => Column::Binary(array.as_binary::<i32>()),
            other => unreachable!("aggregate columns are checked when the operator is built, got {other}"),
        }
    }

    fn array(&self) -> &dyn Array {
        match self {
            Column::Bool(a) => *a,
            Column::Int32(a) => *a,
            Column::Int64(a) => *a,
            Column::Timestamp(a) => *a,
            Column::Float(a) => *a,
            Column::Utf8(a) => *a,
            Column::Binary(a) => *a,
        }
    }

    #[inline]
    pub fn is_valid(&self, r: usize) -> bool {
        self.array().is_valid(r)
    }

    #[inline]
    fn int(&self, r: usize) -> i64 {
        match self {
            Column::Int32(a) => a.value(r) as i64,
            Column::Int64(a) => a.value(r),
            Column::Timestamp(a) => a.value(r),
            Column::Bool(a) => a.value(r) as i64,
            _ => unreachable!("checked at bind"),
        }
    }

    #[inline]
    fn float(&self, r: usize) -> f64 {
        match self {
            Column::Float(a) => a.value(r),
            _ => self.int(r) as f64,
        }
    }

    fn scalar(&self, r: usize) -> Scalar {
        if !self.is_valid(r) {
            return Scalar::Null;
        }
        match self {
            Column::Bool(a) => Scalar::Bool(a.value(r)),
            Column::Float(a) => Scalar::Float(a.value(r)),
            Column::Utf8(a) => Scalar::Bytes(a.value(r).as_bytes().into()),
            Column::Binary(a) => Scalar::Bytes(a.value(r).into()),
            _ => Scalar::Int(self.int(r)),
        }
    }

    fn hash(&self, r: usize) -> u64 {
        match self {
            Column::Float(a) => {
                let v = a.value(r);
                // -0.0 and 0.0 are one value, as are all NaNs (Spark normalises them too).
                let v = if v == 0.0 {
                    0.0
                } else if v.is_nan() {
                    f64::NAN
                } else {
                    v
                };
                hash_u64(v.to_bits())
            }
            Column::Utf8(a) => hash_bytes(a.value(r).as_bytes()),
            Column::Binary(a) => hash_bytes(a.value(r)),
            _ => hash_u64(self.int(r) as u64),
        }
    }
}

/// What one aggregate keeps for one group.
#[derive(Debug, Clone, PartialEq)]
pub enum Acc {
    Count(i64),
    SumInt(Option<i64>),
    SumFloat(Option<f64>),
    Avg {
        sum: f64,
        count: i64,
    },
    Min(Option<Scalar>),
    Max(Option<Scalar>),
    /// The first value seen (which may be null); `None` before any row.
    First(Option<Scalar>),
    Last(Option<Scalar>),
    Distinct(Hll),
}

/// A sum of integers that left the bigint range: Spark (ANSI mode) fails the query too.
#[derive(Debug, thiserror::Error)]
#[error("`sum` overflowed the bigint range")]
pub struct Overflow;

/// Adds row `r` of `col` (none for `count(*)`) to `acc`.
#[inline]
pub fn update(acc: &mut Acc, col: Option<&Column>, r: usize) -> Result<(), Overflow> {
    let Some(col) = col else {
        if let Acc::Count(n) = acc {
            *n += 1;
        }
        return Ok(());
    };
    match acc {
        Acc::First(v) => {
            if v.is_none() {
                *v = Some(col.scalar(r));
            }
            return Ok(());
        }
        Acc::Last(v) => {
            *v = Some(col.scalar(r));
            return Ok(());
        }
        _ => {}
    }
    if !col.is_valid(r) {
        return Ok(());
    }
    match acc {
        Acc::Count(n) => *n += 1,
        Acc::SumInt(s) => *s = Some(s.unwrap_or(0).checked_add(col.int(r)).ok_or(Overflow)?),
        Acc::SumFloat(s) => *s = Some(s.unwrap_or(0.0) + col.float(r)),
        Acc::Avg { sum, count } => {
            *sum += col.float(r);
            *count += 1;
        }
        Acc::Min(m) => {
            let v = col.scalar(r);
            if m.as_ref().is_none_or(|m| v.compare(m) == Ordering::Less) {
                *m = Some(v);
            }
        }
        Acc::Max(m) => {
            let v = col.scalar(r);
            if m.as_ref().is_none_or(|m| v.compare(m) == Ordering::Greater) {
                *m = Some(v);
            }
        }
        Acc::Distinct(h) => h.insert_hash(col.hash(r)),
        Acc::First(_) | Acc::Last(_) => unreachable!("handled above"),
    }
    Ok(())
}

/// Merges `later` (rows that arrived after those in `acc`) into `acc`.
pub fn merge(acc: &mut Acc, later: &Acc) -> Result<(), Overflow> {
    match (acc, later) {
        (Acc::Count(a), Acc::Count(b)) => *a += b,
        (Acc::SumInt(a), Acc::SumInt(b)) => {
            if let Some(b) = b {
                *a = Some(a.unwrap_or(0).checked_add(*b).ok_or(Overflow)?);
            }
        }
        (Acc::SumFloat(a), Acc::SumFloat(b)) => {
            if let Some(b) = b {
                *a = Some(a.unwrap_or(0.0) + b);
            }
        }
        (Acc::Avg { sum, count }, Acc::Avg { sum: s, count: c }) => {
            *sum += s;
            *count += c;
        }
        (Acc::Min(a), Acc::Min(Some(b))) => {
            if a.as_ref().is_none_or(|a| b.compare(a) == Ordering::Less) {
                *a = Some(b.clone());
            }
        }
        (Acc::Max(a), Acc::Max(Some(b))) => {
            if a.as_ref().is_none_or(|a| b.compare(a) == Ordering::Greater) {
                *a = Some(b.clone());
            }
        }
        (Acc::First(a), Acc::First(b)) => {
            if a.is_none() {
                *a = b.clone();
            }
        }
        (Acc::Last(a), Acc::Last(b)) => {
            if b.is_some() {
                *a = b.clone();
            }
        }
        (Acc::Distinct(a), Acc::Distinct(b)) => a.merge(b),
        (Acc::Min(_), Acc::Min(None)) | (Acc::Max(_), Acc::Max(None)) => {}
        (a, b) => unreachable!("merging accumulators of different aggregates: {a:?} and {b:?}"),
    }
    Ok(())
}

// State encoding: per accumulator a tag byte, then its payload (little-endian numbers).

fn put_scalar(out: &mut Vec<u8>, s: &Option<Scalar>) {
    match s {
        None => out.push(0),
        Some(Scalar::Null) => out.push(1),
        Some(Scalar::Bool(b)) => out.extend([2, *b as u8]),
        Some(Scalar::Int(v)) => {
            out.push(3);
            out.extend(v.to_le_bytes());
        }
        Some(Scalar::Float(v)) => {
            out.push(4);
            out.extend(v.to_le_bytes());
        }
        Some(Scalar::Bytes(b)) => {
            out.push(5);
            out.extend((b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
    }
}

pub fn encode(accs: &[Acc], out: &mut Vec<u8>) {
    for acc in accs {
        match acc {
            Acc::Count(n) => {
                out.push(1);
                out.extend(n.to_le_bytes());
            }
            Acc::SumInt(s) => {
                out.push(2);
                out.push(s.is_some() as u8);
                out.extend(s.unwrap_or(0).to_le_bytes());
            }
            Acc::SumFloat(s) => {
                out.push(3);
                out.push(s.is_some() as u8);
                out.extend(s.unwrap_or(0.0).to_le_bytes());
            }
            Acc::Avg { sum, count } => {
                out.push(4);
                out.extend(sum.to_le_bytes());
                out.extend(count.to_le_bytes());
            }
            Acc::Min(s) => {
                out.push(5);
                put_scalar(out, s);
            }
            Acc::Max(s) => {
                out.push(6);
                put_scalar(out, s);
            }
            Acc::First(s) => {
                out.push(7);
                put_scalar(out, s);
            }
            Acc::Last(s) => {
                out.push(8);
                put_scalar(out, s);
            }
            Acc::Distinct(h) => {
                out.push(9);
                out.extend_from_slice(h.as_bytes());
            }
        }
    }
}

/// Reads accumulators written by [`encode`]; `None` when the bytes are damaged.
pub struct Decoder<'a> {
    bytes: &'a [u8],
}

impl<'a> Decoder<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Decoder { bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    pub fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn f64(&mut self) -> Option<f64> {
        Some(f64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn scalar(&mut self) -> Option<Option<Scalar>> {
        Some(match self.byte()? {
            0 => None,
            1 => Some(Scalar::Null),
            2 => Some(Scalar::Bool(self.byte()? != 0)),
            3 => Some(Scalar::Int(self.i64()?)),
            4 => Some(Scalar::Float(self.f64()?)),
            5 => {
                let n = self.u32()? as usize;
                Some(Scalar::Bytes(self.take(n)?.into()))
            }
            _ => return None,
        })
    }

    pub fn accs(&mut self, n: usize) -> Option<Vec<Acc>> {
        (0..n)
            .map(|_| {
                Some(match self.byte()? {
                    1 => Acc::Count(self.i64()?),
                    2 => {
                        let some = self.byte()? != 0;
                        let v = self.i64()?;
                        Acc::SumInt(some.then_some(v))
                    }
                    3 => {
                        let some = self.byte()? != 0;
                        let v = self.f64()?;
                        Acc::SumFloat(some.then_some(v))
                    }
                    4 => Acc::Avg { sum: self.f64()?, count: self.i64()? },
                    5 => Acc::Min(self.scalar()?),
                    6 => Acc::Max(self.scalar()?),
                    7 => Acc::First(self.scalar()?),
                    8 => Acc::Last(self.scalar()?),
                    9 => Acc::Distinct(Hll::from_bytes(self.take(super::hll::REGISTERS)?)?),
                    _ => return None,
                })
            })
            .collect()
    }
}

/// The output column of aggregate `a` over `groups` (each a slice of every aggregate's
/// accumulator, in the operator's order).
pub fn output_column<'g>(agg: &BoundAggregate, a: usize, groups: impl ExactSizeIterator<Item = &'g [Acc]>) -> ArrayRef {
    let n = groups.len();
    let scalar = |acc: &Acc| -> Option<Scalar> {
        match acc {
            Acc::Min(s) | Acc::Max(s) | Acc::First(s) | Acc::Last(s) => s.clone().filter(|s| *s != Scalar::Null),
            _ => unreachable!(),
        }
    };
    match (&agg.func, &agg.output) {
        (AggFn::Count, _) | (AggFn::ApproxCountDistinct, _) => {
            let mut b = Int64Builder::with_capacity(n);
            for g in groups {
                b.append_value(match &g[a] {
                    Acc::Count(c) => *c,
                    Acc::Distinct(h) => h.estimate(),
                    _ => unreachable!(),
                });
            }
            Arc::new(b.finish())
        }
        (AggFn::Sum, DataType::Int64) => {
            let mut b = Int64Builder::with_capacity(n);
            for g in groups {
                let Acc::SumInt(s) = &g[a] else { unreachable!() };
                b.append_option(*s);
            }
            Arc::new(b.finish())
        }
        (AggFn::Sum, _) => {
            let mut b = Float64Builder::with_capacity(n);
            for g in groups {
                let Acc::SumFloat(s) = &g[a] else { unreachable!() };
                b.append_option(*s);
            }
            Arc::new(b.finish())
        }
        (AggFn::Avg, _) => {
            let mut b = Float64Builder::with_capacity(n);
            for g in groups {
                let Acc::Avg { sum, count } = &g[a] else { unreachable!() };
                b.append_option((*count > 0).then(|| sum / *count as f64));
            }
            Arc::new(b.finish())
        }
        (_, t) => {
            let values: Vec<Option<Scalar>> = groups.map(|g| scalar(&g[a])).collect();
            scalar_array(t, &values)
        }
    }
}

fn scalar_array(t: &DataType, values: &[Option<Scalar>]) -> ArrayRef {
    let int = |v: &Option<Scalar>| match v {
        Some(Scalar::Int(i)) => Some(*i),
        _ => None,
    };
    let bytes = |v: &Option<Scalar>| match v {
        Some(Scalar::Bytes(b)) => Some(b.clone()),
        _ => None,
    };
    match t {
        DataType::Boolean => {
            let mut b = BooleanBuilder::with_capacity(values.len());
            for v in values {
                b.append_option(match v {
                    Some(Scalar::Bool(x)) => Some(*x),
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
        DataType::Int32 => {
            let mut b = Int32Builder::with_capacity(values.len());
            values.iter().for_each(|v| b.append_option(int(v).map(|i| i as i32)));
            Arc::new(b.finish())
        }
        DataType::Int64 => {
            let mut b = Int64Builder::with_capacity(values.len());
            values.iter().for_each(|v| b.append_option(int(v)));
            Arc::new(b.finish())
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(values.len());
            values.iter().for_each(|v| b.append_option(int(v)));
            Arc::new(b.finish().with_timezone_opt(tz.clone()))
        }
        DataType::Float64 => {
            let mut b = Float64Builder::with_capacity(values.len());
            for v in values {
                b.append_option(match v {
                    Some(Scalar::Float(x)) => Some(*x),
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
        DataType::Utf8 => {
            let mut b = StringBuilder::new();
            for v in values {
                b.append_option(bytes(v).map(|s| String::from_utf8_lossy(&s).into_owned()));
            }
            Arc::new(b.finish())
        }
        DataType::Binary => {
            let mut b = BinaryBuilder::new();
            values.iter().for_each(|v| b.append_option(bytes(v)));
            Arc::new(b.finish())
        }
        other => unreachable!("aggregate output types are checked at bind, got {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::parse_ddl;

    #[test]
    fn binding_checks_types_and_columns() {
        let s = parse_ddl("name string, n int, x double, at timestamp, b binary").unwrap();
        let e = |f, c| BoundAggregate::bind(f, c, "out", &s).unwrap_err();
        assert_eq!(
            e(AggFn::Sum, Some("name")),
            "`sum` needs a numeric column (int, bigint, double), but column `name` is string"
        );
        assert_eq!(e(AggFn::Avg, None), "`avg` needs a column: add column = \"...\"");
        assert_eq!(
            e(AggFn::Max, Some("nope")),
            "column `nope` is not in the input (its columns are: name, n, x, at, b)"
        );
        let ok = |f, c| BoundAggregate::bind(f, c, "out", &s).unwrap().output;
        assert_eq!(ok(AggFn::Sum, Some("n")), DataType::Int64);
        assert_eq!(ok(AggFn::Avg, Some("n")), DataType::Float64);
        assert_eq!(ok(AggFn::Max, Some("at")), s.field(3).data_type().clone());
        assert_eq!(ok(AggFn::Count, None), DataType::Int64);
    }

    #[test]
    fn accumulators_update_merge_and_survive_encoding() {
        let s = parse_ddl("name string, x double").unwrap();
        let names: ArrayRef = Arc::new(StringArray::from(vec![Some("b"), None, Some("a"), Some("c")]));
        let xs: ArrayRef = Arc::new(Float64Array::from(vec![Some(2.0), Some(f64::NAN), None, Some(-1.0)]));
        let aggs: Vec<BoundAggregate> = [
            (AggFn::Count, None),
            (AggFn::Count, Some("name")),
            (AggFn::Sum, Some("x")),
            (AggFn::Max, Some("x")),
            (AggFn::Min, Some("name")),
            (AggFn::First, Some("x")),
            (AggFn::Last, Some("name")),
            (AggFn::Avg, Some("x")),
        ]
        .iter()
        .map(|(f, c)| BoundAggregate::bind(*f, *c, "o", &s).unwrap())
        .collect();
        let cols = [Column::new(&names), Column::new(&xs)];
        let mut accs: Vec<Acc> = aggs.iter().map(BoundAggregate::empty).collect();
        for r in 0..4 {
            for (acc, agg) in accs.iter_mut().zip(&aggs) {
                update(acc, agg.column.map(|c| &cols[c]), r).unwrap();
            }
        }
        assert_eq!(accs[0], Acc::Count(4));
        assert_eq!(accs[1], Acc::Count(3), "count(col) skips nulls");
        assert!(matches!(accs[2], Acc::SumFloat(Some(s)) if s.is_nan()));
        assert!(matches!(accs[3], Acc::Max(Some(Scalar::Float(m))) if m.is_nan()), "NaN is the largest double");
        assert_eq!(accs[4], Acc::Min(Some(Scalar::Bytes(b"a"[..].into()))));
        assert_eq!(accs[5], Acc::First(Some(Scalar::Float(2.0))));
        assert_eq!(accs[6], Acc::Last(Some(Scalar::Bytes(b"c"[..].into()))));
        let mut bytes = Vec::new();
        encode(&accs, &mut bytes);
        let back = Decoder::new(&bytes).accs(accs.len()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{accs:?}"));
        // Merging a later accumulator: counts add, first stays, last moves.
        let mut later: Vec<Acc> = aggs.iter().map(BoundAggregate::empty).collect();
        update(&mut later[6], Some(&cols[0]), 1).unwrap();
        update(&mut later[0], None, 0).unwrap();
        for (a, b) in accs.iter_mut().zip(&later) {
            merge(a, b).unwrap();
        }
        assert_eq!(accs[0], Acc::Count(5));
        assert_eq!(accs[6], Acc::Last(Some(Scalar::Null)), "last keeps a null when it came last (Spark's default)");
    }

    #[test]
    fn integer_sums_that_overflow_are_an_error() {
        let s = parse_ddl("n bigint").unwrap();
        let col: ArrayRef = Arc::new(Int64Array::from(vec![i64::MAX, 1]));
        let agg = BoundAggregate::bind(AggFn::Sum, Some("n"), "o", &s).unwrap();
        let mut acc = agg.empty();
        let c = Column::new(&col);
        update(&mut acc, Some(&c), 0).unwrap();
        assert!(update(&mut acc, Some(&c), 1).is_err());
    }
}
