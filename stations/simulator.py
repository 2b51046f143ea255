"""The built-in charger simulator behind stations.gateway (the default CHARGER_GATEWAY).

Every EVSE of the network gets a simulated charge point on first use. Its state lives in the
database (stations.models_simulator), so the web process, the Celery worker and
`manage.py simulate` all drive the same chargers. What a real charger would report, the simulator
reports the same way: the EVSE's `status` is saved (CHARGING while a transaction runs, AVAILABLE
after it, RESERVED for a reservation; pushed to partners like any status change) and the gateway
signals are sent (command_answered, transaction_started, meter_values, transaction_stopped,
reservation_ended).

Commands. A gateway method returns at once: False when the charger cannot be asked (unknown EVSE
or connector, or the EVSE is offline: status UNKNOWN); otherwise True, and the charger answers
SIMULATOR_RESPONSE_SECONDS / SIMULATOR_TIME_SCALE later through `simulator_answer_task`
(queued after the caller's transaction commits; the next tick answers it if that task was lost).
Rejections and their `reason`:
- FAULTED: the EVSE is OUTOFORDER or INOPERATIVE (also PLANNED, REMOVED);
- OCCUPIED: a vehicle is plugged in (CHARGING), the EVSE is BLOCKED, or RESERVED for another
  id_tag (a reservation's own id_tag may start charging on it, as OCPP 1.6 does);
- UNKNOWN_TRANSACTION, UNKNOWN_RESERVATION: stop/limit/cancel of something not running/held.

Physics. A tick (`simulator_tick`, every SIMULATOR_TICK_SECONDS from Celery beat, or from
`manage.py simulate`) advances every running transaction by the real time since its last tick
multiplied by SIMULATOR_TIME_SCALE (timestamps stay real). The charging power is the smallest of
the connector's power (max_electric_power, else V × A × phases), the vehicle's acceptance (AC
on-board charger or DC maximum) and a charging limit (set_charging_limit); AC is flat, DC tapers
above 80 % state of charge. The vehicle (battery size, start SoC, target SoC, driver's plan) is
random but seeded (SIMULATOR_SEED, the EVSE and its transaction count), or the charger's
`next_vehicle`. Once the EV reaches its target it stops drawing power (meter values with
charging=False: PARKING_TIME) until the driver unplugs. A transaction ends on a stop command
(REMOTE), an unplug before the target was reached (EV_DISCONNECTED), the driver unplugging a full
EV (BATTERY_FULL), an unlock (LOCAL) or a fault of its EVSE (FAULT). Meter values are reported at
every tick, plus one at the moment the EV became full. `current_a` is the sum over the phases.
"""

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import gateway as gw
from .choices import EVSEStatus
from .models import EVSE, Connector
from .models_simulator import SimulatedCharger, SimulatedCommand, SimulatedTransaction
from .services import evse_set_status

logger = logging.getLogger(__name__)

Kind = SimulatedCommand.Kind
TxState = SimulatedTransaction.State
RUNNING = (TxState.CHARGING, TxState.PARKING)

FAULTED_STATUSES = (
    EVSEStatus.OUTOFORDER,
    EVSEStatus.INOPERATIVE,
    EVSEStatus.PLANNED,
    EVSEStatus.REMOVED,
)
OCCUPIED_STATUSES = (EVSEStatus.CHARGING, EVSEStatus.BLOCKED, EVSEStatus.RESERVED)
PHASES = {"AC_1_PHASE": 1, "AC_2_PHASE": 2, "AC_2_PHASE_SPLIT": 2, "AC_3_PHASE": 3, "DC": 1}

# Physics step (simulated seconds): small enough for the DC taper, cheap at any time scale.
STEP_S = Decimal(30)
DC_TAPER_FROM_SOC = Decimal(80)
DC_TAPER_FLOOR = Decimal("0.08")  # share of the power left at 100 % SoC
WH = Decimal("0.001")
W = Decimal("0.1")
PCT = Decimal("0.0001")

# Vehicles the simulator draws from: battery kWh, AC on-board charger kW, DC maximum kW, pack V.
VEHICLES = (
    ("city car", 37, Decimal("7.4"), 50, 360),
    ("compact", 58, 11, 120, 400),
    ("crossover", 77, 11, 175, 400),
    ("saloon", 82, 11, 250, 800),
    ("large SUV", 100, 22, 200, 400),
    ("delivery van", 75, 11, 100, 400),
)


