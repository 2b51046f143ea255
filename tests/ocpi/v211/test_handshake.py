"""The credentials handshake with a 2.1.1 eMSP and a 2.2.1 eMSP against the same CPO at the same
time, both directions, and a 2.1.1 partner upgrading to 2.2.1 (PROTOCOL.md §3, §8), over real
HTTP: our server as pytest-django's threaded live_server, the eMSPs as EMSPServer on 127.0.0.1.
The 2.1.1 eMSP reads tokens plain only, so any Base64 token we sent it would fail its call."""

import base64
import json
import threading

import pytest
import requests
from django.db import transaction

from ocpi import tasks
from ocpi.delivery import outbox_deliver
from ocpi.models import OutboxMessage, Partner
from ocpi.services import credentials_rotate, partner_create, register_with_partner
from stations.models import Location
from tests.contract import validate_ocpi
from tests.emsp_server import EMSPServer
from tests.factories import LocationFactory
from tests.ocpi.v211.rules import assert_211, assert_envelope_211


@pytest.fixture
def cpo(live_server, settings):
    settings.OCPI_BASE_URL = live_server.url
    return live_server.url


@pytest.fixture
def old_emsp():
    server = EMSPServer(version="2.1.1", country_code="DE", party_id="OLD", name="Old eMSP")
    yield server
    server.stop()


@pytest.fixture
def new_emsp():
    server = EMSPServer(version="2.2.1", country_code="BE", party_id="NEW", name="New eMSP")
    yield server
    server.stop()


@pytest.fixture
def queued(monkeypatch):
    """Delivery tasks are collected, not sent to a broker: the tests deliver themselves."""
    calls = []
    monkeypatch.setattr(tasks.deliver_outbox_task, "delay", calls.append)
    return calls


def get(emsp: EMSPServer, url: str) -> requests.Response:
    return requests.get(url, headers=emsp.cpo_headers(emsp.token_for_cpo), timeout=10)


def authorization(recorded) -> str:
    return recorded.headers["Authorization"].removeprefix("Token ")


