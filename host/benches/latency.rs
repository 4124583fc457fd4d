//! End-to-end latency per record, at paced input rates: the time from a record's arrival at the
//! source to its visibility at the sink, as p50 / p99 / p99.9 / max. Prints a table.
//!
//! - Kafka → map plugin (`plugins/filter`) → Kafka, exactly-once: a paced producer writes JSON
//!   values carrying their send time (`{"t": <µs since the epoch>, "amount": 1.0}`); two
//!   consumers of the output topic, one `read_committed` (what exactly-once makes visible: a
//!   batch's records at its transaction's commit) and one `read_uncommitted` (at-least-once
//!   visibility: as soon as the sink has produced them), each take `now − t` per record.
//! - rate → map plugin (`tests/plugins/tagger`) → console: weir's stdout is read by this process
//!   and each printed row is stamped when read; latency is that stamp minus the row's
//!   `timestamp` column (a rate source row is due, i.e. arrives, at its timestamp).
//!
//! Each row of the table runs the pipeline for WARMUP + MEASURE seconds; records that arrived in
//! the first WARMUP seconds (start-up, the plugin's compilation, the first batches) are not
//! counted. A trigger the job file refuses (the continuous trigger before it exists, or a
//! pipeline it does not support) prints "n/a" with weir's reason instead of stopping the run.
//!
//! The broker is librdkafka's mock cluster, in this process, over real TCP (weir runs as its own
//! process, the release binary): tansu, the broker the tests use, has no transactions.
//!
//! Run with `bench/latency.sh` (builds the release binary and the plugins first). Settings
//! (environment): RATES (default "1000,10000,100000"), TRIGGERS (default
//! "processing_time=0 seconds;continuous=1 second"), PIPELINES (default "kafka,rate"),
//! WARMUP and MEASURE (seconds, default 3 and 10), WEIR, PLUGINS (the built components' dir),
//! SOURCE_CLIENT and SINK_CLIENT (more Kafka client settings for weir's source or sink, as TOML
//! pairs, for experiments).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const IN_PARTITIONS: i32 = 4;
const OUT_PARTITIONS: i32 = 4;
/// The measuring consumers' fetch.wait.max.ms: a fetch with nothing new returns after this,
/// so the measuring client adds at most about this much.
const FETCH_WAIT_MS: &str = "1";
/// The paced producer's linger.ms: librdkafka's default. It is part of the measured latency (a
/// record is stamped when handed to the producer); with 0 every record is its own message set,
/// and the mock cluster returns one message set per partition per fetch, which makes reading
/// back (weir's and the measuring consumers') far slower than on a real broker.
fn producer_linger_ms() -> String {
    std::env::var("PRODUCER_LINGER_MS").unwrap_or_else(|_| "5".into())
}

fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_micros() as i64
}

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default))
}

/// Latencies (µs) of the records that arrived inside the measured window.
#[derive(Default)]
struct Samples {
    latencies: Vec<i64>,
}

