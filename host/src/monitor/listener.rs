//! `[[listener]]`: the query's events (Spark's `StreamingQueryListener`: started, progress,
//! idle, terminated) delivered to a webhook or a command, each listener on its own thread fed
//! by a bounded queue. The engine's thread only queues: a slow or dead receiver never slows or
//! stops the query. When the queue is full the oldest event is dropped and counted; an event
//! that still fails after its retries is counted as failed. Both show in the query's snapshot
//! (`listeners`) and in `weir status`. At the end of the query each listener gets its timeout
//! to deliver what is still queued, the terminated event last, before the process exits.

/// One event run through a command, no shell, the JSON on its stdin.
pub mod command;
/// One event POSTed to a plain-http URL.
pub mod webhook;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::listener::{ListenerConfig, ListenerEvent, ListenerTarget};

use super::query::{ObserverStats, QueryEvent, QueryHandle, QueryObserver};

/// The wait after the first failed attempt; it doubles after each further one.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// One event as a listener sends it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Spark's event class (`QueryProgressEvent`).
    pub kind: &'static str,
    /// `QueryEvent::to_json()`, serialised once for all listeners.
    pub body: Arc<[u8]>,
}

/// Why an attempt failed, and whether another attempt can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub retry: bool,
}

impl Failure {
    pub fn retry(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), retry: true }
    }
}

fn event_of(e: &QueryEvent) -> ListenerEvent {
    match e {
        QueryEvent::Started(_) => ListenerEvent::Started,
        QueryEvent::Progress(_) => ListenerEvent::Progress,
        QueryEvent::Idle(_) => ListenerEvent::Idle,
        QueryEvent::Terminated(_) => ListenerEvent::Terminated,
    }
}

#[derive(Default)]
struct QueueState {
    events: VecDeque<Delivery>,
    /// No more events come; deliver what is queued before `deadline`.
    closed: bool,
    deadline: Option<Instant>,
    /// The worker has ended.
    done: bool,
}

/// A listener's queue and counters, shared by the engine's thread (push), the listener's
/// thread (deliver) and the query's snapshot (read).
pub struct Shared {
    kind: &'static str,
    events: Vec<ListenerEvent>,
    max_queue: usize,
    state: Mutex<QueueState>,
    changed: Condvar,
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    fn new(config: &ListenerConfig) -> Shared {
        Shared {
            kind: match config.target {
                ListenerTarget::Webhook(_) => "webhook",
                ListenerTarget::Command(_) => "command",
            },
            events: config.events.clone(),
            max_queue: config.max_queue,
            state: Mutex::default(),
            changed: Condvar::new(),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// Queues `d`; when full the oldest undelivered event makes room and is counted as dropped.
    /// Never waits for the listener's thread beyond a short lock.
    fn push(&self, d: Delivery) {
        let mut s = self.state.lock().expect("not poisoned");
        if s.closed {
            return;
        }
        while s.events.len() >= self.max_queue {
            s.events.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        s.events.push_back(d);
        self.changed.notify_all();
    }

    /// The next event to deliver, waiting for one; none once closed and empty, or past the
    /// deadline (what is left is counted as dropped).
    fn next(&self) -> Option<Delivery> {
        let mut s = self.state.lock().expect("not poisoned");
        loop {
            if s.deadline.is_some_and(|d| Instant::now() >= d) {
                self.dropped.fetch_add(s.events.len() as u64, Ordering::Relaxed);
                s.events.clear();
                return None;
            }
            if let Some(d) = s.events.pop_front() {
                return Some(d);
            }
            if s.closed {
                return None;
            }
            s = self.changed.wait(s).expect("not poisoned");
        }
    }

    /// The end of the query's time to deliver, once it is closed.
    fn deadline(&self) -> Option<Instant> {
        self.state.lock().expect("not poisoned").deadline
    }

    /// Waits `d` before the next attempt, or less when the query closes the listener meanwhile
    /// and its deadline comes first.
    fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut s = self.state.lock().expect("not poisoned");
        loop {
            let end = s.deadline.map_or(until, |dl| dl.min(until));
            let now = Instant::now();
            if now >= end {
                return;
            }
            s = self.changed.wait_timeout(s, end - now).expect("not poisoned").0;
        }
    }

    fn close(&self, deadline: Instant) {
        let mut s = self.state.lock().expect("not poisoned");
        s.closed = true;
        s.deadline = Some(deadline);
        self.changed.notify_all();
    }

    fn finish(&self) {
        self.state.lock().expect("not poisoned").done = true;
        self.changed.notify_all();
    }

    /// Waits until the worker ended or `deadline` passed; whether it ended.
    fn wait_done(&self, deadline: Instant) -> bool {
        let mut s = self.state.lock().expect("not poisoned");
        while !s.done {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            s = self.changed.wait_timeout(s, deadline - now).expect("not poisoned").0;
        }
        true
    }

    fn queued(&self) -> usize {
        self.state.lock().expect("not poisoned").events.len()
    }
}

impl ObserverStats for Shared {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": self.kind,
            "events": self.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
            "delivered": self.delivered.load(Ordering::Relaxed),
            "failed": self.failed.load(Ordering::Relaxed),
            "dropped": self.dropped.load(Ordering::Relaxed),
            "queued": self.queued(),
            "lastError": *self.last_error.lock().expect("not poisoned"),
        })
    }
}

