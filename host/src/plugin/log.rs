//! A plugin's log: what it writes to stdout and stderr goes to the job's log (weir's stderr),
//! line by line, prefixed with the plugin and the batch, so a `println!` or a Python traceback is
//! seen instead of discarded. A chatty plugin cannot flood the log or the host's memory:
//! - at most [`LogLimits::buffer_bytes`] are held per call (more is dropped and counted);
//! - at most [`LogLimits::lines_per_batch`] lines per batch are printed, each cut at
//!   [`LogLimits::line_bytes`]; the rest are counted, and one line per batch says how many were
//!   dropped and which setting raises the limit;
//! - control characters are shown escaped, so a plugin cannot drive the terminal.
//!
//! Writes never block and never fail: a plugin that logs past its limits keeps running.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

pub use crate::config::LogLimits;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// What the plugin wrote and has not been printed yet; shared by its stdout and stderr.
#[derive(Default)]
struct Buffer {
    bytes: Vec<u8>,
    cap: usize,
    dropped_bytes: u64,
}

/// The plugin side: a WASI stdout/stderr writing into the shared buffer.
#[derive(Clone)]
pub struct PluginLog {
    buffer: Arc<Mutex<Buffer>>,
}

impl PluginLog {
    pub fn new(limits: &LogLimits) -> PluginLog {
        PluginLog { buffer: Arc::new(Mutex::new(Buffer { cap: limits.buffer_bytes, ..Buffer::default() })) }
    }

    fn write(&self, bytes: &[u8]) {
        let mut b = self.buffer.lock().expect("the log buffer is never poisoned: no code panics holding it");
        let room = b.cap.saturating_sub(b.bytes.len());
        let keep = bytes.len().min(room);
        b.bytes.extend_from_slice(&bytes[..keep]);
        b.dropped_bytes += (bytes.len() - keep) as u64;
    }

    /// Takes the complete lines written so far (and, with `all`, the unfinished last one) and
    /// the count of bytes dropped because the buffer was full.
    fn take(&self, all: bool) -> (Vec<u8>, u64) {
        let mut b = self.buffer.lock().expect("the log buffer is never poisoned: no code panics holding it");
        let end = if all || b.bytes.len() >= b.cap {
            b.bytes.len()
        } else {
            b.bytes.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1)
        };
        let taken = b.bytes.drain(..end).collect();
        (taken, std::mem::take(&mut b.dropped_bytes))
    }
}

impl IsTerminal for PluginLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PluginLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for PluginLog {
    async fn ready(&mut self) {}
}

impl OutputStream for PluginLog {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        PluginLog::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always room: what does not fit in the buffer is dropped and counted.
        Ok(64 << 10)
    }
}

