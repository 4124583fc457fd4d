"""Test plugin: tries to reach files, the network, the environment, the clock and randomness, and reports
what it saw in a `seen` column (JSON), so the tests can check the sandbox grants nothing.
Written against the raw componentize-py bindings."""
import json
import os
import time

import wit_world
from wit_world.imports import types as t


def attempt(fn):
    try:
        return "ok: " + repr(fn())[:200]
    except BaseException as e:  # the point is to see the refusal, whatever its kind
        return "error: " + type(e).__name__ + ": " + str(e)[:200]


def connect():
    import socket

    s = socket.socket()
    s.connect(("127.0.0.1", 80))
    return "connected"


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> None:
        pass

    def output_schema(self, input):
        return list(input) + [t.Field("seen", t.DataType.UTF8, False)]

    def map_batch(self, input):
        seen = {
            "read_etc_passwd": attempt(lambda: open("/etc/passwd").read()),
            "list_root": attempt(lambda: os.listdir("/")),
            "socket": attempt(connect),
            "environ": dict(os.environ),
            "time": time.time(),
            "random": attempt(lambda: os.urandom(8).hex()),
        }
        text = json.dumps(seen, sort_keys=True).encode()
        n = input.num_rows
        offsets = [len(text) * i for i in range(n + 1)]
        seen_col = t.ColumnData(t.ColumnValues_Utf8(t.VarLen(offsets, text * n)), None)
        cols = [t.OutputColumn(c.name, t.OutputData_Input(i)) for i, c in enumerate(input.columns)]
        cols.append(t.OutputColumn("seen", t.OutputData_Computed(seen_col)))
        return t.OutputBatch(n, None, cols)
