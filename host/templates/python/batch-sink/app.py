"""{{name}}: a foreachBatch plugin (the `batch-sink` world), in Python on the weir guest SDK.

For each micro-batch, the rows whose `amount` is 100.0 or more are emitted, with all their
columns, to the output `big`, the others (and null amounts) to `small`; both are emitted even
when empty. The job declares the outputs (`[[sink.output]]` in job.toml); each holds what was
emitted for a batch exactly once. Change `write_batch` to make it yours.
"""
import weir_guest as w

WORLD = "batch-sink"


class Plugin(w.BatchSink):
    def __init__(self, config: w.Config):
        self.threshold = 100.0

    def write_batch(self, batch_id: int, input: w.Batch, out: w.Emitter) -> None:
        big, small = [], []
        for row, amount in enumerate(input.f64s("amount")):
            (big if amount is not None and amount >= self.threshold else small).append(row)
        out.emit("big", w.EmitBatch.take(input, big))
        out.emit("small", w.EmitBatch.take(input, small))


WitWorld = w.export_batch_sink(Plugin)
