//! The `weir` command line. Errors here are `anyhow` with context; the engine below returns
//! typed errors.

/// `weir status`, `weir progress`, `weir list`.
mod status;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::checkpoint::Checkpoint;
use crate::config::Job;
use crate::engine::Engine;
use crate::plugin::Runtime;
use crate::progress::ProgressReporter;

/// `weir check`: the job as a user reads it.

#[derive(Parser, Debug)]
#[command(name = "weir", version, about = "Run Spark Structured Streaming-style jobs with WebAssembly plugins")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a job file in the foreground until its trigger ends it, or Ctrl-C or SIGTERM (which
    /// stop after the batch in progress; a second signal stops at once).
    Run {
        /// The job file (TOML).
        job: PathBuf,
        /// Append one progress record per batch (Spark's StreamingQueryProgress, JSON lines) to
        /// this file [default: CHECKPOINT/progress.jsonl].
        #[arg(long)]
        progress_file: Option<PathBuf>,
        /// No live progress line on stderr.
        #[arg(long)]
        quiet: bool,
        /// Serve the admin API (plugin swaps) on this address, e.g. 127.0.0.1:7070 (instead of
        /// the job file's [admin].listen).
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
    },
    /// Check a job file and print what it would run, without running it.
    Check { job: PathBuf },
    /// A job at a glance: the query, its status, rates, the latest batch, watermark, state per
    /// operator, plugin versions, dead letters. Works on a running job (through its API) and on
    /// a stopped one (from its checkpoint).
    Status {
        /// The job file, its checkpoint directory, or a running job's API address (host:port).
        job: String,
        /// The bearer token [default: $WEIR_ADMIN_TOKEN, the job file's [admin].token, or the
        /// token the job generated in CHECKPOINT/admin-token].
        #[arg(long)]
        token: Option<String>,
        /// Print the query and its last progress record as JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// Stop a running job after the batch in progress (as Ctrl-C in its terminal).
    Stop {
        /// The job file, its checkpoint directory, or the job's API address (host:port).
        job: String,
        #[arg(long)]
        token: Option<String>,
    },
    /// Print a job's progress records (JSON lines, Spark's StreamingQueryProgress).
    Progress {
        /// The job file or its checkpoint directory.
        job: PathBuf,
        /// Keep printing new records as batches run (until Ctrl-C).
        #[arg(long)]
        follow: bool,
        /// Only the last N records [default: all].
        #[arg(long)]
        last: Option<usize>,
    },
    /// The jobs running on this machine: name, pid, query id, API address, checkpoint.
    List,
    /// Plugin tools.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Checkpoint tools.
    #[command(subcommand)]
    Checkpoint(CheckpointCommand),
    /// Output tools.
    #[command(subcommand)]
    Output(OutputCommand),
}

