//! One side's buffered rows of a stream-stream join: a multi-map from join key to the side's past
//! rows, each with Spark's `matched` flag (what `SymmetricHashJoinStateManager` keeps), held in
//! memory and made durable on a [`StateStore`] in blocks.
//!
//! In memory, the rows live in *segments*: the rows one batch appended, in append order, their
//! keys and rows (Arrow's row format) in two byte arenas. A hash index maps the 64-bit hash of
//! each key to the ids (segment, position) of its rows (a lookup compares the keys themselves, so
//! rows of keys whose hashes collide are told apart), and a min-heap of (eviction time, id) finds the rows a state
//! watermark passes without scanning (as Spark 4.1's state format 4 keeps its `tsWithKey` index).
//! A row that leaves is marked dead in its segment; a segment whose rows are all dead is dropped,
//! and one with fewer than a quarter of its rows alive has them moved into the current batch's
//! segment when the batch commits, so memory stays within four times the live rows.
//!
//! In the store, a segment is written once, when the batch that appended it commits:
//! - `s<segment u64 BE><chunk u32 BE>` → a chunk of at most [`CHUNK_ROWS`] rows (and about
//!   [`CHUNK_BYTES`]): a `u32` row count, then per row `[u32 key length][key][u32 row length][row]
//!   [presence byte: bit 0 eviction time, bit 1 range time][i64 eviction time][i64 range time]`
//!   (little-endian), never rewritten;
//! - `f<segment u64 BE><chunk u32 BE>` → one byte per row of the chunk (bit 0 alive, bit 1
//!   matched), rewritten when a row of the chunk is matched or leaves.
//!
//! A chunk's entries go when no row of its segment is alive. Every batch therefore writes what it
//! appended once and a flags entry per chunk it touched, instead of one entry per row and flag.
//! The whole state is read back (one scan of the store) when a process starts or a batch is run
//! again; between batches of one process the memory is the committed state.
//!
//! Keys are the bytes of the join key columns in Arrow's row format, nulls included (the caller
//! decides which null keys may be buffered and looked up).

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BinaryHeap};
use std::hash::{BuildHasher, BuildHasherDefault};

use rustc_hash::{FxHashMap, FxHasher};

use crate::state::{StateError, StateStore};

const SEGMENT: u8 = b's';
const FLAGS: u8 = b'f';
/// A stored chunk holds at most this many rows...
pub const CHUNK_ROWS: usize = 4096;
/// ... and ends after the row that takes it past this many bytes.
pub const CHUNK_BYTES: usize = 4 << 20;
/// A segment's arenas stay below this many bytes (positions are `u32`); a batch appending more
/// opens another segment.
const SEGMENT_BYTES: usize = 1 << 31;
/// Segment ids: the batch id times this, plus the segment's number within the batch.
const SEGMENTS_PER_BATCH: u64 = 1 << 20;

/// Row flags, in memory and in `f` entries.
const ALIVE: u8 = 1;
const MATCHED: u8 = 2;
/// Presence bits of a stored row's times.
const HAS_EVICT: u8 = 1;
const HAS_RANGE: u8 = 2;

/// Where a buffered row is: its segment and its position there. Stays valid until the batch
/// commits, also for a row that left the state in the batch (its bytes are still readable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowId {
    segment: u64,
    pos: u32,
}

/// A buffered row, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowView<'a> {
    /// Whether some row of the other side has joined it (Spark's `matched`): an outer row that
    /// was matched is not emitted null-padded when it leaves.
    pub matched: bool,
    /// When it leaves: at a state watermark at or past this time (µs); never when `None`.
    pub evict_at: Option<i64>,
    /// Its range-condition column (µs), when the join has a range condition.
    pub range_time: Option<i64>,
    /// The whole row, in the side's Arrow row format.
    pub row: &'a [u8],
}

/// A row that left the state in this batch (readable through [`SideState::row`] until commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evicted {
    pub id: RowId,
    pub matched: bool,
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
    /// The side's memory: its rows, index and eviction heap, plus what the store reports.
    pub memory_used_bytes: u64,
}

/// The rows one batch appended.
struct Segment {
    id: u64,
    keys: Vec<u8>,
    key_ends: Vec<u32>,
    data: Vec<u8>,
    data_ends: Vec<u32>,
    evict: Vec<i64>,
    range: Vec<i64>,
    /// ALIVE | MATCHED, and (bits 2, 3) HAS_EVICT | HAS_RANGE shifted.
    flags: Vec<u8>,
    alive: u32,
    /// The first row of each stored chunk (empty until the segment is written).
    chunk_starts: Vec<u32>,
    /// Chunks whose flags changed since they were written.
    dirty: Vec<bool>,
}

