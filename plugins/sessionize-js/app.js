// sessionize, in JavaScript on the JS SDK: the same logic as plugins/sessionize (Rust) and
// plugins/sessionize-py, byte-identical output.
//
// A stateful plugin (flatMapGroupsWithState with an event-time timeout): per key, events closer
// than `gap_minutes` (config, default 30) form a session; a session is written once it closes, as
// the key columns, then session_start, session_end (last event + gap), events (int64) and total
// (float64, the sum of `amount`, a null amount counting as 0.0).
//
// State per key: the open session [start, last, events, total], packed as struct "<qqqd" (start
// and last in microseconds; the same bytes as sessionize-py's). Per group:
// - timed out (no rows): write the open session and remove the state (called without rows for
//   another reason: set the timeout again);
// - otherwise, the group's rows ordered by event_time (a stable sort: ties keep arrival order); a
//   null event_time fails the batch naming that row. For each event t: when a session is open and
//   t > last + gap, write it and open {t, t, 1, amount}; when one is open, extend it (start = min,
//   last = max, events + 1, total + amount); else open {t, t, 1, amount}. Then store the session
//   and set the event-time timeout to last + gap (session_end and the timeout saturate at the
//   largest timestamp, as Rust's saturating_add does).
import * as w from '../../guest-sdk/js/weir_guest.js';

export const WORLD = 'stateful';

const US_PER_MINUTE = 60_000_000n;
const I64_MAX = (1n << 63n) - 1n;
const { TIMESTAMP, INT64, FLOAT64 } = w.DataType;
const end = (last, gap) => (last + gap > I64_MAX ? I64_MAX : last + gap);

class Sessionize extends w.StatefulProcessor {
  static STATE_STRUCT = '<qqqd'; // start µs, last µs, events, total

  constructor(config) {
    super(config);
    config.rejectUnknown(['gap_minutes']);
    const minutes = config.getI64('gap_minutes', 30n);
    if (minutes < 0n) throw new w.PluginError(`config key \`gap_minutes\` must be 0 or more, not ${minutes}`);
    if (minutes * US_PER_MINUTE > I64_MAX) throw new w.PluginError(`config key \`gap_minutes\`: ${minutes} is too large`);
    this.gap = minutes * US_PER_MINUTE;
  }

  outputSchema(key, input) {
    input.require('event_time', TIMESTAMP);
    input.require('amount', FLOAT64);
    let out = new w.Schema(key);
    for (const [name, dt] of [['session_start', TIMESTAMP], ['session_end', TIMESTAMP], ['events', INT64], ['total', FLOAT64]]) {
      try {
        out = out.tryWith(new w.Field(name, dt, false));
      } catch (e) {
        if (e instanceof w.PluginError) throw new w.PluginError(`${e.message} (a key column has that name)`);
        throw e;
      }
    }
    return out;
  }

  processGroup(group, state, out) {
    const gap = this.gap;
    const rows = group.rows;
    if (rows.length === 0) {
      if (state.hasTimedOut) {
        // The watermark passed the session's end: it can get no more events.
        if (state.exists) {
          const [start, last, events, total] = state.get();
          out.appendKeyed(start, end(last, gap), events, total);
        }
        state.remove();
      } else if (state.exists) {
        // Called without rows for another reason: the timeout must be set again.
        state.setTimeoutTimestamp(end(state.get()[1], gap));
      }
      return;
    }
    const times = rows.timestamps('event_time');
    const amounts = rows.f64s('amount');
    const ts = times.values;
    const n = ts.length;
    if (times.validity !== undefined) {
      for (let i = 0; i < n; i++) if (!times.validity[i]) throw rows.errorAt(i, '`event_time` is null: a session event needs a time');
    }
    const am = amounts.values;
    const av = amounts.validity;
    const order = new Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    // Array.prototype.sort is stable: rows with equal event times keep their arrival order.
    if (n > 1) order.sort((i, j) => (ts[i] < ts[j] ? -1 : ts[i] > ts[j] ? 1 : 0));

    let start = 0n, last = 0n, events = 0n, total = 0.0, open = false;
    if (state.exists) {
      [start, last, events, total] = state.get();
      open = true;
    }
    for (let k = 0; k < n; k++) {
      const i = order[k];
      const t = ts[i];
      const a = av !== undefined && !av[i] ? 0.0 : am[i];
      if (open && t > last + gap) {
        out.appendKeyed(start, end(last, gap), events, total);
        [start, last, events, total] = [t, t, 1n, a];
      } else if (open) {
        if (t < start) start = t;
        if (t > last) last = t;
        events += 1n;
        total += a;
      } else {
        [start, last, events, total] = [t, t, 1n, a];
        open = true;
      }
    }
    state.update([start, last, events, total]);
    state.setTimeoutTimestamp(end(last, gap));
  }
}

export const { init, outputSchema, stateVersion, migrateState, processGroups } = w.exportStateful(Sessionize);
