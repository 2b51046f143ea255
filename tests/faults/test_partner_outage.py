"""A partner that fails for ten minutes, then recovers: every update queued meanwhile arrives
afterwards, in order per object, and each CDR exactly once; while it fails, staff see the
backoff (attempts, next attempt, last error) on the outbox admin's list.

Real pieces: a Celery worker process (tests.worker) on the tests' database and broker
(PostgreSQL and Redis, or the SQLite and filesystem fallbacks), and the eMSP server on 127.0.0.1
(ocpi.sandbox_emsp), failing in one of four ways: it refuses connections (stopped), holds each
request past our timeout, answers HTTP 500, or answers HTTP 200 with OCPI status 3000.

Simulated time. The worker runs with production's backoff (cpo_platform/settings.py: 5 s,
doubling per attempt, at most 1 h) divided by SCALE = 600, so one wall second holds ten minutes
of production backoff. In production a row is tried 7 times in a ten-minute outage (at 0, 5, 15,
35, 75, 155 and 315 s; the 8th try would come at 635 s). The outage here lasts until the oldest
row has been tried that often, and the test checks that its next attempt is then more than ten
scaled minutes after the row was written: the backoff doubled all along and nobody gave up.
Two things are not scaled, and are said here rather than hidden: the request timeout (0.25 s
here; a partner's profile sets it, 30 s by default), so in the timeout mode the outage takes a
few wall seconds; and MAX_FOLLOW_UP_SECONDS (300 s, a constant in ocpi/tasks.py), so here every
retry is a follow-up task of the delivery chain, where production leaves the retries from the
8th on (320 s away) to the beat sweeper; the sweeper is exercised in test_worker_crash.py and
test_broker_restart.py.

What "every update, in order, once" means. PUTs and PATCHes arrive at least once and in order:
a row is sent only once every older row of its object was accepted, and a retry repeats the same
request (one that timed out may have been applied), it never reorders; consecutive repeats are
therefore collapsed before comparing with the rows. A CDR is stored by the partner exactly once
(a repeated POST would be answered 409 and counted as delivered), its one row is SENT and the
CDR is DELIVERED.

Already covered elsewhere, so not repeated: tests/ocpi/test_delivery.py runs single delivery
passes per failure mode (backoff values, blocking, rejection); tests/ocpi/test_outbox_worker.py
has one short outage (a stopped server, two attempts) of location and tariff updates.
"""

import html
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from itertools import groupby

import pytest
from django.contrib.admin.utils import display_for_field
from django.db import transaction
from django.db.models import Max

from billing.cdrs import cdr_credit
from billing.models_cdrs import CDR
from ocpi.models import OutboxMessage
from stations.models import EVSE, Tariff
from tests.emsp_server import EMSPServer, partner_of
from tests.factories import EVSEFactory, LocationFactory, TariffFactory
from tests.faults.helpers import (
    State,
    all_sent,
    charge,
    collapse_repeats,
    heard,
    restart_server,
    row_wire,
    steady_port,
    stored_cdr_ids,
    until,
)
from tests.worker import celery_worker  # noqa: F401  (fixture)

pytestmark = [pytest.mark.worker, pytest.mark.usefixtures("transactional_db", "celery_worker")]

# Production's backoff (cpo_platform/settings.py defaults) and how much faster the worker runs.
PRODUCTION_BACKOFF_BASE, PRODUCTION_BACKOFF_MAX = 5.0, 3600.0
SCALE = 600
TEN_MINUTES = timedelta(minutes=10)
ATTEMPTS_IN_TEN_MINUTES = 7  # at 0, 5, 15, 35, 75, 155, 315 s (doubling from 5 s)
BASE = "/ocpi/emsp/2.2.1"
LOC1 = "locations/NL/CPO/LOC1"
STATUSES = ["CHARGING", "AVAILABLE", "OUTOFORDER"]


