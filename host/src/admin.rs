//! The job's admin HTTP API (`[admin] listen = "127.0.0.1:7070"`, or `weir run --admin ADDR`):
//! upload a new version of a plugin (hot swap), roll back, and list the versions with the batch
//! ranges each ran. Off unless configured; a bearer token is required when it listens on another
//! address than loopback.
//!
//! ```text
//! POST /operators/<name or index>/plugin     body: the .wasm component   -> swap
//! POST /operators/<name or index>/rollback                               -> back to the previous
//! GET  /plugins                                                          -> versions and batches
//! ```
//!
//! A swap is prepared here, off the batch loop: the component is stored in the checkpoint
//! (`CHECKPOINT/plugins/<digest>.wasm`, so a replay after a crash can load the same version) and
//! compiled into weir's compiled-code cache. The driver then loads it (from the cache), checks it
//! and swaps it in between two micro-batches, and answers.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::job::AdminConfig;
use crate::plugin::Runtime;

/// What the API asks the driver to do, with where to send the answer.
pub enum AdminRequest {
    Swap { operator: String, path: PathBuf, digest: String, reply: Sender<Result<serde_json::Value, String>> },
    Rollback { operator: String, reply: Sender<Result<serde_json::Value, String>> },
}

/// The versions each plugin operator ran, shared with the driver (which appends to it).
pub type History = Arc<Mutex<Vec<serde_json::Value>>>;

/// The component file of a digest in the checkpoint.
pub fn stored_plugin(checkpoint: &Path, digest: &str) -> PathBuf {
    checkpoint.join("plugins").join(format!("{}.wasm", digest.replace(':', "-")))
}

/// Starts the API on its own thread; returns the address it listens on (the port may have been
/// 0) and the requests it receives. The address is also written to `CHECKPOINT/admin-address`.
pub fn start(
    config: &AdminConfig,
    checkpoint: &Path,
    history: History,
    tx: Sender<AdminRequest>,
) -> anyhow::Result<std::net::SocketAddr> {
    let server = tiny_http::Server::http(config.listen).map_err(|e| {
        anyhow::anyhow!("admin API: cannot listen on {}: {e}; choose another [admin].listen", config.listen)
    })?;
    let addr = server.server_addr().to_ip().expect("a TCP listener");
    std::fs::write(checkpoint.join("admin-address"), addr.to_string())?;
    eprintln!("admin API listening on http://{addr}");
    let token = config.token.clone();
    let checkpoint = checkpoint.to_path_buf();
    std::thread::Builder::new().name("weir-admin".into()).spawn(move || {
        // Compiles uploads into the shared cache, off the batch loop.
        let runtime = Runtime::new().ok();
        for mut req in server.incoming_requests() {
            let (status, body) = handle(&mut req, token.as_deref(), &checkpoint, runtime.as_ref(), &tx, &history);
            let resp = tiny_http::Response::from_string(body.to_string())
                .with_status_code(status)
                .with_header("Content-Type: application/json".parse::<tiny_http::Header>().expect("a valid header"));
            let _ = req.respond(resp);
        }
    })?;
    Ok(addr)
}

/// Stores an uploaded component in the checkpoint and compiles it into the code cache (off the
/// batch loop); returns its digest and stored path.
fn prepare(checkpoint: &Path, runtime: Option<&Runtime>, bytes: &[u8]) -> Result<(String, PathBuf), (u16, String)> {
    let digest = format!("sha256:{:x}", Sha256::digest(bytes));
    let path = stored_plugin(checkpoint, &digest);
    std::fs::create_dir_all(path.parent().expect("in plugins/"))
        .and_then(|()| crate::atomic_file::write_atomic(&path, bytes))
        .map_err(|e| (500, format!("storing the component in {}: {e}", path.display())))?;
    if let Some(rt) = runtime {
        rt.load(&path).map_err(|e| (422, e.to_string()))?;
    }
    Ok((digest, path))
}

