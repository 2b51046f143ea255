"""Commands Receiver (PROTOCOL.md §4.6, §5.7): the synchronous answer, what reaches the charger,
and that a refused or invalid command changes nothing (besides the refused request kept for staff).
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Reservation, Session, Token
from ocpi import jsonutil
from ocpi.datetimes import format_datetime
from ocpi.models import CommandRequest, OutboxMessage
from stations.models import EVSE
from tests.contract import validate_envelope
from tests.ocpi.gateway_double import (
    CAPABILITIES,
    client_for,
    make_network,
    make_session,
    recording_gateway,
    token_body,
)

COMMANDS = "/ocpi/cpo/2.2.1/commands"
RESPONSE_URL = "https://emsp.example.com/ocpi/emsp/2.2.1/commands/START_SESSION/42"


@pytest.fixture
def charger(settings):
    yield from recording_gateway(settings)


@pytest.fixture
def network(db):
    return make_network()


@pytest.fixture
def partner_a(make_partner):
    return make_partner("eMSP A", country_code="DE", party_id="EMS")


@pytest.fixture
def partner_b(make_partner):
    return make_partner("eMSP B", country_code="BE", party_id="BMS")


@pytest.fixture
def client_a(partner_a):
    return client_for(partner_a[1])


@pytest.fixture
def client_b(partner_b):
    return client_for(partner_b[1])


def post(client, command: str, body):
    return client.post(
        f"{COMMANDS}/{command}", data=jsonutil.dumps(body), content_type="application/json"
    )


def body_of(response) -> dict:
    assert response["Content-Type"] == "application/json"
    return jsonutil.loads(response.content)


def start_body(**overrides) -> dict:
    body = {
        "response_url": RESPONSE_URL,
        "token": token_body(),
        "location_id": "LOC1",
        "evse_uid": "EVSE1",
        "authorization_reference": "AUTH-1",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def reserve_body(**overrides) -> dict:
    body = {
        "response_url": "https://emsp.example.com/ocpi/emsp/2.2.1/commands/RESERVE_NOW/7",
        "token": token_body(),
        "expiry_date": format_datetime(timezone.now() + timedelta(minutes=30)),
        "reservation_id": "RES1",
        "location_id": "LOC1",
        "evse_uid": "EVSE1",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def assert_answer(response, result: str, *, status_code: int = 1000, timeout: int = 30) -> dict:
    assert response.status_code == 200
    body = body_of(response)
    assert body["status_code"] == status_code
    assert body["data"]["result"] == result
    assert body["data"]["timeout"] == timeout
    assert response["X-Correlation-ID"] == "corr-1234"
    validate_envelope(body, "CommandResponse")
    return body


@pytest.fixture(autouse=True)
def _timeout(settings):
    settings.OCPI_COMMAND_TIMEOUT = 30


# --- START_SESSION -------------------------------------------------------------------------------
def test_start_session_is_accepted_and_the_charger_is_asked(client_a, partner_a, network, charger):
    # when
    response = post(client_a, "START_SESSION", start_body())

    # then: the synchronous CommandResponse
    body = assert_answer(response, "ACCEPTED")
    assert set(body["data"]) == {"result", "timeout"}
    # the charger was asked to start at EVSE1's only connector, for the token's uid
    method, call = charger.only_call()
    evse = EVSE.objects.get(uid="EVSE1")
    assert method == "start_transaction"
    assert call["evse_pk"] == evse.pk
    assert call["connector_pk"] == evse.connectors.get().pk
    assert call["id_tag"] == "DRIVER1"
    # the request is kept, waiting for the charger
    command = CommandRequest.objects.get()
    assert command.request_ref == call["request_ref"]
    assert (command.kind, command.state, command.response_result) == (
        "START_SESSION",
        "WAITING",
        "ACCEPTED",
    )
    assert command.partner == partner_a[0]
    assert command.response_url == RESPONSE_URL
    assert command.timeout_seconds == 30
    assert command.correlation_id == "corr-1234"
    assert command.body["token"]["uid"] == "DRIVER1"
    # billing expects the transaction: token, authorization reference, place
    from billing.models_sessions import PendingStart

    pending = PendingStart.objects.get(request_ref=command.request_ref)
    assert pending.partner == partner_a[0]
    assert pending.cdr_token == {
        "country_code": "DE",
        "party_id": "EMS",
        "uid": "DRIVER1",
        "type": "APP_USER",
        "contract_id": "DE-EMS-CDRIVER1",
    }
    assert pending.auth_method == "COMMAND"
    assert pending.authorization_reference == "AUTH-1"
    assert (pending.evse, pending.connector) == (evse, evse.connectors.get())
    assert not OutboxMessage.objects.exists()


def test_start_session_ids_are_case_insensitive_and_unknown_fields_ignored(
    client_a, network, charger
):
    # when
    response = post(
        client_a,
        "START_SESSION",
        start_body(location_id="loc1", evse_uid="evse1", future_field={"x": 1}),
    )

    # then
    assert_answer(response, "ACCEPTED")
    assert charger.only_call()[1]["evse_pk"] == EVSE.objects.get(uid="EVSE1").pk


def test_start_session_without_evse_lets_us_choose_a_startable_one(client_a, network, charger):
    # given: EVSE1 is charging; EVSE2 needs a connector_id; a third one is free
    EVSE.objects.filter(uid="EVSE1").update(status="CHARGING")
    from tests.factories import EVSEFactory

    free = EVSEFactory(location=network, uid="EVSE3", capabilities=CAPABILITIES)

    # when
    response = post(client_a, "START_SESSION", start_body(evse_uid=None))

    # then
    assert_answer(response, "ACCEPTED")
    assert charger.only_call()[1]["evse_pk"] == free.pk


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"location_id": "NOPE"}, "Unknown location 'NOPE'"),
        ({"evse_uid": "NOPE"}, "Unknown EVSE 'NOPE' at location 'LOC1'"),
        ({"evse_uid": "EVSE1", "connector_id": "9"}, "Unknown connector '9' of EVSE 'EVSE1'"),
    ],
)
def test_start_session_at_an_unknown_place_is_2003_rejected(
    client_a, network, charger, overrides, message
):
    # when
    response = post(client_a, "START_SESSION", start_body(**overrides))

    # then: HTTP 200 (it reached the OCPI layer), OCPI 2003, data {result: REJECTED, timeout}
    body = assert_answer(response, "REJECTED", status_code=2003)
    assert body["status_message"] == message
    assert body["data"]["message"] == [{"language": "en", "text": message}]
    # nothing reached the charger; the refusal is kept for staff
    assert charger.calls == []
    command = CommandRequest.objects.get()
    assert (command.state, command.response_result) == ("REJECTED", "REJECTED")
    assert not OutboxMessage.objects.exists()


def test_a_private_location_is_unknown_to_partners(client_a, network, charger):
    # given: not published to anyone
    network.publish = False
    network.save()

    # when
    response = post(client_a, "START_SESSION", start_body())

    # then
    assert_answer(response, "REJECTED", status_code=2003)
    assert charger.calls == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"capabilities": ["RFID_READER"]}, "EVSE 'EVSE1' is not REMOTE_START_STOP_CAPABLE"),
        ({"status": "REMOVED"}, "EVSE 'EVSE1' is removed"),
    ],
)
def test_start_session_at_an_evse_that_cannot_be_started_remotely_is_rejected(
    client_a, network, charger, change, message
):
    # given
    EVSE.objects.filter(uid="EVSE1").update(**change)

    # when
    response = post(client_a, "START_SESSION", start_body())

    # then
    body = assert_answer(response, "REJECTED")
    assert body["data"]["message"][0]["text"] == message
    assert charger.calls == []
    from billing.models_sessions import PendingStart

    assert not PendingStart.objects.exists()


def test_start_session_needs_the_connector_where_the_evse_requires_it(client_a, network, charger):
    # when: EVSE2 has START_SESSION_CONNECTOR_REQUIRED
    refused = post(client_a, "START_SESSION", start_body(evse_uid="EVSE2"))
    accepted = post(client_a, "START_SESSION", start_body(evse_uid="EVSE2", connector_id="2"))

    # then
    body = assert_answer(refused, "REJECTED")
    assert "START_SESSION_CONNECTOR_REQUIRED" in body["data"]["message"][0]["text"]
    assert_answer(accepted, "ACCEPTED")
    evse2 = EVSE.objects.get(uid="EVSE2")
    assert charger.only_call()[1]["connector_pk"] == evse2.connectors.get(ocpi_id="2").pk


def test_start_session_with_another_partners_token_is_rejected(
    client_b, partner_a, network, charger
):
    # given: B presents a token of A's party DE*EMS
    # when
    response = post(client_b, "START_SESSION", start_body(token=token_body("DE", "EMS")))

    # then: rejected, and nothing reached the charger or billing
    body = assert_answer(response, "REJECTED")
    assert "DE*EMS" in body["data"]["message"][0]["text"]
    assert charger.calls == []
    from billing.models_sessions import PendingStart

    assert not PendingStart.objects.exists()


def test_start_session_with_a_token_our_staff_blocked_is_rejected(
    client_a, partner_a, network, charger
):
    # given
    Token.objects.create(
        partner=partner_a[0], country_code="DE", party_id="EMS", uid="driver1", type="APP_USER",
        contract_id="DE-EMS-C1", issuer="Test eMSP", last_updated=timezone.now(), blocked=True,
    )  # fmt: skip

    # when
    response = post(client_a, "START_SESSION", start_body())

    # then
    assert_answer(response, "REJECTED")
    assert charger.calls == []


def test_start_session_when_the_charger_cannot_be_asked_is_rejected_and_undone(
    client_a, network, charger
):
    # given: the charger is offline
    charger.reachable = False

    # when
    response = post(client_a, "START_SESSION", start_body())

    # then
    body = assert_answer(response, "REJECTED")
    assert body["data"]["message"][0]["text"] == "The charger cannot be reached at the moment"
    from billing.models_sessions import PendingStart

    assert not PendingStart.objects.exists()
    assert CommandRequest.objects.get().state == "REJECTED"


@pytest.mark.parametrize(
    "body",
    [
        start_body(response_url=None),
        start_body(response_url="not a url"),
        start_body(response_url="ftp://emsp.example.com/result"),
        start_body(response_url="https://emsp.example.com/" + "x" * 250),
        start_body(token=None),
        start_body(token={**token_body(), "type": "BADGE"}),
        start_body(token={**token_body(), "contract_id": None}),
        start_body(token={**token_body(), "country_code": "DEU"}),
        start_body(location_id="L" * 37),
        start_body(location_id=None),
        start_body(evse_uid=None, connector_id="1"),
        start_body(authorization_reference=["A"]),
        ["not", "an", "object"],
    ],
)
def test_an_invalid_start_session_is_2001_and_changes_nothing(client_a, network, charger, body):
    # when
    response = post(client_a, "START_SESSION", body)

    # then
    assert response.status_code == 400
    assert body_of(response)["status_code"] == 2001
    assert "data" not in body_of(response)
    assert charger.calls == []
    assert not CommandRequest.objects.exists()


def test_a_malformed_json_body_is_2001(client_a, network, charger):
    # when
    response = client_a.post(
        f"{COMMANDS}/START_SESSION", data=b'{"response_url": ', content_type="application/json"
    )

    # then
    assert response.status_code == 400
    assert body_of(response)["status_code"] == 2001
    assert not CommandRequest.objects.exists()


def test_an_unknown_command_type_is_not_supported(client_a, network, charger):
    # when
    response = post(client_a, "SELF_DESTRUCT", {"response_url": RESPONSE_URL})

    # then
    body = assert_answer(response, "NOT_SUPPORTED")
    assert body["data"]["message"][0]["text"] == "Command 'SELF_DESTRUCT' is not supported"
    assert charger.calls == []
    assert not CommandRequest.objects.exists()


def test_commands_take_only_post(client_a, network):
    # when
    response = client_a.get(f"{COMMANDS}/START_SESSION")

    # then
    assert response.status_code == 405
    assert body_of(response)["status_code"] == 2000


def test_commands_need_a_registered_partners_token(network, charger):
    # when
    response = post(client_for("nobody-has-this-token"), "START_SESSION", start_body())

    # then
    assert response.status_code == 401
    assert charger.calls == []


def test_the_url_accepts_a_trailing_slash(client_a, network, charger):
    # when
    response = client_a.post(
        f"{COMMANDS}/START_SESSION/",
        data=jsonutil.dumps(start_body()),
        content_type="application/json",
    )

    # then
    assert_answer(response, "ACCEPTED")


# --- STOP_SESSION --------------------------------------------------------------------------------
def stop_body(session_id: str = "S1") -> dict:
    return {
        "response_url": "https://emsp.example.com/ocpi/emsp/2.2.1/commands/STOP_SESSION/1",
        "session_id": session_id,
    }


def test_stop_session_of_an_own_session_asks_the_charger(client_a, partner_a, network, charger):
    # given
    session = make_session(partner_a[0], EVSE.objects.get(uid="EVSE1"), ocpi_id="S1")

    # when: the id in another case
    response = post(client_a, "STOP_SESSION", stop_body("s1"))

    # then
    assert_answer(response, "ACCEPTED")
    method, call = charger.only_call()
    assert method == "stop_transaction"
    assert call["transaction_ref"] == session.transaction_ref
    command = CommandRequest.objects.get()
    assert (command.state, command.session_ocpi_id) == ("WAITING", "S1")


def test_stop_session_of_an_unknown_session_is_unknown_session(client_a, network, charger):
    # when
    response = post(client_a, "STOP_SESSION", stop_body("NOPE"))

    # then
    assert_answer(response, "UNKNOWN_SESSION")
    assert charger.calls == []


def test_stop_session_of_a_finished_session_is_rejected(client_a, partner_a, network, charger):
    # given
    make_session(partner_a[0], EVSE.objects.get(uid="EVSE1"), ocpi_id="S1", status="COMPLETED")

    # when
    response = post(client_a, "STOP_SESSION", stop_body("S1"))

    # then
    body = assert_answer(response, "REJECTED")
    assert body["data"]["message"][0]["text"] == "Session S1 is COMPLETED, not charging"
    assert charger.calls == []


def test_a_partner_cannot_stop_another_partners_session(client_b, partner_a, network, charger):
    # given: A's session
    session = make_session(partner_a[0], EVSE.objects.get(uid="EVSE1"), ocpi_id="S1")

    # when: B asks to stop it
    response = post(client_b, "STOP_SESSION", stop_body("S1"))

    # then: rejected, the charger never hears of it, the session runs on
    assert_answer(response, "REJECTED")
    assert charger.calls == []
    session.refresh_from_db()
    assert session.status == "ACTIVE"
    assert not OutboxMessage.objects.exists()


# --- RESERVE_NOW / CANCEL_RESERVATION ------------------------------------------------------------
def test_reserve_now_creates_a_reservation_whose_own_id_goes_to_the_charger(
    client_a, partner_a, network, charger
):
    # when
    response = post(client_a, "RESERVE_NOW", reserve_body(authorization_reference="AUTH-9"))

    # then
    assert_answer(response, "ACCEPTED")
    reservation = Reservation.objects.get()
    assert reservation.partner == partner_a[0]
    assert reservation.reservation_id == "RES1"
    assert reservation.status == "PENDING"
    assert reservation.evse == EVSE.objects.get(uid="EVSE1")
    assert reservation.authorization_reference == "AUTH-9"
    assert reservation.cdr_token["uid"] == "DRIVER1"
    method, call = charger.only_call()
    assert method == "reserve_now"
    assert call["reservation_ref"] == reservation.pk  # ours, not the eMSP's "RES1"
    assert call["evse_pk"] == reservation.evse_id
    assert call["id_tag"] == "DRIVER1"
    assert call["expiry"] == reservation.expiry_date
    assert CommandRequest.objects.get().reservation == reservation


def test_reserve_now_with_the_same_location_and_reservation_id_replaces_it(
    client_a, partner_a, network, charger
):
    # given
    post(client_a, "RESERVE_NOW", reserve_body())
    first = Reservation.objects.get()
    later = timezone.now() + timedelta(hours=2)

    # when: the same reservation_id (other case), a new expiry
    response = post(
        client_a,
        "RESERVE_NOW",
        reserve_body(reservation_id="res1", expiry_date=format_datetime(later)),
    )

    # then: still one reservation, updated, the charger asked with the same id
    assert_answer(response, "ACCEPTED")
    reservation = Reservation.objects.get()
    assert reservation.pk == first.pk
    assert abs(reservation.expiry_date - later) < timedelta(milliseconds=1)
    assert [c[1]["reservation_ref"] for c in charger.calls] == [first.pk, first.pk]


def test_reserve_now_without_evse_reserves_an_available_reservable_one(client_a, network, charger):
    # given: EVSE1 is charging; EVSE2 (reservable, whatever its connectors) is free
    EVSE.objects.filter(uid="EVSE1").update(status="CHARGING")

    # when
    response = post(client_a, "RESERVE_NOW", reserve_body(evse_uid=None))

    # then
    assert_answer(response, "ACCEPTED")
    evse2 = EVSE.objects.get(uid="EVSE2")
    assert charger.only_call()[1]["evse_pk"] == evse2.pk
    assert Reservation.objects.get().evse == evse2


@pytest.mark.parametrize(
    ("change", "result"),
    [
        ({"capabilities": ["REMOTE_START_STOP_CAPABLE"]}, "NOT_SUPPORTED"),
        ({"status": "REMOVED"}, "REJECTED"),
    ],
)
def test_reserve_now_at_an_evse_that_cannot_be_reserved(client_a, network, charger, change, result):
    # given
    EVSE.objects.filter(uid="EVSE1").update(**change)

    # when
    response = post(client_a, "RESERVE_NOW", reserve_body())

    # then
    assert_answer(response, result)
    assert charger.calls == []
    assert not Reservation.objects.exists()


def test_reserve_now_expiring_in_the_past_is_rejected(client_a, network, charger):
    # when
    response = post(
        client_a,
        "RESERVE_NOW",
        reserve_body(expiry_date=format_datetime(timezone.now() - timedelta(minutes=1))),
    )

    # then
    assert_answer(response, "REJECTED")
    assert not Reservation.objects.exists()


def test_reserve_now_with_another_partners_token_is_rejected(client_b, partner_a, network, charger):
    # when
    response = post(client_b, "RESERVE_NOW", reserve_body(token=token_body("DE", "EMS")))

    # then
    assert_answer(response, "REJECTED")
    assert charger.calls == []
    assert not Reservation.objects.exists()


def cancel_body(reservation_id: str = "RES1") -> dict:
    return {
        "response_url": "https://emsp.example.com/ocpi/emsp/2.2.1/commands/CANCEL_RESERVATION/3",
        "reservation_id": reservation_id,
    }


def test_cancel_reservation_asks_the_charger_with_our_id(client_a, network, charger):
    # given
    post(client_a, "RESERVE_NOW", reserve_body())
    reservation = Reservation.objects.get()
    charger.answer(accepted=True)
    charger.calls.clear()

    # when
    response = post(client_a, "CANCEL_RESERVATION", cancel_body("res1"))

    # then
    assert_answer(response, "ACCEPTED")
    method, call = charger.only_call()
    assert (method, call["reservation_ref"]) == ("cancel_reservation", reservation.pk)
    assert CommandRequest.objects.get(kind="CANCEL_RESERVATION").reservation == reservation


def test_cancel_of_an_unknown_reservation_answers_unknown_reservation_at_once(
    client_a, network, charger
):
    # when
    response = post(client_a, "CANCEL_RESERVATION", cancel_body("NOPE"))

    # then: accepted, and the result UNKNOWN_RESERVATION is on its way
    assert_answer(response, "ACCEPTED")
    assert charger.calls == []
    command = CommandRequest.objects.get()
    assert (command.state, command.result) == ("ANSWERED", "UNKNOWN_RESERVATION")
    row = OutboxMessage.objects.get()
    assert (row.method, row.path) == ("POST", cancel_body()["response_url"])
    assert jsonutil.loads(row.body)["result"] == "UNKNOWN_RESERVATION"


def test_a_partner_cannot_cancel_another_partners_reservation(client_a, client_b, network, charger):
    # given: A's reservation RES1, active at the charger
    post(client_a, "RESERVE_NOW", reserve_body())
    charger.answer(accepted=True)
    charger.calls.clear()
    OutboxMessage.objects.all().delete()

    # when: B cancels "RES1"
    response = post(client_b, "CANCEL_RESERVATION", cancel_body("RES1"))

    # then: rejected; A's reservation stays, the charger is not asked, nothing is sent
    assert_answer(response, "REJECTED")
    assert Reservation.objects.get().status == "ACTIVE"
    assert charger.calls == []
    assert not OutboxMessage.objects.exists()


# --- UNLOCK_CONNECTOR --------------------------------------------------------------------------
def unlock_body(**overrides) -> dict:
    body = {
        "response_url": "https://emsp.example.com/ocpi/emsp/2.2.1/commands/UNLOCK_CONNECTOR/5",
        "location_id": "LOC1",
        "evse_uid": "EVSE1",
        "connector_id": "1",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def test_unlock_connector_asks_the_charger(client_a, network, charger):
    # when
    response = post(client_a, "UNLOCK_CONNECTOR", unlock_body())

    # then
    assert_answer(response, "ACCEPTED")
    method, call = charger.only_call()
    evse = EVSE.objects.get(uid="EVSE1")
    assert (method, call["connector_pk"]) == ("unlock_connector", evse.connectors.get().pk)


def test_unlock_connector_where_the_evse_cannot_unlock_is_not_supported(client_a, network, charger):
    # given
    EVSE.objects.filter(uid="EVSE1").update(capabilities=["REMOTE_START_STOP_CAPABLE"])

    # when
    response = post(client_a, "UNLOCK_CONNECTOR", unlock_body())

    # then
    assert_answer(response, "NOT_SUPPORTED")
    assert charger.calls == []


def test_unlock_connector_of_an_unknown_connector_is_2003(client_a, network, charger):
    # when
    response = post(client_a, "UNLOCK_CONNECTOR", unlock_body(connector_id="7"))

    # then
    assert_answer(response, "REJECTED", status_code=2003)
    assert charger.calls == []


def test_unlock_connector_under_another_partners_live_session_is_rejected(
    client_a, partner_b, network, charger
):
    # given: B's driver is charging at EVSE1
    make_session(partner_b[0], EVSE.objects.get(uid="EVSE1"), ocpi_id="S-B")

    # when: A asks to unlock that connector
    response = post(client_a, "UNLOCK_CONNECTOR", unlock_body())

    # then: refused; the charger is never asked
    body = assert_answer(response, "REJECTED")
    assert "another provider" in body["data"]["message"][0]["text"]
    assert charger.calls == []
    assert CommandRequest.objects.get().state == "REJECTED"


@pytest.mark.parametrize(("owner", "status"), [("A", "ACTIVE"), ("B", "COMPLETED")])
def test_unlock_connector_with_an_own_or_ended_session_asks_the_charger(
    client_a, partner_a, partner_b, network, charger, owner, status
):
    # given: A's own live session, or B's session that has ended (a stuck cable)
    partner = (partner_a if owner == "A" else partner_b)[0]
    make_session(partner, EVSE.objects.get(uid="EVSE1"), ocpi_id="S1", status=status)

    # when
    response = post(client_a, "UNLOCK_CONNECTOR", unlock_body())

    # then
    assert_answer(response, "ACCEPTED")
    assert charger.only_call()[0] == "unlock_connector"


def test_unlock_connector_needs_all_three_ids(client_a, network, charger):
    # when
    response = post(client_a, "UNLOCK_CONNECTOR", unlock_body(evse_uid=None))

    # then
    assert response.status_code == 400
    assert body_of(response)["status_code"] == 2001
    assert not CommandRequest.objects.exists()


def test_sessions_untouched_by_refused_commands(client_b, partner_a, network, charger):
    # given: A's session and reservation
    session = make_session(partner_a[0], EVSE.objects.get(uid="EVSE1"), ocpi_id="S1")
    before = Session.objects.values().get(pk=session.pk)

    # when: B tries everything on them
    post(client_b, "STOP_SESSION", stop_body("S1"))
    post(client_b, "START_SESSION", start_body(token=token_body("DE", "EMS")))
    post(client_b, "RESERVE_NOW", reserve_body(token=token_body("DE", "EMS")))

    # then
    assert Session.objects.values().get(pk=session.pk) == before
    assert charger.calls == []
    assert set(CommandRequest.objects.values_list("state", flat=True)) == {"REJECTED"}


def test_the_module_url_without_a_command_is_404(client_a, network, charger):
    # when
    response = post(client_a, "", start_body())

    # then
    assert response.status_code == 404
    assert body_of(response)["status_code"] == 2000
    assert charger.calls == []
