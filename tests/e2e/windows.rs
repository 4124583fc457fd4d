//! Windowed aggregations, worked by hand with Spark's semantics. One input file per batch
//! (max_files_per_trigger = 1). In batch N a row is late when every window it belongs to ends at
//! or before the watermark of batch N−1; windows ending at or before batch N's own watermark are
//! emitted (append) and leave the state at the end of batch N. When only the watermark moved, a
//! no-data batch runs and closes windows (Spark's no-data micro-batch).
//!
//! Every expected output here was also checked against Apache Spark 4.3 on the same input and
//! query, with bench/spark_crosscheck.py (one Spark micro-batch per input file).

use crate::common::*;

/// A JSON line: `key` is the group column's value, `time` is `HH:MM` on 2024-01-01.
fn ev(key: &str, time: &str, amount: f64) -> String {
    format!("{{\"k\":\"{key}\",\"amount\":{amount:?},\"event_time\":\"2024-01-01T{time}:00Z\"}}\n")
}

fn lines(events: &[(&str, &str, f64)]) -> String {
    events.iter().map(|(k, t, a)| ev(k, t, *a)).collect()
}

fn job(top: &str, window: &str, mode: &str, sink: &str) -> String {
    format!(
        "{top}[source]\nformat = \"json\"\npath = \"{{dir}}/in\"\nschema = \"k string, amount double, event_time timestamp\"\nmax_files_per_trigger = 1\n\
         [watermark]\ncolumn = \"event_time\"\ndelay = \"10 minutes\"\n\
         [[operator]]\nkind = \"aggregate\"\ngroup_by = [\"k\"]\nwindow = {window}\n\
         aggregates = [{{ fn = \"count\", as = \"n\" }}, {{ fn = \"sum\", column = \"amount\", as = \"total\" }}]\n\
         [sink]\n{sink}\noutput_mode = \"{mode}\"\ncheckpoint = \"{{dir}}/ckpt\"\ntrigger = {{ available_now = true }}\n"
    )
}

const JSON_SINK: &str = "format = \"json\"\npath = \"{dir}/out\"";
const CONSOLE_SINK: &str = "format = \"console\"\nnum_rows = 100";
const TUMBLING: &str = "{ column = \"event_time\", size = \"5 minutes\" }";
const SLIDING: &str = "{ column = \"event_time\", size = \"10 minutes\", slide = \"5 minutes\" }";
const SESSION: &str = "{ column = \"event_time\", gap = \"5 minutes\" }";

/// The tumbling input. Watermarks (max event time − 10 min): batch 0 runs with the epoch,
/// batch 1 with 00:02, batch 2 with 00:11, batch 3 with 00:16, then a no-data batch 4 with 00:26.
fn write_tumbling_input(s: &Scratch) {
    s.write(
        "in/0.json",
        &(lines(&[
            ("x", "00:01", 1.0),
            ("x", "00:03", 2.0),
            ("y", "00:04", 10.0),
            ("x", "00:07", 4.0),
            ("y", "00:12", 20.0),
        ]) + "{\"k\":\"x\",\"amount\":1000.0,\"event_time\":null}\n"),
    );
    s.write("in/1.json", &lines(&[("x", "00:02", 8.0), ("y", "00:21", 40.0), ("x", "00:06", 16.0)]));
    // 00:04 is out of order but its window [00:00, 00:05) ends after batch 1's watermark 00:02.
    s.write("in/2.json", &lines(&[("x", "00:04", 32.0), ("y", "00:26", 80.0), ("x", "00:14", 64.0)]));
    // 00:09 is late: its window ends at 00:10, at or behind batch 2's watermark 00:11.
    s.write("in/3.json", &lines(&[("x", "00:09", 128.0), ("y", "00:13", 256.0), ("z", "00:36", 512.0)]));
}

#[test]
fn tumbling_append_emits_each_window_once_the_watermark_passes_its_end() {
    tumbling_append("");
}

#[test]
fn tumbling_append_gives_the_same_with_the_rocksdb_state_store() {
    tumbling_append("state_store = \"rocksdb\"\n");
}