@dataclass
class Network:
    tariff: Tariff
    evse: EVSE  # LOC1's EVSE1, whose status changes
    charger: EVSE  # at LOC2, where a driver charges


# How each failure shows in the row's last error (ocpi.client).
FAILURES = {
    "refused": "Cannot reach",
    "timeout": "Timeout after 0.25s",
    "http500": "HTTP 500",
    "ocpi3000": "OCPI 3000",
}


@pytest.fixture(scope="module")
def celery_worker_env() -> dict[str, str]:
    return {
        "OUTBOX_BACKOFF_BASE": str(PRODUCTION_BACKOFF_BASE / SCALE),
        "OUTBOX_BACKOFF_MAX": str(PRODUCTION_BACKOFF_MAX / SCALE),
    }


@pytest.fixture
def emsp():
    server = EMSPServer(port=steady_port())  # stopped and started again on it ("refused")
    yield server
    server.stop()


@pytest.fixture
def partner(make_partner, emsp):
    return partner_of(make_partner, emsp, request_timeout=0.25)


@pytest.fixture
def network(partner, emsp) -> Network:
    """Tariff T1, LOC1 with EVSE1, and LOC2 with a charger priced by T1, all pushed already."""
    tariff = TariffFactory(ocpi_id="T1")
    with transaction.atomic():
        evse = EVSEFactory(location=LocationFactory(ocpi_id="LOC1", evses=0), uid="EVSE1")
    charger = EVSEFactory(
        location=LocationFactory(ocpi_id="LOC2", evses=0), connectors__tariff_ids=["T1"]
    )
    until(all_sent)
    assert {"tariffs/NL/CPO/T1", LOC1, "locations/NL/CPO/LOC2"} <= set(emsp.stored)
    return Network(
        tariff=Tariff.objects.get(pk=tariff.pk),
        evse=EVSE.objects.get(pk=evse.pk),
        charger=EVSE.objects.get(pk=charger.pk),
    )


def start_failing(emsp: EMSPServer, failure: str) -> None:
    if failure == "refused":
        emsp.stop()
    else:
        emsp.timeout_seconds = 1.0  # held four times as long as we wait for it
        emsp.mode = failure


def recover(emsp: EMSPServer, failure: str) -> int:
    """Make the eMSP answer again; returns how many requests it had heard until then."""
    if failure == "refused":
        restart_server(emsp)  # on the same port
    else:
        emsp.mode = "ok"
    # Every request recorded after this point is answered in "ok" mode (the handler records a
    # request before it looks at the mode).
    with emsp.lock:
        return len(emsp.requests)


def admin_cells(page: str, pk: int) -> dict[str, str]:
    """The text of each field column of the changelist row of outbox message `pk`."""
    row = next(tr for tr in re.findall(r"<tr>.*?</tr>", page, re.S) if f'value="{pk}"' in tr)
    cells = re.findall(r'<t[dh] class="field-(\w+)[^"]*"[^>]*>(.*?)</t[dh]>', row, re.S)
    return {name: html.unescape(re.sub(r"<[^>]+>", "", text)).strip() for name, text in cells}


