"""The tariff maths: what a charging session costs under an OCPI 2.2.1 Tariff (PROTOCOL.md §7).

Pure: no database, no Django settings, no I/O. Money and volumes are `Decimal` throughout.
Money is rounded in one place only (`_finish`), half-up to `money_places` (2 by default, `None`
for no rounding; digits beyond the 24th significant one, the representation noise of hours such
as 1/6, are dropped first); volumes are never rounded (§7.5).

Entry points:

- `price_session(tariff, periods, start=, end=, time_zone=)` prices charging periods (each a
  start instant and its measured volumes: ENERGY kWh, TIME / PARKING_TIME / RESERVATION_TIME
  hours, optionally MIN_/MAX_CURRENT A and MIN_/MAX_POWER kW) and returns a `PriceBreakdown`
  with the CDR's cost fields (§7.3-§7.5).
- `split_periods(tariff, intervals, start=, time_zone=)` cuts measured meter intervals into
  charging periods at every instant where the tariff's restrictions may change (§7.2).

Interpretations where the OCPI text is silent, all pinned by tests/billing/test_tariff_calc.py:

- Restrictions are evaluated at each period's start (§7.3): local time, date and weekday in
  `time_zone` (DST-aware); kWh so far = the ENERGY of the earlier periods; duration so far =
  period start − session `start` (never below 0, for CDRs whose first period starts early).
- min/max current and power compare the period's MIN_* (else average, else MAX_*) with the
  minimum and its MAX_* (else average, else MIN_*) with the maximum. A period that carries no
  current (power) value at all does not fail a current (power) restriction: it cannot be
  evaluated, so it is ignored, as the reference engine (tandemdrive/ocpi-tariffs) does.
- FLAT is billed once for the charging part: the first FLAT component that matches in any
  charging or parking period, in period order (so a FLAT behind `min_duration` is an
  "after N minutes" fee). A reservation part bills its own FLAT once (§7.4, as the spec's
  reservation examples do). A FLAT from a parking-only element (its element prices
  PARKING_TIME and neither ENERGY nor TIME) counts towards total_parking_cost (§7.5).
- A period holding RESERVATION_TIME belongs to the reservation part: only reservation elements
  apply there, and their TIME components price the RESERVATION_TIME. RESERVATION_EXPIRES
  elements apply only when the reservation expired (by default: the session has reservation
  periods and no charging or parking ones) and then take precedence over RESERVATION ones.
  Reservation time is step-rounded on its own.
- step_size (§7.4): the *priced* volume of a dimension (the volume of the periods in which a
  component applied, price 0 included) is rounded up once per session to a multiple of the step
  size of the last applied component, and the extra volume is priced with that component.
  TIME and PARKING_TIME share one rounding: PARKING_TIME alone when any parking was priced,
  else TIME. step_size 1 bills whole Wh or seconds; 0 (seen in the wild) means no rounding.
  Before rounding up, a time total is taken to the nearest second, the unit of TIME steps (an
  energy total to the µWh), so that hours given to a few decimals, such as 0.1667 for 10
  minutes (600.12 s), do not gain a whole step from their last digit.
- Subtotals are rounded each on its own and total_cost is their sum, so the published fields
  add up (§7.5); min_price/max_price then clamp total_cost, excl and incl independently (a
  side that the tariff leaves out is not clamped).
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENERGY = "ENERGY"
FLAT = "FLAT"
TIME = "TIME"
PARKING_TIME = "PARKING_TIME"
RESERVATION_TIME = "RESERVATION_TIME"
MIN_CURRENT, MAX_CURRENT, CURRENT = "MIN_CURRENT", "MAX_CURRENT", "CURRENT"
MIN_POWER, MAX_POWER, POWER = "MIN_POWER", "MAX_POWER", "POWER"

TARIFF_DIMENSIONS = (ENERGY, FLAT, PARKING_TIME, TIME)
RESERVATION = "RESERVATION"
RESERVATION_EXPIRES = "RESERVATION_EXPIRES"
DAYS_OF_WEEK = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")

ZERO = Decimal(0)
ONE = Decimal(1)
_HUNDRED = Decimal(100)
_THOUSAND = Decimal(1000)
_SECONDS_PER_HOUR = Decimal(3600)
_MICROS_PER_HOUR = Decimal(3_600_000_000)
_SECOND = Decimal(1)
_MICROWATT_HOUR = Decimal("0.000001")
# Money beyond 24 significant digits is representation noise (hours such as 1/6 that no decimal
# holds exactly); it is dropped before money is rounded half-up.
_NOISE_CONTEXT = Context(prec=24, rounding=ROUND_HALF_EVEN)
_MONEY_CONTEXT = Context(prec=80, rounding=ROUND_HALF_UP)
# `split_periods` gives volumes Python's default 28 significant digits (what a caller's own sums
# keep); pricing keeps 80, so its sums and products of volumes and prices are exact.
_CONTEXT = Context(prec=80, rounding=ROUND_HALF_EVEN)
_VOLUME_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN)


# --- The tariff, as the engine sees it (frozen; adapters in billing/tariff_model.py) -------------


class Price(NamedTuple):
    """An OCPI Price. `incl_vat` is None only in a tariff's min/max price that leaves it out."""

    excl_vat: Decimal
    incl_vat: Decimal | None = None

    def to_ocpi(self) -> dict[str, Decimal]:
        data = {"excl_vat": self.excl_vat}
        if self.incl_vat is not None:
            data["incl_vat"] = self.incl_vat
        return data