def _now() -> datetime:
    now = timezone.now()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _scale() -> Decimal:
    scale = Decimal(str(settings.SIMULATOR_TIME_SCALE))
    return scale if scale > 0 else Decimal(1)


def _real_seconds(simulated: Decimal) -> timedelta:
    return timedelta(seconds=float(simulated / _scale()))


def _simulated_seconds(real: timedelta) -> Decimal:
    return Decimal(str(real.total_seconds())) * _scale()


# --- the gateway ---------------------------------------------------------------------------------
class SimulatorGateway:
    """stations.gateway.ChargerGateway over the simulated chargers (see the module docstring)."""

    def start_transaction(
        self, *, request_ref: str, evse_pk: int, connector_pk: int | None, id_tag: str
    ) -> bool:
        evse = EVSE.objects.filter(pk=evse_pk).first()
        if not _reachable(evse):
            return False
        if connector_pk is not None and not evse.connectors.filter(pk=connector_pk).exists():
            return False
        return _queue(
            request_ref,
            Kind.START,
            {"evse_pk": evse_pk, "connector_pk": connector_pk, "id_tag": id_tag},
        )

    def stop_transaction(self, *, request_ref: str, transaction_ref: str) -> bool:
        tx = SimulatedTransaction.objects.filter(transaction_ref=transaction_ref).first()
        if tx is not None and not _reachable(tx.charger.evse):
            return False
        return _queue(request_ref, Kind.STOP, {"transaction_ref": transaction_ref})

    def unlock_connector(self, *, request_ref: str, connector_pk: int) -> bool:
        connector = Connector.objects.select_related("evse").filter(pk=connector_pk).first()
        if connector is None or not _reachable(connector.evse):
            return False
        return _queue(request_ref, Kind.UNLOCK, {"connector_pk": connector_pk})

    def reserve_now(
        self,
        *,
        request_ref: str,
        reservation_ref: int,
        evse_pk: int,
        id_tag: str,
        expiry: datetime,
    ) -> bool:
        evse = EVSE.objects.filter(pk=evse_pk).first()
        if not _reachable(evse):
            return False
        params = {
            "reservation_ref": reservation_ref,
            "evse_pk": evse_pk,
            "id_tag": id_tag,
            "expiry": expiry.isoformat(),
        }
        return _queue(request_ref, Kind.RESERVE, params)

    def cancel_reservation(self, *, request_ref: str, reservation_ref: int) -> bool:
        return _queue(request_ref, Kind.CANCEL_RESERVATION, {"reservation_ref": reservation_ref})

    def set_charging_limit(
        self, *, request_ref: str, transaction_ref: str, limit: gw.ChargingLimit
    ) -> bool:
        params = {
            "transaction_ref": transaction_ref,
            "limit_w": None if limit.limit_w is None else str(limit.limit_w),
            "valid_until": limit.valid_until.isoformat() if limit.valid_until else None,
        }
        return _queue(request_ref, Kind.SET_LIMIT, params)


def _reachable(evse: EVSE | None) -> bool:
    """Whether the charger can be asked at all (it exists and is online)."""
    return evse is not None and evse.status != EVSEStatus.UNKNOWN


def _queue(request_ref: str, kind: str, params: dict) -> bool:
    now = _now()
    delay = _real_seconds(Decimal(str(settings.SIMULATOR_RESPONSE_SECONDS)))
    command = SimulatedCommand.objects.create(
        request_ref=request_ref, kind=kind, params=params, created=now, due_at=now + delay
    )
    from .tasks import simulator_answer_task  # tasks import this module

    transaction.on_commit(
        partial(
            simulator_answer_task.apply_async,
            (command.pk,),
            countdown=delay.total_seconds(),
        ),
        robust=True,
    )
    return True


