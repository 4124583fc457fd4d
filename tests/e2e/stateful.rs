//! Stateful plugins (kind = "stateful"): the sessionize plugin (GroupState with an event-time
//! timeout, in Rust and in Python) and the fraud plugin (transformWithState-style timers), on
//! both state stores, across restarts, with late rows and refused rows. Outputs are worked out
//! by hand. (Killed runs: crash.rs.)

use crate::common::*;

const SCHEMA: &str = "user_id string, event_time timestamp, amount double";

pub(crate) fn event(user: &str, hhmm: &str, amount: f64) -> String {
    format!("{{\"user_id\":\"{user}\",\"event_time\":\"2024-01-01T{hhmm}:00Z\",\"amount\":{amount:?}}}\n")
}

pub(crate) fn sessionize_job(s: &Scratch, plugin: &str, store: &str, extra: &str) -> std::path::PathBuf {
    s.job(&format!(
        r#"state_store = "{store}"
{extra}
[source]
format = "json"
path = "{{dir}}/in"
schema = "{SCHEMA}"
max_files_per_trigger = 1

[watermark]
column = "event_time"
delay = "10 minutes"

[[operator]]
kind = "stateful"
plugin = "{{plugin:{plugin}}}"
group_by = ["user_id"]
timeout = "event_time"
config = "gap_minutes=30"

[sink]
format = "json"
path = "{{dir}}/out"
checkpoint = "{{dir}}/ckpt"
trigger = {{ available_now = true }}
"#
    ))
}

fn session(user: &str, start: &str, end: &str, events: i64, total: f64) -> String {
    format!(
        "{{\"user_id\":\"{user}\",\"session_start\":\"2024-01-01T{start}:00.000Z\",\"session_end\":\"2024-01-01T{end}:00.000Z\",\"events\":{events},\"total\":{total:?}}}\n"
    )
}

/// Batch 0 (watermark the epoch): u1 at 00:00 and 00:10, u2 at 00:05; nothing closes. Its end
/// sets the watermark to 00:00 (00:10 − 10 min).
/// Batch 1 (watermark 00:00): u1 at 00:50 is more than 30 min after 00:10, so u1's first
/// session closes [00:00, 00:40); u3 at 01:30 moves the watermark to 01:20.
/// Batch 2, a no-data batch (watermark 01:20): u2's timeout (00:35) fires; u1's (00:50 + 30 =
/// 01:20) does not, the watermark must pass it.
/// Then a restart with a new file: batch 3 (watermark 01:20, late at or behind 01:20): u9 at
/// 00:30 is late and dropped; u1 at 01:55 closes u1's session [00:50, 01:20) from the restored
/// state, and a no-data batch 4 (watermark 01:45) closes nothing.
fn sessionize_across_batches_and_a_restart(plugin: &str, store: &str) {
    let s = Scratch::new();
    s.write("in/a.json", &(event("u1", "00:00", 1.0) + &event("u2", "00:05", 10.0) + &event("u1", "00:10", 2.0)));
    s.write("in/b.json", &(event("u1", "00:50", 4.0) + &event("u3", "01:30", 7.0)));
    let job = sessionize_job(&s, plugin, store, "");
    run_ok(&job);
    let first = session("u1", "00:00", "00:40", 2, 3.0) + &session("u2", "00:05", "00:35", 1, 10.0);
    assert_eq!(committed_text(&s.path("out")), first);
    s.write("in/c.json", &(event("u9", "00:30", 100.0) + &event("u1", "01:55", 5.0)));
    run_ok(&job);
    assert_eq!(committed_text(&s.path("out")), first + &session("u1", "00:50", "01:20", 1, 4.0));
    let p = progress(&s.path("ckpt"));
    let ops: Vec<&serde_json::Value> = p.iter().map(|r| &r["stateOperators"][0]).collect();
    assert_eq!(ops.len(), 5, "batches 0-4");
    assert_eq!(ops[2]["customMetrics"]["numTimedOutGroups"], 1, "batch 2: u2 timed out");
    assert_eq!(ops[3]["numRowsDroppedByWatermark"], 1, "batch 3: u9 is late");
    assert_eq!(ops[4]["numRowsTotal"], 2, "u1 and u3 keep open sessions");
    assert_eq!(p[2]["numInputRows"], 0, "batch 2 is a no-data batch");
}

#[test]
fn sessionize_closes_sessions_by_gap_and_by_event_time_timeout_and_resumes_after_restart() {
    sessionize_across_batches_and_a_restart("sessionize", "memory");
}

