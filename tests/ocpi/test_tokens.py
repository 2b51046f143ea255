"""Tokens Receiver endpoint (PROTOCOL.md §4.5, §5.6, §10.9, §10.10): partners PUT, PATCH and GET
their drivers' tokens; a partner only ever reaches its own."""

import json
from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from billing.models import Token
from ocpi import jsonutil, tokens
from ocpi.modules.tokens.serializers import token_to_ocpi
from tests.contract import examples_dir, validate_envelope, validate_ocpi

pytestmark = pytest.mark.django_db

TOKENS = "/ocpi/cpo/2.2.1/tokens"


def example(name: str) -> dict:
    return json.loads((examples_dir() / name).read_text())


def rfid(**overrides) -> dict:
    """The spec's full RFID token example, owned by the default test partner (DE*EMS)."""
    body = example("token_example_2_full_rfid.json") | {"country_code": "DE", "party_id": "EMS"}
    return body | overrides


def client_for(token: str) -> APIClient:
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION="Token " + tokens.encode_for_header(token, base64_encoded=True)
    )
    return client


def put(client: APIClient, path: str, body, **extra):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.put(f"{TOKENS}/{path}", data=data, content_type="application/json", **extra)


def patch(client: APIClient, path: str, body):
    return client.patch(f"{TOKENS}/{path}", data=json.dumps(body), content_type="application/json")


def body_of(response) -> dict:
    assert response["Content-Type"] == "application/json"
    return jsonutil.loads(response.content)


def snapshot() -> list[dict]:
    return list(Token.objects.order_by("pk").values())


@pytest.fixture
def other_client(make_partner):
    """A second registered eMSP, FR*XYZ, with its own token."""
    _, token = make_partner("Partner Two", country_code="FR", party_id="XYZ")
    return client_for(token)


# -- PUT / GET -------------------------------------------------------------------------------------
def test_put_new_token_is_201_without_data_and_get_returns_it(ocpi_client, partner_and_token):
    # given
    partner, _ = partner_and_token
    body = rfid()
    # when
    response = put(ocpi_client, "DE/EMS/12345678905880", body)
    # then
    assert response.status_code == 201
    envelope = body_of(response)
    assert set(envelope) == {"status_code", "status_message", "timestamp"}
    assert envelope["status_code"] == 1000
    token = Token.objects.get()
    assert token.partner == partner
    assert (token.uid, token.type, token.whitelist, token.valid) == (
        "12345678905880",
        "RFID",
        "ALLOWED",
        True,
    )
    assert token.last_updated == datetime(2018, 12, 10, 17, 25, 10, tzinfo=UTC)
    # when
    response = ocpi_client.get(f"{TOKENS}/DE/EMS/12345678905880")
    # then
    assert response.status_code == 200
    envelope = body_of(response)
    validate_envelope(envelope, "Token")
    assert envelope["status_code"] == 1000
    assert envelope["data"] == body


def test_put_of_the_specs_put_example_under_the_partners_role(make_partner):
    # given: a partner whose role is the example's party, NL*TNM
    _, token = make_partner("TheNewMotion", country_code="NL", party_id="TNM")
    body = example("token_put_example.json")
    # when
    response = put(client_for(token), "NL/TNM/012345678", body)
    # then
    assert response.status_code == 201
    stored = Token.objects.get()
    assert stored.whitelist == "ALWAYS"
    rendered = token_to_ocpi(stored)
    validate_ocpi(rendered, "Token")
    assert jsonutil.loads(jsonutil.dumps(rendered)) == body


def test_put_of_an_existing_token_replaces_it_with_200_and_keeps_our_block(ocpi_client):
    # given: a stored token our staff blocked
    put(ocpi_client, "DE/EMS/12345678905880", rfid())
    Token.objects.update(blocked=True)
    replacement = {
        key: value
        for key, value in rfid(whitelist="NEVER", last_updated="2019-01-01T00:00:00Z").items()
        if key not in ("visual_number", "group_id", "language", "energy_contract")
    }
    # when
    response = put(ocpi_client, "DE/EMS/12345678905880", replacement)
    # then: optional fields left out are cleared (PUT replaces, §1.11)
    assert response.status_code == 200
    assert body_of(response)["status_code"] == 1000
    token = Token.objects.get()
    assert token.whitelist == "NEVER"
    assert (token.visual_number, token.group_id, token.language) == ("", "", "")
    assert token.energy_contract is None
    assert token.default_profile_type == "GREEN"
    assert token.blocked is True


