"""Versions, version details and the credentials endpoint, called in-process (PROTOCOL.md §2, §3).

The partner's side of the callbacks is a real EMSPServer on 127.0.0.1; our server does not need
to be reachable here, so these tests run inside a rolled-back transaction.
"""

import base64
import json

import pytest
import responses
from django.urls import resolve
from rest_framework.exceptions import ValidationError
from rest_framework.test import APIClient

from ocpi import tokens
from ocpi.exceptions import NoMatchingEndpoints, UnableToUseClientAPI
from ocpi.models import Partner, cpo_roles
from ocpi.serializers import parse_credentials
from ocpi.services import partner_api_fetch, partner_create
from ocpi.versions import ENDPOINTS
from tests.contract import validate_envelope, validate_response

CREDENTIALS_URL = "/ocpi/2.2.1/credentials"
OUR_DETAILS = {
    "version": "2.2.1",
    "endpoints": [
        {"identifier": identifier, "role": role, "url": f"http://testserver/ocpi/{path}"}
        for identifier, role, path in [
            ("credentials", "SENDER", "2.2.1/credentials"),
            ("locations", "SENDER", "cpo/2.2.1/locations"),
            ("tariffs", "SENDER", "cpo/2.2.1/tariffs"),
            ("sessions", "SENDER", "cpo/2.2.1/sessions"),
            ("cdrs", "SENDER", "cpo/2.2.1/cdrs"),
            ("commands", "RECEIVER", "cpo/2.2.1/commands"),
            ("chargingprofiles", "RECEIVER", "cpo/2.2.1/chargingprofiles"),
            ("tokens", "RECEIVER", "cpo/2.2.1/tokens"),
        ]
    ],
}


def auth(token: str, *, base64_encoded: bool = True) -> str:
    return "Token " + tokens.encode_for_header(token, base64_encoded=base64_encoded)


def call(method: str, path: str, token: str | None, body=None, *, base64_encoded=True, **extra):
    client = APIClient()
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = auth(token, base64_encoded=base64_encoded)
    if method == "GET":
        return client.get(path, **extra)
    data = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
    return getattr(client, method.lower())(
        path, data=data, content_type="application/json", **extra
    )


def header_token(recorded) -> str:
    value = recorded.headers["Authorization"].removeprefix("Token ")
    return base64.b64decode(value).decode()


@pytest.fixture
def pending(db):
    """A partner staff created, with its token A: (partner, token_a)."""
    return partner_create(name="Test eMSP")


@pytest.fixture
def registered(make_partner, emsp):
    """A registered partner whose versions URL is the eMSP server: (partner, token)."""
    return make_partner(
        "Test eMSP",
        versions_url=emsp.versions_url,
        endpoints=[{"identifier": "locations", "role": "RECEIVER", "url": "http://127.0.0.1:9/x"}],
    )


def snapshot(partner: Partner) -> dict:
    partner.refresh_from_db()
    return {
        "status": partner.status,
        "version": partner.version,
        "versions_url": partner.versions_url,
        "endpoints": partner.endpoints,
        "token_a": partner.token_a_digest,
        "inbound": partner.inbound_token_digest,
        "outbound": partner.outbound_token_encrypted,
        "roles": list(partner.roles.values_list("role", "country_code", "party_id")),
    }


# -- versions ------------------------------------------------------------------------------------
@pytest.mark.parametrize("base64_encoded", [True, False], ids=["base64", "plain"])
def test_versions_answer_token_a_in_either_form(pending, base64_encoded):
    # given
    _, token_a = pending

    # when
    response = call(
        "GET",
        "/ocpi/versions",
        token_a,
        base64_encoded=base64_encoded,
        HTTP_OCPI_FROM_COUNTRY_CODE="DE",
        HTTP_OCPI_FROM_PARTY_ID="EMS",
        HTTP_X_REQUEST_ID="req-1",
        HTTP_X_CORRELATION_ID="corr-1",
    )

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == [
        {"version": "2.2.1", "url": "http://testserver/ocpi/2.2.1"},
        {"version": "2.1.1", "url": "http://testserver/ocpi/2.1.1"},
    ]
    assert body["status_code"] == 1000
    assert body["timestamp"].endswith("Z")
    validate_response(body, "versions/interface", "/versions", "get", 200)
    assert response["X-Request-ID"] == "req-1"
    assert response["X-Correlation-ID"] == "corr-1"
    assert not any(h.lower().startswith("ocpi-") for h in response.headers)


