//! Planning a `join` operator: which input is on which side, the output columns, and Spark's
//! refusals, before anything runs.

use std::collections::BTreeMap;

use arrow::datatypes::{Schema, SchemaRef};

use super::operators::{NotNull, PlannedOperator};
use crate::checkpoint::layout;
use crate::config::{Job, JoinConfig, JoinKeys, Side};
use crate::engine::operator::Operator;
use crate::operator::join::static_join::StaticJoinOperator;
use crate::operator::join::static_table::{scan, table_schema};
use crate::operator::join::stream_join::StreamJoinOperator;
use crate::operator::join::stream_static::StreamStaticJoin;
use crate::operator::join::stream_stream::StreamStreamJoin;
use crate::operator::join::time_range::TimeRange;
use crate::operator::join::window::SideWindow;

/// `on` as `weir check` prints it.
fn keys_text(keys: &JoinKeys) -> String {
    match keys {
        JoinKeys::Using(names) => names.join(", "),
        JoinKeys::Pairs(pairs) => {
            pairs.iter().map(|p| format!("{} = {}", p.left, p.right)).collect::<Vec<_>>().join(", ")
        }
    }
}

/// Plans join `j` with the stream so far (`input`, none when not known yet); `streams` has the
/// columns of the streaming sources by name (a stream-stream join's other side).
pub fn plan_join(
    job: &Job,
    j: &JoinConfig,
    input: Option<SchemaRef>,
    streams: &BTreeMap<String, Option<SchemaRef>>,
) -> anyhow::Result<PlannedOperator> {
    let file = job.file.display().to_string();
    let at = |field: &str| format!("job file {file}: `operator[{}]{field}`", j.index);
    let Some(table) = job.tables.iter().find(|t| t.name == j.other) else {
        return plan_stream_join(job, j, input, streams);
    };
    // Spark's refusals of join types and output modes were made by plan::checks::check_job,
    // which runs right after the job file is loaded (and StreamStaticJoin::new refuses them too).
    let stream_side = j.other_side.other();
    let side = match stream_side {
        Side::Left => "the stream on the left",
        Side::Right => "the stream on the right",
    };
    let refresh = match table.refresh {
        crate::config::Refresh::Never => "read once at start".to_string(),
        crate::config::Refresh::OnChange => "re-read when its files change".to_string(),
        crate::config::Refresh::Every(d) => format!("re-read at most every {}", super::describe::duration(d)),
    };
    let mut p = PlannedOperator {
        index: j.index,
        text: format!(
            "join {} with static table {:?} ({side}), on {}; the table is {refresh}",
            j.spec.join_type,
            table.name,
            keys_text(&j.spec.keys)
        ),
        input: input.clone(),
        output: None,
        state: None,
        plugin: None,
        not_null: not_null(j),
        open: None,
    };
    let Some(stream_schema) = input else { return Ok(p) };
    // The table's columns: declared, or the first parquet file's.
    let version = scan(&table.path).map_err(|e| anyhow::anyhow!("{}: static table {:?}: {e}", at(""), table.name))?;
    let table_columns = table_schema(&table.path, &version, table.format, table.schema.as_ref())
        .map_err(|e| anyhow::anyhow!("job file {file}: `{}.schema`: {e}", table.field))?;
    let join = StreamStaticJoin::new(j.spec.clone(), stream_side, stream_schema, table_columns)
        .map_err(|e| anyhow::anyhow!("{}: {e}", at("")))?;
    p.output = Some(join.output_schema().clone());
    let (index, table, snapshots) = (j.index, table.clone(), layout::table_dir(&job.checkpoint, &table.name));
    p.open = Some(Box::new(move |_| {
        Ok(Box::new(StaticJoinOperator::new(index, join, table, snapshots)) as Box<dyn Operator>)
    }));
    Ok(p)
}

/// The event-time column of a stream: its source's `watermark_column`, else `[watermark].column`
/// (none without a watermark).
fn watermark_column<'a>(job: &'a Job, source: Option<&'a crate::config::InputConfig>) -> Option<&'a str> {
    let w = job.watermark.as_ref()?;
    Some(source.and_then(|s| s.watermark_column.as_deref()).unwrap_or(w.column.as_str()))
}

