//! Stateful plugins: per-key state, timeouts and timers (Spark's `flatMapGroupsWithState` and
//! `transformWithState`), the `weir:plugin/stateful` world.
//!
//! Implement [`StatefulProcessor`] and export it with [`export_stateful!`](crate::export_stateful).
//! The host groups each micro-batch by the job's key columns and calls the plugin once for all
//! keys that have new rows, a timeout that fired or timers that fired; the SDK then calls
//! [`StatefulProcessor::process_group`] once per key, with:
//!
//! - a [`Group`]: the key's values ([`Group::key`]), its rows as column views sliced from the
//!   batch the host sent (nothing is copied), the batch's clocks and the key's expired timers;
//! - a [`GroupState`] holding the key's typed state, decoded from the bytes the host keeps
//!   (postcard) and encoded again only when the plugin changed it;
//! - the call's [`OutputRows`], to append output rows to.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use weir_guest::prelude::*;
//!
//! /// Counts each key's events; emits the running count whenever a key gets new rows, and
//! /// forgets a key after an hour (of processing time) without rows.
//! struct Counter;
//!
//! #[derive(Serialize, Deserialize)]
//! struct Count {
//!     events: i64,
//! }
//!
//! impl StatefulProcessor for Counter {
//!     type State = Count;
//!
//!     fn init(config: &Config) -> Result<Self, String> {
//!         config.reject_unknown(&[])?;
//!         Ok(Counter)
//!     }
//!
//!     fn output_schema(&self, key: &Schema, _input: &Schema) -> Result<Schema, String> {
//!         Ok(key.clone().with(Field::new("events", DataType::Int64, false)))
//!     }
//!
//!     fn process_group(
//!         &mut self,
//!         group: &Group<'_>,
//!         state: &mut GroupState<Count>,
//!         out: &mut OutputRows,
//!     ) -> Result<(), BatchError> {
//!         if state.has_timed_out() {
//!             state.remove();
//!             return Ok(());
//!         }
//!         let events = state.get().map_or(0, |c| c.events) + group.num_rows() as i64;
//!         state.update(Count { events });
//!         state.set_timeout_duration(std::time::Duration::from_secs(3600));
//!         out.row().keys(group).i64(events);
//!         Ok(())
//!     }
//! }
//!
//! weir_guest::export_stateful!(Counter);
//!
//! // The same call the export makes, natively: two keys, 2 rows and 1 row.
//! let keys = Batch::new(2, vec![Column::new("user", [Some("a"), Some("b")].into_iter().collect::<StrBuilder>())]).unwrap();
//! let rows = Batch::new(3, vec![Column::new("x", F64Builder::from_values(vec![1.0, 2.0, 3.0]))]).unwrap();
//! let mut groups = Groups::new(keys, rows, vec![0, 2, 3]);
//! groups.states[1] = Some(encode_state(&Count { events: 10 }).unwrap());
//! let mut plugin = Counter::init(&Config::default()).unwrap();
//! let schema = plugin.output_schema(&Schema::new(vec![Field::new("user", DataType::Utf8, true)]), &Schema::default()).unwrap();
//! let out = process_groups(&mut plugin, &schema, &BatchTime::default(), &groups).unwrap();
//! assert_eq!(out.output.i64s("events").unwrap().values(), &[2, 11]);
//! assert_eq!(out.results[0].timeout, TimeoutUpdate::ProcessingTimeMs(3_600_000));
//! ```
//!
//! Spark's rules hold: a timeout lasts one call (a call that sets none sends
//! [`TimeoutUpdate::Clear`]), a state neither updated nor removed is kept without crossing
//! back ([`StateUpdate::Keep`]), and a timed-out key is called with no rows.

mod group_state;
mod groups;
mod output_rows;
mod time;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use group_state::{decode_state, encode_state, GroupResult, GroupState, StateUpdate, TimeoutUpdate};
pub use groups::{Group, GroupRows, Groups, KeyRow};
pub use output_rows::{OutputRows, OutputValue, RowWriter};
pub use time::{BatchTime, TimeDomain, Timer};

