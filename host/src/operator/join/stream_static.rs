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
        let matches = |row: usize| keys.get(row).map_or(&[] as &[u32], |k| table.lookup(k));
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
