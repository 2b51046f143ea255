"""ChargingProfiles Receiver (PROTOCOL.md §4.7, §5.8): the synchronous answer, the limit handed to
the charger, the stored profile, the async results, and that only the session's partner may act.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from billing.models import Session
from ocpi import jsonutil
from ocpi.charging_profiles import active_profile, limit_at, limit_in_watts
from ocpi.datetimes import format_datetime
from ocpi.models import CommandRequest, OutboxMessage
from stations.gateway import ChargingLimit
from stations.models import EVSE, Connector
from tests.contract import validate_envelope, validate_ocpi
from tests.factories import ConnectorFactory
from tests.ocpi.gateway_double import (
    client_for,
    make_network,
    make_session,
    recording_gateway,
)

PROFILES = "/ocpi/cpo/2.2.1/chargingprofiles"
RESPONSE_URL = "https://emsp.example.com/ocpi/emsp/2.2.1/chargingprofiles/result/1"


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
def partner_a(make_partner):
    return make_partner("eMSP A", country_code="DE", party_id="EMS")


@pytest.fixture
def partner_b(make_partner):
    return make_partner("eMSP B", country_code="BE", party_id="BMS")


@pytest.fixture
def session(partner_a, network) -> Session:
    """A's session at EVSE1 (AC, 3 phases, 230 V, 32 A), charging for 10 minutes."""
    return make_session(partner_a[0], EVSE.objects.get(uid="EVSE1"), ocpi_id="S1")


def amps_profile(**overrides) -> dict:
    profile = {
        "charging_rate_unit": "A",
        "charging_profile_period": [
            {"start_period": 0, "limit": 16},
            {"start_period": 1800, "limit": Decimal("6.5")},
        ],
    }
    profile.update(overrides)
    return profile


def put(client, session_id: str, body):
    return client.put(
        f"{PROFILES}/{session_id}", data=jsonutil.dumps(body), content_type="application/json"
    )


def answer_of(response, result: str, *, timeout: int = 30) -> dict:
    assert response.status_code == 200
    body = jsonutil.loads(response.content)
    assert body["status_code"] == 1000
    assert body["data"] == {"result": result, "timeout": timeout}
    validate_envelope(body, "ChargingProfileResponse")
    return body


def sent_result(schema: str = "ChargingProfileResult") -> tuple[OutboxMessage, dict]:
    row = OutboxMessage.objects.get()
    assert (row.method, row.interface_role, row.module) == ("POST", "RESPONSE", "chargingprofiles")
    body = jsonutil.loads(row.body)
    validate_ocpi(body, schema)
    return row, body


# --- limits (hand-computed) -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("power_type", "voltage", "amps", "unit", "limit", "watts"),
    [
        ("AC_3_PHASE", 230, 32, "A", Decimal(16), Decimal("11040.0")),  # 16 × 230 × 3
        ("AC_1_PHASE", 230, 32, "A", Decimal("10.5"), Decimal("2415.0")),  # 10.5 × 230
        ("AC_2_PHASE_SPLIT", 120, 40, "A", Decimal(30), Decimal("7200.0")),  # 30 × 120 × 2
        ("DC", 920, 200, "A", Decimal(100), Decimal("92000.0")),  # 100 × 920
        ("AC_3_PHASE", 230, 32, "W", Decimal("7400.5"), Decimal("7400.5")),
    ],
)
def test_a_limit_becomes_watts(db, power_type, voltage, amps, unit, limit, watts):
    # given
    connector = Connector(power_type=power_type, max_voltage=voltage, max_amperage=amps)

    # when / then
    assert limit_in_watts(limit, unit, connector) == watts


NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("profile", "minutes_charging", "expected"),
    [
        # relative to the start of charging: 16 A for 30 min, then 6.5 A
        (amps_profile(), 10, ChargingLimit(Decimal("11040.0"), NOW + timedelta(minutes=20))),
        (amps_profile(), 40, ChargingLimit(Decimal("4485.0"), None)),  # 6.5 × 230 × 3
        # duration 45 min: after it, no limit
        (
            amps_profile(duration=2700),
            40,
            ChargingLimit(Decimal("4485.0"), NOW + timedelta(5 / 1440)),
        ),
        (amps_profile(duration=2700), 50, ChargingLimit(None)),
        # absolute start one hour from now: no limit until then
        (
            amps_profile(start_date_time=format_datetime(NOW + timedelta(hours=1))),
            10,
            ChargingLimit(None, NOW + timedelta(hours=1)),
        ),
        # W, first period starting after 5 min
        (
            {
                "charging_rate_unit": "W",
                "charging_profile_period": [{"start_period": 300, "limit": Decimal("3700")}],
            },
            2,
            ChargingLimit(None, NOW + timedelta(minutes=3)),
        ),
        ({"charging_rate_unit": "W", "charging_profile_period": []}, 2, ChargingLimit(None)),
    ],
)
def test_the_limit_of_a_profile_now(db, profile, minutes_charging, expected):
    # given
    connector = Connector(power_type="AC_3_PHASE", max_voltage=230, max_amperage=32)
    session = Session(start_date_time=NOW - timedelta(minutes=minutes_charging))

    # when
    limit = limit_at(profile, session=session, connector=connector, at=NOW)

    # then
    assert limit.limit_w == expected.limit_w
    if expected.valid_until is None:
        assert limit.valid_until is None
    else:
        assert abs(limit.valid_until - expected.valid_until) < timedelta(seconds=1)


def test_the_active_profile_is_the_stored_one_seen_from_now(db):
    # given: 16 A for 30 min from the charging start, then 6.5 A, for 45 min; 10 min charged
    connector = Connector(power_type="AC_3_PHASE", max_voltage=230, max_amperage=32)
    session = Session(
        start_date_time=NOW - timedelta(minutes=10),
        charging_profile=jsonutil.loads(jsonutil.dumps(amps_profile(duration=2700))),
    )

    # when
    active = active_profile(session=session, connector=connector, at=NOW, duration=3600)

    # then: 16 A for 20 more minutes, 6.5 A for 15, then the connector's 32 A
    assert active == {
        "start_date_time": NOW,
        "charging_profile": {
            "duration": 3600,
            "charging_rate_unit": "A",
            "charging_profile_period": [
                {"start_period": 0, "limit": Decimal("16.0")},
                {"start_period": 1200, "limit": Decimal("6.5")},
                {"start_period": 2100, "limit": Decimal("32.0")},
            ],
        },
    }


def test_without_a_profile_the_active_profile_is_the_connectors_capacity(db):
    # given
    connector = Connector(
        power_type="DC", max_voltage=920, max_amperage=200, max_electric_power=150000
    )
    session = Session(start_date_time=NOW)

    # when
    active = active_profile(session=session, connector=connector, at=NOW, duration=600)

    # then
    assert active["charging_profile"] == {
        "duration": 600,
        "charging_rate_unit": "W",
        "charging_profile_period": [{"start_period": 0, "limit": Decimal("150000.0")}],
    }


# --- PUT ------------------------------------------------------------------------------------------
def test_setting_a_profile_hands_the_current_limit_to_the_charger(partner_a, session, charger):
    # when
    response = put(
        client_for(partner_a[1]),
        "s1",
        {"charging_profile": amps_profile(), "response_url": RESPONSE_URL},
    )

    # then: accepted at once; the charger gets 16 A × 230 V × 3 phases, until the next period
    answer_of(response, "ACCEPTED")
    method, call = charger.only_call()
    assert method == "set_charging_limit"
    assert call["transaction_ref"] == "TX-S1"
    assert call["limit"].limit_w == Decimal("11040.0")
    expected_until = session.start_date_time + timedelta(minutes=30)
    assert abs(call["limit"].valid_until - expected_until) < timedelta(seconds=1)
    command = CommandRequest.objects.get()
    assert (command.kind, command.state, command.session_ocpi_id) == (
        "SET_CHARGING_PROFILE",
        "WAITING",
        "S1",
    )
    # not stored before the charger accepted it
    session.refresh_from_db()
    assert session.charging_profile is None
    assert not OutboxMessage.objects.exists()


