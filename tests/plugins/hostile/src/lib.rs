//! A mapper that misbehaves in the way its `config` names, on every batch:
//! - `amplify-rows`: selects input row 0 twenty million times (a flatMap gone wrong);
//! - `amplify-bytes`: selects input row 0 once per KiB of its `payload` column per input row,
//!   so the pass-through columns would take about 4 GiB once copied;
//! - `long-error`: refuses every row with a 1 MiB message naming it;
//! - `sleep`: sleeps an hour (std's sleep: a monotonic-clock subscription, then a block);
//! - `poll`: subscribes to the monotonic clock for an hour and polls the pollable;
//! - `chatty`: writes 100,000 lines to stdout, then passes the rows through;
//! - `bad-len`, `bad-rows`, `bad-offsets`, `bad-offsets-past`, `bad-utf8`, `bad-type`: returns a
//!   result that breaks the contract in that one way (the output schema declares a `note string`
//!   column after the input's).
//! Anything else passes the rows through. Written against the raw bindings.

wit_bindgen::generate!({ path: "../../../wit", world: "mapper" });

use std::cell::RefCell;

use weir::plugin::types::{
    ColumnData, ColumnValues, DataType, Field, OutputColumn, OutputData, VarLen,
};

thread_local! {
    static MODE: RefCell<String> = const { RefCell::new(String::new()) };
}

fn mode() -> String {
    MODE.with(|m| m.borrow().clone())
}

fn malformed(m: &str) -> bool {
    m.starts_with("bad-")
}

struct Hostile;

impl Guest for Hostile {
    fn init(config: String) -> Result<(), String> {
        MODE.with(|m| *m.borrow_mut() = config.trim().to_string());
        Ok(())
    }

    fn output_schema(input: Schema) -> Result<Schema, String> {
        let mut out = input;
        if malformed(&mode()) {
            out.push(Field { name: "note".into(), data_type: DataType::Utf8, nullable: true });
        }
        Ok(out)
    }

    fn map_batch(input: Batch) -> Result<OutputBatch, BatchError> {
        let n = input.num_rows;
        let pass = |rows: Option<Vec<u32>>, num_rows: u32| OutputBatch {
            num_rows,
            rows,
            columns: input
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| OutputColumn { name: c.name.clone(), data: OutputData::Input(i as u32) })
                .collect(),
        };
        let m = mode();
        match m.as_str() {
            "amplify-rows" if n > 0 => Ok(pass(Some(vec![0; 20_000_000]), 20_000_000)),
            "amplify-bytes" if n > 0 => {
                let payload = input
                    .columns
                    .iter()
                    .find(|c| c.name == "payload")
                    .map(|c| match &c.data.values {
                        ColumnValues::Utf8(v) => (v.offsets[1] - v.offsets[0]) as usize,
                        _ => 0,
                    })
                    .unwrap_or(0);
                let times = ((4u64 << 30) / payload.max(1) as u64) as u32;
                Ok(pass(Some(vec![0; times as usize]), times))
            }
            "long-error" if n > 0 => Err(BatchError {
                message: format!("row 0 refused: {}", "x".repeat(1 << 20)),
                row: Some(0),
            }),
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(pass(None, n))
            }
            "poll" => {
                let p = wasi::clocks::monotonic_clock::subscribe_duration(3600 * 1_000_000_000);
                let ready = wasi::io::poll::poll(&[&p]);
                assert_eq!(ready, vec![0]);
                Ok(pass(None, n))
            }
            "chatty" => {
                let out = wasi::cli::stdout::get_stdout();
                for i in 0..100_000 {
                    let _ = out.blocking_write_and_flush(format!("chatty line {i}\n").as_bytes());
                }
                Ok(pass(None, n))
            }
            m if malformed(m) => {
                let mut out = pass(None, n);
                let note = |values: ColumnValues| OutputColumn {
                    name: "note".into(),
                    data: OutputData::Computed(ColumnData { values, validity: None }),
                };
                let text = |offsets: Vec<u32>, data: &[u8]| ColumnValues::Utf8(VarLen { offsets, data: data.to_vec() });
                let ok_offsets: Vec<u32> = (0..=n).collect();
                let ok_data = vec![b'a'; n as usize];
                out.columns.push(match m {
                    "bad-len" => note(text((0..=n + 5).collect(), &vec![b'a'; n as usize + 5])),
                    "bad-offsets" => {
                        let mut o = ok_offsets.clone();
                        if o.len() > 2 {
                            o.swap(1, 2);
                        }
                        note(text(o, &ok_data))
                    }
                    "bad-offsets-past" => {
                        let mut o = ok_offsets.clone();
                        *o.last_mut().unwrap() = n + 1000;
                        note(text(o, &ok_data))
                    }
                    "bad-utf8" => note(text(ok_offsets, &vec![0xff; n as usize])),
                    "bad-type" => note(ColumnValues::Int64(vec![7; n as usize])),
                    _ => note(text(ok_offsets, &ok_data)),
                });
                if m == "bad-rows" {
                    out.rows = Some((0..n).map(|r| r + n).collect());
                    out.columns.pop();
                    out.columns.push(note(text((0..=n).collect(), &vec![b'a'; n as usize])));
                }
                Ok(out)
            }
            _ => Ok(pass(None, n)),
        }
    }
}

export!(Hostile);
