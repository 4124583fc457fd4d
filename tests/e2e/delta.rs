//! The Delta Lake sink, read back by PyPI's `deltalake` (delta-rs: a reader no one here wrote,
//! tests/delta/read_table.py): rows, schema, partition values, `txn` versions and commit
//! history, after appends across a restart, partitioning, complete mode, MERGE, a hot swap that
//! adds a column, another writer's commit, a crash before the commit and SIGKILL at random.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rand::SeedableRng;
use serde_json::{json, Value};

use crate::common::*;
use crate::hot_swap::{start, stop, swap, tagger, wait_until};

fn python() -> PathBuf {
    repo().join(".spark-venv/bin/python")
}

/// The table as deltalake reads it (see tests/delta/read_table.py), with the `txn` of `apps`.
fn read_delta(table: &Path, apps: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(repo().join("tests/delta/read_table.py"))
        .arg(table)
        .args(apps)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/test.sh makes .spark-venv with deltalake)", python().display()));
    assert!(
        out.status.success(),
        "deltalake could not read {}:\n{}\n(scripts/test.sh installs deltalake into .spark-venv)",
        table.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn query_id(s: &Scratch) -> String {
    let v: Value = serde_json::from_slice(&std::fs::read(s.path("ckpt/metadata")).unwrap()).unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// Input file `n` (in/fNNN.json) with rows (id, k, v).
fn input(s: &Scratch, n: usize, rows: &[(i64, &str, f64)]) {
    let text: String = rows.iter().map(|(id, k, v)| format!("{{\"id\":{id},\"k\":\"{k}\",\"v\":{v:?}}}\n")).collect();
    s.write(&format!("in/f{n:03}.json"), &text);
}

fn job(s: &Scratch, sink: &str, operators: &str) -> PathBuf {
    s.job(&format!(
        r#"
[source]
format = "json"
path = "{{dir}}/in"
schema = "id bigint, k string, v double"
max_files_per_trigger = 1
{operators}
[sink]
format = "delta"
path = "{{dir}}/out"
checkpoint = "{{dir}}/ckpt"
trigger = {{ available_now = true }}
{sink}
"#
    ))
}

/// The rows (id, k, v) of a table read by deltalake, sorted.
fn triples(t: &Value) -> Vec<(i64, String, f64)> {
    let mut v: Vec<(i64, String, f64)> = t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_i64().unwrap(), r["k"].as_str().unwrap().to_string(), r["v"].as_f64().unwrap()))
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

fn t3(rows: &[(i64, &str, f64)]) -> Vec<(i64, String, f64)> {
    let mut v: Vec<_> = rows.iter().map(|(i, k, x)| (*i, k.to_string(), *x)).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v
}

/// The `txn` versions of `app` in the table's commit files, in version order: each batch once.
pub(crate) fn txn_versions(table: &Path, app: &str) -> Vec<i64> {
    let mut names: Vec<String> = std::fs::read_dir(table.join("_delta_log"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 25 && n.ends_with(".json"))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for n in names {
        for line in std::fs::read_to_string(table.join("_delta_log").join(&n)).unwrap().lines() {
            let a: Value = serde_json::from_str(line).unwrap();
            if a["txn"]["appId"] == app {
                out.push(a["txn"]["version"].as_i64().unwrap());
            }
        }
    }
    out
}

#[test]
fn delta_appends_each_batch_as_a_commit_with_its_txn_across_a_restart() {
    let s = Scratch::new();
    input(&s, 0, &[(1, "a", 1.0), (2, "b", 2.5)]);
    input(&s, 1, &[(3, "a", 3.0)]);
    let job = job(&s, "", "");
    run_ok(&job);
    input(&s, 2, &[(4, "c", -1.0)]);
    input(&s, 3, &[(5, "b", 0.0), (6, "a", 1e10)]);
    run_ok(&job);
    let q = query_id(&s);
    let t = read_delta(&s.path("out"), &[&q, "another-query"]);
    assert_eq!(t["version"], 3);
    assert_eq!((t["txn"][&q].as_i64(), t["txn"]["another-query"].is_null()), (Some(3), true));
    assert_eq!(t["schema"], json!([["id", "long", true], ["k", "string", true], ["v", "double", true]]));
    assert_eq!(t["partition_columns"], json!([]));
    assert_eq!(
        triples(&t),
        t3(&[(1, "a", 1.0), (2, "b", 2.5), (3, "a", 3.0), (4, "c", -1.0), (5, "b", 0.0), (6, "a", 1e10)])
    );
    assert_eq!(
        t["operations"],
        json!(["STREAMING UPDATE", "STREAMING UPDATE", "STREAMING UPDATE", "STREAMING UPDATE"])
    );
    let records: Vec<i64> = t["files"].as_array().unwrap().iter().map(|f| f["num_records"].as_i64().unwrap()).collect();
    assert_eq!(records.iter().sum::<i64>(), 6);
    assert_eq!(txn_versions(&s.path("out"), &q), [0, 1, 2, 3]);
    // Nothing new: a third run commits nothing.
    run_ok(&job);
    assert_eq!(read_delta(&s.path("out"), &[])["version"], 3);
}

#[test]
fn delta_partitioned_table_has_hive_directories_and_partition_values() {
    let s = Scratch::new();
    input(&s, 0, &[(1, "a", 1.0), (2, "b", 2.0), (3, "a", 3.0)]);
    input(&s, 1, &[(4, "b/c", 4.0)]);
    run_ok(&job(&s, "partition_by = [\"k\"]", ""));
    let t = read_delta(&s.path("out"), &[]);
    assert_eq!(t["partition_columns"], json!(["k"]));
    assert_eq!(
        t["files"],
        json!([
            {"partition": {"k": "a"}, "num_records": 2},
            {"partition": {"k": "b"}, "num_records": 1},
            {"partition": {"k": "b/c"}, "num_records": 1},
        ])
    );
    assert_eq!(triples(&t), t3(&[(1, "a", 1.0), (2, "b", 2.0), (3, "a", 3.0), (4, "b/c", 4.0)]));
    assert!(s.path("out/k=a").is_dir() && s.path("out/k=b%2Fc").is_dir());
}

#[test]
fn delta_complete_mode_holds_the_latest_result_table() {
    let s = Scratch::new();
    input(&s, 0, &[(1, "a", 1.0), (2, "b", 2.0)]);
    input(&s, 1, &[(3, "a", 3.0)]);
    input(&s, 2, &[(4, "c", 4.0), (5, "a", 5.0)]);
    let ops = "[[operator]]\nkind = \"aggregate\"\ngroup_by = [\"k\"]\naggregates = [{ fn = \"count\", as = \"n\" }]\n";
    run_ok(&job(&s, "output_mode = \"complete\"", ops));
    let q = query_id(&s);
    let t = read_delta(&s.path("out"), &[&q]);
    let mut rows: Vec<(String, i64)> = t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["k"].as_str().unwrap().to_string(), r["n"].as_i64().unwrap()))
        .collect();
    rows.sort();
    assert_eq!(rows, [("a".to_string(), 3), ("b".to_string(), 1), ("c".to_string(), 1)]);
    assert_eq!(t["txn"][&q], 2);
    assert_eq!(t["files"].as_array().unwrap().len(), 1, "only the last batch's file is live");
}

