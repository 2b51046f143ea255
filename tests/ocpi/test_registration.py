"""The credentials handshake both ways, over real HTTP (PROTOCOL.md §3.3, §3.4, §3.6, §3.7).

Each side calls the other back while a request is in flight, so our server runs as
pytest-django's threaded `live_server` (committed data) and the eMSP as EMSPServer.
"""

import base64

import pytest
import requests

from ocpi import tokens
from ocpi.exceptions import UnableToUseClientAPI, UnsupportedVersion
from ocpi.models import Partner, cpo_roles
from ocpi.services import (
    credentials_rotate,
    partner_create,
    register_with_partner,
)


@pytest.fixture
def cpo(live_server, settings):
    """Our server, reachable over HTTP and advertising its real address."""
    settings.OCPI_BASE_URL = live_server.url
    return live_server.url


def get(url: str, token: str) -> requests.Response:
    encoded = base64.b64encode(token.encode()).decode()
    return requests.get(url, headers={"Authorization": f"Token {encoded}"}, timeout=10)


def header_token(recorded) -> str:
    return base64.b64decode(recorded.headers["Authorization"].removeprefix("Token ")).decode()


def test_partner_initiated_registration_end_to_end(cpo, emsp):
    # given: staff created the partner and sent token A and our versions URL offline
    partner, token_a = partner_create(name="Test eMSP")

    # when: the eMSP runs its side of the handshake
    response = emsp.register_with(f"{cpo}/ocpi/versions", token_a)

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["status_code"] == 1000
    assert body["data"]["url"] == f"{cpo}/ocpi/versions"
    assert body["data"]["roles"] == cpo_roles()
    token_c = emsp.token_for_cpo
    partner.refresh_from_db()
    assert partner.status == Partner.Status.REGISTERED
    assert partner.version == "2.2.1"
    assert partner.endpoint_url("locations", "RECEIVER") == emsp.endpoint("locations")
    assert partner.outbound_token in emsp.accepted_tokens
    callbacks = emsp.received("GET")
    assert [r.path for r in callbacks] == ["/ocpi/versions", "/ocpi/2.2.1"]
    assert {r.headers["X-Correlation-ID"] for r in callbacks} == {
        response.headers["X-Correlation-ID"]
    }
    # the partner pages our locations with token C; token A is spent
    locations = get(emsp.cpo_endpoint("locations"), token_c)
    assert locations.status_code == 200
    assert locations.json()["status_code"] == 1000
    assert get(f"{cpo}/ocpi/versions", token_a).status_code == 401
    assert get(f"{cpo}/ocpi/versions", token_c).status_code == 200


def test_cpo_initiated_registration_end_to_end(cpo, emsp):
    # given: the eMSP gave us its versions URL and a token A
    token_a = emsp.token_a

    # when
    partner = register_with_partner(name="Test eMSP", versions_url=emsp.versions_url, token=token_a)

    # then
    partner.refresh_from_db()
    assert partner.status == Partner.Status.REGISTERED
    assert partner.version == "2.2.1"
    assert partner.next_inbound_token_digest == ""
    assert list(partner.roles.values_list("role", "country_code", "party_id")) == [
        ("EMSP", "DE", "EMS")
    ]
    post = emsp.received("POST", "/ocpi/2.2.1/credentials")
    assert len(post) == 1
    assert header_token(post[0]) == token_a
    token_b = post[0].json["token"]
    assert post[0].json == {"token": token_b, "url": f"{cpo}/ocpi/versions", "roles": cpo_roles()}
    # the eMSP called our versions back with token B during our POST, and keeps using it
    assert emsp.cpo_endpoints[0]["url"] == f"{cpo}/ocpi/2.2.1/credentials"
    assert emsp.token_for_cpo == token_b
    assert get(f"{cpo}/ocpi/cpo/2.2.1/locations", token_b).status_code == 200
    # we call the eMSP with the token C it returned; its token A is spent
    assert partner.outbound_token in emsp.accepted_tokens
    assert token_a not in emsp.accepted_tokens


