//! The stream-stream join as the engine runs it: the stream so far on one side, the source the
//! join names on the other. Spark joins all of one side's input of a batch before the other's
//! ([`StreamStreamJoin::first_side`]): pieces of the first side are joined as they come, the
//! other side's are held until the batch's end, then joined, then the state is evicted by the
//! state watermarks (outer rows that can no longer match come out) and committed.

use anyhow::Context;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::spec::Side;
use super::stream_stream::StreamStreamJoin;
use super::window::SideWindow;
use crate::engine::operator::{BatchContext, Operator};

pub struct StreamJoinOperator {
    index: usize,
    join: StreamStreamJoin,
    /// The side the stream so far is on (the other source is on the other side).
    chain_side: Side,
    /// Pieces of the side joined second, held until the batch ends.
    held: Vec<RecordBatch>,
    last_progress: Option<serde_json::Value>,
    /// A window join: each side's window columns, added to its pieces before they are joined.
    windows: Option<(SideWindow, SideWindow)>,
}

impl StreamJoinOperator {
    pub fn new(index: usize, join: StreamStreamJoin, chain_side: Side) -> StreamJoinOperator {
        StreamJoinOperator { index, join, chain_side, held: Vec::new(), last_progress: None, windows: None }
    }

    /// Both sides windowed (left's, right's): pieces get their window before the join.
    pub fn with_windows(mut self, left: SideWindow, right: SideWindow) -> Self {
        self.windows = Some((left, right));
        self
    }

    fn origin(&self) -> String {
        format!("operator[{}] (stream-stream join)", self.index)
    }

    fn piece(&mut self, ctx: &mut BatchContext, side: Side, input: &RecordBatch) -> anyhow::Result<Vec<RecordBatch>> {
        let windowed;
        let input = match &self.windows {
            Some((left, right)) => {
                let w = if side == Side::Left { left } else { right };
                windowed =
                    w.apply(input).with_context(|| format!("batch {}: {}: windowing", ctx.batch_id, self.origin()))?;
                &windowed
            }
            None => input,
        };
        if side != self.join.first_side() {
            self.held.push(input.clone());
            return Ok(Vec::new());
        }
        self.join_piece(ctx, side, input)
    }

    fn join_piece(
        &mut self,
        ctx: &mut BatchContext,
        side: Side,
        input: &RecordBatch,
    ) -> anyhow::Result<Vec<RecordBatch>> {
        let (out, late) =
            self.join.process(side, input).with_context(|| format!("batch {}: {}", ctx.batch_id, self.origin()))?;
        ctx.late_rows(&self.origin(), input, &late);
        Ok(vec![out])
    }
}

impl Operator for StreamJoinOperator {
    fn index(&self) -> usize {
        self.index
    }

    fn output_schema(&self) -> SchemaRef {
        self.join.schema()
    }

    fn begin(&mut self, ctx: &mut BatchContext) -> anyhow::Result<()> {
        self.held.clear();
        let (id, origin) = (ctx.batch_id, self.origin());
        self.join
            .begin(id, ctx.late_watermark, ctx.watermark)
            .with_context(|| format!("batch {id}: {origin}: loading state"))
    }

    fn process(&mut self, ctx: &mut BatchContext, input: &RecordBatch) -> anyhow::Result<Vec<RecordBatch>> {
        self.piece(ctx, self.chain_side, input)
    }

    fn process_other(&mut self, ctx: &mut BatchContext, input: &RecordBatch) -> anyhow::Result<Vec<RecordBatch>> {
        self.piece(ctx, self.chain_side.other(), input)
    }

    fn finish(&mut self, ctx: &mut BatchContext) -> anyhow::Result<Vec<RecordBatch>> {
        let second = self.join.first_side().other();
        let mut out = Vec::new();
        for piece in std::mem::take(&mut self.held) {
            out.extend(self.join_piece(ctx, second, &piece)?);
        }
        let (id, origin) = (ctx.batch_id, self.origin());
        let (evicted, progress) =
            self.join.finish().with_context(|| format!("batch {id}: {origin}: evicting and committing state"))?;
        out.push(evicted);
        self.last_progress = Some(progress);
        Ok(out)
    }

    fn progress(&self) -> Option<serde_json::Value> {
        self.last_progress.clone()
    }

    fn wants_no_data_batch(&self, watermark_moved: bool, _now_micros: i64) -> bool {
        watermark_moved && self.join.evicts_by_watermark()
    }

    fn output_watermark(&self, input_micros: i64) -> i64 {
        self.join.output_watermark(input_micros)
    }
}
