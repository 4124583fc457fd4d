//! The SQL the postgres sink sends: names quoted, weir's column types as PostgreSQL types, and
//! the statements built from them (DDL, COPY, the upsert's INSERT ... ON CONFLICT).

use arrow::datatypes::{DataType, Schema, TimeUnit};
use postgres::types::Type;

/// `name` as a quoted identifier (taken as written: case and any character kept).
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal (for the few statements that cannot take parameters).
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A table of the job file (`name` or `schema.name`), resolved to its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

impl TableName {
    /// The quoted, qualified name for SQL.
    pub fn sql(&self) -> String {
        format!("{}.{}", ident(&self.schema), ident(&self.name))
    }

    /// As messages and the progress table show it: `schema.name`.
    pub fn display(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// The PostgreSQL type a column of this Arrow type is written as, with its name for DDL and
/// messages; `None`: the sink cannot write it.
pub fn pg_type(t: &DataType) -> Option<(Type, &'static str)> {
    Some(match t {
        DataType::Boolean => (Type::BOOL, "boolean"),
        DataType::Int32 => (Type::INT4, "integer"),
        DataType::Int64 => (Type::INT8, "bigint"),
        DataType::Float64 => (Type::FLOAT8, "double precision"),
        DataType::Utf8 => (Type::TEXT, "text"),
        DataType::Binary => (Type::BYTEA, "bytea"),
        DataType::Timestamp(TimeUnit::Microsecond, _) => (Type::TIMESTAMPTZ, "timestamp with time zone"),
        DataType::Date32 => (Type::DATE, "date"),
        _ => return None,
    })
}

/// Whether a table column of type `column` (its OID) takes our binary values of type `ours`
/// in a binary COPY: the same type, or one with the same binary form (varchar and bpchar take
/// text; timestamp takes timestamptz's microseconds, as UTC).
pub fn copy_accepts(ours: &Type, column: u32) -> bool {
    if ours.oid() == column {
        return true;
    }
    match *ours {
        Type::TEXT => column == Type::VARCHAR.oid() || column == Type::BPCHAR.oid(),
        Type::TIMESTAMPTZ => column == Type::TIMESTAMP.oid(),
        _ => false,
    }
}

/// Every column of `schema` that the sink cannot write, as `name (type)`.
pub fn unsupported_columns(schema: &Schema) -> Vec<String> {
    schema
        .fields()
        .iter()
        .filter(|f| pg_type(f.data_type()).is_none())
        .map(|f| format!("`{}` ({})", f.name(), crate::schema::type_name(f.data_type())))
        .collect()
}

/// `CREATE TABLE IF NOT EXISTS` for the output's columns, with the primary key on `key`.
pub fn create_table(table: &TableName, schema: &Schema, key: &[String]) -> String {
    let mut cols: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            let (_, name) = pg_type(f.data_type()).expect("columns checked before start");
            format!("{} {name}", ident(&f.name()))
        })
        .collect();
    if !key.is_empty() {
        cols.push(format!("PRIMARY KEY ({})", key.iter().map(|k| ident(k)).collect::<Vec<_>>().join(", ")));
    }
    format!("CREATE TABLE IF NOT EXISTS {} ({})", table.sql(), cols.join(", "))
}

/// The progress table: one row per query and output, the last batch committed there.
pub fn create_progress_table(table: &TableName) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (query_id text NOT NULL, output text NOT NULL, batch_id bigint NOT NULL, committed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (query_id, output))",
        table.sql()
    )
}

/// The column list `("a", "b")`.
pub fn column_list(schema: &Schema) -> String {
    schema.fields().iter().map(|f| ident(f.name())).collect::<Vec<_>>().join(", ")
}

/// `COPY table (columns) FROM STDIN (FORMAT binary)`.
pub fn copy_in(table: &str, columns: &str) -> String {
    format!("COPY {table} ({columns}) FROM STDIN (FORMAT binary)")
}

/// The upsert's staging table (temporary, emptied by each commit): the output's columns as
/// the sink writes them, and `__weir_row`, the row's place in its batch.
pub fn create_stage(stage: &str, schema: &Schema) -> String {
    let cols: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{} {}", ident(f.name()), pg_type(f.data_type()).expect("columns checked before start").1))
        .collect();
    format!(
        "CREATE TEMP TABLE IF NOT EXISTS {stage} ({}, __weir_row bigint NOT NULL) ON COMMIT DELETE ROWS",
        cols.join(", ")
    )
}

