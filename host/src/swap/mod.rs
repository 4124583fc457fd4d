//! Hot swap: new versions of operators' plugins put in between two batches, the version each
//! batch ran with recorded and kept (so a replay runs it again), probation and rollback.
//!
//! Files (see `checkpoint::layout`): `plugins/<digest>.wasm` (every version that ran),
//! `plugins/active.json` (versions swapped in that outlive a restart), `plugins/probation.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use arrow::datatypes::SchemaRef;

use crate::admin::{AdminRequest, History};
use crate::checkpoint::{layout, Checkpoint, OffsetsEntry};
use crate::engine::operator::{Operator, PluginVersion};
use crate::plugin::Runtime;
use crate::sink::Sink;

/// What the job file says of an operator's plugin.
#[derive(Debug, Clone)]
pub struct JobPlugin {
    /// The component the job file names.
    pub file: PathBuf,
    /// `watch = true`: swapped in whenever the file changes.
    pub watch: bool,
    /// How the admin API may name the operator besides its index: the file's stem.
    pub name: String,
}

/// The operators and sink a swap works on, between two batches.
pub struct Graph<'a> {
    pub operators: &'a mut [Box<dyn Operator>],
    pub sink: &'a mut dyn Sink,
    pub checkpoint: &'a Checkpoint,
    /// The batch that runs next: the first a swap applies to.
    pub next_batch: u64,
}

/// Hot swaps of plugins: the admin API's requests, the versions under probation, what
/// happened (for progress records and the API's history).
#[derive(Default)]
pub struct Swaps {
    pub requests: Option<std::sync::mpsc::Receiver<AdminRequest>>,
    pub history: History,
    /// The process's runtime: loads swapped-in versions (their compiled code comes from the
    /// cache the API filled).
    runtime: Option<std::sync::Arc<Runtime>>,
    /// By operator position: the version a swapped-in plugin replaced, and how many more
    /// successful batches the new one must run before the old one is let go.
    probation: BTreeMap<usize, (Box<dyn PluginVersion>, u64)>,
    pub probation_batches: u64,
    /// Events for the next progress record.
    pub events: Vec<serde_json::Value>,
    /// By operator position, what the job file says of its plugin.
    plugins: BTreeMap<usize, JobPlugin>,
    /// Plugin versions stored in the checkpoint by earlier runs (found at start): retention
    /// deletes them once no kept batch needs them.
    stored_before: BTreeSet<String>,
}

impl Swaps {
    pub fn new(plugins: BTreeMap<usize, JobPlugin>, runtime: std::sync::Arc<Runtime>) -> Swaps {
        Swaps { plugins, runtime: Some(runtime), ..Swaps::default() }
    }

    /// The operators whose plugin file is watched, with the file.
    pub fn watched(&self) -> Vec<(usize, PathBuf)> {
        self.plugins.iter().filter(|(_, p)| p.watch).map(|(&i, p)| (i, p.file.clone())).collect()
    }

    /// At start: notes the versions earlier runs stored, keeps a copy of each running one, and
    /// puts back the probations a previous run recorded.
    pub fn start(&mut self, operators: &[Box<dyn Operator>], checkpoint: &Checkpoint) -> anyhow::Result<()> {
        self.stored_before = crate::admin::uploads::stored_digests(checkpoint.dir());
        store_running_versions(operators, checkpoint.dir())?;
        self.restore_probation(operators, checkpoint.dir());
        Ok(())
    }

    fn runtime(&mut self) -> anyhow::Result<&Runtime> {
        if self.runtime.is_none() {
            self.runtime =
                Some(std::sync::Arc::new(Runtime::new().context("starting the WebAssembly runtime for swaps")?));
        }
        Ok(self.runtime.as_deref().expect("set just above"))
    }

