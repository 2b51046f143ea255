"""OCPI DateTime: emitted as UTC `YYYY-MM-DDTHH:MM:SS[.fff]Z`, parsed leniently (§1.9)."""

from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime as _django_parse


def format_datetime(value: datetime) -> str:
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    millis = value.microsecond // 1000
    if millis:
        text += f".{millis:03d}"
    return text + "Z"


def parse_datetime(value: str) -> datetime:
    """An OCPI DateTime as an aware UTC datetime; no designator means UTC. ValueError if bad."""
    if not isinstance(value, str) or len(value) > 35:
        raise ValueError("not an OCPI DateTime")
    parsed = _django_parse(value.strip())
    if parsed is None:
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)
