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

from typing import Any

from rest_framework import serializers

from billing.choices import ProfileType, TokenType, WhitelistType
from billing.models import Token

from ...fields import (
    OPTIONAL,
    DateTimeField,
    PassThroughField,
    StrictBooleanField,
    StringField,
    without_nulls,
)

#: Our DateTime message for tokens, with an example.
DATETIME_ERRORS = {"invalid": "Must be an RFC 3339 date-time, e.g. 2025-01-01T12:00:00Z."}


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
    last_updated = DateTimeField(error_messages=DATETIME_ERRORS)


def parse_token(data: Any, *, partial: bool = False) -> dict:
    """A validated Token as a dict of Python values, nulls dropped.

    `partial` (PATCH): only the fields sent, but `last_updated` is required (§1.10).
    Raises rest_framework.exceptions.ValidationError."""
    serializer = TokenSerializer(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    validated = without_nulls(dict(serializer.validated_data))
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
    info = without_nulls(dict(serializer.validated_data))
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
