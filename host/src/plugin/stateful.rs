//! The `stateful` world: init, output-schema(key, input), state-version, process-groups. The
//! host keeps the state (see `operator/stateful/`); this module only makes the calls.

use std::path::Path;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use wasmtime::component::{ComponentType, Func, InstancePre, Lower, TypedFunc};
use wasmtime::Store;

use super::convert::{batch_from_wit, schema_from_wit, schema_to_wit};
use super::input::{batch_ref, owned_parts, BatchRef};
use super::instance::{checked_export, Instances, World};
use super::mapper::wit::BatchError;
use super::runtime::Runtime;
use super::sandbox::PluginState;
use super::{BatchLabel, PluginError};
use crate::config::PluginLimits;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "stateful",
        with: { "weir:plugin/types": crate::plugin::mapper::wit },
    });
}

/// The WIT types of the stateful contract, as Rust types.
pub mod wit {
    pub use super::bindings::weir::plugin::stateful_types::*;
}

use bindings::{Stateful, StatefulPre};

/// The `groups` record lowered from borrowed Arrow data (as `map-batch`'s input is).
#[derive(ComponentType, Lower)]
#[component(record)]
struct GroupsRef<'a> {
    keys: BatchRef<'a>,
    rows: BatchRef<'a>,
    #[component(name = "row-offsets")]
    row_offsets: &'a [u32],
    states: Vec<Option<&'a [u8]>>,
    #[component(name = "timed-out")]
    timed_out: &'a [bool],
    #[component(name = "expired-timers")]
    expired_timers: &'a [Vec<wit::Timer>],
}

type ProcessGroups<'a> = TypedFunc<(wit::BatchTime, &'a GroupsRef<'a>), (Result<wit::StatefulOutput, BatchError>,)>;

/// What one `process-groups` call carries (see the WIT `groups` record).
pub struct GroupsCall<'a> {
    pub keys: &'a RecordBatch,
    pub rows: &'a RecordBatch,
    pub row_offsets: &'a [u32],
    pub states: Vec<Option<&'a [u8]>>,
    pub timed_out: &'a [bool],
    pub expired_timers: &'a [Vec<wit::Timer>],
}

struct Live {
    stateful: Stateful,
    process_groups: Func,
}

impl World for Live {
    type Pre = StatefulPre<PluginState>;

    fn pre(instance_pre: InstancePre<PluginState>) -> Result<Self::Pre, String> {
        StatefulPre::new(instance_pre).map_err(|e| format!("{e:#}"))
    }

    fn engine(pre: &Self::Pre) -> &wasmtime::Engine {
        pre.engine()
    }

    fn instantiate(pre: &Self::Pre, store: &mut Store<PluginState>) -> Result<Self, Result<wasmtime::Error, String>> {
        let instance = pre.instance_pre().instantiate(&mut *store).map_err(Ok)?;
        let stateful = Stateful::new(&mut *store, &instance).map_err(Ok)?;
        let process_groups = checked_export::<
            (wit::BatchTime, &GroupsRef<'static>),
            (Result<wit::StatefulOutput, BatchError>,),
        >(&instance, store, "process-groups")?;
        Ok(Live { stateful, process_groups })
    }

    fn init(&self, store: &mut Store<PluginState>, config: &str) -> wasmtime::Result<Result<(), String>> {
        self.stateful.call_init(store, config)
    }
}

/// A loaded `stateful` plugin: validated, initialised, its output schema and state version known.
pub struct StatefulPlugin {
    instances: Instances<Live>,
    output_schema: SchemaRef,
    state_version: u32,
}

impl StatefulPlugin {
    /// Loads the component, calls `init(config)`, `output-schema(key, input)` and
    /// `state-version`. Any failure stops the job before data moves.
    pub fn load(
        runtime: &Runtime,
        path: &Path,
        config: &str,
        limits: PluginLimits,
        key_schema: &SchemaRef,
        input_schema: &SchemaRef,
    ) -> Result<StatefulPlugin, PluginError> {
        let mut instances: Instances<Live> = Instances::load(runtime, path, config, limits, "stateful", |_| Ok(()))?;
        let load_err = |message: String| PluginError::Load { plugin: path.to_path_buf(), message };
        let key = schema_to_wit(key_schema).map_err(load_err)?;
        let input = schema_to_wit(input_schema).map_err(load_err)?;
        let result = instances
            .call("output-schema", None, |store, live| live.stateful.call_output_schema(store, &key, &input))?;
        let fields = result.map_err(|message| PluginError::Refused {
            plugin: path.to_path_buf(),
            export: "output-schema",
            batch: BatchLabel(None),
            message: super::cut_message(message, limits.error_bytes),
            row: None,
        })?;
        let output_schema = schema_from_wit(&fields).map_err(|message| PluginError::InvalidOutput {
            plugin: path.to_path_buf(),
            export: "output-schema",
            batch: BatchLabel(None),
            message,
        })?;
        let state_version =
            instances.call("state-version", None, |store, live| live.stateful.call_state_version(store))?;
        Ok(StatefulPlugin { instances, output_schema, state_version })
    }

