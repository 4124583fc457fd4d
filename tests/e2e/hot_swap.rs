//! Hot swap: a new version of a map plugin uploaded to a running job through its admin API is
//! swapped in between two micro-batches; the rate source keeps producing thousands of rows per
//! second. Every input row appears exactly once, each batch wholly from one version; a version
//! that fails on probation is rolled back and its batch replayed; a swap survives SIGKILL.
//!
//! tests/plugins/tagger adds a `version` column, fixed when the component is built.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::common::*;

/// tests/plugins/tagger built as `version` (once per test run, so a changed tagger is rebuilt).
pub(crate) fn tagger(version: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap();
    let out = repo().join(format!("target/plugins/tagger-{version}.wasm"));
    if !built.iter().any(|v| v == version) {
        built.push(version.to_string());
        let status = weir()
            .args(["plugin", "build"])
            .arg(repo().join("tests/plugins/tagger"))
            .arg("--out")
            .arg(&out)
            .env("TAGGER_VERSION", version)
            .status()
            .unwrap();
        assert!(status.success(), "building tagger {version}");
    }
    out
}

pub(crate) fn job(s: &Scratch, first: &Path) -> PathBuf {
    s.job(&format!(
        r#"
[admin]
listen = "127.0.0.1:0"
probation_batches = 3

[source]
format = "rate"
rows_per_second = 4000

[[operator]]
kind = "map"
plugin = "{}"

[sink]
format = "json"
path = "{{dir}}/out"
checkpoint = "{{dir}}/ckpt"
trigger = {{ processing_time = "50 milliseconds" }}
"#,
        first.display()
    ))
}

pub(crate) fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "waited 60 s for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn batches(s: &Scratch) -> usize {
    std::fs::read_dir(s.path("out/_weir_log")).map(|d| d.count()).unwrap_or(0)
}

pub(crate) fn start(s: &Scratch, job: &Path) -> (Child, String) {
    let _ = std::fs::remove_file(s.path("ckpt/admin-address"));
    let child = weir().args(["run", "--quiet"]).arg(job).spawn().unwrap();
    wait_until("the admin API", || s.path("ckpt/admin-address").exists());
    // `--job` takes the checkpoint: weir reads the API's address and generated token there.
    (child, s.path("ckpt").display().to_string())
}

