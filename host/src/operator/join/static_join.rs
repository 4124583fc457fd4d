//! The stream-static join as the engine runs it: the table's version is decided when a batch is
//! planned (scanned, its files copied into the checkpoint, the version recorded in the batch's
//! offsets entry), loaded into a broadcast hash index when the batch begins (only when the
//! version changed), and every piece of the stream is joined against it.

use std::path::PathBuf;

use anyhow::Context;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::static_table::{RefreshPolicy, TableError, TableScanner, TableSnapshots, TableVersion};
use super::stream_static::StreamStaticJoin;
use crate::config::TableConfig;
use crate::engine::operator::{BatchContext, Operator};

/// A stream joined to a static table, refreshed as the table's `refresh` says.
pub struct StaticJoinOperator {
    index: usize,
    join: StreamStaticJoin,
    table: TableConfig,
    scanner: TableScanner,
    snapshots: TableSnapshots,
    refresh: RefreshPolicy,
    /// The version the last plan recorded (what the next batch joins, unless a rescan changes it).
    latest: Option<TableVersion>,
    /// The version in the hash index.
    loaded: Option<TableVersion>,
    /// Times the table was (re)loaded in this run, and in the last batch.
    loads: u64,
    loaded_in_batch: bool,
}

impl StaticJoinOperator {
    /// `snapshots`: the table's own directory in the checkpoint (`tables/<name>`).
    pub fn new(index: usize, join: StreamStaticJoin, table: TableConfig, snapshots: PathBuf) -> StaticJoinOperator {
        StaticJoinOperator {
            index,
            join,
            refresh: RefreshPolicy::new(table.refresh),
            table,
            scanner: TableScanner::new(),
            snapshots: TableSnapshots::new(snapshots),
            latest: None,
            loaded: None,
            loads: 0,
            loaded_in_batch: false,
        }
    }

    fn what(&self) -> String {
        format!(
            "operator[{}] (join with static table {:?} in {})",
            self.index,
            self.table.name,
            self.table.path.display()
        )
    }

    /// Scans the table and keeps a copy of the files of the version found; a file replaced while
    /// it is copied is scanned again (a few times).
    fn scan_and_snapshot(&mut self) -> Result<TableVersion, TableError> {
        let mut tries = 0;
        loop {
            let version = self.scanner.scan(&self.table.path)?;
            match self.snapshots.snapshot(&self.table.path, &version) {
                Ok(()) => return Ok(version),
                Err(TableError::Changed { .. }) if tries < 3 => tries += 1,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Operator for StaticJoinOperator {
    fn index(&self) -> usize {
        self.index
    }

    fn output_schema(&self) -> SchemaRef {
        self.join.output_schema().clone()
    }

    fn plan_batch(&mut self, now_micros: i64) -> anyhow::Result<Option<serde_json::Value>> {
        if self.latest.is_none() || self.refresh.due(now_micros) {
            let version = self.scan_and_snapshot().with_context(|| format!("{}: reading the table", self.what()))?;
            self.refresh.scanned(now_micros);
            self.latest = Some(version);
        }
        let version = self.latest.as_ref().expect("set just above");
        Ok(Some(serde_json::to_value(version).expect("plain struct")))
    }

    fn retain(&mut self, planned: &[serde_json::Value]) -> anyhow::Result<()> {
        let mut keep: Vec<TableVersion> =
            planned.iter().filter_map(|v| serde_json::from_value(v.clone()).ok()).collect();
        keep.extend(self.latest.clone());
        keep.extend(self.loaded.clone());
        self.snapshots
            .purge(&keep)
            .with_context(|| format!("{}: deleting table versions no batch needs", self.what()))?;
        Ok(())
    }

    /// Loads the version the batch's offsets entry names, if it is not the one loaded.
    fn begin(&mut self, ctx: &mut BatchContext) -> anyhow::Result<()> {
        let id = ctx.batch_id;
        let version: TableVersion = match ctx.planned.get(&self.index) {
            Some(v) => serde_json::from_value(v.clone()).with_context(|| {
                format!("batch {id}: {}: the table version in the batch's offsets entry cannot be read", self.what())
            })?,
            // Planned before this operator recorded versions: the table as it is now.
            None => match self.latest.clone() {
                Some(v) => v,
                None => {
                    let v = self.scan_and_snapshot().with_context(|| format!("batch {id}: {}", self.what()))?;
                    self.latest = Some(v.clone());
                    v
                }
            },
        };
        self.loaded_in_batch = false;
        if self.loaded.as_ref() == Some(&version) {
            return Ok(());
        }
        let t = &self.table;
        let (_, batches) = self
            .snapshots
            .load(&version, t.format, t.schema.as_ref(), t.csv, ctx.bad)
            .with_context(|| format!("batch {id}: {}: loading the table", self.what()))?;
        let index = self
            .join
            .build_index(&batches)
            .with_context(|| format!("batch {id}: {}: indexing the table", self.what()))?;
        self.join.set_table(index).map_err(|e| anyhow::anyhow!("batch {id}: {}: {e}", self.what()))?;
        self.loaded = Some(version);
        self.loads += 1;
        self.loaded_in_batch = true;
        Ok(())
    }

    fn process(&mut self, ctx: &mut BatchContext, input: &RecordBatch) -> anyhow::Result<Vec<RecordBatch>> {
        let out = self.join.join(input).with_context(|| format!("batch {}: {}", ctx.batch_id, self.what()))?;
        Ok(vec![out])
    }

    /// The table held for the join: rows and memory of its hash index (not state: nothing of it
    /// is checkpointed but the files of each version).
    fn progress(&self) -> Option<serde_json::Value> {
        let table = self.join.table()?;
        Some(serde_json::json!({
            "operatorName": "streamStaticJoin",
            "numRowsTotal": table.rows(),
            "numRowsUpdated": if self.loaded_in_batch { table.rows() } else { 0 },
            "numRowsRemoved": 0,
            "memoryUsedBytes": table.memory_bytes(),
            "numRowsDroppedByWatermark": 0,
            "customMetrics": {
                "table": self.table.name,
                "tableFiles": self.loaded.as_ref().map_or(0, |v| v.files.len()),
                "tableDistinctKeys": table.distinct_keys(),
                "tableLoads": self.loads,
            },
        }))
    }
}