@pytest.mark.parametrize("path", ["/ocpi/2.2.1", "/ocpi/2.2.1/"])
def test_version_details_list_our_endpoints_to_a_registered_partner(ocpi_client, path):
    # when
    response = ocpi_client.get(path)

    # then
    assert response.status_code == 200
    assert response.json()["data"] == OUR_DETAILS
    assert response.json()["status_code"] == 1000
    validate_response(response.json(), "versions/interface", "/versions/2.2.1", "get", 200)


def test_version_details_use_the_configured_base_url(ocpi_client, settings):
    # given
    settings.OCPI_BASE_URL = "https://cpo.example.com"

    # when
    data = ocpi_client.get("/ocpi/2.2.1").json()["data"]

    # then
    assert {e["url"] for e in data["endpoints"]} == {
        e["url"].replace("http://testserver", "https://cpo.example.com")
        for e in OUR_DETAILS["endpoints"]
    }


@pytest.mark.parametrize("header", [None, "Token bm9ib2R5", "Bearer abc", "Token"])
def test_versions_refuse_missing_or_unknown_tokens(db, header):
    # given
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}

    # when
    response = APIClient().get("/ocpi/versions", **extra)

    # then
    assert response.status_code == 401
    assert response.json()["status_code"] == 2000


def test_every_advertised_endpoint_is_served():
    # given / when
    unrouted = [e.path for e in ENDPOINTS if resolve(f"/ocpi/{e.path}").url_name is None]

    # then
    assert unrouted == []


# -- POST: the partner registers (§3.3) -----------------------------------------------------------
@pytest.mark.parametrize("base64_encoded", [True, False], ids=["base64", "plain"])
def test_post_registers_the_partner_and_answers_token_c(pending, emsp, base64_encoded):
    # given
    partner, token_a = pending
    token_b = "token-b-for-the-cpo"
    emsp.accepted_tokens.add(token_b)

    # when
    response = call(
        "POST",
        CREDENTIALS_URL,
        token_a,
        emsp.credentials_body(token_b),
        base64_encoded=base64_encoded,
        HTTP_X_CORRELATION_ID="corr-42",
    )

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["status_code"] == 1000
    token_c = body["data"]["token"]
    assert body["data"] == {
        "token": token_c,
        "url": "http://testserver/ocpi/versions",
        "roles": cpo_roles(),
    }
    assert token_c not in (token_a, token_b)
    validate_response(body, "credentials/interface", "/credentials", "post", 200)
    partner.refresh_from_db()
    assert partner.status == Partner.Status.REGISTERED
    assert partner.version == "2.2.1"
    assert partner.versions_url == emsp.versions_url
    assert partner.endpoint_url("cdrs", "RECEIVER") == emsp.endpoint("cdrs")
    assert partner.endpoint_url("tokens", "SENDER") == emsp.endpoint("tokens")
    assert partner.outbound_token == token_b
    assert partner.registered_at is not None
    assert list(partner.roles.values_list("role", "country_code", "party_id")) == [
        ("EMSP", "DE", "EMS")
    ]
    callbacks = emsp.received("GET")
    assert [r.path for r in callbacks] == ["/ocpi/versions", "/ocpi/2.2.1"]
    assert {header_token(r) for r in callbacks} == {token_b}
    assert {r.headers["X-Correlation-ID"] for r in callbacks} == {"corr-42"}
    assert call("GET", "/ocpi/versions", token_a).status_code == 401
    assert call("GET", "/ocpi/versions", token_c).status_code == 200


def test_post_when_already_registered_is_405_and_changes_nothing(registered, emsp):
    # given
    partner, token = registered
    before = snapshot(partner)

    # when
    response = call("POST", CREDENTIALS_URL, token, emsp.credentials_body("another-token"))

    # then
    assert response.status_code == 405
    assert response.json()["status_code"] == 2000
    assert snapshot(partner) == before
    assert emsp.received() == []


