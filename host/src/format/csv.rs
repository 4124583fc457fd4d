//! CSV: fields by position (Spark's default `enforceSchema`), an optional header line skipped,
//! an empty field read as null (Spark's default `nullValue`).

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::columns::{parse_text, Columns, Value};
use super::DECODE_BATCH_ROWS;
use crate::config::CsvOptions;
use crate::deadletter::{BadRecord, BadRecordError, BadRecords};

/// Decodes CSV bytes (`origin` names the file in messages; line numbers count the header).
pub fn decode_csv(
    origin: &str,
    bytes: &[u8],
    schema: &SchemaRef,
    options: CsvOptions,
    bad: &mut BadRecords,
) -> Result<Vec<RecordBatch>, BadRecordError> {
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(options.delimiter).from_reader(bytes);
    let fields = schema.fields();
    let mut columns = Columns::new(schema, DECODE_BATCH_ROWS);
    let mut row: Vec<Value> = vec![Value::Null; fields.len()];
    let mut record = csv::StringRecord::new();
    let mut first = true;
    loop {
        let line = reader.position().line();
        let read = reader.read_record(&mut record);
        let report = |bad: &mut BadRecords, reason: String, raw: String| {
            bad.report(BadRecord { origin: origin.to_string(), line: Some(line), reason, raw })
        };
        match read {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // Invalid UTF-8 and the like: keep what can be shown of the line.
                let raw = raw_line(bytes, line);
                report(bad, format!("unreadable CSV record: {e}"), raw)?;
                continue;
            }
        }
        if std::mem::take(&mut first) && options.header {
            continue;
        }
        let raw = || record.iter().collect::<Vec<_>>().join(&(options.delimiter as char).to_string());
        if record.len() != fields.len() {
            report(bad, format!("expected {} fields, got {}", fields.len(), record.len()), raw())?;
            continue;
        }
        let mut failure = None;
        for (i, (text, field)) in record.iter().zip(fields.iter()).enumerate() {
            row[i] = if text.is_empty() {
                if !field.is_nullable() {
                    failure = Some(format!("field \"{}\" is empty (null) but declared NOT NULL", field.name()));
                    break;
                }
                Value::Null
            } else {
                match parse_text(text, field.data_type()) {
                    Ok(v) => v,
                    Err(e) => {
                        failure = Some(format!("field \"{}\": {e}", field.name()));
                        break;
                    }
                }
            };
        }
        match failure {
            None => columns.push_row(&mut row),
            Some(reason) => report(bad, reason, raw())?,
        }
    }
    Ok(columns.finish())
}

/// The text of 1-based line `line`, for records the CSV reader could not even split.
fn raw_line(bytes: &[u8], line: u64) -> String {
    let text = bytes.split(|&b| b == b'\n').nth(line.saturating_sub(1) as usize).unwrap_or_default();
    String::from_utf8_lossy(text.strip_suffix(b"\r").unwrap_or(text)).into_owned()
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;
    use arrow::datatypes::{Float64Type, Int32Type};

    use super::*;
    use crate::deadletter::OnBadRecord;
    use crate::schema::parse_ddl;

    fn decode(text: &str, header: bool, policy: OnBadRecord) -> (Result<Vec<RecordBatch>, BadRecordError>, BadRecords) {
        let mut bad = BadRecords::new(policy);
        let schema = parse_ddl("id int, name string, amount double, ok boolean").unwrap();
        let r = decode_csv("in/a.csv", text.as_bytes(), &schema, CsvOptions { header, delimiter: b',' }, &mut bad);
        (r, bad)
    }

    #[test]
    fn reads_by_position_with_header_quotes_crlf_and_empty_as_null() {
        let (r, _) = decode("id,name,amount,ok\r\n1,\"a, b\",2.5,TRUE\r\n2,,,false\r\n", true, OnBadRecord::Fail);
        let b = &r.unwrap()[0];
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.column(0).as_primitive::<Int32Type>().values().to_vec(), vec![1, 2]);
        assert_eq!(b.column(1).as_string::<i32>().value(0), "a, b");
        assert!(b.column(1).is_null(1) && b.column(2).is_null(1));
        assert_eq!(b.column(2).as_primitive::<Float64Type>().value(0), 2.5);
        assert!(b.column(3).as_boolean().value(0));
    }

    #[test]
    fn wrong_field_count_and_bad_values_name_the_line() {
        let (r, _) = decode("id,name,amount,ok\n1,a,2.5,true\n2,b,3.0\n", true, OnBadRecord::Fail);
        let e = r.unwrap_err().to_string();
        assert!(e.contains("in/a.csv line 3: expected 4 fields, got 3"), "{e}");
        let (r, _) = decode("1,a,x,true\n", false, OnBadRecord::Fail);
        let e = r.unwrap_err().to_string();
        assert!(e.contains("in/a.csv line 1: field \"amount\": expected double, got \"x\""), "{e}");
    }

    #[test]
    fn dead_letter_keeps_the_raw_row() {
        let (r, mut bad) = decode("1,a,2.5,true\n2,b\n3,c,1.0,maybe\n4,d,1.0,false\n", false, OnBadRecord::DeadLetter);
        assert_eq!(r.unwrap()[0].num_rows(), 2);
        let dead = bad.take();
        assert_eq!(
            dead.iter().map(|d| (d.line, d.raw.as_str())).collect::<Vec<_>>(),
            vec![(Some(2), "2,b"), (Some(3), "3,c,1.0,maybe")]
        );
    }
}
