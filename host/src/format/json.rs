//! JSON lines: one object per line, fields matched to the schema by name (extra fields ignored,
//! missing or null = null). Values are parsed straight into their column's type by a serde
//! visitor, without building a JSON tree per line.

use std::collections::HashMap;
use std::fmt;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use base64::Engine as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::columns::{Columns, Value};
use super::timestamp::parse_timestamp_micros;
use super::DECODE_BATCH_ROWS;
use crate::deadletter::{BadRecord, BadRecordError, BadRecords};
use crate::schema::type_name;

/// Decodes JSON lines (`origin` names the file in messages). Blank lines are skipped; CRLF is
/// accepted. Each bad line goes to `bad` with its 1-based line number.
pub fn decode_json_lines(
    origin: &str,
    bytes: &[u8],
    schema: &SchemaRef,
    bad: &mut BadRecords,
) -> Result<Vec<RecordBatch>, BadRecordError> {
    let lines = bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(n, line)| (line.strip_suffix(b"\r").unwrap_or(line), n))
        .filter(|(line, _)| !line.iter().all(u8::is_ascii_whitespace));
    decode_json_records(lines, schema, bad, |n| (origin.to_string(), Some(n as u64 + 1)))
}

/// Decodes one JSON object per record (a Kafka value, ...); `at(tag)` says where a bad record is
/// (origin, line).
pub fn decode_json_records<'a, T: Copy>(
    records: impl Iterator<Item = (&'a [u8], T)>,
    schema: &SchemaRef,
    bad: &mut BadRecords,
    at: impl Fn(T) -> (String, Option<u64>),
) -> Result<Vec<RecordBatch>, BadRecordError> {
    let index = FieldIndex::new(schema);
    let types: Vec<&DataType> = schema.fields().iter().map(|f| f.data_type()).collect();
    let mut columns = Columns::new(schema, DECODE_BATCH_ROWS);
    let mut row: Vec<Value> = vec![Value::Null; types.len()];
    for (record, tag) in records {
        row.iter_mut().for_each(|v| *v = Value::Null);
        let result = decode_line(record, &index, &types, &mut row).and_then(|()| {
            match schema.fields().iter().zip(&row).find(|(f, v)| !f.is_nullable() && **v == Value::Null) {
                Some((f, _)) => Err(format!("field \"{}\" is missing or null but declared NOT NULL", f.name())),
                None => Ok(()),
            }
        });
        match result {
            Ok(()) => columns.push_row(&mut row),
            Err(reason) => {
                let (origin, line) = at(tag);
                bad.report(BadRecord { origin, line, reason, raw: String::from_utf8_lossy(record).into_owned() })?
            }
        }
    }
    Ok(columns.finish())
}

fn decode_line(line: &[u8], index: &FieldIndex, types: &[&DataType], row: &mut [Value]) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let result = de.deserialize_map(RowVisitor { index, types, row }).and_then(|()| de.end());
    result.map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => format!("malformed JSON: {e}"),
            Category::Data => {
                let text = e.to_string();
                // serde appends " at line 1 column N"; the record's own line is reported instead.
                let text = text.rsplit_once(" at line ").map_or(text.as_str(), |(m, _)| m).to_string();
                if text.starts_with("field \"") {
                    text
                } else {
                    format!("not a JSON object: {text}")
                }
            }
        }
    })
}

/// Column index by field name. Rows have few fields, so a linear scan over the names (most
/// differ in their first bytes) beats hashing every key; wide schemas use a hash map.
struct FieldIndex<'a> {
    names: Vec<&'a str>,
    wide: Option<HashMap<&'a str, usize>>,
}

impl<'a> FieldIndex<'a> {
    fn new(schema: &'a SchemaRef) -> Self {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let wide = (names.len() > 16).then(|| names.iter().enumerate().map(|(i, n)| (*n, i)).collect());
        FieldIndex { names, wide }
    }

    #[inline]
    fn get(&self, key: &str) -> Option<usize> {
        match &self.wide {
            Some(map) => map.get(key).copied(),
            None => self.names.iter().position(|n| *n == key),
        }
    }
}

struct RowVisitor<'a> {
    index: &'a FieldIndex<'a>,
    types: &'a [&'a DataType],
    row: &'a mut [Value],
}

impl<'de> Visitor<'de> for RowVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(col) = map.next_key_seed(KeySeed { index: self.index })? {
            match col {
                Some(i) => {
                    self.row[i] = map.next_value_seed(ValueSeed { name: self.index.names[i], ty: self.types[i] })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A key: the column's index when the schema has it.
struct KeySeed<'a> {
    index: &'a FieldIndex<'a>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.index.get(v))
    }
}

/// A value, parsed as its column's type.
struct ValueSeed<'a> {
    name: &'a str,
    ty: &'a DataType,
}

