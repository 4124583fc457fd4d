// enrich, in JavaScript: the same logic as plugins/enrich (Rust), byte-identical output.
//
// Passes every input column through (by index, so it never crosses the boundary again), then
// appends amount_with_tax = amount * (1.0 + tax_rate) (config `tax_rate`, default 0.2),
// user_bucket = FNV-1a 32-bit of user_id's UTF-8 bytes % 16, and is_large = amount >= 100.0;
// each null where its input is null. Raw bindings of wit/weir.wit's `mapper` world (no JS SDK
// yet): records are objects with camelCase fields, variants `{tag, val}`, `result` errors are
// thrown, numeric lists arrive as typed arrays.

let factor = 1.2;

export function init(config) {
  let taxRate = 0.2;
  for (const part of config.split(/[,\n]/)) {
    const kv = part.trim();
    if (kv === '') continue;
    const eq = kv.indexOf('=');
    const key = (eq < 0 ? kv : kv.slice(0, eq)).trim();
    if (key !== 'tax_rate') throw `unknown config key \`${key}\` (known keys: tax_rate)`;
    const v = Number(kv.slice(eq + 1).trim());
    if (eq < 0 || !Number.isFinite(v)) throw `config \`tax_rate\`: expected a number, got \`${kv}\``;
    taxRate = v;
  }
  factor = 1.0 + taxRate;
}

function require(schema, name, type) {
  const f = schema.find((f) => f.name === name);
  if (!f) throw `input has no column \`${name}\` (expected ${type})`;
  if (f.dataType !== type) throw `column \`${name}\` is ${f.dataType}, expected ${type}`;
}

export function outputSchema(input) {
  require(input, 'user_id', 'utf8');
  require(input, 'amount', 'float64');
  for (const n of ['amount_with_tax', 'user_bucket', 'is_large']) {
    if (input.some((f) => f.name === n)) throw `input already has a column \`${n}\``;
  }
  return [
    ...input,
    { name: 'amount_with_tax', dataType: 'float64', nullable: true },
    { name: 'user_bucket', dataType: 'int32', nullable: true },
    { name: 'is_large', dataType: 'boolean', nullable: true },
  ];
}

function column(batch, name, tag) {
  const c = batch.columns.find((c) => c.name === name);
  if (!c) throw { message: `batch has no column \`${name}\``, row: undefined };
  if (c.data.values.tag !== tag) throw { message: `column \`${name}\` is ${c.data.values.tag}, expected ${tag}`, row: undefined };
  return c.data;
}

export function mapBatch(input) {
  const n = input.numRows;
  const amount = column(input, 'amount', 'float64');
  const users = column(input, 'user_id', 'utf8');
  const a = amount.values.val;
  const withTax = new Float64Array(n);
  const isLarge = new Array(n);
  for (let i = 0; i < n; i++) {
    withTax[i] = a[i] * factor;
    isLarge[i] = a[i] >= 100.0;
  }
  const { offsets, data } = users.values.val;
  const buckets = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let h = 2166136261;
    for (let j = offsets[i], end = offsets[i + 1]; j < end; j++) {
      h = Math.imul(h ^ data[j], 16777619) >>> 0;
    }
    buckets[i] = h % 16;
  }
  const columns = input.columns.map((c, i) => ({ name: c.name, data: { tag: 'input', val: i } }));
  columns.push(
    { name: 'amount_with_tax', data: { tag: 'computed', val: { values: { tag: 'float64', val: withTax }, validity: amount.validity } } },
    { name: 'user_bucket', data: { tag: 'computed', val: { values: { tag: 'int32', val: buckets }, validity: users.validity } } },
    { name: 'is_large', data: { tag: 'computed', val: { values: { tag: 'boolean', val: isLarge }, validity: amount.validity } } },
  );
  return { numRows: n, rows: undefined, columns };
}