    /// Loads a version of operator `i`'s plugin, with the operator's settings.
    fn load_version(
        &mut self,
        operators: &[Box<dyn Operator>],
        i: usize,
        path: &Path,
    ) -> Result<Box<dyn PluginVersion>, String> {
        let runtime = self.runtime().map_err(|e| format!("{e:#}"))?;
        match operators.get(i).and_then(|op| op.plugin()) {
            Some(slot) => slot.load(runtime, path),
            None => Err(format!("operator[{i}] has no plugin")),
        }
    }

    /// Loads, for a replayed batch, the plugin versions its offsets entry names (stored in the
    /// checkpoint when they first planned a batch); returns the versions they replaced, to put
    /// back after the replay with [`put_back`].
    pub fn use_versions_of(
        &mut self,
        graph: &mut Graph,
        entry: &OffsetsEntry,
    ) -> anyhow::Result<Vec<(usize, Box<dyn PluginVersion>)>> {
        let mut replaced = Vec::new();
        for (&i, digest) in &entry.plugins {
            let Some(current) = graph.operators.get(i).and_then(|op| op.plugin()).map(|p| p.digest().to_string())
            else {
                continue;
            };
            if &current == digest {
                continue;
            }
            let path = layout::stored_plugin(graph.checkpoint.dir(), digest);
            let previous = self.load_version(graph.operators, i, &path).map_err(|e| {
                anyhow::anyhow!(
                    "batch {}: loading operator[{i}]'s plugin {digest}, the version that ran it: {e}",
                    entry.batch_id
                )
            })?;
            replaced.push((i, put_version(graph.operators, i, previous)));
        }
        Ok(replaced)
    }

    /// `CHECKPOINT/plugins/probation.json`: per operator on probation, the version it replaced
    /// and the successful batches still to run, so that a restart keeps the probation (and a
    /// failure after it still rolls back).
    fn persist_probation(&self, checkpoint: &Path) {
        let file = layout::probation(checkpoint);
        let state: BTreeMap<String, serde_json::Value> = self
            .probation
            .iter()
            .map(|(i, (p, left))| (i.to_string(), serde_json::json!({ "previous": p.digest(), "left": left })))
            .collect();
        let result = if state.is_empty() {
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        } else {
            crate::atomic_file::write_atomic(&file, &serde_json::to_vec_pretty(&state).expect("plain json"))
        };
        if let Err(e) = result {
            eprintln!("warning: recording the probation of swapped plugins in {}: {e}", file.display());
        }
    }

    /// Puts back the probations a previous run recorded (see `persist_probation`), for the
    /// operators still running the version on probation.
    fn restore_probation(&mut self, operators: &[Box<dyn Operator>], checkpoint: &Path) {
        let file = layout::probation(checkpoint);
        let Ok(bytes) = std::fs::read(&file) else { return };
        let Ok(state) = serde_json::from_slice::<BTreeMap<String, serde_json::Value>>(&bytes) else {
            eprintln!("warning: {} is damaged; swapped plugins are no longer on probation", file.display());
            return;
        };
        for (i, v) in state {
            let (Ok(i), Some(previous), Some(left)) = (i.parse::<usize>(), v["previous"].as_str(), v["left"].as_u64())
            else {
                continue;
            };
            if i >= operators.len() || left == 0 {
                continue;
            }
            let path = layout::stored_plugin(checkpoint, previous);
            match self.load_version(operators, i, &path) {
                Ok(version) => {
                    self.probation.insert(i, (version, left));
                }
                Err(e) => eprintln!("warning: operator[{i}]: the version before the swap ({previous}) cannot be loaded, so there is no rollback to it: {e}"),
            }
        }
    }

    /// The versions run so far, from the commits log: per operator, each digest with its first
    /// and last batch.
    pub fn load_history(&mut self, checkpoint: &Checkpoint) {
        let mut out: Vec<serde_json::Value> = Vec::new();
        if let Ok(commits) = checkpoint.commits() {
            for entry in commits {
                let c = entry.batch_id;
                for p in entry.plugins {
                    let last = out.iter_mut().rev().find(|h| h["operator"] == p.operator);
                    match last {
                        Some(h) if h["digest"] == p.digest.as_str() => h["last_batch"] = c.into(),
                        _ => out.push(serde_json::json!({
                            "operator": p.operator, "digest": p.digest, "path": p.path,
                            "first_batch": c, "last_batch": c, "event": "ran",
                        })),
                    }
                }
            }
        }
        self.history = std::sync::Arc::new(std::sync::Mutex::new(out));
    }

