"""weir_guest_testing: run a Python plugin's logic natively, in plain CPython (3.11+), without
Wasm or a weir host: for a plugin's own unit tests (`weir plugin new` writes one, test_app.py).

`setup(world)` generates the WIT bindings of the world with componentize-py (from the weir
checkout's `.venv-plugins`, or on PATH; cached in the temp directory per contract) and puts them
and the SDK on the module path; call it before importing `weir_guest` or the plugin's app.py::

    import sys
    sys.path.insert(0, "/path/to/weir/guest-sdk/python")
    import weir_guest_testing as wt
    wt.setup("mapper")
    import weir_guest as w
    import app

    out = wt.map_batch(app.WitWorld, wt.batch([("amount", w.DataType.FLOAT64, [120.0, None])]))
    assert wt.rows(out) == [{"amount": 120.0, "size": "big"}, {"amount": None, "size": "small"}]

Then a small simulated host runs the exported `WitWorld` the way weir calls it: `map_batch`
(init, output_schema, map_batch, passed-through columns resolved), `process_groups` (rows
grouped by key in arrival order, states carried between calls), `write_batch` (emits recorded
per output).
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(os.path.dirname(_HERE))  # the weir checkout: guest-sdk/python/..


def _tool() -> str:
    venv = os.path.join(_ROOT, ".venv-plugins", "bin", "componentize-py")
    if os.path.exists(venv):
        return venv
    found = shutil.which("componentize-py")
    if found:
        return found
    raise RuntimeError(
        f"componentize-py is not installed ({venv} is missing and none is on PATH): "
        f"run scripts/wasm-toolchain.sh in {_ROOT}"
    )


def setup(world: str) -> str:
    """Generates (once per contract and world) the bindings of `world` and puts them and the SDK
    first on sys.path; returns the bindings directory."""
    wit = os.path.join(_ROOT, "wit")
    h = hashlib.sha256(world.encode())
    for f in sorted(os.listdir(wit)):
        if f.endswith(".wit"):
            with open(os.path.join(wit, f), "rb") as fh:
                h.update(fh.read())
    dest = os.path.join(tempfile.gettempdir(), f"weir-bindings-{world}-{h.hexdigest()[:16]}")
    if not os.path.isdir(dest):
        scratch = tempfile.mkdtemp(prefix=f"weir-bindings-{world}-")
        subprocess.run([_tool(), "-d", wit, "-w", world, "bindings", scratch], check=True)
        try:
            os.rename(scratch, dest)
        except OSError:  # another test made it meanwhile
            shutil.rmtree(scratch, ignore_errors=True)
    for p in (_HERE, dest):
        if p in sys.path:
            sys.path.remove(p)
    sys.path[:0] = [dest, _HERE]
    return dest


def _w():
    import weir_guest

    return weir_guest


def _t():
    from wit_world.imports import types

    return types


def batch(columns: Sequence[Tuple[str, object, list]]) -> "object":
    """A WIT batch from `(name, DataType, values)` per column (None is null; str for string,
    bytes for binary, microseconds for timestamp)."""
    w, t = _w(), _t()
    n = len(columns[0][2]) if columns else 0
    cols = []
    for name, dt, values in columns:
        if len(values) != n:
            raise ValueError(f"column `{name}` has {len(values)} values, the first column has {n}")
        if dt in (w.DataType.UTF8, w.DataType.BINARY):
            raw = [None if v is None else (v.encode() if dt == w.DataType.UTF8 else v) for v in values]
            vl, validity = w.encode_var_len(raw)
            data = t.ColumnData(w._VIEW_KINDS[dt](vl), validity)
        else:
            kind = w._VIEW_KINDS[dt]
            validity = None if None not in values else [v is not None for v in values]
            data = t.ColumnData(kind([w._NULLS[kind] if v is None else v for v in values]), validity)
        cols.append(t.Column(name, data))
    return t.Batch(n, cols)


def rows(b) -> List[Dict[str, object]]:
    """A WIT batch's rows, as one dict per row (column name -> Python value, None for null)."""
    w = _w()
    cols = [(c.name, w._python_values(c.data)) for c in b.columns]
    return [{name: values[i] for name, values in cols} for i in range(b.num_rows)]


def schema_of(b) -> List[object]:
    """The schema of a WIT batch (every field nullable)."""
    return list(_w()._batch_schema(b))


