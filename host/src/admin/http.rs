//! A small HTTP/1.1 server for the admin API, written for hostile clients: one request per
//! connection, each connection on its own thread with a cap on how many are open at once, the
//! request head read under a deadline and a size cap, and the body read only when the handler
//! asks for it, with a cap (an oversized `Content-Length` is refused before any byte of the body
//! is read; a chunked body is counted as it arrives). A client that sends slowly holds one
//! connection slot until its deadline, never the API.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How much a client may take of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more are answered 503 at once.
    pub max_connections: usize,
    /// The request line and headers must arrive within this.
    pub head_deadline: Duration,
    /// The body must arrive within this.
    pub body_deadline: Duration,
    /// No read may wait longer than this for the next bytes.
    pub idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 8,
            head_deadline: Duration::from_secs(10),
            body_deadline: Duration::from_secs(300),
            idle: Duration::from_secs(10),
        }
    }
}

/// The request line and headers may not exceed this.
const MAX_HEAD: u64 = 16 * 1024;

/// An answer's body: JSON (the API's answers and its errors), or text of a given media type
/// (`GET /metrics`).
#[derive(Debug)]
pub enum Body {
    Json(serde_json::Value),
    Text {
        content_type: &'static str,
        text: String,
    },
    /// A page or asset of the web UI: bytes with their own headers (a cookie, a redirect, the
    /// content security policy).
    Page {
        content_type: &'static str,
        bytes: std::borrow::Cow<'static, [u8]>,
        headers: Vec<(&'static str, String)>,
    },
}

impl From<serde_json::Value> for Body {
    fn from(v: serde_json::Value) -> Body {
        Body::Json(v)
    }
}

/// A refusal: an HTTP status and a message for the client.
#[derive(Debug)]
pub struct HttpError {
    pub status: u16,
    pub message: String,
}

impl HttpError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
}

/// Reads from the socket with a deadline for the whole of what it reads (the socket's read
/// timeout is set to the time left before each read, and never above `idle`).
struct DeadlineReader {
    stream: TcpStream,
    deadline: Instant,
    idle: Duration,
}

impl Read for DeadlineReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        self.stream.set_read_timeout(Some(left.min(self.idle)))?;
        self.stream.read(buf)
    }
}

/// One request: its line and headers, and its body still on the connection.
pub struct Request {
    pub method: String,
    pub target: String,
    headers: Vec<(String, String)>,
    /// The address the client connected to (the listener's, or with 0.0.0.0 the interface's).
    pub local: SocketAddr,
    reader: BufReader<DeadlineReader>,
    limits: Limits,
}

impl Request {
    /// The values of header `name` (case-insensitive).
    pub fn headers<'a, 'b>(&'a self, name: &'b str) -> impl Iterator<Item = &'a str> + use<'a, 'b> {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers(name).next()
    }

    /// Reads the body, refusing one of more than `max` bytes (413) without reading past `max`.
    pub fn read_body(&mut self, max: u64) -> Result<Vec<u8>, HttpError> {
        let chunked = match self.header("Transfer-Encoding") {
            None => false,
            Some(te) if te.trim().eq_ignore_ascii_case("chunked") => true,
            Some(_) => return Err(HttpError::new(501, "only Transfer-Encoding: chunked is supported")),
        };
        let length = match self.header("Content-Length") {
            None => None,
            Some(_) if chunked => {
                return Err(HttpError::new(400, "a request may not have both Content-Length and Transfer-Encoding"))
            }
            Some(v) => {
                Some(v.trim().parse::<u64>().map_err(|_| HttpError::new(400, "Content-Length is not a number"))?)
            }
        };
        if length.is_some_and(|n| n > max) {
            return Err(too_large(max));
        }
        self.reader.get_mut().deadline = Instant::now() + self.limits.body_deadline;
        if self.header("Expect").is_some_and(|e| e.trim().eq_ignore_ascii_case("100-continue")) {
            let s = &mut self.reader.get_mut().stream;
            s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").map_err(|e| HttpError::new(400, e.to_string()))?;
        }
        let read_err = |e: io::Error| match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                HttpError::new(408, "the request body did not arrive in time")
            }
            _ => HttpError::new(400, format!("reading the request body: {e}")),
        };
        let mut body = Vec::new();
        if !chunked {
            let n = length.unwrap_or(0);
            (&mut self.reader).take(n).read_to_end(&mut body).map_err(read_err)?;
            if (body.len() as u64) < n {
                return Err(HttpError::new(400, "the connection closed before the whole body arrived"));
            }
            return Ok(body);
        }
        loop {
            let mut line = Vec::new();
            (&mut self.reader).take(1024).read_until(b'\n', &mut line).map_err(read_err)?;
            let text = std::str::from_utf8(&line).unwrap_or("").trim_end();
            let size = text.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size, 16).map_err(|_| HttpError::new(400, "a malformed chunk size"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    let mut t = Vec::new();
                    (&mut self.reader).take(MAX_HEAD).read_until(b'\n', &mut t).map_err(read_err)?;
                    if t.is_empty() || t == b"\r\n" || t == b"\n" {
                        return Ok(body);
                    }
                }
            }
            if body.len() as u64 + size > max {
                return Err(too_large(max));
            }
            let before = body.len();
            (&mut self.reader).take(size).read_to_end(&mut body).map_err(read_err)?;
            if ((body.len() - before) as u64) < size {
                return Err(HttpError::new(400, "the connection closed inside a chunk"));
            }
            let mut crlf = Vec::new();
            (&mut self.reader).take(2).read_until(b'\n', &mut crlf).map_err(read_err)?;
        }
    }
}

