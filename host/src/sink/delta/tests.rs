//! The sink driven by hand-made batches: commits, txn, retries, modes, merge, schema evolution,
//! checkpoints. (tests/e2e/delta.rs reads the tables with PyPI's `deltalake`.)

use std::sync::Arc;

use arrow::array::{Int64Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;
use crate::schema::parse_ddl;

fn config(dir: &Path) -> DeltaSinkConfig {
    DeltaSinkConfig {
        path: dir.to_path_buf(),
        partition_by: Vec::new(),
        merge_schema: false,
        merge_on: Vec::new(),
        checkpoint_interval: 10,
        max_commit_retries: 10,
        log_retention: std::time::Duration::from_secs(30 * 24 * 3600),
        max_log_file_bytes: crate::config::DEFAULT_DELTA_MAX_LOG_FILE_BYTES,
    }
}

fn batch(ids: &[i64], ks: &[&str]) -> RecordBatch {
    RecordBatch::try_new(
        parse_ddl("id bigint, k string").unwrap(),
        vec![Arc::new(Int64Array::from(ids.to_vec())), Arc::new(StringArray::from(ks.to_vec()))],
    )
    .unwrap()
}

fn sink(c: &DeltaSinkConfig, mode: OutputMode, query: &str) -> DeltaSink {
    let mut s = DeltaSink::new(c, mode, batch(&[], &[]).schema()).unwrap();
    s.start(query).unwrap();
    s
}

/// The table's rows as (id, k), sorted, read from its live files (partition values filled in).
fn rows(dir: &Path) -> Vec<(i64, String)> {
    let state = read_table(dir).unwrap();
    let mut out = Vec::new();
    for add in state.files.values() {
        let f = std::fs::File::open(file_path(dir, add)).unwrap();
        for b in ParquetRecordBatchReaderBuilder::try_new(f).unwrap().build().unwrap() {
            let b = b.unwrap();
            let ids = b.column_by_name("id").unwrap().as_any().downcast_ref::<Int64Array>().unwrap().clone();
            let ks: Vec<String> = match b.column_by_name("k") {
                Some(k) => k
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap()
                    .iter()
                    .map(|v| v.unwrap_or("").to_string())
                    .collect(),
                None => vec![add.partition_values["k"].clone().unwrap_or_default(); b.num_rows()],
            };
            out.extend(ids.iter().map(|v| v.unwrap()).zip(ks));
        }
    }
    out.sort();
    out
}

fn commit_lines(dir: &Path, version: u64) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log::commit_path(dir, version))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn each_batch_is_one_commit_with_its_txn_and_a_replay_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let mut s = sink(&c, OutputMode::Append, "q1");
    assert!(!s.committed(0).unwrap());
    assert_eq!(s.write_batch(0, &[batch(&[1, 2], &["a", "b"])]).unwrap(), 2);
    assert_eq!(s.write_batch(1, &[batch(&[3], &["c"])]).unwrap(), 1);
    let first = commit_lines(dir.path(), 0);
    let keys: Vec<&str> = first.iter().map(|a| a.as_object().unwrap().keys().next().unwrap().as_str()).collect();
    assert_eq!(keys, ["commitInfo", "protocol", "metaData", "txn", "add"]);
    assert_eq!(first[1]["protocol"], json!({"minReaderVersion": 1, "minWriterVersion": 2}));
    assert_eq!(first[3]["txn"]["appId"], "q1");
    assert_eq!(first[3]["txn"]["version"], 0);
    let stats: serde_json::Value = serde_json::from_str(first[4]["add"]["stats"].as_str().unwrap()).unwrap();
    assert_eq!(
        stats,
        json!({"numRecords": 2, "minValues": {"id": 1, "k": "a"}, "maxValues": {"id": 2, "k": "b"}, "nullCount": {"id": 0, "k": 0}})
    );
    let second = commit_lines(dir.path(), 1);
    assert_eq!(second.len(), 3, "commitInfo, txn, add: {second:?}");
    // A replay of batch 1 in a restarted query (a new sink instance): nothing written.
    let mut again = sink(&c, OutputMode::Append, "q1");
    assert!(again.committed(1).unwrap() && !again.committed(2).unwrap());
    assert_eq!(again.write_batch(1, &[batch(&[99], &["z"])]).unwrap(), 0);
    assert!(!log::commit_path(dir.path(), 2).exists());
    assert_eq!(rows(dir.path()), [(1, "a".into()), (2, "b".into()), (3, "c".into())]);
    // Another query on the same table has a txn of its own.
    let mut other = sink(&c, OutputMode::Append, "q2");
    assert!(!other.committed(1).unwrap());
    assert_eq!(other.write_batch(1, &[batch(&[4], &["d"])]).unwrap(), 1);
    assert_eq!(read_table(dir.path()).unwrap().txn_version("q1"), Some(1));
    assert_eq!(read_table(dir.path()).unwrap().txn_version("q2"), Some(1));
}