# --- answering commands --------------------------------------------------------------------------
def answer_command(command_id: int, *, now: datetime | None = None) -> bool:
    """Let the charger answer one command (idempotent: an answered command is left alone).
    Returns whether it answered now."""
    now = now or _now()
    with transaction.atomic():
        command = (
            SimulatedCommand.objects.select_for_update()
            .filter(pk=command_id, answered_at__isnull=True)
            .first()
        )
        if command is None:
            return False
        handler = _HANDLERS[command.kind]
        params = {**command.params, "request_ref": command.request_ref}
        accepted, reason, then = handler(params, now)
        command.answered_at = now
        command.accepted = accepted
        command.reason = reason
        command.save(update_fields=["answered_at", "accepted", "reason"])
        gw.command_answered.send(
            sender=SimulatorGateway,
            request_ref=command.request_ref,
            accepted=accepted,
            reason=reason,
        )
        if then is not None:
            then()
    return True


def answer_due_commands(*, now: datetime | None = None) -> int:
    """Answer every command whose answer is due (the safety net for lost answer tasks)."""
    now = now or _now()
    due = SimulatedCommand.objects.filter(answered_at__isnull=True, due_at__lte=now)
    return sum(answer_command(pk, now=now) for pk in due.values_list("pk", flat=True))


# Lock order, everywhere: transaction, then EVSE, then charger (no deadlocks between a tick, a
# command and a plug-in on the same EVSE).
def _lock_evse_and_charger(evse_pk: int) -> tuple[EVSE | None, SimulatedCharger | None]:
    evse = EVSE.objects.select_for_update().filter(pk=evse_pk).first()
    if evse is None:
        return None, None
    charger, _ = SimulatedCharger.objects.select_for_update().get_or_create(evse=evse)
    return evse, charger


def _running(charger: SimulatedCharger) -> SimulatedTransaction | None:
    """The charger's running transaction (read only: its row lock is taken first when needed)."""
    return charger.transactions.filter(state__in=RUNNING).first()


def _lock_running(**filters) -> SimulatedTransaction | None:
    return (
        SimulatedTransaction.objects.select_for_update(of=("self",))
        .filter(state__in=RUNNING, **filters)
        .select_related("charger__evse", "connector")
        .first()
    )


def _start(params: dict, now: datetime):
    evse, charger = _lock_evse_and_charger(params["evse_pk"])
    if evse is None:
        return False, "UNKNOWN_EVSE", None
    refusal = _refusal(evse, charger, id_tag=params["id_tag"])
    if refusal:
        return False, refusal, None
    connectors = evse.connectors.order_by("created", "pk")
    connector = (
        connectors.filter(pk=params["connector_pk"]).first()
        if params.get("connector_pk")
        else connectors.first()
    )
    if connector is None:
        return False, "UNKNOWN_CONNECTOR", None
    return (
        True,
        "",
        partial(
            _plug_in,
            evse=evse,
            charger=charger,
            connector=connector,
            id_tag=params["id_tag"],
            request_ref=params.get("request_ref"),
            now=now,
        ),
    )


def _refusal(evse: EVSE, charger: SimulatedCharger, *, id_tag: str) -> str:
    """Why the charger refuses a new transaction for id_tag ("" if it accepts)."""
    if evse.status in FAULTED_STATUSES:
        return "FAULTED"
    if _running(charger) is not None:
        return "OCCUPIED"
    if evse.status == EVSEStatus.RESERVED:
        if charger.reservation_ref is None or charger.reservation_id_tag.lower() != id_tag.lower():
            return "OCCUPIED"
        return ""
    if evse.status in OCCUPIED_STATUSES:
        return "OCCUPIED"
    return ""


def _stop_cmd(params: dict, now: datetime):
    tx = _lock_running(transaction_ref=params["transaction_ref"])
    if tx is None:
        return False, "UNKNOWN_TRANSACTION", None
    return True, "", partial(_advance_and_stop, tx, now, "REMOTE")


def _unlock(params: dict, now: datetime):
    connector = Connector.objects.select_related("evse").filter(pk=params["connector_pk"]).first()
    if connector is None:
        return False, "UNKNOWN_CONNECTOR", None
    if connector.evse.status in (EVSEStatus.OUTOFORDER, EVSEStatus.REMOVED):
        return False, "FAULTED", None
    tx = _lock_running(connector=connector)
    if tx is None:
        return True, "", None
    # OCPP 1.6: unlocking a connector in use ends its transaction first.
    return True, "", partial(_advance_and_stop, tx, now, "LOCAL")


