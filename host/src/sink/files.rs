// PLACEHOLDER written by the lead only so the crate type-checks; the helper owning this file replaces it entirely.
use super::*;
pub struct FileSink;
impl FileSink { pub fn new(_f: crate::job::FileFormat, _p: &std::path::Path, _pb: &[String], _s: arrow::datatypes::SchemaRef) -> Result<Self, SinkError> { todo!() } }
impl Sink for FileSink {
    fn description(&self) -> String { todo!() }
    fn write_batch(&mut self, _id: u64, _d: &[RecordBatch]) -> Result<u64, SinkError> { todo!() }
}
pub fn committed_files(_p: &std::path::Path) -> Result<Vec<std::path::PathBuf>, SinkError> { todo!() }
