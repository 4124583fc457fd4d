//! Batches as JSON lines and CSV, the way Spark's writers write them: fields in schema order,
//! timestamps as `2024-01-01T00:00:00.000Z`, doubles in their shortest exact form (`250.0`,
//! `12.6`). JSON omits null fields; CSV writes a header and leaves null fields empty (an empty
//! string is written `""` so it reads back as a string, not a null). Output bytes depend only on
//! the rows, so a replayed batch writes identical files.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use base64::Engine as _;

use super::timestamp::format_timestamp_micros;

/// Appends the rows of `batch` to `out` as JSON lines.
pub fn write_json_lines(batch: &RecordBatch, out: &mut Vec<u8>) {
    let schema = batch.schema();
    let names: Vec<Vec<u8>> =
        schema.fields().iter().map(|f| serde_json::to_vec(f.name()).expect("a string serialises")).collect();
    for row in 0..batch.num_rows() {
        out.push(b'{');
        let mut first = true;
        for (col, name) in batch.columns().iter().zip(&names) {
            if col.is_null(row) {
                continue;
            }
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            out.extend_from_slice(name);
            out.push(b':');
            write_json_value(col.as_ref(), row, out);
        }
        out.extend_from_slice(b"}\n");
    }
}

fn write_json_value(col: &dyn Array, row: usize, out: &mut Vec<u8>) {
    match col.data_type() {
        DataType::Boolean => out.extend_from_slice(if col.as_boolean().value(row) { b"true" } else { b"false" }),
        DataType::Int32 => out.extend_from_slice(itoa(col.as_primitive::<Int32Type>().value(row) as i64).as_bytes()),
        DataType::Int64 => out.extend_from_slice(itoa(col.as_primitive::<Int64Type>().value(row)).as_bytes()),
        DataType::Float64 => {
            let v = col.as_primitive::<Float64Type>().value(row);
            if v.is_finite() {
                out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
            } else {
                // Not representable in JSON: written as Spark's text for them, quoted.
                out.push(b'"');
                out.extend_from_slice(non_finite(v).as_bytes());
                out.push(b'"');
            }
        }
        DataType::Utf8 => {
            serde_json::to_writer(&mut *out, col.as_string::<i32>().value(row)).expect("writing to a Vec")
        }
        DataType::Binary => {
            out.push(b'"');
            out.extend_from_slice(
                base64::engine::general_purpose::STANDARD.encode(col.as_binary::<i32>().value(row)).as_bytes(),
            );
            out.push(b'"');
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            out.push(b'"');
            out.extend_from_slice(
                format_timestamp_micros(col.as_primitive::<TimestampMicrosecondType>().value(row)).as_bytes(),
            );
            out.push(b'"');
        }
        other => unreachable!("weir batches hold only weir's types, not {other}"),
    }
}

/// Appends the rows of `batches` as CSV to `out`, the header line first.
pub fn write_csv(schema: &arrow::datatypes::Schema, batches: &[RecordBatch], out: &mut Vec<u8>) {
    let header: Vec<String> = schema.fields().iter().map(|f| csv_quote(f.name(), false)).collect();
    out.extend_from_slice(header.join(",").as_bytes());
    out.push(b'\n');
    for batch in batches {
        for row in 0..batch.num_rows() {
            for (i, col) in batch.columns().iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if col.is_null(row) {
                    continue;
                }
                let text = match col.data_type() {
                    DataType::Boolean => col.as_boolean().value(row).to_string(),
                    DataType::Int32 => itoa(col.as_primitive::<Int32Type>().value(row) as i64),
                    DataType::Int64 => itoa(col.as_primitive::<Int64Type>().value(row)),
                    DataType::Float64 => {
                        let v = col.as_primitive::<Float64Type>().value(row);
                        if v.is_finite() {
                            ryu::Buffer::new().format_finite(v).to_string()
                        } else {
                            non_finite(v).to_string()
                        }
                    }
                    DataType::Utf8 => csv_quote(col.as_string::<i32>().value(row), true),
                    DataType::Binary => {
                        base64::engine::general_purpose::STANDARD.encode(col.as_binary::<i32>().value(row))
                    }
                    DataType::Timestamp(TimeUnit::Microsecond, _) => {
                        format_timestamp_micros(col.as_primitive::<TimestampMicrosecondType>().value(row))
                    }
                    other => unreachable!("weir batches hold only weir's types, not {other}"),
                };
                out.extend_from_slice(text.as_bytes());
            }
            out.push(b'\n');
        }
    }
}

fn non_finite(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

fn itoa(v: i64) -> String {
    v.to_string()
}

/// Quotes a CSV field when it needs it: a comma, quote or line break inside, or (for values) an
/// empty string, which would otherwise read back as null.
fn csv_quote(s: &str, value: bool) -> String {
    if s.contains([',', '"', '\n', '\r']) || (value && s.is_empty()) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{BinaryArray, BooleanArray, Float64Array, Int32Array, StringArray, TimestampMicrosecondArray};

    use super::*;
    use crate::schema::parse_ddl;

    fn batch() -> RecordBatch {
        RecordBatch::try_new(
            parse_ddl("s string, i int, d double, b boolean, t timestamp, y binary").unwrap(),
            vec![
                Arc::new(StringArray::from(vec![Some("a \"q\", b"), None, Some("")])),
                Arc::new(Int32Array::from(vec![Some(1), Some(-2), None])),
                Arc::new(Float64Array::from(vec![Some(250.0), Some(f64::NAN), Some(0.1 + 0.2)])),
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(1_704_067_200_000_000), None, Some(1)])
                        .with_timezone("UTC"),
                ),
                Arc::new(BinaryArray::from(vec![Some(&b"hi"[..]), None, None])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn json_lines_omit_nulls_and_write_spark_style_values() {
        let mut out = Vec::new();
        write_json_lines(&batch(), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"s\":\"a \\\"q\\\", b\",\"i\":1,\"d\":250.0,\"b\":true,\"t\":\"2024-01-01T00:00:00.000Z\",\"y\":\"aGk=\"}\n\
             {\"i\":-2,\"d\":\"NaN\"}\n\
             {\"s\":\"\",\"d\":0.30000000000000004,\"b\":false,\"t\":\"1970-01-01T00:00:00.000001Z\"}\n"
        );
    }

    #[test]
    fn csv_has_a_header_empty_nulls_and_quoted_empty_strings() {
        let b = batch();
        let mut out = Vec::new();
        write_csv(&b.schema(), &[b], &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "s,i,d,b,t,y\n\
             \"a \"\"q\"\", b\",1,250.0,true,2024-01-01T00:00:00.000Z,aGk=\n\
             ,-2,NaN,,,\n\
             \"\",,0.30000000000000004,false,1970-01-01T00:00:00.000001Z,\n"
        );
    }
}
