//! The Delta transaction log (`_delta_log/`): its actions as JSON, the table state they add up
//! to (Delta's "action reconciliation"), and commits created put-if-absent.
//!
//! A commit is `_delta_log/<version, 20 digits>.json`, one action per line. It is written aside
//! and hard-linked to its name, which fails when the name exists: a commit is never
//! overwritten, and two writers racing for one version find out (the loser re-reads the log and
//! tries the next version). Readers (this one too) follow the versions in order; a checkpoint
//! (`<version>.checkpoint.parquet`, see [`super::checkpoint`]) holds the reconciled state at
//! its version, so a reader starts there instead of at version 0.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::super::SinkError;
use super::checkpoint;

/// The log directory inside the table directory.
pub const LOG_DIR: &str = "_delta_log";
/// The pointer to the latest checkpoint.
pub const LAST_CHECKPOINT: &str = "_last_checkpoint";
/// The protocol weir writes: readers 1, writers 2 (appendOnly and invariants, no table
/// features). A table that needs more is refused, never written half-understood.
pub const READER_VERSION: i64 = 1;
pub const WRITER_VERSION: i64 = 2;

/// `protocol`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Protocol {
    pub min_reader_version: i64,
    pub min_writer_version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer_features: Option<Vec<String>>,
}

/// `metaData.format`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Format {
    pub provider: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// `metaData`: the table's id, schema and partition columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub format: Format,
    pub schema_string: String,
    #[serde(default)]
    pub partition_columns: Vec<String>,
    #[serde(default)]
    pub configuration: BTreeMap<String, Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<i64>,
}

/// `add`: a data file of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Add {
    /// Relative to the table, URI-encoded ([`encode_path`]).
    pub path: String,
    #[serde(default)]
    pub partition_values: BTreeMap<String, Option<String>>,
    pub size: i64,
    pub modification_time: i64,
    pub data_change: bool,
    /// Per-file statistics, a JSON document in a string ([`super::stats`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, Option<String>>>,
    /// Deletion vectors are a reader feature weir refuses (protocol check); kept to notice one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_vector: Option<Value>,
}

/// `remove`: a data file no longer in the table (a tombstone until VACUUM's retention passes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Remove {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<i64>,
    pub data_change: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_file_metadata: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_values: Option<BTreeMap<String, Option<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
}

impl Remove {
    /// The tombstone of a live file, with what Spark's Delta writes (extended metadata).
    pub fn of(add: &Add, now_ms: i64) -> Remove {
        Remove {
            path: add.path.clone(),
            deletion_timestamp: Some(now_ms),
            data_change: true,
            extended_file_metadata: Some(true),
            partition_values: Some(add.partition_values.clone()),
            size: Some(add.size),
        }
    }
}

/// `txn`: the last batch an application (a streaming query) committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Txn {
    pub app_id: String,
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<i64>,
}

/// One line of a commit. Actions weir does not write (`cdc`, `domainMetadata`, ...) are kept
/// as they are when read and play no part in the state it needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    CommitInfo(Value),
    Protocol(Protocol),
    MetaData(Metadata),
    Add(Add),
    Remove(Remove),
    Txn(Txn),
    Other(String, Value),
}

impl Action {
    /// The JSON line of the action (`{"add":{...}}`).
    pub fn to_line(&self) -> String {
        let (key, value) = match self {
            Action::CommitInfo(v) => ("commitInfo", v.clone()),
            Action::Protocol(p) => ("protocol", serde_json::to_value(p).expect("plain struct")),
            Action::MetaData(m) => ("metaData", serde_json::to_value(m).expect("plain struct")),
            Action::Add(a) => ("add", serde_json::to_value(a).expect("plain struct")),
            Action::Remove(r) => ("remove", serde_json::to_value(r).expect("plain struct")),
            Action::Txn(t) => ("txn", serde_json::to_value(t).expect("plain struct")),
            Action::Other(k, v) => (k.as_str(), v.clone()),
        };
        let mut line = serde_json::Map::new();
        line.insert(key.to_string(), value);
        Value::Object(line).to_string()
    }