fn too_large(max: u64) -> HttpError {
    HttpError::new(
        413,
        format!("the upload is larger than the admin API takes ({max} bytes); raise [admin].max_upload if the component is really this big"),
    )
}

/// Serves `listener` on a thread: each connection on its own thread (at most
/// `limits.max_connections`), `handle` answering its one request with a status and a body.
pub fn serve<H>(listener: TcpListener, limits: Limits, handle: H) -> io::Result<()>
where
    H: Fn(&mut Request) -> (u16, Body) + Send + Sync + 'static,
{
    let handle = Arc::new(handle);
    let open = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new().name("weir-admin".into()).spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut stream) = conn else {
                // Out of file descriptors, say: do not spin.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            if open.fetch_add(1, Ordering::SeqCst) >= limits.max_connections {
                open.fetch_sub(1, Ordering::SeqCst);
                let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                let body = serde_json::json!({ "error": "too many connections to the admin API; retry shortly" });
                let _ = respond(&mut stream, 503, body.into());
                continue;
            }
            let (handle, mine) = (handle.clone(), open.clone());
            let spawned = std::thread::Builder::new().name("weir-admin-conn".into()).spawn(move || {
                connection(stream, limits, &*handle);
                mine.fetch_sub(1, Ordering::SeqCst);
            });
            if spawned.is_err() {
                open.fetch_sub(1, Ordering::SeqCst);
            }
        }
    })?;
    Ok(())
}

fn connection(stream: TcpStream, limits: Limits, handle: &dyn Fn(&mut Request) -> (u16, Body)) {
    let _ = stream.set_write_timeout(Some(limits.idle));
    let Ok(local) = stream.local_addr() else { return };
    let Ok(mut out) = stream.try_clone() else { return };
    let reader = DeadlineReader { stream, deadline: Instant::now() + limits.head_deadline, idle: limits.idle };
    let mut reader = BufReader::new(reader);
    let (status, body) = match read_head(&mut reader) {
        Err(e) => (e.status, serde_json::json!({ "error": e.message }).into()),
        Ok((method, target, headers)) => {
            let mut req = Request { method, target, headers, local, reader, limits };
            handle(&mut req)
        }
    };
    let _ = respond(&mut out, status, body);
    // Let the client read the answer before the socket closes on a body it may still be sending.
    let _ = out.shutdown(std::net::Shutdown::Write);
    let _ = out.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = io::copy(&mut (&mut out).take(1 << 20), &mut io::sink());
}

type Head = (String, String, Vec<(String, String)>);

fn read_head(reader: &mut BufReader<DeadlineReader>) -> Result<Head, HttpError> {
    let mut budget = MAX_HEAD;
    let mut line = || -> Result<String, HttpError> {
        let mut buf = Vec::new();
        (&mut *reader).take(budget).read_until(b'\n', &mut buf).map_err(|e| match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                HttpError::new(408, "the request head did not arrive in time")
            }
            _ => HttpError::new(400, format!("reading the request: {e}")),
        })?;
        budget -= buf.len() as u64;
        if !buf.ends_with(b"\n") {
            return Err(if budget == 0 {
                HttpError::new(431, "the request head is too large")
            } else {
                HttpError::new(400, "the request ended early")
            });
        }
        String::from_utf8(buf)
            .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|_| HttpError::new(400, "the request head is not UTF-8"))
    };
    let request_line = line()?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::new(400, "a malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::new(505, "only HTTP/1.x is supported"));
    }
    let (method, target) = (method.to_string(), target.to_string());
    let mut headers = Vec::new();
    loop {
        let l = line()?;
        if l.is_empty() {
            return Ok((method, target, headers));
        }
        let (name, value) = l.split_once(':').ok_or_else(|| HttpError::new(400, "a malformed header line"))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        303 => "See Other",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

fn respond(stream: &mut TcpStream, status: u16, body: Body) -> io::Result<()> {
    let (content_type, body, headers) = match body {
        Body::Json(v) => ("application/json", v.to_string().into_bytes().into(), Vec::new()),
        Body::Text { content_type, text } => (content_type, text.into_bytes().into(), Vec::new()),
        Body::Page { content_type, bytes, headers } => (content_type, bytes, headers),
    };
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let bytes: &[u8] = &body;
    stream.write_all(bytes)?;
    stream.flush()
}