/// `INSERT INTO table SELECT ... FROM stage [WHERE __weir_row BETWEEN $1 AND $2] ON CONFLICT
/// (key) DO UPDATE SET` every other column. `latest`: only the last row of each key (an
/// `INSERT ... ON CONFLICT` may not touch a row twice); otherwise every row.
pub fn merge(table: &TableName, stage: &str, schema: &Schema, key: &[String], latest: bool, range: bool) -> String {
    let cols = column_list(schema);
    let keys = key.iter().map(|k| ident(k)).collect::<Vec<_>>().join(", ");
    let set: Vec<String> = schema
        .fields()
        .iter()
        .filter(|f| !key.contains(f.name()))
        .map(|f| format!("{c} = EXCLUDED.{c}", c = ident(f.name())))
        .collect();
    let action = if set.is_empty() { "DO NOTHING".to_string() } else { format!("DO UPDATE SET {}", set.join(", ")) };
    let filter = if range { " WHERE __weir_row BETWEEN $1 AND $2" } else { "" };
    let select = if latest {
        format!("SELECT DISTINCT ON ({keys}) {cols} FROM {stage}{filter} ORDER BY {keys}, __weir_row DESC")
    } else {
        format!("SELECT {cols} FROM {stage}{filter}")
    };
    format!("INSERT INTO {} ({cols}) {select} ON CONFLICT ({keys}) {action}", table.sql())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::Field;

    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("Name", DataType::Utf8, true),
            Field::new("at", crate::schema::timestamp_type(), true),
        ])
    }

    #[test]
    fn names_are_quoted_as_written() {
        assert_eq!(ident("Name"), "\"Name\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
        let t = TableName { schema: "public".into(), name: "Orders".into() };
        assert_eq!(t.sql(), "\"public\".\"Orders\"");
    }

    #[test]
    fn a_created_table_has_the_outputs_columns_and_the_key() {
        let t = TableName { schema: "s".into(), name: "t".into() };
        assert_eq!(
            create_table(&t, &schema(), &["id".to_string()]),
            "CREATE TABLE IF NOT EXISTS \"s\".\"t\" (\"id\" bigint, \"Name\" text, \"at\" timestamp with time zone, PRIMARY KEY (\"id\"))"
        );
    }

    #[test]
    fn the_upsert_keeps_the_last_row_of_a_key_and_updates_the_other_columns() {
        let t = TableName { schema: "s".into(), name: "t".into() };
        assert_eq!(
            merge(&t, "stage", &schema(), &["id".to_string()], true, false),
            "INSERT INTO \"s\".\"t\" (\"id\", \"Name\", \"at\") SELECT DISTINCT ON (\"id\") \"id\", \"Name\", \"at\" FROM stage ORDER BY \"id\", __weir_row DESC ON CONFLICT (\"id\") DO UPDATE SET \"Name\" = EXCLUDED.\"Name\", \"at\" = EXCLUDED.\"at\""
        );
        let only_key = Schema::new(vec![Field::new("id", DataType::Int64, false)]);
        assert!(merge(&t, "stage", &only_key, &["id".to_string()], true, true).ends_with(
            "FROM stage WHERE __weir_row BETWEEN $1 AND $2 ORDER BY \"id\", __weir_row DESC ON CONFLICT (\"id\") DO NOTHING"
        ));
    }

    #[test]
    fn every_weir_type_has_a_postgres_type_and_others_are_named() {
        for t in ["boolean", "int", "bigint", "double", "string", "binary", "timestamp"] {
            assert!(pg_type(&crate::schema::type_from_name(t).unwrap()).is_some(), "{t}");
        }
        let s = Schema::new(vec![
            Field::new("ok", DataType::Int64, true),
            Field::new("tags", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
        ]);
        let bad = unsupported_columns(&s);
        assert!(bad.len() == 1 && bad[0].starts_with("`tags` (unsupported(List"), "{bad:?}");
    }
}