const EVICT_BIT: u8 = HAS_EVICT << 2;
const RANGE_BIT: u8 = HAS_RANGE << 2;

impl Segment {
    fn new(id: u64) -> Segment {
        Segment {
            id,
            keys: Vec::new(),
            key_ends: Vec::new(),
            data: Vec::new(),
            data_ends: Vec::new(),
            evict: Vec::new(),
            range: Vec::new(),
            flags: Vec::new(),
            alive: 0,
            chunk_starts: Vec::new(),
            dirty: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.flags.len()
    }

    fn written(&self) -> bool {
        !self.chunk_starts.is_empty()
    }

    fn bytes(&self) -> usize {
        self.keys.len() + self.data.len()
    }

    fn span(ends: &[u32], pos: usize) -> std::ops::Range<usize> {
        let start = if pos == 0 { 0 } else { ends[pos - 1] as usize };
        start..ends[pos] as usize
    }

    fn key(&self, pos: usize) -> &[u8] {
        &self.keys[Self::span(&self.key_ends, pos)]
    }

    fn row(&self, pos: usize) -> &[u8] {
        &self.data[Self::span(&self.data_ends, pos)]
    }

    fn evict_at(&self, pos: usize) -> Option<i64> {
        (self.flags[pos] & EVICT_BIT != 0).then(|| self.evict[pos])
    }

    fn range_time(&self, pos: usize) -> Option<i64> {
        (self.flags[pos] & RANGE_BIT != 0).then(|| self.range[pos])
    }

    fn push(&mut self, key: &[u8], row: &[u8], evict_at: Option<i64>, range_time: Option<i64>, flags: u8) -> u32 {
        let pos = self.flags.len() as u32;
        self.keys.extend_from_slice(key);
        self.key_ends.push(self.keys.len() as u32);
        self.data.extend_from_slice(row);
        self.data_ends.push(self.data.len() as u32);
        self.evict.push(evict_at.unwrap_or(0));
        self.range.push(range_time.unwrap_or(0));
        let presence =
            if evict_at.is_some() { EVICT_BIT } else { 0 } | if range_time.is_some() { RANGE_BIT } else { 0 };
        self.flags.push(flags & (ALIVE | MATCHED) | presence);
        if flags & ALIVE != 0 {
            self.alive += 1;
        }
        pos
    }

    /// Marks the chunk holding `pos` as changed (nothing to mark before the segment is written).
    fn touch(&mut self, pos: u32) {
        if self.written() {
            let c = self.chunk_starts.partition_point(|&s| s <= pos) - 1;
            self.dirty[c] = true;
        }
    }

    /// The rows of chunk `c`: `start..end`.
    fn chunk(&self, c: usize) -> std::ops::Range<usize> {
        let start = self.chunk_starts[c] as usize;
        let end = self.chunk_starts.get(c + 1).map_or(self.len(), |&e| e as usize);
        start..end
    }

    /// Cuts the segment into chunks and encodes each: (chunk, rows entry, flags entry).
    fn encode(&mut self) -> Vec<(u32, Vec<u8>, Vec<u8>)> {
        let mut starts = Vec::new();
        let (mut rows, mut bytes) = (0usize, 0usize);
        for pos in 0..self.len() {
            if pos == 0 || rows == CHUNK_ROWS || bytes >= CHUNK_BYTES {
                starts.push(pos as u32);
                (rows, bytes) = (0, 0);
            }
            rows += 1;
            bytes += self.key(pos).len() + self.row(pos).len() + 25;
        }
        self.dirty = vec![false; starts.len()];
        self.chunk_starts = starts;
        (0..self.chunk_starts.len())
            .map(|c| {
                let span = self.chunk(c);
                let mut out = Vec::new();
                out.extend_from_slice(&(span.len() as u32).to_le_bytes());
                for pos in span {
                    for part in [self.key(pos), self.row(pos)] {
                        out.extend_from_slice(&(part.len() as u32).to_le_bytes());
                        out.extend_from_slice(part);
                    }
                    out.push(self.flags[pos] >> 2);
                    out.extend_from_slice(&self.evict[pos].to_le_bytes());
                    out.extend_from_slice(&self.range[pos].to_le_bytes());
                }
                (c as u32, out, self.chunk_flags(c))
            })
            .collect()
    }

    fn chunk_flags(&self, c: usize) -> Vec<u8> {
        self.flags[self.chunk(c)].iter().map(|f| f & (ALIVE | MATCHED)).collect()
    }
}

/// The segment of `id` in `segments` (ordered by id).
fn find(segments: &[Segment], id: RowId) -> Option<&Segment> {
    segments.binary_search_by_key(&id.segment, |s| s.id).ok().map(|i| &segments[i])
}

fn entry_key(kind: u8, segment: u64, chunk: u32) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[0] = kind;
    k[1..9].copy_from_slice(&segment.to_be_bytes());
    k[9..13].copy_from_slice(&chunk.to_be_bytes());
    k
}

