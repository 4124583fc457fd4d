//! Passes every row through and adds a `version` column: the TAGGER_VERSION the component was
//! built with (default "v1"). Built as several versions by the hot-swap tests. The version
//! "broken" panics on every batch (its `init` succeeds, so the swap is accepted); "wide" also adds
//! a nullable `extra` column (an allowed schema evolution); "wide-broken" declares the columns of
//! "wide" and panics on every batch; "picky" panics on a batch with a row whose `event_id` is
//! "bad"; "narrow" drops `version` (refused).

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
        match VERSION.as_bytes() {
            b"narrow" => Ok(input.clone()),
            b"wide" | b"wide-broken" => input
                .try_with(Field::new("version", DataType::Utf8, true))?
                .try_with(Field::new("extra", DataType::Int64, true)),
            _ => input.try_with(Field::new("version", DataType::Utf8, true)),
        }
    }

    fn map_batch(&mut self, input: &Batch) -> Result<Output, BatchError> {
        if VERSION == "broken" || VERSION == "wide-broken" {
            panic!("tagger: the broken version fails on every batch");
        }
        if VERSION == "picky" && input.strs("event_id")?.iter().any(|id| id == Some("bad")) {
            panic!("tagger: the picky version fails on event_id \"bad\"");
        }
        let n = input.num_rows();
        let out = Output::same_rows().pass_through_all(input);
        Ok(match VERSION.as_bytes() {
            b"narrow" => out,
            b"wide" => out
                .column("version", (0..n).map(|_| Some(VERSION)).collect::<StrBuilder>())
                .column("extra", (0..n).map(|i| Some(i as i64)).collect::<I64Builder>()),
            _ => out.column("version", (0..n).map(|_| Some(VERSION)).collect::<StrBuilder>()),
        })
    }
}

weir_guest::export_mapper!(Tagger);
