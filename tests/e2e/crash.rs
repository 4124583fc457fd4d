//! Exactly-once across crashes: `weir` is killed with SIGKILL at random moments, restarted, and
//! the committed output must equal that of a run that was never killed — no row lost, none
//! repeated. Seeds are printed; rerun one with WEIR_CRASH_SEED=<seed>.

use std::path::Path;
use std::time::Instant;

use rand::SeedableRng;

use crate::common::*;

const FILES: usize = 30;
const ROWS_PER_FILE: usize = 300;

/// Deterministic input: the same for the reference run and every killed run. Event ids repeat
/// from row 4000 on, so later batches hold duplicates of earlier ones.
fn write_input(s: &Scratch) {
    for f in 0..FILES {
        let mut text = String::new();
        for r in 0..ROWS_PER_FILE {
            let n = f * ROWS_PER_FILE + r;
            text.push_str(&format!(
                "{{\"event_id\":\"e{}\",\"user_id\":\"u{}\",\"amount\":{}.{:02},\"event_time\":\"2024-01-01T{:02}:{:02}:{:02}Z\"}}\n",
                n % 4000,
                n % 97,
                n % 500,
                n % 100,
                (n / 3600) % 24,
                (n / 60) % 60,
                n % 60
            ));
        }
        s.write(&format!("in/f{f:03}.json"), &text);
    }
}

/// The plugins of the default crash job.
const PLUGINS: &str = r#"
[[operator]]
kind = "map"
plugin = "{plugin:enrich}"

[[operator]]
kind = "map"
plugin = "{plugin:filter}"
config = "min_amount=50"
"#;

fn job(s: &Scratch, sink: &str, operators: &str) -> std::path::PathBuf {
    // `sink` may start with top-level lines (e.g. state_store) before a "\n---\n" separator.
    let (top, sink) = sink.split_once("\n---\n").unwrap_or(("", sink));
    s.job(&format!(
        r#"{top}
[source]
format = "json"
path = "{{dir}}/in"
schema = "event_id string, user_id string, amount double, event_time timestamp"
max_files_per_trigger = 2
{operators}

[sink]
checkpoint = "{{dir}}/ckpt"
trigger = {{ available_now = true }}
{path}
{sink}
"#,
        // A foreach_batch sink has no path: its outputs (`[[sink.output]]`) have, under out/.
        path = if sink.contains("foreach_batch") { "" } else { "path = \"{dir}/out\"" },
    ))
}

/// Every committed file's bytes, by relative path (without the writer's random part of the
/// name, which differs between runs), in batch order; for the outputs of a foreach_batch sink
/// (directories under `out`), output by output.
fn committed_bytes(out: &Path) -> Vec<(String, Vec<u8>)> {
    if !out.join("_weir_log").exists() && out.exists() {
        let mut dirs: Vec<_> = std::fs::read_dir(out).unwrap().map(|e| e.unwrap().path()).collect();
        dirs.sort();
        return dirs
            .iter()
            .flat_map(|d| {
                let name = d.file_name().unwrap().to_string_lossy().into_owned();
                committed_bytes(d).into_iter().map(move |(f, b)| (format!("{name}/{f}"), b))
            })
            .collect();
    }
    let unique = regex::Regex::new(r"-[0-9a-f]{12}\.").unwrap();
    committed_files(out)
        .into_iter()
        .map(|f| (unique.replace(&f.display().to_string(), ".").into_owned(), std::fs::read(out.join(&f)).unwrap()))
        .collect()
}

fn kill_and_restart_until_done(sink: &str, operators: &str, rounds: u64) {
    let reference = Scratch::new();
    write_input(&reference);
    let started = Instant::now();
    run_ok(&job(&reference, sink, operators));
    let full_run = started.elapsed();
    let expected = committed_bytes(&reference.path("out"));
    assert!(!expected.is_empty());

    let base_seed = crash_seed();
    for round in 0..rounds {
        let seed = base_seed.wrapping_add(round);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let s = Scratch::new();
        write_input(&s);
        let job = job(&s, sink, operators);
        let kills = run_under_random_kills(&job, &mut rng, full_run, seed);
        let got = committed_bytes(&s.path("out"));
        let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&got),
            names(&expected),
            "seed {seed} ({kills} kills): committed files differ; rerun with WEIR_CRASH_SEED={seed}"
        );
        for ((name, a), (_, b)) in got.iter().zip(&expected) {
            assert!(
                a == b,
                "seed {seed} ({kills} kills): {name} differs from the unkilled run; rerun with WEIR_CRASH_SEED={seed}"
            );
        }
        eprintln!("crash round {round}: seed {seed}, {kills} kills, {} committed files identical", got.len());
    }
}

#[test]
fn sigkill_at_random_moments_loses_and_repeats_nothing_json() {
    kill_and_restart_until_done("format = \"json\"", PLUGINS, 3);
}

#[test]
fn sigkill_at_random_moments_loses_and_repeats_nothing_partitioned_parquet() {
    kill_and_restart_until_done("format = \"parquet\"\npartition_by = [\"user_bucket\"]", PLUGINS, 2);
}

