//! Watermarks with Spark's semantics, worked by hand: each batch runs with the watermark
//! computed after the previous one (max event time − delay, never going back), and a restart
//! resumes with the one recorded in the last commit.

use crate::common::*;

fn event(id: &str, time: &str) -> String {
    format!("{{\"event_id\":\"{id}\",\"user_id\":\"u\",\"amount\":1.0,\"event_time\":\"2024-01-01T{time}Z\"}}\n")
}

#[test]
fn each_batch_runs_with_the_previous_batches_max_event_time_minus_the_delay() {
    let s = Scratch::new();
    s.write("in/a.json", &(event("a1", "00:00:00") + &event("a2", "00:20:00")));
    s.write("in/b.json", &(event("b1", "00:05:00") + &event("b2", "00:40:00")));
    let job = s.job(
        "[source]\nformat = \"json\"\npath = \"{dir}/in\"\nschema = \"event_id string, user_id string, amount double, event_time timestamp\"\nmax_files_per_trigger = 1\n\
         [watermark]\ncolumn = \"event_time\"\ndelay = \"10 minutes\"\n\
         [sink]\nformat = \"json\"\npath = \"{dir}/out\"\ncheckpoint = \"{dir}/ckpt\"\ntrigger = { available_now = true }\n",
    );
    run_ok(&job);
    let p = progress(&s.path("ckpt"));
    assert_eq!(
        p[0]["eventTime"],
        serde_json::json!({"watermark": "1970-01-01T00:00:00.000Z", "min": "2024-01-01T00:00:00.000Z",
                           "max": "2024-01-01T00:20:00.000Z", "avg": "2024-01-01T00:10:00.000Z"})
    );
    // 00:20 − 10 min; batch 1's own late-looking 00:05 does not lower anything.
    assert_eq!(p[1]["eventTime"]["watermark"], "2024-01-01T00:10:00.000Z");

    // Restart with a new file: it runs with 00:40 − 10 min, recorded in the last commit.
    s.write("in/c.json", &event("c1", "00:01:00"));
    run_ok(&job);
    let p = progress(&s.path("ckpt"));
    assert_eq!(p[2]["batchId"], 2);
    assert_eq!(p[2]["eventTime"]["watermark"], "2024-01-01T00:30:00.000Z");
    let offsets: serde_json::Value = serde_json::from_slice(&std::fs::read(s.path("ckpt/offsets/2")).unwrap()).unwrap();
    assert_eq!(offsets["watermark_micros"], 1_704_069_000_000_000i64, "the watermark is written ahead with the batch");
}

#[test]
fn jobs_without_a_watermark_report_no_event_time() {
    let s = Scratch::new();
    s.write("in/a.json", &event("a1", "00:00:00"));
    let job = s.job(
        "[source]\nformat = \"json\"\npath = \"{dir}/in\"\nschema = \"event_id string, user_id string, amount double, event_time timestamp\"\n\
         [sink]\nformat = \"json\"\npath = \"{dir}/out\"\ncheckpoint = \"{dir}/ckpt\"\ntrigger = { once = true }\n",
    );
    run_ok(&job);
    assert!(progress(&s.path("ckpt"))[0].get("eventTime").is_none());
}

const DEDUP_JOB: &str = "[source]\nformat = \"json\"\npath = \"{dir}/in\"\nschema = \"event_id string, user_id string, amount double, event_time timestamp\"\nmax_files_per_trigger = 1\n\
     [watermark]\ncolumn = \"event_time\"\ndelay = \"10 minutes\"\n\
     [[operator]]\nkind = \"dedup\"\nkeys = [\"event_id\", \"event_time\"]\n\
     [sink]\nformat = \"json\"\npath = \"{dir}/out\"\ncheckpoint = \"{dir}/ckpt\"\ntrigger = { available_now = true }\n";

/// Worked by hand with Spark's two watermarks: a row is late when its event time is at or
/// behind the watermark of the batch before; keys at or behind the batch's own watermark leave
/// the state at its end.
#[test]
fn dedup_passes_first_occurrences_drops_late_rows_and_expires_state_behind_the_watermark() {
    dedup_worked_example("");
}

#[test]
fn dedup_gives_the_same_with_the_rocksdb_state_store() {
    dedup_worked_example("state_store = \"rocksdb\"\n");
}

