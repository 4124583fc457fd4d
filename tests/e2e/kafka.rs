//! Kafka end to end. The source tests run against a real broker process (tansu, an independent
//! Kafka-protocol broker over TCP; scripts/kafka-broker.sh installs it), fed and read by a real
//! librdkafka client. The exactly-once sink needs transactions, which tansu does not support:
//! its tests run against librdkafka's mock cluster (real TCP listeners in this test process,
//! librdkafka's own test double, with transactions), and `weir` runs as a separate process.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::common::*;

/// A tansu broker on a free port, stopped when dropped.
pub struct Broker {
    child: Child,
    pub addr: String,
}

fn tansu() -> PathBuf {
    let bin = std::env::var_os("WEIR_TANSU").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
        home.join("bin/tansu")
    });
    assert!(bin.exists(), "{} is missing: run scripts/kafka-broker.sh install (scripts/test.sh does)", bin.display());
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Broker {
    pub fn start() -> Broker {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting tansu");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {addr} within 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Broker { child, addr }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // tansu stops on SIGINT (not promptly on SIGTERM).
        let _ = Command::new("kill").arg("-INT").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn create_topic(servers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", servers).create().unwrap();
    let t = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = futures_executor::block_on(admin.create_topics(&[t], &AdminOptions::new())).unwrap();
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
}

/// Produces (partition, key, value) records and waits until all are acknowledged. One record per
/// produce request: tansu 0.6 reports a partition's end offset as its last record batch's base
/// offset + 1 (a broker bug; Kafka reports the last offset + 1), which is right only for batches
/// of one record.
pub fn produce(servers: &str, topic: &str, records: &[(i32, Option<&str>, &str)]) {
    let p: BaseProducer = ClientConfig::new().set("bootstrap.servers", servers).create().unwrap();
    for (part, key, value) in records {
        let mut r = BaseRecord::to(topic).partition(*part).payload(value.as_bytes());
        if let Some(k) = key {
            r = r.key(k.as_bytes());
        }
        p.send(r).map_err(|(e, _)| e).unwrap();
        p.flush(Duration::from_secs(10)).unwrap();
    }
}

/// Every record of the topic as a `read_committed` consumer sees it: (partition, offset, key,
/// value), by partition then offset.
pub fn consume_all(servers: &str, topic: &str, partitions: i32) -> Vec<(i32, i64, Option<String>, String)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", "weir-test-reader")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut eof = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while eof.len() < partitions as usize {
        assert!(Instant::now() < deadline, "reading {topic} back took over 30 s");
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push((
                m.partition(),
                m.offset(),
                m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            )),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    out.sort();
    out
}

/// Milliseconds since the epoch (Kafka's record timestamps).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Every record of the one-partition `topic` as a reader with `isolation` sees it, in log order,
/// to the end: (timestamp ms, key, value).
pub(crate) fn log_of(servers: &str, topic: &str, isolation: &str) -> Vec<(i64, Option<String>, String)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", "weir-test-log")
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    c.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "reading {topic} back took over 30 s");
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push((
                m.timestamp().to_millis().unwrap(),
                m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            )),
            Some(Err(KafkaError::PartitionEOF(_))) => return out,
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
}

/// What a `read_committed` reader of a real broker would see, rebuilt from the mock cluster's log
/// (which keeps aborted transactions' records visible and writes no commit markers): within each
/// run's time span, the records before its last epoch marker were committed; the ones after it
/// belong to the transaction the kill aborted. Also checks that no batch's marker appears twice.
/// Returns `row` of each committed record, sorted. The job must write its markers into the
/// output partition (`marker_topic` = the output topic), and the runs must not overlap.
pub(crate) fn committed_on_the_mock(
    log: &[(i64, Option<String>, String)],
    runs: &[(i64, i64)],
    row: impl Fn(&str) -> String,
) -> Vec<String> {
    let mut committed = Vec::new();
    let mut epochs: Vec<u64> = Vec::new();
    for &(start, end) in runs {
        let records: Vec<&(i64, Option<String>, String)> =
            log.iter().filter(|(ts, _, _)| (start..=end).contains(ts)).collect();
        let Some(last_marker) = records.iter().rposition(|(_, key, _)| key.is_some()) else { continue };
        for (_, key, value) in &records[..last_marker] {
            match key {
                Some(_) => epochs.push(value.parse().unwrap()),
                None => committed.push(row(value)),
            }
        }
        epochs.push(records[last_marker].2.parse().unwrap());
    }
    assert!(epochs.windows(2).all(|w| w[0] < w[1]), "a batch committed twice, or out of order: {epochs:?}");
    committed.sort();
    committed
}

