//! Joins, end to end, against outputs real Spark 4.3 produced on the same input
//! (tests/joins/*/expected.txt, made by bench/spark_crosscheck.py; see tests/joins/regen.sh).
//! Each scenario's streaming sources get one file per batch (max_files_per_trigger = 1), so
//! batch k of weir reads what Spark's micro-batch k read; the output of every batch is compared
//! row for row (rows of a batch in any order, columns in order).

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;

/// A row as (column, value) pairs in column order, null columns left out; timestamps as Spark
/// prints them.
type Row = Vec<(String, serde_json::Value)>;

/// `2026-01-01T00:01:00.000Z` (weir's JSON) → `2026-01-01 00:01:00` (Spark's printout).
fn spark_time(v: &serde_json::Value) -> serde_json::Value {
    match v.as_str() {
        Some(t) if t.len() >= 20 && t.as_bytes()[10] == b'T' && t.ends_with('Z') => {
            let t = t.trim_end_matches('Z').replacen('T', " ", 1);
            let t = t.trim_end_matches(".000").to_string();
            serde_json::Value::String(t)
        }
        _ => v.clone(),
    }
}

fn parse_row(line: &str) -> Row {
    // serde_json's preserve_order is not on: read the object's keys in text order by hand.
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    let obj = v.as_object().unwrap();
    let mut keys: Vec<(usize, &String)> = obj.keys().map(|k| (line.find(&format!("\"{k}\":")).unwrap(), k)).collect();
    keys.sort();
    // weir's JSON files, as Spark's JSON writer, leave null columns out.
    keys.into_iter().filter(|(_, k)| !obj[*k].is_null()).map(|(_, k)| (k.clone(), spark_time(&obj[k]))).collect()
}

/// Spark's rows per batch from an expected.txt.
fn expected_batches(text: &str) -> BTreeMap<u64, Vec<Row>> {
    let mut out: BTreeMap<u64, Vec<Row>> = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("batch ") {
            let id: u64 = id.trim().parse().unwrap();
            out.entry(id).or_default();
            current = Some(id);
        } else if line.starts_with('{') {
            out.get_mut(&current.expect("a row after a batch line")).unwrap().push(parse_row(line));
        }
    }
    out
}

/// weir's committed rows per batch (json sink files `part-<batch>-...`).
fn weir_batches(out_dir: &Path) -> BTreeMap<u64, Vec<Row>> {
    let mut out: BTreeMap<u64, Vec<Row>> = BTreeMap::new();
    for f in committed_files(out_dir) {
        let p = if f.is_absolute() { f.clone() } else { out_dir.join(&f) };
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        let id: u64 = name.strip_prefix("part-").unwrap()[..5].parse().unwrap();
        let rows = out.entry(id).or_default();
        for line in std::fs::read_to_string(&p).unwrap().lines().filter(|l| !l.is_empty()) {
            rows.push(parse_row(line));
        }
    }
    out
}

/// Starts the job in `s` and SIGKILLs it at random moments, 5 times, then lets the caller run it
/// to the end. A full run here takes well under a second: kills land within the first 400 ms.
fn kill_until_done(s: &Scratch) {
    use rand::{Rng, SeedableRng};
    let seed: u64 = match std::env::var("WEIR_CRASH_SEED") {
        Ok(v) => v.parse().expect("WEIR_CRASH_SEED must be a number"),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
    };
    eprintln!("kill seed {seed} (rerun with WEIR_CRASH_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for _ in 0..5 {
        let mut child = weir().current_dir(s.dir.path()).args(["run", "--quiet", "job.toml"]).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(rng.random_range(5..400)));
        let _ = std::process::Command::new("kill").arg("-KILL").arg(child.id().to_string()).status();
        let status = child.wait().unwrap();
        assert!(status.success() || status.code().is_none(), "seed {seed}: weir failed on its own: {status:?}");
    }
}

fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by_key(|r| serde_json::to_string(r).unwrap());
    rows
}

