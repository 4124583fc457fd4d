//! A running query as its handle shows it (Spark's `StreamingQuery`): id, runId, name, whether
//! it is active, its status (`message`, `isDataAvailable`, `isTriggerActive`), the last and the
//! recent progress records, the exception that stopped it, and a graceful stop. The engine
//! updates it; the HTTP API, the listeners and the metrics read it. Observers (listeners,
//! metrics) are told of Spark's four events: started, progress, idle, terminated.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// How many progress records `recentProgress` keeps (Spark's
/// `spark.sql.streaming.numRecentProgressUpdates` default).
pub const RECENT_PROGRESS: usize = 100;

/// One of Spark's `StreamingQueryListener` events, as JSON in Spark's shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryEvent {
    /// `QueryStartedEvent`: id, runId, name, timestamp.
    Started(serde_json::Value),
    /// `QueryProgressEvent`: the progress record.
    Progress(serde_json::Value),
    /// `QueryIdleEvent`: id, runId, timestamp.
    Idle(serde_json::Value),
    /// `QueryTerminatedEvent`: id, runId, exception (null when it stopped cleanly).
    Terminated(serde_json::Value),
}

impl QueryEvent {
    /// Spark's event class name.
    pub fn kind(&self) -> &'static str {
        match self {
            QueryEvent::Started(_) => "QueryStartedEvent",
            QueryEvent::Progress(_) => "QueryProgressEvent",
            QueryEvent::Idle(_) => "QueryIdleEvent",
            QueryEvent::Terminated(_) => "QueryTerminatedEvent",
        }
    }

    /// The event as one JSON object: `{"event": <kind>, ...fields}` (a progress event's record
    /// under `progress`, as Spark's `QueryProgressEvent.json`).
    pub fn to_json(&self) -> serde_json::Value {
        let (kind, body) = match self {
            QueryEvent::Progress(p) => (self.kind(), serde_json::json!({ "progress": p })),
            QueryEvent::Started(v) | QueryEvent::Idle(v) | QueryEvent::Terminated(v) => (self.kind(), v.clone()),
        };
        let mut out = serde_json::Map::new();
        out.insert("event".into(), kind.into());
        if let serde_json::Value::Object(m) = body {
            out.extend(m);
        }
        serde_json::Value::Object(out)
    }
}

/// Told of each event, on the engine's thread: must return at once (queue, never block).
pub trait QueryObserver: Send {
    fn on_event(&mut self, event: &QueryEvent);
}

/// Counters kept beside the query by one of its observers (a listener's deliveries, failures
/// and drops), read whenever the handle is shown.
pub trait ObserverStats: Send + Sync {
    fn to_json(&self) -> serde_json::Value;
}

#[derive(Debug, Clone, Default)]
struct State {
    id: String,
    run_id: String,
    name: String,
    started: String,
    active: bool,
    message: String,
    data_available: bool,
    trigger_active: bool,
    recent: VecDeque<serde_json::Value>,
    exception: Option<String>,
    /// Free-form facts for `weir status` and the UI: trigger, sources, sink, operators.
    info: serde_json::Value,
}