def by_object(rows: list[OutboxMessage]) -> dict[str, list[OutboxMessage]]:
    """Rows per object key, oldest first."""
    ordered = sorted(rows, key=lambda row: (row.object_key, row.id))
    return {key: list(group) for key, group in groupby(ordered, key=lambda r: r.object_key)}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_partner_failing_for_ten_minutes_gets_every_update_in_order_afterwards(
    failure, network, partner, emsp, admin_client
):
    # given: the partner starts failing
    written_before = OutboxMessage.objects.aggregate(last=Max("id"))["last"]
    with emsp.lock:
        heard_before = len(emsp.requests)
    start_failing(emsp, failure)

    # when: meanwhile EVSE1 changes status three times, the tariff changes, a driver charges at
    # LOC2 (its CDR is made) and staff credit that CDR
    for status in STATUSES:
        network.evse.status = status
        network.evse.save()
    network.tariff.tariff_alt_url = "https://cpo.example.com/tariffs/t1"
    network.tariff.save()
    cdr = charge(partner, network.charger, ref="1")
    credit = cdr_credit(cdr=cdr, reason="Refund")

    # then: the worker keeps trying the oldest row of each object, backing off, for ten
    # (scaled) minutes; the rows behind it wait untried; nothing is sent, nothing fails
    head = OutboxMessage.objects.filter(object_key=LOC1, state=State.PENDING).first()
    until(lambda: OutboxMessage.objects.get(pk=head.pk).attempts >= ATTEMPTS_IN_TEN_MINUTES)
    queued = list(OutboxMessage.objects.filter(id__gt=written_before).order_by("id"))
    assert {row.state for row in queued} == {State.PENDING}
    objects = by_object(queued)
    assert {"tariffs/NL/CPO/T1", LOC1, "cdrs/NL/CPO"} <= objects.keys()
    assert [json.loads(row.body)["status"] for row in objects[LOC1]] == STATUSES
    head = objects[LOC1][0]
    assert head.next_attempt_at - head.created >= TEN_MINUTES / SCALE
    assert FAILURES[failure] in head.last_error
    waiting = [row for rows in objects.values() for row in rows[1:]]
    assert [row.attempts for row in waiting] == [0] * len(waiting)
    with emsp.lock:
        during = {heard(r) for r in emsp.requests[heard_before:]}
    assert during <= {row_wire(rows[0], partner) for rows in objects.values()}

    # then: staff see the backoff on the outbox list: attempts, next attempt, last error
    page = admin_client.get("/admin/ocpi/outboxmessage/", {"q": LOC1, "state__exact": "PENDING"})
    assert page.status_code == 200
    listed = {row.pk: row for row in page.context["cl"].result_list}
    assert listed.keys() == {row.pk for row in objects[LOC1]}
    row, cells = listed[head.pk], admin_cells(page.content.decode(), head.pk)
    assert (cells["state"], int(cells["attempts"])) == ("Pending", row.attempts)
    assert row.attempts >= ATTEMPTS_IN_TEN_MINUTES
    next_attempt_at = OutboxMessage._meta.get_field("next_attempt_at")
    assert cells["next_attempt_at"] == display_for_field(row.next_attempt_at, next_attempt_at, "")
    assert cells["short_error"].removesuffix("…") == row.last_error[:80]
    assert admin_cells(page.content.decode(), objects[LOC1][1].pk)["attempts"] == "0"
    change_page = admin_client.get(f"/admin/ocpi/outboxmessage/{head.pk}/change/")
    assert FAILURES[failure] in html.unescape(change_page.content.decode())

    # when: the partner recovers
    heard_until_recovery = recover(emsp, failure)

    # then: every queued row is sent, in order per object, and nothing else is
    until(all_sent)
    with emsp.lock:
        after = [heard(r) for r in emsp.requests[heard_until_recovery:]]
    for key, rows in objects.items():
        expected = [row_wire(r, partner) for r in rows]
        assert collapse_repeats([w for w in after if w in expected]) == expected, key
    assert set(after) <= {row_wire(r, partner) for r in queued}
    assert emsp.stored["locations/NL/CPO/LOC1/EVSE1"]["status"] == "OUTOFORDER"

    # then: each CDR was stored once, in order; its one row is SENT and it is DELIVERED
    assert stored_cdr_ids(emsp) == [cdr.ocpi_id, credit.ocpi_id]
    assert [(r.method, r.state) for r in OutboxMessage.objects.filter(module="cdrs")] == [
        ("POST", State.SENT),
        ("POST", State.SENT),
    ]
    assert set(CDR.objects.values_list("delivery", flat=True)) == {CDR.Delivery.DELIVERED}
