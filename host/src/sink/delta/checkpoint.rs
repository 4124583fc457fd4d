//! Checkpoints: `_delta_log/<version>.checkpoint.parquet`, the table's reconciled state at a
//! version in the protocol's (V1, classic) checkpoint schema — one row per action, each action
//! in its own struct column (`txn`, `add`, `remove`, `metaData`, `protocol`), the others null —
//! and `_delta_log/_last_checkpoint` pointing at it. Readers (and weir at start) read the
//! checkpoint and the commits after it instead of the whole log.
//!
//! A classic checkpoint may be written again by any writer (the protocol: "the latest writer
//! wins", both hold the same state), so it is written whole under its name (temporary file,
//! rename). A failure to write one is not an error of the batch: the commit is what counts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Int32Array, Int64Array, ListBuilder, MapBuilder, MapFieldNames, StringArray, StringBuilder,
    StructArray,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field as PqField;
use serde_json::{json, Value};

use super::super::SinkError;
use super::log::{Action, TableState, LAST_CHECKPOINT, LOG_DIR};
use crate::atomic_file::write_atomic;

/// How long a `remove` stays in checkpoints as a tombstone for VACUUM (Delta's
/// `delta.deletedFileRetentionDuration` default: one week).
pub const TOMBSTONE_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

/// The checkpoint file of `version`.
pub fn path(table: &Path, version: u64) -> PathBuf {
    table.join(LOG_DIR).join(format!("{version:020}.checkpoint.parquet"))
}

/// Writes the checkpoint of `state` (at `state.version`) and points `_last_checkpoint` at it.
pub fn write(table: &Path, state: &TableState, now_ms: i64) -> Result<(), SinkError> {
    let version = state.version.expect("a checkpoint follows a commit");
    let actions = state.checkpoint_actions(now_ms - TOMBSTONE_RETENTION_MS);
    let batch = encode(&actions);
    let file = path(table, version);
    let enc = |e: parquet::errors::ParquetError| SinkError::Encode {
        context: format!("checkpoint {}", file.display()),
        message: e.to_string(),
    };
    let mut bytes = Vec::new();
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut w = ArrowWriter::try_new(&mut bytes, batch.schema(), Some(props)).map_err(enc)?;
    w.write(&batch).map_err(enc)?;
    w.close().map_err(enc)?;
    let io = |p: &Path| {
        let context = format!("writing {}", p.display());
        move |source| SinkError::Io { context, source }
    };
    write_atomic(&file, &bytes).map_err(io(&file))?;
    let adds = actions.iter().filter(|a| matches!(a, Action::Add(_))).count();
    let last = json!({"version": version, "size": actions.len(), "sizeInBytes": bytes.len(), "numOfAddFiles": adds});
    let last_path = table.join(LOG_DIR).join(LAST_CHECKPOINT);
    write_atomic(&last_path, last.to_string().as_bytes()).map_err(io(&last_path))
}

/// Delta's metadata cleanup: the newest commit written at or before `keep_after_ms` (by its
/// file's modification time, as Delta dates commits) is the cutoff; the newest checkpoint at or
/// before it is kept with everything after it, and every commit, checkpoint and checksum file of
/// an earlier version is deleted. Without such a checkpoint nothing is deleted. Returns how many
/// files were deleted.
pub fn clean_up(table: &Path, keep_after_ms: i64) -> Result<usize, SinkError> {
    let dir = table.join(LOG_DIR);
    let io = |e: std::io::Error| SinkError::Io { context: format!("listing {}", dir.display()), source: e };
    // (version, kind, path, modified ms): kind 0 = commit, 1 = checkpoint, 2 = other versioned file.
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(io)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(version) = name.get(..20).and_then(|v| v.parse::<u64>().ok()) else { continue };
        let rest = &name[20..];
        let kind = if rest == ".json" {
            0
        } else if rest.starts_with(".checkpoint.") && rest.ends_with(".parquet") || rest.ends_with(".checkpoint.json") {
            1
        } else if rest == ".crc" {
            2
        } else {
            continue;
        };
        let modified = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(i64::MAX, |d| d.as_millis() as i64);
        files.push((version, kind, entry.path(), modified));
    }
    let Some(cutoff_commit) = files.iter().filter(|f| f.1 == 0 && f.3 <= keep_after_ms).map(|f| f.0).max() else {
        return Ok(0);
    };
    let Some(cutoff_checkpoint) = files
        .iter()
        .filter(|f| f.1 == 1 && f.0 <= cutoff_commit && f.2.to_string_lossy().ends_with(".checkpoint.parquet"))
        .map(|f| f.0)
        .max()
    else {
        return Ok(0);
    };
    let mut deleted = 0;
    for (version, _, path, _) in files.iter().filter(|f| f.0 < cutoff_checkpoint) {
        match std::fs::remove_file(path) {
            Ok(()) => deleted += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(SinkError::Io {
                    context: format!("deleting {} (version {version}, past log_retention)", path.display()),
                    source: e,
                })
            }
        }
    }
    Ok(deleted)
}

