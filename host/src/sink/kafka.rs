//! Kafka, exactly once: each batch is one Kafka transaction. With its records the transaction
//! writes a marker record (key: the transactional id; value: the batch id) to weir's own
//! one-partition topic for this query
//! (`weir-sink-<query id>`, created at start unless it exists; `marker_topic` names another): "batch N is in Kafka", committed atomically with
//! the records. Before writing batch N the sink reads the last committed markers; when one is N
//! or later, the batch is already in Kafka (a crash came after the Kafka commit and before the
//! checkpoint's) and nothing is written again. So a `read_committed` consumer sees each batch's
//! records exactly once. (A marker kept as a transactional consumer-group offset would do too on
//! Apache Kafka, but not on every broker: librdkafka's mock cluster does not keep them.)
//!
//! Records: the `value` column (binary or string), and when present `key` (binary or string),
//! `topic` (string, else the sink's `topic`), `partition` (int) and `headers` (the JSON the Kafka
//! source writes: a list of `{"key", "value"}`, value in base64). Without a `value` column each
//! row is written as JSON (Spark's `to_json(struct(*))`).

use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int32Type};
use base64::Engine as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::{Sink, SinkError};
use crate::format::encode::write_json_lines;
use crate::job::KafkaSinkConfig;

pub struct KafkaSink {
    config: KafkaSinkConfig,
    servers: String,
    /// Set by `start`.
    live: Option<Live>,
    /// The next batch id Kafka has not seen committed, once read from the markers: only a
    /// batch replayed at start can be there already, so the markers are read once, then kept
    /// up to date by this sink's own commits.
    next_uncommitted: Option<u64>,
}

struct Live {
    producer: BaseProducer,
    /// The transactional id; also the key of this query's markers, so that several queries
    /// (or outputs) may share a marker topic.
    owner: String,
    /// The query's marker topic, and a `read_committed` reader of it.
    marker_topic: String,
    marker: BaseConsumer,
}

/// Markers read back from the end of the marker topic: aborted transactions leave records a
/// `read_committed` reader skips, so a few more than one are read.
const MARKER_TAIL: i64 = 1000;

fn kafka_err(servers: &str, what: &str, e: KafkaError) -> SinkError {
    SinkError::Invalid(format!(
        "kafka sink ({servers}): {what}: {e}; check kafka.\"bootstrap.servers\", that the brokers are up and support transactions"
    ))
}

impl KafkaSink {
    pub fn new(config: &KafkaSinkConfig) -> KafkaSink {
        let servers = config.client.get("bootstrap.servers").cloned().unwrap_or_default();
        KafkaSink { config: config.clone(), servers, live: None, next_uncommitted: None }
    }

    /// Connects and fences any earlier producer of this query (`init_transactions`), so a
    /// zombie process can no longer commit.
    fn connect(&self, query_id: &str) -> Result<Live, SinkError> {
        let (config, servers) = (&self.config, self.servers.clone());
        let mut p = ClientConfig::new();
        p.set("transactional.id", format!("weir-{query_id}"));
        p.set("enable.idempotence", "true");
        p.set("linger.ms", "5");
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
        Ok(Live { producer, owner: format!("weir-{query_id}"), marker_topic, marker })
    }

    fn live(&self) -> &Live {
        self.live.as_ref().expect("the driver starts the sink before writing")
    }