#[test]
fn delta_merge_on_upserts_each_batch_the_last_row_of_a_key_winning() {
    let s = Scratch::new();
    input(&s, 0, &[(1, "a", 1.0), (2, "b", 2.0)]);
    input(&s, 1, &[(2, "b", 20.0), (3, "c", 3.0)]);
    input(&s, 2, &[(1, "a", 10.0), (4, "d", 4.0), (1, "a", 11.0)]);
    run_ok(&job(&s, "merge_on = [\"id\"]", ""));
    let q = query_id(&s);
    let t = read_delta(&s.path("out"), &[&q]);
    assert_eq!(triples(&t), t3(&[(1, "a", 11.0), (2, "b", 20.0), (3, "c", 3.0), (4, "d", 4.0)]));
    assert_eq!(t["txn"][&q], 2);
    assert_eq!(t["operations"], json!(["MERGE", "MERGE", "MERGE"]));
    // A restart with new input merges on.
    input(&s, 3, &[(3, "c", 30.0)]);
    run_ok(&job(&s, "merge_on = [\"id\"]", ""));
    let t = read_delta(&s.path("out"), &[&q]);
    assert_eq!(triples(&t), t3(&[(1, "a", 11.0), (2, "b", 20.0), (3, "c", 30.0), (4, "d", 4.0)]));
}

