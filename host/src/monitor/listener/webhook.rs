//! One event POSTed to a plain-http URL: `Content-Type: application/json`, the event as the
//! body, `Connection: close`. A 2xx answer is a delivery; a refused or timed-out connection,
//! a 5xx, 408 or 429 is worth another attempt; other answers are not (weir follows no
//! redirects). Header values are written to the socket and nowhere else.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::config::listener::Webhook;

use super::{Delivery, Failure};

/// The longest answer head read: the status line is all weir looks at.
const MAX_HEAD: usize = 8 * 1024;

/// POSTs `d` to `w`, all within `timeout` (connecting, sending, the answer's status line).
pub fn post(w: &Webhook, d: &Delivery, timeout: Duration) -> Result<(), Failure> {
    let deadline = Instant::now() + timeout;
    let left = || deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero());
    let timed_out = || Failure::retry(format!("no answer within {}", crate::plan::describe::duration(timeout)));
    let host = w.host.trim_start_matches('[').trim_end_matches(']');
    let addrs =
        (host, w.port).to_socket_addrs().map_err(|e| Failure::retry(format!("cannot resolve {}: {e}", w.host)))?;
    let mut stream = None;
    let mut last = None;
    for addr in addrs {
        let Some(budget) = left() else { break };
        match TcpStream::connect_timeout(&addr, budget) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(format!("cannot connect to {addr}: {e}")),
        }
    }
    let mut stream = stream.ok_or_else(|| match last {
        Some(m) => Failure::retry(m),
        None => timed_out(),
    })?;
    let host_header = if w.port == 80 { w.host.clone() } else { format!("{}:{}", w.host, w.port) };
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: weir/{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        w.path,
        env!("CARGO_PKG_VERSION"),
        d.body.len()
    );
    for (name, value) in &w.headers {
        head.push_str(&format!("{name}: {}\r\n", value.expose()));
    }
    head.push_str("\r\n");
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => timed_out(),
        _ => Failure::retry(format!("connection to {}:{} failed: {e}", w.host, w.port)),
    };
    stream.set_write_timeout(Some(left().ok_or_else(timed_out)?)).map_err(io)?;
    stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&d.body)).map_err(io)?;
    // The status line: read until its end, each read bounded by the time left.
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.contains(&b'\n') {
        if answer.len() > MAX_HEAD {
            return Err(Failure::retry("the answer's first line is too long; is this an HTTP server?"));
        }
        stream.set_read_timeout(Some(left().ok_or_else(timed_out)?)).map_err(io)?;
        match stream.read(&mut buf).map_err(io)? {
            0 => break,
            n => answer.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&answer);
    let line = line.lines().next().unwrap_or("").trim();
    let status = line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| {
            Failure::retry(if line.is_empty() {
                "the connection closed without an answer".to_string()
            } else {
                format!("not an HTTP answer: {:?}", line.chars().take(80).collect::<String>())
            })
        })?;
    match status {
        200..=299 => Ok(()),
        408 | 429 | 500..=599 => Err(Failure::retry(format!("answered {}", answer_text(line)))),
        _ => Err(Failure { message: format!("answered {} (not retried)", answer_text(line)), retry: false }),
    }
}

/// `500 Internal Server Error` from `HTTP/1.1 500 Internal Server Error`.
fn answer_text(line: &str) -> String {
    line.split_once(' ').map_or(line, |(_, rest)| rest).chars().take(80).collect()
}
