//! A plugin failure never takes the host down: a panic, a runaway loop or a memory hog fails
//! the batch with an error naming the plugin, the export and the batch; the next batch gets a
//! fresh instance. A plugin sees no files, environment or clock.
//!
//! `chaos` (tests/plugins/chaos) passes rows through, except: event_id "panic" panics, "spin"
//! loops forever, "grow" allocates without end, "refuse" returns an error naming that row.

use std::sync::Arc;

use arrow::array::{Float64Array, StringArray, TimestampMicrosecondArray};
use arrow::record_batch::RecordBatch;
use weir::job::PluginLimits;
use weir::plugin::{MapperPlugin, PluginError, Runtime};
use weir::schema::parse_ddl;

use crate::common::*;

fn batch(ids: &[&str]) -> RecordBatch {
    let schema = parse_ddl("event_id string, user_id string, amount double, event_time timestamp").unwrap();
    let n = ids.len();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(ids.to_vec())),
            Arc::new(StringArray::from(vec!["u"; n])),
            Arc::new(Float64Array::from(vec![1.0; n])),
            Arc::new(TimestampMicrosecondArray::from(vec![0; n]).with_timezone("UTC")),
        ],
    )
    .unwrap()
}

fn chaos(limits: PluginLimits) -> MapperPlugin {
    std::env::set_var("WEIR_CACHE_DIR", repo().join("target/weir-cache"));
    let runtime = Box::leak(Box::new(Runtime::new().unwrap()));
    MapperPlugin::load(runtime, &plugin("chaos"), "", limits, batch(&[]).schema()).unwrap()
}

