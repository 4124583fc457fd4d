// {{name}}: a map plugin (the `mapper` world), in JavaScript on the weir JS SDK.
//
// Every input column is passed through (by index: it does not cross back), then `size`
// (string, not null): "big" where `amount` >= 100.0, else "small" (a null amount is "small").
// Change outputSchema and mapBatch to make it yours; the guide is docs/plugins-js.md in the weir
// repository. `weir plugin build` bundles this file with the SDK it imports.
import * as w from '{{sdk_dir}}/js/weir_guest.js';

export class Plugin extends w.Mapper {
  constructor(config) {
    super(config); // the operator's `config` string, parsed (config.getF64(...)); none used here
  }

  outputSchema(input) {
    input.require('amount', w.DataType.FLOAT64);
    return input.tryWith(new w.Field('size', w.DataType.UTF8, false));
  }

  mapBatch(input) {
    const amount = input.f64s('amount');
    const size = new w.StrBuilder();
    for (let i = 0; i < input.numRows; i++) {
      const a = amount.get(i); // null where the amount is null
      size.push(a !== null && a >= 100.0 ? 'big' : 'small');
    }
    return w.Output.sameRows().passThroughAll(input).column('size', size);
  }
}

export const { init, outputSchema, mapBatch } = w.exportMapper(Plugin);
