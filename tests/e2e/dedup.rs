//! dropDuplicates and dropDuplicatesWithinWatermark, batch by batch, against Apache Spark.
//!
//! One input (four files, one per batch, with duplicates, late rows and a null event time) runs
//! through three dedups: keys `event_id` (the event time not a key), keys `event_id, event_time`,
//! and `event_id` with `within_watermark = true`. Watermark: `event_time`, 10 minutes. Batch 0
//! runs with the epoch, batch 1 with 00:10, batches 2 and 3 with 00:20 (batch 2's max event time
//! does not move it), then a no-data batch 4 with 00:40. A row is late at or behind the previous
//! batch's watermark, whatever the keys (Spark's StreamingDeduplicateExec); a
//! within-watermark key leaves the state when the batch's watermark reaches its first row's
//! event time + 10 minutes (`expiresAtMicros`; Spark reads a null event time as 0 there).
//!
//! Every expected figure and row below is what Apache Spark 4.3.0 (PySpark, local[1]) printed for
//! the same input and query with bench/spark_crosscheck.py (one Spark micro-batch per file,
//! trigger availableNow, `--verbose`): per batch the output rows, the watermark,
//! `numRowsDroppedByWatermark`, `numRowsTotal`, `numRowsUpdated`, `numRowsRemoved`,
//! `operatorName` and the custom metric `numDroppedDuplicateRows`. Each case runs twice: straight
//! through, and stopped after batch 2 then restarted with the last file (same batches, since the
//! watermark did not move at batch 2's end, so no no-data batch runs in between).

use crate::common::*;

/// A JSON line: `time` is `HH:MM` on 2024-01-01, or none for a null event time.
fn ev(id: &str, time: Option<&str>) -> String {
    let t = time.map_or("null".to_string(), |t| format!("\"2024-01-01T{t}:00Z\""));
    format!("{{\"event_id\":\"{id}\",\"user_id\":\"u\",\"event_time\":{t}}}\n")
}

const INPUT: [&[(&str, Option<&str>)]; 4] = [
    &[("e1", Some("00:00")), ("e2", Some("00:20")), ("e1", Some("00:00")), ("e3", Some("00:05")), ("e9", None)],
    &[
        ("e2", Some("00:20")),
        ("e4", Some("00:30")),
        ("e3", Some("00:25")),
        ("e5", Some("00:08")),
        ("e1", Some("00:12")),
    ],
    &[
        ("e6", Some("00:10")),
        ("e7", Some("00:11")),
        ("e1", Some("00:29")),
        ("e4", Some("00:30")),
        ("e9", None),
        ("e8", Some("00:05")),
    ],
    &[
        ("e2", Some("00:40")),
        ("e5", Some("00:21")),
        ("e7", Some("00:22")),
        ("e10", Some("00:20")),
        ("e3", Some("00:50")),
    ],
];

fn write_batches(s: &Scratch, range: std::ops::Range<usize>) {
    for k in range {
        s.write(&format!("in/{k}.json"), &INPUT[k].iter().map(|(id, t)| ev(id, *t)).collect::<String>());
    }
}

fn job(s: &Scratch, top: &str, dedup: &str) -> std::path::PathBuf {
    s.job(&format!(
        "{top}[source]\nformat = \"json\"\npath = \"{{dir}}/in\"\nschema = \"event_id string, user_id string, event_time timestamp\"\nmax_files_per_trigger = 1\n\
         [watermark]\ncolumn = \"event_time\"\ndelay = \"10 minutes\"\n\
         [[operator]]\nkind = \"dedup\"\n{dedup}\n\
         [sink]\nformat = \"json\"\npath = \"{{dir}}/out\"\ncheckpoint = \"{{dir}}/ckpt\"\ntrigger = {{ available_now = true }}\n"
    ))
}

/// What Spark printed for one micro-batch.
struct SparkBatch {
    /// `eventTime.watermark`, HH:MM on 2024-01-01 (None: the epoch).
    watermark: Option<&'static str>,
    dropped_by_watermark: u64,
    total: u64,
    updated: u64,
    removed: u64,
    dropped_duplicates: u64,
    /// The output rows, sorted by their JSON text (as the cross-check prints them).
    rows: &'static [(&'static str, Option<&'static str>)],
}

const fn b(
    watermark: Option<&'static str>,
    [dropped_by_watermark, total, updated, removed, dropped_duplicates]: [u64; 5],
    rows: &'static [(&'static str, Option<&'static str>)],
) -> SparkBatch {
    SparkBatch { watermark, dropped_by_watermark, total, updated, removed, dropped_duplicates, rows }
}

/// Batch 0, the same for the three: e1 passes once; e9's null event time is never late.
const BATCH_0: &[(&str, Option<&str>)] =
    &[("e1", Some("00:00")), ("e2", Some("00:20")), ("e3", Some("00:05")), ("e9", None)];