fn index_in(schema: &Schema, column: Option<&str>) -> Option<usize> {
    schema.index_of(column?).ok()
}

fn plan_stream_join(
    job: &Job,
    j: &JoinConfig,
    input: Option<SchemaRef>,
    streams: &BTreeMap<String, Option<SchemaRef>>,
) -> anyhow::Result<PlannedOperator> {
    let file = job.file.display().to_string();
    let at = |field: &str| format!("job file {file}: `operator[{}]{field}`", j.index);
    let Some(other) = job.sources.iter().find(|s| s.name.as_deref() == Some(j.other.as_str())) else {
        anyhow::bail!("{}: no source is named {:?}", at(""), j.other);
    };
    let chain_side = j.other_side.other();
    let range = j.time_range.as_ref().map_or(String::new(), |r| {
        let d = |m: i64| {
            let text = super::describe::duration(std::time::Duration::from_micros(m.unsigned_abs()));
            if m < 0 {
                format!("- {text}")
            } else {
                format!("+ {text}")
            }
        };
        format!(", where {} {} <= {} <= {} {}", r.right, d(r.from_micros), r.left, r.right, d(r.to_micros))
    });
    let window = j.window.as_ref().map_or(String::new(), |w| {
        format!(
            ", in the same {} window of {} and {} (window_start, window_end)",
            super::describe::duration(std::time::Duration::from_micros(w.size_micros.max(0) as u64)),
            w.left,
            w.right
        )
    });
    let mut p = PlannedOperator {
        index: j.index,
        text: format!(
            "join {} with stream {:?} (on the {}), on {}{range}",
            j.spec.join_type,
            j.other,
            j.other_side.as_str(),
            keys_text(&j.spec.keys)
        ) + &window,
        input: input.clone(),
        output: None,
        state: Some(
            "each side's rows, by key, until the other side's watermark says no row can match them (symmetric hash join)"
                .to_string(),
        ),
        plugin: None,
        not_null: not_null(j),
        open: None,
    };
    let (Some(chain_schema), Some(Some(other_schema))) = (input, streams.get(&j.other)) else { return Ok(p) };
    let main_source = job.sources.iter().find(|s| crate::plan::sources::joined_by(job, s.name.as_deref()).is_none());
    let chain_wm = index_in(&chain_schema, watermark_column(job, main_source));
    let other_wm = index_in(other_schema, watermark_column(job, Some(other)));
    let (mut left_schema, mut right_schema, left_wm, right_wm) = match chain_side {
        Side::Left => (chain_schema, other_schema.clone(), chain_wm, other_wm),
        Side::Right => (other_schema.clone(), chain_schema, other_wm, chain_wm),
    };
    let mut spec = j.spec.clone();
    // The watermark columns of the join's inputs: each side's event time, or in a window join its
    // window, when made from the watermarked column: Spark moves the watermark onto the window,
    // so rows are late, and the state is evicted, by the window's end.
    let (mut state_left_wm, mut state_right_wm) = (left_wm, right_wm);
    let mut windows = None;
    if let Some(w) = &j.window {
        let JoinKeys::Using(names) = &spec.keys else {
            anyhow::bail!(
                "{}: a window join names its keys, on = [\"ad_id\", ...] (the window is joined as one more USING key); key pairs cannot take it",
                at(".window")
            );
        };
        let side = |schema: &SchemaRef, column: &str, which: &str| {
            SideWindow::new(schema, column, w.size_micros)
                .map_err(|e| anyhow::anyhow!("{}: the {which} input {e}", at(&format!(".window.{which}"))))
        };
        let (lw, rw) = (side(&left_schema, &w.left, "left")?, side(&right_schema, &w.right, "right")?);
        let window_end = |sw: &SideWindow| sw.schema.fields().len() - 1;
        state_left_wm = (left_wm == Some(lw.time)).then(|| window_end(&lw));
        state_right_wm = (right_wm == Some(rw.time)).then(|| window_end(&rw));
        let mut keys = names.clone();
        keys.extend(["window_start".to_string(), "window_end".to_string()]);
        spec.keys = JoinKeys::Using(keys);
        (left_schema, right_schema) = (lw.schema.clone(), rw.schema.clone());
        windows = Some((lw, rw));
    }
    let time_range = match &j.time_range {
        None => None,
        Some(r) => {
            let col = |schema: &Schema, name: &str, side: &str| {
                schema.index_of(name).map_err(|_| {
                    anyhow::anyhow!(
                        "{}: the {side} input has no column `{name}` (its columns: {})",
                        at(&format!(".time_range.{side}")),
                        crate::schema::to_ddl(schema)
                    )
                })
            };
            Some(TimeRange::inclusive(
                col(&left_schema, &r.left, "left")?,
                col(&right_schema, &r.right, "right")?,
                r.from_micros,
                r.to_micros,
            ))
        }
    };
    // Refusals need no state: checked with stores that are never opened.
    let check = StreamStreamJoin::new(
        &spec,
        left_schema.clone(),
        right_schema.clone(),
        time_range,
        state_left_wm,
        state_right_wm,
        Box::new(Unopened),
        Box::new(Unopened),
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", at("")))?;
    p.output = Some(check.schema());
    drop(check);
    let index = j.index;
    p.open = Some(Box::new(move |stores| {
        let join = StreamStreamJoin::new(
            &spec,
            left_schema,
            right_schema,
            time_range,
            state_left_wm,
            state_right_wm,
            stores("left")?,
            stores("right")?,
        )
        .map_err(|e| anyhow::anyhow!("operator[{index}]: {e}"))?;
        let op = StreamJoinOperator::new(index, join, chain_side);
        Ok(Box::new(match windows {
            Some((l, r)) => op.with_windows(l, r),
            None => op,
        }) as Box<dyn Operator>)
    }));
    Ok(p)
}

/// A state store that is never opened: planning checks a join's refusals without touching the
/// checkpoint.
struct Unopened;

impl crate::state::StateStore for Unopened {
    fn begin(&mut self, _batch_id: u64) -> Result<(), crate::state::StateError> {
        Ok(())
    }

    fn get(&self, _key: &[u8]) -> Result<Option<Vec<u8>>, crate::state::StateError> {
        Ok(None)
    }

    fn put(&mut self, _key: &[u8], _value: &[u8]) {}

    fn remove(&mut self, _key: &[u8]) {}

    fn for_each(&self, _f: &mut dyn FnMut(&[u8], &[u8])) -> Result<(), crate::state::StateError> {
        Ok(())
    }

    fn commit(&mut self) -> Result<crate::state::StateMetrics, crate::state::StateError> {
        Ok(crate::state::StateMetrics::default())
    }
}

/// Spark's inferred `IsNotNull` filters of a join, pushed into the scans: the key columns (and
/// range columns) of every side the join does not preserve (a null never satisfies `=`, `<=`),
/// as (the stream side's, the other side's). A full outer join filters nothing; Spark 4.3 also
/// lets its null keys match.
fn not_null(j: &JoinConfig) -> NotNull {
    use crate::config::JoinType::*;
    let (left, right) = match j.spec.join_type {
        Inner | LeftSemi => (true, true),
        LeftOuter | LeftAnti => (false, true),
        RightOuter => (true, false),
        FullOuter => (false, false),
    };
    let columns = |side: Side, filtered: bool| -> Vec<String> {
        if !filtered {
            return Vec::new();
        }
        let mut cols: Vec<String> = j.spec.keys.names(side).into_iter().map(str::to_string).collect();
        if let Some(r) = &j.time_range {
            cols.push(match side {
                Side::Left => r.left.clone(),
                Side::Right => r.right.clone(),
            });
        }
        if let Some(w) = &j.window {
            cols.push(match side {
                Side::Left => w.left.clone(),
                Side::Right => w.right.clone(),
            });
        }
        cols
    };
    let (l, r) = (columns(Side::Left, left), columns(Side::Right, right));
    match j.other_side {
        Side::Right => NotNull { input: l, other: r },
        Side::Left => NotNull { input: r, other: l },
    }
}
