//! One progress record per micro-batch, with the field names of Spark's
//! `StreamingQueryProgress`, written as a JSON line; and the live one-line summary on stderr.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryProgress {
    pub id: String,
    pub run_id: String,
    pub name: String,
    /// When the batch started, ISO-8601 UTC.
    pub timestamp: String,
    pub batch_id: u64,
    pub batch_duration: u64,
    pub num_input_rows: u64,
    pub input_rows_per_second: f64,
    pub processed_rows_per_second: f64,
    pub duration_ms: DurationMs,
    /// Watermark and the batch's min/max/avg event time, when the job has a watermark.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_time: Option<serde_json::Value>,
    /// Not a Spark field: records of this batch sent to the dead-letter output.
    pub num_dead_letter_rows: u64,
    pub state_operators: Vec<serde_json::Value>,
    /// Plugin swaps and rollbacks that took effect at this batch (weir's own field).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plugin_events: Vec<serde_json::Value>,
    /// Per plugin operator: calls, time in the plugin, bytes in and out, peak instance memory
    /// during the batch (weir's own field).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<serde_json::Value>,
    pub sources: Vec<SourceProgress>,
    pub sink: SinkProgress,
}

/// Where the batch's time went, in Spark's phase names.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DurationMs {
    /// Asking the sources what is new (planning the batch's ranges).
    pub latest_offset: u64,
    /// Operators deciding what else the batch reads (a static table's version).
    pub query_planning: u64,
    /// Writing the batch's offsets entry (the write-ahead log).
    pub wal_commit: u64,
    pub get_batch: u64,
    pub add_batch: u64,
    pub commit_offsets: u64,
    pub trigger_execution: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceProgress {
    pub description: String,
    pub start_offset: serde_json::Value,
    pub end_offset: serde_json::Value,
    /// Spark's `latestOffset`: the newest offsets the source knew of when the batch was planned
    /// (Kafka; absent for the other sources).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_offset: Option<serde_json::Value>,
    pub num_input_rows: u64,
    pub input_rows_per_second: f64,
    pub processed_rows_per_second: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SinkProgress {
    pub description: String,
    pub num_output_rows: u64,
}

/// Writes progress records to a JSON-lines file and a live line to stderr.
pub struct ProgressReporter {
    /// Opened at the first report, so a job refused at start leaves nothing behind.
    path: Option<PathBuf>,
    file: Option<File>,
    live: Live,
    total_rows: u64,
}

enum Live {
    /// Rewrites one line in place (a terminal).
    Terminal,
    /// One line per batch (a log or a pipe).
    Lines,
    Off,
}

impl ProgressReporter {
    /// `file`: where to append records (none: no file). `quiet`: no live line.
    pub fn new(file: Option<&Path>, quiet: bool) -> Self {
        let live = if quiet {
            Live::Off
        } else if std::io::stderr().is_terminal() {
            Live::Terminal
        } else {
            Live::Lines
        };
        Self { path: file.map(Path::to_path_buf), file: None, live, total_rows: 0 }
    }

    pub fn report(&mut self, p: &QueryProgress) -> std::io::Result<()> {
        if let (None, Some(p)) = (&self.file, &self.path) {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            self.file = Some(OpenOptions::new().create(true).append(true).open(p)?);
        }
        if let Some(f) = &mut self.file {
            let mut line = serde_json::to_vec(p).expect("plain struct");
            line.push(b'\n');
            f.write_all(&line)?;
        }
        self.total_rows += p.num_input_rows;
        let text = format!(
            "batch {} | {} rows in, {} out | {:.0} rows/s | {} ms | {} rows total{}",
            p.batch_id,
            p.num_input_rows,
            p.sink.num_output_rows,
            p.processed_rows_per_second,
            p.batch_duration,
            self.total_rows,
            if p.num_dead_letter_rows > 0 {
                format!(" | {} to dead letter", p.num_dead_letter_rows)
            } else {
                String::new()
            }
        );
        match self.live {
            Live::Terminal => eprint!("\r\x1b[K{text}"),
            Live::Lines => eprintln!("{text}"),
            Live::Off => {}
        }
        Ok(())
    }

    /// Ends the live line so later output starts on a fresh line.
    pub fn finish(&mut self) {
        if let Live::Terminal = self.live {
            eprintln!();
        }
    }
}