fn tumbling_append(top: &str) {
    let s = Scratch::new();
    write_tumbling_input(&s);
    let job = s.job(&job(top, TUMBLING, "append", JSON_SINK));
    let out = run_ok(&job);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"), "bounded by the watermark: no warning");
    assert_eq!(
        rows(&s),
        vec![
            // Batch 2 (watermark 00:11) closes [00:00, 00:05) and [00:05, 00:10).
            row("00:00", "00:05", "x", 4, 43.0),
            row("00:00", "00:05", "y", 1, 10.0),
            row("00:05", "00:10", "x", 2, 20.0),
            // Batch 3 (watermark 00:16) closes [00:10, 00:15), with y's 00:13 from this batch.
            row("00:10", "00:15", "x", 1, 64.0),
            row("00:10", "00:15", "y", 2, 276.0),
            // The no-data batch 4 (watermark 00:26) closes [00:20, 00:25).
            row("00:20", "00:25", "y", 1, 40.0),
        ]
    );
    // State rows per batch (group × window): 4, 5, 4 (3 emitted), 3, 2.
    assert_eq!(state_per_batch(&progress(&s.path("ckpt"))), vec![(0, 4), (0, 5), (0, 4), (1, 3), (0, 2)]);
    let p = progress(&s.path("ckpt"));
    assert_eq!(p[0]["stateOperators"][0]["operatorName"], "stateStoreSave");
    assert_eq!(p[0]["stateOperators"][0]["customMetrics"]["numRowsWithNullEventTime"], 1);
    assert_eq!((p[4]["numInputRows"].as_u64(), p[4]["sink"]["numOutputRows"].as_u64()), (Some(0), Some(1)));
    let offsets: serde_json::Value = serde_json::from_slice(&std::fs::read(s.path("ckpt/offsets/4")).unwrap()).unwrap();
    assert!(offsets["source"].is_null(), "a no-data batch reads nothing: {offsets}");

    // Restart with more input: the open windows come back from the state. y's 00:27 joins
    // [00:25, 00:30) (80); 00:50 moves the watermark to 00:40, so a no-data batch 6 closes
    // [00:25, 00:30) and [00:35, 00:40).
    s.write("in/4.json", &lines(&[("y", "00:27", 1024.0), ("q", "00:50", 1.0)]));
    run_ok(&job);
    let all = rows(&s);
    assert_eq!(all[6..], [row("00:25", "00:30", "y", 2, 1104.0), row("00:35", "00:40", "z", 1, 512.0)]);
    assert_eq!(progress(&s.path("ckpt")).len(), 7);
}

#[test]
fn sliding_append_counts_a_row_in_every_window_that_holds_it() {
    let s = Scratch::new();
    // Windows of 10 min every 5 min: 01:03 is in [00:55, 01:05) and [01:00, 01:10).
    // Watermarks: epoch, 01:02, 01:14, 01:20, then a no-data batch with 01:30.
    s.write("in/0.json", &lines(&[("x", "01:03", 1.0), ("x", "01:07", 2.0), ("x", "01:12", 4.0)]));
    s.write("in/1.json", &lines(&[("x", "01:01", 8.0), ("x", "01:24", 16.0)]));
    s.write("in/2.json", &lines(&[("x", "01:04", 32.0), ("x", "01:30", 64.0)]));
    // 01:06: its window [01:00, 01:10) is closed (ends before 01:14) but [01:05, 01:15) is
    // open, so it counts there and is not dropped. 01:02 is in closed windows only: dropped.
    s.write("in/3.json", &lines(&[("x", "01:06", 128.0), ("x", "01:02", 512.0), ("x", "01:40", 1024.0)]));
    run_ok(&s.job(&job("", SLIDING, "append", JSON_SINK)));
    assert_eq!(
        rows(&s),
        vec![
            row("00:55", "01:05", "x", 3, 41.0),
            row("01:00", "01:10", "x", 4, 43.0),
            row("01:05", "01:15", "x", 3, 134.0),
            row("01:10", "01:20", "x", 1, 4.0),
            row("01:15", "01:25", "x", 1, 16.0),
            row("01:20", "01:30", "x", 1, 16.0),
        ]
    );
    let dropped: Vec<u64> = state_per_batch(&progress(&s.path("ckpt"))).iter().map(|p| p.0).collect();
    assert_eq!(dropped, vec![0, 0, 0, 1, 0]);
}

