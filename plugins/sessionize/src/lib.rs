//! `sessionize`: splits each key's events into sessions (Spark's sessionization example with
//! `flatMapGroupsWithState` and an event-time timeout).
//!
//! A session is a run of a key's events with no gap longer than `gap_minutes` (config, default
//! 30) between them. It is emitted when it closes: when a later event of the key comes more
//! than the gap after its last event, or when the watermark passes its last event plus the gap
//! (the event-time timeout). Output: the key columns, then `session_start`, `session_end` (last
//! event + gap), `events` and `total` (the sum of `amount`, a null amount counting as 0.0).
//!
//! The Python twin (`plugins/sessionize-py`) and the Spark version follow these rules to the
//! bit: events of a batch are taken in `event_time` order (ties in arrival order) and amounts
//! are added in that order.

use serde::{Deserialize, Serialize};
use weir_guest::prelude::*;

/// The plugin: the gap, and a buffer reused for each group's row order.
struct Sessionize {
    gap_us: i64,
    order: Vec<u32>,
}

/// The open session of a key. Times are microseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Session {
    start: i64,
    last: i64,
    events: i64,
    total: f64,
}

impl Sessionize {
    /// Appends the closed session `s` to the output.
    fn emit(&self, group: &Group<'_>, s: &Session, out: &mut OutputRows) {
        out.row()
            .keys(group)
            .timestamp(s.start)
            .timestamp(s.last.saturating_add(self.gap_us))
            .i64(s.events)
            .f64(s.total);
    }
}

impl StatefulProcessor for Sessionize {
    type State = Session;

    fn init(config: &Config) -> Result<Self, String> {
        config.reject_unknown(&["gap_minutes"])?;
        let gap_minutes = config.get_i64("gap_minutes", 30)?;
        if gap_minutes < 0 {
            return Err(format!("config key `gap_minutes` must be 0 or more, not {gap_minutes}"));
        }
        let gap_us = gap_minutes
            .checked_mul(60_000_000)
            .ok_or_else(|| format!("config key `gap_minutes`: {gap_minutes} is too large"))?;
        Ok(Sessionize { gap_us, order: Vec::new() })
    }

    fn output_schema(&self, key: &Schema, input: &Schema) -> Result<Schema, String> {
        input.require("event_time", DataType::Timestamp)?;
        input.require("amount", DataType::Float64)?;
        let mut out = key.clone();
        for (name, t) in [
            ("session_start", DataType::Timestamp),
            ("session_end", DataType::Timestamp),
            ("events", DataType::Int64),
            ("total", DataType::Float64),
        ] {
            out = out.try_with(Field::new(name, t, false)).map_err(|e| format!("{e} (a key column has that name)"))?;
        }
        Ok(out)
    }

    fn process_group(
        &mut self,
        group: &Group<'_>,
        state: &mut GroupState<Session>,
        out: &mut OutputRows,
    ) -> Result<(), BatchError> {
        if group.num_rows() == 0 {
            if state.has_timed_out() {
                // The watermark passed the session's end: it can get no more events.
                if let Some(s) = state.get() {
                    self.emit(group, s, out);
                }
                state.remove();
            } else if let Some(s) = state.get() {
                // Called without rows for another reason: the timeout must be set again.
                state.set_timeout_timestamp(s.last.saturating_add(self.gap_us));
            }
            return Ok(());
        }
        let rows = group.rows();
        let times = rows.timestamps("event_time")?;
        let amounts = rows.f64s("amount")?;
        if let Some(bad) = (0..times.len()).find(|&i| times.is_null(i)) {
            return Err(rows.error_at(bad, "`event_time` is null: a session event needs a time"));
        }
        let t = times.values();
        self.order.clear();
        self.order.extend(0..rows.len() as u32);
        // A stable sort: events at the same time keep their arrival order.
        self.order.sort_by_key(|&i| t[i as usize]);

        let mut open = state.get().copied();
        for &i in &self.order {
            let (t, amount) = (t[i as usize], amounts.get(i as usize).unwrap_or(0.0));
            open = Some(match open {
                Some(s) if t > s.last.saturating_add(self.gap_us) => {
                    self.emit(group, &s, out);
                    Session { start: t, last: t, events: 1, total: amount }
                }
                Some(s) => Session {
                    start: s.start.min(t),
                    last: s.last.max(t),
                    events: s.events + 1,
                    total: s.total + amount,
                },
                None => Session { start: t, last: t, events: 1, total: amount },
            });
        }
        let s = open.expect("the group has rows, so a session is open");
        state.update(s);
        state.set_timeout_timestamp(s.last.saturating_add(self.gap_us));
        Ok(())
    }
}

