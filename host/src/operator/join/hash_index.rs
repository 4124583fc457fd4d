//! The broadcast side of a stream-static join: the whole table in one batch, and a hash table from
//! join-key bytes to the table rows that have that key.
//!
//! Keys are numbered by a [`KeyTable`], probed a batch at a time. Rows of one key are stored contiguously in table order, so a lookup is one hash probe and a
//! slice, and the matches of a stream row come out in table row order. Rows whose key has a null
//! are not indexed: they match nothing, and a static side's unmatched rows are never output by the
//! stream-static joins weir (and Spark) supports.

use super::key_table::{KeyTable, NONE};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::keys::{EncodedKeys, KeyEncoder};

/// A table indexed by its join keys.
#[derive(Debug)]
pub struct HashIndex {
    /// The whole table (its batches concatenated).
    batch: RecordBatch,
    /// Key bytes → group number.
    groups: KeyTable,
    /// The rows of group `g` are `rows[starts[g]..starts[g + 1]]`.
    starts: Vec<u32>,
    /// Row numbers of `batch`, grouped by key, each group in table order.
    rows: Vec<u32>,
    /// The types the keys were encoded as.
    key_types: Vec<DataType>,
}

impl HashIndex {
    /// Indexes `batches` (all of `schema`) by the columns `key_indices`, encoded with `encoder`
    /// (the same encoder must encode the keys looked up). Fails for a table of 2^32 rows or more.
    pub fn build(
        schema: &SchemaRef,
        batches: &[RecordBatch],
        key_indices: &[usize],
        encoder: &KeyEncoder,
    ) -> Result<HashIndex, ArrowError> {
        let batch = arrow::compute::concat_batches(schema, batches)?;
        let n = batch.num_rows();
        if u32::try_from(n).is_err() {
            return Err(ArrowError::InvalidArgumentError(format!(
                "a static table of {n} rows is too large to index (at most {} rows); split the join or \
                 filter the table",
                u32::MAX
            )));
        }
        let encoded = encoder.encode(&batch, key_indices)?;
        let mut groups = KeyTable::new();
        let mut counts: Vec<u32> = Vec::new();
        // The group of each row, u32::MAX for a row with a null key.
        let mut group_of: Vec<u32> = Vec::with_capacity(n);
        for row in 0..n {
            let Some(key) = encoded.get(row) else {
                group_of.push(u32::MAX);
                continue;
            };
            let g = groups.insert(key).map_err(|e| {
                ArrowError::InvalidArgumentError(format!(
                    "the static table has {e}; split the join or filter the table"
                ))
            })?;
            if g as usize == counts.len() {
                counts.push(0);
            }
            counts[g as usize] += 1;
            group_of.push(g);
        }
        let mut starts = Vec::with_capacity(counts.len() + 1);
        let mut total = 0u32;
        starts.push(0);
        for c in &counts {
            total += c;
            starts.push(total);
        }
        // Fill each group from its start, in row order; `next` is each group's next free slot.
        let mut next: Vec<u32> = starts[..counts.len()].to_vec();
        let mut rows = vec![0u32; total as usize];
        for (row, &g) in group_of.iter().enumerate() {
            if g != u32::MAX {
                rows[next[g as usize] as usize] = row as u32;
                next[g as usize] += 1;
            }
        }
        groups.shrink_to_fit();
        Ok(HashIndex { batch, groups, starts, rows, key_types: encoder.types().to_vec() })
    }

    /// The table rows whose key is `key`, in table order (empty when none).
    pub fn lookup(&self, key: &[u8]) -> &[u32] {
        self.rows_of(self.groups.find(key))
    }

    /// The group of each of `keys` (a null key's: none), for [`Self::rows_of`]; probes the whole
    /// batch at once, which is faster than a lookup per row for a large table.
    pub fn groups_of(&self, keys: &EncodedKeys, out: &mut Vec<u32>) {
        self.groups.find_all((0..keys.len()).map(|r| keys.get(r)), out);
    }

