//! Delta and PostgreSQL tables as outputs of a sink plugin (`[[sink.output]]` with format =
//! "delta" or "postgres"): the foreach_batch test plugin (tests/plugins/router-raw) routes rows to
//! `big` and `small` and a count to `counts`; every table is read back by a reader no one here
//! wrote (PyPI's deltalake through tests/delta/read_table.py, psql) and holds each batch exactly
//! once, through replays, a SIGKILL between two outputs' commits either way round, two outputs
//! of one table, and a restart after a plugin change. foreach: each call's emits, at least once.
//! The postgres outputs need the server of scripts/postgres.sh (WEIR_PG_URL, WEIR_PG_PASSWORD).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::delta::txn_versions;
use crate::postgres::{pg, table, Pg};

/// Two files, one batch each: amounts 50, 150, null / 100, 99.5.
fn write_input(s: &Scratch) {
    s.write(
        "in/a.json",
        "{\"id\":\"a1\",\"amount\":50.0}\n{\"id\":\"a2\",\"amount\":150.0}\n{\"id\":\"a3\",\"amount\":null}\n",
    );
    s.write("in/b.json", "{\"id\":\"b1\",\"amount\":100.0}\n{\"id\":\"b2\",\"amount\":99.5}\n");
}

/// A delta output in `{dir}/<dir>`.
fn delta(name: &str, dir: &str) -> String {
    format!("[[sink.output]]\nname = \"{name}\"\nformat = \"delta\"\npath = \"{{dir}}/{dir}\"\n")
}

/// A postgres output writing `table` (created), with `extra` fields.
fn postgres(pg: &Pg, name: &str, table: &str, extra: &str) -> String {
    format!(
        "[[sink.output]]\nname = \"{name}\"\nformat = \"postgres\"\nurl = \"{}\"\npassword_env = \"WEIR_PG_PASSWORD\"\ntable = \"{table}\"\ncreate_table = true\n{extra}\n",
        pg.url
    )
}

/// The router's job: json input, `operators` before it, its outputs `outputs`.
fn job(s: &Scratch, sink: &str, operators: &str, outputs: &[String]) -> std::path::PathBuf {
    s.job(&format!(
        r#"
[source]
format = "json"
path = "{{dir}}/in"
schema = "id string, amount double"
max_files_per_trigger = 1
{operators}
[sink]
{sink}
plugin = "{{plugin:router-raw}}"
checkpoint = "{{dir}}/ckpt"
trigger = {{ available_now = true }}

{}"#,
        outputs.join("\n")
    ))
}

const FOREACH_BATCH: &str = "format = \"foreach_batch\"";

