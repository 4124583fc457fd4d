//! foreachBatch test plugin, against the raw bindings: for every batch, the rows with
//! `amount >= 100` go to output `big`, the others (and null amounts) to `small`, with all their
//! columns, and one row (batch_id, rows) to `counts`. Config `emit_to_undeclared=true` also
//! emits to an output the job does not declare (the host must fail the batch),
//! `fail_at_batch=N` returns an error for batch N, and `emit_flood=N` emits the whole batch to
//! `big` N times, ignoring refusals (the host must bound what it holds).

wit_bindgen::generate!({ path: "../../../wit", world: "batch-sink" });

use std::cell::Cell;

use weir::plugin::outputs::emit;
use weir::plugin::types::{Column, ColumnData, ColumnValues, VarLen};

struct Router;

thread_local! {
    static UNDECLARED: Cell<bool> = const { Cell::new(false) };
    static FAIL_AT: Cell<Option<u64>> = const { Cell::new(None) };
    static FLOOD: Cell<u64> = const { Cell::new(0) };
}

fn take_var(v: &VarLen, rows: &[usize]) -> VarLen {
    let mut offsets = vec![0u32];
    let mut data = Vec::new();
    for &r in rows {
        data.extend_from_slice(&v.data[v.offsets[r] as usize..v.offsets[r + 1] as usize]);
        offsets.push(data.len() as u32);
    }
    VarLen { offsets, data }
}

fn take(c: &ColumnData, rows: &[usize]) -> ColumnData {
    fn pick<T: Copy>(v: &[T], rows: &[usize]) -> Vec<T> {
        rows.iter().map(|&r| v[r]).collect()
    }
    let values = match &c.values {
        ColumnValues::Boolean(v) => ColumnValues::Boolean(pick(v, rows)),
        ColumnValues::Int32(v) => ColumnValues::Int32(pick(v, rows)),
        ColumnValues::Int64(v) => ColumnValues::Int64(pick(v, rows)),
        ColumnValues::Float64(v) => ColumnValues::Float64(pick(v, rows)),
        ColumnValues::Timestamp(v) => ColumnValues::Timestamp(pick(v, rows)),
        ColumnValues::Utf8(v) => ColumnValues::Utf8(take_var(v, rows)),
        ColumnValues::Binary(v) => ColumnValues::Binary(take_var(v, rows)),
    };
    ColumnData { values, validity: c.validity.as_ref().map(|v| pick(v, rows)) }
}

fn select(input: &Batch, rows: &[usize]) -> Batch {
    Batch {
        num_rows: rows.len() as u32,
        columns: input.columns.iter().map(|c| Column { name: c.name.clone(), data: take(&c.data, rows) }).collect(),
    }
}

impl Guest for Router {
    fn init(config: String) -> Result<(), String> {
        for part in config.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some(("emit_to_undeclared", v)) => UNDECLARED.set(v == "true"),
                Some(("fail_at_batch", v)) => FAIL_AT.set(Some(v.parse().map_err(|e| format!("fail_at_batch: {e}"))?)),
                Some(("emit_flood", v)) => FLOOD.set(v.parse().map_err(|e| format!("emit_flood: {e}"))?),
                _ => return Err(format!("router: unknown config {part:?}")),
            }
        }
        Ok(())
    }

    fn write_batch(batch_id: u64, data: Batch) -> Result<(), String> {
        if FAIL_AT.get() == Some(batch_id) {
            return Err(format!("router: asked to fail at batch {batch_id}"));
        }
        if FLOOD.get() > 0 {
            for _ in 0..FLOOD.get() {
                // Refusals ignored on purpose: the host must stop holding copies by itself.
                let _ = emit("big", &data);
            }
            return Ok(());
        }
        let amount = data
            .columns
            .iter()
            .find(|c| c.name == "amount")
            .ok_or("router needs an `amount` column")?;
        let ColumnValues::Float64(values) = &amount.data.values else { return Err("`amount` must be a double".into()) };
        let valid = |r: usize| amount.data.validity.as_ref().map_or(true, |v| v[r]);
        let (big, small): (Vec<usize>, Vec<usize>) =
            (0..data.num_rows as usize).partition(|&r| valid(r) && values[r] >= 100.0);
        emit("big", &select(&data, &big))?;
        emit("small", &select(&data, &small))?;
        let counts = Batch {
            num_rows: 1,
            columns: vec![
                Column {
                    name: "batch_id".into(),
                    data: ColumnData { values: ColumnValues::Int64(vec![batch_id as i64]), validity: None },
                },
                Column {
                    name: "rows".into(),
                    data: ColumnData { values: ColumnValues::Int64(vec![data.num_rows as i64]), validity: None },
                },
            ],
        };
        emit("counts", &counts)?;
        if UNDECLARED.get() {
            // The error is ignored on purpose: the host must fail the batch anyway.
            let _ = emit("nowhere", &counts);
        }
        Ok(())
    }
}

export!(Router);
