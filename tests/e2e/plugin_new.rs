//! `weir plugin new NAME --lang L --world W`: for every language and world, the plugin it
//! writes passes its own test (the command on its README's first line), builds with
//! `weir plugin build`, and its job runs from the plugin's directory. A template's logic is the
//! same in every language, so each world's output is compared, exactly, with one expected text.

use std::path::Path;
use std::process::Command;

use crate::common::*;

/// Batch 0: ann 120.0, bob 40.5, ann null; batch 1: bob 100.0, cid 7.25.
const MAPPER_OUT: &str = "\
{\"user\":\"ann\",\"amount\":120.0,\"ts\":\"2026-01-01T10:00:00.000Z\",\"size\":\"big\"}
{\"user\":\"bob\",\"amount\":40.5,\"ts\":\"2026-01-01T10:00:05.000Z\",\"size\":\"small\"}
{\"user\":\"ann\",\"ts\":\"2026-01-01T10:00:09.000Z\",\"size\":\"small\"}
{\"user\":\"bob\",\"amount\":100.0,\"ts\":\"2026-01-01T10:01:00.000Z\",\"size\":\"big\"}
{\"user\":\"cid\",\"amount\":7.25,\"ts\":\"2026-01-01T10:01:30.000Z\",\"size\":\"small\"}
";

/// Running count and total per user (a null amount counts, adding 0.0), one row per user with
/// rows in the batch; bob's carry over from batch 0 to batch 1 through the state store.
const STATEFUL_OUT: &str = "\
{\"user\":\"ann\",\"count\":2,\"total\":120.0}
{\"user\":\"bob\",\"count\":1,\"total\":40.5}
{\"user\":\"bob\",\"count\":2,\"total\":140.5}
{\"user\":\"cid\",\"count\":1,\"total\":7.25}
";

const BIG_OUT: &str = "\
{\"user\":\"ann\",\"amount\":120.0,\"ts\":\"2026-01-01T10:00:00.000Z\"}
{\"user\":\"bob\",\"amount\":100.0,\"ts\":\"2026-01-01T10:01:00.000Z\"}
";

const SMALL_OUT: &str = "\
{\"user\":\"bob\",\"amount\":40.5,\"ts\":\"2026-01-01T10:00:05.000Z\"}
{\"user\":\"ann\",\"ts\":\"2026-01-01T10:00:09.000Z\"}
{\"user\":\"cid\",\"amount\":7.25,\"ts\":\"2026-01-01T10:01:30.000Z\"}
";

/// Runs `sh -c command` in `dir`; fails the test with its output when it fails.
fn sh(dir: &Path, command: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        // The Rust templates' native tests share one target dir (weir-guest compiles once).
        .env("CARGO_TARGET_DIR", repo().join("target/plugin-new-tests"))
        .output()
        .unwrap_or_else(|e| panic!("spawning `{command}`: {e}"));
    assert!(
        out.status.success(),
        "`{command}` failed in {}:\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes, tests, builds and runs the `lang` plugin of `world`; returns its directory.
fn new_plugin_runs(s: &Scratch, lang: &str, world: &str) -> std::path::PathBuf {
    let name = format!("my-{lang}-{world}");
    let out = weir()
        .args(["plugin", "new", &name, "--lang", lang, "--world", world, "--dir"])
        .arg(s.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "weir plugin new: {}", String::from_utf8_lossy(&out.stderr));
    let dir = s.path(&name);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains(&format!("weir plugin build . --out {name}.wasm")), "{printed}");

    let readme = std::fs::read_to_string(dir.join("README.md")).expect("the template has a README.md");
    let test = readme
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("test:"))
        .unwrap_or_else(|| panic!("{lang}/{world}: README.md's first line must be `test: <command>`"))
        .trim()
        .to_string();
    assert!(printed.contains(&test), "the command prints the test command: {printed}");
    sh(&dir, &test);

    let built =
        weir().current_dir(&dir).args(["plugin", "build", ".", "--out"]).arg(format!("{name}.wasm")).output().unwrap();
    assert!(built.status.success(), "{lang}/{world}: weir plugin build: {}", String::from_utf8_lossy(&built.stderr));

    let ran = weir().current_dir(&dir).args(["run", "--quiet", "job.toml"]).output().unwrap();
    assert!(ran.status.success(), "{lang}/{world}: weir run job.toml: {}", String::from_utf8_lossy(&ran.stderr));
    dir
}

fn check_world(lang: &str, world: &str) {
    let s = Scratch::new();
    let dir = new_plugin_runs(&s, lang, world);
    match world {
        "mapper" => assert_eq!(committed_text(&dir.join("out/data")), MAPPER_OUT, "{lang}"),
        "stateful" => assert_eq!(committed_text(&dir.join("out/data")), STATEFUL_OUT, "{lang}"),
        _ => {
            assert_eq!(committed_text(&dir.join("out/big")), BIG_OUT, "{lang}");
            assert_eq!(committed_text(&dir.join("out/small")), SMALL_OUT, "{lang}");
        }
    }
    // A second run finds everything done and writes nothing again.
    let again = weir().current_dir(&dir).args(["run", "--quiet", "job.toml"]).output().unwrap();
    assert!(again.status.success());
    assert_eq!(progress(&dir.join("out/checkpoint")).len(), 2, "{lang}/{world}: two micro-batches");
}

macro_rules! template_tests {
    ($($test:ident: $lang:literal, $world:literal;)*) => {
        $(
            #[test]
            fn $test() {
                check_world($lang, $world);
            }
        )*
    };
}

template_tests! {
    rust_mapper_template_builds_tests_and_runs: "rust", "mapper";
    rust_stateful_template_builds_tests_and_runs: "rust", "stateful";
    rust_batch_sink_template_builds_tests_and_runs: "rust", "batch-sink";
    python_mapper_template_builds_tests_and_runs: "python", "mapper";
    python_stateful_template_builds_tests_and_runs: "python", "stateful";
    python_batch_sink_template_builds_tests_and_runs: "python", "batch-sink";
    js_mapper_template_builds_tests_and_runs: "js", "mapper";
    js_stateful_template_builds_tests_and_runs: "js", "stateful";
    js_batch_sink_template_builds_tests_and_runs: "js", "batch-sink";
    c_mapper_template_builds_tests_and_runs: "c", "mapper";
    c_stateful_template_builds_tests_and_runs: "c", "stateful";
    c_batch_sink_template_builds_tests_and_runs: "c", "batch-sink";
}

#[test]
fn plugin_new_refuses_a_bad_name_an_unknown_language_and_an_existing_directory() {
    let s = Scratch::new();
    let new = |args: &[&str]| {
        let o = weir().args(["plugin", "new"]).args(args).arg("--dir").arg(s.dir.path()).output().unwrap();
        assert!(!o.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    assert!(new(&["../evil"]).contains("\"../evil\" is not a plugin name"));
    assert!(
        new(&["p", "--lang", "cobol"]).contains("unknown language \"cobol\": --lang takes one of rust, python, js, c")
    );
    assert!(new(&["p", "--world", "reducer"]).contains("unknown world \"reducer\""));
    std::fs::create_dir(s.path("taken")).unwrap();
    assert!(new(&["taken"]).contains("already exists"));
    assert!(!s.path("p").exists(), "nothing was written for a refused command");
}