use crate::batch::Batch;
use crate::config::Config;
use crate::output::BatchError;
use crate::schema::Schema;
use groups::CallContext;

/// A stateful plugin: a function of a key's rows and its state, called per key and micro-batch.
///
/// The host creates one instance per operator, calls [`init`](Self::init) once, then
/// [`output_schema`](Self::output_schema) when the job starts, then, per micro-batch,
/// [`begin_batch`](Self::begin_batch) and [`process_group`](Self::process_group) for every key
/// with new rows, a fired timeout or fired timers. A trap (a panic) discards the instance and
/// fails the batch, which the host retries on a fresh instance: the stored states are the
/// host's, so nothing is lost.
pub trait StatefulProcessor: Sized + 'static {
    /// The state kept per key, stored by the host as postcard bytes between batches. Changing
    /// this type changes the bytes: raise [`state_version`](Self::state_version) and convert
    /// old states in [`migrate_state`](Self::migrate_state).
    type State: Serialize + DeserializeOwned;

    /// Builds the plugin from the operator's `config` string in the job file. An `Err` stops the
    /// job with this message, naming the plugin.
    fn init(config: &Config) -> Result<Self, String>;

    /// The schema of the output rows, for these key columns and input rows. Check here that the
    /// columns you need exist with the right types: an `Err` stops the job at start.
    fn output_schema(&self, key: &Schema, input: &Schema) -> Result<Schema, String>;

    /// The version of the state bytes this plugin writes. A hot swap to a plugin with another
    /// version has the new plugin's [`migrate_state`](Self::migrate_state) convert every stored
    /// state first.
    fn state_version(&self) -> u32 {
        1
    }

    /// Converts a state written by version `from_version` of the plugin into this version's
    /// bytes (use [`decode_state`] and [`encode_state`] for the typed states at either end).
    /// The default has no migration and refuses, which stops the swap with this message.
    fn migrate_state(&self, from_version: u32, state: Vec<u8>) -> Result<Vec<u8>, String> {
        let _ = state;
        Err(format!(
            "this plugin writes state version {} and has no migration from version {from_version} \
             (implement StatefulProcessor::migrate_state)",
            self.state_version()
        ))
    }

    /// Called once per call, before its first group, with the batch's clocks.
    fn begin_batch(&mut self, time: &BatchTime) {
        let _ = time;
    }

    /// Processes one key: its rows (none when called for a timeout or timers), its state, and
    /// the output rows to append to. An `Err` fails the batch; one naming a row of the call
    /// ([`GroupRows::error_at`]) lets the host dead-letter that record and retry without it.
    fn process_group(
        &mut self,
        group: &Group<'_>,
        state: &mut GroupState<Self::State>,
        out: &mut OutputRows,
    ) -> Result<(), BatchError>;
}

/// What a call returns: one result per group, in order, and the output rows of all groups.
#[derive(Debug, Clone, PartialEq)]
pub struct StatefulOutput {
    /// One result per input group, in the same order.
    pub results: Vec<GroupResult>,
    /// The output rows, of the schema `output_schema` returned.
    pub output: Batch,
}

