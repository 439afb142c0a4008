"""EU postal address type for crm-users: country-specific postcode rules and formatting.

Implements the `address-type` world of `crm:users@0.1.0` (wit/v0.1/address-type.wit).
componentize-py generates the `wit_world` package from the WIT; this file only implements
its `exports.Addresses` protocol.
"""

import re

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.addresses import Address, FieldError, TypeInfo
from wit_world.imports import host

# Postcode rules per country (ISO 3166-1 alpha-2): a pattern on the normalized postcode, a
# normalizer and a human example for the error message.
POSTCODES = {
    "AT": (r"\d{4}", "1010"),
    "BE": (r"\d{4}", "1000"),
    "CZ": (r"\d{3} \d{2}", "110 00"),
    "DE": (r"\d{5}", "10115"),
    "DK": (r"\d{4}", "1050"),
    "ES": (r"(0[1-9]|[1-4]\d|5[0-2])\d{3}", "28013"),
    "FI": (r"\d{5}", "00100"),
    "FR": (r"\d{5}", "75001"),
    "HU": (r"\d{4}", "1051"),
    "IE": (r"[AC-FHKNPRTV-Y]\d{2}|D6W [0-9AC-FHKNPRTV-Y]{4}", "D02 X285"),
    "IT": (r"\d{5}", "00184"),
    "LU": (r"\d{4}", "1009"),
    "NL": (r"\d{4} [A-Z]{2}", "1012 AB"),
    "PL": (r"\d{2}-\d{3}", "00-950"),
    "PT": (r"\d{4}-\d{3}", "1100-148"),
    "SE": (r"\d{3} \d{2}", "111 22"),
    "SK": (r"\d{3} \d{2}", "811 01"),
}

# Countries that write the postcode after the city ("City Postcode"); the rest put it first.
CITY_FIRST = {"IE"}

FIELDS = (
    "first_name",
    "last_name",
    "company_name",
    "street",
    "number",
    "zip",
    "city",
    "country_iso",
    "phone_number",
    "company_id",
    "company_tax_id",
    "company_vat_id",
)


def _clean(value):
    """Trim and collapse inner whitespace; an empty value is no value."""
    if value is None:
        return None
    value = " ".join(value.split())
    return value or None


def normalize_postcode(country, raw):
    """The postcode written the way the country's post writes it."""
    compact = re.sub(r"[\s-]", "", raw.upper())
    if country in ("CZ", "SK", "SE") and len(compact) == 5:
        return f"{compact[:3]} {compact[3:]}"
    if country == "NL" and len(compact) == 6:
        return f"{compact[:4]} {compact[4:]}"
    if country == "PL" and len(compact) == 5:
        return f"{compact[:2]}-{compact[2:]}"
    if country == "PT" and len(compact) == 7:
        return f"{compact[:4]}-{compact[4:]}"
    if country == "IE" and len(compact) == 7:
        return f"{compact[:3]} {compact[3:]}"
    return compact


def allowed_countries():
    """The manifest's `countries` config (comma separated), or every country with rules."""
    configured = host.config_get("countries")
    if not configured:
        return set(POSTCODES)
    return {c.strip().upper() for c in configured.split(",") if c.strip()}


class Addresses(exports.Addresses):
    def describe(self) -> TypeInfo:
        return TypeInfo(name="eu-postal", title="EU postal address", sorting=20)

    def validate(self, address: Address) -> Address:
        values = {f: _clean(getattr(address, f)) for f in FIELDS}
        errors = []
        for required in ("street", "zip", "city", "country_iso"):
            if values[required] is None:
                errors.append(FieldError(field=required, message="is required"))
        if values["first_name"] is None and values["last_name"] is None and values["company_name"] is None:
            errors.append(FieldError(field="last_name", message="a name or a company name is required"))

        country = values["country_iso"].upper() if values["country_iso"] else None
        if country is not None:
            values["country_iso"] = country
            if country not in POSTCODES:
                errors.append(FieldError(field="country_iso", message=f"'{country}' is not an EU country this type knows"))
            elif country not in allowed_countries():
                errors.append(FieldError(field="country_iso", message=f"addresses in {country} are not accepted"))
            elif values["zip"] is not None:
                pattern, example = POSTCODES[country]
                postcode = normalize_postcode(country, values["zip"])
                if re.fullmatch(pattern, postcode) is None:
                    errors.append(
                        FieldError(field="zip", message=f"'{values['zip']}' is not a postcode in {country} (e.g. {example})")
                    )
                else:
                    values["zip"] = postcode

        vat = values["company_vat_id"]
        if vat is not None:
            vat = vat.replace(" ", "").upper()
            prefix = "EL" if country == "GR" else country
            if re.fullmatch(r"[A-Z]{2}[0-9A-Z]{2,12}", vat) is None or (prefix and not vat.startswith(prefix)):
                errors.append(FieldError(field="company_vat_id", message=f"'{vat}' is not a VAT id of {country}"))
            values["company_vat_id"] = vat

        if errors:
            host.log(host.LogLevel.DEBUG, f"refused an address with {len(errors)} error(s)")
            raise Err(errors)
        return Address(**values)

    def format(self, address: Address) -> str:
        v = {f: _clean(getattr(address, f)) for f in FIELDS}
        name = " ".join(p for p in (v["first_name"], v["last_name"]) if p)
        street = " ".join(p for p in (v["street"], v["number"]) if p)
        country = (v["country_iso"] or "").upper()
        if country in CITY_FIRST:
            place = " ".join(p for p in (v["city"], v["zip"]) if p)
        else:
            place = " ".join(p for p in (v["zip"], v["city"]) if p)
        return ", ".join(p for p in (name, v["company_name"], street, place, country) if p)