/// Where a listener sends: one attempt per call, within `timeout`.
trait Target: Send {
    fn attempt(&mut self, d: &Delivery, timeout: Duration) -> Result<(), Failure>;
}

struct Webhook(crate::config::listener::Webhook);

impl Target for Webhook {
    fn attempt(&mut self, d: &Delivery, timeout: Duration) -> Result<(), Failure> {
        webhook::post(&self.0, d, timeout)
    }
}

struct Command(Vec<String>);

impl Target for Command {
    fn attempt(&mut self, d: &Delivery, timeout: Duration) -> Result<(), Failure> {
        command::run(&self.0, d, timeout)
    }
}

/// The listener's thread: delivers each event in order, with retries, until closed.
fn work(label: &str, shared: &Shared, target: &mut dyn Target, retries: u32, timeout: Duration) {
    let mut failing = false;
    while let Some(d) = shared.next() {
        let mut attempt = 0;
        let result = loop {
            // Past the query's end, an attempt gets only the time left.
            let budget = match shared.deadline() {
                Some(dl) => match dl.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(timeout),
                    _ => {
                        break Err(Failure {
                            message: "the query ended and its time to deliver ran out".into(),
                            retry: false,
                        })
                    }
                },
                None => timeout,
            };
            match target.attempt(&d, budget) {
                Ok(()) => break Ok(()),
                Err(f) if f.retry && attempt < retries => {
                    shared.pause(FIRST_BACKOFF * 2u32.pow(attempt));
                    attempt += 1;
                }
                Err(f) => break Err(f),
            }
        };
        match result {
            Ok(()) => {
                shared.delivered.fetch_add(1, Ordering::Relaxed);
                if failing {
                    eprintln!("weir: {label}: delivering again");
                    failing = false;
                }
            }
            Err(f) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                let attempts = if attempt == 0 { "1 attempt".to_string() } else { format!("{} attempts", attempt + 1) };
                let message = format!("{}: {} (after {attempts})", d.kind, f.message);
                if !failing {
                    eprintln!("weir: {label}: {message}; the query goes on, failures are counted in `weir status`");
                    failing = true;
                }
                *shared.last_error.lock().expect("not poisoned") = Some(message);
            }
        }
    }
    shared.finish();
}

/// One running listener.
struct Running {
    label: String,
    timeout: Duration,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// The observer the query tells: serialises each event once, queues it for every listener
/// that takes it.
struct Fanout(Vec<Arc<Shared>>);

impl QueryObserver for Fanout {
    fn on_event(&mut self, event: &QueryEvent) {
        let which = event_of(event);
        let mut body: Option<Arc<[u8]>> = None;
        for l in self.0.iter().filter(|l| l.events.contains(&which)) {
            let body = body.get_or_insert_with(|| {
                serde_json::to_vec(&event.to_json()).expect("a JSON value always serialises").into()
            });
            l.push(Delivery { kind: event.kind(), body: body.clone() });
        }
    }
}

/// The job's listeners, started: the engine finishes them after the terminated event.
pub struct Listeners {
    running: Vec<Running>,
}

impl Listeners {
    /// Starts a thread per `[[listener]]` and has the query tell them its events; their counters
    /// show in the query's snapshot under their labels.
    pub fn start(configs: &[ListenerConfig], query: &QueryHandle) -> anyhow::Result<Listeners> {
        let mut running = Vec::with_capacity(configs.len());
        for (i, c) in configs.iter().enumerate() {
            let shared = Arc::new(Shared::new(c));
            let mut target: Box<dyn Target> = match &c.target {
                ListenerTarget::Webhook(w) => Box::new(Webhook(w.clone())),
                ListenerTarget::Command(argv) => Box::new(Command(argv.clone())),
            };
            let label = c.label();
            let (s, l, retries, timeout) = (shared.clone(), label.clone(), c.retries, c.timeout);
            let thread = std::thread::Builder::new()
                .name(format!("weir-listener-{i}"))
                .spawn(move || work(&l, &s, target.as_mut(), retries, timeout))
                .map_err(|e| anyhow::anyhow!("starting {label}: {e}"))?;
            query.add_stats(label.clone(), shared.clone());
            running.push(Running { label, timeout, shared, thread: Some(thread) });
        }
        if !running.is_empty() {
            query.observe(Box::new(Fanout(running.iter().map(|r| r.shared.clone()).collect())));
        }
        Ok(Listeners { running })
    }

