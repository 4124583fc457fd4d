"""Tests of weir_guest's stateful world and of plugins/sessionize-py, in plain CPython: the WIT
bindings are generated with componentize-py, and the host is simulated here (groups, states,
event-time timeouts). Run from the repository root:

    .venv-plugins/bin/python guest-sdk/python/tests/test_stateful.py
"""
import importlib.util
import os
import pickle
import struct
import random
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIND = tempfile.mkdtemp(prefix="weir-bindings-")
subprocess.run(
    [os.path.join(os.path.dirname(sys.executable), "componentize-py"), "-d", os.path.join(ROOT, "wit"),
     "-w", "stateful", "bindings", BIND],
    check=True,
)
sys.path[:0] = [BIND, os.path.join(ROOT, "guest-sdk", "python")]

import weir_guest as w  # noqa: E402
from componentize_py_types import Err  # noqa: E402
from wit_world.imports import stateful_types as st  # noqa: E402
from wit_world.imports import types as t  # noqa: E402


def load_app(name):
    spec = importlib.util.spec_from_file_location(f"app_{name}", os.path.join(ROOT, "plugins", name, "app.py"))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


SCHEMA = [("user_id", w.DataType.UTF8), ("event_time", w.DataType.TIMESTAMP), ("amount", w.DataType.FLOAT64)]
KEY = [("user_id", w.DataType.UTF8)]


def column(dt, values):
    validity = None if all(v is not None for v in values) else [v is not None for v in values]
    if dt == w.DataType.UTF8:
        vl, validity = w.encode_var_len(None if v is None else v.encode() for v in values)
        return t.ColumnData(t.ColumnValues_Utf8(vl), validity)
    kind = w._VIEW_KINDS[dt]
    return t.ColumnData(kind([0 if v is None else v for v in values]), validity)


def batch(schema, rows):
    return t.Batch(len(rows), [t.Column(n, column(dt, [r[i] for r in rows])) for i, (n, dt) in enumerate(schema)])


def read_batch(b):
    cols = [w._python_values(c.data) for c in b.columns]
    return [tuple(r) for r in zip(*cols)] if cols else []


class Host:
    """Just enough of weir's stateful operator: groups in first-arrival order, state bytes, an
    event-time timeout per key that fires when the watermark passes it (Spark: late rows, those at
    or before the watermark, are dropped first)."""

    def __init__(self, world, max_groups=None):
        self.world = world
        self.states, self.timeouts = {}, {}
        self.max_groups = max_groups  # groups per call (the host may split a batch)
        self.out = []

    def run_batch(self, batch_id, rows, watermark):
        rows = [r for r in rows if watermark is None or r[1] is None or r[1] > watermark]
        by_key = {}
        for r in rows:
            by_key.setdefault(r[0], []).append(r)
        groups = [(k, rs, False) for k, rs in by_key.items()]
        fired = sorted(k for k, ts in self.timeouts.items()
                       if k not in by_key and watermark is not None and watermark > ts)
        groups += [(k, [], True) for k in fired]
        step = self.max_groups or max(len(groups), 1)
        for c in range(0, len(groups), step):
            self.call(batch_id, groups[c:c + step], watermark)

    def call(self, batch_id, groups, watermark):
        flat, offsets = [], [0]
        for _, rs, _ in groups:
            flat += rs
            offsets.append(len(flat))
        g = st.Groups(batch(KEY, [(k,) for k, _, _ in groups]), batch(SCHEMA, flat), offsets,
                      [self.states.get(k) for k, _, _ in groups], [to for _, _, to in groups],
                      [[] for _ in groups])
        res = self.world.process_groups(st.BatchTime(batch_id, watermark, 0), g)
        assert len(res.results) == len(groups)
        for (k, _, _), r in zip(groups, res.results):
            if isinstance(r.state, st.StateUpdate_Update):
                self.states[k] = r.state.value
            elif isinstance(r.state, st.StateUpdate_Remove):
                self.states.pop(k, None)
            if isinstance(r.timeout, st.TimeoutUpdate_EventTime):
                self.timeouts[k] = r.timeout.value
            elif isinstance(r.timeout, st.TimeoutUpdate_Clear):
                self.timeouts.pop(k, None)
            else:
                raise AssertionError(f"unexpected timeout update {r.timeout}")
        self.out += read_batch(res.output)


