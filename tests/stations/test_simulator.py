"""The charger simulator behind the gateway (stations/simulator.py): commands answered later,
EVSE statuses, the charging physics on a faster clock, and the reports chargers send."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from billing.models import Session, Token
from stations import gateway
from stations.models import EVSE
from stations.models_simulator import SimulatedCharger, SimulatedCommand, SimulatedTransaction
from stations.simulator import (
    SimulatorGateway,
    answer_command,
    connector_power_w,
    plug_in,
    simulator_tick,
    unplug,
)
from stations.tasks import simulator_answer_task, simulator_tick_task
from tests.factories import ConnectorFactory, EVSEFactory

pytestmark = pytest.mark.django_db

SIGNALS = {
    "answered": gateway.command_answered,
    "started": gateway.transaction_started,
    "meter": gateway.meter_values,
    "stopped": gateway.transaction_stopped,
    "reservation_ended": gateway.reservation_ended,
}


@pytest.fixture(autouse=True)
def _fast_clock(settings):
    # One real second is one simulated hour.
    settings.SIMULATOR_TIME_SCALE = 3600
    settings.SIMULATOR_RESPONSE_SECONDS = 2


@pytest.fixture
def reports():
    """What the chargers report, in order: (signal name, kwargs)."""
    got = []
    handlers = {}
    for name, signal in SIGNALS.items():

        def handler(sender, _name=name, **kwargs):
            kwargs.pop("signal", None)
            got.append((_name, kwargs))

        handlers[name] = handler
        signal.connect(handler, weak=False, dispatch_uid=f"test-{name}")
    yield got
    for name, signal in SIGNALS.items():
        signal.disconnect(dispatch_uid=f"test-{name}")


def of(reports, name):
    return [kwargs for n, kwargs in reports if n == name]


def vehicle(evse, **values):
    """The next vehicle plugged into `evse`: 11 kW AC / 100 kW DC, 50 kWh, 20 % → 100 %."""
    data = {
        "battery_kwh": "50",
        "soc_start": "20",
        "target_soc": "100",
        "max_power_w": "100000" if evse.connectors.first().power_type == "DC" else "11000",
        "pack_voltage": "400",
        "unplug_after_s": None,
        "idle_after_full_s": "600",
    }
    data.update({k: None if v is None else str(v) for k, v in values.items()})
    SimulatedCharger.objects.update_or_create(evse=evse, defaults={"next_vehicle": data})


def answer_all(now):
    for command in SimulatedCommand.objects.filter(answered_at__isnull=True):
        answer_command(command.pk, now=now)


def start(evse, now, *, id_tag="TAG1", request_ref="REQ-1") -> SimulatedTransaction:
    assert SimulatorGateway().start_transaction(
        request_ref=request_ref, evse_pk=evse.pk, connector_pk=None, id_tag=id_tag
    )
    answer_all(now)
    return SimulatedTransaction.objects.get(charger__evse=evse, state__in=("CHARGING", "PARKING"))


@pytest.fixture
def t0():
    now = timezone.now()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@pytest.fixture
def ac_evse():
    """A 22 kW AC EVSE (3 × 230 V × 32 A)."""
    return EVSEFactory()


@pytest.fixture
def dc_evse():
    evse = EVSEFactory(connectors=0)
    ConnectorFactory(evse=evse, dc=True)
    return evse


# --- connector power ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "watts"),
    [
        ({"power_type": "AC_3_PHASE", "max_voltage": 230, "max_amperage": 32}, 22080),
        ({"power_type": "AC_1_PHASE", "max_voltage": 230, "max_amperage": 16}, 3680),
        ({"power_type": "AC_2_PHASE_SPLIT", "max_voltage": 120, "max_amperage": 40}, 9600),
        ({"power_type": "DC", "max_voltage": 500, "max_amperage": 125}, 62500),
        ({"power_type": "AC_3_PHASE", "max_voltage": 230, "max_amperage": 32,
          "max_electric_power": 11000}, 11000),
    ],
)  # fmt: skip
def test_a_connector_delivers_its_max_electric_power_else_volts_times_amps_times_phases(
    fields, watts
):
    # given
    connector = ConnectorFactory(**fields)

    # when / then
    assert connector_power_w(connector) == Decimal(watts)


# --- commands -----------------------------------------------------------------------------------
def test_a_remote_start_is_answered_later_then_the_transaction_starts(ac_evse, t0, reports):
    # given
    vehicle(ac_evse)

    # when: the gateway is asked
    asked = SimulatorGateway().start_transaction(
        request_ref="REQ-1", evse_pk=ac_evse.pk, connector_pk=None, id_tag="TAG1"
    )

    # then: nothing is answered yet; the answer is due after 2 s / 3600
    assert asked is True
    command = SimulatedCommand.objects.get()
    assert (command.kind, command.request_ref, command.answered_at) == ("START", "REQ-1", None)
    assert command.due_at - command.created == timedelta(microseconds=556)
    assert reports == []

    # when: the charger answers
    answer_command(command.pk, now=t0)

    # then: accepted, then the transaction starts and the EVSE is CHARGING
    assert [name for name, _ in reports] == ["answered", "started", "meter"]
    assert of(reports, "answered") == [{"request_ref": "REQ-1", "accepted": True, "reason": ""}]
    (started,) = of(reports, "started")
    assert started["request_ref"] == "REQ-1"
    assert started["id_tag"] == "TAG1"
    assert started["evse"].pk == ac_evse.pk
    assert started["connector"] == ac_evse.connectors.get()
    assert started["meter_start_wh"] == Decimal(0)
    assert started["timestamp"] == t0
    assert started["reservation_ref"] is None
    assert EVSE.objects.get(pk=ac_evse.pk).status == "CHARGING"
    (reading,) = of(reports, "meter")
    assert (reading["energy_wh"], reading["power_w"], reading["charging"]) == (0, 11000, True)


def test_answering_twice_changes_nothing(ac_evse, t0, reports):
    # given
    start(ac_evse, t0)
    command = SimulatedCommand.objects.get()
    reports.clear()

    # when
    answered = answer_command(command.pk, now=t0 + timedelta(seconds=1))

    # then
    assert answered is False
    assert reports == []
    assert SimulatedTransaction.objects.count() == 1


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("OUTOFORDER", "FAULTED"),
        ("INOPERATIVE", "FAULTED"),
        ("REMOVED", "FAULTED"),
        ("CHARGING", "OCCUPIED"),
        ("RESERVED", "OCCUPIED"),
        ("BLOCKED", "OCCUPIED"),
    ],
)
def test_a_faulted_or_occupied_evse_rejects_a_start(status, reason, t0, reports):
    # given
    evse = EVSEFactory(status=status)

    # when
    SimulatorGateway().start_transaction(
        request_ref="REQ-9", evse_pk=evse.pk, connector_pk=None, id_tag="TAG1"
    )
    answer_all(t0)

    # then: rejected, nothing started, the status is untouched
    assert reports == [("answered", {"request_ref": "REQ-9", "accepted": False, "reason": reason})]
    assert not SimulatedTransaction.objects.exists()
    assert EVSE.objects.get(pk=evse.pk).status == status


def test_an_evse_with_a_running_transaction_rejects_a_second_start(ac_evse, t0, reports):
    # given
    start(ac_evse, t0)
    reports.clear()

    # when
    SimulatorGateway().start_transaction(
        request_ref="REQ-2", evse_pk=ac_evse.pk, connector_pk=None, id_tag="TAG2"
    )
    answer_all(t0)

    # then
    assert reports == [("answered", {"request_ref": "REQ-2", "accepted": False,
                                     "reason": "OCCUPIED"})]  # fmt: skip
    assert SimulatedTransaction.objects.count() == 1


def test_an_offline_or_unknown_charger_cannot_even_be_asked(t0):
    # given
    offline = EVSEFactory(status="UNKNOWN")
    other_connector = ConnectorFactory()

    # when / then
    gw = SimulatorGateway()
    assert gw.start_transaction(request_ref="A", evse_pk=offline.pk, connector_pk=None,
                                id_tag="T") is False  # fmt: skip
    assert gw.start_transaction(request_ref="B", evse_pk=999999, connector_pk=None,
                                id_tag="T") is False  # fmt: skip
    assert gw.start_transaction(request_ref="C", evse_pk=EVSEFactory().pk,
                                connector_pk=other_connector.pk, id_tag="T") is False  # fmt: skip
    assert gw.unlock_connector(request_ref="D", connector_pk=999999) is False
    assert not SimulatedCommand.objects.exists()


def test_the_gateway_setting_names_the_simulator(settings):
    # given
    settings.CHARGER_GATEWAY = "stations.simulator.SimulatorGateway"

    # when / then
    assert isinstance(gateway.gateway(), SimulatorGateway)


# --- physics -----------------------------------------------------------------------------------
def test_ac_charges_flat_at_the_lower_of_connector_and_vehicle_power(ac_evse, t0, reports):
    # given: a 22 kW connector and an 11 kW on-board charger, plugged in at t0
    vehicle(ac_evse, battery_kwh=60, soc_start=10)
    start(ac_evse, t0)
    reports.clear()

    # when: 1 and 2 real seconds later (1 and 2 simulated hours)
    simulator_tick(now=t0 + timedelta(seconds=1))
    simulator_tick(now=t0 + timedelta(seconds=2))

    # then: 11 kWh per hour, at constant power; the timestamps are real
    readings = of(reports, "meter")
    assert [r["energy_wh"] for r in readings] == [Decimal("11000.000"), Decimal("22000.000")]
    assert [r["power_w"] for r in readings] == [11000, 11000]
    # 11 kW on three phases of 230 V: 47.83 A summed over the phases
    assert [r["current_a"] for r in readings] == [Decimal("47.83"), Decimal("47.83")]
    assert [r["timestamp"] for r in readings] == [
        t0 + timedelta(seconds=1),
        t0 + timedelta(seconds=2),
    ]
    tx = SimulatedTransaction.objects.get()
    assert abs(tx.soc - Decimal("46.6667")) <= Decimal("0.0001")  # 10 % + 22 kWh of 60 kWh


def test_dc_tapers_above_80_percent(dc_evse, t0, reports):
    # given: a 150 kW charger, a 100 kW car at 60 % of 50 kWh
    vehicle(dc_evse, soc_start=60, target_soc=100)
    start(dc_evse, t0)
    reports.clear()

    # when: a tick every 3 simulated minutes
    for n in range(1, 9):
        simulator_tick(now=t0 + timedelta(milliseconds=50 * n))

    # then: full power up to 80 %, then less and less
    powers = [r["power_w"] for r in of(reports, "meter")]
    socs = [SimulatedTransaction.objects.get().soc]
    assert powers[0] == 100000
    assert powers == sorted(powers, reverse=True)
    assert powers[-1] < 40000
    assert socs[0] > 90
    energies = [r["energy_wh"] for r in of(reports, "meter")]
    assert energies == sorted(energies)


def test_a_full_ev_parks_until_the_driver_unplugs(ac_evse, t0, reports):
    # given: 5 kWh to go at 11 kW (27 min 16 s), the driver back 10 min after it is full
    vehicle(ac_evse, battery_kwh=10, soc_start=50, idle_after_full_s=600)
    start(ac_evse, t0)
    reports.clear()

    # when: a simulated hour later
    simulator_tick(now=t0 + timedelta(seconds=1))

    # then: a reading when it became full (not charging), then the stop after the unplug
    assert [name for name, _ in reports] == ["meter", "stopped"]
    (full,) = of(reports, "meter")
    full_at = t0 + timedelta(seconds=5 / 11)  # 5/11 h simulated
    assert full["charging"] is False
    assert full["energy_wh"] == Decimal("5000.000")
    assert abs(full["timestamp"] - full_at) < timedelta(milliseconds=1)
    (stopped,) = of(reports, "stopped")
    assert stopped["reason"] == "BATTERY_FULL"
    assert stopped["meter_stop_wh"] == Decimal("5000.000")
    assert abs(stopped["timestamp"] - (full_at + timedelta(seconds=600 / 3600))) < timedelta(
        milliseconds=1
    )
    assert EVSE.objects.get(pk=ac_evse.pk).status == "AVAILABLE"
    charger = SimulatedCharger.objects.get(evse=ac_evse)
    assert charger.meter_wh == Decimal("5000.000")


def test_parking_readings_carry_no_power(ac_evse, t0, reports):
    # given: full after 27 min, driver away for 2 hours
    vehicle(ac_evse, battery_kwh=10, soc_start=50, idle_after_full_s=7200)
    start(ac_evse, t0)
    reports.clear()

    # when
    simulator_tick(now=t0 + timedelta(seconds=1))

    # then
    assert [(r["charging"], r["power_w"]) for r in of(reports, "meter")] == [(False, 0), (False, 0)]
    assert SimulatedTransaction.objects.get().state == "PARKING"


def test_a_driver_who_leaves_early_unplugs_before_the_ev_is_full(ac_evse, t0, reports):
    # given: the driver leaves after 30 simulated minutes
    vehicle(ac_evse, unplug_after_s=1800)
    start(ac_evse, t0)
    reports.clear()

    # when
    simulator_tick(now=t0 + timedelta(seconds=1))

    # then
    (stopped,) = of(reports, "stopped")
    assert stopped["reason"] == "EV_DISCONNECTED"
    assert stopped["meter_stop_wh"] == Decimal("5500.000")
    assert stopped["timestamp"] == t0 + timedelta(seconds=0.5)


def test_a_stop_command_ends_the_transaction_with_the_energy_up_to_then(ac_evse, t0, reports):
    # given
    vehicle(ac_evse)
    tx = start(ac_evse, t0)
    reports.clear()

    # when: the stop is answered half a simulated hour later
    assert SimulatorGateway().stop_transaction(
        request_ref="STOP-1", transaction_ref=tx.transaction_ref
    )
    answer_all(t0 + timedelta(seconds=0.5))

    # then
    assert [name for name, _ in reports] == ["answered", "stopped"]
    assert of(reports, "answered")[0]["accepted"] is True
    (stopped,) = of(reports, "stopped")
    assert (stopped["reason"], stopped["meter_stop_wh"]) == ("REMOTE", Decimal("5500.000"))
    assert EVSE.objects.get(pk=ac_evse.pk).status == "AVAILABLE"

    # when: a second stop
    SimulatorGateway().stop_transaction(request_ref="STOP-2", transaction_ref=tx.transaction_ref)
    answer_all(t0 + timedelta(seconds=1))

    # then
    assert of(reports, "answered")[-1] == {
        "request_ref": "STOP-2",
        "accepted": False,
        "reason": "UNKNOWN_TRANSACTION",
    }


def test_a_charging_limit_caps_the_power_until_it_expires(ac_evse, t0, reports):
    # given
    vehicle(ac_evse)
    tx = start(ac_evse, t0)
    limit = gateway.ChargingLimit(limit_w=Decimal(3000), valid_until=t0 + timedelta(seconds=2))

    # when: a 3 kW limit from t0 until 2 simulated hours later
    assert SimulatorGateway().set_charging_limit(
        request_ref="LIM-1", transaction_ref=tx.transaction_ref, limit=limit
    )
    answer_all(t0)
    reports.clear()
    simulator_tick(now=t0 + timedelta(seconds=1))
    simulator_tick(now=t0 + timedelta(seconds=3))

    # then: 3 kWh in the first hour; 3 kWh + 11 kWh in the next two
    readings = of(reports, "meter")
    assert [r["energy_wh"] for r in readings] == [Decimal("3000.000"), Decimal("17000.000")]
    assert [r["power_w"] for r in readings] == [3000, 11000]


def test_a_limit_for_an_unknown_transaction_is_rejected(reports, t0):
    # when
    SimulatorGateway().set_charging_limit(
        request_ref="LIM-9", transaction_ref="SIM-0-0", limit=gateway.ChargingLimit(Decimal(1))
    )
    answer_all(t0)

    # then
    assert of(reports, "answered") == [
        {"request_ref": "LIM-9", "accepted": False, "reason": "UNKNOWN_TRANSACTION"}
    ]


def test_a_fault_ends_the_transaction_and_the_evse_stays_faulted(ac_evse, t0, reports):
    # given
    vehicle(ac_evse)
    start(ac_evse, t0)
    reports.clear()

    # when
    evse = EVSE.objects.get(pk=ac_evse.pk)
    evse.status = "OUTOFORDER"
    evse.save()
    simulator_tick(now=t0 + timedelta(seconds=1))

    # then
    (stopped,) = of(reports, "stopped")
    assert stopped["reason"] == "FAULT"
    assert EVSE.objects.get(pk=ac_evse.pk).status == "OUTOFORDER"


def test_a_simulated_unplug_ends_the_transaction(ac_evse, t0, reports):
    # given
    vehicle(ac_evse)
    tx = start(ac_evse, t0)
    reports.clear()

    # when
    done = unplug(transaction_ref=tx.transaction_ref, now=t0 + timedelta(seconds=1))

    # then
    assert done is True
    assert of(reports, "stopped")[0]["reason"] == "EV_DISCONNECTED"
    assert unplug(transaction_ref=tx.transaction_ref) is False


def test_unlocking_a_connector_in_use_ends_its_transaction(ac_evse, t0, reports):
    # given
    vehicle(ac_evse)
    start(ac_evse, t0)
    reports.clear()

    # when
    SimulatorGateway().unlock_connector(
        request_ref="UNL-1", connector_pk=ac_evse.connectors.get().pk
    )
    answer_all(t0 + timedelta(seconds=1))

    # then
    assert [name for name, _ in reports] == ["answered", "stopped"]
    assert of(reports, "stopped")[0]["reason"] == "LOCAL"


def test_a_broken_charger_does_not_unlock(t0, reports):
    # given
    evse = EVSEFactory(status="OUTOFORDER")

    # when
    SimulatorGateway().unlock_connector(request_ref="UNL-2", connector_pk=evse.connectors.get().pk)
    answer_all(t0)

    # then
    assert of(reports, "answered") == [
        {"request_ref": "UNL-2", "accepted": False, "reason": "FAULTED"}
    ]


def test_the_vehicle_is_random_but_seeded(settings, t0):
    # given: two networks built alike, the same seed
    settings.SIMULATOR_SEED = 7
    first, second = EVSEFactory(uid="SEED-A"), EVSEFactory(uid="SEED-B")
    plug_in(evse_pk=first.pk, connector_pk=None, id_tag="T", now=t0)
    one = SimulatedTransaction.objects.get(charger__evse=first)
    one_values = (one.battery_kwh, one.soc_start, one.target_soc, one.unplug_after_s)
    SimulatedTransaction.objects.all().delete()
    SimulatedCharger.objects.all().delete()
    EVSE.objects.filter(pk=first.pk).update(uid="SEED-X")
    EVSE.objects.filter(pk=second.pk).update(uid="SEED-A", status="AVAILABLE")

    # when: the same EVSE uid, the same transaction count
    plug_in(evse_pk=second.pk, connector_pk=None, id_tag="T", now=t0)

    # then
    two = SimulatedTransaction.objects.get(charger__evse=second)
    assert (two.battery_kwh, two.soc_start, two.target_soc, two.unplug_after_s) == one_values
    assert Decimal(8) <= one.soc_start <= Decimal(60)
    assert one.target_soc >= one.soc_start


# --- reservations -----------------------------------------------------------------------------
def test_a_reservation_holds_the_evse_for_its_token_until_it_expires(ac_evse, t0, reports):
    # given: reserved for TAG1 for 2 real seconds
    assert SimulatorGateway().reserve_now(
        request_ref="RES-1", reservation_ref=41, evse_pk=ac_evse.pk, id_tag="TAG1",
        expiry=t0 + timedelta(seconds=2),
    )  # fmt: skip
    answer_all(t0)
    assert EVSE.objects.get(pk=ac_evse.pk).status == "RESERVED"

    # when: another token tries
    SimulatorGateway().start_transaction(
        request_ref="REQ-X", evse_pk=ac_evse.pk, connector_pk=None, id_tag="OTHER"
    )
    answer_all(t0)

    # then
    assert of(reports, "answered")[-1]["reason"] == "OCCUPIED"

    # when: the time is up
    simulator_tick(now=t0 + timedelta(seconds=3))

    # then
    assert of(reports, "reservation_ended") == [{"reservation_ref": 41, "reason": "EXPIRED"}]
    assert EVSE.objects.get(pk=ac_evse.pk).status == "AVAILABLE"


def test_the_reserving_token_may_start_on_its_reservation(ac_evse, t0, reports):
    # given
    vehicle(ac_evse)
    SimulatorGateway().reserve_now(
        request_ref="RES-1", reservation_ref=42, evse_pk=ac_evse.pk, id_tag="tag1",
        expiry=t0 + timedelta(hours=1),
    )  # fmt: skip
    answer_all(t0)

    # when
    start(ac_evse, t0, id_tag="TAG1")

    # then: the start reports the reservation it used, which is gone
    assert of(reports, "started")[0]["reservation_ref"] == 42
    assert SimulatedCharger.objects.get(evse=ac_evse).reservation_ref is None
    assert EVSE.objects.get(pk=ac_evse.pk).status == "CHARGING"


def test_a_reservation_is_cancelled_once(ac_evse, t0, reports):
    # given
    SimulatorGateway().reserve_now(
        request_ref="RES-1", reservation_ref=43, evse_pk=ac_evse.pk, id_tag="TAG1",
        expiry=t0 + timedelta(hours=1),
    )  # fmt: skip
    answer_all(t0)

    # when: cancelled twice
    SimulatorGateway().cancel_reservation(request_ref="CAN-1", reservation_ref=43)
    answer_all(t0)
    SimulatorGateway().cancel_reservation(request_ref="CAN-2", reservation_ref=43)
    answer_all(t0)

    # then
    assert [(a["request_ref"], a["accepted"], a["reason"]) for a in of(reports, "answered")] == [
        ("RES-1", True, ""),
        ("CAN-1", True, ""),
        ("CAN-2", False, "UNKNOWN_RESERVATION"),
    ]
    assert of(reports, "reservation_ended") == [{"reservation_ref": 43, "reason": "CANCELLED"}]
    assert EVSE.objects.get(pk=ac_evse.pk).status == "AVAILABLE"


def test_an_occupied_evse_cannot_be_reserved(ac_evse, t0, reports):
    # given
    start(ac_evse, t0)

    # when
    SimulatorGateway().reserve_now(
        request_ref="RES-2", reservation_ref=44, evse_pk=ac_evse.pk, id_tag="TAG1",
        expiry=t0 + timedelta(hours=1),
    )  # fmt: skip
    answer_all(t0)

    # then
    assert of(reports, "answered")[-1] == {
        "request_ref": "RES-2", "accepted": False, "reason": "OCCUPIED",
    }  # fmt: skip


# --- the tick and the tasks ---------------------------------------------------------------------
def test_the_tick_answers_commands_whose_answer_task_was_lost(ac_evse, reports):
    # given: a command whose answer is due
    SimulatorGateway().start_transaction(
        request_ref="REQ-L", evse_pk=ac_evse.pk, connector_pk=None, id_tag="TAG1"
    )
    due_at = SimulatedCommand.objects.get().due_at

    # when
    report = simulator_tick(now=due_at)

    # then
    assert report.answered == 1
    assert of(reports, "answered")[0]["request_ref"] == "REQ-L"


def test_the_tasks_are_registered_under_their_beat_names(ac_evse, reports):
    # given
    SimulatorGateway().start_transaction(
        request_ref="REQ-T", evse_pk=ac_evse.pk, connector_pk=None, id_tag="TAG1"
    )

    # when: run in this process
    simulator_answer_task(SimulatedCommand.objects.get().pk)
    advanced = simulator_tick_task()

    # then
    assert simulator_tick_task.name == "stations.tasks.simulator_tick_task"
    assert simulator_answer_task.name == "stations.tasks.simulator_answer_task"
    assert of(reports, "answered")[0]["accepted"] is True
    assert advanced == 1


# --- manage.py simulate ------------------------------------------------------------------------
def test_simulate_swipes_cached_tokens_and_starts_sessions(make_partner, capsys):
    # given: two free EVSEs with RFID readers and a whitelisted token
    partner, _ = make_partner()
    EVSEFactory.create_batch(2)
    Token.objects.create(
        partner=partner, country_code="DE", party_id="EMS", uid="04A1B2C3", contract_id="DE-EMS-1",
        issuer="EMS", whitelist="ALWAYS", last_updated=timezone.now(),
    )  # fmt: skip

    # when: many swipes per minute for a moment
    call_command("simulate", seconds=0.3, rate=6000, seed=3, tick=0.05)

    # then: swipes were authorized and sessions started for the token's partner
    out = capsys.readouterr().out
    assert "Swipe 04A1B2C3 at" in out
    assert "ALLOWED (WHITELIST)" in out
    assert "charging starts at" in out
    session = Session.objects.first()
    assert session.partner == partner
    assert session.auth_method == "WHITELIST"
    assert session.cdr_token["uid"] == "04A1B2C3"
