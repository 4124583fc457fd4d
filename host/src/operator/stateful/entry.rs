//! What the host keeps per key of a stateful operator: the plugin's state bytes (opaque), the
//! key's timeout, its timers and the state's time-to-live, in one state-store value.

use crate::state::StateError;

/// Which clock a deadline follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Domain {
    Processing,
    Event,
}

/// A timeout or timer: fires when the clock of its domain reaches `at` (µs since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline {
    pub domain: Domain,
    pub at: i64,
}

pub use crate::engine::operator::Clocks;

impl Clocks {
    fn of(&self, domain: Domain) -> Option<i64> {
        match domain {
            Domain::Processing => Some(self.processing),
            Domain::Event => self.watermark,
        }
    }

    /// A group timeout fires once the clock is past it (Spark: `timeout < batch time` or
    /// `timeout < watermark`).
    pub fn timeout_fired(&self, d: Deadline) -> bool {
        self.of(d.domain).is_some_and(|now| d.at < now)
    }

    /// A timer fires once the clock reaches it (transformWithState: `expiry <= clock`).
    pub fn timer_fired(&self, d: Deadline) -> bool {
        self.of(d.domain).is_some_and(|now| d.at <= now)
    }
}

/// One key's entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    /// The plugin's state bytes, and the state version of the plugin that wrote them.
    pub state: Option<(u32, Vec<u8>)>,
    pub timeout: Option<Deadline>,
    /// When the state expires (processing time, µs); it then goes without a call.
    pub ttl_expires: Option<i64>,
    /// Sorted, without duplicates.
    pub timers: Vec<Deadline>,
}

const FORMAT: u8 = 1;

impl Entry {
    /// Nothing left to keep: the key leaves the store.
    pub fn is_empty(&self) -> bool {
        self.state.is_none() && self.timeout.is_none() && self.timers.is_empty()
    }

    /// Drops the state when its TTL has passed; says whether it did.
    pub fn expire_ttl(&mut self, clocks: &Clocks) -> bool {
        match self.ttl_expires {
            Some(at) if at <= clocks.processing => {
                self.ttl_expires = None;
                self.state.take().is_some()
            }
            _ => false,
        }
    }

    /// Removes and returns the timers that fired, earliest first.
    pub fn take_fired_timers(&mut self, clocks: &Clocks) -> Vec<Deadline> {
        let (mut fired, kept): (Vec<Deadline>, Vec<Deadline>) =
            self.timers.iter().partition(|t| clocks.timer_fired(**t));
        self.timers = kept;
        fired.sort_by_key(|t| (t.at, t.domain));
        fired
    }

    pub fn add_timer(&mut self, t: Deadline) -> bool {
        match self.timers.binary_search(&t) {
            Ok(_) => false,
            Err(at) => {
                self.timers.insert(at, t);
                true
            }
        }
    }

