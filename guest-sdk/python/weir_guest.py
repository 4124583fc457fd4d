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
"""

import re
from typing import Callable, Iterable, Iterator, List, Optional, Sequence

import wit_world
from componentize_py_types import Err
from wit_world.imports import types as t

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
    offsets = [0]
    chunks = []
    validity = []
    end = 0
    for v in values:
        if v is None:
            validity.append(False)
        else:
            validity.append(True)
            chunks.append(v)
            end += len(v)
        offsets.append(end)
    return t.VarLen(offsets, b"".join(chunks)), _normalize(validity)


def _primitive_column(kind, values: Iterable, null) -> "t.ColumnData":
    out, validity = [], []
    for v in values:
        validity.append(v is not None)
        out.append(null if v is None else v)
    return t.ColumnData(kind(out), _normalize(validity))


class Output:
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

    def push_f64(self, name: str, values: Iterable[Optional[float]]) -> "Output":
        """A computed `double` column, one Optional per output row."""
        return self.column(name, _primitive_column(t.ColumnValues_Float64, values, 0.0))

    def push_i32(self, name: str, values: Iterable[Optional[int]]) -> "Output":
        """A computed `int` column."""
        return self.column(name, _primitive_column(t.ColumnValues_Int32, values, 0))

    def push_i64(self, name: str, values: Iterable[Optional[int]]) -> "Output":
        """A computed `bigint` column."""
        return self.column(name, _primitive_column(t.ColumnValues_Int64, values, 0))

    def push_timestamp(self, name: str, values: Iterable[Optional[int]]) -> "Output":
        """A computed `timestamp` column (microseconds since the epoch)."""
        return self.column(name, _primitive_column(t.ColumnValues_Timestamp, values, 0))

    def push_bool(self, name: str, values: Iterable[Optional[bool]]) -> "Output":
        """A computed `boolean` column."""
        return self.column(name, _primitive_column(t.ColumnValues_Boolean, values, False))

    def push_str(self, name: str, values: Iterable[Optional[str]]) -> "Output":
        """A computed `string` column."""
        vl, validity = encode_var_len(None if v is None else v.encode("utf-8") for v in values)
        return self.column(name, t.ColumnData(t.ColumnValues_Utf8(vl), validity))

    def push_binary(self, name: str, values: Iterable[Optional[bytes]]) -> "Output":
        """A computed `binary` column."""
        vl, validity = encode_var_len(values)
        return self.column(name, t.ColumnData(t.ColumnValues_Binary(vl), validity))

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
