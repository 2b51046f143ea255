"""A 2.1.1 eMSP and a 2.2.1 eMSP on one running platform, end to end (issue 5's "done when"):
each registers, pages locations, pushes a token, starts a remote charge, watches its session,
stops it and receives its CDR, each in its own version.

Everything is real: the CPO as pytest-django's threaded live server, both eMSPs on 127.0.0.1
(the 2.1.1 one reads tokens plain only), a Celery worker process on the test database, and the
simulated chargers behind the gateway on a fast clock.
"""

import json
import time

import pytest
import requests

from billing.models import Session, Token
from ocpi.models import OutboxMessage, Partner
from ocpi.services import partner_create
from stations.models_simulator import SimulatedCharger
from stations.tasks import simulator_tick_task
from tests.contract import validate_ocpi
from tests.emsp_server import EMSPServer
from tests.factories import (
    ConnectorFactory,
    EVSEFactory,
    LocationFactory,
    PriceComponentFactory,
    TariffElementFactory,
    TariffFactory,
)
from tests.ocpi.v211.rules import assert_211, assert_envelope_211
from tests.worker import DEFAULT_WORKER_ENV, celery_worker  # noqa: F401  (fixture)

pytestmark = [pytest.mark.worker, pytest.mark.usefixtures("transactional_db", "celery_worker")]

CLOCK = {
    # One real second is 10 simulated minutes; the charger answers at once; no PATCH throttling.
    "SIMULATOR_TIME_SCALE": "600",
    "SIMULATOR_RESPONSE_SECONDS": "1",
    "SESSION_PATCH_INTERVAL": "0",
}
TOKEN_211 = {
    "uid": "CARD-OLD",
    "type": "RFID",
    "auth_id": "DE-OLD-C0001",
    "issuer": "Old eMSP",
    "valid": True,
    "whitelist": "ALLOWED",
    "last_updated": "2026-11-25T10:00:00Z",
}
TOKEN_221 = {
    "country_code": "BE",
    "party_id": "NEW",
    "uid": "APP-NEW",
    "type": "APP_USER",
    "contract_id": "BE-NEW-C0001",
    "issuer": "New eMSP",
    "valid": True,
    "whitelist": "NEVER",
    "last_updated": "2026-11-25T10:00:00Z",
}


@pytest.fixture(scope="module")
def celery_worker_env():
    return {**DEFAULT_WORKER_ENV, **CLOCK}


@pytest.fixture(autouse=True)
def _clock(settings, live_server):
    settings.OCPI_BASE_URL = live_server.url
    for name, value in CLOCK.items():
        setattr(settings, name, float(value))


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
def network():
    """Two locations, each with one remotely startable 22 kW EVSE (LOC-OLD: E-OLD, LOC-NEW:
    E-NEW), priced 0.30/kWh; each next car needs 40 kWh, so it charges until the driver stops
    it. (Two locations: charger answers at two EVSEs of one location at once can deadlock in
    the simulator, which is not what this test is about.)"""
    tariff = TariffFactory(ocpi_id="T1", elements=0)
    PriceComponentFactory(element=TariffElementFactory(tariff=tariff, price_components=0))
    for uid in ("E-OLD", "E-NEW"):
        location = LocationFactory(ocpi_id=uid.replace("E-", "LOC-"), evses=0)
        evse = EVSEFactory(
            location=location, uid=uid, connectors=0,
            capabilities=["REMOTE_START_STOP_CAPABLE", "RFID_READER"],
        )  # fmt: skip
        ConnectorFactory(evse=evse, ocpi_id="1", tariff_ids=["T1"])
        SimulatedCharger.objects.create(
            evse=evse,
            next_vehicle={
                "battery_kwh": "60", "soc_start": "20", "target_soc": "90",
                "max_power_w": "11000", "unplug_after_s": None, "idle_after_full_s": "600",
            },
        )  # fmt: skip


def call(emsp: EMSPServer, method: str, url: str, body=None) -> requests.Response:
    data = json.dumps(body) if body is not None else None
    return requests.request(
        method, url, data=data, headers=emsp.cpo_headers(emsp.token_for_cpo), timeout=30
    )


