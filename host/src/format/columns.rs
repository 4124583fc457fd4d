//! Arrow columns being built from decoded values, shared by the JSON and CSV decoders. A row is
//! decoded into [`Value`]s first and appended only when all of it decoded, so a bad record
//! never leaves part of a row behind.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::schema::type_name;

/// One decoded value, already of its column's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    I32(i32),
    I64(i64),
    F64(f64),
    Str(String),
    Bytes(Vec<u8>),
    /// Microseconds since the epoch.
    Ts(i64),
}

enum Builder {
    Bool(BooleanBuilder),
    I32(Int32Builder),
    I64(Int64Builder),
    F64(Float64Builder),
    Str(StringBuilder),
    Bytes(BinaryBuilder),
    Ts(TimestampMicrosecondBuilder),
}

/// Builders for every column of a schema, finished into batches of at most `batch_rows`.
pub struct Columns {
    schema: SchemaRef,
    builders: Vec<Builder>,
    rows: usize,
    batch_rows: usize,
    done: Vec<RecordBatch>,
}

impl Columns {
    pub fn new(schema: &SchemaRef, batch_rows: usize) -> Self {
        let builders = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Boolean => Builder::Bool(BooleanBuilder::new()),
                DataType::Int32 => Builder::I32(Int32Builder::new()),
                DataType::Int64 => Builder::I64(Int64Builder::new()),
                DataType::Float64 => Builder::F64(Float64Builder::new()),
                DataType::Utf8 => Builder::Str(StringBuilder::new()),
                DataType::Binary => Builder::Bytes(BinaryBuilder::new()),
                DataType::Timestamp(TimeUnit::Microsecond, _) => Builder::Ts(TimestampMicrosecondBuilder::new()),
                other => unreachable!("schema::parse_ddl only produces weir's types, not {other}"),
            })
            .collect();
        Self { schema: schema.clone(), builders, rows: 0, batch_rows, done: Vec::new() }
    }

    /// Appends one whole row; `row[i]` must be of column i's type (as `parse_text` and the JSON
    /// decoder give).
    pub fn push_row(&mut self, row: &mut [Value]) {
        for (b, v) in self.builders.iter_mut().zip(row.iter_mut()) {
            match (b, std::mem::replace(v, Value::Null)) {
                (Builder::Bool(b), Value::Bool(x)) => b.append_value(x),
                (Builder::I32(b), Value::I32(x)) => b.append_value(x),
                (Builder::I64(b), Value::I64(x)) => b.append_value(x),
                (Builder::F64(b), Value::F64(x)) => b.append_value(x),
                (Builder::Str(b), Value::Str(x)) => b.append_value(x),
                (Builder::Bytes(b), Value::Bytes(x)) => b.append_value(x),
                (Builder::Ts(b), Value::Ts(x)) => b.append_value(x),
                (b, Value::Null) => b.append_null(),
                (_, other) => unreachable!("decoders produce values of the column's type, got {other:?}"),
            }
        }
        self.rows += 1;
        if self.rows == self.batch_rows {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.rows == 0 {
            return;
        }
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays).expect("builders follow the schema");
        self.done.push(batch);
        self.rows = 0;
    }

    pub fn finish(mut self) -> Vec<RecordBatch> {
        self.flush();
        self.done
    }
}

impl Builder {
    fn append_null(&mut self) {
        match self {
            Builder::Bool(b) => b.append_null(),
            Builder::I32(b) => b.append_null(),
            Builder::I64(b) => b.append_null(),
            Builder::F64(b) => b.append_null(),
            Builder::Str(b) => b.append_null(),
            Builder::Bytes(b) => b.append_null(),
            Builder::Ts(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::I32(b) => Arc::new(b.finish()),
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::F64(b) => Arc::new(b.finish()),
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Bytes(b) => Arc::new(b.finish()),
            Builder::Ts(b) => Arc::new(b.finish().with_timezone("UTC")),
        }
    }
}

/// Parses a text field (CSV) as `data_type`; the error says what was expected and what came.
pub fn parse_text(text: &str, data_type: &DataType) -> Result<Value, String> {
    let fail = || format!("expected {}, got {text:?}", type_name(data_type));
    Ok(match data_type {
        DataType::Boolean => match text.to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(fail()),
        },
        DataType::Int32 => Value::I32(text.trim().parse().map_err(|_| fail())?),
        DataType::Int64 => Value::I64(text.trim().parse().map_err(|_| fail())?),
        DataType::Float64 => Value::F64(text.trim().parse().map_err(|_| fail())?),
        DataType::Utf8 => Value::Str(text.to_string()),
        DataType::Binary => Value::Bytes(text.as_bytes().to_vec()),
        DataType::Timestamp(..) => Value::Ts(super::timestamp::parse_timestamp_micros(text).ok_or_else(fail)?),
        other => unreachable!("not a weir type: {other}"),
    })
}
