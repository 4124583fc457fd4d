// enrich, in JavaScript on the JS SDK (guest-sdk/js): the same logic as plugins/enrich (Rust),
// byte-identical output.
//
// Every input column is passed through (by index, so it never crosses the boundary again), then
// amount_with_tax = amount * (1.0 + tax_rate) (config `tax_rate`, default 0.2),
// user_bucket = FNV-1a 32-bit of user_id's UTF-8 bytes % 16, and is_large = amount >= 100.0;
// each null where its input is null. The loops work on the typed arrays the SDK hands out (the
// engine interprets: a function call per row would cost more than the work). Remembering each
// user_id's bucket in a Map was tried and is slower than hashing the few bytes again.
import * as w from '../../guest-sdk/js/weir_guest.js';

const { FLOAT64, INT32, BOOLEAN, UTF8 } = w.DataType;

class Enrich extends w.Mapper {
  constructor(config) {
    super(config);
    config.rejectUnknown(['tax_rate']);
    this.factor = 1.0 + config.getF64('tax_rate', 0.2);
  }

  /** Every row's user_bucket (unspecified at nulls): FNV-1a, 32 bits, of the row's bytes, modulo
   * 16 (the low 4 bits). The multiplication by the FNV prime 16777619 = 2^24 + 403 is
   * `(x << 24) + x * 403` (exact in a double, cut to 32 bits by `| 0`): no Math.imul call per
   * byte, which costs more than the arithmetic in an interpreter; and no function call per row. */
  static userBuckets(n, offsets, data) {
    const buckets = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      let h = 0x811c9dc5 | 0;
      for (let j = offsets[i], end = offsets[i + 1]; j < end; j++) {
        const x = h ^ data[j];
        h = ((x << 24) + x * 403) | 0;
      }
      buckets[i] = h & 15;
    }
    return buckets;
  }

  outputSchema(input) {
    input.require('user_id', UTF8);
    input.require('amount', FLOAT64);
    return input
      .tryWith(new w.Field('amount_with_tax', FLOAT64, true))
      .tryWith(new w.Field('user_bucket', INT32, true))
      .tryWith(new w.Field('is_large', BOOLEAN, true));
  }

  mapBatch(input) {
    const n = input.numRows;
    const amount = input.f64s('amount');
    const users = input.utf8Bytes('user_id'); // hashing needs bytes, not a UTF-8 check
    const a = amount.values;
    const factor = this.factor;
    const withTax = new Float64Array(n);
    const isLarge = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const x = a[i];
      withTax[i] = x * factor;
      isLarge[i] = x >= 100.0;
    }
    const buckets = Enrich.userBuckets(n, users.offsets, users.data);
    return w.Output.sameRows()
      .passThroughAll(input)
      .column('amount_with_tax', w.columnData(FLOAT64, withTax, amount.validity))
      .column('user_bucket', w.columnData(INT32, buckets, users.validity))
      .column('is_large', w.columnData(BOOLEAN, isLarge, amount.validity));
  }
}

export const { init, outputSchema, mapBatch } = w.exportMapper(Enrich);
