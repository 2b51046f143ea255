"""Validators for OCPI 2.2.1 value objects kept as JSON on the network models.

Each validator checks one OCPI type (PROTOCOL.md §5) and raises ValidationError with the path of
the first offending field. The models call them from field validators, so `full_clean()` (run on
every save) rejects what a partner's validator would reject.
"""

import re
import zoneinfo
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError

from . import choices

LATITUDE_RE = re.compile(r"^-?[0-9]{1,2}\.[0-9]{5,7}$")
LONGITUDE_RE = re.compile(r"^-?[0-9]{1,3}\.[0-9]{5,7}$")
HHMM_RE = re.compile(r"^([0-1][0-9]|2[0-3]):[0-5][0-9]$")
DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
DATETIME_RE = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?$"
)
# ISO 3166-1 alpha-3 codes in use (the OCPI `country` field); alpha-2 ones for country_code.
ISO_ALPHA3 = frozenset(
    """ABW AFG AGO AIA ALA ALB AND ARE ARG ARM ASM ATA ATF ATG AUS AUT AZE BDI BEL BEN BES BFA BGD
    BGR BHR BHS BIH BLM BLR BLZ BMU BOL BRA BRB BRN BTN BVT BWA CAF CAN CCK CHE CHL CHN CIV CMR COD
    COG COK COL COM CPV CRI CUB CUW CXR CYM CYP CZE DEU DJI DMA DNK DOM DZA ECU EGY ERI ESH ESP EST
    ETH FIN FJI FLK FRA FRO FSM GAB GBR GEO GGY GHA GIB GIN GLP GMB GNB GNQ GRC GRD GRL GTM GUF GUM
    GUY HKG HMD HND HRV HTI HUN IDN IMN IND IOT IRL IRN IRQ ISL ISR ITA JAM JEY JOR JPN KAZ KEN KGZ
    KHM KIR KNA KOR KWT LAO LBN LBR LBY LCA LIE LKA LSO LTU LUX LVA MAC MAF MAR MCO MDA MDG MDV MEX
    MHL MKD MLI MLT MMR MNE MNG MNP MOZ MRT MSR MTQ MUS MWI MYS MYT NAM NCL NER NFK NGA NIC NIU NLD
    NOR NPL NRU NZL OMN PAK PAN PCN PER PHL PLW PNG POL PRI PRK PRT PRY PSE PYF QAT REU ROU RUS RWA
    SAU SDN SEN SGP SGS SHN SJM SLB SLE SLV SMR SOM SPM SRB SSD STP SUR SVK SVN SWE SWZ SXM SYC SYR
    TCA TCD TGO THA TJK TKL TKM TLS TON TTO TUN TUR TUV TWN TZA UGA UKR UMI URY USA UZB VAT VCT VEN
    VGB VIR VNM VUT WLF WSM YEM ZAF ZMB ZWE""".split()
)
ISO_ALPHA2 = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR
    BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC
    EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK
    HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB
    LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ
    NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU
    RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN
    TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW""".split()
)


def _fail(path: str, message: str) -> None:
    raise ValidationError(f"{path}: {message}")


def _require_dict(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        _fail(path, "must be an object")
    return value


def _require_list(value: Any, path: str) -> list:
    if not isinstance(value, list):
        _fail(path, "must be a list")
    return value


def _check_string(obj: dict, key: str, path: str, *, max_len: int, required: bool) -> None:
    value = obj.get(key)
    if value is None:
        if required:
            _fail(f"{path}.{key}", "is required")
        return
    if not isinstance(value, str):
        _fail(f"{path}.{key}", "must be a string")
    if len(value) > max_len:
        _fail(f"{path}.{key}", f"is longer than {max_len} characters")
    if any(ch in value for ch in "\r\n\t"):
        _fail(f"{path}.{key}", "must not contain CR, LF or TAB")


def _check_enum(obj: dict, key: str, path: str, allowed: Iterable[str], *, required: bool) -> None:
    value = obj.get(key)
    if value is None:
        if required:
            _fail(f"{path}.{key}", "is required")
        return
    if value not in allowed:
        _fail(f"{path}.{key}", f"{value!r} is not one of the OCPI values")


def _check_number(obj: dict, key: str, path: str, *, required: bool, lo=None, hi=None) -> None:
    value = obj.get(key)
    if value is None:
        if required:
            _fail(f"{path}.{key}", "is required")
        return
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        _fail(f"{path}.{key}", "must be a number")
    try:
        number = float(value)
    except ValueError:
        _fail(f"{path}.{key}", "must be a number")
    if lo is not None and number < lo or hi is not None and number > hi:
        _fail(f"{path}.{key}", f"must be between {lo} and {hi}")


def validate_enum_list(values: Any, allowed: Iterable[str], path: str) -> None:
    allowed = frozenset(allowed)
    for i, value in enumerate(_require_list(values, path)):
        if value not in allowed:
            _fail(f"{path}[{i}]", f"{value!r} is not one of the OCPI values")


def validate_display_text_list(value: Any, path: str = "directions") -> None:
    for i, item in enumerate(_require_list(value, path)):
        item = _require_dict(item, f"{path}[{i}]")
        _check_string(item, "language", f"{path}[{i}]", max_len=2, required=True)
        _check_string(item, "text", f"{path}[{i}]", max_len=512, required=True)


def validate_image(value: Any, path: str = "image") -> None:
    item = _require_dict(value, path)
    _check_string(item, "url", path, max_len=255, required=True)
    _check_string(item, "thumbnail", path, max_len=255, required=False)
    _check_enum(item, "category", path, choices.IMAGE_CATEGORIES, required=True)
    _check_string(item, "type", path, max_len=4, required=True)
    for key in ("width", "height"):
        if item.get(key) is not None and (
            not isinstance(item[key], int) or not 0 <= item[key] <= 99999
        ):
            _fail(f"{path}.{key}", "must be an integer of at most 5 digits")


def validate_image_list(value: Any, path: str = "images") -> None:
    for i, item in enumerate(_require_list(value, path)):
        validate_image(item, f"{path}[{i}]")


def validate_business_details(value: Any, path: str = "business_details") -> None:
    if value is None:
        return
    item = _require_dict(value, path)
    _check_string(item, "name", path, max_len=100, required=True)
    _check_string(item, "website", path, max_len=255, required=False)
    if item.get("logo") is not None:
        validate_image(item["logo"], f"{path}.logo")


def validate_coordinates(latitude: str, longitude: str, path: str = "coordinates") -> None:
    if not isinstance(latitude, str) or not LATITUDE_RE.match(latitude):
        _fail(f"{path}.latitude", "must match -?[0-9]{1,2}.[0-9]{5,7}")
    if not isinstance(longitude, str) or not LONGITUDE_RE.match(longitude):
        _fail(f"{path}.longitude", "must match -?[0-9]{1,3}.[0-9]{5,7}")
    if not -90 <= float(latitude) <= 90 or not -180 <= float(longitude) <= 180:
        _fail(path, "is outside the WGS 84 range")


def validate_latitude(value: str) -> None:
    if not LATITUDE_RE.match(value or "") or not -90 <= float(value) <= 90:
        raise ValidationError("latitude must match -?[0-9]{1,2}.[0-9]{5,7} and lie in -90..90")


def validate_longitude(value: str) -> None:
    if not LONGITUDE_RE.match(value or "") or not -180 <= float(value) <= 180:
        raise ValidationError("longitude must match -?[0-9]{1,3}.[0-9]{5,7} and lie in -180..180")


def validate_related_locations(value: Any, path: str = "related_locations") -> None:
    for i, item in enumerate(_require_list(value, path)):
        item = _require_dict(item, f"{path}[{i}]")
        validate_coordinates(item.get("latitude"), item.get("longitude"), f"{path}[{i}]")
        if item.get("name") is not None:
            validate_display_text_list([item["name"]], f"{path}[{i}].name")


def _validate_regular_hours(value: Any, path: str) -> None:
    for i, item in enumerate(_require_list(value, path)):
        item = _require_dict(item, f"{path}[{i}]")
        weekday = item.get("weekday")
        if not isinstance(weekday, int) or isinstance(weekday, bool) or not 1 <= weekday <= 7:
            _fail(f"{path}[{i}].weekday", "must be an integer from 1 (Monday) to 7 (Sunday)")
        for key in ("period_begin", "period_end"):
            if not isinstance(item.get(key), str) or not HHMM_RE.match(item[key]):
                _fail(f"{path}[{i}].{key}", "must be local time HH:MM")
        # period_end may be 00:00 meaning midnight; otherwise it must follow period_begin.
        if item["period_end"] != "00:00" and item["period_end"] <= item["period_begin"]:
            _fail(f"{path}[{i}].period_end", "must be later than period_begin")


def _validate_exceptional_periods(value: Any, path: str) -> None:
    for i, item in enumerate(_require_list(value, path)):
        item = _require_dict(item, f"{path}[{i}]")
        for key in ("period_begin", "period_end"):
            if not isinstance(item.get(key), str) or not DATETIME_RE.match(item[key]):
                _fail(f"{path}[{i}].{key}", "must be an RFC 3339 date-time")


def validate_hours(value: Any, path: str = "opening_times") -> None:
    if value is None:
        return
    item = _require_dict(value, path)
    if not isinstance(item.get("twentyfourseven"), bool):
        _fail(f"{path}.twentyfourseven", "is required and must be a boolean")
    regular = item.get("regular_hours") or []
    _validate_regular_hours(regular, f"{path}.regular_hours")
    if not item["twentyfourseven"] and not regular:
        _fail(f"{path}.regular_hours", "is required when twentyfourseven is false")
    for key in ("exceptional_openings", "exceptional_closings"):
        _validate_exceptional_periods(item.get(key) or [], f"{path}.{key}")


def validate_energy_mix(value: Any, path: str = "energy_mix") -> None:
    if value is None:
        return
    item = _require_dict(value, path)
    if not isinstance(item.get("is_green_energy"), bool):
        _fail(f"{path}.is_green_energy", "is required and must be a boolean")
    for i, source in enumerate(_require_list(item.get("energy_sources") or [], path)):
        source = _require_dict(source, f"{path}.energy_sources[{i}]")
        _check_enum(
            source, "source", f"{path}.energy_sources[{i}]",
            choices.ENERGY_SOURCE_CATEGORIES, required=True,
        )  # fmt: skip
        _check_number(
            source, "percentage", f"{path}.energy_sources[{i}]", required=True, lo=0, hi=100
        )
    for i, impact in enumerate(_require_list(item.get("environ_impact") or [], path)):
        impact = _require_dict(impact, f"{path}.environ_impact[{i}]")
        _check_enum(
            impact, "category", f"{path}.environ_impact[{i}]",
            choices.ENVIRONMENTAL_IMPACT_CATEGORIES, required=True,
        )  # fmt: skip
        _check_number(impact, "amount", f"{path}.environ_impact[{i}]", required=True, lo=0)
    _check_string(item, "supplier_name", path, max_len=64, required=False)
    _check_string(item, "energy_product_name", path, max_len=64, required=False)


def validate_publish_allowed_to(value: Any, path: str = "publish_allowed_to") -> None:
    for i, item in enumerate(_require_list(value, path)):
        item = _require_dict(item, f"{path}[{i}]")
        where = f"{path}[{i}]"
        _check_string(item, "uid", where, max_len=36, required=False)
        _check_enum(item, "type", where, choices.TOKEN_TYPES, required=False)
        _check_string(item, "visual_number", where, max_len=64, required=False)
        _check_string(item, "issuer", where, max_len=64, required=False)
        _check_string(item, "group_id", where, max_len=36, required=False)
        if not any(item.get(k) for k in ("uid", "visual_number", "group_id")):
            _fail(where, "needs at least one of uid, visual_number or group_id")
        if item.get("uid") and not item.get("type"):
            _fail(where, "uid requires type")
        if item.get("visual_number") and not item.get("issuer"):
            _fail(where, "visual_number requires issuer")


def validate_status_schedule(value: Any, path: str = "status_schedule") -> None:
    for i, item in enumerate(_require_list(value, path)):
        item = _require_dict(item, f"{path}[{i}]")
        if not isinstance(item.get("period_begin"), str) or not DATETIME_RE.match(
            item["period_begin"]
        ):
            _fail(f"{path}[{i}].period_begin", "must be an RFC 3339 date-time")
        if item.get("period_end") is not None and (
            not isinstance(item["period_end"], str) or not DATETIME_RE.match(item["period_end"])
        ):
            _fail(f"{path}[{i}].period_end", "must be an RFC 3339 date-time")
        _check_enum(item, "status", f"{path}[{i}]", choices.EVSEStatus.values, required=True)


def validate_capabilities(value: Any) -> None:
    validate_enum_list(value, choices.CAPABILITIES, "capabilities")


def validate_facilities(value: Any) -> None:
    validate_enum_list(value, choices.FACILITIES, "facilities")


def validate_parking_restrictions(value: Any) -> None:
    validate_enum_list(value, choices.PARKING_RESTRICTIONS, "parking_restrictions")


def validate_days_of_week(value: Any) -> None:
    validate_enum_list(value, choices.DAYS_OF_WEEK, "day_of_week")


def validate_tariff_ids(value: Any) -> None:
    for i, item in enumerate(_require_list(value, "tariff_ids")):
        if not isinstance(item, str) or not 0 < len(item) <= 36:
            _fail(f"tariff_ids[{i}]", "must be a string of 1 to 36 characters")


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"{value!r} is not an IANA time zone") from exc


def validate_country_alpha3(value: str) -> None:
    if value not in ISO_ALPHA3:
        raise ValidationError(f"{value!r} is not an ISO 3166-1 alpha-3 country code")


def validate_country_alpha2(value: str) -> None:
    if value.upper() not in ISO_ALPHA2:
        raise ValidationError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")


def validate_party_id(value: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9]{3}", value or ""):
        raise ValidationError("party_id must be 3 ASCII letters or digits")


def validate_ci_string(value: str) -> None:
    """CiString: printable ASCII only (PROTOCOL.md §0)."""
    if any(not 0x20 <= ord(ch) <= 0x7E for ch in value):
        raise ValidationError("must be printable ASCII")


def validate_hhmm(value: str) -> None:
    if value and not HHMM_RE.match(value):
        raise ValidationError("must be local time HH:MM")


def validate_local_date(value: str) -> None:
    if value and not DATE_RE.match(value):
        raise ValidationError("must be a local date YYYY-MM-DD")


def validate_currency(value: str) -> None:
    if not CURRENCY_RE.match(value or ""):
        raise ValidationError("must be an ISO 4217 currency code, e.g. EUR")
