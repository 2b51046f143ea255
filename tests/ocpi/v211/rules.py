"""The OCPI 2.1.1 objects' rules, as focused checks (2.1.1 has no official OpenAPI; these follow
PROTOCOL.md §8 and the 2.1.1 spec's object tables).

    assert_211(location, "Location")      # raises AssertionError listing every violation
    errors_211(location, "Location")      # the list instead

Every object is checked field by field: required fields present, no field 2.1.1 does not have,
types and lengths, enums (2.1.1's smaller sets), 6-decimal coordinates and DateTimes without
fractional seconds ("2015-06-29T20:39:09Z"). Objects are checked as a partner receives them:
after our wire codec (DateTimes as strings, Decimals as JSON numbers).
"""

import re
from collections.abc import Callable
from decimal import Decimal

from ocpi import jsonutil

DATETIME = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z")
LATITUDE = re.compile(r"\A-?[0-9]{1,2}\.[0-9]{6}\Z")
LONGITUDE = re.compile(r"\A-?[0-9]{1,3}\.[0-9]{6}\Z")
HHMM = re.compile(r"\A[0-2][0-9]:[0-5][0-9]\Z")
DATE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")

ENUMS = {
    "LocationType": {
        "ON_STREET", "PARKING_GARAGE", "UNDERGROUND_GARAGE", "PARKING_LOT", "OTHER", "UNKNOWN",
    },
    "Status": {
        "AVAILABLE", "BLOCKED", "CHARGING", "INOPERATIVE", "OUTOFORDER", "PLANNED", "REMOVED",
        "RESERVED", "UNKNOWN",
    },
    "Capability": {
        "CHARGING_PROFILE_CAPABLE", "CREDIT_CARD_PAYABLE", "REMOTE_START_STOP_CAPABLE",
        "RESERVABLE", "RFID_READER", "UNLOCK_CAPABLE",
    },
    "ConnectorType": {
        "CHADEMO", *(f"DOMESTIC_{c}" for c in "ABCDEFGHIJKL"), "IEC_60309_2_single_16",
        "IEC_60309_2_three_16", "IEC_60309_2_three_32", "IEC_60309_2_three_64", "IEC_62196_T1",
        "IEC_62196_T1_COMBO", "IEC_62196_T2", "IEC_62196_T2_COMBO", "IEC_62196_T3A",
        "IEC_62196_T3C", "TESLA_R", "TESLA_S",
    },
    "ConnectorFormat": {"SOCKET", "CABLE"},
    "PowerType": {"AC_1_PHASE", "AC_3_PHASE", "DC"},
    "Facility": {
        "HOTEL", "RESTAURANT", "CAFE", "MALL", "SUPERMARKET", "SPORT", "RECREATION_AREA",
        "NATURE", "MUSEUM", "BUS_STOP", "TAXI_STAND", "TRAIN_STATION", "AIRPORT",
        "CARPOOL_PARKING", "FUEL_STATION", "WIFI",
    },
    "ParkingRestriction": {"EV_ONLY", "PLUGGED", "DISABLED", "CUSTOMERS", "MOTORCYCLES"},
    "ImageCategory": {
        "CHARGER", "ENTRANCE", "LOCATION", "NETWORK", "OPERATOR", "OTHER", "OWNER",
    },
    "EnergySourceCategory": {
        "NUCLEAR", "GENERAL_FOSSIL", "COAL", "GAS", "GENERAL_GREEN", "SOLAR", "WIND", "WATER",
    },
    "EnvironmentalImpactCategory": {"NUCLEAR_WASTE", "CARBON_DIOXIDE"},
    "TariffDimensionType": {"ENERGY", "FLAT", "PARKING_TIME", "TIME"},
    "DayOfWeek": {
        "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY",
    },
    "CdrDimensionType": {
        "ENERGY", "FLAT", "MAX_CURRENT", "MIN_CURRENT", "PARKING_TIME", "TIME",
    },
    "AuthMethod": {"AUTH_REQUEST", "WHITELIST"},
    "SessionStatus": {"ACTIVE", "COMPLETED", "INVALID", "PENDING"},
    "TokenType": {"OTHER", "RFID"},
    "WhitelistType": {"ALWAYS", "ALLOWED", "ALLOWED_OFFLINE", "NEVER"},
    "CommandResponseType": {"NOT_SUPPORTED", "REJECTED", "ACCEPTED", "TIMEOUT", "UNKNOWN_SESSION"},
    "ModuleID": {"cdrs", "commands", "credentials", "locations", "sessions", "tariffs", "tokens"},
}  # fmt: skip

