//! Upserts (`merge_on = [...]`): a batch becomes Spark's
//! `MERGE INTO t USING batch ON keys WHEN MATCHED UPDATE * WHEN NOT MATCHED INSERT *`, copy on
//! write: every live file that holds a key of the batch is rewritten without those rows
//! (`remove` of the old file, `add` of the new one, in the same commit), and the batch's rows
//! are added. Within a batch, the last row of a key wins (MERGE would refuse several source
//! rows matching one target row; a stream's batch often has them, so weir keeps the latest).
//! A row whose key has a null is never matched (SQL's `NULL = NULL` is not true): it is
//! inserted, and never replaced.

use std::collections::HashSet;
use std::path::Path;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, UInt32Array};
use arrow::compute::{cast, concat_batches, filter_record_batch, take};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::super::SinkError;
use super::log::{decode_path, Add};

fn invalid(e: impl std::fmt::Display) -> SinkError {
    SinkError::Invalid(e.to_string())
}

/// The keys of a batch, comparable across files whatever their encoding.
pub struct Keys {
    converter: RowConverter,
    types: Vec<DataType>,
    names: Vec<String>,
    set: HashSet<Vec<u8>>,
    /// A one-column key's values, sorted, to skip files whose statistics exclude them all.
    sorted: Sorted,
}

enum Sorted {
    Ints(Vec<i64>),
    Strings(Vec<String>),
    Unknown,
}

impl Keys {
    /// Whether any of them is in `set`; `None` when the file lacks a key column.
    fn matches(&self, batch: &RecordBatch) -> Result<Option<BooleanArray>, SinkError> {
        let mut cols = Vec::new();
        for (name, t) in self.names.iter().zip(&self.types) {
            let Ok(i) = batch.schema().index_of(name) else { return Ok(None) };
            let col = batch.column(i);
            cols.push(if col.data_type() == t { col.clone() } else { cast(col, t).map_err(invalid)? });
        }
        let rows = self.converter.convert_columns(&cols).map_err(invalid)?;
        let nulls: Vec<bool> = (0..batch.num_rows()).map(|r| cols.iter().any(|c| c.is_null(r))).collect();
        Ok(Some((0..batch.num_rows()).map(|r| Some(!nulls[r] && self.set.contains(rows.row(r).as_ref()))).collect()))
    }

    /// Whether the file `add` may hold one of the keys, by its statistics (`minValues`,
    /// `maxValues` of a one-column key): a file whose range holds none is not read at all, so
    /// a MERGE of keys that grow (ids, times) reads only the files it must.
    pub fn may_hold(&self, add: &Add) -> bool {
        let Some(stats) = add.stats.as_deref().and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()) else {
            return true;
        };
        let name = &self.names[0];
        let (min, max) = (&stats["minValues"][name], &stats["maxValues"][name]);
        match &self.sorted {
            Sorted::Ints(v) => {
                let (Some(min), Some(max)) = (min.as_i64(), max.as_i64()) else { return true };
                let i = v.partition_point(|x| *x < min);
                i < v.len() && v[i] <= max
            }
            Sorted::Strings(v) => {
                // The minimum may be a prefix (never larger); a maximum may be left out.
                let Some(min) = min.as_str() else { return true };
                let i = v.partition_point(|x| x.as_str() < min);
                i < v.len() && max.as_str().is_none_or(|m| v[i].as_str() <= m)
            }
            Sorted::Unknown => true,
        }
    }

    /// How many distinct non-null keys the batch has.
    pub fn key_count(&self) -> usize {
        self.set.len()
    }
}

/// The batch with the last row of each key (rows with a null in the key all kept, in order),
/// and its keys.
pub fn last_row_per_key(
    schema: &SchemaRef,
    data: &[RecordBatch],
    key_names: &[String],
) -> Result<(RecordBatch, Keys), SinkError> {
    let all = concat_batches(schema, data).map_err(invalid)?;
    let key_idx: Vec<usize> =
        key_names.iter().map(|k| schema.index_of(k).map_err(invalid)).collect::<Result<_, _>>()?;
    let types: Vec<DataType> = key_idx.iter().map(|&i| schema.field(i).data_type().clone()).collect();
    let converter = RowConverter::new(types.iter().map(|t| SortField::new(t.clone())).collect()).map_err(invalid)?;
    let cols: Vec<ArrayRef> = key_idx.iter().map(|&i| all.column(i).clone()).collect();
    let rows = converter.convert_columns(&cols).map_err(invalid)?;
    let mut set = HashSet::new();
    let mut keep = Vec::new();
    for r in (0..all.num_rows()).rev() {
        // A key with a null never matches: every such row is kept.
        let null_key = cols.iter().any(|c| c.is_null(r));
        if null_key || set.insert(rows.row(r).as_ref().to_vec()) {
            keep.push(r as u32);
        }
    }
    keep.reverse();
    let idx = UInt32Array::from(keep);
    let columns: Vec<ArrayRef> =
        all.columns().iter().map(|c| take(c.as_ref(), &idx, None)).collect::<Result<_, _>>().map_err(invalid)?;
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(invalid)?;
    let sorted = match (key_idx.as_slice(), types.first()) {
        ([k], Some(DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64)) => {
            let col = cast(batch.column(*k), &DataType::Int64).map_err(invalid)?;
            let mut v: Vec<i64> = col.as_primitive::<Int64Type>().iter().flatten().collect();
            v.sort_unstable();
            Sorted::Ints(v)
        }
        ([k], Some(DataType::Utf8)) => {
            let mut v: Vec<String> = batch.column(*k).as_string::<i32>().iter().flatten().map(str::to_string).collect();
            v.sort_unstable();
            Sorted::Strings(v)
        }
        _ => Sorted::Unknown,
    };
    Ok((batch, Keys { converter, types, names: key_names.to_vec(), set, sorted }))
}

