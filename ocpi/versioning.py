"""OCPI versions at the edge (DESIGN.md "One data model, many versions", PROTOCOL.md §8).

One data model (named after 2.2.1) and one set of services; each OCPI version is a set of
serializers and parsers over them. Which set applies is decided here and nowhere else:
- inbound requests: by the URL (the 2.1.1 views are subclasses of the 2.2.1 ones that swap the
  serializer or parser, and mix in `V211View`);
- pushes to a partner: by the partner's negotiated version (`Partner.version`, set by the
  credentials handshake), through `ocpi.renderers.serializers_for(version)`.

2.1.1 DateTimes carry no fractional seconds (PROTOCOL.md §8): the 2.1.1 serializers truncate
their DateTimes to whole seconds (`whole_seconds`), and `V211View` does the same for the
envelope's timestamp. 2.1.1 strings are printable ASCII (2.2.1:
UTF-8): the 2.1.1 serializers fold their text to ASCII (`ascii_strings`: "Düsseldorf" becomes
"Dusseldorf", "Straße" "Strasse"; a character without an ASCII form is left out).
"""

import unicodedata
from datetime import datetime
from typing import Any

from .datetimes import parse_datetime

V2_1_1 = "2.1.1"
V2_2_1 = "2.2.1"


def whole_seconds(value: datetime | str | None) -> datetime | None:
    """A DateTime without its fractional seconds (2.1.1 DateTimes have none).

    Accepts the ISO 8601 strings JSON snapshots hold (e.g. a CDR's frozen tariffs)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    return value.replace(microsecond=0)


# Characters NFKD does not turn into ASCII.
_ASCII_LETTERS = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "ł": "l",
     "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th", "ı": "i",
     "–": "-", "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "«": '"', "»": '"',
     "€": "EUR"}
)  # fmt: skip


def ascii_text(value: str) -> str:
    """`value` as printable ASCII: accents dropped, a few letters spelled out, the rest left
    out."""
    if value.isascii():
        return value
    folded = unicodedata.normalize("NFKD", value.translate(_ASCII_LETTERS))
    return "".join(c for c in folded if " " <= c <= "~")


def ascii_strings(value: Any) -> Any:
    """`value` with every string in it (dicts and lists walked) as `ascii_text`."""
    if isinstance(value, str):
        return ascii_text(value)
    if isinstance(value, dict):
        return {key: ascii_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [ascii_strings(item) for item in value]
    return value


class WholeSecondsResponses:
    """View mixin: the envelope's timestamp in whole seconds, on every response (errors
    included); the objects in `data` come whole-second from the 2.1.1 serializers. Put it first
    among the bases."""

    def finalize_response(self, request, response, *args, **kwargs):
        body = getattr(response, "data", None)
        if isinstance(body, dict) and isinstance(body.get("timestamp"), datetime):
            body["timestamp"] = body["timestamp"].replace(microsecond=0)
        return super().finalize_response(request, response, *args, **kwargs)


class V211View(WholeSecondsResponses):
    """Mixin for the views of 2.1.1 URLs (whole-second DateTimes). Put it first among the
    bases."""

    ocpi_version = V2_1_1