    fn record(&mut self, event: serde_json::Value) {
        self.history.lock().expect("not poisoned").push(event.clone());
        self.events.push(event);
    }

    /// The operator position an API name (index or plugin file stem) refers to.
    fn operator_named(&self, operators: &[Box<dyn Operator>], name: &str) -> Result<usize, String> {
        let i = match name.parse::<usize>() {
            Ok(i) if i < operators.len() => i,
            _ => self.plugins.iter().find(|(_, p)| p.name == name).map(|(&i, _)| i).ok_or_else(|| {
                format!(
                    "no operator {name:?}: name one by index (0..{}) or by its plugin file's name ({})",
                    operators.len(),
                    self.plugins
                        .values()
                        .map(|p| p.name.clone())
                        .filter(|n| !n.is_empty())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?,
        };
        match operators[i].plugin() {
            Some(_) => Ok(i),
            None => Err(format!("operator[{i}] has no plugin to swap")),
        }
    }

    /// Answers the admin API's requests (between two batches).
    pub fn serve(&mut self, graph: &mut Graph) {
        let Some(rx) = self.requests.as_ref() else { return };
        let requests: Vec<AdminRequest> = rx.try_iter().collect();
        for req in requests {
            match req {
                AdminRequest::Swap { operator, path, digest, reply } => {
                    let _ = reply.send(self.swap(graph, &operator, &path, &digest));
                }
                AdminRequest::Rollback { operator, reply } => {
                    let r = self.operator_named(graph.operators, &operator).and_then(|i| {
                        self.roll_back(graph, i, "asked through the admin API").map_err(|e| format!("{e:#}"))
                    });
                    let _ = reply.send(r);
                }
            }
        }
    }

    /// Swaps a new version in, between two batches, if it fits: same world, `init` and
    /// `output-schema` succeed, the same output columns (new nullable columns may be added at
    /// the end).
    fn swap(&mut self, graph: &mut Graph, name: &str, path: &Path, digest: &str) -> Result<serde_json::Value, String> {
        let i = self.operator_named(graph.operators, name)?;
        let old_schema = graph.operators[i].output_schema();
        let slot = graph.operators[i].plugin().expect("checked");
        let (old_digest, old_state_version) = (slot.digest().to_string(), slot.state_version());
        if old_digest == digest {
            return Err(format!("operator[{i}] already runs {digest}"));
        }
        let new = self.load_version(graph.operators, i, path)?;
        let (new_schema, new_state_version) = (new.output_schema(), new.state_version());
        compatible(&old_schema, &new_schema)
            .map_err(|e| format!("operator[{i}]: the new version's output does not fit: {e}"))?;
        let widens = new_schema.fields().len() > old_schema.fields().len();
        if widens && i + 1 != graph.operators.len() {
            return Err(format!(
                "operator[{i}]: the new version adds columns, which only the job's last operator may do (the operators after it were set up for the old columns); keep the columns, or add them in the last operator"
            ));
        }
        if widens {
            graph
                .sink
                .set_schema(new_schema.clone())
                .map_err(|e| format!("the sink cannot take the new columns: {e}"))?;
        }
        let old = put_version(graph.operators, i, new);
        let from_batch = graph.next_batch;
        self.persist_active_swap(graph.checkpoint.dir(), i, digest).map_err(|e| e.to_string())?;
        // State in another format cannot go back to the old version once migrated: no probation.
        let migrates = old_state_version != new_state_version;
        let probation = if migrates { 0 } else { self.probation_batches };
        if probation > 0 {
            self.probation.insert(i, (old, probation));
        } else {
            self.probation.remove(&i);
        }
        self.persist_probation(graph.checkpoint.dir());
        let mut event = serde_json::json!({
            "operator": i, "digest": digest, "replaced": old_digest, "first_batch": from_batch,
            "event": "swap", "probation_batches": probation,
        });
        if migrates {
            event["state_version"] = serde_json::json!({ "from": old_state_version, "to": new_state_version });
        }
        self.record(event.clone());
        eprintln!("operator[{i}]: swapped in {digest} from batch {from_batch} (was {old_digest})");
        Ok(event)
    }

    /// Puts back the version operator `i`'s current one replaced.
    pub fn roll_back(&mut self, graph: &mut Graph, i: usize, reason: &str) -> anyhow::Result<serde_json::Value> {
        let Some((previous, _)) = self.probation.remove(&i) else {
            anyhow::bail!("operator[{i}] has no previous version to roll back to (none was swapped in, its probation ended, or the swap changed its state format)")
        };
        let prev_digest = previous.digest().to_string();
        let failed_schema = graph.operators[i].output_schema();
        let failed = put_version(graph.operators, i, previous);
        self.persist_probation(graph.checkpoint.dir());
        // A swap that added columns (only the last operator may) gave the sink the wider
        // schema: the version rolled back to writes the old columns again.
        let schema = graph.operators[i].output_schema();
        if schema != failed_schema && i + 1 == graph.operators.len() {
            graph.sink.set_schema(schema).map_err(|e| {
                anyhow::anyhow!(
                    "operator[{i}]: rolling back: the sink cannot take the previous version's columns again: {e}"
                )
            })?;
        }
        self.persist_active_swap(graph.checkpoint.dir(), i, &prev_digest)?;
        let event = serde_json::json!({
            "operator": i, "digest": prev_digest, "replaced": failed.digest(), "first_batch": graph.next_batch,
            "event": "rollback", "reason": reason,
            "message": format!("operator[{i}]: rolled back from {} to {prev_digest}: {reason}", failed.digest()),
        });
        self.record(event.clone());
        Ok(event)
    }

    /// The operator on probation whose plugin made the batch fail, if any.
    pub fn failed_on_probation(&self, operators: &[Box<dyn Operator>], e: &anyhow::Error) -> Option<usize> {
        let text = format!("{e:#}");
        self.probation
            .keys()
            .copied()
            .find(|&i| operators[i].plugin().is_some_and(|p| text.contains(&p.path().display().to_string())))
    }

    /// Every 100 batches (or `min_batches_to_retain`, if fewer) of a job that swaps plugins:
    /// deletes the stored versions that no retained offsets or commits entry, running operator,
    /// probation or active swap names any more (see `admin::uploads`).
    pub fn purge_stored_plugins(
        &mut self,
        operators: &[Box<dyn Operator>],
        checkpoint: &Checkpoint,
        batch_id: u64,
        min_batches_to_retain: u64,
    ) {
        let every = min_batches_to_retain.clamp(1, 100);
        if (batch_id + 1) % every != 0
            || (self.history.lock().expect("not poisoned").is_empty() && self.stored_before.is_empty())
        {
            return;
        }
        let mut running: BTreeSet<String> = plugin_digests(operators).into_values().collect();
        running.extend(self.probation.values().map(|(p, _)| p.digest().to_string()));
        if let Err(e) = crate::admin::uploads::purge_among(checkpoint, &self.history, &self.stored_before, &running) {
            eprintln!(
                "warning: deleting plugin versions no batch needs from {}: {e}",
                layout::plugins_dir(checkpoint.dir()).display()
            );
        }
    }

    /// Counts a successful batch against every probation.
    pub fn end_of_probation_batch(&mut self, checkpoint: &Path) {
        if self.probation.is_empty() {
            return;
        }
        self.probation.retain(|_, (_, left)| {
            *left -= 1;
            *left > 0
        });
        self.persist_probation(checkpoint);
    }

    /// `CHECKPOINT/plugins/active.json`: per operator, the version swapped in and the job
    /// file's plugin it replaced, so that a restart keeps the swap unless the job file changed.
    fn persist_active_swap(&self, checkpoint: &Path, i: usize, digest: &str) -> anyhow::Result<()> {
        let file = layout::active_swaps(checkpoint);
        let mut active: BTreeMap<String, serde_json::Value> =
            std::fs::read(&file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        let Some(p) = self.plugins.get(&i) else { return Ok(()) };
        let job_file_digest = file_digest(&p.file)?;
        if job_file_digest == digest {
            active.remove(&i.to_string());
        } else {
            active.insert(i.to_string(), serde_json::json!({ "digest": digest, "job_file_plugin": job_file_digest }));
        }
        std::fs::create_dir_all(file.parent().expect("in plugins/"))?;
        crate::atomic_file::write_atomic(&file, &serde_json::to_vec_pretty(&active)?)?;
        Ok(())
    }
}

/// Puts a version into operator `i`; returns the one it replaces.
pub fn put_version(
    operators: &mut [Box<dyn Operator>],
    i: usize,
    version: Box<dyn PluginVersion>,
) -> Box<dyn PluginVersion> {
    operators[i].plugin_mut().expect("an operator with a plugin").replace(version)
}

/// The digest of each plugin operator's running version, by position.
pub fn plugin_digests(operators: &[Box<dyn Operator>]) -> BTreeMap<usize, String> {
    operators.iter().enumerate().filter_map(|(i, op)| op.plugin().map(|p| (i, p.digest().to_string()))).collect()
}

/// Keeps a copy of every plugin version that runs in the checkpoint
/// (`CHECKPOINT/plugins/<digest>.wasm`), so that a batch it plans can be replayed with it
/// after the job file names another (a fixed plugin, an upgrade).
fn store_running_versions(operators: &[Box<dyn Operator>], checkpoint: &Path) -> anyhow::Result<()> {
    for slot in operators.iter().filter_map(|op| op.plugin()) {
        let (path, digest) = (slot.path().to_path_buf(), slot.digest().to_string());
        let stored = layout::stored_plugin(checkpoint, &digest);
        if stored.exists() || path == stored {
            continue;
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        if crate::plugin::component_digest(&bytes) != digest {
            anyhow::bail!(
                "{} changed while the job started (it is no longer the version loaded, {digest}); start the job again",
                path.display()
            );
        }
        crate::atomic_file::write_atomic(&stored, &bytes)
            .with_context(|| format!("keeping plugin version {digest} in {}", stored.display()))?;
    }
    Ok(())
}

/// A new version's output must keep the old columns (names and types, in order); it may add
/// nullable ones at the end.
fn compatible(old: &SchemaRef, new: &SchemaRef) -> Result<(), String> {
    let (o, n) = (old.fields(), new.fields());
    for (i, f) in o.iter().enumerate() {
        match n.get(i) {
            Some(g) if g.name() == f.name() && g.data_type() == f.data_type() => {}
            Some(g) => {
                return Err(format!(
                    "column {i} is `{}` {} but was `{}` {}",
                    g.name(),
                    crate::schema::type_name(g.data_type()),
                    f.name(),
                    crate::schema::type_name(f.data_type())
                ))
            }
            None => return Err(format!("column `{}` is missing", f.name())),
        }
    }
    if let Some(g) = n.iter().skip(o.len()).find(|g| !g.is_nullable()) {
        return Err(format!("new column `{}` must be nullable (rows written before the swap have none)", g.name()));
    }
    Ok(())
}

fn file_digest(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(crate::plugin::component_digest(&bytes))
}

/// The stored version swapped into operator `i` in an earlier run, if the job file still names
/// the plugin it replaced.
pub fn active_swap(checkpoint: &Path, i: usize, job_file_plugin: &Path) -> Option<PathBuf> {
    let file = layout::active_swaps(checkpoint);
    let active: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
    let entry = active.get(&i.to_string())?;
    if entry["job_file_plugin"].as_str()? != file_digest(job_file_plugin).ok()? {
        return None;
    }
    let path = layout::stored_plugin(checkpoint, entry["digest"].as_str()?);
    path.exists().then_some(path)
}
