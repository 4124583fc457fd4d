"""weir_guest: write a weir map plugin in Python, the same way as with the Rust SDK.

A plugin is a class with `__init__(self, config)`, `output_schema(self, input)` and
`map_batch(self, input)`, exported with one line::

    import weir_guest as w

    class Tax(w.Mapper):
        def __init__(self, config: w.Config):
            self.factor = 1.0 + config.get_f64("tax_rate", 0.2)

        def output_schema(self, input: w.Schema) -> w.Schema:
            input.require("amount", w.DataType.FLOAT64)
            return input.try_with(w.Field("amount_with_tax", w.DataType.FLOAT64, True))

        def map_batch(self, input: w.Batch) -> w.Output:
            amount = input.f64s("amount")
            return (w.Output.same_rows()
                    .pass_through_all(input)
                    .column("amount_with_tax", amount.map(lambda a: a * self.factor)))
            # amount.map(lambda a: a >= 100.0, to=w.DataType.BOOLEAN) gives a boolean column

    WitWorld = w.export(Tax)      # componentize-py looks for `WitWorld` in the app module

Build it with `weir plugin build DIR` (DIR holds `app.py`; this file is put on the path).
Config parsing, error messages and the output layout match the Rust SDK (guest-sdk/src), so a
plugin ported from Rust to Python (or back) behaves the same.

Raise `PluginError(message)` from `__init__` / `output_schema` to refuse a config or schema, and
`BatchError(message, row=None)` from `map_batch` to fail a batch (naming the input row at fault
lets the host dead-letter that record).

Stateful plugins (the `stateful` world: flatMapGroupsWithState / applyInPandasWithState)
--------------------------------------------------------------------------------------------
A class with `__init__(self, config)`, `output_schema(self, key, input)` and
`process_group(self, group, state, out)`, exported with `export_stateful`; the app module also
says `WORLD = "stateful"` at top level, which tells `weir plugin build` which world to build
(without it, a module calling `export_stateful(` is built as `stateful` too; anything else as
`mapper`)::

    import weir_guest as w

    WORLD = "stateful"

    class RunningTotal(w.StatefulProcessor):
        STATE_STRUCT = "<qd"          # state = (count, total), packed with struct (see below)

        def output_schema(self, key: w.Schema, input: w.Schema) -> w.Schema:
            input.require("amount", w.DataType.FLOAT64)
            return w.Schema([*key, w.Field("n", w.DataType.INT64, False),
                                   w.Field("total", w.DataType.FLOAT64, False)])

        def process_group(self, group: w.Group, state: w.GroupState, out: w.GroupOutput):
            n, total = state.get() if state.exists else (0, 0.0)
            for a in group.rows.f64s("amount"):
                n, total = n + 1, total + (a or 0.0)
            state.update((n, total))
            out.append_keyed(n, total)                 # the key columns, then n and total

    WitWorld = w.export_stateful(RunningTotal)

`process_group` is called once per group of the micro-batch (a key with new rows, a timeout that
fired or timers that fired), in the host's order, with:

- `group.key`: the key values as a tuple (str for `string` keys, int for integer and timestamp
  keys, ...); `group.rows`: the group's rows, arrival order, as column views restricted to the
  group (`group.rows.f64s("amount")`, `.timestamps("event_time")`, `.strs(..)`, ...; `len()`;
  `group.rows.row_index(i)` is the row's index in the call's batch, what `BatchError(row=)` needs);
  `group.batch_time` (`batch_id`, `watermark` in microseconds or None, `processing_time` in
  microseconds); `group.has_timed_out`; `group.expired_timers` (`Timer(domain, at)`, earliest
  first).
- `state`, Spark's GroupState: `exists`, `get()` (ValueError when there is none), `get_option()`,
  `update(value)`, `remove()`, `has_timed_out`, `set_timeout_duration(ms)` (processing time),
  `set_timeout_timestamp(micros)` (event time, microseconds since the epoch: not Spark's ms),
  `register_timer(timer)` / `delete_timer(timer)` (`event_time_timer(at)`,
  `processing_time_timer(at)`), `set_ttl(ms)`. As in Spark, the timeout is reset on every call: a
  call that sets none clears it. A state neither updated nor removed is kept as it was (its bytes
  do not cross back).
- `out`, the output rows of the whole call (turned into columns once, when the call returns):
  `out.append(*values)` (one row, every output column), `out.append_keyed(*values)` (the group's
  key values first: for output schemas that start with the key columns), `out.extend(columns)` /
  `out.extend_keyed(columns)` (many rows at once, one list per column); None is null.

State values are encoded by the SDK: with pickle by default (any picklable value; the bytes are
meant for this plugin only), or, when the class sets `STATE_STRUCT` to a `struct` format (e.g.
`"<qqqd"`), as that struct packed from a tuple (faster, and a layout another language can read).
Override `encode_state(value) -> bytes` / `decode_state(data) -> value` for anything else. When the
layout changes, raise `state_version()` (default 1) and implement
`migrate_state(from_version, data) -> bytes`, which the host calls on every stored state before a
hot-swapped plugin sees it (the default refuses). `BatchError` from `process_group` fails the call;
`PluginError` from `output_schema` or `migrate_state` is reported as the function's error.

foreachBatch plugins (the `batch-sink` world: foreachBatch / foreach)
--------------------------------------------------------------------
A class with `__init__(self, config)` and `write_batch(self, batch_id, input, out)`, exported
with `export_batch_sink`; the app module says `WORLD = "batch-sink"` (a module calling
`export_batch_sink(` is built as `batch-sink` without it)::

    import weir_guest as w

    WORLD = "batch-sink"

    class Router(w.BatchSink):
        def __init__(self, config: w.Config):
            self.threshold = config.get_f64("threshold", 100.0)

        def write_batch(self, batch_id: int, input: w.Batch, out: w.Emitter):
            amount = input.f64s("amount")
            big = [r for r, a in enumerate(amount) if a is not None and a >= self.threshold]
            small = [r for r, a in enumerate(amount) if a is None or a < self.threshold]
            out.emit("big", w.EmitBatch.take(input, big))        # those rows, every column
            out.emit("small", w.EmitBatch.take(input, small))
            out.emit("counts", w.EmitBatch().push_i64("batch_id", [batch_id])
                                            .push_i64("rows", [input.num_rows]))

    WitWorld = w.export_batch_sink(Router)

`write_batch` is called once per micro-batch (or per call of rows, for `foreach`) with the batch
id, the rows as a `Batch` (the same getters as `map_batch`'s input) and an `Emitter`:
`out.emit(output, batch)` writes to the job's `[[sink.output]]` of that name, visible only once
the call returns, exactly once per batch id. A batch is an `EmitBatch`: `EmitBatch.take(input,
rows)` (every input column at those rows), `EmitBatch.all(input)`, `EmitBatch()` then
`.take_column(input, name, rows)`, `.column(name, column_data)` or `.push_f64/_i32/_i64/
_timestamp/_bool/_str/_binary(name, values)` (None is null; every column one value per row). A
refused emit (an undeclared output) raises `BatchError`; `BatchError` or `PluginError` from
`write_batch` fails the batch. `Emitter.recording()` records emits instead of calling the host,
and `write_batch(plugin, batch_id, wit_batch)` runs one call that way: a plugin's logic is
testable in plain CPython with the generated bindings (guest-sdk/python/tests/test_batch_sink.py).
"""