def _check_schema(out, schema, what: str) -> None:
    w = _w()
    got = [(c.name, w._KIND_TYPES[type(c.data.values)]) for c in out.columns]
    want = [(f.name, f.data_type) for f in schema]
    if got != want:
        raise AssertionError(f"{what}: the output's columns {got} are not the declared schema's {want}")


def map_batch(world_cls, input, config: str = ""):
    """Runs a mapper's `WitWorld` as the host does (init, output_schema, map_batch) and returns
    the output as a WIT batch, passed-through columns taken from the input."""
    w, t = _w(), _t()
    world = world_cls()
    world.init(config)
    schema = world.output_schema(schema_of(input))
    out = world.map_batch(input)
    rows_ = out.rows if out.rows is not None else list(range(input.num_rows))
    cols = []
    for c in out.columns:
        if isinstance(c.data, t.OutputData_Input):
            src = input.columns[c.data.value].data
            data = src if out.rows is None else w._take_column_data(src, rows_)
        else:
            data = c.data.value
        cols.append(t.Column(c.name, data))
    result = t.Batch(out.num_rows, cols)
    _check_schema(result, schema, "map_batch")
    return result


class StatefulHost:
    """A stateful operator's host side: rows grouped by `key` columns (first-arrival order), the
    states kept between calls (`states`: key tuple -> bytes)."""

    def __init__(self, world_cls, key: Sequence[str], config: str = ""):
        self.world = world_cls()
        self.world.init(config)
        self.key = list(key)
        self.states: Dict[tuple, bytes] = {}
        self.schema = None

    def process(self, batch_id: int, input):
        """One micro-batch: returns the output as a WIT batch."""
        w, t = _w(), _t()
        from wit_world.imports import stateful_types as st

        names = [c.name for c in input.columns]
        missing = [k for k in self.key if k not in names]
        if missing:
            raise ValueError(f"the input has no key column {missing[0]!r}; its columns are: {', '.join(names)}")
        idx = [names.index(k) for k in self.key]
        values = [w._python_values(input.columns[i].data) for i in idx]
        groups: Dict[tuple, List[int]] = {}
        for r in range(input.num_rows):
            groups.setdefault(tuple(v[r] for v in values), []).append(r)
        order = [r for rs in groups.values() for r in rs]
        firsts = [rs[0] for rs in groups.values()]
        keys = t.Batch(len(groups), [t.Column(input.columns[i].name, w._take_column_data(input.columns[i].data, firsts))
                                     for i in idx])
        rows_ = t.Batch(len(order), [t.Column(c.name, w._take_column_data(c.data, order)) for c in input.columns])
        offsets = [0]
        for rs in groups.values():
            offsets.append(offsets[-1] + len(rs))
        if self.schema is None:
            self.schema = self.world.output_schema(schema_of(keys), schema_of(input))
        ks = list(groups)
        res = self.world.process_groups(
            st.BatchTime(batch_id, None, 0),
            st.Groups(keys, rows_, offsets, [self.states.get(k) for k in ks], [False] * len(ks), [[] for _ in ks]),
        )
        if len(res.results) != len(ks):
            raise AssertionError(f"process_groups returned {len(res.results)} results for {len(ks)} groups")
        for k, r in zip(ks, res.results):
            if isinstance(r.state, st.StateUpdate_Update):
                self.states[k] = r.state.value
            elif isinstance(r.state, st.StateUpdate_Remove):
                self.states.pop(k, None)
        _check_schema(res.output, self.schema, "process_groups")
        return res.output


def write_batch(world_cls, batch_id: int, input, config: str = "",
                declared: Optional[Sequence[str]] = None) -> List[Tuple[str, object]]:
    """Runs a batch-sink's `WitWorld` over one batch; returns its emits in order, as
    `(output, WIT batch)`. With `declared`, an emit to another output is refused as the host
    refuses it."""
    from componentize_py_types import Err
    from wit_world.imports import outputs

    emitted: List[Tuple[str, object]] = []

    def emit(output, data):
        if declared is not None and output not in declared:
            raise Err(f"emit to {output!r}: the job declares no such output")
        emitted.append((output, data))

    saved = outputs.emit
    outputs.emit = emit
    try:
        world = world_cls()
        world.init(config)
        world.write_batch(batch_id, input)
    finally:
        outputs.emit = saved
    return emitted