/// The rows of a checkpoint: one action each, in the protocol's column layout.
fn encode(actions: &[Action]) -> RecordBatch {
    let n = actions.len();
    let pick = |f: &dyn Fn(&Action) -> bool| -> Vec<bool> { actions.iter().map(f).collect() };
    let txns: Vec<_> = actions.iter().map(|a| if let Action::Txn(t) = a { Some(t) } else { None }).collect();
    let adds: Vec<_> = actions.iter().map(|a| if let Action::Add(x) = a { Some(x) } else { None }).collect();
    let removes: Vec<_> = actions.iter().map(|a| if let Action::Remove(x) = a { Some(x) } else { None }).collect();
    let metas: Vec<_> = actions.iter().map(|a| if let Action::MetaData(x) = a { Some(x) } else { None }).collect();
    let protos: Vec<_> = actions.iter().map(|a| if let Action::Protocol(x) = a { Some(x) } else { None }).collect();

    let txn = strukt(
        vec![
            ("appId", strings(txns.iter().map(|t| t.map(|t| t.app_id.clone())).collect())),
            ("version", longs(txns.iter().map(|t| t.map(|t| t.version)).collect())),
            ("lastUpdated", longs(txns.iter().map(|t| t.and_then(|t| t.last_updated)).collect())),
        ],
        pick(&|a| matches!(a, Action::Txn(_))),
    );
    let add = strukt(
        vec![
            ("path", strings(adds.iter().map(|a| a.map(|a| a.path.clone())).collect())),
            ("partitionValues", maps(adds.iter().map(|a| a.map(|a| &a.partition_values)).collect())),
            ("size", longs(adds.iter().map(|a| a.map(|a| a.size)).collect())),
            ("modificationTime", longs(adds.iter().map(|a| a.map(|a| a.modification_time)).collect())),
            ("dataChange", bools(adds.iter().map(|a| a.map(|a| a.data_change)).collect())),
            ("stats", strings(adds.iter().map(|a| a.and_then(|a| a.stats.clone())).collect())),
            ("tags", maps(adds.iter().map(|a| a.and_then(|a| a.tags.as_ref())).collect())),
        ],
        pick(&|a| matches!(a, Action::Add(_))),
    );
    let remove = strukt(
        vec![
            ("path", strings(removes.iter().map(|r| r.map(|r| r.path.clone())).collect())),
            ("deletionTimestamp", longs(removes.iter().map(|r| r.and_then(|r| r.deletion_timestamp)).collect())),
            ("dataChange", bools(removes.iter().map(|r| r.map(|r| r.data_change)).collect())),
            ("extendedFileMetadata", bools(removes.iter().map(|r| r.and_then(|r| r.extended_file_metadata)).collect())),
            ("partitionValues", maps(removes.iter().map(|r| r.and_then(|r| r.partition_values.as_ref())).collect())),
            ("size", longs(removes.iter().map(|r| r.and_then(|r| r.size)).collect())),
        ],
        pick(&|a| matches!(a, Action::Remove(_))),
    );
    let meta_valid = pick(&|a| matches!(a, Action::MetaData(_)));
    let format = strukt(
        vec![
            ("provider", strings(metas.iter().map(|m| m.map(|m| m.format.provider.clone())).collect())),
            ("options", maps_plain(metas.iter().map(|m| m.map(|m| &m.format.options)).collect())),
        ],
        meta_valid.clone(),
    );
    let meta = strukt(
        vec![
            ("id", strings(metas.iter().map(|m| m.map(|m| m.id.clone())).collect())),
            ("name", strings(metas.iter().map(|m| m.and_then(|m| m.name.clone())).collect())),
            ("description", strings(metas.iter().map(|m| m.and_then(|m| m.description.clone())).collect())),
            ("format", format),
            ("schemaString", strings(metas.iter().map(|m| m.map(|m| m.schema_string.clone())).collect())),
            ("partitionColumns", lists(metas.iter().map(|m| m.map(|m| &m.partition_columns)).collect())),
            ("configuration", maps(metas.iter().map(|m| m.map(|m| &m.configuration)).collect())),
            ("createdTime", longs(metas.iter().map(|m| m.and_then(|m| m.created_time)).collect())),
        ],
        meta_valid,
    );
    let protocol = strukt(
        vec![
            (
                "minReaderVersion",
                Arc::new(Int32Array::from(
                    protos.iter().map(|p| p.map(|p| p.min_reader_version as i32)).collect::<Vec<_>>(),
                )),
            ),
            (
                "minWriterVersion",
                Arc::new(Int32Array::from(
                    protos.iter().map(|p| p.map(|p| p.min_writer_version as i32)).collect::<Vec<_>>(),
                )),
            ),
        ],
        pick(&|a| matches!(a, Action::Protocol(_))),
    );
    let columns = vec![("txn", txn), ("add", add), ("remove", remove), ("metaData", meta), ("protocol", protocol)];
    let schema =
        Schema::new(columns.iter().map(|(name, a)| Field::new(*name, a.data_type().clone(), true)).collect::<Vec<_>>());
    let batch = RecordBatch::try_new(Arc::new(schema), columns.into_iter().map(|(_, a)| a).collect())
        .expect("the columns are built for this schema");
    debug_assert_eq!(batch.num_rows(), n);
    batch
}

