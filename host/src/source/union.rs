//! Several sources in one job, unioned (Spark's `union` of streams). A batch takes what each
//! source planned since the last one (a source with nothing new adds nothing), and its offsets
//! entry keys each source's range by name: `{"orders": {...}, "returns": null}`. With one
//! source the entry is that source's range, as it always was, so old checkpoints keep working.

use std::sync::Arc;

use arrow::datatypes::{Field, FieldRef, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::{Source, SourceError};
use crate::deadletter::BadRecords;
use crate::schema::type_name;

/// One source of the union.
pub struct Input {
    /// Its key in offsets entries and commits: the source's name (required with several).
    pub key: String,
    /// How messages name it, e.g. `source "orders"`.
    pub label: String,
    /// Where it is in the job file (`source`, `source[1]`), for messages.
    pub field: String,
    pub source: Box<dyn Source>,
    /// The operator (by position) whose other side this input is (a stream-stream join's);
    /// none: it is unioned into the stream the operators take.
    pub joined_by: Option<usize>,
}

/// The job's sources, read as one stream.
pub struct Union {
    inputs: Vec<Input>,
    schema: SchemaRef,
    /// Per input: whether its batches need the union's schema put on them (it differs only in
    /// which columns may be null).
    rewrap: Vec<bool>,
}

/// Spark's union of schemas: the same column names and types in order; a column may be null
/// when it may be in any input. The error names the input at fault (its position) and says how
/// it differs from the first.
pub fn union_schema(inputs: &[(&str, SchemaRef)]) -> Result<SchemaRef, (usize, String)> {
    let (first_label, first) = &inputs[0];
    let mut nullable: Vec<bool> = first.fields().iter().map(|f| f.is_nullable()).collect();
    for (i, (label, schema)) in inputs.iter().enumerate().skip(1) {
        let (a, b) = (first.fields(), schema.fields());
        let differs = (0..a.len().max(b.len())).find(|&c| match (a.get(c), b.get(c)) {
            (Some(x), Some(y)) => x.name() != y.name() || x.data_type() != y.data_type(),
            _ => true,
        });
        if let Some(c) = differs {
            let show = |f: Option<&FieldRef>| {
                f.map_or("absent".to_string(), |f| format!("`{} {}`", f.name(), type_name(f.data_type())))
            };
            return Err((
                i,
                format!(
                    "{label} does not match {first_label} (sources are unioned: they need the same column names and types, in order): column {} is {} in {label} but {} in {first_label}",
                    c + 1,
                    show(b.get(c)),
                    show(a.get(c)),
                ),
            ));
        }
        for (n, f) in nullable.iter_mut().zip(b.iter()) {
            *n |= f.is_nullable();
        }
    }
    let fields: Vec<Field> =
        first.fields().iter().zip(nullable).map(|(f, n)| f.as_ref().clone().with_nullable(n)).collect();
    Ok(Arc::new(Schema::new_with_metadata(fields, first.metadata().clone())))
}

impl Union {
    /// Checks that the inputs can be unioned; the error is (the field at fault, the reason).
    /// Inputs a join takes as its other side keep their own schema; the others are unioned.
    pub fn new(inputs: Vec<Input>) -> Result<Union, (String, String)> {
        let main: Vec<&Input> = inputs.iter().filter(|i| i.joined_by.is_none()).collect();
        assert!(!main.is_empty(), "validated: a job has a streaming source no join takes");
        let schemas: Vec<(&str, SchemaRef)> = main.iter().map(|i| (i.label.as_str(), i.source.schema())).collect();
        let schema = union_schema(&schemas).map_err(|(i, e)| (format!("{}.schema", main[i].field), e))?;
        let rewrap = inputs.iter().map(|i| i.joined_by.is_none() && i.source.schema() != schema).collect();
        Ok(Union { inputs, schema, rewrap })
    }

    /// Input `i`'s key (its name; see [`Input::key`]).
    pub fn name(&self, i: usize) -> &str {
        &self.inputs[i].key
    }

    /// The operator whose other side input `i` is, if a join takes it.
    pub fn joined_by(&self, i: usize) -> Option<usize> {
        self.inputs[i].joined_by
    }

    /// The columns of input `i`'s batches as `read` returns them.
    pub fn schema_of(&self, i: usize) -> SchemaRef {
        match self.inputs[i].joined_by {
            Some(_) => self.inputs[i].source.schema(),
            None => self.schema.clone(),
        }
    }

    /// The schema of the unioned stream (every input no join takes).
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// The inputs' keys, in the job's order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.inputs.iter().map(|i| i.key.as_str())
    }

    /// Input `i`'s description for progress records (`sources[i].description`).
    pub fn description(&self, i: usize) -> String {
        self.inputs[i].source.description()
    }

    /// Input `i`'s `latestOffset` (see [`Source::latest_offset`]).
    pub fn latest_offset(&self, i: usize) -> Option<serde_json::Value> {
        self.inputs[i].source.latest_offset()
    }

    /// Splits the `source` of an offsets entry into one range per input (null: nothing from it).
    pub fn split(&self, range: &serde_json::Value) -> Result<Vec<serde_json::Value>, SourceError> {
        if self.inputs.len() == 1 {
            return Ok(vec![range.clone()]);
        }
        if range.is_null() {
            return Ok(vec![serde_json::Value::Null; self.inputs.len()]);
        }
        match range.as_object() {
            Some(o) if o.len() == self.inputs.len() && self.keys().all(|k| o.contains_key(k)) => {
                Ok(self.keys().map(|k| o[k].clone()).collect())
            }
            _ => Err(SourceError::Invalid(format!(
                "offsets entry {range} does not have one range for each of the job's sources ({}); were the job's sources changed? use a new checkpoint",
                self.keys().collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// Folds the `source` of many offsets entries (oldest first) into fewer, input by input
    /// (each input's own `compact_ranges`), that `restore` takes to the same effect.
    pub fn compact(&self, planned: &[serde_json::Value]) -> Result<Vec<serde_json::Value>, SourceError> {
        let mut per_input: Vec<Vec<serde_json::Value>> = vec![Vec::new(); self.inputs.len()];
        for range in planned.iter().filter(|r| !r.is_null()) {
            for (i, r) in self.split(range)?.into_iter().enumerate() {
                if !r.is_null() {
                    per_input[i].push(r);
                }
            }
        }
        let mut compacted = Vec::with_capacity(self.inputs.len());
        for (input, ranges) in self.inputs.iter().zip(per_input) {
            compacted.push(input.source.compact_ranges(ranges)?);
        }
        if self.inputs.len() == 1 {
            return Ok(compacted.pop().unwrap_or_default());
        }
        // Back into entries keyed by input, as `split` reads them (null: nothing from that one).
        let n = compacted.iter().map(Vec::len).max().unwrap_or(0);
        Ok((0..n)
            .map(|j| {
                let keyed = self
                    .inputs
                    .iter()
                    .zip(&compacted)
                    .map(|(input, r)| (input.key.clone(), r.get(j).cloned().unwrap_or(serde_json::Value::Null)))
                    .collect();
                serde_json::Value::Object(keyed)
            })
            .collect())
    }

    /// Tells each input the ranges it handed out, from every offsets entry that has one.
    pub fn restore(&mut self, planned: &[serde_json::Value]) -> Result<(), SourceError> {
        let mut per_input: Vec<Vec<serde_json::Value>> = vec![Vec::new(); self.inputs.len()];
        for range in planned.iter().filter(|r| !r.is_null()) {
            for (i, r) in self.split(range)?.into_iter().enumerate() {
                if !r.is_null() {
                    per_input[i].push(r);
                }
            }
        }
        for (input, ranges) in self.inputs.iter_mut().zip(per_input) {
            input.source.restore(&ranges)?;
        }
        Ok(())
    }

    /// How long an idle query waits before planning again: the shortest of the inputs'.
    pub fn idle_poll(&self, now_micros: i64) -> std::time::Duration {
        self.inputs.iter().map(|i| i.source.idle_poll(now_micros)).min().unwrap_or(super::IDLE_POLL)
    }

    /// Plans the next batch: every input's next range, or `None` when none has new data.
    pub fn plan_next(&mut self, now_micros: i64) -> Result<Option<serde_json::Value>, SourceError> {
        let mut ranges = Vec::with_capacity(self.inputs.len());
        for input in &mut self.inputs {
            ranges.push(input.source.plan_next(now_micros)?);
        }
        if ranges.iter().all(Option::is_none) {
            return Ok(None);
        }
        if self.inputs.len() == 1 {
            return Ok(ranges.pop().flatten());
        }
        let keyed = self
            .inputs
            .iter()
            .zip(ranges)
            .map(|(input, r)| (input.key.clone(), r.unwrap_or(serde_json::Value::Null)))
            .collect();
        Ok(Some(serde_json::Value::Object(keyed)))
    }

    /// Reads input `i`'s range (from `split`), with the union's schema.
    pub fn read(
        &mut self,
        i: usize,
        range: &serde_json::Value,
        bad: &mut BadRecords,
    ) -> Result<Vec<RecordBatch>, SourceError> {
        let batches = self.inputs[i].source.read(range, bad)?;
        if !self.rewrap[i] {
            return Ok(batches);
        }
        batches
            .into_iter()
            .map(|b| {
                RecordBatch::try_new(self.schema.clone(), b.columns().to_vec()).map_err(|e| {
                    SourceError::Invalid(format!(
                        "{}: a batch does not fit the sources' common schema: {e}",
                        self.inputs[i].label
                    ))
                })
            })
            .collect()
    }

    /// Input `i`'s range in pieces to read one after another (see [`Source::pieces`]).
    pub fn pieces(&self, i: usize, range: &serde_json::Value) -> Result<Vec<serde_json::Value>, SourceError> {
        self.inputs[i].source.pieces(range)
    }

    /// Input `i`'s range, for messages; with several inputs, prefixed with the input's label.
    pub fn describe_range(&self, i: usize, range: &serde_json::Value) -> String {
        let input = &self.inputs[i];
        let text = input.source.describe_range(range);
        if self.inputs.len() == 1 {
            text
        } else {
            format!("{}: {text}", input.label)
        }
    }

    /// `available_now` for every input.
    pub fn snapshot_available_now(&mut self) -> Result<(), SourceError> {
        self.inputs.iter_mut().try_for_each(|i| i.source.snapshot_available_now())
    }

    /// `once` for every input.
    pub fn ignore_trigger_limits(&mut self) {
        self.inputs.iter_mut().for_each(|i| i.source.ignore_trigger_limits());
    }

    /// The continuous trigger's reader of the job's one source (the plan refuses others).
    pub fn continuous(&mut self) -> Result<&mut dyn super::continuous::ContinuousSource, SourceError> {
        let [input] = self.inputs.as_mut_slice() else {
            return Err(SourceError::Invalid("continuous processing reads exactly one source".into()));
        };
        let label = input.label.clone();
        input
            .source
            .continuous()
            .ok_or_else(|| SourceError::Invalid(format!("{label} does not support continuous processing")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CsvOptions, FileFormat, FileSourceConfig};
    use crate::deadletter::OnBadRecord;
    use crate::schema::parse_ddl;
    use crate::source::files::FileSource;

    fn input(key: &str, i: usize, dir: &std::path::Path, ddl: &str) -> Input {
        let source = FileSource::new(&FileSourceConfig {
            path: dir.to_path_buf(),
            format: FileFormat::Json,
            schema: Some(parse_ddl(ddl).unwrap()),
            max_files_per_trigger: Some(1),
            csv: CsvOptions::default(),
        })
        .unwrap();
        Input {
            key: key.to_string(),
            label: format!("source {key:?}"),
            field: format!("source[{i}]"),
            source: Box::new(source),
            joined_by: None,
        }
    }

    #[test]
    fn schemas_must_match_by_name_and_type_in_order_and_nullability_is_unioned() {
        let s = |ddl: &str| parse_ddl(ddl).unwrap();
        let u = union_schema(&[("a", s("k string NOT NULL, n int")), ("b", s("k string, n int NOT NULL"))]).unwrap();
        assert!(u.fields().iter().all(|f| f.is_nullable()), "a column may be null when it may be in any input");
        let e = union_schema(&[("a", s("k string, n int")), ("b", s("k string, n bigint"))]).unwrap_err();
        assert_eq!(e.0, 1);
        assert!(e.1.ends_with("column 2 is `n bigint` in b but `n int` in a"), "{}", e.1);
        let e = union_schema(&[("a", s("k string, n int")), ("b", s("n int, k string"))]).unwrap_err();
        assert!(e.1.ends_with("column 1 is `n int` in b but `k string` in a"), "{}", e.1);
        let e = union_schema(&[("a", s("k string")), ("b", s("k string")), ("c", s("k string, x int"))]).unwrap_err();
        assert_eq!(e.0, 2);
        assert!(e.1.ends_with("column 2 is `x int` in c but absent in a"), "{}", e.1);
    }

    #[test]
    fn a_batch_keys_each_sources_range_by_name_and_replays_after_restore() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(a.path().join("1.json"), "{\"k\":\"a1\"}\n").unwrap();
        std::fs::write(a.path().join("2.json"), "{\"k\":\"a2\"}\n").unwrap();
        std::fs::write(b.path().join("1.json"), "{\"k\":\"b1\"}\n").unwrap();
        let new = || {
            Union::new(vec![input("a", 0, a.path(), "k string"), input("b", 1, b.path(), "k string NOT NULL")]).unwrap()
        };
        let mut u = new();
        assert!(u.schema().field(0).is_nullable());
        let first = u.plan_next(0).unwrap().unwrap();
        let second = u.plan_next(0).unwrap().unwrap();
        assert!(u.plan_next(0).unwrap().is_none(), "nothing new anywhere: no batch");
        let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
        assert_eq!(keys, vec!["a", "b"]);
        let parts = u.split(&second).unwrap();
        assert!(!parts[0].is_null() && parts[1].is_null(), "b had nothing new: {second}");
        assert_eq!(u.split(&serde_json::Value::Null).unwrap(), vec![serde_json::Value::Null; 2]);

        // Restarted: nothing is planned twice, and a range reads the same, with the union's schema.
        let mut again = new();
        again.restore(&[first.clone(), serde_json::Value::Null, second]).unwrap();
        assert!(again.plan_next(0).unwrap().is_none());
        let mut bad = BadRecords::new(OnBadRecord::Fail);
        let parts = again.split(&first).unwrap();
        let rows = again.read(1, &parts[1], &mut bad).unwrap();
        assert_eq!(rows[0].schema(), again.schema(), "b's NOT NULL column is nullable in the union");
        assert!(again.describe_range(1, &parts[1]).starts_with("source \"b\": "));

        let e = again.split(&serde_json::json!({"a": null})).unwrap_err().to_string();
        assert!(e.contains("does not have one range for each of the job's sources (a, b)"), "{e}");
    }

    /// Retention folds the ranges of old batches: a restart from the folded ranges knows every
    /// file each source handed out, as from the entries themselves.
    #[test]
    fn folded_ranges_restore_as_the_entries_they_replace() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for (dir, n) in [(a.path(), 3), (b.path(), 1)] {
            for i in 0..n {
                std::fs::write(dir.join(format!("{i}.json")), "{\"k\":\"x\"}\n").unwrap();
            }
        }
        let new =
            || Union::new(vec![input("a", 0, a.path(), "k string"), input("b", 1, b.path(), "k string")]).unwrap();
        let mut u = new();
        let planned: Vec<serde_json::Value> = std::iter::from_fn(|| u.plan_next(0).unwrap()).collect();
        assert_eq!(planned.len(), 3);
        let folded = u.compact(&planned).unwrap();
        assert_eq!(folded.len(), 1, "one range per source: {folded:?}");
        assert_eq!(
            u.split(&folded[0]).unwrap().iter().map(|r| r["files"].as_array().unwrap().len()).collect::<Vec<_>>(),
            [3, 1]
        );
        let mut again = new();
        again.restore(&folded).unwrap();
        assert!(again.plan_next(0).unwrap().is_none(), "no file planned twice");
        std::fs::write(b.path().join("9.json"), "{\"k\":\"y\"}\n").unwrap();
        let next = again.plan_next(0).unwrap().unwrap();
        assert!(next["a"].is_null() && next["b"]["files"].as_array().unwrap().len() == 1, "{next}");
    }

    #[test]
    fn sources_with_other_columns_are_refused_naming_the_field() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let e = Union::new(vec![input("a", 0, a.path(), "k string"), input("b", 1, b.path(), "k int")]).err().unwrap();
        assert_eq!(e.0, "source[1].schema");
        assert!(e.1.starts_with("source \"b\" does not match source \"a\""), "{}", e.1);
    }

    #[test]
    fn one_source_keeps_its_own_range_format() {
        let a = tempfile::tempdir().unwrap();
        std::fs::write(a.path().join("1.json"), "{\"k\":\"a1\"}\n").unwrap();
        let mut u = Union::new(vec![input("source", 0, a.path(), "k string")]).unwrap();
        let r = u.plan_next(0).unwrap().unwrap();
        assert!(r.get("files").is_some(), "the file source's own range: {r}");
        assert_eq!(u.split(&r).unwrap(), vec![r]);
    }
}