#[test]
fn sessionize_on_rocksdb_state() {
    sessionize_across_batches_and_a_restart("sessionize", "rocksdb");
}

#[test]
fn sessionize_in_python_gives_the_same_sessions() {
    sessionize_across_batches_and_a_restart("sessionize-py", "memory");
}

/// A larger, shuffled input: 6 files of 400 events over 200 users, times mostly increasing but
/// jittered (late rows, ties), some null amounts (they count as 0.0).
fn shuffled_events(s: &Scratch) {
    let mut x: u64 = 11;
    for f in 0..6 {
        let mut text = String::new();
        for i in 0..400u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let minute = (f * 400 + i) / 8 + (x >> 60); // mostly increasing, jittered
            let user = (x >> 33) % 200;
            let amount = if (x >> 8) % 17 == 0 {
                "null".to_string()
            } else {
                format!("{:?}", ((x >> 20) % 10_000) as f64 / 100.0)
            };
            text.push_str(&format!(
                "{{\"user_id\":\"u{user}\",\"event_time\":\"2024-01-01T{:02}:{:02}:00Z\",\"amount\":{amount}}}\n",
                minute / 60,
                minute % 60
            ));
        }
        s.write(&format!("in/f{f}.json"), &text);
    }
}

/// `plugin` (sessionize in another language) writes byte for byte what the Rust sessionize
/// writes over [`shuffled_events`]: sessions closed by later events and by the event-time
/// timeout, across several batches.
pub(crate) fn assert_sessionize_identical_to_rust(plugin: &str) {
    let mut outputs = Vec::new();
    for p in ["sessionize", plugin] {
        let s = Scratch::new();
        shuffled_events(&s);
        run_ok(&sessionize_job(&s, p, "memory", ""));
        outputs.push(committed_text(&s.path("out")));
    }
    assert!(outputs[0].lines().count() > 100, "{}", outputs[0]);
    assert_eq!(outputs[0], outputs[1], "{plugin} differs from the Rust sessionize");
}

#[test]
fn sessionize_rust_and_python_outputs_are_identical() {
    assert_sessionize_identical_to_rust("sessionize-py");
}

/// A row the plugin refuses (a null event time) goes to the dead-letter output with the
/// plugin's message; the rest of its group and batch go on.
#[test]
fn a_refused_row_goes_to_the_dead_letter_output() {
    let s = Scratch::new();
    s.write(
        "in/a.json",
        &(event("u1", "00:00", 1.0)
            + "{\"user_id\":\"u1\",\"event_time\":null,\"amount\":2.0}\n"
            + &event("u1", "00:10", 3.0)
            + &event("u2", "02:00", 1.0)),
    );
    run_ok(&sessionize_job(&s, "sessionize", "memory", "on_bad_record = \"dead_letter\""));
    assert_eq!(committed_text(&s.path("out")), session("u1", "00:00", "00:40", 2, 4.0));
    let dead = std::fs::read_to_string(s.path("ckpt/dead_letter/batch-0.jsonl")).unwrap();
    assert_eq!(dead.lines().count(), 1, "{dead}");
    assert!(dead.contains("`event_time` is null: a session event needs a time"), "{dead}");
    assert!(dead.contains("sessionize.wasm"), "{dead}");
}

/// Without on_bad_record = "dead_letter" the refused row stops the job, naming plugin, batch
/// and the reason.
#[test]
fn a_refused_row_stops_the_job_by_default() {
    let s = Scratch::new();
    s.write("in/a.json", &(event("u1", "00:00", 1.0) + "{\"user_id\":\"u1\",\"event_time\":null,\"amount\":2.0}\n"));
    let err = run_err(&sessionize_job(&s, "sessionize", "memory", ""));
    assert!(
        err.contains("sessionize.wasm: `process-groups` returned an error (batch 0)")
            && err.contains("`event_time` is null"),
        "{err}"
    );
}

fn fraud_job(s: &Scratch, timeout: &str) -> std::path::PathBuf {
    s.job(&format!(
        r#"
[source]
format = "json"
path = "{{dir}}/in"
schema = "{SCHEMA}"
max_files_per_trigger = 1

[watermark]
column = "event_time"
delay = "0 minutes"

[[operator]]
kind = "stateful"
plugin = "{{plugin:fraud}}"
group_by = ["user_id"]
timeout = "{timeout}"
config = "threshold=1000, window_minutes=10"

[sink]
format = "json"
path = "{{dir}}/out"
checkpoint = "{{dir}}/ckpt"
trigger = {{ available_now = true }}
"#
    ))
}

