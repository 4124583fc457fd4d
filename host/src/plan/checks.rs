//! Spark's unsupported-operation checks (its `UnsupportedOperationChecker`): the rules that span
//! operators, the watermark and the sink's output mode — one aggregation or stateful step, what
//! may follow it, which output modes it allows, which joins a stream can take part in. They run
//! on the typed job before anything is opened, so a refused job leaves no checkpoint. The
//! config checks each field on its own; what needs the whole job is refused here, once.

use std::path::Path;

use crate::config::*;
use crate::operator::join::stream_static::check_stream_static;
use crate::operator::join::stream_stream::check_output_mode;

/// Refuses, with Spark's reason, a job Spark would not run. Called right after the job is
/// loaded (`weir run`, `weir check`).
pub fn check_job(job: &Job) -> Result<(), JobError> {
    let c = Checks { file: &job.file };
    if matches!(job.trigger, Trigger::Continuous(_)) {
        c.continuous(job)?;
    }
    c.complete_needs_aggregation(&job.operators, job.sink.output_mode)?;
    c.file_sink_appends(&job.sink)?;
    // The event-time columns with a watermark: `[watermark].column` and each stream's own
    // (`watermark_column`; a join's output carries both sides').
    let event_times: Vec<&str> = job
        .watermark
        .iter()
        .map(|w| w.column.as_str())
        .chain(job.sources.iter().filter_map(|s| s.watermark_column.as_deref()))
        .collect();
    c.stateful_plan(&job.operators, job.watermark.as_ref(), &event_times, job.sink.output_mode)?;
    c.joins(job)
}

struct Checks<'a> {
    file: &'a Path,
}