@dataclass(frozen=True, slots=True)
class PriceComponent:
    """OCPI PriceComponent: `price` per kWh / hour / session, excl. VAT; `vat` None = no VAT."""

    type: str
    price: Decimal
    vat: Decimal | None = None
    step_size: int = 1


@dataclass(frozen=True, slots=True)
class Restrictions:
    """OCPI TariffRestrictions. `end_time` 00:00 means the end of the day; days are OCPI names."""

    start_time: time | None = None
    end_time: time | None = None
    start_date: date | None = None
    end_date: date | None = None
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_current: Decimal | None = None
    max_current: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    day_of_week: tuple[str, ...] = ()
    reservation: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "day_of_week", tuple(self.day_of_week))
        for day in self.day_of_week:
            if day not in DAYS_OF_WEEK:
                raise ValueError(f"day_of_week: unknown day {day!r}")
        if self.reservation not in (None, RESERVATION, RESERVATION_EXPIRES):
            raise ValueError(f"reservation: unknown value {self.reservation!r}")


@dataclass(frozen=True, slots=True)
class TariffElement:
    """OCPI TariffElement: price components that apply while all restrictions hold."""

    price_components: tuple[PriceComponent, ...]
    restrictions: Restrictions | None = None


@dataclass(frozen=True)
class Tariff:
    """OCPI Tariff, the parts the maths needs. Elements apply in order (§7.3).

    Compiled once on creation into a matching plan, so pricing many sessions with one tariff
    repeats no parsing or set-up work.
    """

    elements: tuple[TariffElement, ...]
    currency: str = "EUR"
    id: str = ""
    country_code: str = ""
    party_id: str = ""
    type: str | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    start_date_time: datetime | None = None
    end_date_time: datetime | None = None
    _plan: _Plan = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "elements", tuple(self.elements))
        for element in self.elements:
            object.__setattr__(element, "price_components", tuple(element.price_components))
            for component in element.price_components:
                if component.type not in TARIFF_DIMENSIONS:
                    raise ValueError(f"price component: unknown type {component.type!r}")
        object.__setattr__(self, "_plan", _Plan(self))

    def is_active_at(self, instant: datetime) -> bool:
        """Whether the tariff is valid for a session starting at `instant` (§7.1 step 2)."""
        if self.start_date_time is not None and instant < self.start_date_time:
            return False
        return self.end_date_time is None or instant < self.end_date_time


# --- Results -------------------------------------------------------------------------------------


class ChargingPeriod(NamedTuple):
    """A period with constant tariff conditions: its start and measured volumes by dimension."""

    start_date_time: datetime
    dimensions: Mapping[str, Decimal]

    def to_ocpi(self, tariff_id: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "start_date_time": self.start_date_time,
            "dimensions": [{"type": k, "volume": v} for k, v in self.dimensions.items()],
        }
        if tariff_id:
            data["tariff_id"] = tariff_id
        return data


@dataclass(frozen=True, slots=True)
class PriceBreakdown:
    """The cost fields of a CDR (§5.4) and the volumes behind them.

    Costs are rounded (`money_places`); volumes are measured, never rounded. `billed_*` are the
    priced volumes after step_size. `priced` names the subtotals that had a price component
    (FIXED, ENERGY, TIME, PARKING, RESERVATION), whatever their amount.
    """

    currency: str
    total_cost: Price
    total_fixed_cost: Price
    total_energy_cost: Price
    total_time_cost: Price
    total_parking_cost: Price
    total_reservation_cost: Price
    total_energy: Decimal
    total_time: Decimal
    total_parking_time: Decimal
    total_reservation_time: Decimal
    billed_energy: Decimal
    billed_time: Decimal
    billed_parking_time: Decimal
    billed_reservation_time: Decimal
    priced: frozenset[str]
    min_price_applied: bool = False
    max_price_applied: bool = False

    @property
    def has_reservation(self) -> bool:
        return "RESERVATION" in self.priced or self.total_reservation_time != ZERO

    def to_ocpi(self) -> dict[str, Any]:
        """The CDR's cost and volume fields as OCPI JSON values (Decimals)."""
        data: dict[str, Any] = {
            "total_cost": self.total_cost.to_ocpi(),
            "total_fixed_cost": self.total_fixed_cost.to_ocpi(),
            "total_energy": self.total_energy,
            "total_energy_cost": self.total_energy_cost.to_ocpi(),
            "total_time": self.total_time,
            "total_time_cost": self.total_time_cost.to_ocpi(),
            "total_parking_time": self.total_parking_time,
            "total_parking_cost": self.total_parking_cost.to_ocpi(),
        }
        if self.has_reservation:
            data["total_reservation_cost"] = self.total_reservation_cost.to_ocpi()
        return data