def test_put_older_than_the_stored_token_changes_nothing(ocpi_client):
    # given: the newer state arrived first
    put(ocpi_client, "DE/EMS/12345678905880", rfid(last_updated="2020-01-01T00:00:00Z"))
    before = Token.objects.get()
    # when: a late delivery of an older state
    response = put(
        ocpi_client,
        "DE/EMS/12345678905880",
        rfid(valid=False, last_updated="2019-01-01T00:00:00Z"),
    )
    # then
    assert response.status_code == 200
    after = Token.objects.get()
    assert after.valid is True
    assert after.last_updated == before.last_updated


def test_null_optional_fields_and_unknown_fields_are_accepted(ocpi_client):
    # given
    body = rfid(visual_number=None, group_id=None, energy_contract=None, future_field={"x": 1})
    # when
    response = put(ocpi_client, "DE/EMS/12345678905880", body)
    # then
    assert response.status_code == 201
    token = Token.objects.get()
    assert (token.visual_number, token.group_id, token.energy_contract) == ("", "", None)


def test_trailing_slash_is_accepted(ocpi_client):
    # when
    response = put(ocpi_client, "DE/EMS/12345678905880/", rfid())
    # then
    assert response.status_code == 201
    assert ocpi_client.get(f"{TOKENS}/DE/EMS/12345678905880/").status_code == 200


# -- identity: case-insensitive ids, type ----------------------------------------------------------
def test_uid_country_and_party_are_case_insensitive(ocpi_client):
    # given
    put(ocpi_client, "DE/EMS/AbCdEf01", rfid(uid="AbCdEf01"))
    # when
    get = ocpi_client.get(f"{TOKENS}/de/ems/ABCDEF01")
    replace = put(
        ocpi_client,
        "de/Ems/abcdef01",
        rfid(country_code="de", party_id="Ems", uid="abcdef01", whitelist="NEVER"),
    )
    # then
    assert get.status_code == 200
    assert body_of(get)["data"]["uid"] == "AbCdEf01"
    assert replace.status_code == 200
    assert Token.objects.count() == 1
    assert Token.objects.get().whitelist == "NEVER"


def test_type_query_parameter_selects_the_token_and_defaults_to_rfid(ocpi_client):
    # given: the same uid as an RFID card and as an app user
    put(ocpi_client, "DE/EMS/U1", rfid(uid="U1"))
    response = put(ocpi_client, "DE/EMS/U1?type=APP_USER", rfid(uid="U1", type="APP_USER"))
    assert response.status_code == 201
    # when
    default = ocpi_client.get(f"{TOKENS}/DE/EMS/U1")
    app = ocpi_client.get(f"{TOKENS}/DE/EMS/U1?type=APP_USER")
    other = ocpi_client.get(f"{TOKENS}/DE/EMS/U1?type=AD_HOC_USER")
    # then
    assert body_of(default)["data"]["type"] == "RFID"
    assert body_of(app)["data"]["type"] == "APP_USER"
    assert other.status_code == 404
    assert Token.objects.count() == 2


@pytest.mark.parametrize("query", ["type=rfid", "type=CARD"])
def test_an_unknown_type_parameter_is_2001(ocpi_client, query):
    # when
    get = ocpi_client.get(f"{TOKENS}/DE/EMS/U1?{query}")
    created = put(ocpi_client, f"DE/EMS/U1?{query}", rfid(uid="U1"))
    # then
    for response in (get, created):
        assert response.status_code == 400
        assert body_of(response)["status_code"] == 2001
    assert not Token.objects.exists()


@pytest.mark.parametrize(
    ("path", "overrides"),
    [
        ("DE/EMS/OTHER-UID", {}),
        ("DE/EMS/12345678905880", {"country_code": "NL"}),
        ("DE/EMS/12345678905880", {"party_id": "EMX"}),
        ("DE/EMS/12345678905880", {"type": "APP_USER"}),  # the URL says RFID (no type)
        ("DE/EMS/12345678905880?type=APP_USER", {}),
    ],
)
def test_put_with_url_and_body_ids_differing_is_2001_and_changes_nothing(
    ocpi_client, path, overrides
):
    # when
    response = put(ocpi_client, path, rfid(**overrides))
    # then
    assert response.status_code == 400
    assert body_of(response)["status_code"] == 2001
    assert not Token.objects.exists()


