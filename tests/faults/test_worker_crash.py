"""A Celery worker killed with SIGKILL (its whole process group) while it POSTs a CDR: once a
new worker runs, the CDR is delivered, and recorded as delivered, once.

The partner is the eMSP server on 127.0.0.1 (ocpi.sandbox_emsp) with a hook that holds our CDR
POST open until the test has killed the worker, so the kill lands mid-delivery, every time.

How the row comes back. The kill rolls back the delivery's transaction (its database connection
dies with the process), so the outbox row is PENDING and due again with no trace of the attempt,
and its lock is gone. The task message does not come back: it was taken with acks_late, but with
the whole worker gone nobody rejects it (task_reject_on_worker_lost requeues a message when a
prefork child dies under a living parent, not here), Redis hands an unacknowledged message to
another consumer only after its visibility timeout (1 h by default; helpers.own_queue drops this
orphan afterwards), and kombu's filesystem transport never does. What picks the row up is the
beat sweeper (ocpi.tasks.sweep_outbox_task; DESIGN.md "Life of a change", step 4), which queues
delivery for every partner with a due row. The test runs it as production does, as its own
`celery -A cpo_platform beat` process (sweeping every 0.5 s instead of OUTBOX_SWEEP_SECONDS=30).
In production beat runs all along; here it starts with the new worker, which only saves time:
before the kill a sweep finds the row locked by the dying delivery (PostgreSQL skips it; on the
SQLite fallback the delivery's IMMEDIATE transaction holds the write lock, so it waits).

What "once" means. The partner may have received the in-flight POST: the worker died after
sending it, before it could record the answer. Both cases are tested: the partner lost the POST
(its handler died with the connection), or it stored the CDR and its 201 went to a dead socket.
The new worker POSTs the CDR again, so the partner sees two POSTs, and "once" is: the partner
stores the CDR once (a second POST of a CDR it has is answered 409 "already exists", which
counts as delivered, as PROTOCOL.md advises for retried CDR POSTs), the CDR's one outbox row ends
SENT (not FAILED; no second row), and the CDR is DELIVERED, with the partner's Location when its
201 reached us. A sweep after that sends nothing more.
"""

import re
import signal
import threading

import pytest

from billing.models_cdrs import CDR
from ocpi.models import OutboxMessage
from tests.emsp_server import Recorded
from tests.factories import EVSEFactory, TariffFactory
from tests.faults.helpers import DEADLINE, Processes, State, charge, kill, own_queue, until
from tests.faults.helpers import stored_cdr_ids as stored
from tests.worker import DEFAULT_WORKER_ENV, WorkerProcess

pytestmark = [pytest.mark.worker, pytest.mark.usefixtures("transactional_db")]

CDRS = "/ocpi/emsp/2.2.1/cdrs"
# Beat as in production, sweeping every 0.5 s; the simulator's tick is not wanted here.
BEAT_ENV = {"OUTBOX_SWEEP_SECONDS": "0.5", "SIMULATOR_TICK_SECONDS": "3600"}


class HeldPost:
    """An eMSP request hook: holds the first CDR POST open until `release` is set; then the
    eMSP processes it, or drops it (`drop`: its handler dies and nothing is stored)."""

    def __init__(self, *, drop: bool):
        self.drop = drop
        self.arrived = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._held = False

    def __call__(self, request: Recorded) -> None:
        if request.method != "POST" or not request.path.startswith(CDRS):
            return
        with self._lock:
            if self._held:
                return
            self._held = True
        self.arrived.set()
        self.release.wait(timeout=DEADLINE)
        if self.drop:
            raise ConnectionAbortedError("test: the eMSP lost the in-flight POST")


@pytest.fixture
def partner(make_partner, emsp):
    endpoints = [{"identifier": "cdrs", "role": "RECEIVER", "url": emsp.endpoint("cdrs")}]
    partner, _ = make_partner("eMSP", endpoints=endpoints, request_timeout=DEADLINE)
    emsp.accepted_tokens.add(partner.outbound_token)
    return partner


@pytest.fixture
def charger():
    TariffFactory(ocpi_id="T1")
    return EVSEFactory(connectors__tariff_ids=["T1"])


@pytest.fixture
def queue(django_db_setup):
    with own_queue() as name:
        yield name


@pytest.fixture
def processes(tmp_path):
    started = Processes(tmp_path)
    yield started
    started.stop_all()


def sweeps_done(worker: WorkerProcess) -> int:
    """How many sweeps the worker has finished (Celery logs each task's success)."""
    return len(re.findall(r"sweep_outbox_task\[[^]]+\] succeeded", worker.log()))


@pytest.mark.parametrize("in_flight", ["lost", "processed"])
def test_a_worker_killed_mid_post_leaves_the_cdr_delivered_once_by_the_next_worker(
    in_flight, partner, emsp, charger, queue, processes
):
    # given: a worker POSTs a CDR, and the partner holds the request open
    hold = HeldPost(drop=in_flight == "lost")
    emsp.on_request = hold
    try:
        first = processes.worker(queue=queue, env=DEFAULT_WORKER_ENV)
        cdr = charge(partner, charger, ref="1")
        assert hold.arrived.wait(DEADLINE), "the worker never POSTed the CDR"

        # when: the worker is killed mid-request; then the partner drops the request, or
        # stores the CDR and answers to a dead socket
        assert kill(first) == -signal.SIGKILL
    finally:
        hold.release.set()
    if in_flight == "processed":
        until(lambda: stored(emsp) == [cdr.ocpi_id])

    # then: the kill undid the attempt: the row is pending and due, as before it
    (row,) = OutboxMessage.objects.all()
    assert (row.module, row.state, row.attempts, row.sent_at) == ("cdrs", State.PENDING, 0, None)
    assert CDR.objects.get(pk=cdr.pk).delivery == CDR.Delivery.PENDING

    # when: a new worker runs, with beat sweeping the outbox
    second, _ = processes.worker_and_beat(queue=queue, env=DEFAULT_WORKER_ENV, beat_env=BEAT_ENV)

    # then: the CDR is delivered, its one row SENT; the partner stored it once, after two POSTs
    until(lambda: CDR.objects.filter(pk=cdr.pk, delivery=CDR.Delivery.DELIVERED).exists())
    (row,) = OutboxMessage.objects.all()
    assert (row.state, row.attempts) == (State.SENT, 1)
    assert stored(emsp) == [cdr.ocpi_id]
    assert [r.body["id"] for r in emsp.received("POST", CDRS)] == [cdr.ocpi_id] * 2
    cdr.refresh_from_db()
    if in_flight == "lost":
        location = f"{emsp.endpoint('cdrs')}/1"
        assert (row.response_status, cdr.partner_location_url) == (201, location)
    else:  # the partner had it: 409, and no Location to check it at
        assert (row.response_status, cdr.partner_location_url) == (409, "")
        assert row.last_error.startswith("Partner already had the CDR")

    # then: a later sweep finds nothing due and sends nothing
    done = sweeps_done(second)
    until(lambda: sweeps_done(second) > done)
    assert len(emsp.received("POST", CDRS)) == 2
    assert OutboxMessage.objects.get().state == State.SENT
