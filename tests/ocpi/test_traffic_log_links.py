"""The traffic log linked to what each message concerns, and "Resend" for failed pushes (issue 6,
"OCPI traffic log": "linked to the object it concerns (session, CDR, command), with a resend
action for failed pushes").

A call made to deliver an outbox row points at that row; the admin links the row and the session,
CDR, location, tariff or command it pushed. A partner's request links the object its URL names
(for commands: the command it made), only when that object is the partner's. "Resend" puts the
outbox rows behind failed calls back for delivery as the outbox admin's "retry now" does.

Outbound calls go to a real EMSPServer on 127.0.0.1. The delivery task a commit queues runs
in-process (`queued`): in the link tests when the test runs its on_commit callbacks
(`committed`), in the resend tests at real commits (transactional_db), as in production.
"""

import re

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Session, Token
from billing.models_cdrs import CDR
from billing.signals import session_changed
from ocpi import commands, jsonutil, tasks
from ocpi.delivery import outbox_deliver, outbox_retry, outbox_skip
from ocpi.models import CommandRequest, OutboxMessage, TrafficLog
from ocpi.outbox import cdr_outbox_write, render_cdr
from tests.billing.cdr_factories import CDRFactory
from tests.factories import EVSEFactory, LocationFactory, TariffFactory
from tests.ocpi.gateway_double import (
    client_for,
    make_network,
    make_session,
    recording_gateway,
    token_body,
)

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/ocpi/trafficlog/"
EMSP = "/ocpi/emsp/2.2.1"
State = OutboxMessage.State
Direction = TrafficLog.Direction


@pytest.fixture(autouse=True)
def queued(monkeypatch) -> list[str]:
    """The delivery task a commit queues runs here and now (no broker); the list says, for each
    run, whether a transaction was still open then."""
    runs = []

    def delay(partner_id: int) -> None:
        runs.append("in a transaction" if connection.in_atomic_block else "after commit")
        outbox_deliver(partner_id=partner_id)

    monkeypatch.setattr(tasks.deliver_outbox_task, "delay", delay)
    return runs


@pytest.fixture
def charger(settings):
    yield from recording_gateway(settings)


@pytest.fixture
def partner(make_partner, emsp):
    endpoints = [
        {"identifier": module, "role": "RECEIVER", "url": emsp.endpoint(module)}
        for module in ("locations", "sessions", "cdrs")
    ]
    partner, _ = make_partner("eMSP", endpoints=endpoints, request_timeout=2.0)
    emsp.accepted_tokens.add(partner.outbound_token)
    return partner


def links(admin_client, row: TrafficLog) -> list[tuple[str, str]]:
    """The (href, text) links in the row's "Concerns" column of the changelist."""
    page = admin_client.get(CHANGELIST).content.decode()
    cell = re.search(
        rf'name="_selected_action" value="{row.pk}".*?<td class="field-concerns">(.*?)</td>',
        page,
        re.DOTALL,
    )
    assert cell is not None, f"row {row.pk} is not on the page"
    return re.findall(r'<a href="([^"]+)">([^<]+)</a>', cell.group(1))


def change_url(obj) -> str:
    opts = obj._meta
    return f"/admin/{opts.app_label}/{opts.model_name}/{obj.pk}/change/"


def outbox_link(message: OutboxMessage) -> tuple[str, str]:
    message.refresh_from_db()
    return change_url(message), f"Outbox #{message.pk} ({message.state})"


def resend(admin_client, *rows: TrafficLog):
    return admin_client.post(
        CHANGELIST, {"action": "resend", "_selected_action": [row.pk for row in rows]}
    )


