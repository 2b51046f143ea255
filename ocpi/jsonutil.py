"""The one JSON codec of the OCPI layer: exact decimals both ways, OCPI DateTimes out."""

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from .datetimes import format_datetime


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError("non-finite decimal")
        # A JSON number with exactly the digits we hold: no float round-trip, no exponent.
        text = (
            format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")
        )
        return orjson.Fragment(text)
    if isinstance(value, datetime):
        return format_datetime(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME)


def loads(data: bytes | str) -> Any:
    """Parse JSON keeping numbers with a fraction as Decimal (money and energy stay exact)."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    return json.loads(data, parse_float=Decimal)
