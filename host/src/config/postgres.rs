//! `[sink] format = "postgres"`: the job file's fields, and the typed settings they validate into.
//! The password is kept in a [`Secret`], whose `Debug` never shows it; a URL's password is
//! masked the same way, so no debug print or message of the job shows either.

use std::time::Duration;

use serde::Deserialize;

use super::units::parse_duration;
use super::OnBadRecord;

/// The postgres sink's fields as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PostgresSinkSpec {
    /// `postgres://user@host:port/dbname` or `host=... user=...`; the fields below override it.
    pub url: Option<ConnectionUrl>,
    pub host: Option<String>,
    pub port: Option<i64>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// The environment variable holding the password (read when the job starts).
    pub password_env: Option<String>,
    pub dbname: Option<String>,
    pub table: Option<String>,
    pub mode: Option<String>,
    pub key: Option<Vec<String>>,
    pub create_table: Option<bool>,
    pub on_bad_record: Option<String>,
    pub retry_timeout: Option<String>,
    pub connect_timeout: Option<String>,
    pub progress_table: Option<String>,
}

/// A password: shown as `***` by `Debug`, never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A connection string that may hold a password: `Debug` shows it with the password masked.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ConnectionUrl(pub String);

impl std::fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", mask_url(&self.0))
    }
}

/// `url` with its password replaced by `***`: `postgres://u:PW@h/db`, `?password=PW` and the
/// keyword form's `password=PW`.
pub fn mask_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(rest) = url.find("://").map(|i| i + 3) {
        // user:password@ before the first '/' after the scheme (the last '@' of the authority).
        let authority_end = url[rest..].find(['/', '?']).map_or(url.len(), |i| rest + i);
        if let Some(at) = url[rest..authority_end].rfind('@').map(|i| rest + i) {
            if let Some(colon) = url[rest..at].find(':').map(|i| rest + i) {
                out = format!("{}***{}", &url[..colon + 1], &url[at..]);
            }
        }
    }
    // password=... as a query parameter or a keyword (up to '&' or whitespace).
    let mut masked = String::new();
    let mut rest = out.as_str();
    while let Some(i) = rest.find("password=") {
        let start = i + "password=".len();
        masked.push_str(&rest[..start]);
        masked.push_str("***");
        let value = &rest[start..];
        let end = if value.starts_with('\'') {
            value[1..].find('\'').map_or(value.len(), |j| j + 2)
        } else {
            value.find(['&', ' ', '\t', '\n']).unwrap_or(value.len())
        };
        rest = &value[end..];
    }
    masked.push_str(rest);
    masked
}

/// How rows go into the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostgresMode {
    /// COPY straight into the table.
    Append,
    /// COPY into a temporary table, then `INSERT ... ON CONFLICT (key) DO UPDATE`: the last row
    /// of a key in a batch wins.
    Upsert { key: Vec<String> },
}

/// Where the server is and who logs in. The password comes from `password`, else the
/// environment variable `password_env`, else the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresConnection {
    pub url: Option<ConnectionUrl>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub dbname: Option<String>,
    pub password: Option<Secret>,
    pub password_env: Option<String>,
}

/// A validated postgres sink.
#[derive(Debug, Clone)]
pub struct PostgresSinkConfig {
    pub connection: PostgresConnection,
    /// `name` or `schema.name`, each part taken as written (quoted in SQL).
    pub table: String,
    pub mode: PostgresMode,
    /// `CREATE TABLE IF NOT EXISTS` from the output's columns at start (and `ADD COLUMN` for
    /// columns a hot swap adds).
    pub create_table: bool,
    /// The sink's own `on_bad_record`; unset, the job's.
    pub on_bad_record: Option<OnBadRecord>,
    /// How long a batch is retried when the server is unreachable or restarts (backoff from
    /// 100 ms, doubling, at most 5 s apart) before the job stops.
    pub retry_timeout: Duration,
    pub connect_timeout: Duration,
    /// Where committed batches are recorded: (query id, output, batch id), one row per query
    /// and table (default `weir_sink_progress`, in the table's schema).
    pub progress_table: String,
}

