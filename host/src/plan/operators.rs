//! From the job file's `[[operator]]` list to the operators of the graph: the one place that
//! knows the kinds of operator. Each is checked against its input columns (plugins are loaded
//! to learn theirs), described for `weir check`, and made ready to open on its state store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use arrow::datatypes::SchemaRef;

use super::describe::{plugin_settings, window};
use crate::config::{Job, MapConfig, OperatorConfig, OutputMode, TimeoutMode};
use crate::engine::operator::Operator;
use crate::operator::aggregate::{self, AggregateOperator};
use crate::operator::dedup::{DedupOperator, DedupWatermark};
use crate::operator::stateful::StatefulOperator;
use crate::operator::MapOperator;
use crate::plugin::{MapperPlugin, Runtime, StatefulPlugin};
use crate::state::StateStore;
use crate::swap::JobPlugin;

/// Opens one of the operator's state stores: `""` its own, or a named one beside it (a join's
/// `left` and `right`).
pub type Stores<'a> = &'a dyn Fn(&str) -> anyhow::Result<Box<dyn StateStore>>;

/// Makes the running operator, opening the state stores it keeps.
pub(super) type Opener = Box<dyn FnOnce(Stores) -> anyhow::Result<Box<dyn Operator>>>;

/// One operator of the graph, planned: what it takes and gives, and how to open it.
pub struct PlannedOperator {
    /// Its position in the job file.
    pub index: usize,
    /// What it does, as `weir check` says it.
    pub text: String,
    /// Its input and output columns (unknown while a parquet source has no file yet).
    pub input: Option<SchemaRef>,
    pub output: Option<SchemaRef>,
    /// What its state holds and when it expires (none without state).
    pub state: Option<String>,
    /// What the job file says of its plugin, if it has one (hot swap needs it).
    pub plugin: Option<JobPlugin>,
    /// Columns that must not be null in its inputs for a row to matter (a join's keys on a side
    /// it does not preserve): Spark infers these `IsNotNull` filters and pushes them into the
    /// scan, so such rows are not taken in at all (nor seen by the watermark).
    pub not_null: NotNull,
    pub(super) open: Option<Opener>,
}

impl PlannedOperator {
    /// The running operator. Only for a plan made with known input columns.
    pub fn open(self, stores: Stores) -> anyhow::Result<Box<dyn Operator>> {
        let open = self.open.expect("the engine plans with the sources' columns");
        open(stores)
    }
}

/// Columns that must not be null: on the operator's stream input, and on its other input (a
/// join's other side).
#[derive(Debug, Clone, Default)]
pub struct NotNull {
    pub input: Vec<String>,
    pub other: Vec<String>,
}

/// The runtime, started when the first plugin is loaded.
pub struct LazyRuntime<'a> {
    given: Option<&'a Runtime>,
    own: Option<Runtime>,
}

impl<'a> LazyRuntime<'a> {
    pub fn new(given: Option<&'a Runtime>) -> Self {
        LazyRuntime { given, own: None }
    }

    fn get(&mut self) -> anyhow::Result<&Runtime> {
        if let Some(r) = self.given {
            return Ok(r);
        }
        if self.own.is_none() {
            self.own = Some(Runtime::new().context("starting the WebAssembly runtime")?);
        }
        Ok(self.own.as_ref().expect("set just above"))
    }
}

/// Plans the job's operators in order over `input` (the sources' columns, none when not known
/// yet; `streams`: each streaming source's, by name, for a stream-stream join). `plugin_path` says which file each plugin operator loads (a version swapped in earlier
/// may replace the job file's). Refusals name the job file and the field.
pub fn plan_operators(
    job: &Job,
    input: Option<SchemaRef>,
    streams: &BTreeMap<String, Option<SchemaRef>>,
    runtime: &mut LazyRuntime,
    plugin_path: &dyn Fn(&MapConfig) -> PathBuf,
) -> anyhow::Result<Vec<PlannedOperator>> {
    let mut schema = input;
    let mut planned = Vec::with_capacity(job.operators.len());
    for op in &job.operators {
        let p = plan_one(job, op, schema.clone(), streams, runtime, plugin_path)?;
        schema = p.output.clone();
        planned.push(p);
    }
    Ok(planned)
}

fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