import pickle
import re
import struct
from itertools import accumulate
from operator import itemgetter
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence

import wit_world
from componentize_py_types import Err
from wit_world.imports import types as t

try:  # only the `stateful` world has these bindings
    from wit_world.imports import stateful_types as _st
except ImportError:  # pragma: no cover - a mapper plugin
    _st = None

try:  # only the `batch-sink` world imports the host's `emit`
    from wit_world.imports import outputs as _outputs
except ImportError:  # pragma: no cover - a mapper or stateful plugin
    _outputs = None

DataType = t.DataType
"""The column types: BOOLEAN, INT32, INT64, FLOAT64, UTF8, BINARY, TIMESTAMP (microseconds)."""

Field = t.Field
"""A column of a schema: `Field(name, data_type, nullable)`."""

_WIT_NAMES = {
    DataType.BOOLEAN: "boolean",
    DataType.INT32: "int32",
    DataType.INT64: "int64",
    DataType.FLOAT64: "float64",
    DataType.UTF8: "utf8",
    DataType.BINARY: "binary",
    DataType.TIMESTAMP: "timestamp",
}
_DDL_NAMES = {
    DataType.BOOLEAN: "boolean",
    DataType.INT32: "int",
    DataType.INT64: "bigint",
    DataType.FLOAT64: "double",
    DataType.UTF8: "string",
    DataType.BINARY: "binary",
    DataType.TIMESTAMP: "timestamp",
}


def type_name(dt: DataType) -> str:
    """`float64 (double)`: the WIT name and the job-file name, as the Rust SDK prints them."""
    wit, ddl = _WIT_NAMES[dt], _DDL_NAMES[dt]
    return wit if wit == ddl else f"{wit} ({ddl})"


def _names(names: Iterable[str]) -> str:
    names = list(names)
    return ", ".join(names) if names else "(none)"


class PluginError(Exception):
    """Raise from `__init__` or `output_schema`: the job stops at start with this message."""


class BatchError(Exception):
    """Raise from `map_batch`: the batch fails; `row` names the input row at fault, if known."""

    def __init__(self, message: str, row: Optional[int] = None):
        super().__init__(message)
        self.message = message
        self.row = row


# ---------------------------------------------------------------------------------------------
# Config: `key=value` pairs, parsed exactly as the Rust SDK's `Config`.

# Rust's `str::trim` removes Unicode White_Space, which is not quite Python's `str.strip()`.
_WS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
# Rust's `f64::from_str` grammar (Python's float() also takes `1_0` and spaces, Rust does not).
_F64 = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|(?i:inf|infinity|nan))\Z")
_INT = re.compile(r"[+-]?[0-9]+\Z")


class Config:
    """The operator's `config` string: `key=value` pairs separated by `,` or newlines, spaces
    around keys and values ignored, empty entries skipped; `raw` keeps the string as given."""

    def __init__(self, raw: str):
        self.raw = raw
        self.pairs: List[tuple] = []
        for entry in re.split(r"[,\n]", raw):
            entry = entry.strip(_WS)
            if not entry:
                continue
            if "=" not in entry:
                raise PluginError(f"config entry `{entry}` is not `key=value`")
            key, value = entry.split("=", 1)
            key, value = key.strip(_WS), value.strip(_WS)
            if not key:
                raise PluginError(f"config entry `{entry}` has an empty key")
            if any(k == key for k, _ in self.pairs):
                raise PluginError(f"config key `{key}` is given twice")
            self.pairs.append((key, value))

    def get(self, key: str) -> Optional[str]:
        """The value of `key`, or None."""
        for k, v in self.pairs:
            if k == key:
                return v
        return None

    def get_str(self, key: str, default: str) -> str:
        """The value of `key`, or `default`."""
        v = self.get(key)
        return default if v is None else v

    def require(self, key: str) -> str:
        """The value of `key`; fails naming it when absent."""
        v = self.get(key)
        if v is None:
            raise PluginError(f"config key `{key}` is required")
        return v

    def get_f64(self, key: str, default: float) -> float:
        """`key` as a float (same syntax as Rust's f64), or `default`."""
        v = self.get(key)
        if v is None:
            return default
        if not _F64.match(v):
            raise PluginError(f"config key `{key}`: `{v}` is not a number")
        return float(v)

    def _get_int(self, key: str, default: int, bits: int, what: str) -> int:
        v = self.get(key)
        if v is None:
            return default
        if not _INT.match(v) or not -(2 ** (bits - 1)) <= int(v) < 2 ** (bits - 1):
            raise PluginError(f"config key `{key}`: `{v}` is not {what}")
        return int(v)

    def get_i64(self, key: str, default: int) -> int:
        """`key` as a signed 64-bit integer, or `default`."""
        return self._get_int(key, default, 64, "an integer")

    def get_i32(self, key: str, default: int) -> int:
        """`key` as a signed 32-bit integer, or `default`."""
        return self._get_int(key, default, 32, "a 32-bit integer")

    def get_bool(self, key: str, default: bool) -> bool:
        """`key` as `true` or `false`, or `default`."""
        v = self.get(key)
        if v is None:
            return default
        if v not in ("true", "false"):
            raise PluginError(f"config key `{key}`: `{v}` is not `true` or `false`")
        return v == "true"

    def reject_unknown(self, known: Sequence[str]) -> None:
        """Fails on the first key not in `known` (catches typos in job files)."""
        for k, _ in self.pairs:
            if k not in known:
                raise PluginError(f"unknown config key `{k}` (known keys: {', '.join(known)})")


# ---------------------------------------------------------------------------------------------
# Schemas


