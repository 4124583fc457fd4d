// PLACEHOLDER written by the lead only so the crate type-checks; the helper owning this file replaces it entirely.
use super::*;
pub struct FileSource;
impl FileSource { pub fn new(_c: &crate::job::FileSourceConfig) -> Result<Self, SourceError> { todo!() } }
impl Source for FileSource {
    fn description(&self) -> String { todo!() }
    fn schema(&self) -> SchemaRef { todo!() }
    fn restore(&mut self, _p: &[serde_json::Value]) -> Result<(), SourceError> { todo!() }
    fn plan_next(&mut self, _n: i64) -> Result<Option<serde_json::Value>, SourceError> { todo!() }
    fn read(&mut self, _r: &serde_json::Value, _b: &mut BadRecords) -> Result<Vec<RecordBatch>, SourceError> { todo!() }
}
