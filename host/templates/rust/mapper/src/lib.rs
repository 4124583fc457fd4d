//! `{{name}}`: a map plugin (the `mapper` world).
//!
//! Every input column is passed through (its data stays on the host), then a column `size`
//! (string, not null): `"big"` when `amount` is 100.0 or more, else `"small"` (a null `amount`
//! is `"small"`). Change `output_schema` and `map_batch` to make it yours.

use weir_guest::prelude::*;

/// The plugin, built once per instance by `init`.
struct Plugin {
    threshold: f64,
}

impl Mapper for Plugin {
    fn init(_config: &Config) -> Result<Self, String> {
        // The job's `config` string, parsed as `key=value` pairs (`config.get_f64("key", 1.0)?`).
        Ok(Plugin { threshold: 100.0 })
    }

    fn output_schema(&self, input: &Schema) -> Result<Schema, String> {
        input.require("amount", DataType::Float64)?;
        input.try_with(Field::new("size", DataType::Utf8, false))
    }

    fn map_batch(&mut self, input: &Batch) -> Result<Output, BatchError> {
        let amount = input.f64s("amount")?;
        let mut size = StrBuilder::with_capacity(input.num_rows(), 5 * input.num_rows());
        for a in amount.iter() {
            size.push_value(if a.is_some_and(|a| a >= self.threshold) { "big" } else { "small" });
        }
        Ok(Output::same_rows().pass_through_all(input).column("size", size))
    }
}

weir_guest::export_mapper!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_is_big_from_100_and_small_otherwise() {
        let input = Batch::new(
            3,
            vec![
                Column::new("user", [Some("ann"), Some("bob"), Some("cid")].into_iter().collect::<StrBuilder>()),
                Column::new("amount", [Some(120.0), None, Some(99.5)].into_iter().collect::<F64Builder>()),
            ],
        )
        .unwrap();
        let mut plugin = Plugin::init(&Config::default()).unwrap();
        let schema = Schema::new(vec![
            Field::new("user", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
        ]);
        assert_eq!(plugin.output_schema(&schema).unwrap().fields.last().unwrap().name, "size");
        // What the host will see: the passed-through columns, then `size`.
        let out = plugin.map_batch(&input).unwrap().to_batch(&input).unwrap();
        assert_eq!(out.strs("user").unwrap().iter().collect::<Vec<_>>(), [Some("ann"), Some("bob"), Some("cid")]);
        assert_eq!(out.strs("size").unwrap().iter().collect::<Vec<_>>(), [Some("big"), Some("small"), Some("small")]);
    }

    #[test]
    fn a_missing_amount_column_is_named() {
        let schema = Schema::new(vec![Field::new("user", DataType::Utf8, true)]);
        let plugin = Plugin::init(&Config::default()).unwrap();
        assert!(plugin.output_schema(&schema).unwrap_err().contains("`amount`"));
    }
}