impl Checks<'_> {
    fn err(&self, field: &str, message: impl Into<String>) -> JobError {
        JobError::Field { file: self.file.to_path_buf(), field: field.to_string(), message: message.into() }
    }

    /// A file sink only appends (Spark's file sink takes append mode only).
    fn file_sink_appends(&self, sink: &SinkConfig) -> Result<(), JobError> {
        if sink.output_mode != OutputMode::Append && matches!(sink.kind, SinkKind::Files { .. }) {
            return Err(self.err(
                "sink.output_mode",
                "file sinks support only \"append\", as in Spark (a file cannot take back a row it wrote); use format = \"console\" for update and complete, or append with a watermark",
            ));
        }
        Ok(())
    }

    /// Complete mode rebuilds the whole result table each batch: only an aggregation has one.
    fn complete_needs_aggregation(&self, operators: &[OperatorConfig], mode: OutputMode) -> Result<(), JobError> {
        let has_aggregate = operators.iter().any(|o| matches!(o, OperatorConfig::Aggregate(_)));
        if mode == OutputMode::Complete && !has_aggregate {
            return Err(self.err(
                "sink.output_mode",
                "\"complete\" is not supported when there are no streaming aggregations (the result table would be the whole unbounded input); use \"append\"",
            ));
        }
        Ok(())
    }

    /// Spark's checks on stateful plans, before anything starts: one aggregation, followed only by
    /// stateless operators; append mode on an aggregation needs a window on the watermark column.
    fn stateful_plan(
        &self,
        operators: &[OperatorConfig],
        watermark: Option<&WatermarkConfig>,
        event_times: &[&str],
        mode: OutputMode,
    ) -> Result<(), JobError> {
        for op in operators {
            if let OperatorConfig::Dedup(d) = op {
                if d.within_watermark && watermark.is_none() {
                    return Err(self.err(
                        &format!("operator[{}].within_watermark", d.index),
                        "needs a [watermark]: as in Spark, dropDuplicatesWithinWatermark is not supported on streaming DataFrames/DataSets without watermark (a key is kept until the watermark passes its event time plus the delay); add [watermark] column = ..., delay = ..., or remove within_watermark",
                    ));
                }
            }
            if let OperatorConfig::Stateful(st) = op {
                if st.timeout == TimeoutMode::EventTime && watermark.is_none() {
                    return Err(self.err(
                        &format!("operator[{}].timeout", st.plugin.index),
                        "\"event_time\" needs a [watermark] (event-time timeouts fire when the watermark passes them, as Spark's EventTimeTimeout); add [watermark] column = ..., delay = ..., or use \"processing_time\"",
                    ));
                }
            }
        }
        let Some(first) =
            operators.iter().position(|o| matches!(o, OperatorConfig::Aggregate(_) | OperatorConfig::Stateful(_)))
        else {
            return Ok(());
        };
        let what = if matches!(operators[first], OperatorConfig::Stateful(_)) {
            "a stateful operator"
        } else {
            "an aggregation"
        };
        for later in &operators[first + 1..] {
            match later {
                OperatorConfig::Map(_) => {}
                OperatorConfig::Aggregate(a) => {
                    return Err(self.err(
                        &format!("operator[{}].kind", a.index),
                        format!("an aggregation after {what} is not supported (as in Spark's append mode chains, it would need the first one's output watermark); use one stateful step"),
                    ))
                }
                OperatorConfig::Stateful(st) => {
                    return Err(self.err(
                        &format!("operator[{}].kind", st.plugin.index),
                        format!("a stateful operator after {what} is not supported; use one stateful step"),
                    ))
                }
                OperatorConfig::Dedup(d) => {
                    return Err(self.err(
                        &format!("operator[{}].kind", d.index),
                        format!("dedup after {what} is not supported; put the dedup before it"),
                    ))
                }
                OperatorConfig::Join(j) => {
                    return Err(self.err(
                        &format!("operator[{}].kind", j.index),
                        format!("a join after {what} is not supported; join first, then aggregate"),
                    ))
                }
            }
        }
        let OperatorConfig::Aggregate(agg) = &operators[first] else {
            // A stateful operator allows append and update (Spark's flatMapGroupsWithState);
            // complete is refused with the sink, for want of an aggregation.
            return Ok(());
        };
        if mode == OutputMode::Update
            && agg.window.as_ref().is_some_and(|w| matches!(w.kind, WindowKind::Session { .. }))
        {
            return Err(self.err(
                "sink.output_mode",
                "\"update\" is not supported for session windows, as in Spark (a session that merges others would leave them in the output); use \"append\" or \"complete\"",
            ));
        }
        if mode == OutputMode::Append {
            let Some(w) = &agg.window else {
                return Err(self.err(
                    "sink.output_mode",
                    format!(
                        "\"append\" needs a window on operator[{}] (an aggregation without one never finishes a group); add window = {{ column = ..., size = ... }}, or use \"update\" or \"complete\"",
                        agg.index
                    ),
                ));
            };
            if watermark.is_none() || !event_times.contains(&w.column.as_str()) {
                return Err(self.err(
                    "sink.output_mode",
                    format!(
                        "\"append\" on an aggregation needs a [watermark] on the window's column `{}` (Spark's rule: without one a window never closes); add [watermark] column = \"{}\", delay = \"10 minutes\", or use \"update\" or \"complete\"",
                        w.column, w.column
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Spark's `checkForContinuous`: a continuous query reads one Kafka or rate source, runs
    /// only map-like operators (no state, so nothing waits for an epoch's end) and writes to a
    /// sink that takes rows as they come. The first thing that does not fit is named.
    fn continuous(&self, job: &Job) -> Result<(), JobError> {
        const HOW: &str = "use trigger = { processing_time = \"0 seconds\" } for this job";
        for op in &job.operators {
            let (index, node) = match op {
                OperatorConfig::Map(_) => continue,
                OperatorConfig::Stateful(s) => (s.plugin.index, "FlatMapGroupsWithState"),
                OperatorConfig::Dedup(d) => (d.index, "Deduplicate"),
                OperatorConfig::Aggregate(a) => (a.index, "Aggregate"),
                OperatorConfig::Join(j) => (j.index, "Join"),
            };
            return Err(self.err(
                &format!("operator[{index}].kind"),
                format!("Continuous processing does not support {node} operations (only map operators run continuously); {HOW}"),
            ));
        }
        let watermarked = job.sources.iter().find(|s| s.watermark_delay.is_some() || s.watermark_column.is_some());
        if job.watermark.is_some() || watermarked.is_some() {
            let field = watermarked.map_or("watermark".to_string(), |s| format!("{}.watermark_delay", s.field));
            return Err(self.err(
                &field,
                format!("Continuous processing does not support EventTimeWatermark operations (a watermark only serves state, which continuous mode does not keep); remove it or {HOW}"),
            ));
        }
        if job.sources.len() > 1 {
            return Err(self.err(
                "source",
                format!("Continuous processing does not support Union operations (a continuous query reads one source); {HOW}"),
            ));
        }
        for input in &job.sources {
            let name = match &input.source {
                SourceConfig::Rate(_) => continue,
                // consumer_group with continuous is refused with the job file's fields.
                SourceConfig::Kafka(_) => continue,
                SourceConfig::Files(f) => f.format.extension(),
            };
            return Err(self.err(
                &format!("{}.format", input.field),
                format!(
                    "Data source {name} does not support continuous processing (only kafka and rate sources do); {HOW}"
                ),
            ));
        }
        let name = match &job.sink.kind {
            SinkKind::Kafka(_) | SinkKind::Console { .. } | SinkKind::Foreach(_) => return Ok(()),
            SinkKind::ForeachBatch(_) => {
                return Err(self.err(
                    "sink.format",
                    format!("'foreachBatch' is not supported with continuous trigger (it needs whole batches); use format = \"foreach\", or {HOW}"),
                ))
            }
            SinkKind::Files { format, .. } => format.extension(),
            SinkKind::Delta(_) => "delta",
            SinkKind::Postgres(_) => "postgres",
        };
        Err(self.err(
            "sink.format",
            format!("Data source {name} does not support continuous processing (continuous writing goes to kafka, console and foreach sinks); {HOW}"),
        ))
    }

    /// The joins Spark refuses whatever the columns: a stream-static join that would need the
    /// table's unmatched rows, and an outer join of two streams in another output mode than
    /// append.
    fn joins(&self, job: &Job) -> Result<(), JobError> {
        for op in &job.operators {
            let OperatorConfig::Join(j) = op else { continue };
            if job.tables.iter().any(|t| t.name == j.other) {
                check_stream_static(j.spec.join_type, j.other_side.other())
                    .map_err(|e| self.err(&format!("operator[{}].type", j.index), e))?;
            } else {
                let mode = match job.sink.output_mode {
                    OutputMode::Append => "append",
                    OutputMode::Update => "update",
                    OutputMode::Complete => "complete",
                };
                check_output_mode(j.spec.join_type, mode).map_err(|e| self.err("sink.output_mode", e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads `text` as a job file and checks it; messages name the file `job.toml`.
    fn check(text: &str) -> Result<(), String> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("job.toml");
        std::fs::write(&file, text).expect("writing the job file");
        let shown = |e: JobError| e.to_string().replace(&file.display().to_string(), "job.toml");
        let job = Job::load(&file).map_err(shown)?;
        check_job(&job).map_err(shown)
    }

    const RATE: &str = "[source]\nformat = \"rate\"\n";

    fn sink(format: &str, mode: &str) -> String {
        let path = if format == "console" { "" } else { "path = \"out\"\n" };
        format!("[sink]\nformat = \"{format}\"\n{path}output_mode = \"{mode}\"\ncheckpoint = \"ckpt\"\n")
    }

    #[test]
    fn a_continuous_job_runs_map_operators_from_kafka_or_rate_to_kafka_console_or_foreach() {
        const C: &str = "trigger = { continuous = \"1 second\" }\n";
        let map = "[[operator]]\nkind = \"map\"\nplugin = \"filter.wasm\"\n";
        let kafka_source =
            "[source]\nformat = \"kafka\"\nsubscribe = [\"in\"]\nkafka = { \"bootstrap.servers\" = \"127.0.0.1:9\" }\n";
        let kafka_sink = "[sink]\nformat = \"kafka\"\ntopic = \"out\"\nkafka = { \"bootstrap.servers\" = \"127.0.0.1:9\" }\ncheckpoint = \"ckpt\"\n";
        check(&format!("{kafka_source}{map}{map}{kafka_sink}{C}")).unwrap();
        check(&format!("{RATE}{map}{}{C}", sink("console", "append"))).unwrap();
        check(&format!("{RATE}{}{C}", sink("console", "update"))).unwrap();
        // The same job with an aggregation is refused, naming the operator, in Spark's words.
        let agg = "[[operator]]\nkind = \"aggregate\"\naggregates = [{ fn = \"count\" }]\n";
        let e = check(&format!("{RATE}{map}{agg}{}{C}", sink("console", "complete"))).unwrap_err();
        assert!(
            e.starts_with(
                "job file job.toml: `operator[1].kind`: Continuous processing does not support Aggregate operations"
            ),
            "{e}"
        );
        // Micro-batch triggers are not held to the continuous rules.
        check(&format!("{RATE}{map}{agg}{}", sink("console", "complete"))).unwrap();
    }

    #[test]
    fn output_modes_follow_sparks_rules() {
        let e = check(&format!("{RATE}{}", sink("json", "complete"))).unwrap_err();
        assert_eq!(
            e,
            "job file job.toml: `sink.output_mode`: \"complete\" is not supported when there are no streaming aggregations (the result table would be the whole unbounded input); use \"append\""
        );
        let agg = "[[operator]]\nkind = \"aggregate\"\naggregates = [{ fn = \"count\" }]\n";
        let e = check(&format!("{RATE}{agg}{}", sink("json", "update"))).unwrap_err();
        assert!(e.contains("`sink.output_mode`: file sinks support only \"append\""), "{e}");
        check(&format!("{RATE}{agg}{}", sink("console", "complete"))).unwrap();
        check(&format!("{RATE}{}", sink("json", "append"))).unwrap();
    }

    const STREAM_STATIC: &str = r#"
[[source]]
name = "events"
format = "json"
path = "in"
schema = "user_id string, amount double"

[[source]]
name = "users"
static = true
format = "parquet"
path = "tables/users"

[[operator]]
kind = "join"
right = "users"
on = ["user_id"]
type = "left_outer"
"#;

    #[test]
    fn a_stream_static_join_spark_refuses_is_refused_with_sparks_message() {
        check(&format!("{STREAM_STATIC}{}", sink("json", "append"))).unwrap();
        let e = check(&format!("{}{}", STREAM_STATIC.replace("left_outer", "full_outer"), sink("json", "append")))
            .unwrap_err();
        assert!(
            e.starts_with("job file job.toml: `operator[0].type`: FullOuter joins with streaming DataFrames/Datasets on the left and a static DataFrame/Dataset on the right is not supported; "),
            "{e}"
        );
        // The table on the left: the stream is on the right, where left_outer needs the table's
        // unmatched rows.
        let left = STREAM_STATIC.replace("right = \"users\"", "left = \"users\"");
        let e = check(&format!("{left}{}", sink("json", "append"))).unwrap_err();
        assert!(e.contains("`operator[0].type`: LeftOuter join with a streaming DataFrame/Dataset on the right and a static DataFrame/Dataset on the left is not supported"), "{e}");
        check(&format!("{}{}", left.replace("left_outer", "right_outer"), sink("json", "append"))).unwrap();
    }

    #[test]
    fn append_after_a_join_may_window_on_either_sides_event_time() {
        let two = r#"
[[source]]
name = "clicks"
format = "json"
path = "in/clicks"
schema = "ad_id string, click_time timestamp"
watermark_column = "click_time"

[[source]]
name = "impressions"
format = "json"
path = "in/impressions"
schema = "ad_id string, impression_time timestamp"
watermark_column = "impression_time"

[watermark]
column = "event_time"
delay = "10 minutes"

[[operator]]
kind = "join"
right = "impressions"
on = ["ad_id"]

[[operator]]
kind = "aggregate"
window = { column = "click_time", size = "30 minutes" }
aggregates = [{ fn = "count", as = "clicks" }]
"#;
        check(&format!("{two}{}", sink("json", "append"))).unwrap();
        check(&format!(
            "{}{}",
            two.replace("column = \"click_time\", size", "column = \"impression_time\", size"),
            sink("json", "append")
        ))
        .unwrap();
        let e = check(&format!(
            "{}{}",
            two.replace("column = \"click_time\", size", "column = \"ad_time\", size"),
            sink("json", "append")
        ))
        .unwrap_err();
        assert!(
            e.contains(
                "`sink.output_mode`: \"append\" on an aggregation needs a [watermark] on the window's column `ad_time`"
            ),
            "{e}"
        );
    }

    #[test]
    fn an_outer_join_of_two_streams_runs_in_append_mode_only() {
        let two = STREAM_STATIC.replace("static = true\nformat = \"parquet\"", "format = \"parquet\"");
        check(&format!("{two}{}", sink("json", "append"))).unwrap();
        let agg = "[[operator]]\nkind = \"aggregate\"\ngroup_by = [\"user_id\"]\naggregates = [{ fn = \"count\" }]\n";
        let e = check(&format!("{two}{agg}{}", sink("console", "update"))).unwrap_err();
        assert!(
            e.starts_with("job file job.toml: `sink.output_mode`: LeftOuter join between two streaming DataFrames/Datasets is not supported in Update output mode"),
            "{e}"
        );
        // Spark 4.3 runs an inner join of two streams in update mode.
        check(&format!("{}{agg}{}", two.replace("left_outer", "inner"), sink("console", "update"))).unwrap();
    }
}