Check = Callable[[object, str], list[str]]


# --- primitive checks ---------------------------------------------------------------------------
def string(max_length: int) -> Check:
    def check(value, path):
        if not isinstance(value, str):
            return [f"{path}: {value!r} is not a string"]
        if len(value) > max_length:
            return [f"{path}: longer than {max_length} characters"]
        if not value.isascii():
            return [f"{path}: not ASCII (2.1.1 strings are ASCII)"]
        return []

    return check


def pattern(regex: re.Pattern, what: str) -> Check:
    def check(value, path):
        if not isinstance(value, str) or not regex.match(value):
            return [f"{path}: {value!r} is not {what}"]
        return []

    return check


def enum(name: str) -> Check:
    def check(value, path):
        return [] if value in ENUMS[name] else [f"{path}: {value!r} is not a 2.1.1 {name}"]

    return check


def boolean(value, path):
    return [] if isinstance(value, bool) else [f"{path}: {value!r} is not a boolean"]


def integer(value, path):
    ok = isinstance(value, int) and not isinstance(value, bool)
    return [] if ok else [f"{path}: {value!r} is not an int"]


def number(value, path):
    ok = isinstance(value, int | Decimal) and not isinstance(value, bool)
    return [] if ok else [f"{path}: {value!r} is not a number"]


def url(value, path):
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        return [f"{path}: {value!r} is not a URL"]
    return string(255)(value, path)


datetime_ = pattern(DATETIME, "a 2.1.1 DateTime (UTC, whole seconds)")


def many(item: Check, *, at_least: int = 0) -> Check:
    def check(value, path):
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not a list"]
        errors = [] if len(value) >= at_least else [f"{path}: needs at least {at_least} item(s)"]
        for index, element in enumerate(value):
            errors += item(element, f"{path}[{index}]")
        return errors

    return check


def obj(fields: dict[str, tuple[bool, Check]]) -> Check:
    """An object: `fields` maps each 2.1.1 field to (required, check); others are errors."""

    def check(value, path):
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not an object"]
        errors = [f"{path}.{k}: not a 2.1.1 field" for k in value if k not in fields]
        for name, (required, field_check) in fields.items():
            if name not in value:
                if required:
                    errors.append(f"{path}.{name}: required")
                continue
            errors += field_check(value[name], f"{path}.{name}")
        return errors

    return check


def lazy(name: str) -> Check:
    return lambda value, path: OBJECTS[name](value, path)


REQ, OPT = True, False  # required, optional