/// u1 spends 600 at 00:00 and 500 at 00:05: 1100 within 10 minutes alerts (once: 00:07 adds
/// 10 but u1 is still alerting). u2's 900 and 200 are 10 minutes apart, so never in one window.
/// Each key's cleanup timer (latest event + 10 min) fires in a later batch once the watermark
/// reaches it, and the state leaves the store without a row of input for the key.
#[test]
fn fraud_alerts_once_per_crossing_and_its_cleanup_timers_empty_the_state() {
    let s = Scratch::new();
    s.write("in/a.json", &(event("u1", "00:00", 600.0) + &event("u2", "00:00", 900.0) + &event("u1", "00:05", 500.0)));
    s.write("in/b.json", &(event("u1", "00:07", 10.0) + &event("u2", "00:10", 200.0)));
    s.write("in/c.json", &event("u3", "00:30", 1.0));
    run_ok(&fraud_job(&s, "event_time"));
    assert_eq!(
        committed_text(&s.path("out")),
        "{\"user_id\":\"u1\",\"alert_time\":\"2024-01-01T00:05:00.000Z\",\"window_total\":1100.0,\"window_events\":2}\n"
    );
    let p = progress(&s.path("ckpt"));
    let ops: Vec<&serde_json::Value> = p.iter().map(|r| &r["stateOperators"][0]).collect();
    // Timers: after batch 1, u1's at 00:17 and u2's at 00:20. Batch 2 runs with the watermark
    // 00:10 (set by batch 1): none fires. Batch 3 (no data, watermark 00:30) fires both.
    let expired: Vec<u64> = ops.iter().map(|o| o["customMetrics"]["numExpiredTimers"].as_u64().unwrap()).collect();
    assert_eq!(expired, vec![0, 0, 0, 2], "{ops:?}");
    assert_eq!(ops.last().unwrap()["numRowsTotal"], 1, "only u3 is left");
}

/// A plugin that sets a timer of a kind the operator's `timeout` does not allow is stopped,
/// with a message saying what to set.
#[test]
fn a_timer_the_operator_does_not_allow_stops_the_job_with_what_to_set() {
    let s = Scratch::new();
    s.write("in/a.json", &event("u1", "00:00", 600.0));
    let err = run_err(&fraud_job(&s, "processing_time"));
    assert!(
        err.contains("it set a timer (event-time) but operator[0] has timeout = \"processing_time\"; set timeout = \"event_time\" in the job file if the plugin is meant to"),
        "{err}"
    );
}

fn counter_job(s: &Scratch, config: &str, timeout: &str) -> std::path::PathBuf {
    s.job(&format!(
        r#"
[source]
format = "json"
path = "{{dir}}/in"
schema = "{SCHEMA}"

[[operator]]
kind = "stateful"
plugin = "{{plugin:counter}}"
group_by = ["user_id"]
timeout = "{timeout}"
config = "{config}"

[sink]
format = "json"
path = "{{dir}}/out"
checkpoint = "{{dir}}/ckpt"
trigger = {{ processing_time = "50 ms" }}
"#
    ))
}

/// Runs a processing-time job while `during` adds input, then stops it with SIGINT.
fn run_for(job: &std::path::Path, during: impl FnOnce()) {
    let mut child = weir().args(["run", "--quiet"]).arg(job).spawn().unwrap();
    during();
    crate::pipeline::send_signal(child.id(), "INT");
    assert!(child.wait().unwrap().success());
}

