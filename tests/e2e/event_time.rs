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