class Schema(list):
    """A list of `Field`s with the Rust SDK's helpers."""

    def field(self, name: str) -> Optional[Field]:
        """The field named `name`, or None."""
        return next((f for f in self if f.name == name), None)

    def index_of(self, name: str) -> Optional[int]:
        """The position of the field named `name`, or None."""
        return next((i for i, f in enumerate(self) if f.name == name), None)

    def require(self, name: str, data_type: DataType) -> Field:
        """The field `name`, checked to be of `data_type`; PluginError naming what is wrong."""
        f = self.field(name)
        if f is None:
            raise PluginError(
                f"input has no column `{name}` (of type {type_name(data_type)}); "
                f"its columns are: {_names(x.name for x in self)}"
            )
        if f.data_type != data_type:
            raise PluginError(f"input column `{name}` must be {type_name(data_type)}, but it is {type_name(f.data_type)}")
        return f

    def try_with(self, field: Field) -> "Schema":
        """A copy with `field` appended; PluginError when the name is taken."""
        if self.field(field.name) is not None:
            raise PluginError(f"cannot add column `{field.name}`: the input already has a column of that name")
        return Schema(list(self) + [field])


# ---------------------------------------------------------------------------------------------
# Input: views by column name


class PrimitiveView:
    """A fixed-width column: `values` (one per row; unspecified at nulls) and `validity` (None when
    nothing is null). Iterating gives Optional values."""

    def __init__(self, values: list, validity: Optional[List[bool]], kind=None):
        self.values = values
        self.validity = validity
        self._kind = kind  # the WIT ColumnValues case these values came in

    def __len__(self) -> int:
        return len(self.values)

    def get(self, row: int):
        """The value at `row`, or None when null."""
        if self.validity is not None and not self.validity[row]:
            return None
        return self.values[row]

    def __iter__(self) -> Iterator:
        if self.validity is None:
            return iter(self.values)
        return (v if ok else None for v, ok in zip(self.values, self.validity))

    def map(self, f: Callable, to: Optional[DataType] = None) -> "t.ColumnData":
        """A column of `f(value)` per row, of type `to` (default: this column's type), null where
        this one is null (`f` is not called there)."""
        kind = self._kind if to is None else _VIEW_KINDS[to]
        null = _NULLS[kind]
        if self.validity is None:
            values = [f(v) for v in self.values]
        else:
            values = [f(v) if ok else null for v, ok in zip(self.values, self.validity)]
        return t.ColumnData(kind(values), _normalize(self.validity))


class BinaryView:
    """A var-len column, Arrow layout: value i is `data[offsets[i]:offsets[i+1]]`."""

    def __init__(self, v: "t.VarLen", validity: Optional[List[bool]]):
        self.offsets = v.offsets
        self.data = v.data
        self.validity = validity

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def value(self, row: int) -> bytes:
        """The bytes at `row`, ignoring validity."""
        return self.data[self.offsets[row] : self.offsets[row + 1]]

    def get_bytes(self, row: int) -> Optional[bytes]:
        """The bytes at `row`, or None when null."""
        if self.validity is not None and not self.validity[row]:
            return None
        return self.value(row)

    get = get_bytes

    def iter_bytes(self) -> Iterator[Optional[bytes]]:
        """The values as bytes (None where null), row by row."""
        return (self.get_bytes(i) for i in range(len(self)))

    def __iter__(self) -> Iterator[Optional[bytes]]:
        return self.iter_bytes()


class StrView(BinaryView):
    """A `string` column: like BinaryView, but `get` decodes UTF-8."""

    def get(self, row: int) -> Optional[str]:
        """The text at `row`, or None when null."""
        b = self.get_bytes(row)
        return None if b is None else b.decode("utf-8")

    def __iter__(self) -> Iterator[Optional[str]]:
        return (self.get(i) for i in range(len(self)))


_VIEW_KINDS = {
    DataType.BOOLEAN: t.ColumnValues_Boolean,
    DataType.INT32: t.ColumnValues_Int32,
    DataType.INT64: t.ColumnValues_Int64,
    DataType.FLOAT64: t.ColumnValues_Float64,
    DataType.TIMESTAMP: t.ColumnValues_Timestamp,
    DataType.UTF8: t.ColumnValues_Utf8,
    DataType.BINARY: t.ColumnValues_Binary,
}
_KIND_TYPES = {v: k for k, v in _VIEW_KINDS.items()}


_NULLS = {
    t.ColumnValues_Boolean: False,
    t.ColumnValues_Int32: 0,
    t.ColumnValues_Int64: 0,
    t.ColumnValues_Float64: 0.0,
    t.ColumnValues_Timestamp: 0,
}


def _normalize(validity: Optional[List[bool]]) -> Optional[List[bool]]:
    """A validity list only crosses when something is null."""
    if validity is None or all(validity):
        return None
    return list(validity)


class Batch:
    """The input of `map_batch`: `num_rows`, `columns` (the WIT records), typed getters by name."""

    def __init__(self, wit_batch: "t.Batch"):
        self.wit = wit_batch
        self.num_rows = wit_batch.num_rows
        self.columns = wit_batch.columns

    def index_of(self, name: str) -> Optional[int]:
        """The position of column `name`, or None."""
        return next((i for i, c in enumerate(self.columns) if c.name == name), None)

    def column(self, name: str) -> "t.Column":
        """The column `name`; BatchError listing the columns when absent."""
        i = self.index_of(name)
        if i is None:
            raise BatchError(f"input has no column `{name}`; its columns are: {_names(c.name for c in self.columns)}")
        return self.columns[i]

    def _typed(self, name: str, dt: DataType):
        c = self.column(name)
        found = _KIND_TYPES[type(c.data.values)]
        if found != dt:
            raise BatchError(f"column `{name}` is {type_name(found)}, not {type_name(dt)}")
        return c.data

    def _primitive(self, name: str, dt: DataType) -> PrimitiveView:
        d = self._typed(name, dt)
        return PrimitiveView(d.values.value, d.validity, type(d.values))

    def f64s(self, name: str) -> PrimitiveView:
        """The `double` column `name`."""
        return self._primitive(name, DataType.FLOAT64)

    def i32s(self, name: str) -> PrimitiveView:
        """The `int` column `name`."""
        return self._primitive(name, DataType.INT32)

    def i64s(self, name: str) -> PrimitiveView:
        """The `bigint` column `name`."""
        return self._primitive(name, DataType.INT64)

    def timestamps(self, name: str) -> PrimitiveView:
        """The `timestamp` column `name` (microseconds since the epoch)."""
        return self._primitive(name, DataType.TIMESTAMP)

    def bools(self, name: str) -> PrimitiveView:
        """The `boolean` column `name`."""
        return self._primitive(name, DataType.BOOLEAN)

    def strs(self, name: str) -> StrView:
        """The `string` column `name`."""
        d = self._typed(name, DataType.UTF8)
        return StrView(d.values.value, d.validity)

    def utf8_bytes(self, name: str) -> BinaryView:
        """The `string` column `name` as raw UTF-8 bytes (no decoding): for hashing or comparing."""
        d = self._typed(name, DataType.UTF8)
        return BinaryView(d.values.value, d.validity)

    def binaries(self, name: str) -> BinaryView:
        """The `binary` column `name`."""
        d = self._typed(name, DataType.BINARY)
        return BinaryView(d.values.value, d.validity)


