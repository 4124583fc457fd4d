//! `{{name}}`: a stateful plugin (the `stateful` world: flatMapGroupsWithState).
//!
//! The job groups rows by its `group_by` columns (here `user`). Per key, the state is the
//! running (count, total) of its rows (a null `amount` counts, adding 0.0); every key with rows
//! in a batch outputs one row: the key columns, then `count` (bigint) and `total` (double).
//! Change `State`, `output_schema` and `process_group` to make it yours.

use weir_guest::prelude::*;

struct Plugin;

impl StatefulProcessor for Plugin {
    /// (count, total): kept per key by the host between batches (as postcard bytes).
    type State = (i64, f64);

    fn init(_config: &Config) -> Result<Self, String> {
        Ok(Plugin)
    }

    fn output_schema(&self, key: &Schema, input: &Schema) -> Result<Schema, String> {
        input.require("amount", DataType::Float64)?;
        Ok(key
            .clone()
            .with(Field::new("count", DataType::Int64, false))
            .with(Field::new("total", DataType::Float64, false)))
    }

    fn process_group(
        &mut self,
        group: &Group<'_>,
        state: &mut GroupState<(i64, f64)>,
        out: &mut OutputRows,
    ) -> Result<(), BatchError> {
        let (mut count, mut total) = state.get().copied().unwrap_or((0, 0.0));
        for amount in group.rows().f64s("amount")?.iter() {
            count += 1;
            total += amount.unwrap_or(0.0);
        }
        state.update((count, total));
        out.row().keys(group).i64(count).f64(total);
        Ok(())
    }
}

weir_guest::export_stateful!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_outputs_its_running_count_and_total() {
        // Two keys: ann with 2 rows (one amount null), bob with 1 row and a stored state.
        let keys = Batch::new(2, vec![Column::new("user", [Some("ann"), Some("bob")].into_iter().collect::<StrBuilder>())])
            .unwrap();
        let rows =
            Batch::new(3, vec![Column::new("amount", [Some(120.0), None, Some(40.5)].into_iter().collect::<F64Builder>())])
                .unwrap();
        let mut groups = Groups::new(keys, rows, vec![0, 2, 3]);
        groups.states[1] = Some(encode_state(&(1i64, 100.0f64)).unwrap());

        let mut plugin = Plugin::init(&Config::default()).unwrap();
        let key = Schema::new(vec![Field::new("user", DataType::Utf8, true)]);
        let input = Schema::new(vec![Field::new("amount", DataType::Float64, true)]);
        let schema = plugin.output_schema(&key, &input).unwrap();
        let out = process_groups(&mut plugin, &schema, &BatchTime::default(), &groups).unwrap();

        assert_eq!(out.output.strs("user").unwrap().iter().collect::<Vec<_>>(), [Some("ann"), Some("bob")]);
        assert_eq!(out.output.i64s("count").unwrap().values(), &[2, 2]);
        assert_eq!(out.output.f64s("total").unwrap().values(), &[120.0, 140.5]);
        assert_eq!(out.results[1].state, StateUpdate::Update(encode_state(&(2i64, 140.5f64)).unwrap()));
    }
}
