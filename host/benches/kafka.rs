//! Kafka → JSON decode → 5-minute tumbling count and sum per category → Kafka (exactly-once), on
//! a local broker, with the time the broker alone needs for the same records, to tell
//! broker-bound from weir-bound time. Prints a table.
//!
//! The broker is librdkafka's mock cluster, in this process, over real TCP (weir runs as its own
//! process, the release binary): tansu, the broker process the tests use, has no transactions,
//! which the exactly-once sink needs, and reports wrong end offsets for batched produce.
//!
//! Run with `bench/kafka.sh [EVENTS]` (builds the release binary first).

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const PARTITIONS: i32 = 6;

fn event(n: u64) -> String {
    // Same shape as bench/gen_events.py: 10 ms of event time per event, 10k users, 20 categories.
    let ms = n * 10;
    let (s, m, h, d) = ((ms / 1000) % 60, (ms / 60_000) % 60, (ms / 3_600_000) % 24, 1 + ms / 86_400_000);
    format!(
        "{{\"event_id\":\"e{n}\",\"user_id\":\"u{}\",\"event_time\":\"2026-01-{d:02}T{h:02}:{m:02}:{s:02}.{:03}Z\",\"amount\":{}.{:02},\"category\":\"c{}\"}}",
        n.wrapping_mul(2654435761) % 10_000,
        ms % 1000,
        n % 500,
        n % 100,
        n % 20
    )
}

/// Reads every record of `topic` with a plain consumer: what the broker and librdkafka alone cost.
fn read_all(servers: &str, topic: &str, partitions: i32) -> u64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("group.id", "bench-reader")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    c.assign(&tpl).unwrap();
    let (mut n, mut eof) = (0u64, 0);
    while eof < partitions {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => n += 1,
            Some(Err(KafkaError::PartitionEOF(_))) => eof += 1,
            Some(Err(e)) => panic!("{e}"),
            None => {}
        }
    }
    n
}

/// Peak RSS (MiB) of a running process, sampled until it exits.
fn run_sampled(mut cmd: Command) -> (std::process::ExitStatus, Duration, u64) {
    let started = Instant::now();
    let mut child = cmd.spawn().expect("starting weir");
    let mut peak_kib = 0u64;
    loop {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) {
            for line in text.lines().filter(|l| l.starts_with("VmRSS:")) {
                let kib: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status, started.elapsed(), peak_kib / 1024);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn main() {
    let events: u64 = std::env::var("EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let weir = std::env::var("WEIR").unwrap_or_else(|_| "target/release/weir".into());
    let cluster = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
    let servers = cluster.bootstrap_servers();
    cluster.create_topic("events", PARTITIONS, 1).unwrap();
    cluster.create_topic("windows", 1, 1).unwrap();
    cluster.create_topic("weir-markers", 1, 1).unwrap();

    let t = Instant::now();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for n in 0..events {
        let v = event(n);
        let mut rec =
            BaseRecord::<[u8], [u8]>::to("events").partition((n % PARTITIONS as u64) as i32).payload(v.as_bytes());
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    let produce = t.elapsed();

    let t = Instant::now();
    let read = read_all(&servers, "events", PARTITIONS);
    if read != events {
        let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &servers).create().unwrap();
        let marks: Vec<_> = (0..PARTITIONS).map(|p| c.fetch_watermarks("events", p, Duration::from_secs(5))).collect();
        panic!("{read} of {events} records read back; the mock cluster's partitions (low, high): {marks:?}; use fewer EVENTS");
    }
    let broker_read = t.elapsed();

    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::File::create(&job)
        .unwrap()
        .write_all(
            format!(
                r#"name = "kafka-window"
[source]
format = "kafka"
subscribe = ["events"]
starting_offsets = "earliest"
value_format = "json"
schema = "event_id string, user_id string, event_time timestamp, amount double, category string"
kafka = {{ "bootstrap.servers" = "{servers}" }}

[watermark]
column = "event_time"
delay = "10 minutes"

[[operator]]
kind = "aggregate"
group_by = ["category"]
window = {{ column = "event_time", size = "5 minutes" }}
aggregates = [{{ fn = "count", as = "n" }}, {{ fn = "sum", column = "amount", as = "total" }}]

[sink]
format = "kafka"
topic = "windows"
marker_topic = "weir-markers"
kafka = {{ "bootstrap.servers" = "{servers}" }}
checkpoint = "{}/ckpt"
trigger = {{ available_now = true }}
"#,
                dir.path().display()
            )
            .as_bytes(),
        )
        .unwrap();
    let mut cmd = Command::new(&weir);
    cmd.args(["run", "--quiet"]).arg(&job);
    let (status, weir_time, rss) = run_sampled(cmd);
    assert!(status.success(), "weir failed: {status:?}");
    let windows = read_all(&servers, "windows", 1);

    let secs = |d: Duration| d.as_secs_f64();
    println!("## Kafka -> json -> 5-min tumbling count+sum per category -> Kafka (exactly-once), {events} events, {PARTITIONS} partitions, one run");
    println!();
    println!("| step | seconds | rows/s |");
    println!("|---|---:|---:|");
    println!(
        "| produce the events (librdkafka producer, batched) | {:.2} | {:.0} |",
        secs(produce),
        events as f64 / secs(produce)
    );
    println!(
        "| read them back (plain librdkafka consumer: the broker's share) | {:.2} | {:.0} |",
        secs(broker_read),
        events as f64 / secs(broker_read)
    );
    println!("| weir job, process start to exit | {:.2} | {:.0} |", secs(weir_time), events as f64 / secs(weir_time));
    println!();
    println!("weir peak RSS {rss} MiB; {windows} windows written (one transaction per batch); weir time / plain read time = {:.2}", secs(weir_time) / secs(broker_read));
}
