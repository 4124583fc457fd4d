//! One side's buffered rows of a stream-stream join, on a [`StateStore`]: a multi-map from join
//! key to the side's past rows, each with Spark's `matched` flag (state format 2 of
//! `SymmetricHashJoinStateManager`). Laid out as Spark's two stores in one:
//! - `n<key>` → the number of rows of the key (u32 LE), Spark's `keyToNumValues`;
//! - `v<key><index u32 BE>` → one row, Spark's `keyWithIndexToValue`: a flags byte (bit 0
//!   matched, bit 1 has an eviction time, bit 2 has a range time), the eviction time (i64 LE), the
//!   range-condition time (i64 LE), then the whole row in Arrow's row format;
//! - `m` → the side's row count (u64 LE) and a lower bound of the buffered eviction times
//!   (flag byte, i64 LE), so that a batch whose state watermark is below every buffered row does
//!   not scan the store.
//!
//! Keys are the bytes of the join key columns in Arrow's row format, nulls included (the caller
//! decides which null keys may be buffered and looked up).
//!
//! Eviction finds the rows to evict through an index of (eviction time, key) pairs kept in
//! memory, as Spark 4.1's state format 4 keeps one in an ordered column family (`tsWithKey`);
//! `StateStore` has no ordered range reads, so the index lives beside the store. It is built by
//! one scan of the store (the eviction path of Spark's format 2, `removeByValueCondition`)
//! the first time a batch evicts after the process starts or a batch is run again, and then
//! follows the batches this process commits. It costs a key and 8 bytes per distinct (time, key)
//! buffered.

use std::collections::BTreeSet;

use crate::state::{StateError, StateStore};

const META: &[u8] = b"m";
const COUNT: u8 = b'n';
const VALUE: u8 = b'v';

const MATCHED: u8 = 1;
const HAS_EVICT: u8 = 2;
const HAS_RANGE: u8 = 4;

/// One buffered row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buffered {
    /// Its position among the key's rows (changes when rows before it are evicted).
    pub index: u32,
    /// Whether some row of the other side has joined it (Spark's `matched`): an outer row that
    /// was matched is not emitted null-padded when it leaves.
    pub matched: bool,
    /// When it leaves: at a state watermark at or past this time (µs); never when `None`.
    pub evict_at: Option<i64>,
    /// Its range-condition column (µs), when the join has a range condition.
    pub range_time: Option<i64>,
    /// The whole row, in the side's Arrow row format.
    pub row: Vec<u8>,
}

/// A row that left the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evicted {
    pub matched: bool,
    pub row: Vec<u8>,
}

/// What one side's state held and did in a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SideMetrics {
    /// Rows buffered after the batch (Spark's `numKeys` of `keyWithIndexToValue`).
    pub rows: u64,
    /// Rows appended in the batch.
    pub appended: u64,
    /// Rows removed in the batch: evicted, or (left semi) removed once matched.
    pub removed: u64,
    /// The store's bytes.
    pub memory_used_bytes: u64,
}

/// The side's `m` entry: its row count and the lowest eviction time buffered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Meta {
    rows: u64,
    /// A lower bound of the eviction times of the buffered rows (`None`: no row has one).
    oldest: Option<i64>,
}