def reference_sessions(batches, gap, delay):
    """The same semantics written plainly, driven batch by batch like the host."""
    state, timeout, out, wm, max_t = {}, {}, [], None, None
    for rows in batches:
        rows = [r for r in rows if wm is None or r[1] > wm]
        keys = list(dict.fromkeys(r[0] for r in rows))
        for k in keys:
            evs = sorted((r for r in rows if r[0] == k), key=lambda r: r[1])
            s = state.get(k)
            for _, tm, a in evs:
                a = 0.0 if a is None else a
                if s is not None and tm > s[1] + gap:
                    out.append((k, s[0], s[1] + gap, s[2], s[3]))
                    s = [tm, tm, 1, a]
                elif s is not None:
                    s = [min(s[0], tm), max(s[1], tm), s[2] + 1, s[3] + a]
                else:
                    s = [tm, tm, 1, a]
            state[k], timeout[k] = s, s[1] + gap
        for k in sorted(k for k in list(timeout) if k not in keys and wm is not None and wm > timeout[k]):
            s = state.pop(k)
            del timeout[k]
            out.append((k, s[0], s[1] + gap, s[2], s[3]))
        for r in rows:
            max_t = r[1] if max_t is None else max(max_t, r[1])
        if max_t is not None:
            wm = max_t - delay
    return out


def new_world(app, config=""):
    world = app.WitWorld()
    world.init(config)
    world.output_schema([w.Field(n, dt, True) for n, dt in KEY], [w.Field(n, dt, True) for n, dt in SCHEMA])
    return world