@dataclass(frozen=True, slots=True)
class MeterInterval:
    """A measured stretch of a session for `split_periods`: energy flows at a constant rate.

    `charging` False is parking (connected, not charging); `reservation` True is reserved time
    before the session. `current` (A, sum of phases) and `power` (kW) are constant within it.
    """

    start: datetime
    end: datetime
    energy: Decimal = ZERO
    charging: bool = True
    reservation: bool = False
    current: Decimal | None = None
    power: Decimal | None = None


# --- The compiled plan ---------------------------------------------------------------------------

# Dimension indices inside the plan, and the subtotal each slot feeds.
_D_FLAT, _D_ENERGY, _D_TIME, _D_PARKING = range(4)
_DIM_INDEX = {FLAT: _D_FLAT, ENERGY: _D_ENERGY, TIME: _D_TIME, PARKING_TIME: _D_PARKING}
_B_FIXED, _B_ENERGY, _B_TIME, _B_PARKING, _B_RESERVATION = range(5)
_BUCKET_NAMES = ("FIXED", "ENERGY", "TIME", "PARKING", "RESERVATION")
_PRICED_NAMES = tuple(
    frozenset(name for b, name in enumerate(_BUCKET_NAMES) if mask >> b & 1) for mask in range(32)
)
# Step-size groups: charging energy, charging time, parking time, reservation time.
_G_ENERGY, _G_TIME, _G_PARKING, _G_RESERVATION = range(4)
# Slot units.
_U_FLAT, _U_KWH, _U_HOURS = range(3)

# Restriction check codes.
(
    _C_TIME_RANGE, _C_TIME_WRAP, _C_START_DATE, _C_END_DATE, _C_DOW, _C_MIN_KWH, _C_MAX_KWH,
    _C_MIN_CURRENT, _C_MAX_CURRENT, _C_MIN_POWER, _C_MAX_POWER, _C_MIN_DURATION, _C_MAX_DURATION,
) = range(13)  # fmt: skip
_LOCAL_CHECKS = frozenset({_C_TIME_RANGE, _C_TIME_WRAP, _C_START_DATE, _C_END_DATE, _C_DOW})


class _Slot:
    """One price component as the plan bills it: unit, subtotal and step group (-1: FLAT)."""

    __slots__ = ("bucket", "factor", "group", "index", "price", "step", "unit")

    def __init__(self, index: int, component: PriceComponent, unit: int, bucket: int) -> None:
        self.index = index
        self.price = component.price
        self.factor = None if component.vat is None else ONE + component.vat / _HUNDRED
        self.step = int(component.step_size or 0)
        self.unit = unit
        self.bucket = bucket
        if unit == _U_FLAT:
            self.group = -1
        elif bucket == _B_RESERVATION:
            self.group = _G_RESERVATION
        else:
            self.group = {_B_ENERGY: _G_ENERGY, _B_TIME: _G_TIME, _B_PARKING: _G_PARKING}[bucket]


class _Element:
    __slots__ = ("checks", "mask", "match", "slots", "uses_local")

    def __init__(self, checks: tuple, slots: tuple) -> None:
        self.checks = checks
        self.match = _compile_matcher(checks)
        self.slots = slots  # one slot index or -1 per dimension (_D_*)
        self.mask = sum(1 << d for d in range(4) if slots[d] != -1)
        self.uses_local = any(code in _LOCAL_CHECKS for code, _, _ in checks)


def _compile_checks(r: Restrictions | None) -> tuple:
    if r is None:
        return ()
    checks: list[tuple] = []
    if r.start_time is not None or r.end_time is not None:
        # end_time 00:00 is the end of the day (None below = 24:00).
        end = None if r.end_time is None or r.end_time == time(0) else r.end_time
        if r.start_time is not None and end is not None and end < r.start_time:
            checks.append((_C_TIME_WRAP, r.start_time, end))
        else:
            checks.append((_C_TIME_RANGE, r.start_time, end))
    if r.start_date is not None:
        checks.append((_C_START_DATE, r.start_date, None))
    if r.end_date is not None:
        checks.append((_C_END_DATE, r.end_date, None))
    if r.day_of_week:
        checks.append((_C_DOW, frozenset(DAYS_OF_WEEK.index(d) for d in r.day_of_week), None))
    for code, value in (
        (_C_MIN_KWH, r.min_kwh), (_C_MAX_KWH, r.max_kwh),
        (_C_MIN_CURRENT, r.min_current), (_C_MAX_CURRENT, r.max_current),
        (_C_MIN_POWER, r.min_power), (_C_MAX_POWER, r.max_power),
    ):  # fmt: skip
        if value is not None:
            checks.append((code, Decimal(value), None))
    if r.min_duration is not None:
        checks.append((_C_MIN_DURATION, timedelta(seconds=r.min_duration), None))
    if r.max_duration is not None:
        checks.append((_C_MAX_DURATION, timedelta(seconds=r.max_duration), None))
    return tuple(checks)