/// The default of `retry_timeout`.
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(60);
/// The default of `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The progress table's default name.
pub const DEFAULT_PROGRESS_TABLE: &str = "weir_sink_progress";

/// `name` or `schema.name` split into its parts, each non-empty.
pub fn table_parts(name: &str) -> Result<(Option<&str>, &str), String> {
    let parts: Vec<&str> = name.split('.').collect();
    let bad = |why: &str| format!("{name:?} {why}: write `name` or `schema.name`");
    match parts.as_slice() {
        [t] if !t.trim().is_empty() => Ok((None, t)),
        [s, t] if !s.trim().is_empty() && !t.trim().is_empty() => Ok((Some(s), t)),
        [_] | [_, _] => Err(bad("has an empty part")),
        _ => Err(bad("has more than one dot")),
    }
}

/// Validates the postgres sink at `at` (`sink`). Errors name the field (`sink.key`) and say
/// what to write.
pub(super) fn postgres_sink(at: &str, s: &PostgresSinkSpec) -> Result<PostgresSinkConfig, (String, String)> {
    let f = |name: &str| format!("{at}.{name}");
    let table = s.table.clone().ok_or_else(|| {
        (
            f("table"),
            "is required for format = \"postgres\": the table to write to (`name` or `schema.name`)".to_string(),
        )
    })?;
    table_parts(&table).map_err(|e| (f("table"), e))?;
    let key = s.key.clone().unwrap_or_default();
    let mode = match s.mode.as_deref().unwrap_or("append") {
        "append" => {
            if s.key.is_some() {
                return Err((
                    f("key"),
                    "applies only to mode = \"upsert\" (rows with an existing key update it); remove it, or set mode = \"upsert\"".into(),
                ));
            }
            PostgresMode::Append
        }
        "upsert" => {
            if key.is_empty() {
                return Err((
                    f("key"),
                    "is required for mode = \"upsert\": the columns of the table's primary key (or of a unique index), e.g. key = [\"id\"]".into(),
                ));
            }
            for (i, k) in key.iter().enumerate() {
                if k.trim().is_empty() {
                    return Err((f("key"), "has an empty column name".into()));
                }
                if key[..i].contains(k) {
                    return Err((f("key"), format!("column `{k}` is listed twice")));
                }
            }
            PostgresMode::Upsert { key }
        }
        other => {
            return Err((
                f("mode"),
                format!("unknown mode {other:?}; allowed: \"append\", \"upsert\" (with key = [...])"),
            ))
        }
    };
    if s.url.is_none() && s.host.is_none() {
        return Err((
            f("url"),
            "is required for format = \"postgres\" (or host, with port, user and dbname): e.g. url = \"postgres://user@db.example:5432/app\", with the password in password_env".into(),
        ));
    }
    let url_user = match &s.url {
        Some(url) => {
            for (name, set) in [("host", s.host.is_some()), ("port", s.port.is_some())] {
                if set {
                    return Err((
                        f(name),
                        "is set together with url: write the host and port in the url, or leave url out".into(),
                    ));
                }
            }
            check_url(&url.0).map_err(|e| (f("url"), e))?
        }
        None => false,
    };
    if s.user.is_none() && !url_user {
        return Err((f("user"), "is required (or a user in the url): the role to log in as".into()));
    }
    let port = match s.port {
        None => None,
        Some(p) if (1..=65535).contains(&p) => Some(p as u16),
        Some(p) => return Err((f("port"), format!("must be a TCP port (1 to 65535), got {p}"))),
    };
    for (name, value) in [("host", &s.host), ("user", &s.user), ("dbname", &s.dbname)] {
        if value.as_ref().is_some_and(|v| v.trim().is_empty()) {
            return Err((f(name), "must not be empty; leave it out to take the url's".into()));
        }
    }
    if s.password.is_some() && s.password_env.is_some() {
        return Err((
            f("password"),
            "and password_env are both set: keep password_env (the password stays out of the job file)".into(),
        ));
    }
    if let Some(env) = &s.password_env {
        if env.is_empty() || env.contains(['=', '\0']) {
            return Err((f("password_env"), format!("{env:?} is not an environment variable name")));
        }
    }
    let on_bad_record = match s.on_bad_record.as_deref() {
        None => None,
        Some("fail") => Some(OnBadRecord::Fail),
        Some("dead_letter") => Some(OnBadRecord::DeadLetter),
        Some(other) => {
            return Err((
                f("on_bad_record"),
                format!("unknown policy {other:?}; allowed: \"fail\" (stop the job naming the row), \"dead_letter\" (rows the table refuses go to the dead-letter output)"),
            ))
        }
    };
    let duration = |name: &str, v: &Option<String>, default: Duration, zero_ok: bool| match v {
        None => Ok(default),
        Some(t) => {
            let d = parse_duration(t).map_err(|e| (f(name), e))?;
            if d.is_zero() && !zero_ok {
                return Err((f(name), "must be more than zero".to_string()));
            }
            Ok(d)
        }
    };
    let retry_timeout = duration("retry_timeout", &s.retry_timeout, DEFAULT_RETRY_TIMEOUT, true)?;
    let connect_timeout = duration("connect_timeout", &s.connect_timeout, DEFAULT_CONNECT_TIMEOUT, false)?;
    let progress_table = match &s.progress_table {
        Some(p) => {
            table_parts(p).map_err(|e| (f("progress_table"), e))?;
            p.clone()
        }
        None => match table_parts(&table).expect("checked above") {
            (Some(schema), _) => format!("{schema}.{DEFAULT_PROGRESS_TABLE}"),
            (None, _) => DEFAULT_PROGRESS_TABLE.to_string(),
        },
    };
    if progress_table == table {
        return Err((f("progress_table"), "must not be the table the rows go to".into()));
    }
    Ok(PostgresSinkConfig {
        connection: PostgresConnection {
            url: s.url.clone(),
            host: s.host.clone(),
            port,
            user: s.user.clone(),
            dbname: s.dbname.clone(),
            password: s.password.clone(),
            password_env: s.password_env.clone(),
        },
        table,
        mode,
        create_table: s.create_table.unwrap_or(false),
        on_bad_record,
        retry_timeout,
        connect_timeout,
        progress_table,
    })
}