def _reserve(params: dict, now: datetime):
    evse, charger = _lock_evse_and_charger(params["evse_pk"])
    if evse is None:
        return False, "UNKNOWN_EVSE", None
    expiry = datetime.fromisoformat(params["expiry"])
    if expiry <= now:
        return False, "EXPIRED", None
    same = charger.reservation_ref == params["reservation_ref"]
    if evse.status in FAULTED_STATUSES:
        return False, "FAULTED", None
    if _running(charger) is not None or (evse.status in OCCUPIED_STATUSES and not same):
        return False, "OCCUPIED", None

    def reserve():
        charger.reservation_ref = params["reservation_ref"]
        charger.reservation_id_tag = params["id_tag"]
        charger.reservation_expiry = expiry
        charger.save()
        evse_set_status(evse=evse, status=EVSEStatus.RESERVED)

    return True, "", reserve


def _cancel_reservation(params: dict, now: datetime):
    reservation_ref = params["reservation_ref"]
    charger = SimulatedCharger.objects.filter(reservation_ref=reservation_ref).first()
    if charger is None:
        return False, "UNKNOWN_RESERVATION", None
    _, charger = _lock_evse_and_charger(charger.evse_id)
    if charger.reservation_ref != reservation_ref:
        return False, "UNKNOWN_RESERVATION", None
    return True, "", partial(_end_reservation, charger, "CANCELLED")


def _set_limit(params: dict, now: datetime):
    tx = _lock_running(transaction_ref=params["transaction_ref"])
    if tx is None:
        return False, "UNKNOWN_TRANSACTION", None

    def limit():
        # The charge so far ran without the new limit: advance to now, then apply it.
        _progress(tx, now)
        tx.refresh_from_db()
        if tx.state not in RUNNING:
            return
        tx.limit_w = None if params["limit_w"] is None else Decimal(params["limit_w"])
        tx.limit_until = (
            datetime.fromisoformat(params["valid_until"]) if params["valid_until"] else None
        )
        tx.save(update_fields=["limit_w", "limit_until"])

    return True, "", limit


_HANDLERS = {
    Kind.START: _start,
    Kind.STOP: _stop_cmd,
    Kind.UNLOCK: _unlock,
    Kind.RESERVE: _reserve,
    Kind.CANCEL_RESERVATION: _cancel_reservation,
    Kind.SET_LIMIT: _set_limit,
}


def _end_reservation(charger: SimulatedCharger, reason: str) -> None:
    """Clear the (locked) charger's reservation; the EVSE becomes AVAILABLE again."""
    reservation_ref = charger.reservation_ref
    charger.reservation_ref = None
    charger.reservation_id_tag = ""
    charger.reservation_expiry = None
    charger.save()
    evse = EVSE.objects.get(pk=charger.evse_id)
    if evse.status == EVSEStatus.RESERVED:
        evse_set_status(evse=evse, status=EVSEStatus.AVAILABLE)
    gw.reservation_ended.send(
        sender=SimulatorGateway, reservation_ref=reservation_ref, reason=reason
    )


# --- vehicles ------------------------------------------------------------------------------------
def connector_power_w(connector: Connector) -> Decimal:
    """What the connector can deliver: max_electric_power, else V × A × phases."""
    if connector.max_electric_power:
        return Decimal(connector.max_electric_power)
    phases = PHASES.get(connector.power_type, 1)
    return Decimal(connector.max_voltage * connector.max_amperage * phases)


