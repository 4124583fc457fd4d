//! `weir status`, `weir progress`, `weir list`: a job at a glance, running or stopped.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::checkpoint::{layout, Checkpoint};
use crate::config::Job;

/// The checkpoint directory `job` names (a job file or the directory itself); none for an
/// address.
fn checkpoint_of(job: &str) -> anyhow::Result<Option<PathBuf>> {
    let given = Path::new(job);
    if given.is_file() {
        return Ok(Some(Job::load(given)?.checkpoint));
    }
    Ok(given.is_dir().then(|| given.to_path_buf()))
}

/// The progress records of a checkpoint's progress file, oldest first.
fn recorded_progress(checkpoint: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let file = layout::progress(checkpoint);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}

pub fn status(job: &str, token: Option<String>, json: bool) -> anyhow::Result<()> {
    let checkpoint = checkpoint_of(job)?;
    // A running job answers through its API; a stopped one is read from its checkpoint.
    let live = match super::admin_call(job, "GET", "/query", &[], token) {
        Ok(text) => Some(serde_json::from_str::<serde_json::Value>(&text).context("reading the job's answer")?),
        Err(e) if checkpoint.is_some() && is_not_running(&e) => None,
        Err(e) => return Err(e),
    };
    let query = match (live, &checkpoint) {
        (Some(q), _) => q,
        (None, Some(cp)) => stopped_query(cp)?,
        (None, None) => unreachable!("an address that does not answer is an error above"),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&query)?);
    } else {
        print!("{}", screen(&query));
    }
    Ok(())
}

/// The job is not running: no address file, or nobody listening there.
fn is_not_running(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| matches!(io.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused))
    })
}

/// A stopped job as its checkpoint tells it: the query id, the last progress record.
fn stopped_query(checkpoint: &Path) -> anyhow::Result<serde_json::Value> {
    if !checkpoint.join("metadata").exists() {
        anyhow::bail!(
            "{} is not a weir checkpoint (no metadata file), and no job is running there",
            checkpoint.display()
        );
    }
    let cp = Checkpoint::open(checkpoint)?;
    let progress = recorded_progress(checkpoint)?;
    let last = progress.last().cloned();
    // How the last run ended (none before any run ended, or from an older weir).
    let ended: serde_json::Value = std::fs::read(layout::last_run(checkpoint))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    let exception = ended["exception"].clone();
    let pending = match (cp.last_offsets()?, cp.last_commit()?) {
        (Some(o), c) if c != Some(o.batch_id) => Some(o.batch_id),
        _ => None,
    };
    Ok(serde_json::json!({
        "id": cp.metadata().id,
        "runId": ended.get("runId").cloned().or_else(|| last.as_ref().map(|p| p["runId"].clone())),
        "name": last.as_ref().map(|p| p["name"].clone()),
        "isActive": false,
        "status": {
            "message": match (pending, exception.is_null()) {
                (Some(b), _) => format!("Stopped; batch {b} was planned but not committed: it runs again at the next start"),
                (None, true) => "Stopped".to_string(),
                (None, false) => "Terminated with exception".to_string(),
            },
            "isDataAvailable": false,
            "isTriggerActive": false,
        },
        "exception": exception,
        "ended": ended["ended"],
        "listeners": ended["listeners"],
        "lastProgress": last,
        "info": { "checkpoint": checkpoint.display().to_string() },
    }))
}

fn num(v: &serde_json::Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 => format!("{}", f as i64),
        Some(f) => format!("{f:.1}"),
        None => "-".into(),
    }
}