#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// Upload a new version of an operator's plugin to a running job (hot swap): it is checked
    /// and swapped in between two micro-batches, on probation for [admin].probation_batches.
    Swap {
        /// The running job: its job file or checkpoint directory (weir reads the API's address
        /// and token there), or the API's address (host:port).
        #[arg(long)]
        job: String,
        /// The operator: its index, or its plugin file's name in the job file.
        #[arg(long)]
        operator: String,
        /// The new component.
        wasm: PathBuf,
        /// The bearer token [default: $WEIR_ADMIN_TOKEN, else the job file's [admin].token, else
        /// the token the job generated in CHECKPOINT/admin-token].
        #[arg(long)]
        token: Option<String>,
    },
    /// Put back the version an operator's current plugin replaced (during its probation).
    Rollback {
        #[arg(long)]
        job: String,
        #[arg(long)]
        operator: String,
        #[arg(long)]
        token: Option<String>,
    },
    /// List the plugin versions of a running job, with their digests and the batches each ran.
    History {
        #[arg(long)]
        job: String,
        #[arg(long)]
        token: Option<String>,
    },
    /// Build a plugin directory (a Rust crate, a Python plugin with app.py, a JS one with app.js) into a component.
    Build {
        dir: PathBuf,
        /// Where to write the component [default: target/plugins/<dir name>.wasm].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a new plugin directory NAME: its source, its own test and a job file that runs it
    /// over sample input (`cd NAME && weir plugin build . --out NAME.wasm && weir run job.toml`).
    New {
        /// The plugin's name (lowercase letters, digits, `-`, `_`): its directory and file names.
        name: String,
        /// rust, python, js or c.
        #[arg(long, default_value = "rust")]
        lang: String,
        /// mapper (map/filter/flatMap), stateful (per-key state) or batch-sink (foreachBatch).
        #[arg(long, default_value = "mapper")]
        world: String,
        /// The directory to create NAME in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum CheckpointCommand {
    /// Show a checkpoint: query id, batches planned and committed, a batch pending replay, the
    /// plugin versions of the last commit.
    Inspect { dir: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum OutputCommand {
    /// List the committed files of a file sink's output directory, in batch order (what a reader
    /// must read; files of uncommitted batches are left out).
    Files { dir: PathBuf },
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { job, progress_file, quiet, admin } => run_job(&job, progress_file, quiet, admin),
        Command::Plugin(PluginCommand::Swap { job, operator, wasm, token }) => {
            let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
            let body = admin_call(&job, "POST", &format!("/operators/{operator}/plugin"), &bytes, token)?;
            println!("{body}");
            Ok(())
        }
        Command::Plugin(PluginCommand::Rollback { job, operator, token }) => {
            println!("{}", admin_call(&job, "POST", &format!("/operators/{operator}/rollback"), &[], token)?);
            Ok(())
        }
        Command::Plugin(PluginCommand::History { job, token }) => {
            println!("{}", admin_call(&job, "GET", "/plugins", &[], token)?);
            Ok(())
        }
        Command::Status { job, token, json } => crate::cli::status::status(&job, token, json),
        Command::Stop { job, token } => {
            let answer = admin_call(&job, "POST", "/stop", &[], token)?;
            let message = serde_json::from_str::<serde_json::Value>(&answer)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or(answer);
            println!("{message}");
            Ok(())
        }
        Command::Progress { job, follow, last } => crate::cli::status::progress(&job, follow, last),
        Command::List => crate::cli::status::list(),
        Command::Check { job } => {
            let job = Job::load(&job)?;
            crate::plan::checks::check_job(&job)?;
            print!("{}", crate::plan::describe::describe(&job)?);
            Ok(())
        }
        Command::Plugin(PluginCommand::Build { dir, out }) => {
            let out = match out {
                Some(o) => o,
                None => {
                    let name = dir
                        .canonicalize()
                        .ok()
                        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                        .context("cannot tell the plugin's name from DIR; pass --out")?;
                    PathBuf::from("target/plugins").join(format!("{name}.wasm"))
                }
            };
            crate::plugin::build::build_plugin(&dir, &out)?;
            println!("{}", out.display());
            Ok(())
        }
        Command::Plugin(PluginCommand::New { name, lang, world, dir }) => {
            let repo = crate::plugin::build::repo_for(&dir)?;
            let created = crate::plugin::new::create(&dir, &name, &lang, &world, &repo.root)?;
            let d = created.dir.display();
            println!("wrote the {lang} {world} plugin {d}; from there:");
            println!("  weir plugin build . --out {name}.wasm   # build the component");
            if let Some(test) = created.test_command {
                println!("  {test}   # its own test");
            }
            println!("  weir run job.toml   # run it over input/ (output under out/)");
            Ok(())
        }
        Command::Checkpoint(CheckpointCommand::Inspect { dir }) => inspect_checkpoint(&dir),
        Command::Output(OutputCommand::Files { dir }) => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for f in crate::sink::files::committed_files(&dir)? {
                match writeln!(out, "{}", f.display()) {
                    // The reader went away (`| head`): not an error.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                    other => other.context("writing to stdout")?,
                }
            }
            Ok(())
        }
    }
}

/// Where a running job's admin API is and the token to send: `--job` is the job file or its
/// checkpoint directory (the address and a generated token are read there), or host:port.
fn admin_target(job: &str, token: Option<String>) -> anyhow::Result<(String, Option<String>)> {
    let given = Path::new(job);
    let token = token.or_else(|| std::env::var("WEIR_ADMIN_TOKEN").ok());
    let (checkpoint, token) = if given.is_file() {
        let j = Job::load(given)?;
        let from_file = j.admin.as_ref().and_then(|a| a.token.clone());
        (j.checkpoint, token.or(from_file))
    } else if given.is_dir() {
        (given.to_path_buf(), token)
    } else {
        return Ok((job.to_string(), token));
    };
    let addr = std::fs::read_to_string(crate::checkpoint::layout::admin_address(&checkpoint)).with_context(|| {
        format!(
            "reading {}: is the job running? (a running job writes its API address there)",
            crate::checkpoint::layout::admin_address(&checkpoint).display()
        )
    })?;
    let token = token.or_else(|| crate::admin::token::read(&checkpoint));
    // Listening on every interface (0.0.0.0): ask on loopback, under the name the API accepts.
    let addr = match addr.trim().parse::<std::net::SocketAddr>() {
        Ok(a) if a.ip().is_unspecified() => {
            let ip: std::net::IpAddr =
                if a.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() };
            std::net::SocketAddr::new(ip, a.port()).to_string()
        }
        _ => addr.trim().to_string(),
    };
    Ok((addr, token))
}

