//! The glue between the generated `stateful` bindings and [`StatefulProcessor`]: used by
//! [`export_stateful!`](crate::export_stateful) only; not part of the API.
//!
//! As for the mapper, converting the WIT records moves the received lists into the SDK's
//! batches (no copy), and the output builders' lists become the returned ones.

use std::cell::RefCell;

use crate::batch::{Batch, Column, ColumnData, Values, VarLen};
use crate::config::Config;
use crate::output::BatchError;
use crate::schema::{DataType, Field, Schema};
use crate::stateful::{
    process_groups as run, BatchTime, GroupResult, Groups, StateUpdate, StatefulProcessor, TimeDomain, TimeoutUpdate,
    Timer,
};

/// The bindings generated from `wit/weir.wit`, world `stateful`.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "stateful",
        pub_export_macro: true,
        export_macro_name: "__weir_export_stateful_bindings",
    });
}

use bindings::weir::plugin::stateful_types as st;
use bindings::weir::plugin::types as wit;

pub use bindings::Guest;
/// The WIT `schema`.
pub type WitSchema = Vec<wit::Field>;
/// The WIT `batch-time`.
pub type WitBatchTime = st::BatchTime;
/// The WIT `groups`.
pub type WitGroups = st::Groups;
/// The WIT `stateful-output`.
pub type WitStatefulOutput = st::StatefulOutput;
/// The WIT `batch-error`.
pub type WitBatchError = wit::BatchError;

/// The plugin and the output schema it declared, between calls.
pub struct Instance<T>(RefCell<Option<Plugin<T>>>);

struct Plugin<T> {
    plugin: T,
    /// What `output-schema` returned, if the host asked this instance.
    output_schema: Option<Schema>,
}

impl<T> Instance<T> {
    /// No plugin yet (before `init`).
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Instance(RefCell::new(None))
    }
}

// SAFETY: a Wasm instance without the threads proposal runs one call at a time on one thread,
// so the plugin is never touched concurrently. Off Wasm the macro makes no static, so no impl.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
unsafe impl<T> Sync for Instance<T> {}

const NOT_INITIALISED: &str = "the plugin was called before `init` (a bug in the host)";

/// `init`.
pub fn init<T: StatefulProcessor>(instance: &Instance<T>, config: String) -> Result<(), String> {
    let config = Config::parse(&config)?;
    let plugin = T::init(&config)?;
    *instance.0.borrow_mut() = Some(Plugin { plugin, output_schema: None });
    Ok(())
}

/// `output-schema`.
pub fn output_schema<T: StatefulProcessor>(
    instance: &Instance<T>,
    key: WitSchema,
    input: WitSchema,
) -> Result<WitSchema, String> {
    let mut guard = instance.0.borrow_mut();
    let p = guard.as_mut().ok_or(NOT_INITIALISED)?;
    let out = p.plugin.output_schema(&schema_from_wit(key), &schema_from_wit(input))?;
    p.output_schema = Some(out.clone());
    Ok(schema_to_wit(out))
}

/// `state-version`. It cannot fail in WIT, so a call before `init` traps.
pub fn state_version<T: StatefulProcessor>(instance: &Instance<T>) -> u32 {
    let guard = instance.0.borrow();
    guard.as_ref().expect("state-version before init: a bug in the host").plugin.state_version()
}

/// `migrate-state`.
pub fn migrate_state<T: StatefulProcessor>(
    instance: &Instance<T>,
    from_version: u32,
    state: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let guard = instance.0.borrow();
    let p = guard.as_ref().ok_or(NOT_INITIALISED)?;
    p.plugin.migrate_state(from_version, state)
}

/// `process-groups`.
pub fn process_groups<T: StatefulProcessor>(
    instance: &Instance<T>,
    time: WitBatchTime,
    input: WitGroups,
) -> Result<WitStatefulOutput, WitBatchError> {
    let mut guard = instance.0.borrow_mut();
    let p = guard.as_mut().ok_or_else(|| error_to_wit(BatchError::new(NOT_INITIALISED)))?;
    let time = BatchTime { batch_id: time.batch_id, watermark: time.watermark, processing_time: time.processing_time };
    let groups = groups_from_wit(input).map_err(error_to_wit)?;
    // A fresh instance (after a trap) may be called without `output-schema`: ask the plugin
    // again, with the schemas the batches show (nullability unknown, so nullable).
    let schema = match &p.output_schema {
        Some(s) => s.clone(),
        None => {
            let s = p
                .plugin
                .output_schema(&schema_of(&groups.keys), &schema_of(&groups.rows))
                .map_err(|e| error_to_wit(BatchError::new(e)))?;
            p.output_schema = Some(s.clone());
            s
        }
    };
    let out = run(&mut p.plugin, &schema, &time, &groups).map_err(error_to_wit)?;
    Ok(st::StatefulOutput {
        results: out.results.into_iter().map(result_to_wit).collect(),
        output: batch_to_wit(out.output),
    })
}

fn schema_of(b: &Batch) -> Schema {
    Schema::new(b.columns().iter().map(|c| Field::new(c.name.clone(), c.data.data_type(), true)).collect())
}

wit_conversions!();

