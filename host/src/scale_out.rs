//! Scale-out across processes (Kafka Streams' model): processes started with the same job and the
//! same checkpoint location join the source's Kafka consumer group (`consumer_group`), and Kafka
//! assigns each of them some of the topic's partitions. Each partition is a **task**: the job run
//! on that partition alone, with its own checkpoint under `CHECKPOINT/partitions/<topic>-<p>/`
//! (offsets, commits, state, dead letters, progress) and its own output (file sinks:
//! `OUT/<topic>-<p>/`; a Kafka sink: its own transactional id, from the task's checkpoint, and its
//! markers in its own marker topic, or in partition `p` of a configured `marker_topic`). When a partition moves to another process (a
//! rebalance, or a process dying and its session timing out), the new owner opens the task's
//! checkpoint, replays its last uncommitted batch, and goes on, exactly as a restart does; its
//! transactional producer fences the old owner's.
//!
//! Limits: state is per partition, so a key's rows must all be in one partition (co-partitioned
//! input: keyed by the grouping key), and the watermark is per partition too. One source topic.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use crate::checkpoint::layout;
use crate::checkpoint::CheckpointError;
use crate::config::{Job, KafkaSourceConfig, KafkaTopics, SinkKind, SourceConfig};
use crate::engine::{Engine, RunSummary, Step};
use crate::plugin::Runtime;
use crate::progress::ProgressReporter;

/// How long the loop waits when no task had work.
const IDLE: Duration = Duration::from_millis(50);
/// How often to say that a partition's task is still held by its previous owner.
const HELD_WARNING: Duration = Duration::from_secs(10);
/// How long leaving the consumer group may take at the end.
const LEAVE_GROUP: Duration = Duration::from_secs(5);

fn kafka_source(job: &Job) -> &KafkaSourceConfig {
    match &job.sources[0].source {
        SourceConfig::Kafka(k) => k,
        _ => unreachable!("checked with the job: a scaled-out job reads one kafka source"),
    }
}

/// The job of one partition's task.
pub fn task_job(base: &Job, topic: &str, partition: i32) -> Job {
    let mut job = base.clone();
    let task = format!("{topic}-{partition}");
    if let SourceConfig::Kafka(k) = &mut job.sources[0].source {
        k.topics = KafkaTopics::Assign(BTreeMap::from([(topic.to_string(), vec![partition])]));
        k.consumer_group = None;
    }
    job.checkpoint = layout::partition_task(&base.checkpoint, &task);
    // The checkpoint's own dead letters follow the task's checkpoint; a dead_letter_path gets a
    // directory per task.
    job.dead_letter = base.dead_letter.as_ref().map(|d| d.join(&task));
    let per_task = |kind: &mut SinkKind| match kind {
        SinkKind::Files { path, .. } => *path = path.join(&task),
        // A configured marker topic is shared by the tasks, one partition each; the default one
        // is the task's own (from its checkpoint's id), with one partition.
        SinkKind::Kafka(k) if k.marker_topic.is_some() => k.marker_partition = partition,
        SinkKind::Kafka(_) | SinkKind::Console { .. } | SinkKind::ForeachBatch(_) | SinkKind::Foreach(_) => {}
        // A Delta table takes every task's commits: each task is a query of its own (its own
        // `txn` appId), and a version another task took is retried on the next.
        SinkKind::Delta(_) => {}
        // Each task has its own query id, so its own progress row; the table is shared.
        SinkKind::Postgres(_) => {}
    };
    per_task(&mut job.sink.kind);
    if let SinkKind::ForeachBatch(f) | SinkKind::Foreach(f) = &mut job.sink.kind {
        for o in &mut f.outputs {
            per_task(&mut o.kind);
        }
    }
    job
}

