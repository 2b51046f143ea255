"""Async results (PROTOCOL.md §4.6, §10.11): the charger's answer becomes a CommandResult POSTed,
bare (no envelope), to the command's response_url through the durable outbox: mapped, stored,
sent once, with the command's X-Correlation-ID; TIMEOUT when the charger stays silent; and the
POST reaching a real eMSP server over HTTP.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Reservation, Session
from ocpi import jsonutil
from ocpi.commands import answer_window, commands_expire, reservation_end
from ocpi.datetimes import format_datetime
from ocpi.delivery import outbox_deliver
from ocpi.models import CommandRequest, OutboxMessage
from stations.gateway import transaction_started
from stations.models import EVSE
from tests.contract import validate_ocpi
from tests.ocpi.gateway_double import (
    client_for,
    make_network,
    make_session,
    recording_gateway,
    token_body,
)
from tests.worker import celery_worker, celery_worker_env  # noqa: F401  (fixtures)

COMMANDS = "/ocpi/cpo/2.2.1/commands"
BASE = "/ocpi/emsp/2.2.1"


@pytest.fixture
def charger(settings):
    yield from recording_gateway(settings)


@pytest.fixture
def network(db):
    return make_network()


@pytest.fixture(autouse=True)
def _timeout(settings):
    settings.OCPI_COMMAND_TIMEOUT = 30


@pytest.fixture
def partner(make_partner, emsp):
    partner, token = make_partner("eMSP", country_code="DE", party_id="EMS", request_timeout=2.0)
    emsp.accepted_tokens.add(partner.outbound_token)
    return partner, token


def post(client, command: str, body: dict):
    return client.post(
        f"{COMMANDS}/{command}", data=jsonutil.dumps(body), content_type="application/json"
    )


def start(partner_token: str, response_url: str) -> CommandRequest:
    response = post(
        client_for(partner_token),
        "START_SESSION",
        {"response_url": response_url, "token": token_body(), "location_id": "LOC1"},
    )
    assert jsonutil.loads(response.content)["data"]["result"] == "ACCEPTED"
    return CommandRequest.objects.get(kind="START_SESSION")


def reserve(partner_token: str, response_url: str) -> CommandRequest:
    body = {
        "response_url": response_url,
        "token": token_body(),
        "expiry_date": format_datetime(timezone.now() + timedelta(minutes=30)),
        "reservation_id": "RES1",
        "location_id": "LOC1",
        "evse_uid": "EVSE1",
    }
    assert (
        jsonutil.loads(post(client_for(partner_token), "RESERVE_NOW", body).content)["data"][
            "result"
        ]
        == "ACCEPTED"
    )
    return CommandRequest.objects.filter(kind="RESERVE_NOW").latest("created")


def the_result() -> tuple[OutboxMessage, dict]:
    row = OutboxMessage.objects.get()
    return row, jsonutil.loads(row.body)


# --- mapping and storing ---------------------------------------------------------------------
def said(reason: str) -> list[dict]:
    return [{"language": "en", "text": f"The charger answered: {reason}"}]


@pytest.mark.parametrize(
    ("accepted", "reason", "body"),
    [
        (True, "", {"result": "ACCEPTED"}),
        (False, "OCCUPIED", {"result": "EVSE_OCCUPIED", "message": said("OCCUPIED")}),
        (False, "FAULTED", {"result": "EVSE_INOPERATIVE", "message": said("FAULTED")}),
        (False, "out of order", {"result": "EVSE_INOPERATIVE", "message": said("out of order")}),
        (False, "TIMEOUT", {"result": "TIMEOUT", "message": said("TIMEOUT")}),
        (
            False,
            "UNKNOWN_TRANSACTION",
            {"result": "FAILED", "message": said("UNKNOWN_TRANSACTION")},
        ),
        (False, "NOT_SUPPORTED", {"result": "NOT_SUPPORTED", "message": said("NOT_SUPPORTED")}),
        (False, "", {"result": "REJECTED"}),
        (False, "SOMETHING_NEW", {"result": "REJECTED", "message": said("SOMETHING_NEW")}),
    ],
)
def test_the_chargers_answer_becomes_a_bare_command_result_for_the_response_url(
    partner, network, charger, accepted, reason, body
):
    # given
    url = "https://emsp.example.com/ocpi/emsp/2.2.1/commands/START_SESSION/abc"
    command = start(partner[1], url)

    # when
    charger.answer(accepted=accepted, reason=reason)

    # then: stored on the request
    command.refresh_from_db()
    assert (command.state, command.result) == ("ANSWERED", body["result"])
    assert command.answered_at is not None
    # and one POST of the bare CommandResult (no envelope) to the response_url, in the outbox
    row, sent = the_result()
    assert (row.partner, row.method, row.path) == (partner[0], "POST", url)
    assert (row.module, row.interface_role, row.state) == ("commands", "RESPONSE", "PENDING")
    assert row.correlation_id == "corr-1234"
    assert sent == body
    validate_ocpi(sent, "CommandResult")


def test_a_late_or_repeated_answer_changes_nothing(partner, network, charger):
    # given: answered already
    command = start(partner[1], "https://emsp.example.com/r/1")
    charger.answer(accepted=True)

    # when: the charger answers again, differently
    charger.answer(accepted=False, reason="FAULTED")

    # then
    command.refresh_from_db()
    assert command.result == "ACCEPTED"
    assert OutboxMessage.objects.count() == 1


def test_answers_to_requests_that_are_not_ours_are_ignored(partner, network, charger):
    # when: e.g. a start from the admin's simulator button
    charger.answer(accepted=True, request_ref="not-a-command")

    # then
    assert not OutboxMessage.objects.exists()


def test_the_session_a_start_session_led_to_carries_its_token_and_is_noted_on_it(
    partner, network, charger
):
    # given: an accepted START_SESSION with an authorization reference
    response = post(
        client_for(partner[1]),
        "START_SESSION",
        {
            "response_url": "https://emsp.example.com/r/s",
            "token": token_body(),
            "location_id": "LOC1",
            "evse_uid": "EVSE1",
            "authorization_reference": "AUTH-77",
        },
    )
    assert jsonutil.loads(response.content)["data"]["result"] == "ACCEPTED"
    method, call = charger.only_call()
    charger.answer(accepted=True)
    evse = EVSE.objects.get(pk=call["evse_pk"])

    # when: the charger reports the transaction it started for that request
    transaction_started.send(
        sender=EVSE, transaction_ref="TX-77", evse=evse, connector=evse.connectors.get(),
        id_tag="DRIVER1", meter_start_wh=Decimal(0), timestamp=timezone.now(),
        request_ref=call["request_ref"], reservation_ref=None,
    )  # fmt: skip

    # then: billing made it the partner's session, with the command's token and reference
    session = Session.objects.get(transaction_ref="TX-77")
    assert session.partner == partner[0]
    assert (session.auth_method, session.authorization_reference) == ("COMMAND", "AUTH-77")
    assert session.cdr_token["uid"] == "DRIVER1"
    # and the request shows it
    assert CommandRequest.objects.get().session_ocpi_id == session.ocpi_id


# --- timeouts --------------------------------------------------------------------------------
def test_the_answer_window_closes_before_the_announced_timeout():
    assert answer_window(30) == 25
    assert answer_window(6) == 5
    assert 0 < answer_window(1) < 1


def test_a_command_the_charger_does_not_answer_times_out(partner, network, charger):
    # given
    command = start(partner[1], "https://emsp.example.com/r/2")

    # when: beat runs before and after the window closes
    early = commands_expire(now=command.created + timedelta(seconds=24))
    late = commands_expire(now=command.created + timedelta(seconds=25))

    # then
    assert (early, late) == (0, 1)
    command.refresh_from_db()
    assert (command.state, command.result) == ("TIMED_OUT", "TIMEOUT")
    row, body = the_result()
    assert body == {
        "result": "TIMEOUT",
        "message": [{"language": "en", "text": "The charger did not answer within 30 seconds"}],
    }

    # when: the charger answers after all
    charger.answer(accepted=True)

    # then: the eMSP was told TIMEOUT already; nothing more is sent
    command.refresh_from_db()
    assert command.result == "TIMEOUT"
    assert OutboxMessage.objects.count() == 1
    assert commands_expire(now=command.created + timedelta(hours=1)) == 0


# --- reservations ----------------------------------------------------------------------------
def test_an_accepted_reservation_becomes_active_and_a_rejected_one_rejected(
    partner, network, charger
):
    # given
    reserve(partner[1], "https://emsp.example.com/r/res")

    # when
    charger.answer(accepted=True)

    # then
    assert Reservation.objects.get().status == "ACTIVE"

    # when: replaced, and the charger refuses the new one
    reserve(partner[1], "https://emsp.example.com/r/res2")
    charger.answer(accepted=False, reason="OCCUPIED")

    # then
    assert Reservation.objects.get().status == "REJECTED"


def test_a_cancelled_reservation_is_cancelled_when_the_charger_accepts(partner, network, charger):
    # given: an active reservation
    reserve(partner[1], "https://emsp.example.com/r/res")
    charger.answer(accepted=True)
    cancel = {"response_url": "https://emsp.example.com/r/cancel", "reservation_id": "RES1"}
    post(client_for(partner[1]), "CANCEL_RESERVATION", cancel)

    # when: the charger ends it (as a charger reports a cancellation) and answers the command
    reservation = Reservation.objects.get()
    reservation_end(reservation_ref=reservation.pk, reason="CANCELLED")
    charger.answer(accepted=True)

    # then: cancelled; the eMSP gets ACCEPTED for its CANCEL, and no CANCELED_RESERVATION
    assert Reservation.objects.get().status == "CANCELLED"
    results = [jsonutil.loads(r.body)["result"] for r in OutboxMessage.objects.order_by("id")]
    assert results == ["ACCEPTED", "ACCEPTED"]


def test_a_reservation_the_cpo_had_to_cancel_is_announced_at_the_reserve_now_url(
    partner, network, charger
):
    # given
    command = reserve(partner[1], "https://emsp.example.com/r/res")
    charger.answer(accepted=True)

    # when: the charger cancels it on its own (e.g. it went out of order)
    reservation_end(reservation_ref=Reservation.objects.get().pk, reason="CANCELLED")

    # then
    assert Reservation.objects.get().status == "CANCELLED"
    last = OutboxMessage.objects.order_by("id").last()
    assert last.path == "https://emsp.example.com/r/res"
    assert last.object_key == f"commands/{command.request_ref}"  # after the ACCEPTED, in order
    assert jsonutil.loads(last.body)["result"] == "CANCELED_RESERVATION"


def test_an_expired_reservation_expires_quietly(partner, network, charger):
    # given
    reserve(partner[1], "https://emsp.example.com/r/res")
    charger.answer(accepted=True)

    # when
    reservation_end(reservation_ref=str(Reservation.objects.get().pk), reason="EXPIRED")

    # then
    assert Reservation.objects.get().status == "EXPIRED"
    assert OutboxMessage.objects.count() == 1  # only the RESERVE_NOW's ACCEPTED


# --- over real HTTP ----------------------------------------------------------------------------
def test_the_command_result_reaches_the_emsp_over_http(partner, network, charger, emsp):
    # given: a START_SESSION with a response_url at the eMSP, accepted by the charger
    url = emsp.response_url("commands", "START_SESSION")
    command = start(partner[1], url)
    charger.answer(accepted=True)

    # when: the outbox delivers
    report = outbox_deliver(partner_id=partner[0].pk)

    # then: the eMSP got the bare CommandResult at its response_url
    assert report.sent == 1
    (received,) = emsp.received("POST")
    assert url.endswith(received.path)
    assert received.body == {"result": "ACCEPTED"}
    assert received.headers["X-Correlation-ID"] == command.correlation_id == "corr-1234"
    assert received.headers["Content-Type"] == "application/json"
    row = OutboxMessage.objects.get()
    assert (row.state, row.response_status, row.response_ocpi_status) == ("SENT", 200, 1000)


def test_a_result_the_emsp_cannot_take_now_is_retried(partner, network, charger, emsp):
    # given: the eMSP is down when the result is due
    url = emsp.response_url("commands", "STOP_SESSION")
    start(partner[1], url)
    charger.answer(accepted=False, reason="OCCUPIED")
    emsp.mode = "http500"

    # when
    outbox_deliver(partner_id=partner[0].pk)

    # then: kept, with a backoff
    row = OutboxMessage.objects.get()
    assert (row.state, row.attempts, row.response_status) == ("PENDING", 1, 500)

    # when: it is back and the row is due
    emsp.mode = "ok"
    OutboxMessage.objects.update(next_attempt_at=timezone.now())
    outbox_deliver(partner_id=partner[0].pk)

    # then
    assert OutboxMessage.objects.get().state == "SENT"
    assert [r.body for r in emsp.received("POST")][-1]["result"] == "EVSE_OCCUPIED"


def test_a_charging_profile_result_reaches_the_emsp_over_http(partner, network, charger, emsp):
    # given: a running session of the partner, and a profile the charger accepts
    make_session(partner[0], EVSE.objects.get(uid="EVSE1"), ocpi_id="S1")
    url = emsp.response_url("chargingprofiles", "set")
    body = {
        "response_url": url,
        "charging_profile": {
            "charging_rate_unit": "W",
            "charging_profile_period": [{"start_period": 0, "limit": 7400}],
        },
    }
    response = client_for(partner[1]).put(
        "/ocpi/cpo/2.2.1/chargingprofiles/S1",
        data=jsonutil.dumps(body),
        content_type="application/json",
    )
    assert jsonutil.loads(response.content)["data"]["result"] == "ACCEPTED"
    charger.answer(accepted=True)

    # when
    outbox_deliver(partner_id=partner[0].pk)

    # then
    (received,) = emsp.received("POST", f"{BASE}/chargingprofiles/set/")
    assert received.body == {"result": "ACCEPTED"}


# --- with a real Celery worker ---------------------------------------------------------------
@pytest.mark.worker
@pytest.mark.usefixtures("transactional_db", "celery_worker")
def test_a_worker_delivers_the_result_after_the_charger_answered(partner, network, charger, emsp):
    # given
    url = emsp.response_url("commands", "START_SESSION")
    start(partner[1], url)

    # when: the charger answers (committed at once: no surrounding transaction)
    charger.answer(accepted=False, reason="FAULTED")

    # then: the worker POSTs it to the eMSP
    (received,) = emsp.wait_for(lambda s: s.received("POST", f"{BASE}/commands/START_SESSION/"))
    assert received.body["result"] == "EVSE_INOPERATIVE"
    assert url.endswith(received.path)


@pytest.mark.worker
@pytest.mark.usefixtures("transactional_db", "celery_worker")
def test_a_worker_sends_timeout_when_the_window_of_a_command_closes(
    partner, network, charger, emsp, settings
):
    # given: a 2 s timeout announced; the charger never answers
    settings.OCPI_COMMAND_TIMEOUT = 2
    url = emsp.response_url("commands", "START_SESSION")
    command = start(partner[1], url)
    assert command.timeout_seconds == 2

    # when: the command's own expiry task runs on the worker (no beat here)
    (received,) = emsp.wait_for(lambda s: s.received("POST", f"{BASE}/commands/"), timeout=15)

    # then: TIMEOUT, within the announced timeout plus delivery
    assert received.body["result"] == "TIMEOUT"
    command.refresh_from_db()
    assert command.state == "TIMED_OUT"
    assert timedelta(seconds=1.5) < command.answered_at - command.created < timedelta(seconds=6)


def test_with_the_simulator_a_remote_start_is_answered_and_becomes_a_session(
    partner, network, settings
):
    # given: the built-in simulator behind the gateway
    settings.CHARGER_GATEWAY = "stations.simulator.SimulatorGateway"
    from stations import simulator

    command = start(partner[1], "https://emsp.example.com/r/sim")

    # when: the simulated charger answers (its answer is due a moment later)
    simulator.answer_due_commands(now=timezone.now() + timedelta(minutes=5))

    # then: ACCEPTED is on its way to the eMSP, and billing has the session of that start
    command.refresh_from_db()
    assert (command.state, command.result) == ("ANSWERED", "ACCEPTED")
    results = OutboxMessage.objects.filter(module="commands")
    assert [jsonutil.loads(r.body) for r in results] == [{"result": "ACCEPTED"}]
    session = Session.objects.get()
    assert session.partner == partner[0]
    assert command.session_ocpi_id == session.ocpi_id


# --- admin -------------------------------------------------------------------------------------
def test_staff_see_commands_with_both_answers_read_only(
    partner, network, charger, admin_client, settings
):
    # given: one accepted and answered, one refused
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    command = start(partner[1], "https://emsp.example.com/r/admin")
    charger.answer(accepted=False, reason="OCCUPIED")
    post(
        client_for(partner[1]),
        "STOP_SESSION",
        {"response_url": "https://emsp.example.com/r/stop", "session_id": "NOPE"},
    )

    # when
    listing = admin_client.get("/admin/ocpi/commandrequest/?kind__exact=START_SESSION")
    detail = admin_client.get(f"/admin/ocpi/commandrequest/{command.pk}/change/")
    everything = admin_client.get("/admin/ocpi/commandrequest/")

    # then
    assert listing.status_code == 200
    assert [(c.kind, c.result) for c in listing.context["cl"].result_list] == [
        ("START_SESSION", "EVSE_OCCUPIED")
    ]
    assert "EVSE_OCCUPIED" in listing.content.decode()
    assert [(c.kind, c.response_result) for c in everything.context["cl"].result_list] == [
        ("STOP_SESSION", "UNKNOWN_SESSION"),
        ("START_SESSION", "ACCEPTED"),
    ]
    assert detail.status_code == 200
    assert command.request_ref in detail.content.decode()
    assert 'name="_save"' not in detail.content.decode()  # read-only
    assert admin_client.get("/admin/ocpi/commandrequest/add/").status_code == 403