    /// Reads one action from its JSON object (`{"add":{...}}`); `at` names it in errors.
    pub fn from_value(value: Value, at: &dyn Fn() -> String) -> Result<Action, SinkError> {
        let Value::Object(map) = value else {
            return Err(damaged(at(), "an action is not a JSON object"));
        };
        let Some((key, body)) = map.into_iter().find(|(_, v)| !v.is_null()) else {
            return Err(damaged(at(), "an action has no content"));
        };
        let typed = |r: Result<Action, serde_json::Error>| r.map_err(|e| damaged(at(), &format!("`{key}`: {e}")));
        Ok(match key.as_str() {
            "commitInfo" => Action::CommitInfo(body),
            "protocol" => typed(serde_json::from_value(body).map(Action::Protocol))?,
            "metaData" => typed(serde_json::from_value(body).map(Action::MetaData))?,
            "add" => typed(serde_json::from_value(body).map(Action::Add))?,
            "remove" => typed(serde_json::from_value(body).map(Action::Remove))?,
            "txn" => typed(serde_json::from_value(body).map(Action::Txn))?,
            _ => Action::Other(key.clone(), body),
        })
    }
}

fn damaged(at: String, what: &str) -> SinkError {
    SinkError::Invalid(format!(
        "{at}: not a valid Delta log entry ({what}); the table's log is damaged or not a Delta table's"
    ))
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> SinkError {
    move |source| SinkError::Io { context, source }
}

/// The path of commit `version`.
pub fn commit_path(table: &Path, version: u64) -> PathBuf {
    table.join(LOG_DIR).join(format!("{version:020}.json"))
}

/// The table as of a version: the log's actions reconciled (the latest protocol and metaData,
/// the latest txn per appId, the files added and not removed, the tombstones).
#[derive(Debug, Clone)]
pub struct TableState {
    /// The latest version read; `None` when the table has no commit yet.
    pub version: Option<u64>,
    pub protocol: Option<Protocol>,
    pub metadata: Option<Metadata>,
    pub txns: HashMap<String, Txn>,
    /// Live files by path.
    pub files: BTreeMap<String, Add>,
    pub tombstones: HashMap<String, Remove>,
    /// The largest log file read (the sink's `max_log_file_bytes`).
    pub max_file_bytes: u64,
}

impl Default for TableState {
    fn default() -> Self {
        TableState {
            version: None,
            protocol: None,
            metadata: None,
            txns: HashMap::new(),
            files: BTreeMap::new(),
            tombstones: HashMap::new(),
            max_file_bytes: crate::config::DEFAULT_DELTA_MAX_LOG_FILE_BYTES,
        }
    }
}

/// Refuses a log file of more than `max` bytes (the sink's `max_log_file_bytes`) before it is
/// read; `Ok` also when it does not exist.
pub fn check_size(path: &Path, max: u64) -> Result<(), SinkError> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > max => Err(SinkError::Invalid(format!(
            "{} has {} bytes, more than the delta sink reads (sink.max_log_file_bytes = {max}); raise \
             max_log_file_bytes if the table's log is this large",
            path.display(),
            m.len()
        ))),
        _ => Ok(()),
    }
}

impl TableState {
    /// Reads the table at `dir`: the latest checkpoint (as `_last_checkpoint` says), then every
    /// commit after it. A directory without a log is a table not created yet.
    pub fn load(dir: &Path) -> Result<TableState, SinkError> {
        Self::load_with(dir, crate::config::DEFAULT_DELTA_MAX_LOG_FILE_BYTES)
    }

