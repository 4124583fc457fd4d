// weir_guest: write a weir plugin in JavaScript, the same way as with the Rust and Python SDKs
// (guest-sdk/src, guest-sdk/python/weir_guest.py). The full guide is docs/plugins-js.md.
//
// A plugin is an ES module `app.js` that imports this file (by a relative or absolute path),
// defines a class and exports the world's functions with one line:
//
//   import * as w from '../../guest-sdk/js/weir_guest.js';
//
//   class Tax extends w.Mapper {
//     constructor(config) { super(config); this.factor = 1.0 + config.getF64('tax_rate', 0.2); }
//     outputSchema(input) {
//       input.require('amount', w.DataType.FLOAT64);
//       return input.tryWith(new w.Field('amount_with_tax', w.DataType.FLOAT64, true));
//     }
//     mapBatch(input) {
//       const amount = input.f64s('amount');
//       return w.Output.sameRows().passThroughAll(input)
//         .column('amount_with_tax', amount.map((a) => a * this.factor));
//     }
//   }
//
//   export const { init, outputSchema, mapBatch } = w.exportMapper(Tax);
//
// Worlds: `exportMapper` (mapper), `exportStateful` (stateful: flatMapGroupsWithState),
// `exportBatchSink` (batch-sink: foreachBatch, writing with `out.emit`). `weir plugin build`
// picks the world from a top-level `export const WORLD = "stateful"` in app.js, else from which
// of these the module calls. Everything here is plain JavaScript: a plugin's logic runs under node too (tests).
//
// Errors: throw `PluginError(message)` from the constructor / `outputSchema` to refuse a config
// or schema, `BatchError(message, row)` from a batch call to fail the batch (naming the input row
// lets the host dead-letter that record). Any other exception (a TypeError...) is rethrown;
// componentize-js makes it the call's error with the engine's message, which the host handles as
// any failed call (`on_error`).
//
// Values: `double`/`int` columns are Float64Array/Int32Array, `bigint`/`timestamp` columns are
// BigInt64Array (values are BigInt), strings and binaries are Arrow-style offsets (Uint32Array)
// plus data (Uint8Array), booleans and validity lists are Uint8Arrays of 0/1 (plain arrays of
// booleans are accepted too; test truthiness, not `=== true`); a validity is `undefined` when
// nothing is null. `null` is a null value in row-wise APIs (`get`, `push`, `append`).

// ---------------------------------------------------------------------------------------------
// Errors

/** Thrown from the constructor or `outputSchema`: the job stops at start with this message. */
export class PluginError extends Error {
  constructor(message) {
    super(message);
    this.name = 'PluginError';
  }
}

/** Thrown from a batch call: the batch fails; `row` names the input row at fault, if known. */
export class BatchError extends Error {
  constructor(message, row = undefined) {
    super(message);
    this.name = 'BatchError';
    this.row = row === null ? undefined : row;
  }
}

// ---------------------------------------------------------------------------------------------
// Schemas

/** The column types, as the WIT enum spells them. */
export const DataType = Object.freeze({
  BOOLEAN: 'boolean',
  INT32: 'int32',
  INT64: 'int64',
  FLOAT64: 'float64',
  UTF8: 'utf8',
  BINARY: 'binary',
  TIMESTAMP: 'timestamp',
});

const DDL_NAMES = {
  boolean: 'boolean',
  int32: 'int',
  int64: 'bigint',
  float64: 'double',
  utf8: 'string',
  binary: 'binary',
  timestamp: 'timestamp',
};

/** `float64 (double)`: the WIT name and the job-file name, as the Rust SDK prints them. */
export function typeName(dt) {
  const ddl = DDL_NAMES[dt];
  return ddl === undefined || ddl === dt ? String(dt) : `${dt} (${ddl})`;
}

function names(list) {
  return list.length ? list.join(', ') : '(none)';
}

/** A column of a schema. */
export class Field {
  constructor(name, dataType, nullable = true) {
    this.name = name;
    this.dataType = dataType;
    this.nullable = nullable;
  }
}

/** A list of `Field`s with the Rust SDK's helpers (an Array: spread it, index it). */
export class Schema extends Array {
  constructor(fields = []) {
    super();
    for (const f of fields) this.push(f instanceof Field ? f : new Field(f.name, f.dataType, f.nullable));
  }

  static get [Symbol.species]() {
    return Array;
  }

  /** The field named `name`, or undefined. */
  field(name) {
    return this.find((f) => f.name === name);
  }

  /** The position of the field named `name`, or undefined. */
  indexOf(name) {
    const i = this.findIndex((f) => f.name === name);
    return i < 0 ? undefined : i;
  }

  /** The field `name`, checked to be of `dataType`; PluginError naming what is wrong. */
  require(name, dataType) {
    const f = this.field(name);
    if (f === undefined) {
      throw new PluginError(
        `input has no column \`${name}\` (of type ${typeName(dataType)}); ` +
          `its columns are: ${names(this.map((x) => x.name))}`,
      );
    }
    if (f.dataType !== dataType) {
      throw new PluginError(`input column \`${name}\` must be ${typeName(dataType)}, but it is ${typeName(f.dataType)}`);
    }
    return f;
  }

  /** A copy with `field` appended; PluginError when the name is taken. */
  tryWith(field) {
    if (this.field(field.name) !== undefined) {
      throw new PluginError(`cannot add column \`${field.name}\`: the input already has a column of that name`);
    }
    return new Schema([...this, field]);
  }

  /** The plain list of records the bindings take. */
  toWit() {
    return Array.from(this, (f) => ({ name: f.name, dataType: f.dataType, nullable: !!f.nullable }));
  }
}

// ---------------------------------------------------------------------------------------------
// Config: `key=value` pairs, parsed exactly as the Rust SDK's `Config`.

// Rust's `str::trim` removes Unicode White_Space (not quite JavaScript's `trim`: no U+FEFF, and
// U+0085 is one).
const WS = '\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const TRIM = new RegExp(`^[${WS}]+|[${WS}]+$`, 'g');
const rtrim = (s) => s.replace(TRIM, '');
// Rust's `f64::from_str` grammar.
const F64 = /^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN])$/;
const INT = /^[+-]?[0-9]+$/;

/** The operator's `config` string: `key=value` pairs separated by `,` or newlines, spaces
 * around keys and values ignored, empty entries skipped; `raw` keeps the string as given. */
export class Config {
  constructor(raw = '') {
    this.raw = raw;
    this.pairs = [];
    for (let entry of raw.split(/[,\n]/)) {
      entry = rtrim(entry);
      if (entry === '') continue;
      const eq = entry.indexOf('=');
      if (eq < 0) throw new PluginError(`config entry \`${entry}\` is not \`key=value\``);
      const key = rtrim(entry.slice(0, eq));
      const value = rtrim(entry.slice(eq + 1));
      if (key === '') throw new PluginError(`config entry \`${entry}\` has an empty key`);
      if (this.pairs.some(([k]) => k === key)) throw new PluginError(`config key \`${key}\` is given twice`);
      this.pairs.push([key, value]);
    }
  }

