//! Joins: the typed description of a join, its output columns, key encoding, and the kernels that
//! join Arrow batches. Plain structs over batches; the engine owns inputs, state and checkpoints.

/// A static table as a broadcast hash index: join-key bytes → the table's row numbers.
pub mod hash_index;
/// Key bytes → dense group numbers, probed a batch at a time with prefetching.
pub mod key_table;
/// Key columns encoded as comparable bytes, one `Option` per row (`None` when a key is null).
pub mod keys;
/// Which columns a join outputs, in Spark's order, and from which side each comes.
pub mod output;
/// The typed join description the job file's `kind = "join"` operator becomes.
pub mod spec;
/// The stream-static join as the engine runs it: table versions per batch, refresh, progress.
pub mod static_join;
/// Static tables: versions (file digests), content-addressed snapshots, refresh decisions.
pub mod static_table;
/// The stream-stream join as the engine runs it: sides, held pieces, no-data batches.
pub mod stream_join;
/// One side's buffered rows of a stream-stream join, with Spark's `matched` flag.
pub mod stream_state;
/// A stream joined to a static table, batch by batch.
pub mod stream_static;
/// A stream joined to a stream: Spark's symmetric hash join.
pub mod stream_stream;
/// The range condition between the sides' event times, and each side's state watermark.
pub mod time_range;
/// A window join's `window_start`, `window_end` columns on each side.
pub mod window;