fn plan_one(
    job: &Job,
    op: &OperatorConfig,
    input: Option<SchemaRef>,
    streams: &BTreeMap<String, Option<SchemaRef>>,
    runtime: &mut LazyRuntime,
    plugin_path: &dyn Fn(&MapConfig) -> PathBuf,
) -> anyhow::Result<PlannedOperator> {
    let file = job.file.display().to_string();
    Ok(match op {
        OperatorConfig::Map(m) => {
            let text = format!("map, plugin {}{}", m.plugin.display(), plugin_settings(m));
            let mut p = PlannedOperator {
                index: m.index,
                text,
                input: input.clone(),
                output: None,
                state: None,
                plugin: Some(JobPlugin { file: m.plugin.clone(), watch: m.watch, name: stem(&m.plugin) }),
                not_null: NotNull::default(),
                open: None,
            };
            if let Some(schema) = input {
                let plugin = MapperPlugin::load(runtime.get()?, &plugin_path(m), &m.config, m.limits, schema)
                    .with_context(|| format!("starting operator[{}] (kind = \"map\")", m.index))?;
                p.output = Some(plugin.output_schema());
                let m = m.clone();
                p.open = Some(Box::new(move |_| Ok(Box::new(MapOperator::new(plugin, &m)) as Box<dyn Operator>)));
            }
            p
        }
        OperatorConfig::Stateful(st) => {
            let m = &st.plugin;
            let timeout = match st.timeout {
                TimeoutMode::None => "no timeouts",
                TimeoutMode::ProcessingTime => "processing-time timeouts and timers",
                TimeoutMode::EventTime => "event-time timeouts and timers (rows behind the watermark are late)",
            };
            let mut p = PlannedOperator {
                index: m.index,
                text: format!("stateful, plugin {}{}", m.plugin.display(), plugin_settings(m)),
                input: input.clone(),
                output: None,
                state: Some(format!("the plugin's, one value per {}; {timeout}", st.group_by.join(", "))),
                plugin: Some(JobPlugin { file: m.plugin.clone(), watch: m.watch, name: stem(&m.plugin) }),
                not_null: NotNull::default(),
                open: None,
            };
            if let Some(schema) = input {
                let keys_err = |e: String| anyhow::anyhow!("job file {file}: `operator[{}].group_by`: {e}", m.index);
                let key_schema = StatefulOperator::key_schema_of(&schema, &st.group_by).map_err(keys_err)?;
                let plugin =
                    StatefulPlugin::load(runtime.get()?, &plugin_path(m), &m.config, m.limits, &key_schema, &schema)
                        .with_context(|| format!("starting operator[{}] (kind = \"stateful\")", m.index))?;
                p.output = Some(plugin.output_schema());
                let (st, wm_column, state_dir_of) = (st.clone(), stream_event_time(job), job.checkpoint.clone());
                p.open = Some(Box::new(move |stores| {
                    let m = &st.plugin;
                    let op = StatefulOperator::new(
                        m.index,
                        plugin,
                        m.on_error,
                        st.timeout,
                        &schema,
                        &st.group_by,
                        wm_column.as_deref(),
                        stores("")?,
                        crate::checkpoint::layout::state_dir(&state_dir_of, m.index),
                    )
                    .map_err(|e| anyhow::anyhow!("job file {file}: `operator[{}].group_by`: {e}", m.index))?
                    .with_plugin_settings(&m.config, m.limits);
                    Ok(Box::new(op) as Box<dyn Operator>)
                }));
            }
            p
        }
        OperatorConfig::Dedup(d) => {
            let expiry = match &job.watermark {
                Some(w) if d.within_watermark => {
                    format!("each key kept until the watermark passes its first row's `{}`", w.column)
                }
                Some(w) if d.keys.contains(&w.column) => {
                    format!("a key is dropped once the watermark passes its `{}`", w.column)
                }
                _ => "every key kept forever (no watermark column among the keys)".to_string(),
            };
            let kind = if d.within_watermark { "dedup within the watermark" } else { "dedup" };
            let mut p = PlannedOperator {
                index: d.index,
                text: format!("{kind} on {}", d.keys.join(", ")),
                input: input.clone(),
                output: input.clone(),
                state: Some(format!("the keys seen; {expiry}")),
                plugin: None,
                not_null: NotNull::default(),
                open: None,
            };
            if let Some(schema) = input {
                let index = d.index;
                let field_err = move |(field, e): (&str, String)| {
                    anyhow::anyhow!("job file {file}: `operator[{index}].{field}`: {e}")
                };
                // The event-time column's delay: the first source's (a union's column carries
                // its first input's watermark metadata in Spark).
                let wm = job.watermark.as_ref().map(|w| {
                    (
                        stream_event_time(job).unwrap_or_else(|| w.column.clone()),
                        job.sources.first().and_then(|s| s.watermark_delay).unwrap_or(w.delay).as_micros() as i64,
                    )
                });
                // Checked before the state store is opened: a refused job leaves no state.
                DedupOperator::check(&schema, &d.keys, as_dedup(&wm), d.within_watermark).map_err(field_err.clone())?;
                let d = d.clone();
                p.open = Some(Box::new(move |stores| {
                    let store = stores("")?;
                    let op = DedupOperator::new(&schema, &d.keys, as_dedup(&wm), d.within_watermark, store)
                        .map_err(field_err)?
                        .at(d.index);
                    if !op.bounded() {
                        eprintln!(
                            "warning: operator[{}] (dedup on {}) keeps every key it sees, forever: its state grows without bound. Add a [watermark] and put its column among the keys, or set within_watermark = true, to let old keys expire.",
                            d.index,
                            d.keys.join(", ")
                        );
                    }
                    Ok(Box::new(op) as Box<dyn Operator>)
                }));
            }
            p
        }
        OperatorConfig::Join(j) => super::joins::plan_join(job, j, input, streams)?,
        OperatorConfig::Aggregate(a) => {
            let calls: Vec<String> = a
                .aggregates
                .iter()
                .map(|c| format!("{}({}) as {}", c.func.name(), c.column.as_deref().unwrap_or("*"), c.name))
                .collect();
            let by = match (&a.window, a.group_by.is_empty()) {
                (None, true) => String::new(),
                (None, false) => format!(" by {}", a.group_by.join(", ")),
                (Some(w), _) => {
                    let keys = a.group_by.iter().map(|k| format!(", {k}")).collect::<String>();
                    format!(" by {}{keys}", window(w))
                }
            };
            let state = if a.window.is_some() && job.watermark.is_some() {
                "one row per group and window, dropped once the watermark passes the window's end"
            } else {
                "one row per group, kept forever"
            };
            let mut p = PlannedOperator {
                index: a.index,
                text: format!("aggregate{by}: {}", calls.join(", ")),
                input: input.clone(),
                output: None,
                state: Some(state.to_string()),
                plugin: None,
                not_null: NotNull::default(),
                open: None,
            };
            if let Some(schema) = input {
                let index = a.index;
                let field_err = move |(field, e): (String, String)| {
                    anyhow::anyhow!("job file {file}: `operator[{index}].{field}`: {e}")
                };
                // Checked before the state store is opened: a refused job leaves no state.
                p.output = Some(aggregate::plan(&schema, a).map_err(field_err.clone())?.3);
                let (a, mode) = (a.clone(), job.sink.output_mode);
                let wm_column = stream_event_time(job);
                p.open = Some(Box::new(move |stores| {
                    let store = stores("")?;
                    let op =
                        AggregateOperator::new(&schema, &a, mode, wm_column.as_deref(), store).map_err(field_err)?;
                    if !op.bounded() && mode != OutputMode::Complete {
                        eprintln!(
                            "warning: operator[{}] (aggregate) keeps every group it sees, forever: its state grows without bound. Add a window and a [watermark] on the window's column to let old windows leave the state.",
                            a.index
                        );
                    }
                    Ok(Box::new(op) as Box<dyn Operator>)
                }));
            }
            p
        }
    })
}

/// The job's watermark as a dedup takes it: (column, delay in µs).
fn as_dedup(wm: &Option<(String, i64)>) -> Option<DedupWatermark<'_>> {
    wm.as_ref().map(|(c, delay)| DedupWatermark { column: c.as_str(), delay_micros: *delay })
}

/// The event-time column of the stream the operators take: the `watermark_column` of its first
/// source (the unioned sources, not a join's other side), else `[watermark].column`; none
/// without a watermark. After a stream-stream join it is still the stream side's column, as in
/// Spark (the join's output keeps it, with the join's output watermark).
fn stream_event_time(job: &Job) -> Option<String> {
    let w = job.watermark.as_ref()?;
    let main = job.sources.iter().find(|s| super::sources::joined_by(job, s.name.as_deref()).is_none());
    Some(main.and_then(|s| s.watermark_column.clone()).unwrap_or_else(|| w.column.clone()))
}
