//! One writer per checkpoint, and outputs no second writer can corrupt: a second `weir run` on a
//! checkpoint in use is refused naming the holder; two jobs given one output directory never
//! overwrite or skip each other's batches.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string()
}

const JOB: &str = r#"
[source]
format = "json"
path = "{dir}/in"
schema = "id bigint"
max_files_per_trigger = 1

[sink]
format = "json"
path = "{dir}/out"
checkpoint = "{dir}/ckpt"
trigger = TRIGGER
"#;

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "waited 60 s for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_second_run_on_a_checkpoint_in_use_is_refused_naming_the_holder() {
    let s = Scratch::new();
    s.write("in/a.json", "{\"id\":1}\n");
    let running = s.job(&JOB.replace("TRIGGER", "{ processing_time = \"100 milliseconds\" }"));
    let mut first = weir().args(["run", "--quiet"]).arg(&running).spawn().unwrap();
    wait_until("the first run's batch 0", || s.path("out/_weir_log/0").exists());
    let out = run_job(&running);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second writer was let in: {err}");
    assert!(
        err.contains(&format!("is in use by weir pid {} on host {}", first.id(), hostname())),
        "the holder is not named: {err}"
    );
    assert!(err.contains("Stop that job first"), "{err}");
    let inspect = weir().args(["checkpoint", "inspect"]).arg(s.path("ckpt")).output().unwrap();
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(text.contains(&format!("in use by:       weir pid {} on host {}", first.id(), hostname())), "{text}");
    assert!(first.try_wait().unwrap().is_none(), "the first run goes on");
    let _ = Command::new("kill").arg("-INT").arg(first.id().to_string()).status();
    assert!(first.wait().unwrap().success());
    // Stopped: its lock file stays behind, and the next run takes it over.
    assert!(s.path("ckpt/lock").exists());
    let inspect = weir().args(["checkpoint", "inspect"]).arg(s.path("ckpt")).output().unwrap();
    assert!(String::from_utf8_lossy(&inspect.stdout).contains("in use by:       nobody"));
    s.write("in/b.json", "{\"id\":2}\n");
    run_ok(&s.job(&JOB.replace("TRIGGER", "{ available_now = true }")));
    assert_eq!(committed_text(&s.path("out")), "{\"id\":1}\n{\"id\":2}\n");
}

/// A lock file left by a process killed with SIGKILL is not held (the kernel let go of it):
/// the restart takes it over.
#[test]
fn a_lock_left_by_a_killed_run_is_taken_over() {
    let s = Scratch::new();
    s.write("in/a.json", "{\"id\":1}\n");
    let running = s.job(&JOB.replace("TRIGGER", "{ processing_time = \"100 milliseconds\" }"));
    let mut first = weir().args(["run", "--quiet"]).arg(&running).spawn().unwrap();
    wait_until("the first run's batch 0", || s.path("out/_weir_log/0").exists());
    let _ = Command::new("kill").arg("-KILL").arg(first.id().to_string()).status();
    first.wait().unwrap();
    let lock = std::fs::read_to_string(s.path("ckpt/lock")).unwrap();
    assert!(lock.contains(&format!("\"pid\":{}", first.id())), "{lock}");
    run_ok(&s.job(&JOB.replace("TRIGGER", "{ available_now = true }")));
    assert_eq!(committed_text(&s.path("out")), "{\"id\":1}\n");
}

/// Two jobs (two checkpoints) given one output directory: the second does not take the first's
/// log entry for its own batch (which would lose its rows silently); it stops, naming the
/// entry, and the first's files are untouched.
#[test]
fn a_second_job_on_the_same_output_stops_instead_of_skipping_its_batch() {
    let s = Scratch::new();
    s.write("in/a.json", "{\"id\":1}\n");
    run_ok(&s.job(&JOB.replace("TRIGGER", "{ available_now = true }")));
    s.write("other/a.json", "{\"id\":7}\n");
    let other = s.job(
        &JOB.replace("TRIGGER", "{ available_now = true }")
            .replace("{dir}/in", "{dir}/other")
            .replace("{dir}/ckpt", "{dir}/ckpt-other"),
    );
    let err = run_err(&other);
    assert!(
        err.contains(&format!(
            "{}: batch 0 is already committed in this output directory by another query",
            s.path("out/_weir_log/0").display()
        )),
        "{err}"
    );
    assert_eq!(committed_text(&s.path("out")), "{\"id\":1}\n");
    assert!(!s.path("ckpt-other/commits/0").exists(), "the second job committed nothing");
}
