//! Passes every row through and adds a `version` column: the TAGGER_VERSION the component was
//! built with (default "v1"). Built as several versions by the hot-swap tests. The version
//! "broken" panics on every batch (its `init` succeeds, so the swap is accepted).

use weir_guest::prelude::*;

const VERSION: &str = match option_env!("TAGGER_VERSION") {
    Some(v) => v,
    None => "v1",
};

struct Tagger;

impl Mapper for Tagger {
    fn init(_config: &Config) -> Result<Self, String> {
        Ok(Tagger)
    }

    fn output_schema(&self, input: &Schema) -> Result<Schema, String> {
        input.try_with(Field::new("version", DataType::Utf8, true))
    }

    fn map_batch(&mut self, input: &Batch) -> Result<Output, BatchError> {
        if VERSION == "broken" {
            panic!("tagger: the broken version fails on every batch");
        }
        let n = input.num_rows();
        Ok(Output::same_rows()
            .pass_through_all(input)
            .column("version", (0..n).map(|_| Some(VERSION)).collect::<StrBuilder>()))
    }
}

weir_guest::export_mapper!(Tagger);