class Sessionize(unittest.TestCase):
    app = load_app("sessionize-py")
    MIN = 60_000_000

    def run_host(self, batches, max_groups=None, config="gap_minutes=30", delay=10 * 60_000_000):
        host = Host(new_world(self.app, config), max_groups)
        wm, max_t = None, None
        for i, rows in enumerate(batches):
            host.run_batch(i, rows, wm)
            kept = [r[1] for r in rows if wm is None or r[1] > wm]
            if kept:
                max_t = max([max_t] + kept) if max_t is not None else max(kept)
            if max_t is not None:
                wm = max_t - delay
        return host

    def test_output_schema_and_config(self):
        world = self.app.WitWorld()
        with self.assertRaises(Err) as e:
            world.init("gap=5")
        self.assertIn("unknown config key `gap`", e.exception.value)
        with self.assertRaises(Err) as e:
            world.init("gap_minutes=-1")
        self.assertEqual(e.exception.value, "config key `gap_minutes` must be 0 or more, not -1")
        with self.assertRaises(Err) as e:
            world.init(f"gap_minutes={2**62}")
        self.assertIn("is too large", e.exception.value)
        world.init("")
        schema = world.output_schema([w.Field("user_id", w.DataType.UTF8, True)],
                                     [w.Field(n, dt, True) for n, dt in SCHEMA])
        self.assertEqual([(f.name, f.data_type) for f in schema],
                         [("user_id", w.DataType.UTF8), ("session_start", w.DataType.TIMESTAMP),
                          ("session_end", w.DataType.TIMESTAMP), ("events", w.DataType.INT64),
                          ("total", w.DataType.FLOAT64)])
        with self.assertRaises(Err) as e:
            world.output_schema([], [w.Field("event_time", w.DataType.INT64, True)])
        self.assertIn("`event_time` must be timestamp", e.exception.value)

    def test_a_session_closes_on_a_gap_and_on_its_timeout(self):
        M = self.MIN
        b0 = [("a", 0, 1.0), ("a", 5 * M, 2.0), ("b", 1 * M, 10.0), ("a", 40 * M, 4.0), ("a", 2 * M, None)]
        b1 = [("b", 200 * M, 1.5)]
        host = self.run_host([b0, b1, []])
        # a: {0, 2, 5} then a gap (40 > 5 + 30): session 1 written in batch 0; {40} stays open.
        # b: {1}; batch 1 moves the watermark to 190 min: b's new row extends nothing (200 > 31),
        # so b's first session is written with the new rows; a's timeout (70 min) fires in batch 2.
        self.assertEqual(host.out, [
            ("a", 0, 35 * M, 3, 3.0),
            ("b", 1 * M, 31 * M, 1, 10.0),
            ("a", 40 * M, 70 * M, 1, 4.0),
        ])
        self.assertEqual(set(host.states), {"b"})
        self.assertEqual(host.timeouts, {"b": 230 * M})

    def test_a_null_event_time_fails_the_batch_naming_its_row(self):
        world = new_world(self.app)
        g = st.Groups(batch(KEY, [("x",), ("y",)]),
                      batch(SCHEMA, [("x", 1, 1.0), ("y", 2, 1.0), ("y", None, 1.0)]),
                      [0, 1, 3], [None, None], [False, False], [[], []])
        with self.assertRaises(Err) as e:
            world.process_groups(st.BatchTime(0, None, 0), g)
        self.assertEqual(e.exception.value, t.BatchError("`event_time` is null: a session event needs a time", 2))

    def test_a_late_event_within_the_gap_moves_the_start_back_and_no_rows_keep_the_timeout(self):
        M = self.MIN
        world = new_world(self.app, "gap_minutes=10")
        stored = struct.pack("<qqqd", 20 * M, 25 * M, 2, 3.0)
        g = st.Groups(batch(KEY, [("a",), ("b",), ("c",)]), batch(SCHEMA, [("a", 12 * M, 1.0)]), [0, 1, 1, 1],
                      [stored, stored, None], [False, False, True], [[], [w.event_time_timer(1)], []])
        r = world.process_groups(st.BatchTime(0, None, 0), g)
        a, b, c = r.results
        self.assertEqual(struct.unpack("<qqqd", a.state.value), (12 * M, 25 * M, 3, 4.0))
        self.assertEqual(a.timeout, st.TimeoutUpdate_EventTime(35 * M))
        # b is called for a timer only: its state stays, its timeout is set again.
        self.assertEqual((b.state, b.timeout), (st.StateUpdate_Keep(), st.TimeoutUpdate_EventTime(35 * M)))
        # c timed out without a state: nothing to write, nothing to remove.
        self.assertEqual((c.state, c.timeout), (st.StateUpdate_Keep(), st.TimeoutUpdate_Clear()))
        self.assertEqual(r.output.num_rows, 0)

    def test_ties_keep_arrival_order_in_the_sum(self):
        # 1e16 + 1.0 + -1e16 differs from 1e16 + -1e16 + 1.0: the order of equal times counts.
        host = self.run_host([[("k", 5, 1e16), ("k", 5, 1.0), ("k", 5, -1e16), ("k", 3, 0.5)]], delay=0)
        host.run_batch(1, [], 10**12)
        self.assertEqual(host.out, [("k", 3, 5 + 30 * self.MIN, 4, ((0.5 + 1e16) + 1.0) + -1e16)])

    def test_random_batches_match_the_reference_whatever_the_call_size(self):
        rnd = random.Random(7)
        M = self.MIN
        batches = []
        t0 = 0
        for _ in range(12):
            rows = []
            for _ in range(rnd.randrange(0, 60)):
                t0 += rnd.randrange(0, 3 * M)
                tm = max(0, t0 + rnd.randrange(-20 * M, 5 * M))
                amt = None if rnd.random() < 0.05 else round(rnd.uniform(-5, 500), 2)
                rows.append((f"u{rnd.randrange(8)}", tm, amt))
            batches.append(rows)
        batches += [[], []]
        expected = reference_sessions(batches, 30 * M, 10 * M)
        for max_groups in (None, 1, 3):
            host = self.run_host(batches, max_groups)
            self.assertEqual(sorted(host.out), sorted(expected), f"max_groups={max_groups}")
        self.assertGreater(len(expected), 10)


