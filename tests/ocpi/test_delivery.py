"""Delivering the push outbox over real HTTP to the test eMSP (tests/emsp_server.py)."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from ocpi import tasks
from ocpi.delivery import (
    backoff_seconds,
    outbox_deliver,
    outbox_partners_due,
    outbox_retry,
    outbox_skip,
)
from ocpi.models import OutboxMessage, Partner
from ocpi.tokens import encode_for_header
from stations.models import EVSE, Location
from tests.emsp_server import EMSPServer, partner_of, receiver_endpoints
from tests.factories import LocationFactory, TariffFactory

pytestmark = pytest.mark.django_db

State = OutboxMessage.State
BASE = "/ocpi/emsp/2.2.1"
LATER = "2030-01-01T00:00:00Z"


@pytest.fixture(autouse=True)
def _backoff(settings):
    settings.OUTBOX_BACKOFF_BASE = 10.0
    settings.OUTBOX_BACKOFF_MAX = 60.0


@pytest.fixture
def partner(make_partner, emsp):
    return partner_of(make_partner, emsp, request_timeout=1.0)


@pytest.fixture
def published(partner, emsp):
    """LOC1 with EVSE1 (connector 1), already pushed to the eMSP; returns the EVSE."""
    location = LocationFactory(ocpi_id="LOC1", evses=0)
    evse = EVSE.objects.create(location=location, uid="EVSE1")
    evse.connectors.create(
        ocpi_id="1", standard="IEC_62196_T2", format="SOCKET", power_type="AC_3_PHASE",
        max_voltage=230, max_amperage=32,
    )  # fmt: skip
    outbox_deliver(partner_id=partner.pk)
    assert not OutboxMessage.objects.filter(state=State.PENDING).exists()
    assert "locations/NL/CPO/LOC1/EVSE1" in emsp.stored
    OutboxMessage.objects.all().delete()
    emsp.requests.clear()
    return EVSE.objects.get(pk=evse.pk)


def put_then_patch(partner: Partner) -> None:
    """An unsent PUT of LOC1 (its name cleared) and, behind it, an unsent PATCH of LOC1."""
    location = Location.objects.get(ocpi_id="LOC1")
    location.name = ""
    location.save()
    OutboxMessage.objects.create(
        partner=partner, module="locations", object_key="locations/NL/CPO/LOC1", method="PATCH",
        path="NL/CPO/LOC1", body=json.dumps({"address": "Damrak 1", "last_updated": LATER}),
    )  # fmt: skip


def set_status(evse: EVSE, *statuses: str) -> None:
    for status in statuses:
        evse.status = status
        evse.save()


def sent(emsp: EMSPServer) -> list[tuple[str, str]]:
    return [(r.method, r.path.removeprefix(BASE)) for r in emsp.received()]


def rows() -> list[OutboxMessage]:
    return list(OutboxMessage.objects.order_by("id"))


# --- success -------------------------------------------------------------------------------------
def test_a_new_location_reaches_the_emsp_as_a_put_and_the_row_is_sent(partner, emsp):
    # given
    LocationFactory(ocpi_id="LOC1", evses=2)

    # when
    report = outbox_deliver(partner_id=partner.pk)

    # then
    assert sent(emsp) == [("PUT", "/locations/NL/CPO/LOC1")]
    (request,) = emsp.received()
    assert request.headers["Authorization"] == "Token " + encode_for_header(
        partner.outbound_token, base64_encoded=True
    )
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["OCPI-from-country-code"] == "NL"
    assert request.headers["OCPI-to-party-id"] == "EMS"
    assert request.body["id"] == "LOC1"
    assert len(request.body["evses"]) == 2
    (row,) = OutboxMessage.objects.filter(state=State.SENT)
    assert (row.attempts, row.response_status, row.response_ocpi_status) == (1, 201, 1000)
    assert row.sent_at is not None
    assert (report.sent, report.deferred, report.failed) == (1, 0, 0)


def test_rows_of_one_object_arrive_in_order(published, partner, emsp):
    # given
    set_status(published, "CHARGING", "AVAILABLE", "OUTOFORDER")

    # when
    outbox_deliver(partner_id=partner.pk)

    # then
    assert [r.body["status"] for r in emsp.received("PATCH")] == [
        "CHARGING",
        "AVAILABLE",
        "OUTOFORDER",
    ]
    assert emsp.stored["locations/NL/CPO/LOC1/EVSE1"]["status"] == "OUTOFORDER"
    assert {r.state for r in rows()} == {State.SENT}


def test_the_body_is_utf8_json_with_exact_decimals(partner, emsp):
    # given
    LocationFactory(ocpi_id="LOC1", name="Łódź Fabryczna – Ø", evses=1)
    TariffFactory(ocpi_id="T1")

    # when
    outbox_deliver(partner_id=partner.pk)

    # then
    location = emsp.received("PUT", f"{BASE}/locations")[0].body
    assert location["name"] == "Łódź Fabryczna – Ø"
    (tariff,) = emsp.received("PUT", f"{BASE}/tariffs/NL/CPO/T1")
    assert tariff.body["elements"][0]["price_components"][0]["price"] == 0.3
    assert '"price":0.3000' in OutboxMessage.objects.get(module="tariffs", state=State.SENT).body


def test_running_delivery_twice_is_harmless(published, partner, emsp):
    # given
    set_status(published, "CHARGING")
    outbox_deliver(partner_id=partner.pk)

    # when
    report = outbox_deliver(partner_id=partner.pk)

    # then
    assert sent(emsp) == [("PATCH", "/locations/NL/CPO/LOC1/EVSE1")]
    assert not report.did_work


def test_the_url_comes_from_the_partners_current_endpoints(published, partner, emsp):
    # given: a row written while the partner had its old endpoints
    set_status(published, "CHARGING")
    other = EMSPServer()
    other.accepted_tokens.add(partner.outbound_token)
    other.stored["locations/NL/CPO/LOC1/EVSE1"] = {"uid": "EVSE1"}
    try:
        partner.endpoints = receiver_endpoints(other)
        partner.save()

        # when
        outbox_deliver(partner_id=partner.pk)

        # then
        assert emsp.received() == []
        assert [r.path for r in other.received("PATCH")] == [f"{BASE}/locations/NL/CPO/LOC1/EVSE1"]
    finally:
        other.stop()


def test_the_location_header_of_a_post_is_kept(partner, emsp):
    # given: a CDR POST (the outbox rows of other modules are delivered the same way)
    OutboxMessage.objects.create(
        partner=partner, module="cdrs", object_key="cdrs/NL/CPO/CDR1", method="POST",
        body=json.dumps({"id": "CDR1"}),
    )  # fmt: skip

    # when
    outbox_deliver(partner_id=partner.pk)

    # then
    (row,) = rows()
    assert row.state == State.SENT
    assert row.response_location == f"{emsp.endpoint('cdrs')}/1"
    assert sent(emsp) == [("POST", "/cdrs")]


# --- partner unavailable: backoff ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("http500", "HTTP 500"),
        ("ocpi3000", "OCPI 3000"),
        ("timeout", "Timeout after 1s"),
        ("down", "Cannot reach"),
    ],
)
def test_an_unavailable_partner_gets_the_row_again_after_a_backoff(
    published, partner, emsp, mode, error
):
    # given
    set_status(published, "CHARGING", "AVAILABLE")
    if mode == "down":
        emsp.stop()
    else:
        emsp.mode = mode
        emsp.timeout_seconds = 2.0
    before = timezone.now()

    # when
    report = outbox_deliver(partner_id=partner.pk)

    # then: the first row waits 10 s; the second one is not tried before it
    first, second = rows()[-2:]
    assert (first.state, first.attempts) == (State.PENDING, 1)
    assert error in first.last_error
    assert before + timedelta(seconds=10) <= first.next_attempt_at
    assert first.next_attempt_at <= timezone.now() + timedelta(seconds=10)
    assert (second.state, second.attempts) == (State.PENDING, 0)
    assert len(emsp.received()) == (0 if mode == "down" else 1)
    assert (report.deferred, report.next_due_at) == (1, first.next_attempt_at)


def test_backoff_doubles_per_attempt_up_to_the_maximum(settings):
    # given
    settings.OUTBOX_BACKOFF_BASE = 5
    settings.OUTBOX_BACKOFF_MAX = 60

    # then
    assert [backoff_seconds(n) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]


def test_a_later_attempt_waits_longer(published, partner, emsp):
    # given: the first attempt failed already
    set_status(published, "CHARGING")
    emsp.mode = "http500"
    outbox_deliver(partner_id=partner.pk)
    OutboxMessage.objects.filter(state=State.PENDING).update(next_attempt_at=timezone.now())
    before = timezone.now()

    # when
    outbox_deliver(partner_id=partner.pk)

    # then
    (row,) = OutboxMessage.objects.filter(state=State.PENDING)
    assert row.attempts == 2
    assert before + timedelta(seconds=20) <= row.next_attempt_at
    assert row.next_attempt_at <= timezone.now() + timedelta(seconds=20)


def test_after_the_backoff_the_rows_go_out_in_order(published, partner, emsp):
    # given: the partner was down for the first attempt
    set_status(published, "CHARGING", "AVAILABLE")
    emsp.mode = "http500"
    outbox_deliver(partner_id=partner.pk)
    emsp.mode = "ok"

    # when: delivery before the row is due does nothing
    early = outbox_deliver(partner_id=partner.pk)

    # then
    assert not early.did_work
    assert len(emsp.received()) == 1

    # when: the row is due
    OutboxMessage.objects.filter(state=State.PENDING).update(next_attempt_at=timezone.now())
    outbox_deliver(partner_id=partner.pk)

    # then
    assert [r.body["status"] for r in emsp.received("PATCH")] == [
        "CHARGING",  # the failed attempt
        "CHARGING",
        "AVAILABLE",
    ]
    assert {r.state for r in rows()} == {State.SENT}


def test_other_objects_are_delivered_while_one_waits(published, partner, emsp):
    # given: the EVSE's row waits for its backoff; a tariff is new
    set_status(published, "CHARGING", "AVAILABLE")
    waiting = OutboxMessage.objects.filter(state=State.PENDING).order_by("id").first()
    OutboxMessage.objects.filter(pk=waiting.pk).update(
        attempts=1, next_attempt_at=timezone.now() + timedelta(minutes=1)
    )
    TariffFactory(ocpi_id="T1")

    # when
    report = outbox_deliver(partner_id=partner.pk)

    # then
    assert sent(emsp) == [("PUT", "/tariffs/NL/CPO/T1")]
    assert report.next_due_at == OutboxMessage.objects.get(pk=waiting.pk).next_attempt_at


def test_every_object_is_tried_once_when_the_partner_fails(published, partner, emsp):
    # given: two objects with two rows each
    set_status(published, "CHARGING", "AVAILABLE")
    TariffFactory(ocpi_id="T1")
    OutboxMessage.objects.exclude(state=State.PENDING).delete()
    tariff_row = OutboxMessage.objects.get(module="tariffs")
    OutboxMessage.objects.create(
        partner=partner, module="tariffs", object_key=tariff_row.object_key, method="PUT",
        path=tariff_row.path, body=tariff_row.body,
    )  # fmt: skip
    emsp.mode = "http500"

    # when
    report = outbox_deliver(partner_id=partner.pk)

    # then: the head of each object was tried, the rows behind them were not
    assert sorted(sent(emsp)) == [
        ("PATCH", "/locations/NL/CPO/LOC1/EVSE1"),
        ("PUT", "/tariffs/NL/CPO/T1"),
    ]
    assert [r.attempts for r in rows()] == [1, 0, 1, 0]
    assert report.deferred == 2


# --- partner rejects: failed, object blocked -----------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("unauthorized", "HTTP 401, OCPI 2000"),
        ("ocpi2001", "HTTP 200, OCPI 2001"),
        ("html", "is not JSON"),
    ],
)
def test_a_rejected_put_fails_and_blocks_its_object(published, partner, emsp, mode, error):
    # given: a PUT (name cleared) and a PATCH of the same location
    put_then_patch(partner)
    if mode == "unauthorized":
        emsp.accepted_tokens.discard(partner.outbound_token)
    else:
        emsp.mode = mode

    # when
    report = outbox_deliver(partner_id=partner.pk)

    # then
    put, patch = rows()[-2:]
    assert (put.method, put.state, put.attempts) == ("PUT", State.FAILED, 1)
    assert error in put.last_error
    assert (patch.method, patch.state, patch.attempts) == ("PATCH", State.PENDING, 0)
    assert sent(emsp) == [("PUT", "/locations/NL/CPO/LOC1")]
    assert report.failed == 1
    assert report.next_due_at is None

    # when: delivery runs again
    emsp.mode = "ok"
    emsp.accepted_tokens.add(partner.outbound_token)
    outbox_deliver(partner_id=partner.pk)

    # then: the PATCH still waits behind the failed PUT
    assert len(emsp.received()) == 1
    assert outbox_partners_due() == []


def test_staff_retry_sends_the_failed_row_and_then_the_rest(published, partner, emsp):
    # given
    put_then_patch(partner)
    emsp.mode = "ocpi2001"
    outbox_deliver(partner_id=partner.pk)
    failed = OutboxMessage.objects.get(state=State.FAILED)
    emsp.mode = "ok"

    # when
    assert outbox_retry(message_ids=[failed.pk]) == 1
    outbox_deliver(partner_id=partner.pk)

    # then
    assert sent(emsp)[1:] == [
        ("PUT", "/locations/NL/CPO/LOC1"),
        ("PATCH", "/locations/NL/CPO/LOC1"),
    ]
    assert {r.state for r in rows()} == {State.SENT}


def test_staff_skip_unblocks_the_later_rows(published, partner, emsp):
    # given
    put_then_patch(partner)
    emsp.mode = "ocpi2001"
    outbox_deliver(partner_id=partner.pk)
    failed = OutboxMessage.objects.get(state=State.FAILED)
    emsp.mode = "ok"

    # when
    assert outbox_skip(message_ids=[failed.pk]) == 1
    outbox_deliver(partner_id=partner.pk)

    # then
    failed.refresh_from_db()
    assert failed.state == State.SUPERSEDED
    assert failed.last_error.startswith("Skipped by staff.")
    assert sent(emsp)[1:] == [("PATCH", "/locations/NL/CPO/LOC1")]


def test_a_rejected_patch_is_resent_as_a_put_of_the_current_object(published, partner, emsp):
    # given: the eMSP lost the EVSE
    set_status(published, "CHARGING")
    del emsp.stored["locations/NL/CPO/LOC1/EVSE1"]

    # when
    report = outbox_deliver(partner_id=partner.pk)

    # then
    assert sent(emsp) == [
        ("PATCH", "/locations/NL/CPO/LOC1/EVSE1"),
        ("PUT", "/locations/NL/CPO/LOC1/EVSE1"),
    ]
    put = emsp.received("PUT")[0].body
    assert (put["uid"], put["status"], len(put["connectors"])) == ("EVSE1", "CHARGING", 1)
    (row,) = OutboxMessage.objects.filter(path="NL/CPO/LOC1/EVSE1")
    assert (row.method, row.state, row.attempts) == ("PUT", State.SENT, 2)
    assert "PATCH rejected" in row.last_error
    assert report.converted == 1
    assert report.sent == 1


def test_a_partner_without_the_endpoint_any_more_fails_the_row(published, partner, emsp):
    # given
    set_status(published, "CHARGING")
    partner.endpoints = receiver_endpoints(emsp, modules=("tariffs",))
    partner.save()

    # when
    outbox_deliver(partner_id=partner.pk)

    # then
    (row,) = OutboxMessage.objects.filter(state=State.FAILED)
    assert "no RECEIVER endpoint for locations" in row.last_error
    assert emsp.received() == []


def test_a_partner_that_is_not_registered_gets_nothing(published, partner, emsp):
    # given
    set_status(published, "CHARGING")
    Partner.objects.filter(pk=partner.pk).update(status=Partner.Status.SUSPENDED)

    # when
    report = outbox_deliver(partner_id=partner.pk)

    # then
    assert emsp.received() == []
    assert not report.did_work
    assert OutboxMessage.objects.filter(state=State.PENDING).count() == 1
    assert outbox_partners_due() == []


# --- tasks ---------------------------------------------------------------------------------------
def test_the_task_schedules_itself_for_the_next_due_row(published, partner, emsp, monkeypatch):
    # given
    set_status(published, "CHARGING")
    emsp.stop()
    scheduled = []
    monkeypatch.setattr(
        tasks.deliver_outbox_task,
        "apply_async",
        lambda args, countdown: scheduled.append((args, countdown)),
    )

    # when
    tasks.deliver_outbox_task(partner.pk)

    # then
    ((args, countdown),) = scheduled
    assert args == (partner.pk,)
    assert 9 <= countdown <= 10


def test_the_task_does_not_reschedule_when_nothing_was_done(published, partner, monkeypatch):
    # given: a row waiting for its backoff
    set_status(published, "CHARGING")
    OutboxMessage.objects.filter(state=State.PENDING).update(
        next_attempt_at=timezone.now() + timedelta(seconds=30)
    )
    scheduled = []
    monkeypatch.setattr(
        tasks.deliver_outbox_task, "apply_async", lambda *a, **kw: scheduled.append(kw)
    )

    # when
    tasks.deliver_outbox_task(partner.pk)

    # then
    assert scheduled == []


def test_the_sweeper_queues_every_registered_partner_with_due_rows(make_partner, monkeypatch):
    # given
    def partner_with_row(name, *, due=True, state=State.PENDING, status=Partner.Status.REGISTERED):
        partner, _ = make_partner(name, status=status)
        OutboxMessage.objects.create(
            partner=partner, module="locations", object_key=f"locations/NL/CPO/{name}",
            method="PUT", state=state,
            next_attempt_at=timezone.now() + timedelta(seconds=0 if due else 60),
        )  # fmt: skip
        return partner

    due = partner_with_row("due")
    partner_with_row("later", due=False)
    partner_with_row("sent", state=State.SENT)
    partner_with_row("failed", state=State.FAILED)
    partner_with_row("suspended", status=Partner.Status.SUSPENDED)
    blocked = partner_with_row("blocked", state=State.FAILED)
    OutboxMessage.objects.create(
        partner=blocked, module="locations", object_key="locations/NL/CPO/blocked", method="PATCH"
    )
    queued = []
    monkeypatch.setattr(tasks.deliver_outbox_task, "delay", queued.append)

    # when
    count = tasks.sweep_outbox_task()

    # then
    assert queued == [due.pk]
    assert count == 1


# --- admin -------------------------------------------------------------------------------------
def test_the_admin_lists_rows_with_their_state_and_error(admin_client, published, partner, emsp):
    # given
    put_then_patch(partner)
    emsp.mode = "ocpi2001"
    outbox_deliver(partner_id=partner.pk)

    # when
    response = admin_client.get(
        "/admin/ocpi/outboxmessage/", {"q": "locations/NL/CPO/LOC1", "blocked": "yes"}
    )

    # then: the PATCH waits behind the failed PUT
    assert response.status_code == 200
    assert list(response.context["cl"].queryset.values_list("method", "state")) == [
        ("PATCH", State.PENDING)
    ]
    failed = OutboxMessage.objects.get(state=State.FAILED)
    page = admin_client.get(f"/admin/ocpi/outboxmessage/{failed.pk}/change/")
    assert page.status_code == 200
    assert "OCPI 2001" in page.content.decode()


def test_the_admin_retry_action_queues_delivery_after_commit(
    admin_client, published, partner, emsp, monkeypatch, django_capture_on_commit_callbacks
):
    # given
    put_then_patch(partner)
    emsp.mode = "ocpi2001"
    outbox_deliver(partner_id=partner.pk)
    failed = OutboxMessage.objects.get(state=State.FAILED)
    queued = []
    monkeypatch.setattr(tasks.deliver_outbox_task, "delay", queued.append)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/ocpi/outboxmessage/",
            {"action": "retry_now", "_selected_action": [failed.pk]},
        )

    # then
    assert response.status_code == 302
    failed.refresh_from_db()
    assert failed.state == State.PENDING
    assert queued == [partner.pk]


def test_the_admin_skip_action_supersedes_the_row(admin_client, published, partner, emsp):
    # given
    put_then_patch(partner)
    emsp.mode = "ocpi2001"
    outbox_deliver(partner_id=partner.pk)
    failed = OutboxMessage.objects.get(state=State.FAILED)

    # when
    admin_client.post(
        "/admin/ocpi/outboxmessage/", {"action": "skip", "_selected_action": [failed.pk]}
    )

    # then
    failed.refresh_from_db()
    assert failed.state == State.SUPERSEDED
    assert outbox_partners_due() == [partner.pk]