#[test]
fn session_append_merges_sessions_bridged_by_a_later_event() {
    session_append("");
}

#[test]
fn session_append_gives_the_same_with_the_rocksdb_state_store() {
    session_append("state_store = \"rocksdb\"\n");
}

/// The session input (gap 5 min). Watermarks: epoch, 00:00, 00:10, 00:20, then a no-data batch
/// with 00:30.
fn write_session_input(s: &Scratch) {
    // Batch 0: u1 has sessions [00:00, 00:08) (00:00 and 00:03) and [00:10, 00:15).
    s.write(
        "in/0.json",
        &lines(&[("u1", "00:00", 1.0), ("u1", "00:03", 2.0), ("u2", "00:01", 4.0), ("u1", "00:10", 8.0)]),
    );
    // Batch 1: u1's 00:08 touches [00:00, 00:08) and overlaps [00:10, 00:15): one session.
    s.write("in/1.json", &lines(&[("u1", "00:08", 16.0), ("u2", "00:20", 32.0)]));
    // Batch 2: u2's 00:04 (not late: [00:04, 00:09) ends after 00:00) joins [00:01, 00:06).
    s.write("in/2.json", &lines(&[("u2", "00:04", 64.0), ("u3", "00:30", 128.0)]));
    // Batch 3: u1's 00:04 is late ([00:04, 00:09) ends before 00:10), even though u1's open
    // session covers it; u2's 00:22 extends [00:20, 00:25).
    s.write("in/3.json", &lines(&[("u1", "00:04", 256.0), ("u2", "00:22", 512.0), ("u4", "00:40", 1024.0)]));
}

fn session_append(top: &str) {
    let s = Scratch::new();
    write_session_input(&s);
    run_ok(&s.job(&job(top, SESSION, "append", JSON_SINK)));
    assert_eq!(
        rows(&s),
        vec![
            row("00:01", "00:09", "u2", 2, 68.0),
            row("00:00", "00:15", "u1", 4, 27.0),
            row("00:20", "00:27", "u2", 2, 544.0),
        ]
    );
    let p = progress(&s.path("ckpt"));
    assert_eq!(p[0]["stateOperators"][0]["operatorName"], "sessionWindowStateStoreSaveExec");
    let dropped: Vec<u64> = state_per_batch(&progress(&s.path("ckpt"))).iter().map(|p| p.0).collect();
    assert_eq!(dropped, vec![0, 0, 0, 1, 0]);
}

/// The tables the console sink printed: per batch, its id and its rows (cells trimmed).
fn console_batches(stdout: &[u8]) -> Vec<(u64, Vec<Vec<String>>)> {
    let mut out: Vec<(u64, Vec<Vec<String>>)> = Vec::new();
    let mut header_seen = false;
    for line in String::from_utf8_lossy(stdout).lines() {
        if let Some(id) = line.strip_prefix("Batch: ") {
            out.push((id.parse().unwrap(), Vec::new()));
            header_seen = false;
        } else if line.starts_with('|') {
            if header_seen {
                let cells = line.trim_matches('|').split('|').map(|c| c.trim().to_string()).collect();
                out.last_mut().expect("a batch header first").1.push(cells);
            } else {
                header_seen = true;
            }
        }
    }
    out
}

/// Console rows of a windowed job as (start HH:MM, end HH:MM, k, n, total).
fn windowed(rows: &[Vec<String>]) -> Vec<(String, String, String, i64, f64)> {
    let hhmm = |t: &str| {
        assert!(t.starts_with("2024-01-01T"), "{t}");
        t[11..16].to_string()
    };
    rows.iter().map(|r| row(&hhmm(&r[0]), &hhmm(&r[1]), &r[2], r[3].parse().unwrap(), r[4].parse().unwrap())).collect()
}

