//! Operators: plain structs over Arrow batches, testable without a runtime. The driver owns
//! triggers and checkpoints; an operator only turns input batches into output batches.

/// `map`: a `mapper` plugin over every batch.
pub mod map;

pub use map::MapOperator;
