"""OCPI 2.1.1 Commands (PROTOCOL.md §8): the 2.1.1 bodies reach the same workflow as 2.2.1
(ocpi.commands), answered with CommandResponse {result} only, synchronously and at the
response_url; no CANCEL_RESERVATION; an int reservation_id; TIMEOUT as a result."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Reservation
from billing.models_sessions import PendingStart
from ocpi import jsonutil
from ocpi.commands import answer_window, commands_expire
from ocpi.datetimes import format_datetime
from ocpi.delivery import outbox_deliver
from ocpi.models import CommandRequest, OutboxMessage, Partner
from tests.emsp_server import EMSPServer
from tests.ocpi.gateway_double import client_for, make_network, make_session, recording_gateway
from tests.ocpi.v211.helpers import body_of, client_211
from tests.ocpi.v211.rules import assert_211, assert_envelope_211

COMMANDS = "/ocpi/cpo/2.1.1/commands"
RESPONSE_URL = "https://emsp.example.com/ocpi/emsp/2.1.1/commands/START_SESSION/42"
TOKEN_211 = {
    "uid": "DRIVER1",
    "type": "RFID",
    "auth_id": "DE-EMS-C0001",
    "issuer": "Old eMSP",
    "valid": True,
    "whitelist": "ALLOWED",
    "last_updated": "2025-03-01T10:00:00Z",
}


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
def partner(make_partner):
    return make_partner("Old eMSP", version="2.1.1", country_code="DE", party_id="EMS")


@pytest.fixture
def client(partner):
    return client_211(partner[1])


def post(client, command: str, body):
    return client.post(
        f"{COMMANDS}/{command}", data=jsonutil.dumps(body), content_type="application/json"
    )


def start_body(**overrides) -> dict:
    body = {
        "response_url": RESPONSE_URL,
        "token": TOKEN_211,
        "location_id": "LOC1",
        "evse_uid": "EVSE1",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def answer(response, result: str, *, status_code: int = 1000) -> dict:
    assert response.status_code == 200
    body = body_of(response)
    assert body["status_code"] == status_code
    assert body["data"] == {"result": result}  # no timeout, no message in 2.1.1
    assert_envelope_211(body, "CommandResponse")
    return body


def result_rows() -> list[dict]:
    rows = OutboxMessage.objects.filter(interface_role="RESPONSE").order_by("id")
    return [jsonutil.loads(row.body) for row in rows]


def test_start_session_reaches_the_charger_and_is_answered_with_result_only(
    client, partner, network, charger
):
    # when
    response = post(client, "START_SESSION", start_body())

    # then: {result} only
    answer(response, "ACCEPTED")
    method, call = charger.only_call()
    assert (method, call["id_tag"]) == ("start_transaction", "DRIVER1")
    # the 2.1.1 token became the session's CdrToken: the caller's party, auth_id as contract_id
    pending = PendingStart.objects.get()
    assert pending.cdr_token == {
        "country_code": "DE",
        "party_id": "EMS",
        "uid": "DRIVER1",
        "type": "RFID",
        "contract_id": "DE-EMS-C0001",
    }
    assert (pending.auth_method, pending.partner) == ("COMMAND", partner[0])
    command = CommandRequest.objects.get()
    assert (command.kind, command.response_url) == ("START_SESSION", RESPONSE_URL)

    # when: the charger accepts
    charger.answer(accepted=True)

    # then: the async result is a 2.1.1 CommandResponse
    assert result_rows() == [{"result": "ACCEPTED"}]
    assert_211(result_rows()[0], "CommandResponse")


def test_results_2_1_1_cannot_name_are_rejected_while_2_2_1_gets_them(
    client, make_partner, network, charger
):
    # given: the same command from a 2.1.1 and from a 2.2.1 partner
    _, token_221 = make_partner("New eMSP", country_code="BE", party_id="BMS")
    post(client, "START_SESSION", start_body())
    token_221_body = {
        "country_code": "BE", "party_id": "BMS", "uid": "DRIVER2", "type": "RFID",
        "contract_id": "BE-BMS-C1", "issuer": "New eMSP", "valid": True, "whitelist": "ALLOWED",
        "last_updated": "2025-03-01T10:00:00Z",
    }  # fmt: skip
    client_for(token_221).post(
        "/ocpi/cpo/2.2.1/commands/START_SESSION",
        data=jsonutil.dumps(start_body(token=token_221_body)),
        content_type="application/json",
    )

    # when: the charger refuses both (occupied)
    for _, call in list(charger.calls):
        charger.answer(accepted=False, reason="Occupied", request_ref=call["request_ref"])

    # then
    old, new = result_rows()
    assert old == {"result": "REJECTED"}
    assert new["result"] == "EVSE_OCCUPIED"
    assert new["message"][0]["text"] == "The charger answered: Occupied"


def test_a_silent_charger_is_a_timeout_result(client, network, charger):
    # given
    post(client, "START_SESSION", start_body())
    command = CommandRequest.objects.get()

    # when: the answer window passes
    commands_expire(now=command.created + timedelta(seconds=answer_window(30) + 1))

    # then
    assert result_rows() == [{"result": "TIMEOUT"}]


def test_reserve_now_takes_an_int_reservation_id(client, partner, network, charger):
    # given
    body = {
        "response_url": RESPONSE_URL,
        "token": TOKEN_211,
        "expiry_date": format_datetime(timezone.now() + timedelta(minutes=30)),
        "reservation_id": 42,
        "location_id": "LOC1",
        "evse_uid": "EVSE1",
    }

    # when
    response = post(client, "RESERVE_NOW", body)

    # then
    answer(response, "ACCEPTED")
    reservation = Reservation.objects.get()
    assert (reservation.reservation_id, reservation.partner) == ("42", partner[0])
    assert reservation.cdr_token["contract_id"] == "DE-EMS-C0001"


def test_a_string_reservation_id_is_2001(client, network, charger):
    # when
    response = post(
        client,
        "RESERVE_NOW",
        {
            "response_url": RESPONSE_URL,
            "token": TOKEN_211,
            "expiry_date": format_datetime(timezone.now() + timedelta(minutes=30)),
            "reservation_id": "RES1",
            "location_id": "LOC1",
        },
    )

    # then
    assert response.status_code == 400
    assert body_of(response)["status_code"] == 2001
    assert not CommandRequest.objects.exists()
    assert charger.calls == []


def test_cancel_reservation_is_not_supported_in_2_1_1(client, network, charger):
    # when
    response = post(
        client, "CANCEL_RESERVATION", {"response_url": RESPONSE_URL, "reservation_id": 1}
    )

    # then: answered, nothing kept, the charger not asked
    answer(response, "NOT_SUPPORTED")
    assert not CommandRequest.objects.exists()
    assert charger.calls == []


def test_a_2_2_1_token_in_a_2_1_1_command_is_2001(client, network, charger):
    # given: a 2.2.1 Token (contract_id, no auth_id)
    token = {k: v for k, v in TOKEN_211.items() if k != "auth_id"}
    token.update(country_code="DE", party_id="EMS", contract_id="DE-EMS-C0001")

    # when
    response = post(client, "START_SESSION", start_body(token=token))

    # then
    assert response.status_code == 400
    assert body_of(response)["status_code"] == 2001
    assert not CommandRequest.objects.exists()
    assert not PendingStart.objects.exists()


def test_stop_session_and_unlock_keep_the_2_2_1_rules(client, partner, network, charger):
    # given
    make_session(partner[0], network.evses.get(uid="EVSE1"), ocpi_id="S1")

    # when
    unknown = post(client, "STOP_SESSION", {"response_url": RESPONSE_URL, "session_id": "NOPE"})
    stopped = post(client, "STOP_SESSION", {"response_url": RESPONSE_URL, "session_id": "s1"})
    nowhere = post(
        client,
        "UNLOCK_CONNECTOR",
        {"response_url": RESPONSE_URL, "location_id": "NOPE", "evse_uid": "E", "connector_id": "1"},
    )

    # then
    answer(unknown, "UNKNOWN_SESSION")
    answer(stopped, "ACCEPTED")
    answer(nowhere, "REJECTED", status_code=2003)
    assert [method for method, _ in charger.calls] == ["stop_transaction"]


def test_the_result_reaches_a_2_1_1_emsp_with_a_plain_token(
    transactional_db, make_partner, charger
):
    # given: a 2.1.1 eMSP on 127.0.0.1 that reads tokens plain only
    emsp = EMSPServer(version="2.1.1")
    try:
        partner, token = make_partner(
            "Old eMSP", version="2.1.1", token_encoding=Partner.TokenEncoding.PLAIN,
            request_timeout=2.0,
        )  # fmt: skip
        emsp.accepted_tokens.add(partner.outbound_token)
        make_network()
        response_url = emsp.response_url("commands", "START_SESSION")
        post(client_211(token), "START_SESSION", start_body(response_url=response_url))
        charger.answer(accepted=True)

        # when
        report = outbox_deliver(partner_id=partner.pk)

        # then
        assert report.sent == 1
        (request,) = emsp.received("POST", response_url.removeprefix(emsp.base_url))
        assert request.body == {"result": "ACCEPTED"}
        assert request.headers["Authorization"] == f"Token {partner.outbound_token}"
    finally:
        emsp.stop()
