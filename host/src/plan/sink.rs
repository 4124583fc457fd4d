//! The job's sink, made for the columns the last operator outputs: the one place that knows the
//! kinds of sink.

use anyhow::Context;
use arrow::datatypes::SchemaRef;

use crate::config::{Job, SinkKind};
use crate::plugin::Runtime;
use crate::sink::delta::DeltaSink;
use crate::sink::foreach::ForeachSink;
#[cfg(feature = "kafka")]
use crate::sink::kafka::KafkaSink;
use crate::sink::postgres::PostgresSink;
use crate::sink::{console::ConsoleSink, files::FileSink, foreach_batch::ForeachBatchSink, Sink};

/// Makes the sink and checks it takes `schema` (partition columns, Kafka's columns, a plugin's
/// `init`). Nothing is written yet: the engine starts it once the checkpoint is open.
pub fn open_sink(job: &Job, runtime: &Runtime, schema: &SchemaRef) -> anyhow::Result<Box<dyn Sink>> {
    if let SinkKind::ForeachBatch(f) | SinkKind::Foreach(f) = &job.sink.kind {
        check_output_passwords(job, &f.outputs)?;
    }
    Ok(match &job.sink.kind {
        SinkKind::Files { format, path, partition_by } => Box::new(
            FileSink::new(*format, path, partition_by, schema.clone())
                .context("starting the sink (check sink.partition_by)")?
                .with_min_batches_to_retain(job.min_batches_to_retain),
        ),
        SinkKind::Console { num_rows } => Box::new(ConsoleSink::new(*num_rows)),
        SinkKind::ForeachBatch(f) => Box::new(
            ForeachBatchSink::new(runtime, f, schema.clone())
                .context("starting the sink (format = \"foreach_batch\")")?
                .with_min_batches_to_retain(job.min_batches_to_retain)
                .with_dead_letters(job.dead_letter_dir(crate::checkpoint::layout::dead_letter), job.on_bad_record),
        ),
        SinkKind::Foreach(f) => Box::new(
            ForeachSink::new(runtime, f, schema.clone())
                .context("starting the sink (format = \"foreach\")")?
                .with_dead_letters(job.dead_letter_dir(crate::checkpoint::layout::dead_letter), job.on_bad_record),
        ),
        SinkKind::Delta(d) => {
            crate::sink::delta::check_columns(d, schema)
                .map_err(|(field, e)| anyhow::anyhow!("job file {}: `sink.{field}`: {e}", job.file.display()))?;
            Box::new(
                DeltaSink::new(d, job.sink.output_mode, schema.clone())
                    .context("starting the sink (format = \"delta\")")?,
            )
        }
        #[cfg(not(feature = "kafka"))]
        SinkKind::Kafka(_) => anyhow::bail!("sink format = \"kafka\" {}", crate::features::not_built("kafka")),
        #[cfg(feature = "kafka")]
        SinkKind::Kafka(k) => {
            KafkaSink::check_columns(k, schema)
                .map_err(|(field, e)| anyhow::anyhow!("job file {}: `sink.{field}`: {e}", job.file.display()))?;
            let mut k = k.clone();
            // Continuous: records leave within half a millisecond of being produced, those of
            // that half millisecond in one request (one request per record is slower to fetch
            // back at thousands of records per second). The job's kafka settings win.
            if matches!(job.trigger, crate::config::Trigger::Continuous(_)) {
                k.client.entry("linger.ms".into()).or_insert_with(|| "0.5".into());
            }
            Box::new(KafkaSink::new(&k))
        }
        SinkKind::Postgres(p) => Box::new(
            PostgresSink::new(
                p,
                p.on_bad_record.unwrap_or(job.on_bad_record),
                schema.clone(),
                job.dead_letter_dir(crate::checkpoint::layout::dead_letter),
            )
            .map_err(|(field, e)| anyhow::anyhow!("job file {}: `sink.{field}`: {e}", job.file.display()))?,
        ),
    })
}

/// A postgres output connects at its first emit; its `password_env` must be set before the job
/// starts, as the postgres sink's.
fn check_output_passwords(job: &Job, outputs: &[crate::config::NamedOutput]) -> anyhow::Result<()> {
    for (i, o) in outputs.iter().enumerate() {
        if let SinkKind::Postgres(p) = &o.kind {
            if let Some(var) = p.connection.password_env.as_deref().filter(|v| std::env::var(v).is_err()) {
                anyhow::bail!(
                    "job file {}: `sink.output[{i}].password_env`: names the environment variable {var}, which is not set (or not UTF-8): set it to the database password before `weir run`",
                    job.file.display()
                );
            }
        }
    }
    Ok(())
}