def _vehicle(charger: SimulatedCharger, connector: Connector) -> dict:
    """The vehicle that plugs in: the charger's `next_vehicle` over a seeded random one."""
    seed = getattr(settings, "SIMULATOR_SEED", 0)
    rng = random.Random(f"{seed}:{charger.evse.uid}:{charger.transactions_started}")
    _, battery, ac_kw, dc_kw, volts = rng.choice(VEHICLES)
    dc = connector.power_type == "DC"
    soc_start = Decimal(rng.randint(8, 60 if not dc else 45))
    target = Decimal(rng.choice((80, 90, 100, 100)) if not dc else rng.choice((80, 80, 85, 90)))
    if rng.random() < 0.4:
        # The driver has an appointment: leaves after a while, full or not.
        unplug_after = Decimal(rng.randint(15 * 60, (90 if dc else 5 * 60) * 60))
    else:
        unplug_after = None
    idle = Decimal(rng.randint(60, 15 * 60) if dc else rng.randint(5 * 60, 90 * 60))
    vehicle = {
        "battery_kwh": Decimal(battery),
        "soc_start": soc_start,
        "target_soc": max(target, soc_start),
        "max_power_w": Decimal(dc_kw if dc else ac_kw) * 1000,
        "pack_voltage": Decimal(volts),
        "unplug_after_s": unplug_after,
        "idle_after_full_s": idle,
    }
    for key, value in (charger.next_vehicle or {}).items():
        if key in vehicle:
            vehicle[key] = None if value is None else Decimal(str(value))
    return vehicle


# --- transactions --------------------------------------------------------------------------------
def plug_in(
    *, evse_pk: int, connector_pk: int | None, id_tag: str, now: datetime | None = None
) -> SimulatedTransaction | None:
    """A driver plugs in after a local authorization (RFID swipe) at the charger: the
    transaction starts at once (transaction_started with request_ref None). Returns it, or None
    if the charger refuses (faulted, occupied, reserved for someone else)."""
    now = now or _now()
    with transaction.atomic():
        accepted, reason, start = _start(
            {"evse_pk": evse_pk, "connector_pk": connector_pk, "id_tag": id_tag}, now
        )
        if not accepted:
            logger.info("Simulated charger %s refuses a local start: %s", evse_pk, reason)
            return None
        return start()


def _plug_in(
    *,
    evse: EVSE,
    charger: SimulatedCharger,
    connector: Connector,
    id_tag: str,
    request_ref: str | None,
    now: datetime,
) -> SimulatedTransaction:
    vehicle = _vehicle(charger, connector)
    reservation_ref = None
    if charger.reservation_ref is not None:
        # The reservation's own id_tag arrived (anything else was refused): it is used now.
        reservation_ref = charger.reservation_ref
        charger.reservation_ref = None
        charger.reservation_id_tag = ""
        charger.reservation_expiry = None
    charger.transactions_started += 1
    charger.next_vehicle = None
    charger.save()
    tx = SimulatedTransaction.objects.create(
        charger=charger,
        connector=connector,
        transaction_ref=f"SIM-{evse.pk}-{charger.transactions_started}",
        id_tag=id_tag,
        request_ref=request_ref or "",
        reservation_ref=reservation_ref,
        battery_kwh=vehicle["battery_kwh"],
        soc_start=vehicle["soc_start"],
        soc=vehicle["soc_start"],
        target_soc=vehicle["target_soc"],
        vehicle_max_power_w=vehicle["max_power_w"],
        pack_voltage=vehicle["pack_voltage"],
        unplug_after_s=vehicle["unplug_after_s"],
        idle_after_full_s=vehicle["idle_after_full_s"],
        meter_start_wh=charger.meter_wh,
        started_at=now,
        last_tick_at=now,
    )
    evse_set_status(evse=evse, status=EVSEStatus.CHARGING)
    gw.transaction_started.send(
        sender=SimulatorGateway,
        transaction_ref=tx.transaction_ref,
        evse=evse,
        connector=connector,
        id_tag=id_tag,
        meter_start_wh=tx.meter_start_wh,
        timestamp=now,
        request_ref=request_ref,
        reservation_ref=reservation_ref,
    )
    # The vehicle starts drawing power at once: the first reading.
    _set_power(tx, tx.connector, now)
    tx.save()
    _report(tx, now)
    return tx


def unplug(*, transaction_ref: str, now: datetime | None = None) -> bool:
    """The driver unplugs now (a simulated event): the transaction ends. False if not running."""
    now = now or _now()
    with transaction.atomic():
        tx = _lock_running(transaction_ref=transaction_ref)
        if tx is None:
            return False
        full = tx.state == TxState.PARKING
        _advance_and_stop(tx, now, "BATTERY_FULL" if full else "EV_DISCONNECTED")
    return True


def _limit_w(tx: SimulatedTransaction, at: datetime) -> Decimal | None:
    if tx.limit_w is None or (tx.limit_until is not None and at >= tx.limit_until):
        return None
    return tx.limit_w