/// One request to a job's admin API (plain HTTP/1.1 over TCP; a body is sent after the API
/// agreed to take it, `Expect: 100-continue`); the response body, or an error with the API's
/// message.
pub(crate) fn admin_call(
    job: &str,
    method: &str,
    path: &str,
    body: &[u8],
    token: Option<String>,
) -> anyhow::Result<String> {
    use std::io::{BufRead, Read, Write};
    let (addr, token) = admin_target(job, token)?;
    let s = std::net::TcpStream::connect(&addr)
        .with_context(|| format!("connecting to the job's admin API at {addr} (is the job running?)"))?;
    let mut out = s.try_clone()?;
    let mut reader = std::io::BufReader::new(s);
    let auth = token.as_deref().map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let expect = if body.is_empty() { "" } else { "Expect: 100-continue\r\n" };
    write!(
        out,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n{auth}{expect}Connection: close\r\n\r\n",
        body.len()
    )?;
    // The status line and headers of the next answer; its status.
    let head = |reader: &mut std::io::BufReader<std::net::TcpStream>| -> anyhow::Result<u16> {
        let mut status_line = String::new();
        reader.read_line(&mut status_line).context("reading the admin API's answer")?;
        let status = status_line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).context("reading the admin API's answer")? == 0 || line.trim().is_empty() {
                return Ok(status);
            }
        }
    };
    let mut status = if body.is_empty() { 0 } else { head(&mut reader)? };
    if !body.is_empty() && status == 100 {
        out.write_all(body).context("sending the upload")?;
        status = 0;
    }
    if status == 0 {
        status = head(&mut reader)?;
    }
    let mut text = String::new();
    reader.read_to_string(&mut text).context("reading the admin API's answer")?;
    if status != 200 {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| text.clone());
        let hint = if status == 401 {
            " (pass --token or set WEIR_ADMIN_TOKEN, or give --job the job file or its checkpoint directory so that weir reads the token there)"
        } else {
            ""
        };
        anyhow::bail!("{method} {path}: {status}: {message}{hint}");
    }
    Ok(text)
}

