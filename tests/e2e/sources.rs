//! Several sources in one job, unioned, with a watermark per source and Spark's
//! `multipleWatermarkPolicy`, worked by hand. Two JSON sources `a` and `b`, one file each per
//! batch (max_files_per_trigger = 1), feed a 5-minute tumbling count/sum; the delay is 10 minutes.
//!
//! Each source's watermark is the max event time it has seen minus its delay (never going back);
//! the query's is their min (or max), never going back, computed at the end of a batch and used
//! from the next. As in tests/e2e/windows.rs: in batch N a row is late when its window ends at or
//! before batch N−1's watermark; windows ending at or before batch N's own are emitted (append);
//! a no-data batch runs when only the watermark moved.
//!
//! The input (times `HH:MM` on 2024-01-01; `-1d 23:52` is the day before):
//! ```text
//! a/0: x 00:01 (1), x 00:31 (2)     b/0: y 00:02 (4)
//! a/1: x 00:33 (8)                  b/1: y 00:04 (16), y 00:08 (32)
//!                                   b/2: y 00:09 (64), y 00:14 (128)
//!                                   b/3: y 00:41 (256)
//! ```
//! Batch k reads a/k and b/k. Source watermarks after each batch: a: 00:21, 00:23 (then no more
//! data); b: -1d 23:52, -1d 23:58, 00:04, 00:31. `b` lags `a`.
//!
//! The straight runs below (both policies, and the per-source delay) were also checked against
//! Apache Spark 4.3: the same input, `withWatermark` on each input before `union`, and
//! `spark.sql.streaming.multipleWatermarkPolicy`; watermarks, per-source row counts, dropped
//! rows, state rows and output match batch for batch. The restart test goes beyond Spark, which
//! keeps only the global watermark across a restart.

use crate::common::*;

const SCHEMA: &str = "k string, amount double, event_time timestamp";

/// 2024-01-01T00:00:00Z in µs.
const DAY_START: i64 = 1_704_067_200_000_000;

/// `HH:MM` on 2024-01-01 in µs (a negative `minutes` is the day before).
fn at(minutes: i64) -> i64 {
    DAY_START + minutes * 60_000_000
}

fn ev(key: &str, time: &str, amount: f64) -> String {
    format!("{{\"k\":\"{key}\",\"amount\":{amount:?},\"event_time\":\"2024-01-01T{time}:00Z\"}}\n")
}

fn lines(events: &[(&str, &str, f64)]) -> String {
    events.iter().map(|(k, t, a)| ev(k, t, *a)).collect()
}

/// `top`: top-level lines (the policy); `b_extra`: more lines for source `b`.
fn job(top: &str, b_extra: &str) -> String {
    let source = |name: &str, extra: &str| {
        format!(
            "[[source]]\nname = \"{name}\"\nformat = \"json\"\npath = \"{{dir}}/in/{name}\"\nschema = \"{SCHEMA}\"\nmax_files_per_trigger = 1\n{extra}"
        )
    };
    format!(
        "{top}{}{}\
         [watermark]\ncolumn = \"event_time\"\ndelay = \"10 minutes\"\n\
         [[operator]]\nkind = \"aggregate\"\ngroup_by = [\"k\"]\nwindow = {{ column = \"event_time\", size = \"5 minutes\" }}\n\
         aggregates = [{{ fn = \"count\", as = \"n\" }}, {{ fn = \"sum\", column = \"amount\", as = \"total\" }}]\n\
         [sink]\nformat = \"json\"\npath = \"{{dir}}/out\"\noutput_mode = \"append\"\ncheckpoint = \"{{dir}}/ckpt\"\ntrigger = {{ available_now = true }}\n",
        source("a", ""),
        source("b", b_extra),
    )
}

fn write_a(s: &Scratch) {
    s.write("in/a/0.json", &lines(&[("x", "00:01", 1.0), ("x", "00:31", 2.0)]));
    s.write("in/a/1.json", &lines(&[("x", "00:33", 8.0)]));
}

fn write_b_first(s: &Scratch) {
    s.write("in/b/0.json", &lines(&[("y", "00:02", 4.0)]));
    s.write("in/b/1.json", &lines(&[("y", "00:04", 16.0), ("y", "00:08", 32.0)]));
}

