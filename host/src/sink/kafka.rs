//! Kafka, exactly once: each batch is one Kafka transaction. With its records the transaction
//! writes a marker record (key: the transactional id; value: the batch id) to weir's own
//! one-partition topic for this query (`weir-sink-<query id>`, created at start unless it
//! exists; `marker_topic` names another, which other queries may share): "batch N is in Kafka",
//! committed atomically with the records. Before writing its first batch the sink finds its own
//! last committed marker; when it is N or later, the batch is already in Kafka (a crash came
//! after the Kafka commit and before the checkpoint's) and nothing is written again. So a
//! `read_committed` consumer sees each batch's records exactly once. (A marker kept as a
//! transactional consumer-group offset would do too on Apache Kafka, but not on every broker:
//! librdkafka's mock cluster does not keep them.)
//!
//! Finding the last marker: first wait until no transaction is open below the marker
//! partition's log end (its last stable offset reaches it: this query's own last transaction
//! was ended when `init_transactions` fenced it; another query's ends within its transaction
//! timeout), then read the partition `read_committed` from a tail of it to its end, keeping only
//! the largest batch id under this query's key; when the tail holds none, a tail eight times
//! longer, up to the whole partition. Memory stays constant however many queries share the
//! topic.
//!
//! Records: the `value` column (binary or string), and when present `key` (binary or string),
//! `topic` (string), `partition` (int) and `headers` (the JSON the Kafka source writes: a list of
//! `{"key", "value"}`, value in base64). Without a `value` column each row is written as JSON
//! (Spark's `to_json(struct(*))`). The topic is the sink's `topic` when set, whatever a row's
//! `topic` column says (Spark's `topic` option overrides the column: a Kafka-to-Kafka job does
//! not write back into its input); without it, each row's `topic` column, which must not be null.
//!
//! A transaction open longer than `transaction.timeout.ms` is aborted by the brokers, and a
//! replay of the batch would take as long again: the sink checks the time its transaction has
//! been open while it produces and before it commits, and stops with an error saying what to
//! raise when it nears that timeout.

use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int32Type, Schema};
use base64::Engine as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, PurgeConfig};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::{Sink, SinkError};
use crate::config::KafkaSinkConfig;
use crate::format::encode::write_json_lines;

pub struct KafkaSink {
    config: KafkaSinkConfig,
    servers: String,
    /// Set by `start`.
    live: Option<Live>,
    /// The next batch id Kafka has not seen committed, once read from the markers: only a
    /// batch replayed at start can be there already, so the markers are read once, then kept
    /// up to date by this sink's own commits.
    next_uncommitted: Option<u64>,
    /// The transaction of the batch (or continuous epoch) being written.
    open: Option<OpenTransaction>,
}

/// A batch's transaction, open.
#[derive(Debug, Clone, Copy)]
struct OpenTransaction {
    batch_id: u64,
    began: Instant,
    /// Records sent in it so far.
    sent: u64,
}

struct Live {
    producer: BaseProducer,
    /// The transactional id; also the key of this query's markers, so that several queries
    /// (or outputs) may share a marker topic.
    owner: String,
    /// The query's marker topic, and a `read_committed` client of it (its end offset is the
    /// last stable offset: below it no transaction is open).
    marker_topic: String,
    marker: BaseConsumer,
    /// A `read_uncommitted` client of it: its end offset is the log's end.
    log_end: BaseConsumer,
    /// Settings of a `read_committed` reader of the marker partition (a fresh one per read).
    reader: ClientConfig,
}

/// The first tail of the marker partition read back for this query's last marker (offsets);
/// it grows eightfold until a marker of this query is in it or it is the whole partition.
const MARKER_TAIL: i64 = 1000;
/// librdkafka's default `transaction.timeout.ms`.
const DEFAULT_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);
/// A transaction open longer than this share of the transaction timeout is not committed: the
/// commit itself needs time, and the brokers' clock started before ours.
const TRANSACTION_MARGIN: f64 = 0.9;

fn kafka_err(servers: &str, what: &str, e: KafkaError) -> SinkError {
    SinkError::Invalid(format!(
        "kafka sink ({servers}): {what}: {e}; check kafka.\"bootstrap.servers\", that the brokers are up and support transactions"
    ))
}

