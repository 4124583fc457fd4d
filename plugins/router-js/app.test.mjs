// router-js natively: node --test plugins/router-js (the same expectations as plugins/router).
import assert from 'node:assert/strict';
import test from 'node:test';

import * as w from '../../guest-sdk/js/weir_guest.js';
import { Router } from './app.js';

const batch = (ids, amounts) =>
  new w.Batch(ids.length, [['id', w.columnFrom('utf8', ids)], ['amount', w.columnFrom('float64', amounts)]]);

test('rows are routed by amount and counted', () => {
  const r = new Router(new w.Config(''));
  const emitted = w.writeBatchWith(r, 4, batch(['a1', 'a2', 'a3', 'a4'], [50.0, 150.0, null, 100.0]));
  assert.deepEqual(emitted.map((e) => e.output), ['big', 'small', 'counts']);
  assert.deepEqual(emitted[0].batch.strs('id').strings(), ['a2', 'a4']);
  assert.deepEqual(emitted[1].batch.strs('id').strings(), ['a1', 'a3']);
  assert.deepEqual([...emitted[1].batch.f64s('amount')], [50.0, null]);
  const counts = emitted[2].batch;
  assert.deepEqual(counts.columns.map((c) => c.name), ['batch_id', 'rows']);
  assert.deepEqual([...counts.i64s('batch_id').values, ...counts.i64s('rows').values], [4n, 4n]);
});

test('big and small are emitted even when empty; the threshold comes from the config', () => {
  const r = new Router(new w.Config('threshold=10'));
  const emitted = w.writeBatchWith(r, 0, batch(['x'], [20.0]));
  assert.deepEqual(emitted.map((e) => [e.output, e.batch.numRows]), [['big', 1], ['small', 0], ['counts', 1]]);
  assert.throws(() => new Router(new w.Config('threshold=lots')), /config key `threshold`: `lots` is not a number/);
  assert.throws(() => new Router(new w.Config('limit=1')), /unknown config key `limit` \(known keys: threshold\)/);
});

test('a batch without a double amount fails naming the column', () => {
  const r = new Router(new w.Config(''));
  assert.throws(() => w.writeBatchWith(r, 0, new w.Batch(1, [['id', w.columnFrom('utf8', ['a'])]])), /input has no column `amount`/);
  const text = new w.Batch(1, [['amount', w.columnFrom('utf8', ['1'])]]);
  assert.throws(() => w.writeBatchWith(r, 0, text), /column `amount` is utf8 \(string\), not float64 \(double\)/);
});