# ---------------------------------------------------------------------------------------------
# Output


def encode_var_len(values: Iterable[Optional[bytes]]) -> "tuple[t.VarLen, Optional[List[bool]]]":
    """Arrow-style offsets + flat data (and validity when some value is None) for byte values."""
    values = values if isinstance(values, list) else list(values)
    validity = None
    if None in values:
        validity = [v is not None for v in values]
        values = [b"" if v is None else v for v in values]
    offsets = list(accumulate(map(len, values), initial=0))
    return t.VarLen(offsets, b"".join(values)), validity


def _primitive_column(kind, values: Iterable, null) -> "t.ColumnData":
    out, validity = [], []
    for v in values:
        validity.append(v is not None)
        out.append(null if v is None else v)
    return t.ColumnData(kind(out), _normalize(validity))


class _TypedColumns:
    """The typed column helpers of `Output` and `EmitBatch`: each adds a computed column of its
    type, one Optional per output row, through the class's `column(name, data)`."""

    def push_f64(self, name: str, values: Iterable[Optional[float]]):
        """A `double` column."""
        return self.column(name, _primitive_column(t.ColumnValues_Float64, values, 0.0))

    def push_i32(self, name: str, values: Iterable[Optional[int]]):
        """An `int` column."""
        return self.column(name, _primitive_column(t.ColumnValues_Int32, values, 0))

    def push_i64(self, name: str, values: Iterable[Optional[int]]):
        """A `bigint` column."""
        return self.column(name, _primitive_column(t.ColumnValues_Int64, values, 0))

    def push_timestamp(self, name: str, values: Iterable[Optional[int]]):
        """A `timestamp` column (microseconds since the epoch)."""
        return self.column(name, _primitive_column(t.ColumnValues_Timestamp, values, 0))

    def push_bool(self, name: str, values: Iterable[Optional[bool]]):
        """A `boolean` column."""
        return self.column(name, _primitive_column(t.ColumnValues_Boolean, values, False))

    def push_str(self, name: str, values: Iterable[Optional[str]]):
        """A `string` column."""
        vl, validity = encode_var_len(None if v is None else v.encode("utf-8") for v in values)
        return self.column(name, t.ColumnData(t.ColumnValues_Utf8(vl), validity))

    def push_binary(self, name: str, values: Iterable[Optional[bytes]]):
        """A `binary` column."""
        vl, validity = encode_var_len(values)
        return self.column(name, t.ColumnData(t.ColumnValues_Binary(vl), validity))


class Output(_TypedColumns):
    """What `map_batch` returns: the input rows (`same_rows()` or `select(rows)`), then the
    columns in output-schema order, passed through (no data crosses back) or computed."""

    def __init__(self, rows: Optional[List[int]]):
        self.rows = rows
        self.columns: list = []  # (name, int index | str name | ColumnData)

    @staticmethod
    def same_rows() -> "Output":
        """Output row i is input row i (a map)."""
        return Output(None)

    @staticmethod
    def select(rows: List[int]) -> "Output":
        """Output row i is input row rows[i] (a filter, a flatMap)."""
        return Output(list(rows))

    def pass_through_all(self, input: Batch) -> "Output":
        """Every input column, in order, by index."""
        for i, c in enumerate(input.columns):
            self.columns.append((c.name, i))
        return self

    def pass_through(self, name: str) -> "Output":
        """The input column `name`, by index (resolved when the batch is returned)."""
        self.columns.append((name, name))
        return self

    def column(self, name: str, data: "t.ColumnData") -> "Output":
        """A computed column (e.g. from `PrimitiveView.map`)."""
        self.columns.append((name, data))
        return self

    def to_wit(self, input: Batch) -> "t.OutputBatch":
        """Checks the output against `input` (as the Rust SDK does) and builds the WIT record."""
        n_in = input.num_rows
        if self.rows is not None:
            for r in self.rows:
                if not 0 <= r < n_in:
                    raise BatchError(f"Output::select: row {r} is out of range (the input has {n_in} rows)")
        num_rows = n_in if self.rows is None else len(self.rows)
        cols, seen = [], set()
        for name, what in self.columns:
            if isinstance(what, str):
                i = input.index_of(what)
                if i is None:
                    raise BatchError(
                        f'pass_through("{what}"): the input has no such column; '
                        f"its columns are: {_names(c.name for c in input.columns)}"
                    )
                data = t.OutputData_Input(i)
            elif isinstance(what, int):
                data = t.OutputData_Input(what)
            else:
                v = what.values
                n = len(v.value.offsets) - 1 if isinstance(v, (t.ColumnValues_Utf8, t.ColumnValues_Binary)) else len(v.value)
                if n != num_rows:
                    raise BatchError(f"output column `{name}` has {n} values for {num_rows} rows (one value per output row is needed)")
                data = t.OutputData_Computed(what)
            if name in seen:
                raise BatchError(f"output column `{name}` is given twice")
            seen.add(name)
            cols.append(t.OutputColumn(name, data))
        return t.OutputBatch(num_rows, self.rows, cols)


# ---------------------------------------------------------------------------------------------
# Export


class Mapper:
    """Base class of a plugin (optional, documents the methods): `__init__(config)`,
    `output_schema(input) -> Schema`, `map_batch(input) -> Output`."""

    def __init__(self, config: Config):
        pass

    def output_schema(self, input: Schema) -> Schema:
        raise NotImplementedError

    def map_batch(self, input: Batch) -> Output:
        raise NotImplementedError


_NOT_INITIALISED = "the plugin was called before `init` (a bug in the host)"


