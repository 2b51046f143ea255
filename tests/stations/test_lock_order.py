"""Two transactions saving EVSEs of one location at once wait for each other, never deadlock.

Every save locks the rows it bumps parents first (Location, then EVSE, then Connector), so the
second writer queues behind the first on the Location row instead of holding an EVSE the first
one needs next. PostgreSQL only: SQLite locks the whole database file, so the case cannot arise.
"""

import threading

import pytest
from django.db import connection, connections, transaction

from stations.models import EVSE
from tests.factories import EVSEFactory, LocationFactory

pytestmark = pytest.mark.django_db(transaction=True)

STEP = 1.0  # seconds the first writer holds its first EVSE before it saves the second


@pytest.fixture
def two_evses():
    if connection.vendor != "postgresql":
        pytest.skip("row locks: SQLite serialises writers on the whole file")
    location = LocationFactory(ocpi_id="LOC1", evses=0)
    return (
        EVSEFactory(location=location, uid="EVSE-A").pk,
        EVSEFactory(location=location, uid="EVSE-B").pk,
    )


def save_statuses(pks: list[int], status: str, *, first_saved=None, wait_for=None) -> None:
    """In one transaction, set each EVSE's status in the order given."""
    try:
        if wait_for is not None:
            wait_for.wait(timeout=10)
        with transaction.atomic():
            for n, pk in enumerate(pks):
                evse = EVSE.objects.get(pk=pk)
                evse.status = status
                evse.save()
                if n == 0 and first_saved is not None:
                    first_saved.set()
                    threading.Event().wait(STEP)  # the other writer starts meanwhile
    finally:
        connections.close_all()


def test_two_writers_in_opposite_order_both_commit(two_evses):
    # given: writer 1 saves A then B; writer 2 starts once A is saved and saves B then A
    a, b = two_evses
    a_saved = threading.Event()
    errors = []

    def run(*args, **kwargs):
        try:
            save_statuses(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the test reports what a writer raised
            errors.append(exc)

    first = threading.Thread(target=run, args=([a, b], "CHARGING"), kwargs={"first_saved": a_saved})
    second = threading.Thread(target=run, args=([b, a], "BLOCKED"), kwargs={"wait_for": a_saved})

    # when
    first.start()
    second.start()
    first.join(timeout=30)
    second.join(timeout=30)

    # then: no deadlock error; the second writer ran after the first and its values stand
    assert not first.is_alive()
    assert not second.is_alive()
    assert errors == []
    assert set(EVSE.objects.filter(pk__in=[a, b]).values_list("status", flat=True)) == {"BLOCKED"}
