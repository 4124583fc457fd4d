//! Schemas as the plugin sees them: the SDK's own types, not the generated WIT ones.

use std::fmt;

/// The value type of a column: the seven types weir supports (Spark's boolean, int, bigint,
/// double, string, binary and timestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// `boolean`.
    Boolean,
    /// `int`: 32-bit signed.
    Int32,
    /// `bigint`: 64-bit signed.
    Int64,
    /// `double`: 64-bit float.
    Float64,
    /// `string`: UTF-8 text.
    Utf8,
    /// `binary`: bytes.
    Binary,
    /// `timestamp`: microseconds since 1970-01-01T00:00:00Z, as an `i64`.
    Timestamp,
}

impl DataType {
    /// The name used in the WIT contract (`float64`), as error messages print it.
    pub fn wit_name(self) -> &'static str {
        match self {
            DataType::Boolean => "boolean",
            DataType::Int32 => "int32",
            DataType::Int64 => "int64",
            DataType::Float64 => "float64",
            DataType::Utf8 => "utf8",
            DataType::Binary => "binary",
            DataType::Timestamp => "timestamp",
        }
    }

    /// The name used in job files (Spark DDL: `double`, `string`...).
    pub fn ddl_name(self) -> &'static str {
        match self {
            DataType::Boolean => "boolean",
            DataType::Int32 => "int",
            DataType::Int64 => "bigint",
            DataType::Float64 => "double",
            DataType::Utf8 => "string",
            DataType::Binary => "binary",
            DataType::Timestamp => "timestamp",
        }
    }
}

/// Prints both names, `float64 (double)`, so a message makes sense to plugin and job authors.
impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wit_name() == self.ddl_name() {
            f.write_str(self.wit_name())
        } else {
            write!(f, "{} ({})", self.wit_name(), self.ddl_name())
        }
    }
}

/// One column of a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The column's name, unique within a schema.
    pub name: String,
    /// The column's value type.
    pub data_type: DataType,
    /// Whether the column may hold nulls.
    pub nullable: bool,
}

impl Field {
    /// A field; `nullable` says whether it may hold nulls.
    pub fn new(name: impl Into<String>, data_type: DataType, nullable: bool) -> Field {
        Field { name: name.into(), data_type, nullable }
    }
}

/// An ordered list of fields: the input or output columns of a map.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schema {
    /// The columns, in order.
    pub fields: Vec<Field>,
}

impl Schema {
    /// A schema of these fields, in this order.
    pub fn new(fields: Vec<Field>) -> Schema {
        Schema { fields }
    }

    /// The field named `name`, if any.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The position of the field named `name`, if any.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// The field named `name`, checked to be of type `data_type`. The error names the column,
    /// the type wanted and the type found (or the columns there are), ready to return from
    /// [`Mapper::output_schema`](crate::Mapper::output_schema).
    pub fn require(&self, name: &str, data_type: DataType) -> Result<&Field, String> {
        match self.field(name) {
            Some(f) if f.data_type == data_type => Ok(f),
            Some(f) => Err(format!("input column `{name}` must be {data_type}, but it is {}", f.data_type)),
            None => {
                Err(format!("input has no column `{name}` (of type {data_type}); its columns are: {}", self.names()))
            }
        }
    }

    /// This schema with `field` appended.
    pub fn with(mut self, field: Field) -> Schema {
        self.fields.push(field);
        self
    }

    /// Like [`Schema::with`] on a copy, but fails when a column of that name already exists.
    pub fn try_with(&self, field: Field) -> Result<Schema, String> {
        if self.field(&field.name).is_some() {
            return Err(format!("cannot add column `{}`: the input already has a column of that name", field.name));
        }
        Ok(self.clone().with(field))
    }

    /// The column names, comma-separated, for messages.
    pub(crate) fn names(&self) -> String {
        names(self.fields.iter().map(|f| f.name.as_str()))
    }
}

/// Names joined for an error message, or `(none)`.
pub(crate) fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = names.collect();
    if v.is_empty() {
        "(none)".to_string()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> Schema {
        Schema::new(vec![Field::new("user_id", DataType::Utf8, true), Field::new("amount", DataType::Float64, true)])
    }

    #[test]
    fn require_names_what_is_wrong() {
        let s = input();
        assert_eq!(s.require("amount", DataType::Float64).unwrap().name, "amount");
        assert_eq!(
            s.require("amount", DataType::Int64).unwrap_err(),
            "input column `amount` must be int64 (bigint), but it is float64 (double)"
        );
        assert_eq!(
            s.require("price", DataType::Float64).unwrap_err(),
            "input has no column `price` (of type float64 (double)); its columns are: user_id, amount"
        );
    }

    #[test]
    fn try_with_refuses_duplicates() {
        let s = input();
        assert_eq!(s.try_with(Field::new("x", DataType::Boolean, false)).unwrap().fields.len(), 3);
        assert!(s.try_with(Field::new("amount", DataType::Boolean, false)).unwrap_err().contains("`amount`"));
        assert_eq!(s.index_of("amount"), Some(1));
    }
}