/// The hot-swap job of tests/e2e/hot_swap.rs (rate source, tagger) into a Delta table.
fn swap_job(s: &Scratch, first: &Path, merge_schema: bool) -> PathBuf {
    s.job(&format!(
        r#"
[admin]
listen = "127.0.0.1:0"
probation_batches = 3

[source]
format = "rate"
rows_per_second = 2000

[[operator]]
kind = "map"
plugin = "{}"

[sink]
format = "delta"
path = "{{dir}}/out"
checkpoint = "{{dir}}/ckpt"
merge_schema = {merge_schema}
trigger = {{ processing_time = "50 milliseconds" }}
"#,
        first.display()
    ))
}

fn commits(s: &Scratch) -> usize {
    std::fs::read_dir(s.path("out/_delta_log"))
        .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().len() == 25).count())
        .unwrap_or(0)
}

#[test]
fn delta_table_schema_evolves_through_a_hot_swap_that_adds_a_column() {
    let s = Scratch::new();
    let (v1, wide) = (tagger("v1"), tagger("wide"));
    let (child, addr) = start(&s, &swap_job(&s, &v1, true));
    wait_until("3 commits", || commits(&s) >= 3);
    let from = swap(&addr, &wide)["first_batch"].as_i64().unwrap();
    let at = commits(&s);
    wait_until("3 more commits", || commits(&s) >= at + 3);
    stop(child);
    let q = query_id(&s);
    let t = read_delta(&s.path("out"), &[&q]);
    assert_eq!(
        t["schema"],
        json!([
            ["timestamp", "timestamp", true],
            ["value", "long", true],
            ["version", "string", true],
            ["extra", "long", true]
        ])
    );
    let mut rows: Vec<(i64, String, Option<i64>)> = t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["value"].as_i64().unwrap(), r["version"].as_str().unwrap().to_string(), r["extra"].as_i64()))
        .collect();
    rows.sort();
    for (i, (value, version, extra)) in rows.iter().enumerate() {
        assert_eq!(*value, i as i64, "row {i}: a row lost or repeated");
        assert_eq!(extra.is_some(), version == "wide", "row {i}: {version} {extra:?}");
    }
    assert!(rows.iter().any(|r| r.1 == "v1") && rows.iter().any(|r| r.1 == "wide"));
    let last = t["txn"][&q].as_i64().unwrap();
    assert!(last >= from, "{last} {from}");
    assert_eq!(txn_versions(&s.path("out"), &q), (0..=last).collect::<Vec<_>>());
}

#[test]
fn delta_without_merge_schema_a_swap_that_adds_a_column_is_refused_naming_it() {
    let s = Scratch::new();
    let (v1, wide) = (tagger("v1"), tagger("wide"));
    let (child, addr) = start(&s, &swap_job(&s, &v1, false));
    wait_until("2 commits", || commits(&s) >= 2);
    let out = weir().args(["plugin", "swap", "--job", &addr, "--operator", "0"]).arg(&wide).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the sink cannot take the new columns: the job's output has columns that the Delta table")
            && err.contains("does not: `extra` (long); set merge_schema = true in [sink]"),
        "{err}"
    );
    let at = commits(&s);
    wait_until("2 more commits", || commits(&s) >= at + 2);
    stop(child);
    let t = read_delta(&s.path("out"), &[]);
    assert_eq!(t["schema"].as_array().unwrap().len(), 3, "{}", t["schema"]);
}