#[test]
fn tumbling_update_emits_the_windows_each_batch_changed() {
    let s = Scratch::new();
    write_tumbling_input(&s);
    let out = run_ok(&s.job(&job("", TUMBLING, "update", CONSOLE_SINK)));
    let b = console_batches(&out.stdout);
    let ids: Vec<u64> = b.iter().map(|b| b.0).collect();
    assert_eq!(ids, vec![0, 1, 2, 3, 4], "batch 4 is the no-data batch: it evicts [00:20, 00:25) and emits nothing");
    assert_eq!(
        windowed(&b[0].1),
        vec![
            row("00:00", "00:05", "x", 2, 3.0),
            row("00:00", "00:05", "y", 1, 10.0),
            row("00:05", "00:10", "x", 1, 4.0),
            row("00:10", "00:15", "y", 1, 20.0)
        ]
    );
    assert_eq!(
        windowed(&b[1].1),
        vec![
            row("00:00", "00:05", "x", 3, 11.0),
            row("00:05", "00:10", "x", 2, 20.0),
            row("00:20", "00:25", "y", 1, 40.0)
        ]
    );
    // Updated windows are emitted even when this batch's watermark (00:11) then evicts them.
    assert_eq!(
        windowed(&b[2].1),
        vec![
            row("00:00", "00:05", "x", 4, 43.0),
            row("00:10", "00:15", "x", 1, 64.0),
            row("00:25", "00:30", "y", 1, 80.0)
        ]
    );
    // x's 00:09 is late (its window ended at 00:10, behind batch 2's 00:11): no update for it.
    assert_eq!(windowed(&b[3].1), vec![row("00:10", "00:15", "y", 2, 276.0), row("00:35", "00:40", "z", 1, 512.0)]);
    assert!(b[4].1.is_empty());
    assert_eq!(state_per_batch(&progress(&s.path("ckpt"))), vec![(0, 4), (0, 5), (0, 4), (1, 3), (0, 2)]);
}

#[test]
fn tumbling_complete_emits_the_whole_result_and_drops_nothing_as_late() {
    let s = Scratch::new();
    write_tumbling_input(&s);
    let out = run_ok(&s.job(&job("", TUMBLING, "complete", CONSOLE_SINK)));
    let b = console_batches(&out.stdout);
    assert_eq!(b.len(), 4, "complete mode keeps all state: no no-data batch is needed");
    assert_eq!(windowed(&b[0].1).len(), 4);
    assert_eq!(
        windowed(&b[1].1),
        vec![
            row("00:00", "00:05", "x", 3, 11.0),
            row("00:00", "00:05", "y", 1, 10.0),
            row("00:05", "00:10", "x", 2, 20.0),
            row("00:10", "00:15", "y", 1, 20.0),
            row("00:20", "00:25", "y", 1, 40.0)
        ]
    );
    // Spark keeps every window in complete mode, so x's 00:09 still counts in [00:05, 00:10).
    assert_eq!(
        windowed(&b[3].1),
        vec![
            row("00:00", "00:05", "x", 4, 43.0),
            row("00:00", "00:05", "y", 1, 10.0),
            row("00:05", "00:10", "x", 3, 148.0),
            row("00:10", "00:15", "x", 1, 64.0),
            row("00:10", "00:15", "y", 2, 276.0),
            row("00:20", "00:25", "y", 1, 40.0),
            row("00:25", "00:30", "y", 1, 80.0),
            row("00:35", "00:40", "z", 1, 512.0)
        ]
    );
    assert_eq!(state_per_batch(&progress(&s.path("ckpt"))), vec![(0, 4), (0, 5), (0, 7), (0, 8)]);
}