/// One screen: the query, then its last batch.
fn screen(q: &serde_json::Value) -> String {
    let mut o = String::new();
    let active = if q["isActive"].as_bool() == Some(true) { "active" } else { "stopped" };
    let _ = writeln!(o, "query {} ({active})", q["name"].as_str().unwrap_or("?"));
    let _ = writeln!(o, "  id {}  runId {}", q["id"].as_str().unwrap_or("-"), q["runId"].as_str().unwrap_or("-"));
    if let Some(t) = q["startTime"].as_str() {
        let _ = writeln!(o, "  started {t}");
    }
    let st = &q["status"];
    let _ = writeln!(
        o,
        "  status: {} (data available: {}, trigger active: {})",
        st["message"].as_str().unwrap_or("-"),
        st["isDataAvailable"],
        st["isTriggerActive"]
    );
    if let Some(e) = q["exception"].as_str() {
        let _ = writeln!(o, "  stopped by: {e}");
    }
    let info = &q["info"];
    if let Some(t) = info["trigger"].as_str() {
        let _ = writeln!(o, "  trigger {t}, sink {}", info["sink"].as_str().unwrap_or("-"));
    }
    for l in q["listeners"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "  {}: {} delivered, {} failed, {} dropped, {} queued{}",
            l["name"].as_str().unwrap_or("listener"),
            num(&l["delivered"]),
            num(&l["failed"]),
            num(&l["dropped"]),
            num(&l["queued"]),
            l["lastError"].as_str().map(|e| format!("; last error: {e}")).unwrap_or_default()
        );
    }
    let p = &q["lastProgress"];
    if p.is_null() {
        let _ = writeln!(o, "no batch has run yet");
        return o;
    }
    let _ = writeln!(
        o,
        "last batch {} at {}: {} rows in, {} out; {} rows/s in, {} rows/s processed; {} ms",
        num(&p["batchId"]),
        p["timestamp"].as_str().unwrap_or("-"),
        num(&p["numInputRows"]),
        num(&p["sink"]["numOutputRows"]),
        num(&p["inputRowsPerSecond"]),
        num(&p["processedRowsPerSecond"]),
        num(&p["batchDuration"])
    );
    if let Some(w) = p["eventTime"]["watermark"].as_str() {
        let _ = writeln!(o, "  watermark {w}");
    }
    if p["numDeadLetterRows"].as_u64().unwrap_or(0) > 0 {
        let _ = writeln!(o, "  dead letters in this batch: {}", num(&p["numDeadLetterRows"]));
    }
    for s in p["sources"].as_array().into_iter().flatten() {
        let _ = writeln!(o, "  source {}: {} rows", s["description"].as_str().unwrap_or("-"), num(&s["numInputRows"]));
    }
    for s in p["stateOperators"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "  state {}: {} rows ({} updated, {} removed), {} bytes, {} dropped by watermark",
            s["operatorName"].as_str().unwrap_or("-"),
            num(&s["numRowsTotal"]),
            num(&s["numRowsUpdated"]),
            num(&s["numRowsRemoved"]),
            num(&s["memoryUsedBytes"]),
            num(&s["numRowsDroppedByWatermark"])
        );
    }
    for m in p["plugins"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "  plugin operator[{}] {}: {} calls, {} ms, peak memory {} bytes",
            num(&m["operator"]),
            m["digest"].as_str().unwrap_or("-"),
            num(&m["calls"]),
            num(&m["timeMs"]),
            num(&m["peakMemoryBytes"])
        );
    }
    o
}

/// `weir progress`: the records so far, then (with `--follow`) new ones as they are written.
pub fn progress(job: &Path, follow: bool, last: Option<usize>) -> anyhow::Result<()> {
    use std::io::{BufRead, Seek, Write};
    let checkpoint = checkpoint_of(&job.display().to_string())?
        .with_context(|| format!("{}: neither a job file nor a checkpoint directory", job.display()))?;
    let file = layout::progress(&checkpoint);
    let mut out = std::io::stdout().lock();
    let mut offset = 0u64;
    let mut first = true;
    loop {
        if let Ok(mut f) = std::fs::File::open(&file) {
            let len = f.metadata()?.len();
            if len < offset {
                offset = 0; // replaced: read it again
            }
            f.seek(std::io::SeekFrom::Start(offset))?;
            let mut lines: Vec<String> = Vec::new();
            let mut reader = std::io::BufReader::new(f);
            loop {
                let mut line = String::new();
                let n = reader.read_line(&mut line)?;
                if n == 0 || !line.ends_with('\n') {
                    break; // a record being written is read whole next time
                }
                offset += n as u64;
                lines.push(line);
            }
            let skip = match (first, last) {
                (true, Some(n)) => lines.len().saturating_sub(n),
                _ => 0,
            };
            for line in &lines[skip..] {
                if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        return Ok(());
                    }
                    return Err(e.into());
                }
            }
        }
        first = false;
        if !follow {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// `weir list`: the jobs running on this machine.
pub fn list() -> anyhow::Result<()> {
    let jobs = crate::monitor::registry::list();
    if jobs.is_empty() {
        println!("no weir job is running on this machine (as this user)");
        return Ok(());
    }
    println!("{:<24} {:>7}  {:<36}  {:<21}  checkpoint", "name", "pid", "query id", "api");
    for j in jobs {
        println!("{:<24} {:>7}  {:<36}  {:<21}  {}", j.name, j.pid, j.id, j.address, j.checkpoint);
    }
    Ok(())
}
