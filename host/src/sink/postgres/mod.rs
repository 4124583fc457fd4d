//! PostgreSQL, exactly once: each batch is one transaction that writes the rows (binary COPY)
//! and records (query id, output, batch id) in a progress table (`weir_sink_progress`). The
//! transaction first reads that row, locked: when it already holds this batch or a later one (a
//! crash came after the commit and before the checkpoint's, or a commit whose answer was lost),
//! nothing is written again. So the batch is in the table once, whatever fails and retries.
//!
//! - `append`: COPY straight into the table.
//! - `upsert`: COPY into a temporary table, then `INSERT ... SELECT DISTINCT ON (key) ... ORDER
//!   BY key, row DESC ON CONFLICT (key) DO UPDATE`: the last row of a key in the batch wins.
//! - A row the table refuses (a constraint, a value PostgreSQL cannot store: SQLSTATE classes 22
//!   and 23) stops the job naming the batch, the row and its values; under
//!   `on_bad_record = "dead_letter"` the refused rows go to the dead-letter output
//!   (`batch-<N>.sink.jsonl`) and the others are written, in the same transaction. The rows are
//!   found by copying the batch again in parts inside savepoints: at the line PostgreSQL names,
//!   else by halves.
//! - The server unreachable or restarting (connection errors, SQLSTATE classes 08, 53, 57):
//!   the batch is retried on a new connection with backoff (100 ms, doubling, at most 5 s
//!   apart) for up to `retry_timeout`; the progress row makes the retry idempotent.
//! - The password (the job file's, `password_env`'s or the URL's) appears in no message,
//!   description or log line.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::error::SqlState;
use postgres::types::Type;
use postgres::{Client, NoTls};

use super::{Sink, SinkError};
use crate::config::{OnBadRecord, PostgresMode, PostgresSinkConfig};
use crate::deadletter::BadRecord;

/// Arrow rows as binary COPY rows.
mod copy;
/// Quoting, the type mapping and the statements.
pub mod sql;

use copy::Rows;
use sql::{ident, TableName};

/// Test hook: a process whose environment sets this to a batch id is killed (SIGKILL) right
/// after the sink commits that batch, before the checkpoint's commit.
const CRASH_AFTER_COMMIT_ENV: &str = "WEIR_TEST_CRASH_AFTER_SINK_COMMIT";
/// Test hook: `<batch id>:<path>`: before committing that batch (its first attempt), the sink
/// creates `<path>` and waits until it is deleted (the tests restart the server meanwhile).
const HOLD_BEFORE_COMMIT_ENV: &str = "WEIR_TEST_PG_HOLD_BEFORE_COMMIT";
static HELD: AtomicBool = AtomicBool::new(false);

/// The first pause between two attempts, and the longest.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Rows per COPY after a refused row, while the refused rows of a batch are looked for.
const ISOLATION_PART: usize = 4096;
/// A key for `pg_advisory_xact_lock`: weir's DDL (progress table, CREATE TABLE) one at a time.
const DDL_LOCK: i64 = 0x7765_6972_5f64_646c;

/// Why an attempt failed: worth another try on a new connection, or not.
enum Failure {
    Retry(String),
    Fatal(String),
}

/// What a batch's transaction did.
struct Written {
    rows: u64,
    dead_letters: u64,
}

/// The statements for the current columns, made at start (and again after a schema change).
struct Plan {
    table: TableName,
    progress: TableName,
    /// The progress table's `output`: the table, `schema.name`.
    output: String,
    /// `COPY table (...) FROM STDIN (FORMAT binary)` (append).
    copy: String,
    /// The types written by COPY, in column order (and `__weir_row` last for the stage).
    types: Vec<Type>,
    stage: Option<Stage>,
}

/// The upsert's statements.
struct Stage {
    key: Vec<String>,
    create: String,
    copy: String,
    merge_all: String,
    merge_range: String,
    name: String,
}

pub struct PostgresSink {
    config: PostgresSinkConfig,
    on_bad_record: OnBadRecord,
    schema: SchemaRef,
    pg: postgres::Config,
    /// The password in use, only to keep it out of messages.
    password: Option<String>,
    /// `host:port/dbname`, for messages.
    server: String,
    dead_letter_dir: PathBuf,
    query_id: Option<String>,
    client: Option<Client>,
    plan: Option<Plan>,
    /// Bumped by each schema change: the stage of other columns is another temporary table.
    generation: u32,
    dead_letters: u64,
}