  /** The value of `key`, or undefined. */
  get(key) {
    const p = this.pairs.find(([k]) => k === key);
    return p === undefined ? undefined : p[1];
  }

  /** The value of `key`, or `dflt`. */
  getStr(key, dflt) {
    const v = this.get(key);
    return v === undefined ? dflt : v;
  }

  /** The value of `key`; fails naming it when absent. */
  require(key) {
    const v = this.get(key);
    if (v === undefined) throw new PluginError(`config key \`${key}\` is required`);
    return v;
  }

  /** `key` as a number (same syntax as Rust's f64), or `dflt`. */
  getF64(key, dflt) {
    const v = this.get(key);
    if (v === undefined) return dflt;
    if (!F64.test(v)) throw new PluginError(`config key \`${key}\`: \`${v}\` is not a number`);
    const lower = v.toLowerCase().replace(/^\+/, '');
    if (lower === 'nan' || lower === '-nan') return NaN;
    if (lower === 'inf' || lower === 'infinity') return Infinity;
    if (lower === '-inf' || lower === '-infinity') return -Infinity;
    return Number(v);
  }

  getInt(key, dflt, bits, what) {
    const v = this.get(key);
    if (v === undefined) return dflt;
    const n = INT.test(v) ? BigInt(v) : undefined;
    const limit = 1n << BigInt(bits - 1);
    if (n === undefined || n < -limit || n >= limit) throw new PluginError(`config key \`${key}\`: \`${v}\` is not ${what}`);
    return n;
  }

  /** `key` as a signed 64-bit integer (a BigInt), or `dflt`. */
  getI64(key, dflt) {
    const n = this.getInt(key, dflt, 64, 'an integer');
    return typeof n === 'bigint' ? n : BigInt(n);
  }

  /** `key` as a signed 32-bit integer (a number), or `dflt`. */
  getI32(key, dflt) {
    return Number(this.getInt(key, dflt, 32, 'a 32-bit integer'));
  }

  /** `key` as `true` or `false`, or `dflt`. */
  getBool(key, dflt) {
    const v = this.get(key);
    if (v === undefined) return dflt;
    if (v !== 'true' && v !== 'false') throw new PluginError(`config key \`${key}\`: \`${v}\` is not \`true\` or \`false\``);
    return v === 'true';
  }