#[test]
fn delta_another_writers_commit_at_the_next_version_is_retried_on_a_later_one() {
    let s = Scratch::new();
    for n in 0..3 {
        input(&s, n, &[(n as i64, "a", n as f64)]);
    }
    let out = weir()
        .args(["run", "--quiet"])
        .arg(job(&s, "", ""))
        .env("WEIR_TEST_DELTA_OTHER_WRITER_BEFORE", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("version 1 was committed by another writer first; re-reading the log and committing batch 1 on a later version"), "{err}");
    let q = query_id(&s);
    let t = read_delta(&s.path("out"), &[&q, "weir-test-other-writer"]);
    assert_eq!(t["version"], 3);
    assert_eq!((t["txn"][&q].as_i64(), t["txn"]["weir-test-other-writer"].as_i64()), (Some(2), Some(1)));
    assert_eq!(t["operations"], json!(["STREAMING UPDATE", "WRITE", "STREAMING UPDATE", "STREAMING UPDATE"]));
    assert_eq!(triples(&t), t3(&[(0, "a", 0.0), (1, "a", 1.0), (2, "a", 2.0)]));
}

#[test]
fn delta_a_crash_before_the_commit_leaves_nothing_visible_and_the_replay_commits_once() {
    let s = Scratch::new();
    for n in 0..3 {
        input(&s, n, &[(n as i64, "a", n as f64)]);
    }
    let job = job(&s, "", "");
    let out = weir().args(["run", "--quiet"]).arg(&job).env("WEIR_TEST_CRASH_BEFORE_COMMIT", "1").output().unwrap();
    assert!(!out.status.success());
    let q = query_id(&s);
    let t = read_delta(&s.path("out"), &[&q]);
    assert_eq!((t["version"].as_i64(), t["txn"][&q].as_i64()), (Some(0), Some(0)));
    assert_eq!(triples(&t), t3(&[(0, "a", 0.0)]), "the crashed batch's file is in no commit");
    let data_files = || {
        std::fs::read_dir(s.path("out"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".parquet"))
            .count()
    };
    assert_eq!(data_files(), 2, "batch 0's and the crashed attempt's");
    run_ok(&job);
    let t = read_delta(&s.path("out"), &[&q]);
    assert_eq!(triples(&t), t3(&[(0, "a", 0.0), (1, "a", 1.0), (2, "a", 2.0)]));
    assert_eq!(txn_versions(&s.path("out"), &q), [0, 1, 2]);
    assert_eq!(data_files(), 3, "the crashed attempt's file was deleted when its batch committed");
}

#[test]
fn delta_checkpoint_every_ten_commits_is_read_by_deltalake() {
    let s = Scratch::new();
    for n in 0..12 {
        input(&s, n, &[(n as i64, "k", 0.5)]);
    }
    run_ok(&job(&s, "partition_by = [\"k\"]", ""));
    assert!(s.path("out/_delta_log/00000000000000000010.checkpoint.parquet").exists());
    let q = query_id(&s);
    let before = read_delta(&s.path("out"), &[&q]);
    // Without the commits the checkpoint covers, the table reads the same from it.
    for v in 0..=10 {
        std::fs::remove_file(s.path(&format!("out/_delta_log/{v:020}.json"))).unwrap();
    }
    let after = read_delta(&s.path("out"), &[&q]);
    assert_eq!(after["version"], 11);
    assert_eq!(after["txn"][&q], 11);
    assert_eq!(after["rows"], before["rows"]);
    assert_eq!(after["files"], before["files"]);
    assert_eq!(after["rows"].as_array().unwrap().len(), 12);
    // weir restarts from the checkpoint too.
    input(&s, 12, &[(12, "k", 0.5)]);
    run_ok(&job(&s, "partition_by = [\"k\"]", ""));
    assert_eq!(read_delta(&s.path("out"), &[&q])["txn"][&q], 12);
}