class Sdk(unittest.TestCase):
    def world(self, cls, config=""):
        W = w.export_stateful(cls)()
        W.init(config)
        return W

    def test_state_timeout_ttl_and_timers_reach_the_host(self):
        seen = {}

        class P(w.StatefulProcessor):
            def output_schema(self, key, input):
                return w.Schema([*key, w.Field("n", w.DataType.INT64, True), w.Field("s", w.DataType.UTF8, True)])

            def process_group(self, group, state, out):
                k = group.key[0]
                seen[k] = (state.exists, state.get_option(), group.has_timed_out, len(group.rows),
                           list(group.rows.strs("user_id")), group.rows.row_index(0) if len(group.rows) else None,
                           group.batch_time.batch_id, group.expired_timers)
                if k == "update":
                    state.update({"n": 1})
                    state.set_timeout_duration(500)
                    state.set_ttl(1000)
                    state.register_timer(w.event_time_timer(7))
                    state.delete_timer(w.processing_time_timer(8))
                    out.append_keyed(None, "x")
                elif k == "remove":
                    state.remove()
                    out.extend_keyed([[1, 2], [None, "é"]])
                elif k == "keep":
                    state.set_timeout_timestamp(99)

        W = self.world(P)  # output_schema never called on this instance: derived from the batches
        timer = w.event_time_timer(3)
        g = st.Groups(batch(KEY, [("update",), ("remove",), ("keep",)]),
                      batch(SCHEMA, [("update", 1, 1.0), ("remove", 2, 2.0), ("remove", 3, 3.0)]),
                      [0, 1, 3, 3], [None, pickle.dumps([1]), b"\x80\x05K\x02."],
                      [False, False, True], [[], [], [timer]])
        r = W.process_groups(st.BatchTime(4, None, 0), g)
        self.assertEqual(seen["update"], (False, None, False, 1, ["update"], 0, 4, []))
        self.assertEqual(seen["remove"], (True, [1], False, 2, ["remove", "remove"], 1, 4, []))
        self.assertEqual(seen["keep"], (True, 2, True, 0, [], None, 4, [timer]))
        u, rm, k = r.results
        self.assertEqual(u.timeout, st.TimeoutUpdate_ProcessingTimeMs(500))
        self.assertEqual((u.ttl_ms, u.register_timers, u.delete_timers),
                         (1000, [st.Timer(st.TimeDomain.EVENT_TIME, 7)], [st.Timer(st.TimeDomain.PROCESSING_TIME, 8)]))
        self.assertEqual(pickle.loads(u.state.value), {"n": 1})
        self.assertEqual((rm.state, rm.timeout), (st.StateUpdate_Remove(), st.TimeoutUpdate_Clear()))
        self.assertEqual((k.state, k.timeout, k.ttl_ms), (st.StateUpdate_Keep(), st.TimeoutUpdate_EventTime(99), None))
        self.assertEqual(read_batch(r.output), [("update", None, "x"), ("remove", 1, None), ("remove", 2, "é")])
        self.assertEqual([c.name for c in r.output.columns], ["user_id", "n", "s"])

    def test_errors(self):
        class P(w.StatefulProcessor):
            STATE_STRUCT = "<q"

            def output_schema(self, key, input):
                return w.Schema(key)

            def process_group(self, group, state, out):
                out.append(1, 2)

        W = self.world(P)
        self.assertEqual(W.state_version(), 1)
        with self.assertRaises(Err) as e:
            W.migrate_state(0, b"")
        self.assertIn("cannot read version 0", e.exception.value)
        g = st.Groups(batch(KEY, [("a",)]), batch(SCHEMA, []), [0, 0], [None], [True], [[]])
        with self.assertRaises(Err) as e:
            W.process_groups(st.BatchTime(0, None, 0), g)
        self.assertEqual(e.exception.value, t.BatchError("out.append: 2 values for 1 output columns", None))
        gs = w.GroupState(None, None, False, None)
        a, b = w.event_time_timer(1), w.processing_time_timer(1)
        gs.register_timer(a), gs.register_timer(a), gs.delete_timer(b), gs.delete_timer(a), gs.register_timer(b)
        r = gs._result(None)
        self.assertEqual((r.register_timers, r.delete_timers), ([b], [a]))
        with self.assertRaises(ValueError):
            gs.get()
        with self.assertRaises(ValueError):
            gs.update(None)
        with self.assertRaises(ValueError):
            gs.set_timeout_duration(-1)


if __name__ == "__main__":
    unittest.main()
