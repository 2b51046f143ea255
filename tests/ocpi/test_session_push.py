"""Session pushes end to end: a remote start through the gateway, the simulated charger on a fast
clock driven by the real Celery worker, and the eMSP on 127.0.0.1 receiving the session's PUT,
PATCHes with growing kWh, and the COMPLETED update, in order (PROTOCOL.md §4.2)."""

import time
from decimal import Decimal

import pytest
from django.db import transaction

from billing.models import Session
from billing.sessions import pending_start_register
from ocpi.models import OutboxMessage
from stations import gateway
from stations.models_simulator import SimulatedCharger, SimulatedTransaction
from stations.tasks import simulator_tick_task
from tests.emsp_server import EMSPServer
from tests.factories import EVSEFactory
from tests.worker import DEFAULT_WORKER_ENV, celery_worker  # noqa: F401  (fixture)

pytestmark = [pytest.mark.worker, pytest.mark.usefixtures("transactional_db", "celery_worker")]

SESSIONS = "/ocpi/emsp/2.2.1/sessions"
CLOCK = {
    # One real second is 10 simulated minutes (the charge takes about 3 s, time for a busy worker
    # to send PATCHes before the next update supersedes them); the charger answers at once; no
    # PATCH throttling.
    "SIMULATOR_TIME_SCALE": "600",
    "SIMULATOR_RESPONSE_SECONDS": "1",
    "SESSION_PATCH_INTERVAL": "0",
}


@pytest.fixture(scope="module")
def celery_worker_env():
    return {**DEFAULT_WORKER_ENV, **CLOCK}


@pytest.fixture(autouse=True)
def _clock(settings):
    for name, value in CLOCK.items():
        setattr(settings, name, float(value))


@pytest.fixture
def partner(make_partner, emsp):
    endpoints = [{"identifier": "sessions", "role": "RECEIVER", "url": emsp.endpoint("sessions")}]
    partner, _ = make_partner("eMSP", endpoints=endpoints, request_timeout=2.0)
    emsp.accepted_tokens.add(partner.outbound_token)
    return partner


@pytest.fixture
def evse():
    """A 22 kW AC EVSE; the next car takes 5 kWh at 11 kW, then parks for 10 minutes."""
    evse = EVSEFactory()
    SimulatedCharger.objects.create(
        evse=evse,
        next_vehicle={
            "battery_kwh": "10", "soc_start": "50", "target_soc": "100", "max_power_w": "11000",
            "unplug_after_s": None, "idle_after_full_s": "600",
        },
    )  # fmt: skip
    return evse


def remote_start(partner, evse, emsp) -> None:
    """What the commands receiver does for a START_SESSION: register, then ask the charger.
    Returns once the eMSP has the new session (the charger answers without ticks)."""
    with transaction.atomic():
        pending_start_register(
            request_ref="REQ-1", partner_id=partner.pk,
            cdr_token={"country_code": "DE", "party_id": "EMS", "uid": "04A1B2C3",
                       "type": "APP_USER", "contract_id": "DE-EMS-C00000001"},
            auth_method="COMMAND", authorization_reference="AUTH-1", location=evse.location,
            evse=evse, connector=evse.connectors.get(),
        )  # fmt: skip
        assert gateway.gateway().start_transaction(
            request_ref="REQ-1", evse_pk=evse.pk, connector_pk=None, id_tag="04A1B2C3"
        )
    emsp.wait_for(lambda s: session_requests(s))