    pub fn path(&self) -> &Path {
        self.instances.path()
    }

    pub fn digest(&self) -> &str {
        self.instances.digest()
    }

    pub fn output_schema(&self) -> SchemaRef {
        self.output_schema.clone()
    }

    /// The version of the state bytes the plugin writes (recorded with the state).
    pub fn state_version(&self) -> u32 {
        self.state_version
    }

    /// Calls `migrate-state(from_version, state)`: state written by an older version of the
    /// plugin, in this version's format.
    pub fn migrate_state(&mut self, batch_id: u64, from_version: u32, state: &[u8]) -> Result<Vec<u8>, PluginError> {
        let out = self.instances.call("migrate-state", Some(batch_id), |store, live| {
            live.stateful.call_migrate_state(store, from_version, state)
        })?;
        out.map_err(|message| PluginError::Refused {
            plugin: self.instances.path().to_path_buf(),
            export: "migrate-state",
            batch: BatchLabel(Some(batch_id)),
            message: format!(
                "migrating state from version {from_version} to {}: {}",
                self.state_version,
                super::cut_message(message, self.instances.limits().error_bytes)
            ),
            row: None,
        })
    }

    /// Calls `process-groups`; checks there is one result per group and converts the output.
    pub fn process_groups(
        &mut self,
        time: wit::BatchTime,
        call: &GroupsCall<'_>,
    ) -> Result<(Vec<wit::GroupResult>, RecordBatch), PluginError> {
        let batch_id = time.batch_id;
        let label = BatchLabel(Some(batch_id));
        let (keys_owned, rows_owned) = (owned_parts(call.keys), owned_parts(call.rows));
        let groups = GroupsRef {
            keys: batch_ref(call.keys, &keys_owned),
            rows: batch_ref(call.rows, &rows_owned),
            row_offsets: call.row_offsets,
            states: call.states.clone(),
            timed_out: call.timed_out,
            expired_timers: call.expired_timers,
        };
        let out = self.instances.call("process-groups", Some(batch_id), |store, live| {
            // SAFETY: checked as `ProcessGroups` when the instance was made; only the lifetime
            // of the borrowed input differs, which the type check ignores.
            let f: ProcessGroups<'_> = unsafe { TypedFunc::new_unchecked(live.process_groups) };
            f.call(store, (time, &groups)).map(|(r,)| r)
        })?;
        let path = || self.instances.path().to_path_buf();
        let limits = *self.instances.limits();
        let out = out.map_err(|e| PluginError::Refused {
            plugin: path(),
            export: "process-groups",
            batch: label,
            message: super::cut_message(e.message, limits.error_bytes),
            row: e.row,
        })?;
        super::bounds::check_stateful(&out, &limits)
            .map_err(|e| e.into_error(self.instances.path(), "process-groups", Some(batch_id)))?;
        let invalid = |message: String| PluginError::InvalidOutput {
            plugin: path(),
            export: "process-groups",
            batch: label,
            message,
        };
        let n = call.timed_out.len();
        if out.results.len() != n {
            return Err(invalid(format!("{} results for {n} groups (one per group is required)", out.results.len())));
        }
        let output = batch_from_wit(out.output, &self.output_schema).map_err(invalid)?;
        let bytes_in = (call.keys.get_array_memory_size() + call.rows.get_array_memory_size()) as u64;
        let state_out: u64 = out.results.iter().map(|r| result_state_bytes(r)).sum();
        self.instances.count_bytes(bytes_in, output.get_array_memory_size() as u64 + state_out);
        Ok((out.results, output))
    }

    /// Calls, time, bytes and memory since the figures were last taken.
    pub fn take_metrics(&mut self) -> super::PluginMetrics {
        self.instances.take_metrics()
    }
}

/// Bytes of new state a result hands back.
fn result_state_bytes(r: &wit::GroupResult) -> u64 {
    match &r.state {
        wit::StateUpdate::Update(bytes) => bytes.len() as u64,
        wit::StateUpdate::Keep | wit::StateUpdate::Remove => 0,
    }
}