fn write_b_later(s: &Scratch) {
    s.write("in/b/2.json", &lines(&[("y", "00:09", 64.0), ("y", "00:14", 128.0)]));
    s.write("in/b/3.json", &lines(&[("y", "00:41", 256.0)]));
}

fn watermarks(p: &[serde_json::Value]) -> Vec<String> {
    p.iter().map(|p| p["eventTime"]["watermark"].as_str().unwrap().to_string()).collect()
}

fn output_rows(p: &[serde_json::Value]) -> Vec<u64> {
    p.iter().map(|p| p["sink"]["numOutputRows"].as_u64().unwrap()).collect()
}

fn json_file(s: &Scratch, rel: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(s.path(rel)).unwrap()).unwrap()
}

/// Under "min" the windows wait for `b`:
/// - batch 0 (watermark epoch): a 00:21, b -1d 23:52 → min -1d 23:52.
/// - batch 1 (-1d 23:52): a 00:23, b -1d 23:58 → -1d 23:58. b's 00:04 and 00:08 count.
/// - batch 2 (-1d 23:58, b only): b 00:04 → 00:04. b's 00:09 and 00:14 are far behind a's
///   watermark (00:23) but not behind the query's: they count.
/// - batch 3 (00:04, b only): b 00:31 → min(00:23, 00:31) = 00:23.
/// - no-data batch 4 (00:23) closes every window ending by 00:23.
fn min_expected() -> Vec<WindowRow> {
    vec![
        row("00:00", "00:05", "x", 1, 1.0),
        row("00:00", "00:05", "y", 2, 20.0),
        row("00:05", "00:10", "y", 2, 96.0),
        row("00:10", "00:15", "y", 1, 128.0),
    ]
}

