//! How much a plugin's result may cost the host, checked on the lifted WIT values before any
//! Arrow array is built from them. The lifted values themselves are bounded by the instance's
//! memory (they were copied out of it); what is not bounded is what the host would make of them:
//! a map's `rows` selection can repeat one input row millions of times, and every input column
//! passed through would be copied at each index. So the rows and the bytes a result would take
//! once materialised are counted first, and a result past `max_output_rows` or
//! `max_output_bytes` is refused as a whole.

use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType as ArrowType;
use arrow::record_batch::RecordBatch;

use super::mapper::wit::{Batch, ColumnData, ColumnValues, OutputBatch, OutputData};
use super::{BatchLabel, PluginError};
use crate::config::PluginLimits;

/// A result past a limit: what it asked for, the limit, and the setting that raises it.
#[derive(Debug, PartialEq, Eq)]
pub struct Exceeded {
    pub what: String,
    pub limit: String,
    pub setting: &'static str,
}

impl Exceeded {
    pub fn into_error(self, plugin: &Path, export: &'static str, batch: Option<u64>) -> PluginError {
        PluginError::Limit {
            plugin: plugin.to_path_buf(),
            export,
            batch: BatchLabel(batch),
            what: self.what,
            limit: self.limit,
            setting: self.setting,
        }
    }
}

fn rows_limit(n: u64, limits: &PluginLimits) -> Result<(), Exceeded> {
    if n > limits.output_rows {
        return Err(Exceeded {
            what: format!("returned {n} rows"),
            limit: format!("{} rows per call", limits.output_rows),
            setting: "max_output_rows",
        });
    }
    Ok(())
}

fn bytes_limit(bytes: u64, limits: &PluginLimits) -> Result<(), Exceeded> {
    if bytes > limits.output_bytes {
        return Err(Exceeded {
            what: format!("returned a result of {} MiB", bytes >> 20),
            limit: format!("{} MiB per call", limits.output_bytes >> 20),
            setting: "max_output_bytes",
        });
    }
    Ok(())
}

/// Checks a map's output against the limits: its row count, and its size with the input
/// columns it passes through counted at the rows it selects.
pub fn check_output(out: &OutputBatch, input: &RecordBatch, limits: &PluginLimits) -> Result<(), Exceeded> {
    let n = out.num_rows as usize;
    rows_limit(n as u64, limits)?;
    let mut bytes: u64 = 0;
    for col in &out.columns {
        bytes = bytes.saturating_add(match &col.data {
            OutputData::Computed(data) => column_bytes(data),
            // Without a selection the input column is shared, not copied.
            OutputData::Input(i) => match (&out.rows, input.columns().get(*i as usize)) {
                (Some(rows), Some(src)) => taken_bytes(src.as_ref(), rows),
                _ => 0,
            },
        });
        // Stop counting as soon as the limit is passed: a hostile selection is not walked whole.
        bytes_limit(bytes, limits)?;
    }
    Ok(())
}

/// Checks a stateful call's result: its output rows, and its bytes with what it asks the host
/// to store (new state bytes, timers to register), which would otherwise grow the state
/// store without bound in one call.
pub fn check_stateful(out: &super::stateful::wit::StatefulOutput, limits: &PluginLimits) -> Result<(), Exceeded> {
    use super::stateful::wit::StateUpdate;
    rows_limit(out.output.num_rows as u64, limits)?;
    let stored = out.results.iter().fold(0u64, |acc, r| {
        let state = match &r.state {
            StateUpdate::Update(bytes) => bytes.len() as u64,
            StateUpdate::Keep | StateUpdate::Remove => 0,
        };
        acc.saturating_add(state + 16 * (r.register_timers.len() + r.delete_timers.len()) as u64)
    });
    bytes_limit(batch_bytes(&out.output).saturating_add(stored), limits)
}

/// What a WIT batch takes once it is an Arrow batch (and, about, what it takes lifted).
pub fn batch_bytes(batch: &Batch) -> u64 {
    batch.columns.iter().fold(0u64, |acc, c| acc.saturating_add(column_bytes(&c.data) + c.name.len() as u64))
}

fn column_bytes(data: &ColumnData) -> u64 {
    let values = match &data.values {
        ColumnValues::Boolean(v) => v.len() as u64,
        ColumnValues::Int32(v) => 4 * v.len() as u64,
        ColumnValues::Int64(v) | ColumnValues::Timestamp(v) => 8 * v.len() as u64,
        ColumnValues::Float64(v) => 8 * v.len() as u64,
        ColumnValues::Utf8(v) | ColumnValues::Binary(v) => 4 * v.offsets.len() as u64 + v.data.len() as u64,
    };
    values + data.validity.as_ref().map_or(0, |v| v.len() as u64)
}

