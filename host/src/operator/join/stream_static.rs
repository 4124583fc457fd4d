//! A stream joined to a static table: each stream batch is matched against the table's hash index
//! and the output assembled column by column with Arrow's `take` kernel.
//!
//! Output rows come in stream row order, and the matches of one stream row in table row order.
//! Supported, as in Spark: with the stream on the left, `inner`, `left_outer`, `left_semi`,
//! `left_anti`; with the stream on the right, `inner` and `right_outer`. The others would need the
//! static side's unmatched rows, which a stream never finishes deciding; they are refused when the
//! join is built, with Spark's message.

use arrow::array::{BooleanBufferBuilder, UInt32Array};
use arrow::buffer::NullBuffer;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::hash_index::HashIndex;
use super::keys::KeyEncoder;
use super::output::{output_schema, OutputLayout};
use super::spec::{JoinSpec, JoinType, Side};
use crate::schema::type_name;

/// A stream-static join: the table's index (set at each table version) and the output layout.
#[derive(Debug)]
pub struct StreamStaticJoin {
    spec: JoinSpec,
    stream_side: Side,
    stream_schema: SchemaRef,
    table_schema: SchemaRef,
    layout: OutputLayout,
    encoder: KeyEncoder,
    table: Option<HashIndex>,
}

/// Refuses the join types Spark refuses for a stream joined to a static DataFrame, with the
/// message of Spark's `UnsupportedOperationChecker.checkForStreaming`
/// (sql/catalyst/src/main/scala/org/apache/spark/sql/catalyst/analysis/UnsupportedOperationChecker.scala),
/// followed by what weir supports instead. Spark's texts, verbatim:
///
/// - `"FullOuter joins with streaming DataFrames/Datasets on the left and a static DataFrame/Dataset on the right is not supported"`
/// - `"FullOuter joins with streaming DataFrames/Datasets on the right and a static DataFrame/Dataset on the left is not supported"`
/// - `s"$LeftAnti joins with a streaming DataFrame/Dataset on the right are not supported"`
/// - `s"$joinType join with a streaming DataFrame/Dataset on the right and a static DataFrame/Dataset on the left is not supported"`
///   (for `LeftOuter` and `LeftSemi`)
/// - `"RightOuter join with a streaming DataFrame/Dataset on the left and a static DataFrame/DataSet on the right not supported"`
///
/// (`$LeftAnti` and `$joinType` print as Spark's `JoinType.toString`: `LeftAnti`, `LeftOuter`,
/// `LeftSemi`.)
pub fn check_stream_static(join_type: JoinType, stream_side: Side) -> Result<(), String> {
    use JoinType::*;
    let spark = match (stream_side, join_type) {
        (Side::Left, Inner | LeftOuter | LeftSemi | LeftAnti) | (Side::Right, Inner | RightOuter) => return Ok(()),
        (Side::Left, FullOuter) => "FullOuter joins with streaming DataFrames/Datasets on the left and a static \
                                    DataFrame/Dataset on the right is not supported"
            .to_string(),
        (Side::Right, FullOuter) => "FullOuter joins with streaming DataFrames/Datasets on the right and a static \
                                     DataFrame/Dataset on the left is not supported"
            .to_string(),
        (Side::Right, LeftAnti) => {
            format!("{} joins with a streaming DataFrame/Dataset on the right are not supported", LeftAnti.spark_name())
        }
        (Side::Right, LeftOuter | LeftSemi) => format!(
            "{} join with a streaming DataFrame/Dataset on the right and a static DataFrame/Dataset on the left is \
             not supported",
            join_type.spark_name()
        ),
        (Side::Left, RightOuter) => "RightOuter join with a streaming DataFrame/Dataset on the left and a static \
                                     DataFrame/DataSet on the right not supported"
            .to_string(),
    };
    let supported = match stream_side {
        Side::Left => "inner, left_outer, left_semi and left_anti",
        Side::Right => "inner and right_outer",
    };
    Err(format!(
        "{spark}; with the stream on the {stream_side} and the static table on the {}, a join can be {supported}",
        stream_side.other()
    ))
}