fn wait_for_output(s: &Scratch, lines: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !s.path("out/_weir_log").exists() || committed_text(&s.path("out")).lines().count() < lines {
        assert!(std::time::Instant::now() < deadline, "no output after 30 s: {}", committed_text(&s.path("out")));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A processing-time timeout fires in a batch without new rows once its duration has passed
/// (Spark's ProcessingTimeTimeout); the key's next rows start again from nothing.
#[test]
fn a_processing_time_timeout_fires_without_new_rows() {
    let s = Scratch::new();
    s.write("in/a.json", &(event("u1", "00:00", 1.0) + &event("u1", "00:01", 1.0)));
    run_for(&counter_job(&s, "timeout_ms=300", "processing_time"), || {
        wait_for_output(&s, 2);
        s.write("in/b.json", &event("u1", "00:02", 1.0));
        wait_for_output(&s, 3);
    });
    assert_eq!(
        committed_text(&s.path("out")),
        "{\"user_id\":\"u1\",\"count\":2,\"why\":\"rows\"}\n{\"user_id\":\"u1\",\"count\":2,\"why\":\"timeout\"}\n{\"user_id\":\"u1\",\"count\":1,\"why\":\"rows\"}\n"
    );
}

/// State past its TTL leaves the store without a call (transformWithState's TTL): the key
/// counts from nothing again, and progress counts the expiry.
#[test]
fn state_past_its_ttl_is_removed_without_a_call() {
    let s = Scratch::new();
    s.write("in/a.json", &(event("u1", "00:00", 1.0) + &event("u1", "00:01", 1.0)));
    run_for(&counter_job(&s, "ttl_ms=200", "none"), || {
        wait_for_output(&s, 1);
        std::thread::sleep(std::time::Duration::from_millis(600));
        s.write("in/b.json", &event("u1", "00:02", 1.0));
        wait_for_output(&s, 2);
    });
    assert_eq!(
        committed_text(&s.path("out")),
        "{\"user_id\":\"u1\",\"count\":2,\"why\":\"rows\"}\n{\"user_id\":\"u1\",\"count\":1,\"why\":\"rows\"}\n"
    );
    let removed: u64 = progress(&s.path("ckpt"))
        .iter()
        .map(|p| p["stateOperators"][0]["customMetrics"]["numValuesRemovedDueToTTLExpiry"].as_u64().unwrap())
        .sum();
    assert_eq!(removed, 1);
}

fn counter_once_job(s: &Scratch, extra: &str) -> std::path::PathBuf {
    s.job(&format!(
        r#"
[source]
format = "json"
path = "{{dir}}/in"
schema = "{SCHEMA}"

[[operator]]
kind = "stateful"
plugin = "{{plugin:counter}}"
group_by = ["user_id"]
max_call_time = "300 ms"
{extra}

[sink]
format = "json"
path = "{{dir}}/out"
checkpoint = "{{dir}}/ckpt"
trigger = {{ available_now = true }}
"#
    ))
}

/// on_error = "dead_letter": the keys the plugin traps on (a panic, a runaway loop) are found by
/// halving the call; their rows go to the dead-letter output with the reason, every other key
/// is counted.
#[test]
fn on_error_dead_letter_sets_aside_the_keys_the_plugin_fails_on() {
    let s = Scratch::new();
    let mut text = String::new();
    for u in ["a", "panic", "b", "spin", "c"] {
        text += &(event(u, "00:00", 1.0) + &event(u, "00:01", 1.0));
    }
    s.write("in/a.json", &text);
    run_ok(&counter_once_job(&s, "on_error = \"dead_letter\""));
    let out = committed_text(&s.path("out"));
    let mut counted: Vec<&str> = out.lines().collect();
    counted.sort();
    assert_eq!(
        counted,
        [
            "{\"user_id\":\"a\",\"count\":2,\"why\":\"rows\"}",
            "{\"user_id\":\"b\",\"count\":2,\"why\":\"rows\"}",
            "{\"user_id\":\"c\",\"count\":2,\"why\":\"rows\"}"
        ]
    );
    let dead = std::fs::read_to_string(s.path("ckpt/dead_letter/batch-0.jsonl")).unwrap();
    let reasons: Vec<serde_json::Value> = dead.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(reasons.len(), 4, "two rows of each failing key: {dead}");
    let of = |user: &str| {
        reasons.iter().filter(|r| r["raw"].as_str().unwrap().contains(&format!("\"{user}\""))).collect::<Vec<_>>()
    };
    assert!(of("panic").iter().all(|r| r["reason"].as_str().unwrap().contains("trapped")), "{dead}");
    assert!(
        of("spin")
            .iter()
            .all(|r| r["reason"].as_str().unwrap().contains("ran longer than its CPU time limit of 300ms")),
        "{dead}"
    );
}

/// on_error = "retry": a plugin that always fails is called retries + 1 times, then the job
/// stops saying so; nothing is committed for the batch.
#[test]
fn on_error_retry_gives_up_and_stops_the_job() {
    let s = Scratch::new();
    s.write("in/a.json", &(event("a", "00:00", 1.0) + &event("panic", "00:00", 1.0)));
    let err = run_err(&counter_once_job(&s, "on_error = \"retry\"\nretries = 2"));
    assert!(err.contains("(tried 3 times: on_error = \"retry\" gave up"), "{err}");
    assert!(!s.path("out/_weir_log/0").exists());
}