/// Stateful: the first 4000 rows pass and every later row (a repeated id) is dropped, whatever
/// the kills. A replay that started from the wrong state version would repeat or lose rows.
#[test]
fn sigkill_at_random_moments_loses_and_repeats_nothing_with_dedup_state() {
    kill_and_restart_until_done("format = \"json\"", "[[operator]]\nkind = \"dedup\"\nkeys = [\"event_id\"]\n", 3);
}

#[test]
fn sigkill_at_random_moments_loses_and_repeats_nothing_with_rocksdb_dedup_state() {
    kill_and_restart_until_done(
        "state_store = \"rocksdb\"\n---\nformat = \"json\"",
        "[[operator]]\nkind = \"dedup\"\nkeys = [\"event_id\"]\n",
        3,
    );
}

/// Windowed aggregations in append mode: a window is written once, in the batch whose
/// watermark passes its end. A replay from the wrong state version, or with another watermark,
/// would write a window twice, miss one, or count rows twice.
const WATERMARK: &str = "[watermark]\ncolumn = \"event_time\"\ndelay = \"2 minutes\"\n";

fn aggregate(group_by: &str, window: &str) -> String {
    format!(
        "{WATERMARK}[[operator]]\nkind = \"aggregate\"\ngroup_by = [\"{group_by}\"]\nwindow = {window}\n\
         aggregates = [{{ fn = \"count\", as = \"n\" }}, {{ fn = \"sum\", column = \"amount\", as = \"total\" }}, {{ fn = \"max\", column = \"event_id\", as = \"last_id\" }}]\n"
    )
}

#[test]
fn sigkill_at_random_moments_with_tumbling_window_state() {
    let ops = aggregate("user_id", "{ column = \"event_time\", size = \"5 minutes\" }");
    kill_and_restart_until_done("format = \"json\"", &ops, 3);
}

#[test]
fn sigkill_at_random_moments_with_rocksdb_sliding_window_state() {
    let ops = aggregate("user_id", "{ column = \"event_time\", size = \"10 minutes\", slide = \"5 minutes\" }");
    kill_and_restart_until_done("state_store = \"rocksdb\"\n---\nformat = \"json\"", &ops, 3);
}

/// Event ids repeat every 4000 s, so each id has three sessions (gap 10 min) that close one by
/// one as the watermark passes them.
#[test]
fn sigkill_at_random_moments_with_session_window_state() {
    let ops = aggregate("event_id", "{ column = \"event_time\", gap = \"10 minutes\" }");
    kill_and_restart_until_done("format = \"parquet\"", &ops, 2);
}

#[test]
fn sigkill_at_random_moments_with_rocksdb_session_window_state() {
    let ops = aggregate("event_id", "{ column = \"event_time\", gap = \"10 minutes\" }");
    kill_and_restart_until_done("state_store = \"rocksdb\"\n---\nformat = \"json\"", &ops, 2);
}

#[test]
fn sigkill_at_random_moments_with_rocksdb_tumbling_window_state() {
    let ops = aggregate("user_id", "{ column = \"event_time\", size = \"5 minutes\" }");
    kill_and_restart_until_done("state_store = \"rocksdb\"\n---\nformat = \"json\"", &ops, 2);
}

#[test]
fn sigkill_at_random_moments_with_sliding_window_state() {
    let ops = aggregate("user_id", "{ column = \"event_time\", size = \"10 minutes\", slide = \"5 minutes\" }");
    kill_and_restart_until_done("format = \"parquet\"", &ops, 2);
}

/// foreachBatch: the router plugin emits every batch to three outputs; each output must hold
/// each batch exactly once, however the kills fall between the outputs' commits and the
/// checkpoint's.
#[test]
fn sigkill_at_random_moments_with_foreach_batch_outputs() {
    let sink = r#"format = "foreach_batch"
plugin = "{plugin:router-raw}"
[[sink.output]]
name = "big"
format = "json"
path = "{dir}/out/big"
[[sink.output]]
name = "small"
format = "parquet"
path = "{dir}/out/small"
[[sink.output]]
name = "counts"
format = "csv"
path = "{dir}/out/counts""#;
    kill_and_restart_until_done(sink, PLUGINS, 3);
}

/// A stateful plugin: sessions (gap 1 minute, so most events close one) are written once, in
/// the batch whose watermark passes them or whose next event closes them; a replay from the
/// wrong state version would repeat a session or lose one.
const SESSIONIZE: &str = "[[operator]]\nkind = \"stateful\"\nplugin = \"{plugin:sessionize}\"\ngroup_by = [\"user_id\"]\ntimeout = \"event_time\"\nconfig = \"gap_minutes=1\"\n";

#[test]
fn sigkill_at_random_moments_with_stateful_plugin_state() {
    kill_and_restart_until_done("format = \"json\"", &format!("{WATERMARK}{SESSIONIZE}"), 3);
}

#[test]
fn sigkill_at_random_moments_with_rocksdb_stateful_plugin_state() {
    kill_and_restart_until_done(
        "state_store = \"rocksdb\"\n---\nformat = \"parquet\"",
        &format!("{WATERMARK}{SESSIONIZE}"),
        2,
    );
}
