// sessionize-js natively: node --test plugins/sessionize-js (the cases of plugins/sessionize's
// Rust tests).
import assert from 'node:assert/strict';
import test from 'node:test';

import * as w from '../../guest-sdk/js/weir_guest.js';
import { init, outputSchema, processGroups } from './app.js';

const MIN = 60_000_000n;
const STATE = new w.Struct('<qqqd');
const session = (start, last, events, total) => [start, last, events, total];

const KEY = [{ name: 'user_id', dataType: 'utf8', nullable: true }];
const INPUT = [...KEY, { name: 'event_time', dataType: 'timestamp', nullable: true }, { name: 'amount', dataType: 'float64', nullable: true }];

/** One call: groups of [user, stored session or undefined, timed out, rows of [event_time, amount]]. */
function call(config, groups) {
  init(config);
  outputSchema(KEY, INPUT);
  const users = [], times = [], amounts = [], offsets = [0];
  for (const [user, , , rows] of groups) {
    for (const [t, a] of rows) {
      users.push(user);
      times.push(t);
      amounts.push(a);
    }
    offsets.push(users.length);
  }
  return processGroups({ batchId: 0n, watermark: undefined, processingTime: 0n }, {
    keys: new w.Batch(groups.length, [['user_id', w.columnFrom('utf8', groups.map((g) => g[0]))]]).toWit(),
    rows: new w.Batch(users.length, [
      ['user_id', w.columnFrom('utf8', users)],
      ['event_time', w.columnFrom('timestamp', times)],
      ['amount', w.columnFrom('float64', amounts)],
    ]).toWit(),
    rowOffsets: Uint32Array.from(offsets),
    states: groups.map((g) => (g[1] === undefined ? undefined : STATE.pack(g[1]))),
    timedOut: groups.map((g) => g[2]),
    expiredTimers: groups.map(() => []),
  });
}

function sessions(res) {
  const b = new w.Batch(res.output);
  const [u, s, e, n, t] = [b.strs('user_id').strings(), b.timestamps('session_start').values, b.timestamps('session_end').values, b.i64s('events').values, b.f64s('total').values];
  return u.map((user, i) => [user, s[i], e[i], n[i], t[i]]);
}

const stored = (res, g) => (res.results[g].state.tag === 'update' ? STATE.unpack(res.results[g].state.val) : undefined);

test('events within the gap form one open session with an event-time timeout', () => {
  const res = call('gap_minutes=10', [['a', undefined, false, [[5n * MIN, 1.5], [0n, null], [12n * MIN, 2.0]]]]);
  assert.deepEqual(sessions(res), []);
  assert.deepEqual(stored(res, 0), session(0n, 12n * MIN, 3n, 0.0 + 1.5 + 2.0));
  assert.deepEqual(res.results[0].timeout, { tag: 'event-time', val: 22n * MIN });
});

test('a gap longer than gap_minutes closes the session and opens another', () => {
  const open = session(0n, 10n * MIN, 2n, 3.0);
  // 20 min is exactly last + gap: still the same session; 31 min is past 30.
  const res = call('gap_minutes=10', [['a', open, false, [[31n * MIN, 4.0], [20n * MIN, 1.0]]]]);
  assert.deepEqual(sessions(res), [['a', 0n, 30n * MIN, 3n, 4.0]]);
  assert.deepEqual(stored(res, 0), session(31n * MIN, 31n * MIN, 1n, 4.0));
  assert.deepEqual(res.results[0].timeout, { tag: 'event-time', val: 41n * MIN });
});

test('a late event within the gap moves the start back', () => {
  const res = call('gap_minutes=10', [['a', session(20n * MIN, 25n * MIN, 2n, 3.0), false, [[12n * MIN, 1.0]]]]);
  assert.deepEqual(stored(res, 0), session(12n * MIN, 25n * MIN, 3n, 4.0));
});

test('a timeout emits the open session and removes the state', () => {
  const res = call('', [['a', session(0n, 10n * MIN, 2n, 3.0), true, []], ['b', undefined, false, [[0n, 1.0]]]]);
  assert.deepEqual(sessions(res), [['a', 0n, 40n * MIN, 2n, 3.0]]);
  assert.equal(res.results[0].state.tag, 'remove');
  assert.equal(res.results[0].timeout.tag, 'clear');
  assert.deepEqual(res.results[1].timeout, { tag: 'event-time', val: 30n * MIN }, 'default gap 30 minutes');
});

test('ties keep arrival order so sums are reproducible', () => {
  const res = call('', [['a', undefined, false, [[MIN, 0.1], [0n, 1e16], [MIN, -1e16], [MIN, 0.2]]]]);
  assert.equal(stored(res, 0)[3], ((1e16 + 0.1) + -1e16) + 0.2);
});

test('a null event time names its row in the call', () => {
  assert.throws(
    () => call('', [['a', undefined, false, [[0n, null]]], ['b', undefined, false, [[1n, null], [null, 1.0]]]]),
    (e) => e.row === 2 && e.message.includes('`event_time` is null'),
  );
});

test('config and schema are checked', () => {
  assert.throws(() => init('gap=3'), (e) => e === 'unknown config key `gap` (known keys: gap_minutes)');
  assert.throws(() => init('gap_minutes=-1'), (e) => e === 'config key `gap_minutes` must be 0 or more, not -1');
  init('');
  const out = outputSchema(KEY, INPUT);
  assert.deepEqual(out.map((f) => f.name), ['user_id', 'session_start', 'session_end', 'events', 'total']);
  assert.ok(out.slice(1).every((f) => !f.nullable));
  assert.throws(() => outputSchema(KEY, [INPUT[1]]), (e) => e.includes('`amount`'));
});