/// The ids of one key's rows (most keys have one row).
#[derive(Debug)]
enum Ids {
    One(RowId),
    Many(Vec<RowId>),
}

impl Ids {
    fn push(&mut self, id: RowId) {
        match self {
            Ids::One(first) => *self = Ids::Many(vec![*first, id]),
            Ids::Many(v) => v.push(id),
        }
    }

    fn as_slice(&self) -> &[RowId] {
        match self {
            Ids::One(id) => std::slice::from_ref(id),
            Ids::Many(v) => v,
        }
    }

    /// Keeps the ids `keep` accepts; false when none is left.
    fn retain(&mut self, mut keep: impl FnMut(&RowId) -> bool) -> bool {
        match self {
            Ids::One(id) => keep(id),
            Ids::Many(v) => {
                v.retain(|id| keep(id));
                if v.len() == 1 {
                    *self = Ids::One(v[0]);
                }
                !matches!(self, Ids::Many(v) if v.is_empty())
            }
        }
    }

    fn replace(&mut self, map: &FxHashMap<RowId, RowId>) {
        match self {
            Ids::One(id) => *id = map.get(id).copied().unwrap_or(*id),
            Ids::Many(v) => v.iter_mut().for_each(|id| *id = map.get(id).copied().unwrap_or(*id)),
        }
    }
}

/// The index's hash of a key.
fn hash(key: &[u8]) -> u64 {
    BuildHasherDefault::<FxHasher>::default().hash_one(key)
}

/// One side's join state.
pub struct SideState {
    store: Box<dyn StateStore>,
    /// Which side, for messages.
    name: &'static str,
    /// Ordered by id.
    segments: Vec<Segment>,
    /// Key hash → the ids of the key's rows (and of any key with the same hash).
    index: FxHashMap<u64, Ids>,
    /// (eviction time, row) of every buffered row with an eviction time, and of some that left
    /// (skipped when they come up).
    heap: BinaryHeap<Reverse<(i64, RowId)>>,
    alive: u64,
    appended: u64,
    removed: u64,
    /// The batch in progress.
    batch: Option<u64>,
    /// Segments this batch opened.
    opened: u64,
    /// The committed state that memory holds when no batch is in progress: `Some(None)` the empty
    /// state before batch 0, `Some(Some(n))` batch n's; `None` unknown (read the store).
    holds: Option<Option<u64>>,
}

