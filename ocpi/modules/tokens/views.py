"""Tokens Receiver endpoint (PROTOCOL.md §4.5): partners GET, PUT and PATCH their drivers' tokens
at {tokens_url}/{country_code}/{party_id}/{uid}[?type={TokenType}], type RFID when absent.

The rules (ownership, out-of-order writes) are billing.tokens'; this view checks the request's
shape (type, body, URL ids equal to body ids) and maps the outcomes:
- country code / party id not among the caller's roles: HTTP 404, OCPI 2000, nothing changes;
- invalid body, PATCH without last_updated, URL/body id mismatch: HTTP 400, OCPI 2001;
- unknown token on GET or PATCH: HTTP 404, OCPI 2004;
- PUT: 201 for a new token, 200 for a replaced one; PATCH: 200. Their responses carry no data.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from rest_framework.response import Response

from billing.choices import TokenType
from billing.tokens import (
    TokenNotFound,
    TokenNotOwned,
    token_get,
    token_owner_check,
    token_patch,
    token_upsert,
)

from ...envelope import ocpi_response
from ...exceptions import InvalidParameters, UnknownObject, UnknownToken
from ...views import OCPIView
from .serializers import parse_token, token_to_ocpi


@contextmanager
def _token_errors() -> Iterator[None]:
    try:
        yield
    except TokenNotOwned as exc:
        # Same answer whether or not the token exists: nothing about other partners leaks.
        raise UnknownObject(str(exc)) from exc
    except TokenNotFound as exc:
        raise UnknownToken(str(exc)) from exc


class TokenBaseView(OCPIView):
    """{tokens_url} itself: a Receiver serves only the tokens below it, so every method is 405."""


class TokenView(OCPIView):
    """GET/PUT/PATCH {tokens_url}/{country_code}/{party_id}/{uid}[?type=...]."""

    def token_type(self) -> str:
        value = self.request.query_params.get("type") or TokenType.RFID
        if value not in TokenType.values:
            raise InvalidParameters(f"type must be one of {', '.join(TokenType.values)}")
        return value

    def get(self, request, country_code: str, party_id: str, uid: str) -> Response:
        token_type = self.token_type()
        with _token_errors():
            token = token_get(
                partner=self.partner,
                country_code=country_code,
                party_id=party_id,
                uid=uid,
                token_type=token_type,
            )
        if token is None:
            raise UnknownToken(f"No token {uid} ({token_type}) of {country_code}*{party_id}")
        return ocpi_response(token_to_ocpi(token))

    def put(self, request, country_code: str, party_id: str, uid: str) -> Response:
        token_type = self.token_type()
        with _token_errors():
            token_owner_check(partner=self.partner, country_code=country_code, party_id=party_id)
        data = parse_token(request.data)
        _check_ids(data, country_code, party_id, uid, token_type)
        with _token_errors():
            write = token_upsert(partner=self.partner, data=data)
        return ocpi_response(http_status=201 if write.created else 200)

    def patch(self, request, country_code: str, party_id: str, uid: str) -> Response:
        token_type = self.token_type()
        with _token_errors():
            token_owner_check(partner=self.partner, country_code=country_code, party_id=party_id)
        data = parse_token(request.data, partial=True)
        _check_ids(data, country_code, party_id, uid, token_type)
        with _token_errors():
            token_patch(
                partner=self.partner,
                country_code=country_code,
                party_id=party_id,
                uid=uid,
                token_type=token_type,
                data=data,
            )
        return ocpi_response()


def _check_ids(data: dict, country_code: str, party_id: str, uid: str, token_type: str) -> None:
    """The object's key in the body (where sent) must be the URL's (PROTOCOL.md §1.11)."""
    expected = {"country_code": country_code, "party_id": party_id, "uid": uid}
    for name, value in expected.items():
        if name in data and data[name].lower() != value.lower():
            raise InvalidParameters(f"{name} {data[name]!r} in the body differs from the URL's")
    if "type" in data and data["type"] != token_type:
        raise InvalidParameters(
            f"type {data['type']} in the body differs from the URL's ({token_type})"
        )