/// SIGKILL at random moments, restarts until done: the table deltalake reads equals that of a
/// run never killed, and each batch's `txn` is in exactly one commit.
fn kill_and_restart(sink: &str, rounds: u64) {
    let write = |s: &Scratch| {
        for n in 0..16 {
            let rows: Vec<(i64, &str, f64)> = (0..200)
                .map(|r| (((n * 200 + r) % 900) as i64, ["a", "b", "c"][r % 3], (n * 1000 + r) as f64))
                .collect();
            input(s, n, &rows);
        }
    };
    let reference = Scratch::new();
    write(&reference);
    let started = Instant::now();
    run_ok(&job(&reference, sink, ""));
    let full_run = started.elapsed();
    let expected = triples(&read_delta(&reference.path("out"), &[]));
    let base_seed = crash_seed();
    for round in 0..rounds {
        let seed = base_seed.wrapping_add(round);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let s = Scratch::new();
        write(&s);
        let job = job(&s, sink, "");
        let kills = run_under_random_kills(&job, &mut rng, full_run, seed);
        let q = query_id(&s);
        let t = read_delta(&s.path("out"), &[&q]);
        assert!(
            triples(&t) == expected,
            "seed {seed} ({kills} kills): the table differs from the unkilled run's; rerun with WEIR_CRASH_SEED={seed}"
        );
        assert_eq!(t["txn"][&q], 15, "seed {seed}");
        assert_eq!(
            txn_versions(&s.path("out"), &q),
            (0..16).collect::<Vec<_>>(),
            "seed {seed}: a batch committed twice or never"
        );
        eprintln!("delta crash round {round}: seed {seed}, {kills} kills, {} rows identical", expected.len());
    }
}

#[test]
fn delta_sigkill_at_random_moments_loses_and_repeats_nothing() {
    kill_and_restart("partition_by = [\"k\"]", 3);
}

#[test]
fn delta_sigkill_at_random_moments_during_merges_loses_and_repeats_nothing() {
    kill_and_restart("merge_on = [\"id\"]", 2);
}

/// A table deltalake created and checkpointed: weir starts from its checkpoint, appends, then
/// MERGEs into files delta-rs wrote (rewriting those that hold a key).
#[test]
fn delta_a_table_deltalake_wrote_and_checkpointed_is_appended_to_and_merged_into() {
    let s = Scratch::new();
    let script = r#"
import os, sys, pyarrow as pa
from deltalake import write_deltalake, DeltaTable
t = pa.table({"id": pa.array([1, 2], pa.int64()), "k": ["a", "b"], "v": [1.0, 2.0]})
write_deltalake(sys.argv[1], t)
write_deltalake(sys.argv[1], t, mode="append")
DeltaTable(sys.argv[1]).create_checkpoint()
os._exit(0)
"#;
    let out = Command::new(python()).arg("-c").arg(script).arg(s.path("out")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(s.path("out/_delta_log/00000000000000000001.checkpoint.parquet").exists());
    input(&s, 0, &[(3, "c", 3.0)]);
    run_ok(&job(&s, "", ""));
    let t = read_delta(&s.path("out"), &[]);
    assert_eq!(t["operations"], json!(["WRITE", "WRITE", "STREAMING UPDATE"]));
    assert_eq!(triples(&t), t3(&[(1, "a", 1.0), (1, "a", 1.0), (2, "b", 2.0), (2, "b", 2.0), (3, "c", 3.0)]));
    // A MERGE on id (another query: a new checkpoint) replaces both rows of id 1.
    input(&s, 1, &[(1, "new", 10.0)]);
    std::fs::remove_dir_all(s.path("ckpt")).unwrap();
    std::fs::remove_file(s.path("in/f000.json")).unwrap();
    run_ok(&job(&s, "merge_on = [\"id\"]", ""));
    let t = read_delta(&s.path("out"), &[]);
    assert_eq!(triples(&t), t3(&[(1, "new", 10.0), (2, "b", 2.0), (2, "b", 2.0), (3, "c", 3.0)]));
    assert_eq!(t["operations"], json!(["WRITE", "WRITE", "STREAMING UPDATE", "MERGE"]));
}

/// Spark's pattern for an aggregation in update mode into Delta (a MERGE on the group key in
/// foreachBatch): each batch's updated counts replace the rows of their keys.
#[test]
fn delta_update_mode_with_merge_on_keeps_the_latest_count_of_each_key() {
    let s = Scratch::new();
    input(&s, 0, &[(1, "a", 1.0), (2, "b", 2.0)]);
    input(&s, 1, &[(3, "a", 3.0)]);
    input(&s, 2, &[(4, "c", 4.0), (5, "a", 5.0)]);
    let ops = "[[operator]]\nkind = \"aggregate\"\ngroup_by = [\"k\"]\naggregates = [{ fn = \"count\", as = \"n\" }, { fn = \"sum\", column = \"v\", as = \"total\" }]\n";
    run_ok(&job(&s, "output_mode = \"update\"\nmerge_on = [\"k\"]", ops));
    let q = query_id(&s);
    let t = read_delta(&s.path("out"), &[&q]);
    let mut rows: Vec<(String, i64, f64)> = t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["k"].as_str().unwrap().to_string(), r["n"].as_i64().unwrap(), r["total"].as_f64().unwrap()))
        .collect();
    rows.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(rows, [("a".to_string(), 3, 9.0), ("b".to_string(), 1, 2.0), ("c".to_string(), 1, 4.0)]);
    assert_eq!(t["txn"][&q], 2);
    assert_eq!(t["operations"], json!(["MERGE", "MERGE", "MERGE"]));
}

