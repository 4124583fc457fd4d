// The plugin's logic under node, without Wasm or a host: node --test
import assert from 'node:assert/strict';
import test from 'node:test';

import * as w from '{{sdk_dir}}/js/weir_guest.js';
import { Plugin } from './app.js';

test('rows from 100.0 on go to big, the others and null amounts to small', () => {
  const input = new w.Batch(4, [
    ['user', w.columnFrom(w.DataType.UTF8, ['ann', 'bob', 'ann', 'cid'])],
    ['amount', w.columnFrom(w.DataType.FLOAT64, [120.0, 40.5, null, 100.0])],
  ]);
  const emitted = w.writeBatchWith(new Plugin(new w.Config('')), 0, input);
  assert.deepEqual(emitted.map((e) => e.output), ['big', 'small']);
  assert.deepEqual(emitted[0].batch.strs('user').strings(), ['ann', 'cid']);
  assert.deepEqual([...emitted[1].batch.f64s('amount')], [40.5, null]);
});

test('both outputs are emitted even when one gets no rows', () => {
  const input = new w.Batch(1, [['amount', w.columnFrom(w.DataType.FLOAT64, [1.0])]]);
  const emitted = w.writeBatchWith(new Plugin(new w.Config('')), 1, input);
  assert.deepEqual(emitted.map((e) => [e.output, e.batch.numRows]), [['big', 0], ['small', 1]]);
});
