//! The `weir` command line. Errors here are `anyhow` with context; the engine below returns
//! typed errors.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::checkpoint::Checkpoint;
use crate::driver::Driver;
use crate::job::Job;
use crate::plugin::Runtime;
use crate::progress::ProgressReporter;

#[derive(Parser, Debug)]
#[command(name = "weir", version, about = "Run Spark Structured Streaming-style jobs with WebAssembly plugins")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a job file in the foreground until its trigger ends it or Ctrl-C (which stops after
    /// the batch in progress).
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
    },
    /// Check a job file and print what it would run, without running it.
    Check { job: PathBuf },
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
    /// Build a plugin directory (a Rust crate, or a Python plugin with app.py) into a component.
    Build {
        dir: PathBuf,
        /// Where to write the component [default: target/plugins/<dir name>.wasm].
        #[arg(long)]
        out: Option<PathBuf>,
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
        Command::Run { job, progress_file, quiet } => run_job(&job, progress_file, quiet),
        Command::Check { job } => {
            let job = Job::load(&job)?;
            println!("{job:#?}");
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

fn run_job(path: &Path, progress_file: Option<PathBuf>, quiet: bool) -> anyhow::Result<()> {
    let job = Job::load(path)?;
    let progress_file = progress_file.unwrap_or_else(|| job.checkpoint.join("progress.jsonl"));
    let progress = ProgressReporter::new(Some(&progress_file), quiet);
    let runtime = Runtime::new().context("starting the WebAssembly runtime")?;
    let scaled_out = job
        .sources
        .iter()
        .any(|i| matches!(&i.source, crate::job::SourceConfig::Kafka(k) if k.consumer_group.is_some()));
    let mut driver = if scaled_out { None } else { Some(Driver::new(job.clone(), &runtime, progress)?) };
    let stop = driver.as_ref().map_or_else(|| Arc::new(AtomicBool::new(false)), Driver::stop_handle);
    let stop_in_handler = stop.clone();
    let presses = Arc::new(AtomicUsize::new(0));
    ctrlc::set_handler(move || {
        let stop = &stop_in_handler;
        if presses.fetch_add(1, Ordering::SeqCst) == 0 {
            eprintln!("\nstopping after the batch in progress (Ctrl-C again to abort at once; the batch will be replayed on restart)");
            stop.store(true, Ordering::SeqCst);
        } else {
            std::process::exit(130);
        }
    })
    .context("installing the Ctrl-C handler")?;
    let summary = match driver.as_mut() {
        Some(d) => d.run()?,
        None => crate::scale_out::run(job.clone(), &runtime, quiet, stop)?,
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
    println!("batches planned: {}", offsets.len());
    println!("batches committed: {}", commits.len());
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