fn strukt(children: Vec<(&str, ArrayRef)>, valid: Vec<bool>) -> ArrayRef {
    let fields: Vec<Field> = children.iter().map(|(name, a)| Field::new(*name, a.data_type().clone(), true)).collect();
    Arc::new(
        StructArray::try_new(
            fields.into(),
            children.into_iter().map(|(_, a)| a).collect(),
            Some(NullBuffer::from(valid)),
        )
        .expect("children of one length, all nullable"),
    )
}

fn strings(v: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

fn longs(v: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(Int64Array::from(v))
}

fn bools(v: Vec<Option<bool>>) -> ArrayRef {
    Arc::new(BooleanArray::from(v))
}

fn map_builder() -> MapBuilder<StringBuilder, StringBuilder> {
    let names = MapFieldNames { entry: "key_value".into(), key: "key".into(), value: "value".into() };
    MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new())
}

/// A `map<string,string>` column (values may be null).
fn maps(v: Vec<Option<&BTreeMap<String, Option<String>>>>) -> ArrayRef {
    let mut b = map_builder();
    for m in v {
        if let Some(m) = m {
            for (k, val) in m {
                b.keys().append_value(k);
                b.values().append_option(val.as_deref());
            }
        }
        b.append(m.is_some()).expect("keys and values appended in pairs");
    }
    Arc::new(b.finish())
}

fn maps_plain(v: Vec<Option<&BTreeMap<String, String>>>) -> ArrayRef {
    let mut b = map_builder();
    for m in v {
        if let Some(m) = m {
            for (k, val) in m {
                b.keys().append_value(k);
                b.values().append_value(val);
            }
        }
        b.append(m.is_some()).expect("keys and values appended in pairs");
    }
    Arc::new(b.finish())
}