impl PostgresSink {
    /// Checks that rows of `schema` can be written (before start): every column of a type the
    /// sink maps, the upsert key among the columns. The error names the job-file field.
    pub fn check_columns(config: &PostgresSinkConfig, schema: &Schema) -> Result<(), (&'static str, String)> {
        let bad = sql::unsupported_columns(schema);
        if !bad.is_empty() {
            return Err((
                "format",
                format!(
                    "postgres: the output has columns of types the postgres sink cannot write: {}; it writes boolean, int, bigint, double, string, binary, timestamp and date (docs/postgres.md): drop or convert them in a plugin",
                    bad.join(", ")
                ),
            ));
        }
        if let PostgresMode::Upsert { key } = &config.mode {
            for k in key {
                if schema.field_with_name(k).is_err() {
                    let cols = schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ");
                    return Err((
                        "key",
                        format!(
                            "column `{k}` is not a column of the output (its columns: {cols}); name output columns"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Makes the sink (nothing is connected yet). The password of `password_env` is read now,
    /// so a job without it is refused before it starts.
    pub fn new(
        config: &PostgresSinkConfig,
        on_bad_record: OnBadRecord,
        schema: SchemaRef,
        dead_letter_dir: PathBuf,
    ) -> Result<PostgresSink, (&'static str, String)> {
        Self::check_columns(config, &schema)?;
        let c = &config.connection;
        let mut pg = match &c.url {
            Some(url) => {
                url.0.parse::<postgres::Config>().map_err(|_| ("url", "is not a connection string".to_string()))?
            }
            None => postgres::Config::new(),
        };
        if let Some(h) = &c.host {
            pg.host(h);
        }
        if let Some(p) = c.port {
            pg.port(p);
        }
        if let Some(u) = &c.user {
            pg.user(u);
        }
        if let Some(d) = &c.dbname {
            pg.dbname(d);
        }
        let password = match (&c.password, &c.password_env) {
            (Some(p), _) => Some(p.0.clone()),
            (None, Some(var)) => match std::env::var(var) {
                Ok(p) => Some(p),
                Err(_) => {
                    return Err((
                        "password_env",
                        format!("names the environment variable {var}, which is not set (or not UTF-8): set it to the database password before `weir run`"),
                    ))
                }
            },
            (None, None) => pg.get_password().map(|p| String::from_utf8_lossy(p).into_owned()),
        };
        if let Some(p) = &password {
            pg.password(p);
        }
        if pg.get_user().is_none() {
            return Err(("user", "is required (or a user in the url): the role to log in as".into()));
        }
        pg.application_name("weir");
        pg.connect_timeout(config.connect_timeout);
        // A server that vanishes (a network partition, a host that died) is noticed within about
        // a minute, idle or while data is in flight, and the batch retried.
        pg.keepalives(true);
        pg.keepalives_idle(Duration::from_secs(30));
        pg.keepalives_interval(Duration::from_secs(10));
        pg.keepalives_retries(3);
        pg.tcp_user_timeout(Duration::from_secs(60));
        let hosts: Vec<String> = pg
            .get_hosts()
            .iter()
            .map(|h| match h {
                postgres::config::Host::Tcp(h) => h.clone(),
                #[allow(unreachable_patterns)]
                other => format!("{other:?}"),
            })
            .collect();
        let port = pg.get_ports().first().copied().unwrap_or(5432);
        let db = pg.get_dbname().or(pg.get_user()).unwrap_or_default().to_string();
        let server =
            format!("{}:{port}/{db}", if hosts.is_empty() { "localhost".to_string() } else { hosts.join(",") });
        Ok(PostgresSink {
            config: config.clone(),
            on_bad_record,
            schema,
            pg,
            password,
            server,
            dead_letter_dir,
            query_id: None,
            client: None,
            plan: None,
            generation: 0,
            dead_letters: 0,
        })
    }

    /// `text` with the password masked (errors of the client or the server might echo it).
    fn scrub(&self, text: String) -> String {
        match &self.password {
            Some(p) if p.len() >= 4 => text.replace(p.as_str(), "***"),
            _ => text,
        }
    }

    fn invalid(&self, text: String) -> SinkError {
        SinkError::Invalid(self.scrub(format!("postgres sink ({}): {text}", self.server)))
    }

    /// Runs `attempt` until it succeeds, fails for good, or `retry_timeout` has passed; a
    /// failed connection is dropped before the next try.
    fn with_retries<T>(
        &mut self,
        what: &str,
        mut attempt: impl FnMut(&mut Self) -> Result<T, Failure>,
    ) -> Result<T, SinkError> {
        let started = Instant::now();
        let mut delay = FIRST_BACKOFF;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match attempt(self) {
                Ok(v) => return Ok(v),
                Err(Failure::Fatal(m)) => return Err(self.invalid(with_what(what, m))),
                Err(Failure::Retry(m)) => {
                    self.client = None;
                    if started.elapsed() + delay > self.config.retry_timeout {
                        return Err(self.invalid(format!(
                            "{}; gave up after {attempts} attempt(s) in {:.1} s (sink.retry_timeout = {} s): check that the server is up and reachable, or raise sink.retry_timeout. Nothing is committed twice: a restart replays the batch, and the progress table skips it if its commit went through",
                            with_what(what, m),
                            started.elapsed().as_secs_f64(),
                            self.config.retry_timeout.as_secs_f64()
                        )));
                    }
                    eprintln!(
                        "{}",
                        self.scrub(format!(
                            "warning: postgres sink ({}): {}; retrying in {} ms",
                            self.server,
                            with_what(what, m),
                            delay.as_millis()
                        ))
                    );
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// The open connection, or a new one.
    fn take_client(&mut self) -> Result<Client, Failure> {
        if let Some(c) = self.client.take() {
            if !c.is_closed() {
                return Ok(c);
            }
        }
        // The client's own timeout covers the TCP connect only: a server that accepts and never
        // answers would hold the job forever. So the whole attempt (startup, authentication)
        // runs in a thread of its own, given up after connect_timeout (the thread ends when the
        // server answers or the connection breaks).
        let limit = self.config.connect_timeout;
        let (tx, rx) = std::sync::mpsc::channel();
        let pg = self.pg.clone();
        std::thread::Builder::new()
            .name("weir-pg-connect".into())
            .spawn(move || {
                let _ = tx.send(pg.connect(NoTls));
            })
            .map_err(|e| Failure::Retry(format!("connecting: cannot start a thread: {e}")))?;
        let connected = rx.recv_timeout(limit).map_err(|_| {
            Failure::Retry(format!(
                "connecting: no answer from the server within {} ms (sink.connect_timeout)",
                limit.as_millis()
            ))
        })?;
        connected.map_err(|e| {
            let m = format!("connecting: {}", db_message(&e));
            match e.code() {
                // Wrong password or role, no such database: another try will not help.
                Some(c) if c.code().starts_with("28") || c == &SqlState::INVALID_CATALOG_NAME => Failure::Fatal(
                    format!("{m}; check sink.user, the password (sink.password_env or the url) and sink.dbname"),
                ),
                _ => Failure::Retry(m),
            }
        })
    }

    /// Connects, creates the progress table (and the table, with `create_table`), checks the
    /// table against the output's columns, and makes the statements.
    fn prepare(&mut self) -> Result<(), Failure> {
        let mut client = self.take_client()?;
        let result = self.prepare_on(&mut client);
        match &result {
            Err(Failure::Retry(_)) => {}
            _ => self.client = Some(client),
        }
        result
    }

    fn prepare_on(&mut self, client: &mut Client) -> Result<(), Failure> {
        let (schema_name, name) =
            crate::config::postgres_table_parts(&self.config.table).expect("checked with the job");
        let schema_of_table = match schema_name {
            Some(s) => s.to_string(),
            None => client_query_one(client, "SELECT current_schema()::text")?.get::<_, Option<String>>(0).ok_or_else(
                || {
                    Failure::Fatal(
                        "the server has no current schema (search_path is empty): write sink.table as schema.name"
                            .into(),
                    )
                },
            )?,
        };
        let table = TableName { schema: schema_of_table.clone(), name: name.to_string() };
        let (p_schema, p_name) =
            crate::config::postgres_table_parts(&self.config.progress_table).expect("checked with the job");
        let progress = TableName { schema: p_schema.map_or(schema_of_table, str::to_string), name: p_name.to_string() };
        let key: Vec<String> = match &self.config.mode {
            PostgresMode::Upsert { key } => key.clone(),
            PostgresMode::Append => Vec::new(),
        };
        // Only what is missing is created (a role may lack CREATE on a schema whose tables an
        // administrator made), one writer at a time: concurrent CREATE TABLE IF NOT EXISTS collide.
        let exists = |client: &mut Client, t: &TableName| -> Result<bool, Failure> {
            Ok(client_query_one_p(client, "SELECT to_regclass($1) IS NOT NULL", &[&t.sql()])?.get::<_, bool>(0))
        };
        let mut create = Vec::new();
        if !exists(client, &progress)? {
            create.push((sql::create_progress_table(&progress), progress.display()));
        }
        if self.config.create_table && !exists(client, &table)? {
            create.push((sql::create_table(&table, &self.schema, &key), table.display()));
        }
        if !create.is_empty() {
            let ddl: Vec<&str> = create.iter().map(|(d, _)| d.as_str()).collect();
            let ddl = format!("BEGIN; SELECT pg_advisory_xact_lock({DDL_LOCK}); {}; COMMIT;", ddl.join("; "));
            if let Err(e) = client.batch_execute(&ddl) {
                let _ = client.batch_execute("ROLLBACK");
                let names: Vec<&str> = create.iter().map(|(_, n)| n.as_str()).collect();
                return Err(classify(&e, |m| {
                    format!(
                        "creating {}: {m}; the role needs CREATE on the schema, or create it beforehand (docs/postgres.md)",
                        names.join(" and ")
                    )
                }));
            }
        }
        self.check_table(client, &table, &key)?;
        let columns = sql::column_list(&self.schema);
        let mut types: Vec<Type> =
            self.schema.fields().iter().map(|f| sql::pg_type(f.data_type()).expect("checked").0).collect();
        let stage = (!key.is_empty()).then(|| {
            let name = format!("pg_temp.{}", ident(&format!("weir_stage_{}", self.generation)));
            Stage {
                create: sql::create_stage(&name, &self.schema),
                copy: sql::copy_in(&name, &format!("{columns}, __weir_row")),
                merge_all: sql::merge(&table, &name, &self.schema, &key, true, false),
                merge_range: sql::merge(&table, &name, &self.schema, &key, true, true),
                key: key.clone(),
                name,
            }
        });
        if stage.is_some() {
            types.push(Type::INT8);
        }
        self.plan = Some(Plan {
            output: table.display(),
            copy: sql::copy_in(&table.sql(), &columns),
            table,
            progress,
            types,
            stage,
        });
        Ok(())
    }

    /// The table exists, has every output column (added with `create_table`), of a type a
    /// binary COPY fills (append), with a unique index on the key (upsert), and no NOT NULL
    /// column without a default that the output lacks.
    fn check_table(&self, client: &mut Client, table: &TableName, key: &[String]) -> Result<(), Failure> {
        let exists =
            client_query_one_p(client, "SELECT to_regclass($1) IS NOT NULL", &[&table.sql()])?.get::<_, bool>(0);
        if !exists {
            return Err(Failure::Fatal(format!(
                "table {} does not exist: create it ({}), or set create_table = true in [sink]",
                table.display(),
                sql::create_table(table, &self.schema, key)
            )));
        }
        let rows = client
            .query(
                "SELECT a.attname::text, a.atttypid, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '' FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&table.sql()],
            )
            .map_err(|e| classify(&e, |m| format!("reading the columns of {}: {m}", table.display())))?;
        let columns: Vec<(String, u32, String, bool, bool)> =
            rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect();
        let mut missing = Vec::new();
        for f in self.schema.fields() {
            let (ours, our_name) = sql::pg_type(f.data_type()).expect("checked");
            match columns.iter().find(|c| &c.0 == f.name()) {
                None => missing.push((f.name().clone(), our_name)),
                // A binary COPY takes only the column's own binary form; an upsert's INSERT
                // casts as an assignment does.
                Some((_, oid, theirs, ..)) if key.is_empty() && !sql::copy_accepts(&ours, *oid) => {
                    return Err(Failure::Fatal(format!(
                        "column `{}` of table {} is {theirs}, but the output's `{}` is {} (written as {our_name}): change the column (ALTER TABLE {} ALTER COLUMN {} TYPE {our_name}), or convert the value in a plugin",
                        f.name(),
                        table.display(),
                        f.name(),
                        crate::schema::type_name(f.data_type()),
                        table.sql(),
                        ident(f.name())
                    )))
                }
                Some(_) => {}
            }
        }
        if !missing.is_empty() {
            if !self.config.create_table {
                let list = missing.iter().map(|(n, t)| format!("`{n}` ({t})")).collect::<Vec<_>>().join(", ");
                return Err(Failure::Fatal(format!(
                    "table {} has no column {list} of the output: add them, or set create_table = true in [sink] to have them added",
                    table.display()
                )));
            }
            let adds = missing
                .iter()
                .map(|(n, t)| format!("ADD COLUMN IF NOT EXISTS {} {t}", ident(n)))
                .collect::<Vec<_>>()
                .join(", ");
            client.batch_execute(&format!("ALTER TABLE {} {adds}", table.sql())).map_err(|e| {
                classify(&e, |m| format!("adding the output's new columns to {}: {m}", table.display()))
            })?;
        }
        if let Some((name, ..)) = columns.iter().find(|c| c.3 && !c.4 && self.schema.field_with_name(&c.0).is_err()) {
            return Err(Failure::Fatal(format!(
                "column `{name}` of table {} is NOT NULL without a default, and the output has no such column: every row would be refused; give it a default, drop NOT NULL, or add the column in a plugin",
                table.display()
            )));
        }
        if !key.is_empty() {
            let indexes = client
                .query(
                    "SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL GROUP BY i.indexrelid",
                    &[&table.sql()],
                )
                .map_err(|e| classify(&e, |m| format!("reading the indexes of {}: {m}", table.display())))?;
            let mut want: Vec<String> = key.to_vec();
            want.sort();
            if !indexes.iter().any(|r| r.get::<_, Vec<String>>(0) == want) {
                return Err(Failure::Fatal(format!(
                    "mode = \"upsert\" needs a primary key or unique index on exactly ({}) of table {}, which has none: add one (ALTER TABLE {} ADD PRIMARY KEY ({})), or name its columns in sink.key",
                    key.join(", "),
                    table.display(),
                    table.sql(),
                    key.iter().map(|k| ident(k)).collect::<Vec<_>>().join(", ")
                )));
            }
        }
        Ok(())
    }

    fn query_id(&self) -> &str {
        self.query_id.as_deref().expect("the engine starts the sink before it writes")
    }

    /// The last batch of this query committed to the table, if any.
    fn last_committed(&mut self) -> Result<Option<i64>, Failure> {
        if self.plan.is_none() {
            self.prepare()?;
        }
        let mut client = self.take_client()?;
        let plan = self.plan.as_ref().expect("prepared");
        let sql = format!("SELECT batch_id FROM {} WHERE query_id = $1 AND output = $2", plan.progress.sql());
        let result = client
            .query_opt(&sql, &[&self.query_id(), &plan.output])
            .map(|r| r.map(|r| r.get::<_, i64>(0)))
            .map_err(|e| classify(&e, |m| format!("reading {}: {m}", plan.progress.display())));
        if !matches!(result, Err(Failure::Retry(_))) {
            self.client = Some(client);
        }
        result
    }

    /// One attempt at batch `batch_id`: one transaction.
    fn attempt(&mut self, batch_id: u64, rows: &Rows<'_>) -> Result<Written, Failure> {
        if self.plan.is_none() {
            self.prepare()?;
        }
        let mut client = self.take_client()?;
        let result = self.transaction(&mut client, batch_id, rows);
        match &result {
            Ok(_) => self.client = Some(client),
            Err(Failure::Retry(_)) => {}
            Err(Failure::Fatal(_)) => {
                // A failed transaction is rolled back before the connection is used again.
                if client.batch_execute("ROLLBACK").is_ok() {
                    self.client = Some(client);
                }
            }
        }
        result
    }

    fn transaction(&self, client: &mut Client, batch_id: u64, rows: &Rows<'_>) -> Result<Written, Failure> {
        let plan = self.plan.as_ref().expect("prepared");
        let at = |what: &str| format!("batch {batch_id}: {what}");
        client.batch_execute("BEGIN").map_err(|e| classify(&e, |m| at(&format!("beginning a transaction: {m}"))))?;
        let done: Option<i64> = client
            .query_opt(
                &format!("SELECT batch_id FROM {} WHERE query_id = $1 AND output = $2 FOR UPDATE", plan.progress.sql()),
                &[&self.query_id(), &plan.output],
            )
            .map_err(|e| classify(&e, |m| at(&format!("reading {}: {m}", plan.progress.display()))))?
            .map(|r| r.get(0));
        if done.is_some_and(|d| d >= batch_id as i64) {
            // Committed before (a replay after a crash, or a commit whose answer was lost).
            client
                .batch_execute("ROLLBACK")
                .map_err(|e| classify(&e, |m| at(&format!("ending a transaction: {m}"))))?;
            return Ok(Written { rows: 0, dead_letters: 0 });
        }
        let mut bad: Vec<(usize, String)> = Vec::new();
        let written = match &plan.stage {
            None => self.load(client, plan, &plan.copy, rows, false, batch_id, &mut bad)?,
            Some(stage) => {
                client
                    .batch_execute(&stage.create)
                    .map_err(|e| classify(&e, |m| at(&format!("creating the staging table: {m}"))))?;
                self.load(client, plan, &stage.copy, rows, true, batch_id, &mut bad)?;
                self.merge(client, plan, stage, rows, batch_id, &mut bad)?
            }
        };
        if !bad.is_empty() {
            self.write_dead_letters(plan, batch_id, rows, &mut bad).map_err(Failure::Fatal)?;
        }
        client
            .execute(
                &format!(
                    "INSERT INTO {} (query_id, output, batch_id) VALUES ($1, $2, $3) ON CONFLICT (query_id, output) DO UPDATE SET batch_id = EXCLUDED.batch_id, committed_at = now()",
                    plan.progress.sql()
                ),
                &[&self.query_id(), &plan.output, &(batch_id as i64)],
            )
            .map_err(|e| classify(&e, |m| at(&format!("recording the batch in {}: {m}", plan.progress.display()))))?;
        hold_before_commit(batch_id);
        client.batch_execute("COMMIT").map_err(|e| classify(&e, |m| at(&format!("committing: {m}"))))?;
        if std::env::var(CRASH_AFTER_COMMIT_ENV).is_ok_and(|v| v == batch_id.to_string()) {
            eprintln!("{CRASH_AFTER_COMMIT_ENV}={batch_id}: killing the process after the commit of batch {batch_id}");
            // SAFETY: kill(2) on our own pid; nothing is borrowed.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
        Ok(Written { rows: written, dead_letters: bad.len() as u64 })
    }

    /// COPYs `rows` with `copy`, inside savepoints: a part the table refuses is copied again
    /// in smaller parts (split at the line PostgreSQL names, else in halves) until the refused
    /// rows are alone. Under `fail` the first refused row stops the batch; under `dead_letter`
    /// refused rows are collected in `bad` and the others written. Returns the rows written.
    #[allow(clippy::too_many_arguments)]
    fn load(
        &self,
        client: &mut Client,
        plan: &Plan,
        copy: &str,
        rows: &Rows<'_>,
        row_numbers: bool,
        batch_id: u64,
        bad: &mut Vec<(usize, String)>,
    ) -> Result<u64, Failure> {
        let at = |what: String| format!("batch {batch_id}: {what}");
        let target = if row_numbers { "the staging table".to_string() } else { plan.table.display() };
        let mut written = 0u64;
        // Parts still to copy, the next one last.
        let mut todo = vec![(0usize, rows.len())];
        while let Some((from, to)) = todo.pop() {
            if from >= to {
                continue;
            }
            savepoint(client, "SAVEPOINT weir_rows", batch_id)?;
            match copy_rows(client, copy, &plan.types, rows, from, to, row_numbers) {
                Ok(n) => {
                    written += n;
                    savepoint(client, "RELEASE SAVEPOINT weir_rows", batch_id)?;
                }
                Err(e) if is_row_error(&e) => {
                    savepoint(client, "ROLLBACK TO SAVEPOINT weir_rows", batch_id)?;
                    if to - from == 1 {
                        self.refused(plan, batch_id, rows, from, db_message(&e), bad)?;
                        continue;
                    }
                    match copy_line(&e).filter(|&l| l >= 1 && l <= to - from) {
                        Some(line) => {
                            // The rows before the named one went in; the one named alone; the
                            // rest in parts, so that a later refusal costs one part again, not
                            // the rest of the batch.
                            let i = from + line - 1;
                            let parts: Vec<(usize, usize)> = (i + 1..to)
                                .step_by(ISOLATION_PART)
                                .map(|a| (a, (a + ISOLATION_PART).min(to)))
                                .collect();
                            todo.extend(parts.into_iter().rev());
                            todo.extend([(i, i + 1), (from, i)]);
                        }
                        None => {
                            let mid = from + (to - from) / 2;
                            todo.extend([(mid, to), (from, mid)]);
                        }
                    }
                }
                Err(e) => return Err(classify(&e, |m| at(format!("copying rows into {target}: {m}")))),
            }
        }
        Ok(written)
    }

    /// The upsert's second step: the stage's rows into the table, the last row of each key.
    /// When the table refuses some, the rows are applied in parts (in the batch's order, the
    /// last row of a key in each part) inside savepoints, as `load` does: a key ends with the
    /// last of its rows that the table accepts.
    fn merge(
        &self,
        client: &mut Client,
        plan: &Plan,
        stage: &Stage,
        rows: &Rows<'_>,
        batch_id: u64,
        bad: &mut Vec<(usize, String)>,
    ) -> Result<u64, Failure> {
        let at = |what: String| format!("batch {batch_id}: {what}");
        let merging =
            |m: String| at(format!("upserting into {} on ({}): {m}", plan.table.display(), stage.key.join(", ")));
        savepoint(client, "SAVEPOINT weir_merge", batch_id)?;
        match client.execute(&stage.merge_all, &[]) {
            Ok(n) => {
                savepoint(client, "RELEASE SAVEPOINT weir_merge", batch_id)?;
                return Ok(n);
            }
            Err(e) if is_row_error(&e) => savepoint(client, "ROLLBACK TO SAVEPOINT weir_merge", batch_id)?,
            Err(e) => return Err(classify(&e, merging)),
        }
        let ids: Vec<i64> = client
            .query(&format!("SELECT __weir_row FROM {} ORDER BY 1", stage.name), &[])
            .map_err(|e| classify(&e, merging))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut written = 0u64;
        let mut todo = vec![(0usize, ids.len())];
        while let Some((from, to)) = todo.pop() {
            if from >= to {
                continue;
            }
            savepoint(client, "SAVEPOINT weir_merge", batch_id)?;
            match client.execute(&stage.merge_range, &[&ids[from], &ids[to - 1]]) {
                Ok(n) => {
                    written += n;
                    savepoint(client, "RELEASE SAVEPOINT weir_merge", batch_id)?;
                }
                Err(e) if is_row_error(&e) => {
                    savepoint(client, "ROLLBACK TO SAVEPOINT weir_merge", batch_id)?;
                    if to - from == 1 {
                        self.refused(plan, batch_id, rows, ids[from] as usize, db_message(&e), bad)?;
                        continue;
                    }
                    let mid = from + (to - from) / 2;
                    todo.extend([(mid, to), (from, mid)]);
                }
                Err(e) => return Err(classify(&e, merging)),
            }
        }
        Ok(written)
    }

    /// Row `i` was refused: the batch stops naming it (`fail`), or it is set aside.
    fn refused(
        &self,
        plan: &Plan,
        batch_id: u64,
        rows: &Rows<'_>,
        i: usize,
        why: String,
        bad: &mut Vec<(usize, String)>,
    ) -> Result<(), Failure> {
        if self.on_bad_record == OnBadRecord::DeadLetter {
            bad.push((i, why));
            return Ok(());
        }
        let (b, r) = rows.locate(i);
        Err(Failure::Fatal(format!(
            "batch {batch_id}: row {i} {} was refused by table {}: {why}. Nothing of batch {batch_id} is committed; fix the row (or the table's constraints), or set on_bad_record = \"dead_letter\" in [sink] to send such rows to the dead-letter output and write the others",
            crate::deadletter::row_as_json(b, r),
            plan.table.display()
        )))
    }

    /// `DIR/batch-<N>.sink.jsonl`, written before the batch commits (a replay writes the same).
    fn write_dead_letters(
        &self,
        plan: &Plan,
        batch_id: u64,
        rows: &Rows<'_>,
        bad: &mut [(usize, String)],
    ) -> Result<(), String> {
        bad.sort_by_key(|(i, _)| *i);
        let origin = format!("postgres table {}", plan.table.display());
        let mut out = Vec::new();
        for (i, why) in bad.iter() {
            let (b, r) = rows.locate(*i);
            let record = BadRecord {
                origin: origin.clone(),
                line: None,
                reason: format!("row {i} of batch {batch_id}: {why}"),
                raw: crate::deadletter::row_as_json(b, r),
            };
            serde_json::to_writer(&mut out, &DeadLetterLine { batch_id, record: &record })
                .expect("serialising strings and numbers cannot fail");
            out.push(b'\n');
        }
        let path = self.dead_letter_dir.join(format!("batch-{batch_id}.sink.jsonl"));
        std::fs::create_dir_all(&self.dead_letter_dir)
            .and_then(|()| crate::atomic_file::write_atomic(&path, &out))
            .map_err(|e| format!("batch {batch_id}: writing the rows the table refused to {}: {e}", path.display()))
    }
}

#[derive(serde::Serialize)]
struct DeadLetterLine<'a> {
    batch_id: u64,
    #[serde(flatten)]
    record: &'a BadRecord,
}

/// Copies rows `from..to` through one COPY; returns the rows PostgreSQL took.
fn copy_rows(
    client: &mut Client,
    copy: &str,
    types: &[Type],
    rows: &Rows<'_>,
    from: usize,
    to: usize,
    row_numbers: bool,
) -> Result<u64, postgres::Error> {
    let sink = client.copy_in(copy)?;
    let mut w = BinaryCopyInWriter::new(sink, types);
    rows.write(&mut w, from, to, row_numbers)?;
    w.finish()
}

fn savepoint(client: &mut Client, statement: &str, batch_id: u64) -> Result<(), Failure> {
    client.batch_execute(statement).map_err(|e| classify(&e, |m| format!("batch {batch_id}: {statement}: {m}")))
}

fn client_query_one(client: &mut Client, sql: &str) -> Result<postgres::Row, Failure> {
    client_query_one_p(client, sql, &[])
}

fn client_query_one_p(
    client: &mut Client,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<postgres::Row, Failure> {
    client.query_one(sql, params).map_err(|e| classify(&e, |m| format!("{sql}: {m}")))
}

/// `what: m`, or `m` alone.
fn with_what(what: &str, m: String) -> String {
    if what.is_empty() {
        m
    } else {
        format!("{what}: {m}")
    }
}

/// A row's own fault: a value PostgreSQL cannot store (class 22) or a constraint it breaks
/// (class 23).
fn is_row_error(e: &postgres::Error) -> bool {
    e.code().is_some_and(|c| c.code().starts_with("22") || c.code().starts_with("23"))
}

/// Whether a new connection may fare better: the connection broke, the server is shutting
/// down or starting (57P01-57P03), out of resources (53), or a serialization failure.
fn retryable(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        None => e.as_db_error().is_none(),
        Some(c) => {
            let code = c.code();
            code.starts_with("08")
                || code.starts_with("57")
                || code.starts_with("53")
                || c == &SqlState::T_R_SERIALIZATION_FAILURE
                || c == &SqlState::T_R_DEADLOCK_DETECTED
        }
    }
}

fn classify(e: &postgres::Error, describe: impl FnOnce(String) -> String) -> Failure {
    let m = describe(db_message(e));
    if retryable(e) {
        Failure::Retry(m)
    } else {
        Failure::Fatal(m)
    }
}

/// The server's message with its SQLSTATE and detail, or the client's error.
fn db_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let detail = db.detail().map(|d| format!("; {d}")).unwrap_or_default();
            format!("{} (SQLSTATE {}{detail})", db.message(), db.code().code())
        }
        None => {
            let mut m = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                m = format!("{m}: {s}");
                source = s.source();
            }
            m
        }
    }
}

/// The line of a COPY the server names in its error's context (`COPY t, line 3`), 1-based.
fn copy_line(e: &postgres::Error) -> Option<usize> {
    let w = e.as_db_error()?.where_()?;
    let rest = &w[w.find(", line ")? + ", line ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The test hook `WEIR_TEST_PG_HOLD_BEFORE_COMMIT=<batch>:<path>` (once per process).
fn hold_before_commit(batch_id: u64) {
    let Ok(v) = std::env::var(HOLD_BEFORE_COMMIT_ENV) else { return };
    let Some((id, path)) = v.split_once(':') else { return };
    if id != batch_id.to_string() || HELD.swap(true, Ordering::SeqCst) {
        return;
    }
    let path = std::path::Path::new(path);
    let _ = std::fs::write(path, b"held");
    let until = Instant::now() + Duration::from_secs(120);
    while path.exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Sink for PostgresSink {
    fn description(&self) -> String {
        let mode = match &self.config.mode {
            PostgresMode::Append => "append".to_string(),
            PostgresMode::Upsert { key } => format!("upsert on {}", key.join(", ")),
        };
        let table = self.plan.as_ref().map_or(self.config.table.clone(), |p| p.table.display());
        format!("PostgresSink[{table} at {}, {mode}]", self.server)
    }

    fn start(&mut self, query_id: &str) -> Result<(), SinkError> {
        self.query_id = Some(query_id.to_string());
        self.with_retries("starting", Self::prepare)
    }

    fn set_schema(&mut self, schema: SchemaRef) -> Result<(), SinkError> {
        Self::check_columns(&self.config, &schema).map_err(|(field, e)| self.invalid(format!("`sink.{field}` {e}")))?;
        self.schema = schema;
        self.generation += 1;
        if self.plan.is_some() {
            self.with_retries("taking the output's new columns", Self::prepare)?;
        }
        Ok(())
    }

    fn write_batch(&mut self, batch_id: u64, data: &[RecordBatch]) -> Result<u64, SinkError> {
        let rows = Rows::new(data);
        // Columns other than the sink was made for (names or types): take them as a hot swap's.
        if let Some(b) = data.first() {
            let same = |a: &Schema, b: &Schema| {
                a.fields().len() == b.fields().len()
                    && a.fields()
                        .iter()
                        .zip(b.fields())
                        .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
            };
            if !same(&b.schema(), &self.schema) {
                self.set_schema(b.schema())?;
            }
        }
        let written = self.with_retries("", |s| s.attempt(batch_id, &rows))?;
        self.dead_letters = written.dead_letters;
        Ok(written.rows)
    }

    fn committed(&mut self, batch_id: u64) -> Result<bool, SinkError> {
        let last = self.with_retries("reading the progress table", Self::last_committed)?;
        Ok(last.is_some_and(|l| l >= batch_id as i64))
    }

    fn dead_letter_rows(&self) -> u64 {
        self.dead_letters
    }
}

/// Whether the progress table of `config` records batch `batch_id` (or a later one) of
/// `query_id` for its table, read without a schema and creating nothing (no progress table: no),
/// retried as the sink's other queries: a foreach_batch plugin's postgres output, not made yet
/// (it is made at its first emit), answers a restart's "is batch N committed" with this.
pub fn is_committed(config: &PostgresSinkConfig, query_id: &str, batch_id: u64) -> Result<bool, SinkError> {
    // Only the connection is used: no columns to check, no key to find among them.
    let probe = PostgresSinkConfig { mode: PostgresMode::Append, create_table: false, ..config.clone() };
    let mut sink = PostgresSink::new(&probe, OnBadRecord::Fail, SchemaRef::new(Schema::empty()), PathBuf::new())
        .map_err(|(field, e)| SinkError::Invalid(format!("`{field}` {e}")))?;
    sink.query_id = Some(query_id.to_string());
    let last = sink.with_retries("reading the progress table", PostgresSink::recorded_batch)?;
    Ok(last.is_some_and(|l| l >= batch_id as i64))
}

impl PostgresSink {
    /// The progress table's batch of this query and table, the names resolved as `prepare`
    /// does (the table's schema: the given one, else the server's current schema), without
    /// creating or checking anything.
    fn recorded_batch(&mut self) -> Result<Option<i64>, Failure> {
        let mut client = self.take_client()?;
        let result = (|| {
            let (schema_name, name) =
                crate::config::postgres_table_parts(&self.config.table).expect("checked with the job");
            let schema_of_table = match schema_name {
                Some(s) => s.to_string(),
                None => {
                    match client_query_one(&mut client, "SELECT current_schema()::text")?.get::<_, Option<String>>(0) {
                        Some(s) => s,
                        None => return Ok(None),
                    }
                }
            };
            let output = TableName { schema: schema_of_table.clone(), name: name.to_string() }.display();
            let (p_schema, p_name) =
                crate::config::postgres_table_parts(&self.config.progress_table).expect("checked with the job");
            let progress =
                TableName { schema: p_schema.map_or(schema_of_table, str::to_string), name: p_name.to_string() };
            let exists = client_query_one_p(&mut client, "SELECT to_regclass($1) IS NOT NULL", &[&progress.sql()])?
                .get::<_, bool>(0);
            if !exists {
                return Ok(None);
            }
            let sql = format!("SELECT batch_id FROM {} WHERE query_id = $1 AND output = $2", progress.sql());
            client
                .query_opt(&sql, &[&self.query_id(), &output])
                .map(|r| r.map(|r| r.get::<_, i64>(0)))
                .map_err(|e| classify(&e, |m| format!("reading {}: {m}", progress.display())))
        })();
        if !matches!(result, Err(Failure::Retry(_))) {
            self.client = Some(client);
        }
        result
    }
}

/// What `weir check` says of the sink: where, how, and where the password comes from (never
/// the password).
pub fn describe(c: &PostgresSinkConfig) -> String {
    let conn = &c.connection;
    let server = match &conn.url {
        Some(url) => crate::config::mask_url(&url.0),
        None => format!(
            "{}:{}{}",
            conn.host.as_deref().unwrap_or("localhost"),
            conn.port.unwrap_or(5432),
            conn.dbname.as_deref().map(|d| format!("/{d}")).unwrap_or_default()
        ),
    };
    let user = conn.user.as_deref().map(|u| format!(" as {u}")).unwrap_or_default();
    let password = match (&conn.password, &conn.password_env) {
        (Some(_), _) => ", password from the job file".to_string(),
        (None, Some(var)) => format!(", password from ${var}"),
        (None, None) => String::new(),
    };
    let mode = match &c.mode {
        PostgresMode::Append => "append (binary COPY)".to_string(),
        PostgresMode::Upsert { key } => {
            format!("upsert on ({}), the last row of a key in a batch wins", key.join(", "))
        }
    };
    let create = if c.create_table { ", created if missing" } else { "" };
    let bad = match c.on_bad_record {
        Some(OnBadRecord::DeadLetter) => ", refused rows to the dead-letter output",
        Some(OnBadRecord::Fail) => ", a refused row stops the job",
        None => "",
    };
    format!(
        "postgres table {}{create} at {server}{user}{password}: {mode}, a transaction per batch recorded in {}{bad}; server down: retried for {} s",
        c.table,
        c.progress_table,
        c.retry_timeout.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field};

    use super::*;
    use crate::config::{PostgresConnection, PostgresSinkConfig};

    fn config(mode: PostgresMode) -> PostgresSinkConfig {
        PostgresSinkConfig {
            connection: PostgresConnection {
                url: Some(crate::config::ConnectionUrl("postgres://u:hunter22@db:5432/app".into())),
                host: None,
                port: None,
                user: None,
                dbname: None,
                password: None,
                password_env: None,
            },
            table: "t".into(),
            mode,
            create_table: false,
            on_bad_record: None,
            retry_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            progress_table: "weir_sink_progress".into(),
        }
    }

    #[test]
    fn a_column_of_a_type_the_sink_cannot_write_is_refused_by_name() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("tags", DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), true),
        ]);
        let (field, e) = PostgresSink::check_columns(&config(PostgresMode::Append), &schema).unwrap_err();
        assert_eq!(field, "format");
        assert!(e.contains("columns of types the postgres sink cannot write: `tags` (unsupported(List"), "{e}");
        let schema = Schema::new(vec![Field::new("id", DataType::Int64, false)]);
        let (field, e) =
            PostgresSink::check_columns(&config(PostgresMode::Upsert { key: vec!["k".into()] }), &schema).unwrap_err();
        assert_eq!(
            (field, e.as_str()),
            ("key", "column `k` is not a column of the output (its columns: id); name output columns")
        );
    }

    #[test]
    fn the_description_and_weir_check_show_no_password() {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let sink =
            PostgresSink::new(&config(PostgresMode::Append), OnBadRecord::Fail, schema, PathBuf::from("dl")).unwrap();
        assert_eq!(sink.description(), "PostgresSink[t at db:5432/app, append]");
        let text = describe(&config(PostgresMode::Append));
        assert!(text.contains("at postgres://u:***@db:5432/app") && !text.contains("hunter22"), "{text}");
        assert_eq!(sink.scrub("auth for hunter22 failed".into()), "auth for *** failed");
    }
}