# --- objects ------------------------------------------------------------------------------------
OBJECTS: dict[str, Check] = {}
OBJECTS["DisplayText"] = obj({"language": (REQ, string(2)), "text": (REQ, string(512))})
OBJECTS["GeoLocation"] = obj(
    {
        "latitude": (REQ, pattern(LATITUDE, "a latitude with 6 decimals")),
        "longitude": (REQ, pattern(LONGITUDE, "a longitude with 6 decimals")),
    }
)
OBJECTS["AdditionalGeoLocation"] = obj(
    {
        "latitude": (REQ, pattern(LATITUDE, "a latitude with 6 decimals")),
        "longitude": (REQ, pattern(LONGITUDE, "a longitude with 6 decimals")),
        "name": (OPT, lazy("DisplayText")),
    }
)
OBJECTS["Image"] = obj(
    {
        "url": (REQ, url),
        "thumbnail": (OPT, url),
        "category": (REQ, enum("ImageCategory")),
        "type": (REQ, string(4)),
        "width": (OPT, integer),
        "height": (OPT, integer),
    }
)
OBJECTS["BusinessDetails"] = obj(
    {"name": (REQ, string(100)), "website": (OPT, url), "logo": (OPT, lazy("Image"))}
)
OBJECTS["EnergyMix"] = obj(
    {
        "is_green_energy": (REQ, boolean),
        "energy_sources": (
            OPT,
            many(
                obj(
                    {
                        "source": (REQ, enum("EnergySourceCategory")),
                        "percentage": (REQ, number),
                    }
                )
            ),
        ),
        "environ_impact": (
            OPT,
            many(
                obj(
                    {
                        "source": (REQ, enum("EnvironmentalImpactCategory")),
                        "amount": (REQ, number),
                    }
                )
            ),
        ),
        "supplier_name": (OPT, string(64)),
        "energy_product_name": (OPT, string(64)),
    }
)
_PERIOD = obj({"period_begin": (REQ, datetime_), "period_end": (REQ, datetime_)})
OBJECTS["Hours"] = obj(
    {
        "regular_hours": (
            OPT,
            many(
                obj(
                    {
                        "weekday": (REQ, integer),
                        "period_begin": (REQ, pattern(HHMM, "HH:MM")),
                        "period_end": (REQ, pattern(HHMM, "HH:MM")),
                    }
                )
            ),
        ),
        "twentyfourseven": (OPT, boolean),
        "exceptional_openings": (OPT, many(_PERIOD)),
        "exceptional_closings": (OPT, many(_PERIOD)),
    }
)
OBJECTS["Connector"] = obj(
    {
        "id": (REQ, string(36)),
        "standard": (REQ, enum("ConnectorType")),
        "format": (REQ, enum("ConnectorFormat")),
        "power_type": (REQ, enum("PowerType")),
        "voltage": (REQ, integer),
        "amperage": (REQ, integer),
        "tariff_id": (OPT, string(36)),
        "terms_and_conditions": (OPT, url),
        "last_updated": (REQ, datetime_),
    }
)
OBJECTS["EVSE"] = obj(
    {
        "uid": (REQ, string(39)),
        "evse_id": (OPT, string(48)),
        "status": (REQ, enum("Status")),
        "status_schedule": (
            OPT,
            many(
                obj(
                    {
                        "period_begin": (REQ, datetime_),
                        "period_end": (OPT, datetime_),
                        "status": (REQ, enum("Status")),
                    }
                )
            ),
        ),
        "capabilities": (OPT, many(enum("Capability"))),
        "connectors": (REQ, many(lazy("Connector"), at_least=1)),
        "floor_level": (OPT, string(4)),
        "coordinates": (OPT, lazy("GeoLocation")),
        "physical_reference": (OPT, string(16)),
        "directions": (OPT, many(lazy("DisplayText"))),
        "parking_restrictions": (OPT, many(enum("ParkingRestriction"))),
        "images": (OPT, many(lazy("Image"))),
        "last_updated": (REQ, datetime_),
    }
)
OBJECTS["Location"] = obj(
    {
        "id": (REQ, string(39)),
        "type": (REQ, enum("LocationType")),
        "name": (OPT, string(255)),
        "address": (REQ, string(45)),
        "city": (REQ, string(45)),
        "postal_code": (REQ, string(10)),
        "country": (REQ, string(3)),
        "coordinates": (REQ, lazy("GeoLocation")),
        "related_locations": (OPT, many(lazy("AdditionalGeoLocation"))),
        "evses": (OPT, many(lazy("EVSE"))),
        "directions": (OPT, many(lazy("DisplayText"))),
        "operator": (OPT, lazy("BusinessDetails")),
        "suboperator": (OPT, lazy("BusinessDetails")),
        "owner": (OPT, lazy("BusinessDetails")),
        "facilities": (OPT, many(enum("Facility"))),
        "time_zone": (OPT, string(255)),
        "opening_times": (OPT, lazy("Hours")),
        "charging_when_closed": (OPT, boolean),
        "images": (OPT, many(lazy("Image"))),
        "energy_mix": (OPT, lazy("EnergyMix")),
        "last_updated": (REQ, datetime_),
    }
)
OBJECTS["PriceComponent"] = obj(
    {
        "type": (REQ, enum("TariffDimensionType")),
        "price": (REQ, number),
        "step_size": (REQ, integer),
    }
)
OBJECTS["TariffRestrictions"] = obj(
    {
        "start_time": (OPT, pattern(HHMM, "HH:MM")),
        "end_time": (OPT, pattern(HHMM, "HH:MM")),
        "start_date": (OPT, pattern(DATE, "YYYY-MM-DD")),
        "end_date": (OPT, pattern(DATE, "YYYY-MM-DD")),
        "min_kwh": (OPT, number),
        "max_kwh": (OPT, number),
        "min_power": (OPT, number),
        "max_power": (OPT, number),
        "min_duration": (OPT, integer),
        "max_duration": (OPT, integer),
        "day_of_week": (OPT, many(enum("DayOfWeek"))),
    }
)
OBJECTS["Tariff"] = obj(
    {
        "id": (REQ, string(36)),
        "currency": (REQ, string(3)),
        "tariff_alt_text": (OPT, many(lazy("DisplayText"))),
        "tariff_alt_url": (OPT, url),
        "elements": (
            REQ,
            many(
                obj(
                    {
                        "price_components": (REQ, many(lazy("PriceComponent"), at_least=1)),
                        "restrictions": (OPT, lazy("TariffRestrictions")),
                    }
                ),
                at_least=1,
            ),
        ),
        "energy_mix": (OPT, lazy("EnergyMix")),
        "last_updated": (REQ, datetime_),
    }
)
OBJECTS["ChargingPeriod"] = obj(
    {
        "start_date_time": (REQ, datetime_),
        "dimensions": (
            REQ,
            many(
                obj({"type": (REQ, enum("CdrDimensionType")), "volume": (REQ, number)}), at_least=1
            ),
        ),
    }
)
OBJECTS["Session"] = obj(
    {
        "id": (REQ, string(36)),
        "start_datetime": (REQ, datetime_),
        "end_datetime": (OPT, datetime_),
        "kwh": (REQ, number),
        "auth_id": (REQ, string(36)),
        "auth_method": (REQ, enum("AuthMethod")),
        "location": (REQ, lazy("Location")),
        "meter_id": (OPT, string(255)),
        "currency": (REQ, string(3)),
        "charging_periods": (OPT, many(lazy("ChargingPeriod"))),
        "total_cost": (OPT, number),
        "status": (REQ, enum("SessionStatus")),
        "last_updated": (REQ, datetime_),
    }
)
OBJECTS["CDR"] = obj(
    {
        "id": (REQ, string(36)),
        "start_date_time": (REQ, datetime_),
        "stop_date_time": (REQ, datetime_),
        "auth_id": (REQ, string(36)),
        "auth_method": (REQ, enum("AuthMethod")),
        "location": (REQ, lazy("Location")),
        "meter_id": (OPT, string(255)),
        "currency": (REQ, string(3)),
        "tariffs": (OPT, many(lazy("Tariff"))),
        "charging_periods": (REQ, many(lazy("ChargingPeriod"), at_least=1)),
        "total_cost": (REQ, number),
        "total_energy": (REQ, number),
        "total_time": (REQ, number),
        "total_parking_time": (OPT, number),
        "remark": (OPT, string(255)),
        "last_updated": (REQ, datetime_),
    }
)
OBJECTS["Token"] = obj(
    {
        "uid": (REQ, string(36)),
        "type": (REQ, enum("TokenType")),
        "auth_id": (REQ, string(36)),
        "visual_number": (OPT, string(64)),
        "issuer": (REQ, string(64)),
        "valid": (REQ, boolean),
        "whitelist": (REQ, enum("WhitelistType")),
        "language": (OPT, string(2)),
        "last_updated": (REQ, datetime_),
    }
)
OBJECTS["Credentials"] = obj(
    {
        "token": (REQ, string(64)),
        "url": (REQ, url),
        "business_details": (REQ, lazy("BusinessDetails")),
        "party_id": (REQ, string(3)),
        "country_code": (REQ, string(2)),
    }
)
OBJECTS["Version"] = obj(
    {
        "version": (REQ, string(10)),
        "endpoints": (
            REQ,
            many(obj({"identifier": (REQ, enum("ModuleID")), "url": (REQ, url)}), at_least=1),
        ),
    }
)
OBJECTS["CommandResponse"] = obj({"result": (REQ, enum("CommandResponseType"))})


