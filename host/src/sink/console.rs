// PLACEHOLDER written by the lead only so the crate type-checks; the helper owning this file replaces it entirely.
use super::*;
pub struct ConsoleSink;
impl ConsoleSink { pub fn new(_n: usize) -> Self { todo!() } }
impl Sink for ConsoleSink {
    fn description(&self) -> String { todo!() }
    fn write_batch(&mut self, _id: u64, _d: &[RecordBatch]) -> Result<u64, SinkError> { todo!() }
}
