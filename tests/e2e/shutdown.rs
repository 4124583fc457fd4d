//! SIGTERM (what systemd and Kubernetes send) stops a job after the batch in progress, as
//! Ctrl-C does: exit code 0, the last batch committed, and a restart resumes without losing or
//! repeating a row. Each run has its own `runId`, a random UUID as in Spark.

use std::time::{Duration, Instant};

use crate::common::*;

fn batches(dir: &std::path::Path) -> Vec<u64> {
    let mut ids: Vec<u64> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.unwrap().file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

/// Runs the job until it committed `more` more batches, then sends SIGTERM; its exit status.
fn run_until_sigterm(s: &Scratch, job: &std::path::Path, more: usize) -> std::process::ExitStatus {
    let before = batches(&s.path("ckpt/commits")).len();
    let mut child = weir().args(["run", "--quiet"]).arg(job).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while batches(&s.path("ckpt/commits")).len() < before + more {
        assert!(Instant::now() < deadline, "waited 60 s for {more} batches");
        std::thread::sleep(Duration::from_millis(20));
    }
    crate::pipeline::send_signal(child.id(), "TERM");
    child.wait().unwrap()
}

#[test]
fn sigterm_stops_after_the_batch_in_progress_and_a_restart_resumes_exactly_once() {
    let s = Scratch::new();
    let job = s.job(
        r#"
[source]
format = "rate"
rows_per_second = 2000

[sink]
format = "json"
path = "{dir}/out"
checkpoint = "{dir}/ckpt"
trigger = { processing_time = "50 milliseconds" }
"#,
    );
    for _ in 0..2 {
        let status = run_until_sigterm(&s, &job, 3);
        assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop: {status:?}");
        // The batch in progress was finished: every planned batch is committed.
        assert_eq!(batches(&s.path("ckpt/offsets")), batches(&s.path("ckpt/commits")));
    }
    let values: Vec<i64> = committed_text(&s.path("out"))
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["value"].as_i64().unwrap())
        .collect();
    assert!(values.len() > 100, "{} rows", values.len());
    for (i, v) in values.iter().enumerate() {
        assert_eq!(*v, i as i64, "row {i}: a row lost or repeated across the restart");
    }
    // Spark's runId: a random UUID, a new one for each run of the same query.
    let progress = progress(&s.path("ckpt"));
    let mut runs: Vec<&str> = progress.iter().map(|p| p["runId"].as_str().unwrap()).collect();
    runs.dedup();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().all(|r| weir::random::is_uuid_v4(r)), "{runs:?}");
    assert!(progress.iter().all(|p| p["id"] == progress[0]["id"]), "the query id stays");
}
