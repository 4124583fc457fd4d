// A JavaScript mapper that misbehaves (tests/e2e/hostile_js.rs), on the JS SDK. It passes every
// row through, except as its config `mode` says:
// - `mode=rows` (the default): per row, by `event_id`: "spin" loops forever, "grow" allocates
//   (and keeps) memory without end, "panic" throws a TypeError (a trap), "refuse" fails the batch
//   naming that row;
// - `mode=spin` / `mode=grow`: every batch loops forever / grows without end.
import * as w from '../../../guest-sdk/js/weir_guest.js';

function spin() {
  let x = 0;
  for (;;) x = (x + 1) | 0;
}

function grow() {
  const keep = [];
  for (;;) keep.push(new Float64Array(1 << 16).fill(keep.length));
}

class Hostile extends w.Mapper {
  constructor(config) {
    super(config);
    config.rejectUnknown(['mode']);
    this.mode = config.getStr('mode', 'rows');
    if (!['rows', 'spin', 'grow'].includes(this.mode)) {
      throw new w.PluginError(`config key \`mode\`: \`${this.mode}\` is not rows, spin or grow`);
    }
  }

  outputSchema(input) {
    input.require('event_id', w.DataType.UTF8);
    return input;
  }

  mapBatch(input) {
    if (this.mode === 'spin') spin();
    if (this.mode === 'grow') grow();
    const ids = input.strs('event_id').strings();
    ids.forEach((id, row) => {
      if (id === 'spin') spin();
      if (id === 'grow') grow();
      if (id === 'panic') null.boom();
      if (id === 'refuse') throw new w.BatchError(`refused by hostile-js: event_id is "refuse"`, row);
    });
    return w.Output.sameRows().passThroughAll(input);
  }
}

export const { init, outputSchema, mapBatch } = w.exportMapper(Hostile);
