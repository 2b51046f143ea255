"""Pushes end to end: a committed change, a real Celery worker on the tests' broker, the eMSP."""

import time

import pytest
from django.db import transaction

from ocpi.datetimes import format_datetime
from ocpi.models import OutboxMessage
from ocpi.tasks import sweep_outbox_task
from stations.models import EVSE
from tests.factories import LocationFactory, TariffFactory
from tests.worker import celery_worker, celery_worker_env  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.worker, pytest.mark.usefixtures("transactional_db", "celery_worker")]

State = OutboxMessage.State
BASE = "/ocpi/emsp/2.2.1"


@pytest.fixture
def partner(make_partner, emsp):
    endpoints = [
        {"identifier": module, "role": "RECEIVER", "url": emsp.endpoint(module)}
        for module in ("locations", "tariffs")
    ]
    partner, _ = make_partner("eMSP", endpoints=endpoints, request_timeout=2.0)
    emsp.accepted_tokens.add(partner.outbound_token)
    return partner


def wait_until(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout}s: {list(OutboxMessage.objects.values())}")


def all_sent() -> bool:
    return not OutboxMessage.objects.filter(state__in=(State.PENDING, State.FAILED)).exists()


@pytest.fixture
def evse(partner, emsp) -> EVSE:
    """LOC1 with EVSE1, created in one transaction and pushed by the worker."""
    with transaction.atomic():
        location = LocationFactory(ocpi_id="LOC1", evses=0)
        evse = EVSE.objects.create(location=location, uid="EVSE1")
        evse.connectors.create(
            ocpi_id="1", standard="IEC_62196_T2", format="SOCKET", power_type="AC_3_PHASE",
            max_voltage=230, max_amperage=32,
        )  # fmt: skip
    emsp.wait_for(lambda s: s.received("PUT", f"{BASE}/locations/NL/CPO/LOC1"))
    wait_until(all_sent)
    return EVSE.objects.get(pk=evse.pk)


def test_a_status_change_reaches_the_emsp_as_a_patch(evse, emsp):
    # given
    assert [r.method for r in emsp.received()] == ["PUT"]

    # when
    evse.status = "CHARGING"
    evse.save()

    # then
    (patch,) = emsp.wait_for(lambda s: s.received("PATCH"))
    assert patch.path == f"{BASE}/locations/NL/CPO/LOC1/EVSE1"
    assert patch.body == {"status": "CHARGING", "last_updated": format_datetime(evse.last_updated)}
    assert emsp.stored["locations/NL/CPO/LOC1/EVSE1"]["status"] == "CHARGING"
    wait_until(all_sent)


def test_a_partner_that_was_down_gets_every_update_in_order_when_it_is_back(evse, emsp):
    # given: the eMSP goes down
    emsp.stop()

    # when: the charger changes status three times and a tariff is added, while it is down
    for status in ("CHARGING", "AVAILABLE", "OUTOFORDER"):
        evse.status = status
        evse.save()
    TariffFactory(ocpi_id="T1")

    # then: the worker keeps retrying with backoff
    first = OutboxMessage.objects.filter(method="PATCH").order_by("id").first()
    wait_until(lambda: OutboxMessage.objects.get(pk=first.pk).attempts >= 2)
    assert OutboxMessage.objects.filter(state=State.PENDING).count() == 4

    # when: it comes back on the same port
    emsp.start()

    # then: every update arrives, in order per object
    emsp.wait_for(lambda s: len(s.received("PATCH")) == 3 and s.received("PUT", f"{BASE}/tariffs"))
    assert [r.body["status"] for r in emsp.received("PATCH")] == [
        "CHARGING",
        "AVAILABLE",
        "OUTOFORDER",
    ]
    assert emsp.stored["locations/NL/CPO/LOC1/EVSE1"]["status"] == "OUTOFORDER"
    assert emsp.stored["tariffs/NL/CPO/T1"]["id"] == "T1"
    wait_until(all_sent)


def test_the_sweeper_delivers_rows_whose_task_was_lost(partner, emsp):
    # given: a row with no delivery task queued for it (written without the signal handlers)
    OutboxMessage.objects.create(
        partner=partner, module="tariffs", object_key="tariffs/NL/CPO/T9", method="PUT",
        path="NL/CPO/T9", body='{"id": "T9"}',
    )  # fmt: skip
    time.sleep(0.5)
    assert emsp.received() == []

    # when: beat runs the sweeper
    sweep_outbox_task.delay()

    # then
    (put,) = emsp.wait_for(lambda s: s.received("PUT"))
    assert put.path == f"{BASE}/tariffs/NL/CPO/T9"
    wait_until(all_sent)