/// What a live file becomes: untouched, or its rows without the matched ones (possibly none).
pub enum Rewrite {
    Untouched,
    Without { schema: SchemaRef, batches: Vec<RecordBatch> },
}

/// Reads the live file `add` and drops the rows whose key is in `keys`.
pub fn rewrite(table: &Path, add: &Add, keys: &Keys) -> Result<Rewrite, SinkError> {
    if keys.key_count() == 0 {
        return Ok(Rewrite::Untouched);
    }
    let rel = decode_path(&add.path);
    let path = if Path::new(&rel).is_absolute() { Path::new(&rel).to_path_buf() } else { table.join(&rel) };
    let err = |e: String| {
        SinkError::Invalid(format!(
            "merge: reading {} (a live file of the table) to find the batch's keys: {e}",
            path.display()
        ))
    };
    let file = std::fs::File::open(&path).map_err(|e| err(e.to_string()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| err(e.to_string()))?;
    let schema = reader.schema().clone();
    let reader = reader.build().map_err(|e| err(e.to_string()))?;
    let mut kept = Vec::new();
    let mut removed = 0;
    for batch in reader {
        let batch = batch.map_err(|e| err(e.to_string()))?;
        // A file written before a key column existed (schema evolution) reads it as null,
        // which never matches.
        let Some(matched) = keys.matches(&batch)? else { return Ok(Rewrite::Untouched) };
        let n = matched.true_count();
        removed += n;
        if n == 0 {
            kept.push(batch);
        } else {
            let keep = arrow::compute::not(&matched).map_err(invalid)?;
            kept.push(filter_record_batch(&batch, &keep).map_err(invalid)?);
        }
    }
    if removed == 0 {
        return Ok(Rewrite::Untouched);
    }
    kept.retain(|b| b.num_rows() > 0);
    Ok(Rewrite::Without { schema, batches: kept })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};

    use super::*;
    use crate::schema::parse_ddl;

    #[test]
    fn the_last_row_of_a_key_wins_and_null_keys_are_all_kept() {
        let schema = parse_ddl("id bigint, v string").unwrap();
        let b1 = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![Some(1), Some(2), None, Some(1)])),
                Arc::new(StringArray::from(vec!["a", "b", "n1", "c"])),
            ],
        )
        .unwrap();
        let b2 = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![Some(2), None])), Arc::new(StringArray::from(vec!["d", "n2"]))],
        )
        .unwrap();
        let (batch, keys) = last_row_per_key(&schema, &[b1, b2], &["id".to_string()]).unwrap();
        let v: Vec<&str> = batch.column(1).as_any().downcast_ref::<StringArray>().unwrap().iter().flatten().collect();
        assert_eq!(v, ["n1", "c", "d", "n2"]);
        assert_eq!(keys.key_count(), 2);
        // A file with keys 1 and 3 and a null: 1 matches, the null never does.
        let file = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), Some(3), None])),
                Arc::new(StringArray::from(vec!["x", "y", "z"])),
            ],
        )
        .unwrap();
        let m = keys.matches(&file).unwrap().unwrap();
        assert_eq!(m.iter().collect::<Vec<_>>(), [Some(true), Some(false), Some(false)]);
        // Files are skipped by their key range: keys {1, 2}.
        let add = |min: i64, max: i64| Add {
            path: "f".into(),
            partition_values: Default::default(),
            size: 1,
            modification_time: 0,
            data_change: true,
            stats: Some(format!("{{\"numRecords\":1,\"minValues\":{{\"id\":{min}}},\"maxValues\":{{\"id\":{max}}}}}")),
            tags: None,
            deletion_vector: None,
        };
        assert!(keys.may_hold(&add(0, 1)) && keys.may_hold(&add(2, 9)) && keys.may_hold(&add(-5, 5)));
        assert!(!keys.may_hold(&add(3, 9)) && !keys.may_hold(&add(-9, 0)));
    }
}
