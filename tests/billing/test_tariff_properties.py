"""Invariants of the tariff maths, checked on generated tariffs and sessions (hypothesis).

- cost is never negative, and without a min/max clamp total_cost is the sum of the subtotals;
- cost is monotonic in energy and in time (for tariffs whose price per unit does not change
  within a dimension: with two prices, OCPI's rule of billing the step_size extra at the last
  component's price is not monotonic, e.g. 0.5 kWh at 0.10 then 0.1 kWh at 1.00 per 1000 Wh
  costs 0.55, but 0.8 kWh then 0.1 kWh costs 0.28);
- cost does not depend on how periods are split: neither splitting a period of an unrestricted
  tariff, nor subdividing the meter intervals that `split_periods` cuts for a restricted one;
- min_price and max_price are respected, excl and incl each.
Example counts are kept modest so the suite stays fast.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.tariff_calc import MeterInterval, price_session, split_periods
from billing.tariff_model import tariff_from_ocpi

FAST = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
BASE = datetime(2025, 3, 28, 20, 0, tzinfo=UTC)  # a Friday; Amsterdam's DST jump follows
COST_FIELDS = (
    "total_cost", "total_fixed_cost", "total_energy_cost", "total_time_cost",
    "total_parking_cost", "total_reservation_cost",
)  # fmt: skip
STEPS = {
    "ENERGY": [0, 1, 100, 500, 1000],
    "TIME": [0, 1, 60, 300, 900, 1800],
    "PARKING_TIME": [0, 1, 60, 300, 900],
    "FLAT": [1],
}

money = st.integers(0, 1000).map(lambda n: D(n) / 100)
vats = st.one_of(st.none(), st.sampled_from(["0", "5.2", "9", "19", "21"]))


@st.composite
def components(draw, kinds=("FLAT", "ENERGY", "TIME", "PARKING_TIME")):
    chosen = draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=4, unique=True))
    out = []
    for kind in chosen:
        data = {"type": kind, "price": draw(money), "step_size": draw(st.sampled_from(STEPS[kind]))}
        vat = draw(vats)
        if vat is not None:
            data["vat"] = vat
        out.append(data)
    return out


@st.composite
def min_max(draw):
    fields = {}
    low = draw(st.one_of(st.none(), money))
    high = draw(st.one_of(st.none(), money.map(lambda m: m * 5)))
    if low is not None and high is not None and high < low:
        low, high = high, low
    for name, value in (("min_price", low), ("max_price", high)):
        if value is not None:
            price = {"excl_vat": value}
            if draw(st.booleans()):
                price["incl_vat"] = (value * D("1.21")).quantize(D("0.01"))
            fields[name] = price
    return fields


@st.composite
def unrestricted_tariffs(draw):
    return tariff_from_ocpi(
        {
            "currency": "EUR",
            "elements": [{"price_components": draw(components())}],
            **draw(min_max()),
        }
    )


@st.composite
def restrictions(draw):
    r = {}
    if draw(st.booleans()):
        r["start_time"] = f"{draw(st.integers(0, 23)):02d}:{draw(st.sampled_from([0, 30])):02d}"
        r["end_time"] = f"{draw(st.integers(0, 23)):02d}:00"
    if draw(st.booleans()):
        r["day_of_week"] = draw(
            st.lists(
                st.sampled_from(["FRIDAY", "SATURDAY", "SUNDAY", "MONDAY"]), min_size=1, unique=True
            )
        )
    if draw(st.booleans()):
        r[draw(st.sampled_from(["min_kwh", "max_kwh"]))] = D(draw(st.integers(1, 40)))
    if draw(st.booleans()):
        r[draw(st.sampled_from(["min_duration", "max_duration"]))] = draw(st.integers(1, 12)) * 900
    if draw(st.booleans()):
        r[draw(st.sampled_from(["min_power", "max_power"]))] = D(
            draw(st.sampled_from([11, 16, 22]))
        )
    return r


@st.composite
def restricted_tariffs(draw):
    elements = []
    for _ in range(draw(st.integers(1, 4))):
        element = {"price_components": draw(components())}
        r = draw(restrictions())
        if r:
            element["restrictions"] = r
        elements.append(element)
    if draw(st.booleans()):
        elements.append({"price_components": draw(components())})
    if draw(st.booleans()):
        reservation = {"price_components": draw(components(("FLAT", "TIME")))}
        reservation["restrictions"] = {
            "reservation": draw(st.sampled_from(["RESERVATION", "RESERVATION_EXPIRES"]))
        }
        elements.insert(0, reservation)
    return tariff_from_ocpi({"currency": "EUR", "elements": elements, **draw(min_max())})


kwh = st.integers(0, 50_000).map(lambda wh: D(wh) / 1000)
hours = st.integers(1, 300).map(lambda n: D(n) / 100)  # 36 s to 3 h, exact decimals


@st.composite
def sessions(draw, reservations=True):
    """Periods (start, volumes), consecutive, starting at BASE."""
    periods = []
    at = BASE
    kinds = ["charging", "charging", "parking"] + (["reservation"] if reservations else [])
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(kinds))
        length = draw(hours)
        if kind == "charging":
            volumes = {"ENERGY": draw(kwh), "TIME": length}
            if draw(st.booleans()):
                volumes["MAX_POWER"] = D(draw(st.sampled_from([7, 11, 16, 22, 50])))
        elif kind == "parking":
            volumes = {"PARKING_TIME": length}
        else:
            volumes = {"RESERVATION_TIME": length}
        periods.append((at, volumes))
        at += timedelta(seconds=int(length * 3600))
    return periods, at


def price(tariff, session, **kwargs):
    periods, end = session
    return price_session(
        tariff, periods, start=BASE, end=end, time_zone="Europe/Amsterdam", **kwargs
    )


def totals(result):
    return [(getattr(result, f).excl_vat, getattr(result, f).incl_vat) for f in COST_FIELDS]


@FAST
@given(tariff=restricted_tariffs(), session=sessions())
def test_cost_is_never_negative_and_adds_up(tariff, session):
    result = price(tariff, session)
    for excl, incl in totals(result):
        assert excl >= 0
        assert incl >= 0
    if not (result.min_price_applied or result.max_price_applied):
        parts = totals(result)[1:]
        assert result.total_cost.excl_vat == sum(p[0] for p in parts)
        assert result.total_cost.incl_vat == sum(p[1] for p in parts)


@st.composite
def increases(draw, dimension):
    """A session with at least one period holding `dimension`, the index of one, and a volume."""
    periods, end = draw(sessions(reservations=False))
    holders = [i for i, (_, v) in enumerate(periods) if dimension in v]
    if not holders:
        periods.append((end, {dimension: D(0)}))
        end += timedelta(hours=1)
        holders = [len(periods) - 1]
    extra = draw(kwh if dimension == "ENERGY" else hours)
    return (periods, end), draw(st.sampled_from(holders)), extra


def with_more(session, index, dimension, extra):
    periods, end = session
    start, volumes = periods[index]
    changed = list(periods)
    changed[index] = (start, {**volumes, dimension: volumes[dimension] + extra})
    return changed, end


@FAST
@given(tariff=unrestricted_tariffs(), case=increases("ENERGY"))
def test_cost_is_monotonic_in_energy(tariff, case):
    session, index, extra = case
    before = price(tariff, session).total_cost
    after = price(tariff, with_more(session, index, "ENERGY", extra)).total_cost
    assert after.excl_vat >= before.excl_vat
    assert after.incl_vat >= before.incl_vat


@FAST
@given(
    tariff=unrestricted_tariffs(),
    dimension=st.sampled_from(["TIME", "PARKING_TIME"]),
    data=st.data(),
)
def test_cost_is_monotonic_in_time(tariff, dimension, data):
    session, index, extra = data.draw(increases(dimension))
    before = price(tariff, session).total_cost
    after = price(tariff, with_more(session, index, dimension, extra)).total_cost
    assert after.excl_vat >= before.excl_vat
    assert after.incl_vat >= before.incl_vat


@FAST
@given(
    tariff=unrestricted_tariffs(),
    session=sessions(),
    data=st.data(),
)
def test_splitting_a_period_changes_nothing(tariff, session, data):
    # given a period cut in two at k tenths of its volumes
    periods, end = session
    index = data.draw(st.integers(0, len(periods) - 1))
    tenths = data.draw(st.integers(1, 9))
    start, volumes = periods[index]
    first = {k: v * tenths / 10 for k, v in volumes.items() if not k.startswith("MAX_")}
    second = {k: volumes[k] - v for k, v in first.items()}
    for k in volumes:
        if k.startswith("MAX_"):
            first[k] = second[k] = volumes[k]
    middle = start + timedelta(seconds=1)
    split = [*periods[:index], (start, first), (middle, second), *periods[index + 1 :]]

    # then the breakdown is the same
    assert price(tariff, (split, end)) == price(tariff, session)


@st.composite
def meter_readings(draw):
    """Consecutive meter intervals of whole minutes at whole Wh per minute."""
    intervals = []
    at = BASE
    for _ in range(draw(st.integers(1, 6))):
        minutes = draw(st.integers(1, 240))
        charging = draw(st.booleans()) or not intervals
        rate = draw(st.integers(1, 900)) if charging else 0
        power = D(draw(st.sampled_from([7, 11, 16, 22])))
        intervals.append((at, minutes, rate, charging, power))
        at += timedelta(minutes=minutes)
    return intervals


def to_intervals(readings):
    return [
        MeterInterval(
            start, start + timedelta(minutes=minutes), D(rate * minutes) / 1000,
            charging=charging, power=power,
        )
        for start, minutes, rate, charging, power in readings
    ]  # fmt: skip


@FAST
@given(tariff=restricted_tariffs(), readings=meter_readings(), data=st.data())
def test_price_does_not_depend_on_how_meter_intervals_are_split(tariff, readings, data):
    # given the same session measured once coarsely and once with one interval subdivided
    index = data.draw(st.integers(0, len(readings) - 1))
    start, minutes, rate, charging, power = readings[index]
    if minutes > 1:
        k = data.draw(st.integers(1, minutes - 1))
        finer = [
            *readings[:index],
            (start, k, rate, charging, power),
            (start + timedelta(minutes=k), minutes - k, rate, charging, power),
            *readings[index + 1 :],
        ]
    else:
        finer = readings
    zone = "Europe/Amsterdam"

    # when each is cut into periods and priced
    coarse_periods = split_periods(tariff, to_intervals(readings), start=BASE, time_zone=zone)
    fine_periods = split_periods(tariff, to_intervals(finer), start=BASE, time_zone=zone)
    end = to_intervals(readings)[-1].end
    coarse = price_session(tariff, coarse_periods, start=BASE, end=end, time_zone=zone)
    fine = price_session(tariff, fine_periods, start=BASE, end=end, time_zone=zone)

    # then the costs and volumes agree
    assert totals(fine) == totals(coarse)
    assert fine.total_energy == coarse.total_energy
    assert [p.start_date_time for p in fine_periods] == [p.start_date_time for p in coarse_periods]


@FAST
@given(tariff=restricted_tariffs(), session=sessions())
def test_min_and_max_price_are_respected(tariff, session):
    result = price(tariff, session)
    low, high = tariff.min_price, tariff.max_price
    if low is not None:
        assert result.total_cost.excl_vat >= low.excl_vat
        if low.incl_vat is not None:
            assert result.total_cost.incl_vat >= low.incl_vat
    if high is not None:
        assert result.total_cost.excl_vat <= high.excl_vat
        if high.incl_vat is not None:
            assert result.total_cost.incl_vat <= high.incl_vat