#[test]
fn a_panic_fails_that_batch_naming_plugin_export_and_batch_and_the_next_batch_runs() {
    let mut p = chaos(PluginLimits::default());
    let err = p.map_batch(7, &batch(&["a", "panic", "b"])).unwrap_err();
    assert!(matches!(err, PluginError::Aborted { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("chaos.wasm") && msg.contains("`map-batch` trapped") && msg.contains("(batch 7)"), "{msg}");
    let ok = p.map_batch(8, &batch(&["a", "b"])).unwrap();
    assert_eq!(ok.num_rows(), 2, "a fresh instance serves the next batch");
}

#[test]
fn a_runaway_loop_is_stopped_at_the_cpu_time_limit() {
    let mut p =
        chaos(PluginLimits { cpu_time_per_call: std::time::Duration::from_millis(200), ..PluginLimits::default() });
    let started = std::time::Instant::now();
    let msg = p.map_batch(3, &batch(&["spin"])).unwrap_err().to_string();
    assert!(msg.contains("ran longer than its CPU time limit of 200ms") && msg.contains("max_call_time"), "{msg}");
    // Not a timing assertion on performance: only that it was interrupted at all, well before
    // the default 10 s limit.
    assert!(started.elapsed() < std::time::Duration::from_secs(8));
    assert_eq!(p.map_batch(4, &batch(&["ok"])).unwrap().num_rows(), 1);
}

#[test]
fn a_memory_hog_is_stopped_at_the_memory_limit() {
    let mut p = chaos(PluginLimits { memory_bytes: 32 << 20, ..PluginLimits::default() });
    let msg = p.map_batch(5, &batch(&["grow"])).unwrap_err().to_string();
    assert!(msg.contains("needed more than its memory limit of 32 MiB") && msg.contains("max_memory"), "{msg}");
    assert_eq!(p.map_batch(6, &batch(&["ok"])).unwrap().num_rows(), 1);
}

#[test]
fn a_trap_stops_the_job_cleanly_with_the_reason() {
    let s = Scratch::new();
    s.write(
        "in/a.json",
        "{\"event_id\":\"panic\",\"user_id\":\"u\",\"amount\":1.0,\"event_time\":\"2024-01-01T00:00:00Z\"}\n",
    );
    let job = s.job(
        "[source]\nformat = \"json\"\npath = \"{dir}/in\"\nschema = \"event_id string, user_id string, amount double, event_time timestamp\"\n\
         [[operator]]\nkind = \"map\"\nplugin = \"{plugin:chaos}\"\n\
         [sink]\nformat = \"json\"\npath = \"{dir}/out\"\ncheckpoint = \"{dir}/ckpt\"\ntrigger = { once = true }\n",
    );
    let out = run_job(&job);
    assert_eq!(out.status.code(), Some(1), "an error exit, not a crash");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("batch 0") && err.contains("`map-batch` trapped"), "{err}");
}

#[test]
fn a_row_the_plugin_refuses_goes_to_the_dead_letter_output_with_its_message() {
    let s = Scratch::new();
    s.write(
        "in/a.json",
        "{\"event_id\":\"a\",\"user_id\":\"u\",\"amount\":1.0,\"event_time\":\"2024-01-01T00:00:00Z\"}\n\
         {\"event_id\":\"refuse\",\"user_id\":\"u\",\"amount\":2.0,\"event_time\":\"2024-01-01T00:00:00Z\"}\n\
         {\"event_id\":\"b\",\"user_id\":\"u\",\"amount\":3.0,\"event_time\":\"2024-01-01T00:00:00Z\"}\n",
    );
    let job = s.job(
        "on_bad_record = \"dead_letter\"\n[source]\nformat = \"json\"\npath = \"{dir}/in\"\nschema = \"event_id string, user_id string, amount double, event_time timestamp\"\n\
         [[operator]]\nkind = \"map\"\nplugin = \"{plugin:chaos}\"\n\
         [sink]\nformat = \"json\"\npath = \"{dir}/out\"\ncheckpoint = \"{dir}/ckpt\"\ntrigger = { once = true }\n",
    );
    run_ok(&job);
    let out = committed_text(&s.path("out"));
    assert_eq!(out.lines().count(), 2, "{out}");
    let dead = std::fs::read_to_string(s.path("ckpt/dead_letter/batch-0.jsonl")).unwrap();
    let d: serde_json::Value = serde_json::from_str(dead.lines().next().unwrap()).unwrap();
    assert_eq!(d["reason"], "refused by chaos: event_id is \"refuse\"");
    assert_eq!(serde_json::from_str::<serde_json::Value>(d["raw"].as_str().unwrap()).unwrap()["event_id"], "refuse");
    assert!(d["origin"].as_str().unwrap().contains("operator[0]"), "{d}");
}

#[test]
fn a_python_plugin_sees_no_files_environment_or_clock() {
    std::env::set_var("WEIR_CACHE_DIR", repo().join("target/weir-cache"));
    std::env::set_var("WEIR_TEST_SECRET", "hunter2");
    let runtime = Runtime::new().unwrap();
    let mut p =
        MapperPlugin::load(&runtime, &plugin("probe-py"), "", PluginLimits::default(), batch(&[]).schema()).unwrap();
    let out = p.map_batch(0, &batch(&["x"])).unwrap();
    let seen = arrow::array::AsArray::as_string::<i32>(out.column_by_name("seen").unwrap()).value(0).to_string();
    let seen: serde_json::Value = serde_json::from_str(&seen).unwrap();
    assert_eq!(seen["environ"], serde_json::json!({}), "{seen}");
    assert!(seen["read_etc_passwd"].as_str().unwrap().starts_with("error"), "{seen}");
    assert!(seen["list_root"].as_str().unwrap().starts_with("error"), "{seen}");
    assert!(seen["socket"].as_str().unwrap().starts_with("error"), "{seen}");
    assert_eq!(seen["time"], 0.0, "the clock is frozen at the epoch: {seen}");
}

/// What probe-py saw, loaded with `limits`.
fn probe(limits: PluginLimits) -> serde_json::Value {
    std::env::set_var("WEIR_CACHE_DIR", repo().join("target/weir-cache"));
    let runtime = Runtime::new().unwrap();
    let mut p = MapperPlugin::load(&runtime, &plugin("probe-py"), "", limits, batch(&[]).schema()).unwrap();
    let out = p.map_batch(0, &batch(&["x"])).unwrap();
    let seen = arrow::array::AsArray::as_string::<i32>(out.column_by_name("seen").unwrap()).value(0).to_string();
    serde_json::from_str(&seen).unwrap()
}

/// By default randomness comes from fixed seeds (a replayed batch gets the same numbers) and
/// the clock reads the epoch; `grant = ["clock", "random"]` gives the real ones.
#[test]
fn randomness_is_fixed_and_the_clock_frozen_unless_the_job_grants_them() {
    let (a, b) = (probe(PluginLimits::default()), probe(PluginLimits::default()));
    let random = a["random"].as_str().unwrap();
    assert!(random.starts_with("ok: "), "{a}");
    assert_eq!(a["random"], b["random"], "two instances draw the same numbers");
    let granted = PluginLimits { grant_random: true, grant_clock: true, ..PluginLimits::default() };
    let (c, d) = (probe(granted), probe(granted));
    assert_ne!(c["random"], d["random"], "granted randomness is fresh");
    assert_ne!(c["random"], a["random"]);
    assert!(c["time"].as_f64().unwrap() > 1.7e9, "the real clock: {c}");
}

#[test]
fn compiled_components_are_cached_on_disk_by_content_hash() {
    let cache = tempfile::tempdir().unwrap();
    let s = Scratch::new();
    s.write(
        "in/a.json",
        "{\"event_id\":\"a\",\"user_id\":\"u\",\"amount\":1.0,\"event_time\":\"2024-01-01T00:00:00Z\"}\n",
    );
    let job = s.job(
        "[source]\nformat = \"json\"\npath = \"{dir}/in\"\nschema = \"event_id string, user_id string, amount double, event_time timestamp\"\n\
         [[operator]]\nkind = \"map\"\nplugin = \"{plugin:filter}\"\n\
         [sink]\nformat = \"json\"\npath = \"{dir}/out\"\ncheckpoint = \"{dir}/ckpt\"\ntrigger = { once = true }\n",
    );
    let run = || {
        let out = weir().env("WEIR_CACHE_DIR", cache.path()).args(["run", "--quiet"]).arg(&job).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    run();
    let digest = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(std::fs::read(plugin("filter")).unwrap()))
    };
    let entries: Vec<String> = std::fs::read_dir(cache.path().join("components"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].starts_with(&digest) && entries[0].ends_with(".cwasm"), "{entries:?}");
    let modified = std::fs::metadata(cache.path().join("components").join(&entries[0])).unwrap().modified().unwrap();
    run();
    let again = std::fs::metadata(cache.path().join("components").join(&entries[0])).unwrap().modified().unwrap();
    assert_eq!(modified, again, "the second start reuses the compiled artifact instead of compiling again");
}

