//! Long-running jobs: the checkpoint's logs, the file sink's logs and the dead letters keep
//! `min_batches_to_retain` batches (compacted every 10, as Spark's), a restart after a purge
//! reads no input twice, a crashed attempt's part files go when its batch commits, and Spark
//! reads a weir output through `_spark_metadata` exactly as its own file sink's.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::*;

/// Input file `f` holds ids f*10 .. f*10+9, and (with `bad`) one malformed line.
fn write_inputs(s: &Scratch, files: std::ops::Range<usize>, bad: bool) {
    for f in files {
        let mut text: String =
            (0..10).map(|r| format!("{{\"id\":{},\"bucket\":\"b{}\"}}\n", f * 10 + r, r % 3)).collect();
        if bad {
            text.push_str("{not json\n");
        }
        s.write(&format!("in/f{f:03}.json"), &text);
    }
}

fn job(s: &Scratch, top: &str, sink: &str) -> std::path::PathBuf {
    s.job(&format!(
        r#"{top}
[source]
format = "json"
path = "{{dir}}/in"
schema = "id bigint, bucket string"
max_files_per_trigger = 1

[sink]
path = "{{dir}}/out"
checkpoint = "{{dir}}/ckpt"
trigger = {{ available_now = true }}
{sink}
"#
    ))
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort_by_key(|n| {
        (n.trim_start_matches("batch-").split('.').next().unwrap_or("").parse::<u64>().unwrap_or(u64::MAX), n.clone())
    });
    v
}