def test_rotation_both_ways(cpo, emsp):
    # given
    partner = register_with_partner(
        name="Test eMSP", versions_url=emsp.versions_url, token=emsp.token_a
    )
    token_b = emsp.token_for_cpo
    our_old_outbound = partner.outbound_token

    # when: we rotate
    credentials_rotate(partner=partner)

    # then
    partner.refresh_from_db()
    our_new_token = emsp.token_for_cpo
    assert our_new_token != token_b
    assert partner.outbound_token != our_old_outbound
    assert partner.outbound_token in emsp.accepted_tokens
    assert our_old_outbound not in emsp.accepted_tokens
    assert get(f"{cpo}/ocpi/versions", token_b).status_code == 401
    assert get(f"{cpo}/ocpi/versions", our_new_token).status_code == 200

    # when: the eMSP rotates (PUT to our credentials endpoint)
    response = emsp.update_credentials_with()

    # then
    assert response.json()["status_code"] == 1000
    partner.refresh_from_db()
    assert partner.outbound_token in emsp.accepted_tokens
    assert get(f"{cpo}/ocpi/versions", our_new_token).status_code == 401
    assert get(f"{cpo}/ocpi/versions", emsp.token_for_cpo).status_code == 200


def test_partner_unregisters_over_http(cpo, emsp):
    # given
    partner_create(name="Test eMSP")
    _, token_a = partner_create(name="Other eMSP")
    emsp.register_with(f"{cpo}/ocpi/versions", token_a)
    token_c = emsp.token_for_cpo

    # when
    response = emsp.unregister_from()

    # then
    assert response.status_code == 200
    assert response.json()["status_code"] == 1000
    assert Partner.objects.get(name="Other eMSP").status == Partner.Status.UNREGISTERED
    assert get(f"{cpo}/ocpi/versions", token_c).status_code == 401


# -- our side failing: nothing changes ----------------------------------------------------------
def test_our_rotation_failing_keeps_the_current_tokens(transactional_db, make_partner, emsp):
    # given
    credentials_url = f"{emsp.base_url}/ocpi/2.2.1/credentials"
    partner, token = make_partner(
        endpoints=[{"identifier": "credentials", "role": "RECEIVER", "url": credentials_url}]
    )
    outbound = partner.outbound_token
    emsp.stop()

    # when
    with pytest.raises(UnableToUseClientAPI):
        credentials_rotate(partner=partner)

    # then
    partner.refresh_from_db()
    assert partner.outbound_token == outbound
    assert partner.next_inbound_token_digest == ""
    assert tokens.digests_match(partner.inbound_token_digest, token)


def test_registering_without_a_mutual_version_creates_nothing(transactional_db, emsp):
    # given
    emsp.versions_offered = ["2.0"]

    # when
    with pytest.raises(UnsupportedVersion):
        register_with_partner(name="Test eMSP", versions_url=emsp.versions_url, token=emsp.token_a)

    # then
    assert not Partner.objects.exists()
    assert emsp.received("POST") == []


def test_registering_when_the_partner_cannot_call_us_back_creates_nothing(
    transactional_db, emsp, settings
):
    # given: our advertised address does not answer, so the eMSP answers our POST with 3001
    settings.OCPI_BASE_URL = "http://127.0.0.1:9"

    # when
    with pytest.raises(UnableToUseClientAPI):
        register_with_partner(name="Test eMSP", versions_url=emsp.versions_url, token=emsp.token_a)

    # then
    assert not Partner.objects.exists()
    assert emsp.token_a in emsp.accepted_tokens


def test_registering_from_inside_a_transaction_is_refused(db, emsp):
    # given: the test transaction (the partner could never see token B)

    # when / then
    with pytest.raises(RuntimeError, match="outside a database transaction"):
        register_with_partner(name="Test eMSP", versions_url=emsp.versions_url, token=emsp.token_a)
    assert emsp.received() == []
