#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (tests/ and host/ are under it).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

/// A plugin component built by scripts/build-plugins.sh.
pub fn plugin(name: &str) -> PathBuf {
    let p = repo().join("target/plugins").join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: run scripts/build-plugins.sh (scripts/test.sh does) before the tests",
        p.display()
    );
    p
}

/// A scratch directory for one test, with helpers to write inputs and job files.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("temp dir") }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file, creating its directory.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Writes a job file; `{dir}` in the text becomes this scratch directory, `{plugin:NAME}` the
    /// built component's path.
    pub fn job(&self, text: &str) -> PathBuf {
        let mut t = text.replace("{dir}", self.dir.path().to_str().unwrap());
        while let Some(start) = t.find("{plugin:") {
            let end = start + t[start..].find('}').unwrap();
            let name = &t[start + 8..end];
            t = format!("{}{}{}", &t[..start], plugin(name).display(), &t[end + 1..]);
        }
        self.write("job.toml", &t)
    }
}

/// The `weir` command, with the compiled-component cache shared by all tests.
pub fn weir() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weir"));
    c.env("WEIR_CACHE_DIR", repo().join("target/weir-cache"));
    c
}

/// Runs `weir run JOB --quiet` to completion.
pub fn run_job(job: &Path) -> Output {
    weir().args(["run", "--quiet"]).arg(job).output().expect("spawning weir")
}

/// Runs a job that must succeed; shows its stderr otherwise.
pub fn run_ok(job: &Path) -> Output {
    let out = run_job(job);
    assert!(out.status.success(), "weir run failed:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs a job that must fail, and returns its stderr.
pub fn run_err(job: &Path) -> String {
    let out = run_job(job);
    assert!(!out.status.success(), "weir run should have failed; stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The committed output of a file sink, as `weir output files` lists it (batch order).
pub fn committed_files(out_dir: &Path) -> Vec<PathBuf> {
    let o = weir().args(["output", "files"]).arg(out_dir).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().lines().map(PathBuf::from).collect()
}

/// The committed files of a text sink (json, csv), concatenated in batch order.
pub fn committed_text(out_dir: &Path) -> String {
    committed_files(out_dir)
        .iter()
        .map(|f| {
            let p = if f.is_absolute() { f.clone() } else { out_dir.join(f) };
            std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        })
        .collect()
}

/// Every progress record the job wrote.
pub fn progress(checkpoint: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(checkpoint.join("progress.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A windowed aggregate's output row: (window_start HH:MM, window_end HH:MM, k, n, total).
pub type WindowRow = (String, String, String, i64, f64);

pub fn row(start: &str, end: &str, k: &str, n: i64, total: f64) -> WindowRow {
    (start.into(), end.into(), k.into(), n, total)
}

/// Every committed row of a windowed job whose output is `window_start, window_end, k, n,
/// total` (a JSON sink at `OUT`, times on 2024-01-01 on whole minutes), in order.
pub fn rows(s: &Scratch) -> Vec<WindowRow> {
    let hhmm = |v: &serde_json::Value| {
        let t = v.as_str().unwrap();
        assert!(t.starts_with("2024-01-01T") && t.ends_with(":00.000Z"), "{t}");
        t[11..16].to_string()
    };
    committed_text(&s.path("out"))
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                hhmm(&v["window_start"]),
                hhmm(&v["window_end"]),
                v["k"].as_str().unwrap().to_string(),
                v["n"].as_i64().unwrap(),
                v["total"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// (numRowsDroppedByWatermark, numRowsTotal) of the first stateful operator, per progress record.
pub fn state_per_batch(p: &[serde_json::Value]) -> Vec<(u64, u64)> {
    p.iter()
        .map(|p| {
            let op = &p["stateOperators"][0];
            (op["numRowsDroppedByWatermark"].as_u64().unwrap(), op["numRowsTotal"].as_u64().unwrap())
        })
        .collect()
}

/// The first seed of a random-kill test: `WEIR_CRASH_SEED`, else the clock (each round adds
/// its number; tests print the seed so that a failing round can be rerun).
pub fn crash_seed() -> u64 {
    match std::env::var("WEIR_CRASH_SEED") {
        Ok(s) => s.parse().expect("WEIR_CRASH_SEED must be a number"),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
    }
}

/// Runs `weir run --quiet job` until it finishes, SIGKILLing it at a random moment of each of
/// its first 6 runs (the first within the first half of `full_run`, an unkilled run's duration,
/// so that it lands mid-run). Returns the kills that interrupted a running job; panics when
/// weir fails on its own, or when no kill landed (the test would check nothing).
pub fn run_under_random_kills(job: &Path, rng: &mut impl rand::Rng, full_run: std::time::Duration, seed: u64) -> u32 {
    let (mut attempts, mut kills) = (0, 0);
    loop {
        let mut child = weir().args(["run", "--quiet"]).arg(job).spawn().unwrap();
        if attempts < 6 {
            let window = full_run.as_millis() as u64 / if kills == 0 { 2 } else { 1 };
            std::thread::sleep(std::time::Duration::from_millis(rng.random_range(0..window.max(20))));
            let _ = child.kill();
            attempts += 1;
        }
        let status = child.wait().unwrap();
        if status.success() {
            break;
        }
        assert!(
            status.code().is_none(),
            "seed {seed}: weir failed on its own after a kill (not by the signal): {status:?}; rerun with WEIR_CRASH_SEED={seed}"
        );
        kills += 1;
    }
    assert!(kills > 0, "seed {seed}: no kill landed while the job ran; the test checked nothing");
    kills
}