#[test]
fn a_version_taken_by_another_writer_is_retried_on_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let mut s = sink(&c, OutputMode::Append, "q1");
    s.write_batch(0, &[batch(&[1], &["a"])]).unwrap();
    s.other_writer_before = Some(1);
    assert_eq!(s.write_batch(1, &[batch(&[2], &["b"])]).unwrap(), 1);
    let v1 = commit_lines(dir.path(), 1);
    assert_eq!(v1[1]["txn"]["appId"], "weir-test-other-writer");
    let v2 = commit_lines(dir.path(), 2);
    assert_eq!(v2[1]["txn"], json!({"appId": "q1", "version": 1, "lastUpdated": v2[1]["txn"]["lastUpdated"]}));
    assert_eq!(v2[0]["commitInfo"]["readVersion"], 1, "planned on the version the other writer made");
    assert_eq!(rows(dir.path()), [(1, "a".into()), (2, "b".into())]);

    // The other writer was this query's own earlier attempt (it committed the batch): the
    // retry finds the txn and writes nothing more.
    let mut a = sink(&c, OutputMode::Append, "q3");
    let mut b = sink(&c, OutputMode::Append, "q3");
    a.table.refresh(dir.path()).unwrap();
    b.write_batch(0, &[batch(&[7], &["x"])]).unwrap();
    let before = read_table(dir.path()).unwrap().version;
    // `a` believes the table is at the older version: its commit attempt loses, it re-reads.
    assert_eq!(a.write_batch(0, &[batch(&[7], &["x"])]).unwrap(), 0);
    assert_eq!(read_table(dir.path()).unwrap().version, before);
    assert_eq!(rows(dir.path()).iter().filter(|r| r.0 == 7).count(), 1);
}

#[test]
fn complete_mode_replaces_every_live_file_in_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let mut s = sink(&c, OutputMode::Complete, "q1");
    s.write_batch(0, &[batch(&[1, 2], &["a", "b"])]).unwrap();
    s.write_batch(1, &[batch(&[1, 2, 3], &["a2", "b2", "c2"])]).unwrap();
    assert_eq!(rows(dir.path()), [(1, "a2".into()), (2, "b2".into()), (3, "c2".into())]);
    let v1 = commit_lines(dir.path(), 1);
    let kinds: Vec<&str> = v1.iter().map(|a| a.as_object().unwrap().keys().next().unwrap().as_str()).collect();
    assert_eq!(kinds, ["commitInfo", "txn", "remove", "add"]);
    assert_eq!(v1[2]["remove"]["path"], commit_lines(dir.path(), 0)[4]["add"]["path"]);
    assert_eq!(v1[0]["commitInfo"]["operationParameters"]["outputMode"], "Complete");
}

