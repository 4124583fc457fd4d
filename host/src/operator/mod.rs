//! Operators: plain structs over Arrow batches, testable without a runtime. The engine owns
//! triggers and checkpoints; an operator only turns input batches into output batches.

/// `aggregate`: groupBy(...).agg(...) over optional event-time windows, with state.
pub mod aggregate;
/// `dedup`: dropDuplicates over key columns, with state in a state store.
pub mod dedup;
/// `join`: stream-static and stream-stream equi-joins, with Spark's output columns and refusals.
pub mod join;
/// `map`: a `mapper` plugin over every batch.
pub mod map;
/// `stateful`: a `stateful` plugin over the rows of each key, with state, timeouts and timers.
pub mod stateful;

pub use map::MapOperator;

use arrow::datatypes::SchemaRef;

use crate::schema::find_column;
use crate::state::StateMetrics;

/// What a stateful operator reports per batch (`stateOperators[]` in progress records).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateOperatorProgress {
    pub metrics: StateMetrics,
    pub num_rows_dropped_by_watermark: u64,
}

/// The indices of the key columns in `schema`; the error names a missing one. Checked before the
/// state store is opened, so a refused job leaves no state behind.
pub fn key_indices(schema: &SchemaRef, keys: &[String]) -> Result<Vec<usize>, String> {
    keys.iter().map(|k| find_column(schema, k, "the input").map(|(i, _)| i).map_err(|e| format!("key {e}"))).collect()
}
