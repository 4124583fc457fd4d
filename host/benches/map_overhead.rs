//! The cost of running user logic as Wasm: the `enrich` plugin (target/plugins/enrich.wasm,
//! built by scripts/build-plugins.sh) against the same logic compiled into the host, over the
//! same Arrow batches, for batch sizes 1, 64, 1024 and 8192. Prints a table of rows/s and the
//! Wasm/native cost ratio. Run: `cargo bench -p weir-host --bench map_overhead`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, BooleanArray, Float64Array, Int32Array, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Float64Type, Schema};
use arrow::record_batch::RecordBatch;
use weir::job::PluginLimits;
use weir::plugin::{MapperPlugin, Runtime};
use weir::schema::parse_ddl;

/// The enrich logic, native: the columns the plugin appends (see plugins/enrich).
fn native_enrich(input: &RecordBatch, tax_rate: f64) -> RecordBatch {
    let amount = input.column_by_name("amount").unwrap().as_primitive::<Float64Type>();
    let user = input.column_by_name("user_id").unwrap().as_string::<i32>();
    let factor = 1.0 + tax_rate;
    let with_tax: Float64Array = amount.unary(|a| a * factor);
    let is_large = BooleanArray::from_unary(amount, |a| a >= 100.0);
    let is_large = BooleanArray::new(is_large.values().clone(), amount.nulls().cloned());
    let bucket: Int32Array = user
        .iter()
        .map(|u| {
            u.map(|s| {
                let mut h: u32 = 2166136261;
                for b in s.as_bytes() {
                    h = (h ^ *b as u32).wrapping_mul(16777619);
                }
                (h % 16) as i32
            })
        })
        .collect();
    let mut fields: Vec<Field> = input.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("amount_with_tax", DataType::Float64, true));
    fields.push(Field::new("user_bucket", DataType::Int32, true));
    fields.push(Field::new("is_large", DataType::Boolean, true));
    let mut cols = input.columns().to_vec();
    cols.push(Arc::new(with_tax));
    cols.push(Arc::new(bucket));
    cols.push(Arc::new(is_large));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
}

fn make_batch(rows: usize, offset: usize) -> RecordBatch {
    let schema = parse_ddl("event_id string, user_id string, amount double, event_time timestamp").unwrap();
    let ids: StringArray = (0..rows).map(|i| Some(format!("e{:010}", offset + i))).collect();
    let users: StringArray = (0..rows).map(|i| Some(format!("u{:05}", (offset + i) * 7919 % 10_000))).collect();
    let amounts: Float64Array = (0..rows).map(|i| Some(((offset + i) * 37 % 50_000) as f64 / 100.0)).collect();
    let times = TimestampMicrosecondArray::from(
        (0..rows).map(|i| 1_767_225_600_000_000 + (offset + i) as i64 * 10_000).collect::<Vec<_>>(),
    )
    .with_timezone("UTC");
    RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(users), Arc::new(amounts), Arc::new(times)]).unwrap()
}

fn measure(mut f: impl FnMut(&RecordBatch) -> usize, batches: &[RecordBatch], min_time: Duration) -> f64 {
    // one warm-up pass
    for b in batches.iter().take(16) {
        std::hint::black_box(f(b));
    }
    let start = Instant::now();
    let mut rows = 0usize;
    while start.elapsed() < min_time {
        for b in batches {
            rows += std::hint::black_box(f(b));
        }
    }
    rows as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let plugin_path = repo.join("target/plugins/enrich.wasm");
    if !plugin_path.exists() {
        eprintln!("{} is missing: run scripts/build-plugins.sh first", plugin_path.display());
        std::process::exit(2);
    }
    let runtime = Runtime::new().unwrap();
    let schema = make_batch(1, 0).schema();
    let mut plugin =
        MapperPlugin::load(&runtime, &plugin_path, "tax_rate=0.2", PluginLimits::default(), schema).unwrap();

    // Same output, or the comparison means nothing.
    let check = make_batch(1000, 0);
    let wasm_out = plugin.map_batch(0, &check).unwrap();
    let native_out = native_enrich(&check, 0.2);
    assert_eq!(wasm_out.columns(), native_out.columns(), "wasm and native enrich disagree");

    // The crossing alone: `chaos` (tests/plugins/chaos) reads one column and passes every column
    // through, so it measures lowering the input and lifting an output of pass-throughs.
    let chaos_path = repo.join("target/plugins/chaos.wasm");
    let mut chaos =
        MapperPlugin::load(&runtime, &chaos_path, "", PluginLimits::default(), make_batch(1, 0).schema()).unwrap();

    println!("| batch rows | native rows/s | wasm rows/s | wasm cost / native | crossing only (pass-through plugin) rows/s |");
    println!("|---:|---:|---:|---:|---:|");
    for &size in &[1usize, 64, 1024, 8192] {
        let total = if size == 1 { 20_000 } else { 1 << 20 };
        let batches: Vec<RecordBatch> = (0..total / size).map(|i| make_batch(size, i * size)).collect();
        let min_time = Duration::from_secs(2);
        let native = measure(|b| native_enrich(b, 0.2).num_rows(), &batches, min_time);
        let wasm = measure(|b| plugin.map_batch(1, b).unwrap().num_rows(), &batches, min_time);
        let crossing = measure(|b| chaos.map_batch(1, b).unwrap().num_rows(), &batches, min_time);
        println!("| {size} | {:.0} | {:.0} | {:.2}x | {:.0} |", native, wasm, native / wasm, crossing);
    }
}