#[test]
fn partitions_are_directories_and_partition_values_with_the_column_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.partition_by = vec!["k".into()];
    let mut s = sink(&c, OutputMode::Append, "q1");
    s.write_batch(0, &[batch(&[1, 2, 3], &["a/b", "", "a/b"])]).unwrap();
    let v0 = commit_lines(dir.path(), 0);
    assert_eq!(v0[2]["metaData"]["partitionColumns"], json!(["k"]));
    let adds: Vec<&serde_json::Value> = v0.iter().filter_map(|a| a.get("add")).collect();
    assert_eq!(adds.len(), 2);
    assert!(adds[0]["path"].as_str().unwrap().starts_with("k=a%252Fb/part-00000-"), "{}", adds[0]["path"]);
    assert_eq!(adds[0]["partitionValues"], json!({"k": "a/b"}));
    assert!(adds[1]["path"].as_str().unwrap().starts_with("k=__HIVE_DEFAULT_PARTITION__/"));
    assert_eq!(adds[1]["partitionValues"], json!({"k": null}));
    assert!(dir.path().join("k=a%2Fb").is_dir());
    // The job may leave partition_by out on an existing table: the table's is used.
    let mut again = sink(&config(dir.path()), OutputMode::Append, "q1");
    again.write_batch(1, &[batch(&[4], &["c"])]).unwrap();
    assert!(dir.path().join("k=c").is_dir());
    // Another partitioning is refused, naming both.
    let mut other = config(dir.path());
    other.partition_by = vec!["id".into()];
    let e = DeltaSink::new(&other, OutputMode::Append, batch(&[], &[]).schema()).err().unwrap().to_string();
    assert!(e.ends_with("is partitioned by [k] but the job's sink.partition_by is [id]: use the table's partition columns (or leave partition_by out), or another path"), "{e}");
}

#[test]
fn merge_updates_matched_rows_and_inserts_the_rest_the_last_row_of_a_key_winning() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.merge_on = vec!["id".into()];
    let mut s = sink(&c, OutputMode::Append, "q1");
    assert_eq!(s.write_batch(0, &[batch(&[1, 2, 3], &["a", "b", "c"])]).unwrap(), 3);
    assert_eq!(s.write_batch(1, &[batch(&[5, 4], &["e", "d"])]).unwrap(), 2);
    // Batch 2 updates 2 (twice: the last wins) and 4, inserts 6.
    assert_eq!(s.write_batch(2, &[batch(&[2, 4, 6, 2], &["b1", "d1", "f", "b2"])]).unwrap(), 3);
    assert_eq!(
        rows(dir.path()),
        [(1, "a".into()), (2, "b2".into()), (3, "c".into()), (4, "d1".into()), (5, "e".into()), (6, "f".into())]
    );
    let v2 = commit_lines(dir.path(), 2);
    let removes = v2.iter().filter(|a| a.get("remove").is_some()).count();
    let adds = v2.iter().filter(|a| a.get("add").is_some()).count();
    assert_eq!((removes, adds), (2, 3), "both files rewritten, plus the batch's");
    assert_eq!(v2[0]["commitInfo"]["operation"], "MERGE");
    // Idempotent: a replay of batch 2 writes nothing.
    let mut again = sink(&c, OutputMode::Append, "q1");
    assert_eq!(again.write_batch(2, &[batch(&[1], &["zzz"])]).unwrap(), 0);
    assert_eq!(rows(dir.path()).len(), 6);
}

#[test]
fn a_new_column_evolves_the_table_under_merge_schema_and_is_refused_without() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let mut s = sink(&c, OutputMode::Append, "q1");
    s.write_batch(0, &[batch(&[1], &["a"])]).unwrap();
    let wide = parse_ddl("id bigint, k string, extra double").unwrap();
    let e = s.set_schema(wide.clone()).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("the job's output has columns that the Delta table {} does not: `extra` (double); set merge_schema = true in [sink] to add them to the table (as Spark's mergeSchema option), or leave them out of the output", dir.path().display())
    );
    let mut c2 = config(dir.path());
    c2.merge_schema = true;
    let mut s = sink(&c2, OutputMode::Append, "q1");
    s.set_schema(wide.clone()).unwrap();
    let b = RecordBatch::try_new(
        wide,
        vec![
            Arc::new(Int64Array::from(vec![2])),
            Arc::new(StringArray::from(vec!["b"])),
            Arc::new(arrow::array::Float64Array::from(vec![0.5])),
        ],
    )
    .unwrap();
    s.write_batch(1, &[b]).unwrap();
    let v1 = commit_lines(dir.path(), 1);
    let meta = &v1.iter().find(|a| a.get("metaData").is_some()).unwrap()["metaData"];
    let cols = log::parse_schema(meta["schemaString"].as_str().unwrap()).unwrap();
    assert_eq!(cols.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["id", "k", "extra"]);
    assert_eq!(meta["id"], commit_lines(dir.path(), 0)[2]["metaData"]["id"], "the same table");
    // A narrower output (a rollback) writes on: the column is null in its files.
    s.set_schema(batch(&[], &[]).schema()).unwrap();
    s.write_batch(2, &[batch(&[3], &["c"])]).unwrap();
    assert!(commit_lines(dir.path(), 2).iter().all(|a| a.get("metaData").is_none()));
    // Another type for a column is refused, naming it.
    let typed = parse_ddl("id string, k string").unwrap();
    let e = DeltaSink::new(&c2, OutputMode::Append, typed).err().unwrap().to_string();
    assert!(
        e.starts_with("column `id` is long in the Delta table") && e.contains("but string in the job's output"),
        "{e}"
    );
}

