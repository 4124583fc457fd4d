//! The web UI a job serves at `/`: a browser logs in with the job's token and gets a session
//! cookie that only the UI's own page may use; the page, in a real headless Chromium, charts the
//! real batches, shows the numbers the progress records hold, and a swap made through the API
//! appears on its timeline.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::hot_swap::{tagger, wait_until};

/// A rate job with a state operator (dedup within a watermark) and a plugin (operator 1), so
/// that every chart has something to draw.
fn job(s: &Scratch) -> PathBuf {
    s.job(&format!(
        r#"name = "watched"
# A swapped-in version stays on probation (so the UI's rollback button has something to roll
# back to) for the whole test, whatever the machine's speed.
[admin]
listen = "127.0.0.1:0"
probation_batches = 1000000
[source]
format = "rate"
rows_per_second = 200

[watermark]
column = "timestamp"
delay = "5 seconds"

[[operator]]
kind = "dedup"
keys = ["value"]
within_watermark = true

[[operator]]
kind = "map"
plugin = "{}"

[sink]
format = "json"
path = "{{dir}}/out"
checkpoint = "{{dir}}/ckpt"
trigger = {{ processing_time = "200 milliseconds" }}
"#,
        tagger("v1").display()
    ))
}

/// Sends one request; the answer's head and body.
fn request(addr: &str, method: &str, path: &str, headers: &str, body: &str) -> (String, String) {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

fn status(head: &str) -> u16 {
    head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
}

/// The running job, stopped when the test ends, however it ends (a failed assertion too: a job
/// left running would hold the test harness's output open).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        crate::pipeline::send_signal(self.0.id(), "INT");
        let _ = self.0.wait();
    }
}

