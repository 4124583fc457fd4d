//! `[[listener]]`: a webhook and a command hear the query's events in Spark's shapes (started,
//! one progress per batch, idle, terminated with the exception that stopped the query); a
//! receiver that hangs or refuses never slows or stops the job, and its failures are counted
//! and shown by `weir status`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use crate::common::*;
use crate::hot_swap::wait_until;
use crate::monitor::{stdout_of, weir_in};

/// A webhook receiver on a loopback port: answers 200 to every POST and keeps what it got.
struct Receiver {
    url: String,
    /// Each request's event, with the request's head under `"_head"`.
    got: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/weir", server.local_addr().unwrap());
        let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let keep = got.clone();
        std::thread::spawn(move || {
            for c in server.incoming() {
                let Ok(mut c) = c else { continue };
                let Some((head, body)) = read_request(&mut c) else { continue };
                let mut event: serde_json::Value = serde_json::from_str(&body).unwrap();
                event["_head"] = head.into();
                keep.lock().unwrap().push(event);
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        Receiver { url, got }
    }

    fn events(&self) -> Vec<serde_json::Value> {
        self.got.lock().unwrap().clone()
    }

    fn has(&self, kind: &str) -> bool {
        self.events().iter().any(|e| e["event"] == kind)
    }
}

/// One request's head and body (by Content-Length); none when the client went away.
fn read_request(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    let mut len = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((head, String::from_utf8(body).ok()?))
}

fn kinds(events: &[serde_json::Value]) -> Vec<String> {
    events.iter().map(|e| e["event"].as_str().unwrap().to_string()).collect()
}

/// `weir ARGS JOB` in the scratch directory; what it printed (it must succeed).
fn weir_says(s: &Scratch, args: &[&str], job: &std::path::Path) -> String {
    let mut c = weir_in(s);
    c.args(args).arg(job);
    stdout_of(c)
}

const ROW: &str = "{\"k\":\"a\",\"n\":1}\n";

/// Three input files, one batch each (the second's text as given); `trigger` and the
/// `[[listener]]` tables as given.
fn job(s: &Scratch, trigger: &str, listeners: &str, second: &str) -> std::path::PathBuf {
    for (f, text) in [("in/1.json", ROW), ("in/2.json", second), ("in/3.json", ROW)] {
        s.write(f, text);
    }
    s.job(&format!(
        "name = \"watched\"\n{listeners}\n\
         [source]\nformat = \"json\"\npath = \"{{dir}}/in\"\nschema = \"k string, n bigint\"\nmax_files_per_trigger = 1\n\
         [sink]\nformat = \"json\"\npath = \"{{dir}}/out\"\ncheckpoint = \"{{dir}}/ckpt\"\ntrigger = {trigger}\n"
    ))
}

#[test]
fn a_webhook_and_a_command_hear_started_progress_per_batch_idle_and_terminated() {
    let s = Scratch::new();
    let hook = Receiver::start();
    let listeners = format!(
        "[[listener]]\nurl = \"{}\"\nheaders = {{ Authorization = \"Bearer hook-SECRET\" }}\n\
         [[listener]]\ncommand = [\"sh\", \"-c\", \"cat >> '{{dir}}/events.jsonl' && echo >> '{{dir}}/events.jsonl'\"]\n",
        hook.url
    );
    let file = job(&s, "{ processing_time = \"100 ms\" }", &listeners, ROW);
    let child = weir_in(&s).args(["run", "--quiet"]).arg(&file).stderr(std::process::Stdio::piped()).spawn().unwrap();
    wait_until("the idle event after three batches", || hook.has("QueryIdleEvent"));
    weir_says(&s, &["stop"], &file);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("hook-SECRET"), "a header value is printed: {stderr}");

    // The terminated event is delivered before the process exits.
    let events = hook.events();
    assert_eq!(
        kinds(&events),
        [
            "QueryStartedEvent",
            "QueryProgressEvent",
            "QueryProgressEvent",
            "QueryProgressEvent",
            "QueryIdleEvent",
            "QueryTerminatedEvent"
        ]
    );
    let records = progress(&s.path("ckpt"));
    let ids: Vec<u64> = events[1..4].iter().map(|e| e["progress"]["batchId"].as_u64().unwrap()).collect();
    assert_eq!(ids, [0, 1, 2], "one progress event per batch, in order");
    for (e, r) in events[1..4].iter().zip(&records) {
        assert_eq!(e["progress"], *r, "the progress event carries the progress record");
    }
    let (started, terminated) = (&events[0], &events[5]);
    assert_eq!(started["id"], records[0]["id"]);
    assert_eq!(started["runId"], records[0]["runId"]);
    assert_eq!(started["name"], "watched");
    assert_eq!((&events[4]["id"], &events[4]["runId"]), (&started["id"], &started["runId"]));
    assert_eq!((&terminated["id"], &terminated["runId"]), (&started["id"], &started["runId"]));
    assert!(terminated["exception"].is_null(), "a clean stop: {terminated}");
    for e in &events {
        let head = e["_head"].as_str().unwrap();
        assert!(head.starts_with("POST /hooks/weir HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nContent-Type: application/json\r\n"), "{head}");
        assert!(head.contains("\r\nAuthorization: Bearer hook-SECRET\r\n"), "{head}");
    }

    // The command got the same events, one per run, on its stdin.
    let ran: Vec<serde_json::Value> = std::fs::read_to_string(s.path("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(kinds(&ran), kinds(&events));
    assert_eq!(ran[5]["runId"], started["runId"]);
}

#[test]
fn a_job_that_fails_tells_the_listener_the_exception_naming_the_batch() {
    let s = Scratch::new();
    let hook = Receiver::start();
    let listener = format!("[[listener]]\nurl = \"{}\"\n", hook.url);
    let file = job(&s, "{ available_now = true }", &listener, "{\"k\":\"b\",\n");
    let err = run_err(&file);
    let events = hook.events();
    assert_eq!(kinds(&events), ["QueryStartedEvent", "QueryProgressEvent", "QueryTerminatedEvent"], "{err}");
    let exception = events[2]["exception"].as_str().expect("the exception that stopped the query");
    assert!(exception.contains("batch 1"), "{exception}");
    assert!(exception.contains(&format!("{} line 1", s.path("in/2.json").display())), "{exception}");
    assert!(err.contains(exception.lines().next().unwrap()), "the same error as the job printed:\n{err}\n{exception}");
}

#[test]
fn a_receiver_that_hangs_and_one_that_refuses_do_not_stop_the_job_and_their_failures_show() {
    let s = Scratch::new();
    // Accepts and never answers.
    let hung = TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_url = format!("http://{}/hook", hung.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<TcpStream> = hung.incoming().filter_map(Result::ok).collect();
        drop(held);
    });
    // Nobody listens there.
    let refused_url = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", l.local_addr().unwrap())
    };
    let listeners = format!(
        "[[listener]]\nurl = \"{hung_url}\"\ntimeout = \"300 ms\"\nretries = 1\n\
         [[listener]]\nurl = \"{refused_url}\"\nretries = 1\n"
    );
    let file = job(&s, "{ processing_time = \"100 ms\" }", &listeners, ROW);
    let child = weir_in(&s).args(["run", "--quiet"]).arg(&file).stderr(std::process::Stdio::piped()).spawn().unwrap();
    wait_until("three batches", || progress(&s.path("ckpt")).len() >= 3);
    let status =
        || -> serde_json::Value { serde_json::from_str(&weir_says(&s, &["status", "--json"], &file)).unwrap() };
    wait_until("a failure of each listener", || {
        let q = status();
        let l = q["listeners"].as_array().unwrap();
        l.len() == 2 && l.iter().all(|l| l["failed"].as_u64().unwrap() >= 1)
    });
    let q = status();
    assert_eq!(q["isActive"], true, "{q}");
    assert_eq!(q["listeners"][0]["name"], format!("listener[0] {hung_url}"));
    assert!(q["listeners"][0]["lastError"].as_str().unwrap().contains("no answer within 300 ms"), "{q}");
    assert!(q["listeners"][1]["lastError"].as_str().unwrap().contains("cannot connect"), "{q}");
    let text = weir_says(&s, &["status"], &file);
    for url in [&hung_url, &refused_url] {
        let line =
            text.lines().find(|l| l.contains(url.as_str())).unwrap_or_else(|| panic!("no line for {url}:\n{text}"));
        assert!(line.contains(" delivered, ") && !line.contains(" 0 failed"), "{line}");
    }
    weir_says(&s, &["stop"], &file);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the job ends successfully: {stderr}");
    let records = progress(&s.path("ckpt"));
    let rows: u64 = records.iter().map(|r| r["numInputRows"].as_u64().unwrap()).sum();
    assert_eq!(rows, 3, "every batch ran");
    assert!(stderr.contains(&format!("listener[1] {refused_url}: 0 events delivered")), "{stderr}");
}