    /// [`Self::load`], reading no log file of more than `max_file_bytes`.
    pub fn load_with(dir: &Path, max_file_bytes: u64) -> Result<TableState, SinkError> {
        let mut state = TableState { max_file_bytes, ..TableState::default() };
        let last = dir.join(LOG_DIR).join(LAST_CHECKPOINT);
        check_size(&last, max_file_bytes)?;
        match std::fs::read(&last) {
            Ok(bytes) => {
                let v: Value =
                    serde_json::from_slice(&bytes).map_err(|e| damaged(last.display().to_string(), &e.to_string()))?;
                let version =
                    v["version"].as_u64().ok_or_else(|| damaged(last.display().to_string(), "no `version`"))?;
                if v.get("parts").is_some_and(|p| !p.is_null()) {
                    return Err(SinkError::Invalid(format!(
                        "{}: the table's latest checkpoint has several parts, which weir does not read; write a single-file checkpoint of the table (deltalake's create_checkpoint()) or use another path",
                        last.display()
                    )));
                }
                for action in checkpoint::read(dir, version, max_file_bytes)? {
                    state.apply(action);
                }
                state.version = Some(version);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(format!("reading {}", last.display()))(e)),
        }
        if state.version.is_none() && !commit_path(dir, 0).exists() && dir.join(LOG_DIR).is_dir() {
            // A log without version 0 and without a checkpoint pointer: its start was cleaned up.
            let any = std::fs::read_dir(dir.join(LOG_DIR))
                .map_err(io(format!("listing {}", dir.join(LOG_DIR).display())))?
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".json"));
            if any {
                return Err(SinkError::Invalid(format!(
                    "{}: the log has commits but neither version 0 nor {LAST_CHECKPOINT}; weir cannot tell the table's state. Write a checkpoint of the table (deltalake's create_checkpoint()) or use another path",
                    dir.join(LOG_DIR).display()
                )));
            }
        }
        state.refresh(dir)?;
        Ok(state)
    }

    /// Reads the commits after the version held (another writer's, or ours from a previous
    /// run). Returns how many were read.
    pub fn refresh(&mut self, dir: &Path) -> Result<u64, SinkError> {
        let mut read = 0;
        loop {
            let next = self.version.map_or(0, |v| v + 1);
            let path = commit_path(dir, next);
            check_size(&path, self.max_file_bytes)?;
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(read),
                Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
            };
            for action in parse_commit(&text, &path)? {
                self.apply(action);
            }
            self.version = Some(next);
            read += 1;
        }
    }

    /// Applies one action (Delta's action reconciliation).
    pub fn apply(&mut self, action: Action) {
        match action {
            Action::Protocol(p) => self.protocol = Some(p),
            Action::MetaData(m) => self.metadata = Some(m),
            Action::Txn(t) => {
                self.txns.insert(t.app_id.clone(), t);
            }
            Action::Add(a) => {
                self.tombstones.remove(&a.path);
                self.files.insert(a.path.clone(), a);
            }
            Action::Remove(r) => {
                self.files.remove(&r.path);
                self.tombstones.insert(r.path.clone(), r);
            }
            Action::CommitInfo(_) | Action::Other(..) => {}
        }
    }

    /// The last batch `app_id` committed here, if any.
    pub fn txn_version(&self, app_id: &str) -> Option<i64> {
        self.txns.get(app_id).map(|t| t.version)
    }

    /// The reconciled actions, as a checkpoint holds them: protocol, metaData, txns, live
    /// files, and tombstones deleted after `tombstones_after_ms`.
    pub fn checkpoint_actions(&self, tombstones_after_ms: i64) -> Vec<Action> {
        let mut out = Vec::new();
        out.extend(self.protocol.clone().map(Action::Protocol));
        out.extend(self.metadata.clone().map(Action::MetaData));
        let mut txns: Vec<&Txn> = self.txns.values().collect();
        txns.sort_by(|a, b| a.app_id.cmp(&b.app_id));
        out.extend(txns.into_iter().cloned().map(Action::Txn));
        out.extend(self.files.values().cloned().map(Action::Add));
        let mut tombs: Vec<&Remove> =
            self.tombstones.values().filter(|r| r.deletion_timestamp.unwrap_or(0) > tombstones_after_ms).collect();
        tombs.sort_by(|a, b| a.path.cmp(&b.path));
        out.extend(tombs.into_iter().cloned().map(Action::Remove));
        out
    }
}