/// The handle shared by the engine (writer) and the API, listeners and metrics (readers).
#[derive(Clone)]
pub struct QueryHandle {
    state: Arc<Mutex<State>>,
    observers: Arc<Mutex<Vec<Box<dyn QueryObserver>>>>,
    /// Shown under `listeners` in [`QueryHandle::snapshot`], by name, in the order added.
    stats: Arc<Mutex<Vec<(String, Arc<dyn ObserverStats>)>>>,
    stop: Arc<AtomicBool>,
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl QueryHandle {
    /// A handle whose graceful stop sets `stop` (the engine's flag, checked between batches).
    pub fn new(stop: Arc<AtomicBool>) -> QueryHandle {
        QueryHandle { state: Arc::default(), observers: Arc::default(), stats: Arc::default(), stop }
    }

    /// Shows `stats` under `listeners` in every snapshot, as `{"name": name, ...stats}`.
    pub fn add_stats(&self, name: impl Into<String>, stats: Arc<dyn ObserverStats>) {
        self.stats.lock().expect("not poisoned").push((name.into(), stats));
    }

    pub fn observe(&self, observer: Box<dyn QueryObserver>) {
        self.observers.lock().expect("not poisoned").push(observer);
    }

    fn emit(&self, event: QueryEvent) {
        for o in self.observers.lock().expect("not poisoned").iter_mut() {
            o.on_event(&event);
        }
    }

    /// The query started (a run): Spark's `onQueryStarted`.
    pub fn started(&self, id: &str, run_id: &str, name: &str, info: serde_json::Value) {
        let ts = now();
        {
            let mut s = self.state.lock().expect("not poisoned");
            *s = State {
                id: id.into(),
                run_id: run_id.into(),
                name: name.into(),
                started: ts.clone(),
                active: true,
                message: "Initializing sources".into(),
                info,
                ..State::default()
            };
        }
        self.emit(QueryEvent::Started(serde_json::json!({
            "id": id, "runId": run_id, "name": name, "timestamp": ts,
        })));
    }

    /// What the query is doing now (Spark's `StreamingQueryStatus`).
    pub fn set_status(&self, message: impl Into<String>, data_available: bool, trigger_active: bool) {
        let mut s = self.state.lock().expect("not poisoned");
        s.message = message.into();
        s.data_available = data_available;
        s.trigger_active = trigger_active;
    }

    /// A batch ended with this progress record: Spark's `onQueryProgress`.
    pub fn progress(&self, record: serde_json::Value) {
        {
            let mut s = self.state.lock().expect("not poisoned");
            if s.recent.len() == RECENT_PROGRESS {
                s.recent.pop_front();
            }
            s.recent.push_back(record.clone());
        }
        self.emit(QueryEvent::Progress(record));
    }

    /// The query found nothing to do (Spark 3.5's `onQueryIdle`); told once per idle stretch.
    pub fn idle(&self) {
        let (id, run_id) = {
            let s = self.state.lock().expect("not poisoned");
            (s.id.clone(), s.run_id.clone())
        };
        self.emit(QueryEvent::Idle(serde_json::json!({ "id": id, "runId": run_id, "timestamp": now() })));
    }

    /// The query stopped, with the error that stopped it (none: a clean stop).
    pub fn terminated(&self, exception: Option<String>) {
        let (id, run_id) = {
            let mut s = self.state.lock().expect("not poisoned");
            s.active = false;
            s.trigger_active = false;
            s.data_available = false;
            s.message = match &exception {
                Some(_) => "Terminated with exception".into(),
                None => "Stopped".into(),
            };
            s.exception = exception.clone();
            (s.id.clone(), s.run_id.clone())
        };
        self.emit(QueryEvent::Terminated(serde_json::json!({
            "id": id, "runId": run_id, "exception": exception, "timestamp": now(),
        })));
    }

    /// Asks the query to stop after the batch in progress.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The handle as Spark's `StreamingQuery` shows it, with `status`, `lastProgress`.
    pub fn snapshot(&self) -> serde_json::Value {
        let listeners: Vec<serde_json::Value> = self
            .stats
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|(name, stats)| {
                let mut entry = serde_json::Map::new();
                entry.insert("name".into(), name.clone().into());
                if let serde_json::Value::Object(m) = stats.to_json() {
                    entry.extend(m);
                }
                serde_json::Value::Object(entry)
            })
            .collect();
        let s = self.state.lock().expect("not poisoned");
        serde_json::json!({
            "id": s.id,
            "runId": s.run_id,
            "name": s.name,
            "isActive": s.active,
            "startTime": s.started,
            "status": {
                "message": s.message,
                "isDataAvailable": s.data_available,
                "isTriggerActive": s.trigger_active,
            },
            "exception": s.exception,
            "lastProgress": s.recent.back(),
            "info": s.info,
            "listeners": listeners,
        })
    }

    /// The last progress records, oldest first (Spark's `recentProgress`).
    pub fn recent_progress(&self) -> Vec<serde_json::Value> {
        self.state.lock().expect("not poisoned").recent.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Record(Arc<Mutex<Vec<String>>>);

    impl QueryObserver for Record {
        fn on_event(&mut self, event: &QueryEvent) {
            self.0.lock().unwrap().push(event.kind().to_string());
        }
    }

    #[test]
    fn the_handle_keeps_status_recent_progress_and_the_exception_and_tells_observers() {
        let stop = Arc::new(AtomicBool::new(false));
        let q = QueryHandle::new(stop.clone());
        let seen = Arc::new(Mutex::new(Vec::new()));
        q.observe(Box::new(Record(seen.clone())));
        q.started("id-1", "run-1", "job", serde_json::json!({}));
        q.set_status("Processing batch 3", true, true);
        for b in 0..(RECENT_PROGRESS as u64 + 5) {
            q.progress(serde_json::json!({ "batchId": b }));
        }
        q.idle();
        let snap = q.snapshot();
        assert_eq!(snap["status"]["message"], "Processing batch 3");
        assert_eq!(snap["isActive"], true);
        assert_eq!(snap["lastProgress"]["batchId"], RECENT_PROGRESS as u64 + 4);
        let recent = q.recent_progress();
        assert_eq!(recent.len(), RECENT_PROGRESS);
        assert_eq!(recent[0]["batchId"], 5, "the oldest records leave first");
        q.request_stop();
        assert!(stop.load(Ordering::SeqCst));
        q.terminated(Some("batch 7: operator[0]: boom".into()));
        let snap = q.snapshot();
        assert_eq!(
            (snap["isActive"].as_bool(), snap["exception"].as_str()),
            (Some(false), Some("batch 7: operator[0]: boom"))
        );
        let kinds = seen.lock().unwrap().clone();
        assert_eq!(kinds.first().map(String::as_str), Some("QueryStartedEvent"));
        assert_eq!(kinds.iter().filter(|k| *k == "QueryProgressEvent").count(), RECENT_PROGRESS + 5);
        assert_eq!(&kinds[kinds.len() - 2..], ["QueryIdleEvent", "QueryTerminatedEvent"]);
    }

    #[test]
    fn events_serialise_in_sparks_shapes() {
        let e = QueryEvent::Progress(serde_json::json!({ "batchId": 1 }));
        assert_eq!(e.to_json(), serde_json::json!({ "event": "QueryProgressEvent", "progress": { "batchId": 1 } }));
        let t = QueryEvent::Terminated(serde_json::json!({ "id": "a", "runId": "b", "exception": null }));
        assert_eq!(t.to_json()["event"], "QueryTerminatedEvent");
        assert!(t.to_json()["exception"].is_null());
    }
}