def _power_w(tx: SimulatedTransaction, connector: Connector, at: datetime) -> Decimal:
    """The power the EV draws at its current state of charge (W)."""
    power = min(connector_power_w(connector), tx.vehicle_max_power_w)
    limit = _limit_w(tx, at)
    if limit is not None:
        power = min(power, max(limit, Decimal(0)))
    if connector.power_type == "DC" and tx.soc > DC_TAPER_FROM_SOC:
        # Constant current up to ~80 %, then the battery accepts less and less.
        share = (Decimal(100) - tx.soc) / (Decimal(100) - DC_TAPER_FROM_SOC)
        power *= max(DC_TAPER_FLOOR, share)
    return power.quantize(W, ROUND_HALF_UP)


def _current_a(tx: SimulatedTransaction, connector: Connector, power_w: Decimal) -> Decimal:
    """The current (A, summed over the phases) for `power_w`."""
    if connector.power_type == "DC":
        volts = min(Decimal(connector.max_voltage), tx.pack_voltage)
    else:
        volts = Decimal(connector.max_voltage)
    if volts <= 0:
        return Decimal(0)
    return (power_w / volts).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _set_power(tx: SimulatedTransaction, connector: Connector, at: datetime) -> None:
    if tx.state == TxState.CHARGING:
        tx.power_w = _power_w(tx, connector, at)
    else:
        tx.power_w = Decimal(0)
    tx.current_a = _current_a(tx, connector, tx.power_w)


@dataclass
class _Events:
    full_at: datetime | None = None
    unplug_at: datetime | None = None
    unplug_reason: str = ""
    readings: list = field(default_factory=list)


def _advance(tx: SimulatedTransaction, until: datetime) -> _Events:
    """Step the physics from tx.last_tick_at to `until` (real time); stops at an unplug."""
    events = _Events()
    start_real = tx.last_tick_at
    if until <= start_real:
        return events
    start_sim = tx.elapsed_s
    remaining = _simulated_seconds(until - start_real)
    connector = tx.connector
    battery_wh = tx.battery_kwh * 1000

    def real_at(elapsed: Decimal) -> datetime:
        return start_real + _real_seconds(elapsed - start_sim)

    while remaining > 0:
        # Charging is integrated in small steps (the DC taper); parking, or charging at no
        # power, jumps straight to the next event.
        idle = tx.state == TxState.PARKING or _power_w(tx, connector, real_at(tx.elapsed_s)) <= 0
        step = remaining if idle else min(remaining, STEP_S)
        deadline = _unplug_deadline(tx)
        if deadline is not None and tx.elapsed_s + step >= deadline:
            step = max(deadline - tx.elapsed_s, Decimal(0))
        if tx.state == TxState.CHARGING and step > 0:
            power = _power_w(tx, connector, real_at(tx.elapsed_s))
            step_wh = power * step / 3600
            need_wh = (tx.target_soc - tx.soc) / 100 * battery_wh
            if power > 0 and step_wh >= need_wh:
                # The EV reaches its target inside this step: it stops drawing power then.
                step = need_wh * 3600 / power
                step_wh = need_wh
                tx.soc = tx.target_soc
                tx.state = TxState.PARKING
                tx.full_at_s = tx.elapsed_s + step
                events.full_at = real_at(tx.full_at_s)
            else:
                tx.soc = min(tx.target_soc, tx.soc + step_wh / battery_wh * 100)
            tx.energy_wh += step_wh
        tx.elapsed_s += step
        remaining -= step
        deadline = _unplug_deadline(tx)
        if deadline is not None and tx.elapsed_s >= deadline:
            events.unplug_at = real_at(tx.elapsed_s)
            full = tx.state == TxState.PARKING
            events.unplug_reason = "BATTERY_FULL" if full else "EV_DISCONNECTED"
            break
    # Exact within a tick; stored to the meter's resolution (Wh with 3 decimals).
    tx.energy_wh = tx.energy_wh.quantize(WH, ROUND_HALF_UP)
    tx.soc = tx.soc.quantize(PCT, ROUND_HALF_UP)
    tx.elapsed_s = tx.elapsed_s.quantize(WH, ROUND_HALF_UP)
    tx.last_tick_at = events.unplug_at or until
    _set_power(tx, connector, tx.last_tick_at)
    return events


