//! The values a job file chooses among that other modules give meaning to (aggregate functions,
//! window shapes, bad-record and watermark policies, log limits). They live here so that the
//! config stays a leaf: the modules that act on them import them from here, never the reverse.

use serde::{Deserialize, Serialize};

/// What the job does with a record it cannot process (`on_bad_record` in the job file).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnBadRecord {
    /// Stop the job with an error naming the record (Spark's FAILFAST).
    #[default]
    Fail,
    /// Write the raw record and the reason to the dead-letter output and go on.
    DeadLetter,
}

/// How the global watermark follows the inputs' own watermarks (Spark's
/// `spark.sql.streaming.multipleWatermarkPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MultipleWatermarkPolicy {
    /// The slowest input decides (Spark's default): nothing an input may still send is late.
    #[default]
    Min,
    /// The fastest input decides: windows close sooner, and a lagging input's rows may be late.
    Max,
}

/// An aggregate function of an `aggregate` operator (`fn` in the job).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFn {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    First,
    Last,
    ApproxCountDistinct,
}

pub const FUNCTION_NAMES: &str =
    "\"count\", \"sum\", \"avg\", \"min\", \"max\", \"first\", \"last\", \"approx_count_distinct\"";

impl AggFn {
    pub fn parse(name: &str) -> Option<AggFn> {
        Some(match name {
            "count" => AggFn::Count,
            "sum" => AggFn::Sum,
            "avg" | "mean" => AggFn::Avg,
            "min" => AggFn::Min,
            "max" => AggFn::Max,
            "first" => AggFn::First,
            "last" => AggFn::Last,
            "approx_count_distinct" => AggFn::ApproxCountDistinct,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            AggFn::Count => "count",
            AggFn::Sum => "sum",
            AggFn::Avg => "avg",
            AggFn::Min => "min",
            AggFn::Max => "max",
            AggFn::First => "first",
            AggFn::Last => "last",
            AggFn::ApproxCountDistinct => "approx_count_distinct",
        }
    }
}

/// Durations in µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    Tumbling { size: i64 },
    Sliding { size: i64, slide: i64 },
    Session { gap: i64 },
}

/// The limits of one plugin's log. Defaults: 100 lines per batch, 1 KiB per line, 64 KiB
/// held per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    pub lines_per_batch: u32,
    pub line_bytes: usize,
    pub buffer_bytes: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits { lines_per_batch: 100, line_bytes: 1024, buffer_bytes: 64 << 10 }
    }
}

/// The largest component the admin API takes by default (`[admin].max_upload`).
pub const DEFAULT_MAX_UPLOAD: u64 = 64 << 20;