fn groups_from_wit(g: WitGroups) -> Result<Groups, BatchError> {
    Ok(Groups {
        keys: batch_from_wit(g.keys)?,
        rows: batch_from_wit(g.rows)?,
        row_offsets: g.row_offsets,
        states: g.states,
        timed_out: g.timed_out,
        expired_timers: g.expired_timers.into_iter().map(|ts| ts.into_iter().map(timer_from_wit).collect()).collect(),
    })
}

fn timer_from_wit(t: st::Timer) -> Timer {
    let domain = match t.domain {
        st::TimeDomain::ProcessingTime => TimeDomain::ProcessingTime,
        st::TimeDomain::EventTime => TimeDomain::EventTime,
    };
    Timer { domain, at: t.at }
}

fn timer_to_wit(t: Timer) -> st::Timer {
    let domain = match t.domain {
        TimeDomain::ProcessingTime => st::TimeDomain::ProcessingTime,
        TimeDomain::EventTime => st::TimeDomain::EventTime,
    };
    st::Timer { domain, at: t.at }
}

fn result_to_wit(r: GroupResult) -> st::GroupResult {
    st::GroupResult {
        state: match r.state {
            StateUpdate::Keep => st::StateUpdate::Keep,
            StateUpdate::Update(b) => st::StateUpdate::Update(b),
            StateUpdate::Remove => st::StateUpdate::Remove,
        },
        timeout: match r.timeout {
            TimeoutUpdate::Keep => st::TimeoutUpdate::Keep,
            TimeoutUpdate::Clear => st::TimeoutUpdate::Clear,
            TimeoutUpdate::ProcessingTimeMs(ms) => st::TimeoutUpdate::ProcessingTimeMs(ms),
            TimeoutUpdate::EventTime(t) => st::TimeoutUpdate::EventTime(t),
        },
        ttl_ms: r.ttl_ms,
        register_timers: r.register_timers.into_iter().map(timer_to_wit).collect(),
        delete_timers: r.delete_timers.into_iter().map(timer_to_wit).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    /// Emits each key with its row count; counts calls in its state.
    struct Calls;

    impl StatefulProcessor for Calls {
        type State = u32;
        fn init(config: &Config) -> Result<Self, String> {
            config.reject_unknown(&[])?;
            Ok(Calls)
        }
        fn output_schema(&self, key: &Schema, _: &Schema) -> Result<Schema, String> {
            Ok(key.clone().with(Field::new("rows", DataType::Int64, false)))
        }
        fn process_group(
            &mut self,
            g: &Group<'_>,
            s: &mut GroupState<u32>,
            out: &mut OutputRows,
        ) -> Result<(), BatchError> {
            s.update(s.get().map_or(1, |n| n + 1));
            s.register_timer(Timer::processing_time(g.batch_time().processing_time + 1));
            out.row().keys(g).i64(g.num_rows() as i64);
            Ok(())
        }
    }

    fn wit_groups() -> WitGroups {
        let col =
            |name: &str, values| wit::Column { name: name.into(), data: wit::ColumnData { values, validity: None } };
        st::Groups {
            keys: wit::Batch { num_rows: 1, columns: vec![col("id", wit::ColumnValues::Int64(vec![42]))] },
            rows: wit::Batch { num_rows: 2, columns: vec![col("x", wit::ColumnValues::Float64(vec![1.0, 2.0]))] },
            row_offsets: vec![0, 2],
            states: vec![Some(crate::encode_state(&6u32).unwrap())],
            timed_out: vec![false],
            expired_timers: vec![vec![st::Timer { domain: st::TimeDomain::EventTime, at: 3 }]],
        }
    }

    #[test]
    fn the_glue_round_trips_through_the_wit_types() {
        let instance = Instance::<Calls>::new();
        let time = st::BatchTime { batch_id: 1, watermark: None, processing_time: 10 };
        assert!(super::process_groups(&instance, time, wit_groups()).unwrap_err().message.contains("before `init`"));
        assert!(init(&instance, "x=1".into()).unwrap_err().contains("unknown config key `x`"));
        init(&instance, String::new()).unwrap();
        assert_eq!(state_version(&instance), 1);
        assert!(migrate_state(&instance, 0, vec![]).is_err());
        // Without `output-schema` first (a fresh instance after a trap), the schema comes from
        // the batches.
        let out = super::process_groups(&instance, time, wit_groups()).unwrap();
        assert_eq!(out.output.num_rows, 1);
        assert_eq!(out.output.columns[0].name, "id");
        assert!(matches!(&out.output.columns[1].data.values, wit::ColumnValues::Int64(v) if v == &[2]));
        let r = &out.results[0];
        assert!(matches!(&r.state, st::StateUpdate::Update(b) if crate::decode_state::<u32>(b) == Ok(7)));
        assert!(matches!(r.timeout, st::TimeoutUpdate::Clear));
        assert_eq!(r.register_timers.len(), 1);
        assert_eq!(r.register_timers[0].at, 11);
        let key = vec![wit::Field { name: "id".into(), data_type: wit::DataType::Int64, nullable: false }];
        let schema = output_schema(&instance, key, vec![]).unwrap();
        assert_eq!(schema.len(), 2);
        assert!(!schema[1].nullable);
    }
}
