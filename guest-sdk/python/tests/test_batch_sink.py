"""Tests of weir_guest's batch-sink world (foreachBatch) and of plugins/router-py, in plain
CPython: the WIT bindings are generated with componentize-py, and the host's `emit` is simulated
here. Run from the repository root:

    .venv-plugins/bin/python guest-sdk/python/tests/test_batch_sink.py
"""
import importlib.util
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIND = tempfile.mkdtemp(prefix="weir-bindings-")
subprocess.run(
    [os.path.join(os.path.dirname(sys.executable), "componentize-py"), "-d", os.path.join(ROOT, "wit"),
     "-w", "batch-sink", "bindings", BIND],
    check=True,
)
sys.path[:0] = [BIND, os.path.join(ROOT, "guest-sdk", "python")]

import weir_guest as w  # noqa: E402
from componentize_py_types import Err  # noqa: E402
from wit_world.imports import outputs  # noqa: E402
from wit_world.imports import types as t  # noqa: E402


def load_app(name):
    spec = importlib.util.spec_from_file_location(f"app_{name.replace('-', '_')}",
                                                  os.path.join(ROOT, "plugins", name, "app.py"))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def column(dt, values):
    if dt == w.DataType.UTF8:
        vl, validity = w.encode_var_len(None if v is None else v.encode() for v in values)
        return t.ColumnData(t.ColumnValues_Utf8(vl), validity)
    validity = None if all(v is not None for v in values) else [v is not None for v in values]
    return t.ColumnData(w._VIEW_KINDS[dt]([0 if v is None else v for v in values]), validity)


def batch(schema, rows):
    return t.Batch(len(rows), [t.Column(n, column(dt, [r[i] for r in rows])) for i, (n, dt) in enumerate(schema)])


def read(b):
    """A WIT batch as (column names, rows of Python values)."""
    cols = [w._python_values(c.data) for c in b.columns]
    return [c.name for c in b.columns], [tuple(r) for r in zip(*cols)] if cols else []


EVENTS = [("id", w.DataType.UTF8), ("amount", w.DataType.FLOAT64)]


class Host:
    """The host's side of `emit`: the declared outputs, what each call emitted."""

    def __init__(self, declared):
        self.declared = declared
        self.emitted = []

    def emit(self, output, data):
        if output not in self.declared:
            raise Err(f'emit to "{output}": the job declares no such output')
        self.emitted.append((output, read(data)))


class Router(unittest.TestCase):
    app = load_app("router-py")

    def world(self, config=""):
        host = Host(["big", "small", "counts"])
        outputs.emit = host.emit  # what the component's import would call
        world = self.app.WitWorld()
        world.init(config)
        return world, host

    def test_rows_are_routed_by_amount_and_counted_through_the_export(self):
        world, host = self.world()
        world.write_batch(4, batch(EVENTS, [("a1", 50.0), ("a2", 150.0), ("a3", None), ("a4", 100.0)]))
        self.assertEqual(host.emitted, [
            ("big", (["id", "amount"], [("a2", 150.0), ("a4", 100.0)])),
            ("small", (["id", "amount"], [("a1", 50.0), ("a3", None)])),
            ("counts", (["batch_id", "rows"], [(4, 4)])),
        ])

    def test_empty_outputs_are_still_emitted_and_the_threshold_is_configurable(self):
        world, host = self.world("threshold=1000")
        world.write_batch(0, batch(EVENTS, [("x", 999.0)]))
        self.assertEqual(host.emitted[0], ("big", (["id", "amount"], [])))
        self.assertEqual(host.emitted[1], ("small", (["id", "amount"], [("x", 999.0)])))

    def test_bad_config_and_bad_input_are_named(self):
        world = self.app.WitWorld()
        with self.assertRaises(Err) as e:
            world.init("threshold=lots")
        self.assertEqual(e.exception.value, "config key `threshold`: `lots` is not a number")
        with self.assertRaises(Err) as e:
            world.init("treshold=1")
        self.assertEqual(e.exception.value, "unknown config key `treshold` (known keys: threshold)")
        world, _ = self.world()
        with self.assertRaises(Err) as e:
            world.write_batch(0, batch([("id", w.DataType.UTF8)], [("a",)]))
        self.assertEqual(e.exception.value, "input has no column `amount`; its columns are: id")
        with self.assertRaises(Err) as e:
            world.write_batch(0, batch([("amount", w.DataType.UTF8)], [("1",)]))
        self.assertEqual(e.exception.value, "column `amount` is utf8 (string), not float64 (double)")

    def test_the_logic_runs_natively_with_a_recording_emitter(self):
        r = self.app.Router(w.Config(""))
        emitted = w.write_batch(r, 1, batch(EVENTS, [("b1", 100.0), ("b2", 99.5)]))
        self.assertEqual([(o, read(b)) for o, b in emitted], [
            ("big", (["id", "amount"], [("b1", 100.0)])),
            ("small", (["id", "amount"], [("b2", 99.5)])),
            ("counts", (["batch_id", "rows"], [(1, 2)])),
        ])


