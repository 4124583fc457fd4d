//! WIT → Arrow: schemas both ways, and a plugin's output batch into Arrow arrays (the input
//! direction is `input.rs`). Output columns that the plugin passes through by index never
//! cross back: they are taken from the input batch.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray,
    TimestampMicrosecondArray, UInt32Array,
};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType as ArrowType, Field as ArrowField, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::mapper::wit::{Batch, ColumnData, ColumnValues, DataType, Field, OutputBatch, OutputData, VarLen};
use crate::schema::{timestamp_type, type_name};

/// The WIT schema of an Arrow schema; an error names a column whose type plugins cannot receive.
pub fn schema_to_wit(schema: &Schema) -> Result<Vec<Field>, String> {
    schema
        .fields()
        .iter()
        .map(|f| {
            let data_type = match f.data_type() {
                ArrowType::Boolean => DataType::Boolean,
                ArrowType::Int32 => DataType::Int32,
                ArrowType::Int64 => DataType::Int64,
                ArrowType::Float64 => DataType::Float64,
                ArrowType::Utf8 => DataType::Utf8,
                ArrowType::Binary => DataType::Binary,
                ArrowType::Timestamp(TimeUnit::Microsecond, _) => DataType::Timestamp,
                other => return Err(format!("column `{}` has type {other}, which plugins cannot receive", f.name())),
            };
            Ok(Field { name: f.name().clone(), data_type, nullable: f.is_nullable() })
        })
        .collect()
}

pub fn schema_from_wit(fields: &[Field]) -> Result<SchemaRef, String> {
    let mut out: Vec<ArrowField> = Vec::with_capacity(fields.len());
    for f in fields {
        if out.iter().any(|o| o.name() == &f.name) {
            return Err(format!("output column `{}` appears twice", f.name));
        }
        out.push(ArrowField::new(&f.name, arrow_type(f.data_type), f.nullable));
    }
    Ok(Arc::new(Schema::new(out)))
}

fn arrow_type(t: DataType) -> ArrowType {
    match t {
        DataType::Boolean => ArrowType::Boolean,
        DataType::Int32 => ArrowType::Int32,
        DataType::Int64 => ArrowType::Int64,
        DataType::Float64 => ArrowType::Float64,
        DataType::Utf8 => ArrowType::Utf8,
        DataType::Binary => ArrowType::Binary,
        DataType::Timestamp => timestamp_type(),
    }
}

