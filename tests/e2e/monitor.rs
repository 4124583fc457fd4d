//! Watching and managing a running query: `weir status`, `weir stop`, `weir progress`,
//! `weir list`, against a real running job, and after it stopped.

use crate::common::*;
use crate::hot_swap::wait_until;

/// `weir` run in the scratch directory, with its own registry of running jobs.
pub(crate) fn weir_in(s: &Scratch) -> std::process::Command {
    let mut c = weir();
    c.current_dir(s.dir.path()).env("WEIR_RUNTIME_DIR", s.path("run"));
    c
}

/// What a command that must succeed printed.
pub(crate) fn stdout_of(mut c: std::process::Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{:?} failed:\n{}", c, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn status_list_progress_and_a_graceful_stop_of_a_running_job() {
    let s = Scratch::new();
    s.write(
        "job.toml",
        "name = \"ticker\"\n[source]\nformat = \"rate\"\nrows_per_second = 50\n\
         [sink]\nformat = \"json\"\npath = \"out\"\ncheckpoint = \"ckpt\"\ntrigger = { processing_time = \"200 ms\" }\n",
    );
    let mut child = weir_in(&s).args(["run", "--quiet", "job.toml"]).spawn().unwrap();
    wait_until("two batches", || progress(&s.path("ckpt")).len() >= 2);

    // The jobs running here: this one, with its pid and API.
    let list = stdout_of({
        let mut c = weir_in(&s);
        c.arg("list");
        c
    });
    assert!(list.contains("ticker") && list.contains(&child.id().to_string()), "{list}");

    // Its status through its API, as Spark's StreamingQuery shows it.
    let status: serde_json::Value = serde_json::from_str(&stdout_of({
        let mut c = weir_in(&s);
        c.args(["status", "--json", "job.toml"]);
        c
    }))
    .unwrap();
    assert_eq!(status["isActive"], true, "{status}");
    assert_eq!(status["name"], "ticker");
    assert_eq!(status["id"], progress(&s.path("ckpt"))[0]["id"]);
    assert!(status["lastProgress"]["batchId"].as_u64().is_some(), "{status}");
    assert!(status["status"]["message"].is_string());
    let text = stdout_of({
        let mut c = weir_in(&s);
        c.args(["status", "ckpt"]);
        c
    });
    assert!(text.starts_with("query ticker (active)"), "{text}");
    assert!(text.contains("last batch ") && text.contains("RateStreamV2"), "{text}");

    // A graceful stop: the job ends after the batch in progress, on its own, successfully.
    let said = stdout_of({
        let mut c = weir_in(&s);
        c.args(["stop", "job.toml"]);
        c
    });
    assert!(said.contains("stops after the batch in progress"), "{said}");
    let exit = child.wait().unwrap();
    assert!(exit.success(), "the stopped job exits cleanly: {exit:?}");

    // Stopped: read from the checkpoint; no longer listed.
    let status: serde_json::Value = serde_json::from_str(&stdout_of({
        let mut c = weir_in(&s);
        c.args(["status", "--json", "job.toml"]);
        c
    }))
    .unwrap();
    assert_eq!(status["isActive"], false, "{status}");
    assert_eq!(status["status"]["message"], "Stopped");
    let records = progress(&s.path("ckpt"));
    assert_eq!(status["lastProgress"], *records.last().unwrap());
    let list = stdout_of({
        let mut c = weir_in(&s);
        c.arg("list");
        c
    });
    assert!(list.starts_with("no weir job is running"), "{list}");

    // The progress records, all or the last ones.
    let all = stdout_of({
        let mut c = weir_in(&s);
        c.args(["progress", "job.toml"]);
        c
    });
    assert_eq!(all.lines().count(), records.len());
    let last = stdout_of({
        let mut c = weir_in(&s);
        c.args(["progress", "--last", "1", "ckpt"]);
        c
    });
    let last: serde_json::Value = serde_json::from_str(last.trim()).unwrap();
    assert_eq!(last, *records.last().unwrap());
}

