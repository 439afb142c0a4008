"""Tests of the built component through `crm-users plugin run` (no server needed).

    CRM_USERS=path/to/crm-users python3 test_plugin.py

CRM_USERS defaults to `crm-users` on PATH, WASM to eu_postal_address.wasm next to this file.
"""

import json
import os
import subprocess
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CRM_USERS = os.environ.get("CRM_USERS", "crm-users")
WASM = os.environ.get("WASM", os.path.join(HERE, "eu_postal_address.wasm"))


def run(function, value):
    """The report of one call; fails the test unless the call answered."""
    out = subprocess.run(
        [CRM_USERS, "plugin", "run", WASM, "--manifest", os.path.join(HERE, "plugin.toml"),
         "--call", function, "--input", json.dumps(value)],
        capture_output=True, text=True, timeout=120,
    )
    if out.returncode != 0:
        raise AssertionError(f"plugin run exited {out.returncode}: {out.stdout} {out.stderr}")
    return json.loads(out.stdout)


class EuPostalAddress(unittest.TestCase):
    def test_describes_the_type(self):
        self.assertEqual(run("describe", None)["result"]["name"], "eu-postal")

    def test_normalizes_postcodes_the_way_each_country_writes_them(self):
        for country, raw, written in [("SK", "81101", "811 01"), ("NL", "1012ab", "1012 AB"),
                                      ("PL", "00950", "00-950"), ("DE", " 10115 ", "10115")]:
            address = {"last_name": "Doe", "street": "Main", "zip": raw, "city": "X", "country_iso": country}
            result = run("validate", address)["result"]
            self.assertEqual(result["ok"]["zip"], written, (country, result))

    def test_refuses_with_one_error_per_field(self):
        result = run("validate", {"street": "Rue", "zip": "7500", "city": "Paris", "country_iso": "FR"})["result"]
        self.assertEqual([e["field"] for e in result["err"]], ["last_name", "zip"])
        self.assertIn("not a postcode in FR", result["err"][1]["message"])

    def test_refuses_countries_it_has_no_rules_for(self):
        result = run("validate", {"last_name": "Doe", "street": "Main", "zip": "1", "city": "X", "country_iso": "US"})
        self.assertEqual(result["result"]["err"][0]["field"], "country_iso")

    def test_formats_with_the_postcode_where_the_country_puts_it(self):
        address = {"first_name": "Jana", "last_name": "Nová", "street": "Hlavná", "number": "1",
                   "zip": "811 01", "city": "Bratislava", "country_iso": "SK"}
        self.assertEqual(run("format", address)["result"], "Jana Nová, Hlavná 1, 811 01 Bratislava, SK")
        irish = {"last_name": "Byrne", "street": "Main St", "zip": "D02 X285", "city": "Dublin", "country_iso": "IE"}
        self.assertEqual(run("format", irish)["result"], "Byrne, Main St, Dublin D02 X285, IE")


if __name__ == "__main__":
    unittest.main()
