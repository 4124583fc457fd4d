// The plugin's logic under node, without Wasm or a host: node --test
import assert from 'node:assert/strict';
import test from 'node:test';

import * as w from '{{sdk_dir}}/js/weir_guest.js';
import { Plugin } from './app.js';

test('size is big from 100.0 on, small below and for a null amount', () => {
  const input = new w.Batch(4, [
    ['user', w.columnFrom(w.DataType.UTF8, ['ann', 'bob', 'ann', 'cid'])],
    ['amount', w.columnFrom(w.DataType.FLOAT64, [120.0, 40.5, null, 100.0])],
  ]);
  const plugin = new Plugin(new w.Config(''));
  const schema = plugin.outputSchema(input.schema());
  assert.deepEqual(schema.map((f) => f.name), ['user', 'amount', 'size']);
  const out = plugin.mapBatch(input).toWit(input);
  assert.deepEqual(out.columns.slice(0, 2).map((c) => c.data), [{ tag: 'input', val: 0 }, { tag: 'input', val: 1 }]);
  const size = new w.Batch(4, [['size', out.columns[2].data.val]]).strs('size').strings();
  assert.deepEqual(size, ['big', 'small', 'small', 'big']);
});

test('an input without a double amount is refused at start', () => {
  const plugin = new Plugin(new w.Config(''));
  assert.throws(() => plugin.outputSchema(new w.Schema([new w.Field('user', w.DataType.UTF8)])), /input has no column `amount`/);
});