def said(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


# --- outbound: the outbox row and what it pushed -------------------------------------------------
@pytest.fixture
def session_pushed(partner, committed) -> Session:
    """Session S1 at a new location, both pushed to the partner."""
    with committed():
        evse = EVSEFactory(location=LocationFactory(ocpi_id="LOC1", evses=0))
        session = make_session(partner, evse)
        session_changed.send(sender=Session, session=session, created=True, final=False)
    return session


def test_a_session_push_links_its_outbox_row_and_the_session(admin_client, session_pushed):
    # given
    message = OutboxMessage.objects.get(module="sessions")
    row = TrafficLog.objects.get(outbox_message=message)

    # then
    assert (row.direction, row.method, row.url.endswith("/sessions/NL/CPO/S1")) == (
        Direction.OUTBOUND, "PUT", True
    )  # fmt: skip
    expected = [outbox_link(message), (change_url(session_pushed), "Session S1")]
    assert links(admin_client, row) == expected
    detail = admin_client.get(f"{CHANGELIST}{row.pk}/change/").content.decode()
    assert f'<a href="{change_url(session_pushed)}">Session S1</a>' in detail


def test_a_location_push_links_the_location(admin_client, session_pushed):
    # given
    message = OutboxMessage.objects.get(module="locations", state=State.SENT)
    row = TrafficLog.objects.get(outbox_message=message)

    # then
    location = session_pushed.location
    assert links(admin_client, row) == [
        outbox_link(message),
        (change_url(location), "Location LOC1"),
    ]


def test_a_cdr_push_links_its_outbox_row_and_the_cdr(admin_client, partner, committed):
    # given: a CDR POSTed to the partner
    cdr = CDRFactory(partner=partner, ocpi_id="CDR1")
    with committed():
        message = cdr_outbox_write(cdr)

    # then
    row = TrafficLog.objects.get(outbox_message=message)
    assert (row.method, row.http_status) == ("POST", 201)
    assert links(admin_client, row) == [outbox_link(message), (change_url(cdr), "CDR CDR1")]


def test_a_command_and_its_result_both_link_the_command(
    admin_client, make_partner, emsp, committed, charger, monkeypatch
):
    # given: a partner's START_SESSION, accepted by the charger, its result POSTed to the eMSP
    make_network()
    monkeypatch.setattr(commands.expire_commands_task, "apply_async", lambda *a, **kw: None)
    partner, token = make_partner("eMSP", request_timeout=2.0)
    emsp.accepted_tokens.add(partner.outbound_token)
    body = {"response_url": emsp.response_url("commands", "START_SESSION"),
            "token": token_body(), "location_id": "LOC1"}  # fmt: skip
    with committed():
        response = client_for(token).post(
            "/ocpi/cpo/2.2.1/commands/START_SESSION",
            data=jsonutil.dumps(body),
            content_type="application/json",
        )
    assert response.json()["data"]["result"] == "ACCEPTED"
    with committed():
        charger.answer(accepted=True)

    # then
    command = CommandRequest.objects.get()
    message = OutboxMessage.objects.get(module="commands")
    request = TrafficLog.objects.get(direction=Direction.INBOUND)
    result = TrafficLog.objects.get(direction=Direction.OUTBOUND)
    assert (result.outbox_message, result.http_status) == (message, 200)
    command_link = (change_url(command), "Command START_SESSION")
    assert links(admin_client, request) == [command_link]
    assert links(admin_client, result) == [outbox_link(message), command_link]


# --- inbound: the object the URL names, if it is the partner's ------------------------------------
@pytest.fixture
def owned(make_partner):
    """Partner One's session S1, CDR CDR1, token TOK1 and a START_SESSION it sent with
    X-Correlation-ID corr-cmd; and Partner Two, who has none of them."""
    partner, _ = make_partner("Partner One")
    other, _ = make_partner("Partner Two", party_id="OTH")
    objects = {
        "partner": partner,
        "other": other,
        "session": make_session(partner, EVSEFactory(), ocpi_id="S1"),
        "cdr": CDRFactory(partner=partner, ocpi_id="CDR1"),
        "token": Token.objects.create(
            partner=partner, country_code="DE", party_id="EMS", uid="TOK1",
            contract_id="DE-EMS-C1", issuer="eMSP", last_updated=timezone.now(),
        ),
        "command": CommandRequest.objects.create(
            partner=partner, kind="START_SESSION", request_ref="REF1", body={},
            response_url="https://emsp.example.com/r", response_result="ACCEPTED",
            state="WAITING", correlation_id="corr-cmd",
        ),
    }  # fmt: skip
    return objects


def inbound(partner, method: str, url: str, correlation_id: str = "", **answer) -> TrafficLog:
    """A partner's request as the log recorded it (answered 200/1000 unless `answer` says)."""
    return TrafficLog.objects.create(
        direction=Direction.INBOUND, partner=partner, method=method, url=url,
        correlation_id=correlation_id, **{"http_status": 200, "ocpi_status": 1000, **answer},
    )  # fmt: skip


REQUESTS = [
    ("PUT", "/ocpi/cpo/2.2.1/sessions/S1/charging_preferences", "", "session", "Session S1"),
    ("PUT", "/ocpi/cpo/2.2.1/chargingprofiles/s1", "", "session", "Session S1"),
    ("GET", "/ocpi/cpo/2.2.1/cdrs/CDR1", "", "cdr", "CDR CDR1"),
    ("PUT", "/ocpi/cpo/2.2.1/tokens/de/ems/TOK1?type=RFID", "", "token", "Token TOK1"),
    ("GET", "/ocpi/cpo/2.1.1/tokens/DE/EMS/TOK1", "", "token", "Token TOK1"),
    ("POST", "/ocpi/cpo/2.2.1/commands/START_SESSION", "corr-cmd", "command",
     "Command START_SESSION"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "url", "correlation_id", "name", "text"), REQUESTS)
def test_a_partners_request_links_the_object_its_url_names(
    admin_client, owned, method, url, correlation_id, name, text
):
    # given
    row = inbound(owned["partner"], method, url, correlation_id)

    # then
    assert links(admin_client, row) == [(change_url(owned[name]), text)]


@pytest.mark.parametrize(("method", "url", "correlation_id", "name", "text"), REQUESTS)
def test_a_request_naming_another_partners_object_links_nothing(
    admin_client, owned, method, url, correlation_id, name, text
):
    # given: Partner Two asks about Partner One's objects
    row = inbound(owned["other"], method, url, correlation_id)

    # then
    assert links(admin_client, row) == []


def test_a_request_naming_no_known_object_links_nothing(admin_client, owned):
    # given
    rows = [
        inbound(owned["partner"], "PUT", "/ocpi/cpo/2.2.1/sessions/S404/charging_preferences"),
        inbound(owned["partner"], "GET", "/ocpi/cpo/2.2.1/sessions?limit=5"),
        inbound(None, "PUT", "/ocpi/cpo/2.2.1/tokens/DE/EMS/TOK1"),  # nobody authenticated
    ]

    # then
    assert [links(admin_client, row) for row in rows] == [[], [], []]


# --- one place to see an object's traffic ---------------------------------------------------------
def test_an_outbox_row_and_a_session_link_to_their_traffic(admin_client, session_pushed):
    # given
    message = OutboxMessage.objects.get(module="sessions")
    pushed = TrafficLog.objects.get(outbox_message=message)
    asked = inbound(
        session_pushed.partner, "PUT", "/ocpi/cpo/2.2.1/sessions/S1/charging_preferences"
    )

    # when: staff follow the "traffic" links of the outbox row and of the session
    def followed(page_url: str) -> set[int]:
        page = admin_client.get(page_url).content.decode()
        href = re.search(r'<a href="(/admin/ocpi/trafficlog/\?[^"]+)">', page).group(1)
        response = admin_client.get(href.replace("&amp;", "&"))
        return {row.pk for row in response.context["cl"].result_list}

    # then
    assert followed(change_url(message)) == {pushed.pk}
    assert followed(change_url(session_pushed)) == {pushed.pk, asked.pk}


# --- resending failed pushes ----------------------------------------------------------------------
# These run outside a test transaction (transactional_db), so each commit queues its delivery as
# in production, and `queued` shows when it ran.
resending = pytest.mark.django_db(transaction=True)


@resending
def test_resend_queues_a_failed_push_and_the_partner_receives_it_after_commit(
    admin_client, partner, emsp, queued
):
    # given: a location push the partner rejected (HTTP 200, OCPI 2001)
    emsp.mode = "ocpi2001"
    LocationFactory(ocpi_id="LOC1", evses=0)
    message = OutboxMessage.objects.get(state=State.FAILED)
    failed = TrafficLog.objects.get(outbox_message=message)
    assert (failed.http_status, failed.ocpi_status) == (200, 2001)
    emsp.mode = "ok"
    emsp.requests.clear()
    queued.clear()

    # when: staff resend it from the traffic log
    response = resend(admin_client, failed)

    # then: queued once, after the staff's transaction committed, and told so
    assert queued == ["after commit"]
    assert said(response) == [
        f"Queued for delivery now: outbox #{message.pk} (PUT locations/NL/CPO/LOC1)."
    ]
    # and the partner got the location, through the same outbox row
    message.refresh_from_db()
    assert (message.state, message.attempts) == (State.SENT, 2)
    assert [(r.method, r.path) for r in emsp.received()] == [
        ("PUT", f"{EMSP}/locations/NL/CPO/LOC1")
    ]
    assert emsp.stored["locations/NL/CPO/LOC1"]["id"] == "LOC1"
    assert TrafficLog.objects.filter(outbox_message=message, ocpi_status=1000).count() == 1


@resending
def test_resend_sends_a_rejected_cdr_through_the_cdr_redelivery(admin_client, partner, emsp):
    # given: a CDR the partner rejected
    emsp.mode = "ocpi2001"
    cdr = CDRFactory(partner=partner, ocpi_id="CDR1")
    message = cdr_outbox_write(cdr)
    cdr.refresh_from_db()
    assert cdr.delivery == CDR.Delivery.FAILED
    emsp.mode = "ok"

    # when
    response = resend(admin_client, TrafficLog.objects.get(outbox_message=message))

    # then: as the CDR admin's "retry delivery" does it, and delivered once, by the same row
    assert said(response) == ["Queued for delivery now: CDR1: delivery retried."]
    cdr.refresh_from_db()
    message.refresh_from_db()
    assert (cdr.delivery, message.state, message.attempts) == (
        CDR.Delivery.DELIVERED,
        State.SENT,
        2,
    )
    assert len(emsp.received("POST", f"{EMSP}/cdrs")) == 2  # the rejected one and this one
    assert emsp.stored_cdr(jsonutil.loads(render_cdr(cdr))) is not None


@resending
def test_resend_leaves_alone_what_did_not_fail_or_is_no_longer_failed(
    admin_client, partner, emsp, queued
):
    # given: two location pushes the partner rejected ...
    emsp.mode = "ocpi2001"
    LocationFactory(ocpi_id="LOC1", evses=0)
    LocationFactory(ocpi_id="LOC2", evses=0)
    delivered_since, skipped = OutboxMessage.objects.filter(state=State.FAILED).order_by("pk")
    failed = list(TrafficLog.objects.filter(direction=Direction.OUTBOUND))
    # ... of which staff had one retried (delivered now) and one skipped
    emsp.mode = "ok"
    outbox_retry(message_ids=[delivered_since.pk])
    outbox_skip(message_ids=[skipped.pk])
    succeeded = TrafficLog.objects.get(outbox_message=delivered_since, ocpi_status=1000)
    # and a partner's request that failed, and a call that delivered no outbox row
    refused = inbound(
        partner, "GET", "/ocpi/cpo/2.2.1/locations/X", http_status=404, ocpi_status=2003
    )
    no_push = TrafficLog.objects.create(
        direction=Direction.OUTBOUND, partner=partner, method="GET", url=emsp.versions_url,
        error="ConnectionError: refused",
    )  # fmt: skip
    states = dict(OutboxMessage.objects.values_list("pk", "state"))
    emsp.requests.clear()
    queued.clear()

    # when
    response = resend(admin_client, *failed, succeeded, refused, no_push)

    # then: nothing queued or sent, and staff are told why
    assert (queued, emsp.received()) == ([], [])
    assert dict(OutboxMessage.objects.values_list("pk", "state")) == states
    (text,) = said(response)
    assert text.startswith("Not resent: ")
    for reason in (
        "1 row(s) inbound",
        "1 row(s) succeeded",
        "1 row(s) not a push from the outbox",
        f"outbox #{delivered_since.pk} (PUT locations/NL/CPO/LOC1): delivered since",
        f"outbox #{skipped.pk} (PUT locations/NL/CPO/LOC2): superseded (Skipped by staff.",
    ):
        assert reason in text


def test_only_staff_who_may_retry_outbox_rows_may_resend(client, django_user_model):
    # given: staff who may read the traffic log, but not retry outbox rows
    user = django_user_model.objects.create_user("reader", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_trafficlog"))
    client.force_login(user)

    # when
    page = client.get(CHANGELIST)

    # then
    assert page.status_code == 200
    form = page.context["action_form"]
    assert "resend" not in [name for name, _ in (form.fields["action"].choices if form else [])]


# --- the list stays cheap -------------------------------------------------------------------------
def test_the_list_links_every_row_in_a_fixed_number_of_queries(
    admin_client, owned, django_assert_max_num_queries
):
    # given: pushes of every kind and partners' requests naming every kind of object
    partner = owned["partner"]
    location = owned["session"].location
    tariff = TariffFactory(ocpi_id="T1")
    pushes = [
        ("locations", "RECEIVER", f"locations/NL/CPO/{location.ocpi_id}", "PUT", ""),
        ("tariffs", "RECEIVER", "tariffs/NL/CPO/T1", "PUT", ""),
        ("sessions", "RECEIVER", "sessions/NL/CPO/S1", "PATCH", ""),
        ("cdrs", "RECEIVER", "cdrs/NL/CPO", "POST", render_cdr(owned["cdr"])),
        ("commands", "RESPONSE", "commands/REF1", "POST", '{"result": "ACCEPTED"}'),
    ]

    def log(times: int) -> None:
        for _ in range(times):
            for module, role, key, method, body in pushes:
                message = OutboxMessage.objects.create(
                    partner=partner, module=module, interface_role=role, object_key=key,
                    method=method, body=body, state=State.SENT,
                )  # fmt: skip
                TrafficLog.objects.create(
                    direction=Direction.OUTBOUND, partner=partner, method=method,
                    url=f"http://emsp/{key}", http_status=200, ocpi_status=1000,
                    outbox_message=message,
                )  # fmt: skip
            for method, url, correlation_id, _name, _text in REQUESTS:
                inbound(partner, method, url, correlation_id)

    log(1)
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(CHANGELIST).status_code == 200

    # when: nine times as many rows
    log(8)

    # then: the same number of queries, and every row linked
    with django_assert_max_num_queries(len(few)):
        page = admin_client.get(CHANGELIST)
    html = page.content.decode()
    assert len(page.context["cl"].result_list) == 9 * (len(pushes) + len(REQUESTS))
    for obj, times in (
        (location, 9), (tariff, 9), (owned["cdr"], 18), (owned["token"], 18),
        (owned["session"], 27), (owned["command"], 18),
    ):  # fmt: skip
        assert html.count(f'<a href="{change_url(obj)}">') == times
