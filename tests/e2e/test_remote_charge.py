"""A partner eMSP's driver charges remotely, end to end over real HTTP (issue 3's flow).

Everything is real: the CPO served by pytest-django's live server (threaded), the eMSP on
127.0.0.1 (tests/emsp_server.py), a Celery worker process on the test database and the broker
(Redis in CI), the simulated charger behind the gateway on a fast clock. The eMSP registers,
PUTs a token, POSTs START_SESSION, gets the CommandResult at its response_url, receives the
session's PUT and PATCHes with growing kWh, POSTs STOP_SESSION and receives the COMPLETED session.
"""

import json
import time
from decimal import Decimal

import pytest
import requests

from billing.models import Session, Token
from billing.models_cdrs import CDR
from ocpi.models import CommandRequest, Partner
from ocpi.services import partner_create
from stations.models_simulator import SimulatedCharger
from stations.tasks import simulator_tick_task
from tests.emsp_server import EMSPServer
from tests.factories import EVSEFactory
from tests.worker import DEFAULT_WORKER_ENV, celery_worker  # noqa: F401  (fixture)

pytestmark = [pytest.mark.worker, pytest.mark.usefixtures("transactional_db", "celery_worker")]

CLOCK = {
    # One real second is 10 simulated minutes; the charger answers at once; no PATCH throttling.
    "SIMULATOR_TIME_SCALE": "600",
    "SIMULATOR_RESPONSE_SECONDS": "1",
    "SESSION_PATCH_INTERVAL": "0",
}
TOKEN = {
    "country_code": "DE",
    "party_id": "EMS",
    "uid": "APP-4711",
    "type": "APP_USER",
    "contract_id": "DE-EMS-C12345678",
    "issuer": "Test eMSP",
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
def emsp():
    server = EMSPServer(country_code="DE", party_id="EMS")
    yield server
    server.stop()


@pytest.fixture
def evse():
    """A remotely startable 22 kW AC EVSE; the next car needs 40 kWh (it charges for hours)."""
    evse = EVSEFactory(capabilities=["REMOTE_START_STOP_CAPABLE", "RFID_READER"])
    SimulatedCharger.objects.create(
        evse=evse,
        next_vehicle={
            "battery_kwh": "60", "soc_start": "20", "target_soc": "90", "max_power_w": "11000",
            "unplug_after_s": None, "idle_after_full_s": "600",
        },
    )  # fmt: skip
    return evse


def call(emsp: EMSPServer, method: str, url: str, body=None) -> requests.Response:
    data = json.dumps(body) if body is not None else None
    return requests.request(
        method, url, data=data, headers=emsp.cpo_headers(emsp.token_for_cpo), timeout=30
    )


def results_at(emsp: EMSPServer, url: str) -> list[dict]:
    path = url.removeprefix(emsp.base_url)
    return [r.body for r in emsp.received("POST", path)]


def session_updates(emsp: EMSPServer) -> list:
    return emsp.received(path_prefix="/ocpi/emsp/2.2.1/sessions/")


def tick_until(predicate, timeout: float = 40.0):
    """Let the worker tick the simulator (as beat would) until predicate() holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        simulator_tick_task.delay()
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_an_emsp_registers_starts_watches_and_stops_a_remote_charge(live_server, emsp, evse):
    # given: staff created the partner; the eMSP registers with its token A
    partner, token_a = partner_create(name="Test eMSP")
    registration = emsp.register_with(f"{live_server.url}/ocpi/versions", token_a)
    assert registration.json()["status_code"] == 1000
    partner.refresh_from_db()
    assert partner.status == Partner.Status.REGISTERED
    location_id = evse.location.ocpi_id

    # when: the eMSP PUTs its driver's token
    tokens_url = emsp.cpo_endpoint("tokens")
    put = call(emsp, "PUT", f"{tokens_url}/DE/EMS/APP-4711?type=APP_USER", TOKEN)
    # then
    assert (put.status_code, put.json()["status_code"]) == (201, 1000)
    assert Token.objects.get().partner == partner

    # when: the driver starts a charge in the app
    start_result_url = emsp.response_url("commands", "START_SESSION")
    start = call(
        emsp,
        "POST",
        f"{emsp.cpo_endpoint('commands')}/START_SESSION",
        {
            "response_url": start_result_url,
            "token": TOKEN,
            "location_id": location_id,
            "evse_uid": evse.uid,
            "authorization_reference": "AUTH-REF-1",
        },
    )
    # then: accepted at once, and the charger's answer arrives at the response_url
    assert start.status_code == 200
    assert start.json()["status_code"] == 1000
    assert start.json()["data"]["result"] == "ACCEPTED"
    assert start.json()["data"]["timeout"] > 0
    emsp.wait_for(lambda s: results_at(s, start_result_url), timeout=30)
    assert results_at(emsp, start_result_url) == [{"result": "ACCEPTED"}]

    # then: the session is PUT, then PATCHed with growing kWh as the car charges
    emsp.wait_for(lambda s: session_updates(s), timeout=30)
    tick_until(lambda: len([r for r in session_updates(emsp) if r.method == "PATCH"]) >= 3)
    session = Session.objects.get()
    updates = session_updates(emsp)
    assert updates[0].method == "PUT"
    assert updates[0].path == f"/ocpi/emsp/2.2.1/sessions/NL/CPO/{session.ocpi_id}"
    first = updates[0].body
    assert (first["status"], first["auth_method"]) == ("ACTIVE", "COMMAND")
    assert first["authorization_reference"] == "AUTH-REF-1"
    assert first["cdr_token"]["uid"] == "APP-4711"
    assert (first["location_id"], first["evse_uid"]) == (location_id, evse.uid)
    energies = [r.body["kwh"] for r in updates if r.method == "PATCH" and "kwh" in r.body]
    assert len(energies) >= 2
    assert energies == sorted(energies)
    assert energies[-1] > 0

    # when: the driver stops the charge in the app
    stop_result_url = emsp.response_url("commands", "STOP_SESSION")
    stop = call(
        emsp,
        "POST",
        f"{emsp.cpo_endpoint('commands')}/STOP_SESSION",
        {"response_url": stop_result_url, "session_id": session.ocpi_id},
    )
    # then: accepted, the charger confirms, and the COMPLETED session arrives last
    assert stop.json()["data"]["result"] == "ACCEPTED"
    emsp.wait_for(lambda s: results_at(s, stop_result_url), timeout=30)
    assert results_at(emsp, stop_result_url) == [{"result": "ACCEPTED"}]
    emsp.wait_for(
        lambda s: any(r.body.get("status") == "COMPLETED" for r in session_updates(s)),
        timeout=30,
    )
    final = session_updates(emsp)[-1].body
    assert final["status"] == "COMPLETED"
    assert "end_date_time" in final
    session.refresh_from_db()
    assert session.status == "COMPLETED"
    assert session.stop_reason == "REMOTE"
    assert Decimal(str(final["kwh"])) == session.kwh > 0
    assert set(CommandRequest.objects.values_list("kind", "result")) == {
        ("START_SESSION", "ACCEPTED"),
        ("STOP_SESSION", "ACCEPTED"),
    }
    # then: exactly one CDR is POSTed, priced as the stored CDR (the tariff maths) says
    emsp.wait_for(lambda s: s.received("POST", "/ocpi/emsp/2.2.1/cdrs"), timeout=30)
    cdr = CDR.objects.get(session=session)
    posted = emsp.received("POST", "/ocpi/emsp/2.2.1/cdrs")
    assert len(posted) == 1
    assert posted[0].body["id"] == cdr.ocpi_id
    assert Decimal(str(posted[0].body["total_energy"])) == session.kwh
    assert Decimal(str(posted[0].body["total_cost"]["excl_vat"])) == cdr.total_cost_excl_vat
    cdr.refresh_from_db()
    emsp.wait_for(lambda s: CDR.objects.get(pk=cdr.pk).partner_location_url, timeout=10)

    # and the partner sees its session in the Sessions sender too
    listed = call(emsp, "GET", f"{emsp.cpo_endpoint('sessions')}?date_from=2000-01-01T00:00:00Z")
    assert [s["id"] for s in listed.json()["data"]] == [session.ocpi_id]
    assert listed.json()["data"][0]["status"] == "COMPLETED"
