//! The admin API lets no one in who does not belong: a token always (generated into the
//! checkpoint, 0600, when the job file sets none), no requests from web pages (Origin) or to
//! other host names (DNS rebinding), uploads capped and read with a bound, a slow client never
//! blocks the API, refused uploads are not kept, errors never repeat the token.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::common::*;

fn job(s: &Scratch, admin_extra: &str) -> PathBuf {
    s.job(&format!(
        r#"
[admin]
listen = "127.0.0.1:0"
{admin_extra}

[source]
format = "rate"
rows_per_second = 100

[sink]
format = "json"
path = "{{dir}}/out"
checkpoint = "{{dir}}/ckpt"
trigger = {{ processing_time = "100 milliseconds" }}
"#
    ))
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "waited 60 s for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the job; its admin address.
fn start(s: &Scratch, job: &Path) -> (Child, String) {
    let child = weir().args(["run", "--quiet"]).arg(job).spawn().unwrap();
    wait_until("the admin API", || s.path("ckpt/admin-address").exists());
    (child, std::fs::read_to_string(s.path("ckpt/admin-address")).unwrap())
}

fn stop(mut child: Child) {
    crate::pipeline::send_signal(child.id(), "INT");
    assert!(child.wait().unwrap().success());
}

/// Sends raw bytes; the answer's status and body.
fn raw(addr: &str, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(request).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn get(addr: &str, headers: &str) -> (u16, String) {
    raw(addr, format!("GET /plugins HTTP/1.1\r\n{headers}Connection: close\r\n\r\n").as_bytes())
}

#[test]
fn without_a_token_in_the_job_file_one_is_generated_that_only_the_owner_can_read() {
    let s = Scratch::new();
    let (child, addr) = start(&s, &job(&s, ""));
    let file = s.path("ckpt/admin-token");
    let token = std::fs::read_to_string(&file).unwrap();
    assert_eq!(token.len(), 64, "{token}");
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{token}");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    // Without the token (an address only), refused; with the job file or the checkpoint, weir
    // reads the token there.
    let denied = weir().args(["plugin", "history", "--job", &addr]).env_remove("WEIR_ADMIN_TOKEN").output().unwrap();
    assert!(!denied.status.success());
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(err.contains("401: a bearer token is required"), "{err}");
    let wrong = get(&addr, &format!("Host: {addr}\r\nAuthorization: Bearer {}\r\n", "0".repeat(64)));
    assert_eq!(wrong.0, 401, "{wrong:?}");
    for by in [s.path("job.toml"), s.path("ckpt")] {
        let ok = weir().args(["plugin", "history", "--job"]).arg(&by).env_remove("WEIR_ADMIN_TOKEN").output().unwrap();
        assert!(ok.status.success(), "{}: {}", by.display(), String::from_utf8_lossy(&ok.stderr));
        assert!(String::from_utf8_lossy(&ok.stdout).starts_with('['));
    }
    stop(child);
    // Each start has a new token.
    let (child, _) = start(&s, &job(&s, ""));
    wait_until("a new token", || std::fs::read_to_string(&file).is_ok_and(|t| t != token));
    stop(child);
}

#[test]
fn requests_from_web_pages_or_to_other_host_names_are_refused_and_errors_hide_the_token() {
    let s = Scratch::new();
    let (child, addr) = start(&s, &job(&s, "token = \"tok-5ecret\""));
    let port = addr.rsplit(':').next().unwrap();
    let auth = "Authorization: Bearer tok-5ecret\r\n";
    assert_eq!(get(&addr, &format!("Host: {addr}\r\n{auth}")).0, 200);
    assert_eq!(get(&addr, &format!("Host: localhost:{port}\r\n{auth}")).0, 200, "localhost on loopback");
    let cases = [
        (format!("Host: {addr}\r\nOrigin: http://evil.example\r\n{auth}"), 403, "Origin"),
        (format!("Host: {addr}\r\nOrigin: null\r\n{auth}"), 403, "Origin"),
        (format!("Host: evil.example:{port}\r\n{auth}"), 403, "Host header must be the address"),
        (format!("Host: {addr}.evil.example\r\n{auth}"), 403, "DNS rebinding"),
        (auth.to_string(), 400, "a Host header is required"),
        (format!("Host: {addr}\r\nAuthorization: Bearer tok-5ecreT\r\n"), 401, "bearer token is required"),
        (format!("Host: {addr}\r\n"), 401, "bearer token is required"),
    ];
    for (headers, status, message) in cases {
        let (got, body) = get(&addr, &headers);
        assert_eq!(got, status, "{headers:?}: {body}");
        assert!(body.contains(message), "{headers:?}: {body}");
        assert!(!body.contains("5ecret"), "the token is echoed: {body}");
    }
    stop(child);
}

#[test]
fn an_upload_past_max_upload_is_refused_unread_and_a_refused_upload_is_not_kept() {
    let s = Scratch::new();
    let (child, addr) = start(&s, &job(&s, "token = \"t\"\nmax_upload = \"1 KiB\""));
    let head = format!("POST /operators/0/plugin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer t\r\n");
    // 10 GiB announced, nothing sent: refused at once, without waiting for the body.
    let (status, body) = raw(&addr, format!("{head}Content-Length: 10737418240\r\n\r\n").as_bytes());
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("[admin].max_upload"), "{body}");
    // Chunked: refused when the chunks pass the cap.
    let chunk = format!("200\r\n{}\r\n", "x".repeat(0x200));
    let (status, body) =
        raw(&addr, format!("{head}Transfer-Encoding: chunked\r\n\r\n{}0\r\n\r\n", chunk.repeat(3)).as_bytes());
    assert_eq!(status, 413, "{body}");
    // `weir plugin swap` of a component bigger than the cap: the API's answer, before sending it.
    let big = s.write("big.wasm", &"\0asm".repeat(1000));
    let out = weir()
        .args(["plugin", "swap", "--job"])
        .arg(s.path("job.toml"))
        .args(["--operator", "0"])
        .arg(&big)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("413: the upload is larger"), "{out:?}");
    // Under the cap but not a component: refused, and not stored in the checkpoint.
    let junk = s.write("junk.wasm", "not a component");
    let out = weir()
        .args(["plugin", "swap", "--job"])
        .arg(s.path("job.toml"))
        .args(["--operator", "0"])
        .arg(&junk)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(": 422: "), "{out:?}");
    let stored: Vec<_> = std::fs::read_dir(s.path("ckpt/plugins"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(stored.is_empty(), "refused uploads were kept: {stored:?}");
    stop(child);
}

#[test]
fn a_client_that_sends_slowly_does_not_block_the_api() {
    let s = Scratch::new();
    let (child, addr) = start(&s, &job(&s, "token = \"t\""));
    // One connection stops inside its request head, another (with the token) inside its body.
    let mut head_only = TcpStream::connect(&addr).unwrap();
    head_only.write_all(format!("GET /plugins HTTP/1.1\r\nHost: {addr}\r\n").as_bytes()).unwrap();
    let mut half_body = TcpStream::connect(&addr).unwrap();
    half_body
        .write_all(
            format!("POST /operators/0/plugin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer t\r\nContent-Length: 1000\r\n\r\n\0asm")
                .as_bytes(),
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut history = weir()
        .args(["plugin", "history", "--job", &addr, "--token", "t"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while history.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = history.kill();
            panic!("the API did not answer while two slow clients were connected");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = history.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop((head_only, half_body));
    stop(child);
}

/// Listening on every interface: `--job JOB.toml` asks on loopback, under a name the API accepts.
#[test]
fn a_job_listening_on_every_interface_is_reached_through_its_job_file() {
    let s = Scratch::new();
    let text = std::fs::read_to_string(job(&s, "token = \"t\"")).unwrap().replace("127.0.0.1:0", "0.0.0.0:0");
    let (child, addr) = start(&s, &s.job(&text));
    assert!(addr.starts_with("0.0.0.0:"), "{addr}");
    let ok = weir().args(["plugin", "history", "--job"]).arg(s.path("job.toml")).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    stop(child);
}

/// An upload is kept only while a batch may still be replayed with it: a version that failed on
/// probation and was rolled back (its batch planned again with the old version) is deleted from
/// the checkpoint once no retained offsets or commits entry names it.
#[test]
fn a_rolled_back_version_no_batch_needs_is_deleted_from_the_checkpoint() {
    use sha2::Digest;
    let s = Scratch::new();
    let (v1, broken) = (crate::hot_swap::tagger("v1"), crate::hot_swap::tagger("broken"));
    let job = s.job(&format!(
        r#"
min_batches_to_retain = 1

[admin]
listen = "127.0.0.1:0"

[source]
format = "rate"
rows_per_second = 1000

[[operator]]
kind = "map"
plugin = "{}"

[sink]
format = "json"
path = "{{dir}}/out"
checkpoint = "{{dir}}/ckpt"
trigger = {{ processing_time = "50 milliseconds" }}
"#,
        v1.display()
    ));
    let (child, _) = start(&s, &job);
    let committed = || std::fs::read_dir(s.path("ckpt/commits")).map(|d| d.count()).unwrap_or(0);
    wait_until("2 batches", || committed() >= 2);
    let digest = format!("{:x}", sha2::Sha256::digest(std::fs::read(&broken).unwrap()));
    let stored = s.path(&format!("ckpt/plugins/sha256-{digest}.wasm"));
    let out =
        weir().args(["plugin", "swap", "--job"]).arg(&job).args(["--operator", "0"]).arg(&broken).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stored.exists(), "the upload is stored while it may run");
    let history = || {
        let out = weir().args(["plugin", "history", "--job"]).arg(&job).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    wait_until("the rollback", || history().contains("\"rollback\""));
    let at = committed();
    wait_until("2 more batches", || committed() >= at + 2);
    assert!(!stored.exists(), "the rolled-back version is still in the checkpoint: {}", stored.display());
    stop(child);
}
