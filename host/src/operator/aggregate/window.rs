//! Event-time windows as Spark defines them: tumbling and sliding windows are
//! `[start, start + size)` with starts on multiples of the slide (from the epoch); an event
//! belongs to every window that contains it. Session windows start as `[t, t + gap)` per event
//! and merge while they overlap or touch (an event exactly `gap` after the last one extends the
//! session, as Spark's `session_window`).

pub use crate::config::WindowKind;

impl WindowKind {
    /// Calls `f(start)` for each fixed window (tumbling or sliding) that contains `t`, latest
    /// start first.
    #[inline]
    pub fn for_each_fixed(self, t: i64, mut f: impl FnMut(i64)) {
        let (size, slide) = match self {
            WindowKind::Tumbling { size } => (size, size),
            WindowKind::Sliding { size, slide } => (size, slide),
            WindowKind::Session { .. } => unreachable!("session windows are not fixed"),
        };
        let last_start = t - t.rem_euclid(slide);
        let mut start = last_start;
        while start + size > t {
            f(start);
            start -= slide;
        }
    }

    /// The end of the latest window an event at `t` can belong to: once the watermark reaches it,
    /// the event is late for every window.
    pub fn latest_end(self, t: i64) -> i64 {
        match self {
            WindowKind::Tumbling { size } => t - t.rem_euclid(size) + size,
            WindowKind::Sliding { size, slide } => t - t.rem_euclid(slide) + size,
            WindowKind::Session { gap } => t + gap,
        }
    }

    /// The end of the fixed window starting at `start`.
    pub fn end(self, start: i64) -> i64 {
        match self {
            WindowKind::Tumbling { size } | WindowKind::Sliding { size, .. } => start + size,
            WindowKind::Session { .. } => unreachable!("a session's end is stored with it"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    fn windows(kind: WindowKind, t: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        kind.for_each_fixed(t, |s| out.push((s / MIN, kind.end(s) / MIN)));
        out.reverse();
        out
    }

    #[test]
    fn tumbling_and_sliding_windows_contain_the_event_with_exclusive_ends() {
        let tumble = WindowKind::Tumbling { size: 5 * MIN };
        assert_eq!(windows(tumble, 7 * MIN), vec![(5, 10)]);
        assert_eq!(windows(tumble, 10 * MIN), vec![(10, 15)], "the end is exclusive");
        assert_eq!(windows(tumble, -MIN), vec![(-5, 0)], "before the epoch too");
        let slide = WindowKind::Sliding { size: 10 * MIN, slide: 2 * MIN };
        assert_eq!(windows(slide, 7 * MIN), vec![(-2, 8), (0, 10), (2, 12), (4, 14), (6, 16)]);
        assert_eq!(windows(slide, 8 * MIN), vec![(0, 10), (2, 12), (4, 14), (6, 16), (8, 18)]);
        let uneven = WindowKind::Sliding { size: 5 * MIN, slide: 2 * MIN };
        assert_eq!(windows(uneven, 4 * MIN), vec![(0, 5), (2, 7), (4, 9)]);
        assert_eq!(windows(uneven, 5 * MIN), vec![(2, 7), (4, 9)]);
        assert_eq!(slide.latest_end(7 * MIN), 16 * MIN);
        assert_eq!(tumble.latest_end(10 * MIN), 15 * MIN);
    }
}