fn lists(v: Vec<Option<&Vec<String>>>) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new()).with_field(Field::new("element", DataType::Utf8, true));
    for l in v {
        match l {
            Some(l) => {
                for s in l {
                    b.values().append_value(s);
                }
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Arc::new(b.finish())
}

/// The actions of the checkpoint of `version` (one written by weir, Spark or delta-rs: each
/// row's non-null action column, read by name).
pub fn read(table: &Path, version: u64, max_bytes: u64) -> Result<Vec<Action>, SinkError> {
    let file = path(table, version);
    super::log::check_size(&file, max_bytes)?;
    let err = |e: String| {
        SinkError::Invalid(format!(
            "{}: cannot read the table's checkpoint ({e}); restore it, or delete {LAST_CHECKPOINT} so that the log is read from version 0",
            file.display()
        ))
    };
    let f = std::fs::File::open(&file).map_err(|e| err(e.to_string()))?;
    let reader = SerializedFileReader::new(f).map_err(|e| err(e.to_string()))?;
    let rows = reader.get_row_iter(None).map_err(|e| err(e.to_string()))?;
    let mut out = Vec::new();
    for (i, row) in rows.enumerate() {
        let row = row.map_err(|e| err(e.to_string()))?;
        for (name, field) in row.get_column_iter() {
            if matches!(field, PqField::Null)
                || !["txn", "add", "remove", "metaData", "protocol"].contains(&name.as_str())
            {
                continue;
            }
            let mut action = serde_json::Map::new();
            action.insert(name.clone(), to_json(field));
            let at = || format!("{} row {i}", file.display());
            out.push(Action::from_value(Value::Object(action), &at)?);
        }
    }
    Ok(out)
}

/// A Parquet value as JSON (maps as objects, lists as arrays).
fn to_json(field: &PqField) -> Value {
    match field {
        PqField::Null => Value::Null,
        PqField::Bool(b) => json!(b),
        PqField::Byte(n) => json!(n),
        PqField::Short(n) => json!(n),
        PqField::Int(n) => json!(n),
        PqField::Long(n) => json!(n),
        PqField::UByte(n) => json!(n),
        PqField::UShort(n) => json!(n),
        PqField::UInt(n) => json!(n),
        PqField::ULong(n) => json!(n),
        PqField::Float(n) => json!(n),
        PqField::Double(n) => json!(n),
        PqField::Str(s) => json!(s),
        PqField::Group(row) => Value::Object(row.get_column_iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        PqField::ListInternal(list) => Value::Array(list.elements().iter().map(to_json).collect()),
        PqField::MapInternal(map) => Value::Object(
            map.entries()
                .iter()
                .map(|(k, v)| {
                    let key = match to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        other => json!(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::log::{Add, Format, Metadata, Protocol, Remove, Txn};
    use super::*;

    #[test]
    fn a_checkpoint_reads_back_as_the_state_it_was_written_from() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = TableState::default();
        state.apply(Action::Protocol(Protocol {
            min_reader_version: 1,
            min_writer_version: 2,
            reader_features: None,
            writer_features: None,
        }));
        state.apply(Action::MetaData(Metadata {
            id: "id-1".into(),
            name: None,
            description: None,
            format: Format { provider: "parquet".into(), options: BTreeMap::new() },
            schema_string: "{\"type\":\"struct\",\"fields\":[]}".into(),
            partition_columns: vec!["k".into()],
            configuration: BTreeMap::from([("delta.appendOnly".to_string(), Some("false".to_string()))]),
            created_time: Some(7),
        }));
        state.apply(Action::Txn(Txn { app_id: "q".into(), version: 9, last_updated: Some(3) }));
        for p in ["k=a/f1", "k=__HIVE_DEFAULT_PARTITION__/f2"] {
            state.apply(Action::Add(Add {
                path: p.into(),
                partition_values: BTreeMap::from([("k".to_string(), p.contains("=a/").then(|| "a".to_string()))]),
                size: 12,
                modification_time: 5,
                data_change: true,
                stats: Some("{\"numRecords\":2}".into()),
                tags: None,
                deletion_vector: None,
            }));
        }
        let now = 1_000_000_000_000;
        state.apply(Action::Remove(Remove::of(&state.files["k=a/f1"].clone(), now)));
        state.version = Some(10);
        write(dir.path(), &state, now).unwrap();
        let last: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("_delta_log/_last_checkpoint")).unwrap()).unwrap();
        assert_eq!(
            (last["version"].as_u64(), last["size"].as_u64(), last["numOfAddFiles"].as_u64()),
            (Some(10), Some(5), Some(1))
        );
        let mut back = TableState::default();
        for a in read(dir.path(), 10, u64::MAX).unwrap() {
            back.apply(a);
        }
        assert_eq!(back.protocol, state.protocol);
        assert_eq!(back.metadata, state.metadata);
        assert_eq!(back.txns, state.txns);
        assert_eq!(back.files, state.files);
        assert_eq!(back.tombstones, state.tombstones);
        let loaded = TableState::load(dir.path()).unwrap();
        assert_eq!((loaded.version, loaded.files.len()), (Some(10), 1));
    }
}
