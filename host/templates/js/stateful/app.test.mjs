// The plugin's logic under node, without Wasm or a host: node --test
import assert from 'node:assert/strict';
import test from 'node:test';

import * as w from '{{sdk_dir}}/js/weir_guest.js';
import { init, outputSchema, processGroups } from './app.js';

test('each key outputs its running count and total', () => {
  // Two keys: ann with 2 rows (one amount null), bob with 1 row and a stored state.
  const state = new w.Struct('<qd');
  init('');
  outputSchema([{ name: 'user', dataType: 'utf8', nullable: true }], [{ name: 'amount', dataType: 'float64', nullable: true }]);
  const res = processGroups({ batchId: 0n, watermark: undefined, processingTime: 0n }, {
    keys: new w.Batch(2, [['user', w.columnFrom(w.DataType.UTF8, ['ann', 'bob'])]]).toWit(),
    rows: new w.Batch(3, [['amount', w.columnFrom(w.DataType.FLOAT64, [120.0, null, 40.5])]]).toWit(),
    rowOffsets: Uint32Array.from([0, 2, 3]),
    states: [undefined, state.pack([1n, 100.0])],
    timedOut: [false, false],
    expiredTimers: [[], []],
  });
  const out = new w.Batch(res.output);
  assert.deepEqual(out.strs('user').strings(), ['ann', 'bob']);
  assert.deepEqual([...out.i64s('count').values], [2n, 2n]);
  assert.deepEqual([...out.f64s('total').values], [120.0, 140.5]);
  assert.deepEqual(state.unpack(res.results[1].state.val), [2n, 140.5]);
});
