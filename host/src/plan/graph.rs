//! The planned graph the engine runs: the streaming sources (unioned, or routed to a join's
//! other side), the watermark over them, the operators in order with their columns, what each
//! source must have non-null to be taken in, and the columns the sink receives.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use arrow::datatypes::SchemaRef;

use super::operators::{plan_operators, LazyRuntime, PlannedOperator};
use super::sources::open_sources;
use crate::config::{Job, MapConfig};
use crate::plugin::Runtime;
use crate::source::union::Union;
use crate::watermark::Watermark;

/// A job planned over its opened sources, its operators ready to open on their state.
pub struct Graph {
    pub sources: Union,
    pub watermark: Option<Watermark>,
    pub operators: Vec<PlannedOperator>,
    /// Per source: columns a row must have non-null to be taken in (see [`scan_filters`]).
    pub not_null: Vec<Vec<usize>>,
    /// The columns the sink receives: the last operator's output, or the sources'.
    pub output: SchemaRef,
}

impl Graph {
    /// Opens the sources and plans the operators over their columns (loading plugins to learn
    /// theirs). `plugin_path` says which file each plugin operator loads.
    pub fn plan(job: &Job, runtime: &Runtime, plugin_path: &dyn Fn(&MapConfig) -> PathBuf) -> anyhow::Result<Graph> {
        let sources = open_sources(job)?;
        let watermark = watermark(job, &sources)?;
        let streams: BTreeMap<String, Option<SchemaRef>> =
            (0..sources.len()).map(|i| (sources.name(i).to_string(), Some(sources.schema_of(i)))).collect();
        let operators =
            plan_operators(job, Some(sources.schema()), &streams, &mut LazyRuntime::new(Some(runtime)), plugin_path)?;
        let not_null = scan_filters(&sources, &operators);
        let output = match operators.last() {
            Some(op) => op.output.clone().expect("planned over known columns"),
            None => sources.schema(),
        };
        Ok(Graph { sources, watermark, operators, not_null, output })
    }
}

/// The query's watermark over the sources: `[watermark].column` on the unioned stream, a
/// source's own `watermark_column` where it has one (a stream joined to another), each input's
/// delay.
fn watermark(job: &Job, sources: &Union) -> anyhow::Result<Option<Watermark>> {
    let Some(w) = &job.watermark else { return Ok(None) };
    let delays: Vec<Duration> = job.sources.iter().map(|s| s.watermark_delay.unwrap_or(w.delay)).collect();
    let field_err = |field: &str, e: String| anyhow::anyhow!("job file {}: `{field}`: {e}", job.file.display());
    let column_of = |i: usize| {
        let s = &job.sources[i];
        match &s.watermark_column {
            Some(c) => (c.as_str(), format!("{}.watermark_column", s.field)),
            None => (w.column.as_str(), "watermark.column".to_string()),
        }
    };
    let first = job.sources.iter().position(|s| s.watermark_column.is_none()).unwrap_or(0);
    let (column, field) = column_of(first);
    let mut wm =
        Watermark::new(column, &delays, w.policy, &sources.schema_of(first)).map_err(|e| field_err(&field, e))?;
    for i in 0..job.sources.len() {
        let (column, field) = column_of(i);
        wm.set_input_column(i, column, &sources.schema_of(i)).map_err(|e| field_err(&field, e))?;
    }
    Ok(Some(wm))
}

/// Per source, the columns a row must have non-null to be taken in: the operators' inferred
/// `IsNotNull` filters (a join's keys on a side it does not preserve) pushed into the scan, as
/// Spark's optimizer does. The first operator's apply to the unioned sources (after another
/// operator, whose output a filter cannot see through, nothing is pushed); a join's other side's
/// to the source routed to it.
fn scan_filters(sources: &Union, planned: &[PlannedOperator]) -> Vec<Vec<usize>> {
    let indices = |i: usize, names: &[String]| -> Vec<usize> {
        let schema = sources.schema_of(i);
        names.iter().filter_map(|n| schema.index_of(n).ok()).collect()
    };
    (0..sources.len())
        .map(|i| match sources.joined_by(i) {
            Some(k) => indices(i, &planned[k].not_null.other),
            None => planned.first().map_or_else(Vec::new, |p| indices(i, &p.not_null.input)),
        })
        .collect()
}
