//! A Kafka source read continuously: one consumer, assigned every partition of the job at the
//! position the checkpoint's batches end at, polled for whatever has arrived. An epoch's range is,
//! per partition, from where the epoch started to one past the last record it read: a micro-batch
//! replay of that range reads exactly those records (transaction markers and aborted records in
//! the gaps are skipped in both). The partitions are looked up again at each epoch's end; new ones
//! are read from their earliest offset, as a micro-batch run reads them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::{client, KafkaRange, KafkaSource, Partition, Records};
use crate::deadletter::BadRecords;
use crate::source::continuous::{ContinuousSource, MAX_POLL_GATHER, MAX_POLL_ROWS};
use crate::source::SourceError;

/// How often a failing consumer's error is printed (the brokers are waited for, as in
/// micro-batch mode).
const WARN_EVERY: Duration = Duration::from_secs(5);

pub(super) struct Reader {
    consumer: BaseConsumer,
    /// Per partition: where the current epoch started.
    epoch_start: BTreeMap<Partition, i64>,
    /// Per partition: one past the last record read.
    reached: BTreeMap<Partition, i64>,
    last_warning: Option<Instant>,
}

fn assignment(positions: &BTreeMap<Partition, i64>) -> Result<TopicPartitionList, SourceError> {
    let mut tpl = TopicPartitionList::new();
    for ((t, p), &o) in positions {
        tpl.add_partition_offset(t, *p, Offset::Offset(o))
            .map_err(|e| SourceError::Invalid(format!("kafka source: {t}-{p} at offset {o}: {e}")))?;
    }
    Ok(tpl)
}

impl KafkaSource {
    fn reader(&mut self) -> &mut Reader {
        self.continuous.as_mut().expect("the engine opens the continuous reader before polling it")
    }

    /// Where a partition the job has not read yet starts.
    fn first_position(&self, part: &Partition) -> Result<i64, SourceError> {
        let (low, high) = self.watermarks(part)?;
        Ok(self.initial(part, low, high))
    }

    fn assign(&mut self, positions: &BTreeMap<Partition, i64>) -> Result<(), SourceError> {
        let tpl = assignment(positions)?;
        self.reader()
            .consumer
            .assign(&tpl)
            .map_err(|e| SourceError::Invalid(format!("kafka source: assigning {tpl:?}: {e}")))
    }

    /// Partitions that appeared since the reader opened (a topic grew, or a pattern matches a
    /// new topic) are added at their first position.
    fn add_new_partitions(&mut self) -> Result<(), SourceError> {
        let parts = self.partitions()?;
        let new: Vec<Partition> = parts.into_iter().filter(|p| !self.reader().reached.contains_key(p)).collect();
        if new.is_empty() {
            return Ok(());
        }
        for part in new {
            let at = self.first_position(&part)?;
            self.next.insert(part.clone(), at);
            let r = self.reader();
            r.reached.insert(part.clone(), at);
            r.epoch_start.insert(part, at);
        }
        let positions = self.reader().reached.clone();
        self.assign(&positions)
    }
}

impl ContinuousSource for KafkaSource {
    fn open(&mut self) -> Result<(), SourceError> {
        let mut positions = BTreeMap::new();
        for part in self.partitions()? {
            let at = match self.next.get(&part) {
                Some(&at) => at,
                None => self.first_position(&part)?,
            };
            positions.insert(part, at);
        }
        self.next = positions.clone();
        self.started = true;
        let mut c = client(&self.config);
        // Offsets gone (retention) are an error to report, not a silent jump.
        c.set("auto.offset.reset", "error");
        // Records are handed over as they come: a fetch that finds nothing new is answered
        // after 1 ms (brokers that hold an empty fetch until its wait ends would hold new records
        // that long; Apache Kafka answers as soon as data arrives, so there this costs only
        // requests on idle partitions). The job's kafka settings win.
        if !self.config.client.contains_key("fetch.wait.max.ms") {
            c.set("fetch.wait.max.ms", "1");
        }
        let consumer: BaseConsumer = c.create().map_err(|e| {
            SourceError::Invalid(format!("kafka source: cannot create a client for {}: {e}", self.servers))
        })?;
        self.continuous =
            Some(Reader { consumer, epoch_start: positions.clone(), reached: positions.clone(), last_warning: None });
        self.assign(&positions)
    }

    fn poll(&mut self, wait: Duration, bad: &mut BadRecords) -> Result<Vec<RecordBatch>, SourceError> {
        let mut records = Records::new(&self.config);
        let mut gather_from: Option<Instant> = None;
        let mut failure: Option<KafkaError> = None;
        {
            let r = self.continuous.as_mut().expect("opened");
            loop {
                let timeout = if gather_from.is_none() { wait } else { Duration::ZERO };
                match r.consumer.poll(timeout) {
                    None => break,
                    Some(Ok(m)) => {
                        records.push(&m);
                        r.reached.insert((m.topic().to_string(), m.partition()), m.offset() + 1);
                        gather_from.get_or_insert_with(Instant::now);
                    }
                    Some(Err(KafkaError::PartitionEOF(_))) => {}
                    Some(Err(e)) => {
                        failure = Some(e);
                        break;
                    }
                }
                if records.len() >= MAX_POLL_ROWS || gather_from.is_some_and(|t| t.elapsed() >= MAX_POLL_GATHER) {
                    break;
                }
            }
        }
        if let Some(e) = failure {
            let lost = matches!(&e, KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset));
            if lost {
                return Err(SourceError::Invalid(format!(
                    "kafka source ({}): {e}: the offsets the job is at are no longer in the topic (deleted by retention, or the topic was recreated). Restart the job with trigger = {{ processing_time = \"0 seconds\" }} once: a micro-batch run reports the lost range, and with fail_on_data_loss = false skips it",
                    self.servers
                )));
            }
            // Brokers out of reach are waited for, as in micro-batch mode.
            let r = self.reader();
            if r.last_warning.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                eprintln!("warning: kafka source ({}): {e}; still trying", self.servers);
                self.reader().last_warning = Some(Instant::now());
            }
            if records.len() == 0 {
                std::thread::sleep(wait.min(Duration::from_millis(100)));
            }
        }
        if records.len() == 0 {
            return Ok(Vec::new());
        }
        records.finish(&self.config, &self.schema, bad)
    }

    fn end_epoch(&mut self) -> Result<Option<serde_json::Value>, SourceError> {
        let r = self.reader();
        let mut range = KafkaRange::default();
        for (part, &end) in &r.reached {
            let start = r.epoch_start.get(part).copied().unwrap_or(end);
            if end > start {
                range.offsets.entry(part.0.clone()).or_default().insert(part.1, [start, end]);
            }
        }
        r.epoch_start = r.reached.clone();
        let reached = r.reached.clone();
        self.next.extend(reached);
        if let Err(e) = self.add_new_partitions() {
            eprintln!(
                "warning: kafka source ({}): looking for new partitions: {e}; trying again at the next epoch",
                self.servers
            );
        }
        Ok((!range.offsets.is_empty()).then(|| serde_json::to_value(range).expect("serialisable")))
    }

    fn rewind_epoch(&mut self) -> Result<(), SourceError> {
        let r = self.reader();
        r.reached = r.epoch_start.clone();
        let positions = r.epoch_start.clone();
        self.next.extend(positions.clone());
        self.assign(&positions)
    }
}
