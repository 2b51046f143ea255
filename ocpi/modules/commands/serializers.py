"""Input validation of the commands receiver (PROTOCOL.md §5.7).

`parse_command(kind, data)` turns a command body into plain Python data or raises DRF's
ValidationError (answered 2001 by the exception handler, and nothing is kept). OCPI limits are
checked (CiString lengths, URL ≤ 255, enums we act on); unknown fields are ignored and optional
fields may be absent or null (PROTOCOL.md §10.23). Of the command's Token we require what the
session and CDR need (the CdrToken fields); the rest is optional: command tokens are
pre-authorized by the eMSP and not validated further (§10.12).
"""

from rest_framework import serializers

from billing.choices import ProfileType, TokenType, WhitelistType

from ...datetimes import parse_datetime
from ...serializers import country_code_field, party_id_field

# CiString: printable ASCII (PROTOCOL.md §1.9).
_CI_STRING = r"\A[\x20-\x7e]*\Z"


def ci_string(max_length: int, *, required: bool = True) -> serializers.RegexField:
    return serializers.RegexField(
        _CI_STRING,
        max_length=max_length,
        required=required,
        allow_null=not required,
        error_messages={"invalid": "Must be printable ASCII (CiString)."},
    )


class ResponseURLField(serializers.URLField):
    """An OCPI URL (string(255)) we will POST to: http or https only."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 255)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("Must be an http or https URL.")
        return value


class OCPIDateTimeField(serializers.Field):
    """An OCPI DateTime, parsed leniently into an aware UTC datetime (PROTOCOL.md §1.9)."""

    default_error_messages = {"invalid": "Must be an RFC 3339 date-time (UTC)."}

    def to_internal_value(self, data):
        try:
            return parse_datetime(data)
        except ValueError:
            self.fail("invalid")

    def to_representation(self, value):
        return value


class CommandTokenSerializer(serializers.Serializer):
    """The Token in START_SESSION / RESERVE_NOW (OCPI Token, §5.6)."""

    country_code = country_code_field()
    party_id = party_id_field()
    uid = ci_string(36)
    type = serializers.ChoiceField(choices=TokenType.values)
    contract_id = ci_string(36)
    visual_number = serializers.CharField(
        max_length=64, required=False, allow_null=True, allow_blank=True
    )
    issuer = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=True)
    group_id = ci_string(36, required=False)
    valid = serializers.BooleanField(required=False, allow_null=True)
    whitelist = serializers.ChoiceField(
        choices=WhitelistType.values, required=False, allow_null=True
    )
    language = serializers.CharField(
        max_length=2, required=False, allow_null=True, allow_blank=True
    )
    default_profile_type = serializers.ChoiceField(
        choices=ProfileType.values, required=False, allow_null=True
    )
    energy_contract = serializers.DictField(required=False, allow_null=True)
    last_updated = OCPIDateTimeField(required=False, allow_null=True)


class CommandSerializer(serializers.Serializer):
    response_url = ResponseURLField()


class StartSessionSerializer(CommandSerializer):
    token = CommandTokenSerializer()
    location_id = ci_string(36)
    evse_uid = ci_string(36, required=False)
    connector_id = ci_string(36, required=False)
    authorization_reference = ci_string(36, required=False)

    def validate(self, attrs: dict) -> dict:
        if attrs.get("connector_id") is not None and attrs.get("evse_uid") is None:
            raise serializers.ValidationError({"evse_uid": "Required when connector_id is set."})
        return attrs


class StopSessionSerializer(CommandSerializer):
    session_id = ci_string(36)


class ReserveNowSerializer(CommandSerializer):
    token = CommandTokenSerializer()
    expiry_date = OCPIDateTimeField()
    reservation_id = ci_string(36)
    location_id = ci_string(36)
    evse_uid = ci_string(36, required=False)
    authorization_reference = ci_string(36, required=False)


class CancelReservationSerializer(CommandSerializer):
    reservation_id = ci_string(36)


class UnlockConnectorSerializer(CommandSerializer):
    location_id = ci_string(36)
    evse_uid = ci_string(36)
    connector_id = ci_string(36)


COMMAND_SERIALIZERS = {
    "START_SESSION": StartSessionSerializer,
    "STOP_SESSION": StopSessionSerializer,
    "RESERVE_NOW": ReserveNowSerializer,
    "CANCEL_RESERVATION": CancelReservationSerializer,
    "UNLOCK_CONNECTOR": UnlockConnectorSerializer,
}


def without_nulls(value):
    """Optional fields sent as null are treated as absent."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def parse_command(kind: str, data) -> dict:
    """The validated command object for `kind` (one of COMMAND_SERIALIZERS)."""
    serializer = COMMAND_SERIALIZERS[kind](data=data)
    serializer.is_valid(raise_exception=True)
    return without_nulls(dict(serializer.validated_data))