/// The ids of a JSON output's committed rows, sorted.
fn committed_ids(out: &Path) -> Vec<i64> {
    let mut ids: Vec<i64> = committed_text(out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn old_batches_leave_the_checkpoint_the_file_logs_and_the_dead_letters_and_a_restart_reads_nothing_twice() {
    let s = Scratch::new();
    write_inputs(&s, 0..45, true);
    let job = job(&s, "min_batches_to_retain = 5\non_bad_record = \"dead_letter\"", "format = \"json\"");
    run_ok(&job);
    // 45 batches (0..=44); the last purge, after batch 39, dropped everything before 35.
    let kept: Vec<String> = (35..45).map(|b| b.to_string()).collect();
    assert_eq!(names(&s.path("ckpt/offsets")), [vec!["34.compact".to_string()], kept.clone()].concat());
    assert_eq!(names(&s.path("ckpt/commits")), kept);
    let dead: Vec<String> = (35..45).map(|b| format!("batch-{b}.jsonl")).collect();
    assert_eq!(names(&s.path("ckpt/dead_letter")), dead);
    // The file sink's logs: Spark's compaction and deletion with min_batches_to_retain = 5
    // (after batch 44, batches 40..=44 must stay readable: the compaction at 39 and after).
    let log = ["39.compact", "40", "41", "42", "43", "44"];
    assert_eq!(names(&s.path("out/_weir_log")), log);
    assert_eq!(names(&s.path("out/_spark_metadata")), log);
    assert_eq!(committed_ids(&s.path("out")), (0..450).collect::<Vec<_>>());
    let inspect = weir().args(["checkpoint", "inspect"]).arg(s.path("ckpt")).output().unwrap();
    let inspect = String::from_utf8_lossy(&inspect.stdout).into_owned();
    assert!(inspect.contains("batches planned: 45\nbatches committed: 45"), "{inspect}");

    // A restart knows every file it read, from the folded ranges and the entries kept.
    write_inputs(&s, 45..48, false);
    run_ok(&job);
    assert_eq!(committed_ids(&s.path("out")), (0..480).collect::<Vec<_>>(), "no file read twice, none missed");
    assert_eq!(names(&s.path("ckpt/commits")).last().map(String::as_str), Some("47"));
}

/// A crash after the data files of batch 2 were written and before they were committed: the
/// restart replays batch 2 under new names and deletes the crashed attempt's files when it
/// commits; files of committed batches stay.
#[test]
fn a_crashed_attempts_part_files_are_deleted_when_its_batch_commits() {
    let s = Scratch::new();
    write_inputs(&s, 0..4, false);
    let job = job(&s, "", "format = \"json\"");
    let crashed = weir().args(["run", "--quiet"]).arg(&job).env("WEIR_TEST_CRASH_BEFORE_COMMIT", "2").output().unwrap();
    assert!(!crashed.status.success(), "the crash hook did not fire");
    let orphans = part_files_of_batch(&s.path("out"), 2);
    assert_eq!(orphans.len(), 1, "the crashed attempt left its file of batch 2: {orphans:?}");
    assert_eq!(committed_ids(&s.path("out")), (0..20).collect::<Vec<_>>());
    run_ok(&job);
    assert!(!orphans[0].exists(), "{} is still there", orphans[0].display());
    assert_eq!(part_files_of_batch(&s.path("out"), 2).len(), 1, "the replay's own file of batch 2");
    assert_eq!(committed_ids(&s.path("out")), (0..40).collect::<Vec<_>>());
    let all_parts = (0..4).flat_map(|b| part_files_of_batch(&s.path("out"), b)).count();
    assert_eq!(all_parts, committed_files(&s.path("out")).len(), "no data file outside the log");
}

fn part_files_of_batch(out: &Path, batch: u64) -> Vec<std::path::PathBuf> {
    let prefix = format!("part-{batch:05}-");
    let mut found = Vec::new();
    let mut dirs = vec![out.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() && !name.starts_with('_') {
                dirs.push(p);
            } else if name.starts_with(&prefix) {
                found.push(p);
            }
        }
    }
    found
}

/// Reads a path with `spark.read.parquet`, one per line on stdin, and answers each with the
/// sorted (id, bucket) rows as one JSON line; Spark starts once.
const SPARK_READER: &str = r#"
import json, sys
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[1]").appName("weir-retention-test")
         .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false").config("spark.sql.shuffle.partitions", "1").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
print("ready", flush=True)
for line in sys.stdin:
    rows = spark.read.parquet(line.strip()).select("id", "bucket").collect()
    print(json.dumps(sorted([r["id"], r["bucket"]] for r in rows)), flush=True)
"#;

/// The Python with PySpark: `WEIR_SPARK_PY`, else `.spark-venv/bin/python` (which
/// `scripts/test.sh` installs), if it can import pyspark.
fn spark_python() -> Option<std::path::PathBuf> {
    let py = std::env::var_os("WEIR_SPARK_PY")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo().join(".spark-venv/bin/python"));
    let ok = Command::new(&py).args(["-c", "import pyspark"]).output().is_ok_and(|o| o.status.success());
    ok.then_some(py)
}

fn expected_rows(files: std::ops::Range<usize>) -> serde_json::Value {
    let mut rows: Vec<(i64, String)> =
        files.flat_map(|f| (0..10).map(move |r| ((f * 10 + r) as i64, format!("b{}", r % 3)))).collect();
    rows.sort();
    serde_json::json!(rows)
}

