//! Join keys: which columns they are on each side, the type they are compared as, and their
//! encoding as bytes (Arrow's row format) so that a hash map can match them.
//!
//! Spark compares the keys of an equi-join after casting both sides to a common type. weir
//! requires the same type on both sides, with one widening: `int` against `bigint` is compared as
//! `bigint` (the case that comes up when a JSON/CSV schema and a Parquet file disagree). Any other
//! pair of types is refused before the job starts, naming both columns.
//!
//! As in Spark, a row whose key has a null in any column matches nothing, and floating-point keys
//! are normalized first (`-0.0` equals `0.0`, every NaN equals every NaN), as Spark's
//! `NormalizeFloatingNumbers` does for join keys.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::buffer::NullBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, Rows, SortField};

use super::spec::{JoinKeys, Side};
use crate::schema::{find_column, type_name};

/// The key columns of both sides, resolved against their schemas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedKeys {
    /// Column indices of the keys in the left input, in key order.
    pub left: Vec<usize>,
    /// Column indices of the keys in the right input, in key order.
    pub right: Vec<usize>,
    /// The type each key is compared as (both sides are cast to it before encoding).
    pub types: Vec<DataType>,
}

impl ResolvedKeys {
    /// The key column indices of one side.
    pub fn indices(&self, side: Side) -> &[usize] {
        match side {
            Side::Left => &self.left,
            Side::Right => &self.right,
        }
    }
}

/// The type two key columns are compared as: their common type, if weir compares them at all.
pub fn common_key_type(left: &DataType, right: &DataType) -> Option<DataType> {
    match (left, right) {
        (l, r) if l == r => Some(l.clone()),
        (DataType::Int32, DataType::Int64) | (DataType::Int64, DataType::Int32) => Some(DataType::Int64),
        _ => None,
    }
}

/// Finds the key columns on both sides and their comparison types. Refuses an empty key list, a
/// `USING` name listed twice, a missing column (listing the side's columns) and key types that
/// differ (other than `int` vs `bigint`). Names match exactly, as everywhere in weir (Spark
/// resolves them case-insensitively unless `spark.sql.caseSensitive` is set).
pub fn resolve_keys(left: &Schema, right: &Schema, keys: &JoinKeys) -> Result<ResolvedKeys, String> {
    if keys.is_empty() {
        return Err("a join needs at least one key: set `on`, e.g. on = [\"user_id\"] or \
                    on = [{ left = \"uid\", right = \"id\" }]"
            .to_string());
    }
    if let JoinKeys::Using(names) = keys {
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(format!("join key `{name}` is listed twice in `on`; list each key once"));
            }
        }
    }
    let mut resolved = ResolvedKeys { left: Vec::new(), right: Vec::new(), types: Vec::new() };
    for (l, r) in keys.names(Side::Left).into_iter().zip(keys.names(Side::Right)) {
        let (li, lf) = find_column(left, l, "the join's left input").map_err(|e| format!("join key {e}"))?;
        let (ri, rf) = find_column(right, r, "the join's right input").map_err(|e| format!("join key {e}"))?;
        let t = common_key_type(lf.data_type(), rf.data_type()).ok_or_else(|| {
            format!(
                "join key types differ: left column `{l}` is {} but right column `{r}` is {}; weir compares \
                 keys of the same type only (int and bigint are compared as bigint): declare both columns \
                 with the same type in their sources' schemas",
                type_name(lf.data_type()),
                type_name(rf.data_type())
            )
        })?;
        resolved.left.push(li);
        resolved.right.push(ri);
        resolved.types.push(t);
    }
    Ok(resolved)
}

/// Encodes key columns as comparable bytes. One encoder serves both sides of a join, so that the
/// bytes of equal keys are equal (Arrow only promises that for rows of one `RowConverter`).
#[derive(Debug)]
pub struct KeyEncoder {
    types: Vec<DataType>,
    converter: RowConverter,
}

impl KeyEncoder {
    /// An encoder for keys compared as `types` (from [`ResolvedKeys::types`]).
    pub fn new(types: Vec<DataType>) -> Result<KeyEncoder, ArrowError> {
        let converter = RowConverter::new(types.iter().cloned().map(SortField::new).collect())?;
        Ok(KeyEncoder { types, converter })
    }

    /// The types the keys are compared as.
    pub fn types(&self) -> &[DataType] {
        &self.types
    }