/// Two jobs (two queries) append to one table at the same time: their commits race for the
/// same versions; every row of both lands once, and each query's batches are each in one commit.
#[test]
fn delta_two_jobs_writing_one_table_at_once_both_commit_every_batch_once() {
    let s = Scratch::new();
    let mut jobs = Vec::new();
    for j in 0..2 {
        for n in 0..12 {
            let rows: Vec<(i64, &str, f64)> = (0..50).map(|r| ((j * 10_000 + n * 100 + r) as i64, "k", 0.0)).collect();
            let text: String =
                rows.iter().map(|(id, k, v)| format!("{{\"id\":{id},\"k\":\"{k}\",\"v\":{v:?}}}\n")).collect();
            s.write(&format!("in{j}/f{n:03}.json"), &text);
        }
        jobs.push(s.job(&format!(
            r#"
[source]
format = "json"
path = "{{dir}}/in{j}"
schema = "id bigint, k string, v double"
max_files_per_trigger = 1
[sink]
format = "delta"
path = "{{dir}}/out"
checkpoint = "{{dir}}/ckpt{j}"
checkpoint_interval = 5
trigger = {{ available_now = true }}
"#
        )));
        // Scratch::job writes job.toml: keep each under its own name.
        let own = s.path(&format!("job{j}.toml"));
        std::fs::rename(jobs.last().unwrap(), &own).unwrap();
        *jobs.last_mut().unwrap() = own;
    }
    let children: Vec<_> = jobs
        .iter()
        .map(|j| weir().args(["run", "--quiet"]).arg(j).stderr(std::process::Stdio::piped()).spawn().unwrap())
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(!err.contains("deleted"), "no file of a commit in flight is deleted: {err}");
    }
    let id = |j: usize| {
        let v: Value = serde_json::from_slice(&std::fs::read(s.path(&format!("ckpt{j}/metadata"))).unwrap()).unwrap();
        v["id"].as_str().unwrap().to_string()
    };
    let (q0, q1) = (id(0), id(1));
    let t = read_delta(&s.path("out"), &[&q0, &q1]);
    assert_eq!((t["txn"][&q0].as_i64(), t["txn"][&q1].as_i64()), (Some(11), Some(11)));
    assert_eq!(t["version"], 23, "24 commits, none lost or doubled");
    let mut ids: Vec<i64> = t["rows"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    ids.sort();
    let want: Vec<i64> =
        (0..2).flat_map(|j| (0..12).flat_map(move |n| (0..50).map(move |r| j * 10_000 + n * 100 + r))).collect();
    assert_eq!(ids, want);
    assert_eq!(txn_versions(&s.path("out"), &q0), (0..12).collect::<Vec<_>>());
    assert_eq!(txn_versions(&s.path("out"), &q1), (0..12).collect::<Vec<_>>());
}