    /// The table rows of a group [`Self::groups_of`] gave, in table order (empty for none).
    pub fn rows_of(&self, group: u32) -> &[u32] {
        if group == NONE {
            return &[];
        }
        &self.rows[self.starts[group as usize] as usize..self.starts[group as usize + 1] as usize]
    }

    /// The whole table, in one batch (row numbers from [`HashIndex::lookup`] index into it).
    pub fn batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// Number of table rows (null keys included).
    pub fn rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// Number of distinct non-null keys.
    pub fn distinct_keys(&self) -> usize {
        self.groups.len()
    }

    /// The types the keys were encoded as.
    pub fn key_types(&self) -> &[DataType] {
        &self.key_types
    }

    /// The memory held, in bytes: the table's Arrow buffers, the key table, and the row-number
    /// vectors.
    pub fn memory_bytes(&self) -> usize {
        self.batch.get_array_memory_size()
            + self.groups.memory_bytes()
            + (self.starts.capacity() + self.rows.capacity()) * std::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn table(keys: Vec<Option<&str>>) -> (SchemaRef, Vec<RecordBatch>) {
        let schema =
            Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true), Field::new("n", DataType::Int64, false)]));
        let n = keys.len() as i64;
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(keys)), Arc::new(Int64Array::from_iter_values(0..n))],
        )
        .unwrap();
        (schema, vec![batch])
    }

    fn key(encoder: &KeyEncoder, k: &str) -> Vec<u8> {
        let b = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true)])),
            vec![Arc::new(StringArray::from(vec![k]))],
        )
        .unwrap();
        encoder.encode(&b, &[0]).unwrap().get(0).unwrap().to_vec()
    }

    #[test]
    fn duplicate_keys_come_back_in_table_order_and_null_keys_are_not_indexed() {
        let encoder = KeyEncoder::new(vec![DataType::Utf8]).unwrap();
        let (schema, batches) = table(vec![Some("a"), Some("b"), None, Some("a"), Some("c"), Some("a")]);
        // Split over two batches: row numbers count across them.
        let (b1, b2) = (batches[0].slice(0, 2), batches[0].slice(2, 4));
        let index = HashIndex::build(&schema, &[b1, b2], &[0], &encoder).unwrap();
        assert_eq!(index.lookup(&key(&encoder, "a")), &[0, 3, 5]);
        assert_eq!(index.lookup(&key(&encoder, "b")), &[1]);
        assert_eq!(index.lookup(&key(&encoder, "c")), &[4]);
        assert_eq!(index.lookup(&key(&encoder, "z")), &[] as &[u32]);
        assert_eq!((index.rows(), index.distinct_keys()), (6, 3));
    }

    #[test]
    fn an_empty_table_matches_nothing() {
        let encoder = KeyEncoder::new(vec![DataType::Utf8]).unwrap();
        let (schema, _) = table(vec![]);
        let index = HashIndex::build(&schema, &[], &[0], &encoder).unwrap();
        assert_eq!(index.rows(), 0);
        assert_eq!(index.lookup(&key(&encoder, "a")), &[] as &[u32]);
    }

    #[test]
    fn memory_is_positive_and_grows_with_rows() {
        let encoder = KeyEncoder::new(vec![DataType::Utf8]).unwrap();
        let names: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
        let memory = |n: usize| {
            let (schema, batches) = table(names[..n].iter().map(|s| Some(s.as_str())).collect());
            HashIndex::build(&schema, &batches, &[0], &encoder).unwrap().memory_bytes()
        };
        let (m10, m1000, m10000) = (memory(10), memory(1000), memory(10_000));
        assert!(m10 > 0);
        assert!(m1000 > m10, "{m1000} <= {m10}");
        assert!(m10000 > m1000, "{m10000} <= {m1000}");
        // At least the keys, the row numbers and the 8-byte column of 10,000 rows.
        assert!(m10000 > 10_000 * (6 + 4 + 8), "{m10000}");
    }
}
