//! The postgres sink against a real PostgreSQL server (scripts/postgres.sh starts it; scripts/
//! test.sh exports WEIR_PG_URL and WEIR_PG_PASSWORD), read back with psql: every row exactly
//! once through crashes, replays, refused rows and a server restarted mid-batch; the password
//! in no output.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// The test server: a URL without the password, and the password.
pub(crate) struct Pg {
    pub(crate) url: String,
    password: String,
}

/// The server of scripts/postgres.sh, or `None` (with a message) when WEIR_PG_URL is unset.
pub(crate) fn pg() -> Option<Pg> {
    match (std::env::var("WEIR_PG_URL"), std::env::var("WEIR_PG_PASSWORD")) {
        (Ok(url), Ok(password)) if !url.is_empty() => Some(Pg { url, password }),
        _ => {
            eprintln!(
                "skipped: WEIR_PG_URL is not set; run `eval \"$(scripts/postgres.sh start)\"` first (scripts/test.sh does)"
            );
            None
        }
    }
}

impl Pg {
    /// Runs SQL with psql; the rows, `|`-separated, one per line.
    pub(crate) fn sql(&self, sql: &str) -> String {
        let out = self.psql(sql);
        assert!(out.status.success(), "psql: {sql}\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn psql(&self, sql: &str) -> Output {
        Command::new("psql")
            .arg(&self.url)
            .args(["-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGPASSWORD", &self.password)
            .output()
            .expect("running psql")
    }

    pub(crate) fn lines(&self, sql: &str) -> Vec<String> {
        self.sql(sql).lines().map(str::to_string).collect()
    }

    /// The URL with the password in it.
    fn url_with_password(&self) -> String {
        self.url.replacen("://weir@", &format!("://weir:{}@", self.password), 1)
    }
}

/// A table name of its own for each test (tests share the server).
pub(crate) fn table(prefix: &str) -> String {
    format!("{prefix}_{}_{:x}", std::process::id(), rand::random::<u32>())
}

/// A job reading JSON files (one batch per file) into the postgres sink; `sink` adds fields
/// (the password comes from WEIR_PG_PASSWORD unless they set password_env).
fn job(s: &Scratch, pg: &Pg, schema: &str, table: &str, sink: &str) -> PathBuf {
    let password = if sink.contains("password_env") { "" } else { "password_env = \"WEIR_PG_PASSWORD\"" };
    s.job(&format!(
        r#"
[source]
format = "json"
path = "{{dir}}/in"
schema = "{schema}"
max_files_per_trigger = 1

[sink]
format = "postgres"
url = "{url}"
{password}
table = "{table}"
{sink}
checkpoint = "{{dir}}/ckpt"
trigger = {{ available_now = true }}
"#,
        url = pg.url
    ))
}

const ORDERS: &str = "id bigint, name string, amount double, ok boolean, n int, at timestamp, data binary";

fn order(id: i64, name: &str, amount: f64) -> String {
    format!(
        "{{\"id\":{id},\"name\":\"{name}\",\"amount\":{amount},\"ok\":{},\"n\":{},\"at\":\"2024-01-01T00:00:0{}Z\",\"data\":\"AAEC\"}}\n",
        id % 2 == 0,
        id * 10,
        id % 10
    )
}

fn wait_until(what: &str, limit: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn append_writes_every_row_once_with_the_documented_types() {
    let Some(pg) = pg() else { return };
    let s = Scratch::new();
    let t = table("append");
    s.write("in/a.json", &(order(1, "a", 1.5) + &order(2, "b", 2.25)));
    s.write(
        "in/b.json",
        &(order(3, "c", -3.0)
            + "{\"id\":4,\"name\":null,\"amount\":null,\"ok\":null,\"n\":null,\"at\":null,\"data\":null}\n"),
    );
    let job = job(&s, &pg, ORDERS, &t, "create_table = true");
    run_ok(&job);
    let types = pg.lines(&format!(
        "SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE table_name = '{t}' ORDER BY ordinal_position"
    ));
    assert_eq!(
        types,
        [
            "id bigint",
            "name text",
            "amount double precision",
            "ok boolean",
            "n integer",
            "at timestamp with time zone",
            "data bytea"
        ]
    );
    let rows = || {
        pg.lines(&format!(
            "SELECT id, name, amount, ok, n, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), encode(data, 'hex') FROM \"{t}\" ORDER BY id"
        ))
    };
    let want = [
        "1|a|1.5|f|10|2024-01-01 00:00:01|000102",
        "2|b|2.25|t|20|2024-01-01 00:00:02|000102",
        "3|c|-3|f|30|2024-01-01 00:00:03|000102",
        "4||||||",
    ];
    assert_eq!(rows(), want);
    let output = format!("public.{t}");
    assert_eq!(pg.lines(&format!("SELECT batch_id FROM weir_sink_progress WHERE output = '{output}'")), ["1"]);
    // A restart with nothing new, and a new file: each row still once.
    run_ok(&job);
    assert_eq!(rows(), want);
    s.write("in/c.json", &order(5, "e", 5.0));
    run_ok(&job);
    assert_eq!(rows().len(), 5);
    let p = progress(&s.path("ckpt"));
    let desc = p.last().unwrap()["sink"]["description"].as_str().unwrap().to_string();
    assert_eq!(desc, format!("PostgresSink[public.{t} at 127.0.0.1:{}/weir, append]", port(&pg)));
}

fn port(pg: &Pg) -> String {
    pg.url.rsplit(':').next().unwrap().split('/').next().unwrap().to_string()
}

#[test]
fn upsert_keeps_the_last_row_of_each_key_in_a_batch() {
    let Some(pg) = pg() else { return };
    let s = Scratch::new();
    let t = table("upsert");
    pg.sql(&format!(
        "CREATE TABLE \"{t}\" (id bigint PRIMARY KEY, name text, amount double precision, extra text DEFAULT 'kept')"
    ));
    pg.sql(&format!("INSERT INTO \"{t}\" (id, name, amount) VALUES (1, 'before', 0), (9, 'untouched', 9)"));
    s.write("in/a.json", "{\"id\":1,\"name\":\"a\",\"amount\":1}\n{\"id\":2,\"name\":\"b\",\"amount\":2}\n{\"id\":1,\"name\":\"c\",\"amount\":3}\n");
    s.write("in/b.json", "{\"id\":2,\"name\":\"d\",\"amount\":4}\n{\"id\":3,\"name\":\"e\",\"amount\":5}\n");
    let job = job(&s, &pg, "id bigint, name string, amount double", &t, "mode = \"upsert\"\nkey = [\"id\"]");
    run_ok(&job);
    let rows = pg.lines(&format!("SELECT id, name, amount, extra FROM \"{t}\" ORDER BY id"));
    assert_eq!(rows, ["1|c|3|kept", "2|d|4|kept", "3|e|5|kept", "9|untouched|9|kept"]);
    // Batch 1 replayed (a crash after the sink's commit and before the checkpoint's): skipped,
    // so a row changed since then in the table stays as it is.
    std::fs::remove_file(s.path("ckpt/commits/1")).unwrap();
    pg.sql(&format!("UPDATE \"{t}\" SET name = 'changed since' WHERE id = 3"));
    run_ok(&job);
    assert_eq!(pg.lines(&format!("SELECT name FROM \"{t}\" WHERE id = 3")), ["changed since"]);
    assert!(s.path("ckpt/commits/1").exists());
}

#[test]
fn a_batch_committed_before_a_sigkill_is_not_written_again() {
    let Some(pg) = pg() else { return };
    let s = Scratch::new();
    let t = table("crash");
    for (i, f) in ["a", "b", "c"].iter().enumerate() {
        let i = i as i64 * 2;
        s.write(&format!("in/{f}.json"), &(order(i + 1, f, 1.0) + &order(i + 2, f, 2.0)));
    }
    let job = job(&s, &pg, ORDERS, &t, "create_table = true");
    let out = weir().args(["run", "--quiet"]).arg(&job).env("WEIR_TEST_CRASH_AFTER_SINK_COMMIT", "1").output().unwrap();
    assert!(!out.status.success(), "the hook kills the process");
    assert!(s.path("ckpt/commits/0").exists() && !s.path("ckpt/commits/1").exists());
    let count = || pg.sql(&format!("SELECT count(*), count(DISTINCT id) FROM \"{t}\"")).trim().to_string();
    assert_eq!(count(), "4|4", "batches 0 and 1 are in the table");
    run_ok(&job);
    assert_eq!(count(), "6|6", "batch 1 was not written twice, batch 2 was written");
    assert!(s.path("ckpt/commits/1").exists() && s.path("ckpt/commits/2").exists());
}

/// A table with a check constraint and a primary key that one row breaks each way, and a
/// string PostgreSQL cannot store (a NUL character).
fn refusing_table(pg: &Pg, t: &str) {
    pg.sql(&format!("CREATE TABLE \"{t}\" (id bigint PRIMARY KEY, name text, amount double precision CONSTRAINT amount_not_negative CHECK (amount >= 0))"));
    pg.sql(&format!("INSERT INTO \"{t}\" VALUES (100, 'existing', 1)"));
}

const REFUSED: &str = "{\"id\":1,\"name\":\"a\",\"amount\":1}\n{\"id\":2,\"name\":\"b\",\"amount\":2}\n{\"id\":3,\"name\":\"neg\",\"amount\":-5}\n{\"id\":4,\"name\":\"d\",\"amount\":4}\n{\"id\":100,\"name\":\"dup\",\"amount\":1}\n{\"id\":6,\"name\":\"nul\\u0000\",\"amount\":6}\n{\"id\":7,\"name\":\"g\",\"amount\":7}\n";

#[test]
fn a_row_the_table_refuses_stops_the_job_naming_the_batch_and_the_row() {
    let Some(pg) = pg() else { return };
    let s = Scratch::new();
    let t = table("refuse");
    refusing_table(&pg, &t);
    s.write("in/a.json", REFUSED);
    let err = run_err(&job(&s, &pg, "id bigint, name string, amount double", &t, ""));
    assert!(
        err.contains(&format!("batch 0: row 2 {{\"amount\":\"-5.0\",\"id\":\"3\",\"name\":\"neg\"}} was refused by table public.{t}: new row for relation \"{t}\" violates check constraint \"amount_not_negative\" (SQLSTATE 23514")),
        "{err}"
    );
    assert!(err.contains("on_bad_record = \"dead_letter\""), "the error says how to go on: {err}");
    assert_eq!(pg.lines(&format!("SELECT id FROM \"{t}\" ORDER BY id")), ["100"], "nothing of the batch committed");
    assert!(!s.path("ckpt/commits/0").exists());
}

#[test]
fn under_dead_letter_refused_rows_go_to_the_dead_letters_and_the_others_land_once() {
    let Some(pg) = pg() else { return };
    for upsert in [false, true] {
        let s = Scratch::new();
        let t = table("dead");
        refusing_table(&pg, &t);
        s.write("in/a.json", REFUSED);
        let mode = if upsert { "mode = \"upsert\"\nkey = [\"id\"]\n" } else { "" };
        let job = job(
            &s,
            &pg,
            "id bigint, name string, amount double",
            &t,
            &format!("{mode}on_bad_record = \"dead_letter\""),
        );
        run_ok(&job);
        let rows = pg.lines(&format!("SELECT id, name FROM \"{t}\" ORDER BY id"));
        if upsert {
            // Row 4 updates the existing key 100 instead of breaking it.
            assert_eq!(rows, ["1|a", "2|b", "4|d", "7|g", "100|dup"]);
        } else {
            assert_eq!(rows, ["1|a", "2|b", "4|d", "7|g", "100|existing"]);
        }
        let dead_file = s.path("ckpt/dead_letter/batch-0.sink.jsonl");
        let dead: Vec<serde_json::Value> =
            std::fs::read_to_string(&dead_file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let reasons: Vec<&str> = dead.iter().map(|d| d["reason"].as_str().unwrap()).collect();
        let want_rows: &[usize] = if upsert { &[2, 5] } else { &[2, 4, 5] };
        assert_eq!(dead.len(), want_rows.len(), "{reasons:?}");
        for (d, row) in dead.iter().zip(want_rows) {
            assert_eq!(d["batch_id"], 0);
            assert_eq!(d["origin"], format!("postgres table public.{t}"));
            assert!(d["reason"].as_str().unwrap().starts_with(&format!("row {row} of batch 0: ")), "{d}");
        }
        assert!(reasons[0].contains("amount_not_negative"), "{reasons:?}");
        assert!(reasons.last().unwrap().contains("SQLSTATE 22021"), "the NUL character: {reasons:?}");
        if !upsert {
            assert!(reasons[1].contains("duplicate key value violates unique constraint"), "{reasons:?}");
            assert_eq!(dead[1]["raw"], "{\"amount\":\"1.0\",\"id\":\"100\",\"name\":\"dup\"}");
        }
        assert_eq!(progress(&s.path("ckpt"))[0]["numDeadLetterRows"], want_rows.len());
        // Replayed after a crash between the sink's commit and the checkpoint's: nothing twice.
        std::fs::remove_file(s.path("ckpt/commits/0")).unwrap();
        let before = std::fs::read_to_string(&dead_file).unwrap();
        run_ok(&job);
        assert_eq!(pg.lines(&format!("SELECT id, name FROM \"{t}\" ORDER BY id")), rows);
        assert_eq!(std::fs::read_to_string(&dead_file).unwrap(), before);
    }
}

/// A second server of its own (another directory and port), restarted while the sink holds a
/// batch's transaction open: the batch is retried and lands once, with every other batch.
#[test]
fn a_server_restarted_mid_batch_loses_and_doubles_nothing() {
    let Some(_) = pg() else { return };
    let server = Private::start("pg-restart-test", 55433);
    let pg = Pg { url: server.url.clone(), password: server.password.clone() };
    let s = Scratch::new();
    let t = table("restart");
    for i in 0..5i64 {
        s.write(&format!("in/{i}.json"), &(order(i * 2 + 1, "x", 1.0) + &order(i * 2 + 2, "y", 2.0)));
    }
    let job = s.job(&format!(
        r#"
[source]
format = "json"
path = "{{dir}}/in"
schema = "{ORDERS}"
max_files_per_trigger = 1

[sink]
format = "postgres"
url = "{}"
password_env = "WEIR_PG_RESTART_PASSWORD"
table = "{t}"
create_table = true
checkpoint = "{{dir}}/ckpt"
trigger = {{ available_now = true }}
"#,
        pg.url
    ));
    let hold = s.path("hold");
    let child = weir()
        .args(["run", "--quiet"])
        .arg(&job)
        .env("WEIR_PG_RESTART_PASSWORD", &pg.password)
        .env("WEIR_TEST_PG_HOLD_BEFORE_COMMIT", format!("2:{}", hold.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("batch 2 to wait before its commit", Duration::from_secs(60), || hold.exists());
    assert_eq!(pg.sql(&format!("SELECT count(*) FROM \"{t}\"")).trim(), "4", "batches 0 and 1 committed");
    server.script("restart");
    std::fs::remove_file(&hold).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warning: postgres sink") && stderr.contains("retrying in"), "{stderr}");
    assert_eq!(
        pg.sql(&format!("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM \"{t}\"")).trim(),
        "10|10|1|10"
    );
    assert!(!stderr.contains(&pg.password));
}

/// A server of scripts/postgres.sh in a directory and port of its own, stopped when dropped.
struct Private {
    env: Vec<(String, String)>,
    url: String,
    password: String,
}

impl Private {
    fn start(dir: &str, port: u16) -> Private {
        let env =
            vec![("WEIR_PG_DIR".to_string(), format!("target/{dir}")), ("WEIR_PG_PORT".to_string(), port.to_string())];
        let out = Command::new(repo().join("scripts/postgres.sh")).arg("start").envs(env.clone()).output().unwrap();
        assert!(out.status.success(), "scripts/postgres.sh start: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let var = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}='")))
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or_else(|| panic!("{name} in {text}"))
                .to_string()
        };
        Private { url: var("WEIR_PG_URL"), password: var("WEIR_PG_PASSWORD"), env }
    }

    fn script(&self, command: &str) {
        let out =
            Command::new(repo().join("scripts/postgres.sh")).arg(command).envs(self.env.clone()).output().unwrap();
        assert!(out.status.success(), "scripts/postgres.sh {command}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/postgres.sh")).arg("stop").envs(self.env.clone()).output();
    }
}

#[test]
fn a_server_that_stays_down_stops_the_job_after_retry_timeout() {
    let Some(pg) = pg() else { return };
    let s = Scratch::new();
    s.write("in/a.json", &order(1, "a", 1.0));
    // Nothing listens on port 9 of 127.0.0.1 (discard is not served here).
    let job = s.job(&format!(
        r#"
[source]
format = "json"
path = "{{dir}}/in"
schema = "{ORDERS}"

[sink]
format = "postgres"
url = "postgres://weir@127.0.0.1:9/weir"
password_env = "WEIR_PG_PASSWORD"
table = "never"
retry_timeout = "1 second"
checkpoint = "{{dir}}/ckpt"
trigger = {{ available_now = true }}
"#
    ));
    let t0 = Instant::now();
    let err = run_err(&job);
    assert!(err.contains("starting the sink (PostgresSink[never at 127.0.0.1:9/weir, append])"), "{err}");
    assert!(err.contains("(sink.retry_timeout = 1 s)") && err.contains("raise sink.retry_timeout"), "{err}");
    assert!(err.contains("warning: postgres sink") && err.contains("retrying in 100 ms"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert!(!err.contains(&pg.password));
}

/// The password is in no message, description, progress record, checkpoint file or
/// `weir check` output: given in the URL, in password_env, right or wrong.
#[test]
fn the_password_is_never_printed() {
    let Some(pg) = pg() else { return };
    let s = Scratch::new();
    let t = table("secret");
    s.write("in/a.json", &order(1, "a", 1.0));
    let url_job = |table: &str, extra: &str| {
        s.job(&format!(
            r#"
[source]
format = "json"
path = "{{dir}}/in"
schema = "{ORDERS}"

[sink]
format = "postgres"
url = "{}"
table = "{table}"
{extra}
checkpoint = "{{dir}}/ckpt"
trigger = {{ available_now = true }}
"#,
            pg.url_with_password()
        ))
    };
    let mut outputs: Vec<Output> = Vec::new();
    // A table that does not exist: an error that names the server and the table.
    let o = run_job(&url_job(&t, ""));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success() && err.contains(&format!("table public.{t} does not exist")), "{err}");
    outputs.push(o);
    // A run that writes, progress included, and `weir check`.
    let writes = url_job(&t, "create_table = true");
    outputs.push(run_ok(&writes));
    outputs.push(weir().args(["check"]).arg(&writes).output().unwrap());
    // A wrong password, from the environment.
    let wrong = "wrong-password-4f2a";
    let o = weir()
        .args(["run", "--quiet"])
        .arg(job(&s, &pg, ORDERS, &t, "password_env = \"WEIR_PG_WRONG\""))
        .env("WEIR_PG_WRONG", wrong)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success() && err.contains("password authentication failed for user \"weir\""), "{err}");
    assert!(!err.contains(wrong), "{err}");
    outputs.push(o);
    let mut seen = String::new();
    for o in &outputs {
        seen.push_str(&String::from_utf8_lossy(&o.stdout));
        seen.push_str(&String::from_utf8_lossy(&o.stderr));
    }
    for file in walk(&s.path("ckpt")) {
        if let Ok(text) = std::fs::read_to_string(&file) {
            seen.push_str(&text);
        }
    }
    assert!(seen.contains("PostgresSink["), "the description was looked at");
    assert!(!seen.contains(&pg.password), "the password was printed:\n{seen}");
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn start_refuses_a_table_that_cannot_take_the_rows() {
    let Some(pg) = pg() else { return };
    let t = table("shape");
    pg.sql(&format!("CREATE TABLE \"{t}\" (id bigint, name text, amount numeric)"));
    let cases = [
        (
            "",
            format!(
                "column `amount` of table public.{t} is numeric, but the output's `amount` is double (written as double precision): change the column (ALTER TABLE \"public\".\"{t}\" ALTER COLUMN \"amount\" TYPE double precision), or convert the value in a plugin"
            ),
        ),
        (
            "mode = \"upsert\"\nkey = [\"id\"]",
            format!(
                "mode = \"upsert\" needs a primary key or unique index on exactly (id) of table public.{t}, which has none: add one (ALTER TABLE \"public\".\"{t}\" ADD PRIMARY KEY (\"id\")), or name its columns in sink.key"
            ),
        ),
    ];
    for (extra, want) in cases {
        let s = Scratch::new();
        s.write("in/a.json", "{\"id\":1,\"name\":\"a\",\"amount\":1}\n");
        let err = run_err(&job(&s, &pg, "id bigint, name string, amount double", &t, extra));
        assert!(err.contains(&want), "want {want}\n got {err}");
    }
    let s = Scratch::new();
    s.write("in/a.json", "{\"id\":1,\"extra\":\"x\"}\n");
    let err = run_err(&job(&s, &pg, "id bigint, extra string", &t, ""));
    assert!(
        err.contains(&format!("table public.{t} has no column `extra` (text) of the output: add them, or set create_table = true in [sink] to have them added")),
        "{err}"
    );
}

/// SIGKILL at random moments (several rounds; the seed is printed, WEIR_CRASH_SEED reruns one),
/// restarted until the job finishes: every row is in the table exactly once.
#[test]
fn killed_at_random_moments_every_row_lands_once() {
    use rand::{Rng, SeedableRng};
    let Some(pg) = pg() else { return };
    let base_seed: u64 = match std::env::var("WEIR_CRASH_SEED") {
        Ok(s) => s.parse().expect("WEIR_CRASH_SEED must be a number"),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
    };
    let input = |s: &Scratch| {
        for f in 0..40i64 {
            let text: String = (0..100).map(|r| order(f * 100 + r + 1, "k", r as f64)).collect();
            s.write(&format!("in/f{f:02}.json"), &text);
        }
    };
    // How long a whole run takes here, so that kills land while the job runs.
    let reference = Scratch::new();
    input(&reference);
    let started = Instant::now();
    run_ok(&job(&reference, &pg, ORDERS, &table("killref"), "create_table = true"));
    let full_run = started.elapsed().as_millis() as u64;
    for round in 0..4u64 {
        let seed = base_seed.wrapping_add(round);
        eprintln!("postgres crash round {round}: seed {seed}");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let s = Scratch::new();
        let t = table("kill");
        input(&s);
        let mode = if round % 2 == 1 {
            "mode = \"upsert\"\nkey = [\"id\"]\ncreate_table = true"
        } else {
            "create_table = true"
        };
        let job = job(&s, &pg, ORDERS, &t, mode);
        let mut kills = 0;
        for attempt in 0.. {
            let mut child = weir().args(["run", "--quiet"]).arg(&job).stderr(Stdio::piped()).spawn().unwrap();
            let mut killed = false;
            if attempt < 6 {
                std::thread::sleep(Duration::from_millis(rng.random_range(full_run / 10..=full_run * 2 / 3)));
                if child.try_wait().unwrap().is_none() {
                    let _ = Command::new("kill").arg("-KILL").arg(child.id().to_string()).status();
                    killed = true;
                    kills += 1;
                }
            }
            let out = child.wait_with_output().unwrap();
            if out.status.success() {
                break;
            }
            assert!(killed, "seed {seed}: the job failed by itself: {}", String::from_utf8_lossy(&out.stderr));
        }
        eprintln!("postgres crash round {round}: {kills} kills (a whole run: {full_run} ms)");
        assert!(kills > 0 || round > 0, "seed {seed}: no kill landed while the job ran");
        assert_eq!(
            pg.sql(&format!("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM \"{t}\"")).trim(),
            "4000|4000|1|4000",
            "seed {seed}"
        );
        assert_eq!(pg.lines(&format!("SELECT batch_id FROM weir_sink_progress WHERE output = 'public.{t}'")), ["39"]);
    }
}

/// A hot swap that adds a nullable column (tests/plugins/tagger "wide"): with create_table the
/// sink adds the column to the table, later batches fill it, and every row lands once.
#[test]
fn a_hot_swap_that_adds_a_column_adds_it_to_the_table() {
    use crate::hot_swap::{start, stop, swap, tagger};
    let Some(pg) = pg() else { return };
    let s = Scratch::new();
    let t = table("swap");
    let (v1, wide) = (tagger("v1"), tagger("wide"));
    let job = s.job(&format!(
        r#"
[admin]
listen = "127.0.0.1:0"
probation_batches = 3

[source]
format = "rate"
rows_per_second = 4000

[[operator]]
kind = "map"
plugin = "{}"

[sink]
format = "postgres"
url = "{}"
password_env = "WEIR_PG_PASSWORD"
table = "{t}"
create_table = true
checkpoint = "{{dir}}/ckpt"
trigger = {{ processing_time = "50 milliseconds" }}
"#,
        v1.display(),
        pg.url
    ));
    let committed = || progress(&s.path("ckpt")).len();
    let (child, addr) = start(&s, &job);
    wait_until("3 batches", Duration::from_secs(60), || committed() >= 3);
    swap(&addr, &wide);
    let at = committed();
    wait_until("5 more batches", Duration::from_secs(60), || committed() >= at + 5);
    stop(child);
    let columns = pg.lines(&format!(
        "SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE table_name = '{t}' ORDER BY ordinal_position"
    ));
    assert_eq!(columns, ["timestamp timestamp with time zone", "value bigint", "version text", "extra bigint"]);
    let stats = pg.sql(&format!("SELECT count(*) = count(DISTINCT value) AND count(*) = max(value) + 1 AND min(value) = 0, count(*) FILTER (WHERE version = 'wide') > 0, count(*) FILTER (WHERE (version = 'wide') <> (extra IS NOT NULL)) FROM \"{t}\""));
    assert_eq!(stats.trim(), "t|t|0", "every value once; the wide version's rows, and only they, have extra");
}

/// A role without CREATE on the schema (PostgreSQL 15's default on `public` for roles that do not
/// own the database) writes to a table and a progress table an administrator made; without the
/// progress table, the error says what is missing and what to do.
#[test]
fn a_role_without_create_writes_to_tables_an_administrator_made() {
    let Some(pg) = pg() else { return };
    let Ok(admin) = std::env::var("WEIR_PG_ADMIN") else {
        eprintln!("skipped: WEIR_PG_ADMIN (scripts/postgres.sh's superuser connection) is not set");
        return;
    };
    let admin = admin.replace("dbname=postgres", "dbname=weir");
    let as_admin = |sql: &str| {
        let out =
            Command::new("psql").arg(&admin).args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]).output().unwrap();
        assert!(out.status.success(), "psql (admin): {sql}\n{}", String::from_utf8_lossy(&out.stderr));
    };
    let schema = table("locked");
    as_admin(&format!(
        "CREATE SCHEMA \"{schema}\"; CREATE TABLE \"{schema}\".t (id bigint PRIMARY KEY, name text, amount double precision); \
         CREATE TABLE \"{schema}\".weir_sink_progress (query_id text NOT NULL, output text NOT NULL, batch_id bigint NOT NULL, committed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (query_id, output)); \
         GRANT USAGE ON SCHEMA \"{schema}\" TO weir; GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA \"{schema}\" TO weir"
    ));
    let s = Scratch::new();
    s.write("in/a.json", "{\"id\":1,\"name\":\"a\",\"amount\":1}\n{\"id\":1,\"name\":\"b\",\"amount\":2}\n");
    let t = format!("{schema}.t");
    run_ok(&job(&s, &pg, "id bigint, name string, amount double", &t, "mode = \"upsert\"\nkey = [\"id\"]"));
    assert_eq!(pg.lines(&format!("SELECT id, name, amount FROM \"{schema}\".t")), ["1|b|2"]);
    as_admin(&format!("DROP TABLE \"{schema}\".weir_sink_progress"));
    let s = Scratch::new();
    s.write("in/a.json", "{\"id\":2,\"name\":\"c\",\"amount\":3}\n");
    let err = run_err(&job(&s, &pg, "id bigint, name string, amount double", &t, ""));
    assert!(
        err.contains(&format!("creating {schema}.weir_sink_progress: permission denied for schema {schema} (SQLSTATE 42501); the role needs CREATE on the schema, or create it beforehand (docs/postgres.md)")),
        "{err}"
    );
    as_admin(&format!("DROP SCHEMA \"{schema}\" CASCADE"));
}

/// A server that accepts connections and never answers: each attempt gives up after
/// connect_timeout, and the job after retry_timeout (the client's own timeout covers only the
/// TCP connect).
#[test]
fn a_server_that_never_answers_is_given_up_after_connect_timeout() {
    let Some(pg) = pg() else { return };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    let s = Scratch::new();
    s.write("in/a.json", &order(1, "a", 1.0));
    let job = s.job(&format!(
        r#"
[source]
format = "json"
path = "{{dir}}/in"
schema = "{ORDERS}"

[sink]
format = "postgres"
url = "postgres://weir@127.0.0.1:{port}/weir"
password_env = "WEIR_PG_PASSWORD"
table = "never"
connect_timeout = "300 ms"
retry_timeout = "1 second"
checkpoint = "{{dir}}/ckpt"
trigger = {{ available_now = true }}
"#
    ));
    let t0 = Instant::now();
    let err = run_err(&job);
    assert!(err.contains("connecting: no answer from the server within 300 ms (sink.connect_timeout)"), "{err}");
    assert!(err.contains("(sink.retry_timeout = 1 s)"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert!(!err.contains(&pg.password));
}