class Sdk(unittest.TestCase):
    def input(self):
        return w.Batch(batch(EVENTS, [("a", 1.0), (None, 200.0), ("ccc", None)]))

    def test_take_copies_every_column_at_the_rows_in_order(self):
        b = w.EmitBatch.take(self.input(), [2, 0, 2]).to_wit()
        self.assertEqual(read(b), (["id", "amount"], [("ccc", None), ("a", 1.0), ("ccc", None)]))
        empty = w.EmitBatch.take(self.input(), []).to_wit()
        self.assertEqual((empty.num_rows, [c.name for c in empty.columns]), (0, ["id", "amount"]))
        # The validity list only stays when a taken row is null (as in the Rust SDK).
        b = w.EmitBatch.take(self.input(), [0, 1]).to_wit()
        self.assertEqual([c.data.validity for c in b.columns], [[True, False], None])

    def test_computed_columns_set_the_row_count(self):
        b = (w.EmitBatch().push_i64("n", [4, 5]).push_bool("ok", [True, None]).push_timestamp("t", [1, 2])
             .push_str("s", ["x", None]).push_f64("f", [0.5, None]).push_i32("i", [1, 2])
             .push_binary("b", [b"\x00", b""]).to_wit())
        self.assertEqual(read(b), (["n", "ok", "t", "s", "f", "i", "b"],
                                   [(4, True, 1, "x", 0.5, 1, b"\x00"), (5, None, 2, None, None, 2, b"")]))
        self.assertIsInstance(b.columns[2].data.values, t.ColumnValues_Timestamp)
        b = w.EmitBatch().take_column(self.input(), "amount", [1]).push_str("size", ["big"]).to_wit()
        self.assertEqual(read(b), (["amount", "size"], [(200.0, "big")]))
        self.assertEqual(w.EmitBatch().to_wit().num_rows, 0)
        self.assertEqual(read(w.EmitBatch.all(self.input()).to_wit()), read(self.input().wit))

    def test_mistakes_fail_the_emit_naming_output_row_and_column(self):
        out = w.Emitter.recording()

        def err(b):
            with self.assertRaises(w.BatchError) as e:
                out.emit("big", b)
            return e.exception.message

        self.assertEqual(err(w.EmitBatch.take(self.input(), [0, 3])),
                         'emit to "big": EmitBatch::take: row 3 is out of range (the input has 3 rows)')
        self.assertEqual(err(w.EmitBatch().take_column(self.input(), "price", [0])),
                         'emit to "big": take_column("price"): input has no column `price`; its columns are: id, amount')
        self.assertEqual(err(w.EmitBatch.take(self.input(), [0]).push_i64("n", [1, 2])),
                         'emit to "big": column `n` has 2 values for 1 rows')
        self.assertEqual(err(w.EmitBatch.take(self.input(), [1]).take_column(self.input(), "id", [0])),
                         'emit to "big": column `id` is given twice')
        self.assertEqual(out.emitted, [])

    def test_a_recording_emitter_keeps_emits_and_refuses_undeclared_outputs(self):
        out = w.Emitter.declaring(["big", "small"])
        out.emit("big", self.input())
        out.emit("small", w.EmitBatch().push_i64("n", [1]))
        out.emit("big", self.input().wit)
        self.assertEqual([o for o, _ in out.emitted], ["big", "small", "big"])
        self.assertEqual(len(out.batches("big")), 2)
        with self.assertRaises(w.BatchError) as e:
            out.emit("nowhere", self.input())
        self.assertEqual(e.exception.message,
                         'emit to "nowhere": the job declares no such output (declared: "big", "small"); '
                         'add a [[sink.output]] with name = "nowhere"')

    def test_the_export_reports_errors_with_their_row_and_refused_emits(self):
        class Failing(w.BatchSink):
            def write_batch(self, batch_id, input, out):
                if batch_id == 1:
                    raise w.BatchError("bad amount", row=2)
                out.emit("nowhere", input)

        host = Host(["big"])
        outputs.emit = host.emit
        world = w.export_batch_sink(Failing)()
        with self.assertRaises(Err) as e:
            world.write_batch(0, self.input().wit)
        self.assertEqual(e.exception.value, "the plugin was called before `init` (a bug in the host)")
        world.init("")
        with self.assertRaises(Err) as e:
            world.write_batch(1, self.input().wit)
        self.assertEqual(e.exception.value, "row 2: bad amount")
        with self.assertRaises(Err) as e:
            world.write_batch(0, self.input().wit)
        self.assertEqual(e.exception.value, 'emit to "nowhere": the job declares no such output')


if __name__ == "__main__":
    unittest.main()