@pytest.mark.parametrize("method", ["PUT", "DELETE", "GET"])
def test_put_delete_and_get_before_registration_are_405(pending, emsp, method):
    # given
    partner, token_a = pending
    before = snapshot(partner)

    # when
    response = call(method, CREDENTIALS_URL, token_a, emsp.credentials_body("token-b"))

    # then
    assert response.status_code == 405
    assert response.json()["status_code"] == 2000
    assert snapshot(partner) == before
    assert call("GET", "/ocpi/versions", token_a).status_code == 200


def test_patch_is_not_a_credentials_method(registered, emsp):
    # given
    partner, token = registered

    # when
    response = call("PATCH", CREDENTIALS_URL, token, emsp.credentials_body("token-b"))

    # then
    assert response.status_code == 405
    assert response.json()["status_code"] == 2000


def _valid_body(emsp) -> dict:
    return emsp.credentials_body("token-b")


def _with(emsp, **changes) -> dict:
    body = _valid_body(emsp)
    body.update(changes)
    return body


def _with_role(emsp, **changes) -> dict:
    body = _valid_body(emsp)
    body["roles"][0].update(changes)
    return body


INVALID_BODIES = {
    "empty object": lambda e: {},
    "a list": lambda e: [_valid_body(e)],
    "no token": lambda e: {k: v for k, v in _valid_body(e).items() if k != "token"},
    "token with a space": lambda e: _with(e, token="two words"),
    "token with a newline": lambda e: _with(e, token="token\n"),
    "token of 65 chars": lambda e: _with(e, token="x" * 65),
    "non-ASCII token": lambda e: _with(e, token="tøken"),
    "null token": lambda e: _with(e, token=None),
    "url not a URL": lambda e: _with(e, url="versions"),
    "no roles": lambda e: _with(e, roles=[]),
    "roles not a list": lambda e: _with(e, roles="EMSP"),
    "unknown role": lambda e: _with_role(e, role="DRIVER"),
    "country_code of 3": lambda e: _with_role(e, country_code="DEU"),
    "party_id of 2": lambda e: _with_role(e, party_id="EM"),
    "no business name": lambda e: _with_role(e, business_details={}),
    "role listed twice": lambda e: _with(e, roles=_valid_body(e)["roles"] * 2),
}


