//! `[[listener]]`: where the query's events go (Spark's `StreamingQueryListener`), as a webhook
//! or a command, and how hard weir tries. The job file's table is read here into a typed
//! [`ListenerConfig`]; `monitor::listener` delivers.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::units::parse_duration;

/// A value that is never printed (a header carrying a token): `Debug` shows `***`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// `[[listener]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListenerSpec {
    pub url: Option<String>,
    pub headers: Option<BTreeMap<String, Secret>>,
    pub command: Option<Vec<String>>,
    pub events: Option<Vec<String>>,
    pub retries: Option<i64>,
    pub timeout: Option<String>,
    pub max_queue: Option<i64>,
}

/// Reads `[[listener]]`; a single `[listener]` table is refused saying so.
pub(super) fn listener_tables<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ListenerSpec>, D::Error> {
    struct Tables;
    impl<'de> serde::de::Visitor<'de> for Tables {
        type Value = Vec<ListenerSpec>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("[[listener]] tables (double brackets, one table per listener)")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut list = Vec::new();
            while let Some(l) = seq.next_element()? {
                list.push(l);
            }
            Ok(list)
        }
    }
    d.deserialize_seq(Tables)
}

/// One of Spark's four listener events, by its job-file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenerEvent {
    Started,
    Progress,
    Idle,
    Terminated,
}

impl ListenerEvent {
    pub const ALL: [ListenerEvent; 4] =
        [ListenerEvent::Started, ListenerEvent::Progress, ListenerEvent::Idle, ListenerEvent::Terminated];

    /// The job file's name: `started`, `progress`, `idle`, `terminated`.
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerEvent::Started => "started",
            ListenerEvent::Progress => "progress",
            ListenerEvent::Idle => "idle",
            ListenerEvent::Terminated => "terminated",
        }
    }
}

/// A validated `[[listener]]`.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// Where it is in the job file (`listener[0]`), for messages and `weir status`.
    pub field: String,
    pub target: ListenerTarget,
    /// The events it is sent, in the order of [`ListenerEvent::ALL`] (default: all four).
    pub events: Vec<ListenerEvent>,
    /// Attempts after the first failed one, 200 ms apart, doubling (default 3).
    pub retries: u32,
    /// Per attempt: connecting and the answer, or the command's run (default 10 seconds);
    /// also how long the end of the query waits for the events still queued.
    pub timeout: Duration,
    /// Events waiting at most (default 1000); when full the oldest is dropped and counted.
    pub max_queue: usize,
}

impl ListenerConfig {
    /// How messages and `weir status` name it: `listener[0] http://host:port/path`. Header
    /// values and a command's arguments (which may carry secrets) are not part of it.
    pub fn label(&self) -> String {
        match &self.target {
            ListenerTarget::Webhook(w) => format!("{} {}", self.field, w.url),
            ListenerTarget::Command(c) => format!("{} command {}", self.field, c[0]),
        }
    }
}

#[derive(Debug, Clone)]
pub enum ListenerTarget {
    Webhook(Webhook),
    /// The program and its arguments, run without a shell; the event JSON on its stdin.
    Command(Vec<String>),
}

/// A plain-http endpoint, POSTed one JSON event per request.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// As written (without credentials: those are refused), for messages.
    pub url: String,
    pub host: String,
    pub port: u16,
    /// Path and query, `/` when the URL has none.
    pub path: String,
    /// Extra request headers (`Authorization`); their values are never printed.
    pub headers: Vec<(String, Secret)>,
}

/// Headers weir writes itself, which a job file may not set.
const OWN_HEADERS: [&str; 5] = ["host", "content-type", "content-length", "connection", "transfer-encoding"];

/// `listener[i]` from its table; an error is the field at fault (under `at`) and the message.
pub(super) fn listener(at: &str, s: &ListenerSpec) -> Result<ListenerConfig, (String, String)> {
    let f = |name: &str| format!("{at}.{name}");
    let target = match (&s.url, &s.command) {
        (Some(_), Some(_)) => {
            return Err((
                at.to_string(),
                "has both url and command: a listener is a webhook (url) or a command; write two [[listener]] tables for both".into(),
            ))
        }
        (None, None) => {
            return Err((
                at.to_string(),
                "needs url = \"http://host:port/path\" (a webhook) or command = [\"program\", \"arg\", ...] (run per event)".into(),
            ))
        }
        (Some(url), None) => ListenerTarget::Webhook(webhook(url, s.headers.as_ref()).map_err(|(k, m)| (f(k), m))?),
        (None, Some(command)) => {
            if s.headers.is_some() {
                return Err((f("headers"), "apply to a webhook (url) only; remove them".into()));
            }
            if command.first().is_none_or(|p| p.trim().is_empty()) {
                return Err((
                    f("command"),
                    "names no program: write e.g. [\"/usr/local/bin/alert\", \"--to\", \"ops\"] (run without a shell, the event on its stdin)".into(),
                ));
            }
            ListenerTarget::Command(command.clone())
        }
    };
    let events = match &s.events {
        None => ListenerEvent::ALL.to_vec(),
        Some(names) if names.is_empty() => return Err((
            f("events"),
            "is empty: name some of \"started\", \"progress\", \"idle\", \"terminated\", or leave it out for all four"
                .into(),
        )),
        Some(names) => {
            for n in names {
                if !ListenerEvent::ALL.iter().any(|e| e.as_str() == n) {
                    return Err((
                        f("events"),
                        format!("unknown event {n:?}; allowed: \"started\", \"progress\", \"idle\", \"terminated\""),
                    ));
                }
            }
            ListenerEvent::ALL.into_iter().filter(|e| names.iter().any(|n| n == e.as_str())).collect()
        }
    };
    let retries = match s.retries {
        None => 3,
        Some(n @ 0..=10) => n as u32,
        Some(n) => {
            return Err((
                f("retries"),
                format!("must be from 0 to 10 (attempts after the first, 200 ms apart and doubling), got {n}"),
            ))
        }
    };
    let timeout = match &s.timeout {
        None => Duration::from_secs(10),
        Some(t) => match parse_duration(t).map_err(|e| (f("timeout"), e))? {
            d if d.is_zero() => return Err((f("timeout"), "must be more than zero, e.g. \"10 seconds\"".into())),
            d => d,
        },
    };
    let max_queue = match s.max_queue {
        None => 1000,
        Some(n) if n > 0 => n as usize,
        Some(n) => {
            return Err((f("max_queue"), format!("must be at least 1 (events waiting to be delivered), got {n}")))
        }
    };
    Ok(ListenerConfig { field: at.to_string(), target, events, retries, timeout, max_queue })
}