def _flat_bucket(element: TariffElement) -> int:
    types = {c.type for c in element.price_components}
    if PARKING_TIME in types and ENERGY not in types and TIME not in types:
        return _B_PARKING
    return _B_FIXED


class _Plan:
    """A tariff compiled for fast matching: element lists per part, one slot per component."""

    def __init__(self, tariff: Tariff) -> None:
        self.slots: list[_Slot] = []
        charging: list[_Element] = []
        reservation: list[_Element] = []
        expires: list[_Element] = []
        local_times: set[time] = set()
        self.needs_midnight = False
        self.durations: set[timedelta] = set()
        self.kwh_thresholds: set[Decimal] = set()
        for element in tariff.elements:
            r = element.restrictions
            kind = r.reservation if r is not None else None
            slots = [-1, -1, -1, -1]
            for component in element.price_components:
                d = _DIM_INDEX[component.type]
                if slots[d] != -1:
                    continue  # the first component of a dimension in an element counts
                if kind is not None:
                    # Reservation elements price only FLAT and (reservation) TIME (§5.5).
                    if d == _D_FLAT:
                        unit, bucket = _U_FLAT, _B_RESERVATION
                    elif d == _D_TIME:
                        unit, bucket = _U_HOURS, _B_RESERVATION
                    else:
                        continue
                elif d == _D_FLAT:
                    unit, bucket = _U_FLAT, _flat_bucket(element)
                elif d == _D_ENERGY:
                    unit, bucket = _U_KWH, _B_ENERGY
                elif d == _D_TIME:
                    unit, bucket = _U_HOURS, _B_TIME
                else:
                    unit, bucket = _U_HOURS, _B_PARKING
                slots[d] = len(self.slots)
                self.slots.append(_Slot(len(self.slots), component, unit, bucket))
            compiled = _Element(_compile_checks(r), tuple(slots))
            {None: charging, RESERVATION: reservation, RESERVATION_EXPIRES: expires}[kind].append(
                compiled
            )
            if r is not None:
                for t in (r.start_time, r.end_time):
                    if t is not None:
                        local_times.add(t)
                if r.start_time or r.end_time or r.start_date or r.end_date or r.day_of_week:
                    self.needs_midnight = True
                for seconds in (r.min_duration, r.max_duration):
                    if seconds is not None:
                        self.durations.add(timedelta(seconds=seconds))
                for kwh in (r.min_kwh, r.max_kwh):
                    if kwh is not None:
                        self.kwh_thresholds.add(Decimal(kwh))
        if self.needs_midnight:
            local_times.add(time(0))
        self.local_times = tuple(sorted(local_times))
        self.charging = tuple(charging)
        self.reservation = tuple(reservation)
        # An expired reservation: RESERVATION_EXPIRES elements first (they take precedence).
        self.expired = tuple(expires) + tuple(reservation)
        every = charging + reservation + expires
        self.needs_local = any(e.uses_local for e in every)
        codes = {code for e in every for code, _, _ in e.checks}
        self.needs_duration = bool(codes & {_C_MIN_DURATION, _C_MAX_DURATION})
        self.currency = tariff.currency
        self.min_price = tariff.min_price
        self.max_price = tariff.max_price


# How a current/power check reads a period: the bound's own dimension, else the average, else the
# other bound (PROTOCOL.md §7.2: periods are cut where these cross a restriction).
_READINGS = {
    _C_MIN_CURRENT: (MIN_CURRENT, CURRENT, MAX_CURRENT, "<"),
    _C_MAX_CURRENT: (MAX_CURRENT, CURRENT, MIN_CURRENT, ">="),
    _C_MIN_POWER: (MIN_POWER, POWER, MAX_POWER, "<"),
    _C_MAX_POWER: (MAX_POWER, POWER, MIN_POWER, ">="),
}
_SIMPLE_FAILS = {
    _C_START_DATE: "d < a{i}",
    _C_END_DATE: "d >= a{i}",
    _C_DOW: "local.weekday() not in a{i}",
    _C_MIN_KWH: "kwh < a{i}",
    _C_MAX_KWH: "kwh >= a{i}",
    _C_MIN_DURATION: "duration < a{i}",
    _C_MAX_DURATION: "duration >= a{i}",
}