impl Meta {
    fn encode(&self) -> Vec<u8> {
        let mut out = self.rows.to_le_bytes().to_vec();
        out.push(self.oldest.is_some() as u8);
        out.extend_from_slice(&self.oldest.unwrap_or(0).to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Meta> {
        if bytes.len() != 17 {
            return None;
        }
        let rows = u64::from_le_bytes(bytes[0..8].try_into().ok()?);
        let oldest = (bytes[8] == 1).then(|| i64::from_le_bytes(bytes[9..17].try_into().expect("8 bytes")));
        Some(Meta { rows, oldest })
    }
}

/// One side's join state.
pub struct SideState {
    store: Box<dyn StateStore>,
    /// Which side, for messages.
    name: &'static str,
    meta: Meta,
    appended: u64,
    removed: u64,
    /// The batch in progress.
    batch: Option<u64>,
    /// (eviction time, key) of every buffered row that has an eviction time, maybe more (a pair
    /// whose rows left otherwise stays until its time comes); `None` until a scan builds it.
    index: Option<BTreeSet<(i64, Vec<u8>)>>,
    /// The batch whose committed state `index` is exactly, when no batch has changed it since.
    index_committed: Option<u64>,
}

fn count_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(COUNT);
    k.extend_from_slice(key);
    k
}

fn value_key(key: &[u8], index: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 5);
    k.push(VALUE);
    k.extend_from_slice(key);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn encode_value(matched: bool, evict_at: Option<i64>, range_time: Option<i64>, row: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(17 + row.len());
    out.push(
        if matched { MATCHED } else { 0 }
            | if evict_at.is_some() { HAS_EVICT } else { 0 }
            | if range_time.is_some() { HAS_RANGE } else { 0 },
    );
    out.extend_from_slice(&evict_at.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&range_time.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(row);
    out
}

/// A stored value's fields before the row.
struct Header {
    matched: bool,
    evict_at: Option<i64>,
    range_time: Option<i64>,
}

/// The header and the row of a stored value.
fn decode_value(bytes: &[u8]) -> Option<(Header, &[u8])> {
    if bytes.len() < 17 {
        return None;
    }
    let flags = bytes[0];
    let evict = i64::from_le_bytes(bytes[1..9].try_into().expect("8 bytes"));
    let range = i64::from_le_bytes(bytes[9..17].try_into().expect("8 bytes"));
    let header = Header {
        matched: flags & MATCHED != 0,
        evict_at: (flags & HAS_EVICT != 0).then_some(evict),
        range_time: (flags & HAS_RANGE != 0).then_some(range),
    };
    Some((header, &bytes[17..]))
}

impl SideState {
    /// The state of one side (`name`: "left" or "right", for messages) on `store`.
    pub fn new(store: Box<dyn StateStore>, name: &'static str) -> SideState {
        SideState {
            store,
            name,
            meta: Meta::default(),
            appended: 0,
            removed: 0,
            batch: None,
            index: None,
            index_committed: None,
        }
    }

    fn corrupt(&self, what: String) -> StateError {
        StateError::Corrupt {
            dir: std::path::PathBuf::from(format!("<{} side of a stream-stream join>", self.name)),
            message: what,
        }
    }

    /// Starts batch `batch_id` from the state committed by the batch before.
    pub fn begin(&mut self, batch_id: u64) -> Result<(), StateError> {
        // The index stays only when this batch follows the one it was committed with.
        let follows = self.index_committed.is_some() && self.index_committed == batch_id.checked_sub(1);
        self.index_committed = None;
        if !follows {
            self.index = None;
        }
        self.batch = None;
        self.store.begin(batch_id)?;
        self.batch = Some(batch_id);
        self.appended = 0;
        self.removed = 0;
        self.meta = match self.store.get(META)? {
            None => Meta::default(),
            Some(b) => {
                Meta::decode(&b).ok_or_else(|| self.corrupt(format!("join state entry `m` has {} bytes", b.len())))?
            }
        };
        Ok(())
    }

    fn count(&self, key: &[u8]) -> Result<u32, StateError> {
        match self.store.get(&count_key(key))? {
            None => Ok(0),
            Some(b) => b
                .as_slice()
                .try_into()
                .map(u32::from_le_bytes)
                .map_err(|_| self.corrupt(format!("a join state row count has {} bytes", b.len()))),
        }
    }

    fn value(&self, key: &[u8], index: u32) -> Result<Buffered, StateError> {
        let bytes = self
            .store
            .get(&value_key(key, index))?
            .ok_or_else(|| self.corrupt(format!("join state row {index} of a key with more rows is missing")))?;
        let (h, row) = decode_value(&bytes)
            .ok_or_else(|| self.corrupt(format!("join state row {index} has {} bytes", bytes.len())))?;
        Ok(Buffered { index, matched: h.matched, evict_at: h.evict_at, range_time: h.range_time, row: row.to_vec() })
    }

    /// The rows buffered under `key`, in index order.
    pub fn get(&self, key: &[u8]) -> Result<Vec<Buffered>, StateError> {
        (0..self.count(key)?).map(|i| self.value(key, i)).collect()
    }

    /// Sets the `matched` flag of a row `get` returned.
    pub fn mark_matched(&mut self, key: &[u8], row: &Buffered) {
        self.store.put(&value_key(key, row.index), &encode_value(true, row.evict_at, row.range_time, &row.row));
    }

    /// Buffers `row` under `key` (Spark's `append`).
    pub fn append(
        &mut self,
        key: &[u8],
        row: &[u8],
        evict_at: Option<i64>,
        range_time: Option<i64>,
        matched: bool,
    ) -> Result<(), StateError> {
        let n = self.count(key)?;
        self.store.put(&value_key(key, n), &encode_value(matched, evict_at, range_time, row));
        self.store.put(&count_key(key), &(n + 1).to_le_bytes());
        self.meta.rows += 1;
        if let Some(t) = evict_at {
            self.meta.oldest = Some(self.meta.oldest.map_or(t, |o| o.min(t)));
            if let Some(index) = &mut self.index {
                index.insert((t, key.to_vec()));
            }
        }
        self.appended += 1;
        Ok(())
    }

    /// Removes and returns every row whose eviction time is at or behind `threshold`. Reads
    /// only the keys the index names at or behind it (scanning the store once to build the
    /// index when there is none), and nothing when no buffered row can be that old.
    pub fn evict(&mut self, threshold: i64) -> Result<Vec<Evicted>, StateError> {
        match self.meta.oldest {
            Some(oldest) if oldest <= threshold => {}
            _ => return Ok(Vec::new()),
        }
        let Some(index) = &mut self.index else { return self.evict_by_scan(threshold) };
        // The pairs after the threshold stay; the keys of the others are read.
        let stay = index.split_off(&(threshold.saturating_add(1), Vec::new()));
        let due = std::mem::replace(index, stay);
        let mut keys: Vec<Vec<u8>> = due.into_iter().map(|(_, k)| k).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut out = Vec::new();
        for key in keys {
            let mut holes = Vec::new();
            for b in self.get(&key)? {
                if b.evict_at.is_some_and(|t| t <= threshold) {
                    holes.push(b.index);
                    out.push(Evicted { matched: b.matched, row: b.row });
                }
            }
            self.remove_sorted(&key, &holes)?;
        }
        self.meta.oldest = self.index.as_ref().and_then(|i| i.first()).map(|(t, _)| *t);
        Ok(out)
    }

    /// [`Self::evict`] by reading every row of the store, building the index of what stays.
    fn evict_by_scan(&mut self, threshold: i64) -> Result<Vec<Evicted>, StateError> {
        // (key, index, row) of every row to evict, the oldest time that stays, and the index.
        let mut gone: Vec<(Vec<u8>, u32, Evicted)> = Vec::new();
        let mut oldest: Option<i64> = None;
        let mut index: BTreeSet<(i64, Vec<u8>)> = BTreeSet::new();
        let mut damaged: Option<String> = None;
        self.store.for_each(&mut |k, v| {
            if k.first() != Some(&VALUE) || k.len() < 5 {
                return;
            }
            let Some((h, row)) = decode_value(v) else {
                damaged.get_or_insert_with(|| format!("a join state row has {} bytes", v.len()));
                return;
            };
            let (key, at) = k[1..].split_at(k.len() - 5);
            match h.evict_at {
                Some(t) if t <= threshold => {
                    let at = u32::from_be_bytes(at.try_into().expect("4 bytes"));
                    gone.push((key.to_vec(), at, Evicted { matched: h.matched, row: row.to_vec() }));
                }
                Some(t) => {
                    oldest = Some(oldest.map_or(t, |o: i64| o.min(t)));
                    index.insert((t, key.to_vec()));
                }
                None => {}
            }
        })?;
        if let Some(d) = damaged {
            return Err(self.corrupt(d));
        }
        gone.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        let mut i = 0;
        while i < gone.len() {
            let key = gone[i].0.clone();
            let mut holes: Vec<u32> = Vec::new();
            while i < gone.len() && gone[i].0 == key {
                holes.push(gone[i].1);
                i += 1;
            }
            self.remove_sorted(&key, &holes)?;
        }
        self.meta.oldest = oldest;
        self.index = Some(index);
        Ok(gone.into_iter().map(|(_, _, e)| e).collect())
    }

    /// Removes rows `indices` (as `get` numbered them) of `key`: Spark 4.3's left semi join drops
    /// a left row once a right row has matched it, since it can never be emitted again.
    pub fn remove(&mut self, key: &[u8], indices: &[u32]) -> Result<(), StateError> {
        let mut holes = indices.to_vec();
        holes.sort_unstable();
        holes.dedup();
        self.remove_sorted(key, &holes)
    }

    /// Removes rows `holes` (ascending) of `key`: the rows that stay fill the holes below the new
    /// count (Spark swaps the last row into each hole), and the entries from the new count up go.
    fn remove_sorted(&mut self, key: &[u8], holes: &[u32]) -> Result<(), StateError> {
        let n = self.count(key)?;
        if holes.last().is_some_and(|&h| h >= n) {
            return Err(
                self.corrupt(format!("join state row {} of a key with {n} rows is missing", holes[holes.len() - 1]))
            );
        }
        let left = n - holes.len() as u32;
        let mut low_holes = holes.iter().copied().filter(|&h| h < left);
        for from in (left..n).filter(|j| holes.binary_search(j).is_err()) {
            let to = low_holes.next().expect("as many rows staying above the count as holes below it");
            let bytes = self
                .store
                .get(&value_key(key, from))?
                .ok_or_else(|| self.corrupt(format!("join state row {from} of a key with {n} rows is missing")))?;
            self.store.put(&value_key(key, to), &bytes);
        }
        for j in left..n {
            self.store.remove(&value_key(key, j));
        }
        if left == 0 {
            self.store.remove(&count_key(key));
        } else {
            self.store.put(&count_key(key), &left.to_le_bytes());
        }
        self.meta.rows -= holes.len() as u64;
        self.removed += holes.len() as u64;
        Ok(())
    }

    /// Makes the batch's changes durable and returns what the side holds and did.
    pub fn commit(&mut self) -> Result<SideMetrics, StateError> {
        self.store.put(META, &self.meta.encode());
        let m = self.store.commit()?;
        if self.index.is_some() {
            self.index_committed = self.batch;
        }
        self.batch = None;
        Ok(SideMetrics {
            rows: self.meta.rows,
            appended: self.appended,
            removed: self.removed,
            memory_used_bytes: m.memory_used_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::memory::MemoryStateStore;

    fn open(dir: &std::path::Path) -> SideState {
        SideState::new(Box::new(MemoryStateStore::open(dir, 5).unwrap()), "left")
    }

    fn rows(s: &SideState, key: &[u8]) -> Vec<(String, bool)> {
        s.get(key).unwrap().into_iter().map(|b| (String::from_utf8(b.row).unwrap(), b.matched)).collect()
    }

    #[test]
    fn eviction_fills_holes_keeps_the_rest_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path());
        s.begin(0).unwrap();
        for (row, t) in [("a0", 5), ("a1", 1), ("a2", 9), ("a3", 2), ("a4", 7)] {
            s.append(b"a", row.as_bytes(), Some(t), None, false).unwrap();
        }
        s.append(b"b", b"b0", Some(1), None, false).unwrap();
        s.append(b"n", b"n0", None, None, false).unwrap();
        let m = s.commit().unwrap();
        assert_eq!((m.rows, m.appended, m.removed), (7, 7, 0));

        s.begin(1).unwrap();
        let first = s.get(b"a").unwrap();
        s.mark_matched(b"a", &first[3]);
        let mut gone: Vec<(String, bool)> =
            s.evict(2).unwrap().into_iter().map(|e| (String::from_utf8(e.row).unwrap(), e.matched)).collect();
        gone.sort();
        assert_eq!(gone, vec![("a1".into(), false), ("a3".into(), true), ("b0".into(), false)]);
        // a1 (index 1) and a3 (index 3) left 3 rows: a4 fills hole 1, a3's hole is past the count.
        assert_eq!(rows(&s, b"a"), vec![("a0".into(), false), ("a4".into(), false), ("a2".into(), false)]);
        assert_eq!(s.count(b"b").unwrap(), 0);
        assert_eq!(rows(&s, b"n"), vec![("n0".into(), false)]);
        // Nothing buffered is older than 5 now: a state watermark of 4 does not scan.
        assert_eq!(s.meta.oldest, Some(5));
        assert!(s.evict(4).unwrap().is_empty());
        let m = s.commit().unwrap();
        assert_eq!((m.rows, m.appended, m.removed), (4, 0, 3));

        // A retry of batch 1 starts from batch 0's rows and oldest time again.
        s.begin(1).unwrap();
        assert_eq!(s.meta, Meta { rows: 7, oldest: Some(1) });
        assert_eq!(s.get(b"a").unwrap().len(), 5);
        // Removing a0 and a4: a3 fills hole 0.
        s.remove(b"a", &[4, 0]).unwrap();
        let strs = |v: &[&str]| v.iter().map(|r| (r.to_string(), false)).collect::<Vec<_>>();
        assert_eq!(rows(&s, b"a"), strs(&["a3", "a1", "a2"]));
        assert!(s.remove(b"a", &[3]).is_err(), "a row past the key's count is refused");
        let m = s.commit().unwrap();
        assert_eq!((m.rows, m.appended, m.removed), (5, 0, 2));
    }

    /// Batch 2 evicts through the index the scan of batch 1 built; run again (a replay), it
    /// evicts by a scan: the same rows leave, and the same stay.
    #[test]
    fn eviction_through_the_index_and_by_a_scan_agree() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path());
        s.begin(0).unwrap();
        for (k, row, t) in [(b"a", "a0", 5), (b"b", "b0", 3), (b"a", "a1", 8), (b"c", "c0", 4), (b"b", "b1", 9)] {
            s.append(k, row.as_bytes(), Some(t), None, false).unwrap();
        }
        s.append(b"c", b"c1", None, None, false).unwrap();
        s.commit().unwrap();
        s.begin(1).unwrap();
        assert!(s.index.is_none());
        let names = |v: Vec<Evicted>| {
            let mut n: Vec<String> = v.into_iter().map(|e| String::from_utf8(e.row).unwrap()).collect();
            n.sort();
            n
        };
        assert_eq!(names(s.evict(3).unwrap()), ["b0"]);
        assert!(s.index.is_some(), "the scan built the index");
        s.commit().unwrap();
        let batch2 = |s: &mut SideState| {
            s.begin(2).unwrap();
            s.append(b"d", b"d0", Some(6), None, false).unwrap();
            let gone = names(s.evict(6).unwrap());
            let mut left: Vec<(String, bool)> = [&b"a"[..], b"b", b"c", b"d"].iter().flat_map(|k| rows(s, k)).collect();
            left.sort();
            let m = s.commit().unwrap();
            (gone, left, m.rows, m.removed, s.meta.oldest)
        };
        let through_index = batch2(&mut s);
        assert_eq!(
            through_index,
            (
                vec!["a0".to_string(), "c0".into(), "d0".into()],
                vec![("a1".to_string(), false), ("b1".into(), false), ("c1".into(), false)],
                3,
                3,
                Some(8)
            )
        );
        s.begin(2).unwrap();
        assert!(s.index.is_none(), "a batch run again drops the index");
        assert_eq!(batch2(&mut s), through_index);
    }
}
