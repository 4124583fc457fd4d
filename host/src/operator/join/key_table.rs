//! A hash table from key bytes to dense group numbers (0, 1, 2, ... in the order keys are first
//! seen), built once and then probed by whole batches of keys.
//!
//! Made for the probe side of a join, where a lookup is a cache miss into a table larger than
//! the processor's caches: each slot is 8 bytes (a 24-bit tag of the hash and the key's place in
//! one arena, where the group number and the key bytes sit together), so a probe costs the slot
//! and one arena line, and [`KeyTable::find_all`] fetches the slots and arena lines of the keys a
//! few rows ahead while it compares the current one (prefetching), instead of waiting on each
//! miss in turn. Open addressing with linear probing, at most half full.

use std::hash::{BuildHasher, BuildHasherDefault};

use rustc_hash::FxHasher;

/// No group (a probe that found nothing, or a null key).
pub const NONE: u32 = u32::MAX;
/// Arena offsets take the low 40 bits of a slot, the hash tag the high 24.
const OFFSET_BITS: u32 = 40;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;
/// Rows ahead whose slot (and, half as far ahead, arena line) a batch probe fetches.
const AHEAD: usize = 16;

/// Key bytes → group number.
#[derive(Debug)]
pub struct KeyTable {
    /// 0: empty; else the tag (high 24 bits) and the arena offset of the entry.
    slots: Vec<u64>,
    /// log2 of the number of slots.
    bits: u32,
    /// Entries `[u32 group][u32 key length][key]` (little-endian), after 8 bytes of padding so
    /// that no entry is at offset 0.
    arena: Vec<u8>,
    groups: u32,
}