def _compile_matcher(checks: tuple):
    """A function (local, duration, kwh, dims) -> bool: do all restrictions hold at a period's
    start? Generated once per element (as dataclasses generates __init__) because matching runs
    for every element of every period of every session. None when there is nothing to check."""
    if not checks:
        return None
    codes = {code for code, _, _ in checks}
    lines = ["def match(local, duration, kwh, dims):"]
    if codes & {_C_TIME_RANGE, _C_TIME_WRAP}:
        lines.append("    t = local.time()")
    if codes & {_C_START_DATE, _C_END_DATE}:
        lines.append("    d = local.date()")
    namespace: dict[str, Any] = {}
    for i, (code, a, b) in enumerate(checks):
        namespace[f"a{i}"], namespace[f"b{i}"] = a, b
        if code == _C_TIME_RANGE:
            fails = [f"t < a{i}"] if a is not None else []
            fails += [f"t >= b{i}"] if b is not None else []
            if fails:
                lines.append(f"    if {' or '.join(fails)}: return False")
        elif code == _C_TIME_WRAP:
            lines.append(f"    if b{i} <= t < a{i}: return False")
        elif code in _SIMPLE_FAILS:
            lines.append(f"    if {_SIMPLE_FAILS[code].format(i=i)}: return False")
        else:
            # No reading in the period: the check cannot be evaluated and does not fail.
            own, average, other, failing = _READINGS[code]
            lines += [
                f"    v = dims.get({own!r})",
                f"    if v is None: v = dims.get({average!r})",
                f"    if v is None: v = dims.get({other!r})",
                f"    if v is not None and v {failing} a{i}: return False",
            ]
    lines.append("    return True")
    exec("\n".join(lines), namespace)  # noqa: S102 - source built above from constants only
    return namespace["match"]


# The dimension indices set in each 4-bit mask.
_MASK_DIMS = tuple(tuple(d for d in range(4) if mask >> d & 1) for mask in range(16))
_ALL = 0b1111
_RESERVATION_DIMS = 1 << _D_FLAT | 1 << _D_TIME


def _resolve(elements, wanted: int, local, duration, kwh, dims) -> list[int]:
    """The slot per dimension of the first matching element that has it (§7.3), -1 if none.

    `wanted` is a mask of the dimensions to look up (bit `_D_*`)."""
    found = [-1, -1, -1, -1]
    for element in elements:
        hit = element.mask & wanted
        if not hit:
            continue
        match = element.match
        if match is not None and not match(local, duration, kwh, dims):
            continue
        slots = element.slots
        for d in _MASK_DIMS[hit]:
            found[d] = slots[d]
        wanted &= ~hit
        if not wanted:
            break
    return found


