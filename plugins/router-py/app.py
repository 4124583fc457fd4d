"""router, in Python: the same logic as plugins/router (Rust), identical outputs.

A foreachBatch plugin (the `batch-sink` world). For each batch, the rows whose `amount` (double)
is non-null and >= `threshold` (config, default 100.0) are emitted, with all their columns, to
the output `big`; the others (and null amounts) to `small`; then one row to `counts`: `batch_id`
(bigint) and `rows` (bigint, the batch's row count). `big` and `small` are emitted even when
empty. A batch without an `amount` column, or with one that is not a double, fails naming the
column.
"""
import weir_guest as w

WORLD = "batch-sink"


class Router(w.BatchSink):
    def __init__(self, config: w.Config):
        config.reject_unknown(["threshold"])
        self.threshold = config.get_f64("threshold", 100.0)

    def write_batch(self, batch_id: int, input: w.Batch, out: w.Emitter) -> None:
        threshold = self.threshold
        big, small = [], []
        for r, a in enumerate(input.f64s("amount")):
            (big if a is not None and a >= threshold else small).append(r)
        out.emit("big", w.EmitBatch.take(input, big))
        out.emit("small", w.EmitBatch.take(input, small))
        out.emit("counts", w.EmitBatch().push_i64("batch_id", [batch_id]).push_i64("rows", [input.num_rows]))


WitWorld = w.export_batch_sink(Router)