    /// No more events: each listener has its timeout to deliver what is queued (the terminated
    /// event last), all at once. A listener still busy after it is left behind (the process
    /// is ending) and what it had not delivered is reported.
    pub fn finish(mut self) {
        let now = Instant::now();
        for r in &self.running {
            r.shared.close(now + r.timeout);
        }
        for r in &mut self.running {
            // A little beyond the deadline: an attempt cut to the time left returns by then.
            let ended = r.shared.wait_done(now + r.timeout + Duration::from_millis(100));
            if ended {
                if let Some(t) = r.thread.take() {
                    let _ = t.join();
                }
            }
            let stats = r.shared.to_json();
            let (failed, dropped, queued) =
                (stats["failed"].as_u64(), stats["dropped"].as_u64(), stats["queued"].as_u64());
            if failed != Some(0) || dropped != Some(0) || queued != Some(0) || !ended {
                eprintln!(
                    "weir: {}: {} events delivered, {} failed, {} dropped{}{}",
                    r.label,
                    stats["delivered"],
                    stats["failed"],
                    stats["dropped"],
                    if ended {
                        String::new()
                    } else {
                        format!(", {} still queued when its time ran out", stats["queued"])
                    },
                    stats["lastError"].as_str().map(|e| format!("; last error: {e}")).unwrap_or_default(),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::listener::{Secret, Webhook as WebhookConfig};
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    fn config(target: ListenerTarget, max_queue: usize) -> ListenerConfig {
        ListenerConfig {
            field: "listener[0]".into(),
            target,
            events: ListenerEvent::ALL.to_vec(),
            retries: 3,
            timeout: Duration::from_secs(5),
            max_queue,
        }
    }

    fn webhook(port: u16, headers: Vec<(String, Secret)>) -> ListenerTarget {
        ListenerTarget::Webhook(WebhookConfig {
            url: format!("http://127.0.0.1:{port}/hooks/weir"),
            host: "127.0.0.1".into(),
            port,
            path: "/hooks/weir".into(),
            headers,
        })
    }

    fn delivery(n: u64) -> Delivery {
        Delivery {
            kind: "QueryProgressEvent",
            body: serde_json::to_vec(&serde_json::json!({ "batchId": n })).unwrap().into(),
        }
    }

    /// Reads one request: its head and its body (by Content-Length).
    fn read_request(stream: &mut std::net::TcpStream) -> (String, String) {
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        let mut len = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        (head, String::from_utf8(body).unwrap())
    }

    #[test]
    fn a_full_queue_drops_the_oldest_event_and_counts_it() {
        let shared = Shared::new(&config(ListenerTarget::Command(vec!["true".into()]), 2));
        for n in 0..5 {
            shared.push(delivery(n));
        }
        assert_eq!(shared.dropped.load(Ordering::Relaxed), 3);
        let left: Vec<_> = std::iter::from_fn(|| {
            let mut s = shared.state.lock().unwrap();
            s.events.pop_front()
        })
        .map(|d| String::from_utf8(d.body.to_vec()).unwrap())
        .collect();
        assert_eq!(left, ["{\"batchId\":3}", "{\"batchId\":4}"], "the newest stay");
        assert_eq!(shared.to_json()["dropped"], 3);
    }

    #[test]
    fn a_failed_post_is_retried_after_a_backoff_and_then_delivered() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let headers =
            vec![("Authorization".to_string(), serde_json::from_str::<Secret>("\"Bearer tok-SECRET\"").unwrap())];
        let receiver = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for (i, answer) in ["500 Internal Server Error", "200 OK"].iter().enumerate() {
                let (mut c, _) = server.accept().unwrap();
                let at = Instant::now();
                let (head, body) = read_request(&mut c);
                write!(c, "HTTP/1.1 {answer}\r\nContent-Length: 0\r\n\r\n").unwrap();
                seen.push((i, at, head, body));
            }
            seen
        });
        let query = QueryHandle::new(Default::default());
        let listeners = Listeners::start(&[config(webhook(port, headers), 10)], &query).unwrap();
        query.progress(serde_json::json!({ "batchId": 7 }));
        let seen = receiver.join().unwrap();
        listeners.finish();
        let (first, second) = (&seen[0], &seen[1]);
        assert!(second.1.duration_since(first.1) >= FIRST_BACKOFF, "the second attempt waits the backoff");
        for (_, _, head, body) in &seen {
            assert!(head.starts_with("POST /hooks/weir HTTP/1.1\r\n"), "{head}");
            assert!(head.contains("Content-Type: application/json\r\n"), "{head}");
            assert!(head.contains("Authorization: Bearer tok-SECRET\r\n"), "{head}");
            let event: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(event, serde_json::json!({ "event": "QueryProgressEvent", "progress": { "batchId": 7 } }));
        }
        let snap = query.snapshot();
        let stats = &snap["listeners"][0];
        assert_eq!(stats["name"], format!("listener[0] http://127.0.0.1:{port}/hooks/weir"));
        assert_eq!((stats["delivered"].as_u64(), stats["failed"].as_u64()), (Some(1), Some(0)), "{stats}");
        assert!(!snap.to_string().contains("tok-SECRET"));
    }

    #[test]
    fn a_receiver_that_keeps_failing_is_counted_with_its_last_error_and_client_errors_are_not_retried() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let receiver = std::thread::spawn(move || {
            let mut requests = 0;
            // Two events: the first answered 503 to both attempts, the second 404 once.
            for answer in ["503 Service Unavailable", "503 Service Unavailable", "404 Not Found"] {
                let (mut c, _) = server.accept().unwrap();
                read_request(&mut c);
                write!(c, "HTTP/1.1 {answer}\r\nContent-Length: 0\r\n\r\n").unwrap();
                requests += 1;
            }
            requests
        });
        let query = QueryHandle::new(Default::default());
        let mut c = config(webhook(port, Vec::new()), 10);
        c.retries = 1;
        let listeners = Listeners::start(&[c], &query).unwrap();
        query.progress(serde_json::json!({ "batchId": 0 }));
        query.progress(serde_json::json!({ "batchId": 1 }));
        assert_eq!(receiver.join().unwrap(), 3);
        listeners.finish();
        let stats = &query.snapshot()["listeners"][0];
        assert_eq!((stats["delivered"].as_u64(), stats["failed"].as_u64()), (Some(0), Some(2)), "{stats}");
        let last = stats["lastError"].as_str().unwrap();
        assert!(last.contains("404 Not Found") && last.contains("after 1 attempt)"), "{last}");
    }