# -- invalid bodies --------------------------------------------------------------------------------
def _without(field: str) -> dict:
    body = rfid()
    del body[field]
    return body


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_without("contract_id"), id="no-contract_id"),
        pytest.param(_without("issuer"), id="no-issuer"),
        pytest.param(_without("valid"), id="no-valid"),
        pytest.param(_without("whitelist"), id="no-whitelist"),
        pytest.param(_without("last_updated"), id="no-last_updated"),
        pytest.param(_without("type"), id="no-type"),
        pytest.param(rfid(contract_id="C" * 37), id="contract_id-too-long"),
        pytest.param(rfid(issuer="I" * 65), id="issuer-too-long"),
        pytest.param(rfid(visual_number="V" * 65), id="visual_number-too-long"),
        pytest.param(rfid(group_id="G" * 37), id="group_id-too-long"),
        pytest.param(rfid(whitelist="SOMETIMES"), id="whitelist-enum"),
        pytest.param(rfid(default_profile_type="SLOW"), id="profile-enum"),
        pytest.param(rfid(valid="true"), id="valid-as-string"),
        pytest.param(rfid(contract_id=12345), id="contract_id-as-number"),
        pytest.param(rfid(contract_id="DE8ÄCC"), id="contract_id-not-ascii"),
        pytest.param(rfid(last_updated="yesterday"), id="last_updated-garbage"),
        pytest.param(rfid(energy_contract={"contract_id": "1"}), id="energy_contract-no-supplier"),
        pytest.param([rfid()], id="a-list"),
        pytest.param('{"uid": ', id="malformed-json"),
    ],
)
def test_put_with_an_invalid_body_is_2001_and_changes_nothing(ocpi_client, body):
    # given: a stored token the bad PUT aims at
    put(ocpi_client, "DE/EMS/12345678905880", rfid())
    before = snapshot()
    # when
    response = put(ocpi_client, "DE/EMS/12345678905880", body)
    # then
    assert response.status_code == 400
    envelope = body_of(response)
    assert envelope["status_code"] == 2001
    assert envelope["status_message"]
    assert snapshot() == before


@pytest.mark.parametrize("uid", ["U" * 37, "kaart één"])
def test_put_with_an_invalid_uid_is_2001(ocpi_client, uid):
    # when
    response = put(ocpi_client, f"DE/EMS/{uid}", rfid(uid=uid))
    # then
    assert response.status_code == 400
    assert body_of(response)["status_code"] == 2001
    assert not Token.objects.exists()


# -- PATCH -----------------------------------------------------------------------------------------
def test_patch_of_the_specs_example_invalidates_the_token(ocpi_client):
    # given
    put(ocpi_client, "DE/EMS/12345678905880", rfid())
    # when
    response = patch(ocpi_client, "DE/EMS/12345678905880", example("token_patch_example.json"))
    # then
    assert response.status_code == 200
    envelope = body_of(response)
    assert envelope["status_code"] == 1000
    assert "data" not in envelope
    token = Token.objects.get()
    assert token.valid is False
    assert token.last_updated == datetime(2019, 6, 19, 2, 11, 11, tzinfo=UTC)
    assert token.whitelist == "ALLOWED"  # untouched
    assert token.energy_contract == rfid()["energy_contract"]


def test_patch_replaces_a_nested_object_and_ignores_nulls(ocpi_client):
    # given
    put(ocpi_client, "DE/EMS/12345678905880", rfid())
    # when
    response = patch(
        ocpi_client,
        "de/ems/12345678905880",
        {
            "energy_contract": {"supplier_name": "Vattenfall"},
            "visual_number": None,
            "uid": "12345678905880",
            "last_updated": "2020-01-01T00:00:00Z",
        },
    )
    # then
    assert response.status_code == 200
    token = Token.objects.get()
    assert token.energy_contract == {"supplier_name": "Vattenfall"}
    assert token.visual_number == "DF000-2001-8999-1"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"valid": False}, id="no-last_updated"),
        pytest.param({"valid": False, "last_updated": None}, id="null-last_updated"),
        pytest.param({"valid": "no", "last_updated": "2020-01-01T00:00:00Z"}, id="bad-valid"),
        pytest.param(
            {"uid": "ANOTHER", "valid": False, "last_updated": "2020-01-01T00:00:00Z"},
            id="other-uid",
        ),
        pytest.param(
            {"type": "APP_USER", "valid": False, "last_updated": "2020-01-01T00:00:00Z"},
            id="other-type",
        ),
    ],
)
def test_invalid_patch_is_2001_and_changes_nothing(ocpi_client, body):
    # given
    put(ocpi_client, "DE/EMS/12345678905880", rfid())
    before = snapshot()
    # when
    response = patch(ocpi_client, "DE/EMS/12345678905880", body)
    # then
    assert response.status_code == 400
    assert body_of(response)["status_code"] == 2001
    assert snapshot() == before