impl ValueSeed<'_> {
    fn wrong<E: de::Error>(&self, got: impl fmt::Display) -> E {
        E::custom(format!("field \"{}\": expected {}, got {got}", self.name, type_name(self.ty)))
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a {} value", type_name(self.ty))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        match self.ty {
            DataType::Boolean => Ok(Value::Bool(v)),
            DataType::Utf8 => Ok(Value::Str(v.to_string())),
            _ => Err(self.wrong(v)),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        match self.ty {
            DataType::Int32 => {
                i32::try_from(v).map(Value::I32).map_err(|_| self.wrong(format_args!("{v} (out of int range)")))
            }
            DataType::Int64 => Ok(Value::I64(v)),
            DataType::Float64 => Ok(Value::F64(v as f64)),
            DataType::Utf8 => Ok(Value::Str(v.to_string())),
            DataType::Timestamp(..) => v.checked_mul(1_000_000).map(Value::Ts).ok_or_else(|| self.wrong(v)),
            _ => Err(self.wrong(v)),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        match i64::try_from(v) {
            Ok(i) => self.visit_i64(i),
            Err(_) if *self.ty == DataType::Float64 => Ok(Value::F64(v as f64)),
            Err(_) if *self.ty == DataType::Utf8 => Ok(Value::Str(v.to_string())),
            Err(_) => Err(self.wrong(format_args!("{v} (out of range)"))),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        match self.ty {
            DataType::Float64 => Ok(Value::F64(v)),
            DataType::Utf8 => Ok(Value::Str(serde_json::Number::from_f64(v).map_or(v.to_string(), |n| n.to_string()))),
            DataType::Timestamp(..) => Ok(Value::Ts((v * 1e6).round() as i64)),
            _ => Err(self.wrong(v)),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        match self.ty {
            DataType::Utf8 => Ok(Value::Str(v.to_string())),
            DataType::Timestamp(..) => {
                parse_timestamp_micros(v).map(Value::Ts).ok_or_else(|| self.wrong(format_args!("{v:?}")))
            }
            DataType::Binary => base64::engine::general_purpose::STANDARD
                .decode(v)
                .map(Value::Bytes)
                .map_err(|_| self.wrong(format_args!("{v:?} (binary is read as base64)"))),
            _ => Err(self.wrong(format_args!("{v:?}"))),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<Value, A::Error> {
        Err(self.wrong("an object"))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _seq: A) -> Result<Value, A::Error> {
        Err(self.wrong("an array"))
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;
    use arrow::datatypes::{Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};

    use super::*;
    use crate::deadletter::OnBadRecord;
    use crate::schema::parse_ddl;

    fn decode(text: &str, ddl: &str, policy: OnBadRecord) -> (Result<Vec<RecordBatch>, BadRecordError>, BadRecords) {
        let mut bad = BadRecords::new(policy);
        let r = decode_json_lines("in/a.json", text.as_bytes(), &parse_ddl(ddl).unwrap(), &mut bad);
        (r, bad)
    }

    #[test]
    fn decodes_every_type_by_name_with_nulls_and_extra_fields() {
        let text = "{\"b\":true,\"i\":7,\"l\":9007199254740993,\"d\":1.5,\"s\":\"x\",\"t\":\"2024-01-01T00:00:00Z\",\"y\":\"aGk=\",\"extra\":[1,{}]}\r\n\
                    \n\
                    {\"s\":12,\"d\":3,\"t\":1704067200}\n";
        let (r, bad) =
            decode(text, "b boolean, i int, l bigint, d double, s string, t timestamp, y binary", OnBadRecord::Fail);
        let b = &r.unwrap()[0];
        assert!(bad.is_empty());
        assert_eq!(b.num_rows(), 2);
        assert!(b.column(0).as_boolean().value(0));
        assert!(b.column(0).is_null(1));
        assert_eq!(b.column(1).as_primitive::<Int32Type>().value(0), 7);
        assert_eq!(b.column(2).as_primitive::<Int64Type>().value(0), 9007199254740993);
        assert_eq!(b.column(3).as_primitive::<Float64Type>().values().to_vec(), vec![1.5, 3.0]);
        assert_eq!(
            b.column(4).as_string::<i32>().value(1),
            "12",
            "numbers become their text in string columns, as in Spark"
        );
        let ts = b.column(5).as_primitive::<TimestampMicrosecondType>();
        assert_eq!((ts.value(0), ts.value(1)), (1_704_067_200_000_000, 1_704_067_200_000_000));
        assert_eq!(b.column(6).as_binary::<i32>().value(0), b"hi");
    }

    #[test]
    fn bad_lines_name_file_line_field_and_value() {
        let cases = [
            ("{\"d\":\"abc\"}", "field \"d\": expected double, got \"abc\""),
            ("{\"i\":3000000000}", "field \"i\": expected int, got 3000000000 (out of int range)"),
            ("{\"d\":1.0", "malformed JSON: EOF while parsing an object"),
            ("[1,2]", "not a JSON object: invalid type: sequence, expected a JSON object"),
            ("{\"d\":1} x", "malformed JSON: trailing characters"),
            ("{\"d\":{\"a\":1}}", "field \"d\": expected double, got an object"),
            ("{\"i\":1}", "field \"n\" is missing or null but declared NOT NULL"),
        ];
        for (line, want) in cases {
            let text = format!("{{\"d\":1,\"n\":\"ok\"}}\n{line}\n");
            let (r, _) = decode(&text, "d double, i int, n string NOT NULL", OnBadRecord::Fail);
            let e = r.unwrap_err();
            assert_eq!(e.record.line, Some(2), "{line}");
            assert!(e.record.reason.starts_with(want), "{line}: want {want:?}, got {:?}", e.record.reason);
            assert_eq!(e.record.raw, line);
            assert!(e.to_string().starts_with("bad record in in/a.json line 2: "), "{e}");
        }
    }

    #[test]
    fn dead_letter_keeps_bad_lines_and_no_partial_row() {
        let text = "{\"a\":1,\"d\":1.0}\n{\"a\":2,\"d\":\"x\"}\n{\"a\":3,\"d\":3.0}\n";
        let (r, mut bad) = decode(text, "a int, d double", OnBadRecord::DeadLetter);
        let b = &r.unwrap()[0];
        assert_eq!(
            b.column(0).as_primitive::<Int32Type>().values().to_vec(),
            vec![1, 3],
            "row 2's `a` must not leak in"
        );
        let dead = bad.take();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].line, Some(2));
    }
}