/// `weir plugin swap`: the API's answer.
pub(crate) fn swap(addr: &str, wasm: &Path) -> serde_json::Value {
    let out = weir().args(["plugin", "swap", "--job", addr, "--operator", "0"]).arg(wasm).output().unwrap();
    assert!(out.status.success(), "swap failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every committed row: (batch id, value, version), in order.
pub(crate) fn rows(s: &Scratch) -> Vec<(u64, i64, String)> {
    committed_files(&s.path("out"))
        .iter()
        .flat_map(|f| {
            let batch: u64 = f.to_str().unwrap()[5..10].parse().unwrap();
            std::fs::read_to_string(s.path("out").join(f))
                .unwrap()
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    (batch, v["value"].as_i64().unwrap(), v["version"].as_str().unwrap().to_string())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

pub(crate) fn stop(mut child: Child) {
    crate::pipeline::send_signal(child.id(), "INT");
    assert!(child.wait().unwrap().success());
}

/// The values 0..n once each, in order.
pub(crate) fn assert_exactly_once(rows: &[(u64, i64, String)]) {
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.1, i as i64, "row {i} is value {} (batch {}): a row lost or repeated", r.1, r.0);
    }
}

#[test]
fn swaps_under_load_lose_and_repeat_no_row_and_switch_at_a_batch_boundary() {
    let s = Scratch::new();
    let (v1, v2, v3) = (tagger("v1"), tagger("v2"), tagger("v3"));
    let (child, addr) = start(&s, &job(&s, &v1));
    wait_until("3 batches", || batches(&s) >= 3);
    let first_v2 = swap(&addr, &v2)["first_batch"].as_u64().unwrap();
    let at = batches(&s);
    wait_until("3 more batches", || batches(&s) >= at + 3);
    let first_v3 = swap(&addr, &v3)["first_batch"].as_u64().unwrap();
    let at = batches(&s);
    wait_until("3 more batches", || batches(&s) >= at + 3);
    stop(child);
    let rows = rows(&s);
    assert!(rows.len() > 1000, "{} rows", rows.len());
    assert_exactly_once(&rows);
    for (batch, value, version) in &rows {
        let want = if *batch < first_v2 {
            "v1"
        } else if *batch < first_v3 {
            "v2"
        } else {
            "v3"
        };
        assert_eq!(version, want, "value {value} in batch {batch}");
    }
    assert!(rows.iter().any(|r| r.2 == "v3"), "v3 ran");
    // The history lists the three versions.
    let out = weir().args(["plugin", "history", "--job", &addr]).output().unwrap();
    assert!(!out.status.success(), "the job is stopped: its API is gone");
    let p = progress(&s.path("ckpt"));
    let swaps: Vec<&serde_json::Value> =
        p.iter().flat_map(|r| r["pluginEvents"].as_array().into_iter().flatten()).collect();
    assert_eq!(swaps.len(), 2, "{swaps:?}");
    assert_eq!(swaps[0]["first_batch"].as_u64(), Some(first_v2));
}

#[test]
fn a_version_that_fails_on_probation_is_rolled_back_and_its_batch_replayed() {
    let s = Scratch::new();
    let (v1, broken) = (tagger("v1"), tagger("broken"));
    let (child, addr) = start(&s, &job(&s, &v1));
    wait_until("3 batches", || batches(&s) >= 3);
    let swapped = swap(&addr, &broken);
    let from = swapped["first_batch"].as_u64().unwrap();
    let at = batches(&s);
    wait_until("3 more batches", || batches(&s) >= at + 3);
    let history = weir().args(["plugin", "history", "--job", &addr]).output().unwrap();
    let history: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    stop(child);
    let rows = rows(&s);
    assert_exactly_once(&rows);
    assert!(rows.iter().all(|r| r.2 == "v1"), "no row was written by the broken version");
    let events: Vec<&serde_json::Value> = history.as_array().unwrap().iter().filter(|h| h["event"] != "ran").collect();
    assert_eq!(events.len(), 2, "{history}");
    assert_eq!((events[0]["event"].as_str(), events[1]["event"].as_str()), (Some("swap"), Some("rollback")));
    assert_eq!(events[1]["first_batch"].as_u64(), Some(from), "the failed batch ran again with v1");
    assert!(events[1]["reason"].as_str().unwrap().contains("trapped"), "{history}");
}

#[test]
fn a_swap_survives_sigkill_right_after_it_and_the_replay_uses_the_same_version() {
    let s = Scratch::new();
    let (v1, v2) = (tagger("v1"), tagger("v2"));
    let job = job(&s, &v1);
    let (child, addr) = start(&s, &job);
    wait_until("3 batches", || batches(&s) >= 3);
    let from = swap(&addr, &v2)["first_batch"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let _ = std::process::Command::new("kill").arg("-KILL").arg(child.id().to_string()).status();
    let mut child = child;
    child.wait().unwrap();
    let (child, _) = start(&s, &job);
    let at = batches(&s);
    wait_until("3 more batches", || batches(&s) >= at + 3);
    stop(child);
    let rows = rows(&s);
    assert_exactly_once(&rows);
    for (batch, value, version) in &rows {
        assert_eq!(version, if *batch < from { "v1" } else { "v2" }, "value {value} in batch {batch}");
    }
}

/// With a token, the API refuses requests without it.
#[test]
fn the_admin_api_requires_its_bearer_token_when_it_has_one() {
    let s = Scratch::new();
    let text = std::fs::read_to_string(job(&s, &tagger("v1")))
        .unwrap()
        .replace("probation_batches = 3", "probation_batches = 3\ntoken = \"s3cret\"");
    let (child, addr) = start(&s, &s.job(&text));
    let denied = weir().args(["plugin", "history", "--job", &addr]).env_remove("WEIR_ADMIN_TOKEN").output().unwrap();
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("401: a bearer token is required"), "{denied:?}");
    let ok = weir().args(["plugin", "history", "--job", &addr, "--token", "s3cret"]).output().unwrap();
    assert!(ok.status.success(), "{ok:?}");
    stop(child);
}

/// A stateful plugin swapped for a version with another state format (counter built with
/// COUNTER_STATE=2 keeps count × 10, state version 2): each key's state is migrated by the new
/// version's migrate-state when the key is next loaded, and the counts go on without a gap.
#[test]
fn a_stateful_plugin_swapped_to_a_new_state_format_migrates_and_counts_on() {
    let s = Scratch::new();
    let v2 = {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _g = LOCK.lock().unwrap();
        let out = repo().join("target/plugins/counter-state2.wasm");
        let status = weir()
            .args(["plugin", "build"])
            .arg(repo().join("tests/plugins/counter"))
            .arg("--out")
            .arg(&out)
            .env("COUNTER_STATE", "2")
            .status()
            .unwrap();
        assert!(status.success());
        out
    };
    let job = s.job(
        r#"
[admin]
listen = "127.0.0.1:0"

[source]
format = "json"
path = "{dir}/in"
schema = "user_id string, amount double"

[[operator]]
kind = "stateful"
plugin = "{plugin:counter}"
group_by = ["user_id"]

[sink]
format = "json"
path = "{dir}/out"
checkpoint = "{dir}/ckpt"
trigger = { processing_time = "50 milliseconds" }
"#,
    );
    let lines = |s: &Scratch| {
        if s.path("out/_weir_log").exists() {
            committed_text(&s.path("out")).lines().map(str::to_string).collect()
        } else {
            Vec::new()
        }
    };
    s.write(
        "in/a.json",
        "{\"user_id\":\"u1\",\"amount\":1}\n{\"user_id\":\"u1\",\"amount\":1}\n{\"user_id\":\"u2\",\"amount\":1}\n",
    );
    let (child, addr) = start(&s, &job);
    wait_until("the first counts", || lines(&s).len() >= 2);
    let out = weir().args(["plugin", "swap", "--job", &addr, "--operator", "counter"]).arg(&v2).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let swapped: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(swapped["state_version"], serde_json::json!({ "from": 1, "to": 2 }));
    assert_eq!(swapped["probation_batches"], 0, "no rollback once state is in the new format");
    s.write(
        "in/b.json",
        "{\"user_id\":\"u1\",\"amount\":1}\n{\"user_id\":\"u2\",\"amount\":1}\n{\"user_id\":\"u2\",\"amount\":1}\n",
    );
    wait_until("the counts after the swap", || lines(&s).len() >= 4);
    stop(child);
    let mut after: Vec<String> = lines(&s)[2..].to_vec();
    after.sort();
    assert_eq!(
        after,
        ["{\"user_id\":\"u1\",\"count\":3,\"why\":\"rows\"}", "{\"user_id\":\"u2\",\"count\":3,\"why\":\"rows\"}"]
    );
    let migrated: u64 = progress(&s.path("ckpt"))
        .iter()
        .map(|p| p["stateOperators"][0]["customMetrics"]["numStatesMigrated"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(migrated, 2);
}

/// A new version may add a nullable column; one that drops a column is refused with the reason,
/// and the running version stays.
#[test]
fn a_swap_may_add_a_nullable_column_and_one_dropping_a_column_is_refused() {
    let s = Scratch::new();
    let (v1, wide, narrow) = (tagger("v1"), tagger("wide"), tagger("narrow"));
    let (child, addr) = start(&s, &job(&s, &v1));
    wait_until("3 batches", || batches(&s) >= 3);
    let refused = weir().args(["plugin", "swap", "--job", &addr, "--operator", "0"]).arg(&narrow).output().unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("409: operator[0]: the new version's output does not fit: column `version` is missing"),
        "{err}"
    );
    let from = swap(&addr, &wide)["first_batch"].as_u64().unwrap();
    let at = batches(&s);
    wait_until("3 more batches", || batches(&s) >= at + 3);
    stop(child);
    let rows = rows(&s);
    assert_exactly_once(&rows);
    let text = committed_text(&s.path("out"));
    for (line, (batch, _, version)) in text.lines().zip(&rows) {
        assert_eq!(line.contains("\"extra\""), *batch >= from, "{line}");
        assert_eq!(version, if *batch >= from { "wide" } else { "v1" });
    }
}

/// watch = true: writing a new version over the plugin file swaps it in.
#[test]
fn a_watched_plugin_file_is_swapped_in_when_it_changes() {
    let s = Scratch::new();
    let file = s.path("tagger.wasm");
    std::fs::copy(tagger("v1"), &file).unwrap();
    let text = std::fs::read_to_string(job(&s, &file)).unwrap().replace(
        &format!("plugin = \"{}\"", file.display()),
        &format!("plugin = \"{}\"\nwatch = true", file.display()),
    );
    let (child, _) = start(&s, &s.job(&text));
    wait_until("3 batches", || batches(&s) >= 3);
    // Replaced atomically, as an editor or a build would.
    std::fs::copy(tagger("v2"), s.path("tagger.tmp")).unwrap();
    std::fs::rename(s.path("tagger.tmp"), &file).unwrap();
    wait_until("v2 rows", || rows(&s).iter().any(|r| r.2 == "v2"));
    stop(child);
    let rows = rows(&s);
    assert_exactly_once(&rows);
    let first_v2 = rows.iter().position(|r| r.2 == "v2").unwrap();
    assert!(rows[first_v2..].iter().all(|r| r.2 == "v2"), "once swapped, every later row is v2");
    assert!(rows[..first_v2].iter().all(|r| r.2 == "v1"));
}