def test_an_accepted_profile_is_stored_and_the_result_sent(partner_a, session, charger):
    # given
    put(
        client_for(partner_a[1]),
        "S1",
        {"charging_profile": amps_profile(), "response_url": RESPONSE_URL},
    )

    # when: the charger accepts
    charger.answer(accepted=True)

    # then
    session.refresh_from_db()
    assert session.charging_profile == {
        "charging_rate_unit": "A",
        "charging_profile_period": [
            {"start_period": 0, "limit": 16},
            {"start_period": 1800, "limit": 6.5},
        ],
    }
    row, body = sent_result()
    assert row.path == RESPONSE_URL
    assert body == {"result": "ACCEPTED"}
    assert CommandRequest.objects.get().state == "ANSWERED"


def test_a_profile_the_charger_rejects_is_not_stored(partner_a, session, charger):
    # given
    put(
        client_for(partner_a[1]),
        "S1",
        {"charging_profile": amps_profile(), "response_url": RESPONSE_URL},
    )

    # when
    charger.answer(accepted=False, reason="UNKNOWN_TRANSACTION")

    # then
    session.refresh_from_db()
    assert session.charging_profile is None
    assert sent_result()[1] == {"result": "REJECTED"}


def test_a_partner_cannot_set_a_profile_on_another_partners_session(partner_b, session, charger):
    # when
    response = put(
        client_for(partner_b[1]),
        "S1",
        {"charging_profile": amps_profile(), "response_url": RESPONSE_URL},
    )

    # then: rejected, nothing reaches the charger, nothing is stored or sent
    answer_of(response, "REJECTED")
    assert charger.calls == []
    session.refresh_from_db()
    assert session.charging_profile is None
    assert not OutboxMessage.objects.exists()


def test_a_profile_for_an_unknown_session_is_unknown_session(partner_a, network, charger):
    # when
    response = put(
        client_for(partner_a[1]),
        "NOPE",
        {"charging_profile": amps_profile(), "response_url": RESPONSE_URL},
    )

    # then
    answer_of(response, "UNKNOWN_SESSION")
    assert charger.calls == []


@pytest.mark.parametrize(
    ("change", "result"),
    [
        ({"status": "COMPLETED"}, "REJECTED"),
        ({"transaction_ref": ""}, "REJECTED"),
    ],
)
def test_a_profile_for_a_session_that_is_not_charging_is_rejected(
    partner_a, session, charger, change, result
):
    # given
    Session.objects.filter(pk=session.pk).update(**change)

    # when
    response = put(
        client_for(partner_a[1]),
        "S1",
        {"charging_profile": amps_profile(), "response_url": RESPONSE_URL},
    )

    # then
    answer_of(response, result)
    assert charger.calls == []


def test_a_profile_at_an_evse_without_smart_charging_is_not_supported(partner_a, session, charger):
    # given
    EVSE.objects.filter(pk=session.evse_id).update(capabilities=["REMOTE_START_STOP_CAPABLE"])

    # when
    response = put(
        client_for(partner_a[1]),
        "S1",
        {"charging_profile": amps_profile(), "response_url": RESPONSE_URL},
    )

    # then
    answer_of(response, "NOT_SUPPORTED")
    assert charger.calls == []


def test_too_many_profile_requests_are_too_often(partner_a, session, charger):
    # given: ten requests in the last minute
    client = client_for(partner_a[1])
    for _ in range(10):
        answer_of(
            put(client, "S1", {"charging_profile": amps_profile(), "response_url": RESPONSE_URL}),
            "ACCEPTED",
        )

    # when
    response = put(client, "S1", {"charging_profile": amps_profile(), "response_url": RESPONSE_URL})

    # then
    answer_of(response, "TOO_OFTEN")
    assert len(charger.calls) == 10