/// Complete mode keeps every session (none is evicted), but Spark still drops late rows before
/// merging sessions: u1's 00:04 in batch 3 would otherwise have joined [00:00, 00:15).
/// (Update mode is refused for session windows, as in Spark: see tests/bad_jobs.)
#[test]
fn session_complete_keeps_every_session_and_still_drops_late_rows() {
    let s = Scratch::new();
    write_session_input(&s);
    let out = run_ok(&s.job(&job("state_store = \"rocksdb\"\n", SESSION, "complete", CONSOLE_SINK)));
    let b = console_batches(&out.stdout);
    let got: Vec<_> = b.iter().map(|(_, rows)| windowed(rows)).collect();
    assert_eq!(
        got,
        vec![
            vec![
                row("00:00", "00:08", "u1", 2, 3.0),
                row("00:01", "00:06", "u2", 1, 4.0),
                row("00:10", "00:15", "u1", 1, 8.0)
            ],
            vec![
                row("00:00", "00:15", "u1", 4, 27.0),
                row("00:01", "00:06", "u2", 1, 4.0),
                row("00:20", "00:25", "u2", 1, 32.0)
            ],
            vec![
                row("00:00", "00:15", "u1", 4, 27.0),
                row("00:01", "00:09", "u2", 2, 68.0),
                row("00:20", "00:25", "u2", 1, 32.0),
                row("00:30", "00:35", "u3", 1, 128.0)
            ],
            vec![
                row("00:00", "00:15", "u1", 4, 27.0),
                row("00:01", "00:09", "u2", 2, 68.0),
                row("00:20", "00:27", "u2", 2, 544.0),
                row("00:30", "00:35", "u3", 1, 128.0),
                row("00:40", "00:45", "u4", 1, 1024.0)
            ],
        ]
    );
    let dropped: Vec<u64> = state_per_batch(&progress(&s.path("ckpt"))).iter().map(|p| p.0).collect();
    assert_eq!(dropped, vec![0, 0, 0, 1]);
}

/// A running aggregation (no window) in complete mode, with every aggregate function. Rows with
/// a null event time count here: there is no window to leave them out of.
#[test]
fn running_aggregation_complete_with_every_function() {
    let s = Scratch::new();
    write_tumbling_input(&s);
    let text = "[source]\nformat = \"json\"\npath = \"{dir}/in\"\nschema = \"k string, amount double, event_time timestamp\"\nmax_files_per_trigger = 1\n\
         [[operator]]\nkind = \"aggregate\"\ngroup_by = [\"k\"]\n\
         aggregates = [{ fn = \"count\", as = \"n\" }, { fn = \"sum\", column = \"amount\", as = \"total\" }, { fn = \"min\", column = \"amount\", as = \"lo\" },\n\
           { fn = \"max\", column = \"amount\", as = \"hi\" }, { fn = \"avg\", column = \"amount\", as = \"mean\" }, { fn = \"first\", column = \"amount\", as = \"first\" },\n\
           { fn = \"last\", column = \"amount\", as = \"last\" }, { fn = \"approx_count_distinct\", column = \"event_time\", as = \"times\" },\n\
           { fn = \"count\", column = \"event_time\", as = \"timed\" }]\n\
         [sink]\nformat = \"console\"\noutput_mode = \"complete\"\ncheckpoint = \"{dir}/ckpt\"\ntrigger = { available_now = true }\n";
    let out = run_ok(&s.job(text));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("warning"), "complete mode keeps all groups by definition: {err}");
    let b = console_batches(&out.stdout);
    let table = |i: usize| b[i].1.iter().map(|r| r.join(" ")).collect::<Vec<_>>();
    assert_eq!(table(0), vec!["x 4 1007.0 1.0 1000.0 251.75 1.0 1000.0 3 3", "y 2 30.0 10.0 20.0 15.0 10.0 20.0 2 2"]);
    assert_eq!(
        table(3),
        vec![
            "x 9 1255.0 1.0 1000.0 139.44444444444446 1.0 128.0 8 8",
            "y 5 406.0 10.0 256.0 81.2 10.0 256.0 5 5",
            "z 1 512.0 512.0 512.0 512.0 512.0 512.0 1 1"
        ]
    );
}

