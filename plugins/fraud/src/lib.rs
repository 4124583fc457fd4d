//! `fraud`: alerts when a key's spending within a sliding window goes over a threshold
//! (transformWithState style, with an event-time timer that cleans up the key's state).
//!
//! Config: `threshold` (default 1000.0), `window_minutes` (default 10), `ttl_minutes` (default
//! 0: no TTL). Output: the key columns, then `alert_time` (the event that crossed the
//! threshold), `window_total` and `window_events` (the window's sum and count at that event).
//!
//! Per key the state keeps the `(time, amount)` of its events within the last window and
//! whether the key is alerting. Each event, in `event_time` order (ties in arrival order):
//! events at or before `t - window` leave the window, the event joins it, and the amounts are
//! summed in the order the window holds them (a null amount counts as 0.0). A sum over the
//! threshold alerts once, and the key alerts again only after its sum has come back to the
//! threshold or below. After the rows, the key's cleanup timer moves to its latest event plus
//! the window; when it fires without new rows, every event has left the window and the state
//! is removed.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_guest::prelude::*;

/// The plugin: its config, and a buffer reused for each group's row order.
struct Fraud {
    threshold: f64,
    window_us: i64,
    ttl: Option<Duration>,
    order: Vec<u32>,
}

/// A key's events within the window, in the order they joined it, and whether it is alerting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Window {
    /// `(event time in microseconds, amount)`.
    events: Vec<(i64, f64)>,
    alerting: bool,
}

impl Window {
    /// The latest event time in the window.
    fn latest(&self) -> Option<i64> {
        self.events.iter().map(|e| e.0).max()
    }
}

impl StatefulProcessor for Fraud {
    type State = Window;

    fn init(config: &Config) -> Result<Self, String> {
        config.reject_unknown(&["threshold", "window_minutes", "ttl_minutes"])?;
        let threshold = config.get_f64("threshold", 1000.0)?;
        let minutes = |key: &str, default: i64| -> Result<i64, String> {
            let m = config.get_i64(key, default)?;
            if m < 0 {
                return Err(format!("config key `{key}` must be 0 or more, not {m}"));
            }
            m.checked_mul(60_000_000).ok_or_else(|| format!("config key `{key}`: {m} is too large"))
        };
        let window_us = minutes("window_minutes", 10)?;
        let ttl_us = minutes("ttl_minutes", 0)?;
        let ttl = (ttl_us > 0).then(|| Duration::from_micros(ttl_us as u64));
        Ok(Fraud { threshold, window_us, ttl, order: Vec::new() })
    }

    fn output_schema(&self, key: &Schema, input: &Schema) -> Result<Schema, String> {
        input.require("event_time", DataType::Timestamp)?;
        input.require("amount", DataType::Float64)?;
        let mut out = key.clone();
        for (name, t) in [
            ("alert_time", DataType::Timestamp),
            ("window_total", DataType::Float64),
            ("window_events", DataType::Int64),
        ] {
            out = out.try_with(Field::new(name, t, false)).map_err(|e| format!("{e} (a key column has that name)"))?;
        }
        Ok(out)
    }

    fn process_group(
        &mut self,
        group: &Group<'_>,
        state: &mut GroupState<Window>,
        out: &mut OutputRows,
    ) -> Result<(), BatchError> {
        if group.num_rows() == 0 {
            if !group.expired_timers().is_empty() {
                // The cleanup timer: the latest event has left the window, so all have.
                state.remove();
            }
            return Ok(());
        }
        let rows = group.rows();
        let times = rows.timestamps("event_time")?;
        let amounts = rows.f64s("amount")?;
        if let Some(bad) = (0..times.len()).find(|&i| times.is_null(i)) {
            return Err(rows.error_at(bad, "`event_time` is null: a payment needs a time"));
        }
        let t = times.values();
        self.order.clear();
        self.order.extend(0..rows.len() as u32);
        self.order.sort_by_key(|&i| t[i as usize]);

        let mut window = state.get().cloned().unwrap_or_default();
        let previous_timer = window.latest().map(|l| l.saturating_add(self.window_us));
        for &i in &self.order {
            let (t, amount) = (t[i as usize], amounts.get(i as usize).unwrap_or(0.0));
            let horizon = t.saturating_sub(self.window_us);
            window.events.retain(|e| e.0 > horizon);
            window.events.push((t, amount));
            let sum = window.events.iter().fold(0.0, |s, e| s + e.1);
            if sum > self.threshold {
                if !window.alerting {
                    out.row().keys(group).timestamp(t).f64(sum).i64(window.events.len() as i64);
                    window.alerting = true;
                }
            } else {
                window.alerting = false;
            }
        }
        if let Some(at) = previous_timer {
            state.delete_timer(Timer::event_time(at));
        }
        let latest = window.latest().expect("the group has rows, so the window has an event");
        state.register_timer(Timer::event_time(latest.saturating_add(self.window_us)));
        state.update(window);
        if let Some(ttl) = self.ttl {
            state.set_ttl(ttl);
        }
        Ok(())
    }
}

