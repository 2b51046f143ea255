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

from ...fields import (
    DateTimeField,
    ResponseURLField,
    ci_string,
    country_code_field,
    party_id_field,
    without_nulls,
)


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
    last_updated = DateTimeField(required=False, allow_null=True)


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
    expiry_date = DateTimeField()
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


def parse_command(kind: str, data) -> dict:
    """The validated command object for `kind` (one of COMMAND_SERIALIZERS)."""
    serializer = COMMAND_SERIALIZERS[kind](data=data)
    serializer.is_valid(raise_exception=True)
    return without_nulls(dict(serializer.validated_data))