@pytest.mark.parametrize(
    "body",
    [
        {"response_url": RESPONSE_URL},
        {"charging_profile": amps_profile()},
        {"charging_profile": amps_profile(charging_rate_unit="kW"), "response_url": RESPONSE_URL},
        {
            "charging_profile": amps_profile(
                charging_profile_period=[{"start_period": 0, "limit": -1}]
            ),
            "response_url": RESPONSE_URL,
        },
        {
            "charging_profile": amps_profile(
                charging_profile_period=[
                    {"start_period": 0, "limit": 6},
                    {"start_period": 0, "limit": 8},
                ]
            ),
            "response_url": RESPONSE_URL,
        },
        {"charging_profile": amps_profile(duration=-5), "response_url": RESPONSE_URL},
        {
            "charging_profile": amps_profile(start_date_time="tomorrow"),
            "response_url": RESPONSE_URL,
        },
        {"charging_profile": "16A", "response_url": RESPONSE_URL},
    ],
)
def test_an_invalid_profile_is_2001_and_changes_nothing(partner_a, session, charger, body):
    # when
    response = put(client_for(partner_a[1]), "S1", body)

    # then
    assert response.status_code == 400
    assert jsonutil.loads(response.content)["status_code"] == 2001
    assert charger.calls == []
    assert not CommandRequest.objects.exists()


def test_a_session_id_longer_than_36_characters_is_2001(partner_a, network, charger):
    # when
    response = put(
        client_for(partner_a[1]),
        "S" * 37,
        {"charging_profile": amps_profile(), "response_url": RESPONSE_URL},
    )

    # then
    assert response.status_code == 400
    assert jsonutil.loads(response.content)["status_code"] == 2001


# --- GET ------------------------------------------------------------------------------------------
def test_getting_the_active_profile_sends_it_to_the_response_url(partner_a, session, charger):
    # given: a stored 10 A profile
    Session.objects.filter(pk=session.pk).update(
        charging_profile={
            "charging_rate_unit": "A",
            "charging_profile_period": [{"start_period": 0, "limit": 10}],
        }
    )
    query = urlencode({"duration": 900, "response_url": RESPONSE_URL})

    # when
    response = client_for(partner_a[1]).get(f"{PROFILES}/S1?{query}")

    # then: accepted, and the ActiveChargingProfileResult is on its way (no charger round trip)
    answer_of(response, "ACCEPTED")
    assert charger.calls == []
    row, body = sent_result("ActiveChargingProfileResult")
    assert row.path == RESPONSE_URL
    assert body["result"] == "ACCEPTED"
    assert body["profile"]["charging_profile"] == {
        "duration": 900,
        "charging_rate_unit": "A",
        "charging_profile_period": [{"start_period": 0, "limit": 10}],
    }
    started = datetime.fromisoformat(body["profile"]["start_date_time"].replace("Z", "+00:00"))
    assert abs(started - timezone.now()) < timedelta(seconds=5)
    assert CommandRequest.objects.get().state == "ANSWERED"


@pytest.mark.parametrize(
    "query",
    [
        {"response_url": RESPONSE_URL},
        {"duration": 60},
        {"duration": "soon", "response_url": RESPONSE_URL},
    ],
)
def test_get_needs_duration_and_response_url(partner_a, session, charger, query):
    # when
    response = client_for(partner_a[1]).get(f"{PROFILES}/S1?{urlencode(query)}")

    # then
    assert response.status_code == 400
    assert jsonutil.loads(response.content)["status_code"] == 2001
    assert not CommandRequest.objects.exists()


def test_a_partner_cannot_read_another_partners_profile(partner_b, session, charger):
    # when
    query = urlencode({"duration": 900, "response_url": RESPONSE_URL})
    response = client_for(partner_b[1]).get(f"{PROFILES}/S1?{query}")

    # then
    answer_of(response, "REJECTED")
    assert not OutboxMessage.objects.exists()