weir_guest::export_stateful!(Fraud);

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    /// One call: `groups` is (card, stored state, expired timers, rows of (event_time, amount)).
    #[allow(clippy::type_complexity)]
    fn call(
        p: &mut Fraud,
        groups: &[(i64, Option<Window>, Vec<Timer>, Vec<(Option<i64>, Option<f64>)>)],
    ) -> Result<StatefulOutput, BatchError> {
        let keys = I64Builder::from_values(groups.iter().map(|g| g.0).collect());
        let mut offsets = vec![0u32];
        let (mut times, mut amounts) = (I64Builder::new(), F64Builder::new());
        for (_, _, _, rows) in groups {
            for (t, a) in rows {
                times.push(*t);
                amounts.push(*a);
            }
            offsets.push(offsets.last().unwrap() + rows.len() as u32);
        }
        let n = *offsets.last().unwrap() as usize;
        let rows =
            Batch::new(n, vec![Column::new("event_time", times.finish_timestamp()), Column::new("amount", amounts)])
                .unwrap();
        let mut g = Groups::new(Batch::new(groups.len(), vec![Column::new("card", keys)]).unwrap(), rows, offsets);
        for (i, (_, state, timers, _)) in groups.iter().enumerate() {
            g.states[i] = state.as_ref().map(|s| encode_state(s).unwrap());
            g.expired_timers[i] = timers.clone();
        }
        let key = Schema::new(vec![Field::new("card", DataType::Int64, false)]);
        let input = Schema::new(vec![
            Field::new("event_time", DataType::Timestamp, true),
            Field::new("amount", DataType::Float64, true),
        ]);
        let schema = p.output_schema(&key, &input).unwrap();
        process_groups(p, &schema, &BatchTime::default(), &g)
    }

    fn alerts(out: &StatefulOutput) -> Vec<(i64, i64, f64, i64)> {
        let b = &out.output;
        let (c, t, s, n) = (
            b.i64s("card").unwrap(),
            b.timestamps("alert_time").unwrap(),
            b.f64s("window_total").unwrap(),
            b.i64s("window_events").unwrap(),
        );
        (0..b.num_rows()).map(|i| (c.values()[i], t.values()[i], s.values()[i], n.values()[i])).collect()
    }

    fn stored(out: &StatefulOutput, g: usize) -> Window {
        match &out.results[g].state {
            StateUpdate::Update(b) => decode_state(b).unwrap(),
            other => panic!("state not updated: {other:?}"),
        }
    }

    fn plugin(config: &str) -> Fraud {
        Fraud::init(&Config::parse(config).unwrap()).unwrap()
    }

    #[test]
    fn crossing_the_threshold_alerts_once_until_the_sum_falls_back() {
        let mut p = plugin("threshold=100");
        let rows = vec![
            (Some(0), Some(60.0)),
            (Some(MIN), Some(50.0)),      // 110 > 100: alert
            (Some(2 * MIN), Some(10.0)),  // 120: still alerting, no new alert
            (Some(11 * MIN), Some(1.0)),  // 0 and 1 min left the window: 10 + 1 = 11, reset
            (Some(12 * MIN), Some(95.0)), // 2 min left (<= 12 - 10): 1 + 95 = 96
            (Some(13 * MIN), Some(5.0)),  // 101: alert again
        ];
        let out = call(&mut p, &[(7, None, vec![], rows)]).unwrap();
        assert_eq!(alerts(&out), vec![(7, MIN, 110.0, 2), (7, 13 * MIN, 101.0, 3)]);
        let w = stored(&out, 0);
        assert_eq!(w.events, vec![(11 * MIN, 1.0), (12 * MIN, 95.0), (13 * MIN, 5.0)]);
        assert!(w.alerting);
        let r = &out.results[0];
        assert_eq!(r.register_timers, vec![Timer::event_time(23 * MIN)]);
        assert!(r.delete_timers.is_empty(), "a new key has no timer to delete");
        assert_eq!(r.ttl_ms, None);
    }

    #[test]
    fn rows_are_taken_in_event_time_order_across_the_stored_window() {
        let mut p = plugin("threshold=100,ttl_minutes=60");
        let stored_window = Window { events: vec![(5 * MIN, 90.0)], alerting: false };
        let out =
            call(&mut p, &[(1, Some(stored_window), vec![], vec![(Some(9 * MIN), Some(20.0)), (Some(6 * MIN), None)])])
                .unwrap();
        // 6 min (a null amount, 0.0) then 9 min: 90 + 0 + 20 = 110 at 9 min.
        assert_eq!(alerts(&out), vec![(1, 9 * MIN, 110.0, 3)]);
        let r = &out.results[0];
        assert_eq!(r.delete_timers, vec![Timer::event_time(15 * MIN)], "the previous cleanup timer");
        assert_eq!(r.register_timers, vec![Timer::event_time(19 * MIN)]);
        assert_eq!(r.ttl_ms, Some(3_600_000));
        assert_eq!(r.timeout, TimeoutUpdate::Clear);
    }

    #[test]
    fn the_cleanup_timer_without_rows_removes_the_state() {
        let mut p = plugin("");
        let w = Window { events: vec![(0, 5.0)], alerting: false };
        let out = call(
            &mut p,
            &[(1, Some(w.clone()), vec![Timer::event_time(10 * MIN)], vec![]), (2, Some(w), vec![], vec![])],
        )
        .unwrap();
        assert_eq!(out.results[0].state, StateUpdate::Remove);
        assert_eq!(out.results[1].state, StateUpdate::Keep, "no timer, no rows: nothing changes");
        assert_eq!(out.output.num_rows(), 0);
    }

    #[test]
    fn a_null_event_time_names_its_row() {
        let mut p = plugin("");
        let e = call(&mut p, &[(1, None, vec![], vec![(Some(0), Some(1.0)), (None, Some(1.0))])]).unwrap_err();
        assert_eq!(e.row, Some(1));
    }

    #[test]
    fn config_is_checked() {
        assert!(Fraud::init(&Config::parse("treshold=5").unwrap()).err().unwrap().contains("unknown config key"));
        assert!(Fraud::init(&Config::parse("window_minutes=-1").unwrap()).is_err());
        let p = plugin("");
        assert_eq!((p.threshold, p.window_us, p.ttl), (1000.0, 10 * MIN, None));
    }
}