    /// The keys of every row of `batch`, read from the columns `indices` (in key order): `int`
    /// columns are widened to `bigint` where the key is compared as `bigint`, floats normalized.
    pub fn encode(&self, batch: &RecordBatch, indices: &[usize]) -> Result<EncodedKeys, ArrowError> {
        if indices.len() != self.types.len() {
            return Err(ArrowError::InvalidArgumentError(format!(
                "{} key columns given for {} join keys (a bug in the join's planning)",
                indices.len(),
                self.types.len()
            )));
        }
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(indices.len());
        for (&i, t) in indices.iter().zip(&self.types) {
            let column = batch.columns().get(i).ok_or_else(|| {
                ArrowError::InvalidArgumentError(format!(
                    "key column {i} is not in a batch of {} columns (a bug in the join's planning)",
                    batch.num_columns()
                ))
            })?;
            let column = match (column.data_type(), t) {
                (c, t) if c == t => column.clone(),
                (DataType::Int32, DataType::Int64) => cast(column, t)?,
                (c, t) => {
                    return Err(ArrowError::InvalidArgumentError(format!(
                        "key column `{}` is {} but the join compares it as {} (a bug in the join's planning)",
                        batch.schema().field(i).name(),
                        type_name(c),
                        type_name(t)
                    )))
                }
            };
            columns.push(normalize_floats(column));
        }
        let nulls = columns.iter().fold(None, |acc: Option<NullBuffer>, c| NullBuffer::union(acc.as_ref(), c.nulls()));
        let rows = self.converter.convert_columns(&columns)?;
        Ok(EncodedKeys { rows, nulls, len: batch.num_rows() })
    }
}

/// `-0.0` as `0.0` and every NaN as one NaN, so that equal keys in SQL have equal bytes (weir's
/// only floating type is `double`: parquet floats are read as doubles).
fn normalize_floats(column: ArrayRef) -> ArrayRef {
    match column.data_type() {
        DataType::Float64 => Arc::new(column.as_primitive::<Float64Type>().unary::<_, Float64Type>(|v| {
            if v.is_nan() {
                f64::NAN
            } else if v == 0.0 {
                0.0
            } else {
                v
            }
        })),
        _ => column,
    }
}

/// The encoded keys of one batch.
#[derive(Debug)]
pub struct EncodedKeys {
    rows: Rows,
    /// Null where any key column is null.
    nulls: Option<NullBuffer>,
    len: usize,
}

impl EncodedKeys {
    /// The key bytes of row `row`, or `None` when any of its key columns is null (such a row
    /// matches nothing).
    pub fn get(&self, row: usize) -> Option<&[u8]> {
        if self.nulls.as_ref().is_some_and(|n| n.is_null(row)) {
            None
        } else {
            Some(self.rows.row(row).data())
        }
    }

    /// The key bytes of row `row`, nulls included: a null encodes as itself, so keys with nulls
    /// in the same columns and equal other columns have equal bytes (Spark's `UnsafeRow`
    /// equality, which a stream-stream full outer join matches keys by; added for
    /// `stream_stream`).
    pub fn bytes(&self, row: usize) -> &[u8] {
        self.rows.row(row).data()
    }

    /// Number of rows encoded.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Float64Array, Int32Array, Int64Array, StringArray};
    use arrow::datatypes::Field;

