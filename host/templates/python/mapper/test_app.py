"""{{name}}'s own tests: the plugin's logic in plain CPython, no Wasm, no host.
Run from this directory: python3 test_app.py
"""
import sys
import unittest

sys.path.insert(0, "{{sdk_dir}}/python")
import weir_guest_testing as wt  # noqa: E402

wt.setup("mapper")  # the WIT bindings, before importing the SDK or the plugin
import weir_guest as w  # noqa: E402

import app  # noqa: E402


class Plugin(unittest.TestCase):
    def test_size_is_big_from_100_and_small_otherwise(self):
        input = wt.batch([("user", w.DataType.UTF8, ["ann", "bob", "cid"]),
                          ("amount", w.DataType.FLOAT64, [120.0, None, 99.5])])
        self.assertEqual(wt.rows(wt.map_batch(app.WitWorld, input)), [
            {"user": "ann", "amount": 120.0, "size": "big"},
            {"user": "bob", "amount": None, "size": "small"},
            {"user": "cid", "amount": 99.5, "size": "small"},
        ])

    def test_a_missing_amount_column_is_named(self):
        with self.assertRaises(w.PluginError) as e:
            app.Plugin(w.Config("")).output_schema(w.Schema([w.Field("user", w.DataType.UTF8, True)]))
        self.assertIn("`amount`", str(e.exception))


if __name__ == "__main__":
    unittest.main()