def _unplug_deadline(tx: SimulatedTransaction) -> Decimal | None:
    """Simulated seconds after plug-in at which the driver unplugs (None: not yet known)."""
    deadlines = []
    if tx.unplug_after_s is not None:
        deadlines.append(tx.unplug_after_s)
    if tx.full_at_s is not None:
        deadlines.append(tx.full_at_s + tx.idle_after_full_s)
    return min(deadlines) if deadlines else None


def _report(tx: SimulatedTransaction, at: datetime, *, charging: bool | None = None) -> None:
    gw.meter_values.send(
        sender=SimulatorGateway,
        transaction_ref=tx.transaction_ref,
        energy_wh=tx.meter_wh,
        power_w=tx.power_w,
        current_a=tx.current_a,
        charging=tx.state == TxState.CHARGING if charging is None else charging,
        timestamp=at,
    )


def _progress(tx: SimulatedTransaction, now: datetime) -> None:
    """Advance one locked running transaction to `now` and report what happened."""
    events = _advance(tx, now)
    if events.full_at is not None:
        # The moment the EV stopped drawing power: charging time ends, parking time begins.
        _report(tx, events.full_at, charging=False)
    if events.unplug_at is not None:
        _stop(tx, events.unplug_at, events.unplug_reason)
        return
    tx.save()
    if tx.charger.evse.status in FAULTED_STATUSES:
        _stop(tx, now, "FAULT")
        return
    _report(tx, now)


def _advance_and_stop(tx: SimulatedTransaction, now: datetime, reason: str) -> None:
    events = _advance(tx, now)
    if events.full_at is not None:
        _report(tx, events.full_at, charging=False)
    if events.unplug_at is not None:
        _stop(tx, events.unplug_at, events.unplug_reason)
    else:
        _stop(tx, now, reason)


def _stop(tx: SimulatedTransaction, at: datetime, reason: str) -> None:
    tx.state = TxState.FINISHED
    tx.stopped_at = at
    tx.stop_reason = reason
    tx.power_w = Decimal(0)
    tx.current_a = Decimal(0)
    tx.save()
    evse, charger = _lock_evse_and_charger(tx.charger.evse_id)
    charger.meter_wh = tx.meter_wh
    charger.save(update_fields=["meter_wh", "updated"])
    if evse.status == EVSEStatus.CHARGING:
        evse_set_status(evse=evse, status=EVSEStatus.AVAILABLE)
    gw.transaction_stopped.send(
        sender=SimulatorGateway,
        transaction_ref=tx.transaction_ref,
        meter_stop_wh=tx.meter_wh,
        timestamp=at,
        reason=reason,
    )


# --- the tick ------------------------------------------------------------------------------------
@dataclass
class TickReport:
    answered: int = 0
    advanced: int = 0
    stopped: int = 0
    reservations_expired: int = 0


def simulator_tick(*, now: datetime | None = None) -> TickReport:
    """Answer due commands, expire reservations and advance every running transaction to `now`.

    Each transaction is advanced in its own database transaction under a row lock (skipped when
    another tick holds it), so overlapping ticks never count energy twice."""
    now = now or _now()
    report = TickReport(answered=answer_due_commands(now=now))
    expired = SimulatedCharger.objects.filter(
        reservation_ref__isnull=False, reservation_expiry__lte=now
    ).values_list("evse_id", flat=True)
    for evse_pk in expired:
        with transaction.atomic():
            _, charger = _lock_evse_and_charger(evse_pk)
            if charger.reservation_ref is not None and charger.reservation_expiry <= now:
                _end_reservation(charger, "EXPIRED")
                report.reservations_expired += 1
    running = SimulatedTransaction.objects.filter(state__in=RUNNING).values_list("pk", flat=True)
    for tx_pk in running:
        with transaction.atomic():
            tx = (
                SimulatedTransaction.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(pk=tx_pk, state__in=RUNNING, last_tick_at__lt=now)
                .select_related("charger__evse", "connector")
                .first()
            )
            if tx is None:
                continue
            _progress(tx, now)
            report.advanced += 1
            report.stopped += tx.state == TxState.FINISHED
    return report
