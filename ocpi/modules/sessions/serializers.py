"""OCPI 2.2.1 Session objects (PROTOCOL.md §5.3) from billing's models, used by the Sessions
Sender endpoint and by the session pushes alike; and the ChargingPreferences input.

A running session carries its closed charging periods; the open one follows once it closes
(billing.sessions explains why: PATCHes append periods). `total_cost` is there once the tariff
maths could price the session (omitted means unknown, not free).
"""

from decimal import Decimal, InvalidOperation
from typing import Any

from rest_framework import serializers

from billing.choices import ProfileType
from billing.models import ChargingPeriod, Session
from billing.sessions import session_periods

from ...fields import DateTimeField

CDR_TOKEN_FIELDS = ("country_code", "party_id", "uid", "type", "contract_id")


def _number(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def charging_period_to_ocpi(period: ChargingPeriod) -> dict:
    data: dict[str, Any] = {
        "start_date_time": period.start_date_time,
        "dimensions": [
            {"type": item["type"], "volume": _number(item["volume"])} for item in period.dimensions
        ],
    }
    if period.tariff_id:
        data["tariff_id"] = period.tariff_id
    return data


def session_to_ocpi(session: Session) -> dict:
    """The OCPI Session (select_related location/evse/connector and prefetch periods when
    rendering many)."""
    data: dict[str, Any] = {
        "country_code": session.country_code,
        "party_id": session.party_id,
        "id": session.ocpi_id,
        "start_date_time": session.start_date_time,
    }
    if session.end_date_time is not None:
        data["end_date_time"] = session.end_date_time
    data["kwh"] = session.kwh
    data["cdr_token"] = {k: session.cdr_token.get(k, "") for k in CDR_TOKEN_FIELDS}
    data["auth_method"] = session.auth_method
    if session.authorization_reference:
        data["authorization_reference"] = session.authorization_reference
    data["location_id"] = session.location.ocpi_id
    data["evse_uid"] = session.evse.uid
    data["connector_id"] = session.connector.ocpi_id
    if session.meter_id:
        data["meter_id"] = session.meter_id
    data["currency"] = session.currency
    data["charging_periods"] = [charging_period_to_ocpi(p) for p in session_periods(session)]
    if session.total_cost_excl_vat is not None:
        total_cost = {"excl_vat": session.total_cost_excl_vat}
        if session.total_cost_incl_vat is not None:
            total_cost["incl_vat"] = session.total_cost_incl_vat
        data["total_cost"] = total_cost
    data["status"] = session.status
    data["last_updated"] = session.last_updated
    return data


# --- ChargingPreferences (input) ---------------------------------------------------------------
class _KWhField(serializers.Field):
    """A JSON number of kWh, at least 0, kept exact (Decimal)."""

    default_error_messages = {"invalid": "Must be a number of kWh, at least 0."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | Decimal | float):
            self.fail("invalid")
        try:
            value = Decimal(str(data))
        except InvalidOperation:
            self.fail("invalid")
        if not value.is_finite() or value < 0 or value > Decimal(100000):
            self.fail("invalid")
        return value


class ChargingPreferencesSerializer(serializers.Serializer):
    profile_type = serializers.ChoiceField(choices=ProfileType.choices)
    departure_time = DateTimeField(required=False, allow_null=True)
    energy_need = _KWhField(required=False, allow_null=True)
    discharge_allowed = serializers.BooleanField(required=False, allow_null=True)


def parse_charging_preferences(data) -> dict:
    """A validated ChargingPreferences object; absent optional fields are None. Raises DRF's
    ValidationError (answered 2001). Unknown fields are ignored (PROTOCOL.md §10.23)."""
    if not isinstance(data, dict):
        raise serializers.ValidationError("The body must be a ChargingPreferences object.")
    serializer = ChargingPreferencesSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    values = dict(serializer.validated_data)
    for name in ("departure_time", "energy_need", "discharge_allowed"):
        values.setdefault(name, None)
    return values