fn order(n: usize) -> String {
    format!("{{\"order_id\":\"o{n}\",\"amount\":{}.5,\"event_time\":\"2024-01-01T00:{:02}:00Z\"}}", n % 100, n % 60)
}

fn kafka_source_job(s: &Scratch, servers: &str, extra: &str) -> PathBuf {
    s.job(&format!(
        r#"
[source]
format = "kafka"
subscribe = ["orders"]
starting_offsets = "earliest"
max_offsets_per_trigger = 10
value_format = "json"
schema = "order_id string, amount double, event_time timestamp"
kafka = {{ "bootstrap.servers" = "{servers}" }}
kafka_timeout = "5 seconds"
{extra}

[sink]
format = "json"
path = "{{dir}}/out"
checkpoint = "{{dir}}/ckpt"
trigger = {{ available_now = true }}
"#
    ))
}

/// 3 partitions, 25 JSON records: read in batches of at most 10 (maxOffsetsPerTrigger shared
/// by the partitions), decoded into columns, every record once; a restart reads only what was
/// produced since, from the offsets in the checkpoint.
#[test]
fn kafka_source_reads_every_record_once_in_bounded_batches_and_resumes() {
    let broker = Broker::start();
    create_topic(&broker.addr, "orders", 3);
    let first: Vec<String> = (0..25).map(order).collect();
    let recs: Vec<(i32, Option<&str>, &str)> =
        first.iter().enumerate().map(|(i, v)| ((i % 3) as i32, None, v.as_str())).collect();
    produce(&broker.addr, "orders", &recs);
    let s = Scratch::new();
    let job = kafka_source_job(&s, &broker.addr, "");
    run_ok(&job);
    let mut got: Vec<String> = committed_text(&s.path("out")).lines().map(str::to_string).collect();
    got.sort();
    let mut want: Vec<String> = (0..25)
        .map(|n| {
            format!(
                "{{\"order_id\":\"o{n}\",\"amount\":{}.5,\"event_time\":\"2024-01-01T00:{:02}:00.000Z\"}}",
                n % 100,
                n % 60
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
    let p = progress(&s.path("ckpt"));
    assert_eq!(p.len(), 3, "25 records in batches of at most 10");
    assert!(p.iter().all(|b| b["numInputRows"].as_u64().unwrap() <= 10), "{p:?}");
    assert_eq!(p[0]["sources"][0]["description"], "KafkaV2[Subscribe[orders]]");
    // Spark's latestOffset: each partition's end as the batch's planning saw it (GET /metrics
    // computes the consumer lag from it).
    assert_eq!(p[0]["sources"][0]["latestOffset"], serde_json::json!({ "orders": { "0": 9, "1": 8, "2": 8 } }));
    // More records; a restart reads only them.
    let more: Vec<String> = (25..30).map(order).collect();
    let recs: Vec<(i32, Option<&str>, &str)> = more.iter().map(|v| (1, None, v.as_str())).collect();
    produce(&broker.addr, "orders", &recs);
    run_ok(&job);
    assert_eq!(committed_text(&s.path("out")).lines().count(), 30);
    let p = progress(&s.path("ckpt"));
    assert_eq!(p.last().unwrap()["numInputRows"], 5);
    assert_eq!(p.last().unwrap()["sources"][0]["endOffset"]["offsets"]["orders"]["1"], serde_json::json!([8, 13]));
}

/// Without value_format: Spark's Kafka columns.
#[test]
fn kafka_source_gives_the_kafka_columns() {
    let broker = Broker::start();
    create_topic(&broker.addr, "raw", 1);
    produce(&broker.addr, "raw", &[(0, Some("k1"), "v1"), (0, None, "v2")]);
    let s = Scratch::new();
    let job = s.job(&format!(
        r#"
[source]
format = "kafka"
subscribe_pattern = "ra.*"
starting_offsets = "earliest"
kafka = {{ "bootstrap.servers" = "{}" }}

[sink]
format = "json"
path = "{{dir}}/out"
checkpoint = "{{dir}}/ckpt"
trigger = {{ available_now = true }}
"#,
        broker.addr
    ));
    run_ok(&job);
    let rows: Vec<serde_json::Value> =
        committed_text(&s.path("out")).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    // Binary columns are written as base64 by the JSON sink.
    assert_eq!(rows[0]["key"], "azE=");
    assert_eq!(rows[0]["value"], "djE=");
    assert_eq!(rows[1].get("key"), None, "a null key");
    assert_eq!(
        (rows[1]["topic"].as_str(), rows[1]["partition"].as_i64(), rows[1]["offset"].as_i64()),
        (Some("raw"), Some(0), Some(1))
    );
    assert!(rows[0]["timestamp"].as_str().unwrap().starts_with("20"), "{rows:?}");
}

/// A value that is not JSON is a bad record named by topic, partition and offset.
#[test]
fn a_malformed_value_is_a_bad_record_named_by_partition_and_offset() {
    let broker = Broker::start();
    create_topic(&broker.addr, "orders", 1);
    let good = order(1);
    produce(&broker.addr, "orders", &[(0, None, &good), (0, None, "{not json"), (0, None, &good)]);
    let s = Scratch::new();
    let err = run_err(&kafka_source_job(&s, &broker.addr, ""));
    assert!(err.contains("kafka topic \"orders\" partition 0 offset 1") && err.contains("malformed JSON"), "{err}");
    let s = Scratch::new();
    let job = s.job(&std::fs::read_to_string(kafka_source_job(&s, &broker.addr, "")).unwrap().replacen(
        "[source]",
        "on_bad_record = \"dead_letter\"\n[source]",
        1,
    ));
    run_ok(&job);
    assert_eq!(committed_text(&s.path("out")).lines().count(), 2);
    let dead = std::fs::read_to_string(s.path("ckpt/dead_letter/batch-0.jsonl")).unwrap();
    assert!(dead.contains("offset 1") && dead.contains("{not json"), "{dead}");
}

/// A topic that does not exist stops the job at start, naming it and the topics there are.
#[test]
fn a_missing_topic_is_named() {
    let broker = Broker::start();
    create_topic(&broker.addr, "other", 1);
    let s = Scratch::new();
    let err = run_err(&kafka_source_job(&s, &broker.addr, ""));
    assert!(
        err.contains(&format!("topic \"orders\" does not exist on {}", broker.addr))
            && err.contains("set wait_for_topics = true"),
        "{err}"
    );
}

/// Brokers that cannot be reached: an error after the bounded wait, naming the servers.
#[test]
fn an_unreachable_broker_is_an_error_naming_the_servers_after_a_bounded_wait() {
    let port = free_port();
    let servers = format!("127.0.0.1:{port}");
    let s = Scratch::new();
    let started = Instant::now();
    let err = run_err(&kafka_source_job(&s, &servers, "").to_path_buf());
    assert!(err.contains(&format!("cannot reach the brokers at {servers} within 5s")), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60), "the wait is bounded by kafka_timeout");
}

fn mock_cluster() -> rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    rdkafka::mocking::MockCluster::new(1).expect("librdkafka's mock cluster")
}

fn kafka_sink_job(s: &Scratch, servers: &str) -> PathBuf {
    s.job(&format!(
        r#"
[source]
format = "json"
path = "{{dir}}/in"
schema = "order_id string, amount double"
max_files_per_trigger = 1

[sink]
format = "kafka"
topic = "out"
marker_topic = "weir-markers"
kafka = {{ "bootstrap.servers" = "{servers}" }}
kafka_timeout = "10 seconds"
checkpoint = "{{dir}}/ckpt"
trigger = {{ available_now = true }}
"#
    ))
}

fn write_orders(s: &Scratch, files: usize, per_file: usize) {
    for f in 0..files {
        let text: String = (0..per_file).map(|r| format!("{{\"order_id\":\"o{f}-{r}\",\"amount\":{r}.0}}\n")).collect();
        s.write(&format!("in/f{f:02}.json"), &text);
    }
}

/// Rows without a `value` column are written as JSON, one transaction per batch; a batch replayed
/// after its Kafka commit (the checkpoint's commit lost) is not written again.
#[test]
fn kafka_sink_writes_each_batch_once_even_when_replayed() {
    let cluster = mock_cluster();
    let servers = cluster.bootstrap_servers();
    cluster.create_topic("out", 1, 1).unwrap();
    // The mock cluster cannot create topics through the admin API: the marker topic is made here.
    cluster.create_topic("weir-markers", 1, 1).unwrap();
    let s = Scratch::new();
    write_orders(&s, 3, 4);
    let job = kafka_sink_job(&s, &servers);
    run_ok(&job);
    let got = consume_all(&servers, "out", 1);
    let values: Vec<&str> = got.iter().map(|r| r.3.as_str()).collect();
    assert_eq!(values.len(), 12, "{values:?}");
    assert_eq!(values[0], "{\"order_id\":\"o0-0\",\"amount\":0.0}");
    // The checkpoint loses its last commit, as if weir died after Kafka's commit: the replay of
    // batch 2 finds it in Kafka and writes nothing.
    std::fs::remove_file(s.path("ckpt/commits/2")).unwrap();
    run_ok(&job);
    assert_eq!(consume_all(&servers, "out", 1).len(), 12, "batch 2 was not written twice");
    let p = progress(&s.path("ckpt"));
    assert_eq!(p.last().unwrap()["batchId"], 2);
}

/// SIGKILL at random moments: every row is in exactly one committed transaction. The mock
/// cluster shows aborted records to `read_committed` readers, so the committed transactions are
/// rebuilt from the batch markers, which this job writes into the output partition
/// ([`committed_on_the_mock`]).
#[test]
fn kafka_sink_sigkill_at_random_moments_loses_and_repeats_nothing() {
    use rand::{Rng, SeedableRng};
    let cluster = mock_cluster();
    let servers = cluster.bootstrap_servers();
    cluster.create_topic("out", 1, 1).unwrap();
    let s = Scratch::new();
    // 300 one-file batches: enough that a run lasts past the kills' random moments (a batch's
    // transaction takes a few milliseconds).
    write_orders(&s, 300, 5);
    let text = std::fs::read_to_string(kafka_sink_job(&s, &servers)).unwrap();
    let job = s.job(&text.replace("marker_topic = \"weir-markers\"", "marker_topic = \"out\""));
    let seed = crash_seed();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut kills, mut runs) = (0, Vec::new());
    for attempt in 0.. {
        let start = now_ms();
        let mut child = weir().args(["run", "--quiet"]).arg(&job).spawn().unwrap();
        if attempt < 6 {
            // The first kill early, so that it lands while the job runs.
            let window = if kills == 0 { 400 } else { 1500 };
            std::thread::sleep(Duration::from_millis(rng.random_range(50..window)));
            let _ = Command::new("kill").arg("-KILL").arg(child.id().to_string()).status();
        }
        let status = child.wait().unwrap();
        runs.push((start, now_ms()));
        if status.success() {
            break;
        }
        assert!(status.code().is_none(), "seed {seed}: weir failed on its own: {status:?}");
        kills += 1;
    }
    assert!(kills > 0, "seed {seed}: no kill landed");
    let log = log_of(&servers, "out", "read_uncommitted");
    let ids = committed_on_the_mock(&log, &runs, |v| {
        serde_json::from_str::<serde_json::Value>(v).unwrap()["order_id"].as_str().unwrap().to_string()
    });
    let mut want: Vec<String> = (0..300).flat_map(|f| (0..5).map(move |r| format!("o{f}-{r}"))).collect();
    want.sort();
    let mut ids = ids;
    ids.sort();
    assert_eq!(ids.len(), want.len(), "seed {seed} ({kills} kills): {} rows committed", ids.len());
    assert_eq!(ids, want, "seed {seed} ({kills} kills)");
}

