"""OCPI 2.1.1 Session objects (PROTOCOL.md §8 "Sessions") from the same models as 2.2.1, and
the 2.1.1 Sessions Sender endpoint (GET list only: 2.1.1 has no charging preferences).

What differs from 2.2.1:
- no country_code/party_id/authorization_reference; `start_datetime`/`end_datetime` (no
  underscore between date and time);
- `auth_id` (the token's auth_id, which is what 2.2.1 calls contract_id) instead of cdr_token;
- `location`: the 2.1.1 Location with only the session's EVSE and connector;
- `total_cost`: a number, excluding VAT;
- AuthMethod has no COMMAND: a session a START_SESSION command started was authorized by the
  eMSP itself, so it is AUTH_REQUEST; SessionStatus has no RESERVATION: PENDING (the session
  has not started yet);
- ChargingPeriod has no tariff_id, and CdrDimensionType only ENERGY, FLAT, MAX_CURRENT,
  MIN_CURRENT, PARKING_TIME and TIME: other dimensions are left out (and a period left with none
  is left out);
- DateTimes in whole seconds; text folded to ASCII.
"""

from typing import Any

from billing.models import ChargingPeriod, Session
from billing.sessions import session_periods

from ...versioning import V211View, ascii_strings, whole_seconds
from ..locations.v2_1_1 import location_to_ocpi_211
from .serializers import _number
from .views import SessionListView

DIMENSION_TYPES = frozenset(
    {"ENERGY", "FLAT", "MAX_CURRENT", "MIN_CURRENT", "PARKING_TIME", "TIME"}
)
AUTH_METHODS = {"AUTH_REQUEST": "AUTH_REQUEST", "WHITELIST": "WHITELIST", "COMMAND": "AUTH_REQUEST"}
STATUSES = {"RESERVATION": "PENDING"}


def auth_method_211(auth_method: str) -> str:
    return AUTH_METHODS.get(auth_method, "AUTH_REQUEST")


def charging_period_dict_to_211(period: dict) -> dict | None:
    """A 2.2.1 ChargingPeriod (as a dict) as 2.1.1, or None when no dimension is left."""
    dimensions = [
        {"type": d["type"], "volume": _number(d["volume"])}
        for d in period.get("dimensions") or []
        if d.get("type") in DIMENSION_TYPES
    ]
    if not dimensions:
        return None
    return {
        "start_date_time": whole_seconds(period["start_date_time"]),
        "dimensions": dimensions,
    }


def charging_periods_211(periods: list[dict]) -> list[dict]:
    converted = (charging_period_dict_to_211(p) for p in periods)
    return [p for p in converted if p is not None]


def charging_period_to_ocpi_211(period: ChargingPeriod) -> dict | None:
    return charging_period_dict_to_211(
        {"start_date_time": period.start_date_time, "dimensions": period.dimensions}
    )


def session_to_ocpi_211(session: Session) -> dict:
    """The 2.1.1 Session (select_related location/evse/connector and prefetch periods when
    rendering many)."""
    data: dict[str, Any] = {
        "id": session.ocpi_id,
        "start_datetime": whole_seconds(session.start_date_time),
    }
    if session.end_date_time is not None:
        data["end_datetime"] = whole_seconds(session.end_date_time)
    data["kwh"] = session.kwh
    data["auth_id"] = session.cdr_token.get("contract_id") or session.cdr_token.get("uid", "")
    data["auth_method"] = auth_method_211(session.auth_method)
    data["location"] = location_to_ocpi_211(
        session.location, evse=session.evse, connector=session.connector
    )
    if session.meter_id:
        data["meter_id"] = session.meter_id
    data["currency"] = session.currency
    periods = (charging_period_to_ocpi_211(p) for p in session_periods(session))
    data["charging_periods"] = [p for p in periods if p is not None]
    if session.total_cost_excl_vat is not None:
        data["total_cost"] = session.total_cost_excl_vat
    data["status"] = STATUSES.get(session.status, session.status)
    data["last_updated"] = whole_seconds(session.last_updated)
    return ascii_strings(data)


class SessionListView211(V211View, SessionListView):
    """GET {sessions_url}?date_from=... (2.1.1): the caller's sessions, as 2.1.1 objects."""

    def serialize(self, obj) -> dict:
        return session_to_ocpi_211(obj)
