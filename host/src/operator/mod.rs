//! Operators: plain structs over Arrow batches, testable without a runtime. The driver owns
//! triggers and checkpoints; an operator only turns input batches into output batches.

/// `aggregate`: groupBy(...).agg(...) over optional event-time windows, with state.
pub mod aggregate;
/// `dedup`: dropDuplicates over key columns, with state in a state store.
pub mod dedup;
/// `map`: a `mapper` plugin over every batch.
pub mod map;

pub use map::MapOperator;