def test_a_2_1_1_and_a_2_2_1_emsp_register_at_the_same_time(cpo, old_emsp, new_emsp):
    # given: staff created both partners and sent each its token A and our versions URL
    old_partner, old_token_a = partner_create(name="Old eMSP")
    new_partner, new_token_a = partner_create(name="New eMSP")
    responses = {}

    # when: both run their side of the handshake at once
    threads = [
        threading.Thread(
            target=lambda e=emsp, t=token: responses.__setitem__(
                e.version, e.register_with(f"{cpo}/ocpi/versions", t)
            )
        )
        for emsp, token in ((old_emsp, old_token_a), (new_emsp, new_token_a))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then: each registered in its own version
    old_partner.refresh_from_db()
    new_partner.refresh_from_db()
    assert (old_partner.status, old_partner.version) == (Partner.Status.REGISTERED, "2.1.1")
    assert (new_partner.status, new_partner.version) == (Partner.Status.REGISTERED, "2.2.1")
    assert old_partner.token_encoding == Partner.TokenEncoding.PLAIN
    assert new_partner.token_encoding == Partner.TokenEncoding.BASE64
    # the 2.1.1 eMSP got the flat credentials, with its token C
    old_body = responses["2.1.1"].json()
    assert_envelope_211(old_body, "Credentials")
    assert old_body["data"] == {
        "token": old_emsp.token_for_cpo,
        "url": f"{cpo}/ocpi/versions",
        "business_details": {"name": "Open CPO Platform"},
        "party_id": "CPO",
        "country_code": "NL",
    }
    assert "roles" in responses["2.2.1"].json()["data"]
    # we called each back in its version: the 2.1.1 one with its plain token B
    assert [r.path for r in old_emsp.received("GET")] == ["/ocpi/versions", "/ocpi/2.1.1"]
    token_b = set(old_emsp.accepted_tokens) - {old_emsp.token_a}
    assert {authorization(r) for r in old_emsp.received("GET")} == token_b
    assert [r.path for r in new_emsp.received("GET")] == ["/ocpi/versions", "/ocpi/2.2.1"]
    assert old_partner.endpoint_url("locations") == old_emsp.endpoint("locations")
    assert list(old_partner.roles.values_list("role", "country_code", "party_id")) == [
        ("EMSP", "DE", "OLD")
    ]

    # when: both page our locations with their token C
    LocationFactory(ocpi_id="LOC1")
    old_page = get(old_emsp, old_emsp.cpo_endpoint("locations"))
    new_page = get(new_emsp, new_emsp.cpo_endpoint("locations"))

    # then: the same location, each in its version
    assert old_emsp.cpo_endpoint("locations") == f"{cpo}/ocpi/cpo/2.1.1/locations"
    assert_envelope_211(old_page.json(), "Location", many=True)
    assert [loc["id"] for loc in old_page.json()["data"]] == ["LOC1"]
    assert new_page.json()["data"][0]["country_code"] == "NL"
    assert "country_code" not in old_page.json()["data"][0]


def test_we_register_with_a_2_1_1_emsp(cpo, old_emsp):
    # when: the eMSP gave us its versions URL and a token A
    partner = register_with_partner(
        name="Old eMSP", versions_url=old_emsp.versions_url, token=old_emsp.token_a
    )

    # then: 2.1.1, the only mutual version; our token goes plain from now on
    partner.refresh_from_db()
    assert (partner.status, partner.version) == (Partner.Status.REGISTERED, "2.1.1")
    assert partner.token_encoding == Partner.TokenEncoding.PLAIN
    assert list(partner.roles.values_list("role", "country_code", "party_id")) == [
        ("EMSP", "DE", "OLD")
    ]
    # a 2.2.1 Base64 token A was refused (401) and the plain one accepted
    versions = old_emsp.received("GET", "/ocpi/versions")
    encoded = base64.b64encode(old_emsp.token_a.encode()).decode()
    assert [authorization(r) for r in versions] == [encoded, old_emsp.token_a]
    # our POST: the flat 2.1.1 credentials with token B, to its 2.1.1 credentials endpoint
    (post,) = old_emsp.received("POST", "/ocpi/2.1.1/credentials")
    assert authorization(post) == old_emsp.token_a
    token_b = post.json["token"]
    assert post.json == {
        "token": token_b,
        "url": f"{cpo}/ocpi/versions",
        "business_details": {"name": "Open CPO Platform"},
        "party_id": "CPO",
        "country_code": "NL",
    }
    assert_211(post.json, "Credentials")
    # it called our 2.1.1 details back with token B, and we call it with its token C
    assert old_emsp.token_for_cpo == token_b
    assert [e["identifier"] for e in old_emsp.cpo_endpoints][0] == "credentials"
    assert all("role" not in e for e in old_emsp.cpo_endpoints)
    assert partner.outbound_token in old_emsp.accepted_tokens


def test_we_choose_the_highest_mutual_version(cpo, new_emsp):
    # given: an eMSP offering both versions
    new_emsp.versions_offered = ["2.1.1", "2.2.1"]

    # when
    partner = register_with_partner(
        name="New eMSP", versions_url=new_emsp.versions_url, token=new_emsp.token_a
    )

    # then
    partner.refresh_from_db()
    assert partner.version == "2.2.1"
    assert [r.path for r in new_emsp.received("POST")] == ["/ocpi/2.2.1/credentials"]


def test_rotating_and_unregistering_with_a_2_1_1_partner(cpo, old_emsp):
    # given
    partner = register_with_partner(
        name="Old eMSP", versions_url=old_emsp.versions_url, token=old_emsp.token_a
    )
    token_b = old_emsp.token_for_cpo

    # when: we rotate (PUT to its 2.1.1 credentials endpoint, flat)
    credentials_rotate(partner=partner)

    # then
    (put,) = old_emsp.received("PUT", "/ocpi/2.1.1/credentials")
    assert_211(put.json, "Credentials")
    assert old_emsp.token_for_cpo != token_b
    partner.refresh_from_db()
    assert partner.outbound_token in old_emsp.accepted_tokens

    # when: the eMSP unregisters
    response = requests.delete(
        old_emsp.cpo_endpoint("credentials"),
        headers=old_emsp.cpo_headers(old_emsp.token_for_cpo),
        timeout=10,
    )

    # then
    assert response.json()["status_code"] == 1000
    assert_envelope_211(response.json())
    partner.refresh_from_db()
    assert partner.status == Partner.Status.UNREGISTERED


def test_a_2_1_1_partner_upgrades_to_2_2_1_by_a_new_credentials_exchange(cpo, old_emsp, queued):
    # given: a 2.1.1 partner, registered by itself, getting 2.1.1 pushes
    partner, token_a = partner_create(name="Old eMSP")
    old_emsp.register_with(f"{cpo}/ocpi/versions", token_a)
    with transaction.atomic():
        LocationFactory(ocpi_id="LOC1")
    assert outbox_deliver(partner_id=partner.pk).sent == 1
    (before,) = old_emsp.received("PUT", "/ocpi/emsp/2.1.1/locations/NL/CPO/LOC1")
    assert_211(before.json, "Location")
    token_c = old_emsp.token_for_cpo
    # and a change not yet delivered when it upgrades (rendered in 2.1.1)
    with transaction.atomic():
        location = Location.objects.get(ocpi_id="LOC1")
        location.name = "Renamed"
        location.save()
    (waiting,) = OutboxMessage.objects.filter(state="PENDING")
    assert_211(json.loads(waiting.body), "Location")

    # when: it moves to 2.2.1: a credentials PUT to our 2.2.1 endpoint
    response = old_emsp.upgrade_to("2.2.1")

    # then: the partner is on 2.2.1, with its 2.2.1 endpoints, roles and Base64 tokens
    body = response.json()
    assert body["status_code"] == 1000
    assert body["data"]["roles"][0]["party_id"] == "CPO"
    partner.refresh_from_db()
    assert (partner.status, partner.version) == (Partner.Status.REGISTERED, "2.2.1")
    assert partner.token_encoding == Partner.TokenEncoding.BASE64
    assert partner.endpoint_url("locations", "RECEIVER") == old_emsp.endpoint("locations", "2.2.1")
    assert [r.path for r in old_emsp.received("GET")][-2:] == ["/ocpi/versions", "/ocpi/2.2.1"]
    # the old token is spent, the new one works
    assert get(old_emsp, f"{cpo}/ocpi/cpo/2.2.1/locations").status_code == 200
    stale = requests.get(
        f"{cpo}/ocpi/cpo/2.2.1/locations", headers={"Authorization": f"Token {token_c}"}
    )
    assert stale.status_code == 401

    # then: the waiting push was rendered again in 2.2.1, and goes to the 2.2.1 endpoint
    assert outbox_deliver(partner_id=partner.pk).sent == 1
    (resent,) = old_emsp.received("PUT", "/ocpi/emsp/2.2.1/locations/NL/CPO/LOC1")
    validate_ocpi(resent.json, "Location")
    assert resent.json["name"] == "Renamed"

    # when: the location changes again
    with transaction.atomic():
        location.name = "Renamed again"
        location.save()
    assert outbox_deliver(partner_id=partner.pk).sent == 1

    # then: the push is a 2.2.1 PATCH, at its 2.2.1 endpoint, with a Base64 token
    (after,) = old_emsp.received("PATCH", "/ocpi/emsp/2.2.1/locations/NL/CPO/LOC1")
    assert after.json["name"] == "Renamed again"
    assert set(after.json) == {"name", "last_updated"}
    encoded = base64.b64encode(partner.outbound_token.encode()).decode()
    assert authorization(after) == encoded
    assert OutboxMessage.objects.filter(state="FAILED").count() == 0
