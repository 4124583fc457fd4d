// {{name}}: a foreachBatch plugin (the `batch-sink` world), in JavaScript on the weir JS SDK.
//
// Each micro-batch arrives whole; the rows with `amount` >= 100.0 are emitted, all their
// columns, to the output `big`, the others (and null amounts) to `small` (both emitted even when
// empty). The job file declares the outputs ([[sink.output]]). Change writeBatch to make it
// yours; the guide is docs/plugins-js.md in the weir repository.
import * as w from '{{sdk_dir}}/js/weir_guest.js';

export class Plugin extends w.BatchSink {
  writeBatch(batchId, input, out) {
    const amount = input.f64s('amount');
    const big = [];
    const small = [];
    for (let r = 0; r < input.numRows; r++) {
      const a = amount.get(r);
      (a !== null && a >= 100.0 ? big : small).push(r);
    }
    out.emit('big', w.EmitBatch.take(input, big));
    out.emit('small', w.EmitBatch.take(input, small));
  }
}

export const { init, writeBatch } = w.exportBatchSink(Plugin);