/// Scale-out: three `weir` processes with one job and one checkpoint location share a 6-partition
/// topic through a consumer group; a stateful plugin counts rows per key (keys are
/// co-partitioned: each key in one partition); output goes to Kafka transactionally. All on the
/// mock cluster: tansu 0.6 never expires a dead member's session (checked here: the killed
/// process's partitions were not reassigned within 90 s), and has no transactions. One process is killed with SIGKILL mid-stream;
/// the others take over its partitions from the shared checkpoint. Read back `read_committed`,
/// every key's running counts appear once each, in order, up to its total.
#[test]
fn three_processes_share_the_partitions_and_a_killed_one_loses_and_repeats_nothing() {
    let cluster = mock_cluster();
    let out = cluster.bootstrap_servers();
    cluster.create_topic("events", 6, 1).unwrap();
    cluster.create_topic("out", 1, 1).unwrap();
    cluster.create_topic("weir-markers", 6, 1).unwrap();
    let s = Scratch::new();
    let job = s.job(&format!(
        r#"
[source]
format = "kafka"
subscribe = ["events"]
consumer_group = "weir-scale-out-test"
starting_offsets = "earliest"
value_format = "json"
schema = "user_id string, amount double"
kafka = {{ "bootstrap.servers" = "{}", "session.timeout.ms" = "6000", "heartbeat.interval.ms" = "500" }}

[[operator]]
kind = "stateful"
plugin = "{{plugin:counter}}"
group_by = ["user_id"]

[sink]
format = "kafka"
topic = "out"
marker_topic = "weir-markers"
kafka = {{ "bootstrap.servers" = "{out}" }}
checkpoint = "{{dir}}/ckpt"
trigger = {{ processing_time = "200 milliseconds" }}
"#,
        out
    ));
    const KEYS: usize = 12;
    const ROUNDS: usize = 3;
    const PER_ROUND: usize = 10;
    let round = |r: usize| {
        let values: Vec<(i32, String)> = (0..PER_ROUND)
            .flat_map(|i| {
                (0..KEYS)
                    .map(move |k| ((k % 6) as i32, format!("{{\"user_id\":\"u{k}\",\"amount\":{}.0}}", r * 100 + i)))
            })
            .collect();
        let recs: Vec<(i32, Option<&str>, &str)> = values.iter().map(|(p, v)| (*p, None, v.as_str())).collect();
        produce(&out, "events", &recs);
    };
    let mut procs: Vec<Child> = (0..3).map(|_| weir().args(["run", "--quiet"]).arg(&job).spawn().unwrap()).collect();
    round(0);
    // Counts of every key, as read back so far.
    let counts = || {
        let mut max = std::collections::BTreeMap::<String, i64>::new();
        for r in consume_all(&out, "out", 1) {
            let v: serde_json::Value = serde_json::from_str(&r.3).unwrap();
            let e = max.entry(v["user_id"].as_str().unwrap().to_string()).or_default();
            *e = (*e).max(v["count"].as_i64().unwrap());
        }
        max
    };
    let wait_for = |total: i64| {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let c = counts();
            if c.len() == KEYS && c.values().all(|&n| n == total) {
                return;
            }
            assert!(Instant::now() < deadline, "after 90 s the counts are {c:?}, not {total} for each of {KEYS} keys");
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    wait_for(PER_ROUND as i64);
    // Kill one member mid-stream: more input is on its way.
    round(1);
    std::thread::sleep(Duration::from_millis(150));
    let _ = Command::new("kill").arg("-KILL").arg(procs[0].id().to_string()).status();
    procs[0].wait().unwrap();
    round(2);
    wait_for((ROUNDS * PER_ROUND) as i64);
    for p in &mut procs[1..] {
        let _ = Command::new("kill").arg("-INT").arg(p.id().to_string()).status();
        assert!(p.wait().unwrap().success());
    }
    // Every key's counts are read back once each, increasing: no batch lost or written twice.
    let mut seen: std::collections::BTreeMap<String, Vec<i64>> = std::collections::BTreeMap::new();
    for r in consume_all(&out, "out", 1) {
        let v: serde_json::Value = serde_json::from_str(&r.3).unwrap();
        seen.entry(v["user_id"].as_str().unwrap().to_string()).or_default().push(v["count"].as_i64().unwrap());
    }
    assert_eq!(seen.len(), KEYS);
    for (k, c) in &seen {
        assert!(c.windows(2).all(|w| w[0] < w[1]), "{k}: counts {c:?} repeat or go back");
        assert_eq!(*c.last().unwrap(), (ROUNDS * PER_ROUND) as i64, "{k}: {c:?}");
    }
    // Each partition was a task with its own checkpoint.
    for p in 0..6 {
        assert!(
            s.path(&format!("ckpt/partitions/events-{p}/commits")).exists(),
            "partition {p} has no task checkpoint"
        );
    }
}

/// A foreachBatch plugin's outputs may be Kafka topics: each output is exactly-once on its own
/// (its own transaction and markers), also when a batch is replayed after its Kafka commit.
#[test]
fn foreach_batch_outputs_can_be_kafka_topics() {
    let cluster = mock_cluster();
    let servers = cluster.bootstrap_servers();
    for t in ["big", "small"] {
        cluster.create_topic(t, 1, 1).unwrap();
    }
    // One marker topic for both outputs: each reads back only its own markers.
    cluster.create_topic("weir-markers", 1, 1).unwrap();
    let s = Scratch::new();
    s.write("in/a.json", "{\"id\":\"a1\",\"amount\":50.0}\n{\"id\":\"a2\",\"amount\":150.0}\n");
    s.write("in/b.json", "{\"id\":\"b1\",\"amount\":100.0}\n");
    let job = s.job(&format!(
        r#"
[source]
format = "json"
path = "{{dir}}/in"
schema = "id string, amount double"
max_files_per_trigger = 1

[sink]
format = "foreach_batch"
plugin = "{{plugin:router-raw}}"
checkpoint = "{{dir}}/ckpt"
trigger = {{ available_now = true }}

[[sink.output]]
name = "big"
format = "kafka"
topic = "big"
marker_topic = "weir-markers"
kafka = {{ "bootstrap.servers" = "{servers}" }}

[[sink.output]]
name = "small"
format = "kafka"
topic = "small"
marker_topic = "weir-markers"
kafka = {{ "bootstrap.servers" = "{servers}" }}

[[sink.output]]
name = "counts"
format = "csv"
path = "{{dir}}/out/counts"
"#
    ));
    run_ok(&job);
    let values = |t: &str| consume_all(&servers, t, 1).into_iter().map(|r| r.3).collect::<Vec<_>>();
    assert_eq!(values("big"), ["{\"id\":\"a2\",\"amount\":150.0}", "{\"id\":\"b1\",\"amount\":100.0}"]);
    assert_eq!(values("small"), ["{\"id\":\"a1\",\"amount\":50.0}"]);
    std::fs::remove_file(s.path("ckpt/commits/1")).unwrap();
    run_ok(&job);
    assert_eq!(values("big").len(), 2, "batch 1 replayed: not written twice");
    assert_eq!(committed_text(&s.path("out/counts")), "batch_id,rows\n0,2\nbatch_id,rows\n1,1\n");
}

/// Offsets no longer in the topic (retention moved its start past them; the mock cluster keeps
/// about 40k records per partition): by default the job stops naming the partition and offsets,
/// as Spark's failOnDataLoss; with fail_on_data_loss = false it skips ahead and records what was
/// lost in the offsets log.
#[test]
fn offsets_lost_to_retention_stop_the_job_or_are_skipped_and_recorded() {
    let cluster = mock_cluster();
    let servers = cluster.bootstrap_servers();
    cluster.create_topic("orders", 1, 1).unwrap();
    let p: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", &servers).set("linger.ms", "20").create().unwrap();
    let value = order(1);
    for _ in 0..120_000 {
        let mut rec = BaseRecord::<[u8], [u8]>::to("orders").partition(0).payload(value.as_bytes());
        while let Err((_, r)) = p.send(rec) {
            rec = r;
            p.poll(Duration::from_millis(10));
        }
    }
    p.flush(Duration::from_secs(60)).unwrap();
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &servers).create().unwrap();
    let (low, high) = c.fetch_watermarks("orders", 0, Duration::from_secs(5)).unwrap();
    assert!(low > 0, "the mock kept every record ({low}, {high}): this test needs its retention");
    let starting = "starting_offsets = { orders = { \"0\" = 5 } }";
    let s = Scratch::new();
    let job = std::fs::read_to_string(kafka_source_job(&s, &servers, starting))
        .unwrap()
        .replace("starting_offsets = \"earliest\"\n", "");
    let err = run_err(&s.job(&job));
    assert!(
        err.contains(&format!("topic \"orders\" partition 0 no longer has offsets 5 to {}", low - 1))
            && err.contains("fail_on_data_loss = false"),
        "{err}"
    );
    let s = Scratch::new();
    let job = std::fs::read_to_string(kafka_source_job(
        &s,
        &servers,
        &format!("{starting}\nfail_on_data_loss = false\nmax_offsets_per_trigger = 1000000"),
    ))
    .unwrap()
    .replace("starting_offsets = \"earliest\"\n", "")
    .replace("max_offsets_per_trigger = 10\n", "");
    run_ok(&s.job(&job));
    assert_eq!(committed_text(&s.path("out")).lines().count() as i64, high - low);
    let offsets = std::fs::read_to_string(s.path("ckpt/offsets/0")).unwrap();
    assert!(offsets.contains(&format!("\"lost\":{{\"orders\":{{\"0\":[5,{low}]}}}}")), "{offsets}");
}

