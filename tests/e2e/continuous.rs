//! The continuous trigger: records go through as they arrive, and every interval an epoch is
//! checkpointed (offsets, the sink's commit, commits). Rate → console prints every value once, in
//! epochs whose ranges chain; a checkpoint moves between continuous and micro-batch runs; Kafka →
//! plugin → Kafka under SIGKILL gives every record once to a `read_committed` reader; a hot swap
//! takes effect at an epoch boundary.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

use crate::common::*;
use crate::hot_swap::{swap, tagger, wait_until};
use crate::pipeline::send_signal;

/// The rows a console sink printed: (batch id, cells of the row), in order.
fn printed_rows(stdout: &str) -> Vec<(u64, Vec<String>)> {
    let (mut batch, mut header) = (None, false);
    let mut rows = Vec::new();
    for line in stdout.lines() {
        if let Some(id) = line.strip_prefix("Batch: ") {
            (batch, header) = (Some(id.trim().parse::<u64>().unwrap()), true);
        } else if line.starts_with("| ") && std::mem::take(&mut header) {
            // The table's column names.
        } else if line.starts_with("| ") {
            let cells = line.trim_matches('|').split('|').map(|c| c.trim().to_string()).collect();
            rows.push((batch.expect("a row after a Batch: header"), cells));
        }
    }
    rows
}

/// A running `weir run`, killed if the test fails before it stops it; stdout and stderr go to
/// files beside the job (a pipe nobody reads would fill and stop the job).
struct Running {
    child: Child,
    stdout: std::path::PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `weir run job`.
fn spawn(job: &Path) -> Running {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let stdout = job.with_extension(format!("{n}.out"));
    let child = weir()
        .args(["run", "--quiet"])
        .arg(job)
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(job.with_extension(format!("{n}.err"))).unwrap())
        .spawn()
        .unwrap();
    Running { child, stdout }
}

/// Stops a run with Ctrl-C (the epoch in progress commits) and returns what it printed.
fn stop_and_read(mut run: Running) -> String {
    send_signal(run.child.id(), "INT");
    let status = run.child.wait().unwrap();
    let err = std::fs::read_to_string(run.stdout.with_extension("err")).unwrap_or_default();
    assert!(status.success(), "weir failed: {status:?}: {err}");
    std::fs::read_to_string(&run.stdout).unwrap()
}

fn rate_job(s: &Scratch, name: &str, trigger: &str) -> std::path::PathBuf {
    s.write(
        name,
        &format!(
            r#"
[source]
format = "rate"
rows_per_second = 200

[sink]
format = "console"
num_rows = 100000
checkpoint = "{}/ckpt"
trigger = {trigger}
"#,
            s.dir.path().display()
        ),
    )
}

/// The offsets log's rate ranges per batch: (batch, start, end).
fn rate_ranges(s: &Scratch) -> Vec<(u64, i64, i64)> {
    let mut out: Vec<(u64, i64, i64)> = std::fs::read_dir(s.path("ckpt/offsets"))
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let id: u64 = e.file_name().to_str()?.parse().ok()?;
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
            Some((id, v["source"]["start"].as_i64().unwrap(), v["source"]["end"].as_i64().unwrap()))
        })
        .collect();
    out.sort();
    out
}

