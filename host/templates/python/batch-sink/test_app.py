"""{{name}}'s own tests: the plugin's logic in plain CPython, no Wasm, no host (the emits are
recorded). Run from this directory: python3 test_app.py
"""
import sys
import unittest

sys.path.insert(0, "{{sdk_dir}}/python")
import weir_guest_testing as wt  # noqa: E402

wt.setup("batch-sink")  # the WIT bindings, before importing the SDK or the plugin
import weir_guest as w  # noqa: E402

import app  # noqa: E402


class Plugin(unittest.TestCase):
    def test_rows_go_to_big_or_small_by_amount(self):
        input = wt.batch([("user", w.DataType.UTF8, ["ann", "bob", "cid"]),
                          ("amount", w.DataType.FLOAT64, [120.0, None, 99.5])])
        emitted = wt.write_batch(app.WitWorld, 0, input, declared=["big", "small"])
        self.assertEqual([(output, wt.rows(b)) for output, b in emitted], [
            ("big", [{"user": "ann", "amount": 120.0}]),
            ("small", [{"user": "bob", "amount": None}, {"user": "cid", "amount": 99.5}]),
        ])


if __name__ == "__main__":
    unittest.main()
