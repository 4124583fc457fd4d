//! The table's data files: rows split by partition values into Hive-style directories
//! (`col=value/`, the partition columns left out of the files), each part written as one
//! Snappy-compressed Parquet file, durably, under a name no other writer or attempt uses, and
//! described by an `add` action (partition values as the protocol serializes them, size,
//! statistics).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, UInt32Array};
use arrow::datatypes::{DataType, Date32Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::super::SinkError;
use super::log::{encode_path, now_ms, Add};
use super::stats::file_stats;
use crate::atomic_file::sync_dir;

/// Hive's directory value for a null partition value (as Spark writes it).
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// Rows of one partition: its values (one per partition column, `None` for null) and its rows
/// without the partition columns.
pub struct Part {
    pub values: Vec<Option<String>>,
    pub batches: Vec<RecordBatch>,
}

fn invalid(e: impl std::fmt::Display) -> SinkError {
    SinkError::Invalid(e.to_string())
}

/// Splits `data` by the values of `partition_cols` (indices into its schema), in order of
/// first appearance; `data_schema` is the schema without them.
pub fn split(data: &[RecordBatch], partition_cols: &[usize], data_schema: &SchemaRef) -> Result<Vec<Part>, SinkError> {
    let data_cols: Vec<usize> = match data.first() {
        Some(b) => (0..b.num_columns()).filter(|i| !partition_cols.contains(i)).collect(),
        None => return Ok(Vec::new()),
    };
    if partition_cols.is_empty() {
        let batches = data
            .iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| {
                let cols = data_cols.iter().map(|&c| b.column(c).clone()).collect();
                RecordBatch::try_new(data_schema.clone(), cols).map_err(invalid)
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(if batches.is_empty() { Vec::new() } else { vec![Part { values: Vec::new(), batches }] });
    }
    let mut order: Vec<Vec<Option<String>>> = Vec::new();
    let mut groups: HashMap<Vec<Option<String>>, Vec<RecordBatch>> = HashMap::new();
    for batch in data {
        let values: Vec<Vec<Option<String>>> = partition_cols
            .iter()
            .map(|&c| (0..batch.num_rows()).map(|r| partition_value(batch.column(c).as_ref(), r)).collect())
            .collect::<Result<_, _>>()?;
        let mut rows_of: HashMap<Vec<Option<String>>, Vec<u32>> = HashMap::new();
        let mut local = Vec::new();
        for row in 0..batch.num_rows() {
            let key: Vec<Option<String>> = values.iter().map(|v| v[row].clone()).collect();
            rows_of
                .entry(key.clone())
                .or_insert_with(|| {
                    local.push(key);
                    Vec::new()
                })
                .push(row as u32);
        }
        for key in local {
            let idx = UInt32Array::from(rows_of.remove(&key).expect("every key has rows"));
            let cols: Vec<ArrayRef> = data_cols
                .iter()
                .map(|&c| arrow::compute::take(batch.column(c).as_ref(), &idx, None))
                .collect::<Result<_, _>>()
                .map_err(invalid)?;
            let part = RecordBatch::try_new(data_schema.clone(), cols).map_err(invalid)?;
            if !groups.contains_key(&key) {
                order.push(key.clone());
            }
            groups.entry(key).or_default().push(part);
        }
    }
    Ok(order
        .into_iter()
        .map(|values| {
            let batches = groups.remove(&values).expect("ordered keys are in groups");
            Part { values, batches }
        })
        .collect())
}

/// A partition value as the protocol serializes it (`None` for null; an empty string is null
/// too, as the protocol says).
pub fn partition_value(col: &dyn Array, row: usize) -> Result<Option<String>, SinkError> {
    if col.is_null(row) {
        return Ok(None);
    }
    let text = match col.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let us = col.as_primitive::<TimestampMicrosecondType>().value(row);
            match chrono::DateTime::from_timestamp_micros(us) {
                Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
                None => us.to_string(),
            }
        }
        DataType::Date32 => {
            let days = col.as_primitive::<Date32Type>().value(row);
            let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
            epoch
                .checked_add_signed(chrono::TimeDelta::days(days as i64))
                .map_or_else(|| days.to_string(), |d| d.format("%Y-%m-%d").to_string())
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::List(_) | DataType::LargeList(_) => {
            return Err(SinkError::Invalid(format!(
                "a partition column of type {} cannot be written to a Delta table by weir; partition by a string, number, boolean, date or timestamp column",
                col.data_type()
            )))
        }
        _ => ArrayFormatter::try_new(col, &FormatOptions::default()).map_err(invalid)?.value(row).to_string(),
    };
    Ok(if text.is_empty() { None } else { Some(text) })
}

/// Escapes what cannot stand in a path segment as `%XX`, as Hive and Spark do.
pub use crate::sink::files::escape_segment as escape;

/// The directory of a partition, relative to the table (`a=1/b=x/`; empty when unpartitioned).
pub fn partition_dir(names: &[String], values: &[Option<String>]) -> String {
    let mut dir = String::new();
    for (name, value) in names.iter().zip(values) {
        dir.push_str(&escape(name));
        dir.push('=');
        match value {
            Some(v) => dir.push_str(&escape(v)),
            None => dir.push_str(NULL_PARTITION),
        }
        dir.push('/');
    }
    dir
}

/// Writes `batches` to `table/rel` as one Parquet file (via a temporary sibling, fsynced,
/// renamed) and returns its `add` action.
pub fn write_file(
    table: &Path,
    rel: &str,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    partition_values: BTreeMap<String, Option<String>>,
) -> Result<Add, SinkError> {
    let path = table.join(rel);
    let dir = path.parent().expect("data files live in the table directory");
    let io = |what: String| move |source| SinkError::Io { context: what, source };
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let name = path.file_name().and_then(|n| n.to_str()).expect("names are ASCII");
    let tmp = dir.join(format!(".{name}.tmp"));
    let file = File::create(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let enc = |e: parquet::errors::ParquetError| SinkError::Encode { context: rel.to_string(), message: e.to_string() };
    let mut w =
        ArrowWriter::try_new(BufWriter::with_capacity(1 << 20, file), schema.clone(), Some(props)).map_err(enc)?;
    for b in batches {
        w.write(b).map_err(enc)?;
    }
    let file = w
        .into_inner()
        .map_err(enc)?
        .into_inner()
        .map_err(|e| SinkError::Io { context: format!("writing {}", tmp.display()), source: e.into_error() })?;
    file.sync_all().map_err(io(format!("writing {}", tmp.display())))?;
    let size = file.metadata().map_err(io(format!("reading the size of {}", tmp.display())))?.len();
    drop(file);
    std::fs::rename(&tmp, &path).map_err(io(format!("renaming {} to {}", tmp.display(), path.display())))?;
    sync_dir(dir).map_err(io(format!("syncing {}", dir.display())))?;
    Ok(Add {
        path: encode_path(rel),
        partition_values,
        size: size as i64,
        modification_time: now_ms(),
        data_change: true,
        stats: Some(file_stats(batches)),
        tags: None,
        deletion_vector: None,
    })
}

/// The schema of `schema` without the columns at `partition_cols`.
pub fn data_schema(schema: &Schema, partition_cols: &[usize]) -> SchemaRef {
    Arc::new(Schema::new(
        (0..schema.fields().len())
            .filter(|i| !partition_cols.contains(i))
            .map(|i| schema.field(i).clone())
            .collect::<Vec<_>>(),
    ))
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray};

    use super::*;
    use crate::schema::parse_ddl;

    #[test]
    fn rows_split_by_partition_in_first_seen_order_and_dirs_are_hive_escaped() {
        let schema = parse_ddl("id bigint, k string").unwrap();
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
                Arc::new(StringArray::from(vec![Some("b/x"), None, Some("b/x"), Some("")])),
            ],
        )
        .unwrap();
        let data = data_schema(&schema, &[1]);
        let parts = split(&[b], &[1], &data).unwrap();
        let got: Vec<(Vec<Option<String>>, usize)> =
            parts.iter().map(|p| (p.values.clone(), p.batches.iter().map(|b| b.num_rows()).sum())).collect();
        assert_eq!(got, vec![(vec![Some("b/x".to_string())], 2), (vec![None], 2)], "an empty string is null");
        assert_eq!(parts[0].batches[0].schema().fields().len(), 1, "the partition column is not in the files");
        let names = ["k".to_string(), "t".to_string()];
        assert_eq!(partition_dir(&names, &[Some("b/x:1".into()), None]), "k=b%2Fx%3A1/t=__HIVE_DEFAULT_PARTITION__/");
    }

    #[test]
    fn timestamp_partition_values_are_iso_8601_in_utc() {
        let a = arrow::array::TimestampMicrosecondArray::from(vec![1_704_067_200_000_001]).with_timezone("UTC");
        assert_eq!(partition_value(&a, 0).unwrap().as_deref(), Some("2024-01-01T00:00:00.000001Z"));
        let n = Int64Array::from(vec![Some(-7), None]);
        assert_eq!(partition_value(&n, 0).unwrap().as_deref(), Some("-7"));
        assert_eq!(partition_value(&n, 1).unwrap(), None);
    }
}