def export(cls) -> type:
    """The `WitWorld` class componentize-py exports, running `cls` (state kept between calls)."""
    state = {}

    def plugin(err):
        if "plugin" not in state:
            raise Err(err)
        return state["plugin"]

    class WitWorld(wit_world.WitWorld):
        def init(self, config: str) -> None:
            try:
                state["plugin"] = cls(Config(config))
            except PluginError as e:
                raise Err(str(e))

        def output_schema(self, input):
            p = plugin(_NOT_INITIALISED)
            try:
                return list(p.output_schema(Schema(input)))
            except PluginError as e:
                raise Err(str(e))

        def map_batch(self, input):
            p = plugin(t.BatchError(_NOT_INITIALISED, None))
            try:
                batch = Batch(input)
                return p.map_batch(batch).to_wit(batch)
            except BatchError as e:
                raise Err(t.BatchError(e.message, e.row))

    return WitWorld


# ---------------------------------------------------------------------------------------------
# The stateful world: per-key state, timeouts and timers


def _need_stateful(what: str):
    if _st is None:
        raise PluginError(f"{what} needs the `stateful` world: put `WORLD = \"stateful\"` in app.py")
    return _st


if _st is not None:
    TimeDomain = _st.TimeDomain
    """Which clock a timer follows: PROCESSING_TIME or EVENT_TIME."""

    Timer = _st.Timer
    """A timer of a key: `Timer(domain, at)`, `at` in microseconds since the epoch."""

    BatchTime = _st.BatchTime
    """`batch_id`, `watermark` (microseconds, None without a watermark), `processing_time` (µs)."""


def event_time_timer(at: int) -> "Timer":
    """A timer that fires in the first batch whose watermark is at or past `at` (microseconds)."""
    st = _need_stateful("event_time_timer")
    return st.Timer(st.TimeDomain.EVENT_TIME, at)


def processing_time_timer(at: int) -> "Timer":
    """A timer that fires in the first batch whose processing time is at or past `at` (µs)."""
    st = _need_stateful("processing_time_timer")
    return st.Timer(st.TimeDomain.PROCESSING_TIME, at)


def _python_values(d: "t.ColumnData") -> list:
    """A column as a list of Python values (None at nulls; str for utf8, bytes for binary)."""
    v = d.values
    if isinstance(v, t.ColumnValues_Utf8):
        return list(StrView(v.value, d.validity))
    if isinstance(v, t.ColumnValues_Binary):
        return list(BinaryView(v.value, d.validity))
    if d.validity is None:
        return list(v.value)
    return [x if ok else None for x, ok in zip(v.value, d.validity)]


def _batch_schema(b: "t.Batch") -> Schema:
    """The schema of a batch as it came (every field nullable: a batch does not say)."""
    return Schema(Field(c.name, _KIND_TYPES[type(c.data.values)], True) for c in b.columns)


class GroupRows:
    """The rows of one group: column views of the call's rows `start..end`, in arrival order.
    The views have the `Batch` getters' names and errors; `row_index(i)` is row i's index in the
    call's `rows` batch (what `BatchError(row=...)` names)."""

    __slots__ = ("batch", "start", "end", "_cache")

    def __init__(self, batch: Batch, cache: dict, start: int, end: int):
        self.batch = batch  # the call's whole `rows` batch
        self.start = start
        self.end = end
        self._cache = cache  # (name, type) -> (values, validity, kind), shared by the call's groups

    def __len__(self) -> int:
        return self.end - self.start

    @property
    def num_rows(self) -> int:
        return self.end - self.start

    def row_index(self, i: int) -> int:
        """The index in the call's `rows` batch of this group's row `i`."""
        return self.start + i

    def error_at(self, i: int, message: str) -> "BatchError":
        """A BatchError naming this group's row `i` (by its index in the call): `raise` it."""
        return BatchError(message, self.start + i)

    def _resolve(self, name: str, dt: DataType):
        c = self._cache.get((name, dt))
        if c is None:
            d = self.batch._typed(name, dt)
            c = (d.values.value, d.validity, type(d.values))
            self._cache[(name, dt)] = c
        return c

    def _primitive(self, name: str, dt: DataType) -> PrimitiveView:
        values, validity, kind = self._resolve(name, dt)
        s, e = self.start, self.end
        if validity is not None:
            validity = validity[s:e]
        return PrimitiveView(values[s:e], validity, kind)

    def _var_len(self, name: str, dt: DataType, view):
        values, validity, _ = self._resolve(name, dt)
        s, e = self.start, self.end
        # Offsets keep pointing into the call's data: no bytes are copied.
        return view(t.VarLen(values.offsets[s : e + 1], values.data), None if validity is None else validity[s:e])

    def f64s(self, name: str) -> PrimitiveView:
        """The `double` column `name`."""
        return self._primitive(name, DataType.FLOAT64)

    def i32s(self, name: str) -> PrimitiveView:
        """The `int` column `name`."""
        return self._primitive(name, DataType.INT32)

    def i64s(self, name: str) -> PrimitiveView:
        """The `bigint` column `name`."""
        return self._primitive(name, DataType.INT64)

    def timestamps(self, name: str) -> PrimitiveView:
        """The `timestamp` column `name` (microseconds since the epoch)."""
        return self._primitive(name, DataType.TIMESTAMP)

    def bools(self, name: str) -> PrimitiveView:
        """The `boolean` column `name`."""
        return self._primitive(name, DataType.BOOLEAN)

    def strs(self, name: str) -> StrView:
        """The `string` column `name`."""
        return self._var_len(name, DataType.UTF8, StrView)

    def utf8_bytes(self, name: str) -> BinaryView:
        """The `string` column `name` as raw UTF-8 bytes."""
        return self._var_len(name, DataType.UTF8, BinaryView)

    def binaries(self, name: str) -> BinaryView:
        """The `binary` column `name`."""
        return self._var_len(name, DataType.BINARY, BinaryView)


class Group:
    """One group of a `process_group` call: `key` (tuple of Python values), `rows` (GroupRows),
    `batch_time`, `has_timed_out`, `expired_timers` (earliest first; they are deleted: register
    them again to keep them) and `index` (the group's position in the call)."""

    __slots__ = ("index", "key", "rows", "batch_time", "has_timed_out", "expired_timers")

    def __init__(self, index, key, rows, batch_time, has_timed_out, expired_timers):
        self.index = index
        self.key = key
        self.rows = rows
        self.batch_time = batch_time
        self.has_timed_out = has_timed_out
        self.expired_timers = expired_timers

    @property
    def num_rows(self) -> int:
        """The number of the group's rows in this call (0 for a timeout or timers)."""
        return len(self.rows)


_UNSET = object()