/// keys = ["event_id"]: no key ever leaves, but e6, e8 (batch 2) and e10 (batch 3), at or behind
/// the previous batch's watermark, are dropped as late; Spark still runs the no-data batch 4.
const SPARK_BY_ID: [SparkBatch; 5] = [
    b(None, [0, 4, 4, 0, 1], BATCH_0),
    b(Some("00:10"), [0, 6, 2, 0, 3], &[("e4", Some("00:30")), ("e5", Some("00:08"))]),
    b(Some("00:20"), [2, 7, 1, 0, 3], &[("e7", Some("00:11"))]),
    b(Some("00:20"), [1, 7, 0, 0, 4], &[]),
    b(Some("00:40"), [0, 7, 0, 0, 0], &[]),
];

/// keys = ["event_id", "event_time"]: (id, time) pairs leave at or behind the batch's watermark;
/// the null-time e9 never leaves (a comparison with null is not true).
const SPARK_BY_ID_AND_TIME: [SparkBatch; 5] = [
    b(None, [0, 4, 4, 0, 1], BATCH_0),
    b(
        Some("00:10"),
        [0, 5, 4, 3, 1],
        &[("e1", Some("00:12")), ("e3", Some("00:25")), ("e4", Some("00:30")), ("e5", Some("00:08"))],
    ),
    b(Some("00:20"), [2, 4, 2, 3, 2], &[("e1", Some("00:29")), ("e7", Some("00:11"))]),
    b(
        Some("00:20"),
        [1, 8, 4, 0, 0],
        &[("e2", Some("00:40")), ("e3", Some("00:50")), ("e5", Some("00:21")), ("e7", Some("00:22"))],
    ),
    b(Some("00:40"), [0, 2, 0, 6, 0], &[]),
];

/// within_watermark = true, keys = ["event_id"]: a key leaves once the watermark reaches its first
/// event time + 10 min (e1: 00:10, e9: the epoch + 10 min, ...); e1 and e9 then pass again in
/// batch 2, e5 in batch 3.
const SPARK_WITHIN_WATERMARK: [SparkBatch; 5] = [
    b(None, [0, 4, 4, 0, 1], BATCH_0),
    b(Some("00:10"), [0, 4, 2, 2, 3], &[("e4", Some("00:30")), ("e5", Some("00:08"))]),
    b(Some("00:20"), [2, 4, 3, 3, 1], &[("e1", Some("00:29")), ("e7", Some("00:11")), ("e9", None)]),
    b(Some("00:20"), [1, 6, 2, 0, 2], &[("e3", Some("00:50")), ("e5", Some("00:21"))]),
    b(Some("00:40"), [0, 1, 0, 5, 0], &[]),
];

/// The committed output rows of each batch, as (event_id, HH:MM), sorted; from the file sink's
/// part files, whose names start with `part-<batch>-`.
fn output_per_batch(s: &Scratch, batches: usize) -> Vec<Vec<(String, Option<String>)>> {
    let out = s.path("out");
    let mut per = vec![Vec::new(); batches];
    for f in committed_files(&out) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let batch: usize = name
            .strip_prefix("part-")
            .and_then(|r| r.split('-').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name}: not a part-<batch>-... file name"));
        let p = if f.is_absolute() { f.clone() } else { out.join(&f) };
        for line in std::fs::read_to_string(&p).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let t = v.get("event_time").and_then(|t| t.as_str()).map(|t| {
                assert!(t.starts_with("2024-01-01T") && t.ends_with(":00.000Z"), "{t}");
                t[11..16].to_string()
            });
            per[batch].push((v["event_id"].as_str().unwrap().to_string(), t));
        }
    }
    for rows in &mut per {
        // Spark's rows as the cross-check prints them: sorted by their JSON text.
        rows.sort_by_key(|(id, t)| {
            serde_json::json!({"event_id": id, "user_id": "u", "event_time": t.as_ref().map(|t| format!("2024-01-01 {t}:00"))})
                .to_string()
        });
    }
    per
}

fn check_against_spark(s: &Scratch, spark: &[SparkBatch; 5], operator_name: &str) {
    let p = progress(&s.path("ckpt"));
    assert_eq!(p.len(), 5, "four data batches and Spark's no-data batch 4");
    let got = output_per_batch(s, 5);
    for (k, (want, p)) in spark.iter().zip(&p).enumerate() {
        assert_eq!(p["batchId"], k as u64);
        let wm = want.watermark.map_or("1970-01-01T00:00:00.000Z".to_string(), |t| format!("2024-01-01T{t}:00.000Z"));
        assert_eq!(p["eventTime"]["watermark"], wm, "batch {k}: watermark");
        let op = &p["stateOperators"][0];
        assert_eq!(op["operatorName"], operator_name, "batch {k}");
        let figures = |o: &serde_json::Value| {
            [
                o["numRowsDroppedByWatermark"].as_u64().unwrap(),
                o["numRowsTotal"].as_u64().unwrap(),
                o["numRowsUpdated"].as_u64().unwrap(),
                o["numRowsRemoved"].as_u64().unwrap(),
                o["customMetrics"]["numDroppedDuplicateRows"].as_u64().unwrap(),
            ]
        };
        assert_eq!(
            figures(op),
            [want.dropped_by_watermark, want.total, want.updated, want.removed, want.dropped_duplicates],
            "batch {k}: [numRowsDroppedByWatermark, numRowsTotal, numRowsUpdated, numRowsRemoved, numDroppedDuplicateRows]"
        );
        let rows: Vec<(String, Option<String>)> =
            want.rows.iter().map(|(id, t)| (id.to_string(), t.map(str::to_string))).collect();
        assert_eq!(got[k], rows, "batch {k}: output rows");
    }
}

