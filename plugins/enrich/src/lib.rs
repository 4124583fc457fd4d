//! `enrich`: derives new columns from `user_id: string` and `amount: double`.
//!
//! Every input column is passed through unchanged, first, in order; then:
//! - `amount_with_tax: double` = `amount * (1.0 + tax_rate)` (config `tax_rate`, default 0.2),
//! - `user_bucket: int` = FNV-1a 32-bit hash of `user_id`'s UTF-8 bytes, modulo 16,
//! - `is_large: boolean` = `amount >= 100.0`,
//!
//! each null where its input is null. `plugins/enrich-py` is the same logic in Python and must
//! give byte-identical output.

use weir_guest::prelude::*;

/// The plugin's state: the multiplier, computed once as `1.0 + tax_rate`.
struct Enrich {
    factor: f64,
}

/// FNV-1a, 32 bits: offset basis 2166136261, prime 16777619, wrapping arithmetic.
#[inline]
fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 2166136261;
    for &b in bytes {
        h = (h ^ b as u32).wrapping_mul(16777619);
    }
    h
}

impl Mapper for Enrich {
    fn init(config: &Config) -> Result<Self, String> {
        config.reject_unknown(&["tax_rate"])?;
        let tax_rate = config.get_f64("tax_rate", 0.2)?;
        Ok(Enrich { factor: 1.0 + tax_rate })
    }

    fn output_schema(&self, input: &Schema) -> Result<Schema, String> {
        input.require("user_id", DataType::Utf8)?;
        input.require("amount", DataType::Float64)?;
        input
            .try_with(Field::new("amount_with_tax", DataType::Float64, true))?
            .try_with(Field::new("user_bucket", DataType::Int32, true))?
            .try_with(Field::new("is_large", DataType::Boolean, true))
    }

    fn map_batch(&mut self, input: &Batch) -> Result<Output, BatchError> {
        let amount = input.f64s("amount")?;
        let users = input.utf8_bytes("user_id")?; // hashing needs bytes, not a UTF-8 check
        let factor = self.factor;
        // Branch-free loops over the raw lists; nulls come from the inputs' validity.
        let with_tax = amount.map(|a| a * factor);
        let is_large = amount.map(|a| a >= 100.0);
        let buckets: Vec<i32> = (0..users.len()).map(|i| (fnv1a(users.value(i)) % 16) as i32).collect();
        let buckets = I32Builder::from_parts(buckets, users.validity().map(<[bool]>::to_vec));
        Ok(Output::same_rows()
            .pass_through_all(input)
            .column("amount_with_tax", with_tax)
            .column("user_bucket", buckets)
            .column("is_large", is_large))
    }
}

weir_guest::export_mapper!(Enrich);

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Batch {
        Batch::new(
            4,
            vec![
                Column::new(
                    "event_id",
                    [Some("e1"), Some("e2"), Some("e3"), Some("e4")].into_iter().collect::<StrBuilder>(),
                ),
                Column::new(
                    "user_id",
                    [Some("alice"), Some("bob"), None, Some("carol")].into_iter().collect::<StrBuilder>(),
                ),
                Column::new("amount", [Some(10.5), Some(250.0), Some(99.99), None].into_iter().collect::<F64Builder>()),
            ],
        )
        .unwrap()
    }

    #[test]
    fn appends_the_three_columns_with_nulls_where_inputs_are_null() {
        let input = events();
        let mut p = Enrich::init(&Config::parse("").unwrap()).unwrap();
        let out = p.map_batch(&input).unwrap().to_batch(&input).unwrap();
        let names: Vec<&str> = out.columns().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["event_id", "user_id", "amount", "amount_with_tax", "user_bucket", "is_large"]);
        assert_eq!(out.columns()[..3], input.columns()[..3]);
        let tax: Vec<_> = out.f64s("amount_with_tax").unwrap().iter().collect();
        assert_eq!(tax, [Some(10.5 * 1.2), Some(250.0 * 1.2), Some(99.99 * 1.2), None]);
        assert_eq!(tax[2], Some(119.98799999999999));
        assert_eq!(out.i32s("user_bucket").unwrap().iter().collect::<Vec<_>>(), [Some(7), Some(4), None, Some(2)]);
        assert_eq!(
            out.bools("is_large").unwrap().iter().collect::<Vec<_>>(),
            [Some(false), Some(true), Some(false), None]
        );
    }

    #[test]
    fn tax_rate_comes_from_config() {
        let input = events();
        let mut p = Enrich::init(&Config::parse("tax_rate=0.5").unwrap()).unwrap();
        let out = p.map_batch(&input).unwrap().to_batch(&input).unwrap();
        assert_eq!(out.f64s("amount_with_tax").unwrap().get(0), Some(15.75));
        let bad = Enrich::init(&Config::parse("tax_rte=0.5").unwrap()).err().unwrap();
        assert_eq!(bad, "unknown config key `tax_rte` (known keys: tax_rate)");
    }

    #[test]
    fn output_schema_names_missing_or_mistyped_columns() {
        let p = Enrich::init(&Config::default()).unwrap();
        let ok = Schema::new(vec![
            Field::new("user_id", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
        ]);
        assert_eq!(p.output_schema(&ok).unwrap().fields.len(), 5);
        let no_amount = Schema::new(vec![Field::new("user_id", DataType::Utf8, true)]);
        assert!(p.output_schema(&no_amount).unwrap_err().contains("no column `amount`"));
        let wrong = Schema::new(vec![
            Field::new("user_id", DataType::Int64, true),
            Field::new("amount", DataType::Float64, true),
        ]);
        assert_eq!(
            p.output_schema(&wrong).unwrap_err(),
            "input column `user_id` must be utf8 (string), but it is int64 (bigint)"
        );
    }

    #[test]
    fn fnv1a_matches_the_hand_worked_buckets() {
        assert_eq!(fnv1a(b"alice") % 16, 7);
        assert_eq!(fnv1a(b"bob") % 16, 4);
        assert_eq!(fnv1a(b"carol") % 16, 2);
        assert_eq!(fnv1a(b"dave") % 16, 15);
        assert_eq!(fnv1a(b""), 2166136261);
    }
}