#[test]
fn the_ui_needs_a_login_and_its_session_cookie_works_only_from_its_own_page() {
    let s = Scratch::new();
    let child = Running(weir().args(["run", "--quiet"]).arg(job(&s)).spawn().unwrap());
    wait_until("the API", || s.path("ckpt/admin-address").exists());
    let addr = std::fs::read_to_string(s.path("ckpt/admin-address")).unwrap().trim().to_string();
    let token = std::fs::read_to_string(s.path("ckpt/admin-token")).unwrap().trim().to_string();
    let port = addr.rsplit(':').next().unwrap();
    let same = format!("Origin: http://{addr}\r\n");

    // No session: the login page, with the UI's security headers; the UI's script is not in it.
    let (head, page) = request(&addr, "GET", "/", "", "");
    assert_eq!(status(&head), 200, "{head}");
    assert!(page.contains(r#"action="/ui/session""#) && !page.contains("app.js"), "{page}");
    assert_eq!(header(&head, "Content-Security-Policy"), Some("default-src 'self'; style-src 'self' 'unsafe-inline'"));
    assert_eq!(header(&head, "X-Frame-Options"), Some("DENY"));
    assert!(header(&head, "Set-Cookie").is_none());

    // A wrong token: refused, no cookie. A login from another page (login CSRF): refused.
    let (head, page) = request(&addr, "POST", "/ui/session", &same, "token=0123");
    assert_eq!(status(&head), 401, "{head}");
    assert!(header(&head, "Set-Cookie").is_none() && page.contains("not this job's token"), "{head}\n{page}");
    let form = format!("token={token}");
    let (head, _) = request(&addr, "POST", "/ui/session", "Origin: http://evil.example\r\n", &form);
    assert_eq!(status(&head), 403, "{head}");
    assert!(header(&head, "Set-Cookie").is_none());

    // The token: a cookie for this job's port, HttpOnly and SameSite=Strict, and back to `/`.
    let (head, body) = request(&addr, "POST", "/ui/session", &same, &form);
    assert_eq!(status(&head), 303, "{head}");
    assert!(!head.contains(&token) && !body.contains(&token), "the token is never repeated");
    assert_eq!(header(&head, "Location"), Some("/"));
    let set = header(&head, "Set-Cookie").unwrap();
    let (pair, attributes) = set.split_once(';').unwrap();
    assert!(pair.starts_with(&format!("weir_session_{port}=")), "{set}");
    for a in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attributes.split(';').any(|x| x.trim() == a), "{a} missing: {set}");
    }
    let cookie = format!("Cookie: {pair}\r\n");

    // With the cookie: the UI, and the API without the token, from no Origin or the UI's own.
    let (head, page) = request(&addr, "GET", "/", &cookie, "");
    assert_eq!(status(&head), 200);
    assert!(page.contains("/ui/app.js"), "{page}");
    for origin in ["", same.as_str()] {
        let (head, body) = request(&addr, "GET", "/query", &format!("{cookie}{origin}"), "");
        assert_eq!(status(&head), 200, "{origin}: {head}\n{body}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["name"], "watched");
    }
    let (head, _) = request(&addr, "GET", "/progress", &format!("{cookie}Sec-Fetch-Site: same-origin\r\n"), "");
    assert_eq!(status(&head), 200, "{head}");

    // The cookie from any other page: refused, whatever the page (another port of this host too).
    let other_port = format!("http://127.0.0.1:{}", port.parse::<u16>().unwrap().wrapping_add(1));
    for origin in ["http://evil.example", "null", other_port.as_str(), &format!("https://{addr}")] {
        let (head, body) = request(&addr, "GET", "/query", &format!("{cookie}Origin: {origin}\r\n"), "");
        assert_eq!(status(&head), 403, "{origin}: {head}\n{body}");
        let (head, _) = request(&addr, "POST", "/stop", &format!("{cookie}Origin: {origin}\r\n"), "");
        assert_eq!(status(&head), 403, "{origin}: {head}");
    }
    let (head, _) = request(&addr, "GET", "/query", &format!("{cookie}Sec-Fetch-Site: same-site\r\n"), "");
    assert_eq!(status(&head), 403, "{head}");
    // ... or sent to another name (DNS rebinding).
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    write!(c, "GET /query HTTP/1.1\r\nHost: rebound.example:{port}\r\n{cookie}Connection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    assert_eq!(status(&text), 403, "{text}");

    // A wrong or missing cookie: 401 from the API, the login page at `/`.
    let wrong = format!("Cookie: weir_session_{port}={}\r\n", "0".repeat(64));
    for h in [wrong.as_str(), ""] {
        let (head, _) = request(&addr, "GET", "/query", h, "");
        assert_eq!(status(&head), 401, "{h}: {head}");
        let (_, page) = request(&addr, "GET", "/", h, "");
        assert!(page.contains(r#"action="/ui/session""#), "{page}");
    }
    // Another job's cookie (another port) is not this job's session.
    let elsewhere = format!("Cookie: {}\r\n", pair.replacen(&format!("weir_session_{port}="), "weir_session_1=", 1));
    assert_eq!(status(&request(&addr, "GET", "/query", &elsewhere, "").0), 401);
    // The token still works for scripts, and a web page still may not use it.
    let auth = format!("Authorization: Bearer {token}\r\n");
    assert_eq!(status(&request(&addr, "GET", "/query", &auth, "").0), 200);
    assert_eq!(status(&request(&addr, "GET", "/query", &format!("{auth}{same}"), "").0), 403);
    drop(child);
}

/// `node`, if there is one.
fn node() -> Option<PathBuf> {
    let node = std::env::var_os("WEIR_NODE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("node"));
    Command::new(&node).arg("--version").output().is_ok_and(|o| o.status.success()).then_some(node)
}

#[test]
fn the_ui_in_a_browser_charts_real_batches_and_shows_a_swap() {
    let Some(node) = node() else {
        eprintln!("SKIPPED the_ui_in_a_browser_charts_real_batches_and_shows_a_swap: node is not installed (scripts/test.sh runs it with Node.js, Debian's chromium and tests/ui's playwright-core)");
        return;
    };
    let ui = repo().join("tests/ui");
    assert!(
        ui.join("node_modules/playwright-core").exists(),
        "tests/ui/node_modules is missing: `cd tests/ui && npm ci` (scripts/test.sh does, and installs Debian's chromium)"
    );
    let s = Scratch::new();
    let v2 = tagger("v2");
    let child = Running(weir().args(["run", "--quiet"]).arg(job(&s)).spawn().unwrap());
    wait_until("three batches", || progress(&s.path("ckpt")).len() >= 3);
    let out_dir = repo().join("target");
    let run =
        Command::new(node).arg(ui.join("ui.test.mjs")).arg(s.path("ckpt")).arg(&v2).arg(&out_dir).output().unwrap();
    drop(child);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "the browser test failed:\n{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let records = progress(&s.path("ckpt"));

    // Every chart, each with points from at least three batches, a plot and a histogram.
    let charts = seen["charts"].as_array().unwrap();
    let keys: Vec<&str> = charts.iter().map(|c| c["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "rates",
            "input-rows",
            "batch-duration",
            "phases",
            "watermark-gap",
            "state-rows",
            "state-updated",
            "state-memory",
            "state-dropped",
            "plugin-time",
            "dead-letters"
        ]
    );
    for c in charts {
        assert_eq!(c["hidden"], false, "{c}");
        assert!(c["points"].as_u64().unwrap() >= 3 && c["plot"] == true && c["bars"].as_u64().unwrap() > 0, "{c}");
    }

    // The numbers shown are those of the progress records in the checkpoint.
    let shown = &seen["shown"];
    let batch = shown["batchId"].as_u64().unwrap();
    let record =
        records.iter().find(|p| p["batchId"] == batch).unwrap_or_else(|| panic!("no record for batch {batch}"));
    assert_eq!(shown["inputRows"], record["numInputRows"], "{shown}");
    assert_eq!(&shown["json"], record, "the last progress record as JSON");
    assert_eq!(shown["name"], "watched");
    assert_eq!(shown["id"], record["id"]);
    assert_eq!(shown["runId"], record["runId"]);
    assert!(shown["graph"].as_str().unwrap().contains("tagger-v1.wasm"), "{shown}");

    // The swap made through the API is on the timeline, at the batch it took effect, and is
    // operator 1's version.
    let swap = &seen["swap"];
    assert_eq!(swap["event"], "swap");
    let on_timeline = seen["timeline"].as_array().unwrap().iter().find(|e| e["digest"] == swap["digest"]).unwrap();
    assert_eq!(on_timeline["event"], "swap");
    assert_eq!(on_timeline["batch"], swap["first_batch"]);
    assert!(seen["versions"].as_array().unwrap().iter().any(|v| v["operator"] == 1 && v["version"] == swap["digest"]));
    // The UI's own buttons: the rollback put the replaced version back, the file chosen swapped
    // the new one in again.
    let said = |k: &str| seen[k].as_str().unwrap_or_default().to_string();
    assert!(said("rolledBack").starts_with("operator 1: operator[1]: rolled back from "), "{}", said("rolledBack"));
    assert!(said("swappedAgain").starts_with("operator 1: swapped in "), "{}", said("swappedAgain"));
    let first = swap["first_batch"].as_u64().unwrap();
    let ran = records.iter().find(|p| p["batchId"] == first).map(|p| p["plugins"][0]["digest"].clone());
    assert!(ran.is_none_or(|d| d == swap["digest"]), "batch {first} ran the new version");
    assert!(Path::new(&out_dir.join("ui-screenshot.png")).exists());
}