/// The API refuses what the admin API refuses: no token, a web page's request.
#[test]
fn the_query_api_needs_the_token_and_refuses_web_pages() {
    let s = Scratch::new();
    s.write(
        "job.toml",
        "[source]\nformat = \"rate\"\nrows_per_second = 10\n\
         [sink]\nformat = \"console\"\ncheckpoint = \"ckpt\"\ntrigger = { processing_time = \"200 ms\" }\n",
    );
    let mut child =
        weir_in(&s).args(["run", "--quiet", "job.toml"]).stdout(std::process::Stdio::null()).spawn().unwrap();
    wait_until("the API", || s.path("ckpt/admin-address").exists());
    let addr = std::fs::read_to_string(s.path("ckpt/admin-address")).unwrap();
    let ask = |extra: &str| {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(addr.trim()).unwrap();
        write!(c, "GET /query HTTP/1.1\r\nHost: {}\r\n{extra}Connection: close\r\n\r\n", addr.trim()).unwrap();
        let mut text = String::new();
        c.read_to_string(&mut text).unwrap();
        text
    };
    assert!(ask("").starts_with("HTTP/1.1 401"), "no token");
    let token = std::fs::read_to_string(s.path("ckpt/admin-token")).unwrap();
    let auth = format!("Authorization: Bearer {}\r\n", token.trim());
    assert!(ask(&format!("{auth}Origin: http://evil.example\r\n")).starts_with("HTTP/1.1 403"), "a web page");
    let ok = ask(&auth);
    assert!(ok.starts_with("HTTP/1.1 200") && ok.contains("\"isActive\":true"), "{ok}");
    let _ = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    child.wait().unwrap();
}

/// A job stopped by an error: `weir status` on its checkpoint shows the exception.
#[test]
fn the_status_of_a_job_stopped_by_an_error_shows_the_exception() {
    let s = Scratch::new();
    s.write("in/a.json", "{\"n\":1}\nnot json\n");
    s.write(
        "job.toml",
        "[source]\nformat = \"json\"\npath = \"in\"\nschema = \"n int\"\n\
         [sink]\nformat = \"json\"\npath = \"out\"\ncheckpoint = \"ckpt\"\ntrigger = { available_now = true }\n",
    );
    let out = weir_in(&s).args(["run", "--quiet", "job.toml"]).output().unwrap();
    assert!(!out.status.success());
    let status: serde_json::Value = serde_json::from_str(&stdout_of({
        let mut c = weir_in(&s);
        c.args(["status", "--json", "ckpt"]);
        c
    }))
    .unwrap();
    assert_eq!(status["isActive"], false);
    let e = status["exception"].as_str().unwrap_or_else(|| panic!("no exception: {status}"));
    assert!(e.contains("batch 0") && e.contains("line 2"), "{e}");
    let text = stdout_of({
        let mut c = weir_in(&s);
        c.args(["status", "job.toml"]);
        c
    });
    assert!(text.contains("stopped by: batch 0"), "{text}");
}

/// After the job stopped, `weir status` still shows how its listeners fared (CHECKPOINT/last-run.json).
#[test]
fn the_status_of_a_stopped_job_keeps_its_listeners_counts() {
    let s = Scratch::new();
    s.write("in/a.json", "{\"n\":1}\n");
    // Nothing listens on the discard port: every delivery fails.
    s.write(
        "job.toml",
        "[source]\nformat = \"json\"\npath = \"in\"\nschema = \"n int\"\n\
         [[listener]]\nurl = \"http://127.0.0.1:9/nowhere\"\nretries = 0\ntimeout = \"1 second\"\n\
         [sink]\nformat = \"json\"\npath = \"out\"\ncheckpoint = \"ckpt\"\ntrigger = { available_now = true }\n",
    );
    let out = weir_in(&s).args(["run", "--quiet", "job.toml"]).output().unwrap();
    assert!(out.status.success(), "a failing listener never stops the job: {}", String::from_utf8_lossy(&out.stderr));
    let status: serde_json::Value = serde_json::from_str(&stdout_of({
        let mut c = weir_in(&s);
        c.args(["status", "--json", "ckpt"]);
        c
    }))
    .unwrap();
    let l = &status["listeners"][0];
    assert_eq!((l["delivered"].as_u64(), l["queued"].as_u64()), (Some(0), Some(0)), "{status}");
    assert!(l["failed"].as_u64().unwrap() >= 3, "started, progress and terminated failed: {l}");
}