/// Copies `tests/joins/<group>/in` into the scratch directory, a streaming source's batch k
/// (`in/<source>/<k>/<file>`) as `in/<source>/<kkkk>-<file>` so that one file is one batch.
fn copy_inputs(from: &Path, to: &Path) {
    for source in std::fs::read_dir(from).unwrap() {
        let source = source.unwrap().path();
        let dest = to.join(source.file_name().unwrap());
        std::fs::create_dir_all(&dest).unwrap();
        let mut entries: Vec<_> = std::fs::read_dir(&source).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for e in entries {
            let name = e.file_name().unwrap().to_str().unwrap().to_string();
            match name.parse::<u32>() {
                Ok(k) if e.is_dir() => {
                    for f in std::fs::read_dir(&e).unwrap() {
                        let f = f.unwrap().path();
                        let fname = f.file_name().unwrap().to_str().unwrap();
                        std::fs::copy(&f, dest.join(format!("{k:04}-{fname}"))).unwrap();
                    }
                }
                _ => {
                    std::fs::copy(&e, dest.join(&name)).unwrap();
                }
            }
        }
    }
}

/// How a scenario runs: straight through, or stopped on the way and restarted.
#[derive(Clone, Copy)]
enum Run {
    Once,
    /// The process aborts after writing batch N's output and before committing it (a crash
    /// there), then the job is started again.
    CrashBeforeCommit(u64),
    /// SIGKILL at random moments (seeded; WEIR_CRASH_SEED reruns one), restarted until done.
    Killed,
}

/// Runs `tests/joins/<group>/<case>/job.toml` on the group's inputs with the given state store
/// and compares every batch's output with Spark's.
fn scenario(group: &str, case: &str, state_store: &str) {
    scenario_run(group, case, state_store, Run::Once);
}