@functools.lru_cache(maxsize=256)
def _zone_by_name(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def get_zone(time_zone: str | tzinfo) -> tzinfo:
    """A tzinfo from an IANA name (cached) or a tzinfo; ValueError for an unknown name."""
    if isinstance(time_zone, tzinfo):
        return time_zone
    if not isinstance(time_zone, str) or not time_zone:
        raise ValueError(f"unknown time zone {time_zone!r}")
    return _zone_by_name(time_zone)


def _hours(delta: timedelta) -> Decimal:
    """A duration in hours, to Python's default 28 significant digits (a published volume)."""
    return _VOLUME_CONTEXT.divide(Decimal(_micros(delta)), _MICROS_PER_HOUR)


def _ceil_to_step(volume: Decimal, step: int) -> Decimal:
    return (volume / step).to_integral_value(rounding=ROUND_CEILING) * step


# --- Pricing -------------------------------------------------------------------------------------


def price_session(
    tariff: Tariff,
    periods: Iterable[tuple[datetime, Mapping[str, Decimal]]],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    time_zone: str | tzinfo = "UTC",
    money_places: int | None = 2,
    reservation_expired: bool | None = None,
) -> PriceBreakdown:
    """Price a session's charging periods (in time order) under `tariff` (§7.3-§7.5).

    `start`/`end` are the session's (CDR) start and end: `start` anchors min/max_duration
    (default: the first period's start) and `end - start` is total_time (default: the sum of
    TIME and PARKING_TIME). `time_zone` is the location's: local time decides time-of-day,
    date and weekday restrictions. `reservation_expired` overrides the default (reservation
    periods and no charging or parking ones). ValueError for naive or unordered datetimes.
    """
    plan = tariff._plan
    zone = get_zone(time_zone)
    with localcontext(_CONTEXT):
        return _price(plan, periods, start, end, zone, money_places, reservation_expired)


def _price(plan: _Plan, periods, start, end, zone, money_places, reservation_expired):
    periods = periods if isinstance(periods, (list, tuple)) else list(periods)
    if start is None and periods:
        start = periods[0][0]
    for instant in (start, end):
        if instant is not None and instant.tzinfo is None:
            raise ValueError("datetimes must be timezone-aware")
    if reservation_expired is None and plan.expired:
        has_reservation = has_other = False
        for _, dims in periods:
            if RESERVATION_TIME in dims:
                has_reservation = True
            elif ENERGY in dims or TIME in dims or PARKING_TIME in dims:
                has_other = True
        reservation_expired = has_reservation and not has_other
    reservation_elements = plan.expired if reservation_expired else plan.reservation
    slots = plan.slots
    volume = [ZERO] * len(slots)
    used = [False] * len(slots)
    last = [-1, -1, -1, -1]  # per step group, the slot of the last period that used it
    flat_done = flat_reservation_done = False
    total_energy = total_time_h = total_parking = total_reservation = ZERO
    needs_local = plan.needs_local
    needs_duration = plan.needs_duration
    zero_delta = timedelta(0)
    previous = None
    for p_start, dims in periods:
        if p_start.tzinfo is None:
            raise ValueError("charging period start_date_time must be timezone-aware")
        if previous is not None and p_start < previous:
            raise ValueError("charging periods must be in time order")
        previous = p_start
        local = p_start.astimezone(zone) if needs_local else None
        if needs_duration:
            duration = p_start - start
            if duration < zero_delta:
                duration = zero_delta
        else:
            duration = zero_delta
        energy = dims.get(ENERGY)
        kwh_so_far = total_energy
        if RESERVATION_TIME in dims:
            hours = dims[RESERVATION_TIME]
            total_reservation += hours
            wanted = _RESERVATION_DIMS if not flat_reservation_done else 1 << _D_TIME
            found = _resolve(reservation_elements, wanted, local, duration, kwh_so_far, dims)
            if found[_D_FLAT] != -1:
                flat_reservation_done = True
                volume[found[_D_FLAT]] = ONE
                used[found[_D_FLAT]] = True
            s = found[_D_TIME]
            if s != -1:
                volume[s] += hours
                used[s] = True
                last[_G_RESERVATION] = s
            if energy is not None:
                total_energy += energy
            continue
        t_hours = dims.get(TIME)
        p_hours = dims.get(PARKING_TIME)
        wanted = 0 if flat_done else 1 << _D_FLAT
        if energy is not None:
            wanted |= 1 << _D_ENERGY
        if t_hours is not None:
            wanted |= 1 << _D_TIME
        if p_hours is not None:
            wanted |= 1 << _D_PARKING
        found = _resolve(plan.charging, wanted, local, duration, kwh_so_far, dims)
        s = found[_D_FLAT]
        if s != -1:
            flat_done = True
            volume[s] = ONE
            used[s] = True
        if energy is not None:
            total_energy += energy
            s = found[_D_ENERGY]
            if s != -1:
                volume[s] += energy
                used[s] = True
                last[_G_ENERGY] = s
        if t_hours is not None:
            total_time_h += t_hours
            s = found[_D_TIME]
            if s != -1:
                volume[s] += t_hours
                used[s] = True
                last[_G_TIME] = s
        if p_hours is not None:
            total_parking += p_hours
            s = found[_D_PARKING]
            if s != -1:
                volume[s] += p_hours
                used[s] = True
                last[_G_PARKING] = s

    # step_size (§7.4): once per session on the priced totals; TIME and PARKING_TIME share one.
    priced = [ZERO, ZERO, ZERO, ZERO]
    for slot in slots:
        if slot.group >= 0 and used[slot.index]:
            priced[slot.group] += volume[slot.index]
    extra_seconds: dict[int, Decimal] = {}
    billed = list(priced)
    s = last[_G_ENERGY]
    if s != -1 and slots[s].step > 0 and priced[_G_ENERGY] > ZERO:
        wh = (priced[_G_ENERGY] * _THOUSAND).quantize(_MICROWATT_HOUR)
        billed_kwh = _ceil_to_step(wh, slots[s].step) / _THOUSAND
        volume[s] += billed_kwh - priced[_G_ENERGY]
        billed[_G_ENERGY] = billed_kwh
    time_groups = [_G_RESERVATION]
    time_groups.append(_G_PARKING if last[_G_PARKING] != -1 else _G_TIME)
    for g in time_groups:
        s = last[g]
        if s == -1 or slots[s].step <= 0 or priced[g] <= ZERO:
            continue
        seconds = priced[g] * _SECONDS_PER_HOUR
        billed_seconds = _ceil_to_step(seconds.quantize(_SECOND), slots[s].step)
        extra_seconds[s] = billed_seconds - seconds
        billed[g] = _VOLUME_CONTEXT.divide(billed_seconds, _SECONDS_PER_HOUR)

    # Cost per component, summed per subtotal (unrounded).
    excl = [ZERO] * 5
    incl = [ZERO] * 5
    present = [False] * 5
    for slot in slots:
        i = slot.index
        if not used[i]:
            continue
        if slot.unit == _U_HOURS:
            extra = extra_seconds.get(i)
            if extra is None:
                cost = volume[i] * slot.price
            else:
                cost = (volume[i] * _SECONDS_PER_HOUR + extra) * slot.price / _SECONDS_PER_HOUR
        else:
            cost = volume[i] * slot.price
        b = slot.bucket
        present[b] = True
        excl[b] += cost
        incl[b] += cost if slot.factor is None else cost * slot.factor

    if end is not None and start is not None:
        total_time = _hours(end - start)
    else:
        total_time = total_time_h + total_parking
    return _finish(
        plan, excl, incl, present, money_places,
        volumes=(total_energy, total_time, total_parking, total_reservation),
        billed=(billed[_G_ENERGY], billed[_G_TIME], billed[_G_PARKING], billed[_G_RESERVATION]),
    )  # fmt: skip


def _no_rounding(value: Decimal) -> Decimal:
    return value


@functools.lru_cache(maxsize=16)
def _money_rounding(places: int | None):
    """(round, zero) for `places`: representation noise (beyond 24 significant digits, such
    as the last digit of 1/6 h) is dropped half-even first, then money is rounded half-up."""
    if places is None:
        return _no_rounding, ZERO
    if not isinstance(places, int) or places < 0:
        raise ValueError(f"money_places must be a whole number from 0, not {places!r}")
    quantum = Decimal(1).scaleb(-places)
    clean = _NOISE_CONTEXT.plus
    quantize = _MONEY_CONTEXT.quantize

    def rnd(value: Decimal) -> Decimal:
        return quantize(clean(value), quantum)

    return rnd, rnd(ZERO)


def _finish(plan: _Plan, excl, incl, present, money_places, *, volumes, billed) -> PriceBreakdown:
    """The one place money is rounded: each subtotal, then their sum, then min/max (§7.5)."""
    rnd, zero = _money_rounding(money_places)
    nothing = Price(zero, zero)
    sub = [Price(rnd(excl[b]), rnd(incl[b])) if present[b] else nothing for b in range(5)]
    total_excl = sub[0][0] + sub[1][0] + sub[2][0] + sub[3][0] + sub[4][0]
    total_incl = sub[0][1] + sub[1][1] + sub[2][1] + sub[3][1] + sub[4][1]
    min_applied = max_applied = False
    low, high = plan.min_price, plan.max_price
    if low is not None:
        if total_excl < low.excl_vat:
            total_excl, min_applied = rnd(low.excl_vat), True
        if low.incl_vat is not None and total_incl < low.incl_vat:
            total_incl, min_applied = rnd(low.incl_vat), True
    if high is not None:
        if total_excl > high.excl_vat:
            total_excl, max_applied = rnd(high.excl_vat), True
        if high.incl_vat is not None and total_incl > high.incl_vat:
            total_incl, max_applied = rnd(high.incl_vat), True
    return PriceBreakdown(
        plan.currency,
        Price(total_excl, total_incl),
        *sub,
        *volumes,
        *billed,
        _PRICED_NAMES[sum(1 << b for b in range(5) if present[b])],
        min_applied,
        max_applied,
    )


# --- Period splitting (§7.2) ---------------------------------------------------------------------


def split_periods(
    tariff: Tariff,
    intervals: Iterable[MeterInterval],
    *,
    start: datetime | None = None,
    time_zone: str | tzinfo = "UTC",
) -> list[ChargingPeriod]:
    """Cut measured intervals (in time order) into charging periods (§7.2).

    A new period starts wherever an input of the tariff's restrictions may change: local
    start/end times and midnights (in `time_zone`, DST transitions included), the session
    duration reaching a min/max_duration, the session energy reaching a min/max_kwh
    (interpolated: energy flows evenly within an interval), and between intervals whose
    state (charging, parking, reservation, current, power) differs. Adjacent pieces that the
    tariff prices alike (same component per dimension) are merged again, so the result is as
    short as the tariff allows. Volumes add up exactly to the intervals' energy and duration.
    """
    plan = tariff._plan
    zone = get_zone(time_zone)
    intervals = list(intervals)
    if not intervals:
        return []
    if start is None:
        start = intervals[0].start
    with localcontext(_VOLUME_CONTEXT):
        return _split(plan, intervals, start, zone)


def _kind(interval: MeterInterval) -> str:
    if interval.reservation:
        return RESERVATION_TIME
    return TIME if interval.charging else PARKING_TIME


def _split(plan: _Plan, intervals: list[MeterInterval], start: datetime, zone) -> list:
    out: list[list] = []  # [start, kind, micros, energy, cur lo, cur hi, pow lo, pow hi, sig, end]
    kwh = ZERO
    local_cuts: list[datetime] = []
    if plan.local_times:
        first, last = intervals[0].start, max(iv.end for iv in intervals)
        local_cuts = sorted(set(_local_boundaries(plan.local_times, first, last, zone)))
    previous_end = None
    for iv in intervals:
        if iv.start.tzinfo is None or iv.end.tzinfo is None:
            raise ValueError("interval datetimes must be timezone-aware")
        if iv.end < iv.start or (previous_end is not None and iv.start < previous_end):
            raise ValueError("intervals must be in time order and not overlap")
        previous_end = iv.end
        cuts = _cuts(plan, iv, start, kwh, local_cuts)
        span = _micros(iv.end - iv.start)
        # Cumulative energy at each cut: exact at kWh thresholds, pro rata elsewhere.
        points = [(iv.start, kwh)]
        for instant, at_threshold in cuts:
            if at_threshold is not None:
                points.append((instant, at_threshold))
            else:
                # Multiply before dividing: exact whenever the result is a short decimal.
                share = iv.energy * _micros(instant - iv.start) / span
                points.append((instant, kwh + share))
        points.append((iv.end, kwh + iv.energy))
        kind = _kind(iv)
        for (p_start, e0), (p_end, e1) in zip(points, points[1:], strict=False):
            if p_end == p_start and e1 == e0:
                continue
            dims: dict[str, Decimal] = {}
            if iv.current is not None:
                dims[MIN_CURRENT] = dims[MAX_CURRENT] = iv.current
            if iv.power is not None:
                dims[MIN_POWER] = dims[MAX_POWER] = iv.power
            signature = _signature(plan, kind, p_start, start, e0, dims, zone)
            piece_energy = e1 - e0
            last = out[-1] if out else None
            if last is not None and last[1] == kind and last[8] == signature and last[9] == p_start:
                last[2] += _micros(p_end - p_start)
                last[3] += piece_energy
                for k, (lo, hi) in ((4, (iv.current, iv.current)), (6, (iv.power, iv.power))):
                    if lo is not None:
                        last[k] = lo if last[k] is None else min(last[k], lo)
                        last[k + 1] = hi if last[k + 1] is None else max(last[k + 1], hi)
                last[9] = p_end
            else:
                out.append([
                    p_start, kind, _micros(p_end - p_start), piece_energy,
                    iv.current, iv.current, iv.power, iv.power, signature, p_end,
                ])  # fmt: skip
        kwh += iv.energy
    periods = []
    for p_start, kind, micros, energy, c_lo, c_hi, w_lo, w_hi, _, _ in out:
        dims = {}
        if kind == TIME or energy != ZERO:
            dims[ENERGY] = energy
        dims[kind] = Decimal(micros) / _MICROS_PER_HOUR
        if c_lo is not None:
            dims[MIN_CURRENT], dims[MAX_CURRENT] = c_lo, c_hi
        if w_lo is not None:
            dims[MIN_POWER], dims[MAX_POWER] = w_lo, w_hi
        periods.append(ChargingPeriod(p_start, dims))
    return periods


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _signature(plan: _Plan, kind: str, p_start, start, kwh, dims, zone) -> tuple:
    local = p_start.astimezone(zone) if plan.needs_local else None
    duration = max(p_start - start, timedelta(0))
    if kind == RESERVATION_TIME:
        # Both reservation element lists: the split must not depend on expiry.
        return (
            tuple(_resolve(plan.reservation, _RESERVATION_DIMS, local, duration, kwh, dims)),
            tuple(_resolve(plan.expired, _RESERVATION_DIMS, local, duration, kwh, dims)),
        )  # fmt: skip
    return tuple(_resolve(plan.charging, _ALL, local, duration, kwh, dims))


def _cuts(plan: _Plan, iv: MeterInterval, start: datetime, kwh: Decimal, local_cuts) -> list:
    """Instants strictly inside the interval where a restriction input may change, sorted.

    Each is (instant, exact cumulative kWh there or None)."""
    s, e = iv.start, iv.end
    found: dict[datetime, Decimal | None] = {}
    for offset in plan.durations:
        instant = start + offset
        if s < instant < e:
            found.setdefault(instant, None)
    if iv.energy > ZERO:
        span = _micros(e - s)
        for threshold in plan.kwh_thresholds:
            if kwh < threshold < kwh + iv.energy:
                # First microsecond at which the energy has reached the threshold.
                micros = (Decimal(span) * (threshold - kwh) / iv.energy).to_integral_value(
                    rounding=ROUND_CEILING
                )
                instant = s + timedelta(microseconds=int(micros))
                if s < instant < e:
                    found[instant] = threshold
    first, last = bisect.bisect_right(local_cuts, s), bisect.bisect_left(local_cuts, e)
    for instant in local_cuts[first:last]:
        found.setdefault(instant, None)
    return sorted(found.items())


def _local_boundaries(times: tuple[time, ...], s: datetime, e: datetime, zone) -> list[datetime]:
    """UTC instants in (s, e) where the local clock shows one of `times`, or the UTC offset
    changes (a DST jump can skip a boundary time; the jump itself is then the boundary)."""
    out = []
    day = s.astimezone(zone).date() - timedelta(days=1)
    last_day = e.astimezone(zone).date() + timedelta(days=1)
    while day <= last_day:
        for t in times:
            for fold in (0, 1):
                instant = datetime.combine(day, t, tzinfo=zone).replace(fold=fold)
                instant = instant.astimezone(UTC)
                if s < instant < e:
                    out.append(instant)
        day += timedelta(days=1)
    points = sorted({s, e, *out})
    for a, b in zip(points, points[1:], strict=False):
        if a.astimezone(zone).utcoffset() != b.astimezone(zone).utcoffset():
            out.append(_offset_change(a, b, zone))
    return out


def _offset_change(a: datetime, b: datetime, zone) -> datetime:
    """The first instant after `a` (to the microsecond) with `b`'s UTC offset."""
    target = b.astimezone(zone).utcoffset()
    lo, hi = a, b
    while hi - lo > timedelta(microseconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return hi