weir_guest::export_stateful!(Sessionize);

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    fn key_schema() -> Schema {
        Schema::new(vec![Field::new("user_id", DataType::Utf8, true)])
    }

    fn input_schema() -> Schema {
        Schema::new(vec![
            Field::new("user_id", DataType::Utf8, true),
            Field::new("event_time", DataType::Timestamp, true),
            Field::new("amount", DataType::Float64, true),
        ])
    }

    /// One call: `groups` is (user, stored state, timed out, rows of (event_time, amount)).
    #[allow(clippy::type_complexity)]
    fn call(
        p: &mut Sessionize,
        groups: &[(&str, Option<Session>, bool, Vec<(Option<i64>, Option<f64>)>)],
    ) -> Result<StatefulOutput, BatchError> {
        let keys: StrBuilder = groups.iter().map(|g| Some(g.0)).collect();
        let mut offsets = vec![0u32];
        let (mut users, mut times, mut amounts) = (StrBuilder::new(), I64Builder::new(), F64Builder::new());
        for (user, _, _, rows) in groups {
            for (t, a) in rows {
                users.push_value(user);
                times.push(*t);
                amounts.push(*a);
            }
            offsets.push(offsets.last().unwrap() + rows.len() as u32);
        }
        let n = *offsets.last().unwrap() as usize;
        let rows = Batch::new(
            n,
            vec![
                Column::new("user_id", users),
                Column::new("event_time", times.finish_timestamp()),
                Column::new("amount", amounts),
            ],
        )
        .unwrap();
        let mut g = Groups::new(Batch::new(groups.len(), vec![Column::new("user_id", keys)]).unwrap(), rows, offsets);
        for (i, (_, state, timed_out, _)) in groups.iter().enumerate() {
            g.states[i] = state.map(|s| encode_state(&s).unwrap());
            g.timed_out[i] = *timed_out;
        }
        let schema = p.output_schema(&key_schema(), &input_schema()).unwrap();
        process_groups(p, &schema, &BatchTime::default(), &g)
    }

    fn sessions(out: &StatefulOutput) -> Vec<(String, i64, i64, i64, f64)> {
        let b = &out.output;
        let (u, s, e, n, t) = (
            b.strs("user_id").unwrap(),
            b.timestamps("session_start").unwrap(),
            b.timestamps("session_end").unwrap(),
            b.i64s("events").unwrap(),
            b.f64s("total").unwrap(),
        );
        (0..b.num_rows())
            .map(|i| (u.value(i).to_string(), s.values()[i], e.values()[i], n.values()[i], t.values()[i]))
            .collect()
    }

    fn stored(out: &StatefulOutput, g: usize) -> Option<Session> {
        match &out.results[g].state {
            StateUpdate::Update(b) => Some(decode_state(b).unwrap()),
            _ => None,
        }
    }

    fn plugin(config: &str) -> Sessionize {
        Sessionize::init(&Config::parse(config).unwrap()).unwrap()
    }

    #[test]
    fn events_within_the_gap_form_one_open_session_with_an_event_time_timeout() {
        let mut p = plugin("gap_minutes=10");
        let out = call(
            &mut p,
            &[("a", None, false, vec![(Some(5 * MIN), Some(1.5)), (Some(0), None), (Some(12 * MIN), Some(2.0))])],
        )
        .unwrap();
        assert!(sessions(&out).is_empty(), "nothing closed yet");
        let s = stored(&out, 0).unwrap();
        assert_eq!(s, Session { start: 0, last: 12 * MIN, events: 3, total: 0.0 + 1.5 + 2.0 });
        assert_eq!(out.results[0].timeout, TimeoutUpdate::EventTime(22 * MIN));
    }

    #[test]
    fn a_gap_longer_than_gap_minutes_closes_the_session_and_opens_another() {
        let mut p = plugin("gap_minutes=10");
        let open = Session { start: 0, last: 10 * MIN, events: 2, total: 3.0 };
        // 20 min is exactly last + gap: still the same session; 31 min is past 30.
        let out =
            call(&mut p, &[("a", Some(open), false, vec![(Some(31 * MIN), Some(4.0)), (Some(20 * MIN), Some(1.0))])])
                .unwrap();
        assert_eq!(sessions(&out), vec![("a".to_string(), 0, 30 * MIN, 3, 4.0)]);
        assert_eq!(stored(&out, 0).unwrap(), Session { start: 31 * MIN, last: 31 * MIN, events: 1, total: 4.0 });
        assert_eq!(out.results[0].timeout, TimeoutUpdate::EventTime(41 * MIN));
    }

    #[test]
    fn a_late_event_within_the_gap_moves_the_start_back() {
        let mut p = plugin("gap_minutes=10");
        let open = Session { start: 20 * MIN, last: 25 * MIN, events: 2, total: 3.0 };
        let out = call(&mut p, &[("a", Some(open), false, vec![(Some(12 * MIN), Some(1.0))])]).unwrap();
        assert_eq!(stored(&out, 0).unwrap(), Session { start: 12 * MIN, last: 25 * MIN, events: 3, total: 4.0 });
    }

    #[test]
    fn a_timeout_emits_the_open_session_and_removes_the_state() {
        let mut p = plugin("");
        let open = Session { start: 0, last: 10 * MIN, events: 2, total: 3.0 };
        let out =
            call(&mut p, &[("a", Some(open), true, vec![]), ("b", None, false, vec![(Some(0), Some(1.0))])]).unwrap();
        assert_eq!(sessions(&out), vec![("a".to_string(), 0, 40 * MIN, 2, 3.0)]);
        assert_eq!(out.results[0].state, StateUpdate::Remove);
        assert_eq!(out.results[0].timeout, TimeoutUpdate::Clear);
        assert_eq!(out.results[1].timeout, TimeoutUpdate::EventTime(30 * MIN), "default gap 30 minutes");
    }

    #[test]
    fn ties_keep_arrival_order_so_sums_are_reproducible() {
        let mut p = plugin("");
        let rows =
            vec![(Some(MIN), Some(0.1)), (Some(0), Some(1e16)), (Some(MIN), Some(-1e16)), (Some(MIN), Some(0.2))];
        let out = call(&mut p, &[("a", None, false, rows)]).unwrap();
        assert_eq!(stored(&out, 0).unwrap().total.to_bits(), (((1e16 + 0.1) + -1e16) + 0.2f64).to_bits());
    }

    #[test]
    fn a_null_event_time_names_its_row_in_the_call() {
        let mut p = plugin("");
        let e = call(
            &mut p,
            &[("a", None, false, vec![(Some(0), None)]), ("b", None, false, vec![(Some(1), None), (None, Some(1.0))])],
        )
        .unwrap_err();
        assert_eq!(e.row, Some(2));
        assert!(e.message.contains("`event_time` is null"), "{}", e.message);
    }

    #[test]
    fn config_and_schema_are_checked() {
        assert_eq!(
            Sessionize::init(&Config::parse("gap=3").unwrap()).err().unwrap(),
            "unknown config key `gap` (known keys: gap_minutes)"
        );
        assert!(Sessionize::init(&Config::parse("gap_minutes=-1").unwrap()).is_err());
        let p = plugin("");
        let out = p.output_schema(&key_schema(), &input_schema()).unwrap();
        let names: Vec<_> = out.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["user_id", "session_start", "session_end", "events", "total"]);
        assert!(out.fields[1..].iter().all(|f| !f.nullable));
        let no_amount = Schema::new(vec![Field::new("event_time", DataType::Timestamp, true)]);
        assert!(p.output_schema(&key_schema(), &no_amount).unwrap_err().contains("`amount`"));
    }
}