fn scenario_run(group: &str, case: &str, state_store: &str, how: Run) {
    let s = Scratch::new();
    let root = repo().join("tests/joins").join(group);
    copy_inputs(&root.join("in"), &s.path("in"));
    let mut job = std::fs::read_to_string(root.join(case).join("job.toml")).unwrap();
    job = format!("state_store = \"{state_store}\"\n{job}");
    s.write("job.toml", &job);
    // The job's paths are relative to where it runs.
    let run = || weir().current_dir(s.dir.path()).args(["run", "--quiet", "job.toml"]).output().unwrap();
    match how {
        Run::Once => {}
        Run::CrashBeforeCommit(n) => {
            let crashed = weir()
                .current_dir(s.dir.path())
                .args(["run", "--quiet", "job.toml"])
                .env("WEIR_TEST_CRASH_BEFORE_COMMIT", n.to_string())
                .output()
                .unwrap();
            assert!(!crashed.status.success(), "the run was to crash at batch {n}");
        }
        Run::Killed => kill_until_done(&s),
    }
    let out = run();
    assert!(out.status.success(), "weir run failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let expected = expected_batches(&std::fs::read_to_string(root.join(case).join("expected.txt")).unwrap());
    let got = weir_batches(&s.path(&format!("out/{case}")));
    let ids: Vec<u64> =
        expected.keys().chain(got.keys()).copied().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    for id in ids {
        let want = sorted(expected.get(&id).cloned().unwrap_or_default());
        let have = sorted(got.get(&id).cloned().unwrap_or_default());
        assert_eq!(have, want, "{group}/{case} on {state_store}: batch {id} differs from Spark's");
    }
}

#[test]
fn stream_static_inner_matches_spark() {
    scenario("stream-static", "inner", "memory");
}

#[test]
fn stream_static_left_outer_matches_spark() {
    scenario("stream-static", "left_outer", "memory");
}

#[test]
fn stream_static_left_outer_with_key_pairs_matches_spark() {
    scenario("stream-static", "left_outer_pairs", "memory");
}

#[test]
fn stream_static_left_semi_matches_spark() {
    scenario("stream-static", "left_semi", "memory");
}

#[test]
fn stream_static_left_anti_matches_spark() {
    scenario("stream-static", "left_anti", "memory");
}

#[test]
fn stream_static_right_outer_with_the_stream_on_the_right_matches_spark() {
    scenario("stream-static", "right_outer", "memory");
}

#[test]
fn stream_stream_inner_with_a_time_range_matches_spark_on_both_stores() {
    scenario("stream-stream", "inner", "memory");
    scenario("stream-stream", "inner", "rocksdb");
}

#[test]
fn stream_stream_left_outer_emits_unmatched_clicks_when_the_watermark_passes_them_as_spark_does() {
    scenario("stream-stream", "left_outer", "memory");
    scenario("stream-stream", "left_outer", "rocksdb");
}

#[test]
fn stream_stream_left_outer_with_key_pairs_and_a_prefix_matches_spark() {
    scenario("stream-stream", "left_outer_pairs", "memory");
}

#[test]
fn stream_stream_right_outer_matches_spark() {
    scenario("stream-stream", "right_outer", "memory");
}

#[test]
fn stream_stream_full_outer_matches_spark() {
    scenario("stream-stream", "full_outer", "rocksdb");
}

#[test]
fn stream_stream_left_semi_emits_a_click_once_as_spark_does() {
    scenario("stream-stream", "left_semi", "memory");
}

#[test]
fn a_stream_stream_join_then_a_windowed_count_in_append_mode_matches_spark() {
    scenario("stream-stream", "inner_then_count", "memory");
}

#[test]
fn null_keys_in_stream_stream_joins_match_spark() {
    for case in ["inner", "left_outer", "right_outer", "full_outer", "left_semi"] {
        scenario("null-keys", case, "memory");
    }
}

#[test]
fn a_stream_stream_join_restarted_after_a_crash_mid_batch_matches_spark_on_both_stores() {
    scenario_run("stream-stream", "left_outer", "memory", Run::CrashBeforeCommit(2));
    scenario_run("stream-stream", "full_outer", "rocksdb", Run::CrashBeforeCommit(3));
}

#[test]
fn a_stream_stream_join_killed_at_random_moments_matches_spark_on_both_stores() {
    scenario_run("stream-stream", "left_outer", "memory", Run::Killed);
    scenario_run("stream-stream", "inner_then_count", "rocksdb", Run::Killed);
}

#[test]
fn a_stream_static_join_killed_at_random_moments_matches_spark() {
    scenario_run("stream-static", "left_outer", "memory", Run::Killed);
}

/// A static table changed between two batches is joined at its new version from the next
/// batch on, while a replay of a batch planned before the change joins the version it recorded.
#[test]
fn a_changed_static_table_is_joined_from_the_next_batch_and_a_replay_uses_the_old_version() {
    let s = Scratch::new();
    let ev = |user: &str, n: u32| format!("{{\"user_id\":\"{user}\",\"n\":{n}}}\n");
    s.write("in/events/0000.json", &(ev("u1", 0) + &ev("u2", 0)));
    s.write("in/events/0001.json", &(ev("u1", 1) + &ev("u2", 1)));
    s.write("in/users/users.json", "{\"user_id\":\"u1\",\"country\":\"DE\"}\n");
    s.write(
        "job.toml",
        r#"
[[source]]
name = "events"
format = "json"
path = "in/events"
schema = "user_id string, n int"
max_files_per_trigger = 1

[[source]]
name = "users"
static = true
format = "json"
path = "in/users"
schema = "user_id string, country string"

[[operator]]
kind = "join"
right = "users"
type = "left_outer"
on = ["user_id"]

[sink]
format = "json"
path = "out"
checkpoint = "ckpt"
trigger = { available_now = true }
"#,
    );
    let run = |crash: Option<&str>| {
        let mut c = weir();
        c.current_dir(s.dir.path()).args(["run", "--quiet", "job.toml"]);
        if let Some(n) = crash {
            c.env("WEIR_TEST_CRASH_BEFORE_COMMIT", n);
        }
        c.output().unwrap()
    };
    // Batch 0 commits; batch 1 is planned with the table as it is (u1 in DE), then crashes.
    assert!(!run(Some("1")).status.success());
    // The table changes (a new file renamed over the old one), and a new batch of events comes.
    s.write(
        "in/users/.users.json.tmp",
        "{\"user_id\":\"u1\",\"country\":\"FR\"}\n{\"user_id\":\"u2\",\"country\":\"IT\"}\n",
    );
    std::fs::rename(s.path("in/users/.users.json.tmp"), s.path("in/users/users.json")).unwrap();
    s.write("in/events/0002.json", &(ev("u1", 2) + &ev("u2", 2)));
    let out = run(None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = weir_batches(&s.path("out"));
    let row = |u: &str, n: u32, c: Option<&str>| {
        let mut r: Row = vec![("user_id".into(), u.into()), ("n".into(), n.into())];
        if let Some(c) = c {
            r.push(("country".into(), c.into()));
        }
        r
    };
    assert_eq!(got[&0], vec![row("u1", 0, Some("DE")), row("u2", 0, None)]);
    assert_eq!(
        got[&1],
        vec![row("u1", 1, Some("DE")), row("u2", 1, None)],
        "the replay joins the version batch 1 recorded"
    );
    assert_eq!(
        got[&2],
        vec![row("u1", 2, Some("FR")), row("u2", 2, Some("IT"))],
        "the next batch joins the new version"
    );
    // Every offsets entry names the version it joined; both versions' files are kept.
    let version = |b: u64| {
        let e: serde_json::Value =
            serde_json::from_slice(&std::fs::read(s.path(&format!("ckpt/offsets/{b}"))).unwrap()).unwrap();
        e["operator_inputs"]["0"]["files"][0]["sha256"].as_str().unwrap().to_string()
    };
    assert_eq!(version(0), version(1));
    assert_ne!(version(1), version(2));
    for b in [1, 2] {
        assert!(s.path(&format!("ckpt/tables/users/{}", version(b))).exists());
    }
}

/// Retention deletes the stored files of table versions no kept batch joined.
#[test]
fn table_versions_no_kept_batch_needs_are_deleted_with_retention() {
    let s = Scratch::new();
    let ev = |n: u32| format!("{{\"user_id\":\"u1\",\"n\":{n}}}\n");
    for n in 0..12 {
        s.write(&format!("in/events/{n:04}.json"), &ev(n));
    }
    s.write("in/users/users.json", "{\"user_id\":\"u1\",\"country\":\"DE\"}\n");
    s.write(
        "job.toml",
        r#"
min_batches_to_retain = 2

[[source]]
name = "events"
format = "json"
path = "in/events"
schema = "user_id string, n int"
max_files_per_trigger = 1

[[source]]
name = "users"
static = true
format = "json"
path = "in/users"
schema = "user_id string, country string"

[[operator]]
kind = "join"
right = "users"
on = ["user_id"]

[sink]
format = "json"
path = "out"
checkpoint = "ckpt"
trigger = { available_now = true }
"#,
    );
    let run = || {
        let out = weir().current_dir(s.dir.path()).args(["run", "--quiet", "job.toml"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    run();
    let stored = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(s.path("ckpt/tables/users"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let first = stored();
    assert_eq!(first.len(), 1, "one version so far: {first:?}");
    s.write("in/users/.new", "{\"user_id\":\"u1\",\"country\":\"FR\"}\n");
    std::fs::rename(s.path("in/users/.new"), s.path("in/users/users.json")).unwrap();
    for n in 12..25 {
        s.write(&format!("in/events/{n:04}.json"), &ev(n));
    }
    run();
    // Batches 12..24 joined the new version; retention at batch 19 kept batches 18 and on.
    let second = stored();
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second, first, "the old version's file is deleted, the new one's kept");
    let got = weir_batches(&s.path("out"));
    assert_eq!(got[&11][0][2], ("country".to_string(), serde_json::json!("DE")));
    assert_eq!(got[&12][0][2], ("country".to_string(), serde_json::json!("FR")));
}

#[test]
fn a_window_join_of_two_streams_matches_spark_on_both_stores() {
    scenario("stream-stream-window", "inner", "memory");
    scenario("stream-stream-window", "left_outer", "rocksdb");
    scenario("stream-stream-window", "right_outer", "memory");
}