/// Turns a plugin's output into an Arrow batch of the declared output `schema`, checking every
/// promise the contract makes (lengths, types, offsets, UTF-8, nullability, row indices).
pub fn output_from_wit(out: OutputBatch, input: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    let n = out.num_rows as usize;
    if out.rows.is_none() && n != input.num_rows() {
        return Err(format!(
            "num-rows is {n} but the input has {} rows and no `rows` mapping was given",
            input.num_rows()
        ));
    }
    let take_indices = match &out.rows {
        Some(rows) => {
            if rows.len() != n {
                return Err(format!("`rows` has {} entries for {n} output rows", rows.len()));
            }
            if let Some(bad) = rows.iter().find(|&&r| r as usize >= input.num_rows()) {
                return Err(format!("`rows` refers to input row {bad} of {}", input.num_rows()));
            }
            Some(UInt32Array::from(rows.clone()))
        }
        None => None,
    };
    if out.columns.len() != schema.fields().len() {
        return Err(format!(
            "{} columns returned, output-schema declared {} ({})",
            out.columns.len(),
            schema.fields().len(),
            schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(out.columns.len());
    for (col, field) in out.columns.into_iter().zip(schema.fields()) {
        if &col.name != field.name() {
            return Err(format!("column `{}` returned where output-schema declared `{}`", col.name, field.name()));
        }
        let ctx = |m: String| format!("column `{}`: {m}", col.name);
        let array: ArrayRef = match col.data {
            OutputData::Input(i) => {
                let src = input
                    .columns()
                    .get(i as usize)
                    .ok_or_else(|| ctx(format!("input({i}) but the input has {} columns", input.num_columns())))?;
                match &take_indices {
                    Some(idx) => arrow::compute::take(src.as_ref(), idx, None).map_err(|e| ctx(e.to_string()))?,
                    None => src.clone(),
                }
            }
            OutputData::Computed(data) => computed_array(data, n).map_err(ctx)?,
        };
        arrays.push(fit_declared(array, field).map_err(ctx)?);
    }
    RecordBatch::try_new_with_options(schema.clone(), arrays, &RecordBatchOptions::new().with_row_count(Some(n)))
        .map_err(|e| e.to_string())
}

/// A plain WIT `batch` a plugin returned (a stateful plugin's output), as an Arrow batch of the
/// declared `schema`, with the same checks as [`output_from_wit`].
pub fn batch_from_wit(batch: Batch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    let n = batch.num_rows as usize;
    if batch.columns.len() != schema.fields().len() {
        return Err(format!(
            "{} columns returned, output-schema declared {} ({})",
            batch.columns.len(),
            schema.fields().len(),
            schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(batch.columns.len());
    for (col, field) in batch.columns.into_iter().zip(schema.fields()) {
        if &col.name != field.name() {
            return Err(format!("column `{}` returned where output-schema declared `{}`", col.name, field.name()));
        }
        let ctx = |m: String| format!("column `{}`: {m}", col.name);
        let array = computed_array(col.data, n).map_err(ctx)?;
        arrays.push(fit_declared(array, field).map_err(ctx)?);
    }
    RecordBatch::try_new_with_options(schema.clone(), arrays, &RecordBatchOptions::new().with_row_count(Some(n)))
        .map_err(|e| e.to_string())
}

/// A WIT `batch` that comes with no declared schema (what a batch-sink plugin emits): the
/// schema is its own columns', all nullable.
pub fn batch_from_wit_inferred(batch: Batch) -> Result<RecordBatch, String> {
    let n = batch.num_rows as usize;
    let mut fields = Vec::with_capacity(batch.columns.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(batch.columns.len());
    for col in batch.columns {
        if fields.iter().any(|f: &ArrowField| f.name() == &col.name) {
            return Err(format!("column `{}` appears twice", col.name));
        }
        let array = computed_array(col.data, n).map_err(|m| format!("column `{}`: {m}", col.name))?;
        fields.push(ArrowField::new(col.name, array.data_type().clone(), true));
        arrays.push(array);
    }
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(n)),
    )
    .map_err(|e| e.to_string())
}

/// Checks a returned column against its declared field (type, nullability) and gives it the
/// declared timestamp timezone.
fn fit_declared(array: ArrayRef, field: &ArrowField) -> Result<ArrayRef, String> {
    let matches = match (array.data_type(), field.data_type()) {
        (ArrowType::Timestamp(TimeUnit::Microsecond, _), ArrowType::Timestamp(TimeUnit::Microsecond, _)) => true,
        (a, b) => a == b,
    };
    if !matches {
        return Err(format!(
            "is {} but output-schema declared {}",
            type_name(array.data_type()),
            type_name(field.data_type())
        ));
    }
    if !field.is_nullable() && array.null_count() > 0 {
        return Err("has nulls but output-schema declared it NOT NULL".into());
    }
    Ok(cast_timestamp_tz(array, field.data_type()))
}

/// Input timestamp columns keep their timezone label; the declared one wins.
fn cast_timestamp_tz(array: ArrayRef, want: &ArrowType) -> ArrayRef {
    if let (ArrowType::Timestamp(_, have), ArrowType::Timestamp(_, tz)) = (array.data_type(), want) {
        if have != tz {
            let a = array.as_primitive::<arrow::datatypes::TimestampMicrosecondType>().clone();
            return Arc::new(a.with_timezone_opt(tz.clone()));
        }
    }
    array
}

fn computed_array(data: ColumnData, n: usize) -> Result<ArrayRef, String> {
    let nulls = match data.validity {
        Some(v) if v.len() != n => return Err(format!("validity has {} entries for {n} rows", v.len())),
        Some(v) => Some(NullBuffer::from(v)).filter(|nb| nb.null_count() > 0),
        None => None,
    };
    let check_len = |len: usize| if len == n { Ok(()) } else { Err(format!("{len} values for {n} rows")) };
    Ok(match data.values {
        ColumnValues::Boolean(v) => {
            check_len(v.len())?;
            Arc::new(BooleanArray::new(BooleanBuffer::from(v), nulls))
        }
        ColumnValues::Int32(v) => {
            check_len(v.len())?;
            Arc::new(Int32Array::new(ScalarBuffer::from(v), nulls))
        }
        ColumnValues::Int64(v) => {
            check_len(v.len())?;
            Arc::new(Int64Array::new(ScalarBuffer::from(v), nulls))
        }
        ColumnValues::Float64(v) => {
            check_len(v.len())?;
            Arc::new(Float64Array::new(ScalarBuffer::from(v), nulls))
        }
        ColumnValues::Timestamp(v) => {
            check_len(v.len())?;
            Arc::new(TimestampMicrosecondArray::new(ScalarBuffer::from(v), nulls).with_timezone("UTC"))
        }
        ColumnValues::Utf8(v) => {
            let offsets = offsets_from_wit(&v, n)?;
            Arc::new(
                StringArray::try_new(offsets, Buffer::from_vec(v.data), nulls)
                    .map_err(|e| format!("invalid string data: {e}"))?,
            )
        }
        ColumnValues::Binary(v) => {
            let offsets = offsets_from_wit(&v, n)?;
            Arc::new(
                BinaryArray::try_new(offsets, Buffer::from_vec(v.data), nulls)
                    .map_err(|e| format!("invalid binary data: {e}"))?,
            )
        }
    })
}

fn offsets_from_wit(v: &VarLen, n: usize) -> Result<OffsetBuffer<i32>, String> {
    if v.offsets.len() != n + 1 {
        return Err(format!("{} offsets for {n} rows (need rows + 1)", v.offsets.len()));
    }
    if v.offsets.windows(2).any(|w| w[0] > w[1]) {
        return Err("offsets decrease".into());
    }
    let last = *v.offsets.last().expect("n + 1 >= 1 offsets") as usize;
    if last > v.data.len() || last > i32::MAX as usize {
        return Err(format!("last offset {last} is past the {} data bytes", v.data.len()));
    }
    let offsets: Vec<i32> = v.offsets.iter().map(|&o| o as i32).collect();
    Ok(OffsetBuffer::new(ScalarBuffer::from(offsets)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::parse_ddl;

    fn sample() -> RecordBatch {
        let schema = parse_ddl("id bigint NOT NULL, name string, at timestamp, ok boolean").unwrap();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("a"), None, Some("ccc")])),
                Arc::new(TimestampMicrosecondArray::from(vec![10, 20, 30]).with_timezone("UTC")),
                Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn pass_through_with_row_selection_and_a_computed_column() {
        let input = sample();
        let schema = parse_ddl("id bigint NOT NULL, doubled bigint").unwrap();
        let out = OutputBatch {
            num_rows: 2,
            rows: Some(vec![2, 0]),
            columns: vec![
                super::super::mapper::wit::OutputColumn { name: "id".into(), data: OutputData::Input(0) },
                super::super::mapper::wit::OutputColumn {
                    name: "doubled".into(),
                    data: OutputData::Computed(ColumnData { values: ColumnValues::Int64(vec![6, 2]), validity: None }),
                },
            ],
        };
        let b = output_from_wit(out, &input, &schema).unwrap();
        assert_eq!(b.column(0).as_primitive::<arrow::datatypes::Int64Type>().values().to_vec(), vec![3, 1]);
        assert_eq!(b.column(1).as_primitive::<arrow::datatypes::Int64Type>().values().to_vec(), vec![6, 2]);
    }

    #[test]
    fn broken_output_is_refused_with_the_column_named() {
        let input = sample();
        let schema = parse_ddl("s string").unwrap();
        let bad = |values: ColumnValues, validity: Option<Vec<bool>>| OutputBatch {
            num_rows: 3,
            rows: None,
            columns: vec![super::super::mapper::wit::OutputColumn {
                name: "s".into(),
                data: OutputData::Computed(ColumnData { values, validity }),
            }],
        };
        let e = output_from_wit(
            bad(ColumnValues::Utf8(VarLen { offsets: vec![0, 1], data: b"a".to_vec() }), None),
            &input,
            &schema,
        )
        .unwrap_err();
        assert!(e.contains("column `s`: 2 offsets for 3 rows"), "{e}");
        let e = output_from_wit(
            bad(ColumnValues::Utf8(VarLen { offsets: vec![0, 1, 2, 3], data: vec![0xff, b'a', b'b'] }), None),
            &input,
            &schema,
        )
        .unwrap_err();
        assert!(e.contains("invalid string data"), "{e}");
        let e = output_from_wit(bad(ColumnValues::Int64(vec![1, 2, 3]), None), &input, &schema).unwrap_err();
        assert!(e.contains("is bigint but output-schema declared string"), "{e}");
        let e = output_from_wit(
            bad(ColumnValues::Utf8(VarLen { offsets: vec![0, 0, 0, 0], data: vec![] }), Some(vec![true])),
            &input,
            &schema,
        )
        .unwrap_err();
        assert!(e.contains("validity has 1 entries for 3 rows"), "{e}");
    }
}
