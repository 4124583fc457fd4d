"""{{name}}'s own tests: the plugin's logic in plain CPython, no Wasm, no host (a small simulated
one groups the rows and keeps the states). Run from this directory: python3 test_app.py
"""
import sys
import unittest

sys.path.insert(0, "{{sdk_dir}}/python")
import weir_guest_testing as wt  # noqa: E402

wt.setup("stateful")  # the WIT bindings, before importing the SDK or the plugin
import weir_guest as w  # noqa: E402

import app  # noqa: E402


def events(users, amounts):
    return wt.batch([("user", w.DataType.UTF8, users), ("amount", w.DataType.FLOAT64, amounts)])


class Plugin(unittest.TestCase):
    def test_each_user_outputs_its_running_count_and_total_across_batches(self):
        host = wt.StatefulHost(app.WitWorld, key=["user"])
        out = host.process(0, events(["ann", "bob", "ann"], [120.0, 40.5, None]))
        self.assertEqual(wt.rows(out), [
            {"user": "ann", "count": 2, "total": 120.0},
            {"user": "bob", "count": 1, "total": 40.5},
        ])
        out = host.process(1, events(["bob"], [100.0]))
        self.assertEqual(wt.rows(out), [{"user": "bob", "count": 2, "total": 140.5}])


if __name__ == "__main__":
    unittest.main()