impl SideState {
    /// The state of one side (`name`: "left" or "right", for messages) on `store`.
    pub fn new(store: Box<dyn StateStore>, name: &'static str) -> SideState {
        SideState {
            store,
            name,
            segments: Vec::new(),
            index: FxHashMap::default(),
            heap: BinaryHeap::new(),
            alive: 0,
            appended: 0,
            removed: 0,
            batch: None,
            opened: 0,
            holds: None,
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
        let follows = self.batch.is_none() && self.holds == Some(batch_id.checked_sub(1));
        self.batch = None;
        self.holds = None;
        self.store.begin(batch_id)?;
        if !follows {
            self.load()?;
        }
        self.batch = Some(batch_id);
        self.opened = 0;
        self.appended = 0;
        self.removed = 0;
        Ok(())
    }

    /// Rebuilds memory from the store's committed state.
    fn load(&mut self) -> Result<(), StateError> {
        self.segments.clear();
        self.index = FxHashMap::default();
        self.heap = BinaryHeap::new();
        self.alive = 0;
        let mut chunks: BTreeMap<(u64, u32), Vec<u8>> = BTreeMap::new();
        let mut flags: BTreeMap<(u64, u32), Vec<u8>> = BTreeMap::new();
        let mut foreign: Option<Vec<u8>> = None;
        self.store.for_each(&mut |k, v| {
            let id = |k: &[u8]| {
                (
                    u64::from_be_bytes(k[1..9].try_into().expect("8 bytes")),
                    u32::from_be_bytes(k[9..13].try_into().expect("4 bytes")),
                )
            };
            match k.first() {
                Some(&SEGMENT) if k.len() == 13 => {
                    chunks.insert(id(k), v.to_vec());
                }
                Some(&FLAGS) if k.len() == 13 => {
                    flags.insert(id(k), v.to_vec());
                }
                _ => {
                    foreign.get_or_insert_with(|| k.to_vec());
                }
            }
        })?;
        if let Some(k) = foreign {
            return Err(self.corrupt(format!(
                "an entry `{}` that is not join state of this weir (checkpoints of weir before its join state \
                 was kept in segments cannot be read)",
                String::from_utf8_lossy(&k[..k.len().min(16)])
            )));
        }
        for ((segment, chunk), bytes) in chunks {
            let f = flags
                .remove(&(segment, chunk))
                .ok_or_else(|| self.corrupt(format!("the flags of chunk {chunk} of segment {segment} are missing")))?;
            if self.segments.last().is_none_or(|s| s.id != segment) {
                if chunk != 0 {
                    return Err(self.corrupt(format!("chunk 0 of segment {segment} is missing")));
                }
                self.segments.push(Segment::new(segment));
            }
            let have = self.segments.last().expect("pushed").chunk_starts.len();
            if have != chunk as usize {
                return Err(self.corrupt(format!("chunk {have} of segment {segment} is missing")));
            }
            let seg = self.segments.last_mut().expect("pushed");
            seg.chunk_starts.push(seg.len() as u32);
            seg.dirty.push(false);
            let decoded = decode_chunk(seg, &bytes, &f);
            if let Err(what) = decoded {
                return Err(self.corrupt(format!("chunk {chunk} of segment {segment}: {what}")));
            }
        }
        if let Some((segment, chunk)) = flags.keys().next() {
            return Err(self.corrupt(format!("chunk {chunk} of segment {segment} has flags but no rows")));
        }
        for seg in &self.segments {
            self.alive += u64::from(seg.alive);
            for pos in 0..seg.len() {
                if seg.flags[pos] & ALIVE == 0 {
                    continue;
                }
                let id = RowId { segment: seg.id, pos: pos as u32 };
                match self.index.entry(hash(seg.key(pos))) {
                    Entry::Occupied(mut e) => e.get_mut().push(id),
                    Entry::Vacant(e) => {
                        e.insert(Ids::One(id));
                    }
                }
                if let Some(t) = seg.evict_at(pos) {
                    self.heap.push(Reverse((t, id)));
                }
            }
        }
        Ok(())
    }

    fn segment(&self, id: RowId) -> Option<&Segment> {
        find(&self.segments, id)
    }

    fn segment_mut(&mut self, id: RowId) -> Option<&mut Segment> {
        match self.segments.binary_search_by_key(&id.segment, |s| s.id) {
            Ok(i) => Some(&mut self.segments[i]),
            Err(_) => None,
        }
    }

    fn is_alive(segments: &[Segment], id: &RowId) -> bool {
        find(segments, *id).and_then(|s| s.flags.get(id.pos as usize)).is_some_and(|f| f & ALIVE != 0)
    }

    /// The ids of the rows buffered under `key`, in the order they were appended (replacing
    /// `out`'s contents).
    pub fn lookup(&self, key: &[u8], out: &mut Vec<RowId>) {
        out.clear();
        if let Some(ids) = self.index.get(&hash(key)) {
            out.extend(
                ids.as_slice()
                    .iter()
                    .filter(|&&id| find(&self.segments, id).is_some_and(|s| s.key(id.pos as usize) == key)),
            );
        }
    }

    /// A row [`Self::lookup`] or [`Self::evict`] gave in this batch.
    pub fn row(&self, id: RowId) -> RowView<'_> {
        let seg = self.segment(id).expect("a row id of this batch");
        let pos = id.pos as usize;
        RowView {
            matched: seg.flags[pos] & MATCHED != 0,
            evict_at: seg.evict_at(pos),
            range_time: seg.range_time(pos),
            row: seg.row(pos),
        }
    }

    /// Sets the `matched` flag of a buffered row.
    pub fn mark_matched(&mut self, id: RowId) {
        let seg = self.segment_mut(id).expect("a row id of this batch");
        if seg.flags[id.pos as usize] & MATCHED == 0 {
            seg.flags[id.pos as usize] |= MATCHED;
            seg.touch(id.pos);
        }
    }