/// The hash of `key`, spread over all 64 bits (positions come from the high bits, tags from the
/// middle ones).
fn hash(key: &[u8]) -> u64 {
    BuildHasherDefault::<FxHasher>::default().hash_one(key).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[inline]
fn prefetch<T>(p: &T) {
    // SAFETY: SSE is part of every x86_64 processor, and a prefetch only hints the cache (it never
    // faults, whatever the address); `p` is a live reference anyway.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((p as *const T).cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl Default for KeyTable {
    fn default() -> Self {
        KeyTable::new()
    }
}

impl KeyTable {
    pub fn new() -> KeyTable {
        KeyTable { slots: vec![0; 16], bits: 4, arena: vec![0; 8], groups: 0 }
    }

    /// Number of groups (distinct keys).
    pub fn len(&self) -> usize {
        self.groups as usize
    }

    pub fn is_empty(&self) -> bool {
        self.groups == 0
    }

    /// Bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.slots.capacity() * 8 + self.arena.capacity()
    }

    fn position(&self, h: u64) -> usize {
        (h >> (64 - self.bits)) as usize
    }

    fn tag(h: u64) -> u64 {
        (h >> 8) & 0xFF_FFFF
    }

    /// The group and key of the entry at arena offset `at`.
    fn entry(&self, at: usize) -> (u32, &[u8]) {
        let word = |i: usize| u32::from_le_bytes(self.arena[i..i + 4].try_into().expect("4 bytes"));
        let len = word(at + 4) as usize;
        (word(at), &self.arena[at + 8..at + 8 + len])
    }

    /// Probes from slot `pos` for `key` (hash `h`).
    fn probe(&self, mut pos: usize, h: u64, key: &[u8]) -> u32 {
        let mask = self.slots.len() - 1;
        let tag = Self::tag(h);
        loop {
            let s = self.slots[pos];
            if s == 0 {
                return NONE;
            }
            if s >> OFFSET_BITS == tag {
                let (g, k) = self.entry((s & OFFSET_MASK) as usize);
                if k == key {
                    return g;
                }
            }
            pos = (pos + 1) & mask;
        }
    }

    /// The group of `key`, [`NONE`] when it has none.
    pub fn find(&self, key: &[u8]) -> u32 {
        let h = hash(key);
        self.probe(self.position(h), h, key)
    }

    /// The group of `key`, given it the next number when it is new. Fails when the keys take a
    /// terabyte (the arena's offsets have 40 bits) or there are 2^32 - 1 groups.
    pub fn insert(&mut self, key: &[u8]) -> Result<u32, String> {
        let h = hash(key);
        let found = self.probe(self.position(h), h, key);
        if found != NONE {
            return Ok(found);
        }
        let at = self.arena.len() as u64;
        if at + key.len() as u64 + 8 > OFFSET_MASK || self.groups == NONE - 1 {
            return Err(format!("more than {} distinct keys or a terabyte of key bytes", NONE - 1));
        }
        let g = self.groups;
        self.arena.extend_from_slice(&g.to_le_bytes());
        self.arena.extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.arena.extend_from_slice(key);
        self.groups += 1;
        if (self.groups as usize) * 2 > self.slots.len() {
            self.grow();
        } else {
            self.place(h, at);
        }
        Ok(g)
    }

    fn place(&mut self, h: u64, at: u64) {
        let mask = self.slots.len() - 1;
        let mut pos = self.position(h);
        while self.slots[pos] != 0 {
            pos = (pos + 1) & mask;
        }
        self.slots[pos] = Self::tag(h) << OFFSET_BITS | at;
    }

    /// Doubles the slots and places every entry again.
    fn grow(&mut self) {
        self.bits += 1;
        self.slots = vec![0; 1 << self.bits];
        let mut at = 8;
        while at < self.arena.len() {
            let len = self.entry(at).1.len();
            self.place(hash(self.entry(at).1), at as u64);
            at += 8 + len;
        }
    }

    /// Frees what growing left unused.
    pub fn shrink_to_fit(&mut self) {
        self.arena.shrink_to_fit();
    }

    /// The group of every key of `keys` (`None`: a null key, [`NONE`]), in order, into `out`
    /// (replacing its contents); fetches the slots and arena entries of later keys ahead.
    pub fn find_all<'k>(&self, keys: impl ExactSizeIterator<Item = Option<&'k [u8]>>, out: &mut Vec<u32>) {
        let keys: Vec<Option<&[u8]>> = keys.collect();
        let hashes: Vec<u64> = keys.iter().map(|k| k.map_or(0, hash)).collect();
        out.clear();
        out.reserve(keys.len());
        let n = keys.len();
        for r in 0..n {
            if r + AHEAD < n && keys[r + AHEAD].is_some() {
                prefetch(&self.slots[self.position(hashes[r + AHEAD])]);
            }
            let half = r + AHEAD / 2;
            if half < n && keys[half].is_some() {
                let s = self.slots[self.position(hashes[half])];
                if s != 0 {
                    prefetch(&self.arena[(s & OFFSET_MASK) as usize]);
                }
            }
            out.push(match keys[r] {
                Some(k) => self.probe(self.position(hashes[r]), hashes[r], k),
                None => NONE,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_numbered_in_first_seen_order_and_found_one_by_one_or_by_batch() {
        let mut t = KeyTable::new();
        let keys: Vec<Vec<u8>> = (0..10_000u32).map(|i| format!("key-{}", i % 3_000).into_bytes()).collect();
        let groups: Vec<u32> = keys.iter().map(|k| t.insert(k).unwrap()).collect();
        assert_eq!(t.len(), 3_000);
        assert_eq!(&groups[..3], &[0, 1, 2]);
        assert_eq!(groups[3_000 + 7], 7, "a key seen again keeps its group");
        assert!(t.slots.len() >= 2 * 3_000, "at most half full");
        assert_eq!(t.find(b"key-2999"), 2_999);
        assert_eq!(t.find(b"key-3000"), NONE);
        assert_eq!(t.find(b""), NONE);

        let probe: Vec<Option<&[u8]>> =
            vec![Some(b"key-5"), None, Some(b"nope"), Some(b"key-2999"), Some(b"key-0"), Some(b"")];
        let mut out = vec![42];
        t.find_all(probe.into_iter(), &mut out);
        assert_eq!(out, [5, NONE, NONE, 2_999, 0, NONE]);
        // A long batch (past the prefetch distance) gives what single probes give.
        let many: Vec<Vec<u8>> = (0..5_000u32).map(|i| format!("key-{}", i * 7 % 4_000).into_bytes()).collect();
        t.find_all(many.iter().map(|k| Some(k.as_slice())), &mut out);
        assert_eq!(out, many.iter().map(|k| t.find(k)).collect::<Vec<_>>());
        assert_eq!(out.iter().filter(|&&g| g == NONE).count(), many.iter().filter(|k| t.find(k) == NONE).count());
        assert!(out.contains(&NONE) && out.contains(&0));
    }

    #[test]
    fn keys_that_share_a_prefix_or_a_slot_are_told_apart() {
        let mut t = KeyTable::new();
        // Far more keys than the first 16 slots: every probe chain crosses other keys' slots.
        let keys: Vec<Vec<u8>> = (0..2_000u32).map(|i| i.to_le_bytes()[..(1 + i as usize % 4)].to_vec()).collect();
        let mut distinct = std::collections::HashMap::new();
        for k in &keys {
            let n = distinct.len() as u32;
            let g = *distinct.entry(k.clone()).or_insert(n);
            assert_eq!(t.insert(k).unwrap(), g, "{k:?}");
        }
        for (k, g) in &distinct {
            assert_eq!(t.find(k), *g, "{k:?}");
        }
    }
}