    pub fn delete_timer(&mut self, t: Deadline) -> bool {
        match self.timers.binary_search(&t) {
            Ok(at) => {
                self.timers.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether anything of this entry is due at `clocks`: a timeout, a timer or the TTL.
    pub fn due(&self, clocks: &Clocks) -> bool {
        self.timeout.is_some_and(|t| clocks.timeout_fired(t))
            || self.timers.first().is_some_and(|_| self.timers.iter().any(|t| clocks.timer_fired(*t)))
            || self.ttl_expires.is_some_and(|at| at <= clocks.processing)
    }

    /// The earliest deadline per domain (processing, event): when the entry may next be due.
    pub fn earliest(&self) -> (Option<i64>, Option<i64>) {
        let mut p = self.ttl_expires;
        let mut e = None;
        for d in self.timeout.iter().chain(&self.timers) {
            let slot = match d.domain {
                Domain::Processing => &mut p,
                Domain::Event => &mut e,
            };
            *slot = Some(slot.map_or(d.at, |v: i64| v.min(d.at)));
        }
        (p, e)
    }

    pub fn encode(&self) -> Vec<u8> {
        let state_len = self.state.as_ref().map_or(0, |(_, b)| b.len());
        let mut out = Vec::with_capacity(16 + state_len + 9 * (self.timers.len() + 1));
        out.push(FORMAT);
        let flags = u8::from(self.state.is_some())
            | u8::from(self.timeout.is_some()) << 1
            | u8::from(self.ttl_expires.is_some()) << 2;
        out.push(flags);
        if let Some((version, bytes)) = &self.state {
            out.extend_from_slice(&version.to_le_bytes());
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        if let Some(t) = self.timeout {
            put_deadline(&mut out, t);
        }
        if let Some(at) = self.ttl_expires {
            out.extend_from_slice(&at.to_le_bytes());
        }
        out.extend_from_slice(&(self.timers.len() as u32).to_le_bytes());
        for t in &self.timers {
            put_deadline(&mut out, *t);
        }
        out
    }

    /// Decodes a stored entry; `Err` is a message for [`StateError::Corrupt`].
    pub fn decode(bytes: &[u8]) -> Result<Entry, String> {
        let mut r = Reader { bytes, at: 0 };
        let format = r.u8()?;
        if format != FORMAT {
            return Err(format!("stateful entry of format {format}, this weir reads format {FORMAT}"));
        }
        let flags = r.u8()?;
        let state = if flags & 1 != 0 {
            let version = u32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes"));
            let len = u32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes")) as usize;
            Some((version, r.take(len)?.to_vec()))
        } else {
            None
        };
        let timeout = if flags & 2 != 0 { Some(r.deadline()?) } else { None };
        let ttl_expires = if flags & 4 != 0 { Some(r.i64()?) } else { None };
        let n = u32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes")) as usize;
        let timers = (0..n).map(|_| r.deadline()).collect::<Result<Vec<_>, _>>()?;
        if r.at != bytes.len() {
            return Err(format!("stateful entry has {} bytes after its end", bytes.len() - r.at));
        }
        Ok(Entry { state, timeout, ttl_expires, timers })
    }
}

/// Decodes an entry read from `store_dir`'s store, naming it when it is damaged.
pub fn decode_stored(bytes: &[u8], store_dir: &std::path::Path) -> Result<Entry, StateError> {
    Entry::decode(bytes).map_err(|message| StateError::Corrupt { dir: store_dir.to_path_buf(), message })
}

fn put_deadline(out: &mut Vec<u8>, d: Deadline) {
    out.push(match d.domain {
        Domain::Processing => 0,
        Domain::Event => 1,
    });
    out.extend_from_slice(&d.at.to_le_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or("stateful entry is truncated")?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn deadline(&mut self) -> Result<Deadline, String> {
        let domain = match self.u8()? {
            0 => Domain::Processing,
            1 => Domain::Event,
            d => return Err(format!("unknown timer domain {d}")),
        };
        Ok(Deadline { domain, at: self.i64()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at: i64) -> Deadline {
        Deadline { domain: Domain::Event, at }
    }

    fn pt(at: i64) -> Deadline {
        Deadline { domain: Domain::Processing, at }
    }

    #[test]
    fn entries_round_trip_and_damage_is_reported() {
        let mut e =
            Entry { state: Some((3, b"abc".to_vec())), timeout: Some(ev(-5)), ttl_expires: Some(99), timers: vec![] };
        e.add_timer(pt(7));
        e.add_timer(ev(2));
        assert!(!e.add_timer(ev(2)), "a timer is kept once");
        assert_eq!(Entry::decode(&e.encode()).unwrap(), e);
        assert_eq!(Entry::decode(&Entry::default().encode()).unwrap(), Entry::default());
        let bytes = e.encode();
        assert_eq!(Entry::decode(&bytes[..bytes.len() - 1]).unwrap_err(), "stateful entry is truncated");
        assert!(Entry::decode(&[9]).unwrap_err().contains("format 9"));
    }

    #[test]
    fn timeouts_fire_past_the_clock_timers_at_it_and_ttl_drops_only_the_state() {
        let clocks = Clocks { processing: 100, watermark: Some(50) };
        assert!(!clocks.timeout_fired(ev(50)) && clocks.timeout_fired(ev(49)));
        assert!(clocks.timer_fired(ev(50)) && !clocks.timer_fired(ev(51)));
        assert!(!Clocks { processing: 100, watermark: None }.timer_fired(ev(i64::MIN)), "no watermark, no event time");
        let mut e = Entry {
            state: Some((1, vec![1])),
            timeout: None,
            ttl_expires: Some(100),
            timers: vec![ev(10), ev(60), pt(100)],
        };
        assert!(e.due(&clocks));
        assert_eq!(e.earliest(), (Some(100), Some(10)));
        assert!(e.expire_ttl(&clocks));
        assert_eq!(e.state, None);
        assert_eq!(e.take_fired_timers(&clocks), vec![ev(10), pt(100)]);
        assert_eq!(e.timers, vec![ev(60)]);
        assert!(!e.due(&clocks) && !e.is_empty());
    }
}
