"""{{name}}: a map plugin (the `mapper` world), in Python on the weir guest SDK.

Every input column is passed through (its data stays on the host), then a column `size`
(string, not null): "big" when `amount` is 100.0 or more, else "small" (a null `amount` is
"small"). Change `output_schema` and `map_batch` to make it yours.
"""
import weir_guest as w

WORLD = "mapper"


class Plugin(w.Mapper):
    def __init__(self, config: w.Config):
        # The job's `config` string, parsed as `key=value` pairs (`config.get_f64("key", 1.0)`).
        self.threshold = 100.0

    def output_schema(self, input: w.Schema) -> w.Schema:
        input.require("amount", w.DataType.FLOAT64)
        return input.try_with(w.Field("size", w.DataType.UTF8, False))

    def map_batch(self, input: w.Batch) -> w.Output:
        threshold = self.threshold
        sizes = ["big" if a is not None and a >= threshold else "small" for a in input.f64s("amount")]
        return w.Output.same_rows().pass_through_all(input).push_str("size", sizes)


WitWorld = w.export(Plugin)  # what the component exports (componentize-py looks for WitWorld)
