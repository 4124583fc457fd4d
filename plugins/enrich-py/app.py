"""enrich, in Python: the same logic as plugins/enrich (Rust), byte-identical output.

Passes every input column through, then appends amount_with_tax = amount * (1.0 + tax_rate)
(config `tax_rate`, default 0.2), user_bucket = FNV-1a 32-bit of user_id's UTF-8 bytes % 16,
and is_large = amount >= 100.0; each null where its input is null.
"""
import weir_guest as w


def fnv1a(data: bytes) -> int:
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


class Enrich(w.Mapper):
    def __init__(self, config: w.Config):
        config.reject_unknown(["tax_rate"])
        self.factor = 1.0 + config.get_f64("tax_rate", 0.2)  # the same two float operations as Rust

    def output_schema(self, input: w.Schema) -> w.Schema:
        input.require("user_id", w.DataType.UTF8)
        input.require("amount", w.DataType.FLOAT64)
        return (input.try_with(w.Field("amount_with_tax", w.DataType.FLOAT64, True))
                .try_with(w.Field("user_bucket", w.DataType.INT32, True))
                .try_with(w.Field("is_large", w.DataType.BOOLEAN, True)))

    def map_batch(self, input: w.Batch) -> w.Output:
        amount = input.f64s("amount")
        users = input.utf8_bytes("user_id")  # hashing needs bytes, not text
        factor = self.factor
        return (w.Output.same_rows()
                .pass_through_all(input)
                .column("amount_with_tax", amount.map(lambda a: a * factor))
                .push_i32("user_bucket", (None if u is None else fnv1a(u) % 16 for u in users.iter_bytes()))
                .column("is_large", amount.map(lambda a: a >= 100.0, to=w.DataType.BOOLEAN)))


WitWorld = w.export(Enrich)
