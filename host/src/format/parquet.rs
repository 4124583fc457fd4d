//! Parquet input, read through Arrow and checked against the declared schema.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::DECODE_BATCH_ROWS;
use crate::schema::{timestamp_type, type_name};
use crate::source::SourceError;

/// The weir type a Parquet column of this Arrow type is read as, if any.
fn weir_type(t: &DataType) -> Option<DataType> {
    Some(match t {
        DataType::Boolean => DataType::Boolean,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => DataType::Int32,
        DataType::Int64 | DataType::UInt32 => DataType::Int64,
        DataType::Float32 | DataType::Float64 => DataType::Float64,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
        DataType::Timestamp(..) => timestamp_type(),
        _ => return None,
    })
}

fn invalid(path: &Path, msg: String) -> SourceError {
    SourceError::Invalid(format!("{}: {msg}", path.display()))
}

fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, SourceError> {
    let file = File::open(path)
        .map_err(|source| SourceError::Io { context: format!("opening {}", path.display()), source })?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| invalid(path, format!("not a readable Parquet file: {e}")))
}

/// The file's schema in weir's types (what a parquet source without a declared schema reads).
pub fn parquet_schema(path: &Path) -> Result<SchemaRef, SourceError> {
    let builder = open(path)?;
    let fields = builder
        .schema()
        .fields()
        .iter()
        .map(|f| {
            weir_type(f.data_type()).map(|t| Field::new(f.name(), t, f.is_nullable())).ok_or_else(|| {
                invalid(
                    path,
                    format!(
                        "column `{}` has type {}, which weir cannot read; declare source.schema without it",
                        f.name(),
                        f.data_type()
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

/// Reads a whole Parquet file as batches of `declared` (or of the file's own schema): columns
/// found by name and projected into the declared order, widened where safe (int → bigint, any
/// timestamp unit → microseconds UTC).
pub fn read_parquet(path: &Path, declared: Option<&SchemaRef>) -> Result<Vec<RecordBatch>, SourceError> {
    let target = match declared {
        Some(s) => s.clone(),
        None => parquet_schema(path)?,
    };
    let builder = open(path)?.with_batch_size(DECODE_BATCH_ROWS);
    let file_schema = builder.schema().clone();
    let mut positions = Vec::with_capacity(target.fields().len());
    for field in target.fields() {
        let (pos, file_field) = file_schema.column_with_name(field.name()).ok_or_else(|| {
            invalid(
                path,
                format!(
                    "has no column `{}` (it has: {})",
                    field.name(),
                    file_schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        let compatible = match (weir_type(file_field.data_type()), field.data_type()) {
            (Some(DataType::Int32), DataType::Int64) => true,
            (Some(t), want) => {
                &t == want
                    || matches!((t, want), (DataType::Timestamp(..), DataType::Timestamp(TimeUnit::Microsecond, _)))
            }
            (None, _) => false,
        };
        if !compatible {
            return Err(invalid(
                path,
                format!(
                    "column `{}` is {} in the file but declared {}",
                    field.name(),
                    file_field.data_type(),
                    type_name(field.data_type())
                ),
            ));
        }
        positions.push(pos);
    }
    let reader = builder.build().map_err(|e| invalid(path, e.to_string()))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| invalid(path, format!("cannot decode: {e}")))?;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(positions.len());
        for (field, &pos) in target.fields().iter().zip(&positions) {
            let col = batch.column(pos);
            if !field.is_nullable() && col.null_count() > 0 {
                return Err(invalid(path, format!("column `{}` has nulls but is declared NOT NULL", field.name())));
            }
            let cast_err = |e: arrow::error::ArrowError| invalid(path, format!("column `{}`: {e}", field.name()));
            let col = match (col.data_type(), field.data_type()) {
                (have, want) if have == want => col.clone(),
                // Arrow keeps timestamps as UTC instants whatever their zone label: convert the
                // unit under the file's label, then label the result UTC.
                (DataType::Timestamp(_, tz), DataType::Timestamp(..)) => {
                    let us = arrow::compute::cast(col, &DataType::Timestamp(TimeUnit::Microsecond, tz.clone()))
                        .map_err(cast_err)?;
                    let us =
                        us.as_any().downcast_ref::<TimestampMicrosecondArray>().expect("cast to µs gives µs").clone();
                    Arc::new(us.with_timezone("UTC")) as ArrayRef
                }
                (_, want) => arrow::compute::cast(col, want).map_err(cast_err)?,
            };
            columns.push(col);
        }
        out.push(RecordBatch::try_new(target.clone(), columns).map_err(|e| invalid(path, e.to_string()))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int32Array, StringArray, TimestampMillisecondArray};
    use arrow::datatypes::Int64Type;
    use parquet::arrow::ArrowWriter;

    use super::*;
    use crate::schema::parse_ddl;

    fn write_file(dir: &Path) -> std::path::PathBuf {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int32, false),
            Field::new("s", DataType::Utf8, true),
            Field::new("t", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int32Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("a"), None])),
                Arc::new(TimestampMillisecondArray::from(vec![1000, 2000])),
            ],
        )
        .unwrap();
        let path = dir.join("x.parquet");
        let mut w = ArrowWriter::try_new(File::create(&path).unwrap(), schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        path
    }

    #[test]
    fn projects_widens_and_converts_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(dir.path());
        let declared = parse_ddl("t timestamp, n bigint").unwrap();
        let b = &read_parquet(&path, Some(&declared)).unwrap()[0];
        assert_eq!(b.schema(), declared);
        assert_eq!(
            b.column(1).as_any().downcast_ref::<arrow::array::PrimitiveArray<Int64Type>>().unwrap().values().to_vec(),
            vec![1, 2]
        );
        assert_eq!(parquet_schema(&path).unwrap(), parse_ddl("n int NOT NULL, s string, t timestamp").unwrap());
    }

    #[test]
    fn mismatches_name_file_column_and_types() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(dir.path());
        let e = read_parquet(&path, Some(&parse_ddl("s double").unwrap())).unwrap_err().to_string();
        assert!(e.contains("x.parquet: column `s` is Utf8 in the file but declared double"), "{e}");
        let e = read_parquet(&path, Some(&parse_ddl("missing string").unwrap())).unwrap_err().to_string();
        assert!(e.contains("has no column `missing` (it has: n, s, t)"), "{e}");
        let e = read_parquet(&path, Some(&parse_ddl("s string NOT NULL").unwrap())).unwrap_err().to_string();
        assert!(e.contains("column `s` has nulls but is declared NOT NULL"), "{e}");
    }
}