# --- DELETE ---------------------------------------------------------------------------------------
def test_clearing_a_profile_lifts_the_limit_and_forgets_it_once_accepted(
    partner_a, session, charger
):
    # given
    Session.objects.filter(pk=session.pk).update(
        charging_profile=amps_profile() | {"charging_profile_period": []}
    )
    query = urlencode({"response_url": RESPONSE_URL})

    # when
    response = client_for(partner_a[1]).delete(f"{PROFILES}/S1?{query}")

    # then
    answer_of(response, "ACCEPTED")
    method, call = charger.only_call()
    assert (method, call["limit"]) == ("set_charging_limit", ChargingLimit(limit_w=None))

    # when: the charger accepts
    charger.answer(accepted=True)

    # then
    session.refresh_from_db()
    assert session.charging_profile is None
    assert sent_result()[1] == {"result": "ACCEPTED"}


def test_clearing_without_a_profile_answers_unknown(partner_a, session, charger):
    # when
    response = client_for(partner_a[1]).delete(
        f"{PROFILES}/S1?{urlencode({'response_url': RESPONSE_URL})}"
    )

    # then
    answer_of(response, "ACCEPTED")
    assert charger.calls == []
    assert sent_result("ClearProfileResult")[1] == {"result": "UNKNOWN"}


def test_a_partner_cannot_clear_another_partners_profile(partner_b, session, charger):
    # given
    stored = {
        "charging_rate_unit": "W",
        "charging_profile_period": [{"start_period": 0, "limit": 3700}],
    }
    Session.objects.filter(pk=session.pk).update(charging_profile=stored)

    # when
    response = client_for(partner_b[1]).delete(
        f"{PROFILES}/S1?{urlencode({'response_url': RESPONSE_URL})}"
    )

    # then
    answer_of(response, "REJECTED")
    assert charger.calls == []
    session.refresh_from_db()
    assert session.charging_profile == stored


def test_clear_needs_a_response_url(partner_a, session, charger):
    # when
    response = client_for(partner_a[1]).delete(f"{PROFILES}/S1")

    # then
    assert response.status_code == 400
    assert jsonutil.loads(response.content)["status_code"] == 2001


def test_an_unanswered_profile_request_is_rejected_when_its_window_closes(
    partner_a, session, charger
):
    # given: a SET the charger never answers
    put(
        client_for(partner_a[1]),
        "S1",
        {"charging_profile": amps_profile(), "response_url": RESPONSE_URL},
    )
    from ocpi.commands import commands_expire

    # when
    commands_expire(now=timezone.now() + timedelta(seconds=26))

    # then: ChargingProfileResultType has no TIMEOUT
    command = CommandRequest.objects.get()
    assert (command.state, command.result) == ("TIMED_OUT", "REJECTED")
    assert sent_result()[1] == {"result": "REJECTED"}


def test_a_dc_connector_limit(partner_a, network, charger):
    # given: a session at a DC charger with a W profile
    evse = ConnectorFactory(dc=True).evse
    EVSE.objects.filter(pk=evse.pk).update(capabilities=["CHARGING_PROFILE_CAPABLE"])
    make_session(partner_a[0], evse, ocpi_id="DC1")
    profile = {
        "charging_rate_unit": "W",
        "charging_profile_period": [{"start_period": 0, "limit": 50000}],
    }

    # when
    response = put(
        client_for(partner_a[1]), "DC1", {"charging_profile": profile, "response_url": RESPONSE_URL}
    )

    # then
    answer_of(response, "ACCEPTED")
    assert charger.only_call()[1]["limit"].limit_w == Decimal("50000.0")


def test_the_module_url_without_a_session_is_404(partner_a, network, charger):
    # when
    response = put(client_for(partner_a[1]), "", {"charging_profile": amps_profile()})

    # then
    assert response.status_code == 404
    assert jsonutil.loads(response.content)["status_code"] == 2000
    assert charger.calls == []
