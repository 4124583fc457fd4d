//! Hostile JavaScript is contained like hostile Rust (hostile.rs, sandbox.rs): a JS plugin
//! (tests/plugins/hostile-js, SpiderMonkey inside the component) that loops forever is stopped
//! at `max_call_time`, one that grows its heap without end at `max_memory`; the job stops with
//! the message naming the plugin, the export, the batch and the setting, or, with
//! `on_error = "dead_letter"`, the rows that cause it are set aside and the rest go on. The host
//! runs with its data segment capped at 2 GiB, as in hostile.rs.

use std::os::unix::process::CommandExt;
use std::process::{Output, Stdio};
use std::sync::Arc;

use arrow::array::StringArray;
use arrow::record_batch::RecordBatch;
use weir::job::PluginLimits;
use weir::plugin::{MapperPlugin, Runtime};
use weir::schema::parse_ddl;

use crate::common::*;

/// Runs `weir run JOB --quiet` with RLIMIT_DATA at 2 GiB.
fn run_capped(job: &std::path::Path) -> Output {
    let mut cmd = weir();
    cmd.args(["run", "--quiet"]).arg(job);
    // SAFETY: setrlimit is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 2 << 30, rlim_max: 2 << 30 };
            if libc::setrlimit(libc::RLIMIT_DATA, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).output().expect("spawning weir")
}

/// A job over `ids` (one row each, `event_id`) through hostile-js with `config`, `operator`
/// lines in its operator table and `top` lines at the top of the job.
fn job(s: &Scratch, ids: &[&str], config: &str, top: &str, operator: &str) -> std::path::PathBuf {
    let lines: String = ids.iter().map(|id| format!("{{\"event_id\":\"{id}\"}}\n")).collect();
    s.write("in/a.json", &lines);
    s.job(&format!(
        "{top}\n[source]\nformat = \"json\"\npath = \"{{dir}}/in\"\nschema = \"event_id string\"\n\
         [[operator]]\nkind = \"map\"\nplugin = \"{{plugin:hostile-js}}\"\nconfig = \"{config}\"\n{operator}\n\
         [sink]\nformat = \"json\"\npath = \"{{dir}}/out\"\ncheckpoint = \"{{dir}}/ckpt\"\ntrigger = {{ once = true }}\n"
    ))
}

/// Fails unless the job stopped with an error (exit 1) whose message has every one of `parts`,
/// and without a panic of the host.
fn assert_stopped_with(o: &Output, parts: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "an error exit, not a crash or success; stderr:\n{err}");
    assert!(!err.contains("panicked"), "the host panicked:\n{err}");
    for p in parts {
        assert!(err.contains(p), "missing {p:?} in:\n{err}");
    }
}

#[test]
fn an_endless_js_loop_stops_the_job_at_max_call_time() {
    let s = Scratch::new();
    let o = run_capped(&job(&s, &["a", "b"], "mode=spin", "", "max_call_time = \"1 second\""));
    assert_stopped_with(
        &o,
        &["hostile-js.wasm", "`map-batch` ran longer than its CPU time limit of 1s (batch 0)", "max_call_time"],
    );
    assert!(!s.path("out/_weir_log/0").exists(), "nothing is committed for the batch");
}

#[test]
fn js_memory_growth_stops_the_job_at_max_memory() {
    let s = Scratch::new();
    let o = run_capped(&job(&s, &["a", "b"], "mode=grow", "", "max_memory = \"128 MiB\""));
    assert_stopped_with(
        &o,
        &["hostile-js.wasm", "`map-batch` needed more than its memory limit of 128 MiB", "(batch 0)", "max_memory"],
    );
}

/// on_error = "dead_letter": the rows the plugin spins, grows or throws on are found by halving
/// the call and set aside with the reason; a row it refuses follows on_bad_record; the others
/// are written.
#[test]
fn js_rows_that_spin_grow_or_throw_are_dead_lettered_and_the_rest_goes_on() {
    let s = Scratch::new();
    let ids = ["a", "spin", "grow", "refuse", "panic", "b"];
    let j = job(
        &s,
        &ids,
        "",
        "on_bad_record = \"dead_letter\"",
        "on_error = \"dead_letter\"\nmax_call_time = \"2 seconds\"\nmax_memory = \"64 MiB\"",
    );
    let o = run_capped(&j);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(committed_text(&s.path("out")), "{\"event_id\":\"a\"}\n{\"event_id\":\"b\"}\n");
    let dead = std::fs::read_to_string(s.path("ckpt/dead_letter/batch-0.jsonl")).unwrap();
    let reasons: Vec<serde_json::Value> = dead.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(reasons.len(), 4, "{dead}");
    let reason = |id: &str| {
        let r = reasons.iter().find(|r| r["raw"].as_str().unwrap().contains(&format!("\"{id}\""))).unwrap();
        r["reason"].as_str().unwrap().to_string()
    };
    assert!(reason("spin").contains("ran longer than its CPU time limit of 2s"), "{dead}");
    assert!(reason("grow").contains("needed more than its memory limit of 64 MiB"), "{dead}");
    assert_eq!(reason("refuse"), "refused by hostile-js: event_id is \"refuse\"");
    // A JS exception that is not the SDK's comes back as the call's error (componentize-js does
    // not trap on it), with the engine's message.
    assert!(reason("panic").contains("`map-batch` returned an error") && reason("panic").contains("boom"), "{dead}");
}

fn batch(ids: &[&str]) -> RecordBatch {
    RecordBatch::try_new(parse_ddl("event_id string").unwrap(), vec![Arc::new(StringArray::from(ids.to_vec()))])
        .unwrap()
}

/// After a trap for time or memory, the next batch gets a fresh instance (SpiderMonkey's heap
/// and all) and runs.
#[test]
fn after_a_js_loop_or_memory_hog_the_next_batch_runs_on_a_fresh_instance() {
    std::env::set_var("WEIR_CACHE_DIR", repo().join("target/weir-cache"));
    let runtime = Box::leak(Box::new(Runtime::new().unwrap()));
    let limits = PluginLimits {
        // Room for a fresh instance and a 64 MiB heap on a busy machine: only the endless loop
        // reaches the time limit.
        cpu_time_per_call: std::time::Duration::from_secs(2),
        memory_bytes: 64 << 20,
        ..PluginLimits::default()
    };
    let mut p = MapperPlugin::load(runtime, &plugin("hostile-js"), "", limits, batch(&[]).schema()).unwrap();
    let msg = p.map_batch(3, &batch(&["spin"])).unwrap_err().to_string();
    assert!(msg.contains("ran longer than its CPU time limit of 2s") && msg.contains("max_call_time"), "{msg}");
    assert_eq!(p.map_batch(4, &batch(&["ok"])).unwrap().num_rows(), 1);
    let msg = p.map_batch(5, &batch(&["grow"])).unwrap_err().to_string();
    assert!(msg.contains("needed more than its memory limit of 64 MiB") && msg.contains("max_memory"), "{msg}");
    assert_eq!(p.map_batch(6, &batch(&["ok", "ok"])).unwrap().num_rows(), 2);
}
