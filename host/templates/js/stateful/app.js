// {{name}}: a stateful plugin (the `stateful` world: flatMapGroupsWithState), in JavaScript on
// the weir JS SDK.
//
// The job groups rows by its `group_by` columns (here `user`). Per key, the state is the running
// [count, total] of its rows (a null `amount` counts, adding 0.0); every key with rows in a batch
// outputs one row: the key columns, then `count` (bigint) and `total` (double). Change
// STATE_STRUCT, outputSchema and processGroup to make it yours; the guide is docs/plugins-js.md.
import * as w from '{{sdk_dir}}/js/weir_guest.js';

export const WORLD = 'stateful';

export class Plugin extends w.StatefulProcessor {
  // The state [count, total], kept per key by the host between batches, packed as a
  // little-endian int64 and double (Python's struct "<qd").
  static STATE_STRUCT = '<qd';

  outputSchema(key, input) {
    input.require('amount', w.DataType.FLOAT64);
    return new w.Schema([...key, new w.Field('count', w.DataType.INT64, false), new w.Field('total', w.DataType.FLOAT64, false)]);
  }

  processGroup(group, state, out) {
    let [count, total] = state.exists ? state.get() : [0n, 0.0];
    for (const amount of group.rows.f64s('amount')) {
      count += 1n;
      total += amount ?? 0.0;
    }
    state.update([count, total]);
    out.appendKeyed(count, total);
  }
}

export const { init, outputSchema, stateVersion, migrateState, processGroups } = w.exportStateful(Plugin);