/// The actions of one commit file.
pub fn parse_commit(text: &str, path: &Path) -> Result<Vec<Action>, SinkError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{} line {}", path.display(), i + 1);
        let value: Value = serde_json::from_str(line).map_err(|e| damaged(at(), &e.to_string()))?;
        out.push(Action::from_value(value, &at)?);
    }
    Ok(out)
}

/// Creates commit `version` with `actions`, never replacing one: `Ok(false)` when the version
/// exists already (another writer committed it first).
pub fn try_commit(dir: &Path, version: u64, actions: &[Action]) -> Result<bool, SinkError> {
    let log = dir.join(LOG_DIR);
    std::fs::create_dir_all(&log).map_err(io(format!("creating {}", log.display())))?;
    let mut text = String::new();
    for a in actions {
        text.push_str(&a.to_line());
        text.push('\n');
    }
    let path = commit_path(dir, version);
    match super::super::file_log::create_new(&path, text.as_bytes()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io(format!("creating the Delta commit {}", path.display()))(e)),
    }
}

/// Milliseconds since the epoch, as the log's times are.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A random UUID (version 4) for a table's `metaData.id`.
pub fn random_uuid() -> String {
    let h = crate::checkpoint::random_hex();
    let mut b: Vec<char> = h[..32].chars().collect();
    b[12] = '4';
    b[16] = ['8', '9', 'a', 'b'][b[16].to_digit(16).unwrap_or(0) as usize % 4];
    let s: String = b.into_iter().collect();
    format!("{}-{}-{}-{}-{}", &s[..8], &s[8..12], &s[12..16], &s[16..20], &s[20..32])
}