/// With `late_rows = "dead_letter"`, the late row of the tumbling input (x at 00:09 in batch 3,
/// whose window ended at 00:10, behind batch 2's watermark 00:11) is kept with the reason.
#[test]
fn late_rows_of_an_aggregation_can_go_to_the_dead_letter_output() {
    let s = Scratch::new();
    write_tumbling_input(&s);
    let text = job("", TUMBLING, "append", JSON_SINK)
        .replace("delay = \"10 minutes\"\n", "delay = \"10 minutes\"\nlate_rows = \"dead_letter\"\n");
    run_ok(&s.job(&text));
    assert_eq!(rows(&s).len(), 6, "the same output as without the option");
    let dead = std::fs::read_to_string(s.path("ckpt/dead_letter/batch-3.jsonl")).unwrap();
    let d: Vec<serde_json::Value> = dead.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(d.len(), 1, "{dead}");
    assert_eq!(d[0]["origin"], "operator[0] (aggregate)");
    assert_eq!(d[0]["reason"], "late: event time is behind the watermark 2024-01-01T00:11:00.000Z");
    let raw: serde_json::Value = serde_json::from_str(d[0]["raw"].as_str().unwrap()).unwrap();
    assert_eq!(raw, serde_json::json!({"k": "x", "amount": "128.0", "event_time": "2024-01-01T00:09:00"}));
    for b in [0, 1, 2, 4] {
        assert!(!s.path(&format!("ckpt/dead_letter/batch-{b}.jsonl")).exists(), "batch {b} had no late row");
    }
}

/// Update mode without a watermark on the window keeps every group: the job says so at start.
#[test]
fn an_aggregation_whose_state_cannot_expire_warns_at_start() {
    let s = Scratch::new();
    write_tumbling_input(&s);
    let text = job("", TUMBLING, "update", CONSOLE_SINK)
        .replace("[watermark]\ncolumn = \"event_time\"\ndelay = \"10 minutes\"\n", "");
    let out = run_ok(&s.job(&text));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning: operator[0] (aggregate) keeps every group it sees, forever"), "{err}");
    // Without a watermark nothing is late or evicted: x's 00:09 counts in [00:05, 00:10).
    let b = console_batches(&out.stdout);
    assert!(windowed(&b[3].1).contains(&row("00:05", "00:10", "x", 3, 148.0)));
    assert_eq!(b.len(), 4, "no watermark, no no-data batch");
}

/// A batch of many files is read in pieces of a few files, each going through the operators as
/// it comes (here a dedup, then the aggregation, which takes every piece before it ends). The
/// result must equal that of the same rows in one file.
#[test]
fn a_batch_read_in_pieces_gives_what_one_file_gives() {
    let rows: Vec<String> = (0..240)
        .map(|n| {
            // Ids repeat every 100 rows (duplicates across pieces), keys cycle over 7.
            format!(
                "{{\"id\":\"e{}\",\"k\":\"k{}\",\"amount\":{}.5,\"event_time\":\"2024-01-01T00:{:02}:00Z\"}}\n",
                n % 100,
                n % 7,
                n % 13,
                n % 60
            )
        })
        .collect();
    let job = |s: &Scratch| {
        s.job(
            "[source]\nformat = \"json\"\npath = \"{dir}/in\"\nschema = \"id string, k string, amount double, event_time timestamp\"\n\
             [[operator]]\nkind = \"dedup\"\nkeys = [\"id\"]\n\
             [[operator]]\nkind = \"aggregate\"\ngroup_by = [\"k\"]\n\
             aggregates = [{ fn = \"count\", as = \"n\" }, { fn = \"sum\", column = \"amount\", as = \"total\" }, { fn = \"first\", column = \"id\", as = \"first_id\" }, { fn = \"last\", column = \"id\", as = \"last_id\" }]\n\
             [sink]\nformat = \"console\"\noutput_mode = \"complete\"\ncheckpoint = \"{dir}/ckpt\"\ntrigger = { once = true }\n",
        )
    };
    let pieces = Scratch::new();
    for (f, chunk) in rows.chunks(20).enumerate() {
        pieces.write(&format!("in/{f:02}.json"), &chunk.concat());
    }
    let whole = Scratch::new();
    whole.write("in/all.json", &rows.concat());
    let a = run_ok(&job(&pieces));
    let b = run_ok(&job(&whole));
    let (ta, tb) = (console_batches(&a.stdout), console_batches(&b.stdout));
    assert_eq!(ta, tb);
    // 100 distinct ids over 7 keys: k0..k1 get 15 ids, the others 14.
    let counts: Vec<&str> = ta[0].1.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(counts, vec!["15", "15", "14", "14", "14", "14", "14"]);
    assert_eq!(progress(&pieces.path("ckpt"))[0]["numInputRows"], 240);
}