    /// The segment this batch appends to, opened when there is none or it is full.
    fn current(&mut self, extra: usize) -> &mut Segment {
        let batch = self.batch.expect("append outside a batch: call begin first");
        let base = batch * SEGMENTS_PER_BATCH;
        let open =
            self.segments.last().is_some_and(|s| s.id >= base && !s.written() && s.bytes() + extra < SEGMENT_BYTES);
        if !open {
            self.segments.push(Segment::new(base + self.opened));
            self.opened += 1;
        }
        self.segments.last_mut().expect("pushed")
    }

    /// Buffers `row` under `key` (Spark's `append`).
    pub fn append(&mut self, key: &[u8], row: &[u8], evict_at: Option<i64>, range_time: Option<i64>, matched: bool) {
        let seg = self.current(key.len() + row.len());
        let segment = seg.id;
        let pos = seg.push(key, row, evict_at, range_time, ALIVE | if matched { MATCHED } else { 0 });
        let id = RowId { segment, pos };
        match self.index.entry(hash(key)) {
            Entry::Occupied(mut e) => e.get_mut().push(id),
            Entry::Vacant(e) => {
                e.insert(Ids::One(id));
            }
        }
        if let Some(t) = evict_at {
            self.heap.push(Reverse((t, id)));
        }
        self.alive += 1;
        self.appended += 1;
    }

    /// Marks `ids` dead and drops them from the index (an entry of several rows is cleaned once).
    fn kill(&mut self, ids: &[RowId]) {
        let mut shared: Vec<u64> = Vec::new();
        for &id in ids {
            let seg = self.segment_mut(id).expect("a live row id");
            seg.flags[id.pos as usize] &= !ALIVE;
            seg.alive -= 1;
            seg.touch(id.pos);
            let h = hash(seg.key(id.pos as usize));
            match self.index.get(&h) {
                Some(Ids::One(only)) if *only == id => {
                    self.index.remove(&h);
                }
                Some(_) => shared.push(h),
                None => {}
            }
        }
        shared.sort_unstable();
        shared.dedup();
        for h in shared {
            if let Some(entry) = self.index.get_mut(&h) {
                if !entry.retain(|id| Self::is_alive(&self.segments, id)) {
                    self.index.remove(&h);
                }
            }
        }
        self.alive -= ids.len() as u64;
        self.removed += ids.len() as u64;
    }

    /// Removes and returns every row whose eviction time is at or behind `threshold`, through
    /// the eviction heap.
    pub fn evict(&mut self, threshold: i64) -> Vec<Evicted> {
        let mut gone: Vec<RowId> = Vec::new();
        while let Some(&Reverse((t, id))) = self.heap.peek() {
            if t > threshold {
                break;
            }
            self.heap.pop();
            if Self::is_alive(&self.segments, &id) {
                gone.push(id);
            }
        }
        let out = gone.iter().map(|&id| Evicted { id, matched: self.row(id).matched }).collect();
        self.kill(&gone);
        out
    }

    /// Removes rows `ids` of `key` (Spark 4.3's left semi join drops a left row once a right row
    /// has matched it, since it can never be emitted again).
    pub fn remove(&mut self, ids: &[RowId]) {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        ids.retain(|id| Self::is_alive(&self.segments, id));
        self.kill(&ids);
    }

    /// Moves the live rows of segments less than a quarter alive into the current segment.
    fn compact(&mut self) {
        let batch = self.batch.expect("commit outside a batch");
        let sparse: Vec<u64> = self
            .segments
            .iter()
            .filter(|s| s.alive > 0 && (s.alive as usize) * 4 < s.len() && s.id < batch * SEGMENTS_PER_BATCH)
            .map(|s| s.id)
            .collect();
        if sparse.is_empty() {
            return;
        }
        let mut moved: FxHashMap<RowId, RowId> = FxHashMap::default();
        for from in sparse {
            let i = self.segments.binary_search_by_key(&from, |s| s.id).expect("listed");
            let old = std::mem::replace(&mut self.segments[i], Segment::new(from));
            for pos in 0..old.len() {
                if old.flags[pos] & ALIVE == 0 {
                    continue;
                }
                let seg = self.current(old.key(pos).len() + old.row(pos).len());
                let segment = seg.id;
                let to = seg.push(old.key(pos), old.row(pos), old.evict_at(pos), old.range_time(pos), old.flags[pos]);
                let to = RowId { segment, pos: to };
                moved.insert(RowId { segment: from, pos: pos as u32 }, to);
                if let Some(t) = old.evict_at(pos) {
                    self.heap.push(Reverse((t, to)));
                }
            }
            // The old segment keeps its chunk layout (with no row alive) so that its entries go.
            let i = self.segments.binary_search_by_key(&from, |s| s.id).expect("listed");
            self.segments[i].chunk_starts = old.chunk_starts;
        }
        let mut hashes: Vec<u64> =
            moved.values().map(|&id| hash(find(&self.segments, id).expect("moved to").key(id.pos as usize))).collect();
        hashes.sort_unstable();
        hashes.dedup();
        for h in hashes {
            if let Some(entry) = self.index.get_mut(&h) {
                entry.replace(&moved);
            }
        }
    }