class GroupState:
    """Spark's GroupState for one group in one call. What the call did is sent back to the host:
    the state (`keep` when neither updated nor removed), the timeout (`clear` when none was set in
    this call, as Spark resets it on every call), the TTL, and the timers to add or delete."""

    __slots__ = ("_raw", "_value", "_changed", "_decode", "_timeout", "_ttl", "_register", "_delete",
                 "has_timed_out", "batch_time")

    def __init__(self, raw: Optional[bytes], decode, has_timed_out: bool, batch_time):
        self._raw = raw  # the stored bytes, None when the key has no state
        self._value = _UNSET  # decoded lazily, or set by update / remove
        self._changed = False  # update() or remove() was called
        self._decode = decode
        self._timeout = None
        self._ttl = None
        self._register = None
        self._delete = None
        self.has_timed_out = has_timed_out
        """True when the call is for a timeout that fired (the group then has no rows)."""
        self.batch_time = batch_time

    @property
    def exists(self) -> bool:
        """Whether the group has a state (after this call's update / remove, if any)."""
        if self._changed:
            return self._value is not None
        return self._raw is not None

    def get_option(self):
        """The state value, or None when there is none."""
        if self._value is _UNSET:
            self._value = None if self._raw is None else self._decode(self._raw)
        return self._value

    def get(self):
        """The state value; ValueError when the group has none (check `exists`)."""
        v = self.get_option()
        if v is None:
            raise ValueError("the group has no state (it was never set, or was removed): check `state.exists`")
        return v

    def update(self, value) -> None:
        """Replaces the state (`None` is refused: call `remove()`)."""
        if value is None:
            raise ValueError("state.update(None): None is not a state value; call state.remove() instead")
        self._value = value
        self._changed = True

    def remove(self) -> None:
        """Removes the state of the group."""
        self._value = None
        self._changed = True

    def set_timeout_duration(self, ms: int) -> None:
        """Processing-time timeout: the group is called with `has_timed_out` when `ms`
        milliseconds of processing time pass without new rows (from this batch's processing time).
        Lasts until the key's next call: set it again in every call."""
        ms = int(ms)
        if ms < 0:
            raise ValueError(f"set_timeout_duration({ms}): the duration cannot be negative")
        self._timeout = _st.TimeoutUpdate_ProcessingTimeMs(ms)

    def set_timeout_timestamp(self, micros: int) -> None:
        """Event-time timeout: the group is called with `has_timed_out` in the first batch whose
        watermark is past `micros` (microseconds since the epoch, not Spark's milliseconds).
        Lasts until the key's next call: set it again in every call."""
        self._timeout = _st.TimeoutUpdate_EventTime(int(micros))

    def register_timer(self, timer: "Timer") -> None:
        """Adds a timer to the key (a no-op when it has it); the last of `register_timer` and
        `delete_timer` for one timer wins."""
        if self._register is None:
            self._register, self._delete = [], self._delete or []
        if timer in self._delete:
            self._delete.remove(timer)
        if timer not in self._register:
            self._register.append(timer)

    def delete_timer(self, timer: "Timer") -> None:
        """Removes a timer of the key (a no-op when it has none); the last of `register_timer`
        and `delete_timer` for one timer wins."""
        if self._delete is None:
            self._delete, self._register = [], self._register or []
        if timer in self._register:
            self._register.remove(timer)
        if timer not in self._delete:
            self._delete.append(timer)

    def set_ttl(self, ms: int) -> None:
        """Expire the state `ms` milliseconds of processing time after this update (the host
        removes it without calling the plugin). Without it, the state keeps the TTL it had."""
        ms = int(ms)
        if ms < 0:
            raise ValueError(f"set_ttl({ms}): the TTL cannot be negative")
        self._ttl = ms

    def _result(self, encode) -> "_st.GroupResult":
        if not self._changed:
            state = _KEEP
        elif self._value is None:
            state = _REMOVE if self._raw is not None else _KEEP  # nothing stored: nothing to remove
        else:
            state = _st.StateUpdate_Update(encode(self._value))
        return _st.GroupResult(
            state,
            _CLEAR if self._timeout is None else self._timeout,
            self._ttl,
            self._register or [],
            self._delete or [],
        )


if _st is not None:
    _KEEP = _st.StateUpdate_Keep()
    _REMOVE = _st.StateUpdate_Remove()
    _CLEAR = _st.TimeoutUpdate_Clear()


def _column_data(field: Field, values: list) -> "t.ColumnData":
    """One output column from Python values (None is null), of the field's type."""
    dt = field.data_type
    if dt == DataType.UTF8 or dt == DataType.BINARY:
        if dt == DataType.UTF8:
            if None in values:
                values = [None if v is None else v.encode("utf-8") for v in values]
            else:
                values = [v.encode("utf-8") for v in values]
        vl, validity = encode_var_len(values)
        return t.ColumnData(_VIEW_KINDS[dt](vl), validity)
    kind = _VIEW_KINDS[dt]
    if None in values:
        null = _NULLS[kind]
        return t.ColumnData(kind([null if v is None else v for v in values]), [v is not None for v in values])
    return t.ColumnData(kind(values), None)


class GroupOutput:
    """The output rows of one `process_groups` call (all its groups), in output-schema order.
    Rows are kept as tuples and turned into one list per column once, when the call returns."""

    __slots__ = ("schema", "rows", "key", "_width")

    def __init__(self, schema: Schema):
        self.schema = schema
        self.rows: List[tuple] = []
        self.key: tuple = ()  # the current group's key values (set by the SDK per group)
        self._width = len(schema)

    @property
    def num_rows(self) -> int:
        return len(self.rows)

    def append(self, *values) -> None:
        """One row: a value for every output column, in order (None is null)."""
        if len(values) != self._width:
            raise BatchError(f"out.append: {len(values)} values for {self._width} output columns")
        self.rows.append(values)

    def append_keyed(self, *values) -> None:
        """One row: the group's key values, then `values` (for an output schema that starts with
        the key columns)."""
        row = self.key + values
        if len(row) != self._width:
            raise BatchError(
                f"out.append_keyed: {len(self.key)} key values and {len(values)} values for "
                f"{self._width} output columns"
            )
        self.rows.append(row)

    def extend(self, columns: Sequence[Sequence]) -> None:
        """Many rows: one sequence per output column, all of one length."""
        if len(columns) != self._width:
            raise BatchError(f"out.extend: {len(columns)} columns for {self._width} output columns")
        n = len(columns[0]) if columns else 0
        for i, v in enumerate(columns):
            if len(v) != n:
                raise BatchError(f"out.extend: column {i} has {len(v)} values, column 0 has {n}")
        self.rows.extend(zip(*columns))

    def extend_keyed(self, columns: Sequence[Sequence]) -> None:
        """Many rows of the current group: its key values repeated, then one sequence per
        remaining output column."""
        n = len(columns[0]) if columns else 0
        self.extend([[k] * n for k in self.key] + list(columns))

    def to_wit(self) -> "t.Batch":
        rows = self.rows
        return t.Batch(
            len(rows),
            [t.Column(f.name, _column_data(f, list(map(itemgetter(i), rows)))) for i, f in enumerate(self.schema)],
        )


