//! A join's output columns, as Spark's analyzer computes them, and the assembly of output batches
//! from the rows each side contributes.
//!
//! `USING` joins (`on = ["k"]`), as Spark's `NaturalAndUsingJoinResolution.computeOutputAndHiddenOutput`
//! (sql/catalyst/.../analysis/NaturalAndUsingJoinResolution.scala on Spark's master; the same
//! order as `commonNaturalJoinProcessing` in `Analyzer.scala` of Spark 3.x):
//! - inner: left keys, left's other columns, right's other columns;
//! - left_outer: the same, right's columns nullable;
//! - left_semi / left_anti: left keys, left's other columns;
//! - right_outer: right keys, left's other columns (nullable), right's other columns;
//! - full_outer: `coalesce(left key, right key)` named as the left key, then both sides' other
//!   columns, all nullable. The key is nullable too, as on master (both arguments of the coalesce
//!   are made nullable there; Spark 3.x left it non-null when both keys were), and of the common
//!   key type (`bigint` for `int` against `bigint`, as Spark's coercion of `coalesce`).
//!
//! Pair joins (`on = [{ left = "a", right = "b" }]`) keep every column, as Spark's `Join.output`:
//! all left columns then all right columns (semi/anti: left only), the side that may be missing
//! nullable. Prefixes rename every column of their side except merged `USING` keys; a name that
//! then appears twice is refused (Spark would accept it and fail at the first ambiguous reference
//! or at the sink).

use std::sync::Arc;

use arrow::array::{ArrayRef, UInt32Array};
use arrow::compute::kernels::zip::zip;
use arrow::compute::{cast, is_not_null, take};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::keys::{resolve_keys, ResolvedKeys};
use super::spec::{JoinKeys, JoinSpec, JoinType};

/// Where one output column's values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnSource {
    /// Column `i` of the left input (null where an output row has no left row).
    Left(usize),
    /// Column `j` of the right input (null where an output row has no right row).
    Right(usize),
    /// A full outer `USING` key: the left key where the row has a left row, else the right key.
    Coalesce { left: usize, right: usize },
}

/// A join's output: its schema and, per output column, where the values come from.
#[derive(Debug, Clone)]
pub struct OutputLayout {
    pub schema: SchemaRef,
    /// One entry per field of `schema`, in the same order.
    pub columns: Vec<ColumnSource>,
    /// The key columns on both sides and the types they are compared as.
    pub keys: ResolvedKeys,
}

/// The output columns of `spec` over inputs `left` and `right`: Spark's order and nullability,
/// prefixes applied, duplicate names refused (the message names the column and suggests a prefix).
pub fn output_schema(left: &Schema, right: &Schema, spec: &JoinSpec) -> Result<OutputLayout, String> {
    let keys = resolve_keys(left, right, &spec.keys)?;
    let t = spec.join_type;
    let prefixed = |prefix: &Option<String>, name: &str| format!("{}{name}", prefix.as_deref().unwrap_or(""));
    let left_field = |i: usize| {
        let f = left.field(i);
        Field::new(prefixed(&spec.left_prefix, f.name()), f.data_type().clone(), f.is_nullable() || t.left_nullable())
    };
    let right_field = |j: usize| {
        let f = right.field(j);
        Field::new(prefixed(&spec.right_prefix, f.name()), f.data_type().clone(), f.is_nullable() || t.right_nullable())
    };
    // (field, source, what to call it in a duplicate-name message)
    let mut out: Vec<(Field, ColumnSource, String)> = Vec::new();
    match &spec.keys {
        JoinKeys::Using(_) => {
            for (k, (&li, &ri)) in keys.left.iter().zip(&keys.right).enumerate() {
                let (lf, rf) = (left.field(li), right.field(ri));
                let (field, source) = match t {
                    JoinType::RightOuter => (rf.as_ref().clone(), ColumnSource::Right(ri)),
                    JoinType::FullOuter => (
                        Field::new(lf.name(), keys.types[k].clone(), true),
                        ColumnSource::Coalesce { left: li, right: ri },
                    ),
                    _ => (lf.as_ref().clone(), ColumnSource::Left(li)),
                };
                out.push((field, source, format!("the USING key `{}`", lf.name())));
            }
            for i in (0..left.fields().len()).filter(|i| !keys.left.contains(i)) {
                out.push((left_field(i), ColumnSource::Left(i), format!("the left column `{}`", left.field(i).name())));
            }
            if !t.left_only() {
                for j in (0..right.fields().len()).filter(|j| !keys.right.contains(j)) {
                    out.push((
                        right_field(j),
                        ColumnSource::Right(j),
                        format!("the right column `{}`", right.field(j).name()),
                    ));
                }
            }
        }
        JoinKeys::Pairs(_) => {
            for i in 0..left.fields().len() {
                out.push((left_field(i), ColumnSource::Left(i), format!("the left column `{}`", left.field(i).name())));
            }
            if !t.left_only() {
                for j in 0..right.fields().len() {
                    out.push((
                        right_field(j),
                        ColumnSource::Right(j),
                        format!("the right column `{}`", right.field(j).name()),
                    ));
                }
            }
        }
    }
    for (n, (field, _, origin)) in out.iter().enumerate() {
        if let Some((_, _, first)) = out[..n].iter().find(|(f, _, _)| f.name() == field.name()) {
            return Err(format!(
                "the join's output would have two columns named `{}` ({first} and {origin}); set right_prefix \
                 (e.g. right_prefix = \"right_\") or left_prefix on the join to rename one side's columns",
                field.name()
            ));
        }
    }
    let (fields, columns): (Vec<Field>, Vec<ColumnSource>) = out.into_iter().map(|(f, s, _)| (f, s)).unzip();
    Ok(OutputLayout { schema: Arc::new(Schema::new(fields)), columns, keys })
}