    /// The next batch id Kafka has not seen committed (0 when none was): one past the largest
    /// committed marker.
    fn committed_batches(&self) -> Result<u64, SinkError> {
        let live = self.live();
        let timeout = self.config.timeout;
        let err = |e| kafka_err(&self.servers, &format!("reading the markers in {}", live.marker_topic), e);
        let part = self.config.marker_partition;
        let (low, high) = live.marker.fetch_watermarks(&live.marker_topic, part, timeout).map_err(err)?;
        if high <= low {
            return Ok(0);
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&live.marker_topic, part, Offset::Offset((high - MARKER_TAIL).max(low)))
            .expect("a valid offset");
        live.marker.assign(&tpl).map_err(err)?;
        let mut next = 0;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match live.marker.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let mine = m.key() == Some(live.owner.as_bytes());
                    let id = m
                        .payload()
                        .filter(|_| mine)
                        .and_then(|p| std::str::from_utf8(p).ok())
                        .and_then(|t| t.parse::<u64>().ok());
                    if let Some(id) = id {
                        next = next.max(id + 1);
                    }
                    if m.offset() + 1 >= high {
                        break;
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) => return Err(err(e)),
                None if std::time::Instant::now() > deadline => {
                    return Err(SinkError::Invalid(format!(
                        "kafka sink ({}): no marker arrived from {} within {timeout:?}; check the brokers",
                        self.servers, live.marker_topic
                    )))
                }
                None => {}
            }
        }
        Ok(next)
    }

    fn send(&self, record: BaseRecord<'_, [u8], [u8]>) -> Result<(), SinkError> {
        let mut record = record;
        loop {
            match self.live().producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    self.live().producer.poll(Duration::from_millis(50));
                }
                Err((e, _)) => return Err(kafka_err(&self.servers, "producing a record", e)),
            }
        }
    }

    fn produce(&self, batch: &RecordBatch) -> Result<u64, SinkError> {
        let schema = batch.schema();
        let col = |name: &str| schema.index_of(name).ok().map(|i| batch.column(i).clone());
        let bytes_of = |a: &dyn Array, r: usize| -> Option<Vec<u8>> {
            if a.is_null(r) {
                return None;
            }
            Some(match a.data_type() {
                DataType::Binary => a.as_binary::<i32>().value(r).to_vec(),
                DataType::Utf8 => a.as_string::<i32>().value(r).as_bytes().to_vec(),
                _ => unreachable!("checked below"),
            })
        };
        for (name, c) in [("key", col("key")), ("value", col("value"))] {
            if let Some(c) = c {
                if !matches!(c.data_type(), DataType::Binary | DataType::Utf8) {
                    return Err(SinkError::Invalid(format!(
                        "kafka sink: column `{name}` is {:?}; it must be binary or string (or leave out `value` to write each row as JSON)",
                        c.data_type()
                    )));
                }
            }
        }
        let (key, value) = (col("key"), col("value"));
        let topic = col("topic").filter(|c| c.data_type() == &DataType::Utf8);
        let partition = col("partition").filter(|c| c.data_type() == &DataType::Int32);
        let headers = col("headers").filter(|c| c.data_type() == &DataType::Utf8);
        // Without a value column: the row as JSON.
        let json_rows: Option<Vec<Vec<u8>>> = value.is_none().then(|| {
            let mut out = Vec::new();
            write_json_lines(batch, &mut out);
            out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
        });
        for r in 0..batch.num_rows() {
            let payload = match (&value, &json_rows) {
                (Some(v), _) => bytes_of(v.as_ref(), r),
                (None, Some(rows)) => Some(rows[r].clone()),
                (None, None) => unreachable!(),
            };
            let key = key.as_ref().and_then(|k| bytes_of(k.as_ref(), r));
            let topic = topic
                .as_ref()
                .filter(|t| t.is_valid(r))
                .map_or(self.config.topic.as_str(), |t| t.as_string::<i32>().value(r));
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
        format!("KafkaSink[{}]", self.config.topic)
    }

    fn start(&mut self, query_id: &str) -> Result<(), SinkError> {
        self.live = Some(self.connect(query_id)?);
        Ok(())
    }

    fn write_batch(&mut self, batch_id: u64, data: &[RecordBatch]) -> Result<u64, SinkError> {
        let next = match self.next_uncommitted {
            Some(n) => n,
            None => self.committed_batches()?,
        };
        self.next_uncommitted = Some(next);
        if next > batch_id {
            return Ok(0);
        }
        let servers = self.servers.clone();
        let timeout = self.config.timeout;
        let producer = &self.live().producer;
        producer.begin_transaction().map_err(|e| kafka_err(&servers, "beginning a transaction", e))?;
        let result = (|| {
            let mut n = 0;
            for b in data {
                n += self.produce(b)?;
            }
            let id = batch_id.to_string();
            let live = self.live();
            self.send(
                BaseRecord::to(&live.marker_topic)
                    .partition(self.config.marker_partition)
                    .key(live.owner.as_bytes())
                    .payload(id.as_bytes()),
            )?;
            producer
                .commit_transaction(timeout)
                .map_err(|e| kafka_err(&servers, &format!("committing batch {batch_id}"), e))?;
            Ok(n)
        })();
        match &result {
            Ok(_) => self.next_uncommitted = Some(batch_id + 1),
            Err(_) => {
                let _ = producer.abort_transaction(timeout);
                // Whether the commit reached Kafka is unknown: read the markers again.
                self.next_uncommitted = None;
            }
        }
        result
    }
}