impl KafkaSink {
    pub fn new(config: &KafkaSinkConfig) -> KafkaSink {
        let servers = config.client.get("bootstrap.servers").cloned().unwrap_or_default();
        KafkaSink { config: config.clone(), servers, live: None, next_uncommitted: None, open: None }
    }

    /// Connects and fences any earlier producer of this query (`init_transactions`), so a
    /// zombie process can no longer commit.
    fn connect(&self, query_id: &str) -> Result<Live, SinkError> {
        let (config, servers) = (&self.config, self.servers.clone());
        let mut p = ClientConfig::new();
        p.set("transactional.id", format!("weir-{query_id}"));
        p.set("enable.idempotence", "true");
        // A batch ends by delivering everything it sent: lingering only delays its commit (and,
        // continuous, what `read_uncommitted` consumers see). Records still go out in batches,
        // those that queue while a request is in flight.
        p.set("linger.ms", "0");
        for (k, v) in &config.client {
            p.set(k, v);
        }
        let producer: BaseProducer =
            p.create().map_err(|e| kafka_err(&servers, "cannot create the transactional producer", e))?;
        producer.init_transactions(config.timeout).map_err(|e| {
            kafka_err(&servers, &format!("initialising transactions (waited up to {:?})", config.timeout), e)
        })?;
        let mut c = ClientConfig::new();
        for (k, v) in &config.client {
            c.set(k, v);
        }
        c.set("group.id", format!("weir-{query_id}"));
        c.set("enable.auto.commit", "false");
        c.set("isolation.level", "read_committed");
        c.set("enable.partition.eof", "true");
        let marker: BaseConsumer = c.create().map_err(|e| kafka_err(&servers, "cannot create a client", e))?;
        let log_end: BaseConsumer = c
            .clone()
            .set("isolation.level", "read_uncommitted")
            .create()
            .map_err(|e| kafka_err(&servers, "cannot create a client", e))?;
        let marker_topic = config.marker_topic.clone().unwrap_or_else(|| format!("weir-sink-{query_id}"));
        let exists = marker
            .fetch_metadata(Some(&marker_topic), config.timeout)
            .map_err(|e| kafka_err(&servers, "reading metadata", e))?
            .topics()
            .iter()
            .any(|t| t.name() == marker_topic && t.error().is_none() && !t.partitions().is_empty());
        if !exists {
            create_marker_topic(&config.client, &marker_topic, config.timeout).map_err(|e| {
                kafka_err(
                    &servers,
                    &format!("creating weir's marker topic {marker_topic:?} (create it with one partition, or name an existing one in sink.marker_topic)"),
                    e,
                )
            })?;
        }
        Ok(Live { producer, owner: format!("weir-{query_id}"), marker_topic, marker, log_end, reader: c })
    }

    fn live(&self) -> &Live {
        self.live.as_ref().expect("the engine starts the sink before writing")
    }

    /// The next batch id Kafka has not seen committed (0 when none was): one past this query's
    /// largest committed marker.
    fn committed_batches(&self) -> Result<u64, SinkError> {
        let live = self.live();
        let timeout = self.config.timeout;
        let err = |e| kafka_err(&self.servers, &format!("reading the markers in {}", live.marker_topic), e);
        let part = self.config.marker_partition;
        let (low, end) = live.log_end.fetch_watermarks(&live.marker_topic, part, timeout).map_err(err)?;
        if end <= low {
            return Ok(0);
        }
        self.wait_until_stable(end)?;
        let mut tail = MARKER_TAIL;
        loop {
            let from = end.saturating_sub(tail).max(low);
            if let Some(id) = self.last_marker(from)? {
                return Ok(id + 1);
            }
            if from == low {
                return Ok(0);
            }
            tail = tail.saturating_mul(8);
        }
    }