/// Encodes a relative file path as the URI the log holds: every byte outside
/// `[A-Za-z0-9-._~/=]` as `%XX` (so a Hive directory's own `%3A` becomes `%253A`).
pub fn encode_path(rel: &str) -> String {
    let mut out = String::with_capacity(rel.len());
    for &b in rel.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/=".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The file path of a log path (URI-decoded), relative to the table unless it is absolute.
pub fn decode_path(uri: &str) -> String {
    let uri = uri.strip_prefix("file://").unwrap_or(uri);
    let bytes = uri.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Delta's name of an Arrow type (its JSON schema format), or why the column cannot be stored.
pub fn delta_type(t: &DataType) -> Result<Value, String> {
    Ok(match t {
        DataType::Boolean => json!("boolean"),
        DataType::Int8 => json!("byte"),
        DataType::Int16 => json!("short"),
        DataType::Int32 => json!("integer"),
        DataType::Int64 => json!("long"),
        DataType::Float32 => json!("float"),
        DataType::Float64 => json!("double"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => json!("string"),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => json!("binary"),
        DataType::Date32 => json!("date"),
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => json!("timestamp"),
        DataType::List(f) | DataType::LargeList(f) => json!({
            "type": "array",
            "elementType": delta_type(f.data_type())?,
            "containsNull": f.is_nullable(),
        }),
        other => return Err(format!("type {other} has no Delta counterpart weir writes")),
    })
}

/// The Arrow type of a Delta type, for the table's columns (reading and comparing).
pub fn arrow_type(t: &Value) -> Option<DataType> {
    Some(match t {
        Value::String(s) => match s.as_str() {
            "boolean" => DataType::Boolean,
            "byte" => DataType::Int8,
            "short" => DataType::Int16,
            "integer" => DataType::Int32,
            "long" => DataType::Int64,
            "float" => DataType::Float32,
            "double" => DataType::Float64,
            "string" => DataType::Utf8,
            "binary" => DataType::Binary,
            "date" => DataType::Date32,
            "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            _ => return None,
        },
        Value::Object(o) if o.get("type") == Some(&json!("array")) => {
            let element = arrow_type(o.get("elementType")?)?;
            let nullable = o.get("containsNull").and_then(Value::as_bool).unwrap_or(true);
            DataType::List(std::sync::Arc::new(Field::new("element", element, nullable)))
        }
        _ => return None,
    })
}

/// A column of the table's schema as the log writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub delta_type: Value,
    pub nullable: bool,
    pub metadata: Value,
}

/// The columns of a `schemaString`.
pub fn parse_schema(schema_string: &str) -> Result<Vec<Column>, String> {
    let v: Value = serde_json::from_str(schema_string).map_err(|e| format!("schemaString is not JSON: {e}"))?;
    let fields = v["fields"].as_array().ok_or("schemaString has no `fields`")?;
    fields
        .iter()
        .map(|f| {
            Ok(Column {
                name: f["name"].as_str().ok_or("a field of schemaString has no name")?.to_string(),
                delta_type: f["type"].clone(),
                nullable: f["nullable"].as_bool().unwrap_or(true),
                metadata: if f["metadata"].is_object() { f["metadata"].clone() } else { json!({}) },
            })
        })
        .collect()
}

/// The `schemaString` of columns (Spark's StructType JSON, as Delta stores it).
pub fn schema_string(columns: &[Column]) -> String {
    let fields: Vec<Value> = columns
        .iter()
        .map(|c| json!({"name": c.name, "type": c.delta_type, "nullable": c.nullable, "metadata": c.metadata}))
        .collect();
    json!({"type": "struct", "fields": fields}).to_string()
}

/// The columns of an Arrow schema, all nullable (as Delta makes the columns of a streaming
/// write), or the first column that has no Delta type.
pub fn columns_of(schema: &Schema) -> Result<Vec<Column>, String> {
    schema
        .fields()
        .iter()
        .map(|f| {
            Ok(Column {
                name: f.name().clone(),
                delta_type: delta_type(f.data_type()).map_err(|e| format!("column `{}`: {e}", f.name()))?,
                nullable: true,
                metadata: json!({}),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A commit larger than `max_log_file_bytes` is refused, naming it and the setting, before
    /// it is read; at the limit it is read.
    #[test]
    fn a_log_file_over_max_log_file_bytes_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let line = format!("{{\"commitInfo\":{{\"pad\":\"{}\"}}}}\n", "x".repeat(1000));
        std::fs::create_dir_all(dir.path().join(LOG_DIR)).unwrap();
        std::fs::write(commit_path(dir.path(), 0), &line).unwrap();
        let size = line.len() as u64;
        let e = TableState::load_with(dir.path(), size - 1).unwrap_err().to_string();
        assert!(
            e.contains("00000000000000000000.json")
                && e.contains(&format!("has {size} bytes"))
                && e.contains("sink.max_log_file_bytes"),
            "{e}"
        );
        assert_eq!(TableState::load_with(dir.path(), size).unwrap().version, Some(0));
        // A table loaded with the cap keeps it for the commits it reads later.
        let mut t = TableState::load_with(dir.path(), size).unwrap();
        std::fs::write(commit_path(dir.path(), 1), format!("{line}{line}")).unwrap();
        assert!(t.refresh(dir.path()).unwrap_err().to_string().contains("00000000000000000001.json"));
    }

    #[test]
    fn actions_round_trip_as_one_json_object_per_line() {
        let add = Add {
            path: "k=a%253Ab/part-00000-0000-x.snappy.parquet".into(),
            partition_values: BTreeMap::from([("k".to_string(), Some("a:b".to_string()))]),
            size: 10,
            modification_time: 1,
            data_change: true,
            stats: Some("{\"numRecords\":1}".into()),
            tags: None,
            deletion_vector: None,
        };
        let line = Action::Add(add.clone()).to_line();
        assert_eq!(
            line,
            r#"{"add":{"dataChange":true,"modificationTime":1,"partitionValues":{"k":"a:b"},"path":"k=a%253Ab/part-00000-0000-x.snappy.parquet","size":10,"stats":"{\"numRecords\":1}"}}"#
        );
        let txn = Action::Txn(Txn { app_id: "q".into(), version: 3, last_updated: Some(5) });
        assert_eq!(txn.to_line(), r#"{"txn":{"appId":"q","lastUpdated":5,"version":3}}"#);
        let text = format!("{line}\n{}\n{{\"cdc\":{{\"path\":\"x\"}}}}\n", txn.to_line());
        let parsed = parse_commit(&text, Path::new("0.json")).unwrap();
        assert_eq!(parsed[0], Action::Add(add));
        assert_eq!(parsed[1], txn);
        assert!(matches!(&parsed[2], Action::Other(k, _) if k == "cdc"));
        let e = parse_commit("{\"add\":{\"path\":1}}\n", Path::new("_delta_log/3.json")).unwrap_err().to_string();
        assert!(e.starts_with("_delta_log/3.json line 1: not a valid Delta log entry (`add`: "), "{e}");
    }

    #[test]
    fn the_state_keeps_the_latest_txn_per_app_and_the_files_not_removed() {
        let mut s = TableState::default();
        let add = |p: &str| {
            Action::Add(Add {
                path: p.into(),
                partition_values: BTreeMap::new(),
                size: 1,
                modification_time: 0,
                data_change: true,
                stats: None,
                tags: None,
                deletion_vector: None,
            })
        };
        s.apply(add("a"));
        s.apply(add("b"));
        s.apply(Action::Txn(Txn { app_id: "q".into(), version: 0, last_updated: None }));
        s.apply(Action::Remove(Remove {
            path: "a".into(),
            deletion_timestamp: Some(10),
            data_change: true,
            extended_file_metadata: None,
            partition_values: None,
            size: None,
        }));
        s.apply(Action::Txn(Txn { app_id: "q".into(), version: 1, last_updated: None }));
        assert_eq!(s.files.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(s.txn_version("q"), Some(1));
        assert_eq!(s.txn_version("other"), None);
        let cp = s.checkpoint_actions(5);
        assert_eq!(cp.len(), 3, "txn, add b, tombstone a: {cp:?}");
        assert_eq!(s.checkpoint_actions(10).len(), 2, "an expired tombstone is left out");
    }

    #[test]
    fn a_commit_is_created_once_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let a = [Action::CommitInfo(json!({"n": 1}))];
        assert!(try_commit(dir.path(), 0, &a).unwrap());
        assert!(!try_commit(dir.path(), 0, &[Action::CommitInfo(json!({"n": 2}))]).unwrap());
        assert_eq!(std::fs::read_to_string(commit_path(dir.path(), 0)).unwrap(), "{\"commitInfo\":{\"n\":1}}\n");
        assert!(commit_path(dir.path(), 0).ends_with("_delta_log/00000000000000000000.json"));
        let mut s = TableState::load(dir.path()).unwrap();
        assert_eq!(s.version, Some(0));
        assert_eq!(s.refresh(dir.path()).unwrap(), 0);
    }

    #[test]
    fn schema_strings_are_sparks_struct_json() {
        let schema =
            crate::schema::parse_ddl("id bigint, name string, ok boolean, t timestamp, x double, n int").unwrap();
        let cols = columns_of(&schema).unwrap();
        assert_eq!(
            schema_string(&cols),
            r#"{"fields":[{"metadata":{},"name":"id","nullable":true,"type":"long"},{"metadata":{},"name":"name","nullable":true,"type":"string"},{"metadata":{},"name":"ok","nullable":true,"type":"boolean"},{"metadata":{},"name":"t","nullable":true,"type":"timestamp"},{"metadata":{},"name":"x","nullable":true,"type":"double"},{"metadata":{},"name":"n","nullable":true,"type":"integer"}],"type":"struct"}"#
        );
        assert_eq!(parse_schema(&schema_string(&cols)).unwrap(), cols);
        for c in &cols {
            let back = arrow_type(&c.delta_type).unwrap();
            assert_eq!(&back, schema.field_with_name(&c.name).unwrap().data_type());
        }
    }

    #[test]
    fn paths_are_uri_encoded_and_decoded() {
        assert_eq!(encode_path("k=a%3Ab/part 1.parquet"), "k=a%253Ab/part%201.parquet");
        assert_eq!(decode_path("k=a%253Ab/part%201.parquet"), "k=a%3Ab/part 1.parquet");
        assert_eq!(decode_path("file:///tmp/x%20y"), "/tmp/x y");
        let u = random_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
