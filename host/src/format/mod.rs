//! Decoding input files into Arrow batches of a declared schema, and encoding output files.
//! Decoders report every record they cannot decode to `BadRecords` with file and line, so a bad
//! record stops the job or reaches the dead-letter output, never vanishes.

/// JSON lines: one object per line, fields matched to the schema by name.
pub mod json;
/// CSV with a header row (or without), fields matched by position.
pub mod csv;
/// Parquet, read through Arrow, checked against the declared schema.
pub mod parquet;
/// Timestamp text in the forms Spark reads.
pub mod timestamp;
/// Arrow columns built row by row from decoded values (shared by json and csv).
pub mod columns;
/// Writing batches as JSON lines and CSV, as Spark's writers do.
pub mod encode;

/// Number of rows per Arrow batch the decoders produce.
pub const DECODE_BATCH_ROWS: usize = 8192;
