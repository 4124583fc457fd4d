//! Kafka (Spark's `format("kafka")`): topics by name, pattern or explicit partitions; each batch
//! is a range of offsets per partition, planned from the partitions' end offsets and written to
//! the offsets log before it is read, so a replay reads exactly the same records. Offsets live in
//! weir's checkpoint, not in a consumer group (nothing is auto-committed).
//!
//! Columns: `key` binary, `value` binary, `topic` string, `partition` int, `offset` bigint,
//! `timestamp` timestamp, `timestampType` int (0: create time, 1: log append time), and with
//! `include_headers` a `headers` string (a JSON list of `{"key", "value"}` with the value in
//! base64; weir's types have no nested columns). With `value_format` the rows are the decoded
//! values instead (Spark's `from_json` / `from_csv` of `value`), and a value that does not decode
//! is a bad record named by topic, partition and offset.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{BinaryBuilder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use base64::Engine as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message, Timestamp};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use super::{Source, SourceError};
use crate::config::{KafkaSourceConfig, KafkaTopics, KafkaValueFormat, StartingOffsets};
use crate::deadletter::BadRecords;
use crate::format::json::decode_json_records;
use crate::schema::parse_ddl;

/// The records of one batch: per topic, per partition, `[start, end)`; and what was skipped
/// because the topic no longer had it (`fail_on_data_loss = false`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaRange {
    pub offsets: BTreeMap<String, BTreeMap<i32, [i64; 2]>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lost: BTreeMap<String, BTreeMap<i32, [i64; 2]>>,
}

type Partition = (String, i32);

/// Clients of finished reads closed in the background at once, at most (see `retire`).
const MAX_RETIRING: usize = 4;

pub struct KafkaSource {
    config: KafkaSourceConfig,
    servers: String,
    /// For metadata and end offsets (never assigned).
    admin: BaseConsumer,
    schema: SchemaRef,
    /// Where the next batch starts, per partition, after everything planned so far.
    next: BTreeMap<Partition, i64>,
    /// `available_now`: the end offsets at start.
    snapshot: Option<BTreeMap<Partition, i64>>,
    /// Each partition's end offset as the last planning fetched it (Spark's `latestOffset`;
    /// the consumer lag in `GET /metrics` is this minus where the job has read to).
    latest: BTreeMap<Partition, i64>,
    ignore_limits: bool,
    /// Planned before (a batch or a start position was resolved): later partitions start at
    /// the earliest offset, as Spark's new partitions do.
    started: bool,
    /// Backoff while the brokers cannot be reached mid-run.
    backoff: Duration,
    pattern: Option<regex::Regex>,
    /// The continuous trigger's reader, once opened.
    continuous: Option<continuous::Reader>,
    /// How many clients of finished reads are being closed off the batch's path (see `retire`).
    retiring: Arc<AtomicUsize>,
    /// The micro-batch reader, kept from batch to batch (see [`Reader`]).
    reader: Option<Reader>,
}

/// The micro-batch reader: one client kept from batch to batch, so that a batch neither opens a
/// connection nor waits for a fetch: the client fetches ahead while the batch before runs, and
/// what it delivers past the end of the range being read is kept for the next range. A range
/// that does not start where the reader is (the first, a new partition, a replay) assigns the
/// client anew at the range's start. Either way a range reads exactly its offsets.
struct Reader {
    consumer: BaseConsumer,
    /// Per assigned partition: the offset its records continue from (the stash's first, else
    /// what the client delivers next).
    next: BTreeMap<Partition, i64>,
    /// Records delivered past the end of the range they came in, per partition, in order.
    stash: BTreeMap<Partition, std::collections::VecDeque<rdkafka::message::OwnedMessage>>,
    stash_bytes: usize,
}

/// The continuous trigger: one long-lived consumer over the job's partitions.
mod continuous;

fn client(config: &KafkaSourceConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    // Offsets are weir's (the checkpoint); a read_committed reader sees only committed
    // transactions, as an exactly-once pipeline needs. Both can be overridden.
    c.set("enable.auto.commit", "false");
    c.set("enable.auto.offset.store", "false");
    c.set("isolation.level", "read_committed");
    c.set("enable.partition.eof", "true");
    c.set("group.id", "weir-source");
    // A fetch that finds nothing new waits at most this long (librdkafka's default is 500 ms):
    // the kept micro-batch reader (and the continuous one) fetch ahead, and the next batch's
    // records must not wait behind a long poll. Idle, about a hundred small fetches a second.
    c.set("fetch.wait.max.ms", "10");
    for (k, v) in &config.client {
        c.set(k, v);
    }
    c
}