class StatefulProcessor:
    """Base class of a stateful plugin: `__init__(config)`, `output_schema(key, input) -> Schema`,
    `process_group(group, state, out)`; optionally `state_version()`, `migrate_state(...)`,
    `STATE_STRUCT` or `encode_state` / `decode_state`."""

    STATE_STRUCT: Optional[str] = None
    """A `struct` format: the state is a tuple packed with it. None: pickle."""

    def __init__(self, config: Config):
        pass

    def output_schema(self, key: Schema, input: Schema) -> Schema:
        raise NotImplementedError

    def process_group(self, group: Group, state: GroupState, out: GroupOutput) -> None:
        raise NotImplementedError

    def state_version(self) -> int:
        """The version of the state layout this plugin writes."""
        return 1

    def migrate_state(self, from_version: int, data: bytes) -> bytes:
        """State bytes written by version `from_version`, rewritten in this version's layout."""
        raise PluginError(
            f"this plugin writes state version {self.state_version()} and cannot read version "
            f"{from_version} (it implements no migrate_state)"
        )

    def encode_state(self, value: Any) -> bytes:
        if self.STATE_STRUCT is not None:
            return struct.pack(self.STATE_STRUCT, *value)
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def decode_state(self, data: bytes) -> Any:
        if self.STATE_STRUCT is not None:
            return struct.unpack(self.STATE_STRUCT, data)
        return pickle.loads(data)


def _codec(p: StatefulProcessor):
    """(encode, decode) for `p`'s state: the struct's own bound methods when nothing overrides
    the defaults (the fast path), else the plugin's methods."""
    cls = type(p)
    if (
        cls.encode_state is StatefulProcessor.encode_state
        and cls.decode_state is StatefulProcessor.decode_state
        and getattr(p, "STATE_STRUCT", None) is not None
    ):
        s = struct.Struct(p.STATE_STRUCT)
        return (lambda v: s.pack(*v)), s.unpack
    return p.encode_state, p.decode_state


def export_stateful(cls) -> type:
    """The `WitWorld` class componentize-py exports for the `stateful` world, running `cls`."""
    st = _need_stateful("export_stateful")
    state = {}

    def plugin(err):
        if "plugin" not in state:
            raise Err(err)
        return state["plugin"]

    def out_schema(p, input) -> Schema:
        """The schema `output_schema` gave; derived from the call's batches when this instance
        was not asked (the host may ask another instance)."""
        s = state.get("schema")
        if s is None:
            try:
                s = Schema(p.output_schema(_batch_schema(input.keys), _batch_schema(input.rows)))
            except PluginError as e:
                raise BatchError(str(e))
            state["schema"] = s
        return s

    class WitWorld(wit_world.WitWorld):
        def init(self, config: str) -> None:
            try:
                p = cls(Config(config))
            except PluginError as e:
                raise Err(str(e))
            state["plugin"] = p
            state["codec"] = _codec(p)

        def output_schema(self, key, input):
            p = plugin(_NOT_INITIALISED)
            try:
                s = Schema(p.output_schema(Schema(key), Schema(input)))
            except PluginError as e:
                raise Err(str(e))
            state["schema"] = s
            return list(s)

        def state_version(self) -> int:
            p = state.get("plugin")
            return int(p.state_version() if p is not None else cls.state_version(cls.__new__(cls)))

        def migrate_state(self, from_version: int, data: bytes) -> bytes:
            p = plugin(_NOT_INITIALISED)
            try:
                return bytes(p.migrate_state(from_version, data))
            except PluginError as e:
                raise Err(str(e))

        def process_groups(self, time, input):
            p = plugin(t.BatchError(_NOT_INITIALISED, None))
            try:
                encode, decode = state["codec"]
                out = GroupOutput(out_schema(p, input))
                rows = Batch(input.rows)
                cache: dict = {}
                offsets = input.row_offsets
                n = len(offsets) - 1
                key_cols = [_python_values(c.data) for c in input.keys.columns]
                keys = list(zip(*key_cols)) if key_cols else [()] * n
                timed_out, states, timers = input.timed_out, input.states, input.expired_timers
                if not (len(keys) == len(timed_out) == len(states) == len(timers) == n):
                    raise BatchError(
                        f"the host sent {n} groups but {len(keys)} keys, {len(states)} states, "
                        f"{len(timed_out)} timed-out flags and {len(timers)} timer lists (a bug in the host)"
                    )
                results = []
                process = p.process_group
                for g in range(n):
                    key = keys[g]
                    out.key = key
                    gs = GroupState(states[g], decode, timed_out[g], time)
                    process(Group(g, key, GroupRows(rows, cache, offsets[g], offsets[g + 1]), time,
                                  timed_out[g], timers[g]), gs, out)
                    results.append(gs._result(encode))
                return st.StatefulOutput(results, out.to_wit())
            except BatchError as e:
                raise Err(t.BatchError(e.message, e.row))

    return WitWorld


# ---------------------------------------------------------------------------------------------
# The batch-sink world: foreachBatch, emit with builders


def _take_column_data(d: "t.ColumnData", rows: List[int]) -> "t.ColumnData":
    """The values of a column at `rows` (in order, repeats allowed); validity kept only when a
    taken value is null (as the Rust SDK's `ColumnData::take`)."""
    v = d.values
    if isinstance(v, (t.ColumnValues_Utf8, t.ColumnValues_Binary)):
        vl = v.value
        offsets, data = vl.offsets, vl.data
        parts = [data[offsets[r] : offsets[r + 1]] for r in rows]
        values = type(v)(t.VarLen(list(accumulate(map(len, parts), initial=0)), b"".join(parts)))
    else:
        src = v.value
        values = type(v)([src[r] for r in rows])
    validity = None if d.validity is None else _normalize([d.validity[r] for r in rows])
    return t.ColumnData(values, validity)


def _column_len(d: "t.ColumnData") -> int:
    v = d.values
    if isinstance(v, (t.ColumnValues_Utf8, t.ColumnValues_Binary)):
        return len(v.value.offsets) - 1
    return len(v.value)


def _out_of_range(what: str, input: "Batch", rows: List[int]) -> Optional[str]:
    n = input.num_rows
    for r in rows:
        if not 0 <= r < n:
            return f"{what}: row {r} is out of range (the input has {n} rows)"
    return None


