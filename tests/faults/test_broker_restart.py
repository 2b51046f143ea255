"""Redis restarted while delivery tasks wait in it: the messages are lost (nothing persisted),
and the beat sweeper still gets every outbox row delivered, in order per object, CDRs once.

The broker is a private redis-server on a free loopback port (`--save "" --appendonly no`: a
restart loses every key), never the machine's shared Redis; the worker, celery beat and this
process (what on_commit enqueues; helpers.publishing_to) all use it. The test does not depend
on the broker the rest of the suite uses, so it also runs on the filesystem-broker fallback; it is
skipped only where redis-server is not installed (CI has it).

To have task messages waiting in Redis at the restart, deterministically, the worker is stopped
while the changes are made: their delivery tasks are queued, and the test sees them in Redis's
list for the queue; after the restart that list holds none of them. Beat runs throughout, as in
production, and reconnects to the restarted broker by itself; once a worker runs again, the
sweeper (ocpi.tasks.sweep_outbox_task, every 0.5 s here instead of OUTBOX_SWEEP_SECONDS=30)
queues delivery for the partner, the only way left for the rows to go out. A last change shows
this process's own publishing reconnects to the restarted broker too.
"""

import shutil
from collections import Counter

import pytest
from django.db import transaction

from billing.cdrs import cdr_credit
from billing.models_cdrs import CDR
from ocpi.models import OutboxMessage
from stations.models import EVSE, Tariff
from tests.emsp_server import partner_of
from tests.factories import EVSEFactory, LocationFactory, TariffFactory
from tests.faults.helpers import (
    PrivateRedis,
    Processes,
    State,
    all_sent,
    charge,
    collapse_repeats,
    heard,
    own_queue,
    publishing_to,
    row_wire,
    stored_cdr_ids,
    until,
)
from tests.worker import DEFAULT_WORKER_ENV, stop_worker

pytestmark = [
    pytest.mark.worker,
    pytest.mark.usefixtures("transactional_db"),
    pytest.mark.skipif(
        shutil.which("redis-server") is None,
        reason="redis-server is not installed: this test restarts a private one (CI has it)",
    ),
]

DELIVER = "ocpi.tasks.deliver_outbox_task"
BASE = "/ocpi/emsp/2.2.1"
# Beat as in production, sweeping every 0.5 s; the simulator's tick is not wanted here.
BEAT_ENV = {"OUTBOX_SWEEP_SECONDS": "0.5", "SIMULATOR_TICK_SECONDS": "3600"}


@pytest.fixture
def broker(tmp_path, django_db_setup):
    """The private Redis, made this process's broker, with a fresh default queue on it."""
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        with publishing_to(server.url), own_queue() as queue:
            try:
                yield server, queue
            finally:
                server.ensure_running()  # for the queue's cleanup, whatever the test did
    finally:
        server.stop()


@pytest.fixture
def processes(tmp_path):
    started = Processes(tmp_path)
    yield started
    started.stop_all()


@pytest.fixture
def partner(make_partner, emsp):
    return partner_of(make_partner, emsp, request_timeout=10.0)


def test_a_redis_restart_loses_the_queued_tasks_and_the_sweeper_delivers_every_row(
    broker, processes, partner, emsp
):
    redis, queue = broker
    env = {**DEFAULT_WORKER_ENV, "CELERY_BROKER_URL": redis.url}
    beat_env = {**BEAT_ENV, "CELERY_BROKER_URL": redis.url}
    # given: a worker and beat on the private Redis, which have pushed LOC1 and tariff T1
    worker, _ = processes.worker_and_beat(queue=queue, env=env, beat_env=beat_env)
    with transaction.atomic():
        evse = EVSEFactory(location=LocationFactory(ocpi_id="LOC1", evses=0), uid="EVSE1")
    TariffFactory(ocpi_id="T1")
    charger = EVSEFactory(location=evse.location, uid="EVSE2", connectors__tariff_ids=["T1"])
    until(all_sent)
    assert emsp.stored["locations/NL/CPO/LOC1/EVSE2"]["uid"] == "EVSE2"
    pushed = OutboxMessage.objects.count()

    # when: with the worker stopped, EVSE1 changes status three times, the tariff changes, a
    # driver charges at EVSE2 (its CDR is made) and staff credit that CDR
    stop_worker(worker)
    evse = EVSE.objects.get(pk=evse.pk)
    for status in ("CHARGING", "AVAILABLE", "OUTOFORDER"):
        evse.status = status
        evse.save()
    tariff = Tariff.objects.get(ocpi_id="T1")
    tariff.tariff_alt_url = "https://cpo.example.com/tariffs/t1"
    tariff.save()
    cdr = charge(partner, charger, ref="1")
    credit = cdr_credit(cdr=cdr, reason="Refund")

    # then: their delivery tasks wait in Redis; the rows wait untried
    queued = list(OutboxMessage.objects.order_by("id")[pushed:])
    assert [(r.state, r.attempts) for r in queued] == [(State.PENDING, 0)] * len(queued)
    assert DELIVER in redis.queued_tasks(queue)

    # when: Redis restarts; the tasks are gone with it
    redis.restart()
    assert DELIVER not in redis.queued_tasks(queue)
    with emsp.lock:
        heard_before = len(emsp.requests)

    # when: a worker runs again, beside the same beat
    processes.worker(queue=queue, env=env)

    # then: the sweeper gets every row delivered, each once, in order per object
    until(all_sent)
    with emsp.lock:
        after = [heard(r) for r in emsp.requests[heard_before:]]
    assert Counter(after) == Counter(row_wire(r, partner) for r in queued)
    for key in {r.object_key for r in queued}:
        expected = [row_wire(r, partner) for r in queued if r.object_key == key]
        assert collapse_repeats([w for w in after if w in expected]) == expected, key
    statuses = [
        r.body["status"] for r in emsp.received("PATCH", f"{BASE}/locations/NL/CPO/LOC1/EVSE1")
    ]
    assert statuses[-3:] == ["CHARGING", "AVAILABLE", "OUTOFORDER"]
    assert emsp.stored["tariffs/NL/CPO/T1"]["tariff_alt_url"] == tariff.tariff_alt_url
    assert stored_cdr_ids(emsp) == [cdr.ocpi_id, credit.ocpi_id]
    assert set(CDR.objects.values_list("delivery", flat=True)) == {CDR.Delivery.DELIVERED}

    # when: one more change is committed here, publishing to the restarted broker
    evse.status = "AVAILABLE"
    evse.save()

    # then: it is delivered too
    until(lambda: emsp.stored["locations/NL/CPO/LOC1/EVSE1"]["status"] == "AVAILABLE")
    until(all_sent)