#[test]
fn a_checkpoint_every_ten_commits_and_a_restart_reads_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.checkpoint_interval = 10;
    let mut s = sink(&c, OutputMode::Append, "q1");
    for b in 0..23u64 {
        s.write_batch(b, &[batch(&[b as i64], &["x"])]).unwrap();
    }
    let log_dir = dir.path().join("_delta_log");
    assert!(log_dir.join("00000000000000000010.checkpoint.parquet").exists());
    assert!(log_dir.join("00000000000000000020.checkpoint.parquet").exists());
    assert!(!log_dir.join("00000000000000000011.checkpoint.parquet").exists());
    let last: serde_json::Value =
        serde_json::from_slice(&std::fs::read(log_dir.join("_last_checkpoint")).unwrap()).unwrap();
    assert_eq!(last["version"], 20);
    // Without the commits before the checkpoint, the table still reads whole.
    for v in 0..=20u64 {
        std::fs::remove_file(log::commit_path(dir.path(), v)).unwrap();
    }
    let state = read_table(dir.path()).unwrap();
    assert_eq!((state.version, state.files.len(), state.txn_version("q1")), (Some(22), 23, Some(22)));
    assert_eq!(rows(dir.path()).len(), 23);
    let mut again = sink(&c, OutputMode::Append, "q1");
    assert!(again.committed(22).unwrap());
}

#[test]
fn a_table_needing_a_newer_protocol_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let actions = [Action::Protocol(Protocol {
        min_reader_version: 3,
        min_writer_version: 7,
        reader_features: Some(vec!["deletionVectors".into()]),
        writer_features: Some(vec!["deletionVectors".into()]),
    })];
    log::try_commit(dir.path(), 0, &actions).unwrap();
    let e =
        DeltaSink::new(&config(dir.path()), OutputMode::Append, batch(&[], &[]).schema()).err().unwrap().to_string();
    assert!(e.contains("needs Delta readers of version 3 and writers of version 7 (features: deletionVectors)"), "{e}");
}

#[test]
fn after_a_checkpoint_log_entries_older_than_log_retention_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    let mut s = sink(&c, OutputMode::Append, "q1");
    for b in 0..12u64 {
        s.write_batch(b, &[batch(&[b as i64], &["x"])]).unwrap();
    }
    let names = || {
        let mut v: Vec<String> = std::fs::read_dir(dir.path().join("_delta_log"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names().len(), 12 + 2, "the default (30 days) keeps everything: {:?}", names());
    // No retention: at the next checkpoint (version 20), everything before it goes.
    c.log_retention = std::time::Duration::ZERO;
    let mut s = sink(&c, OutputMode::Append, "q1");
    for b in 12..23u64 {
        s.write_batch(b, &[batch(&[b as i64], &["x"])]).unwrap();
    }
    let left = names();
    assert_eq!(left.first().map(String::as_str), Some("00000000000000000020.checkpoint.parquet"), "{left:?}");
    assert_eq!(left.len(), 1 + 3 + 1, "checkpoint 20, commits 20..=22, _last_checkpoint: {left:?}");
    let state = read_table(dir.path()).unwrap();
    assert_eq!((state.version, state.files.len(), state.txn_version("q1")), (Some(22), 23, Some(22)));
    assert!(sink(&c, OutputMode::Append, "q1").committed(22).unwrap());
}

#[test]
fn a_batch_that_loses_more_races_than_max_commit_retries_stops_and_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_commit_retries = 0;
    let mut s = sink(&c, OutputMode::Append, "q1");
    s.write_batch(0, &[batch(&[1], &["a"])]).unwrap();
    s.other_writer_before = Some(1);
    let e = s.write_batch(1, &[batch(&[2], &["b"])]).unwrap_err().to_string();
    assert!(
        e.ends_with("batch 1 lost the race for a version 1 times in a row to other writers; nothing of it was committed. Raise sink.max_commit_retries, or give this job the table alone; a restart retries the batch"),
        "{e}"
    );
    let parquet = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".parquet"))
            .count()
    };
    assert_eq!(parquet(), 1, "the lost batch's file is deleted");
    // The retry (as after a restart) commits it on the next version.
    s.other_writer_before = None;
    assert_eq!(s.write_batch(1, &[batch(&[2], &["b"])]).unwrap(), 1);
    assert_eq!(read_table(dir.path()).unwrap().version, Some(2));
    assert_eq!(rows(dir.path()), [(1, "a".into()), (2, "b".into())]);
}

