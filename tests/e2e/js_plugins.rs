//! JavaScript plugins on the JS SDK (guest-sdk/js): sessionize-js writes exactly what the Rust
//! sessionize writes, and the SDK's and the JS plugins' own node tests pass. (enrich-js against
//! the Rust enrich: pipeline.rs; router-js with the other routers: routers.rs; hostile JS:
//! hostile_js.rs.)

use std::process::Command;

use crate::common::*;

/// The sessionize job of stateful.rs: event-time watermark 10 minutes behind, gap 30 minutes.
fn sessionize_job(s: &Scratch, plugin: &str) -> std::path::PathBuf {
    s.job(&format!(
        r#"state_store = "memory"
[source]
format = "json"
path = "{{dir}}/in"
schema = "user_id string, event_time timestamp, amount double"
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

/// The Rust and JavaScript plugins agree byte for byte on a larger, shuffled input (late rows,
/// ties, several batches, sessions closed by later events and by the event-time timeout).
#[test]
fn sessionize_rust_and_javascript_outputs_are_identical() {
    let mut outputs = Vec::new();
    for plugin in ["sessionize", "sessionize-js"] {
        let s = Scratch::new();
        let mut x: u64 = 7;
        for f in 0..6 {
            let mut text = String::new();
            for i in 0..400u64 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let minute = (f * 400 + i) / 8 + (x >> 60); // mostly increasing, jittered
                let user = (x >> 33) % 200;
                let amount = ((x >> 20) % 10_000) as f64 / 100.0;
                text.push_str(&format!(
                    "{{\"user_id\":\"u{user}\",\"event_time\":\"2024-01-01T{:02}:{:02}:00Z\",\"amount\":{amount:?}}}\n",
                    minute / 60,
                    minute % 60
                ));
            }
            // A null amount counts as 0.0.
            if f == 2 {
                text.push_str("{\"user_id\":\"u1\",\"event_time\":\"2024-01-01T01:40:00Z\",\"amount\":null}\n");
            }
            s.write(&format!("in/f{f}.json"), &text);
        }
        run_ok(&sessionize_job(&s, plugin));
        outputs.push(committed_text(&s.path("out")));
    }
    assert!(outputs[0].lines().count() > 100, "{}", outputs[0]);
    assert_eq!(outputs[0], outputs[1]);
}

/// A null event time is refused by sessionize-js naming its row: dead-lettered with the
/// plugin's message, as the Rust plugin's is (stateful.rs).
#[test]
fn sessionize_js_sends_a_refused_row_to_the_dead_letter_output() {
    let s = Scratch::new();
    s.write(
        "in/a.json",
        "{\"user_id\":\"u1\",\"event_time\":\"2024-01-01T00:00:00Z\",\"amount\":1.0}\n\
         {\"user_id\":\"u1\",\"event_time\":null,\"amount\":2.0}\n\
         {\"user_id\":\"u1\",\"event_time\":\"2024-01-01T00:10:00Z\",\"amount\":3.0}\n\
         {\"user_id\":\"u2\",\"event_time\":\"2024-01-01T02:00:00Z\",\"amount\":1.0}\n",
    );
    let job = sessionize_job(&s, "sessionize-js");
    let text = std::fs::read_to_string(&job).unwrap().replace("state_store", "on_bad_record = \"dead_letter\"\nstate_store");
    std::fs::write(&job, text).unwrap();
    run_ok(&job);
    assert_eq!(
        committed_text(&s.path("out")),
        "{\"user_id\":\"u1\",\"session_start\":\"2024-01-01T00:00:00.000Z\",\"session_end\":\"2024-01-01T00:40:00.000Z\",\"events\":2,\"total\":4.0}\n"
    );
    let dead = std::fs::read_to_string(s.path("ckpt/dead_letter/batch-0.jsonl")).unwrap();
    assert_eq!(dead.lines().count(), 1, "{dead}");
    assert!(dead.contains("`event_time` is null: a session event needs a time"), "{dead}");
    assert!(dead.contains("sessionize-js.wasm"), "{dead}");
}

/// The SDK's tests (guest-sdk/js/test) and each JS plugin's own (app.test.mjs), under node.
#[test]
fn the_js_sdk_and_plugin_tests_pass_under_node() {
    let out = Command::new("node")
        .args(["--test", "guest-sdk/js/test", "plugins/enrich-js", "plugins/sessionize-js", "plugins/router-js"])
        .current_dir(repo())
        .output()
        .expect("running node (scripts/js-toolchain.sh needs Node.js 18+)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "node --test failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("# fail 0"), "{text}");
    let passed: usize = text.lines().find_map(|l| l.strip_prefix("# pass ")).unwrap().parse().unwrap();
    assert!(passed >= 20, "only {passed} node tests ran:\n{text}");
}