/// Runs `plugin` over the groups of one call: what the exported `process-groups` does, callable
/// natively so a plugin's logic can be unit-tested without Wasm. `output_schema` is what
/// [`StatefulProcessor::output_schema`] returned.
pub fn process_groups<P: StatefulProcessor>(
    plugin: &mut P,
    output_schema: &Schema,
    time: &BatchTime,
    groups: &Groups,
) -> Result<StatefulOutput, BatchError> {
    groups.check().map_err(|e| BatchError::new(format!("the host sent malformed groups: {e}")))?;
    plugin.begin_batch(time);
    let cx = CallContext::new(groups, time);
    let mut out = OutputRows::new(output_schema);
    let mut results = Vec::with_capacity(groups.len());
    for g in 0..groups.len() {
        let group = cx.group(g);
        let stored = match &groups.states[g] {
            None => None,
            Some(bytes) => Some(decode_state::<P::State>(bytes).map_err(|e| {
                BatchError::new(format!(
                    "the stored state of key {} does not decode as this plugin's state (version {}): {e}; \
                     a plugin whose state type changed must raise state_version and convert old states in \
                     migrate_state",
                    group.key(),
                    plugin.state_version()
                ))
            })?),
        };
        let mut state = GroupState::new(stored, groups.timed_out[g]);
        plugin
            .process_group(&group, &mut state, &mut out)
            .map_err(|e| BatchError { message: format!("key {}: {}", group.key(), e.message), row: e.row })?;
        if let Some(e) = out.take_error() {
            return Err(BatchError::new(format!("key {}: {}", group.key(), e.message)));
        }
        let result = state.into_result().map_err(|e| BatchError::new(format!("key {}: {e}", group.key())))?;
        results.push(result);
    }
    Ok(StatefulOutput { results, output: out.finish()? })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::prelude::*;

    /// Sums `x` per key; behaviour per call steered by the fields, to exercise every helper.
    #[derive(Default)]
    struct Summer {
        set_timeout: bool,
        begun: Vec<u64>,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Sum {
        total: f64,
        names: Vec<String>,
    }

    impl StatefulProcessor for Summer {
        type State = Sum;

        fn init(_: &Config) -> Result<Self, String> {
            Ok(Summer::default())
        }

        fn output_schema(&self, key: &Schema, _: &Schema) -> Result<Schema, String> {
            Ok(key.clone().with(Field::new("total", DataType::Float64, false)).with(Field::new(
                "n",
                DataType::Int64,
                true,
            )))
        }

        fn begin_batch(&mut self, time: &BatchTime) {
            self.begun.push(time.batch_id);
        }

        fn process_group(
            &mut self,
            group: &Group<'_>,
            state: &mut GroupState<Sum>,
            out: &mut OutputRows,
        ) -> Result<(), BatchError> {
            if state.has_timed_out() {
                state.remove();
                return Ok(());
            }
            if group.num_rows() == 0 {
                return Ok(()); // keeps the state, clears the timeout
            }
            let xs = group.rows().f64s("x")?;
            let names = group.rows().strs("name")?;
            let mut s = state.get().cloned().unwrap_or(Sum { total: 0.0, names: vec![] });
            for i in 0..xs.len() {
                s.total += xs.get(i).ok_or_else(|| group.rows().error_at(i, "null x"))?;
                s.names.extend(names.get(i).map(str::to_string));
            }
            out.row().keys(group).f64(s.total).value(None::<i64>);
            state.update(s);
            if self.set_timeout {
                state.set_timeout_timestamp(group.batch_time().watermark.unwrap_or(0) + 10);
            }
            Ok(())
        }
    }

    /// Keys "a", "b", "c" with rows 2, 0 and 1.
    fn groups() -> Groups {
        let keys = Batch::new(
            3,
            vec![Column::new("k", [Some("a"), Some("b"), Some("c")].into_iter().collect::<StrBuilder>())],
        )
        .unwrap();
        let rows = Batch::new(
            3,
            vec![
                Column::new("x", F64Builder::from_values(vec![1.0, 2.0, 4.0])),
                Column::new("name", [Some("p"), None, Some("ünï")].into_iter().collect::<StrBuilder>()),
            ],
        )
        .unwrap();
        Groups::new(keys, rows, vec![0, 2, 2, 3])
    }

    fn schema() -> Schema {
        Summer::default()
            .output_schema(&Schema::new(vec![Field::new("k", DataType::Utf8, false)]), &Schema::default())
            .unwrap()
    }

    fn time(batch_id: u64) -> BatchTime {
        BatchTime { batch_id, watermark: Some(100), processing_time: 5 }
    }

    #[test]
    fn state_round_trips_through_bytes_and_unchanged_state_is_kept() {
        let mut p = Summer::default();
        let out = process_groups(&mut p, &schema(), &time(1), &groups()).unwrap();
        assert_eq!(p.begun, vec![1]);
        let StateUpdate::Update(a) = &out.results[0].state else { panic!("a not updated") };
        assert_eq!(decode_state::<Sum>(a).unwrap(), Sum { total: 3.0, names: vec!["p".into()] });
        assert_eq!(out.results[1].state, StateUpdate::Keep, "b has no rows and no state");
        assert_eq!(out.output.strs("k").unwrap().iter().collect::<Vec<_>>(), [Some("a"), Some("c")]);
        assert_eq!(out.output.f64s("total").unwrap().values(), &[3.0, 4.0]);
        assert_eq!(out.output.i64s("n").unwrap().null_count(), 2);

        // The next batch starts from the stored bytes.
        let mut next = groups();
        next.states[0] = Some(a.clone());
        next.states[1] = Some(encode_state(&Sum { total: 9.0, names: vec![] }).unwrap());
        let out = process_groups(&mut p, &schema(), &time(2), &next).unwrap();
        let StateUpdate::Update(a) = &out.results[0].state else { panic!() };
        assert_eq!(decode_state::<Sum>(a).unwrap(), Sum { total: 6.0, names: vec!["p".into(), "p".into()] });
        assert_eq!(out.results[1].state, StateUpdate::Keep, "b kept its state without sending it back");
    }

    #[test]
    fn a_timeout_is_cleared_unless_set_again_in_the_call() {
        let mut p = Summer { set_timeout: true, ..Summer::default() };
        let out = process_groups(&mut p, &schema(), &time(1), &groups()).unwrap();
        assert_eq!(out.results[0].timeout, TimeoutUpdate::EventTime(110));
        assert_eq!(out.results[1].timeout, TimeoutUpdate::Clear, "b set none this call");
        p.set_timeout = false;
        let out = process_groups(&mut p, &schema(), &time(2), &groups()).unwrap();
        assert_eq!(out.results[0].timeout, TimeoutUpdate::Clear);
    }

    #[test]
    fn a_timed_out_group_removes_its_state_and_a_missing_state_is_not_removed() {
        let mut g = groups();
        g.row_offsets = vec![0, 0, 3, 3];
        g.timed_out = vec![true, false, true];
        g.states[0] = Some(encode_state(&Sum { total: 1.0, names: vec![] }).unwrap());
        let out = process_groups(&mut Summer::default(), &schema(), &time(1), &g).unwrap();
        assert_eq!(out.results[0].state, StateUpdate::Remove);
        assert_eq!(out.results[2].state, StateUpdate::Keep, "c had no state to remove");
    }

    #[test]
    fn a_state_that_does_not_decode_names_the_key() {
        let mut g = groups();
        g.states[2] = Some(vec![0xff, 0xff, 0xff]);
        let e = process_groups(&mut Summer::default(), &schema(), &time(1), &g).unwrap_err();
        assert!(e.message.starts_with("the stored state of key k=\"c\" does not decode"), "{}", e.message);
        assert_eq!(decode_state::<u8>(&[1, 2]).unwrap_err(), "1 bytes are left over after the state");
    }

    #[test]
    fn group_views_are_slices_of_the_call_and_errors_name_the_calls_row() {
        let mut g = groups();
        g.rows = Batch::new(
            3,
            vec![
                Column::new("x", [Some(1.0), Some(2.0), None].into_iter().collect::<F64Builder>()),
                Column::new("name", [Some("p"), None, Some("ünï")].into_iter().collect::<StrBuilder>()),
            ],
        )
        .unwrap();
        let e = process_groups(&mut Summer::default(), &schema(), &time(1), &g).unwrap_err();
        assert_eq!(e.row, Some(2), "c's first row is the call's row 2");
        assert_eq!(e.message, "key k=\"c\": null x");

        let t = time(1);
        let g = groups();
        let cx = CallContext::new(&g, &t);
        let c = cx.group(2);
        assert_eq!(c.row_range(), 2..3);
        assert_eq!(c.rows().strs("name").unwrap().iter().collect::<Vec<_>>(), [Some("ünï")]);
        assert_eq!(c.rows().f64s("x").unwrap().values(), &[4.0]);
        let x = cx.group(0).rows().f64s("x").unwrap().values();
        assert!(std::ptr::eq(x.as_ptr(), g.rows.f64s("x").unwrap().values().as_ptr()), "a view borrows, not copies");
        assert_eq!(cx.group(0).rows().utf8_bytes("name").unwrap().get(1), None);
        assert_eq!(c.key().str("k").unwrap(), Some("c"));
        assert_eq!(c.key().to_string(), "k=\"c\"");
        assert!(c.key().f64("k").unwrap_err().message.contains("is utf8 (string), not float64"));
        assert_eq!(c.rows().i64s("zz").unwrap_err().message, "the rows have no column `zz`; the columns are: x, name");
    }

    #[test]
    fn timers_ttl_and_durations_reach_the_result_and_the_last_call_for_a_timer_wins() {
        let mut s = GroupState::<u8>::new(None, false);
        s.register_timer(Timer::event_time(5));
        s.register_timer(Timer::event_time(5));
        s.delete_timer(Timer::processing_time(7));
        s.delete_timer(Timer::event_time(9));
        s.register_timer(Timer::event_time(9));
        s.set_ttl(Duration::from_secs(2));
        s.set_timeout_duration(Duration::from_millis(1500));
        let r = s.into_result().unwrap();
        assert_eq!(r.register_timers, vec![Timer::event_time(5), Timer::event_time(9)]);
        assert_eq!(r.delete_timers, vec![Timer::processing_time(7)]);
        assert_eq!(r.ttl_ms, Some(2000));
        assert_eq!(r.timeout, TimeoutUpdate::ProcessingTimeMs(1500));
        assert_eq!(r.state, StateUpdate::Keep);
    }

    #[test]
    fn group_state_follows_sparks_rules() {
        let mut s = GroupState::new(Some(3u32), false);
        assert!(s.exists() && !s.has_timed_out());
        assert_eq!(s.get(), Some(&3));
        *s.get_mut().unwrap() += 1;
        assert_eq!(s.clone().into_result().unwrap().state, StateUpdate::Update(encode_state(&4u32).unwrap()));
        s.remove();
        assert!(!s.exists());
        assert_eq!(s.into_result().unwrap().state, StateUpdate::Remove);
        let mut new = GroupState::<u32>::new(None, true);
        assert!(new.has_timed_out() && new.get_mut().is_none());
        assert_eq!(new.into_result().unwrap().state, StateUpdate::Keep, "get_mut of nothing changes nothing");
    }

    #[test]
    fn output_mistakes_fail_the_call_naming_row_and_column() {
        let schema = schema();
        let mut out = OutputRows::new(&schema);
        out.row().str("a").i64(1).null();
        assert_eq!(
            out.take_error().unwrap().message,
            "output row 0, column 1 (`total`): a int64 (bigint) value was written into a float64 (double) column"
        );
        out.row().str("a").f64(1.0);
        assert_eq!(
            out.take_error().unwrap().message,
            "output row 1, column 2 (`n`): the row ended after 2 of the 3 columns"
        );
        out.row().str("a").null().null();
        assert!(out.take_error().unwrap().message.contains("not nullable"));
        out.row().str("a").f64(1.0).i64(2).bool(true);
        assert!(out.take_error().unwrap().message.contains("more values than the 3 output columns"));
        let mut out = OutputRows::new(&schema);
        out.row().value("a").value(2.5).value(Some(7i64));
        let b = out.finish().unwrap();
        assert_eq!(b.i64s("n").unwrap().values(), &[7]);
    }

    #[test]
    fn malformed_groups_are_refused() {
        let mut g = groups();
        g.row_offsets = vec![0, 2, 3];
        let e = process_groups(&mut Summer::default(), &schema(), &time(1), &g).unwrap_err();
        assert_eq!(e.message, "the host sent malformed groups: 3 groups but 3 row offsets (there must be one more)");
        let mut g = groups();
        g.row_offsets = vec![0, 2, 1, 3];
        assert!(process_groups(&mut Summer::default(), &schema(), &time(1), &g).is_err());
        let mut g = groups();
        g.timed_out.pop();
        assert!(process_groups(&mut Summer::default(), &schema(), &time(1), &g)
            .unwrap_err()
            .message
            .contains("`timed-out`"));
    }

    #[test]
    fn migration_is_refused_by_default() {
        let p = Summer::default();
        assert_eq!(p.state_version(), 1);
        assert!(p.migrate_state(0, vec![]).unwrap_err().contains("no migration from version 0"));
    }
}