#[test]
fn an_append_only_table_refuses_complete_mode_and_merges() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let mut s = sink(&c, OutputMode::Append, "q1");
    s.write_batch(0, &[batch(&[1], &["a"])]).unwrap();
    // The table's owner sets delta.appendOnly (a metaData action of another writer).
    let mut meta = read_table(dir.path()).unwrap().metadata.unwrap();
    meta.configuration.insert("delta.appendOnly".into(), Some("true".into()));
    assert!(log::try_commit(dir.path(), 1, &[Action::MetaData(meta)]).unwrap());
    let e = DeltaSink::new(&c, OutputMode::Complete, batch(&[], &[]).schema()).err().unwrap().to_string();
    assert!(e.ends_with("is append-only (delta.appendOnly = true): output_mode = \"complete\" and merge_on would remove files from it; append to it, or write to another path"), "{e}");
    let mut m = config(dir.path());
    m.merge_on = vec!["id".into()];
    assert!(DeltaSink::new(&m, OutputMode::Append, batch(&[], &[]).schema()).is_err());
    // Appending goes on.
    assert_eq!(s.write_batch(1, &[batch(&[2], &["b"])]).unwrap(), 1);
}

#[test]
fn a_crashed_attempts_files_go_when_their_batch_commits_and_committed_files_stay() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.partition_by = vec!["k".into()];
    let mut s = sink(&c, OutputMode::Complete, "q1");
    s.write_batch(0, &[batch(&[1], &["a"])]).unwrap();
    // An attempt of batch 1 wrote its files and crashed before the commit; one of batch 2 is
    // in flight.
    let mut crashed = sink(&c, OutputMode::Complete, "q1");
    let left = crashed.write_files(1, &[batch(&[2, 3], &["a", "b"])]).unwrap();
    let mut in_flight = sink(&c, OutputMode::Complete, "q1");
    let flying = in_flight.write_files(2, &[batch(&[4], &["a"])]).unwrap();
    let exists = |a: &Add| file_path(dir.path(), a).exists();
    assert!(left.iter().all(exists) && flying.iter().all(exists));
    // The restarted query commits batch 1 (complete mode: batch 0's file is removed, kept on
    // disk for readers of version 0).
    let mut restarted = sink(&c, OutputMode::Complete, "q1");
    restarted.write_batch(1, &[batch(&[2, 3], &["a", "b"])]).unwrap();
    assert!(!left.iter().any(exists), "the crashed attempt's files are deleted");
    assert!(flying.iter().all(exists), "batch 2's are not touched");
    let state = read_table(dir.path()).unwrap();
    assert!(
        state.files.values().all(exists)
            && state.tombstones.keys().all(|p| dir.path().join(log::decode_path(p)).exists())
    );
    let records: Vec<String> = std::fs::read_dir(dir.path().join(PENDING_DIR).join("q1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(records, [format!("2-{}", in_flight.attempt)]);
    // A replay of batch 2 after its commit (made here by the in-flight attempt's own sink)
    // clears its record and keeps its files.
    in_flight.write_batch(2, &[batch(&[4], &["a"])]).unwrap();
    let again = sink(&c, OutputMode::Complete, "q1").write_batch(2, &[batch(&[9], &["z"])]).unwrap();
    assert_eq!(again, 0);
    assert!(std::fs::read_dir(dir.path().join(PENDING_DIR).join("q1")).unwrap().next().is_none());
    assert!(read_table(dir.path()).unwrap().files.values().all(exists));
    assert_eq!(rows(dir.path()), [(4, "a".into())]);
}
