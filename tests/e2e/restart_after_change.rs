//! What a restart runs after a change (Spark's "recovery semantics after changes", for plugins):
//! a batch that failed and that no output committed runs again with the plugin the job file
//! names now (the fix); a batch an output already committed replays with the version that
//! wrote it, then the job goes on with the new one. Also: a rollback of a swap that added
//! columns gives the sink its old columns back, and a probation survives a restart.
//!
//! tests/plugins/tagger, built as several versions (see hot_swap.rs), tags each row with its
//! version.

use std::path::{Path, PathBuf};

use crate::common::*;
use crate::hot_swap::{assert_exactly_once, batches, rows, start, stop, swap, tagger, wait_until};

/// A file-source job whose map plugin is the file `plugin` (copied in by the test).
fn file_job(s: &Scratch, plugin: &Path, trigger: &str, admin: bool) -> PathBuf {
    let admin = if admin { "[admin]\nlisten = \"127.0.0.1:0\"\nprobation_batches = 1000\n" } else { "" };
    s.job(&format!(
        "{admin}[source]\nformat = \"json\"\npath = \"{{dir}}/in\"\nschema = \"event_id string\"\n\
         [[operator]]\nkind = \"map\"\nplugin = \"{}\"\n\
         [sink]\nformat = \"json\"\npath = \"{{dir}}/out\"\ncheckpoint = \"{{dir}}/ckpt\"\ntrigger = {trigger}\n",
        plugin.display()
    ))
}

/// Puts `version` at `path` (atomically, as a deploy would).
fn deploy(s: &Scratch, version: &Path, path: &Path) {
    let tmp = s.path("deploy.tmp");
    std::fs::copy(version, &tmp).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// (event_id, version) of every committed row, in order.
fn tagged(s: &Scratch) -> Vec<(String, String)> {
    committed_text(&s.path("out"))
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["event_id"].as_str().unwrap().to_string(), v["version"].as_str().unwrap().to_string())
        })
        .collect()
}

fn digest(path: &Path) -> String {
    weir::plugin::component_digest(&std::fs::read(path).unwrap())
}

fn offsets_plugin(s: &Scratch, batch: u64) -> String {
    let entry: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.path(&format!("ckpt/offsets/{batch}"))).unwrap()).unwrap();
    entry["plugins"]["0"].as_str().unwrap().to_string()
}

fn stored(s: &Scratch, digest: &str) -> bool {
    s.path(&format!("ckpt/plugins/{}.wasm", digest.replace(':', "-"))).exists()
}

#[test]
fn a_batch_that_failed_runs_again_with_the_fixed_plugin_after_a_restart() {
    let s = Scratch::new();
    let (broken, fixed) = (tagger("broken"), tagger("v2"));
    let plugin = s.path("tagger.wasm");
    deploy(&s, &broken, &plugin);
    s.write("in/a.json", "{\"event_id\":\"a1\"}\n{\"event_id\":\"a2\"}\n");
    let job = file_job(&s, &plugin, "{ available_now = true }", false);
    let err = run_err(&job);
    assert!(err.contains("batch 0") && err.contains("trapped"), "{err}");
    assert!(stored(&s, &digest(&broken)), "the version that planned batch 0 is kept in the checkpoint");

    deploy(&s, &fixed, &plugin);
    let out = run_ok(&job);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("batch 0: no output has committed it, so it runs again with the job's current plugin versions"),
        "{err}"
    );
    assert_eq!(tagged(&s), vec![("a1".into(), "v2".into()), ("a2".into(), "v2".into())]);
    assert_eq!(offsets_plugin(&s, 0), digest(&fixed), "the offsets entry names the version that ran it");
}

#[test]
fn a_batch_an_output_committed_replays_with_the_version_that_wrote_it_and_the_next_runs_the_new_one() {
    let s = Scratch::new();
    let (v1, v2) = (tagger("v1"), tagger("v2"));
    let plugin = s.path("tagger.wasm");
    deploy(&s, &v1, &plugin);
    s.write("in/a.json", "{\"event_id\":\"a1\"}\n");
    let job = file_job(&s, &plugin, "{ available_now = true }", false);
    run_ok(&job);
    // A crash after the sink committed batch 0 and before the checkpoint did: no commits/0.
    std::fs::remove_file(s.path("ckpt/commits/0")).unwrap();
    deploy(&s, &v2, &plugin);
    s.write("in/b.json", "{\"event_id\":\"b1\"}\n");
    run_ok(&job);
    assert_eq!(tagged(&s), vec![("a1".into(), "v1".into()), ("b1".into(), "v2".into())]);
    assert_eq!(offsets_plugin(&s, 0), digest(&v1), "batch 0 replayed with v1, which wrote it");
    assert_eq!(offsets_plugin(&s, 1), digest(&v2));
    assert!(s.path("ckpt/commits/0").exists() && s.path("ckpt/commits/1").exists());
}

#[test]
fn a_rollback_of_a_swap_that_added_columns_gives_the_sink_its_old_columns() {
    let s = Scratch::new();
    let (v1, wide_broken) = (tagger("v1"), tagger("wide-broken"));
    let (child, addr) = start(&s, &crate::hot_swap::job(&s, &v1));
    wait_until("3 batches", || batches(&s) >= 3);
    let swapped = swap(&addr, &wide_broken);
    assert_eq!(swapped["event"], "swap", "{swapped}");
    let at = batches(&s);
    wait_until("3 more batches", || batches(&s) >= at + 3);
    stop(child);
    let rows = rows(&s);
    assert_exactly_once(&rows);
    assert!(rows.iter().all(|r| r.2 == "v1"), "every row written by v1");
    let text = committed_text(&s.path("out"));
    assert!(!text.contains("\"extra\""), "no row has the rolled-back version's column");
}

#[test]
fn a_probation_survives_a_restart_and_a_failure_after_it_still_rolls_back() {
    let s = Scratch::new();
    let (v1, picky) = (tagger("v1"), tagger("picky"));
    let plugin = s.path("tagger.wasm");
    deploy(&s, &v1, &plugin);
    let job = file_job(&s, &plugin, "{ processing_time = \"50 milliseconds\" }", true);
    s.write("in/a.json", "{\"event_id\":\"a1\"}\n");
    let (child, addr) = start(&s, &job);
    wait_until("batch 0", || batches(&s) >= 1);
    swap(&addr, &picky);
    s.write("in/b.json", "{\"event_id\":\"b1\"}\n");
    wait_until("batch 1", || batches(&s) >= 2);
    stop(child);
    assert!(s.path("ckpt/plugins/probation.json").exists(), "the probation is recorded");

    // After the restart picky still runs (the swap is kept), still on probation: the batch
    // it fails goes back to v1 and runs again.
    let (child, _) = start(&s, &job);
    s.write("in/c.json", "{\"event_id\":\"bad\"}\n");
    wait_until("batch 2", || batches(&s) >= 3);
    stop(child);
    assert_eq!(
        tagged(&s),
        vec![("a1".into(), "v1".into()), ("b1".into(), "picky".into()), ("bad".into(), "v1".into())]
    );
}
