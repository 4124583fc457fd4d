//! Planning a `join` operator: which input is on which side, the output columns, and Spark's
//! refusals, before anything runs.

use arrow::datatypes::SchemaRef;

use super::operators::PlannedOperator;
use crate::checkpoint::layout;
use crate::config::{JoinConfig, JoinKeys, Job, Side};
use crate::engine::operator::Operator;
use crate::operator::join::static_join::StaticJoinOperator;
use crate::operator::join::static_table::{scan, table_schema};
use crate::operator::join::stream_static::{check_stream_static, StreamStaticJoin};

/// `on` as `weir check` prints it.
fn keys_text(keys: &JoinKeys) -> String {
    match keys {
        JoinKeys::Using(names) => names.join(", "),
        JoinKeys::Pairs(pairs) => {
            pairs.iter().map(|p| format!("{} = {}", p.left, p.right)).collect::<Vec<_>>().join(", ")
        }
    }
}

pub fn plan_join(job: &Job, j: &JoinConfig, input: Option<SchemaRef>) -> anyhow::Result<PlannedOperator> {
    let file = job.file.display().to_string();
    let at = |field: &str| format!("job file {file}: `operator[{}]{field}`", j.index);
    let Some(table) = job.tables.iter().find(|t| t.name == j.other) else {
        anyhow::bail!("{}: stream-stream joins are not supported yet", at(""));
    };
    let stream_side = j.other_side.other();
    check_stream_static(j.spec.join_type, stream_side).map_err(|e| anyhow::anyhow!("{}: {e}", at(".type")))?;
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