/// The columns a Kafka source yields (also printed by `weir check`).
pub fn schema_of(config: &KafkaSourceConfig) -> SchemaRef {
    match &config.value {
        Some(v) => v.schema.clone(),
        None => {
            let headers = if config.include_headers { ", headers string" } else { "" };
            parse_ddl(&format!(
                "key binary, value binary, topic string NOT NULL, partition int NOT NULL, offset bigint NOT NULL, timestamp timestamp, timestampType int{headers}"
            ))
            .expect("fixed schema")
        }
    }
}

fn invalid(range: &serde_json::Value, e: impl std::fmt::Display) -> SourceError {
    SourceError::Invalid(format!(
        "offsets entry {range} is not a kafka source's ({e}); was the job's source changed? use a new checkpoint"
    ))
}

impl KafkaSource {
    /// Connects and checks the topics exist (unless the job waits for them): an unreachable
    /// broker is an error after `kafka_timeout`, naming the servers.
    pub fn new(config: &KafkaSourceConfig) -> Result<KafkaSource, SourceError> {
        let servers = config.client.get("bootstrap.servers").cloned().unwrap_or_default();
        let admin: BaseConsumer = client(config)
            .create()
            .map_err(|e| SourceError::Invalid(format!("kafka source: cannot create a client for {servers}: {e}")))?;
        let pattern = match &config.topics {
            KafkaTopics::Pattern(p) => Some(regex::Regex::new(p).map_err(|e| SourceError::Invalid(e.to_string()))?),
            _ => None,
        };
        let source = KafkaSource {
            schema: schema_of(config),
            config: config.clone(),
            servers,
            admin,
            next: BTreeMap::new(),
            snapshot: None,
            latest: BTreeMap::new(),
            ignore_limits: false,
            started: false,
            backoff: Duration::from_millis(100),
            pattern,
            continuous: None,
            retiring: Arc::new(AtomicUsize::new(0)),
            reader: None,
        };
        // Reachable, and the topics exist (or the job waits for them).
        source.partitions()?;
        Ok(source)
    }

    fn unreachable(&self, e: KafkaError) -> SourceError {
        SourceError::Invalid(format!(
            "kafka source: cannot reach the brokers at {} within {:?}: {e}; check kafka.\"bootstrap.servers\" and that the brokers are up (kafka_timeout sets how long to wait)",
            self.servers, self.config.timeout
        ))
    }

