//! Passes every row through, except by `event_id`: "panic" panics, "spin" loops forever,
//! "grow" allocates until memory runs out, "refuse" returns an error naming that row.
//! Written against the raw bindings (no SDK) to show the contract alone is enough.

wit_bindgen::generate!({ path: "../../../wit", world: "mapper" });

use weir::plugin::types::{ColumnValues, OutputColumn, OutputData};

struct Chaos;

impl Guest for Chaos {
    fn init(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn output_schema(input: Schema) -> Result<Schema, String> {
        Ok(input)
    }

    fn map_batch(input: Batch) -> Result<OutputBatch, BatchError> {
        let ids = input
            .columns
            .iter()
            .find(|c| c.name == "event_id")
            .ok_or_else(|| BatchError { message: "chaos needs an event_id column".into(), row: None })?;
        if let ColumnValues::Utf8(v) = &ids.data.values {
            for row in 0..input.num_rows as usize {
                let id = &v.data[v.offsets[row] as usize..v.offsets[row + 1] as usize];
                match id {
                    b"panic" => panic!("chaos: asked to panic at row {row}"),
                    b"spin" => {
                        let mut x: u64 = row as u64;
                        loop {
                            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                        }
                    }
                    b"grow" => {
                        let mut hoard: Vec<Vec<u8>> = Vec::new();
                        loop {
                            hoard.push(vec![1u8; 1 << 20]);
                            std::hint::black_box(&hoard);
                        }
                    }
                    b"refuse" => {
                        return Err(BatchError {
                            message: "refused by chaos: event_id is \"refuse\"".into(),
                            row: Some(row as u32),
                        })
                    }
                    _ => {}
                }
            }
        }
        let columns = input
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| OutputColumn { name: c.name.clone(), data: OutputData::Input(i as u32) })
            .collect();
        Ok(OutputBatch { num_rows: input.num_rows, rows: None, columns })
    }
}

export!(Chaos);