/// `watch = true`: swaps operator `operator`'s plugin whenever the file at `file` changes
/// (checked every 300 ms), through the same path as an upload to the API.
pub fn watch(operator: usize, file: PathBuf, checkpoint: PathBuf, tx: Sender<AdminRequest>) {
    let _ = std::thread::Builder::new().name(format!("weir-watch-{operator}")).spawn(move || {
        let runtime = Runtime::new().ok();
        let mut seen = std::fs::read(&file).ok().map(|b| format!("sha256:{:x}", Sha256::digest(&b)));
        loop {
            std::thread::sleep(std::time::Duration::from_millis(300));
            let Ok(bytes) = std::fs::read(&file) else { continue };
            let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
            if seen.as_deref() == Some(digest.as_str()) {
                continue;
            }
            seen = Some(digest);
            match prepare(&checkpoint, runtime.as_ref(), &bytes) {
                Err((_, e)) => eprintln!("warning: watch: {}: {e}; the running version stays", file.display()),
                Ok((digest, path)) => {
                    let (reply, answer) = channel();
                    let req = AdminRequest::Swap { operator: operator.to_string(), path, digest, reply };
                    if tx.send(req).is_err() {
                        return;
                    }
                    if let Ok(Err(e)) = answer.recv() {
                        eprintln!("warning: watch: {}: {e}; the running version stays", file.display());
                    }
                }
            }
        }
    });
}

fn error(status: u16, message: impl Into<String>) -> (u16, serde_json::Value) {
    (status, serde_json::json!({ "error": message.into() }))
}

fn handle(
    req: &mut tiny_http::Request,
    token: Option<&str>,
    checkpoint: &Path,
    runtime: Option<&Runtime>,
    tx: &Sender<AdminRequest>,
    history: &History,
) -> (u16, serde_json::Value) {
    if let Some(token) = token {
        let ok = req
            .headers()
            .iter()
            .any(|h| h.field.equiv("Authorization") && h.value.as_str().strip_prefix("Bearer ") == Some(token));
        if !ok {
            return error(401, "a bearer token is required: Authorization: Bearer <[admin].token>");
        }
    }
    let url = req.url().to_string();
    let parts: Vec<&str> = url.trim_matches('/').split('/').collect();
    match (req.method(), parts.as_slice()) {
        (tiny_http::Method::Get, ["plugins"]) => {
            (200, serde_json::Value::Array(history.lock().expect("not poisoned").clone()))
        }
        (tiny_http::Method::Post, ["operators", op, "plugin"]) => {
            let mut bytes = Vec::new();
            if let Err(e) = std::io::Read::read_to_end(req.as_reader(), &mut bytes) {
                return error(400, format!("reading the upload: {e}"));
            }
            // Compiled now, here: the driver then finds it in the cache.
            let (digest, path) = match prepare(checkpoint, runtime, &bytes) {
                Ok(p) => p,
                Err((status, e)) => return error(status, e),
            };
            let (reply, answer) = channel();
            if tx.send(AdminRequest::Swap { operator: op.to_string(), path, digest, reply }).is_err() {
                return error(503, "the job is stopping");
            }
            match answer.recv() {
                Ok(Ok(v)) => (200, v),
                Ok(Err(e)) => error(409, e),
                Err(_) => error(503, "the job stopped before the swap"),
            }
        }
        (tiny_http::Method::Post, ["operators", op, "rollback"]) => {
            let (reply, answer) = channel();
            if tx.send(AdminRequest::Rollback { operator: op.to_string(), reply }).is_err() {
                return error(503, "the job is stopping");
            }
            match answer.recv() {
                Ok(Ok(v)) => (200, v),
                Ok(Err(e)) => error(409, e),
                Err(_) => error(503, "the job stopped before the rollback"),
            }
        }
        _ => error(404, format!("no such endpoint: {} {url}; see `weir plugin --help`", req.method())),
    }
}
