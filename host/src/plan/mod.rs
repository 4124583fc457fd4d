//! Planning: from the job file's config to the graph the engine runs. Every schema is resolved
//! here (plugins are loaded to learn their output columns), Spark's unsupported-operation checks
//! refuse what cannot run, and each operator is made ready to open on its state. `weir check`
//! prints the plan; nothing after planning re-reads the job file's operator list.

/// Spark's unsupported-operation checks across operators, watermark and output mode.
pub mod checks;
/// `weir check`'s text: sources, each operator with its columns and state, the sink.
pub mod describe;
/// The planned graph: sources, watermark, operators, the sink's columns.
pub mod graph;
/// A `join` operator: sides, output columns, Spark's refusals.
mod joins;
/// The job's operators, in order: the one place that knows the kinds of operator.
pub mod operators;
/// The sink, for the last operator's columns.
pub mod sink;
/// The streaming sources, opened and unioned.
pub mod sources;

pub use graph::Graph;
pub use operators::{plan_operators, LazyRuntime, NotNull, PlannedOperator};
pub use sink::open_sink;
pub use sources::open_sources;