    /// Waits until no transaction is open in the marker partition below `end`: until then a
    /// `read_committed` reader cannot see past the first open one, and this query's last
    /// marker may lie beyond it.
    fn wait_until_stable(&self, end: i64) -> Result<(), SinkError> {
        let live = self.live();
        let part = self.config.marker_partition;
        let err = |e| kafka_err(&self.servers, &format!("reading the markers in {}", live.marker_topic), e);
        let patience = self.config.timeout + self.transaction_timeout();
        let deadline = Instant::now() + patience;
        loop {
            let (_, stable) =
                live.marker.fetch_watermarks(&live.marker_topic, part, self.config.timeout).map_err(err)?;
            if stable >= end {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(SinkError::Invalid(format!(
                    "kafka sink ({}): marker topic {} partition {part} has had a transaction open below offset {end} for over {patience:?} (its last stable offset stays at {stable}): another writer's, still running or not yet aborted by the brokers. Until it ends this query cannot tell whether its last batch is in Kafka. Wait and restart, or give this query a marker topic of its own (leave sink.marker_topic unset)",
                    self.servers, live.marker_topic
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The largest batch id among this query's committed markers from offset `from` to the
    /// end of the marker partition (only that number is kept, whatever else is there).
    fn last_marker(&self, from: i64) -> Result<Option<u64>, SinkError> {
        let live = self.live();
        let timeout = self.config.timeout;
        let err = |e| kafka_err(&self.servers, &format!("reading the markers in {}", live.marker_topic), e);
        // A fresh reader per pass: end-of-partition is reported once per reader and offset.
        let reader: BaseConsumer = live.reader.create().map_err(err)?;
        let part = self.config.marker_partition;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&live.marker_topic, part, Offset::Offset(from)).expect("a valid offset");
        reader.assign(&tpl).map_err(err)?;
        let mut last: Option<u64> = None;
        let mut quiet_since = Instant::now();
        loop {
            match reader.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    quiet_since = Instant::now();
                    if m.key() == Some(live.owner.as_bytes()) {
                        let id = m.payload().and_then(|p| std::str::from_utf8(p).ok()).and_then(|t| t.parse::<u64>().ok());
                        if let Some(id) = id {
                            last = Some(last.map_or(id, |l: u64| l.max(id)));
                        }
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => return Ok(last),
                Some(Err(e)) => return Err(err(e)),
                None if quiet_since.elapsed() > timeout => {
                    return Err(SinkError::Invalid(format!(
                        "kafka sink ({}): reading the markers in {} from offset {from}: nothing arrived within {timeout:?}; check the brokers",
                        self.servers, live.marker_topic
                    )))
                }
                None => {}
            }
        }
    }

    /// The producer's `transaction.timeout.ms`: how long the brokers let a transaction stay open.
    fn transaction_timeout(&self) -> Duration {
        self.config
            .client
            .get("transaction.timeout.ms")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(DEFAULT_TRANSACTION_TIMEOUT, Duration::from_millis)
    }

    /// Stops a batch whose transaction has been open too close to the transaction timeout:
    /// the brokers would abort it anyway, and its replay (the same input) would fare the same.
    fn check_open_time(&self, batch_id: u64, began: Instant, sent: u64) -> Result<(), SinkError> {
        let limit = self.transaction_timeout();
        let open = began.elapsed();
        if open.as_secs_f64() < limit.as_secs_f64() * TRANSACTION_MARGIN {
            return Ok(());
        }
        Err(SinkError::Invalid(format!(
            "kafka sink ({}): batch {batch_id}: its transaction has been open {:.1} s ({sent} records sent), too close to kafka.\"transaction.timeout.ms\" = {} ms, after which the brokers abort it; it is aborted now and nothing of batch {batch_id} is committed. Raise kafka.\"transaction.timeout.ms\" (up to the brokers' transaction.max.timeout.ms, 15 minutes by default): the batch is replayed with the same input, so only that lets it through. For later batches, a smaller max_offsets_per_trigger (or max_files_per_trigger) keeps them shorter",
            self.servers,
            open.as_secs_f64(),
            limit.as_millis()
        )))
    }

    fn send(&self, record: BaseRecord<'_, [u8], [u8]>) -> Result<(), SinkError> {
        let mut record = record;
        loop {
            match self.live().producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    // (rdkafka's `poll` returns only when its timeout is over: keep it short.)
                    self.live().producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(kafka_err(&self.servers, "producing a record", e)),
            }
        }
    }

    /// Checks that rows of `schema` can be written (at start, before any data moves):
    /// `key` and `value` binary or string, and a topic for every row. The error names the
    /// job-file field to change.
    pub fn check_columns(config: &KafkaSinkConfig, schema: &Schema) -> Result<(), (&'static str, String)> {
        let listed = || {
            schema
                .fields()
                .iter()
                .map(|f| format!("{} {}", f.name(), crate::schema::type_name(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if config.topic.is_none() {
            match schema.field_with_name("topic") {
                Ok(f) if f.data_type() == &DataType::Utf8 => {}
                Ok(f) => {
                    return Err((
                        "topic",
                        format!(
                            "is not set, and the rows' `topic` column is {}, not string: set topic to the topic to write to, or make the column a string",
                            crate::schema::type_name(f.data_type())
                        ),
                    ))
                }
                Err(_) => {
                    return Err((
                        "topic",
                        format!(
                            "is not set, and the rows have no `topic` column to name each row's topic (their columns: {}): set topic to the topic to write to",
                            listed()
                        ),
                    ))
                }
            }
        }
        for name in ["key", "value"] {
            if let Ok(f) = schema.field_with_name(name) {
                if !matches!(f.data_type(), DataType::Binary | DataType::Utf8) {
                    return Err((
                        "format",
                        format!(
                            "kafka: the rows' `{name}` column is {}; it must be binary or string (or leave out `value` to write each row as JSON)",
                            crate::schema::type_name(f.data_type())
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Sends the rows of `batch` (part of batch `batch_id`, after `sent` records of it) into
    /// the open transaction, checking now and then how long it has been open.
    fn produce(&self, batch: &RecordBatch, batch_id: u64, began: Instant, sent: u64) -> Result<u64, SinkError> {
        let schema = batch.schema();
        if let Err((field, e)) = Self::check_columns(&self.config, &schema) {
            return Err(SinkError::Invalid(format!("kafka sink: `{field}` {e}")));
        }
        let col = |name: &str| schema.index_of(name).ok().map(|i| batch.column(i).clone());
        let bytes_of = |a: &dyn Array, r: usize| -> Option<Vec<u8>> {
            if a.is_null(r) {
                return None;
            }
            Some(match a.data_type() {
                DataType::Binary => a.as_binary::<i32>().value(r).to_vec(),
                DataType::Utf8 => a.as_string::<i32>().value(r).as_bytes().to_vec(),
                _ => unreachable!("checked above"),
            })
        };
        let (key, value) = (col("key"), col("value"));
        // Spark's precedence: the `topic` option, when set, over the rows' column.
        let topic_col = match &self.config.topic {
            Some(_) => None,
            None => Some(col("topic").expect("checked above: a string topic column")),
        };
        let partition = col("partition").filter(|c| c.data_type() == &DataType::Int32);
        let headers = col("headers").filter(|c| c.data_type() == &DataType::Utf8);
        // Without a value column: the row as JSON.
        let json_rows: Option<Vec<Vec<u8>>> = value.is_none().then(|| {
            let mut out = Vec::new();
            write_json_lines(batch, &mut out);
            out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
        });
        for r in 0..batch.num_rows() {
            if r % 1024 == 1023 {
                self.check_open_time(batch_id, began, sent + r as u64)?;
            }
            let payload = match (&value, &json_rows) {
                (Some(v), _) => bytes_of(v.as_ref(), r),
                (None, Some(rows)) => Some(rows[r].clone()),
                (None, None) => unreachable!(),
            };
            let key = key.as_ref().and_then(|k| bytes_of(k.as_ref(), r));
            let topic = match (&self.config.topic, &topic_col) {
                (Some(t), _) => t.as_str(),
                (None, Some(c)) if c.is_valid(r) => c.as_string::<i32>().value(r),
                (None, _) => {
                    return Err(SinkError::Invalid(format!(
                        "kafka sink: batch {batch_id}: row {} has a null `topic`, and the sink's topic is not set: give every row a topic, or set the sink's topic (Spark's `topic` option; it then applies to every row)",
                        sent + r as u64
                    )))
                }
            };
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
            if let Some(p) = &payload {
                record = record.payload(p.as_slice());
            }
            if let Some(k) = &key {
                record = record.key(k.as_slice());
            }
            if let Some(p) = partition.as_ref().filter(|p| p.is_valid(r)) {
                record = record.partition(p.as_primitive::<Int32Type>().value(r));
            }
            if let Some(h) = headers.as_ref().filter(|h| h.is_valid(r)) {
                record = record.headers(parse_headers(h.as_string::<i32>().value(r))?);
            }
            self.send(record)?;
        }
        Ok(batch.num_rows() as u64)
    }
}

impl KafkaSink {
    /// Opens batch (or epoch) `batch_id`'s transaction.
    fn begin(&mut self, batch_id: u64) -> Result<(), SinkError> {
        let servers = self.servers.clone();
        self.live().producer.begin_transaction().map_err(|e| kafka_err(&servers, "beginning a transaction", e))?;
        self.open = Some(OpenTransaction { batch_id, began: Instant::now(), sent: 0 });
        Ok(())
    }

    /// Sends `batch`'s rows into the open transaction.
    fn produce_open(&mut self, batch: &RecordBatch) -> Result<u64, SinkError> {
        let OpenTransaction { batch_id, began, sent } = *self.open.as_ref().expect("a transaction is open");
        let n = self.produce(batch, batch_id, began, sent)?;
        self.open.as_mut().expect("open").sent += n;
        Ok(n)
    }

    /// Writes the open transaction's marker, delivers everything and commits: the batch is in
    /// Kafka. Returns the records sent in it.
    fn commit_open(&mut self) -> Result<u64, SinkError> {
        let OpenTransaction { batch_id, began, sent } = *self.open.as_ref().expect("a transaction is open");
        let servers = self.servers.clone();
        let id = batch_id.to_string();
        let live = self.live();
        self.send(
            BaseRecord::to(&live.marker_topic)
                .partition(self.config.marker_partition)
                .key(live.owner.as_bytes())
                .payload(id.as_bytes()),
        )?;
        // Everything delivered first, so that the check sees the time the brokers did.
        let left = self.transaction_timeout().saturating_sub(began.elapsed());
        if let Err(e) = deliver(&live.producer, left) {
            self.check_open_time(batch_id, began, sent)?;
            return Err(kafka_err(&servers, &format!("delivering batch {batch_id}"), e));
        }
        self.check_open_time(batch_id, began, sent)?;
        live.producer
            .commit_transaction(self.config.timeout)
            .map_err(|e| kafka_err(&servers, &format!("committing batch {batch_id}"), e))?;
        self.open = None;
        self.next_uncommitted = Some(batch_id + 1);
        Ok(sent)
    }

    /// Aborts the open transaction after a failure.
    fn abort_open(&mut self) {
        let timeout = self.config.timeout;
        let producer = &self.live().producer;
        // What is still queued or in flight belongs to the aborted transaction: drop it, and
        // serve its delivery reports, which abort_transaction waits for (a BaseProducer has no
        // thread of its own to serve them).
        producer.purge(PurgeConfig::default().queue().inflight());
        let _ = producer.flush(timeout.min(Duration::from_secs(5)));
        let _ = producer.abort_transaction(timeout);
        self.open = None;
        // Whether the commit reached Kafka is unknown: read the markers again.
        self.next_uncommitted = None;
    }
}

/// Waits until every record sent is delivered (or `timeout` passed), serving the delivery reports
/// in 1 ms steps. rdkafka's `BaseProducer::flush` serves them with `poll(100 ms)`, and that
/// `poll` returns only when its timeout is over, so each flush with anything in flight took
/// 100 ms: the whole of a small batch's time in the sink.
fn deliver(producer: &BaseProducer, timeout: Duration) -> Result<(), KafkaError> {
    let deadline = Instant::now() + timeout;
    while producer.in_flight_count() > 0 {
        if Instant::now() >= deadline {
            return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
        }
        producer.poll(Duration::from_millis(1));
    }
    Ok(())
}

/// Creates the marker topic (one partition) unless it exists.
fn create_marker_topic(
    client: &std::collections::BTreeMap<String, String>,
    topic: &str,
    timeout: Duration,
) -> Result<(), KafkaError> {
    let mut c = ClientConfig::new();
    for (k, v) in client {
        c.set(k, v);
    }
    let admin: AdminClient<DefaultClientContext> = c.create()?;
    // Replication -1: the brokers' default.
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1));
    let opts = AdminOptions::new().operation_timeout(Some(timeout));
    for r in futures_executor::block_on(admin.create_topics(&[new], &opts))? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(KafkaError::AdminOp(code)),
        }
    }
    Ok(())
}

/// The `headers` column: `[{"key": "k", "value": "<base64>" | null}, ...]`.
fn parse_headers(text: &str) -> Result<OwnedHeaders, SinkError> {
    let bad = |why: String| {
        SinkError::Invalid(format!("kafka sink: `headers` value {text:?}: {why}; write a JSON list of {{\"key\": ..., \"value\": <base64 or null>}}"))
    };
    let list: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let mut headers = OwnedHeaders::new_with_capacity(list.len());
    for h in list {
        let key = h["key"].as_str().ok_or_else(|| bad("a header without a string key".into()))?;
        let value = match &h["value"] {
            serde_json::Value::Null => None,
            serde_json::Value::String(v) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .map_err(|e| bad(format!("value of {key:?}: {e}")))?,
            ),
            _ => return Err(bad(format!("value of {key:?} is not base64 text"))),
        };
        headers = headers.insert(Header { key, value: value.as_deref() });
    }
    Ok(headers)
}

impl Sink for KafkaSink {
    fn description(&self) -> String {
        format!("KafkaSink[{}]", self.config.topic.as_deref().unwrap_or("<topic column>"))
    }

    fn start(&mut self, query_id: &str) -> Result<(), SinkError> {
        self.live = Some(self.connect(query_id)?);
        Ok(())
    }

    fn committed(&mut self, batch_id: u64) -> Result<bool, SinkError> {
        let next = match self.next_uncommitted {
            Some(n) => n,
            None => self.committed_batches()?,
        };
        self.next_uncommitted = Some(next);
        Ok(next > batch_id)
    }

    fn write_batch(&mut self, batch_id: u64, data: &[RecordBatch]) -> Result<u64, SinkError> {
        if self.committed(batch_id)? {
            return Ok(0);
        }
        let result = (|| {
            self.begin(batch_id)?;
            for b in data {
                self.produce_open(b)?;
            }
            self.commit_open()
        })();
        if result.is_err() {
            self.abort_open();
        }
        result
    }

    /// Continuous: the epoch's records go into its transaction as they come (`read_uncommitted`
    /// consumers see them at once; `read_committed` ones when the epoch commits).
    fn write_now(&mut self, epoch: u64, data: &[RecordBatch]) -> Result<u64, SinkError> {
        let result = (|| {
            if self.open.is_none() {
                if self.committed(epoch)? {
                    return Err(SinkError::Invalid(format!(
                        "kafka sink ({}): epoch {epoch} is already committed in Kafka (marker topic {}), but the checkpoint has no offsets for it: the checkpoint was replaced or belongs to another query with the same id. Use the checkpoint that wrote the topic",
                        self.servers,
                        self.live().marker_topic
                    )));
                }
                self.begin(epoch)?;
            }
            let mut n = 0;
            for b in data {
                n += self.produce_open(b)?;
            }
            Ok(n)
        })();
        if result.is_err() {
            self.abort_open();
        }
        result
    }

    fn commit_epoch(&mut self, epoch: u64) -> Result<(), SinkError> {
        let result = (|| {
            if self.open.is_none() {
                // Nothing was written in the epoch: its marker still goes in, as a replay's would.
                if self.committed(epoch)? {
                    return Ok(());
                }
                self.begin(epoch)?;
            }
            self.commit_open().map(|_| ())
        })();
        if result.is_err() {
            self.abort_open();
        }
        result
    }

    fn abort_epoch(&mut self) {
        if self.open.is_some() {
            self.abort_open();
        }
    }
}
