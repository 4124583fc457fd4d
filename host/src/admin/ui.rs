//! The web UI every job serves at `/`: its pages and assets are bundled into the binary (files
//! under `host/src/admin/ui/`, uPlot vendored under `ui/vendor/uplot/`), so nothing is fetched
//! from elsewhere.
//!
//! A browser cannot send the bearer token, so it logs in once: `GET /` without a session answers
//! a login page; the person pastes the token (from `CHECKPOINT/admin-token` or `[admin].token`);
//! `POST /ui/session` checks it (in constant time) and sets a session cookie (`HttpOnly`,
//! `SameSite=Strict`, `Path=/`, a random id kept only in this process's memory), then redirects
//! to `/`. The page then reads the API with that cookie. A request carrying the cookie is taken
//! only from the UI's own pages: no `Origin` header, or `Origin: http://<its Host>` (and the
//! `Host` must be the API's address, as for every request) — any other page is refused.
//! Every UI answer forbids framing and scripts from anywhere but the job itself.

use std::borrow::Cow;
use std::sync::Mutex;

use super::http::{Body, Request};

/// What the UI's pages may load: only from the job itself; uPlot sets inline styles.
const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'";

/// Sessions kept at most; a new login beyond it ends the oldest session.
const MAX_SESSIONS: usize = 64;

/// The logged-in browsers: random session ids, in memory only (a restart logs everyone out).
#[derive(Default)]
pub struct Sessions {
    ids: Mutex<Vec<String>>,
}

impl Sessions {
    /// A new session: 32 random bytes as hex.
    pub fn open(&self) -> std::io::Result<String> {
        let id: String = crate::random::bytes::<32>()?.iter().map(|b| format!("{b:02x}")).collect();
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        if ids.len() >= MAX_SESSIONS {
            ids.remove(0);
        }
        ids.push(id.clone());
        Ok(id)
    }

    /// Whether `id` is a session, compared with every one in constant time.
    pub fn contains(&self, id: &str) -> bool {
        let ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.iter().fold(false, |found, known| super::token::matches(id, known) | found)
    }
}

/// The session cookie's name: one per port, since browsers share cookies between the ports of
/// a host, and two jobs on one machine must not log each other out.
pub fn cookie_name(req: &Request) -> String {
    format!("weir_session_{}", req.local.port())
}

/// The session id the request's `Cookie` headers carry, if any.
pub fn session_cookie(req: &Request) -> Option<String> {
    let name = cookie_name(req);
    req.headers("Cookie")
        .flat_map(|h| h.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim().to_string())
}

/// Whether the request's `Origin`, if it has one, is the page it was sent to (`http://<Host>`).
pub fn same_origin(req: &Request) -> bool {
    match (req.header("Origin"), req.header("Host")) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin.trim().eq_ignore_ascii_case(&format!("http://{}", host.trim())),
        (Some(_), None) => false,
    }
}

const INDEX: &str = include_str!("ui/index.html");
const LOGIN: &str = include_str!("ui/login.html");
const APP_JS: &str = include_str!("ui/app.js");
const APP_CSS: &str = include_str!("ui/app.css");
const UPLOT_JS: &str = include_str!("ui/vendor/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("ui/vendor/uplot/uPlot.min.css");
const FAVICON: &str = include_str!("ui/favicon.svg");

/// An asset of the UI at `path`, if there is one: its media type and bytes.
pub fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    Some(match path {
        "/ui/app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "/ui/app.css" => ("text/css; charset=utf-8", APP_CSS),
        "/ui/uPlot.iife.min.js" => ("text/javascript; charset=utf-8", UPLOT_JS),
        "/ui/uPlot.min.css" => ("text/css; charset=utf-8", UPLOT_CSS),
        "/favicon.ico" | "/ui/favicon.svg" => ("image/svg+xml", FAVICON),
        _ => return None,
    })
}

/// A UI answer with the headers every UI answer carries, plus `extra`.
pub fn page(content_type: &'static str, text: Cow<'static, str>, extra: Vec<(&'static str, String)>) -> Body {
    let mut headers = vec![
        ("Content-Security-Policy", CSP.to_string()),
        ("X-Frame-Options", "DENY".to_string()),
        ("X-Content-Type-Options", "nosniff".to_string()),
        ("Cache-Control", "no-store".to_string()),
        ("Referrer-Policy", "same-origin".to_string()),
    ];
    headers.extend(extra);
    let bytes = match text {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    };
    Body::Page { content_type, bytes, headers }
}

/// The UI itself.
pub fn index() -> Body {
    page("text/html; charset=utf-8", Cow::Borrowed(INDEX), Vec::new())
}

/// The login page, with `message` (plain text) above the form.
pub fn login(message: &str) -> Body {
    let escaped = message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    page("text/html; charset=utf-8", Cow::Owned(LOGIN.replace("{{message}}", &escaped)), Vec::new())
}

/// The answer to a good login: the cookie, and back to `/`.
pub fn logged_in(req: &Request, session: &str) -> Body {
    let cookie = format!("{}={session}; HttpOnly; SameSite=Strict; Path=/", cookie_name(req));
    page("text/plain; charset=utf-8", Cow::Borrowed(""), vec![("Set-Cookie", cookie), ("Location", "/".to_string())])
}

/// The `token` field of a login form (`application/x-www-form-urlencoded`), decoded.
pub fn form_token(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let value = text.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == "token")?.1;
    let mut out = Vec::new();
    let mut bytes = value.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
            }
            _ => out.push(b),
        }
    }
    String::from_utf8(out).ok().map(|t| t.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_random_and_only_known_ones_are_accepted() {
        let s = Sessions::default();
        let (a, b) = (s.open().unwrap(), s.open().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(s.contains(&a) && s.contains(&b));
        assert!(!s.contains(""));
        assert!(!s.contains(&a[..63]));
    }

    #[test]
    fn the_oldest_session_ends_when_too_many_are_open() {
        let s = Sessions::default();
        let first = s.open().unwrap();
        for _ in 0..MAX_SESSIONS {
            s.open().unwrap();
        }
        assert!(!s.contains(&first));
    }

    #[test]
    fn the_login_form_token_is_url_decoded() {
        assert_eq!(form_token(b"token=ab%2Bc+d").as_deref(), Some("ab+c d"));
        assert_eq!(form_token(b"x=1&token=%20abc%0A").as_deref(), Some("abc"));
        assert_eq!(form_token(b"x=1"), None);
        assert_eq!(form_token(b"token=%4"), None);
    }
}