impl tokio::io::AsyncWrite for PluginLog {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        PluginLog::write(&self, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The host side: prints what a plugin logged, within the per-batch limits.
pub struct LogPrinter {
    /// `plugin enrich.wasm`, or with the operator: `plugin enrich.wasm (operator[0])`.
    label: String,
    limits: LogLimits,
    batch: Option<Option<u64>>,
    printed: u32,
    dropped_lines: u64,
    dropped_bytes: u64,
}

impl LogPrinter {
    pub fn new(label: String, limits: LogLimits) -> LogPrinter {
        LogPrinter { label, limits, batch: None, printed: 0, dropped_lines: 0, dropped_bytes: 0 }
    }

    /// Prints what `log` holds after a call of batch `batch` (`None`: at start); `all` takes an
    /// unfinished last line too (after a trap, or at the end of a batch).
    pub fn drain(&mut self, log: &PluginLog, batch: Option<u64>, all: bool) {
        let lines = self.collect(log, batch, all);
        if !lines.is_empty() {
            let mut err = std::io::stderr().lock();
            for l in lines {
                let _ = std::io::Write::write_all(&mut err, l.as_bytes());
            }
        }
    }

    /// The lines to print (each ending in '\n'), with the limits applied.
    pub fn collect(&mut self, log: &PluginLog, batch: Option<u64>, all: bool) -> Vec<String> {
        let mut out = Vec::new();
        if self.batch != Some(batch) {
            out.extend(self.summary());
            self.batch = Some(batch);
            self.printed = 0;
        }
        let (bytes, dropped_bytes) = log.take(all);
        self.dropped_bytes += dropped_bytes;
        let at = match batch {
            Some(b) => format!("batch {b}"),
            None => "at start".to_string(),
        };
        for line in bytes.split(|&c| c == b'\n') {
            if line.is_empty() {
                continue;
            }
            if self.printed >= self.limits.lines_per_batch {
                self.dropped_lines += 1;
                continue;
            }
            self.printed += 1;
            out.push(format!("{} {at}: {}\n", self.label, printable(line, self.limits.line_bytes)));
        }
        out
    }

    /// The line saying what was dropped in the batch that just ended, if anything was.
    pub fn summary(&mut self) -> Option<String> {
        if self.dropped_lines == 0 && self.dropped_bytes == 0 {
            return None;
        }
        let at = match self.batch.flatten() {
            Some(b) => format!("batch {b}"),
            None => "at start".to_string(),
        };
        let line = format!(
            "{} {at}: log limit reached: {} more lines and {} bytes dropped (a plugin logs at most {} lines of {} bytes per batch; raise max_log_lines to see more)\n",
            self.label, self.dropped_lines, self.dropped_bytes, self.limits.lines_per_batch, self.limits.line_bytes
        );
        self.dropped_lines = 0;
        self.dropped_bytes = 0;
        Some(line)
    }
}

/// A line as shown: invalid UTF-8 replaced, control characters escaped, cut at `max` bytes.
fn printable(line: &[u8], max: usize) -> String {
    let cut = line.len() > max;
    let text = String::from_utf8_lossy(&line[..line.len().min(max)]);
    let mut s: String = text
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() && c != '\t' { c.escape_default().collect() } else { vec![c] };
            escaped
        })
        .collect();
    if cut {
        s.push_str(&format!(" [cut: {} bytes]", line.len()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(lines: u32) -> LogLimits {
        LogLimits { lines_per_batch: lines, line_bytes: 16, buffer_bytes: 256 }
    }

    #[test]
    fn lines_are_labelled_with_plugin_and_batch_and_unfinished_lines_wait() {
        let l = limits(10);
        let log = PluginLog::new(&l);
        let mut p = LogPrinter::new("plugin x.wasm".into(), l);
        log.write(b"hello\nwor");
        assert_eq!(p.collect(&log, Some(3), false), vec!["plugin x.wasm batch 3: hello\n"]);
        log.write(b"ld\n");
        assert_eq!(p.collect(&log, Some(3), false), vec!["plugin x.wasm batch 3: world\n"]);
        log.write(b"tail");
        assert_eq!(p.collect(&log, None, true), vec!["plugin x.wasm at start: tail\n"]);
    }

    #[test]
    fn a_chatty_plugin_is_capped_per_batch_with_one_summary() {
        let l = limits(2);
        let log = PluginLog::new(&l);
        let mut p = LogPrinter::new("plugin x.wasm".into(), l);
        for i in 0..5 {
            log.write(format!("line {i}\n").as_bytes());
        }
        let first = p.collect(&log, Some(1), false);
        assert_eq!(first, vec!["plugin x.wasm batch 1: line 0\n", "plugin x.wasm batch 1: line 1\n"]);
        // The next batch starts with the summary of the last one, and prints again.
        log.write(b"again\n");
        let next = p.collect(&log, Some(2), false);
        assert!(next[0].contains("batch 1: log limit reached: 3 more lines"), "{next:?}");
        assert!(next[0].contains("max_log_lines"), "{next:?}");
        assert_eq!(next[1], "plugin x.wasm batch 2: again\n");
    }

    #[test]
    fn the_buffer_is_bounded_and_long_lines_are_cut_and_control_characters_escaped() {
        let l = limits(100);
        let log = PluginLog::new(&l);
        log.write(&[b'a'; 1000]);
        let (held, dropped) = log.take(true);
        assert_eq!((held.len(), dropped), (256, 744));
        let mut p = LogPrinter::new("plugin x.wasm".into(), l);
        log.write(b"\x1b[2Jclear\n");
        let out = p.collect(&log, Some(0), false);
        assert_eq!(out, vec!["plugin x.wasm batch 0: \\u{1b}[2Jclear\n"]);
        log.write(b"0123456789abcdefXYZ\n");
        let out = p.collect(&log, Some(0), false);
        assert_eq!(out, vec!["plugin x.wasm batch 0: 0123456789abcdef [cut: 19 bytes]\n"]);
    }
}