fn dedup_worked_example(top: &str) {
    let s = Scratch::new();
    // Batch 0 (watermark epoch): e1, e2 pass. Next watermark 00:20 − 10 min = 00:10.
    s.write("in/a.json", &(event("e1", "00:00:00") + &event("e2", "00:20:00") + &event("e1", "00:00:00")));
    // Batch 1 (watermark 00:10, late behind the epoch): e2 is a duplicate; e3 (00:05) is not
    // late yet and passes; e4 passes. At the end e1 and e3 (<= 00:10) leave. Next: 00:20.
    s.write("in/b.json", &(event("e2", "00:20:00") + &event("e3", "00:05:00") + &event("e4", "00:30:00")));
    // Batch 2 (watermark 00:20, late behind 00:10): e3 is late; e2 (00:20) is still in the state,
    // a duplicate; e5 (00:15) passes. At the end e2 and e5 (<= 00:20) leave.
    s.write("in/c.json", &(event("e3", "00:05:00") + &event("e2", "00:20:00") + &event("e5", "00:15:00")));
    let out = run_ok(&s.job(&format!("{top}{DEDUP_JOB}")));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"), "bounded: no warning");
    let ids = |text: String| -> Vec<String> {
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(committed_text(&s.path("out"))), vec!["e1", "e2", "e3", "e4", "e5"]);
    let p = progress(&s.path("ckpt"));
    assert_eq!(p.len(), 3, "the watermark did not move after batch 2: no extra no-data batch");
    let state = |i: usize| {
        let op = &p[i]["stateOperators"][0];
        (op["numRowsTotal"].as_u64().unwrap(), op["numRowsDroppedByWatermark"].as_u64().unwrap())
    };
    assert_eq!(p[0]["stateOperators"][0]["operatorName"], "dedupe");
    assert_eq!([state(0), state(1), state(2)], [(2, 0), (2, 0), (1, 1)]);
    assert!(p[1]["stateOperators"][0]["memoryUsedBytes"].as_u64().unwrap() > 0);
    // A restart with a new file resumes from the committed state: e4 (00:30) is still known.
    s.write("in/d.json", &(event("e4", "00:30:00") + &event("e6", "00:40:00")));
    run_ok(&s.job(&format!("{top}{DEDUP_JOB}")));
    assert_eq!(ids(committed_text(&s.path("out"))), vec!["e1", "e2", "e3", "e4", "e5", "e6"]);
}

#[test]
fn dedup_without_the_watermark_among_its_keys_warns_that_state_is_unbounded() {
    let s = Scratch::new();
    s.write("in/a.json", &(event("e1", "00:00:00") + &event("e1", "00:01:00")));
    let job = s.job(&DEDUP_JOB.replace("keys = [\"event_id\", \"event_time\"]", "keys = [\"event_id\"]"));
    let out = run_ok(&job);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning: operator[0] (dedup on event_id) keeps every key it sees, forever"), "{err}");
    assert_eq!(committed_text(&s.path("out")).lines().count(), 1);
}

#[test]
fn late_rows_can_be_kept_in_the_dead_letter_output_with_reason_late() {
    let s = Scratch::new();
    s.write("in/a.json", &(event("e1", "00:00:00") + &event("e2", "00:20:00")));
    s.write("in/b.json", &event("e4", "00:30:00"));
    // Batch 2 runs with watermark 00:20; rows are late at or behind batch 1's, 00:10.
    s.write("in/c.json", &(event("e3", "00:05:00") + &event("e5", "00:25:00")));
    let job =
        s.job(&DEDUP_JOB.replace("delay = \"10 minutes\"", "delay = \"10 minutes\"\nlate_rows = \"dead_letter\""));
    run_ok(&job);
    let dead = std::fs::read_to_string(s.path("ckpt/dead_letter/batch-2.jsonl")).unwrap();
    let d: Vec<serde_json::Value> = dead.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(d.len(), 1, "{dead}");
    assert_eq!(d[0]["reason"], "late: event time is behind the watermark 2024-01-01T00:10:00.000Z");
    assert_eq!(d[0]["origin"], "operator[0] (dedup)");
    let raw: serde_json::Value = serde_json::from_str(d[0]["raw"].as_str().unwrap()).unwrap();
    assert_eq!((raw["event_id"].as_str(), raw["event_time"].as_str()), (Some("e3"), Some("2024-01-01T00:05:00")));
    let p = progress(&s.path("ckpt"));
    assert_eq!(p[2]["numDeadLetterRows"], 1);
    assert_eq!(p[2]["stateOperators"][0]["numRowsDroppedByWatermark"], 1, "still counted as dropped from the stream");
    assert!(!s.path("ckpt/dead_letter/batch-1.jsonl").exists());
}