  /** Fails on the first key not in `known` (catches typos in job files). */
  rejectUnknown(known) {
    for (const [k] of this.pairs) {
      if (!known.includes(k)) throw new PluginError(`unknown config key \`${k}\` (known keys: ${known.join(', ')})`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Column data: the WIT records, and helpers that make them

const TYPED = {
  int32: Int32Array,
  int64: BigInt64Array,
  float64: Float64Array,
  timestamp: BigInt64Array,
  boolean: Uint8Array,
};

/** The WIT `column-data` of `dataType` from its values and validity (undefined: none null). */
export function columnData(dataType, values, validity = undefined) {
  return { values: { tag: dataType, val: values }, validity: validity ?? undefined };
}

/** The number of values of a WIT `column-data`. */
export function columnLength(data) {
  const v = data.values;
  return v.tag === 'utf8' || v.tag === 'binary' ? v.val.offsets.length - 1 : v.val.length;
}

/** A validity only crosses when something is null: undefined when every entry is true. */
export function normalizeValidity(validity) {
  if (validity === undefined || validity === null) return undefined;
  for (let i = 0; i < validity.length; i++) if (!validity[i]) return validity;
  return undefined;
}

function isNullAt(validity, row) {
  return validity !== undefined && !validity[row];
}

const UTF8_DECODER = new TextDecoder('utf-8');
const UTF8_ENCODER = new TextEncoder();

/** A fixed-width column: `values` (a typed array, one value per row; unspecified at nulls) and
 * `validity` (undefined when nothing is null). Iterating gives values, null at nulls. */
export class PrimitiveView {
  constructor(values, validity, dataType) {
    this.values = values;
    this.validity = validity ?? undefined;
    this.dataType = dataType;
  }

  get length() {
    return this.values.length;
  }

  /** The value at `row`, or null when null. */
  get(row) {
    return isNullAt(this.validity, row) ? null : this.values[row];
  }

  isNull(row) {
    return isNullAt(this.validity, row);
  }

  nullCount() {
    if (this.validity === undefined) return 0;
    let n = 0;
    for (let i = 0; i < this.validity.length; i++) if (!this.validity[i]) n++;
    return n;
  }

  *[Symbol.iterator]() {
    for (let i = 0; i < this.values.length; i++) yield this.get(i);
  }

  /** A column of `f(value)` per row, of type `to` (default: this column's type), null where this
   * one is null (`f` is still called there, on the unspecified value: keep it side-effect free). */
  map(f, to = this.dataType) {
    const n = this.values.length;
    const Typed = TYPED[to];
    const out = Typed === undefined ? new Array(n) : new Typed(n);
    const v = this.values;
    if (to === 'boolean') for (let i = 0; i < n; i++) out[i] = f(v[i]) ? 1 : 0;
    else for (let i = 0; i < n; i++) out[i] = f(v[i]);
    return columnData(to, out, this.validity);
  }
}

/** A var-len column, Arrow layout: value i is `data[offsets[i]..offsets[i + 1]]`. */
export class BinaryView {
  constructor(varLen, validity) {
    this.offsets = varLen.offsets;
    this.data = varLen.data;
    this.validity = validity ?? undefined;
  }

  get length() {
    return this.offsets.length - 1;
  }

  /** The bytes at `row` (a view, not a copy), ignoring validity. */
  value(row) {
    return this.data.subarray(this.offsets[row], this.offsets[row + 1]);
  }

  /** The bytes at `row`, or null when null. */
  getBytes(row) {
    return isNullAt(this.validity, row) ? null : this.value(row);
  }

  get(row) {
    return this.getBytes(row);
  }

  isNull(row) {
    return isNullAt(this.validity, row);
  }

  *[Symbol.iterator]() {
    for (let i = 0; i < this.length; i++) yield this.get(i);
  }
}

/** A `string` column: like BinaryView, but `get` decodes UTF-8. */
export class StrView extends BinaryView {
  /** The text at `row`, or null when null. */
  get(row) {
    return isNullAt(this.validity, row) ? null : UTF8_DECODER.decode(this.value(row));
  }

  /** The text at `row`, ignoring validity. */
  str(row) {
    return UTF8_DECODER.decode(this.value(row));
  }

  /** Every row's text (null at nulls), decoded in one call when the data is ASCII. */
  strings() {
    const n = this.length;
    const out = new Array(n);
    const { offsets, data, validity } = this;
    const start = offsets[0];
    const text = UTF8_DECODER.decode(data.subarray(start, offsets[n]));
    const ascii = text.length === offsets[n] - start;
    for (let i = 0; i < n; i++) {
      if (isNullAt(validity, i)) out[i] = null;
      else if (ascii) out[i] = text.substring(offsets[i] - start, offsets[i + 1] - start);
      else out[i] = UTF8_DECODER.decode(data.subarray(offsets[i], offsets[i + 1]));
    }
    return out;
  }

  *[Symbol.iterator]() {
    yield* this.strings();
  }
}

function batchSchema(columns) {
  return new Schema(columns.map((c) => new Field(c.name, c.data.values.tag, true)));
}

/** A batch: `numRows`, `columns` (the WIT records `{name, data}`), typed getters by name.
 * Wraps what the host sent, or one the plugin builds (`new Batch(numRows, columns)`, columns as
 * `[name, columnData | builder]` pairs or `{name, data}` records) to emit. */
export class Batch {
  constructor(numRows, columns = []) {
    if (typeof numRows === 'object' && numRows !== null) {
      // A WIT batch record.
      this.numRows = numRows.numRows;
      this.columns = numRows.columns;
      return;
    }
    this.numRows = numRows;
    this.columns = columns.map((c) => {
      const [name, data] = Array.isArray(c) ? c : [c.name, c.data];
      return { name, data: toColumnData(data) };
    });
    for (const c of this.columns) {
      const n = columnLength(c.data);
      if (n !== numRows) throw new BatchError(`column \`${c.name}\` has ${n} values for ${numRows} rows`);
    }
  }

  /** The schema of the batch (every field nullable: a batch does not say). */
  schema() {
    return batchSchema(this.columns);
  }

  /** The position of column `name`, or undefined. */
  indexOf(name) {
    // A Map built once per batch: a stateful call looks columns up once per group.
    if (this.byName === undefined || this.byName.size !== this.columns.length) {
      this.byName = new Map();
      for (let i = this.columns.length - 1; i >= 0; i--) this.byName.set(this.columns[i].name, i);
    }
    return this.byName.get(name);
  }

  /** The column `name`; BatchError listing the columns when absent. */
  column(name) {
    const i = this.indexOf(name);
    if (i === undefined) {
      throw new BatchError(`input has no column \`${name}\`; its columns are: ${names(this.columns.map((c) => c.name))}`);
    }
    return this.columns[i];
  }

  typed(name, dt) {
    const c = this.column(name);
    const found = c.data.values.tag;
    if (found !== dt) throw new BatchError(`column \`${name}\` is ${typeName(found)}, not ${typeName(dt)}`);
    return c.data;
  }

  primitive(name, dt) {
    const d = this.typed(name, dt);
    return new PrimitiveView(d.values.val, d.validity, dt);
  }

  /** The `string` column `name`. */
  strs(name) {
    const d = this.typed(name, DataType.UTF8);
    return new StrView(d.values.val, d.validity);
  }

  /** The `string` column `name` as raw UTF-8 bytes (no decoding): for hashing or comparing. */
  utf8Bytes(name) {
    const d = this.typed(name, DataType.UTF8);
    return new BinaryView(d.values.val, d.validity);
  }

  /** The `binary` column `name`. */
  binaries(name) {
    const d = this.typed(name, DataType.BINARY);
    return new BinaryView(d.values.val, d.validity);
  }

  /** A new batch of these rows (in this order, repeats allowed), every column. */
  take(rows) {
    const out = new Batch(rows.length, []);
    out.columns = this.columns.map((c) => ({ name: c.name, data: takeColumn(c.data, rows) }));
    return out;
  }

  /** A new batch of the rows where `keep[i]` is truthy, every column. */
  filter(keep) {
    const rows = [];
    for (let i = 0; i < this.numRows; i++) if (keep[i]) rows.push(i);
    return this.take(rows);
  }

  /** The plain record the bindings take. */
  toWit() {
    return { numRows: this.numRows, columns: this.columns };
  }
}

/** The rows `rows` of a WIT column-data. */
export function takeColumn(data, rows) {
  const { tag, val } = data.values;
  const n = rows.length;
  let values;
  if (tag === 'utf8' || tag === 'binary') {
    const offsets = new Uint32Array(n + 1);
    let size = 0;
    for (let i = 0; i < n; i++) {
      size += val.offsets[rows[i] + 1] - val.offsets[rows[i]];
      offsets[i + 1] = size;
    }
    const bytes = new Uint8Array(size);
    for (let i = 0; i < n; i++) bytes.set(val.data.subarray(val.offsets[rows[i]], val.offsets[rows[i] + 1]), offsets[i]);
    values = { offsets, data: bytes };
  } else {
    const Typed = TYPED[tag];
    values = new Typed(n);
    if (tag === 'boolean') for (let i = 0; i < n; i++) values[i] = val[rows[i]] ? 1 : 0;
    else for (let i = 0; i < n; i++) values[i] = val[rows[i]];
  }
  let validity;
  if (data.validity !== undefined && data.validity !== null) {
    const v = data.validity;
    validity = new Array(n);
    for (let i = 0; i < n; i++) validity[i] = !!v[rows[i]];
    validity = normalizeValidity(validity);
  }
  return columnData(tag, values, validity);
}

// ---------------------------------------------------------------------------------------------
// Builders: one column, value by value (null is null)

class PrimitiveBuilder {
  constructor(dataType, convert) {
    this.dataType = dataType;
    this.convert = convert;
    this.values = [];
    this.validity = undefined;
  }

  get length() {
    return this.values.length;
  }

  /** Appends a value, or a null for `null`/`undefined`. */
  push(v) {
    if (v === null || v === undefined) this.pushNull();
    else this.pushValue(v);
    return this;
  }

  pushValue(v) {
    this.values.push(this.convert(v));
    if (this.validity !== undefined) this.validity.push(true);
    return this;
  }

  pushNull() {
    if (this.validity === undefined) this.validity = new Array(this.values.length).fill(true);
    this.values.push(this.convert(0));
    this.validity.push(false);
    return this;
  }

  /** The column-data of what was pushed. */
  finish() {
    const Typed = TYPED[this.dataType];
    return columnData(this.dataType, Typed.from(this.values), this.validity);
  }
}

const toF64 = (v) => +v;
const toI32 = (v) => v | 0;
const toI64 = (v) => (typeof v === 'bigint' ? BigInt.asIntN(64, v) : BigInt(v));
const toBool = (v) => (v ? 1 : 0);

/** A `double` column. */
export class F64Builder extends PrimitiveBuilder {
  constructor() {
    super('float64', toF64);
  }
}

/** An `int` column. */
export class I32Builder extends PrimitiveBuilder {
  constructor() {
    super('int32', toI32);
  }
}

/** A `bigint` column (BigInt or integer numbers). `finishTimestamp()` makes it a timestamp column. */
export class I64Builder extends PrimitiveBuilder {
  constructor() {
    super('int64', toI64);
  }

  finishTimestamp() {
    return columnData('timestamp', BigInt64Array.from(this.values), this.validity);
  }
}

/** A `timestamp` column (microseconds since the epoch, BigInt or integer numbers). */
export class TimestampBuilder extends PrimitiveBuilder {
  constructor() {
    super('timestamp', toI64);
  }
}

/** A `boolean` column. */
export class BoolBuilder extends PrimitiveBuilder {
  constructor() {
    super('boolean', toBool);
  }
}

class VarLenBuilder {
  constructor(dataType) {
    this.dataType = dataType;
    this.chunks = [];
    this.offsets = [0];
    this.size = 0;
    this.validity = undefined;
  }

  get length() {
    return this.offsets.length - 1;
  }

  push(v) {
    if (v === null || v === undefined) this.pushNull();
    else this.pushValue(v);
    return this;
  }

  /** Appends `data[start..end]` (bytes already encoded, e.g. an input value). */
  pushRange(data, start, end) {
    return this.pushBytes(data.subarray(start, end));
  }

  pushBytes(bytes) {
    this.chunks.push(bytes);
    this.size += bytes.length;
    this.offsets.push(this.size);
    if (this.validity !== undefined) this.validity.push(true);
    return this;
  }

  pushNull() {
    if (this.validity === undefined) this.validity = new Array(this.length).fill(true);
    this.offsets.push(this.size);
    this.validity.push(false);
    return this;
  }

  finish() {
    const data = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      data.set(c, at);
      at += c.length;
    }
    return columnData(this.dataType, { offsets: Uint32Array.from(this.offsets), data }, this.validity);
  }
}

/** A `string` column (JavaScript strings, encoded as UTF-8). */
export class StrBuilder extends VarLenBuilder {
  constructor() {
    super('utf8');
  }

  pushValue(s) {
    return this.pushBytes(UTF8_ENCODER.encode(String(s)));
  }
}

/** A `binary` column (Uint8Array values). */
export class BinaryBuilder extends VarLenBuilder {
  constructor() {
    super('binary');
  }

  pushValue(b) {
    return this.pushBytes(b instanceof Uint8Array ? b : Uint8Array.from(b));
  }
}

const BUILDERS = {
  float64: F64Builder,
  int32: I32Builder,
  int64: I64Builder,
  timestamp: TimestampBuilder,
  boolean: BoolBuilder,
  utf8: StrBuilder,
  binary: BinaryBuilder,
};

/** A builder for a column of `dataType`. */
export function builderFor(dataType) {
  const B = BUILDERS[dataType];
  if (B === undefined) throw new BatchError(`unknown data type \`${dataType}\``);
  return new B();
}

/** A column of `dataType` from row values (null is null). */
export function columnFrom(dataType, values) {
  const b = builderFor(dataType);
  for (const v of values) b.push(v);
  return b.finish();
}

function toColumnData(data) {
  if (data !== null && typeof data === 'object' && typeof data.finish === 'function') return data.finish();
  return data;
}

// ---------------------------------------------------------------------------------------------
// Output of a map

/** What `mapBatch` returns: the input rows (`sameRows()` or `select(rows)`), then the columns in
 * output-schema order, passed through (no data crosses back) or computed. */
export class Output {
  constructor(rows) {
    this.rows = rows;
    this.columns = []; // [name, index | name | column-data]
  }

  /** Output row i is input row i (a map). */
  static sameRows() {
    return new Output(undefined);
  }

  /** Output row i is input row rows[i] (a filter, a flatMap). */
  static select(rows) {
    return new Output(Uint32Array.from(rows));
  }

  /** Every input column, in order, by index. */
  passThroughAll(input) {
    for (let i = 0; i < input.columns.length; i++) this.columns.push([input.columns[i].name, i]);
    return this;
  }

  /** The input column `name`, by index (resolved when the batch is returned). */
  passThrough(name) {
    this.columns.push([name, name]);
    return this;
  }

  /** A computed column: a column-data (from `PrimitiveView.map`, `columnData`) or a builder. */
  column(name, data) {
    this.columns.push([name, toColumnData(data)]);
    return this;
  }

  /** Checks the output against `input` (as the Rust SDK does) and builds the WIT record. */
  toWit(input) {
    const nIn = input.numRows;
    if (this.rows !== undefined) {
      for (const r of this.rows) {
        if (!(r >= 0 && r < nIn)) throw new BatchError(`Output.select: row ${r} is out of range (the input has ${nIn} rows)`);
      }
    }
    const numRows = this.rows === undefined ? nIn : this.rows.length;
    const cols = [];
    const seen = new Set();
    for (const [name, what] of this.columns) {
      let data;
      if (typeof what === 'string') {
        const i = input.indexOf(what);
        if (i === undefined) {
          throw new BatchError(
            `passThrough("${what}"): the input has no such column; its columns are: ${names(input.columns.map((c) => c.name))}`,
          );
        }
        data = { tag: 'input', val: i };
      } else if (typeof what === 'number') {
        data = { tag: 'input', val: what };
      } else {
        const n = columnLength(what);
        if (n !== numRows) {
          throw new BatchError(`output column \`${name}\` has ${n} values for ${numRows} rows (one value per output row is needed)`);
        }
        data = { tag: 'computed', val: what };
      }
      if (seen.has(name)) throw new BatchError(`output column \`${name}\` is given twice`);
      seen.add(name);
      cols.push({ name, data });
    }
    return { numRows, rows: this.rows, columns: cols };
  }
}

// ---------------------------------------------------------------------------------------------
// The mapper world

/** Base class of a map plugin (optional, documents the methods). */
export class Mapper {
  constructor(config) {}

  outputSchema(input) {
    throw new PluginError('outputSchema is not implemented');
  }

  mapBatch(input) {
    throw new PluginError('mapBatch is not implemented');
  }
}

const NOT_INITIALISED = 'the plugin was called before `init` (a bug in the host)';

// componentize-js turns what an export throws into the function's `err`: a string for init and
// output-schema, `{message, row}` for a batch call. Anything else (a TypeError...) is rethrown
// as it is (componentize-js reports it as the call's error, with the engine's message).
function errString(e) {
  if (e instanceof PluginError || e instanceof BatchError) return e.message;
  throw e;
}

function errBatch(e) {
  if (e instanceof BatchError) return { message: e.message, row: e.row };
  if (e instanceof PluginError) return { message: e.message, row: undefined };
  throw e;
}

/** The `mapper` world's exports, running `cls`: `export const { init, outputSchema, mapBatch } =
 * exportMapper(MyPlugin);` */
export function exportMapper(cls) {
  let plugin;
  return {
    init(config) {
      try {
        plugin = new cls(new Config(config));
      } catch (e) {
        throw errString(e);
      }
    },
    outputSchema(input) {
      if (plugin === undefined) throw NOT_INITIALISED;
      try {
        return toWitSchema(plugin.outputSchema(new Schema(input)));
      } catch (e) {
        throw errString(e);
      }
    },
    mapBatch(input) {
      if (plugin === undefined) throw { message: NOT_INITIALISED, row: undefined };
      try {
        const batch = new Batch(input);
        return plugin.mapBatch(batch).toWit(batch);
      } catch (e) {
        throw errBatch(e);
      }
    },
  };
}

function toWitSchema(s) {
  return s instanceof Schema ? s.toWit() : new Schema(s).toWit();
}

// ---------------------------------------------------------------------------------------------
// The stateful world: per-key state, timeouts and timers

/** Which clock a timer follows. */
export const TimeDomain = Object.freeze({ PROCESSING_TIME: 'processing-time', EVENT_TIME: 'event-time' });

/** A timer that fires in the first batch whose watermark is at or past `at` (microseconds). */
export function eventTimeTimer(at) {
  return { domain: TimeDomain.EVENT_TIME, at: BigInt(at) };
}

/** A timer that fires in the first batch whose processing time is at or past `at` (µs). */
export function processingTimeTimer(at) {
  return { domain: TimeDomain.PROCESSING_TIME, at: BigInt(at) };
}

const sameTimer = (a) => (b) => a.domain === b.domain && BigInt(a.at) === BigInt(b.at);

// A tiny `struct` (Python's module) for fixed layouts: `<` (little-endian, the only byte order),
// then q/Q (64-bit, BigInt), i/I (32-bit), h/H, b/B, ? (bool), d (f64), f (f32), a count before
// a letter repeats it. The same layout as Python's struct with `<`, so a state packed by a
// Python plugin reads here and back.
const STRUCT_CODES = {
  q: [8, (dv, o, v) => dv.setBigInt64(o, BigInt(v), true), (dv, o) => dv.getBigInt64(o, true)],
  Q: [8, (dv, o, v) => dv.setBigUint64(o, BigInt(v), true), (dv, o) => dv.getBigUint64(o, true)],
  i: [4, (dv, o, v) => dv.setInt32(o, v, true), (dv, o) => dv.getInt32(o, true)],
  I: [4, (dv, o, v) => dv.setUint32(o, v, true), (dv, o) => dv.getUint32(o, true)],
  h: [2, (dv, o, v) => dv.setInt16(o, v, true), (dv, o) => dv.getInt16(o, true)],
  H: [2, (dv, o, v) => dv.setUint16(o, v, true), (dv, o) => dv.getUint16(o, true)],
  b: [1, (dv, o, v) => dv.setInt8(o, v), (dv, o) => dv.getInt8(o)],
  B: [1, (dv, o, v) => dv.setUint8(o, v), (dv, o) => dv.getUint8(o)],
  '?': [1, (dv, o, v) => dv.setUint8(o, v ? 1 : 0), (dv, o) => dv.getUint8(o) !== 0],
  d: [8, (dv, o, v) => dv.setFloat64(o, v, true), (dv, o) => dv.getFloat64(o, true)],
  f: [4, (dv, o, v) => dv.setFloat32(o, v, true), (dv, o) => dv.getFloat32(o, true)],
};

/** A packed little-endian layout (Python's `struct.Struct("<...")`): `pack(values)` gives a
 * Uint8Array, `unpack(bytes)` an array of values. */
export class Struct {
  constructor(format) {
    if (!format.startsWith('<')) throw new PluginError(`struct format \`${format}\`: start it with \`<\` (little-endian, no padding)`);
    this.format = format;
    this.fields = [];
    this.size = 0;
    let count = '';
    for (const ch of format.slice(1)) {
      if (ch >= '0' && ch <= '9') {
        count += ch;
        continue;
      }
      const code = STRUCT_CODES[ch];
      if (code === undefined) throw new PluginError(`struct format \`${format}\`: unknown code \`${ch}\` (known: ${Object.keys(STRUCT_CODES).join('')})`);
      for (let k = 0; k < (count === '' ? 1 : Number(count)); k++) {
        this.fields.push([this.size, code[1], code[2]]);
        this.size += code[0];
      }
      count = '';
    }
  }

  // One scratch buffer per Struct: packing and unpacking allocate only the result.
  scratch() {
    if (this.view === undefined) {
      this.bytes = new Uint8Array(Math.max(this.size, 1));
      this.view = new DataView(this.bytes.buffer);
    }
    return this.view;
  }

  pack(values) {
    const fields = this.fields;
    if (values.length !== fields.length) {
      throw new BatchError(`struct \`${this.format}\`: ${values.length} values for ${fields.length} fields`);
    }
    const dv = this.scratch();
    for (let i = 0; i < fields.length; i++) fields[i][1](dv, fields[i][0], values[i]);
    return this.bytes.slice(0, this.size);
  }

  unpack(bytes) {
    if (bytes.length !== this.size) {
      throw new BatchError(`struct \`${this.format}\`: a stored state of ${bytes.length} bytes, expected ${this.size}`);
    }
    const dv = this.scratch();
    this.bytes.set(bytes);
    const fields = this.fields;
    const out = new Array(fields.length);
    for (let i = 0; i < fields.length; i++) out[i] = fields[i][2](dv, fields[i][0]);
    return out;
  }
}

// The default state encoding: JSON (UTF-8), with BigInt values kept exact.
function jsonEncode(value) {
  return UTF8_ENCODER.encode(
    JSON.stringify(value, (k, v) => (typeof v === 'bigint' ? { $bigint: v.toString() } : v)),
  );
}

function jsonDecode(bytes) {
  return JSON.parse(UTF8_DECODER.decode(bytes), (k, v) =>
    v !== null && typeof v === 'object' && typeof v.$bigint === 'string' && Object.keys(v).length === 1 ? BigInt(v.$bigint) : v,
  );
}

/** Spark's GroupState for one group in one call. What the call did is sent back to the host: the
 * state (`keep` when neither updated nor removed), the timeout (`clear` when none was set in this
 * call, as Spark resets it on every call), the TTL, and the timers to add or delete. */
export class GroupState {
  constructor(raw, decode, hasTimedOut, batchTime) {
    this.raw = raw ?? undefined; // the stored bytes, undefined when the key has none
    this.value = undefined; // decoded lazily, or set by update / remove
    this.decoded = false;
    this.changed = false;
    this.decode = decode;
    this.timeout = undefined;
    this.ttlMs = undefined;
    this.register = undefined; // timers to add / delete, made on first use
    this.delete = undefined;
    /** True when the call is for a timeout that fired (the group then has no rows). */
    this.hasTimedOut = hasTimedOut;
    this.batchTime = batchTime;
  }

  /** Whether the group has a state (after this call's update / remove, if any). */
  get exists() {
    return this.changed ? this.value !== undefined : this.raw !== undefined;
  }

  /** The state value, or undefined when there is none. */
  getOption() {
    if (!this.changed && !this.decoded) {
      this.value = this.raw === undefined ? undefined : this.decode(this.raw);
      this.decoded = true;
    }
    return this.value;
  }

  /** The state value; an Error when the group has none (check `exists`). */
  get() {
    const v = this.getOption();
    if (v === undefined) throw new Error('the group has no state (it was never set, or was removed): check `state.exists`');
    return v;
  }

  /** Replaces the state (`undefined`/`null` are refused: call `remove()`). */
  update(value) {
    if (value === undefined || value === null) throw new Error('state.update(undefined): not a state value; call state.remove() instead');
    this.value = value;
    this.changed = true;
  }

  /** Removes the state of the group. */
  remove() {
    this.value = undefined;
    this.changed = true;
  }

  /** Processing-time timeout: the group is called with `hasTimedOut` when `ms` milliseconds of
   * processing time pass without new rows. Lasts until the key's next call. */
  setTimeoutDuration(ms) {
    const v = BigInt(ms);
    if (v < 0n) throw new Error(`setTimeoutDuration(${ms}): the duration cannot be negative`);
    this.timeout = { tag: 'processing-time-ms', val: v };
  }

  /** Event-time timeout: the group is called with `hasTimedOut` in the first batch whose watermark
   * is past `micros` (microseconds since the epoch, not Spark's ms). Lasts until the next call. */
  setTimeoutTimestamp(micros) {
    this.timeout = { tag: 'event-time', val: BigInt(micros) };
  }

  /** Adds a timer to the key; the last of registerTimer / deleteTimer for one timer wins. */
  registerTimer(timer) {
    this.register ??= [];
    this.delete = (this.delete ?? []).filter((t) => !sameTimer(timer)(t));
    if (!this.register.some(sameTimer(timer))) this.register.push({ domain: timer.domain, at: BigInt(timer.at) });
  }

  /** Removes a timer of the key; the last of registerTimer / deleteTimer for one timer wins. */
  deleteTimer(timer) {
    this.delete ??= [];
    this.register = (this.register ?? []).filter((t) => !sameTimer(timer)(t));
    if (!this.delete.some(sameTimer(timer))) this.delete.push({ domain: timer.domain, at: BigInt(timer.at) });
  }

  /** Expire the state `ms` milliseconds of processing time after this update. */
  setTtl(ms) {
    const v = BigInt(ms);
    if (v < 0n) throw new Error(`setTtl(${ms}): the TTL cannot be negative`);
    this.ttlMs = v;
  }

  /** The WIT `group-result` of this call. */
  result(encode) {
    let state;
    if (!this.changed) state = KEEP;
    else if (this.value === undefined) state = this.raw !== undefined ? REMOVE : KEEP; // nothing stored: nothing to remove
    else state = { tag: 'update', val: encode(this.value) };
    return {
      state,
      timeout: this.timeout ?? CLEAR,
      ttlMs: this.ttlMs,
      registerTimers: this.register ?? NO_TIMERS,
      deleteTimers: this.delete ?? NO_TIMERS,
    };
  }
}

const KEEP = Object.freeze({ tag: 'keep' });
const NO_TIMERS = Object.freeze([]);
const REMOVE = Object.freeze({ tag: 'remove' });
const CLEAR = Object.freeze({ tag: 'clear' });

/** The rows of one group: column views of the call's rows `start..end`, in arrival order, with
 * the `Batch` getters' names and errors (typed arrays are views, nothing is copied);
 * `rowIndex(i)` is row i's index in the call's `rows` batch (what `BatchError(.., row)` names). */
export class GroupRows {
  constructor(batch, start, end) {
    this.batch = batch;
    this.start = start;
    this.end = end;
  }

  get length() {
    return this.end - this.start;
  }

  get numRows() {
    return this.end - this.start;
  }

  rowIndex(i) {
    return this.start + i;
  }

  /** A BatchError naming this group's row `i` (by its index in the call): `throw` it. */
  errorAt(i, message) {
    return new BatchError(message, this.start + i);
  }

  primitive(name, dt) {
    const d = this.batch.typed(name, dt);
    const { start: s, end: e } = this;
    const v = d.validity ?? undefined;
    return new PrimitiveView(d.values.val.subarray(s, e), v === undefined ? undefined : v.slice(s, e), dt);
  }

  varLen(name, dt, View) {
    const d = this.batch.typed(name, dt);
    const { start: s, end: e } = this;
    const v = d.validity ?? undefined;
    // Offsets keep pointing into the call's data: no bytes are copied.
    return new View({ offsets: d.values.val.offsets.subarray(s, e + 1), data: d.values.val.data }, v === undefined ? undefined : v.slice(s, e));
  }

  strs(name) {
    return this.varLen(name, DataType.UTF8, StrView);
  }

  utf8Bytes(name) {
    return this.varLen(name, DataType.UTF8, BinaryView);
  }

  binaries(name) {
    return this.varLen(name, DataType.BINARY, BinaryView);
  }
}

/**
 * The typed column getters of `Batch` and `GroupRows`, through their `primitive(name, type)`:
 * `f64s` (double), `i32s` (int), `i64s` (bigint, BigInt values), `timestamps` (BigInt
 * microseconds since the epoch), `bools` (boolean).
 */
const PRIMITIVE_GETTERS = {
  f64s: DataType.FLOAT64,
  i32s: DataType.INT32,
  i64s: DataType.INT64,
  timestamps: DataType.TIMESTAMP,
  bools: DataType.BOOLEAN,
};
for (const cls of [Batch, GroupRows]) {
  for (const [method, dataType] of Object.entries(PRIMITIVE_GETTERS)) {
    cls.prototype[method] = function (name) {
      return this.primitive(name, dataType);
    };
  }
}

/** One group of a `processGroup` call: `key` (array of values: string, number, BigInt for
 * bigint/timestamp, boolean, Uint8Array; null at nulls), `rows` (GroupRows), `batchTime`
 * (`batchId`, `watermark` (µs BigInt or undefined), `processingTime` (µs BigInt)),
 * `hasTimedOut`, `expiredTimers` (earliest first; they are deleted: register them again to keep
 * them) and `index` (the group's position in the call). */
export class Group {
  constructor(index, key, rows, batchTime, hasTimedOut, expiredTimers) {
    this.index = index;
    this.key = key;
    this.rows = rows;
    this.batchTime = batchTime;
    this.hasTimedOut = hasTimedOut;
    this.expiredTimers = expiredTimers;
  }

  get numRows() {
    return this.rows.length;
  }
}

/** The output rows of one `processGroups` call (all its groups), in output-schema order. Values
 * go straight into one builder per column; null is null. */
export class GroupOutput {
  constructor(schema) {
    this.schema = schema;
    this.builders = schema.map((f) => builderFor(f.dataType));
    this.width = schema.length;
    this.key = []; // the current group's key values (set by the SDK per group)
    this.keyColumns = undefined; // the call's key columns (WIT column-data), for appendKeyed
    this.group = 0; // the current group's index in them
    this.numRows = 0;
  }

  // Key value i of the current group into builder i: var-len keys as their input bytes (no
  // decoding and encoding again).
  pushKey(i) {
    const d = this.keyColumns?.[i];
    const tag = d?.values.tag;
    if ((tag === 'utf8' || tag === 'binary') && this.key[i] !== null) {
      const { offsets, data } = d.values.val;
      this.builders[i].pushRange(data, offsets[this.group], offsets[this.group + 1]);
    } else {
      this.builders[i].push(this.key[i]);
    }
  }

  /** One row: a value for every output column, in order. */
  append(...values) {
    if (values.length !== this.width) throw new BatchError(`out.append: ${values.length} values for ${this.width} output columns`);
    for (let i = 0; i < values.length; i++) this.builders[i].push(values[i]);
    this.numRows++;
  }

  /** One row: the group's key values, then `values` (output schemas that start with the key). */
  appendKeyed(...values) {
    const k = this.key;
    if (k.length + values.length !== this.width) {
      throw new BatchError(`out.appendKeyed: ${k.length} key values and ${values.length} values for ${this.width} output columns`);
    }
    for (let i = 0; i < k.length; i++) this.pushKey(i);
    for (let i = 0; i < values.length; i++) this.builders[k.length + i].push(values[i]);
    this.numRows++;
  }

  /** Many rows: one sequence per output column, all of one length. */
  extend(columns) {
    if (columns.length !== this.width) throw new BatchError(`out.extend: ${columns.length} columns for ${this.width} output columns`);
    const n = columns.length ? columns[0].length : 0;
    columns.forEach((c, i) => {
      if (c.length !== n) throw new BatchError(`out.extend: column ${i} has ${c.length} values, column 0 has ${n}`);
    });
    for (let i = 0; i < columns.length; i++) for (const v of columns[i]) this.builders[i].push(v);
    this.numRows += n;
  }

  /** Many rows of the current group: its key values repeated, then one sequence per remaining
   * output column. */
  extendKeyed(columns) {
    const n = columns.length ? columns[0].length : 0;
    this.extend([...this.key.map((k) => new Array(n).fill(k)), ...columns]);
  }

  toWit() {
    return {
      numRows: this.numRows,
      columns: this.schema.map((f, i) => ({ name: f.name, data: this.builders[i].finish() })),
    };
  }
}

/** Base class of a stateful plugin: `constructor(config)`, `outputSchema(key, input)`,
 * `processGroup(group, state, out)`; optionally `stateVersion()`, `migrateState(from, bytes)`,
 * a static `STATE_STRUCT` (a `Struct` format: the state is an array packed with it, the same
 * bytes as Python's struct) or `encodeState(value)` / `decodeState(bytes)` (default: JSON). */
export class StatefulProcessor {
  constructor(config) {}

  outputSchema(key, input) {
    throw new PluginError('outputSchema is not implemented');
  }

  processGroup(group, state, out) {
    throw new PluginError('processGroup is not implemented');
  }

  /** The version of the state layout this plugin writes. */
  stateVersion() {
    return 1;
  }

  /** State bytes written by version `fromVersion`, rewritten in this version's layout. */
  migrateState(fromVersion, data) {
    throw new PluginError(
      `this plugin writes state version ${this.stateVersion()} and cannot read version ${fromVersion} (it implements no migrateState)`,
    );
  }

  encodeState(value) {
    return jsonEncode(value);
  }

  decodeState(data) {
    return jsonDecode(data);
  }
}

function codec(p) {
  const format = p.constructor.STATE_STRUCT;
  const proto = StatefulProcessor.prototype;
  if (format && p.encodeState === proto.encodeState && p.decodeState === proto.decodeState) {
    const s = new Struct(format);
    return [(v) => s.pack(v), (b) => s.unpack(b)];
  }
  return [(v) => p.encodeState(v), (b) => p.decodeState(b)];
}

/** A column as JavaScript values (null at nulls; string for utf8, Uint8Array for binary). */
function columnValues(data) {
  const { tag, val } = data.values;
  const validity = data.validity ?? undefined;
  if (tag === 'utf8') return new StrView(val, validity).strings();
  if (tag === 'binary') return Array.from(new BinaryView(val, validity));
  const out = new Array(val.length);
  for (let i = 0; i < val.length; i++) out[i] = isNullAt(validity, i) ? null : tag === 'boolean' ? !!val[i] : val[i];
  return out;
}

/** The `stateful` world's exports, running `cls`: `export const { init, outputSchema,
 * stateVersion, migrateState, processGroups } = exportStateful(MyPlugin);` */
export function exportStateful(cls) {
  let plugin, encode, decode, schema;

  // The schema outputSchema gave; derived from the call's batches when this instance was not
  // asked (the host may ask another instance).
  const outSchema = (input) => {
    if (schema === undefined) {
      try {
        schema = new Schema(plugin.outputSchema(batchSchema(input.keys.columns), batchSchema(input.rows.columns)));
      } catch (e) {
        if (e instanceof PluginError) throw new BatchError(e.message);
        throw e;
      }
    }
    return schema;
  };

  return {
    init(config) {
      try {
        plugin = new cls(new Config(config));
        [encode, decode] = codec(plugin);
      } catch (e) {
        throw errString(e);
      }
    },
    outputSchema(key, input) {
      if (plugin === undefined) throw NOT_INITIALISED;
      try {
        schema = new Schema(plugin.outputSchema(new Schema(key), new Schema(input)));
        return schema.toWit();
      } catch (e) {
        throw errString(e);
      }
    },
    stateVersion() {
      const p = plugin ?? Object.create(cls.prototype);
      return p.stateVersion() >>> 0;
    },
    migrateState(fromVersion, data) {
      if (plugin === undefined) throw NOT_INITIALISED;
      try {
        return Uint8Array.from(plugin.migrateState(fromVersion, data));
      } catch (e) {
        throw errString(e);
      }
    },
    processGroups(time, input) {
      if (plugin === undefined) throw { message: NOT_INITIALISED, row: undefined };
      try {
        return processGroupsWith(plugin, outSchema(input), encode, decode, time, input);
      } catch (e) {
        throw errBatch(e);
      }
    },
  };
}

/** One `process-groups` call of `plugin` (what the export does; usable natively in tests). */
export function processGroupsWith(plugin, schema, encode, decode, time, input) {
  const out = new GroupOutput(schema);
  const rows = new Batch(input.rows);
  const offsets = input.rowOffsets;
  const n = offsets.length - 1;
  const keyCols = input.keys.columns.map((c) => columnValues(c.data));
  const { timedOut, states, expiredTimers } = input;
  if (!(input.keys.numRows === n && timedOut.length === n && states.length === n && expiredTimers.length === n)) {
    throw new BatchError(
      `the host sent ${n} groups but ${input.keys.numRows} keys, ${states.length} states, ` +
        `${timedOut.length} timed-out flags and ${expiredTimers.length} timer lists (a bug in the host)`,
    );
  }
  const results = new Array(n);
  out.keyColumns = input.keys.columns.map((c) => c.data);
  const width = keyCols.length;
  for (let g = 0; g < n; g++) {
    const key = new Array(width);
    for (let i = 0; i < width; i++) key[i] = keyCols[i][g];
    out.key = key;
    out.group = g;
    const to = !!timedOut[g];
    const gs = new GroupState(states[g], decode, to, time);
    plugin.processGroup(new Group(g, key, new GroupRows(rows, offsets[g], offsets[g + 1]), time, to, expiredTimers[g]), gs, out);
    results[g] = gs.result(encode);
  }
  return { results, output: out.toWit() };
}

/** The (encode, decode) pair of a stateful plugin's states (for tests). */
export function stateCodec(plugin) {
  return codec(plugin);
}

// ---------------------------------------------------------------------------------------------
// The batch-sink world: foreachBatch, writing through an Emitter

/** A batch to emit, built column by column: from the input's rows (`EmitBatch.take(input, rows)`,
 * `EmitBatch.all(input)`, `.takeColumn(input, name, rows)`) and computed columns (`.column(name,
 * data)`, `.pushI64(name, values)`, ...), checked when emitted (one length, distinct names). */
export class EmitBatch {
  constructor() {
    this.columns = [];
    this.error = undefined;
  }

  /** Every column of `input`, at `rows` (in this order). */
  static take(input, rows) {
    const b = new EmitBatch();
    b.checkRows('EmitBatch.take', input, rows);
    if (b.error === undefined) for (const c of input.columns) b.columns.push({ name: c.name, data: takeColumn(c.data, rows) });
    return b;
  }

  /** Every column and row of `input`. */
  static all(input) {
    const b = new EmitBatch();
    for (const c of input.columns) b.columns.push({ name: c.name, data: c.data });
    return b;
  }

  checkRows(what, input, rows) {
    for (const r of rows) {
      if (!(r >= 0 && r < input.numRows)) {
        this.error ??= `${what}: row ${r} is out of range (the input has ${input.numRows} rows)`;
        return;
      }
    }
  }

  /** The input column `name` at `rows`. */
  takeColumn(input, name, rows) {
    const i = input.indexOf(name);
    if (i === undefined) {
      this.error ??= `takeColumn("${name}"): input has no column \`${name}\`; its columns are: ${names(input.columns.map((c) => c.name))}`;
      return this;
    }
    this.checkRows(`takeColumn("${name}")`, input, rows);
    if (this.error === undefined) this.columns.push({ name, data: takeColumn(input.columns[i].data, rows) });
    return this;
  }

  /** A computed column: a column-data or a builder. */
  column(name, data) {
    this.columns.push({ name, data: toColumnData(data) });
    return this;
  }

  /** The batch, checked: one length, distinct names. */
  finish() {
    if (this.error !== undefined) throw new BatchError(this.error);
    const seen = new Set();
    let n;
    for (const c of this.columns) {
      if (seen.has(c.name)) throw new BatchError(`column \`${c.name}\` is given twice`);
      seen.add(c.name);
      const len = columnLength(c.data);
      if (n === undefined) n = len;
      else if (len !== n) throw new BatchError(`column \`${c.name}\` has ${len} values, column \`${this.columns[0].name}\` has ${n}`);
    }
    const b = new Batch(0, []);
    b.numRows = n ?? 0;
    b.columns = this.columns;
    return b;
  }
}

/** Where a batch-sink plugin writes: `out.emit(output, batch)` (an EmitBatch or a Batch). In a
 * component it calls the host's `weir:plugin/outputs.emit`; `Emitter.recording()` /
 * `Emitter.declaring(names)` keep the emits for tests (`emitted`, `batches(output)`). */
/**
 * The typed column helpers of `Output` and `EmitBatch`: `pushF64(name, values)` and the like add
 * a computed column of that type, one value (or null) per output row.
 */
const TYPED_COLUMNS = {
  pushF64: 'float64',
  pushI32: 'int32',
  pushI64: 'int64',
  pushTimestamp: 'timestamp',
  pushBool: 'boolean',
  pushStr: 'utf8',
  pushBinary: 'binary',
};
for (const cls of [Output, EmitBatch]) {
  for (const [method, dataType] of Object.entries(TYPED_COLUMNS)) {
    cls.prototype[method] = function (name, values) {
      return this.column(name, columnFrom(dataType, values));
    };
  }
}

export class Emitter {
  constructor(target, declared) {
    this.target = target; // (output, witBatch) => void, throwing the host's message; or undefined: record
    this.declared = declared;
    this.emitted = []; // [{output, batch}] when recording
  }

  /** Keeps every emit (tests). */
  static recording() {
    return new Emitter(undefined, undefined);
  }

  /** Keeps every emit, refusing outputs not in `declared` as the host does (tests). */
  static declaring(declared) {
    return new Emitter(undefined, [...declared]);
  }

  /** Emits through `fn(output, witBatch)`, which throws the refusal (a string) (the host's). */
  static toHost(fn) {
    return new Emitter(fn, undefined);
  }

  /** Writes `batch` to the output named `output`. Nothing is visible before the host commits the
   * whole batch. Throws a BatchError when the batch is malformed (naming the output and the
   * column), when the job declares no output of this name, or when the output refuses it; the
   * host fails the batch after a refused emit even if the plugin goes on. */
  emit(output, batch) {
    let b;
    try {
      b = batch instanceof Batch ? batch : batch.finish();
    } catch (e) {
      if (e instanceof BatchError) throw new BatchError(`emit to ${JSON.stringify(output)}: ${e.message}`);
      throw e;
    }
    if (this.target !== undefined) {
      try {
        this.target(output, b.toWit());
      } catch (e) {
        if (typeof e === 'string') throw new BatchError(e);
        if (e !== null && typeof e === 'object' && typeof e.payload === 'string') throw new BatchError(e.payload);
        throw e;
      }
      return;
    }
    if (this.declared !== undefined && !this.declared.includes(output)) {
      const list = this.declared.map((n) => JSON.stringify(n)).join(', ');
      throw new BatchError(
        `emit to ${JSON.stringify(output)}: the job declares no such output (declared: ${list}); ` +
          `add a [[sink.output]] with name = ${JSON.stringify(output)}`,
      );
    }
    this.emitted.push({ output, batch: b });
  }

  /** The batches recorded for `output`, in emit order. */
  batches(output) {
    return this.emitted.filter((e) => e.output === output).map((e) => e.batch);
  }
}

/** Base class of a foreachBatch plugin: `constructor(config)`, `writeBatch(batchId, input, out)`
 * (batchId a BigInt, input a Batch, out an Emitter). */
export class BatchSink {
  constructor(config) {}

  writeBatch(batchId, input, out) {
    throw new PluginError('writeBatch is not implemented');
  }
}

/** Runs one `writeBatch` natively with a recording emitter (tests): the emits, in order. */
export function writeBatchWith(plugin, batchId, input, out = Emitter.recording()) {
  plugin.writeBatch(BigInt(batchId), input instanceof Batch ? input : new Batch(input), out);
  return out.emitted;
}

// The host's `weir:plugin/outputs`: `weir plugin build` (tools/js/build.mjs) imports it in the
// bundle's entry and puts it at globalThis.__weirOutputs, so app.js never imports it and the same
// module loads under node.
function hostEmitter() {
  const outputs = globalThis.__weirOutputs;
  if (outputs === undefined) {
    throw new PluginError('no host outputs: build a batch-sink plugin with `weir plugin build` (under node, use Emitter.recording())');
  }
  return Emitter.toHost((output, batch) => outputs.emit(output, batch));
}

/** The `batch-sink` world's exports, running `cls`: `export const { init, writeBatch } =
 * exportBatchSink(MySink);` */
export function exportBatchSink(cls) {
  let plugin;
  return {
    init(config) {
      try {
        plugin = new cls(new Config(config));
      } catch (e) {
        throw errString(e);
      }
    },
    writeBatch(batchId, data) {
      if (plugin === undefined) throw NOT_INITIALISED;
      try {
        plugin.writeBatch(batchId, new Batch(data), hostEmitter());
      } catch (e) {
        if (e instanceof BatchError) throw e.row === undefined ? e.message : `row ${e.row}: ${e.message}`;
        throw errString(e);
      }
    },
  };
}