/// Rate → console, continuous, then micro-batch, then continuous again on the same checkpoint:
/// every value is printed once, in order, in the epoch whose range holds it, and each run goes
/// on exactly where the last one stopped.
#[test]
fn rate_to_console_runs_continuously_and_a_checkpoint_moves_between_trigger_kinds() {
    let s = Scratch::new();
    let continuous = rate_job(&s, "continuous.toml", r#"{ continuous = "200 milliseconds" }"#);
    let micro = rate_job(&s, "micro.toml", r#"{ processing_time = "100 milliseconds" }"#);
    let mut printed = Vec::new();
    for (job, kind) in [(&continuous, "continuous"), (&micro, "micro-batch"), (&continuous, "continuous")] {
        let child = spawn(job);
        std::thread::sleep(Duration::from_millis(1500));
        let rows = printed_rows(&stop_and_read(child));
        assert!(rows.len() >= 100, "{kind}: only {} rows in 1.5 s at 200 rows/s", rows.len());
        printed.extend(rows);
    }
    // Every value once, in order, across the three runs.
    for (i, (batch, cells)) in printed.iter().enumerate() {
        assert_eq!(cells[1], i.to_string(), "row {i} (batch {batch}): a value lost or repeated");
    }
    // The epochs' ranges chain, every batch has a commit, and each row is in its batch's range.
    let ranges = rate_ranges(&s);
    for w in ranges.windows(2) {
        assert_eq!((w[1].0, w[1].1), (w[0].0 + 1, w[0].2), "ranges {:?} and {:?} do not chain", w[0], w[1]);
    }
    let commits = std::fs::read_dir(s.path("ckpt/commits")).unwrap().count();
    assert_eq!(commits, ranges.len(), "every epoch and batch committed");
    assert_eq!(ranges.last().unwrap().2 as usize, printed.len(), "the last range ends at the last value printed");
    for (batch, cells) in &printed {
        let v: i64 = cells[1].parse().unwrap();
        let (_, start, end) = ranges[*batch as usize];
        assert!((start..end).contains(&v), "value {v} printed in batch {batch}, whose range is {start}..{end}");
    }
    // Epochs report progress as batches do.
    let p = progress(&s.path("ckpt"));
    assert_eq!(p.len(), ranges.len());
    let input: u64 = p.iter().map(|r| r["numInputRows"].as_u64().unwrap()).sum();
    assert_eq!(input as usize, printed.len());
}

fn produce_events(servers: &str, topic: &str, from: u64, to: u64, per_second: u64) {
    let p: BaseProducer = ClientConfig::new().set("bootstrap.servers", servers).set("linger.ms", "1").create().unwrap();
    let started = Instant::now();
    for n in from..to {
        let due = started + Duration::from_micros((n - from) * 1_000_000 / per_second);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let value = format!("{{\"id\":{n},\"amount\":{}.0}}", n % 10);
        let mut rec = BaseRecord::<[u8], [u8]>::to(topic).partition((n % 2) as i32).payload(value.as_bytes());
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    p.poll(Duration::from_millis(5));
                }
            }
        }
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(10)).unwrap();
}

/// The ids in `topic` (one partition), as a reader with `isolation` sees them, to the end
/// (markers left out).
fn output_ids(servers: &str, topic: &str, isolation: &str) -> Vec<u64> {
    crate::kafka::log_of(servers, topic, isolation)
        .into_iter()
        // Keyed records are the sink's epoch markers (on the mock, in the output topic).
        .filter(|(_, key, _)| key.is_none())
        .map(|(_, _, value)| serde_json::from_str::<serde_json::Value>(&value).unwrap()["id"].as_u64().unwrap())
        .collect()
}

fn kafka_job(s: &Scratch, name: &str, servers: &str, topics: &Topics, trigger: &str) -> std::path::PathBuf {
    // On the mock cluster the markers go into the output partition, after their epoch's records
    // (see `kafka::committed_on_the_mock`); a real broker gets the default marker topic.
    let marker = match &topics.marker {
        Some(m) => format!("marker_topic = \"{m}\"\n"),
        None => String::new(),
    };
    s.write(
        name,
        &format!(
            r#"
[source]
format = "kafka"
subscribe = ["{input}"]
starting_offsets = "earliest"
value_format = "json"
schema = "id bigint, amount double"
kafka = {{ "bootstrap.servers" = "{servers}" }}

[[operator]]
kind = "map"
plugin = "{}"
config = "min_amount=5"

[sink]
format = "kafka"
topic = "{output}"
{marker}kafka = {{ "bootstrap.servers" = "{servers}" }}
checkpoint = "{}/ckpt"
trigger = {trigger}
"#,
            plugin("filter").display(),
            s.dir.path().display(),
            input = topics.input,
            output = topics.output,
        ),
    )
}

