use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// A schema string that is not valid Spark DDL, with what was found and what is allowed.
#[derive(Debug, thiserror::Error)]
#[error("schema {ddl:?}: {reason}")]
pub struct SchemaError {
    pub ddl: String,
    pub reason: String,
}

/// The type names weir accepts, in Spark's spelling, with their aliases.
pub const TYPE_NAMES: &str = "boolean, int (integer), bigint (long), double, string, binary, timestamp";

/// The index and field of `column` in `schema`; the error names the column, says where it was
/// looked for (`place`: "the input", "the source's schema") and lists the columns there are.
pub fn find_column<'a>(schema: &'a Schema, column: &str, place: &str) -> Result<(usize, &'a Field), String> {
    schema.column_with_name(column).ok_or_else(|| {
        format!(
            "column `{column}` is not in {place} (its columns are: {})",
            schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
        )
    })
}

/// As [`find_column`], for the µs timestamp column that `needed_by` ("a watermark", "a window")
/// requires; the error says what type the column has instead.
pub fn timestamp_column(schema: &Schema, column: &str, place: &str, needed_by: &str) -> Result<usize, String> {
    let (index, field) = find_column(schema, column, place)?;
    if !matches!(field.data_type(), DataType::Timestamp(TimeUnit::Microsecond, _)) {
        return Err(format!(
            "column `{column}` is {}, but {needed_by} needs a timestamp column",
            type_name(field.data_type())
        ));
    }
    Ok(index)
}

/// The Arrow type of every timestamp in weir: microseconds, UTC, as Spark's TimestampType.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Parses a Spark DDL schema such as `"event_id string, amount double NOT NULL"` into an Arrow
/// schema. Columns are nullable unless marked `NOT NULL`, as in Spark.
pub fn parse_ddl(ddl: &str) -> Result<SchemaRef, SchemaError> {
    let err = |reason: String| SchemaError { ddl: ddl.to_string(), reason };
    let mut fields: Vec<Field> = Vec::new();
    for (i, part) in split_top_level(ddl).into_iter().enumerate() {
        let words: Vec<&str> = part.split_whitespace().collect();
        if words.is_empty() {
            return Err(err(format!("column {} is empty; write `name type`, separated by commas", i + 1)));
        }
        let name = words[0].trim_matches('`');
        let (ty, rest) = match words.get(1) {
            Some(t) => (*t, &words[2..]),
            None => return Err(err(format!("column `{name}` has no type; allowed types: {TYPE_NAMES}"))),
        };
        let data_type = type_from_name(ty)
            .ok_or_else(|| err(format!("column `{name}` has unknown type `{ty}`; allowed types: {TYPE_NAMES}")))?;
        let nullable = match rest.iter().map(|w| w.to_ascii_uppercase()).collect::<Vec<_>>().as_slice() {
            [] => true,
            [n, nn] if n == "NOT" && nn == "NULL" => false,
            _ => {
                return Err(err(format!(
                    "column `{name}`: unexpected `{}` after the type (only NOT NULL may follow)",
                    rest.join(" ")
                )))
            }
        };
        if fields.iter().any(|f| f.name() == name) {
            return Err(err(format!("column `{name}` is declared twice")));
        }
        fields.push(Field::new(name, data_type, nullable));
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// Splits on commas outside parentheses, so `decimal(10,2)` stays one column (and is then
/// refused by name rather than cut in two).
fn split_top_level(ddl: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in ddl.char_indices() {
        match c {
            '(' | '<' => depth += 1,
            ')' | '>' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&ddl[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&ddl[start..]);
    parts
}

/// The Arrow type for a Spark type name, or `None` when weir does not support it.
pub fn type_from_name(name: &str) -> Option<DataType> {
    Some(match name.to_ascii_lowercase().as_str() {
        "boolean" | "bool" => DataType::Boolean,
        "int" | "integer" => DataType::Int32,
        "bigint" | "long" => DataType::Int64,
        "double" => DataType::Float64,
        "string" => DataType::Utf8,
        "binary" => DataType::Binary,
        "timestamp" => timestamp_type(),
        _ => return None,
    })
}

/// The Spark name of an Arrow type weir supports, for messages and `to_ddl`.
pub fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Boolean => "boolean".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float64 => "double".into(),
        DataType::Utf8 => "string".into(),
        DataType::Binary => "binary".into(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => "timestamp".into(),
        other => format!("unsupported({other})"),
    }
}

/// Renders a schema back as Spark DDL (for messages and `weir checkpoint inspect`).
pub fn to_ddl(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| {
            let nn = if f.is_nullable() { "" } else { " NOT NULL" };
            format!("{} {}{nn}", f.name(), type_name(f.data_type()))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_spark_ddl_with_aliases_and_not_null() {
        let s = parse_ddl(
            "event_id string NOT NULL, n INTEGER, big long, amount double, at timestamp, ok boolean, raw binary",
        )
        .unwrap();
        assert_eq!(
            to_ddl(&s),
            "event_id string NOT NULL, n int, big bigint, amount double, at timestamp, ok boolean, raw binary"
        );
        assert!(!s.field(0).is_nullable());
        assert!(s.field(1).is_nullable());
    }

    #[test]
    fn unknown_type_names_the_column_and_lists_allowed_types() {
        let e = parse_ddl("id string, amount decimal").unwrap_err().to_string();
        assert!(e.contains("column `amount` has unknown type `decimal`"), "{e}");
        assert!(e.contains("bigint (long)"), "{e}");
        let e = parse_ddl("id string, price decimal(10,2)").unwrap_err().to_string();
        assert!(e.contains("column `price` has unknown type `decimal(10,2)`"), "{e}");
    }

    #[test]
    fn missing_type_and_duplicates_are_refused() {
        assert!(parse_ddl("id").unwrap_err().to_string().contains("`id` has no type"));
        assert!(parse_ddl("a int, a int").unwrap_err().to_string().contains("declared twice"));
        assert!(parse_ddl("a int,, b int").unwrap_err().to_string().contains("column 2 is empty"));
    }
}
