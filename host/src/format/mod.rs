//! Decoding input files into Arrow batches of a declared schema, and encoding output files.
//! Decoders report every record they cannot decode to `BadRecords` with file and line, so a bad
//! record stops the job or reaches the dead-letter output, never vanishes.

/// Arrow columns built row by row from decoded values (shared by json and csv).
pub mod columns;
/// CSV with a header row (or without), fields matched by position.
pub mod csv;
/// Writing batches as JSON lines and CSV, as Spark's writers do.
pub mod encode;
/// JSON lines: one object per line, fields matched to the schema by name.
pub mod json;
/// Parquet, read through Arrow, checked against the declared schema.
pub mod parquet;
/// Timestamp text in the forms Spark reads.
pub mod timestamp;

/// Number of rows per Arrow batch the decoders produce.
pub const DECODE_BATCH_ROWS: usize = 8192;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;

/// The batch with its timestamp columns labelled zone-less, for Arrow's display functions
/// (which cannot resolve the "UTC" label without the tz database). The values are UTC instants
/// either way, so the text shows UTC wall-clock time.
pub fn for_display(batch: &RecordBatch) -> RecordBatch {
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        if let DataType::Timestamp(TimeUnit::Microsecond, Some(_)) = c.data_type() {
            let a = c.as_primitive::<TimestampMicrosecondType>().clone().with_timezone_opt(None::<String>);
            fields.push(Field::new(f.name(), a.data_type().clone(), f.is_nullable()));
            columns.push(Arc::new(a));
        } else {
            fields.push(f.as_ref().clone());
            columns.push(c.clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("same columns, relabelled")
}