/// Spark reads a weir output exactly as its own file sink's: through `_spark_metadata`, so a
/// crashed attempt's part files are never read, before the restart (they are still there) or
/// after, across compactions and with old log files deleted.
#[test]
fn spark_reads_exactly_the_committed_rows_after_a_crash_that_left_part_files() {
    let Some(py) = spark_python() else {
        eprintln!(
            "SKIPPED spark_reads_exactly_the_committed_rows_after_a_crash_that_left_part_files: PySpark is not installed; install it with `python3 -m venv .spark-venv && .spark-venv/bin/pip install pyspark==4.3.0 pyarrow 'pandas<3'` (scripts/test.sh does), or point WEIR_SPARK_PY at a Python that has it"
        );
        return;
    };
    let s = Scratch::new();
    write_inputs(&s, 0..25, false);
    let job = job(&s, "min_batches_to_retain = 3", "format = \"parquet\"\npartition_by = [\"bucket\"]");
    let crashed =
        weir().args(["run", "--quiet"]).arg(&job).env("WEIR_TEST_CRASH_BEFORE_COMMIT", "21").output().unwrap();
    assert!(!crashed.status.success(), "the crash hook did not fire");
    let orphans = part_files_of_batch(&s.path("out"), 21);
    assert_eq!(orphans.len(), 3, "one file per bucket left by the crashed attempt: {orphans:?}");

    let mut spark = Command::new(&py)
        .args(["-c", SPARK_READER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut to_spark = spark.stdin.take().unwrap();
    let mut from_spark = BufReader::new(spark.stdout.take().unwrap());
    let mut ready = String::new();
    from_spark.read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), "ready", "PySpark did not start");
    let mut read = |path: &Path| -> serde_json::Value {
        writeln!(to_spark, "{}", path.display()).unwrap();
        to_spark.flush().unwrap();
        let mut line = String::new();
        from_spark.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("Spark answered {line:?}: {e}"))
    };

    // Batches 0..=20 committed (20 is after the compaction at 19); 21's files are orphans.
    assert_eq!(read(&s.path("out")), expected_rows(0..21), "Spark read other than the committed files");
    run_ok(&job);
    assert!(orphans.iter().all(|o| !o.exists()), "the crashed attempt's files are deleted at the commit");
    assert_eq!(read(&s.path("out")), expected_rows(0..25));
    drop(to_spark);
    let _ = spark.wait();
    assert!(!s.path("out/_spark_metadata/0").exists(), "files before the kept compaction are deleted");
    assert!(s.path("out/_spark_metadata/19.compact").exists());
}

/// Plugin versions the checkpoint keeps (`plugins/<digest>.wasm`) go once no kept batch names
/// them, also those an earlier run stored (after a restart the run's own history does not name
/// them); the running version stays.
#[test]
fn a_plugin_version_of_an_earlier_run_goes_once_no_kept_batch_names_it() {
    let s = Scratch::new();
    let (v1, v2) = (crate::hot_swap::tagger("v1"), crate::hot_swap::tagger("v2"));
    let plugin = s.path("tagger.wasm");
    std::fs::copy(&v1, &plugin).unwrap();
    let stored = |v: &Path| {
        use sha2::Digest;
        let digest = format!("sha256-{:x}", sha2::Sha256::digest(std::fs::read(v).unwrap()));
        s.path(&format!("ckpt/plugins/{digest}.wasm")).exists()
    };
    let job = s.job(&format!(
        "min_batches_to_retain = 3\n[source]\nformat = \"json\"\npath = \"{{dir}}/in\"\nschema = \"event_id string\"\n\
         max_files_per_trigger = 1\n[[operator]]\nkind = \"map\"\nplugin = \"{}\"\n\
         [sink]\nformat = \"json\"\npath = \"{{dir}}/out\"\ncheckpoint = \"{{dir}}/ckpt\"\ntrigger = {{ available_now = true }}\n",
        plugin.display()
    ));
    for f in 0..5 {
        s.write(&format!("in/a{f:02}.json"), &format!("{{\"event_id\":\"a{f}\"}}\n"));
    }
    run_ok(&job);
    assert!(stored(&v1), "the version that ran is kept");
    std::fs::copy(&v2, &plugin).unwrap();
    for f in 0..25 {
        s.write(&format!("in/b{f:02}.json"), &format!("{{\"event_id\":\"b{f}\"}}\n"));
    }
    run_ok(&job);
    assert!(!stored(&v1), "v1 ran only batches 0..=4, which retention dropped");
    assert!(stored(&v2), "the running version stays");
    assert_eq!(committed_text(&s.path("out")).lines().count(), 30);
}