    /// The partitions the job reads now (subscribed topics' partitions are looked up every time,
    /// so new partitions and, for a pattern, new topics join).
    fn partitions(&self) -> Result<Vec<Partition>, SourceError> {
        let timeout = self.config.timeout;
        let metadata = match &self.config.topics {
            KafkaTopics::Subscribe(list) if list.len() == 1 => self.admin.fetch_metadata(Some(&list[0]), timeout),
            _ => self.admin.fetch_metadata(None, timeout),
        }
        .map_err(|e| self.unreachable(e))?;
        let known: BTreeMap<&str, Vec<i32>> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| (t.name(), t.partitions().iter().map(|p| p.id()).collect::<Vec<_>>()))
            .filter(|(_, p)| !p.is_empty())
            .collect();
        let mut out = Vec::new();
        let missing = |topic: &str| -> Result<(), SourceError> {
            if self.config.wait_for_topics {
                Ok(())
            } else {
                Err(SourceError::Invalid(format!(
                    "kafka source: topic {topic:?} does not exist on {} (topics there: {}); create it, fix the name, or set wait_for_topics = true to wait for it",
                    self.servers,
                    if known.is_empty() { "none".to_string() } else { known.keys().copied().collect::<Vec<_>>().join(", ") }
                )))
            }
        };
        match &self.config.topics {
            KafkaTopics::Subscribe(list) => {
                for t in list {
                    match known.get(t.as_str()) {
                        Some(parts) => out.extend(parts.iter().map(|&p| (t.clone(), p))),
                        None => missing(t)?,
                    }
                }
            }
            KafkaTopics::Pattern(_) => {
                let re = self.pattern.as_ref().expect("compiled at start");
                for (t, parts) in &known {
                    if re.is_match(t) && !t.starts_with("__") {
                        out.extend(parts.iter().map(|&p| (t.to_string(), p)));
                    }
                }
            }
            KafkaTopics::Assign(assign) => {
                for (t, parts) in assign {
                    let Some(have) = known.get(t.as_str()) else {
                        missing(t)?;
                        continue;
                    };
                    for p in parts {
                        if !have.contains(p) {
                            return Err(SourceError::Invalid(format!(
                                "kafka source: topic {t:?} has no partition {p} (it has {}); fix `assign`",
                                have.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
                            )));
                        }
                        out.push((t.clone(), *p));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// A partition's (low, high) offsets as this source may read them. Under `read_committed`
    /// (the default) `high` is the **last stable offset**, not the log end: librdkafka's
    /// `query_watermark_offsets` sends ListOffsets with the client's `isolation.level`, and the
    /// brokers answer the LSO to a `read_committed` request. So a batch never reaches past the
    /// first transaction still open upstream: the open transaction delays its records until it
    /// ends, and the read of a planned range never waits for offsets it cannot see. (The read
    /// ends a partition by its position, which moves past transaction markers and aborted
    /// records.) Planning and reading use the same client settings, so a job that sets
    /// `isolation.level = read_uncommitted` plans to the log end and reads it all.
    fn watermarks(&self, (t, p): &Partition) -> Result<(i64, i64), SourceError> {
        self.admin.fetch_watermarks(t, *p, self.config.timeout).map_err(|e| self.unreachable(e))
    }

    /// Where a partition starts when the job first sees it.
    fn initial(&self, part: &Partition, low: i64, high: i64) -> i64 {
        let spec = match &self.config.starting_offsets {
            _ if self.started => -2,
            StartingOffsets::Earliest => -2,
            StartingOffsets::Latest => -1,
            StartingOffsets::Specific(m) => m.get(&part.0).and_then(|o| o.get(&part.1)).copied().unwrap_or(-2),
        };
        match spec {
            -2 => low,
            -1 => high,
            o => o,
        }
    }

    fn plan(&mut self) -> Result<Option<KafkaRange>, SourceError> {
        let parts = self.partitions()?;
        let mut spans: Vec<(Partition, i64, i64)> = Vec::with_capacity(parts.len());
        let mut range = KafkaRange::default();
        for part in parts {
            let (low, high) = self.watermarks(&part)?;
            self.latest.insert(part.clone(), high);
            let mut start = match self.next.get(&part) {
                Some(&s) => s,
                None => self.initial(&part, low, high),
            };
            if start < low {
                if self.config.fail_on_data_loss {
                    return Err(SourceError::Invalid(format!(
                        "kafka source: topic {:?} partition {} no longer has offsets {start} to {} (it starts at {low} now: deleted by retention, or the topic was recreated); some data was lost. Set fail_on_data_loss = false to skip ahead and go on (the skipped offsets are recorded in the offsets log)",
                        part.0,
                        part.1,
                        low - 1
                    )));
                }
                eprintln!(
                    "warning: kafka source: topic {:?} partition {}: offsets {start} to {} are gone (retention); skipping {} records (fail_on_data_loss = false)",
                    part.0,
                    part.1,
                    low - 1,
                    low - start
                );
                range.lost.entry(part.0.clone()).or_default().insert(part.1, [start, low]);
                start = low;
            }
            if start > high {
                return Err(SourceError::Invalid(format!(
                    "kafka source: topic {:?} partition {} ends at offset {high}, but the job is at {start}: the topic was recreated or truncated. Use a new checkpoint, or starting offsets that exist",
                    part.0, part.1
                )));
            }
            let end = self.snapshot.as_ref().and_then(|s| s.get(&part)).map_or(high, |&s| s.min(high).max(start));
            spans.push((part, start, end));
        }
        // maxOffsetsPerTrigger: shared by the partitions in proportion to what each has waiting.
        let waiting: i64 = spans.iter().map(|(_, s, e)| e - s).sum();
        if let Some(max) = self.config.max_offsets_per_trigger.filter(|_| !self.ignore_limits) {
            let max = max as i64;
            if waiting > max {
                let mut left = max;
                for (_, s, e) in spans.iter_mut() {
                    let share = ((*e - *s) as i128 * max as i128 / waiting as i128) as i64;
                    *e = *s + share;
                    left -= share;
                }
                // What rounding left goes to the partitions with the most waiting, one each.
                let mut order: Vec<usize> = (0..spans.len()).collect();
                order.sort_by_key(|&i| std::cmp::Reverse(spans[i].2 - spans[i].1));
                for i in order {
                    if left == 0 {
                        break;
                    }
                    let (part, s, e) = &mut spans[i];
                    let cap = self.snapshot.as_ref().and_then(|m| m.get(part)).copied().unwrap_or(i64::MAX);
                    if *e < cap && *e - *s < max {
                        *e += 1;
                        left -= 1;
                    }
                }
            }
        }
        self.started = true;
        for (part, s, e) in &spans {
            self.next.insert(part.clone(), *e);
            if e > s {
                range.offsets.entry(part.0.clone()).or_default().insert(part.1, [*s, *e]);
            }
        }
        Ok((!range.offsets.is_empty() || !range.lost.is_empty()).then_some(range))
    }

    /// Closes a read's client on a thread of its own: librdkafka's close and destroy take some
    /// 60-90 ms, which were part of every batch. (A client kept and assigned again per batch is
    /// slower still: the new assignment waits for the fetch in flight, up to fetch.wait.max.ms.)
    /// At most a few at a time; beyond that the batch closes its own.
    fn retire(&self, consumer: BaseConsumer) {
        if self.retiring.fetch_add(1, Ordering::SeqCst) >= MAX_RETIRING {
            drop(consumer);
            self.retiring.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let retiring = self.retiring.clone();
        let spawned = std::thread::Builder::new().name("kafka-close".into()).spawn(move || {
            drop(consumer);
            retiring.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            self.retiring.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The most a kept reader holds past its ranges: librdkafka's `queued.max.messages.kbytes`
    /// (the client's own fetch queue, per partition; 64 MiB unless the job's kafka settings say).
    fn stash_limit(&self) -> usize {
        let kib = self.config.client.get("queued.max.messages.kbytes").and_then(|v| v.trim().parse::<usize>().ok());
        kib.unwrap_or(65_536).saturating_mul(1024)
    }

    fn consumer(&self) -> Result<BaseConsumer, SourceError> {
        client(&self.config).create().map_err(|e| {
            SourceError::Invalid(format!("kafka source: cannot create a client for {}: {e}", self.servers))
        })
    }
}

/// The raw Kafka columns, filled record by record.
struct RawColumns {
    key: BinaryBuilder,
    value: BinaryBuilder,
    topic: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    timestamp: TimestampMicrosecondBuilder,
    timestamp_type: Int32Builder,
    headers: Option<StringBuilder>,
}

impl RawColumns {
    fn new(include_headers: bool) -> Self {
        RawColumns {
            key: BinaryBuilder::new(),
            value: BinaryBuilder::new(),
            topic: StringBuilder::new(),
            partition: Int32Builder::new(),
            offset: Int64Builder::new(),
            timestamp: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            timestamp_type: Int32Builder::new(),
            headers: include_headers.then(StringBuilder::new),
        }
    }

    fn finish(mut self, schema: &SchemaRef) -> RecordBatch {
        let mut cols: Vec<arrow::array::ArrayRef> = vec![
            Arc::new(self.key.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.topic.finish()),
            Arc::new(self.partition.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.timestamp.finish()),
            Arc::new(self.timestamp_type.finish()),
        ];
        if let Some(h) = self.headers.as_mut() {
            cols.push(Arc::new(h.finish()));
        }
        RecordBatch::try_new(schema.clone(), cols).expect("columns match the fixed schema")
    }
}

/// Records as they are read, into the source's columns: the raw Kafka columns, or the values
/// to decode (with where each came from, for messages about a bad one).
pub(super) struct Records {
    raw: Option<RawColumns>,
    /// Per value: (topic index, partition, offset).
    values: Vec<(Vec<u8>, (usize, i32, i64))>,
    topics: Vec<String>,
}

impl Records {
    pub(super) fn new(config: &KafkaSourceConfig) -> Records {
        Records {
            raw: config.value.is_none().then(|| RawColumns::new(config.include_headers)),
            values: Vec::new(),
            topics: Vec::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        match &self.raw {
            Some(raw) => raw.offset.values_slice().len(),
            None => self.values.len(),
        }
    }

    pub(super) fn push(&mut self, m: &impl Message) {
        let Some(raw) = self.raw.as_mut() else {
            let ti = match self.topics.iter().position(|t| t == m.topic()) {
                Some(i) => i,
                None => {
                    self.topics.push(m.topic().to_string());
                    self.topics.len() - 1
                }
            };
            self.values.push((m.payload().unwrap_or_default().to_vec(), (ti, m.partition(), m.offset())));
            return;
        };
        raw.key.append_option(m.key());
        raw.value.append_option(m.payload());
        raw.topic.append_value(m.topic());
        raw.partition.append_value(m.partition());
        raw.offset.append_value(m.offset());
        let (ts, kind) = match m.timestamp() {
            Timestamp::NotAvailable => (None, None),
            Timestamp::CreateTime(ms) => (Some(ms * 1000), Some(0)),
            Timestamp::LogAppendTime(ms) => (Some(ms * 1000), Some(1)),
        };
        raw.timestamp.append_option(ts);
        raw.timestamp_type.append_option(kind);
        if let Some(h) = raw.headers.as_mut() {
            let list: Vec<serde_json::Value> = m
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| {
                            serde_json::json!({
                                "key": h.key,
                                "value": h.value.map(|v| base64::engine::general_purpose::STANDARD.encode(v)),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            h.append_value(serde_json::Value::Array(list).to_string());
        }
    }

    /// The rows, decoded with the job's `value_format` when it has one (a value that does not
    /// decode goes to `bad`, named by topic, partition and offset).
    pub(super) fn finish(
        self,
        config: &KafkaSourceConfig,
        schema: &SchemaRef,
        bad: &mut BadRecords,
    ) -> Result<Vec<RecordBatch>, SourceError> {
        let (Some(value), None) = (&config.value, &self.raw) else {
            return Ok(self.raw.into_iter().map(|raw| raw.finish(schema)).collect());
        };
        let topics = &self.topics;
        let at =
            |(ti, p, o): (usize, i32, i64)| (format!("kafka topic {:?} partition {p} offset {o}", topics[ti]), None);
        Ok(match value.format {
            KafkaValueFormat::Json => {
                decode_json_records(self.values.iter().map(|(v, tag)| (v.as_slice(), *tag)), &value.schema, bad, at)?
            }
            KafkaValueFormat::Csv => {
                let mut out = Vec::new();
                for (v, tag) in &self.values {
                    let (origin, _) = at(*tag);
                    out.extend(crate::format::csv::decode_csv(&origin, v, &value.schema, value.csv, bad)?);
                }
                vec![arrow::compute::concat_batches(&value.schema, &out).expect("one schema")]
            }
        })
    }
}

impl Source for KafkaSource {
    fn description(&self) -> String {
        let what = match &self.config.topics {
            KafkaTopics::Subscribe(t) => format!("Subscribe[{}]", t.join(",")),
            KafkaTopics::Pattern(p) => format!("SubscribePattern[{p}]"),
            KafkaTopics::Assign(a) => format!(
                "Assign[{}]",
                a.iter().flat_map(|(t, ps)| ps.iter().map(move |p| format!("{t}-{p}"))).collect::<Vec<_>>().join(",")
            ),
        };
        format!("KafkaV2[{what}]")
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// One range: per partition, the first start and the furthest end (`restore` takes the
    /// end); offsets lost to retention are folded in the same way.
    fn compact_ranges(&self, planned: Vec<serde_json::Value>) -> Result<Vec<serde_json::Value>, SourceError> {
        if planned.is_empty() {
            return Ok(planned);
        }
        let mut out = KafkaRange { offsets: BTreeMap::new(), lost: BTreeMap::new() };
        for r in &planned {
            let range: KafkaRange = serde_json::from_value(r.clone()).map_err(|e| invalid(r, e))?;
            for (into, from) in [(&mut out.offsets, range.offsets), (&mut out.lost, range.lost)] {
                for (t, parts) in from {
                    for (p, [start, end]) in parts {
                        let slot = into.entry(t.clone()).or_default().entry(p).or_insert([start, end]);
                        *slot = [slot[0].min(start), slot[1].max(end)];
                    }
                }
            }
        }
        Ok(vec![serde_json::to_value(out).expect("serialisable")])
    }

    fn restore(&mut self, planned: &[serde_json::Value]) -> Result<(), SourceError> {
        for r in planned {
            let range: KafkaRange = serde_json::from_value(r.clone()).map_err(|e| invalid(r, e))?;
            for (t, parts) in range.offsets.iter().chain(&range.lost) {
                for (&p, &[_, end]) in parts {
                    let slot = self.next.entry((t.clone(), p)).or_insert(end);
                    *slot = (*slot).max(end);
                }
            }
            self.started = true;
        }
        Ok(())
    }

    fn plan_next(&mut self, _now_micros: i64) -> Result<Option<serde_json::Value>, SourceError> {
        match self.plan() {
            Ok(range) => {
                self.backoff = Duration::from_millis(100);
                Ok(range.map(|r| serde_json::to_value(r).expect("serialisable")))
            }
            // Mid-run, brokers that cannot be reached are waited for, with backoff; other
            // errors (data loss, a missing topic) stop the job.
            Err(e) if e.to_string().contains("cannot reach the brokers") && self.started => {
                eprintln!("warning: {e}; retrying in {:?}", self.backoff);
                std::thread::sleep(self.backoff);
                self.backoff = (self.backoff * 2).min(Duration::from_secs(30));
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn snapshot_available_now(&mut self) -> Result<(), SourceError> {
        let mut ends = BTreeMap::new();
        for part in self.partitions()? {
            let (_, high) = self.watermarks(&part)?;
            ends.insert(part, high);
        }
        self.snapshot = Some(ends);
        Ok(())
    }

    fn ignore_trigger_limits(&mut self) {
        self.ignore_limits = true;
    }

    /// `{topic: {partition: offset}}`, Spark's shape, as the last planning fetched them.
    fn latest_offset(&self) -> Option<serde_json::Value> {
        if self.latest.is_empty() {
            return None;
        }
        let mut out: BTreeMap<&str, BTreeMap<String, i64>> = BTreeMap::new();
        for ((t, p), &o) in &self.latest {
            out.entry(t.as_str()).or_default().insert(p.to_string(), o);
        }
        Some(serde_json::to_value(out).expect("serialisable"))
    }

    fn continuous(&mut self) -> Option<&mut dyn super::continuous::ContinuousSource> {
        Some(self)
    }

    /// Spark's polling delay (10 ms): each plan asks the brokers for the partitions and their
    /// end offsets, a few round trips.
    fn idle_poll(&self, _now_micros: i64) -> Duration {
        Duration::from_millis(10)
    }

    fn describe_range(&self, range: &serde_json::Value) -> String {
        match serde_json::from_value::<KafkaRange>(range.clone()) {
            Ok(r) => r
                .offsets
                .iter()
                .flat_map(|(t, ps)| ps.iter().map(move |(p, [s, e])| format!("{t}-{p} offsets {s}..{e}")))
                .collect::<Vec<_>>()
                .join(", "),
            Err(_) => range.to_string(),
        }
    }

    fn read(&mut self, range: &serde_json::Value, bad: &mut BadRecords) -> Result<Vec<RecordBatch>, SourceError> {
        let range: KafkaRange = serde_json::from_value(range.clone()).map_err(|e| invalid(range, e))?;
        let mut remaining: BTreeMap<Partition, [i64; 2]> = BTreeMap::new();
        for (t, parts) in &range.offsets {
            for (&p, &[s, e]) in parts {
                remaining.insert((t.clone(), p), [s, e]);
            }
        }
        // Taken: a read that fails drops it, and the next read starts with a new one.
        let mut reader = match self.reader.take() {
            Some(r) if remaining.iter().all(|(part, [s, _])| r.next.get(part) == Some(s)) => r,
            other => {
                // Not where a kept reader is (or none): a new client (one assigned anew would
                // wait for its fetch in flight, and report positions from before), assigned to
                // the range's partitions at their starts and the source's others where their
                // next ranges start.
                if let Some(old) = other {
                    self.retire(old.consumer);
                }
                let mut next = self.next.clone();
                for (part, [s, _]) in &remaining {
                    next.insert(part.clone(), *s);
                }
                let mut tpl = TopicPartitionList::new();
                for ((t, p), &o) in &next {
                    tpl.add_partition_offset(t, *p, Offset::Offset(o))
                        .map_err(|e| SourceError::Invalid(format!("kafka source: {t}-{p}: {e}")))?;
                }
                let consumer = self.consumer()?;
                consumer
                    .assign(&tpl)
                    .map_err(|e| SourceError::Invalid(format!("kafka source: assigning {tpl:?}: {e}")))?;
                Reader { consumer, next, stash: BTreeMap::new(), stash_bytes: 0 }
            }
        };
        let consumer = &reader.consumer;
        let mut records = Records::new(&self.config);
        // First what the last read kept.
        for (part, [from, end]) in remaining.clone() {
            let Some(kept) = reader.stash.get_mut(&part) else { continue };
            while let Some(m) = kept.front() {
                if m.offset() >= end {
                    remaining.remove(&part);
                    break;
                }
                let m = kept.pop_front().expect("a front");
                reader.stash_bytes -= m.payload().map_or(0, <[u8]>::len) + m.key().map_or(0, <[u8]>::len);
                if m.offset() >= from {
                    records.push(&m);
                    remaining.insert(part.clone(), [m.offset() + 1, end]);
                    if m.offset() + 1 >= end {
                        remaining.remove(&part);
                        break;
                    }
                }
            }
        }
        let mut last_progress = Instant::now();
        let mut backoff = Duration::from_millis(100);
        while !remaining.is_empty() {
            // Whether to look at the consumer's positions after this poll: only when it had no
            // record to give (not per record: that lists every partition).
            let mut check_positions = true;
            match consumer.poll(Duration::from_millis(200)) {
                None => {}
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => {
                    if last_progress.elapsed() > self.config.timeout {
                        return Err(SourceError::Invalid(format!(
                            "kafka source: reading {} from {}: {e}; retried for {:?}",
                            self.describe_range(&serde_json::to_value(&range).expect("serialisable")),
                            self.servers,
                            self.config.timeout
                        )));
                    }
                    eprintln!("warning: kafka source: {e}; retrying in {backoff:?}");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                Some(Ok(m)) => {
                    check_positions = false;
                    let part = (m.topic().to_string(), m.partition());
                    let Some(&[from, end]) = remaining.get(&part).filter(|&&[_, end]| m.offset() < end) else {
                        // Past the range (or of a partition it does not cover): the next one's.
                        remaining.remove(&part);
                        if reader.next.contains_key(&part) {
                            reader.stash_bytes += m.payload().map_or(0, <[u8]>::len) + m.key().map_or(0, <[u8]>::len);
                            reader.stash.entry(part).or_default().push_back(m.detach());
                        }
                        continue;
                    };
                    // Each offset once, from the range's start on.
                    if m.offset() < from {
                        continue;
                    }
                    last_progress = Instant::now();
                    backoff = Duration::from_millis(100);
                    records.push(&m);
                    remaining.insert(part.clone(), [m.offset() + 1, end]);
                    if m.offset() + 1 >= end {
                        remaining.remove(&part);
                    }
                }
            }
            // Transaction markers and aborted records leave gaps: a partition whose position
            // reached its end is done even if no record at end − 1 was delivered.
            if !check_positions {
                continue;
            }
            if let Ok(pos) = consumer.position() {
                for e in pos.elements() {
                    if let Offset::Offset(o) = e.offset() {
                        let part = (e.topic().to_string(), e.partition());
                        if remaining.get(&part).is_some_and(|&[_, end]| o >= end) {
                            remaining.remove(&part);
                        }
                    }
                }
            }
            if !remaining.is_empty() && last_progress.elapsed() > self.config.timeout {
                return Err(SourceError::Invalid(format!(
                    "kafka source: no record arrived for {:?} while reading {} from {} (still missing: {}); the records may have been deleted, or the brokers are unreachable",
                    self.config.timeout,
                    self.describe_range(&serde_json::to_value(&range).expect("serialisable")),
                    self.servers,
                    remaining.iter().map(|((t, p), [s, e])| format!("{t}-{p} up to {e} from {s}")).collect::<Vec<_>>().join(", ")
                )));
            }
        }
        for (t, parts) in &range.offsets {
            for (&p, &[_, e]) in parts {
                reader.next.insert((t.clone(), p), e);
            }
        }
        // Kept for the next batch, unless it holds more than the client's own fetch queue may
        // (queued.max.messages.kbytes): then the next read starts afresh.
        if reader.stash_bytes <= self.stash_limit() {
            self.reader = Some(reader);
        } else {
            self.retire(reader.consumer);
        }
        records.finish(&self.config, &self.schema, bad)
    }
}

#[cfg(test)]
mod reader_tests {
    use arrow::array::AsArray;
    use arrow::datatypes::{Int32Type, Int64Type};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    use super::*;
    use crate::deadletter::OnBadRecord;

    fn config(servers: &str) -> KafkaSourceConfig {
        KafkaSourceConfig {
            topics: KafkaTopics::Subscribe(vec!["t".into()]),
            starting_offsets: StartingOffsets::Earliest,
            max_offsets_per_trigger: Some(7),
            client: [("bootstrap.servers".to_string(), servers.to_string())].into(),
            value: None,
            include_headers: false,
            fail_on_data_loss: true,
            wait_for_topics: false,
            timeout: Duration::from_secs(10),
            consumer_group: None,
        }
    }

    /// Records `v<n>` for n in `from..to`, alternately to partitions 0 and 1.
    fn produce(servers: &str, from: u32, to: u32) {
        let p: BaseProducer = ClientConfig::new().set("bootstrap.servers", servers).create().unwrap();
        for n in from..to {
            p.send(BaseRecord::<[u8], [u8]>::to("t").partition((n % 2) as i32).payload(format!("v{n}").as_bytes()))
                .unwrap();
        }
        p.flush(Duration::from_secs(10)).unwrap();
    }

    /// (partition, offset, value) of every row read, sorted.
    fn read(source: &mut KafkaSource, range: &serde_json::Value) -> Vec<(i32, i64, String)> {
        let mut bad = BadRecords::new(OnBadRecord::Fail);
        let mut rows = Vec::new();
        for b in source.read(range, &mut bad).unwrap() {
            for r in 0..b.num_rows() {
                rows.push((
                    b.column(3).as_primitive::<Int32Type>().value(r),
                    b.column(4).as_primitive::<Int64Type>().value(r),
                    String::from_utf8(b.column(1).as_binary::<i32>().value(r).to_vec()).unwrap(),
                ));
            }
        }
        rows.sort();
        rows
    }

    /// What a range covers: (partition, offset) pairs.
    fn covered(range: &serde_json::Value) -> Vec<(i32, i64)> {
        let r: KafkaRange = serde_json::from_value(range.clone()).unwrap();
        r.offsets["t"].iter().flat_map(|(&p, &[s, e])| (s..e).map(move |o| (p, o))).collect()
    }

    #[test]
    fn a_kept_reader_reads_each_range_exactly_and_a_replay_reads_the_same_rows() {
        let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
        let servers = cluster.bootstrap_servers();
        cluster.create_topic("t", 2, 1).unwrap();
        produce(&servers, 0, 20);
        let mut source = KafkaSource::new(&config(&servers)).unwrap();
        let mut ranges = Vec::new();
        let mut first_reads = Vec::new();
        for round in 0..5 {
            // More records arrive while the reader is kept: it fetches them ahead, past the
            // planned ranges, and keeps them for the next.
            if round == 2 {
                produce(&servers, 20, 40);
            }
            let range = source.plan_next(0).unwrap().unwrap();
            let rows = read(&mut source, &range);
            assert_eq!(rows.iter().map(|&(p, o, _)| (p, o)).collect::<Vec<_>>(), covered(&range), "round {round}");
            assert_eq!(rows.len(), 7, "round {round}: max_offsets_per_trigger");
            ranges.push(range);
            first_reads.push(rows);
        }
        // Values are the records produced at those offsets: v<n> went to partition n % 2 at
        // offset n / 2 (the second lot after the first 10 of each partition).
        for rows in &first_reads {
            for (p, o, v) in rows {
                assert_eq!(v, &format!("v{}", o * 2 + *p as i64), "partition {p} offset {o}");
            }
        }
        // The same source, an earlier range again (not where its reader is): the same rows.
        assert_eq!(read(&mut source, &ranges[1]), first_reads[1]);
        // After a restart: a new source restored from the planned ranges replays them exactly.
        let mut restarted = KafkaSource::new(&config(&servers)).unwrap();
        restarted.restore(&ranges).unwrap();
        for (range, rows) in ranges.iter().zip(&first_reads).skip(2) {
            assert_eq!(&read(&mut restarted, range), rows);
        }
        // And it goes on where the first left off.
        let next = restarted.plan_next(0).unwrap().unwrap();
        let rows = read(&mut restarted, &next);
        assert_eq!(rows.iter().map(|&(p, o, _)| (p, o)).collect::<Vec<_>>(), covered(&next));
        assert_eq!(rows.len(), 5, "40 records, 35 read before");
    }
}