/// Bytes of `src` taken at `rows`: fixed-width values times the rows, or for strings and
/// binaries the lengths of the selected values (which may repeat one large value).
fn taken_bytes(src: &dyn Array, rows: &[u32]) -> u64 {
    let n = rows.len() as u64;
    let nulls = if src.null_count() > 0 { n.div_ceil(8) } else { 0 };
    let valid = |r: u32| (r as usize) < src.len();
    let values = match src.data_type() {
        ArrowType::Utf8 => {
            let o = src.as_string::<i32>().value_offsets();
            var_len_bytes(o, rows, valid)
        }
        ArrowType::Binary => {
            let o = src.as_binary::<i32>().value_offsets();
            var_len_bytes(o, rows, valid)
        }
        ArrowType::Boolean => n.div_ceil(8),
        other => n * other.primitive_width().unwrap_or(8) as u64,
    };
    values.saturating_add(nulls)
}

fn var_len_bytes(offsets: &[i32], rows: &[u32], valid: impl Fn(u32) -> bool) -> u64 {
    let data: u64 = rows
        .iter()
        .filter(|&&r| valid(r))
        .map(|&r| (offsets[r as usize + 1] - offsets[r as usize]) as u64)
        .fold(0u64, u64::saturating_add);
    data.saturating_add(4 * (rows.len() as u64 + 1))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::super::mapper::wit::{OutputColumn, VarLen};
    use super::*;

    fn input() -> RecordBatch {
        let schema = Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("s", DataType::Utf8, true)]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec!["x".repeat(1000), "y".into()])),
            ],
        )
        .unwrap()
    }

    fn limits(rows: u64, bytes: u64) -> PluginLimits {
        PluginLimits { output_rows: rows, output_bytes: bytes, ..PluginLimits::default() }
    }

    fn repeat(row: u32, times: usize) -> OutputBatch {
        OutputBatch {
            num_rows: times as u32,
            rows: Some(vec![row; times]),
            columns: vec![
                OutputColumn { name: "id".into(), data: OutputData::Input(0) },
                OutputColumn { name: "s".into(), data: OutputData::Input(1) },
            ],
        }
    }

    #[test]
    fn a_selection_repeating_a_large_row_is_counted_before_it_is_copied() {
        // 10,000 copies of a 1000-byte string: 10 MB plus ids and offsets.
        let e = check_output(&repeat(0, 10_000), &input(), &limits(1 << 20, 8 << 20)).unwrap_err();
        assert_eq!(e.setting, "max_output_bytes");
        assert!(e.what.contains("returned a result of 9 MiB"), "{e:?}");
        // The small row repeated as often fits.
        check_output(&repeat(1, 10_000), &input(), &limits(1 << 20, 8 << 20)).unwrap();
    }

    #[test]
    fn too_many_rows_are_refused_naming_the_setting() {
        let e = check_output(&repeat(1, 1001), &input(), &limits(1000, 1 << 30)).unwrap_err();
        assert_eq!(
            e,
            Exceeded {
                what: "returned 1001 rows".into(),
                limit: "1000 rows per call".into(),
                setting: "max_output_rows"
            }
        );
    }

    #[test]
    fn computed_columns_and_plain_batches_count_their_values() {
        let batch = Batch {
            num_rows: 2,
            columns: vec![super::super::mapper::wit::Column {
                name: "s".into(),
                data: ColumnData {
                    values: ColumnValues::Utf8(VarLen { offsets: vec![0, 3, 6], data: b"abcdef".to_vec() }),
                    validity: Some(vec![true, true]),
                },
            }],
        };
        assert_eq!(batch_bytes(&batch), 12 + 6 + 2 + 1);
        use super::super::stateful::wit::{GroupResult, StateUpdate, StatefulOutput, TimeoutUpdate};
        let result = |state: Vec<u8>| GroupResult {
            state: StateUpdate::Update(state),
            timeout: TimeoutUpdate::Keep,
            ttl_ms: None,
            register_timers: vec![],
            delete_timers: vec![],
        };
        let out = |state: Vec<u8>| StatefulOutput { results: vec![result(state)], output: batch.clone() };
        assert!(check_stateful(&out(vec![]), &limits(1, 1 << 20)).is_err(), "2 rows past 1");
        check_stateful(&out(vec![]), &limits(2, 21)).unwrap();
        // New state bytes count: what the call asks the host to store.
        let e = check_stateful(&out(vec![0; 1000]), &limits(2, 1000)).unwrap_err();
        assert_eq!(e.setting, "max_output_bytes");
    }
}