/// Runs this process's share of the job until `stop` is set.
pub fn run(job: Job, runtime: &Arc<Runtime>, quiet: bool, stop: Arc<AtomicBool>) -> anyhow::Result<RunSummary> {
    let source = kafka_source(&job).clone();
    let group = source.consumer_group.clone().expect("a scaled-out job has a consumer group");
    let KafkaTopics::Subscribe(topics) = &source.topics else { unreachable!("checked with the job") };
    let mut c = ClientConfig::new();
    for (k, v) in &source.client {
        c.set(k, v);
    }
    c.set("group.id", &group);
    c.set("enable.auto.commit", "false");
    let consumer: BaseConsumer = c.create().context("kafka: creating the consumer-group member")?;
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topic_refs).with_context(|| format!("kafka: subscribing to {}", topics.join(", ")))?;
    eprintln!("scale-out: joined consumer group {group:?} for {}", topics.join(", "));
    let mut tasks: BTreeMap<(String, i32), Engine> = BTreeMap::new();
    // Partitions assigned to us whose task checkpoint another process still holds: since when,
    // and when we last said so.
    let mut waiting: BTreeMap<(String, i32), (Instant, Option<Instant>)> = BTreeMap::new();
    let mut summary = RunSummary::default();
    while !stop.load(Ordering::Relaxed) {
        // Rebalances happen here, between batches; the member fetches nothing itself (its
        // partitions are paused): each task reads its partition from its own offsets.
        if let Some(Err(e)) = consumer.poll(Duration::from_millis(10)) {
            eprintln!("warning: scale-out: kafka: {e}");
        }
        let assignment = consumer.assignment().context("kafka: reading this member's partitions")?;
        let _ = consumer.pause(&assignment);
        let owned: Vec<(String, i32)> =
            assignment.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
        for part in tasks.keys().filter(|p| !owned.contains(p)).cloned().collect::<Vec<_>>() {
            let mut d = tasks.remove(&part).expect("listed");
            d.finish();
            add(&mut summary, d.summary());
            eprintln!("scale-out: partition {}-{} moved to another member", part.0, part.1);
        }
        waiting.retain(|p, _| owned.contains(p));
        for part in owned.iter().filter(|p| !tasks.contains_key(*p)).cloned().collect::<Vec<_>>() {
            let tj = task_job(&job, &part.0, part.1);
            let progress = ProgressReporter::new(Some(&layout::progress(&tj.checkpoint)), quiet);
            let mut d = match Engine::new(tj, runtime, progress) {
                Ok(d) => d,
                // The member that had the partition has not stopped its task yet (it lets go
                // between two batches, when it sees the rebalance): wait for it, never write
                // beside it.
                Err(e) if matches!(e.downcast_ref::<CheckpointError>(), Some(CheckpointError::InUse { .. })) => {
                    let (since, said) = waiting.entry(part.clone()).or_insert((Instant::now(), None));
                    if said.is_none_or(|t| t.elapsed() >= HELD_WARNING) {
                        eprintln!(
                            "scale-out: partition {}-{} is ours now, but its task is still held ({:?} so far): {e:#}; waiting for it to stop",
                            part.0,
                            part.1,
                            since.elapsed()
                        );
                        *said = Some(Instant::now());
                    }
                    continue;
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("starting the task of partition {}-{}", part.0, part.1))
                }
            };
            waiting.remove(&part);
            d.start().with_context(|| format!("restoring the task of partition {}-{}", part.0, part.1))?;
            eprintln!("scale-out: took partition {}-{}", part.0, part.1);
            tasks.insert(part, d);
        }
        let mut ran = false;
        for ((t, p), d) in tasks.iter_mut() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            ran |= d.step().with_context(|| format!("partition {t}-{p}"))? == Step::Ran;
        }
        if !ran {
            std::thread::sleep(IDLE);
        }
    }
    for (_, mut d) in tasks {
        d.finish();
        add(&mut summary, d.summary());
    }
    leave_group(consumer);
    Ok(summary)
}

/// Leaves the consumer group so that the others get this member's partitions at once. The
/// revocation is served by ordinary polls first: librdkafka's close can hang for good when a
/// rebalance reaches it (the default handler's unassign waits on the thread that is closing,
/// seen on the mock cluster), so the close runs on a thread of its own, given a few seconds;
/// if it does not return, the process ends anyway and the group notices by the session timeout.
fn leave_group(consumer: BaseConsumer) {
    let _ = consumer.unsubscribe();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && consumer.assignment().is_ok_and(|a| a.count() > 0) {
        let _ = consumer.poll(Duration::from_millis(50));
    }
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let closing = std::thread::Builder::new().name("weir-leave-group".into()).spawn(move || {
        drop(consumer);
        let _ = done_tx.send(());
    });
    if closing.is_ok() && done_rx.recv_timeout(LEAVE_GROUP).is_err() {
        eprintln!("warning: scale-out: leaving the consumer group took over {LEAVE_GROUP:?}; stopping without waiting (the group notices by the session timeout)");
    }
}

fn add(total: &mut RunSummary, s: RunSummary) {
    total.batches += s.batches;
    total.input_rows += s.input_rows;
    total.output_rows += s.output_rows;
}