#[test]
fn under_min_a_lagging_source_holds_windows_open_and_its_late_looking_rows_still_count() {
    let s = Scratch::new();
    write_a(&s);
    write_b_first(&s);
    write_b_later(&s);
    run_ok(&s.job(&job("", "")));
    assert_eq!(rows(&s), min_expected());
    let p = progress(&s.path("ckpt"));
    assert_eq!(
        watermarks(&p),
        [
            "1970-01-01T00:00:00.000Z",
            "2023-12-31T23:52:00.000Z",
            "2023-12-31T23:58:00.000Z",
            "2024-01-01T00:04:00.000Z",
            "2024-01-01T00:23:00.000Z"
        ]
    );
    assert_eq!(output_rows(&p), [0, 0, 0, 0, 4], "everything closes in the no-data batch 4");
    // Nothing dropped. State: 3 windows after batch 0, then y[00:05), y[00:10), y[00:40) join;
    // batch 4 emits 4, leaving x[00:30) and y[00:40).
    assert_eq!(state_per_batch(&p), [(0, 3), (0, 4), (0, 5), (0, 6), (0, 2)]);

    // One progress entry per source, with its own rows and range.
    let per_source: Vec<(u64, u64)> = p
        .iter()
        .map(|p| {
            let src = p["sources"].as_array().unwrap();
            assert_eq!(src.len(), 2);
            (src[0]["numInputRows"].as_u64().unwrap(), src[1]["numInputRows"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(per_source, [(2, 1), (1, 2), (0, 2), (0, 1), (0, 0)]);
    assert_eq!(p[0]["numInputRows"], 3);
    assert_eq!(p[0]["sources"][0]["description"], format!("FileStreamSource[{}]", s.path("in/a").display()));
    assert_eq!(p[0]["sources"][1]["description"], format!("FileStreamSource[{}]", s.path("in/b").display()));
    assert!(p[2]["sources"][0]["endOffset"].is_null(), "a had nothing new in batch 2");
    let b_files = &p[2]["sources"][1]["endOffset"]["files"];
    assert_eq!(b_files[0]["path"], s.path("in/b/2.json").display().to_string());

    // The offsets entry keys each source's range by name; a no-data batch's is null.
    let offsets = json_file(&s, "ckpt/offsets/2");
    assert!(offsets["source"]["a"].is_null(), "{offsets}");
    assert_eq!(offsets["source"]["b"], p[2]["sources"][1]["endOffset"]);
    assert_eq!(
        (offsets["watermark_micros"].as_i64(), offsets["late_watermark_micros"].as_i64()),
        (Some(at(-2)), Some(at(-8)))
    );
    assert!(json_file(&s, "ckpt/offsets/4")["source"].is_null());
    // Each commit keeps every source's own watermark.
    let commit = json_file(&s, "ckpt/commits/3");
    assert_eq!(commit["next_watermark_micros"], at(23));
    assert_eq!(commit["source_watermarks_micros"], serde_json::json!({"a": at(23), "b": at(31)}));
}

/// Under "max" the windows follow `a`, and `b`'s rows behind it are late:
/// - batch 0 (epoch): a 00:21, b -1d 23:52 → max 00:21.
/// - batch 1 (00:21; late behind the epoch, so b's 00:04 and 00:08 still count): emits
///   [00:00, 00:05) x and y, [00:05, 00:10) y. a 00:23, b -1d 23:58 → 00:23.
/// - batch 2 (00:23; late behind 00:21): b's 00:09 and 00:14 are in windows ending by 00:15: both
///   dropped. b 00:04: max stays 00:23.
/// - batch 3 (00:23): y 00:41 counts. b 00:31 → 00:31, so a no-data batch 4 runs (nothing ends
///   by 00:31: x[00:30, 00:35) stays open).
#[test]
fn under_max_the_fastest_source_closes_windows_and_the_lagging_ones_rows_are_dropped_as_late() {
    let s = Scratch::new();
    write_a(&s);
    write_b_first(&s);
    write_b_later(&s);
    run_ok(&s.job(&job("multiple_watermark_policy = \"max\"\n", "")));
    assert_eq!(
        rows(&s),
        [row("00:00", "00:05", "x", 1, 1.0), row("00:00", "00:05", "y", 2, 20.0), row("00:05", "00:10", "y", 1, 32.0)]
    );
    let p = progress(&s.path("ckpt"));
    assert_eq!(
        watermarks(&p),
        [
            "1970-01-01T00:00:00.000Z",
            "2024-01-01T00:21:00.000Z",
            "2024-01-01T00:23:00.000Z",
            "2024-01-01T00:23:00.000Z",
            "2024-01-01T00:31:00.000Z"
        ]
    );
    assert_eq!(output_rows(&p), [0, 3, 0, 0, 0], "windows close in batch 1, not 4 as under min");
    assert_eq!(state_per_batch(&p), [(0, 3), (0, 1), (2, 1), (0, 2), (0, 2)]);
    let commit = json_file(&s, "ckpt/commits/2");
    assert_eq!(commit["next_watermark_micros"], at(23));
    assert_eq!(commit["source_watermarks_micros"], serde_json::json!({"a": at(23), "b": at(4)}));
}

/// The same job as the "min" test, stopped after b/1 and restarted with b/2 and b/3 (after a
/// crash before commit 2). `a` has no data after the restart, so its watermark (00:23) must
/// come from the commit: were it back at the epoch, as Spark's after a restart, the minimum
/// would hold everything open and nothing would be written.
#[test]
fn a_restart_resumes_each_sources_watermark_from_the_commit() {
    let s = Scratch::new();
    write_a(&s);
    write_b_first(&s);
    let job = s.job(&job("", ""));
    run_ok(&job);
    // Batches 0, 1 and a no-data batch 2 (the watermark moved from -1d 23:52 to -1d 23:58).
    let p = progress(&s.path("ckpt"));
    assert_eq!(output_rows(&p), [0, 0, 0]);
    let commit = json_file(&s, "ckpt/commits/2");
    assert_eq!(commit["next_watermark_micros"], at(-2));
    assert_eq!(commit["source_watermarks_micros"], serde_json::json!({"a": at(23), "b": at(-2)}));

    // A crash after batch 2 ran but before its commit: it is replayed first, exactly as its
    // offsets entry says (no data, though b/2 is there now).
    std::fs::remove_file(s.path("ckpt/commits/2")).unwrap();
    write_b_later(&s);
    run_ok(&job);
    assert_eq!(json_file(&s, "ckpt/commits/2"), commit, "the replay commits the same watermarks");
    // Batch 3 (b/2): b 00:04 → min(00:23, 00:04). Batch 4 (b/3): b 00:31 → min(00:23, 00:31) =
    // 00:23. No-data batch 5 closes what the straight run's batch 4 closed.
    assert_eq!(rows(&s), min_expected());
    let p = progress(&s.path("ckpt"));
    let ids: Vec<u64> = p.iter().map(|p| p["batchId"].as_u64().unwrap()).collect();
    assert_eq!(ids, [0, 1, 2, 2, 3, 4, 5]);
    assert_eq!(p[3]["numInputRows"], 0, "the replayed no-data batch reads nothing");
    assert_eq!(
        watermarks(&p)[4..],
        ["2023-12-31T23:58:00.000Z", "2024-01-01T00:04:00.000Z", "2024-01-01T00:23:00.000Z"]
    );
    assert_eq!(output_rows(&p), [0, 0, 0, 0, 0, 0, 4]);
    assert_eq!(
        json_file(&s, "ckpt/commits/5")["source_watermarks_micros"],
        serde_json::json!({"a": at(23), "b": at(31)})
    );
}

/// `b` waits 2 minutes instead of the job's 10: a sees 00:31 (→ 00:21), b 00:20 (→ 00:18).
#[test]
fn a_sources_own_watermark_delay_replaces_the_jobs() {
    for (policy, global) in [("min", 18), ("max", 21)] {
        let s = Scratch::new();
        s.write("in/a/0.json", &lines(&[("x", "00:31", 1.0)]));
        s.write("in/b/0.json", &lines(&[("y", "00:20", 2.0)]));
        run_ok(
            &s.job(&job(&format!("multiple_watermark_policy = \"{policy}\"\n"), "watermark_delay = \"2 minutes\"\n")),
        );
        let commit = json_file(&s, "ckpt/commits/0");
        assert_eq!(commit["source_watermarks_micros"], serde_json::json!({"a": at(21), "b": at(18)}), "{policy}");
        assert_eq!(commit["next_watermark_micros"], at(global), "{policy}");
        // The watermark moved: a no-data batch runs with it.
        let p = progress(&s.path("ckpt"));
        assert_eq!(p.len(), 2, "{policy}");
        assert_eq!(p[1]["eventTime"]["watermark"], format!("2024-01-01T00:{global}:00.000Z"), "{policy}");
    }
}

/// Spark's `startOffset`: where a source stood before the batch (the end of its last range),
/// also across a restart; and the planning phases' durations are reported.
#[test]
fn each_batch_reports_where_each_source_started_and_how_long_planning_took() {
    let s = Scratch::new();
    let row = |n: u32| format!("{{\"n\":{n}}}\n");
    s.write("in/0.json", &row(0));
    s.write("in/1.json", &row(1));
    let job = s.job(
        "[source]\nformat = \"json\"\npath = \"{dir}/in\"\nschema = \"n int\"\nmax_files_per_trigger = 1\n\
         [sink]\nformat = \"json\"\npath = \"{dir}/out\"\ncheckpoint = \"{dir}/ckpt\"\ntrigger = { available_now = true }\n",
    );
    run_ok(&job);
    s.write("in/2.json", &row(2));
    run_ok(&job);
    let p = progress(&s.path("ckpt"));
    assert_eq!(p.len(), 3);
    assert!(p[0]["sources"][0]["startOffset"].is_null(), "nothing before the first batch");
    for b in 1..3 {
        assert_eq!(p[b]["sources"][0]["startOffset"], p[b - 1]["sources"][0]["endOffset"], "batch {b}");
        assert!(!p[b]["sources"][0]["startOffset"].is_null());
    }
    for phase in
        ["latestOffset", "queryPlanning", "walCommit", "getBatch", "addBatch", "commitOffsets", "triggerExecution"]
    {
        assert!(p[0]["durationMs"][phase].is_u64(), "durationMs.{phase}: {}", p[0]["durationMs"]);
    }
}
