"""Charging sessions from what the chargers report (billing/sessions.py): attribution, kWh and
charging periods, throttled announcements, the final update, and partners' requests."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.exceptions import (
    ChargingPreferencesNotSupported,
    NotYourSession,
    SessionNotActive,
    UnknownSession,
)
from billing.models import ChargingPeriod, Reservation, Session, Token
from billing.models_sessions import PendingStart
from billing.sessions import (
    pending_start_register,
    session_set_charging_preferences,
    session_stop_request,
)
from billing.signals import session_changed
from stations import gateway
from stations.models_simulator import SimulatedCommand
from stations.simulator import SimulatorGateway
from tests.factories import EVSEFactory, PriceComponentFactory, TariffElementFactory, TariffFactory

pytestmark = pytest.mark.django_db

# 08:50 in Amsterdam (CET), a Monday.
T0 = datetime(2025, 3, 3, 7, 50, tzinfo=UTC)
CDR_TOKEN = {
    "country_code": "DE",
    "party_id": "EMS",
    "uid": "04A1B2C3",
    "type": "RFID",
    "contract_id": "DE-EMS-C00000001",
}


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.SESSION_PATCH_INTERVAL = 0
    settings.SIMULATOR_TIME_SCALE = 3600


@pytest.fixture
def announcements():
    got = []

    def record(sender, **kwargs):
        kwargs.pop("signal", None)
        got.append(kwargs)

    session_changed.connect(record, weak=False, dispatch_uid="test-session-changed")
    yield got
    session_changed.disconnect(dispatch_uid="test-session-changed")


@pytest.fixture
def partner(make_partner):
    return make_partner()[0]


@pytest.fixture
def tariff():
    """0.30 EUR/kWh excl. 21 % VAT."""
    return TariffFactory(ocpi_id="T-ENERGY", type="REGULAR")


@pytest.fixture
def evse(tariff):
    evse = EVSEFactory(
        connectors=0,
        capabilities=["REMOTE_START_STOP_CAPABLE", "RFID_READER", "CHARGING_PREFERENCES_CAPABLE"],
    )
    evse.connectors.create(
        ocpi_id="1", standard="IEC_62196_T2", format="SOCKET", power_type="AC_3_PHASE",
        max_voltage=230, max_amperage=32, tariff_ids=[tariff.ocpi_id],
    )  # fmt: skip
    return evse


@pytest.fixture
def connector(evse):
    return evse.connectors.get()


def started(evse, *, at=T0, request_ref="REQ-1", id_tag="04A1B2C3", tx="TX-1", start_wh="1000"):
    gateway.transaction_started.send(
        sender=None, transaction_ref=tx, evse=evse, connector=evse.connectors.get(),
        id_tag=id_tag, meter_start_wh=Decimal(start_wh), timestamp=at, request_ref=request_ref,
        reservation_ref=None,
    )  # fmt: skip
    return Session.objects.get(transaction_ref=tx)


def reading(minutes, wh, *, kw="11", charging=True, tx="TX-1", amps="47.83"):
    gateway.meter_values.send(
        sender=None, transaction_ref=tx, energy_wh=Decimal(wh), power_w=Decimal(kw) * 1000,
        current_a=Decimal(amps), charging=charging, timestamp=T0 + timedelta(minutes=minutes),
    )  # fmt: skip


def stopped(minutes, wh, *, tx="TX-1", reason="EV_DISCONNECTED"):
    gateway.transaction_stopped.send(
        sender=None, transaction_ref=tx, meter_stop_wh=Decimal(wh),
        timestamp=T0 + timedelta(minutes=minutes), reason=reason,
    )  # fmt: skip


def register(partner, evse, **overrides):
    values = {
        "request_ref": "REQ-1",
        "partner_id": partner.pk,
        "cdr_token": CDR_TOKEN,
        "auth_method": "COMMAND",
        "authorization_reference": "AUTH-REF-1",
        "location": evse.location,
        "evse": evse,
        "connector": evse.connectors.get(),
    }
    return pending_start_register(**(values | overrides))


def periods(session) -> list[tuple]:
    return [
        (p.start_date_time, p.charging, p.tariff_id, {d["type"]: d["volume"] for d in p.dimensions})
        for p in ChargingPeriod.objects.filter(session=session).order_by("start_date_time", "pk")
    ]


def make_token(partner, uid="04A1B2C3", **fields) -> Token:
    return Token.objects.create(
        partner=partner, country_code="DE", party_id="EMS", uid=uid, contract_id="DE-EMS-C1",
        issuer="EMS", last_updated=timezone.now(), **fields,
    )  # fmt: skip


# --- starting --------------------------------------------------------------------------------
def test_a_remote_start_becomes_an_active_session_of_the_commanding_partner(
    partner, evse, announcements
):
    # given: the commands layer registered the start before asking the charger
    register(partner, evse)

    # when: the charger reports the transaction
    session = started(evse)

    # then
    assert session.status == "ACTIVE"
    assert session.partner == partner
    assert session.cdr_token == CDR_TOKEN
    assert (session.auth_method, session.authorization_reference) == ("COMMAND", "AUTH-REF-1")
    assert (session.location, session.evse) == (evse.location, evse)
    assert (session.country_code, session.party_id) == ("NL", "CPO")
    assert session.start_date_time == T0
    assert (session.kwh, session.meter_start_wh, session.currency) == (0, 1000, "EUR")
    assert session.ocpi_id.startswith("20250303-")
    assert len(session.ocpi_id) == 19
    assert PendingStart.objects.get().session == session
    (announced,) = announcements
    assert announced["created"] is True
    assert announced["final"] is False
    assert announced["new_periods"] == []


def test_a_repeated_start_report_makes_no_second_session(partner, evse, announcements):
    # given
    register(partner, evse)
    first = started(evse)

    # when
    second = started(evse)

    # then
    assert first == second
    assert Session.objects.count() == 1
    assert len(announcements) == 1


def test_a_swipe_is_matched_by_token_uid_at_the_same_evse(partner, evse):
    # given: the platform authorized a swipe (real time, with a reference)
    register(partner, evse, request_ref="SWIPE-1", auth_method="AUTH_REQUEST",
             authorization_reference="RT-9")  # fmt: skip

    # when: the charger reports a local start (no reference), uid in other case
    session = started(evse, request_ref=None, id_tag="04a1b2c3")

    # then
    assert (session.auth_method, session.authorization_reference) == ("AUTH_REQUEST", "RT-9")
    assert session.partner == partner


def test_a_swipe_elsewhere_is_not_matched_and_the_cached_token_decides(partner, evse):
    # given: an authorization at another EVSE, and the token in the cache
    register(partner, EVSEFactory(), request_ref="SWIPE-2", auth_method="AUTH_REQUEST")
    token = make_token(partner)

    # when
    session = started(evse, request_ref=None)

    # then: the charger let it charge from its own whitelist
    assert session.auth_method == "WHITELIST"
    assert session.token == token
    assert session.cdr_token == token.cdr_token()
    assert PendingStart.objects.get().session is None


def test_a_transaction_of_an_unknown_token_is_invalid_and_told_to_nobody(evse, announcements):
    # when
    session = started(evse, request_ref=None, id_tag="DEADBEEF")
    reading(10, 3000)
    stopped(20, 3000)

    # then
    session.refresh_from_db()
    assert session.status == "INVALID"
    assert session.partner is None
    assert session.kwh == Decimal("2.0000")
    assert announcements == []


def test_a_start_on_a_reservation_marks_it_used(partner, evse):
    # given
    reservation = Reservation.objects.create(
        partner=partner, reservation_id="R1", location=evse.location, evse=evse,
        cdr_token=CDR_TOKEN, expiry_date=T0 + timedelta(hours=1), status="ACTIVE",
    )  # fmt: skip
    register(partner, evse)

    # when
    gateway.transaction_started.send(
        sender=None, transaction_ref="TX-R", evse=evse, connector=evse.connectors.get(),
        id_tag="04A1B2C3", meter_start_wh=Decimal(0), timestamp=T0, request_ref="REQ-1",
        reservation_ref=reservation.pk,
    )  # fmt: skip

    # then
    session = Session.objects.get(transaction_ref="TX-R")
    assert session.reservation == reservation
    reservation.refresh_from_db()
    assert reservation.status == "USED"


# --- metering and periods ----------------------------------------------------------------------
def test_readings_grow_kwh_and_charging_to_parking_opens_a_period(partner, evse, connector):
    # given
    register(partner, evse)
    session = started(evse)

    # when: 4 kWh in 30 min, then full; unplugged an hour after the start
    reading(10, 2333)
    reading(20, 3667, kw="10")
    reading(30, 5000, kw="0", charging=False)
    reading(45, 5000, kw="0", charging=False)
    stopped(60, 5000)

    # then
    session.refresh_from_db()
    assert session.kwh == Decimal("4.0000")
    assert (session.status, session.end_date_time) == ("COMPLETED", T0 + timedelta(hours=1))
    assert session.stop_reason == "EV_DISCONNECTED"
    assert periods(session) == [
        (T0, True, "T-ENERGY", {"ENERGY": "4.0000", "TIME": "0.5000", "MAX_POWER": "11.000",
                                "MIN_POWER": "10.000"}),
        (T0 + timedelta(minutes=30), False, "T-ENERGY", {"ENERGY": "0.0000",
                                                         "PARKING_TIME": "0.5000"}),
    ]  # fmt: skip


def test_a_reading_older_than_the_last_one_is_ignored(partner, evse):
    # given
    register(partner, evse)
    session = started(evse)
    reading(20, 3000)

    # when
    reading(10, 2000)

    # then
    session.refresh_from_db()
    assert session.kwh == Decimal("2.0000")


def test_a_period_starts_where_a_restriction_of_the_tariff_changes(partner, evse, tariff):
    # given: the first 2 kWh cost more
    element = tariff.elements.get()
    element.max_kwh = Decimal(2)
    element.save()
    TariffElementFactory(tariff=tariff, price_components__price=Decimal("0.20"))
    register(partner, evse)
    session = started(evse)

    # when
    reading(5, 1900)
    reading(10, 3000)
    reading(15, 4000)

    # then: cut at the first reading past 2 kWh (the open period is not published yet)
    assert [(p[0], p[3]["ENERGY"]) for p in periods(session)] == [
        (T0, "2.0000"),
        (T0 + timedelta(minutes=10), "1.0000"),
    ]


def test_a_period_starts_where_the_local_time_of_day_enters_a_priced_window(partner, evse, tariff):
    # given: parking costs 3.00/h from 09:00 local time (08:00 UTC in March)
    element = TariffElementFactory(
        tariff=tariff, start_time="09:00", end_time="20:00", price_components__type="PARKING_TIME",
        price_components__price=Decimal("3.00"),
    )  # fmt: skip
    assert element.start_time == "09:00"
    register(partner, evse)
    session = started(evse)

    # when: readings at 08:55 and 09:05 local time
    reading(5, 1500)
    reading(15, 2000)
    stopped(20, 2500)

    # then
    assert [p[0] for p in periods(session)] == [T0, T0 + timedelta(minutes=15)]


def test_a_period_starts_where_a_weekday_restriction_stops_holding(partner, evse, tariff):
    # given: cheaper energy at weekends, first in the tariff; a charge from Sunday 23:50 local
    weekend = TariffElementFactory(
        tariff=tariff, day_of_week=["SATURDAY", "SUNDAY"], price_components__price=Decimal("0.2")
    )
    tariff.elements.exclude(pk=weekend.pk).update(position=5)
    sunday = datetime(2025, 3, 2, 22, 50, tzinfo=UTC)
    register(partner, evse)
    session = started(evse, at=sunday)

    # when: readings at 23:55 on Sunday and 00:05 on Monday
    for minutes, wh in ((5, 1500), (15, 2500)):
        gateway.meter_values.send(
            sender=None, transaction_ref="TX-1", energy_wh=Decimal(wh), power_w=Decimal(11000),
            current_a=Decimal(48), charging=True, timestamp=sunday + timedelta(minutes=minutes),
        )  # fmt: skip
    stopped(30, 3000)

    # then
    assert [p[0] for p in periods(session)] == [sunday, sunday + timedelta(minutes=15)]


def test_the_cost_so_far_comes_from_the_tariff_maths(partner, evse):
    # given: 0.30 EUR/kWh excl. 21 % VAT
    register(partner, evse)
    session = started(evse)

    # when: 4 kWh
    reading(20, 5000)
    stopped(30, 5000)

    # then
    session.refresh_from_db()
    assert (session.total_cost_excl_vat, session.total_cost_incl_vat) == (
        Decimal("1.2000"),
        Decimal("1.4500"),
    )


def test_without_tariff_the_cost_stays_unknown(partner):
    # given: a connector without tariffs
    evse = EVSEFactory()
    register(partner, evse)
    session = started(evse)

    # when
    reading(20, 5000)
    stopped(30, 5000)

    # then
    session.refresh_from_db()
    assert session.total_cost_excl_vat is None
    assert session.periods.get().tariff_id == ""


# --- announcements -------------------------------------------------------------------------------
def test_every_change_is_announced_with_the_newly_closed_periods(partner, evse, announcements):
    # given: no throttling
    register(partner, evse)
    session = started(evse)

    # when
    reading(10, 2333)
    reading(30, 5000, kw="0", charging=False)
    reading(45, 5000, kw="0", charging=False)  # nothing changed
    stopped(60, 5000)

    # then: start, two progress updates, the end
    assert [(a["created"], a["final"]) for a in announcements] == [
        (True, False), (False, False), (False, False), (False, True),
    ]  # fmt: skip
    progress = announcements[1]
    assert progress["changed_fields"] == {"kwh", "total_cost", "last_updated"}
    assert progress["new_periods"] == []
    switched = announcements[2]
    assert "charging_periods" in switched["changed_fields"]
    assert [p.start_date_time for p in switched["new_periods"]] == [T0]
    final = announcements[3]
    assert final["session"].status == "COMPLETED"
    assert [p.start_date_time for p in final["new_periods"]] == [T0 + timedelta(minutes=30)]
    session.refresh_from_db()
    assert session.last_announced_at is not None


def test_progress_is_announced_at_most_once_per_interval(partner, evse, announcements, settings):
    # given
    settings.SESSION_PATCH_INTERVAL = 3600
    register(partner, evse)
    started(evse)

    # when
    for minute in range(1, 6):
        reading(minute, 1000 + minute * 180)
    stopped(6, 2100)

    # then: the start and the end only
    assert [(a["created"], a["final"]) for a in announcements] == [(True, False), (False, True)]


# --- stop requests -----------------------------------------------------------------------------
def test_a_partner_may_stop_only_its_own_running_session(partner, make_partner, evse):
    # given
    other, _ = make_partner("Other eMSP", country_code="FR", party_id="OTH")
    register(partner, evse)
    session = started(evse)

    # when / then
    assert session_stop_request(partner=partner, session_ocpi_id=session.ocpi_id.lower()) == session
    with pytest.raises(NotYourSession):
        session_stop_request(partner=other, session_ocpi_id=session.ocpi_id)
    with pytest.raises(UnknownSession):
        session_stop_request(partner=partner, session_ocpi_id="NOPE")
    stopped(10, 2000)
    with pytest.raises(SessionNotActive):
        session_stop_request(partner=partner, session_ocpi_id=session.ocpi_id)


# --- charging preferences ------------------------------------------------------------------------
@pytest.fixture
def running(partner, evse):
    """An ACTIVE session on a connector with a REGULAR and a PROFILE_CHEAP tariff."""
    cheap = TariffFactory(ocpi_id="T-CHEAP", type="PROFILE_CHEAP", elements=0)
    PriceComponentFactory(element=TariffElementFactory(tariff=cheap, price_components=0),
                          price=Decimal("0.20"))  # fmt: skip
    connector = evse.connectors.get()
    connector.tariff_ids = ["T-ENERGY", "T-CHEAP"]
    connector.save()
    register(partner, evse)
    return started(evse, tx="SIM-1-1")


def prefs(profile, *, hours=4, need="20", **extra):
    return {
        "profile_type": profile,
        "departure_time": timezone.now() + timedelta(hours=hours) if hours is not None else None,
        "energy_need": Decimal(need) if need is not None else None,
        "discharge_allowed": None,
        **extra,
    }


def test_cheap_charging_is_accepted_and_handed_to_the_charger_as_a_limit(partner, running):
    # when: 20 kWh within 4 hours
    answer = session_set_charging_preferences(
        partner=partner, session_ocpi_id=running.ocpi_id, preferences=prefs("CHEAP")
    )

    # then: 5 kW needed on average, 6.25 kW with the margin
    assert answer == "ACCEPTED"
    running.refresh_from_db()
    assert running.charging_preferences["profile_type"] == "CHEAP"
    assert running.charging_preferences["energy_need"] == "20"
    command = SimulatedCommand.objects.get(kind="SET_LIMIT")
    assert command.params["transaction_ref"] == "SIM-1-1"
    # (the clock moves on between the test's "in 4 hours" and the service's: allow a watt)
    assert abs(Decimal(command.params["limit_w"]) - Decimal("6250.0")) <= Decimal(1)
    assert command.params["valid_until"] is not None


def test_the_profile_tariff_applies_from_the_next_reading(partner, running):
    # given
    session_set_charging_preferences(
        partner=partner, session_ocpi_id=running.ocpi_id, preferences=prefs("CHEAP")
    )

    # when
    reading(10, 2000, tx="SIM-1-1")

    # then
    assert [(p[0], p[2]) for p in periods(running)] == [
        (T0, "T-ENERGY"),
        (T0 + timedelta(minutes=10), "T-CHEAP"),
    ]


def test_regular_and_fast_preferences_clear_the_limit(partner, running):
    # when
    answer = session_set_charging_preferences(
        partner=partner, session_ocpi_id=running.ocpi_id,
        preferences=prefs("REGULAR", hours=None, need=None),
    )  # fmt: skip

    # then
    assert answer == "ACCEPTED"
    assert SimulatedCommand.objects.get(kind="SET_LIMIT").params["limit_w"] is None


@pytest.mark.parametrize(
    ("preferences", "expected"),
    [
        (prefs("GREEN"), "PROFILE_TYPE_NOT_SUPPORTED"),
        (prefs("FAST"), "PROFILE_TYPE_NOT_SUPPORTED"),
        (prefs("CHEAP", hours=None), "DEPARTURE_REQUIRED"),
        (prefs("CHEAP", need=None), "ENERGY_NEED_REQUIRED"),
        (prefs("CHEAP", hours=-1), "NOT_POSSIBLE"),
        # 100 kWh in 2 hours at 22 kW cannot be done
        (prefs("CHEAP", hours=2, need="100"), "NOT_POSSIBLE"),
    ],
)
def test_preferences_that_cannot_be_honoured_are_answered_and_change_nothing(
    partner, running, preferences, expected
):
    # when
    answer = session_set_charging_preferences(
        partner=partner, session_ocpi_id=running.ocpi_id, preferences=preferences
    )

    # then
    assert answer == expected
    running.refresh_from_db()
    assert running.charging_preferences is None
    assert not SimulatedCommand.objects.exists()


def test_preferences_for_an_ended_session_are_not_possible(partner, running):
    # given
    stopped(10, 2000, tx="SIM-1-1")

    # when / then
    assert (
        session_set_charging_preferences(
            partner=partner, session_ocpi_id=running.ocpi_id, preferences=prefs("CHEAP")
        )
        == "NOT_POSSIBLE"
    )


def test_preferences_need_a_capable_evse_and_the_partners_own_session(
    partner, make_partner, running
):
    # given
    other, _ = make_partner("Other eMSP", country_code="FR", party_id="OTH")

    # when / then
    with pytest.raises(NotYourSession):
        session_set_charging_preferences(
            partner=other, session_ocpi_id=running.ocpi_id, preferences=prefs("CHEAP")
        )
    with pytest.raises(UnknownSession):
        session_set_charging_preferences(
            partner=partner, session_ocpi_id="NOPE", preferences=prefs("CHEAP")
        )
    running.evse.capabilities = ["REMOTE_START_STOP_CAPABLE"]
    running.evse.save()
    with pytest.raises(ChargingPreferencesNotSupported):
        session_set_charging_preferences(
            partner=partner, session_ocpi_id=running.ocpi_id, preferences=prefs("CHEAP")
        )


def test_an_unreachable_charger_makes_preferences_not_possible(partner, running, monkeypatch):
    # given: the gateway cannot ask the charger
    monkeypatch.setattr(SimulatorGateway, "set_charging_limit", lambda self, **kw: False)

    # when / then
    assert (
        session_set_charging_preferences(
            partner=partner, session_ocpi_id=running.ocpi_id, preferences=prefs("CHEAP")
        )
        == "NOT_POSSIBLE"
    )
    running.refresh_from_db()
    assert running.charging_preferences is None


def test_the_place_and_tariffs_are_frozen_at_the_start_for_the_cdr(partner, evse, tariff):
    # given: a session started at the 0.30 EUR/kWh tariff
    register(partner, evse)
    session = started(evse)

    # when: the street is renamed and the price changes during the session
    location = evse.location
    location.address = "Nieuwe Straat 1"
    location.save()
    component = tariff.elements.get().price_components.get()
    component.price = Decimal("0.99")
    component.save()

    # then: the snapshot still shows the place and the price at the start
    snapshot = session.snapshot
    snapshot.refresh_from_db()
    assert snapshot.cdr_location["address"] != "Nieuwe Straat 1"
    assert snapshot.cdr_location | {"address": "-"} == {
        "id": location.ocpi_id, "name": location.name, "address": "-", "city": "Amsterdam",
        "postal_code": "1015 CJ", "country": "NLD",
        "coordinates": {"latitude": location.latitude, "longitude": location.longitude},
        "evse_uid": evse.uid, "evse_id": evse.evse_id, "connector_id": "1",
        "connector_standard": "IEC_62196_T2", "connector_format": "SOCKET",
        "connector_power_type": "AC_3_PHASE",
    }  # fmt: skip
    (frozen,) = snapshot.tariffs
    assert frozen["id"] == "T-ENERGY"
    assert frozen["elements"] == [
        {"price_components": [{"type": "ENERGY", "price": "0.3000", "vat": "21.00",
                               "step_size": 1}]}
    ]  # fmt: skip