/// A webhook from `url` and `headers`; an error names `url` or `headers`.
fn webhook(url: &str, headers: Option<&BTreeMap<String, Secret>>) -> Result<Webhook, (&'static str, String)> {
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
            return Err((
                "url",
                format!("{url:?}: https is not supported (weir has no TLS client): post to a plain http:// relay on this machine, or use command = [\"curl\", ...]"),
            ))
        }
        _ => return Err(("url", format!("{url:?} is not an http URL: write http://host:port/path"))),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    if authority.contains('@') {
        return Err(("url", "has credentials in it: give them in headers (e.g. headers = { Authorization = \"Bearer ...\" }), where they are never printed".into()));
    }
    if path.contains('#') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(("url", format!("{url:?}: the path may not hold spaces, control characters or a #fragment")));
    }
    let bad_host = || ("url", format!("{url:?} has no host: write http://host:port/path"));
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 literal: [::1]:9000.
        Some((h, p)) if !p.contains(']') => {
            let port = p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| ("url", format!("{url:?}: port {p:?} is not a port number")))?;
            (h, port)
        }
        _ => (authority, 80),
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad_host());
    }
    let mut list = Vec::new();
    for (name, value) in headers.into_iter().flatten() {
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            return Err(("headers", format!("{name:?} is not a header name (letters, digits and -)")));
        }
        if OWN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(("headers", format!("{name} is set by weir (each event is JSON); remove it")));
        }
        if value.expose().chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
            return Err(("headers", format!("the value of {name} has a line break in it")));
        }
        list.push((name.clone(), value.clone()));
    }
    Ok(Webhook { url: url.to_string(), host: host.to_string(), port, path, headers: list })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: Option<&str>, command: Option<&[&str]>) -> ListenerSpec {
        ListenerSpec {
            url: url.map(str::to_string),
            headers: None,
            command: command.map(|c| c.iter().map(|s| s.to_string()).collect()),
            events: None,
            retries: None,
            timeout: None,
            max_queue: None,
        }
    }

    #[test]
    fn a_webhook_url_splits_into_host_port_and_path_with_defaults() {
        let l = listener("listener[0]", &spec(Some("http://127.0.0.1:9000/hooks/weir?x=1"), None)).unwrap();
        let ListenerTarget::Webhook(w) = &l.target else { panic!("a webhook") };
        assert_eq!((w.host.as_str(), w.port, w.path.as_str()), ("127.0.0.1", 9000, "/hooks/weir?x=1"));
        assert_eq!((l.retries, l.timeout, l.max_queue), (3, Duration::from_secs(10), 1000));
        assert_eq!(l.events, ListenerEvent::ALL);
        let l = listener("listener[0]", &spec(Some("http://alerts.example"), None)).unwrap();
        let ListenerTarget::Webhook(w) = &l.target else { panic!("a webhook") };
        assert_eq!((w.host.as_str(), w.port, w.path.as_str()), ("alerts.example", 80, "/"));
        let l = listener("listener[0]", &spec(Some("http://[::1]:81/x"), None)).unwrap();
        let ListenerTarget::Webhook(w) = &l.target else { panic!("a webhook") };
        assert_eq!((w.host.as_str(), w.port), ("[::1]", 81));
    }

    #[test]
    fn header_values_are_never_in_debug_output() {
        let mut s = spec(Some("http://127.0.0.1:9000/"), None);
        s.headers = Some(BTreeMap::from([("Authorization".to_string(), Secret("Bearer tok-SECRET".into()))]));
        assert!(!format!("{s:?}").contains("tok-SECRET"));
        let l = listener("listener[0]", &s).unwrap();
        let shown = format!("{l:?} {}", l.label());
        assert!(shown.contains("Authorization") && !shown.contains("tok-SECRET"), "{shown}");
    }

    #[test]
    fn refusals_name_the_field() {
        let err = |s: &ListenerSpec| listener("listener[1]", s).unwrap_err();
        assert_eq!(err(&spec(Some("https://x/"), None)).0, "listener[1].url");
        assert_eq!(err(&spec(Some("http://u:p@x/"), None)).0, "listener[1].url");
        assert_eq!(err(&spec(Some("http://x:0/"), None)).0, "listener[1].url");
        assert_eq!(err(&spec(None, None)).0, "listener[1]");
        assert_eq!(err(&spec(Some("http://x/"), Some(&["a"]))).0, "listener[1]");
        assert_eq!(err(&spec(None, Some(&[]))).0, "listener[1].command");
        let mut s = spec(None, Some(&["alert"]));
        s.events = Some(vec!["stopped".into()]);
        assert!(err(&s).1.contains("unknown event \"stopped\""));
        let mut s = spec(Some("http://x/"), None);
        s.headers = Some(BTreeMap::from([("Content-Length".to_string(), Secret("1".into()))]));
        assert_eq!(err(&s).0, "listener[1].headers");
    }
}