impl StreamStaticJoin {
    /// A join of the stream (`stream_schema`, on `stream_side`) with the static table
    /// (`table_schema`, on the other side). Refuses what Spark refuses ([`check_stream_static`]),
    /// missing or mismatched keys and duplicate output names.
    pub fn new(
        spec: JoinSpec,
        stream_side: Side,
        stream_schema: SchemaRef,
        table_schema: SchemaRef,
    ) -> Result<StreamStaticJoin, String> {
        check_stream_static(spec.join_type, stream_side)?;
        let (left, right) = match stream_side {
            Side::Left => (&stream_schema, &table_schema),
            Side::Right => (&table_schema, &stream_schema),
        };
        let layout = output_schema(left, right, &spec)?;
        let encoder = KeyEncoder::new(layout.keys.types.clone())
            .map_err(|e| format!("join keys of types {:?} cannot be compared: {e}", layout.keys.types))?;
        Ok(StreamStaticJoin { spec, stream_side, stream_schema, table_schema, layout, encoder, table: None })
    }

    /// The join's output columns.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.layout.schema
    }

    /// The output columns and where each comes from.
    pub fn layout(&self) -> &OutputLayout {
        &self.layout
    }

    pub fn spec(&self) -> &JoinSpec {
        &self.spec
    }

    pub fn stream_side(&self) -> Side {
        self.stream_side
    }

    /// Indexes a version of the table (batches of the table schema) by this join's keys.
    pub fn build_index(&self, batches: &[RecordBatch]) -> Result<HashIndex, ArrowError> {
        HashIndex::build(&self.table_schema, batches, self.layout.keys.indices(self.stream_side.other()), &self.encoder)
    }

    /// Joins from now on against `index` (from [`StreamStaticJoin::build_index`]); refused if it
    /// indexes another schema or other key types.
    pub fn set_table(&mut self, index: HashIndex) -> Result<(), String> {
        if index.batch().schema().fields() != self.table_schema.fields() || index.key_types() != self.encoder.types() {
            return Err(format!(
                "the table index does not fit this join (schema {:?}, keys {:?}; the join expects {:?}, keys {:?}): \
                 build it with StreamStaticJoin::build_index",
                index.batch().schema(),
                index.key_types(),
                self.table_schema,
                self.encoder.types()
            ));
        }
        self.table = Some(index);
        Ok(())
    }

    /// The table currently joined against (for its memory and row count in progress records).
    pub fn table(&self) -> Option<&HashIndex> {
        self.table.as_ref()
    }

    /// The output of one stream batch: its rows in order, each followed by its matches in table
    /// order (outer: an unmatched or null-keyed row once, with nulls for the table's columns;
    /// semi: a matched row once; anti: a row with no match, null keys included).
    pub fn join(&self, stream_batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
        let table = self.table.as_ref().ok_or_else(|| {
            ArrowError::InvalidArgumentError(
                "the static table was not loaded before the first batch (a bug in the engine)".to_string(),
            )
        })?;
        self.check_stream_schema(stream_batch)?;
        let keys = self.encoder.encode(stream_batch, self.layout.keys.indices(self.stream_side))?;
        let n = stream_batch.num_rows();
        let t = self.spec.join_type;
        let mut groups = Vec::new();
        table.groups_of(&keys, &mut groups);
        let matches = |row: usize| table.rows_of(groups[row]);
        if t.left_only() {
            let keep = t == JoinType::LeftSemi;
            let rows: Vec<u32> = (0..n).filter(|&r| matches(r).is_empty() != keep).map(|r| r as u32).collect();
            let empty = UInt32Array::from(Vec::<u32>::new());
            return self.layout.assemble(stream_batch, &UInt32Array::from(rows), table.batch(), &empty);
        }
        let outer = matches!(t, JoinType::LeftOuter | JoinType::RightOuter);
        let mut stream_rows: Vec<u32> = Vec::with_capacity(n);
        let mut table_rows: Vec<u32> = Vec::with_capacity(n);
        let mut table_valid = outer.then(|| BooleanBufferBuilder::new(n));
        for row in 0..n {
            let m = matches(row);
            if m.is_empty() {
                if let Some(valid) = table_valid.as_mut() {
                    stream_rows.push(row as u32);
                    table_rows.push(0);
                    valid.append(false);
                }
                continue;
            }
            stream_rows.extend(std::iter::repeat_n(row as u32, m.len()));
            table_rows.extend_from_slice(m);
            if let Some(valid) = table_valid.as_mut() {
                valid.append_n(m.len(), true);
            }
        }
        let stream_rows = UInt32Array::from(stream_rows);
        let nulls = table_valid.map(|mut v| NullBuffer::new(v.finish()));
        let table_rows = UInt32Array::new(table_rows.into(), nulls);
        match self.stream_side {
            Side::Left => self.layout.assemble(stream_batch, &stream_rows, table.batch(), &table_rows),
            Side::Right => self.layout.assemble(table.batch(), &table_rows, stream_batch, &stream_rows),
        }
    }

    /// A stream batch must have the stream's column types (names may differ: positions count).
    fn check_stream_schema(&self, batch: &RecordBatch) -> Result<(), ArrowError> {
        let want = self.stream_schema.fields();
        let have = batch.schema();
        let same = have.fields().len() == want.len()
            && have.fields().iter().zip(want.iter()).all(|(h, w)| h.data_type() == w.data_type());
        if same {
            return Ok(());
        }
        let list = |fields: &arrow::datatypes::Fields| {
            fields.iter().map(|f| format!("{} {}", f.name(), type_name(f.data_type()))).collect::<Vec<_>>().join(", ")
        };
        Err(ArrowError::InvalidArgumentError(format!(
            "a stream batch of columns ({}) reached a join planned for ({}) (a bug in the plan)",
            list(have.fields()),
            list(want)
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array, Int32Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::util::display::{ArrayFormatter, FormatOptions};

    use super::super::spec::{JoinKeys, KeyPair};
    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let fields: Vec<Field> = columns.iter().map(|(n, c)| Field::new(*n, c.data_type().clone(), true)).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns.into_iter().map(|(_, c)| c).collect()).unwrap()
    }

    /// Stream rows: u1, u2, u4, null, u3 (amounts 10, 20, 5, 7, 30).
    fn events() -> RecordBatch {
        batch(vec![
            ("user_id", Arc::new(StringArray::from(vec![Some("u1"), Some("u2"), Some("u4"), None, Some("u3")]))),
            ("amount", Arc::new(Float64Array::from(vec![10.0, 20.0, 5.0, 7.0, 30.0]))),
        ])
    }

    /// Table rows: u1 DE, u2 FR, u2 IT, u3 US, null XX, u5 JP (u2 twice; a null key; u5 unmatched).
    fn users() -> RecordBatch {
        batch(vec![
            (
                "user_id",
                Arc::new(StringArray::from(vec![Some("u1"), Some("u2"), Some("u2"), Some("u3"), None, Some("u5")])),
            ),
            ("country", Arc::new(StringArray::from(vec!["DE", "FR", "IT", "US", "XX", "JP"]))),
        ])
    }

    fn using(join_type: JoinType, keys: &[&str]) -> JoinSpec {
        JoinSpec {
            join_type,
            keys: JoinKeys::Using(keys.iter().map(|k| k.to_string()).collect()),
            left_prefix: None,
            right_prefix: None,
        }
    }

    /// A join with `table` loaded (the table is split in two batches, as a table of two files).
    fn join_with(spec: JoinSpec, side: Side, stream: &RecordBatch, table: &RecordBatch) -> StreamStaticJoin {
        let mut j = StreamStaticJoin::new(spec, side, stream.schema(), table.schema()).unwrap();
        let n = table.num_rows();
        let index = j.build_index(&[table.slice(0, n / 2), table.slice(n / 2, n - n / 2)]).unwrap();
        j.set_table(index).unwrap();
        j
    }

    /// The header (`name`, `name?` when nullable) and each row as `v1 | v2 | ...`.
    fn render(b: &RecordBatch) -> Vec<String> {
        let opts = FormatOptions::default().with_null("null");
        let mut out = vec![b
            .schema()
            .fields()
            .iter()
            .map(|f| format!("{}{}", f.name(), if f.is_nullable() { "?" } else { "" }))
            .collect::<Vec<_>>()
            .join(" | ")];
        let fmts: Vec<_> = b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap()).collect();
        for row in 0..b.num_rows() {
            out.push(fmts.iter().map(|f| f.value(row).to_string()).collect::<Vec<_>>().join(" | "));
        }
        out
    }

    fn run(t: JoinType, side: Side) -> Vec<String> {
        let (stream, table) = (events(), users());
        let j = join_with(using(t, &["user_id"]), side, &stream, &table);
        render(&j.join(&stream).unwrap())
    }

    #[test]
    fn inner_stream_left() {
        assert_eq!(
            run(JoinType::Inner, Side::Left),
            ["user_id? | amount? | country?", "u1 | 10.0 | DE", "u2 | 20.0 | FR", "u2 | 20.0 | IT", "u3 | 30.0 | US",]
        );
    }

    #[test]
    fn left_outer_emits_unmatched_and_null_key_stream_rows_once_with_nulls() {
        assert_eq!(
            run(JoinType::LeftOuter, Side::Left),
            [
                "user_id? | amount? | country?",
                "u1 | 10.0 | DE",
                "u2 | 20.0 | FR",
                "u2 | 20.0 | IT",
                "u4 | 5.0 | null",
                "null | 7.0 | null",
                "u3 | 30.0 | US",
            ]
        );
    }

    #[test]
    fn left_semi_emits_a_matched_row_once() {
        assert_eq!(run(JoinType::LeftSemi, Side::Left), ["user_id? | amount?", "u1 | 10.0", "u2 | 20.0", "u3 | 30.0"]);
    }

    #[test]
    fn left_anti_emits_unmatched_rows_null_keys_included() {
        assert_eq!(run(JoinType::LeftAnti, Side::Left), ["user_id? | amount?", "u4 | 5.0", "null | 7.0"]);
    }

    #[test]
    fn inner_stream_right_takes_the_using_key_from_the_table_on_the_left() {
        assert_eq!(
            run(JoinType::Inner, Side::Right),
            ["user_id? | country? | amount?", "u1 | DE | 10.0", "u2 | FR | 20.0", "u2 | IT | 20.0", "u3 | US | 30.0",]
        );
    }

    #[test]
    fn right_outer_stream_right_keeps_the_stream_key_and_nulls_the_table() {
        assert_eq!(
            run(JoinType::RightOuter, Side::Right),
            [
                "user_id? | country? | amount?",
                "u1 | DE | 10.0",
                "u2 | FR | 20.0",
                "u2 | IT | 20.0",
                "u4 | null | 5.0",
                "null | null | 7.0",
                "u3 | US | 30.0",
            ]
        );
    }

    #[test]
    fn outer_nullability_follows_the_missing_side() {
        let stream = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, false)])),
            vec![Arc::new(StringArray::from(vec!["a", "b"]))],
        )
        .unwrap();
        let table = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("k", DataType::Utf8, false),
                Field::new("v", DataType::Int64, false),
            ])),
            vec![Arc::new(StringArray::from(vec!["a"])), Arc::new(Int64Array::from(vec![1]))],
        )
        .unwrap();
        let j = join_with(using(JoinType::LeftOuter, &["k"]), Side::Left, &stream, &table);
        assert_eq!(render(&j.join(&stream).unwrap()), ["k | v?", "a | 1", "b | null"]);
        let j = join_with(using(JoinType::Inner, &["k"]), Side::Left, &stream, &table);
        assert_eq!(render(&j.join(&stream).unwrap()), ["k | v", "a | 1"]);
        let j = join_with(using(JoinType::RightOuter, &["k"]), Side::Right, &stream, &table);
        assert_eq!(render(&j.join(&stream).unwrap()), ["k | v?", "a | 1", "b | null"]);
    }

    #[test]
    fn no_match_at_all_and_an_empty_stream_batch() {
        let stream = batch(vec![
            ("user_id", Arc::new(StringArray::from(vec!["zz"]))),
            ("amount", Arc::new(Float64Array::from(vec![1.0]))),
        ]);
        let j = join_with(using(JoinType::Inner, &["user_id"]), Side::Left, &stream, &users());
        assert_eq!(render(&j.join(&stream).unwrap()), ["user_id? | amount? | country?"]);
        assert_eq!(j.join(&stream.slice(0, 0)).unwrap().num_rows(), 0);
        let j = join_with(using(JoinType::LeftAnti, &["user_id"]), Side::Left, &stream, &users());
        assert_eq!(render(&j.join(&stream).unwrap()), ["user_id? | amount?", "zz | 1.0"]);
        // An empty table: the outer join emits every stream row with nulls.
        let j = join_with(using(JoinType::LeftOuter, &["user_id"]), Side::Left, &stream, &users().slice(0, 0));
        assert_eq!(render(&j.join(&stream).unwrap()), ["user_id? | amount? | country?", "zz | 1.0 | null"]);
    }

    #[test]
    fn int_stream_keys_match_bigint_table_keys() {
        let stream = batch(vec![("id", Arc::new(Int32Array::from(vec![Some(1), Some(2), None, Some(3)])))]);
        let table = batch(vec![
            ("id", Arc::new(Int64Array::from(vec![2, 2, 1, 5]))),
            ("name", Arc::new(StringArray::from(vec!["two", "deux", "one", "five"]))),
        ]);
        let j = join_with(using(JoinType::LeftOuter, &["id"]), Side::Left, &stream, &table);
        assert_eq!(
            render(&j.join(&stream).unwrap()),
            ["id? | name?", "1 | one", "2 | two", "2 | deux", "null | null", "3 | null"]
        );
        assert_eq!(j.output_schema().field(0).data_type(), &DataType::Int32, "the left key, as Spark");
    }

    #[test]
    fn pair_keys_keep_both_columns_with_the_prefix() {
        let stream = batch(vec![
            ("uid", Arc::new(StringArray::from(vec![Some("u2"), Some("u9"), None]))),
            ("amount", Arc::new(Float64Array::from(vec![1.5, 2.0, 3.0]))),
        ]);
        let spec = JoinSpec {
            join_type: JoinType::LeftOuter,
            keys: JoinKeys::Pairs(vec![KeyPair { left: "uid".into(), right: "user_id".into() }]),
            left_prefix: None,
            right_prefix: Some("user_".into()),
        };
        let j = join_with(spec, Side::Left, &stream, &users());
        assert_eq!(
            render(&j.join(&stream).unwrap()),
            [
                "uid? | amount? | user_user_id? | user_country?",
                "u2 | 1.5 | u2 | FR",
                "u2 | 1.5 | u2 | IT",
                "u9 | 2.0 | null | null",
                "null | 3.0 | null | null",
            ]
        );
    }

    #[test]
    fn multi_column_keys_match_on_every_column() {
        let stream = batch(vec![
            ("a", Arc::new(StringArray::from(vec![Some("x"), Some("x"), Some("y")]))),
            ("b", Arc::new(Int64Array::from(vec![Some(1), Some(2), Some(1)]))),
        ]);
        let table = batch(vec![
            ("b", Arc::new(Int64Array::from(vec![Some(1), Some(1), None]))),
            ("a", Arc::new(StringArray::from(vec![Some("y"), Some("x"), Some("x")]))),
            ("v", Arc::new(StringArray::from(vec!["y1", "x1", "xnull"]))),
        ]);
        // USING (b, a): the keys in `on` order, then the others.
        let j = join_with(using(JoinType::LeftOuter, &["b", "a"]), Side::Left, &stream, &table);
        assert_eq!(render(&j.join(&stream).unwrap()), ["b? | a? | v?", "1 | x | x1", "2 | x | null", "1 | y | y1"]);
    }

    #[test]
    fn spark_refusals_per_side_and_type() {
        let refused = |t: JoinType, side: Side| {
            StreamStaticJoin::new(using(t, &["user_id"]), side, events().schema(), users().schema()).unwrap_err()
        };
        assert_eq!(
            refused(JoinType::RightOuter, Side::Left),
            "RightOuter join with a streaming DataFrame/Dataset on the left and a static DataFrame/DataSet on the \
             right not supported; with the stream on the left and the static table on the right, a join can be \
             inner, left_outer, left_semi and left_anti"
        );
        assert_eq!(
            refused(JoinType::FullOuter, Side::Left),
            "FullOuter joins with streaming DataFrames/Datasets on the left and a static DataFrame/Dataset on the \
             right is not supported; with the stream on the left and the static table on the right, a join can be \
             inner, left_outer, left_semi and left_anti"
        );
        assert_eq!(
            refused(JoinType::FullOuter, Side::Right),
            "FullOuter joins with streaming DataFrames/Datasets on the right and a static DataFrame/Dataset on the \
             left is not supported; with the stream on the right and the static table on the left, a join can be \
             inner and right_outer"
        );
        assert_eq!(
            refused(JoinType::LeftAnti, Side::Right),
            "LeftAnti joins with a streaming DataFrame/Dataset on the right are not supported; with the stream on \
             the right and the static table on the left, a join can be inner and right_outer"
        );
        assert_eq!(
            refused(JoinType::LeftOuter, Side::Right),
            "LeftOuter join with a streaming DataFrame/Dataset on the right and a static DataFrame/Dataset on the \
             left is not supported; with the stream on the right and the static table on the left, a join can be \
             inner and right_outer"
        );
        assert_eq!(
            refused(JoinType::LeftSemi, Side::Right),
            "LeftSemi join with a streaming DataFrame/Dataset on the right and a static DataFrame/Dataset on the \
             left is not supported; with the stream on the right and the static table on the left, a join can be \
             inner and right_outer"
        );
        let accepted: Vec<(JoinType, Side)> = JoinType::ALL
            .into_iter()
            .flat_map(|t| [(t, Side::Left), (t, Side::Right)])
            .filter(|&(t, s)| check_stream_static(t, s).is_ok())
            .collect();
        assert_eq!(
            accepted,
            [
                (JoinType::Inner, Side::Left),
                (JoinType::Inner, Side::Right),
                (JoinType::LeftOuter, Side::Left),
                (JoinType::RightOuter, Side::Right),
                (JoinType::LeftSemi, Side::Left),
                (JoinType::LeftAnti, Side::Left),
            ]
        );
    }

    /// The Spark part of every refusal is a message line Spark 4.3 printed (captured by
    /// tests/joins/spark_refusals.py).
    #[test]
    fn refusals_quote_the_messages_spark_printed() {
        let captured = include_str!("../../../../tests/joins/spark_refusals.txt");
        let mut refused = 0;
        for t in JoinType::ALL {
            for side in [Side::Left, Side::Right] {
                let Err(message) = check_stream_static(t, side) else { continue };
                let spark = message.split("; with the stream").next().unwrap();
                assert!(captured.lines().any(|l| l == spark), "Spark never printed: {spark}");
                refused += 1;
            }
        }
        assert_eq!(refused, 6);
    }

    #[test]
    fn a_join_refuses_to_run_without_a_table_or_with_a_foreign_index() {
        let (stream, table) = (events(), users());
        let mut j =
            StreamStaticJoin::new(using(JoinType::Inner, &["user_id"]), Side::Left, stream.schema(), table.schema())
                .unwrap();
        assert!(j.join(&stream).unwrap_err().to_string().contains("the static table was not loaded"));
        let other =
            StreamStaticJoin::new(using(JoinType::Inner, &["user_id"]), Side::Right, table.schema(), stream.schema())
                .unwrap();
        let foreign = other.build_index(&[stream.clone()]).unwrap();
        assert!(j.set_table(foreign).unwrap_err().starts_with("the table index does not fit this join"));
        let memory = j.build_index(&[table]).unwrap().memory_bytes();
        assert!(memory > 0);
    }
}
