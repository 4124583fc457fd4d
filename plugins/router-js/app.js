// router, in JavaScript on the JS SDK: a foreachBatch plugin (the `batch-sink` world), the same
// logic as plugins/router (Rust) and plugins/router-py.
//
// For each batch, the rows whose `amount` (double) is non-null and >= threshold (config, default
// 100.0) are emitted, with all their columns, to the output `big`; the others (and null amounts)
// to `small`; then one row to `counts`: `batch_id` (bigint) and `rows` (bigint, the batch's row
// count). `big` and `small` are emitted even when empty. A batch without an `amount` column, or
// with one that is not a double, fails naming the column.
import * as w from '../../guest-sdk/js/weir_guest.js';

export class Router extends w.BatchSink {
  constructor(config) {
    super(config);
    config.rejectUnknown(['threshold']);
    this.threshold = config.getF64('threshold', 100.0);
  }

  writeBatch(batchId, input, out) {
    const amount = input.f64s('amount');
    const { values, validity } = amount;
    const big = [];
    const small = [];
    for (let r = 0; r < input.numRows; r++) {
      if ((validity === undefined || validity[r]) && values[r] >= this.threshold) big.push(r);
      else small.push(r);
    }
    out.emit('big', w.EmitBatch.take(input, big));
    out.emit('small', w.EmitBatch.take(input, small));
    out.emit('counts', new w.EmitBatch().pushI64('batch_id', [batchId]).pushI64('rows', [input.numRows]));
  }
}

export const { init, writeBatch } = w.exportBatchSink(Router);