def received(emsp: EMSPServer, module: str, method: str | None = None) -> list:
    return emsp.received(method, f"/ocpi/emsp/{emsp.version}/{module}/")


def results_at(emsp: EMSPServer, url: str) -> list[dict]:
    return [r.body for r in emsp.received("POST", url.removeprefix(emsp.base_url))]


def tick_until(predicate, timeout: float = 40.0):
    """Let the worker tick the simulator (as beat would) until predicate() holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        simulator_tick_task.delay()
        time.sleep(0.2)
    raise AssertionError(f"not in time: {list(OutboxMessage.objects.values('state', 'module'))}")


def cdr_posts(emsp: EMSPServer) -> list:
    return emsp.received("POST", f"/ocpi/emsp/{emsp.version}/cdrs")


def test_a_2_1_1_and_a_2_2_1_emsp_charge_side_by_side(live_server, old_emsp, new_emsp, network):
    # given: both register with the token A staff gave them
    old_partner, old_token_a = partner_create(name="Old eMSP")
    new_partner, new_token_a = partner_create(name="New eMSP")
    for emsp, token_a in ((old_emsp, old_token_a), (new_emsp, new_token_a)):
        assert emsp.register_with(f"{live_server.url}/ocpi/versions", token_a).status_code == 200
    old_partner.refresh_from_db()
    new_partner.refresh_from_db()
    assert (old_partner.version, new_partner.version) == ("2.1.1", "2.2.1")

    # when: each pages our locations
    old_page = call(old_emsp, "GET", old_emsp.cpo_endpoint("locations")).json()
    new_page = call(new_emsp, "GET", new_emsp.cpo_endpoint("locations")).json()
    # then
    assert_envelope_211(old_page, "Location", many=True)
    validate_ocpi(new_page["data"][0], "Location")
    assert [loc["id"] for loc in old_page["data"]] == ["LOC-OLD", "LOC-NEW"]
    assert [e["uid"] for e in old_page["data"][0]["evses"]] == ["E-OLD"]

    # when: each pushes its driver's token
    old_put = call(old_emsp, "PUT", f"{old_emsp.cpo_endpoint('tokens')}/DE/OLD/CARD-OLD", TOKEN_211)
    new_put = call(
        new_emsp,
        "PUT",
        f"{new_emsp.cpo_endpoint('tokens')}/BE/NEW/APP-NEW?type=APP_USER",
        TOKEN_221,
    )
    # then
    assert (old_put.status_code, new_put.status_code) == (201, 201)
    old_token = Token.objects.get(uid="CARD-OLD")
    assert (old_token.partner, old_token.contract_id) == (old_partner, "DE-OLD-C0001")

    # when: each driver starts a charge in the app (one after the other)
    old_result_url = old_emsp.response_url("commands", "START_SESSION")
    new_result_url = new_emsp.response_url("commands", "START_SESSION")
    old_start = call(
        old_emsp,
        "POST",
        f"{old_emsp.cpo_endpoint('commands')}/START_SESSION",
        {
            "response_url": old_result_url,
            "token": TOKEN_211,
            "location_id": "LOC-OLD",
            "evse_uid": "E-OLD",
        },
    ).json()
    old_emsp.wait_for(lambda s: results_at(s, old_result_url), timeout=30)
    new_start = call(
        new_emsp,
        "POST",
        f"{new_emsp.cpo_endpoint('commands')}/START_SESSION",
        {
            "response_url": new_result_url,
            "token": TOKEN_221,
            "location_id": "LOC-NEW",
            "evse_uid": "E-NEW",
        },
    ).json()
    # then: each answer in its version, and the charger's answer at each response_url
    assert old_start["data"] == {"result": "ACCEPTED"}
    assert_envelope_211(old_start, "CommandResponse")
    assert new_start["data"]["result"] == "ACCEPTED"
    assert new_start["data"]["timeout"] > 0
    new_emsp.wait_for(lambda s: results_at(s, new_result_url), timeout=30)
    assert results_at(old_emsp, old_result_url) == [{"result": "ACCEPTED"}]
    assert results_at(new_emsp, new_result_url) == [{"result": "ACCEPTED"}]

    # then: each eMSP gets its own session, in its version, as the cars charge
    tick_until(
        lambda: (
            len(received(old_emsp, "sessions")) >= 3
            and len(received(new_emsp, "sessions", "PATCH")) >= 2
        )
    )
    old_session = Session.objects.get(partner=old_partner)
    new_session = Session.objects.get(partner=new_partner)
    old_updates = received(old_emsp, "sessions")
    assert {r.path for r in old_updates} == {
        f"/ocpi/emsp/2.1.1/sessions/NL/CPO/{old_session.ocpi_id}"
    }
    assert {r.method for r in old_updates} == {"PUT"}
    for update in old_updates:
        assert_211(update.body, "Session")
        assert update.headers["Authorization"] == f"Token {old_partner.outbound_token}"
    first = old_updates[0].body
    assert (first["auth_id"], first["auth_method"]) == ("DE-OLD-C0001", "AUTH_REQUEST")
    assert (first["location"]["id"], first["location"]["evses"][0]["uid"]) == ("LOC-OLD", "E-OLD")
    energies = [r.body["kwh"] for r in old_updates]
    assert energies == sorted(energies)
    assert energies[-1] > 0
    new_updates = received(new_emsp, "sessions")
    assert {r.path for r in new_updates} == {
        f"/ocpi/emsp/2.2.1/sessions/NL/CPO/{new_session.ocpi_id}"
    }
    assert new_updates[0].method == "PUT"
    validate_ocpi(new_updates[0].body, "Session")
    assert new_updates[0].body["cdr_token"]["uid"] == "APP-NEW"

    # when: each driver stops the charge (one after the other)
    for emsp, session in ((old_emsp, old_session), (new_emsp, new_session)):
        stop_url = emsp.response_url("commands", "STOP_SESSION")
        stop = call(
            emsp,
            "POST",
            f"{emsp.cpo_endpoint('commands')}/STOP_SESSION",
            {
                "response_url": stop_url,
                "session_id": session.ocpi_id,
            },
        )
        assert stop.json()["data"]["result"] == "ACCEPTED"
        emsp.wait_for(lambda s, url=stop_url: results_at(s, url), timeout=30)
        assert results_at(emsp, stop_url) == [{"result": "ACCEPTED"}]

    # then: the COMPLETED session, then its CDR, each in its version
    old_emsp.wait_for(lambda s: cdr_posts(s), timeout=40)
    new_emsp.wait_for(lambda s: cdr_posts(s), timeout=40)
    old_final = received(old_emsp, "sessions")[-1].body
    assert old_final["status"] == "COMPLETED"
    assert "end_datetime" in old_final
    assert received(new_emsp, "sessions")[-1].body["status"] == "COMPLETED"
    (old_cdr,) = cdr_posts(old_emsp)
    assert_211(old_cdr.body, "CDR")
    assert old_cdr.headers["Authorization"] == f"Token {old_partner.outbound_token}"
    assert (old_cdr.body["id"], old_cdr.body["auth_id"]) == (old_session.ocpi_id, "DE-OLD-C0001")
    assert old_cdr.body["location"]["evses"][0]["uid"] == "E-OLD"
    assert old_cdr.body["total_energy"] == old_final["kwh"]
    (new_cdr,) = cdr_posts(new_emsp)
    validate_ocpi(new_cdr.body, "CDR")
    assert (new_cdr.body["id"], new_cdr.body["cdr_token"]["uid"]) == (
        new_session.ocpi_id,
        "APP-NEW",
    )
    assert not OutboxMessage.objects.filter(state="FAILED").exists()
    assert Partner.objects.get(pk=old_partner.pk).token_encoding == "PLAIN"

    # and each reads its CDR back from our CDRs sender, in its version
    old_list = call(old_emsp, "GET", old_emsp.cpo_endpoint("cdrs")).json()
    assert_envelope_211(old_list, "CDR", many=True)
    assert [c["id"] for c in old_list["data"]] == [old_session.ocpi_id]