struct Stats {
    count: usize,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl Samples {
    fn stats(mut self) -> Option<Stats> {
        if self.latencies.is_empty() {
            return None;
        }
        self.latencies.sort_unstable();
        let n = self.latencies.len();
        let q = |q: f64| self.latencies[((q * n as f64).ceil() as usize).clamp(1, n) - 1] as f64 / 1000.0;
        Some(Stats {
            count: n,
            p50: q(0.5),
            p99: q(0.99),
            p999: q(0.999),
            max: *self.latencies.last().unwrap() as f64 / 1000.0,
        })
    }
}

/// One line of the table.
struct Row {
    pipeline: String,
    trigger: String,
    rate: u64,
    visibility: &'static str,
    expected: u64,
    result: Result<Stats, String>,
    batches: String,
}

fn print_row(r: &Row) {
    let head = format!("| {} | {} | {} | {} |", r.pipeline, r.trigger, r.rate, r.visibility);
    match &r.result {
        Ok(s) => println!(
            "{head} {} / {} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            s.count, r.expected, s.p50, s.p99, s.p999, s.max, r.batches
        ),
        Err(why) => println!("{head} n/a | | | | | {why} |"),
    }
}

/// The per-batch times weir reported (its progress records): batches, mean trigger execution
/// and the mean of each durationMs part, over the batches of the measured window.
fn batch_summary(progress: &std::path::Path, from_ms: i64) -> String {
    let Ok(text) = std::fs::read_to_string(progress) else { return "no progress".into() };
    let keys = ["latestOffset", "walCommit", "getBatch", "addBatch", "commitOffsets", "triggerExecution"];
    let mut sums = [0f64; 6];
    let mut n = 0f64;
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let ts = v["timestamp"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(0, |t| t.timestamp_millis());
        if ts < from_ms {
            continue;
        }
        n += 1.0;
        for (s, k) in sums.iter_mut().zip(keys) {
            *s += v["durationMs"][k].as_f64().unwrap_or(0.0);
        }
    }
    if n == 0.0 {
        return "0 batches".into();
    }
    let m: Vec<String> = sums.iter().map(|s| format!("{:.1}", s / n)).collect();
    format!(
        "{n} batches; mean ms: offsets {} wal {} read {} sink {} commit {} total {}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Starts weir on `job`; when it exits within `grace` (a refused job), its reason.
fn start_weir(weir: &str, job: &std::path::Path, stdout: Stdio, grace: Duration) -> Result<Child, String> {
    let mut child = Command::new(weir)
        .args(["run", "--quiet"])
        .arg(job)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {weir}: {e}"))?;
    let t = Instant::now();
    while t.elapsed() < grace {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
            let first = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("").replace('|', "/");
            return Err(format!("weir exited ({status}): {}", first.chars().take(160).collect::<String>()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Its stderr drained from here on, so that it never blocks on a full pipe.
    // (or into the file WEIR_STDERR names, for a look at what weir said).
    let mut err = child.stderr.take().unwrap();
    let mut to: Box<dyn Write + Send> = match std::env::var("WEIR_STDERR") {
        Ok(f) => Box::new(std::fs::OpenOptions::new().create(true).append(true).open(f).expect("WEIR_STDERR file")),
        Err(_) => Box::new(std::io::sink()),
    };
    std::thread::spawn(move || std::io::copy(&mut err, &mut to));
    Ok(child)
}

/// SIGTERM (weir stops after the batch in progress), then SIGKILL after 5 s.
fn stop_weir(mut child: Child) {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

struct Settings {
    weir: String,
    plugins: std::path::PathBuf,
    warmup: Duration,
    measure: Duration,
}

/// A consumer of `topic` from its beginning, taking now − t of each record sent inside the window.
fn measuring_consumer(
    servers: &str,
    topic: &str,
    isolation: &str,
    window: (i64, i64),
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Samples> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", format!("latency-{isolation}"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .set("fetch.wait.max.ms", FETCH_WAIT_MS)
        .set("fetch.error.backoff.ms", "5")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..OUT_PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    c.assign(&tpl).unwrap();
    std::thread::spawn(move || {
        let mut s = Samples::default();
        while !stop.load(Ordering::Relaxed) {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(20)) {
                let now = now_micros();
                let t = m
                    .payload()
                    .and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
                    .and_then(|v| v["t"].as_i64());
                if let Some(t) = t.filter(|t| (window.0..window.1).contains(t)) {
                    s.latencies.push(now - t);
                }
            }
        }
        s
    })
}

/// More client settings for weir's Kafka source or sink, from the environment (TOML pairs:
/// `"linger.ms" = "0", "debug" = "eos"`), for experiments.
fn extra(name: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).map_or(String::new(), |v| format!(", {v}"))
}

fn kafka_rows(
    set: &Settings,
    cluster: &rdkafka::mocking::MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
    n: usize,
    trigger: &str,
    rate: u64,
) -> Vec<Row> {
    let servers = cluster.bootstrap_servers();
    let (input, output, markers) = (format!("in-{n}"), format!("out-{n}"), format!("markers-{n}"));
    cluster.create_topic(&input, IN_PARTITIONS, 1).unwrap();
    cluster.create_topic(&output, OUT_PARTITIONS, 1).unwrap();
    cluster.create_topic(&markers, 1, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::File::create(&job)
        .unwrap()
        .write_all(
            format!(
                r#"name = "latency-kafka"
[source]
format = "kafka"
subscribe = ["{input}"]
starting_offsets = "earliest"
value_format = "json"
schema = "t bigint, amount double"
kafka = {{ "bootstrap.servers" = "{servers}"{source_client} }}

[[operator]]
kind = "map"
plugin = "{plugin}"
config = "min_amount=0.5"

[sink]
format = "kafka"
topic = "{output}"
marker_topic = "{markers}"
kafka = {{ "bootstrap.servers" = "{servers}"{sink_client} }}
checkpoint = "{dir}/ckpt"
trigger = {{ {trigger} }}
"#,
                plugin = set.plugins.join("filter.wasm").display(),
                dir = dir.path().display(),
                source_client = extra("SOURCE_CLIENT"),
                sink_client = extra("SINK_CLIENT"),
            )
            .as_bytes(),
        )
        .unwrap();
    let pipeline = "kafka → filter → kafka (exactly-once)".to_string();
    let row = |visibility, expected, result, batches: &str| Row {
        pipeline: pipeline.clone(),
        trigger: trigger.to_string(),
        rate,
        visibility,
        expected,
        result,
        batches: batches.to_string(),
    };
    let child = match start_weir(&set.weir, &job, Stdio::null(), Duration::from_secs(1)) {
        Ok(c) => c,
        Err(why) => {
            return vec![row("read_committed", 0, Err(why.clone()), ""), row("read_uncommitted", 0, Err(why), "")]
        }
    };
    let start = now_micros();
    let window = (start + set.warmup.as_micros() as i64, start + (set.warmup + set.measure).as_micros() as i64);
    let stop = Arc::new(AtomicBool::new(false));
    let committed = measuring_consumer(&servers, &output, "read_committed", window, stop.clone());
    let uncommitted = measuring_consumer(&servers, &output, "read_uncommitted", window, stop.clone());

    // The paced producer: every ~200 µs, the records due by now, each stamped when sent.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set("linger.ms", producer_linger_ms())
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    let total = set.warmup + set.measure;
    let t0 = Instant::now();
    let (mut sent, mut expected) = (0u64, 0u64);
    loop {
        let elapsed = t0.elapsed();
        if elapsed >= total {
            break;
        }
        let due = (elapsed.as_secs_f64() * rate as f64) as u64;
        while sent < due {
            let t = now_micros();
            if (window.0..window.1).contains(&t) {
                expected += 1;
            }
            let v = format!("{{\"t\":{t},\"amount\":1.0}}");
            let mut rec = BaseRecord::<[u8], [u8]>::to(&input)
                .partition((sent % IN_PARTITIONS as u64) as i32)
                .payload(v.as_bytes());
            loop {
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        rec = r;
                        producer.poll(Duration::from_millis(1));
                    }
                }
            }
            sent += 1;
        }
        producer.poll(Duration::ZERO);
        std::thread::sleep(Duration::from_micros(200));
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    // Time for the last records to come through, then stop everything.
    std::thread::sleep(Duration::from_secs(3));
    stop_weir(child);
    stop.store(true, Ordering::Relaxed);
    let batches = batch_summary(&dir.path().join("ckpt/progress.jsonl"), window.0 / 1000);
    let done = |h: std::thread::JoinHandle<Samples>| h.join().unwrap().stats().ok_or_else(|| "no records".to_string());
    vec![
        row("read_committed", expected, done(committed), &batches),
        row("read_uncommitted", expected, done(uncommitted), ""),
    ]
}

/// A console row's first cell, the rate source's timestamp (printed without a zone, UTC).
fn row_timestamp(line: &str) -> Option<i64> {
    let cell = line.strip_prefix('|')?.split('|').next()?.trim();
    chrono::NaiveDateTime::parse_from_str(cell, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(cell, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()
        .map(|t| t.and_utc().timestamp_micros())
}

fn rate_row(set: &Settings, trigger: &str, rate: u64) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        format!(
            r#"name = "latency-rate"
[source]
format = "rate"
rows_per_second = {rate}

[[operator]]
kind = "map"
plugin = "{plugin}"

[sink]
format = "console"
num_rows = 100000000
checkpoint = "{dir}/ckpt"
trigger = {{ {trigger} }}
"#,
            plugin = set.plugins.join("tagger.wasm").display(),
            dir = dir.path().display(),
        ),
    )
    .unwrap();
    let mut row = Row {
        pipeline: "rate → tagger → console".into(),
        trigger: trigger.to_string(),
        rate,
        visibility: "printed",
        expected: rate * set.measure.as_secs(),
        result: Err(String::new()),
        batches: String::new(),
    };
    let mut child = match start_weir(&set.weir, &job, Stdio::piped(), Duration::from_secs(1)) {
        Ok(c) => c,
        Err(why) => {
            row.result = Err(why);
            return row;
        }
    };
    let stdout = child.stdout.take().unwrap();
    let (warmup, measure) = (set.warmup.as_micros() as i64, set.measure.as_micros() as i64);
    let window = Arc::new(Mutex::new((0i64, 0i64)));
    let w = window.clone();
    let reader = std::thread::spawn(move || {
        let mut s = Samples::default();
        let mut first: Option<i64> = None;
        for line in BufReader::with_capacity(1 << 20, stdout).lines() {
            let Ok(line) = line else { break };
            let Some(ts) = row_timestamp(&line) else { continue };
            let now = now_micros();
            let f = *first.get_or_insert(ts);
            if ts >= f + warmup + measure {
                *w.lock().unwrap() = (f + warmup, f + warmup + measure);
                break;
            }
            if ts >= f + warmup {
                s.latencies.push(now - ts);
            }
        }
        s
    });
    let samples = reader.join().unwrap();
    stop_weir(child);
    let from = window.lock().unwrap().0;
    row.batches = batch_summary(&dir.path().join("ckpt/progress.jsonl"), from / 1000);
    row.result = samples.stats().ok_or_else(|| "no rows printed".to_string());
    row
}

fn main() {
    let set = Settings {
        weir: std::env::var("WEIR").unwrap_or_else(|_| "target/release/weir".into()),
        plugins: std::env::var("PLUGINS").map_or_else(|_| std::path::PathBuf::from("../target/plugins"), Into::into),
        warmup: env_secs("WARMUP", 3),
        measure: env_secs("MEASURE", 10),
    };
    let rates: Vec<u64> = std::env::var("RATES")
        .unwrap_or_else(|_| "1000,10000,100000".into())
        .split(',')
        .map(|r| r.trim().parse().expect("RATES: records/s, comma-separated"))
        .collect();
    let triggers: Vec<String> = std::env::var("TRIGGERS")
        .unwrap_or_else(|_| "processing_time=0 seconds;continuous=1 second".into())
        .split(';')
        .map(|t| {
            let (k, v) = t.split_once('=').expect("TRIGGERS: kind=interval;…");
            format!("{} = \"{}\"", k.trim(), v.trim())
        })
        .collect();
    let pipelines = std::env::var("PIPELINES").unwrap_or_else(|_| "kafka,rate".into());
    let cluster = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");

    println!(
        "## End-to-end latency per record (ms), one run each; warm-up {} s not counted, then {} s measured",
        set.warmup.as_secs(),
        set.measure.as_secs()
    );
    println!();
    println!("| pipeline | trigger | records/s | visible when | records measured / sent | p50 | p99 | p99.9 | max | weir's batches in the window |");
    println!("|---|---|---:|---|---:|---:|---:|---:|---:|---|");
    let mut n = 0;
    for trigger in &triggers {
        for &rate in &rates {
            if pipelines.contains("kafka") {
                n += 1;
                for r in kafka_rows(&set, &cluster, n, trigger, rate) {
                    print_row(&r);
                }
            }
            if pipelines.contains("rate") {
                print_row(&rate_row(&set, trigger, rate));
            }
            let _ = std::io::stdout().flush();
        }
    }
    println!();
    println!(
        "Kafka: librdkafka mock cluster in the bench process (TCP), {IN_PARTITIONS} input and {OUT_PARTITIONS} output partitions; paced producer linger.ms={} (part of the latency); measuring consumers fetch.wait.max.ms={FETCH_WAIT_MS}. rate: rows stamped when weir's stdout line is read.",
        producer_linger_ms()
    );
}