    #[test]
    fn the_end_of_the_query_waits_for_the_queue_at_most_the_timeout() {
        // Accepts and never answers.
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let hold = std::thread::spawn(move || server.accept().map(|c| c.0));
        let query = QueryHandle::new(Default::default());
        let mut c = config(webhook(port, Vec::new()), 10);
        c.timeout = Duration::from_millis(300);
        let listeners = Listeners::start(&[c], &query).unwrap();
        for n in 0..3 {
            query.progress(serde_json::json!({ "batchId": n }));
        }
        query.terminated(None);
        listeners.finish();
        let stats = &query.snapshot()["listeners"][0];
        assert_eq!(stats["delivered"], 0, "{stats}");
        let gone =
            stats["failed"].as_u64().unwrap() + stats["dropped"].as_u64().unwrap() + stats["queued"].as_u64().unwrap();
        assert_eq!(gone, 4, "every event is accounted for: {stats}");
        drop(hold);
    }

    #[test]
    fn only_the_events_asked_for_are_queued() {
        let query = QueryHandle::new(Default::default());
        let mut c = config(ListenerTarget::Command(vec!["true".into()]), 10);
        c.events = vec![ListenerEvent::Terminated];
        let listeners = Listeners::start(&[c], &query).unwrap();
        query.started("id", "run", "job", serde_json::json!({}));
        query.progress(serde_json::json!({ "batchId": 0 }));
        query.idle();
        query.terminated(Some("batch 0: boom".into()));
        listeners.finish();
        let stats = &query.snapshot()["listeners"][0];
        assert_eq!((stats["delivered"].as_u64(), stats["dropped"].as_u64()), (Some(1), Some(0)), "{stats}");
        assert_eq!(stats["events"], serde_json::json!(["terminated"]));
    }
}
