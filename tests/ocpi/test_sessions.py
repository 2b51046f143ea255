"""Sessions Sender (PROTOCOL.md §4.2, §5.3, §10.19): the list of the caller's sessions, charging
preferences, the Session object itself, and the push rows a session's life writes."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import ChargingPeriod, Session
from billing.sessions import pending_start_register
from ocpi import jsonutil, tokens
from ocpi.datetimes import format_datetime
from ocpi.delivery import outbox_deliver
from ocpi.models import OutboxMessage
from ocpi.modules.sessions.serializers import session_to_ocpi
from stations import gateway
from tests.contract import validate_envelope, validate_ocpi, validate_response
from tests.emsp_server import EMSPServer
from tests.factories import EVSEFactory, TariffFactory

pytestmark = pytest.mark.django_db

SESSIONS = "/ocpi/cpo/2.2.1/sessions"
T0 = datetime(2025, 3, 3, 7, 50, tzinfo=UTC)
SINCE = "2020-01-01T00:00:00Z"


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.SESSION_PATCH_INTERVAL = 0


def client_for(token: str) -> APIClient:
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION="Token " + tokens.encode_for_header(token, base64_encoded=True)
    )
    return client


def cdr_token(partner, uid="04A1B2C3") -> dict:
    role = partner.roles.get()
    return {
        "country_code": role.country_code,
        "party_id": role.party_id,
        "uid": uid,
        "type": "RFID",
        "contract_id": f"{role.country_code}-{role.party_id}-C{uid}",
    }


@pytest.fixture
def evse():
    tariff = TariffFactory(ocpi_id="T-ENERGY", type="REGULAR")
    evse = EVSEFactory(
        connectors=0,
        capabilities=["REMOTE_START_STOP_CAPABLE", "CHARGING_PREFERENCES_CAPABLE"],
    )
    evse.connectors.create(
        ocpi_id="1", standard="IEC_62196_T2", format="SOCKET", power_type="AC_3_PHASE",
        max_voltage=230, max_amperage=32, tariff_ids=[tariff.ocpi_id],
    )  # fmt: skip
    return evse


def run_session(partner, evse, *, tx="TX-1", at=T0, readings=(), stop_at=None) -> Session:
    """A session of `partner` at `evse`: started at `at`, readings as (minutes, Wh, charging),
    stopped `stop_at` minutes after the start when given."""
    pending_start_register(
        request_ref=f"REQ-{tx}", partner_id=partner.pk, cdr_token=cdr_token(partner),
        auth_method="COMMAND", authorization_reference="AUTH-1", location=evse.location,
        evse=evse, connector=evse.connectors.get(),
    )  # fmt: skip
    gateway.transaction_started.send(
        sender=None, transaction_ref=tx, evse=evse, connector=evse.connectors.get(),
        id_tag="04A1B2C3", meter_start_wh=Decimal(0), timestamp=at, request_ref=f"REQ-{tx}",
        reservation_ref=None,
    )  # fmt: skip
    for minutes, wh, charging in readings:
        gateway.meter_values.send(
            sender=None, transaction_ref=tx, energy_wh=Decimal(wh),
            power_w=Decimal(11000 if charging else 0), current_a=Decimal("47.83"),
            charging=charging, timestamp=at + timedelta(minutes=minutes),
        )  # fmt: skip
    if stop_at is not None:
        gateway.transaction_stopped.send(
            sender=None, transaction_ref=tx, meter_stop_wh=Decimal(readings[-1][1]),
            timestamp=at + timedelta(minutes=stop_at), reason="EV_DISCONNECTED",
        )  # fmt: skip
    return Session.objects.get(transaction_ref=tx)


def body(response) -> dict:
    return json.loads(response.content)


def test_the_sessions_sender_is_advertised(ocpi_client):
    # when
    response = ocpi_client.get("/ocpi/2.2.1")

    # then
    endpoints = body(response)["data"]["endpoints"]
    assert {"identifier": "sessions", "role": "SENDER",
            "url": "http://testserver/ocpi/cpo/2.2.1/sessions"} in endpoints  # fmt: skip


# --- the Session object -------------------------------------------------------------------------
def test_a_running_session_publishes_its_closed_periods_and_live_kwh(partner_and_token, evse):
    # given: charged 4 kWh, parked since minute 30, the latest reading at minute 40
    partner, _ = partner_and_token
    session = run_session(
        partner, evse, readings=[(10, 1500, True), (30, 4000, False), (40, 4000, False)]
    )

    # when
    data = session_to_ocpi(session)

    # then
    validate_ocpi(data, "Session")
    assert data == {
        "country_code": "NL",
        "party_id": "CPO",
        "id": session.ocpi_id,
        "start_date_time": T0,
        "kwh": Decimal("4.0000"),
        "cdr_token": cdr_token(partner),
        "auth_method": "COMMAND",
        "authorization_reference": "AUTH-1",
        "location_id": evse.location.ocpi_id,
        "evse_uid": evse.uid,
        "connector_id": "1",
        "currency": "EUR",
        "charging_periods": [
            {
                "start_date_time": T0,
                "dimensions": [
                    {"type": "ENERGY", "volume": Decimal("4.0000")},
                    {"type": "TIME", "volume": Decimal("0.5000")},
                    {"type": "MAX_POWER", "volume": Decimal("11.000")},
                    {"type": "MIN_POWER", "volume": Decimal("11.000")},
                ],
                "tariff_id": "T-ENERGY",
            }
        ],
        "total_cost": {"excl_vat": Decimal("1.2000"), "incl_vat": Decimal("1.4500")},
        "status": "ACTIVE",
        "last_updated": session.last_updated,
    }


def test_a_completed_session_has_its_end_and_every_period(partner_and_token, evse):
    # given
    partner, _ = partner_and_token
    session = run_session(partner, evse, readings=[(30, 4000, False)], stop_at=60)

    # when
    data = session_to_ocpi(session)

    # then
    validate_ocpi(data, "Session")
    assert (data["status"], data["end_date_time"]) == ("COMPLETED", T0 + timedelta(hours=1))
    assert [p["start_date_time"] for p in data["charging_periods"]] == [
        T0,
        T0 + timedelta(minutes=30),
    ]
    assert data["charging_periods"][1]["dimensions"] == [
        {"type": "ENERGY", "volume": Decimal("0.0000")},
        {"type": "PARKING_TIME", "volume": Decimal("0.5000")},
    ]


# --- GET list ------------------------------------------------------------------------------------
def test_the_list_requires_date_from(ocpi_client):
    # when
    response = ocpi_client.get(SESSIONS)

    # then
    assert response.status_code == 400
    assert body(response)["status_code"] == 2001
    assert "date_from" in body(response)["status_message"]


def test_the_list_holds_only_the_callers_sessions(partner_and_token, make_partner, evse):
    # given: a session of ours and one of another eMSP
    partner, token = partner_and_token
    other, _ = make_partner("Other eMSP", country_code="FR", party_id="OTH")
    mine = run_session(partner, evse, tx="TX-1", readings=[(10, 1500, True)], stop_at=20)
    run_session(other, EVSEFactory(), tx="TX-2", readings=[(10, 1500, True)])

    # when
    response = client_for(token).get(SESSIONS, {"date_from": SINCE})

    # then
    assert response.status_code == 200
    payload = body(response)
    validate_envelope(payload, "Session", many=True)
    validate_response(payload, "sessions/sender-interface", "/sessions", "get", 200)
    assert [s["id"] for s in payload["data"]] == [mine.ocpi_id]
    assert response["X-Total-Count"] == "1"
    assert response["X-Limit"] == "100"
    assert "Link" not in response


def test_the_list_is_paginated_and_filtered_on_last_updated(partner_and_token, evse):
    # given: three sessions
    partner, token = partner_and_token
    sessions = [
        run_session(partner, EVSEFactory(), tx=f"TX-{n}", readings=[(5, 500, True)])
        for n in range(3)
    ]
    middle = sessions[1]
    middle.refresh_from_db()
    Session.objects.filter(pk=sessions[0].pk).update(
        last_updated=middle.last_updated - timedelta(hours=1)
    )

    # when: from the middle one on, one per page
    since = format_datetime(middle.last_updated)
    response = client_for(token).get(SESSIONS, {"date_from": since, "limit": 1})

    # then
    assert [s["id"] for s in body(response)["data"]] == [middle.ocpi_id]
    assert response["X-Total-Count"] == "2"
    assert "offset=1" in response["Link"]
    assert "date_from=" in response["Link"]


@pytest.mark.parametrize("count", [1, 12])
def test_a_page_costs_a_fixed_number_of_queries(
    partner_and_token, evse, count, django_assert_max_num_queries
):
    # given
    partner, token = partner_and_token
    for n in range(count):
        run_session(partner, EVSEFactory(), tx=f"TX-{n}", readings=[(30, 4000, False)])
    client = client_for(token)

    # when: savepoint, partner, count, page (with location, EVSE, connector), periods, release
    with django_assert_max_num_queries(6):
        response = client.get(SESSIONS, {"date_from": SINCE})

    # then
    assert len(body(response)["data"]) == count


def test_a_bad_date_is_a_2001(ocpi_client):
    # when
    response = ocpi_client.get(SESSIONS, {"date_from": "yesterday"})

    # then
    assert (response.status_code, body(response)["status_code"]) == (400, 2001)


# --- charging preferences ----------------------------------------------------------------------
def put_preferences(client, session_id, data):
    raw = data if isinstance(data, str) else jsonutil.dumps(data).decode()
    return client.put(
        f"{SESSIONS}/{session_id}/charging_preferences", data=raw, content_type="application/json"
    )


def test_charging_preferences_are_answered_with_a_bare_enum_string(partner_and_token, evse):
    # given
    partner, token = partner_and_token
    session = run_session(partner, evse, tx="SIM-1-1")

    # when
    response = put_preferences(client_for(token), session.ocpi_id, {"profile_type": "REGULAR"})

    # then
    assert response.status_code == 200
    payload = body(response)
    assert (payload["data"], payload["status_code"]) == ("ACCEPTED", 1000)
    validate_response(
        payload,
        "sessions/sender-interface",
        "/sessions/{session_id}/charging_preferences",
        "put",
        200,
    )
    session.refresh_from_db()
    assert session.charging_preferences == {"profile_type": "REGULAR"}


def test_a_preference_the_cpo_cannot_honour_is_answered_in_data(partner_and_token, evse):
    # given
    partner, token = partner_and_token
    session = run_session(partner, evse, tx="SIM-1-1")
    departure = format_datetime(timezone.now() + timedelta(hours=3))

    # when: no PROFILE_CHEAP tariff at this connector
    response = put_preferences(
        client_for(token),
        session.ocpi_id,
        {"profile_type": "CHEAP", "departure_time": departure, "energy_need": 12.5},
    )

    # then
    assert (response.status_code, body(response)["data"]) == (200, "PROFILE_TYPE_NOT_SUPPORTED")


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"profile_type": "SLOW"},
        {"profile_type": "FAST", "departure_time": "tomorrow"},
        {"profile_type": "FAST", "energy_need": -1},
        {"profile_type": "FAST", "energy_need": "20"},
        {"profile_type": "FAST", "discharge_allowed": "maybe"},
        ["FAST"],
        "{not json",
    ],
)
def test_an_invalid_body_is_a_2001_and_changes_nothing(partner_and_token, evse, data):
    # given
    partner, token = partner_and_token
    session = run_session(partner, evse, tx="SIM-1-1")

    # when
    response = put_preferences(client_for(token), session.ocpi_id, data)

    # then
    assert response.status_code == 400
    assert body(response)["status_code"] == 2001
    session.refresh_from_db()
    assert session.charging_preferences is None


def test_unknown_and_other_partners_sessions_are_404(partner_and_token, make_partner, evse):
    # given
    partner, _ = partner_and_token
    _, other_token = make_partner("Other eMSP", country_code="FR", party_id="OTH")
    session = run_session(partner, evse, tx="SIM-1-1")

    # when
    theirs = put_preferences(client_for(other_token), session.ocpi_id, {"profile_type": "FAST"})
    unknown = put_preferences(client_for(other_token), "NO-SUCH", {"profile_type": "FAST"})

    # then: alike, so nobody learns which ids exist
    for response in (theirs, unknown):
        assert response.status_code == 404
        assert body(response)["status_code"] == 2001
        assert "data" not in body(response)
    session.refresh_from_db()
    assert session.charging_preferences is None


def test_an_evse_without_the_capability_is_404_2001(partner_and_token):
    # given
    partner, token = partner_and_token
    session = run_session(partner, EVSEFactory(capabilities=["REMOTE_START_STOP_CAPABLE"]))

    # when
    response = put_preferences(client_for(token), session.ocpi_id, {"profile_type": "FAST"})

    # then
    assert (response.status_code, body(response)["status_code"]) == (404, 2001)


def test_preferences_without_the_suffix_are_no_endpoint(ocpi_client):
    # when
    response = ocpi_client.put(f"{SESSIONS}/S1", data="{}", content_type="application/json")

    # then
    assert response.status_code == 404
    assert body(response)["status_code"] == 2000


# --- push rows ------------------------------------------------------------------------------------
@pytest.fixture
def emsp(make_partner):
    """A registered partner with a sessions RECEIVER endpoint."""
    endpoints = [
        {"identifier": "sessions", "role": "RECEIVER",
         "url": "http://127.0.0.1:9/ocpi/emsp/2.2.1/sessions"},
    ]  # fmt: skip
    return make_partner("eMSP with sessions", endpoints=endpoints)[0]


def rows(**filters):
    return [
        (m.method, m.path, jsonutil.loads(m.body))
        for m in OutboxMessage.objects.filter(module="sessions", **filters).order_by("id")
    ]


def delivered() -> None:
    """Mark every pending row sent, as a delivery run would."""
    OutboxMessage.objects.filter(state="PENDING").update(state="SENT")


def meter(minutes, wh, *, charging=True, tx="TX-1") -> None:
    gateway.meter_values.send(
        sender=None, transaction_ref=tx, energy_wh=Decimal(wh),
        power_w=Decimal(11000 if charging else 0), current_a=Decimal(48), charging=charging,
        timestamp=T0 + timedelta(minutes=minutes),
    )  # fmt: skip


def test_a_session_is_put_then_patched_then_put_completed(emsp, evse):
    # given: a session started; each push is delivered before the next change
    session = run_session(emsp, evse)
    delivered()

    # when: a reading, the switch to parking, the end
    meter(10, 1500)
    delivered()
    meter(30, 4000, charging=False)
    delivered()
    gateway.transaction_stopped.send(
        sender=None, transaction_ref="TX-1", meter_stop_wh=Decimal(4000),
        timestamp=T0 + timedelta(hours=1), reason="EV_DISCONNECTED",
    )  # fmt: skip

    # then: one row per announcement, all under the session's object key
    path = f"NL/CPO/{session.ocpi_id}"
    sent = rows()
    assert [(method, p) for method, p, _ in sent] == [
        ("PUT", path), ("PATCH", path), ("PATCH", path), ("PUT", path),
    ]  # fmt: skip
    assert set(OutboxMessage.objects.values_list("object_key", flat=True)) == {f"sessions/{path}"}
    created, first, second, final = (b for _, _, b in sent)
    validate_ocpi(created, "Session")
    assert (created["status"], created["kwh"], created["charging_periods"]) == ("ACTIVE", 0, [])
    assert set(first) == {"kwh", "total_cost", "last_updated"}
    assert first["kwh"] == Decimal("1.5")
    assert set(second) == {"kwh", "total_cost", "charging_periods", "last_updated"}
    assert [p["start_date_time"] for p in second["charging_periods"]] == [format_datetime(T0)]
    validate_ocpi(final, "Session")
    assert final["status"] == "COMPLETED"
    assert len(final["charging_periods"]) == 2


def test_sessions_go_only_to_the_tokens_emsp(emsp, make_partner, evse):
    # given: another registered partner with a sessions endpoint, one without
    endpoints = [{"identifier": "sessions", "role": "RECEIVER", "url": "http://127.0.0.1:9/s"}]
    make_partner("Bystander", country_code="FR", party_id="BYS", endpoints=endpoints)
    plain, _ = make_partner("No receiver", country_code="BE", party_id="NOR")

    # when
    run_session(emsp, evse, tx="TX-1", stop_at=5, readings=[(5, 100, True)])
    run_session(plain, EVSEFactory(), tx="TX-2", stop_at=5, readings=[(5, 100, True)])

    # then
    assert set(OutboxMessage.objects.values_list("partner_id", flat=True)) == {emsp.pk}


def test_an_unsent_put_absorbs_the_next_update(emsp, evse):
    # given: the creation PUT has not gone out yet
    session = run_session(emsp, evse)

    # when: the first reading
    meter(5, 800)

    # then: one PUT of the current state (never a PATCH on top of an unsent PUT)
    pending = OutboxMessage.objects.filter(state="PENDING")
    assert [(m.method, jsonutil.loads(m.body)["kwh"]) for m in pending] == [("PUT", Decimal("0.8"))]
    assert OutboxMessage.objects.filter(state="SUPERSEDED").count() == 1
    assert ChargingPeriod.objects.filter(session=session).count() == 1


def test_a_rejected_patch_is_resent_as_the_full_session_without_doubling_periods(
    make_partner, settings
):
    # given: an eMSP that got the session, then lost it
    server = EMSPServer()
    try:
        endpoints = [
            {"identifier": "sessions", "role": "RECEIVER", "url": server.endpoint("sessions")}
        ]
        partner, _ = make_partner("Forgetful eMSP", endpoints=endpoints, request_timeout=2.0)
        server.accepted_tokens.add(partner.outbound_token)
        session = run_session(partner, EVSEFactory())
        outbox_deliver(partner_id=partner.pk)
        key = f"sessions/NL/CPO/{session.ocpi_id}"
        assert key in server.stored
        server.stored.clear()

        # when: two updates wait, then the charging period closes unannounced (throttled)
        meter(10, 1500)
        meter(20, 2500)
        settings.SESSION_PATCH_INTERVAL = 3600
        meter(30, 4000, charging=False)
        outbox_deliver(partner_id=partner.pk)

        # then: the first PATCH, rejected, became a PUT of the current session, closed period
        # included; the second PATCH was superseded by it
        assert [r.method for r in server.received()] == ["PUT", "PATCH", "PUT"]
        assert [p["start_date_time"] for p in server.stored[key]["charging_periods"]] == [
            format_datetime(T0)
        ]
        assert list(
            OutboxMessage.objects.filter(partner=partner).values_list("method", "state")
        ) == [("PUT", "SENT"), ("PUT", "SENT"), ("PATCH", "SUPERSEDED")]

        # when: the car draws power again, which closes the parking period
        settings.SESSION_PATCH_INTERVAL = 0
        meter(50, 4500)
        outbox_deliver(partner_id=partner.pk)

        # then: the PATCH appended only the parking period
        assert server.received()[-1].method == "PATCH"
        assert [p["start_date_time"] for p in server.stored[key]["charging_periods"]] == [
            format_datetime(T0),
            format_datetime(T0 + timedelta(minutes=30)),
        ]
    finally:
        server.stop()