    /// Makes the batch's changes durable and returns what the side holds and did.
    pub fn commit(&mut self) -> Result<SideMetrics, StateError> {
        let batch = self.batch.expect("commit outside a batch: call begin first");
        self.compact();
        let mut bytes = 0u64;
        for seg in &mut self.segments {
            if seg.alive == 0 {
                for c in 0..seg.chunk_starts.len() as u32 {
                    self.store.remove(&entry_key(SEGMENT, seg.id, c));
                    self.store.remove(&entry_key(FLAGS, seg.id, c));
                }
                continue;
            }
            if !seg.written() {
                for (c, rows, flags) in seg.encode() {
                    self.store.put(&entry_key(SEGMENT, seg.id, c), &rows);
                    self.store.put(&entry_key(FLAGS, seg.id, c), &flags);
                }
            } else {
                for c in 0..seg.dirty.len() {
                    if std::mem::take(&mut seg.dirty[c]) {
                        self.store.put(&entry_key(FLAGS, seg.id, c as u32), &seg.chunk_flags(c));
                    }
                }
            }
            // Arenas, offsets, times and flags.
            bytes += (seg.keys.capacity() + seg.data.capacity() + seg.len() * 25) as u64;
        }
        self.segments.retain(|s| s.alive > 0);
        let m = self.store.commit()?;
        self.batch = None;
        self.holds = Some(Some(batch));
        // The index's slots (hash, id list, control byte; longer id lists not counted) and the heap.
        bytes += (self.index.capacity() * (std::mem::size_of::<(u64, Ids)>() + 1)) as u64
            + (self.heap.capacity() * std::mem::size_of::<Reverse<(i64, RowId)>>()) as u64;
        Ok(SideMetrics {
            rows: self.alive,
            appended: self.appended,
            removed: self.removed,
            memory_used_bytes: bytes + m.memory_used_bytes,
        })
    }
}

