//! Watching a running query: its handle (status, progress, exception, stop), what observers
//! (listeners, metrics) are told, the registry of jobs running on this machine.

/// `[[listener]]`: the query's events to webhooks and commands, queued, retried, counted.
pub mod listener;
/// `GET /metrics`: the query's progress as Prometheus metrics.
pub mod metrics;
/// The query's handle, as Spark's `StreamingQuery` shows it, and its events.
pub mod query;
/// The jobs running on this machine, for `weir list`.
pub mod registry;

pub use query::{QueryEvent, QueryHandle, QueryObserver};