def test_patch_of_an_unknown_token_is_404(ocpi_client):
    # when
    response = patch(
        ocpi_client, "DE/EMS/NOPE", {"valid": False, "last_updated": "2020-01-01T00:00:00Z"}
    )
    # then
    assert response.status_code == 404
    assert body_of(response)["status_code"] == 2004
    assert not Token.objects.exists()


def test_get_of_an_unknown_token_is_404(ocpi_client):
    # when
    response = ocpi_client.get(f"{TOKENS}/DE/EMS/NOPE")
    # then
    assert response.status_code == 404
    envelope = body_of(response)
    assert envelope["status_code"] == 2004
    assert "data" not in envelope


# -- other partners --------------------------------------------------------------------------------
def test_a_partner_cannot_write_under_another_partners_role(ocpi_client, other_client):
    # given: partner two's token
    put(other_client, "FR/XYZ/CARD1", rfid(country_code="FR", party_id="XYZ", uid="CARD1"))
    before = snapshot()
    # when: partner one (DE*EMS) replaces it, creates one beside it, and patches it
    replaced = put(
        ocpi_client,
        "FR/XYZ/CARD1",
        rfid(country_code="FR", party_id="XYZ", uid="CARD1", valid=False),
    )
    created = put(ocpi_client, "FR/XYZ/CARD2", rfid(country_code="FR", party_id="XYZ", uid="CARD2"))
    patched = patch(
        ocpi_client, "fr/xyz/card1", {"valid": False, "last_updated": "2030-01-01T00:00:00Z"}
    )
    # then: 404 (not one of its parties), whether the token exists or not; nothing changed
    for response in (replaced, created, patched):
        assert response.status_code == 404
        assert body_of(response)["status_code"] == 2000
    assert snapshot() == before


def test_a_partner_cannot_read_another_partners_token(ocpi_client, other_client):
    # given
    put(other_client, "FR/XYZ/CARD1", rfid(country_code="FR", party_id="XYZ", uid="CARD1"))
    # when
    response = ocpi_client.get(f"{TOKENS}/FR/XYZ/CARD1")
    missing = ocpi_client.get(f"{TOKENS}/FR/XYZ/CARD9")
    # then: the same answer as for a token that does not exist
    assert response.status_code == missing.status_code == 404
    assert body_of(response)["status_code"] == body_of(missing)["status_code"] == 2000
    assert "data" not in body_of(response)
    # and the owner still reads it
    assert other_client.get(f"{TOKENS}/FR/XYZ/CARD1").status_code == 200


def test_a_partner_cannot_put_another_partners_token_under_its_own_url(ocpi_client):
    # when: URL under its own role, body naming another party
    response = put(
        ocpi_client, "DE/EMS/CARD1", rfid(country_code="FR", party_id="XYZ", uid="CARD1")
    )
    # then
    assert response.status_code == 400
    assert body_of(response)["status_code"] == 2001
    assert not Token.objects.exists()


# -- transport -------------------------------------------------------------------------------------
def test_without_credentials_the_answer_is_401(db):
    # when
    response = APIClient().get(f"{TOKENS}/DE/EMS/12345678905880")
    # then
    assert response.status_code == 401


def test_delete_is_not_allowed(ocpi_client):
    # given
    put(ocpi_client, "DE/EMS/12345678905880", rfid())
    # when
    response = ocpi_client.delete(f"{TOKENS}/DE/EMS/12345678905880")
    # then
    assert response.status_code == 405
    assert body_of(response)["status_code"] == 2000
    assert Token.objects.count() == 1


@pytest.mark.parametrize("method", ["get", "put", "post"])
def test_the_receivers_base_url_serves_no_method(ocpi_client, method):
    # when
    response = getattr(ocpi_client, method)(TOKENS)
    # then
    assert response.status_code == 405
    assert body_of(response)["status_code"] == 2000


def test_version_details_advertise_the_tokens_receiver(ocpi_client):
    # when
    endpoints = body_of(ocpi_client.get("/ocpi/2.2.1"))["data"]["endpoints"]
    # then
    assert {
        "identifier": "tokens",
        "role": "RECEIVER",
        "url": "http://testserver/ocpi/cpo/2.2.1/tokens",
    } in endpoints
