// enrich-js natively: node --test plugins/enrich-js (the same expectations as plugins/enrich).
import assert from 'node:assert/strict';
import test from 'node:test';

import * as w from '../../guest-sdk/js/weir_guest.js';
import { init, outputSchema, mapBatch } from './app.js';

const events = () =>
  new w.Batch(5, [
    ['event_id', w.columnFrom('utf8', ['e1', 'e2', 'e3', 'e4', 'e5'])],
    ['user_id', w.columnFrom('utf8', ['alice', 'bob', null, 'carol', 'dave'])],
    ['amount', w.columnFrom('float64', [10.5, 250.0, 99.99, null, 100.0])],
  ]).toWit();

test('enrich adds amount_with_tax, user_bucket and is_large, null where the input is', () => {
  init('');
  const out = new w.Batch(5, []);
  const res = mapBatch(events());
  assert.deepEqual(res.columns.slice(0, 3).map((c) => c.data), [0, 1, 2].map((i) => ({ tag: 'input', val: i })));
  out.columns = res.columns.slice(3).map((c) => ({ name: c.name, data: c.data.val }));
  assert.deepEqual([...out.f64s('amount_with_tax')].map((x) => x && +x.toFixed(6)), [12.6, 300, 119.988, null, 120]);
  assert.deepEqual([...out.i32s('user_bucket')], [7, 4, null, 2, 15]);
  assert.deepEqual([...out.bools('is_large')].map((x) => (x === null ? null : !!x)), [false, true, false, null, true]);
});

test('config and schema are checked with the Rust messages', () => {
  assert.throws(() => init('tax=1'), (e) => e === 'unknown config key `tax` (known keys: tax_rate)');
  assert.throws(() => init('tax_rate=x'), (e) => e === 'config key `tax_rate`: `x` is not a number');
  init('tax_rate=0.5');
  assert.equal(mapBatch(events()).columns[3].data.val.values.val[0], 10.5 * 1.5);
  assert.throws(
    () => outputSchema([{ name: 'user_id', dataType: 'utf8', nullable: true }]),
    (e) => e === 'input has no column `amount` (of type float64 (double)); its columns are: user_id',
  );
  const s = outputSchema([
    { name: 'user_id', dataType: 'utf8', nullable: true },
    { name: 'amount', dataType: 'float64', nullable: true },
  ]);
  assert.deepEqual(s.map((f) => `${f.name}:${f.dataType}`), ['user_id:utf8', 'amount:float64', 'amount_with_tax:float64', 'user_bucket:int32', 'is_large:boolean']);
});