def tick_until(predicate, timeout: float = 30.0, every: float = 0.1):
    """Let the worker tick the simulator (as beat would) until predicate() holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        simulator_tick_task.delay()
        time.sleep(every)
    raise AssertionError(f"not within {timeout}s: {list(OutboxMessage.objects.values())}")


def session_requests(emsp: EMSPServer):
    return [r for r in emsp.received() if r.path.startswith(SESSIONS)]


def completed(emsp: EMSPServer):
    return [r for r in session_requests(emsp) if r.method == "PUT"
            and r.body.get("status") == "COMPLETED"]  # fmt: skip


def test_a_charge_reaches_the_emsp_as_put_patches_and_a_completed_put(partner, evse, emsp):
    # when: a remote start, then the worker ticks until the driver has unplugged
    remote_start(partner, evse, emsp)
    tick_until(lambda: completed(emsp))

    # then: PUT (ACTIVE), PATCHes with growing kWh, the final PUT (COMPLETED), in that order
    session = Session.objects.get()
    requests = session_requests(emsp)
    assert {r.path for r in requests} == {f"{SESSIONS}/NL/CPO/{session.ocpi_id}"}
    methods = [r.method for r in requests]
    assert methods[0] == "PUT"
    assert methods[-1] == "PUT"
    assert set(methods[1:-1]) == {"PATCH"}
    assert len(methods) >= 4
    first, patches, final = requests[0].body, [r.body for r in requests[1:-1]], requests[-1].body
    assert (first["status"], first["kwh"], first["auth_method"]) == ("ACTIVE", 0, "COMMAND")
    assert first["cdr_token"]["uid"] == "04A1B2C3"
    energies = [p["kwh"] for p in patches if "kwh" in p]
    assert energies == sorted(energies)
    assert energies[0] < energies[-1] <= 5
    stamps = [r.body["last_updated"] for r in requests]
    assert stamps == sorted(stamps)
    assert (final["status"], final["kwh"]) == ("COMPLETED", 5)
    assert "end_date_time" in final

    # then: the charging period arrived in a PATCH (appended by the eMSP) before the final PUT
    appended = [p for patch in patches for p in patch.get("charging_periods", [])]
    assert appended == final["charging_periods"][:1]
    assert [d["type"] for d in final["charging_periods"][1]["dimensions"]] == [
        "ENERGY",
        "PARKING_TIME",
    ]
    stored = emsp.stored[f"sessions/NL/CPO/{session.ocpi_id}"]
    assert stored["status"] == "COMPLETED"
    session.refresh_from_db()
    assert (session.status, session.kwh, session.stop_reason) == (
        "COMPLETED",
        Decimal("5.0000"),
        "BATTERY_FULL",
    )


def test_a_partner_that_was_down_gets_every_update_in_order(partner, evse, emsp):
    # given: the session is under way and the eMSP has it
    remote_start(partner, evse, emsp)

    # when: the eMSP is down while the car charges and the driver leaves
    emsp.stop()
    tick_until(
        lambda: (
            SimulatedTransaction.objects.filter(state="FINISHED").exists()
            and OutboxMessage.objects.filter(attempts__gte=2).exists()
        )
    )
    emsp.start()

    # then: everything arrives once it is back, in order, ending with the completed session
    emsp.wait_for(lambda s: completed(s))
    requests = session_requests(emsp)
    assert requests[-1].body["status"] == "COMPLETED"
    energies = [r.body["kwh"] for r in requests if "kwh" in r.body]
    assert energies == sorted(energies)
    assert not OutboxMessage.objects.filter(state="FAILED").exists()


def test_a_stop_session_ends_the_charge_early(partner, evse, emsp):
    # given: a charge under way
    remote_start(partner, evse, emsp)
    tick_until(lambda: len(session_requests(emsp)) >= 2)
    session = Session.objects.get()

    # when: the eMSP's STOP_SESSION reaches the charger
    with transaction.atomic():
        assert gateway.gateway().stop_transaction(
            request_ref="REQ-STOP", transaction_ref=session.transaction_ref
        )
    emsp.wait_for(lambda s: completed(s))

    # then
    session.refresh_from_db()
    assert session.stop_reason == "REMOTE"
    assert Decimal(0) < session.kwh < Decimal(5)
    assert Decimal(str(completed(emsp)[-1].body["kwh"])) == session.kwh