@pytest.mark.parametrize("make_body", INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
def test_post_with_an_invalid_body_is_2001_and_changes_nothing(pending, emsp, make_body):
    # given
    partner, token_a = pending
    before = snapshot(partner)

    # when
    response = call("POST", CREDENTIALS_URL, token_a, make_body(emsp))

    # then
    assert response.status_code == 400
    assert response.json()["status_code"] == 2001
    assert snapshot(partner) == before
    assert emsp.received() == []
    assert call("GET", "/ocpi/versions", token_a).status_code == 200


def test_post_with_malformed_json_is_2001(pending):
    # given
    partner, token_a = pending

    # when
    response = call("POST", CREDENTIALS_URL, token_a, '{"token": "abc", ')

    # then
    assert response.status_code == 400
    assert response.json()["status_code"] == 2001
    assert snapshot(partner)["status"] == Partner.Status.PENDING


def test_post_accepts_null_optional_fields_and_ignores_unknown_ones(pending, emsp):
    # given
    partner, token_a = pending
    emsp.accepted_tokens.add("token-b")
    body = _with_role(emsp, business_details={"name": "Test eMSP", "website": None, "logo": None})
    body["hub_party"] = "ignored"

    # when
    response = call("POST", CREDENTIALS_URL, token_a, body)

    # then
    assert response.json()["status_code"] == 1000
    assert partner.roles.get().business_details == {"name": "Test eMSP"}


def test_post_when_the_partner_is_down_is_3001_and_token_a_stays_valid(pending, emsp):
    # given
    partner, token_a = pending
    before = snapshot(partner)
    body = emsp.credentials_body("token-b")
    emsp.stop()

    # when
    response = call("POST", CREDENTIALS_URL, token_a, body)

    # then
    assert response.status_code == 200
    assert response.json()["status_code"] == 3001
    assert snapshot(partner) == before
    assert call("GET", "/ocpi/versions", token_a).status_code == 200


def test_post_when_the_partner_refuses_token_b_is_3001(pending, emsp):
    # given: the eMSP does not know the token it sends us
    partner, token_a = pending
    before = snapshot(partner)

    # when
    response = call("POST", CREDENTIALS_URL, token_a, emsp.credentials_body("unknown-to-emsp"))

    # then
    assert response.json()["status_code"] == 3001
    assert snapshot(partner) == before


def test_post_without_the_version_posted_to_is_3002(pending, emsp):
    # given
    partner, token_a = pending
    before = snapshot(partner)
    emsp.accepted_tokens.add("token-b")
    emsp.versions_offered = ["2.1.1"]

    # when
    response = call("POST", CREDENTIALS_URL, token_a, emsp.credentials_body("token-b"))

    # then
    assert response.status_code == 200
    assert response.json()["status_code"] == 3002
    assert snapshot(partner) == before
    assert [r.path for r in emsp.received()] == ["/ocpi/versions"]


# -- GET, PUT, DELETE by a registered partner ------------------------------------------------------
def test_get_returns_the_token_the_caller_uses_and_our_roles(registered):
    # given
    _, token = registered

    # when
    response = call("GET", CREDENTIALS_URL, token, base64_encoded=False)

    # then
    assert response.status_code == 200
    validate_response(response.json(), "credentials/interface", "/credentials", "get", 200)
    assert response.json()["data"] == {
        "token": token,
        "url": "http://testserver/ocpi/versions",
        "roles": cpo_roles(),
    }


def test_put_rotates_tokens_and_refetches_endpoints(registered, emsp):
    # given
    partner, old_token = registered
    emsp.accepted_tokens.add("new-token-b")

    # when
    response = call(
        "PUT", CREDENTIALS_URL, old_token, emsp.credentials_body("new-token-b"),
        HTTP_X_CORRELATION_ID="corr-put",
    )  # fmt: skip

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["status_code"] == 1000
    validate_envelope(body, "Credentials")
    new_token = body["data"]["token"]
    assert new_token != old_token
    assert body["data"]["url"] == "http://testserver/ocpi/versions"
    partner.refresh_from_db()
    assert partner.outbound_token == "new-token-b"
    assert partner.status == Partner.Status.REGISTERED
    assert partner.endpoint_url("locations", "RECEIVER") == emsp.endpoint("locations")
    assert {header_token(r) for r in emsp.received()} == {"new-token-b"}
    assert {r.headers["X-Correlation-ID"] for r in emsp.received()} == {"corr-put"}
    assert call("GET", "/ocpi/versions", old_token).status_code == 401
    assert call("GET", "/ocpi/versions", new_token).status_code == 200


def test_put_when_the_partner_is_down_is_3001_and_keeps_the_old_token(registered, emsp):
    # given
    partner, token = registered
    before = snapshot(partner)
    body = emsp.credentials_body("new-token-b")
    emsp.stop()

    # when
    response = call("PUT", CREDENTIALS_URL, token, body)

    # then
    assert response.json()["status_code"] == 3001
    assert snapshot(partner) == before
    assert call("GET", "/ocpi/versions", token).status_code == 200


def test_put_with_an_invalid_body_is_2001(registered, emsp):
    # given
    partner, token = registered
    before = snapshot(partner)

    # when
    response = call("PUT", CREDENTIALS_URL, token, _with(emsp, roles=[]))

    # then
    assert response.status_code == 400
    assert response.json()["status_code"] == 2001
    assert snapshot(partner) == before
    assert emsp.received() == []


def test_delete_unregisters_and_the_token_stops_working(registered):
    # given
    partner, token = registered

    # when
    response = call("DELETE", CREDENTIALS_URL, token)

    # then
    assert response.status_code == 200
    assert "data" not in response.json()
    assert response.json()["status_code"] == 1000
    partner.refresh_from_db()
    assert partner.status == Partner.Status.UNREGISTERED
    assert partner.inbound_token_digest == partner.outbound_token_encrypted == ""
    assert call("GET", "/ocpi/versions", token).status_code == 401
    assert call("DELETE", CREDENTIALS_URL, token).status_code == 401


def test_a_suspended_partner_cannot_call_us(registered):
    # given
    partner, token = registered
    Partner.objects.filter(pk=partner.pk).update(status=Partner.Status.SUSPENDED)

    # when
    response = call("GET", CREDENTIALS_URL, token)

    # then
    assert response.status_code == 401


def test_our_token_b_in_flight_opens_only_versions_and_details(pending):
    # given: we are registering with this partner and gave it token B (ocpi.services)
    partner, _ = pending
    partner.set_next_inbound_token("our-token-b")
    partner.save()

    # when
    versions = call("GET", "/ocpi/versions", "our-token-b")
    details = call("GET", "/ocpi/2.2.1", "our-token-b")
    locations = call("GET", "/ocpi/cpo/2.2.1/locations", "our-token-b")
    post = call("POST", CREDENTIALS_URL, "our-token-b", {"token": "x"})

    # then
    assert (versions.status_code, details.status_code) == (200, 200)
    assert locations.status_code == 401
    assert post.status_code == 405


# -- parsing and the partner's API, unit level ---------------------------------------------
def test_the_211_flat_credentials_become_one_role():
    # given
    body = {
        "token": "abc",
        "url": "https://emsp.example.com/versions",
        "business_details": {"name": "Old eMSP"},
        "party_id": "OLD",
        "country_code": "NL",
    }

    # when
    parsed = parse_credentials(body, version="2.1.1")

    # then
    assert parsed == {
        "token": "abc",
        "url": "https://emsp.example.com/versions",
        "roles": [
            {
                "role": "EMSP",
                "business_details": {"name": "Old eMSP"},
                "party_id": "OLD",
                "country_code": "NL",
            }
        ],
    }
    with pytest.raises(ValidationError):
        parse_credentials(body, version="2.2.1")


VERSIONS = "https://emsp.example.com/ocpi/versions"
DETAILS = "https://emsp.example.com/ocpi/2.2.1"


def _envelope(data):
    return {"data": data, "status_code": 1000, "timestamp": "2026-01-01T00:00:00Z"}


@responses.activate
@pytest.mark.parametrize(
    "details",
    [{"version": "2.2.1", "endpoints": []}, {"version": "2.2.1"}, {"endpoints": [{"url": 1}]}],
    ids=["empty", "missing", "malformed"],
)
def test_details_without_usable_endpoints_are_3003(details):
    # given
    responses.get(VERSIONS, json=_envelope([{"version": "2.2.1", "url": DETAILS}]))
    responses.get(DETAILS, json=_envelope(details))

    # when / then
    with pytest.raises(NoMatchingEndpoints):
        partner_api_fetch(partner=Partner(name="x"), token="t", versions_url=VERSIONS)


@responses.activate
@pytest.mark.parametrize(
    "reply",
    [
        {"body": "<html>hello</html>", "status": 200},
        {"json": _envelope({"version": "2.2.1"}), "status": 200},
        {"json": _envelope([]), "status": 200},
        {"json": {"status_code": 2000, "timestamp": "2026-01-01T00:00:00Z"}, "status": 401},
    ],
    ids=["html", "not a list", "empty list", "refused"],
)
def test_unusable_versions_are_3001(reply):
    # given
    responses.get(VERSIONS, **reply)

    # when / then
    with pytest.raises(UnableToUseClientAPI):
        partner_api_fetch(partner=Partner(name="x"), token="t", versions_url=VERSIONS)


@responses.activate
def test_the_highest_mutual_version_is_chosen():
    # given
    responses.get(
        VERSIONS,
        json=_envelope(
            [
                {"version": "2.1.1", "url": "https://emsp.example.com/ocpi/2.1.1"},
                {"version": "2.2.1", "url": DETAILS},
                {"version": "2.3.0", "url": "https://emsp.example.com/ocpi/2.3.0"},
            ]
        ),
    )
    endpoint = {"identifier": "cdrs", "role": "RECEIVER", "url": DETAILS + "/cdrs"}
    responses.get(DETAILS, json=_envelope({"version": "2.2.1", "endpoints": [endpoint]}))

    # when
    api = partner_api_fetch(partner=Partner(name="x"), token="t", versions_url=VERSIONS)

    # then
    assert (api.version, api.endpoints) == ("2.2.1", [endpoint])