/// Straight through, then again stopped after batch 2 and restarted with the last file.
fn matches_spark(dedup: &str, spark: &[SparkBatch; 5], operator_name: &str) {
    for top in ["", "state_store = \"rocksdb\"\n"] {
        let s = Scratch::new();
        write_batches(&s, 0..4);
        run_ok(&job(&s, top, dedup));
        check_against_spark(&s, spark, operator_name);

        let s = Scratch::new();
        write_batches(&s, 0..3);
        run_ok(&job(&s, top, dedup));
        assert_eq!(progress(&s.path("ckpt")).len(), 3, "the watermark did not move at batch 2's end: no no-data batch");
        write_batches(&s, 3..4);
        run_ok(&job(&s, top, dedup));
        check_against_spark(&s, spark, operator_name);
    }
}

#[test]
fn dedup_drops_late_rows_like_spark_even_when_the_event_time_is_not_a_key() {
    matches_spark("keys = [\"event_id\"]", &SPARK_BY_ID, "dedupe");
}

#[test]
fn dedup_with_the_event_time_among_its_keys_matches_spark() {
    matches_spark("keys = [\"event_id\", \"event_time\"]", &SPARK_BY_ID_AND_TIME, "dedupe");
}

#[test]
fn dedup_within_watermark_matches_spark() {
    matches_spark("keys = [\"event_id\"]\nwithin_watermark = true", &SPARK_WITHIN_WATERMARK, "dedupeWithinWatermark");
}

#[test]
fn late_rows_of_a_dedup_on_other_keys_can_go_to_the_dead_letter_output() {
    let s = Scratch::new();
    write_batches(&s, 0..4);
    // dropDuplicates on `event_id` alone: before, its late rows passed (and were not counted).
    let job = job(&s, "", "keys = [\"event_id\"]");
    let text = std::fs::read_to_string(&job)
        .unwrap()
        .replace("delay = \"10 minutes\"", "delay = \"10 minutes\"\nlate_rows = \"dead_letter\"");
    std::fs::write(&job, text).unwrap();
    run_ok(&job);
    let late = |batch: u64| -> Vec<String> {
        let path = s.path(&format!("ckpt/dead_letter/batch-{batch}.jsonl"));
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let d: serde_json::Value = serde_json::from_str(l).unwrap();
                assert_eq!(d["origin"], "operator[0] (dedup)");
                let raw: serde_json::Value = serde_json::from_str(d["raw"].as_str().unwrap()).unwrap();
                format!("{} {}", raw["event_id"].as_str().unwrap(), d["reason"].as_str().unwrap())
            })
            .collect()
    };
    assert_eq!(
        late(2),
        vec![
            "e6 late: event time is behind the watermark 2024-01-01T00:10:00.000Z",
            "e8 late: event time is behind the watermark 2024-01-01T00:10:00.000Z"
        ]
    );
    assert_eq!(late(3), vec!["e10 late: event time is behind the watermark 2024-01-01T00:20:00.000Z"]);
    assert!(late(1).is_empty());
}

#[test]
fn within_watermark_without_the_watermark_column_in_its_input_is_refused_before_start() {
    let s = Scratch::new();
    write_batches(&s, 0..1);
    // No [watermark] at all. (A watermark column that a map plugin drops before the dedup is
    // refused at start the same way; operator::dedup's unit tests cover that message.)
    let job = job(&s, "", "keys = [\"event_id\"]\nwithin_watermark = true");
    let text = std::fs::read_to_string(&job)
        .unwrap()
        .replace("[watermark]\ncolumn = \"event_time\"\ndelay = \"10 minutes\"\n", "");
    std::fs::write(&job, text).unwrap();
    let err = run_err(&job);
    assert!(
        err.contains("`operator[0].within_watermark`: needs a [watermark]: as in Spark, dropDuplicatesWithinWatermark is not supported on streaming DataFrames/DataSets without watermark"),
        "{err}"
    );
    assert!(!s.path("ckpt/state").exists(), "refused before any state was created");
}