    use super::super::spec::KeyPair;
    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let fields: Vec<Field> = columns.iter().map(|(n, c)| Field::new(*n, c.data_type().clone(), true)).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns.into_iter().map(|(_, c)| c).collect()).unwrap()
    }

    fn owned(keys: &EncodedKeys) -> Vec<Option<Vec<u8>>> {
        (0..keys.len()).map(|i| keys.get(i).map(<[u8]>::to_vec)).collect()
    }

    #[test]
    fn int_and_bigint_keys_compare_as_bigint() {
        let left = batch(vec![("k", Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])))]);
        let right = batch(vec![("k", Arc::new(Int64Array::from(vec![3, 1, 4_000_000_000])))]);
        let resolved = resolve_keys(&left.schema(), &right.schema(), &JoinKeys::Using(vec!["k".into()])).unwrap();
        assert_eq!(resolved.types, vec![DataType::Int64]);
        let enc = KeyEncoder::new(resolved.types.clone()).unwrap();
        let l = owned(&enc.encode(&left, &resolved.left).unwrap());
        let r = owned(&enc.encode(&right, &resolved.right).unwrap());
        assert_eq!(l[1], None);
        assert_eq!(l[0], r[1]);
        assert_eq!(l[2], r[0]);
        assert_ne!(l[0], l[2]);
        assert!(!l.contains(&r[2]));
    }

    #[test]
    fn a_null_in_any_key_column_gives_no_key() {
        let b = batch(vec![
            ("a", Arc::new(StringArray::from(vec![Some("x"), Some("x"), None]))),
            ("b", Arc::new(Int64Array::from(vec![Some(1), None, Some(1)]))),
        ]);
        let enc = KeyEncoder::new(vec![DataType::Utf8, DataType::Int64]).unwrap();
        let keys = enc.encode(&b, &[0, 1]).unwrap();
        assert!(keys.get(0).is_some());
        assert_eq!(keys.get(1), None);
        assert_eq!(keys.get(2), None);
    }

    #[test]
    fn multi_column_keys_are_equal_only_when_every_column_is() {
        let b = batch(vec![
            ("a", Arc::new(StringArray::from(vec!["x", "x", "xy", "x"]))),
            ("b", Arc::new(StringArray::from(vec!["yz", "y", "z", "yz"]))),
        ]);
        let enc = KeyEncoder::new(vec![DataType::Utf8, DataType::Utf8]).unwrap();
        let k = owned(&enc.encode(&b, &[0, 1]).unwrap());
        assert_eq!(k[0], k[3]);
        assert_ne!(k[0], k[1]);
        assert_ne!(k[0], k[2], "(x, yz) and (xy, z) must differ");
    }

    #[test]
    fn negative_zero_and_nans_are_normalized() {
        let b = batch(vec![(
            "f",
            Arc::new(Float64Array::from(vec![0.0, -0.0, f64::NAN, f64::from_bits(0x7ff8_0000_0000_0001), 1.0])),
        )]);
        let enc = KeyEncoder::new(vec![DataType::Float64]).unwrap();
        let k = owned(&enc.encode(&b, &[0]).unwrap());
        assert_eq!(k[0], k[1]);
        assert_eq!(k[2], k[3]);
        assert_ne!(k[0], k[4]);
        assert_ne!(k[0], k[2]);
    }

    #[test]
    fn mismatched_key_types_are_refused_naming_both_columns() {
        let left = Schema::new(vec![Field::new("uid", DataType::Utf8, true)]);
        let right = Schema::new(vec![Field::new("id", DataType::Int32, true)]);
        let keys = JoinKeys::Pairs(vec![KeyPair { left: "uid".into(), right: "id".into() }]);
        assert_eq!(
            resolve_keys(&left, &right, &keys).unwrap_err(),
            "join key types differ: left column `uid` is string but right column `id` is int; weir compares \
             keys of the same type only (int and bigint are compared as bigint): declare both columns with \
             the same type in their sources' schemas"
        );
    }

    #[test]
    fn missing_empty_and_repeated_keys_are_refused() {
        let left = Schema::new(vec![Field::new("k", DataType::Utf8, true), Field::new("v", DataType::Utf8, true)]);
        let right = Schema::new(vec![Field::new("k", DataType::Utf8, true)]);
        assert_eq!(
            resolve_keys(&left, &right, &JoinKeys::Using(vec!["v".into()])).unwrap_err(),
            "join key column `v` is not in the join's right input (its columns are: k)"
        );
        assert!(resolve_keys(&left, &right, &JoinKeys::Using(vec![])).unwrap_err().starts_with("a join needs"));
        assert_eq!(
            resolve_keys(&left, &right, &JoinKeys::Using(vec!["k".into(), "k".into()])).unwrap_err(),
            "join key `k` is listed twice in `on`; list each key once"
        );
    }

    #[test]
    fn pair_keys_resolve_to_each_sides_columns() {
        let left = Schema::new(vec![Field::new("x", DataType::Utf8, true), Field::new("uid", DataType::Int64, true)]);
        let right = Schema::new(vec![Field::new("id", DataType::Int32, false)]);
        let keys = JoinKeys::Pairs(vec![KeyPair { left: "uid".into(), right: "id".into() }]);
        let r = resolve_keys(&left, &right, &keys).unwrap();
        assert_eq!((r.left, r.right, r.types), (vec![1], vec![0], vec![DataType::Int64]));
    }
}
