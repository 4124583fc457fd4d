//! `filter`: keeps the rows whose `amount` is at least `min_amount` (config, default 0); rows
//! with a null amount are dropped. Every column is passed through by index with a row
//! selection, so no data crosses back from the plugin, only the kept row numbers.

use weir_guest::prelude::*;

/// The plugin's state: the threshold.
struct Filter {
    min_amount: f64,
}

impl Mapper for Filter {
    fn init(config: &Config) -> Result<Self, String> {
        config.reject_unknown(&["min_amount"])?;
        Ok(Filter { min_amount: config.get_f64("min_amount", 0.0)? })
    }

    fn output_schema(&self, input: &Schema) -> Result<Schema, String> {
        input.require("amount", DataType::Float64)?;
        Ok(input.clone())
    }

    fn map_batch(&mut self, input: &Batch) -> Result<Output, BatchError> {
        let amount = input.f64s("amount")?;
        let min = self.min_amount;
        let keep: Vec<u32> =
            (0..amount.len()).filter(|&i| amount.get(i).is_some_and(|a| a >= min)).map(|i| i as u32).collect();
        Ok(Output::select(keep).pass_through_all(input))
    }
}

weir_guest::export_mapper!(Filter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_rows_at_or_above_the_threshold_and_drops_nulls() {
        let input = Batch::new(
            4,
            vec![
                Column::new("id", [Some("a"), Some("b"), Some("c"), Some("d")].into_iter().collect::<StrBuilder>()),
                Column::new("amount", [Some(10.0), Some(99.99), None, Some(250.0)].into_iter().collect::<F64Builder>()),
            ],
        )
        .unwrap();
        let mut p = Filter::init(&Config::parse("min_amount=99.99").unwrap()).unwrap();
        let out = p.map_batch(&input).unwrap().to_batch(&input).unwrap();
        assert_eq!(out.strs("id").unwrap().iter().collect::<Vec<_>>(), [Some("b"), Some("d")]);
        let mut all = Filter::init(&Config::default()).unwrap();
        assert_eq!(
            all.map_batch(&input).unwrap().to_batch(&input).unwrap().num_rows(),
            3,
            "default 0 drops only nulls"
        );
    }

    #[test]
    fn needs_a_double_amount() {
        let p = Filter::init(&Config::default()).unwrap();
        let s = Schema::new(vec![Field::new("amount", DataType::Utf8, true)]);
        assert_eq!(
            p.output_schema(&s).unwrap_err(),
            "input column `amount` must be float64 (double), but it is utf8 (string)"
        );
    }
}