def _wire(value):
    """As a partner receives it: through our JSON codec, numbers with a fraction as Decimal."""
    return jsonutil.loads(jsonutil.dumps(value))


def errors_211(value, name: str) -> list[str]:
    """Every violation of the 2.1.1 rules for object `name` (see OBJECTS)."""
    return OBJECTS[name](_wire(value), name)


def assert_211(value, name: str) -> None:
    errors = errors_211(value, name)
    assert not errors, "not a valid 2.1.1 " + name + ":\n  " + "\n  ".join(errors)


def assert_envelope_211(body: dict, name: str | None = None, *, many: bool = False) -> None:
    """A 2.1.1 response envelope (status_code, status_message, timestamp in whole seconds) and,
    with `name`, its data: one such object, or a list of them with `many`."""
    body = _wire(body)
    errors = obj(
        {
            "data": (OPT, lambda v, p: []),
            "status_code": (REQ, integer),
            "status_message": (OPT, string(255)),
            "timestamp": (REQ, datetime_),
        }
    )(body, "envelope")
    if name is not None:
        items = body.get("data") if many else [body.get("data")]
        if not isinstance(items, list):
            errors.append("envelope.data: not a list")
        else:
            for index, item in enumerate(items):
                errors += OBJECTS[name](item, f"data[{index}]" if many else "data")
    assert not errors, "not a valid 2.1.1 envelope:\n  " + "\n  ".join(errors)
