//! The input batch of `map-batch`, lowered into the guest straight from Arrow's buffers: the
//! WIT `batch` type as borrowed Rust types, so fixed-width columns, string bytes and (zero-based)
//! offsets are copied once, into guest memory, instead of first into owned vectors. Only what
//! Arrow stores differently from the WIT layout is materialised: booleans (bit-packed in Arrow),
//! validity, and offsets of a sliced array (rebased to zero).

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use wasmtime::component::{ComponentType, Lower};

#[derive(ComponentType, Lower)]
#[component(record)]
pub struct VarLenRef<'a> {
    offsets: &'a [u32],
    data: &'a [u8],
}

#[derive(ComponentType, Lower)]
#[component(variant)]
pub enum ColumnValuesRef<'a> {
    #[component(name = "boolean")]
    Boolean(&'a [bool]),
    #[component(name = "int32")]
    Int32(&'a [i32]),
    #[component(name = "int64")]
    Int64(&'a [i64]),
    #[component(name = "float64")]
    Float64(&'a [f64]),
    #[component(name = "utf8")]
    Utf8(VarLenRef<'a>),
    #[component(name = "binary")]
    Binary(VarLenRef<'a>),
    #[component(name = "timestamp")]
    Timestamp(&'a [i64]),
}

#[derive(ComponentType, Lower)]
#[component(record)]
pub struct ColumnDataRef<'a> {
    values: ColumnValuesRef<'a>,
    validity: Option<&'a [bool]>,
}

#[derive(ComponentType, Lower)]
#[component(record)]
pub struct ColumnRef<'a> {
    name: &'a str,
    data: ColumnDataRef<'a>,
}

#[derive(ComponentType, Lower)]
#[component(record)]
pub struct BatchRef<'a> {
    #[component(name = "num-rows")]
    num_rows: u32,
    columns: Vec<ColumnRef<'a>>,
}

/// What a column needs besides Arrow's own buffers.
#[derive(Default)]
pub struct Owned {
    bools: Option<Vec<bool>>,
    offsets: Option<Vec<u32>>,
    validity: Option<Vec<bool>>,
}

/// First step: the owned parts, one per column (kept alive while the batch is lowered).
pub fn owned_parts(batch: &RecordBatch) -> Vec<Owned> {
    batch
        .columns()
        .iter()
        .map(|a| Owned {
            bools: (a.data_type() == &DataType::Boolean).then(|| a.as_boolean().values().iter().collect()),
            offsets: match a.data_type() {
                DataType::Utf8 => rebased(a.as_string::<i32>().value_offsets()),
                DataType::Binary => rebased(a.as_binary::<i32>().value_offsets()),
                _ => None,
            },
            validity: a.logical_nulls().filter(|n| n.null_count() > 0).map(|n| n.iter().collect()),
        })
        .collect()
}

/// Offsets that do not start at zero (a sliced array) are rebased; zero-based ones are borrowed.
fn rebased(offsets: &[i32]) -> Option<Vec<u32>> {
    let first = offsets[0];
    (first != 0).then(|| offsets.iter().map(|o| (o - first) as u32).collect())
}

/// Arrow's non-negative i32 offsets seen as the WIT's u32 offsets.
fn as_u32(offsets: &[i32]) -> &[u32] {
    // SAFETY: i32 and u32 have the same size and alignment, and Arrow guarantees offsets are
    // non-negative and increasing, so every value reads the same as u32.
    unsafe { std::slice::from_raw_parts(offsets.as_ptr().cast::<u32>(), offsets.len()) }
}

fn var_len<'a>(offsets: &'a [i32], data: &'a [u8], owned: &'a Owned) -> VarLenRef<'a> {
    let (start, end) = (offsets[0] as usize, offsets[offsets.len() - 1] as usize);
    VarLenRef { offsets: owned.offsets.as_deref().unwrap_or_else(|| as_u32(offsets)), data: &data[start..end] }
}

/// Second step: the batch as borrowed WIT values (schema already checked by `schema_to_wit`).
pub fn batch_ref<'a>(batch: &'a RecordBatch, owned: &'a [Owned]) -> BatchRef<'a> {
    let schema = batch.schema_ref();
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .zip(owned)
        .map(|((f, a), o)| {
            let values = match a.data_type() {
                DataType::Boolean => ColumnValuesRef::Boolean(o.bools.as_deref().expect("owned_parts made them")),
                DataType::Int32 => ColumnValuesRef::Int32(a.as_primitive::<Int32Type>().values()),
                DataType::Int64 => ColumnValuesRef::Int64(a.as_primitive::<Int64Type>().values()),
                DataType::Float64 => ColumnValuesRef::Float64(a.as_primitive::<Float64Type>().values()),
                DataType::Timestamp(TimeUnit::Microsecond, _) => {
                    ColumnValuesRef::Timestamp(a.as_primitive::<TimestampMicrosecondType>().values())
                }
                DataType::Utf8 => {
                    let s = a.as_string::<i32>();
                    ColumnValuesRef::Utf8(var_len(s.value_offsets(), s.value_data(), o))
                }
                DataType::Binary => {
                    let b = a.as_binary::<i32>();
                    ColumnValuesRef::Binary(var_len(b.value_offsets(), b.value_data(), o))
                }
                other => unreachable!("schema_to_wit refuses {other} before any batch is lowered"),
            };
            ColumnRef { name: f.name(), data: ColumnDataRef { values, validity: o.validity.as_deref() } }
        })
        .collect();
    BatchRef { num_rows: batch.num_rows() as u32, columns }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{BooleanArray, Int64Array, StringArray};

    use super::*;
    use crate::schema::parse_ddl;

    #[test]
    fn sliced_strings_are_rebased_validity_only_with_nulls_and_the_rest_borrowed() {
        let batch = RecordBatch::try_new(
            parse_ddl("id bigint NOT NULL, name string, ok boolean").unwrap(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("a"), None, Some("ccc")])),
                Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
            ],
        )
        .unwrap()
        .slice(1, 2);
        let owned = owned_parts(&batch);
        let b = batch_ref(&batch, &owned);
        assert_eq!(b.num_rows, 2);
        let ColumnValuesRef::Int64(ids) = &b.columns[0].data.values else { panic!() };
        assert_eq!(*ids, &[2, 3]);
        assert!(
            std::ptr::eq(ids.as_ptr(), batch.column(0).as_primitive::<Int64Type>().values().as_ptr()),
            "borrowed, not copied"
        );
        assert_eq!(b.columns[0].data.validity, None, "no validity list when nothing is null");
        let ColumnValuesRef::Utf8(v) = &b.columns[1].data.values else { panic!() };
        assert_eq!((v.offsets, v.data), (&[0u32, 0, 3][..], &b"ccc"[..]));
        assert_eq!(b.columns[1].data.validity, Some(&[false, true][..]));
        let ColumnValuesRef::Boolean(bools) = &b.columns[2].data.values else { panic!() };
        assert_eq!(*bools, &[false, false]);
        assert_eq!(b.columns[2].data.validity, Some(&[true, false][..]));
    }
}