fn run_job(
    path: &Path,
    progress_file: Option<PathBuf>,
    quiet: bool,
    admin: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let mut job = Job::load(path)?;
    crate::plan::checks::check_job(&job)?;
    if let Some(listen) = admin {
        let token = job.admin.as_ref().and_then(|a| a.token.clone()).or_else(|| std::env::var("WEIR_ADMIN_TOKEN").ok());
        if !listen.ip().is_loopback() && token.is_none() {
            anyhow::bail!("--admin {listen}: the admin API needs a bearer token when it listens beyond loopback: set [admin].token or WEIR_ADMIN_TOKEN");
        }
        let probation_batches = job.admin.as_ref().map_or(10, |a| a.probation_batches);
        let max_upload = job.admin.as_ref().map_or(crate::admin::DEFAULT_MAX_UPLOAD, |a| a.max_upload);
        job.admin = Some(crate::config::AdminConfig { listen, token, probation_batches, max_upload });
    }
    let progress_file = progress_file.unwrap_or_else(|| crate::checkpoint::layout::progress(&job.checkpoint));
    let progress = ProgressReporter::new(Some(&progress_file), quiet);
    // One runtime for the process: the job's plugins, swapped-in versions and uploads share it.
    let runtime = Arc::new(Runtime::new().context("starting the WebAssembly runtime")?);
    let scaled_out = job
        .sources
        .iter()
        .any(|i| matches!(&i.source, crate::config::SourceConfig::Kafka(k) if k.consumer_group.is_some()));
    let mut engine = if scaled_out { None } else { Some(Engine::new(job.clone(), &runtime, progress)?) };
    let stop = engine.as_ref().map_or_else(|| Arc::new(AtomicBool::new(false)), Engine::stop_handle);
    let stop_in_handler = stop.clone();
    let presses = Arc::new(AtomicUsize::new(0));
    ctrlc::set_handler(move || {
        let stop = &stop_in_handler;
        if presses.fetch_add(1, Ordering::SeqCst) == 0 {
            eprintln!("\nstopping after the batch in progress (Ctrl-C or SIGTERM again to abort at once; the batch will be replayed on restart)");
            stop.store(true, Ordering::SeqCst);
        } else {
            std::process::exit(130);
        }
    })
    .context("installing the Ctrl-C and SIGTERM handler")?;
    let summary = match engine.as_mut() {
        Some(d) => d.run()?,
        #[cfg(feature = "kafka")]
        None => crate::scale_out::run(job.clone(), &runtime, quiet, stop)?,
        #[cfg(not(feature = "kafka"))]
        None => anyhow::bail!("scaling out by consumer group {}", crate::features::not_built("kafka")),
    };
    eprintln!(
        "stopped: {} batches, {} rows in, {} rows out; checkpoint {}",
        summary.batches,
        summary.input_rows,
        summary.output_rows,
        job.checkpoint.display()
    );
    Ok(())
}

fn inspect_checkpoint(dir: &Path) -> anyhow::Result<()> {
    if !dir.join("metadata").exists() {
        anyhow::bail!("{} is not a weir checkpoint (no metadata file)", dir.display());
    }
    let cp = Checkpoint::open(dir)?;
    let offsets = cp.offsets()?;
    let commits = cp.commits()?;
    println!("query id:        {}", cp.metadata().id);
    match crate::checkpoint::lock::current_holder(dir) {
        Some(h) => println!("in use by:       weir {h}"),
        None => println!("in use by:       nobody (no weir process holds it)"),
    }
    // Retention keeps the last `min_batches_to_retain` entries: count by batch id.
    println!("batches planned: {}", offsets.last().map_or(0, |o| o.batch_id + 1));
    println!("batches committed: {}", commits.last().map_or(0, |c| c.batch_id + 1));
    match (offsets.last(), commits.last()) {
        (Some(o), Some(c)) if o.batch_id == c.batch_id => {
            println!("pending:         none (last batch {} committed)", c.batch_id)
        }
        (Some(o), _) => println!(
            "pending:         batch {} (planned, not committed: replayed on restart)\n  offsets: {}",
            o.batch_id, o.source
        ),
        (None, _) => println!("pending:         none (no batch yet)"),
    }
    if let Some(c) = commits.last() {
        for p in &c.plugins {
            println!("operator[{}]:     {} {}", p.operator, p.path, p.digest);
        }
    }
    Ok(())
}
