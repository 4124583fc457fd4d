// The JS SDK natively (node --test guest-sdk/js/test): config, schemas, views, outputs, states.
import assert from 'node:assert/strict';
import test from 'node:test';

import * as w from '../weir_guest.js';

const { FLOAT64, INT64, UTF8, BOOLEAN, TIMESTAMP } = w.DataType;
const pluginError = (message) => (e) => e instanceof w.PluginError && e.message === message;
const batchError = (message, row) => (e) => e instanceof w.BatchError && e.message === message && e.row === row;

test('config pairs split on commas and newlines and are trimmed like Rust', () => {
  const c = new w.Config(' tax_rate = 0.25 ,region=eu\n\n  limit=3 ,');
  assert.equal(c.get('tax_rate'), '0.25');
  assert.equal(c.get('region'), 'eu');
  assert.equal(c.getI64('limit', 0n), 3n);
  assert.equal(c.pairs.length, 3);
  assert.equal(new w.Config('expr=a=b').get('expr'), 'a=b');
  // U+FEFF is not White_Space for Rust's trim, U+0085 is.
  assert.equal(new w.Config('k=\ufeffv').get('k'), '\ufeffv');
  assert.equal(new w.Config('k=v\u0085').get('k'), 'v');
  const d = new w.Config('');
  assert.equal(d.getF64('tax_rate', 0.2), 0.2);
  assert.equal(d.getBool('x', true), true);
  assert.equal(d.getStr('mode', 'fast'), 'fast');
});

test('bad config entries and values are named with the Rust SDK messages', () => {
  assert.throws(() => new w.Config('a=1,oops'), pluginError('config entry `oops` is not `key=value`'));
  assert.throws(() => new w.Config('=1'), pluginError('config entry `=1` has an empty key'));
  assert.throws(() => new w.Config('a=1,a=2'), pluginError('config key `a` is given twice'));
  const c = new w.Config('tax_rate=abc,flag=yes,n=1.5,big=2147483648,x=1_0');
  assert.throws(() => c.getF64('tax_rate', 0.2), pluginError('config key `tax_rate`: `abc` is not a number'));
  assert.throws(() => c.getBool('flag', false), pluginError('config key `flag`: `yes` is not `true` or `false`'));
  assert.throws(() => c.require('other'), pluginError('config key `other` is required'));
  assert.throws(() => c.getI64('n', 0n), pluginError('config key `n`: `1.5` is not an integer'));
  assert.throws(() => c.getI32('big', 0), pluginError('config key `big`: `2147483648` is not a 32-bit integer'));
  assert.throws(() => c.getF64('x', 0), pluginError('config key `x`: `1_0` is not a number'));
  assert.equal(new w.Config('a=-Inf,b=1e3,c=.5').getF64('a', 0), -Infinity);
  assert.equal(new w.Config('b=1e3').getF64('b', 0), 1000);
  assert.equal(new w.Config('b=9223372036854775807').getI64('b', 0n), 9223372036854775807n);
  assert.throws(() => new w.Config('tax_rte=0.3').rejectUnknown(['tax_rate']), pluginError('unknown config key `tax_rte` (known keys: tax_rate)'));
});

test('schemas require columns by name and type and refuse duplicates', () => {
  const s = new w.Schema([{ name: 'user_id', dataType: UTF8, nullable: true }, new w.Field('amount', FLOAT64)]);
  assert.equal(s.require('amount', FLOAT64).name, 'amount');
  assert.equal(s.indexOf('amount'), 1);
  assert.throws(() => s.require('x', FLOAT64), pluginError('input has no column `x` (of type float64 (double)); its columns are: user_id, amount'));
  assert.throws(() => s.require('user_id', INT64), pluginError('input column `user_id` must be int64 (bigint), but it is utf8 (string)'));
  assert.throws(() => s.tryWith(new w.Field('amount', FLOAT64)), pluginError('cannot add column `amount`: the input already has a column of that name'));
  const t = s.tryWith(new w.Field('flag', BOOLEAN, false));
  assert.deepEqual(t.toWit().map((f) => [f.name, f.dataType, f.nullable]), [['user_id', 'utf8', true], ['amount', 'float64', true], ['flag', 'boolean', false]]);
  assert.equal(s.length, 2, 'tryWith copies');
});

function sample() {
  return new w.Batch(4, [
    ['user', w.columnFrom(UTF8, ['alice', null, 'bö', 'carol'])],
    ['amount', w.columnFrom(FLOAT64, [10.5, 250, null, 100])],
    ['at', w.columnFrom(TIMESTAMP, [1n, 2n, 3n, 4n])],
  ]);
}

