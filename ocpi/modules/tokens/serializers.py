"""OCPI 2.2.1 Token, LocationReferences and AuthorizationInfo (PROTOCOL.md §5.6).

Input: `parse_token()` validates a partner's Token (the tokens receiver's PUT and PATCH bodies,
each token of a sync, the token inside an AuthorizationInfo) against the spec's types, lengths and
enums, and returns plain Python data for billing.tokens; it raises DRF's ValidationError, which
the exception handler answers with 2001. Unknown fields are ignored (§10.23); optional fields may
be absent or null. Strings must be JSON strings (no number silently becomes an id), and ids are
not trimmed (" 123" is not "123").

Output: `token_to_ocpi()` is the one Token object we render; optional fields are left out when
empty.
"""

import re
from typing import Any

from rest_framework import serializers

from billing.choices import ProfileType, TokenType, WhitelistType
from billing.models import Token

from ...datetimes import parse_datetime

#: CiString: printable ASCII (PROTOCOL.md §0).
_PRINTABLE_ASCII = re.compile(r"\A[\x20-\x7e]*\Z")


class StringField(serializers.CharField):
    """An OCPI string(n) or, with `ascii_only`, a CiString(n): a JSON string, taken as sent."""

    default_error_messages = {
        "not_a_string": "Must be a string.",
        "not_ascii": "Must be printable ASCII (CiString).",
    }

    def __init__(self, *, ascii_only: bool = False, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        self.ascii_only = ascii_only

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        if self.ascii_only and not _PRINTABLE_ASCII.match(data):
            self.fail("not_ascii")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean: true or false, not "yes", 1 or "true"."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class DateTimeField(serializers.Field):
    """An OCPI DateTime (§1.9), parsed leniently to an aware UTC datetime."""

    default_error_messages = {
        "invalid": "Must be an RFC 3339 date-time, e.g. 2025-01-01T12:00:00Z."
    }

    def to_internal_value(self, data):
        try:
            return parse_datetime(data)
        except ValueError:
            self.fail("invalid")

    def to_representation(self, value):
        return value


class PassThroughField(serializers.Field):
    """Any JSON value, validated later by its own parser."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


#: An optional field: absent or null (PROTOCOL.md §0). Passed as arguments, since DRF re-creates
#: declared fields from their arguments for each serializer instance.
OPTIONAL = {"required": False, "allow_null": True}


class EnergyContractSerializer(serializers.Serializer):
    supplier_name = StringField(max_length=64)
    contract_id = StringField(max_length=64, allow_blank=True, **OPTIONAL)


class TokenSerializer(serializers.Serializer):
    country_code = StringField(ascii_only=True, min_length=2, max_length=2)
    party_id = StringField(ascii_only=True, min_length=3, max_length=3)
    uid = StringField(ascii_only=True, max_length=36)
    type = serializers.ChoiceField(choices=TokenType.choices)
    contract_id = StringField(ascii_only=True, max_length=36)
    visual_number = StringField(max_length=64, allow_blank=True, **OPTIONAL)
    issuer = StringField(max_length=64, allow_blank=True)
    group_id = StringField(ascii_only=True, max_length=36, allow_blank=True, **OPTIONAL)
    valid = StrictBooleanField()
    whitelist = serializers.ChoiceField(choices=WhitelistType.choices)
    language = StringField(max_length=2, allow_blank=True, **OPTIONAL)
    default_profile_type = serializers.ChoiceField(
        choices=ProfileType.choices, allow_blank=True, **OPTIONAL
    )
    energy_contract = EnergyContractSerializer(required=False, allow_null=True)
    last_updated = DateTimeField()


def _without_nulls(data: dict) -> dict:
    return {
        key: _without_nulls(value) if isinstance(value, dict) else value
        for key, value in data.items()
        if value is not None
    }


def parse_token(data: Any, *, partial: bool = False) -> dict:
    """A validated Token as a dict of Python values, nulls dropped.

    `partial` (PATCH): only the fields sent, but `last_updated` is required (§1.10).
    Raises rest_framework.exceptions.ValidationError."""
    serializer = TokenSerializer(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    validated = _without_nulls(dict(serializer.validated_data))
    if partial and "last_updated" not in validated:
        raise serializers.ValidationError({"last_updated": ["A PATCH must contain last_updated."]})
    return validated


class LocationReferencesSerializer(serializers.Serializer):
    location_id = StringField(ascii_only=True, max_length=36)
    evse_uids = serializers.ListField(
        child=StringField(ascii_only=True, max_length=36), required=False, allow_null=True
    )


class DisplayTextSerializer(serializers.Serializer):
    language = StringField(max_length=2)
    text = StringField(max_length=512, allow_blank=True)


class AuthorizationInfoSerializer(serializers.Serializer):
    """An eMSP's answer to real-time authorization. `allowed` is kept as sent: a value outside
    AllowedType is simply not ALLOWED (§10.23); `token` is validated on its own."""

    allowed = StringField(max_length=20)
    token = PassThroughField(**OPTIONAL)
    location = LocationReferencesSerializer(required=False, allow_null=True)
    authorization_reference = StringField(ascii_only=True, max_length=36, **OPTIONAL)
    info = DisplayTextSerializer(required=False, allow_null=True)


def parse_authorization_info(data: Any) -> dict:
    """A validated AuthorizationInfo, nulls dropped; its `token` a parse_token() dict, or absent
    if the eMSP sent none or an invalid one. Raises ValidationError."""
    serializer = AuthorizationInfoSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    info = _without_nulls(dict(serializer.validated_data))
    if "location" in info:
        info["location"] = dict(info["location"])
    token = info.pop("token", None)
    if token is not None:
        try:
            info["token"] = parse_token(token)
        except serializers.ValidationError:
            pass
    return info


def token_to_ocpi(token: Token) -> dict:
    """Our stored copy of a partner's Token, as OCPI 2.2.1."""
    data: dict[str, Any] = {
        "country_code": token.country_code,
        "party_id": token.party_id,
        "uid": token.uid,
        "type": token.type,
        "contract_id": token.contract_id,
    }
    if token.visual_number:
        data["visual_number"] = token.visual_number
    data["issuer"] = token.issuer
    if token.group_id:
        data["group_id"] = token.group_id
    data["valid"] = token.valid
    data["whitelist"] = token.whitelist
    if token.language:
        data["language"] = token.language
    if token.default_profile_type:
        data["default_profile_type"] = token.default_profile_type
    if token.energy_contract:
        data["energy_contract"] = token.energy_contract
    data["last_updated"] = token.last_updated
    return data
