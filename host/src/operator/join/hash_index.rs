//! The broadcast side of a stream-static join: the whole table in one batch, and a hash table from
//! join-key bytes to the table rows that have that key.
//!
//! The hash table holds only group numbers (4 bytes a slot, so that a table of a million keys
//! stays in the processor's cache); each group's key bytes are in one arena, compared on a probe.
//! Rows of one key are stored contiguously in table order, so a lookup is one hash probe and a
//! slice, and the matches of a stream row come out in table row order. Rows whose key has a null
//! are not indexed: they match nothing, and a static side's unmatched rows are never output by the
//! stream-static joins weir (and Spark) supports.

use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use std::hash::{BuildHasher, BuildHasherDefault};

use hashbrown::HashTable;
use rustc_hash::FxHasher;

use super::keys::KeyEncoder;

/// A table indexed by its join keys.
#[derive(Debug)]
pub struct HashIndex {
    /// The whole table (its batches concatenated).
    batch: RecordBatch,
    /// Group numbers, found by their key's hash.
    groups: HashTable<u32>,
    /// Group `g`'s key bytes are `keys[key_ends[g - 1]..key_ends[g]]` (from 0 for group 0).
    keys: Vec<u8>,
    key_ends: Vec<usize>,
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
        let mut groups: HashTable<u32> = HashTable::with_capacity(n);
        let (mut keys, mut key_ends, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
        let mut counts: Vec<u32> = Vec::new();
        // The group of each row, u32::MAX for a row with a null key.
        let mut group_of: Vec<u32> = Vec::with_capacity(n);
        for row in 0..n {
            let Some(key) = encoded.get(row) else {
                group_of.push(u32::MAX);
                continue;
            };
            let h = hash(key);
            let g = match groups.find(h, |&g| group_key(&keys, &key_ends, g) == key) {
                Some(&g) => g,
                None => {
                    let g = counts.len() as u32;
                    keys.extend_from_slice(key);
                    key_ends.push(keys.len());
                    hashes.push(h);
                    groups.insert_unique(h, g, |&g| hashes[g as usize]);
                    counts.push(0);
                    g
                }
            };
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
        groups.shrink_to_fit(|&g| hashes[g as usize]);
        keys.shrink_to_fit();
        Ok(HashIndex { batch, groups, keys, key_ends, starts, rows, key_types: encoder.types().to_vec() })
    }

    /// The table rows whose key is `key`, in table order (empty when none).
    pub fn lookup(&self, key: &[u8]) -> &[u32] {
        match self.groups.find(hash(key), |&g| group_key(&self.keys, &self.key_ends, g) == key) {
            Some(&g) => &self.rows[self.starts[g as usize] as usize..self.starts[g as usize + 1] as usize],
            None => &[],
        }
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

    /// The memory held, in bytes: the table's Arrow buffers, the hash table's slots (one control
    /// byte and a group number each), the keys, and the row-number vectors.
    pub fn memory_bytes(&self) -> usize {
        self.batch.get_array_memory_size()
            + self.groups.capacity() * (std::mem::size_of::<u32>() + 1)
            + self.keys.capacity()
            + self.key_ends.capacity() * std::mem::size_of::<usize>()
            + (self.starts.capacity() + self.rows.capacity()) * std::mem::size_of::<u32>()
    }
}

/// The hash of a key.
fn hash(key: &[u8]) -> u64 {
    BuildHasherDefault::<FxHasher>::default().hash_one(key)
}

/// The key bytes of group `g`.
fn group_key<'a>(keys: &'a [u8], key_ends: &[usize], g: u32) -> &'a [u8] {
    let g = g as usize;
    &keys[if g == 0 { 0 } else { key_ends[g - 1] }..key_ends[g]]
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