class EmitBatch(_TypedColumns):
    """A batch to emit, built column by column: `EmitBatch.take(input, rows)` (every input column
    at those rows), `EmitBatch.all(input)`, or `EmitBatch()` then columns. The row count is the
    taken rows' count, else the first column's length; a mistake (a row out of range, a short
    column, a name given twice) fails the emit naming the output and the column."""

    __slots__ = ("num_rows", "columns", "error")

    def __init__(self):
        self.num_rows: Optional[int] = None
        self.columns: List["t.Column"] = []
        self.error: Optional[str] = None  # the first mistake, raised when emitted

    @staticmethod
    def take(input: "Batch", rows: Iterable[int]) -> "EmitBatch":
        """Every column of `input`, in order, at `rows` (in that order, repeats allowed); an
        empty `rows` gives an empty batch with the input's columns."""
        rows = list(rows)
        b = EmitBatch()
        b.num_rows = len(rows)
        b.error = _out_of_range("EmitBatch::take", input, rows)
        if b.error is None:
            b.columns = [t.Column(c.name, _take_column_data(c.data, rows)) for c in input.columns]
        return b

    @staticmethod
    def all(input: "Batch") -> "EmitBatch":
        """Every row and column of `input`."""
        b = EmitBatch()
        b.num_rows = input.num_rows
        b.columns = list(input.columns)
        return b

    def take_column(self, input: "Batch", name: str, rows: Iterable[int]) -> "EmitBatch":
        """Appends the input column `name` at `rows`."""
        if self.error is not None:
            return self
        rows = list(rows)
        self.error = _out_of_range("EmitBatch::take_column", input, rows)
        if self.error is not None:
            return self
        try:
            c = input.column(name)
        except BatchError as e:
            self.error = f'take_column("{name}"): {e.message}'
            return self
        return self.column(name, _take_column_data(c.data, rows))

    def column(self, name: str, data: "t.ColumnData") -> "EmitBatch":
        """Appends a computed column (e.g. from `PrimitiveView.map`)."""
        if self.num_rows is None:
            self.num_rows = _column_len(data)
        self.columns.append(t.Column(name, data))
        return self

    def to_wit(self) -> "t.Batch":
        """The finished WIT batch; BatchError on the first mistake made while building it."""
        if self.error is not None:
            raise BatchError(self.error)
        n = self.num_rows or 0
        seen = set()
        for c in self.columns:
            if c.name in seen:
                raise BatchError(f"column `{c.name}` is given twice")
            seen.add(c.name)
            m = _column_len(c.data)
            if m != n:
                raise BatchError(f"column `{c.name}` has {m} values for {n} rows")
            if c.data.validity is not None and len(c.data.validity) != n:
                raise BatchError(f"column `{c.name}` has {len(c.data.validity)} validity entries for {n} rows")
        return t.Batch(n, list(self.columns))


class Emitter:
    """The plugin's handle on the job's outputs during one `write_batch` call. In a Wasm instance
    `emit` calls the host; `Emitter.recording()` keeps the emits in `emitted` (a list of
    `(output, wit Batch)`) for tests, `Emitter.declaring([...])` also refuses other outputs with
    the host's message."""

    __slots__ = ("_send", "declared", "emitted")

    def __init__(self, send=None, declared: Optional[Sequence[str]] = None):
        self._send = send  # the host's emit, or None to record
        self.declared = None if declared is None else list(declared)
        self.emitted: List[tuple] = []

    @staticmethod
    def recording() -> "Emitter":
        return Emitter()

    @staticmethod
    def declaring(declared: Sequence[str]) -> "Emitter":
        return Emitter(None, declared)

    def emit(self, output: str, batch) -> None:
        """Writes `batch` (an `EmitBatch`, a `Batch` or a WIT batch) to the output `output`.
        BatchError when the batch is malformed or the output refuses it (an undeclared name)."""
        if isinstance(batch, EmitBatch):
            try:
                wit = batch.to_wit()
            except BatchError as e:
                raise BatchError(f"emit to {_quote(output)}: {e.message}")
        elif isinstance(batch, Batch):
            wit = batch.wit
        else:
            wit = batch
        if self._send is not None:
            try:
                self._send(output, wit)
            except Err as e:
                raise BatchError(str(e.value))
            return
        if self.declared is not None and output not in self.declared:
            listed = ", ".join(_quote(n) for n in self.declared)
            raise BatchError(
                f"emit to {_quote(output)}: the job declares no such output (declared: {listed}); "
                f"add a [[sink.output]] with name = {_quote(output)}"
            )
        self.emitted.append((output, wit))

    def batches(self, output: str) -> List["t.Batch"]:
        """The recorded batches emitted to `output`, in order."""
        return [b for o, b in self.emitted if o == output]


def _quote(s: str) -> str:
    """A name quoted as Rust's `{:?}` does for plain names (what the host's messages show)."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class BatchSink:
    """Base class of a foreachBatch plugin: `__init__(config)`,
    `write_batch(batch_id, input, out)`."""

    def __init__(self, config: Config):
        pass

    def write_batch(self, batch_id: int, input: Batch, out: Emitter) -> None:
        raise NotImplementedError


def _error_text(e: BatchError) -> str:
    """What the host reports for a failed batch: `row N: ` first when the error names a row."""
    return e.message if e.row is None else f"row {e.row}: {e.message}"


def write_batch(plugin: BatchSink, batch_id: int, input: "t.Batch") -> List[tuple]:
    """Runs one `write_batch` call natively with a recording Emitter and returns its emits, in
    order, as `(output, wit Batch)`: what the export does, for unit tests."""
    out = Emitter.recording()
    plugin.write_batch(batch_id, Batch(input), out)
    return out.emitted


def export_batch_sink(cls) -> type:
    """The `WitWorld` class componentize-py exports for the `batch-sink` world, running `cls`."""
    if _outputs is None:
        raise PluginError('export_batch_sink needs the `batch-sink` world: put `WORLD = "batch-sink"` in app.py')
    state = {}

    class WitWorld(wit_world.WitWorld):
        def init(self, config: str) -> None:
            try:
                state["plugin"] = cls(Config(config))
            except PluginError as e:
                raise Err(str(e))

        def write_batch(self, batch_id: int, data) -> None:
            p = state.get("plugin")
            if p is None:
                raise Err(_NOT_INITIALISED)
            try:
                p.write_batch(batch_id, Batch(data), Emitter(_outputs.emit))
            except BatchError as e:
                raise Err(_error_text(e))
            except PluginError as e:
                raise Err(str(e))

    return WitWorld