/// wait_for_topics: the job waits for a topic that does not exist yet, and reads it once it does.
#[test]
fn a_job_may_wait_for_its_topic() {
    let broker = Broker::start();
    let s = Scratch::new();
    let job = std::fs::read_to_string(kafka_source_job(&s, &broker.addr, "wait_for_topics = true"))
        .unwrap()
        .replace("trigger = { available_now = true }", "trigger = { processing_time = \"100 milliseconds\" }");
    let job = s.job(&job);
    let mut child = weir().args(["run", "--quiet"]).arg(&job).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(child.try_wait().unwrap().is_none(), "the job waits instead of failing");
    create_topic(&broker.addr, "orders", 1);
    let v = order(7);
    produce(&broker.addr, "orders", &[(0, None, &v)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s.path("out/_weir_log/0").exists() {
        assert!(Instant::now() < deadline, "nothing read 30 s after the topic appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill").arg("-INT").arg(child.id().to_string()).status();
    assert!(child.wait().unwrap().success());
    assert_eq!(committed_text(&s.path("out")).lines().count(), 1);
}

/// Other queries share the marker topic and wrote far more markers since this query's last
/// one (more than any fixed tail): a replay still finds its own marker and writes nothing twice.
#[test]
fn a_replay_finds_its_marker_behind_thousands_of_other_queries_markers() {
    let cluster = mock_cluster();
    let servers = cluster.bootstrap_servers();
    cluster.create_topic("out", 1, 1).unwrap();
    cluster.create_topic("weir-markers", 1, 1).unwrap();
    let s = Scratch::new();
    write_orders(&s, 3, 4);
    let job = kafka_sink_job(&s, &servers);
    run_ok(&job);
    assert_eq!(consume_all(&servers, "out", 1).len(), 12);
    // 5000 markers of 50 other queries, after this one's.
    let p: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", &servers).set("linger.ms", "20").create().unwrap();
    for i in 0..5000u64 {
        let key = format!("weir-other-query-{}", i % 50);
        let id = (i / 50).to_string();
        let mut rec = BaseRecord::to("weir-markers").partition(0).key(key.as_bytes()).payload(id.as_bytes());
        while let Err((_, r)) = p.send(rec) {
            rec = r;
            p.poll(Duration::from_millis(10));
        }
    }
    p.flush(Duration::from_secs(30)).unwrap();
    // As if weir died after Kafka's commit of batch 2 and before the checkpoint's.
    std::fs::remove_file(s.path("ckpt/commits/2")).unwrap();
    run_ok(&job);
    assert_eq!(consume_all(&servers, "out", 1).len(), 12, "batch 2 was written twice");
    assert_eq!(progress(&s.path("ckpt")).last().unwrap()["batchId"], 2);
}

/// Spark's precedence: the sink's `topic` wins over the rows' `topic` column (a Kafka-to-Kafka
/// job does not write back into its input); without it, each row's column names its topic, and
/// a null one stops the job naming the row.
#[test]
fn the_sink_topic_overrides_the_rows_topic_column_as_in_spark() {
    let cluster = mock_cluster();
    let servers = cluster.bootstrap_servers();
    for t in ["out", "in-topic", "other", "weir-markers"] {
        cluster.create_topic(t, 1, 1).unwrap();
    }
    let s = Scratch::new();
    s.write("in/a.json", "{\"topic\":\"in-topic\",\"value\":\"a\"}\n{\"topic\":\"other\",\"value\":\"b\"}\n");
    let job = |topic_line: &str, ckpt: &str| {
        s.job(&format!(
            r#"
[source]
format = "json"
path = "{{dir}}/in"
schema = "topic string, value string"

[sink]
format = "kafka"
{topic_line}
marker_topic = "weir-markers"
kafka = {{ "bootstrap.servers" = "{servers}" }}
checkpoint = "{{dir}}/{ckpt}"
trigger = {{ available_now = true }}
"#
        ))
    };
    run_ok(&job("topic = \"out\"", "ckpt1"));
    let values = |t: &str| consume_all(&servers, t, 1).into_iter().map(|r| r.3).collect::<Vec<_>>();
    assert_eq!(values("out"), ["a", "b"], "the sink's topic wins");
    assert!(values("in-topic").is_empty() && values("other").is_empty());
    // Without the option, the column.
    run_ok(&job("", "ckpt2"));
    assert_eq!((values("in-topic"), values("other")), (vec!["a".to_string()], vec!["b".to_string()]));
    // A null topic in a row, no option: an error naming the row.
    s.write("in/b.json", "{\"value\":\"c\"}\n");
    let err = run_err(&job("", "ckpt2"));
    assert!(err.contains("batch 1: row 0 has a null `topic`, and the sink's topic is not set"), "{err}");
}

/// A batch whose transaction stays open close to `transaction.timeout.ms` (here: a broker that
/// answers slowly) is not committed, to be aborted by the brokers and replayed as slowly
/// forever: the job stops, saying what to raise; with it raised, the same batch goes through.
/// (The mock cluster never times a transaction out itself, so without the check the job would
/// commit here. It keeps no transaction state either: the aborted attempt's records stay
/// visible to every reader, so this checks that the restart commits batch 0, not what a
/// `read_committed` reader of a real broker would see.)
#[test]
fn a_transaction_near_its_timeout_stops_the_job_saying_what_to_raise() {
    let cluster = mock_cluster();
    let servers = cluster.bootstrap_servers();
    cluster.create_topic("out", 1, 1).unwrap();
    cluster.create_topic("weir-markers", 1, 1).unwrap();
    let s = Scratch::new();
    write_orders(&s, 1, 4);
    let text = std::fs::read_to_string(kafka_sink_job(&s, &servers)).unwrap().replace(
        &format!("kafka = {{ \"bootstrap.servers\" = \"{servers}\" }}"),
        &format!("kafka = {{ \"bootstrap.servers\" = \"{servers}\", \"transaction.timeout.ms\" = \"1000\" }}"),
    );
    assert!(text.contains("transaction.timeout.ms"));
    let job = s.job(&text.replace("kafka_timeout = \"10 seconds\"", "kafka_timeout = \"60 seconds\""));
    // Each answer takes 600 ms: adding the partitions to the transaction, then producing, keeps
    // it open at least 1.2 s, past 90% of the timeout (librdkafka's minimum, 1 s).
    cluster.broker_round_trip_time(1, Duration::from_millis(600)).unwrap();
    let err = run_err(&job);
    assert!(
        err.contains("batch 0: its transaction has been open")
            && err.contains("too close to kafka.\"transaction.timeout.ms\" = 1000 ms")
            && err.contains("Raise kafka.\"transaction.timeout.ms\""),
        "{err}"
    );
    assert!(!s.path("ckpt/commits/0").exists());
    let job = s.job(
        &text
            .replace("\"transaction.timeout.ms\" = \"1000\"", "\"transaction.timeout.ms\" = \"30000\"")
            .replace("kafka_timeout = \"10 seconds\"", "kafka_timeout = \"60 seconds\""),
    );
    run_ok(&job);
    assert!(s.path("ckpt/commits/0").exists());
    cluster.broker_round_trip_time(1, Duration::ZERO).unwrap();
}

/// Scale-out: a partition's task never runs beside its previous owner's. Here the task
/// checkpoint of partition 0 is still held (as by a member that has not yet seen the rebalance
/// that took the partition away): the new owner runs partition 1, waits for partition 0 saying
/// who holds it, and starts its task once the lock is let go.
#[test]
fn a_scale_out_task_waits_until_its_previous_owner_lets_go() {
    let cluster = mock_cluster();
    let servers = cluster.bootstrap_servers();
    cluster.create_topic("events", 2, 1).unwrap();
    let s = Scratch::new();
    let job = s.job(&format!(
        r#"
[source]
format = "kafka"
subscribe = ["events"]
consumer_group = "weir-lock-test"
starting_offsets = "earliest"
value_format = "json"
schema = "id string"
kafka = {{ "bootstrap.servers" = "{servers}" }}

[sink]
format = "json"
path = "{{dir}}/out"
checkpoint = "{{dir}}/ckpt"
trigger = {{ processing_time = "100 milliseconds" }}
"#
    ));
    let mut held = weir::checkpoint::lock::CheckpointLock::acquire(&s.path("ckpt/partitions/events-0")).unwrap();
    held.keep();
    produce(&servers, "events", &[(0, None, "{\"id\":\"p0\"}"), (1, None, "{\"id\":\"p1\"}")]);
    let log = std::fs::File::create(s.path("weir.log")).unwrap();
    let mut child = weir().args(["run", "--quiet"]).arg(&job).stderr(log).spawn().unwrap();
    let wait_for = |what: &str, path: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !s.path(path).exists() {
            assert!(Instant::now() < deadline, "waited 60 s for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("partition 1's first batch", "out/events-1/_weir_log/0");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!s.path("out/events-0/_weir_log/0").exists(), "partition 0's task ran beside its holder");
    let text = std::fs::read_to_string(s.path("weir.log")).unwrap();
    assert!(
        text.contains("partition events-0 is ours now, but its task is still held")
            && text.contains(&format!("in use by weir pid {} on host", std::process::id())),
        "{text}"
    );
    drop(held);
    wait_for("partition 0's first batch once let go", "out/events-0/_weir_log/0");
    let _ = Command::new("kill").arg("-INT").arg(child.id().to_string()).status();
    assert!(child.wait().unwrap().success());
    assert_eq!(committed_text(&s.path("out/events-0")), "{\"id\":\"p0\"}\n");
    assert_eq!(committed_text(&s.path("out/events-1")), "{\"id\":\"p1\"}\n");
}
