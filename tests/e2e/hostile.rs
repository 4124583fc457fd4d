//! User code cannot take the host down: hostile plugins (tests/plugins/hostile, and the router's
//! `emit_flood`) try what a careless or malicious plugin would, and each job ends with a clear
//! error naming the plugin, the export, the batch and the limit (or follows `on_error`), while
//! `weir` runs with its data segment capped at 2 GiB (RLIMIT_DATA: heap and private writable
//! mappings, which is where an amplified result would go). Without the limits these jobs would
//! need many GiB, and die of it, or block for an hour.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// The data limit the hostile jobs run under.
const DATA_LIMIT: u64 = 2 << 30;

/// How long a hostile job may take before the test calls it hung (it finishes in seconds; an
/// hour-long sleep that blocked the host would not).
const HANG: Duration = Duration::from_secs(240);

/// Runs `cmd` with RLIMIT_DATA at 2 GiB, killing it if it hangs.
fn run_capped(mut cmd: Command) -> Output {
    // SAFETY: setrlimit is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: DATA_LIMIT as libc::rlim_t, rlim_max: DATA_LIMIT as libc::rlim_t };
            if libc::setrlimit(libc::RLIMIT_DATA, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawning weir");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > HANG {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "weir still running after {HANG:?}: a plugin held the host; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn run(job: &Path) -> Output {
    let mut c = weir();
    c.args(["run", "--quiet"]).arg(job);
    run_capped(c)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Fails unless the job stopped with an error (exit 1) whose message has every one of `parts`,
/// and without a panic of the host.
fn assert_stopped_with(o: &Output, parts: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "an error exit, not a crash or success; stderr:\n{err}");
    assert!(!err.contains("panicked"), "the host panicked:\n{err}");
    for p in parts {
        assert!(err.contains(p), "missing {p:?} in:\n{err}");
    }
}

/// A job of `rows` input rows, each with a 64 KiB `payload`, through the hostile plugin in
/// `mode`, with `extra` lines in its operator table and `top` lines at the top of the job.
fn hostile_job(s: &Scratch, mode: &str, rows: usize, top: &str, extra: &str) -> std::path::PathBuf {
    let payload = "p".repeat(64 << 10);
    let lines: String = (0..rows).map(|i| format!("{{\"event_id\":\"e{i}\",\"payload\":\"{payload}\"}}\n")).collect();
    s.write("in/a.json", &lines);
    s.job(&format!(
        "{top}\n[source]\nformat = \"json\"\npath = \"{{dir}}/in\"\nschema = \"event_id string, payload string\"\n\
         [[operator]]\nkind = \"map\"\nplugin = \"{{plugin:hostile}}\"\nconfig = \"{mode}\"\n{extra}\n\
         [sink]\nformat = \"json\"\npath = \"{{dir}}/out\"\ncheckpoint = \"{{dir}}/ckpt\"\ntrigger = {{ once = true }}\n"
    ))
}

#[test]
fn a_selection_repeating_one_row_twenty_million_times_is_refused_before_it_is_copied() {
    let s = Scratch::new();
    let o = run(&hostile_job(&s, "amplify-rows", 3, "", ""));
    assert_stopped_with(
        &o,
        &[
            "hostile.wasm",
            "`map-batch` returned 20000000 rows (batch 0), past the limit of 16777216 rows per call",
            "max_output_rows",
        ],
    );
}

#[test]
fn pass_through_columns_are_counted_at_the_rows_selected() {
    // 65,536 copies of a 64 KiB row: 4 GiB once copied, past the default 512 MiB.
    let s = Scratch::new();
    let o = run(&hostile_job(&s, "amplify-bytes", 1, "", ""));
    assert_stopped_with(
        &o,
        &[
            "`map-batch` returned a result of 4096 MiB (batch 0), past the limit of 512 MiB per call",
            "max_output_bytes",
        ],
    );
    // A job that means it raises the limit (here: to let 4096 rows of 64 KiB through).
    let s = Scratch::new();
    let job = hostile_job(&s, "amplify-bytes", 1, "", "max_output_rows = 100\n");
    assert_stopped_with(&run(&job), &["returned 65536 rows", "past the limit of 100 rows per call"]);
}

#[test]
fn an_amplifying_row_follows_on_error_dead_letter() {
    let s = Scratch::new();
    let job = hostile_job(&s, "amplify-rows", 2, "on_bad_record = \"dead_letter\"", "on_error = \"dead_letter\"\n");
    let o = run(&job);
    assert!(o.status.success(), "{}", stderr(&o));
    let dead = std::fs::read_to_string(s.path("ckpt/dead_letter/batch-0.jsonl")).unwrap();
    assert_eq!(dead.lines().count(), 2, "both rows amplify, both are set aside");
    for l in dead.lines() {
        let d: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(d["reason"].as_str().unwrap().contains("max_output_rows"), "{d}");
    }
}

#[test]
fn a_huge_error_message_is_cut_before_it_is_copied_per_dead_lettered_row() {
    let s = Scratch::new();
    let job = hostile_job(&s, "long-error", 3, "on_bad_record = \"dead_letter\"", "");
    let o = run(&job);
    assert!(o.status.success(), "{}", stderr(&o));
    let dead = std::fs::read_to_string(s.path("ckpt/dead_letter/batch-0.jsonl")).unwrap();
    assert_eq!(dead.lines().count(), 3);
    for l in dead.lines() {
        let d: serde_json::Value = serde_json::from_str(l).unwrap();
        let reason = d["reason"].as_str().unwrap();
        assert!(reason.starts_with("row 0 refused: xxx"), "{}", &reason[..100.min(reason.len())]);
        assert!(reason.len() < 4096 + 200, "a {} byte reason", reason.len());
        assert!(
            reason.ends_with("[cut: the plugin's message had 1048591 bytes; max_error_length is 4096]"),
            "{reason}"
        );
    }
    // The limit is a setting.
    let s = Scratch::new();
    let job = hostile_job(&s, "long-error", 1, "on_bad_record = \"dead_letter\"", "max_error_length = \"100\"\n");
    assert!(run(&job).status.success());
    let dead = std::fs::read_to_string(s.path("ckpt/dead_letter/batch-0.jsonl")).unwrap();
    let d: serde_json::Value = serde_json::from_str(dead.lines().next().unwrap()).unwrap();
    assert!(d["reason"].as_str().unwrap().contains("max_error_length is 100]"), "{d}");
}

#[test]
fn a_plugin_that_sleeps_an_hour_does_not_hold_the_host() {
    // With the clock frozen no time passes: the sleep returns at once and the batch goes on.
    let s = Scratch::new();
    let o = run(&hostile_job(&s, "sleep", 2, "", "max_call_time = \"30 seconds\"\n"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(committed_text(&s.path("out")).lines().count(), 2);
}

#[test]
fn a_plugin_that_polls_a_clock_for_an_hour_does_not_hold_the_host() {
    let s = Scratch::new();
    let o = run(&hostile_job(&s, "poll", 2, "", "max_call_time = \"30 seconds\"\n"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(committed_text(&s.path("out")).lines().count(), 2);
}

#[test]
fn a_chatty_plugin_logs_at_most_max_log_lines_per_batch_labelled_with_plugin_and_batch() {
    let s = Scratch::new();
    let o = run(&hostile_job(&s, "chatty", 1, "", "max_log_lines = 3\n"));
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let logged: Vec<&str> = err.lines().filter(|l| l.contains("chatty line")).collect();
    assert_eq!(
        logged,
        vec![
            "plugin hostile.wasm batch 0: chatty line 0",
            "plugin hostile.wasm batch 0: chatty line 1",
            "plugin hostile.wasm batch 0: chatty line 2"
        ],
        "{err}"
    );
    assert!(err.contains("plugin hostile.wasm batch 0: log limit reached:"), "{err}");
    assert!(err.contains("raise max_log_lines"), "{err}");
}

#[test]
fn malformed_results_are_refused_naming_the_column_never_a_panic() {
    let cases = [
        ("bad-len", "column `note`: 9 offsets for 3 rows"),
        ("bad-offsets", "column `note`: offsets decrease"),
        ("bad-offsets-past", "column `note`: last offset 1003 is past the 3 data bytes"),
        ("bad-utf8", "column `note`: invalid string data"),
        ("bad-type", "column `note`: is bigint but output-schema declared string"),
        ("bad-rows", "`rows` refers to input row 3 of 3"),
    ];
    for (mode, message) in cases {
        let s = Scratch::new();
        let o = run(&hostile_job(&s, mode, 3, "", ""));
        assert_stopped_with(&o, &["hostile.wasm", "`map-batch` returned an invalid batch (batch 0)", message]);
    }
}

#[test]
fn a_foreach_batch_plugin_emitting_without_end_is_stopped_at_max_emit_bytes() {
    // 100,000 emits of a 64 KiB batch: 6 GiB held without the limit. The call's time limit is
    // raised so that only the emit limit can stop it (on a loaded machine the default 10 s of a
    // debug build's call could run out first).
    let s = Scratch::new();
    let payload = "p".repeat(64 << 10);
    s.write("in/a.json", &format!("{{\"event_id\":\"e\",\"amount\":1.0,\"payload\":\"{payload}\"}}\n"));
    let job = s.job(
        "[source]\nformat = \"json\"\npath = \"{dir}/in\"\nschema = \"event_id string, amount double, payload string\"\n\
         [sink]\nformat = \"foreach_batch\"\nplugin = \"{plugin:router-raw}\"\nconfig = \"emit_flood=100000\"\n\
         max_call_time = \"10 minutes\"\n\
         checkpoint = \"{dir}/ckpt\"\ntrigger = { once = true }\n\
         [[sink.output]]\nname = \"big\"\nformat = \"json\"\npath = \"{dir}/big\"\n",
    );
    let o = run(&job);
    assert_stopped_with(
        &o,
        &["router-raw.wasm", "`write-batch` emitted more than 512 MiB, past the limit of max_emit_bytes (batch 0)"],
    );
}

#[test]
fn a_component_larger_than_max_component_size_is_refused_before_it_is_read() {
    let s = Scratch::new();
    let o = run(&hostile_job(&s, "pass", 1, "", "max_component_size = \"1 KiB\"\n"));
    assert_stopped_with(&o, &["hostile.wasm", "more than max_component_size (1024 bytes)"]);
}

#[test]
fn a_component_slower_to_compile_than_max_compile_time_is_refused() {
    let s = Scratch::new();
    let job = hostile_job(&s, "pass", 1, "", "max_compile_time = \"1 ms\"\n");
    let mut c = weir();
    c.env("WEIR_CACHE_DIR", "").args(["run", "--quiet"]).arg(&job);
    let o = run_capped(c);
    assert_stopped_with(&o, &["hostile.wasm", "compiling it took longer than max_compile_time (1ms)"]);
}

#[test]
fn the_compiled_code_cache_is_private_and_one_others_can_write_is_not_used() {
    let s = Scratch::new();
    let job = hostile_job(&s, "pass", 1, "", "");
    // A new cache directory is created for this user alone, and used.
    let cache = s.path("cache");
    let mut c = weir();
    c.env("WEIR_CACHE_DIR", &cache).args(["run", "--quiet"]).arg(&job);
    let o = run_capped(c);
    assert!(o.status.success(), "{}", stderr(&o));
    let mode = std::fs::metadata(cache.join("components")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "components/ is mode {mode:o}");
    assert_eq!(std::fs::read_dir(cache.join("components")).unwrap().count(), 1, "one compiled entry");

    // A cache directory anyone can write is not trusted: nothing is loaded from it or put in it.
    let s = Scratch::new();
    let job = hostile_job(&s, "pass", 1, "", "");
    let open = s.path("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut c = weir();
    c.env("WEIR_CACHE_DIR", &open).args(["run", "--quiet"]).arg(&job);
    let o = run_capped(c);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("not using the compiled-code cache") && err.contains("writable by group or others"), "{err}");
    let entries = std::fs::read_dir(open.join("components")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(entries, 0, "nothing written to an untrusted cache");
}
