"""OCPI 2.2.1 CDR objects (PROTOCOL.md §5.4) from the CDR model, used by the CDRs Sender endpoint
and by the CDR push alike.

The CDR row holds its OCPI content frozen at creation (billing.cdrs): the JSON parts keep numbers
as decimal strings (JSON has no Decimal) and DateTimes as OCPI DateTime strings. Here numbers
become Decimals (written as exact JSON numbers by ocpi.jsonutil) and empty optional fields are
left out. The same CDR renders the same bytes every time: a CDR never changes (§10.15).
"""

from decimal import Decimal, InvalidOperation
from typing import Any

from billing.models_cdrs import CDR

CENT = Decimal("0.01")
CDR_TOKEN_FIELDS = ("country_code", "party_id", "uid", "type", "contract_id")
CDR_LOCATION_FIELDS = (
    "id", "name", "address", "city", "postal_code", "state", "country", "coordinates",
    "evse_uid", "evse_id", "connector_id", "connector_standard", "connector_format",
    "connector_power_type",
)  # fmt: skip
RESTRICTION_NUMBERS = ("min_kwh", "max_kwh", "min_current", "max_current", "min_power", "max_power")
TOTALS_ORDER = (
    "total_cost", "total_fixed_cost", "total_energy", "total_energy_cost", "total_time",
    "total_time_cost", "total_parking_time", "total_parking_cost", "total_reservation_cost",
)  # fmt: skip
PRICES = (
    "total_cost",
    "total_fixed_cost",
    "total_energy_cost",
    "total_time_cost",
    "total_parking_cost",
    "total_reservation_cost",
)


def _number(value: Any) -> Any:
    """A JSON number from a stored decimal string (or number); other values unchanged."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | Decimal):
        return value
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return value


def _price(data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    return {k: _number(v) for k, v in data.items() if v is not None}


def tariff_dict_to_ocpi(tariff: dict) -> dict:
    """A frozen Tariff (decimal strings) as an OCPI 2.2.1 Tariff object."""
    data = dict(tariff)
    elements = []
    for element in tariff.get("elements") or []:
        item = dict(element)
        item["price_components"] = [
            {k: _number(v) if k in ("price", "vat") else v for k, v in c.items() if v is not None}
            for c in element.get("price_components") or []
        ]
        if isinstance(element.get("restrictions"), dict):
            item["restrictions"] = {
                k: _number(v) if k in RESTRICTION_NUMBERS else v
                for k, v in element["restrictions"].items()
                if v not in (None, "", [])
            }
        elements.append(item)
    data["elements"] = elements
    for name in ("min_price", "max_price"):
        if name in data:
            data[name] = _price(data[name])
    return {k: v for k, v in data.items() if v not in (None, "", [])}


def charging_period_dict_to_ocpi(period: dict) -> dict:
    data: dict[str, Any] = {
        "start_date_time": period["start_date_time"],
        "dimensions": [
            {"type": d["type"], "volume": _number(d["volume"])} for d in period["dimensions"]
        ],
    }
    if period.get("tariff_id"):
        data["tariff_id"] = period["tariff_id"]
    return data


def _money(value: Decimal) -> Decimal:
    """An amount with the trailing zeros of its storage dropped, down to cents (4.6200 → 4.62)."""
    cents = value.quantize(CENT)
    return cents if cents == value else value.normalize()


def _volume(value: Decimal | None) -> Decimal | None:
    """A volume without the trailing zeros of its storage (5.400000 → 5.4)."""
    return None if value is None else value.normalize()


def _cost(cdr: CDR, name: str) -> dict | None:
    excl = getattr(cdr, f"{name}_excl_vat")
    if excl is None:
        return None
    price = {"excl_vat": _money(excl)}
    incl = getattr(cdr, f"{name}_incl_vat")
    if incl is not None:
        price["incl_vat"] = _money(incl)
    return price


def cdr_to_ocpi(cdr: CDR) -> dict:
    """The OCPI 2.2.1 CDR: every field the CDR has, empty optional ones left out."""
    data: dict[str, Any] = {
        "country_code": cdr.country_code,
        "party_id": cdr.party_id,
        "id": cdr.ocpi_id,
        "start_date_time": cdr.start_date_time,
        "end_date_time": cdr.end_date_time,
    }
    if cdr.session_ocpi_id:
        data["session_id"] = cdr.session_ocpi_id
    data["cdr_token"] = {k: cdr.cdr_token.get(k, "") for k in CDR_TOKEN_FIELDS}
    data["auth_method"] = cdr.auth_method
    if cdr.authorization_reference:
        data["authorization_reference"] = cdr.authorization_reference
    data["cdr_location"] = {
        k: cdr.cdr_location[k]
        for k in CDR_LOCATION_FIELDS
        if cdr.cdr_location.get(k) not in (None, "")
    }
    if cdr.meter_id:
        data["meter_id"] = cdr.meter_id
    data["currency"] = cdr.currency
    if cdr.tariffs:
        data["tariffs"] = [tariff_dict_to_ocpi(t) for t in cdr.tariffs]
    data["charging_periods"] = [charging_period_dict_to_ocpi(p) for p in cdr.charging_periods]
    if cdr.signed_data:
        data["signed_data"] = cdr.signed_data
    costs = {name: _cost(cdr, name) for name in PRICES}
    volumes = {
        "total_energy": _volume(cdr.total_energy),
        "total_time": _volume(cdr.total_time),
        "total_parking_time": _volume(cdr.total_parking_time),
    }
    for name in TOTALS_ORDER:  # the spec's order of the totals
        value = costs.get(name, volumes.get(name))
        if value is not None:
            data[name] = value
    if cdr.remark:
        data["remark"] = cdr.remark
    if cdr.invoice_reference_id:
        data["invoice_reference_id"] = cdr.invoice_reference_id
    if cdr.credit:
        data["credit"] = True
        data["credit_reference_id"] = cdr.credit_reference_id
    if cdr.home_charging_compensation is not None:
        data["home_charging_compensation"] = cdr.home_charging_compensation
    data["last_updated"] = cdr.last_updated
    return data