fn chaos_job(s: &Scratch, policy: &str) -> std::path::PathBuf {
    s.job(&format!(
        "[source]\nformat = \"json\"\npath = \"{{dir}}/in\"\nschema = \"event_id string, user_id string, amount double, event_time timestamp\"\n\
         [[operator]]\nkind = \"map\"\nplugin = \"{{plugin:chaos}}\"\n{policy}\n\
         [sink]\nformat = \"json\"\npath = \"{{dir}}/out\"\ncheckpoint = \"{{dir}}/ckpt\"\ntrigger = {{ once = true }}\n"
    ))
}

fn chaos_rows(ids: &[&str]) -> String {
    ids.iter()
        .map(|id| {
            format!(
                "{{\"event_id\":\"{id}\",\"user_id\":\"u\",\"amount\":1.0,\"event_time\":\"2024-01-01T00:00:00Z\"}}\n"
            )
        })
        .collect()
}

/// on_error = "dead_letter": the batch is halved until the rows that trap are alone; they go to
/// the dead-letter output with the error, every other row is mapped, and the job goes on.
#[test]
fn on_error_dead_letter_sets_aside_exactly_the_rows_the_plugin_traps_on() {
    let s = Scratch::new();
    let ids: Vec<String> = (0..37).map(|i| if i == 5 || i == 30 { "panic".into() } else { format!("e{i}") }).collect();
    s.write("in/a.json", &chaos_rows(&ids.iter().map(String::as_str).collect::<Vec<_>>()));
    run_ok(&chaos_job(&s, "on_error = \"dead_letter\""));
    let out: Vec<String> = committed_text(&s.path("out"))
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event_id"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = ids.iter().filter(|i| *i != "panic").cloned().collect();
    assert_eq!(out, want, "every other row, in order");
    let dead = std::fs::read_to_string(s.path("ckpt/dead_letter/batch-0.jsonl")).unwrap();
    let d: Vec<serde_json::Value> = dead.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(d.len(), 2, "{dead}");
    for r in &d {
        let reason = r["reason"].as_str().unwrap();
        assert!(reason.contains("`map-batch` trapped") && reason.contains("the row was set aside"), "{reason}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(r["raw"].as_str().unwrap()).unwrap()["event_id"], "panic");
    }
    assert_eq!(progress(&s.path("ckpt"))[0]["numDeadLetterRows"], 2);
}

/// on_error = "retry": a plugin that fails every time is called 1 + retries times, then the job
/// stops saying so.
#[test]
fn on_error_retry_gives_up_after_the_retries_and_says_so() {
    let s = Scratch::new();
    s.write("in/a.json", &chaos_rows(&["a", "panic"]));
    let err = run_err(&chaos_job(&s, "on_error = \"retry\"\nretries = 2"));
    assert!(
        err.contains("`map-batch` trapped") && err.contains("tried 3 times: on_error = \"retry\" gave up"),
        "{err}"
    );
    assert!(!s.path("ckpt/commits/0").exists(), "the batch is not committed");
}

/// A refused row and a trapping row in one batch, with on_bad_record = "dead_letter" and
/// on_error = "dead_letter": each is set aside once, however many times the batch is halved.
#[test]
fn refused_and_trapping_rows_are_each_set_aside_once() {
    let s = Scratch::new();
    s.write("in/a.json", &chaos_rows(&["a", "refuse", "b", "c", "panic", "d"]));
    let job = chaos_job(&s, "on_error = \"dead_letter\"");
    let text = std::fs::read_to_string(&job).unwrap();
    std::fs::write(&job, format!("on_bad_record = \"dead_letter\"\n{text}")).unwrap();
    run_ok(&job);
    assert_eq!(committed_text(&s.path("out")).lines().count(), 4);
    let dead = std::fs::read_to_string(s.path("ckpt/dead_letter/batch-0.jsonl")).unwrap();
    let ids: Vec<String> = dead
        .lines()
        .map(|l| {
            let d: serde_json::Value = serde_json::from_str(l).unwrap();
            serde_json::from_str::<serde_json::Value>(d["raw"].as_str().unwrap()).unwrap()["event_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, vec!["refuse", "panic"], "{dead}");
}

/// Two plugins in one process (one engine), as two jobs would be: while one is stuck in a
/// runaway loop until its CPU limit stops it, the other keeps mapping batches on another thread.
#[test]
fn a_runaway_plugin_does_not_hold_up_another_plugin_in_the_same_process() {
    std::env::set_var("WEIR_CACHE_DIR", repo().join("target/weir-cache"));
    let runtime: &'static Runtime = Box::leak(Box::new(Runtime::new().unwrap()));
    let limits = PluginLimits { cpu_time_per_call: std::time::Duration::from_secs(2), ..PluginLimits::default() };
    let mut stuck = MapperPlugin::load(runtime, &plugin("chaos"), "", limits, batch(&[]).schema()).unwrap();
    let mut healthy = MapperPlugin::load(runtime, &plugin("chaos"), "", limits, batch(&[]).schema()).unwrap();
    let spinning = std::thread::spawn(move || stuck.map_batch(0, &batch(&["spin"])).unwrap_err().to_string());
    let mut mapped = 0;
    while !spinning.is_finished() {
        assert_eq!(healthy.map_batch(mapped, &batch(&["a", "b"])).unwrap().num_rows(), 2);
        mapped += 1;
    }
    let msg = spinning.join().unwrap();
    assert!(msg.contains("ran longer than its CPU time limit of 2s"), "{msg}");
    assert!(mapped > 10, "the healthy plugin mapped only {mapped} batches while the other one spun");
}
