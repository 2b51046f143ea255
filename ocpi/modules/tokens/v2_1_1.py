"""OCPI 2.1.1 Tokens (PROTOCOL.md §8 "Tokens"): the Token object in and out, and the 2.1.1
Tokens Receiver endpoint, over the same services as 2.2.1 (billing.tokens).

A 2.1.1 Token has uid, type, auth_id, visual_number, issuer, valid, whitelist, language and
last_updated: no country_code/party_id (the URL has them; one party per 2.1.1 connection), no
group_id, default_profile_type or energy_contract; `auth_id` is what the data model (named
after 2.2.1) calls contract_id. TokenType is only OTHER or RFID.

The Receiver URL is {tokens_url}/{country_code}/{party_id}/{token_uid}, without `?type`: the uid
alone names the token. PUT takes the type from the body; GET and PATCH (without a type in the
body) find the caller's token with that uid, RFID first. 2.1.1 has no status 2004: an unknown
token is HTTP 404 with 2000. A 2.1.1 PATCH need not carry last_updated (the spec's own example
has none): then the time of receipt stands in for it.
"""

from typing import Any

from django.utils import timezone
from rest_framework import serializers
from rest_framework.response import Response

from billing.choices import TokenType, WhitelistType
from billing.models import Token
from billing.tokens import (
    TokenNotFound,
    TokenNotOwned,
    token_get,
    token_owner_check,
    token_patch,
    token_upsert,
)

from ...envelope import ocpi_response
from ...exceptions import InvalidParameters, UnknownObject
from ...fields import OPTIONAL, DateTimeField, StrictBooleanField, StringField, without_nulls
from ...versioning import V211View, ascii_strings, whole_seconds
from ...views import OCPIView
from .serializers import DATETIME_ERRORS

TOKEN_TYPES = ("OTHER", "RFID")
#: The order in which a uid without a type is looked up: 2.1.1's own types first (a partner
#: that came from 2.2.1 may still hold others).
LOOKUP_ORDER = (TokenType.RFID, TokenType.OTHER, TokenType.APP_USER, TokenType.AD_HOC_USER)


class TokenSerializer211(serializers.Serializer):
    uid = StringField(ascii_only=True, max_length=36)
    type = serializers.ChoiceField(choices=TOKEN_TYPES)
    auth_id = StringField(ascii_only=True, max_length=36)
    visual_number = StringField(max_length=64, allow_blank=True, **OPTIONAL)
    issuer = StringField(max_length=64, allow_blank=True)
    valid = StrictBooleanField()
    whitelist = serializers.ChoiceField(choices=WhitelistType.choices)
    language = StringField(max_length=2, allow_blank=True, **OPTIONAL)
    last_updated = DateTimeField(error_messages=DATETIME_ERRORS)


def parse_token_211(data: Any, *, country_code: str, party_id: str, partial: bool = False) -> dict:
    """A validated 2.1.1 Token as the data model's Token fields (contract_id for auth_id), for
    the party `country_code`/`party_id`; nulls dropped. `partial` (PATCH): only the fields sent;
    a missing last_updated is the time of receipt. Raises rest_framework's ValidationError."""
    if not isinstance(data, dict):
        raise serializers.ValidationError("The body must be a Token object.")
    serializer = TokenSerializer211(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    values = without_nulls(dict(serializer.validated_data))
    if "auth_id" in values:
        values["contract_id"] = values.pop("auth_id")
    if partial:
        values.setdefault("last_updated", timezone.now())
    else:
        values.update(country_code=country_code, party_id=party_id)
    return values


def token_to_ocpi_211(token: Token) -> dict:
    """Our stored copy of a partner's Token, as OCPI 2.1.1."""
    data: dict[str, Any] = {
        "uid": token.uid,
        "type": token.type if token.type in TOKEN_TYPES else TokenType.OTHER,
        "auth_id": token.contract_id,
    }
    if token.visual_number:
        data["visual_number"] = token.visual_number
    data["issuer"] = token.issuer
    data["valid"] = token.valid
    data["whitelist"] = token.whitelist
    if token.language:
        data["language"] = token.language
    data["last_updated"] = whole_seconds(token.last_updated)
    return ascii_strings(data)


def parse_partner_token_211(data: Any, *, partner) -> dict:
    """A Token from a 2.1.1 partner's tokens Sender (token sync): its party is the partner's
    one role (2.1.1 connections have one party)."""
    role = next(iter(partner.roles.all()), None)
    if role is None:
        raise serializers.ValidationError("The partner has no party to own this token.")
    return parse_token_211(data, country_code=role.country_code, party_id=role.party_id)


class TokenView211(V211View, OCPIView):
    """GET/PUT/PATCH {tokens_url}/{country_code}/{party_id}/{uid} (2.1.1)."""

    def _owned(self, country_code: str, party_id: str) -> None:
        try:
            token_owner_check(partner=self.partner, country_code=country_code, party_id=party_id)
        except TokenNotOwned as exc:
            raise UnknownObject(str(exc)) from exc

    def _find(self, country_code: str, party_id: str, uid: str) -> Token:
        for token_type in LOOKUP_ORDER:
            try:
                token = token_get(
                    partner=self.partner,
                    country_code=country_code,
                    party_id=party_id,
                    uid=uid,
                    token_type=token_type,
                )
            except TokenNotOwned as exc:
                raise UnknownObject(str(exc)) from exc
            if token is not None:
                return token
        raise UnknownObject(f"No token {uid} of {country_code}*{party_id}")

    def get(self, request, country_code: str, party_id: str, uid: str) -> Response:
        return ocpi_response(token_to_ocpi_211(self._find(country_code, party_id, uid)))

    def put(self, request, country_code: str, party_id: str, uid: str) -> Response:
        self._owned(country_code, party_id)
        data = parse_token_211(request.data, country_code=country_code, party_id=party_id)
        _check_uid(data, uid)
        try:
            write = token_upsert(partner=self.partner, data=data)
        except TokenNotOwned as exc:
            raise UnknownObject(str(exc)) from exc
        return ocpi_response(http_status=201 if write.created else 200)

    def patch(self, request, country_code: str, party_id: str, uid: str) -> Response:
        self._owned(country_code, party_id)
        data = parse_token_211(
            request.data, country_code=country_code, party_id=party_id, partial=True
        )
        _check_uid(data, uid)
        token_type = data.get("type") or self._find(country_code, party_id, uid).type
        try:
            token_patch(
                partner=self.partner,
                country_code=country_code,
                party_id=party_id,
                uid=uid,
                token_type=token_type,
                data=data,
            )
        except (TokenNotOwned, TokenNotFound) as exc:
            raise UnknownObject(str(exc)) from exc
        return ocpi_response()


def _check_uid(data: dict, uid: str) -> None:
    if "uid" in data and data["uid"].lower() != uid.lower():
        raise InvalidParameters(f"uid {data['uid']!r} in the body differs from the URL's")