impl OutputLayout {
    /// The output batch whose row `n` joins `left` row `left_rows[n]` with `right` row
    /// `right_rows[n]`; a null index means the row has nothing from that side (its columns are
    /// null). A join that outputs no column of one side may pass an empty array for it.
    pub fn assemble(
        &self,
        left: &RecordBatch,
        left_rows: &UInt32Array,
        right: &RecordBatch,
        right_rows: &UInt32Array,
    ) -> Result<RecordBatch, ArrowError> {
        let num_rows = left_rows.len().max(right_rows.len());
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
        for (source, field) in self.columns.iter().zip(self.schema.fields()) {
            let column = match *source {
                ColumnSource::Left(i) => take(left.column(i).as_ref(), left_rows, None)?,
                ColumnSource::Right(j) => take(right.column(j).as_ref(), right_rows, None)?,
                ColumnSource::Coalesce { left: i, right: j } => {
                    let l = cast(&take(left.column(i).as_ref(), left_rows, None)?, field.data_type())?;
                    let r = cast(&take(right.column(j).as_ref(), right_rows, None)?, field.data_type())?;
                    zip(&is_not_null(&l)?, &l, &r)?
                }
            };
            columns.push(column);
        }
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(num_rows)),
        )
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, Int32Array, Int64Array, StringArray};
    use arrow::datatypes::DataType;

    use super::super::spec::KeyPair;
    use super::*;

    /// `name type nullable` per column, for comparing schemas exactly.
    fn describe(layout: &OutputLayout) -> Vec<String> {
        layout
            .schema
            .fields()
            .iter()
            .map(|f| format!("{} {} {}", f.name(), f.data_type(), if f.is_nullable() { "null" } else { "not-null" }))
            .collect()
    }

    fn left() -> Schema {
        Schema::new(vec![
            Field::new("v", DataType::Utf8, false),
            Field::new("k", DataType::Int32, false),
            Field::new("a", DataType::Utf8, false),
        ])
    }

    fn right() -> Schema {
        Schema::new(vec![Field::new("b", DataType::Utf8, false), Field::new("k", DataType::Int64, false)])
    }

    fn spec(join_type: JoinType, keys: JoinKeys) -> JoinSpec {
        JoinSpec { join_type, keys, left_prefix: None, right_prefix: None }
    }

    fn using(join_type: JoinType) -> JoinSpec {
        spec(join_type, JoinKeys::Using(vec!["k".into()]))
    }

    #[test]
    fn using_keys_come_first_from_the_side_spark_takes_them_from() {
        let got = |t| {
            let l = output_schema(&left(), &right(), &using(t)).unwrap();
            (describe(&l), l.columns)
        };
        use ColumnSource::*;
        assert_eq!(
            got(JoinType::Inner),
            (
                ["k Int32 not-null", "v Utf8 not-null", "a Utf8 not-null", "b Utf8 not-null"]
                    .map(String::from)
                    .to_vec(),
                vec![Left(1), Left(0), Left(2), Right(0)]
            )
        );
        assert_eq!(
            got(JoinType::LeftOuter),
            (
                ["k Int32 not-null", "v Utf8 not-null", "a Utf8 not-null", "b Utf8 null"].map(String::from).to_vec(),
                vec![Left(1), Left(0), Left(2), Right(0)]
            )
        );
        assert_eq!(
            got(JoinType::RightOuter),
            (
                ["k Int64 not-null", "v Utf8 null", "a Utf8 null", "b Utf8 not-null"].map(String::from).to_vec(),
                vec![Right(1), Left(0), Left(2), Right(0)]
            )
        );
        assert_eq!(
            got(JoinType::FullOuter),
            (
                ["k Int64 null", "v Utf8 null", "a Utf8 null", "b Utf8 null"].map(String::from).to_vec(),
                vec![Coalesce { left: 1, right: 1 }, Left(0), Left(2), Right(0)]
            )
        );
        for t in [JoinType::LeftSemi, JoinType::LeftAnti] {
            assert_eq!(
                got(t),
                (
                    ["k Int32 not-null", "v Utf8 not-null", "a Utf8 not-null"].map(String::from).to_vec(),
                    vec![Left(1), Left(0), Left(2)]
                )
            );
        }
    }

    #[test]
    fn pair_joins_keep_both_key_columns_left_then_right() {
        let l = Schema::new(vec![Field::new("uid", DataType::Utf8, false), Field::new("x", DataType::Utf8, true)]);
        let r =
            Schema::new(vec![Field::new("id", DataType::Utf8, false), Field::new("country", DataType::Utf8, false)]);
        let keys = JoinKeys::Pairs(vec![KeyPair { left: "uid".into(), right: "id".into() }]);
        let layout = output_schema(&l, &r, &spec(JoinType::LeftOuter, keys.clone())).unwrap();
        assert_eq!(describe(&layout), ["uid Utf8 not-null", "x Utf8 null", "id Utf8 null", "country Utf8 null"]);
        use ColumnSource::*;
        assert_eq!(layout.columns, vec![Left(0), Left(1), Right(0), Right(1)]);
        let layout = output_schema(&l, &r, &spec(JoinType::RightOuter, keys.clone())).unwrap();
        assert_eq!(describe(&layout), ["uid Utf8 null", "x Utf8 null", "id Utf8 not-null", "country Utf8 not-null"]);
        let layout = output_schema(&l, &r, &spec(JoinType::LeftAnti, keys)).unwrap();
        assert_eq!(describe(&layout), ["uid Utf8 not-null", "x Utf8 null"]);
    }

    #[test]
    fn prefixes_rename_every_column_of_their_side_but_merged_using_keys() {
        let mut s = using(JoinType::Inner);
        s.left_prefix = Some("l_".into());
        s.right_prefix = Some("user_".into());
        let layout = output_schema(&left(), &right(), &s).unwrap();
        assert_eq!(
            layout.schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(),
            ["k", "l_v", "l_a", "user_b"]
        );
        let l = Schema::new(vec![Field::new("id", DataType::Utf8, false)]);
        let r = Schema::new(vec![Field::new("id", DataType::Utf8, false)]);
        let mut s = spec(JoinType::Inner, JoinKeys::Pairs(vec![KeyPair { left: "id".into(), right: "id".into() }]));
        s.right_prefix = Some("user_".into());
        let layout = output_schema(&l, &r, &s).unwrap();
        assert_eq!(layout.schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(), ["id", "user_id"]);
    }

    #[test]
    fn a_name_on_both_sides_is_refused_with_a_prefix_suggestion() {
        let l = Schema::new(vec![Field::new("k", DataType::Utf8, false), Field::new("country", DataType::Utf8, true)]);
        let r = Schema::new(vec![Field::new("k", DataType::Utf8, false), Field::new("country", DataType::Utf8, true)]);
        assert_eq!(
            output_schema(&l, &r, &using(JoinType::LeftOuter)).unwrap_err(),
            "the join's output would have two columns named `country` (the left column `country` and the right \
             column `country`); set right_prefix (e.g. right_prefix = \"right_\") or left_prefix on the join to \
             rename one side's columns"
        );
        // Semi and anti joins output no right column: no clash.
        assert!(output_schema(&l, &r, &using(JoinType::LeftSemi)).is_ok());
        // A prefix can itself create a clash with a USING key.
        let l = Schema::new(vec![Field::new("user_id", DataType::Utf8, false)]);
        let r = Schema::new(vec![Field::new("user_id", DataType::Utf8, false), Field::new("id", DataType::Utf8, true)]);
        let mut s = spec(JoinType::Inner, JoinKeys::Using(vec!["user_id".into()]));
        s.right_prefix = Some("user_".into());
        assert_eq!(
            output_schema(&l, &r, &s).unwrap_err(),
            "the join's output would have two columns named `user_id` (the USING key `user_id` and the right \
             column `id`); set right_prefix (e.g. right_prefix = \"right_\") or left_prefix on the join to \
             rename one side's columns"
        );
    }

    #[test]
    fn assemble_takes_rows_and_coalesces_full_outer_keys() {
        let l = RecordBatch::try_new(
            Arc::new(left()),
            vec![
                Arc::new(StringArray::from(vec!["v0", "v1"])),
                Arc::new(Int32Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec!["a0", "a1"])),
            ],
        )
        .unwrap();
        let r = RecordBatch::try_new(
            Arc::new(right()),
            vec![Arc::new(StringArray::from(vec!["b0", "b1"])), Arc::new(Int64Array::from(vec![2, 7]))],
        )
        .unwrap();
        let layout = output_schema(&left(), &right(), &using(JoinType::FullOuter)).unwrap();
        // (left 1, right 0) matched on k = 2; left 0 unmatched; right 1 unmatched.
        let lr = UInt32Array::from(vec![Some(1), Some(0), None]);
        let rr = UInt32Array::from(vec![Some(0), None, Some(1)]);
        let out = layout.assemble(&l, &lr, &r, &rr).unwrap();
        assert_eq!(out.column(0).as_ref(), &Int64Array::from(vec![2, 1, 7]) as &dyn Array);
        assert_eq!(out.column(1).as_ref(), &StringArray::from(vec![Some("v1"), Some("v0"), None]) as &dyn Array);
        assert_eq!(out.column(3).as_ref(), &StringArray::from(vec![Some("b0"), None, Some("b1")]) as &dyn Array);
    }
}