fn query_id(s: &Scratch) -> String {
    let v: Value = serde_json::from_slice(&std::fs::read(s.path("ckpt/metadata")).unwrap()).unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// The table as deltalake reads it, with the `txn` version of `apps`.
fn read_delta(table: &Path, apps: &[&str]) -> Value {
    let python = repo().join(".spark-venv/bin/python");
    let out = Command::new(&python)
        .arg(repo().join("tests/delta/read_table.py"))
        .arg(table)
        .args(apps)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/test.sh makes .spark-venv with deltalake)", python.display()));
    assert!(
        out.status.success(),
        "deltalake could not read {}:\n{}",
        table.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A table's rows as deltalake reads them, each as compact JSON, sorted.
fn delta_rows(table: &Path) -> Vec<String> {
    let mut rows: Vec<String> =
        read_delta(table, &[])["rows"].as_array().unwrap().iter().map(|r| r.to_string()).collect();
    rows.sort();
    rows
}

const BIG: [&str; 2] = ["{\"amount\":100.0,\"id\":\"b1\"}", "{\"amount\":150.0,\"id\":\"a2\"}"];
const BIG_0: [&str; 1] = ["{\"amount\":150.0,\"id\":\"a2\"}"];
const SMALL: [&str; 3] = ["a1|50", "a3|", "b2|99.5"];
const COUNTS: [&str; 2] = ["0|3", "1|2"];

fn small_rows(pg: &Pg, t: &str) -> Vec<String> {
    pg.lines(&format!("SELECT id, amount FROM \"{t}\" ORDER BY id, amount"))
}

fn count_rows(pg: &Pg, t: &str) -> Vec<String> {
    pg.lines(&format!("SELECT batch_id, \"rows\" FROM \"{t}\" ORDER BY batch_id, \"rows\""))
}

/// The progress rows of this query's outputs: `<query id>-<output>|schema.table|batch`.
fn progress_rows(pg: &Pg, q: &str) -> Vec<String> {
    pg.lines(&format!(
        "SELECT query_id, output, batch_id FROM weir_sink_progress WHERE query_id LIKE '{q}-%' ORDER BY query_id, output"
    ))
}

#[test]
fn foreach_batch_writes_each_batch_once_to_a_delta_output_and_two_postgres_outputs() {
    let Some(pg) = pg() else { return };
    let s = Scratch::new();
    write_input(&s);
    let (small, counts) = (table("out_small"), table("out_counts"));
    let outputs = [delta("big", "big"), postgres(&pg, "small", &small, ""), postgres(&pg, "counts", &counts, "")];
    let job = job(&s, FOREACH_BATCH, "", &outputs);
    run_ok(&job);
    let q = query_id(&s);
    let app = format!("{q}-big");
    assert_eq!(delta_rows(&s.path("big")), BIG);
    let t = read_delta(&s.path("big"), &[&app, &q]);
    assert_eq!((t["txn"][&app].as_i64(), t["txn"][&q].is_null()), (Some(1), true), "appId <query id>-<output>");
    assert_eq!(t["schema"], serde_json::json!([["id", "string", true], ["amount", "double", true]]));
    assert_eq!(txn_versions(&s.path("big"), &app), [0, 1]);
    assert_eq!(small_rows(&pg, &small), SMALL);
    assert_eq!(count_rows(&pg, &counts), COUNTS);
    assert_eq!(
        progress_rows(&pg, &q),
        [format!("{q}-counts|public.{counts}|1"), format!("{q}-small|public.{small}|1")]
    );
    // Batch 1 replayed (a crash after the outputs' commits and before the checkpoint's): every
    // output finds it in its own record and writes nothing again.
    std::fs::remove_file(s.path("ckpt/commits/1")).unwrap();
    run_ok(&job);
    assert!(s.path("ckpt/commits/1").exists());
    assert_eq!(txn_versions(&s.path("big"), &app), [0, 1]);
    assert_eq!(delta_rows(&s.path("big")), BIG);
    assert_eq!(small_rows(&pg, &small), SMALL);
    assert_eq!(count_rows(&pg, &counts), COUNTS);
}

/// Two outputs writing one postgres table: each has its own progress row, so neither takes the
/// other's batch for its own (with the table alone as the identity, the second would skip).
#[test]
fn two_postgres_outputs_of_one_table_each_write_every_batch_once() {
    let Some(pg) = pg() else { return };
    let s = Scratch::new();
    write_input(&s);
    let shared = table("out_shared");
    let outputs = [postgres(&pg, "big", &shared, ""), postgres(&pg, "small", &shared, ""), delta("counts", "counts")];
    let job = job(&s, FOREACH_BATCH, "", &outputs);
    run_ok(&job);
    let q = query_id(&s);
    let all = ["a1|50", "a2|150", "a3|", "b1|100", "b2|99.5"];
    assert_eq!(small_rows(&pg, &shared), all);
    assert_eq!(progress_rows(&pg, &q), [format!("{q}-big|public.{shared}|1"), format!("{q}-small|public.{shared}|1")]);
    assert_eq!(delta_rows(&s.path("counts")), ["{\"batch_id\":0,\"rows\":3}", "{\"batch_id\":1,\"rows\":2}"]);
    std::fs::remove_file(s.path("ckpt/commits/1")).unwrap();
    run_ok(&job);
    assert_eq!(small_rows(&pg, &shared), all);
    assert_eq!(txn_versions(&s.path("counts"), &format!("{q}-counts")), [0, 1]);
}

/// SIGKILL right after the postgres output `small` committed batch 1, before the delta output
/// `big` wrote it: the restart replays batch 1, `small` skips it, `big` writes it once.
#[test]
fn a_sigkill_between_a_postgres_outputs_commit_and_a_delta_outputs_replays_the_batch_once_into_each() {
    let Some(pg) = pg() else { return };
    let s = Scratch::new();
    write_input(&s);
    let (small, counts) = (table("kill_small"), table("kill_counts"));
    let outputs = [postgres(&pg, "small", &small, ""), delta("big", "big"), postgres(&pg, "counts", &counts, "")];
    let job = job(&s, FOREACH_BATCH, "", &outputs);
    let out = weir().args(["run", "--quiet"]).arg(&job).env("WEIR_TEST_CRASH_AFTER_SINK_COMMIT", "1").output().unwrap();
    assert!(!out.status.success(), "the hook kills the process");
    assert!(s.path("ckpt/commits/0").exists() && !s.path("ckpt/commits/1").exists());
    let q = query_id(&s);
    let app = format!("{q}-big");
    assert_eq!(small_rows(&pg, &small), SMALL, "small committed batch 1");
    assert_eq!(txn_versions(&s.path("big"), &app), [0], "big did not");
    assert_eq!(delta_rows(&s.path("big")), BIG_0);
    assert_eq!(count_rows(&pg, &counts), ["0|3"]);
    run_ok(&job);
    assert!(s.path("ckpt/commits/1").exists());
    assert_eq!(small_rows(&pg, &small), SMALL);
    assert_eq!(txn_versions(&s.path("big"), &app), [0, 1]);
    assert_eq!(delta_rows(&s.path("big")), BIG);
    assert_eq!(count_rows(&pg, &counts), COUNTS);
}

/// The other way round: the delta output `big` committed batch 1, and the process is killed
/// while the postgres output `small` holds batch 1's transaction open (uncommitted).
#[test]
fn a_sigkill_between_a_delta_outputs_commit_and_a_postgres_outputs_replays_the_batch_once_into_each() {
    let Some(pg) = pg() else { return };
    let s = Scratch::new();
    write_input(&s);
    let (small, counts) = (table("held_small"), table("held_counts"));
    let outputs = [delta("big", "big"), postgres(&pg, "small", &small, ""), postgres(&pg, "counts", &counts, "")];
    let job = job(&s, FOREACH_BATCH, "", &outputs);
    let hold = s.path("hold");
    let mut child = weir()
        .args(["run", "--quiet"])
        .arg(&job)
        .env("WEIR_TEST_PG_HOLD_BEFORE_COMMIT", format!("1:{}", hold.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !hold.exists() {
        assert!(Instant::now() < deadline, "batch 1 of output small never waited before its commit");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let q = query_id(&s);
    let app = format!("{q}-big");
    assert!(!s.path("ckpt/commits/1").exists());
    assert_eq!(txn_versions(&s.path("big"), &app), [0, 1], "big committed batch 1");
    assert_eq!(small_rows(&pg, &small), ["a1|50", "a3|"], "small did not");
    run_ok(&job);
    assert!(s.path("ckpt/commits/1").exists());
    assert_eq!(txn_versions(&s.path("big"), &app), [0, 1]);
    assert_eq!(delta_rows(&s.path("big")), BIG);
    assert_eq!(small_rows(&pg, &small), SMALL);
    assert_eq!(count_rows(&pg, &counts), COUNTS);
}

/// A restart after a map plugin changed asks the outputs, not made yet in the new process,
/// whether the unfinished batch is committed; each reads its own record (run with postgres
/// outputs only, then delta outputs only, so that each kind answers alone). Committed: the
/// batch replays with the version that wrote it. Not committed (it failed): it runs with the
/// new version.
#[test]
fn outputs_not_made_yet_answer_whether_a_batch_is_committed_after_a_plugin_change() {
    let Some(pg) = pg() else { return };
    let tagger = crate::hot_swap::tagger;
    let (v1, v2, broken) = (tagger("v1"), tagger("v2"), tagger("broken"));
    for kind in ["postgres", "delta"] {
        let s = Scratch::new();
        let (big, small, counts) = (table("change_big"), table("change_small"), table("change_counts"));
        let outputs: Vec<String> = if kind == "postgres" {
            vec![
                postgres(&pg, "big", &big, ""),
                postgres(&pg, "small", &small, ""),
                postgres(&pg, "counts", &counts, ""),
            ]
        } else {
            vec![delta("big", "big"), delta("small", "small"), delta("counts", "counts")]
        };
        // (id, version) of output `big`'s rows; (batch_id, rows) of `counts`'.
        let big_rows = || -> Vec<String> {
            if kind == "postgres" {
                pg.lines(&format!("SELECT id, version FROM \"{big}\" ORDER BY id"))
            } else {
                let t = read_delta(&s.path("big"), &[]);
                let mut v: Vec<String> = t["rows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| format!("{}|{}", r["id"].as_str().unwrap(), r["version"].as_str().unwrap()))
                    .collect();
                v.sort();
                v
            }
        };
        let counts_rows = || -> Vec<String> {
            if kind == "postgres" {
                count_rows(&pg, &counts)
            } else {
                let t = read_delta(&s.path("counts"), &[]);
                let mut v: Vec<String> =
                    t["rows"].as_array().unwrap().iter().map(|r| format!("{}|{}", r["batch_id"], r["rows"])).collect();
                v.sort();
                v
            }
        };
        let plugin = s.path("tagger.wasm");
        let deploy = |version: &Path| {
            std::fs::copy(version, s.path("deploy.tmp")).unwrap();
            std::fs::rename(s.path("deploy.tmp"), &plugin).unwrap();
        };
        deploy(&v1);
        let ops = format!("[[operator]]\nkind = \"map\"\nplugin = \"{}\"\n", plugin.display());
        let job = job(&s, FOREACH_BATCH, &ops, &outputs);
        s.write("in/a.json", "{\"id\":\"a1\",\"amount\":50.0}\n{\"id\":\"a2\",\"amount\":150.0}\n");
        run_ok(&job);
        // A crash after the outputs committed batch 0 and before the checkpoint did.
        std::fs::remove_file(s.path("ckpt/commits/0")).unwrap();
        deploy(&v2);
        s.write("in/b.json", "{\"id\":\"b1\",\"amount\":100.0}\n");
        let out = run_ok(&job);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("no output has committed it"), "{kind}: {err}");
        assert_eq!(big_rows(), ["a2|v1", "b1|v2"], "{kind}: batch 0 replayed with v1 (and skipped), batch 1 ran v2");
        // Batch 2 fails with the broken version; fixed, it runs with the fix: no output has it.
        deploy(&broken);
        s.write("in/c.json", "{\"id\":\"c1\",\"amount\":100.0}\n");
        run_err(&job);
        deploy(&v2);
        let out = run_ok(&job);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(
                "batch 2: no output has committed it, so it runs again with the job's current plugin versions"
            ),
            "{kind}: {err}"
        );
        assert_eq!(big_rows(), ["a2|v1", "b1|v2", "c1|v2"], "{kind}");
        assert_eq!(counts_rows(), ["0|2", "1|1", "2|1"], "{kind}");
    }
}

/// foreach: each call's emits are written when the call returns, as write `batch × 1,000,000 +
/// call` of each output (a delta `txn` version, a progress-table batch id); a replay cut into
/// the same calls writes nothing twice, and otherwise at least once (documented).
#[test]
fn foreach_writes_each_call_to_delta_and_postgres_outputs() {
    let Some(pg) = pg() else { return };
    let s = Scratch::new();
    write_input(&s);
    let (small, counts) = (table("each_small"), table("each_counts"));
    let outputs = [delta("big", "big"), postgres(&pg, "small", &small, ""), postgres(&pg, "counts", &counts, "")];
    let job = job(&s, "format = \"foreach\"\nrows_per_call = 2", "", &outputs);
    run_ok(&job);
    let q = query_id(&s);
    assert_eq!(count_rows(&pg, &counts), ["0|1", "0|2", "1|2"], "batch 0 in calls of 2 and 1 rows, batch 1 in one");
    assert_eq!(txn_versions(&s.path("big"), &format!("{q}-big")), [0, 1, 1_000_000]);
    assert_eq!(delta_rows(&s.path("big")), BIG);
    assert_eq!(small_rows(&pg, &small), SMALL);
    assert_eq!(
        progress_rows(&pg, &q),
        [format!("{q}-counts|public.{counts}|1000000"), format!("{q}-small|public.{small}|1000000")]
    );
    std::fs::remove_file(s.path("ckpt/commits/1")).unwrap();
    run_ok(&job);
    assert_eq!(count_rows(&pg, &counts), ["0|1", "0|2", "1|2"]);
    assert_eq!(txn_versions(&s.path("big"), &format!("{q}-big")), [0, 1, 1_000_000]);
}

/// A postgres output under on_bad_record = "dead_letter": the rows its table refuses go to the
/// job's dead-letter directory, in a directory of the output's own; the others land once.
#[test]
fn a_postgres_outputs_refused_rows_go_to_its_own_dead_letters() {
    let Some(pg) = pg() else { return };
    let s = Scratch::new();
    let (small, counts) = (table("dead_small"), table("dead_counts"));
    pg.sql(&format!(
        "CREATE TABLE \"{small}\" (id text PRIMARY KEY, amount double precision CONSTRAINT amount_not_negative CHECK (amount >= 0))"
    ));
    s.write(
        "in/a.json",
        "{\"id\":\"a1\",\"amount\":50.0}\n{\"id\":\"neg\",\"amount\":-5.0}\n{\"id\":\"a3\",\"amount\":1.0}\n",
    );
    let outputs = [
        delta("big", "big"),
        postgres(&pg, "small", &small, "on_bad_record = \"dead_letter\""),
        postgres(&pg, "counts", &counts, ""),
    ];
    let job = job(&s, FOREACH_BATCH, "", &outputs);
    run_ok(&job);
    assert_eq!(small_rows(&pg, &small), ["a1|50", "a3|1"]);
    let dead: Vec<Value> = std::fs::read_to_string(s.path("ckpt/dead_letter/output-small/batch-0.sink.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["raw"], "{\"amount\":\"-5.0\",\"id\":\"neg\"}");
    assert_eq!(dead[0]["origin"], format!("postgres table public.{small}"));
    assert!(dead[0]["reason"].as_str().unwrap().contains("amount_not_negative"), "{}", dead[0]);
    assert_eq!(progress(&s.path("ckpt"))[0]["numDeadLetterRows"], 1);
    assert_eq!(count_rows(&pg, &counts), ["0|3"]);
}

/// A hot swap of the map plugin before the sink plugin adds a column to what the plugin emits:
/// the delta output evolves its table (`merge_schema = true`), the postgres output adds the
/// column to its table (`create_table = true`), in the running process; rows before the swap
/// have it null.
#[test]
fn a_hot_swap_that_adds_a_column_widens_the_delta_and_postgres_outputs() {
    let Some(pg) = pg() else { return };
    let s = Scratch::new();
    let (small, counts) = (table("wide_small"), table("wide_counts"));
    let (v1, wide) = (crate::hot_swap::tagger("v1"), crate::hot_swap::tagger("wide"));
    let outputs = [
        format!("{}merge_schema = true\n", delta("big", "big")),
        postgres(&pg, "small", &small, ""),
        postgres(&pg, "counts", &counts, ""),
    ];
    let ops = format!("[[operator]]\nkind = \"map\"\nplugin = \"{}\"\n", v1.display());
    let text = std::fs::read_to_string(job(&s, FOREACH_BATCH, &ops, &outputs)).unwrap();
    let text =
        text.replace("trigger = { available_now = true }", "trigger = { processing_time = \"50 milliseconds\" }");
    let job = s.job(&format!("[admin]\nlisten = \"127.0.0.1:0\"\nprobation_batches = 3\n{text}"));
    s.write("in/a.json", "{\"id\":\"a1\",\"amount\":50.0}\n{\"id\":\"a2\",\"amount\":150.0}\n");
    let (child, addr) = crate::hot_swap::start(&s, &job);
    crate::hot_swap::wait_until("batch 0", || s.path("ckpt/commits/0").exists());
    let swapped = crate::hot_swap::swap(&addr, &wide);
    assert_eq!(swapped["event"], "swap", "{swapped}");
    s.write("in/b.json", "{\"id\":\"b1\",\"amount\":100.0}\n{\"id\":\"b2\",\"amount\":5.0}\n");
    crate::hot_swap::wait_until("batch 1", || s.path("ckpt/commits/1").exists());
    crate::hot_swap::stop(child);
    let t = read_delta(&s.path("big"), &[]);
    assert_eq!(
        t["schema"],
        serde_json::json!([
            ["id", "string", true],
            ["amount", "double", true],
            ["version", "string", true],
            ["extra", "long", true]
        ])
    );
    assert_eq!(
        delta_rows(&s.path("big")),
        [
            "{\"amount\":100.0,\"extra\":0,\"id\":\"b1\",\"version\":\"wide\"}",
            "{\"amount\":150.0,\"extra\":null,\"id\":\"a2\",\"version\":\"v1\"}"
        ]
    );
    assert_eq!(
        pg.lines(&format!("SELECT id, amount, version, extra FROM \"{small}\" ORDER BY id")),
        ["a1|50|v1|", "b2|5|wide|1"]
    );
    assert_eq!(count_rows(&pg, &counts), ["0|2", "1|2"]);
}

/// SIGKILL at random moments, then restarts until the job finishes: the delta output and the
/// two postgres outputs hold every batch exactly once (rows, `txn` versions, counts per batch),
/// however the kills fall between the outputs' commits and the checkpoint's.
#[test]
fn sigkill_at_random_moments_delta_and_postgres_outputs_hold_every_batch_once() {
    use rand::SeedableRng;
    let Some(pg) = pg() else { return };
    const FILES: usize = 24;
    const ROWS: usize = 40;
    let write = |s: &Scratch| {
        for f in 0..FILES {
            let text: String = (0..ROWS)
                .map(|r| format!("{{\"id\":\"f{f:02}-{r:02}\",\"amount\":{}.0}}\n", (f * ROWS + r * 7) % 200))
                .collect();
            s.write(&format!("in/f{f:02}.json"), &text);
        }
    };
    let (mut big, mut small): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for f in 0..FILES {
        for r in 0..ROWS {
            let id = format!("f{f:02}-{r:02}");
            if (f * ROWS + r * 7) % 200 >= 100 {
                big.push(id);
            } else {
                small.push(id);
            }
        }
    }
    big.sort();
    let counts: Vec<String> = (0..FILES).map(|f| format!("{f}|{ROWS}")).collect();
    let make = |s: &Scratch, tag: &str| {
        let (small_t, counts_t) = (table(&format!("{tag}_small")), table(&format!("{tag}_counts")));
        let outputs =
            [postgres(&pg, "small", &small_t, ""), delta("big", "big"), postgres(&pg, "counts", &counts_t, "")];
        (job(s, FOREACH_BATCH, "", &outputs), small_t, counts_t)
    };
    // An unkilled run, for its duration.
    let reference = Scratch::new();
    write(&reference);
    let started = Instant::now();
    run_ok(&make(&reference, "ref").0);
    let full_run = started.elapsed();

    let base_seed = crash_seed();
    for round in 0..3u64 {
        let seed = base_seed.wrapping_add(round);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let s = Scratch::new();
        write(&s);
        let (job, small_t, counts_t) = make(&s, "kill");
        let kills = run_under_random_kills(&job, &mut rng, full_run, seed);
        let q = query_id(&s);
        let mut got_big: Vec<String> = read_delta(&s.path("big"), &[])["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        got_big.sort();
        let again = format!("rerun with WEIR_CRASH_SEED={seed} ({kills} kills)");
        assert_eq!(got_big, big, "{again}");
        assert_eq!(txn_versions(&s.path("big"), &format!("{q}-big")), (0..FILES as i64).collect::<Vec<_>>(), "{again}");
        assert_eq!(pg.lines(&format!("SELECT id FROM \"{small_t}\" ORDER BY id")), small, "{again}");
        assert_eq!(count_rows(&pg, &counts_t), counts, "{again}");
        eprintln!("plugin outputs crash round {round}: seed {seed}, {kills} kills, every batch once");
    }
}

/// New columns that the output may not add: the batch fails naming the output and the column
/// (delta without merge_schema; postgres without create_table, its table made beforehand), and
/// the outputs after it do not get the batch (the restart replays it).
#[test]
fn new_columns_an_output_may_not_add_fail_the_batch_naming_output_and_column() {
    let Some(pg) = pg() else { return };
    let (v1, wide) = (crate::hot_swap::tagger("v1"), crate::hot_swap::tagger("wide"));
    for kind in ["delta", "postgres"] {
        let s = Scratch::new();
        let (big, counts) = (table("narrow_big"), table("narrow_counts"));
        pg.sql(&format!("CREATE TABLE \"{big}\" (id text, amount double precision, version text)"));
        let big_output = if kind == "delta" {
            delta("big", "big")
        } else {
            postgres(&pg, "big", &big, "").replace("create_table = true\n", "")
        };
        let outputs = [big_output, delta("small", "small"), postgres(&pg, "counts", &counts, "")];
        let plugin = s.path("tagger.wasm");
        std::fs::copy(&v1, &plugin).unwrap();
        let ops = format!("[[operator]]\nkind = \"map\"\nplugin = \"{}\"\n", plugin.display());
        let job = job(&s, FOREACH_BATCH, &ops, &outputs);
        s.write("in/a.json", "{\"id\":\"a1\",\"amount\":150.0}\n");
        run_ok(&job);
        std::fs::copy(&wide, &plugin).unwrap();
        s.write("in/b.json", "{\"id\":\"b1\",\"amount\":150.0}\n");
        let err = run_err(&job);
        let want = if kind == "delta" {
            "output \"big\": the job's output has columns that the Delta table"
        } else {
            "has no column `extra` (bigint) of the output: add them, or set create_table = true in the [[sink.output]] named \"big\" to have them added"
        };
        assert!(err.contains("batch 1") && err.contains(want), "{kind}: {err}");
        if kind == "delta" {
            assert!(
                err.contains("does not: `extra` (long); set merge_schema = true in the [[sink.output]] named \"big\" to add them"),
                "{err}"
            );
        }
        assert!(!s.path("ckpt/commits/1").exists());
        assert_eq!(count_rows(&pg, &counts), ["0|1"], "{kind}: nothing of batch 1 in the outputs after big");
    }
}