test('views give typed arrays, nulls and errors naming the column', () => {
  const b = sample();
  const a = b.f64s('amount');
  assert.ok(a.values instanceof Float64Array);
  assert.deepEqual([...a], [10.5, 250, null, 100]);
  assert.equal(a.nullCount(), 1);
  assert.deepEqual(b.strs('user').strings(), ['alice', null, 'bö', 'carol']);
  assert.deepEqual([...b.utf8Bytes('user').value(2)], [0x62, 0xc3, 0xb6]);
  assert.deepEqual([...b.timestamps('at')], [1n, 2n, 3n, 4n]);
  assert.throws(() => b.f64s('user'), batchError('column `user` is utf8 (string), not float64 (double)', undefined));
  assert.throws(() => b.column('x'), batchError('input has no column `x`; its columns are: user, amount, at', undefined));
  const big = a.map((x) => x >= 100, BOOLEAN);
  assert.deepEqual([...big.values.val], [0, 1, 0, 1]);
  assert.equal(big.validity, a.validity);
});

test('an output passes columns through by index and checks lengths and names', () => {
  const b = sample();
  const out = w.Output.sameRows().passThroughAll(b).pushI64('n', [1, 2, null, 4]).toWit(b);
  assert.equal(out.numRows, 4);
  assert.deepEqual(out.columns.slice(0, 3).map((c) => c.data), [0, 1, 2].map((i) => ({ tag: 'input', val: i })));
  assert.deepEqual([...out.columns[3].data.val.values.val], [1n, 2n, 0n, 4n]);
  assert.deepEqual(out.columns[3].data.val.validity, [true, true, false, true]);
  assert.throws(() => w.Output.sameRows().pushF64('x', [1]).toWit(b), batchError('output column `x` has 1 values for 4 rows (one value per output row is needed)', undefined));
  assert.throws(() => w.Output.select([0, 4]).toWit(b), batchError('Output.select: row 4 is out of range (the input has 4 rows)', undefined));
  assert.throws(() => w.Output.sameRows().passThrough('nope').toWit(b), /passThrough\("nope"\): the input has no such column/);
  assert.throws(() => w.Output.sameRows().passThrough('user').passThrough('user').toWit(b), batchError('output column `user` is given twice', undefined));
  const sel = w.Output.select([3, 0]).passThrough('amount').toWit(b);
  assert.deepEqual([...sel.rows], [3, 0]);
});

test('the mapper export turns errors into the WIT errors and other exceptions into traps', () => {
  class M extends w.Mapper {
    constructor(config) {
      super(config);
      config.rejectUnknown(['mode']);
      this.mode = config.getStr('mode', 'ok');
    }
    outputSchema(input) {
      return input.tryWith(new w.Field('twice', FLOAT64));
    }
    mapBatch(input) {
      if (this.mode === 'row') throw new w.BatchError('bad row', 2);
      if (this.mode === 'bug') null.x;
      const a = input.f64s('amount');
      return w.Output.sameRows().passThroughAll(input).column('twice', a.map((x) => 2 * x));
    }
  }
  const e = w.exportMapper(M);
  assert.throws(() => e.init('oops=1'), (x) => x === 'unknown config key `oops` (known keys: mode)');
  e.init('');
  assert.deepEqual(e.outputSchema([{ name: 'amount', dataType: FLOAT64, nullable: true }]).map((f) => f.name), ['amount', 'twice']);
  const out = e.mapBatch(sample().toWit());
  assert.deepEqual([...out.columns[3].data.val.values.val].slice(0, 2), [21, 500]);
  e.init('mode=row');
  assert.throws(() => e.mapBatch(sample().toWit()), (x) => x.message === 'bad row' && x.row === 2);
  e.init('mode=bug');
  assert.throws(() => e.mapBatch(sample().toWit()), TypeError);
});

test('Struct packs like Python struct with < (little-endian, no padding)', () => {
  const s = new w.Struct('<qqqd');
  const bytes = s.pack([1n, -2n, 3n, 0.5]);
  assert.equal(bytes.length, 32);
  // python3 -c 'import struct; print(struct.pack("<qqqd", 1, -2, 3, 0.5).hex())'
  assert.equal(Buffer.from(bytes).toString('hex'), '0100000000000000feffffffffffffff0300000000000000000000000000e03f');
  assert.deepEqual(s.unpack(bytes), [1n, -2n, 3n, 0.5]);
  assert.equal(new w.Struct('<2i?').size, 9);
  assert.throws(() => new w.Struct('qq'), /start it with `<`/);
  assert.throws(() => s.unpack(new Uint8Array(3)), /a stored state of 3 bytes, expected 32/);
});

// A stateful call as the host makes it: keys, rows group after group, offsets, states.
function groups(list) {
  const keys = w.columnFrom(UTF8, list.map((g) => g.key));
  const amounts = [];
  const offsets = [0];
  for (const g of list) {
    amounts.push(...g.rows);
    offsets.push(amounts.length);
  }
  return {
    keys: { numRows: list.length, columns: [{ name: 'k', data: keys }] },
    rows: new w.Batch(amounts.length, [['amount', w.columnFrom(FLOAT64, amounts)]]).toWit(),
    rowOffsets: Uint32Array.from(offsets),
    states: list.map((g) => g.state),
    timedOut: list.map((g) => !!g.timedOut),
    expiredTimers: list.map((g) => g.timers ?? []),
  };
}

