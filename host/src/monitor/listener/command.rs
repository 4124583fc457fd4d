//! One event run through a command: the program started directly (no shell) with its
//! arguments, the event JSON on its stdin and its kind in `WEIR_EVENT`, its stdout discarded
//! and its stderr the job's. A non-zero exit, or still running at the timeout (then it is
//! killed), is a failed attempt.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Delivery, Failure};

/// Runs `argv` once for `d`, within `timeout`.
pub fn run(argv: &[String], d: &Delivery, timeout: Duration) -> Result<(), Failure> {
    let deadline = Instant::now() + timeout;
    let program = &argv[0];
    let mut child = Command::new(program)
        .args(&argv[1..])
        .env("WEIR_EVENT", d.kind)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Failure::retry(format!("cannot run {program}: {e}")))?;
    // Written beside, so that a command that does not read its stdin cannot hold us past the
    // timeout; one that exits without reading it is not an error of ours.
    let mut stdin = child.stdin.take().expect("stdin was piped");
    let body = d.body.clone();
    let writer = std::thread::Builder::new()
        .name("weir-listener-stdin".into())
        .spawn(move || {
            let _ = stdin.write_all(&body);
        })
        .map_err(|e| Failure::retry(format!("cannot run {program}: {e}")))?;
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = writer.join();
                return Err(Failure::retry(format!(
                    "{program} did not finish within {}; killed",
                    crate::plan::describe::duration(timeout)
                )));
            }
            Ok(None) => {
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(Failure::retry(format!("waiting for {program}: {e}"))),
        }
    };
    let _ = writer.join();
    if status.success() {
        Ok(())
    } else {
        Err(Failure::retry(format!("{program} exited with {status}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery() -> Delivery {
        Delivery { kind: "QueryTerminatedEvent", body: b"{\"event\":\"QueryTerminatedEvent\"}".to_vec().into() }
    }

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_command_reads_the_event_on_stdin_and_its_kind_in_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("events");
        let script = format!("cat >> '{}'; echo \" $WEIR_EVENT\" >> '{}'", file.display(), file.display());
        run(&argv(&["sh", "-c", &script]), &delivery(), Duration::from_secs(10)).unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "{\"event\":\"QueryTerminatedEvent\"} QueryTerminatedEvent\n"
        );
    }

    #[test]
    fn a_non_zero_exit_a_missing_program_and_a_command_past_its_timeout_fail() {
        let e = run(&argv(&["sh", "-c", "exit 3"]), &delivery(), Duration::from_secs(10)).unwrap_err();
        assert!(e.message.contains("exited with") && e.message.contains('3'), "{e:?}");
        let e = run(&argv(&["/nonexistent/alert"]), &delivery(), Duration::from_secs(10)).unwrap_err();
        assert!(e.message.starts_with("cannot run /nonexistent/alert"), "{e:?}");
        let e = run(&argv(&["sleep", "30"]), &delivery(), Duration::from_millis(100)).unwrap_err();
        assert!(e.message.contains("killed"), "{e:?}");
    }
}
