//! The job's streaming inputs, opened and unioned: the one place that knows the kinds of source.

use anyhow::Context;

use crate::config::{Job, OperatorConfig, SourceConfig};
#[cfg(feature = "kafka")]
use crate::source::kafka::KafkaSource;
use crate::source::union::{Input, Union};
use crate::source::{files::FileSource, rate::RateSource, Source};

/// Opens every source of the job and checks they can be unioned (one schema). Checked before
/// any state or checkpoint exists: a refused job leaves nothing behind.
pub fn open_sources(job: &Job) -> anyhow::Result<Union> {
    let several = job.sources.len() > 1;
    let mut inputs = Vec::with_capacity(job.sources.len());
    for input in &job.sources {
        let source: Box<dyn Source> = match &input.source {
            SourceConfig::Files(cfg) => {
                let s = FileSource::new(cfg);
                Box::new(if several { s.with_context(|| format!("starting {}", input.label()))? } else { s? })
            }
            SourceConfig::Rate(cfg) => Box::new(RateSource::new(cfg)),
            #[cfg(not(feature = "kafka"))]
            SourceConfig::Kafka(_) => anyhow::bail!("{}: {}", input.label(), crate::features::not_built("kafka")),
            #[cfg(feature = "kafka")]
            SourceConfig::Kafka(cfg) => {
                let s = KafkaSource::new(cfg);
                Box::new(if several { s.with_context(|| format!("starting {}", input.label()))? } else { s? })
            }
        };
        inputs.push(Input {
            key: input.name.clone().unwrap_or_else(|| input.field.clone()),
            label: input.label(),
            field: input.field.clone(),
            source,
            joined_by: joined_by(job, input.name.as_deref()),
        });
    }
    Union::new(inputs).map_err(|(field, e)| anyhow::anyhow!("job file {}: `{field}`: {e}", job.file.display()))
}

/// The join (by operator position) that takes the source named `name` as its other side.
pub fn joined_by(job: &Job, name: Option<&str>) -> Option<usize> {
    let name = name?;
    job.operators.iter().position(|op| matches!(op, OperatorConfig::Join(j) if j.other == name))
}
