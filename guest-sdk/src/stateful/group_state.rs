//! A key's state as the plugin sees it during one call, with Spark's `GroupState` helpers, and
//! what it turns into for the host.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::stateful::time::Timer;

/// The state of one key during one call: Spark's `GroupState` (`exists`, `get`, `update`,
/// `remove`, timeouts) plus transformWithState's timers and TTL.
///
/// Spark's rules hold: a timeout lasts one call, so a call that sets none clears it; a state
/// that is neither updated nor removed is kept as stored, and nothing crosses back for it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupState<S> {
    value: Option<S>,
    existed: bool,
    change: Change,
    timed_out: bool,
    timeout: TimeoutUpdate,
    ttl_ms: Option<u64>,
    register: Vec<Timer>,
    delete: Vec<Timer>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Change {
    None,
    Updated,
    Removed,
}

impl<S> GroupState<S> {
    /// The state of a key as the call starts: `stored` is its decoded state (`None` when it has
    /// none), `timed_out` whether it is called because its timeout fired. The SDK makes these;
    /// make one by hand to unit-test a `process_group` directly.
    pub fn new(stored: Option<S>, timed_out: bool) -> GroupState<S> {
        GroupState {
            existed: stored.is_some(),
            value: stored,
            change: Change::None,
            timed_out,
            timeout: TimeoutUpdate::Clear,
            ttl_ms: None,
            register: Vec::new(),
            delete: Vec::new(),
        }
    }

    /// Whether the key has a state (after this call's `update` or `remove`, if any).
    pub fn exists(&self) -> bool {
        self.value.is_some()
    }

    /// The state, or `None` when the key has none (Spark's `getOption`; Spark's `get` throws
    /// where this gives `None`).
    pub fn get(&self) -> Option<&S> {
        self.value.as_ref()
    }

    /// The state, to change in place; asking for it counts as an [`update`](Self::update), so
    /// the state is written back (no clone of a large state to update one field).
    pub fn get_mut(&mut self) -> Option<&mut S> {
        if self.value.is_some() {
            self.change = Change::Updated;
        }
        self.value.as_mut()
    }

    /// Replaces the state; it is written back when the call ends.
    pub fn update(&mut self, state: S) {
        self.value = Some(state);
        self.change = Change::Updated;
    }

    /// Removes the state.
    pub fn remove(&mut self) {
        self.value = None;
        self.change = Change::Removed;
    }

    /// Times the key out when this much processing time passes without new rows for it (Spark's
    /// `setTimeoutDuration`). Lasts until the key's next call: set it again in every call.
    pub fn set_timeout_duration(&mut self, duration: Duration) {
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        self.timeout = TimeoutUpdate::ProcessingTimeMs(ms);
    }

    /// Times the key out once the watermark passes `micros` (microseconds since the epoch;
    /// Spark's `setTimeoutTimestamp`). Lasts until the key's next call: set it again in every
    /// call.
    pub fn set_timeout_timestamp(&mut self, micros: i64) {
        self.timeout = TimeoutUpdate::EventTime(micros);
    }

    /// Whether the key is called because its timeout fired (it then has no rows).
    pub fn has_timed_out(&self) -> bool {
        self.timed_out
    }

    /// Adds a timer to the key (transformWithState's `registerTimer`). Registering a timer the
    /// key has is a no-op; the last of `register_timer` and `delete_timer` for a timer wins.
    pub fn register_timer(&mut self, timer: Timer) {
        self.delete.retain(|t| *t != timer);
        if !self.register.contains(&timer) {
            self.register.push(timer);
        }
    }

    /// Removes a timer of the key (transformWithState's `deleteTimer`); a missing one is a no-op.
    pub fn delete_timer(&mut self, timer: Timer) {
        self.register.retain(|t| *t != timer);
        if !self.delete.contains(&timer) {
            self.delete.push(timer);
        }
    }

    /// Expires the state this long (of processing time) after this call's update: the host then
    /// removes it without calling the plugin (transformWithState's TTL). Set it on every update
    /// to keep a TTL sliding; a call that does not set it keeps the TTL the state had.
    pub fn set_ttl(&mut self, ttl: Duration) {
        self.ttl_ms = Some(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
    }

    /// The timeout this call will send: [`TimeoutUpdate::Clear`] unless one was set.
    pub fn timeout(&self) -> TimeoutUpdate {
        self.timeout
    }
}

impl<S: Serialize> GroupState<S> {
    /// What the host is told when the call ends. Fails only when the state does not encode.
    pub fn into_result(self) -> Result<GroupResult, String> {
        let state = match self.change {
            Change::None => StateUpdate::Keep,
            Change::Updated => match &self.value {
                Some(v) => StateUpdate::Update(encode_state(v)?),
                None => StateUpdate::Keep,
            },
            Change::Removed if self.existed => StateUpdate::Remove,
            Change::Removed => StateUpdate::Keep,
        };
        Ok(GroupResult {
            state,
            timeout: self.timeout,
            ttl_ms: self.ttl_ms,
            register_timers: self.register,
            delete_timers: self.delete,
        })
    }
}

/// The bytes a state is stored as (postcard): what [`Groups::states`](crate::Groups::states)
/// holds, for tests that start from a stored state.
pub fn encode_state<S: Serialize>(state: &S) -> Result<Vec<u8>, String> {
    postcard::to_allocvec(state).map_err(|e| format!("the state does not encode with postcard: {e}"))
}

/// Decodes stored bytes as a state; trailing bytes are an error (a sign that the state type
/// changed without a new [`state_version`](crate::StatefulProcessor::state_version)).
pub fn decode_state<S: DeserializeOwned>(bytes: &[u8]) -> Result<S, String> {
    match postcard::take_from_bytes(bytes) {
        Ok((state, [])) => Ok(state),
        Ok((_, rest)) => Err(format!("{} bytes are left over after the state", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}

/// What happens to a key's stored state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateUpdate {
    /// Leave it as it was (nothing crosses back).
    Keep,
    /// Replace it with these bytes.
    Update(Vec<u8>),
    /// Delete it.
    Remove,
}

/// What happens to a key's timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutUpdate {
    /// Leave it as it was (the SDK never sends this: Spark resets a timeout on every call).
    Keep,
    /// No timeout.
    Clear,
    /// Fires when this many milliseconds of processing time pass without new rows.
    ProcessingTimeMs(u64),
    /// Fires in the first batch whose watermark is past this event time (microseconds).
    EventTime(i64),
}

/// What one group's call tells the host: the WIT `group-result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupResult {
    /// The key's stored state.
    pub state: StateUpdate,
    /// The key's timeout.
    pub timeout: TimeoutUpdate,
    /// Expire the state this many milliseconds after this update; `None` keeps its TTL.
    pub ttl_ms: Option<u64>,
    /// Timers to add to the key.
    pub register_timers: Vec<Timer>,
    /// Timers to remove from the key.
    pub delete_timers: Vec<Timer>,
}