test('the stateful export keeps, updates and removes states and resets timeouts like Spark', () => {
  class Count extends w.StatefulProcessor {
    static STATE_STRUCT = '<qd';
    outputSchema(key, input) {
      return new w.Schema([...key, new w.Field('n', INT64, false), new w.Field('total', FLOAT64, false)]);
    }
    processGroup(group, state, out) {
      if (group.key[0] === 'keep') return;
      if (group.key[0].endsWith('drop')) return state.remove();
      let [n, total] = state.exists ? state.get() : [0n, 0.0];
      for (const a of group.rows.f64s('amount')) {
        n += 1n;
        total += a ?? 0;
      }
      state.update([n, total]);
      state.setTimeoutDuration(1000);
      state.registerTimer(w.eventTimeTimer(5));
      out.appendKeyed(n, total);
    }
  }
  const e = w.exportStateful(Count);
  e.init('');
  e.outputSchema([{ name: 'k', dataType: UTF8, nullable: true }], [{ name: 'amount', dataType: FLOAT64, nullable: true }]);
  const stored = new w.Struct('<qd').pack([2n, 1.5]);
  const time = { batchId: 3n, watermark: undefined, processingTime: 0n };
  const res = e.processGroups(time, groups([
    { key: 'a', rows: [1, null, 2], state: stored },
    { key: 'keep', rows: [], state: stored },
    { key: 'drop', rows: [5], state: stored },
    { key: 'new-drop', rows: [5], state: undefined },
  ]));
  assert.deepEqual(new w.Struct('<qd').unpack(res.results[0].state.val), [5n, 4.5]);
  assert.deepEqual(res.results[0].timeout, { tag: 'processing-time-ms', val: 1000n });
  assert.deepEqual(res.results[0].registerTimers, [{ domain: 'event-time', at: 5n }]);
  assert.deepEqual(res.results.slice(1).map((r) => [r.state.tag, r.timeout.tag]), [['keep', 'clear'], ['remove', 'clear'], ['keep', 'clear']]);
  const out = new w.Batch(res.output);
  assert.deepEqual(out.strs('k').strings(), ['a']);
  assert.deepEqual([...out.i64s('n').values], [5n]);
  assert.equal(e.stateVersion(), 1);
  assert.throws(() => e.migrateState(0, new Uint8Array()), (x) => x === 'this plugin writes state version 1 and cannot read version 0 (it implements no migrateState)');
});

test('states without a struct are JSON with exact BigInts', () => {
  const [enc, dec] = w.stateCodec(new w.StatefulProcessor(new w.Config('')));
  const v = { seen: [1, 'x'], big: 9007199254740993n };
  assert.deepEqual(dec(enc(v)), v);
});

test('a batch sink emits taken rows and built columns; a recording emitter refuses undeclared outputs', () => {
  class Split extends w.BatchSink {
    writeBatch(batchId, input, out) {
      const a = input.f64s('amount');
      const rows = [];
      for (let r = 0; r < input.numRows; r++) if (!a.isNull(r) && a.values[r] > 50) rows.push(r);
      out.emit('big', w.EmitBatch.take(input, rows));
      out.emit('counts', new w.EmitBatch().pushI64('batch_id', [batchId]).pushStr('note', ['hi']));
    }
  }
  const emitted = w.writeBatchWith(new Split(new w.Config('')), 7, sample());
  assert.deepEqual(emitted.map((e) => e.output), ['big', 'counts']);
  assert.deepEqual(emitted[0].batch.strs('user').strings(), [null, 'carol']);
  assert.equal(emitted[0].batch.f64s('amount').validity, undefined, 'no nulls left: no validity');
  assert.deepEqual([...emitted[1].batch.i64s('batch_id').values], [7n]);
  const out = w.Emitter.declaring(['big']);
  assert.throws(() => w.writeBatchWith(new Split(new w.Config('')), 0, sample(), out), batchError('emit to "counts": the job declares no such output (declared: "big"); add a [[sink.output]] with name = "counts"', undefined));
  assert.throws(() => w.Emitter.recording().emit('x', new w.EmitBatch().pushI64('a', [1]).pushI64('b', [1, 2])), batchError('emit to "x": column `b` has 2 values, column `a` has 1', undefined));
  assert.throws(() => w.Emitter.recording().emit('x', w.EmitBatch.take(sample(), [9])), batchError('emit to "x": EmitBatch.take: row 9 is out of range (the input has 4 rows)', undefined));
  // The export sends emits to the host's outputs and turns a refusal into the call's error.
  const sent = [];
  globalThis.__weirOutputs = { emit: (name, b) => { if (name === 'counts') throw 'no such output'; sent.push([name, b.numRows]); } };
  try {
    const e = w.exportBatchSink(Split);
    e.init('');
    assert.throws(() => e.writeBatch(1n, sample().toWit()), (x) => x === 'no such output');
    assert.deepEqual(sent, [['big', 2]]);
  } finally {
    delete globalThis.__weirOutputs;
  }
});