/// Appends the rows of one stored chunk (`bytes`, with its flags entry `flags`) to `seg`.
fn decode_chunk(seg: &mut Segment, bytes: &[u8], flags: &[u8]) -> Result<(), String> {
    let mut rest = bytes;
    let mut take = |n: usize| -> Result<&[u8], String> {
        if rest.len() < n {
            return Err(format!("truncated ({} bytes)", bytes.len()));
        }
        let (a, r) = rest.split_at(n);
        rest = r;
        Ok(a)
    };
    let u32_at = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize;
    let count = u32_at(take(4)?);
    if count != flags.len() {
        return Err(format!("{count} rows but {} flags", flags.len()));
    }
    for f in flags {
        let n = u32_at(take(4)?);
        let key = take(n)?;
        let n = u32_at(take(4)?);
        let row = take(n)?;
        let presence = take(1)?[0];
        let evict = i64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
        let range = i64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
        seg.push(
            key,
            row,
            (presence & HAS_EVICT != 0).then_some(evict),
            (presence & HAS_RANGE != 0).then_some(range),
            *f & (ALIVE | MATCHED),
        );
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after its {count} rows", rest.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::memory::MemoryStateStore;
    #[cfg(feature = "rocksdb")]
    use crate::state::rocksdb::RocksDbStateStore;

    type Open = fn(&std::path::Path) -> Box<dyn StateStore>;

    fn memory(dir: &std::path::Path) -> Box<dyn StateStore> {
        Box::new(MemoryStateStore::open(dir, 5).unwrap())
    }

    #[cfg(feature = "rocksdb")]
    fn rocksdb(dir: &std::path::Path) -> Box<dyn StateStore> {
        Box::new(RocksDbStateStore::open(dir, 5).unwrap())
    }

    /// The rows of `key` as (row, matched), in append order.
    fn rows(s: &SideState, key: &[u8]) -> Vec<(String, bool)> {
        let mut ids = Vec::new();
        s.lookup(key, &mut ids);
        ids.iter()
            .map(|&id| {
                let v = s.row(id);
                (String::from_utf8(v.row.to_vec()).unwrap(), v.matched)
            })
            .collect()
    }

    /// Every buffered row as (key, row, matched, eviction time, range time), sorted.
    type Entry = (String, String, bool, Option<i64>, Option<i64>);
    fn everything(s: &SideState) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::new();
        for ids in s.index.values() {
            for &id in ids.as_slice() {
                let v = s.row(id);
                let k = String::from_utf8(find(&s.segments, id).unwrap().key(id.pos as usize).to_vec()).unwrap();
                out.push((k, String::from_utf8(v.row.to_vec()).unwrap(), v.matched, v.evict_at, v.range_time));
            }
        }
        out.sort();
        out
    }

    fn names(s: &SideState, gone: &[Evicted]) -> Vec<(String, bool)> {
        let mut n: Vec<(String, bool)> =
            gone.iter().map(|e| (String::from_utf8(s.row(e.id).row.to_vec()).unwrap(), e.matched)).collect();
        n.sort();
        n
    }

    fn eviction_keeps_the_rest_counts_and_survives_a_restart(open: Open) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SideState::new(open(dir.path()), "left");
        s.begin(0).unwrap();
        for (row, t) in [("a0", 5), ("a1", 1), ("a2", 9), ("a3", 2), ("a4", 7)] {
            s.append(b"a", row.as_bytes(), Some(t), Some(t * 10), false);
        }
        s.append(b"b", b"b0", Some(1), None, true);
        s.append(b"n", b"n0", None, None, false);
        let m = s.commit().unwrap();
        assert_eq!((m.rows, m.appended, m.removed), (7, 7, 0));

        s.begin(1).unwrap();
        let mut ids = Vec::new();
        s.lookup(b"a", &mut ids);
        s.mark_matched(ids[3]);
        let gone = s.evict(2);
        assert_eq!(names(&s, &gone), [("a1".into(), false), ("a3".into(), true), ("b0".into(), true)]);
        assert_eq!(rows(&s, b"a"), [("a0".into(), false), ("a2".into(), false), ("a4".into(), false)]);
        assert!(rows(&s, b"b").is_empty());
        assert_eq!(rows(&s, b"n"), [("n0".into(), false)]);
        assert!(s.evict(4).is_empty(), "nothing else is that old");
        s.lookup(b"a", &mut ids);
        s.mark_matched(ids[2]);
        let m = s.commit().unwrap();
        assert_eq!((m.rows, m.appended, m.removed), (4, 0, 3));
        let after_1 = everything(&s);
        assert_eq!(
            after_1,
            [
                ("a".to_string(), "a0".to_string(), false, Some(5), Some(50)),
                ("a".into(), "a2".into(), false, Some(9), Some(90)),
                ("a".into(), "a4".into(), true, Some(7), Some(70)),
                ("n".into(), "n0".into(), false, None, None),
            ]
        );

        // A new process reads the same state back, flags and times included, and evicts from it.
        drop(s);
        let mut s = SideState::new(open(dir.path()), "left");
        s.begin(2).unwrap();
        assert_eq!(everything(&s), after_1);
        let gone = s.evict(7);
        assert_eq!(names(&s, &gone), [("a0".into(), false), ("a4".into(), true)]);
        s.append(b"c", b"c0", Some(20), None, false);
        let m = s.commit().unwrap();
        assert_eq!((m.rows, m.appended, m.removed), (3, 1, 2));

        // Batch 2 again (a replay): it starts from batch 1's state, in this process too, and an
        // attempt that did not commit leaves nothing.
        s.begin(2).unwrap();
        assert_eq!(everything(&s), after_1);
        s.append(b"d", b"d0", None, None, false);
        s.evict(100);
        s.begin(2).unwrap();
        assert_eq!(everything(&s), after_1);
    }

    #[test]
    fn eviction_keeps_the_rest_counts_and_survives_a_restart_on_both_stores() {
        eviction_keeps_the_rest_counts_and_survives_a_restart(memory);
        #[cfg(feature = "rocksdb")]
        eviction_keeps_the_rest_counts_and_survives_a_restart(rocksdb);
    }

    #[test]
    fn removing_a_matched_semi_row_drops_it_from_its_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SideState::new(memory(dir.path()), "left");
        s.begin(0).unwrap();
        for row in ["a0", "a1", "a2"] {
            s.append(b"a", row.as_bytes(), Some(1), None, false);
        }
        s.append(b"b", b"b0", Some(1), None, false);
        let mut ids = Vec::new();
        s.lookup(b"a", &mut ids);
        s.remove(&[ids[2], ids[0], ids[0]]);
        assert_eq!(rows(&s, b"a"), [("a1".into(), false)]);
        assert_eq!(s.row(ids[0]).row, b"a0", "a removed row stays readable until the batch commits");
        let m = s.commit().unwrap();
        assert_eq!((m.rows, m.appended, m.removed), (2, 4, 2));
        s.begin(1).unwrap();
        let gone = s.evict(1);
        assert_eq!(names(&s, &gone), [("a1".into(), false), ("b0".into(), false)]);
        let m = s.commit().unwrap();
        assert_eq!((m.rows, m.removed), (0, 2));
        let mut left = Vec::new();
        s.store.for_each(&mut |k, _| left.push(k.to_vec())).unwrap();
        assert!(left.is_empty(), "a segment with no row alive leaves the store: {left:?}");
    }

    /// Segments are cut into chunks; a flag set in one chunk rewrites that chunk's flags only; a
    /// segment that falls below a quarter alive is moved into the current one; a restart reads
    /// back what both left.
    fn chunks_and_compaction(open: Open) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SideState::new(open(dir.path()), "right");
        s.begin(0).unwrap();
        let n = CHUNK_ROWS * 2 + 10;
        for i in 0..n {
            s.append(format!("k{}", i % 1000).as_bytes(), format!("r{i}").as_bytes(), Some(i as i64), None, false);
        }
        s.commit().unwrap();
        assert_eq!(s.segments.len(), 1);
        assert_eq!(s.segments[0].chunk_starts, [0, CHUNK_ROWS as u32, 2 * CHUNK_ROWS as u32]);

        s.begin(1).unwrap();
        let mut ids = Vec::new();
        s.lookup(b"k5", &mut ids);
        let last = *ids.last().unwrap(); // row 8005, in chunk 1
        s.mark_matched(last);
        assert_eq!(s.segments[0].dirty, [false, true, false]);
        // Rows 0..=7000 leave: 1,202 of 8,202 stay, under a quarter.
        assert_eq!(s.evict(7000).len(), 7001);
        s.commit().unwrap();
        assert_eq!(s.segments.len(), 1, "the old segment was moved into batch 1's");
        assert_eq!(s.segments[0].id, SEGMENTS_PER_BATCH);
        assert_eq!(s.segments[0].len(), n - 7001);
        let after_1 = everything(&s);
        assert_eq!(after_1.len(), n - 7001);
        assert!(after_1.contains(&("k5".into(), "r8005".into(), true, Some(8005), None)));
        let mut entries = Vec::new();
        s.store.for_each(&mut |k, _| entries.push((k[0], u64::from_be_bytes(k[1..9].try_into().unwrap())))).unwrap();
        entries.sort();
        assert_eq!(entries, [(b'f', SEGMENTS_PER_BATCH), (b's', SEGMENTS_PER_BATCH)]);

        drop(s);
        let mut s = SideState::new(open(dir.path()), "right");
        s.begin(2).unwrap();
        assert_eq!(everything(&s), after_1);
        // The moved rows still leave by their eviction times.
        assert_eq!(s.evict(8000).len(), 1000);
        let m = s.commit().unwrap();
        assert_eq!(m.rows, (n - 8001) as u64);
    }

    #[test]
    fn chunks_and_compaction_on_both_stores() {
        chunks_and_compaction(memory);
        #[cfg(feature = "rocksdb")]
        chunks_and_compaction(rocksdb);
    }

    #[test]
    fn state_of_another_layout_or_a_missing_chunk_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = memory(dir.path());
        store.begin(0).unwrap();
        store.put(b"nold-key", &1u32.to_le_bytes());
        store.commit().unwrap();
        let e = SideState::new(memory(dir.path()), "left").begin(1).unwrap_err().to_string();
        assert!(e.contains("left side of a stream-stream join") && e.contains("`nold-key`"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let mut s = SideState::new(memory(dir.path()), "left");
        s.begin(0).unwrap();
        s.append(b"a", b"a0", None, None, false);
        s.commit().unwrap();
        let mut store = memory(dir.path());
        store.begin(1).unwrap();
        store.remove(&entry_key(FLAGS, 0, 0));
        store.commit().unwrap();
        let e = SideState::new(memory(dir.path()), "left").begin(2).unwrap_err().to_string();
        assert!(e.contains("the flags of chunk 0 of segment 0 are missing"), "{e}");
    }
}