/// Parses a connection string as the client will (without echoing it: it may hold a password);
/// says whether it names a user.
fn check_url(url: &str) -> Result<bool, String> {
    let config: postgres::Config = url.parse().map_err(|e: postgres::Error| {
        let why = mask_url(&e.to_string());
        format!("is not a PostgreSQL connection string ({why}); write postgres://user@host:5432/dbname or \"host=... port=... user=... dbname=...\"")
    })?;
    if config.get_ssl_mode() == postgres::config::SslMode::Require {
        return Err("asks for sslmode=require, but the postgres sink has no TLS yet; use a server on a trusted network or an SSH tunnel, and leave sslmode out".into());
    }
    if config.get_hosts().is_empty() {
        return Err("names no host: write postgres://user@host:5432/dbname".into());
    }
    Ok(config.get_user().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_url_is_masked() {
        assert_eq!(mask_url("postgres://weir:s3cret@127.0.0.1:5432/db"), "postgres://weir:***@127.0.0.1:5432/db");
        assert_eq!(mask_url("postgres://weir:p@ss@h/db"), "postgres://weir:***@h/db");
        assert_eq!(mask_url("postgres://weir@h/db?password=s3cret&x=1"), "postgres://weir@h/db?password=***&x=1");
        assert_eq!(mask_url("host=h password=s3cret user=u"), "host=h password=*** user=u");
        assert_eq!(mask_url("host=h password='a b' user=u"), "host=h password=*** user=u");
        assert_eq!(mask_url("postgres://weir@h/db"), "postgres://weir@h/db");
        let c = ConnectionUrl("postgres://u:hunter2@h/d".into());
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(format!("{:?}", Secret("hunter2".into())), "***");
    }

    #[test]
    fn table_names_have_one_or_two_parts() {
        assert_eq!(table_parts("t"), Ok((None, "t")));
        assert_eq!(table_parts("s.t"), Ok((Some("s"), "t")));
        assert!(table_parts("a.b.c").unwrap_err().contains("more than one dot"));
        assert!(table_parts("s.").unwrap_err().contains("empty part"));
    }
}