/// A test's own topics on the shared broker.
struct Topics {
    input: String,
    output: String,
    marker: Option<String>,
}

impl Topics {
    fn new(servers: &str, test: &str) -> Topics {
        let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let t = Topics { input: format!("{test}-{run}-in"), output: format!("{test}-{run}-out"), marker: None };
        crate::kafka::create_topic(servers, &t.input, 2);
        crate::kafka::create_topic(servers, &t.output, 1);
        t
    }
}

/// The real Kafka broker scripts/kafka.sh starts (transactions need one: tansu has none, and
/// librdkafka's mock cluster shows aborted transactions' records to read_committed readers).
fn real_kafka(test: &str) -> Option<String> {
    let servers = std::env::var("WEIR_KAFKA").ok();
    if servers.is_none() {
        eprintln!("{test}: skipped: WEIR_KAFKA is not set (scripts/test.sh starts Apache Kafka and sets it)");
    }
    servers
}

const TOTAL: u64 = 4000;

/// Kafka → filter plugin → Kafka while records arrive at 1,000/s: five runs SIGKILLed at random
/// moments (the fourth as micro-batches), then a last continuous run until every kept record
/// is in. Returns each run's time span (ms) and the kept ids.
fn run_with_kills(servers: &str, topics: &Topics) -> (Vec<(i64, i64)>, Vec<u64>) {
    use rand::{Rng, SeedableRng};
    let s = Scratch::new();
    let continuous = kafka_job(&s, "continuous.toml", servers, topics, r#"{ continuous = "200 milliseconds" }"#);
    let micro = kafka_job(&s, "micro.toml", servers, topics, r#"{ processing_time = "0 seconds" }"#);
    let producer = {
        let (servers, input) = (servers.to_string(), topics.input.clone());
        std::thread::spawn(move || produce_events(&servers, &input, 0, TOTAL, 1000))
    };
    let seed = crash_seed();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut runs = Vec::new();
    for round in 0..5 {
        let job = if round == 3 { &micro } else { &continuous };
        let start = crate::kafka::now_ms();
        let mut run = spawn(job);
        std::thread::sleep(Duration::from_millis(rng.random_range(500..2000)));
        let killed = run.child.try_wait().unwrap().is_none();
        if killed {
            run.child.kill().unwrap();
        }
        let status = run.child.wait().unwrap();
        let err = std::fs::read_to_string(run.stdout.with_extension("err")).unwrap_or_default();
        assert!(
            killed && status.code().is_none(),
            "seed {seed}: weir stopped on its own in round {round}: {status:?}: {err}"
        );
        runs.push((start, crate::kafka::now_ms()));
    }
    producer.join().unwrap();
    let want: Vec<u64> = (0..TOTAL).filter(|n| n % 10 >= 5).collect();
    let start = crate::kafka::now_ms();
    let run = spawn(&continuous);
    wait_until("every kept record in the output", || {
        let mut seen = output_ids(servers, &topics.output, "read_uncommitted");
        seen.sort();
        seen.dedup();
        seen.len() >= want.len()
    });
    // Two more epochs: the last records' epoch commits.
    std::thread::sleep(Duration::from_millis(500));
    stop_and_read(run);
    runs.push((start, crate::kafka::now_ms()));
    eprintln!("seed {seed}: 5 kills; rerun with WEIR_CRASH_SEED={seed}");
    (runs, want)
}

/// Kafka → filter plugin → Kafka, continuous, SIGKILLed at random moments while records arrive
/// (one run as micro-batches): every kept record is in exactly one committed transaction, and a
/// `read_uncommitted` reader sees each at least once. On librdkafka's mock cluster, which has no
/// transaction semantics, the committed transactions are rebuilt from the epoch markers (see
/// `kafka::committed_on_the_mock`); the next test checks the same on a real broker's read_committed.
#[test]
fn kafka_to_plugin_to_kafka_continuously_is_exactly_once_across_sigkills_and_trigger_switches() {
    let cluster = rdkafka::mocking::MockCluster::new(1).expect("librdkafka's mock cluster");
    let servers = cluster.bootstrap_servers();
    let topics = Topics { input: "in".into(), output: "out".into(), marker: Some("out".into()) };
    cluster.create_topic("in", 2, 1).unwrap();
    cluster.create_topic("out", 1, 1).unwrap();
    let (runs, want) = run_with_kills(&servers, &topics);
    let log = crate::kafka::log_of(&servers, "out", "read_uncommitted");
    let got = crate::kafka::committed_on_the_mock(&log, &runs, |v| {
        serde_json::from_str::<serde_json::Value>(v).unwrap()["id"].as_u64().unwrap().to_string()
    });
    let mut got: Vec<u64> = got.iter().map(|id| id.parse().unwrap()).collect();
    got.sort();
    assert_eq!(got.len(), want.len(), "{} records in committed transactions", got.len());
    assert_eq!(got, want);
    let mut seen = output_ids(&servers, "out", "read_uncommitted");
    seen.sort();
    seen.dedup();
    assert_eq!(seen, want, "a read_uncommitted reader sees every kept record");
}

/// The same on a real broker (WEIR_KAFKA): a `read_committed` reader sees every kept record
/// exactly once. Skipped where no broker with transactions can run (tansu has none).
#[test]
fn kafka_to_plugin_to_kafka_continuously_is_exactly_once_read_committed_on_a_real_broker() {
    let Some(servers) = real_kafka("continuous kafka exactly-once on a real broker") else { return };
    let topics = Topics::new(&servers, "continuous-eos");
    let (_, want) = run_with_kills(&servers, &topics);
    let mut got = output_ids(&servers, &topics.output, "read_committed");
    got.sort();
    assert_eq!(got, want);
}

/// Epochs the checkpoint has committed.
fn epochs(s: &Scratch) -> usize {
    std::fs::read_dir(s.path("ckpt/commits")).map(|d| d.count()).unwrap_or(0)
}

/// Starts rate (500 rows/s) → `first` (a tagger) → console, continuous with 200 ms epochs and an
/// admin API (probation: 3 epochs); returns once 3 epochs are committed.
fn start_swappable(s: &Scratch, first: &Path) -> Running {
    let job = s.job(&format!(
        r#"
[admin]
listen = "127.0.0.1:0"
probation_batches = 3

[source]
format = "rate"
rows_per_second = 500

[[operator]]
kind = "map"
plugin = "{}"

[sink]
format = "console"
num_rows = 100000
checkpoint = "{{dir}}/ckpt"
trigger = {{ continuous = "200 milliseconds" }}
"#,
        first.display()
    ));
    let run = spawn(&job);
    wait_until("the admin API", || s.path("ckpt/admin-address").exists());
    wait_until("3 epochs", || epochs(s) >= 3);
    run
}

/// Swaps in `wasm` and waits for 3 more epochs; returns the API's answer.
fn swap_and_wait(s: &Scratch, wasm: &Path) -> serde_json::Value {
    let answer = swap(&s.path("ckpt").display().to_string(), wasm);
    let at = epochs(s);
    wait_until("3 more epochs", || epochs(s) >= at + 3);
    answer
}

/// A hot swap in continuous mode takes effect between two epochs: every epoch is wholly one
/// version's, the new one from the epoch the API answered, and no row is lost or repeated.
#[test]
fn a_hot_swap_takes_effect_at_an_epoch_boundary() {
    let s = Scratch::new();
    let run = start_swappable(&s, &tagger("v1"));
    let first_v2 = swap_and_wait(&s, &tagger("v2"))["first_batch"].as_u64().unwrap();
    let rows = printed_rows(&stop_and_read(run));
    assert!(rows.iter().any(|(_, c)| c[2] == "v2"), "v2 ran");
    for (i, (batch, cells)) in rows.iter().enumerate() {
        assert_eq!(cells[1], i.to_string(), "row {i} (epoch {batch}): a value lost or repeated");
        let want = if *batch < first_v2 { "v1" } else { "v2" };
        assert_eq!(cells[2], want, "value {} in epoch {batch} (v2 from epoch {first_v2})", cells[1]);
    }
}

/// A version that fails on probation in continuous mode is rolled back, and the epoch it failed
/// in starts again from its beginning with the old version: no row is lost, repeated or written
/// by the broken version.
#[test]
fn a_version_that_fails_on_probation_is_rolled_back_and_its_epoch_read_again() {
    let s = Scratch::new();
    let run = start_swappable(&s, &tagger("v1"));
    swap_and_wait(&s, &tagger("broken"));
    let rows = printed_rows(&stop_and_read(run));
    for (i, (epoch, cells)) in rows.iter().enumerate() {
        assert_eq!(cells[1], i.to_string(), "row {i} (epoch {epoch}): a value lost or repeated");
        assert_eq!(cells[2], "v1", "value {} in epoch {epoch} by another version than v1", cells[1]);
    }
    let events: Vec<String> = progress(&s.path("ckpt"))
        .iter()
        .flat_map(|p| p["pluginEvents"].as_array().cloned().unwrap_or_default())
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events, ["swap", "rollback"]);
}

/// The `[source]` of a job reading JSON orders (`id_column`, `amount double`) from topic `orders`
/// on `servers`, from its start.
fn orders_source(servers: &str, id_column: &str) -> String {
    format!(
        "[source]\nformat = \"kafka\"\nsubscribe = [\"orders\"]\nstarting_offsets = \"earliest\"\nvalue_format = \"json\"\nschema = \"{id_column}, amount double\"\nkafka = {{ \"bootstrap.servers\" = \"{servers}\" }}"
    )
}

/// The continuous Kafka source against a broker process (tansu): records print as they arrive,
/// a value that is not JSON goes to the dead-letter output of its epoch, named by partition and
/// offset, and the epochs' ranges cover every offset once.
#[test]
fn a_kafka_source_read_continuously_prints_records_and_keeps_bad_ones_as_dead_letters() {
    let broker = crate::kafka::Broker::start();
    crate::kafka::create_topic(&broker.addr, "orders", 1);
    let s = Scratch::new();
    let job = s.job(&format!(
        r#"
on_bad_record = "dead_letter"

{}

[sink]
format = "console"
num_rows = 1000
checkpoint = "{{dir}}/ckpt"
trigger = {{ continuous = "200 milliseconds" }}
"#,
        orders_source(&broker.addr, "order_id string")
    ));
    let run = spawn(&job);
    let values: Vec<String> = (0..6)
        .map(|i| if i == 3 { "{not json".to_string() } else { format!("{{\"order_id\":\"o{i}\",\"amount\":{i}.5}}") })
        .collect();
    let records: Vec<(i32, Option<&str>, &str)> = values.iter().map(|v| (0, None, v.as_str())).collect();
    crate::kafka::produce(&broker.addr, "orders", &records);
    let offsets = || std::fs::read_dir(s.path("ckpt/offsets")).map(|d| d.count()).unwrap_or(0);
    wait_until("an epoch with the records", || offsets() >= 1 && std::fs::read_dir(s.path("ckpt/dead_letter")).is_ok());
    std::thread::sleep(Duration::from_millis(500));
    let rows = printed_rows(&stop_and_read(run));
    let ids: Vec<&str> = rows.iter().map(|(_, c)| c[0].as_str()).collect();
    assert_eq!(ids, ["o0", "o1", "o2", "o4", "o5"]);
    let dead: String = std::fs::read_dir(s.path("ckpt/dead_letter"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(dead.contains("kafka topic \\\"orders\\\" partition 0 offset 3") && dead.contains("{not json"), "{dead}");
    // The epochs' ranges chain from 0 to 6.
    let mut ranges: Vec<[i64; 2]> = std::fs::read_dir(s.path("ckpt/offsets"))
        .unwrap()
        .map(|e| {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
            serde_json::from_value(v["source"]["offsets"]["orders"]["0"].clone()).unwrap()
        })
        .collect();
    ranges.sort();
    assert_eq!(ranges.first().unwrap()[0], 0);
    assert_eq!(ranges.last().unwrap()[1], 6);
    assert!(ranges.windows(2).all(|w| w[0][1] == w[1][0]), "{ranges:?}");
}

/// foreach, continuously: each piece of an epoch goes to the plugin as it arrives, in calls of
/// `rows_per_call` rows whose write ids go on from the epoch's earlier pieces, and every row
/// reaches its output once (a graceful stop: nothing is replayed).
#[test]
fn foreach_runs_continuously_writing_each_call_as_it_returns() {
    let broker = crate::kafka::Broker::start();
    crate::kafka::create_topic(&broker.addr, "orders", 1);
    let s = Scratch::new();
    let job = s.job(&format!(
        r#"
{}

[sink]
format = "foreach"
rows_per_call = 2
plugin = "{{plugin:router-raw}}"
checkpoint = "{{dir}}/ckpt"
trigger = {{ continuous = "1 second" }}

[[sink.output]]
name = "big"
format = "json"
path = "{{dir}}/out/big"

[[sink.output]]
name = "small"
format = "json"
path = "{{dir}}/out/small"

[[sink.output]]
name = "counts"
format = "csv"
path = "{{dir}}/out/counts"
"#,
        orders_source(&broker.addr, "id string")
    ));
    let run = spawn(&job);
    let values: Vec<String> = (0..6).map(|i| format!("{{\"id\":\"o{i}\",\"amount\":{}.0}}", i * 40)).collect();
    // In two bursts, so that the epoch gets its rows in more than one piece.
    let records: Vec<(i32, Option<&str>, &str)> = values.iter().map(|v| (0, None, v.as_str())).collect();
    crate::kafka::produce(&broker.addr, "orders", &records[..3]);
    std::thread::sleep(Duration::from_millis(300));
    crate::kafka::produce(&broker.addr, "orders", &records[3..]);
    wait_until("six rows counted", || {
        let text =
            std::fs::read_dir(s.path("out/counts")).map(|_| committed_text(&s.path("out/counts"))).unwrap_or_default();
        text.lines()
            .filter(|l| !l.starts_with("batch_id"))
            .map(|l| l.split(',').nth(1).unwrap().parse::<u64>().unwrap())
            .sum::<u64>()
            >= 6
    });
    stop_and_read(run);
    assert_eq!(
        committed_text(&s.path("out/big")),
        "{\"id\":\"o3\",\"amount\":120.0}\n{\"id\":\"o4\",\"amount\":160.0}\n{\"id\":\"o5\",\"amount\":200.0}\n"
    );
    assert_eq!(
        committed_text(&s.path("out/small")),
        "{\"id\":\"o0\",\"amount\":0.0}\n{\"id\":\"o1\",\"amount\":40.0}\n{\"id\":\"o2\",\"amount\":80.0}\n"
    );
    // Write ids: epoch × 1,000,000 + call, numbered on across an epoch's pieces (no id twice).
    let mut ids: Vec<u64> = std::fs::read_dir(s.path("out/counts/_weir_log"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.parse().ok())
        .collect();
    ids.sort();
    assert!(ids.len() >= 3, "six rows in calls of at most 2: {ids:?}");
    for w in ids.windows(2) {
        let (a, b) = (w[0], w[1]);
        assert!(b == a + 1 || b / 1_000_000 > a / 1_000_000, "write ids {a} then {b}: a call number skipped or reused");
    }
}
