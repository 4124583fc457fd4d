//! Time as a stateful plugin sees it: the batch's clocks and the timers of a key.

/// What the host tells the plugin about time for one micro-batch. Both clocks are recorded in
/// the checkpoint, so a replayed batch sees the same values and makes the same decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchTime {
    /// The micro-batch's id.
    pub batch_id: u64,
    /// The job's event-time watermark, microseconds since the Unix epoch; `None` when the job
    /// has no watermark.
    pub watermark: Option<i64>,
    /// The batch's processing time (when it was planned), microseconds since the Unix epoch.
    pub processing_time: i64,
}

/// Which clock a timer or timeout follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeDomain {
    /// The batch's processing time ([`BatchTime::processing_time`]).
    ProcessingTime,
    /// The job's event-time watermark ([`BatchTime::watermark`]).
    EventTime,
}

/// A timer of a key (transformWithState's): it fires once, in the first batch whose clock of
/// its domain is at or past `at`, and the group is then called with it in
/// [`Group::expired_timers`](crate::Group::expired_timers), even without new rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timer {
    /// The clock it follows.
    pub domain: TimeDomain,
    /// When it fires, microseconds since the Unix epoch.
    pub at: i64,
}

impl Timer {
    /// A timer that fires once the watermark reaches `at` (microseconds since the epoch).
    pub fn event_time(at: i64) -> Timer {
        Timer { domain: TimeDomain::EventTime, at }
    }

    /// A timer that fires in the first batch whose processing time is at or past `at`.
    pub fn processing_time(at: i64) -> Timer {
        Timer { domain: TimeDomain::ProcessingTime, at }
    }
}
