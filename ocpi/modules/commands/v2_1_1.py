"""OCPI 2.1.1 Commands (PROTOCOL.md §8 "Commands"): the 2.1.1 request bodies, the Receiver
endpoint and the 2.1.1 form of the asynchronous result, over the same workflow as 2.2.1
(ocpi.commands.command_receive).

What differs from 2.2.1:
- CommandType has no CANCEL_RESERVATION (answered NOT_SUPPORTED, like any command we do not
  know, and not kept);
- the Token in START_SESSION / RESERVE_NOW is a 2.1.1 Token: no country_code/party_id (the
  caller's one party is the token's), `auth_id` instead of contract_id;
- ReserveNow.reservation_id is an int; location_id/evse_uid are string(39); StartSession has no
  connector_id and no authorization_reference;
- the synchronous answer and the POST to response_url both carry CommandResponse `{result}`
  only (no timeout, no message); the 2.1.1 CommandResponseType is NOT_SUPPORTED, REJECTED,
  ACCEPTED, TIMEOUT or UNKNOWN_SESSION, so a 2.2.1 CommandResultType without 2.1.1 twin
  (EVSE_OCCUPIED, EVSE_INOPERATIVE, FAILED, UNKNOWN_RESERVATION, CANCELED_RESERVATION) is
  REJECTED.
"""

from rest_framework import serializers
from rest_framework.response import Response

from billing.choices import WhitelistType

from ...commands import command_receive
from ...envelope import envelope
from ...fields import (
    DateTimeField,
    ResponseURLField,
    StrictIntegerField,
    ci_string,
    without_nulls,
)
from ...versioning import V211View
from .views import CommandView

RESPONSE_TYPES = frozenset({"NOT_SUPPORTED", "REJECTED", "ACCEPTED", "TIMEOUT", "UNKNOWN_SESSION"})


def command_response_211(result: str) -> dict:
    """A 2.2.1 CommandResponseType or CommandResultType as the 2.1.1 CommandResponse."""
    return {"result": result if result in RESPONSE_TYPES else "REJECTED"}


class CommandTokenSerializer211(serializers.Serializer):
    """The 2.1.1 Token of a command: what the session and CDR need is required (uid, type,
    auth_id); the rest is optional (command tokens are pre-authorized, PROTOCOL.md §10.12)."""

    uid = ci_string(36)
    type = serializers.ChoiceField(choices=("OTHER", "RFID"))
    auth_id = ci_string(36)
    visual_number = serializers.CharField(
        max_length=64, required=False, allow_null=True, allow_blank=True
    )
    issuer = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=True)
    valid = serializers.BooleanField(required=False, allow_null=True)
    whitelist = serializers.ChoiceField(
        choices=WhitelistType.values, required=False, allow_null=True
    )
    language = serializers.CharField(
        max_length=2, required=False, allow_null=True, allow_blank=True
    )
    last_updated = DateTimeField(required=False, allow_null=True)


class CommandSerializer211(serializers.Serializer):
    response_url = ResponseURLField()


class StartSessionSerializer211(CommandSerializer211):
    token = CommandTokenSerializer211()
    location_id = ci_string(39)
    evse_uid = ci_string(39, required=False)


class StopSessionSerializer211(CommandSerializer211):
    session_id = ci_string(36)


class ReserveNowSerializer211(CommandSerializer211):
    token = CommandTokenSerializer211()
    expiry_date = DateTimeField()
    reservation_id = StrictIntegerField(min_value=0, max_value=2**31 - 1)
    location_id = ci_string(39)
    evse_uid = ci_string(39, required=False)


class UnlockConnectorSerializer211(CommandSerializer211):
    location_id = ci_string(39)
    evse_uid = ci_string(39)
    connector_id = ci_string(36)


COMMAND_SERIALIZERS_211 = {
    "START_SESSION": StartSessionSerializer211,
    "STOP_SESSION": StopSessionSerializer211,
    "RESERVE_NOW": ReserveNowSerializer211,
    "UNLOCK_CONNECTOR": UnlockConnectorSerializer211,
}


def parse_command_211(kind: str, data, *, partner) -> dict:
    """The validated 2.1.1 command for `kind` (one of COMMAND_SERIALIZERS_211), in the shape
    the commands workflow takes (the 2.2.1 one): the token gets the caller's party and a
    contract_id, the reservation_id becomes a string. Raises rest_framework's ValidationError."""
    serializer = COMMAND_SERIALIZERS_211[kind](data=data)
    serializer.is_valid(raise_exception=True)
    command = without_nulls(dict(serializer.validated_data))
    if "token" in command:
        token = dict(command["token"])
        role = next(iter(partner.roles.all()), None)
        token["country_code"] = role.country_code if role is not None else ""
        token["party_id"] = role.party_id if role is not None else ""
        token["contract_id"] = token.pop("auth_id")
        command["token"] = token
    if "reservation_id" in command:
        command["reservation_id"] = str(command["reservation_id"])
    return command


class CommandView211(V211View, CommandView):
    """POST {commands_url}/{command} (2.1.1)."""

    def post(self, request, command: str) -> Response:
        if command not in COMMAND_SERIALIZERS_211:
            return Response(envelope(command_response_211("NOT_SUPPORTED")))
        answer = command_receive(
            partner=self.partner,
            kind=command,
            data=parse_command_211(command, request.data, partner=self.partner),
            correlation_id=getattr(request, "ocpi_correlation_id", None),
        )
        return Response(
            envelope(
                command_response_211(answer.result),
                status_code=answer.status_code,
                message=answer.message or None,
            )
        )
