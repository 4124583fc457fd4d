"""{{name}}: a stateful plugin (the `stateful` world: flatMapGroupsWithState), in Python on the
weir guest SDK.

The job groups rows by its `group_by` columns (here `user`). Per key, the state is the running
(count, total) of its rows (a null `amount` counts, adding 0.0); every key with rows in a batch
outputs one row: the key columns, then `count` (bigint) and `total` (double). Change
`STATE_STRUCT`, `output_schema` and `process_group` to make it yours.
"""
import weir_guest as w

WORLD = "stateful"


class Plugin(w.StatefulProcessor):
    STATE_STRUCT = "<qd"  # the state (count, total), packed with `struct`; kept by the host

    def output_schema(self, key: w.Schema, input: w.Schema) -> w.Schema:
        input.require("amount", w.DataType.FLOAT64)
        return w.Schema([*key, w.Field("count", w.DataType.INT64, False), w.Field("total", w.DataType.FLOAT64, False)])

    def process_group(self, group: w.Group, state: w.GroupState, out: w.GroupOutput) -> None:
        count, total = state.get() if state.exists else (0, 0.0)
        for amount in group.rows.f64s("amount"):
            count += 1
            total += 0.0 if amount is None else amount
        state.update((count, total))
        out.append_keyed(count, total)  # the key columns, then count and total


WitWorld = w.export_stateful(Plugin)
