"""OCPI 2.1.1 Tokens (PROTOCOL.md §8): the Receiver endpoint a 2.1.1 eMSP pushes its tokens to
(uid alone in the URL, auth_id, no 2004), the pull from a 2.1.1 tokens Sender, and real-time
authorization at a 2.1.1 eMSP, all over the same billing.tokens services as 2.2.1."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Token
from billing.tokens import token_authorize
from ocpi.models import Partner
from ocpi.token_sync import token_sync
from tests.emsp_server import EMSPServer
from tests.factories import EVSEFactory
from tests.ocpi.v211.helpers import body_of, client_211
from tests.ocpi.v211.rules import assert_envelope_211

pytestmark = pytest.mark.django_db

TOKENS = "/ocpi/cpo/2.1.1/tokens"


def token_211(uid: str = "012345678", **overrides) -> dict:
    body = {
        "uid": uid,
        "type": "RFID",
        "auth_id": "DE8ACC12E46L89",
        "visual_number": "DF000-2001-8999",
        "issuer": "TheNewMotion",
        "valid": True,
        "whitelist": "ALWAYS",
        "last_updated": "2015-06-29T22:39:09Z",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
def partner(make_partner):
    return make_partner("Old eMSP", version="2.1.1", country_code="NL", party_id="TNM")


@pytest.fixture
def client(partner):
    return client_211(partner[1])


def put(client, uid: str, body, path: str = "NL/TNM"):
    return client.put(f"{TOKENS}/{path}/{uid}", body, format="json")


def test_a_2_1_1_token_is_stored_in_the_one_data_model(partner, client):
    # when: the spec's own example PUT
    response = put(client, "012345678", token_211())

    # then
    assert response.status_code == 201
    body = body_of(response)
    assert body["status_code"] == 1000
    assert_envelope_211(body)
    token = Token.objects.get()
    assert (token.partner, token.country_code, token.party_id) == (partner[0], "NL", "TNM")
    assert (token.uid, token.type, token.contract_id) == ("012345678", "RFID", "DE8ACC12E46L89")
    assert (token.visual_number, token.issuer, token.whitelist) == (
        "DF000-2001-8999",
        "TheNewMotion",
        "ALWAYS",
    )
    assert (token.group_id, token.language, token.energy_contract) == ("", "", None)

    # when: the eMSP reads it back, by uid alone
    got = client.get(f"{TOKENS}/NL/TNM/012345678")

    # then: the 2.1.1 Token it sent
    assert got.status_code == 200
    body = body_of(got)
    assert_envelope_211(body, "Token")
    assert body["data"] == token_211()


def test_a_newer_put_replaces_an_older_one_is_ignored(client):
    # given
    put(client, "012345678", token_211())

    # when
    replaced = put(client, "012345678", token_211(valid=False, last_updated="2016-01-01T00:00:00Z"))
    stale = put(client, "012345678", token_211(valid=True, last_updated="2015-01-01T00:00:00Z"))

    # then
    assert (replaced.status_code, stale.status_code) == (200, 200)
    assert Token.objects.get().valid is False


def test_an_other_token_is_found_by_uid_without_a_type(client):
    # given
    put(client, "APP1", token_211("APP1", type="OTHER"))

    # when
    response = client.get(f"{TOKENS}/nl/tnm/app1")

    # then
    assert body_of(response)["data"]["type"] == "OTHER"


def test_a_patch_without_last_updated_is_applied(client):
    # given
    put(client, "012345678", token_211())
    before = timezone.now()

    # when: the spec's own example (no last_updated in 2.1.1)
    response = client.patch(f"{TOKENS}/NL/TNM/012345678", {"valid": False}, format="json")

    # then
    assert response.status_code == 200
    assert body_of(response)["status_code"] == 1000
    token = Token.objects.get()
    assert token.valid is False
    assert token.last_updated >= before - timedelta(seconds=1)


def test_unknown_tokens_are_404_with_2000_as_2_1_1_has_no_2004(client):
    # when
    got = client.get(f"{TOKENS}/NL/TNM/NOPE")
    patched = client.patch(f"{TOKENS}/NL/TNM/NOPE", {"valid": False}, format="json")

    # then
    for response in (got, patched):
        assert response.status_code == 404
        body = body_of(response)
        assert body["status_code"] == 2000
        assert_envelope_211(body)
    assert not Token.objects.exists()


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (token_211(auth_id=None, contract_id="X"), "2.2.1's contract_id instead of auth_id"),
        (token_211(type="APP_USER"), "a TokenType 2.1.1 lacks"),
        (token_211(uid="OTHER-UID"), "a uid other than the URL's"),
        (token_211(valid="yes"), "a valid that is not a boolean"),
        (token_211(last_updated="yesterday"), "a last_updated that is no DateTime"),
        (["not", "an", "object"], "no object"),
    ],
)
def test_an_invalid_token_is_2001_and_changes_nothing(client, body, why):
    # when
    response = put(client, "012345678", body)

    # then
    assert response.status_code == 400, why
    body = body_of(response)
    assert body["status_code"] == 2001
    assert_envelope_211(body)
    assert not Token.objects.exists()


def test_another_partys_token_is_404_and_changes_nothing(client):
    # when
    response = put(client, "012345678", token_211(), path="DE/XYZ")

    # then
    assert response.status_code == 404
    assert body_of(response)["status_code"] == 2000
    assert not Token.objects.exists()


def test_tokens_are_pulled_from_a_2_1_1_sender(transactional_db, make_partner):
    # given: a 2.1.1 eMSP serving its tokens in 2.1.1 shape, reading our token plain
    emsp = EMSPServer(version="2.1.1", country_code="NL", party_id="TNM")
    try:
        partner, _ = make_partner(
            "Old eMSP", version="2.1.1", country_code="NL", party_id="TNM",
            token_encoding=Partner.TokenEncoding.PLAIN,
            endpoints=[{"identifier": "tokens", "url": emsp.endpoint("tokens")}],
        )  # fmt: skip
        emsp.accepted_tokens.add(partner.outbound_token)
        emsp.tokens = [token_211("A1"), token_211("A2", type="OTHER", valid=False)]

        # when
        report = token_sync(partner_id=partner.pk)
    finally:
        emsp.stop()

    # then
    assert (report.received, report.created, report.rejected) == (2, 2, 0)
    stored = Token.objects.order_by("uid").values_list("uid", "type", "contract_id", "party_id")
    assert list(stored) == [
        ("A1", "RFID", "DE8ACC12E46L89", "TNM"),
        ("A2", "OTHER", "DE8ACC12E46L89", "TNM"),
    ]
    (request,) = emsp.received("GET", "/ocpi/emsp/2.1.1/tokens")
    assert request.headers["Authorization"] == f"Token {partner.outbound_token}"


def test_real_time_authorization_at_a_2_1_1_emsp(transactional_db, make_partner):
    # given: a cached token whose eMSP decides in real time
    emsp = EMSPServer(version="2.1.1", country_code="NL", party_id="TNM")
    try:
        partner, _ = make_partner(
            "Old eMSP", version="2.1.1", country_code="NL", party_id="TNM",
            token_encoding=Partner.TokenEncoding.PLAIN,
            endpoints=[{"identifier": "tokens", "url": emsp.endpoint("tokens")}],
        )  # fmt: skip
        emsp.accepted_tokens.add(partner.outbound_token)
        emsp.tokens = [token_211("A1", whitelist="NEVER")]
        Token.objects.create(
            partner=partner, country_code="NL", party_id="TNM", uid="A1", type="RFID",
            contract_id="DE8ACC12E46L89", issuer="TheNewMotion", whitelist="NEVER",
            last_updated=timezone.now(),
        )  # fmt: skip
        evse = EVSEFactory()

        # when
        decision = token_authorize(uid="A1", evse=evse)
    finally:
        emsp.stop()

    # then: the eMSP was asked (plain token) and said yes
    assert (decision.allowed, decision.auth_method) == ("ALLOWED", "AUTH_REQUEST")
    (request,) = emsp.received("POST", "/ocpi/emsp/2.1.1/tokens/A1/authorize")
    assert request.headers["Authorization"] == f"Token {partner.outbound_token}"
    assert request.body == {"location_id": evse.location.ocpi_id, "evse_uids": [evse.uid]}
