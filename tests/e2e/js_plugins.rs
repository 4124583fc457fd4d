//! JavaScript plugins on the JS SDK (guest-sdk/js): sessionize-js writes exactly what the Rust
//! sessionize writes, and the SDK's and the JS plugins' own node tests pass. (enrich-js against
//! the Rust enrich: pipeline.rs; router-js with the other routers: routers.rs; hostile JS:
//! hostile_js.rs.)

use std::process::Command;

use crate::common::*;
use crate::stateful::{assert_sessionize_identical_to_rust, sessionize_job};

#[test]
fn sessionize_rust_and_javascript_outputs_are_identical() {
    assert_sessionize_identical_to_rust("sessionize-js");
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
    run_ok(&sessionize_job(&s, "sessionize-js", "memory", "on_bad_record = \"dead_letter\""));
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
