"""The tariff maths, rule by rule, with hand-computed expectations (PROTOCOL.md §7, §10.5, .13-.14).

Where a case comes from the OCPI 2.2.1 specification's own tariff examples (mod_tariffs), the
test says so; where the specification's table has an arithmetic slip, the test says what it
expects instead and why.
"""

from datetime import UTC, datetime, time
from decimal import Decimal as D

import pytest

from billing.tariff_calc import (
    ChargingPeriod,
    MeterInterval,
    Price,
    PriceComponent,
    Restrictions,
    Tariff,
    TariffElement,
    price_session,
    split_periods,
)
from billing.tariff_model import (
    TariffFormatError,
    periods_from_ocpi,
    tariff_from_model,
    tariff_from_ocpi,
)

AMS = "Europe/Amsterdam"


# --- helpers -------------------------------------------------------------------------------------


def tariff(*elements, **fields) -> Tariff:
    return tariff_from_ocpi({"currency": "EUR", "elements": list(elements), **fields})


def element(*components, **restrictions) -> dict:
    data = {"price_components": list(components)}
    if restrictions:
        data["restrictions"] = restrictions
    return data


def component(kind, price, vat=None, step=1) -> dict:
    data = {"type": kind, "price": price, "step_size": step}
    if vat is not None:
        data["vat"] = vat
    return data


def energy(price, vat=None, step=1):
    return component("ENERGY", price, vat, step)


def charging_time(price, vat=None, step=1):
    return component("TIME", price, vat, step)


def parking(price, vat=None, step=1):
    return component("PARKING_TIME", price, vat, step)


def flat(price, vat=None):
    return component("FLAT", price, vat)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def minutes(n) -> D:
    """n minutes in hours, as a sender computes it (0.7833… for 47)."""
    return D(n) / D(60)


def price(excl, incl=None) -> Price:
    return Price(D(excl), D(excl if incl is None else incl))


def kwh_at(t: Tariff, start: str, kwh="10", **kwargs):
    """The energy cost of one period of `kwh` starting at `start` (UTC)."""
    result = price_session(t, [(utc(start), {"ENERGY": D(kwh)})], **kwargs)
    return result.total_energy_cost


# --- dimensions ----------------------------------------------------------------------------------


def test_energy_costs_kwh_times_price():
    # given 0.25/kWh with 10% VAT
    t = tariff(element(energy("0.25", "10")))

    # when 20 kWh are charged in one hour
    result = price_session(
        t,
        [(utc("2025-01-13 14:30"), {"ENERGY": D(20)})],
        start=utc("2025-01-13 14:30"),
        end=utc("2025-01-13 15:30"),
    )

    # then
    assert result.total_energy_cost == price("5.00", "5.50")
    assert result.total_cost == price("5.00", "5.50")
    assert result.total_energy == D(20)
    assert result.total_time == D(1)
    assert result.priced == {"ENERGY"}


def test_time_costs_charging_hours_times_price_and_unpriced_parking_is_free():
    # given 2.00/h of charging with 10% VAT and no parking component
    t = tariff(element(charging_time("2.00", "10")))

    # when 1.5 h charging, then 0.5 h parked
    result = price_session(
        t,
        [
            (utc("2025-01-13 10:00"), {"TIME": D("1.5"), "ENERGY": D(11)}),
            (utc("2025-01-13 11:30"), {"PARKING_TIME": D("0.5")}),
        ],
        start=utc("2025-01-13 10:00"),
        end=utc("2025-01-13 12:00"),
    )

    # then
    assert result.total_time_cost == price("3.00", "3.30")
    assert result.total_parking_cost == price("0.00")
    assert result.total_energy_cost == price("0.00")
    assert result.total_cost == price("3.00", "3.30")
    assert (result.total_time, result.total_parking_time) == (D(2), D("0.5"))
    assert result.priced == {"TIME"}


def test_parking_time_costs_hours_not_charging():
    # given 5.00/h parking with 20% VAT and nothing else priced
    t = tariff(element(parking("5.00", "20")))

    # when
    result = price_session(
        t,
        [
            (utc("2025-01-13 10:00"), {"TIME": D(1), "ENERGY": D(7)}),
            (utc("2025-01-13 11:00"), {"PARKING_TIME": D("0.5")}),
        ],
    )

    # then
    assert result.total_parking_cost == price("2.50", "3.00")
    assert result.total_time_cost == price("0.00")
    assert result.total_cost == price("2.50", "3.00")


def test_flat_is_billed_once_per_session():
    # given the fixture multiple_flat_fees: FLAT 1.00, 0% VAT, step_size 0
    t = tariff(element(component("FLAT", "1.00", "0.0", 0)))

    # when the session has three periods
    periods = [(utc(f"2015-06-29 {h}"), {"TIME": D("0.5")}) for h in ("15:00", "15:30", "16:00")]
    result = price_session(t, periods)

    # then
    assert result.total_fixed_cost == price("1.00")
    assert result.total_cost == price("1.00")


def test_free_of_charge_tariff_costs_nothing():
    # given the specification's free-of-charge tariff: one FLAT 0.00
    t = tariff(element(component("FLAT", "0.00", None, 0)))

    # when
    result = price_session(t, [(utc("2025-01-13 10:00"), {"ENERGY": D(30), "TIME": D(2)})])

    # then
    assert result.total_cost == price("0.00")
    assert result.priced == {"FIXED"}


# --- step_size -----------------------------------------------------------------------------------


def test_energy_step_size_rounds_the_total_up_and_money_half_up():
    # given the specification's tariff_alt_url example: start 0.50 (20%), 0.25/kWh per 100 Wh (10%)
    t = tariff(element(flat("0.50", "20"), energy("0.25", "10", 100)))

    # when 20.45 kWh are charged
    result = price_session(t, [(utc("2025-01-13 10:00"), {"ENERGY": D("20.45")})])

    # then 20.5 kWh are billed: 5.125 -> 5.13, 5.6375 -> 5.64 (half-up), total 5.63 / 6.24
    assert result.billed_energy == D("20.5")
    assert result.total_energy_cost == price("5.13", "5.64")
    assert result.total_fixed_cost == price("0.50", "0.60")
    assert result.total_cost == price("5.63", "6.24")
    assert result.total_energy == D("20.45")  # measured, not rounded


@pytest.mark.parametrize("hours", ["0.1667", "0.166667", "0.16666667"])
def test_time_given_to_a_few_decimals_does_not_gain_a_step_from_its_last_digit(hours):
    # given 6.00/h charging time billed per 10 minutes
    t = tariff(element(charging_time("6.00", step=600)))

    # when 10 minutes are reported in hours rounded to 4, 6 or 8 decimals (600.12 s, 600.0012 s)
    result = price_session(t, [(utc("2025-01-13 10:00"), {"TIME": D(hours)})])

    # then one 600 s block is billed, not two
    assert result.total_time_cost == price("1.00")


def test_step_size_rounds_the_session_total_not_each_period():
    # given 1.00/kWh billed per kWh
    t = tariff(element(energy("1.00", None, 1000)))

    # when two periods of 0.4 kWh
    result = price_session(
        t,
        [
            (utc("2025-01-13 10:00"), {"ENERGY": D("0.4")}),
            (utc("2025-01-13 10:30"), {"ENERGY": D("0.4")}),
        ],
    )

    # then 0.8 kWh -> 1 kWh once (per period it would be 2 kWh)
    assert result.total_energy_cost == price("1.00")


def test_energy_step_size_comes_from_the_last_component_and_the_extra_is_priced_there():
    # given 0.10/kWh per 100 Wh before 17:00 and 0.50/kWh per 1000 Wh after
    t = tariff(
        element(energy("0.10", None, 100), start_time="00:00", end_time="17:00"),
        element(energy("0.50", None, 1000), start_time="17:00", end_time="00:00"),
    )

    # when 2.25 kWh before 17:00 and 0.5 kWh after
    result = price_session(
        t,
        [
            (utc("2025-01-13 16:00"), {"ENERGY": D("2.25")}),
            (utc("2025-01-13 17:00"), {"ENERGY": D("0.5")}),
        ],
    )

    # then 2.75 kWh -> 3 kWh (the last step, 1000 Wh); the extra 0.25 kWh is billed at 0.50:
    # 2.25 x 0.10 + 0.75 x 0.50 = 0.225 + 0.375 = 0.60
    assert result.billed_energy == D(3)
    assert result.total_energy_cost == price("0.60")


# The specification's step_size tariff (tariff_14_step_size, fixture tandemdrive/step_size).
STEP_SIZE_TARIFF = {
    "currency": "EUR",
    "elements": [
        element(
            charging_time("1.20", None, 1800), parking("1.00", None, 900),
            start_time="00:00", end_time="17:00",
        ),
        element(
            charging_time("2.40", None, 900), parking("1.00", None, 900),
            start_time="17:00", end_time="20:00",
        ),
        element(charging_time("2.40", None, 900), start_time="20:00", end_time="00:00"),
    ],
}  # fmt: skip


def test_time_step_size_of_the_last_element_rounds_the_total_spec_example_2():
    # given the specification's step_size tariff
    t = tariff_from_ocpi(STEP_SIZE_TARIFF)

    # when charging 16:35-17:10 and unplugging at once (spec "switching ... #2")
    result = price_session(
        t,
        [
            (utc("2025-01-13 16:35"), {"TIME": minutes(25)}),
            (utc("2025-01-13 17:00"), {"TIME": minutes(10)}),
        ],
        start=utc("2025-01-13 16:35"),
        end=utc("2025-01-13 17:10"),
    )

    # then 35 min -> 45 min (step 900 s of the last element): 25 min x 1.20 + 20 min x 2.40
    assert result.total_time_cost == price("1.30")
    assert result.billed_time == D("0.75")


def test_only_parking_is_rounded_when_parking_was_priced_spec_example_1():
    # given the specification's step_size tariff
    t = tariff_from_ocpi(STEP_SIZE_TARIFF)

    # when charging 16:55-17:05, then parked 2 minutes (spec "switching ... #1")
    result = price_session(
        t,
        [
            (utc("2025-01-13 16:55"), {"TIME": minutes(5)}),
            (utc("2025-01-13 17:00"), {"TIME": minutes(5)}),
            (utc("2025-01-13 17:05"), {"PARKING_TIME": minutes(2)}),
        ],
        start=utc("2025-01-13 16:55"),
        end=utc("2025-01-13 17:07"),
    )

    # then charging is billed exactly (0.10 + 0.20) and parking 2 -> 15 min (0.25): 0.55
    assert result.total_time_cost == price("0.30")
    assert result.total_parking_cost == price("0.25")
    assert result.total_cost == price("0.55")
    assert result.total_time == D("0.2")


def test_free_parking_after_priced_parking_rounds_the_priced_parking():
    # given the specification's step_size tariff (parking is free from 20:00)
    t = tariff_from_ocpi(STEP_SIZE_TARIFF)

    # when charging 19:40-19:52 and parked until 20:12 (spec "switching to Free-of-Charge")
    result = price_session(
        t,
        [
            (utc("2025-01-13 19:40"), {"TIME": minutes(12)}),
            (utc("2025-01-13 19:52"), {"PARKING_TIME": minutes(8)}),
            (utc("2025-01-13 20:00"), {"PARKING_TIME": minutes(12)}),
        ],
    )

    # then the 8 priced minutes become 15 (0.25) and charging is exact: 12 min x 2.40 = 0.48.
    # (The specification's table for this case prices charging at 1.20 and parking at 2.40,
    # contradicting its own tariff; its text's rule is what is implemented.)
    assert result.billed_parking_time == D("0.25")
    assert result.total_parking_cost == price("0.25")
    assert result.total_time_cost == price("0.48")
    assert result.total_cost == price("0.73")


def test_parking_priced_at_zero_still_takes_the_time_rounding():
    # given TIME per 15 minutes and a zero-priced PARKING_TIME component
    t = tariff(element(charging_time("2.40", None, 900), parking("0.00", None, 1)))

    # when 10 minutes of charging, 5 parked
    result = price_session(
        t,
        [
            (utc("2025-01-13 10:00"), {"TIME": minutes(10)}),
            (utc("2025-01-13 10:10"), {"PARKING_TIME": minutes(5)}),
        ],
    )

    # then parking was priced (at 0), so charging time is billed exactly: 10 min x 2.40
    assert result.total_time_cost == price("0.40")
    assert result.total_parking_cost == price("0.00")


@pytest.mark.parametrize(
    ("step", "expected"),
    [(1, "0.029"), (25, "0.03125"), (500, "0.125")],
)
def test_energy_step_sizes_from_the_specification(step, expected):
    # given 0.25/kWh with a step_size in Wh (PriceComponent note in mod_tariffs)
    t = tariff(element(energy("0.25", None, step)))

    # when 115.2 Wh are charged
    result = price_session(
        t, [(utc("2025-01-13 10:00"), {"ENERGY": D("0.1152")})], money_places=None
    )

    # then 116 Wh, 125 Wh or 500 Wh are billed
    assert result.total_energy_cost.excl_vat == D(expected)


def test_step_size_zero_means_no_rounding():
    # given a step_size of 0 (found in the wild)
    t = tariff(element(energy("1.00", None, 0)))

    # when
    result = price_session(
        t, [(utc("2025-01-13 10:00"), {"ENERGY": D("0.4004")})], money_places=None
    )

    # then
    assert result.total_energy_cost.excl_vat == D("0.4004")


def test_time_rounding_ignores_digits_below_a_millisecond():
    # given 6.00/h billed per second
    t = tariff(element(charging_time("6.00")))

    # when a sender wrote 50 minutes as 0.8333333334 h (3000.00000024 s)
    result = price_session(
        t, [(utc("2025-01-13 10:00"), {"TIME": D("0.8333333334")})], money_places=None
    )

    # then 3000 s are billed, not 3001 s
    assert result.total_time_cost.excl_vat == D(5)


# --- restrictions: time of day, dates, weekdays --------------------------------------------------

DAY_NIGHT = tariff(
    element(energy("0.30"), start_time="07:00", end_time="23:00"),
    element(energy("0.20")),
)


@pytest.mark.parametrize(
    ("start", "cost"),
    [
        ("2025-01-13 06:59:59", "2.00"),
        ("2025-01-13 07:00:00", "3.00"),  # start_time is inclusive
        ("2025-01-13 22:59:59", "3.00"),
        ("2025-01-13 23:00:00", "2.00"),  # end_time is exclusive
    ],
)
def test_start_time_is_inclusive_and_end_time_exclusive(start, cost):
    assert kwh_at(DAY_NIGHT, start) == price(cost)


@pytest.mark.parametrize(
    ("start", "cost"),
    [
        ("2025-01-13 21:59", "3.00"),
        ("2025-01-13 22:00", "1.00"),
        ("2025-01-14 00:00", "1.00"),
        ("2025-01-14 05:59", "1.00"),
        ("2025-01-14 06:00", "3.00"),
    ],
)
def test_time_range_ending_before_it_starts_wraps_past_midnight(start, cost):
    # given 0.10/kWh 22:00-06:00, else 0.30
    t = tariff(
        element(energy("0.10"), start_time="22:00", end_time="06:00"), element(energy("0.30"))
    )
    assert kwh_at(t, start) == price(cost)


@pytest.mark.parametrize(
    ("start", "cost"),
    [
        ("2025-01-13 17:59", "2.00"),
        ("2025-01-13 18:00", "4.00"),
        ("2025-01-13 23:59:59", "4.00"),
        ("2025-01-14 00:00", "2.00"),
    ],
)
def test_end_time_midnight_means_end_of_day(start, cost):
    # given 0.40/kWh 18:00-00:00, else 0.20
    t = tariff(
        element(energy("0.40"), start_time="18:00", end_time="00:00"), element(energy("0.20"))
    )
    assert kwh_at(t, start) == price(cost)


@pytest.mark.parametrize(
    ("restrictions", "start", "cost"),
    [
        ({"start_time": "12:00"}, "2025-01-13 11:59", "2.00"),
        ({"start_time": "12:00"}, "2025-01-13 12:00", "4.00"),
        ({"start_time": "12:00"}, "2025-01-13 23:59", "4.00"),
        ({"end_time": "12:00"}, "2025-01-13 00:00", "4.00"),
        ({"end_time": "12:00"}, "2025-01-13 11:59", "4.00"),
        ({"end_time": "12:00"}, "2025-01-13 12:00", "2.00"),
    ],
)
def test_start_time_or_end_time_alone(restrictions, start, cost):
    t = tariff(element(energy("0.40"), **restrictions), element(energy("0.20")))
    assert kwh_at(t, start) == price(cost)


@pytest.mark.parametrize(
    ("start", "time_zone", "cost"),
    [
        ("2025-02-28 23:59", "UTC", "2.00"),
        ("2025-03-01 00:00", "UTC", "5.00"),  # start_date is inclusive
        ("2025-03-01 23:59", "UTC", "5.00"),
        ("2025-03-02 00:00", "UTC", "2.00"),  # end_date is exclusive
        ("2025-02-28 23:30", AMS, "5.00"),  # 1 March 00:30 in Amsterdam
        ("2025-03-01 23:30", AMS, "2.00"),  # 2 March 00:30 in Amsterdam
    ],
)
def test_start_date_and_end_date_are_local_days(start, time_zone, cost):
    # given a one-day promotion on 1 March
    t = tariff(
        element(energy("0.50"), start_date="2025-03-01", end_date="2025-03-02"),
        element(energy("0.20")),
    )
    assert kwh_at(t, start, time_zone=time_zone) == price(cost)


@pytest.mark.parametrize(
    ("time_zone", "cost"),
    [("UTC", "5.00"), (AMS, "3.00")],
)
def test_day_of_week_is_the_local_weekday(time_zone, cost):
    # given 0.50/kWh at weekends, else 0.30; Sunday 23:30 UTC is Monday 00:30 in Amsterdam
    t = tariff(element(energy("0.50"), day_of_week=["SATURDAY", "SUNDAY"]), element(energy("0.30")))
    assert kwh_at(t, "2025-01-05 23:30", time_zone=time_zone) == price(cost)


@pytest.mark.parametrize(
    ("start", "cost"),
    [
        ("2025-01-15 05:30", "2.00"),  # 06:30 CET
        ("2025-01-15 06:30", "3.00"),  # 07:30 CET
        ("2025-07-15 05:30", "3.00"),  # 07:30 CEST
        ("2025-07-15 21:30", "2.00"),  # 23:30 CEST
    ],
)
def test_local_time_follows_the_summer_and_winter_offset(start, cost):
    assert kwh_at(DAY_NIGHT, start, time_zone=AMS) == price(cost)


def test_periods_either_side_of_the_spring_dst_jump_use_local_time():
    # given day energy from 03:00; on 30 March 2025 Amsterdam jumps from 02:00 CET to 03:00 CEST
    t = tariff(
        element(energy("0.40"), start_time="03:00", end_time="12:00"), element(energy("0.20"))
    )

    # when periods start at 00:30Z (01:30 CET) and 01:00Z (03:00 CEST)
    result = price_session(
        t,
        [(utc("2025-03-30 00:30"), {"ENERGY": D(5)}), (utc("2025-03-30 01:00"), {"ENERGY": D(5)})],
        time_zone=AMS,
    )

    # then 5 x 0.20 + 5 x 0.40
    assert result.total_energy_cost == price("3.00")


# --- restrictions: energy, current, power, duration ----------------------------------------------

FIRST_KWH_FREE = tariff(
    element(energy("0.00"), max_kwh="1.0"),
    element(energy("0.20"), min_kwh="1.0"),
)


def test_min_kwh_is_inclusive_and_max_kwh_exclusive_on_the_energy_so_far():
    # given the first kWh free, then 0.20 (fixture first_hour_kwh_free's energy elements)
    # when 1 kWh, then 19 kWh from exactly 1 kWh on
    result = price_session(
        FIRST_KWH_FREE,
        [(utc("2025-01-13 10:00"), {"ENERGY": D(1)}), (utc("2025-01-13 10:06"), {"ENERGY": D(19)})],
    )

    # then 0 + 19 x 0.20
    assert result.total_energy_cost == price("3.80")


def test_restrictions_are_evaluated_at_the_period_start():
    # given the same tariff, when all 20 kWh are one period starting at 0 kWh
    result = price_session(FIRST_KWH_FREE, [(utc("2025-01-13 10:00"), {"ENERGY": D(20)})])

    # then the whole period is free: cutting periods at kWh boundaries is split_periods' job
    assert result.total_energy_cost == price("0.00")


# The specification's complex tariff (tariff_4_complex, fixture tandemdrive/complex).
WEEKDAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]
COMPLEX = {
    "currency": "EUR",
    "elements": [
        element(flat("2.50", "15")),
        element(charging_time("1.00", "20", 900), max_current="32.00"),
        element(charging_time("2.00", "20", 600), min_current="32.00", day_of_week=WEEKDAYS),
        element(
            charging_time("1.25", "20", 600),
            min_current="32.00", day_of_week=["SATURDAY", "SUNDAY"],
        ),
        element(
            parking("5.00", "10", 300), start_time="09:00", end_time="18:00", day_of_week=WEEKDAYS
        ),
        element(
            parking("6.00", "10", 300),
            start_time="10:00", end_time="17:00", day_of_week=["SATURDAY"],
        ),
    ],
}  # fmt: skip


def complex_monday(money_places=2):
    # Monday 29 June 2015 09:30: 165 minutes at up to 16 A, then 42 minutes parked (spec text).
    return price_session(
        tariff_from_ocpi(COMPLEX),
        [
            (utc("2015-06-29 09:30"), {"TIME": D("2.75"), "MAX_CURRENT": D(16)}),
            (utc("2015-06-29 12:15"), {"PARKING_TIME": D("0.7")}),
        ],
        start=utc("2015-06-29 09:30"),
        end=utc("2015-06-29 12:57"),
        money_places=money_places,
    )


def test_complex_tariff_monday_matches_the_specification_exactly():
    # when priced without rounding
    result = complex_monday(money_places=None)

    # then the specification's table: 2.50/2.875 + 2.75/3.30 + 3.75/4.125 = 9.00/10.30
    assert result.total_fixed_cost == price("2.50", "2.875")
    assert result.total_time_cost == price("2.75", "3.30")
    assert result.total_parking_cost == price("3.75", "4.125")
    assert result.total_cost == price("9.00", "10.30")


def test_total_cost_is_the_sum_of_the_rounded_subtotals():
    # when the complex Monday session is rounded to cents
    result = complex_monday()

    # then 2.875 -> 2.88 and 4.125 -> 4.13, and total_cost adds up what is published (§7.5):
    # 2.88 + 3.30 + 4.13 = 10.31 (rounding the unrounded total would give 10.30)
    assert result.total_fixed_cost == price("2.50", "2.88")
    assert result.total_parking_cost == price("3.75", "4.13")
    assert result.total_cost == price("9.00", "10.31")


def test_complex_tariff_saturday_uses_min_current_and_weekend_elements():
    # when Saturday 4 July 2015 13:30: 114 minutes at least 43 A, then 71 minutes parked
    result = price_session(
        tariff_from_ocpi(COMPLEX),
        [
            (utc("2015-07-04 13:30"), {"TIME": D("1.9"), "MIN_CURRENT": D(43)}),
            (utc("2015-07-04 15:24"), {"PARKING_TIME": minutes(71)}),
        ],
        money_places=None,
    )

    # then TIME at the weekend 1.25/h: 1.9 h = 2.375 (the specification's table says 2.28, which
    # is 1.9 h at 1.20), parking 71 -> 75 min x 6.00 = 7.50, start 2.50
    assert result.total_time_cost == price("2.375", "2.85")
    assert result.total_parking_cost == price("7.50", "8.25")
    assert result.total_cost == price("12.375", "13.975")


@pytest.mark.parametrize(
    ("readings", "cost"),
    [
        ({"MAX_CURRENT": D(16)}, "1.00"),
        ({"MIN_CURRENT": D(32), "MAX_CURRENT": D(40)}, "2.00"),  # min_current is inclusive
        ({"MAX_CURRENT": D(32)}, "2.00"),  # max_current is exclusive
        ({"CURRENT": D("31.9")}, "1.00"),  # an average stands in for both bounds
        ({}, "1.00"),  # no reading: the current restriction cannot fail
    ],
)
def test_min_and_max_current(readings, cost):
    # given the complex tariff on a Monday, one hour of charging
    t = tariff_from_ocpi(COMPLEX)
    result = price_session(t, [(utc("2015-06-29 10:00"), {"TIME": D(1), **readings})])
    assert result.total_time_cost.excl_vat == D(cost)


# The specification's max_power example (fixture tandemdrive/restriction_example_max_power).
MAX_POWER = tariff(
    element(energy("0.20", "20"), max_power="16.00"),
    element(energy("0.35", "20"), max_power="32.00"),
    element(energy("0.50", "20")),
)


@pytest.mark.parametrize(
    ("readings", "cost"),
    [
        ({"MAX_POWER": D(10)}, "2.00"),
        ({"MAX_POWER": D(16)}, "3.50"),  # max_power is exclusive
        ({"MIN_POWER": D(11), "MAX_POWER": D("31.9")}, "3.50"),
        ({"MAX_POWER": D(32)}, "5.00"),
        ({"POWER": D(20)}, "3.50"),
        ({}, "2.00"),  # no reading: the power restriction cannot fail (as the reference engine)
    ],
)
def test_max_power(readings, cost):
    result = price_session(MAX_POWER, [(utc("2025-01-13 10:00"), {"ENERGY": D(10), **readings})])
    assert result.total_energy_cost.excl_vat == D(cost)


@pytest.mark.parametrize(
    ("readings", "cost"),
    [
        ({"MIN_POWER": D("49.9"), "MAX_POWER": D(60)}, "4.00"),
        ({"MIN_POWER": D(50), "MAX_POWER": D(60)}, "6.00"),  # min_power is inclusive
        ({"POWER": D(55)}, "6.00"),
    ],
)
def test_min_power(readings, cost):
    t = tariff(element(energy("0.60"), min_power="50"), element(energy("0.40")))
    result = price_session(t, [(utc("2025-01-13 10:00"), {"ENERGY": D(10), **readings})])
    assert result.total_energy_cost.excl_vat == D(cost)


def test_min_and_max_duration_count_from_the_session_start():
    # given the specification's max_duration example: free 30 min, 0.25 until 1 h, then 0.40
    t = tariff(
        element(energy("0.00", "20"), max_duration=1800),
        element(energy("0.25", "20"), max_duration=3600),
        element(energy("0.40", "20")),
    )

    # when 10 kWh in each of three periods starting 0, 30 and 60 minutes into the session
    result = price_session(
        t,
        [
            (utc("2025-01-13 10:00"), {"ENERGY": D(10)}),
            (utc("2025-01-13 10:30"), {"ENERGY": D(10)}),  # max_duration 1800 is exclusive
            (utc("2025-01-13 11:00"), {"ENERGY": D(10)}),
        ],
        start=utc("2025-01-13 10:00"),
    )

    # then 0 + 2.50 + 4.00, VAT 20%
    assert result.total_energy_cost == price("6.50", "7.80")


def test_min_duration_is_inclusive():
    # given the grace_period_parking_time fixture: parking free for 30 minutes, then 3.00/h
    t = tariff(
        element(parking("0.0", "0.0"), min_duration=0, max_duration=1800),
        element(parking("3.0", "0.0"), min_duration=1800),
        element(energy("0.25", "10")),
    )

    # when parked from the start for 30 + 15 minutes, then charging
    result = price_session(
        t,
        [
            (utc("2015-06-29 15:00"), {"PARKING_TIME": D("0.5")}),
            (utc("2015-06-29 15:30"), {"PARKING_TIME": D("0.25")}),
            (utc("2015-06-29 15:45"), {"ENERGY": D(10)}),
        ],
        start=utc("2015-06-29 15:00"),
        end=utc("2015-06-29 16:15"),
    )

    # then
    assert result.total_parking_cost == price("0.75")
    assert result.total_energy_cost == price("2.50", "2.75")
    assert result.total_cost == price("3.25", "3.50")


def test_duration_before_the_session_start_counts_as_zero():
    # given a fee from the first second and nothing before
    t = tariff(element(energy("0.30"), min_duration=0, max_duration=60), element(energy("0.10")))

    # when a period starts 20 minutes before the CDR's start_date_time (seen in the wild)
    result = price_session(
        t, [(utc("2025-01-13 12:00"), {"ENERGY": D(10)})], start=utc("2025-01-13 12:20")
    )

    # then the period is taken as at the session start
    assert result.total_energy_cost == price("3.00")


# --- reservations (specification tariff examples 15-18) ------------------------------------------


def reservation_session(t, reserved_minutes, *, charged=True):
    periods = [(utc("2025-01-13 14:00"), {"RESERVATION_TIME": minutes(reserved_minutes)})]
    if charged:
        start = datetime(2025, 1, 13, 14, reserved_minutes, tzinfo=UTC)
        periods.append((start, {"ENERGY": D(20), "TIME": D(1)}))
    return price_session(t, periods)


def test_reservation_time_is_priced_by_the_reservation_element():
    # given example 15: reservation 5.00/h per minute (20%), start 0.50 (20%), 0.25/kWh (10%)
    t = tariff(
        element(charging_time("5.00", "20", 60), reservation="RESERVATION"),
        element(flat("0.50", "20"), energy("0.25", "10")),
    )

    # when charging 20 kWh 15 minutes after the reservation
    result = reservation_session(t, 15)

    # then
    assert result.total_reservation_cost == price("1.25", "1.50")
    assert result.total_fixed_cost == price("0.50", "0.60")
    assert result.total_energy_cost == price("5.00", "5.50")
    assert result.total_time_cost == price("0.00")
    assert result.total_cost == price("6.75", "7.60")
    assert result.to_ocpi()["total_reservation_cost"] == {
        "excl_vat": D("1.25"),
        "incl_vat": D("1.50"),
    }


def test_reservation_fee_and_start_fee_are_both_billed():
    # given example 16: reservation fee 2.00 + 5.00/h per 5 minutes, start fee 0.50
    t = tariff(
        element(flat("2.0", "20"), charging_time("5.0", "20", 300), reservation="RESERVATION"),
        element(flat("0.5", "20"), energy("0.25", "10")),
    )

    # when charging 13 minutes after the reservation
    result = reservation_session(t, 13)

    # then reservation 2.00 + 15 min (1.25), start 0.50, energy 5.00
    assert result.total_reservation_cost == price("3.25", "3.90")
    assert result.total_fixed_cost == price("0.50", "0.60")
    assert result.total_cost == price("8.75", "10.00")


EXPIRE_FEE = tariff(
    element(flat("4.00", "20"), reservation="RESERVATION_EXPIRES"),
    element(charging_time("2.00", "20", 600), reservation="RESERVATION"),
    element(flat("0.50", "20"), energy("0.25", "10")),
)


def test_used_reservation_does_not_pay_the_expiry_fee():
    # given example 17, when charging 22 minutes after the reservation
    result = reservation_session(EXPIRE_FEE, 22)

    # then 22 -> 30 minutes at 2.00/h, no 4.00 expiry fee
    assert result.total_reservation_cost == price("1.00", "1.20")
    assert result.total_cost == price("6.50", "7.30")


def test_expired_reservation_pays_the_expiry_fee_and_the_reserved_time():
    # given example 17, when the reservation of 1 hour expires unused
    result = reservation_session(EXPIRE_FEE, 60, charged=False)

    # then 4.00 + 1 h x 2.00
    assert result.total_reservation_cost == price("6.00", "7.20")
    assert result.total_fixed_cost == price("0.00")
    assert result.total_cost == price("6.00", "7.20")


EXPIRE_TIME = tariff(
    element(charging_time("6.00", "20", 600), reservation="RESERVATION_EXPIRES"),
    element(charging_time("3.00", "20", 600), reservation="RESERVATION"),
    element(flat("0.50", "20"), energy("0.25", "10")),
)


def test_reservation_time_price_of_a_used_reservation():
    # given example 18, when charging 22 minutes after the reservation
    result = reservation_session(EXPIRE_TIME, 22)

    # then 30 minutes at 3.00/h
    assert result.total_reservation_cost == price("1.50", "1.80")
    assert result.total_cost == price("7.00", "7.90")


def test_expiry_time_price_takes_precedence_for_an_expired_reservation():
    # given example 18, when the reservation of 1.5 hours expires unused
    result = reservation_session(EXPIRE_TIME, 90, charged=False)

    # then 90 minutes at 6.00/h
    assert result.total_reservation_cost == price("9.00", "10.80")
    assert result.total_cost == price("9.00", "10.80")


def test_reservation_expiry_can_be_stated_explicitly():
    # when the caller knows the reservation expired although the periods hold parking
    result = price_session(
        EXPIRE_FEE,
        [
            (utc("2025-01-13 14:00"), {"RESERVATION_TIME": D(1)}),
            (utc("2025-01-13 15:00"), {"PARKING_TIME": D("0.1")}),
        ],
        reservation_expired=True,
    )

    # then the expiry fee is billed
    assert result.total_reservation_cost == price("6.00", "7.20")


def test_charging_elements_do_not_price_reservation_time():
    # given no reservation element
    t = tariff(element(charging_time("9.00")))

    # when
    result = reservation_session(t, 30)

    # then only the charging hour is priced
    assert result.total_reservation_cost == price("0.00")
    assert result.total_time_cost == price("9.00")


# --- element order -------------------------------------------------------------------------------


def test_first_matching_element_wins_per_dimension():
    # given a TIME-only element before an element with ENERGY and TIME
    t = tariff(
        element(charging_time("2.00"), start_time="08:00", end_time="20:00"),
        element(energy("0.30"), charging_time("1.00")),
    )

    # when charging 1 h and 10 kWh at noon
    result = price_session(t, [(utc("2025-01-13 12:00"), {"ENERGY": D(10), "TIME": D(1)})])

    # then TIME from the first element; it does not block ENERGY from the second
    assert result.total_time_cost == price("2.00")
    assert result.total_energy_cost == price("3.00")


def test_an_unrestricted_element_first_shadows_later_ones():
    # given the fallback listed first (PROTOCOL §7.3: put it last)
    t = tariff(
        element(energy("0.20")), element(energy("0.50"), start_time="07:00", end_time="23:00")
    )
    assert kwh_at(t, "2025-01-13 12:00") == price("2.00")


def test_a_dimension_without_a_matching_element_is_free():
    t = tariff(element(energy("0.30"), start_time="07:00", end_time="23:00"))
    assert kwh_at(t, "2025-01-13 03:00") == price("0.00")


def test_the_first_component_of_a_dimension_in_an_element_counts():
    t = tariff(element(energy("0.30"), energy("0.50")))
    assert kwh_at(t, "2025-01-13 12:00") == price("3.00")


def test_flat_after_a_duration_is_billed_once_when_it_first_matches():
    # given an overstay fee: 2.00 once the session is 1 h old, in a parking-only element
    t = tariff(
        element(flat("2.00"), parking("1.00"), min_duration=3600),
        element(energy("0.25")),
    )

    # when charging 1 h, then parked 30 minutes
    result = price_session(
        t,
        [
            (utc("2025-01-13 10:00"), {"ENERGY": D(10), "TIME": D(1)}),
            (utc("2025-01-13 11:00"), {"PARKING_TIME": D("0.5")}),
        ],
    )

    # then the fee belongs to parking (§7.5: FLAT of parking-specific elements)
    assert result.total_parking_cost == price("2.50")
    assert result.total_fixed_cost == price("0.00")
    assert result.total_energy_cost == price("2.50")
    assert result.total_cost == price("5.00")


# --- min_price / max_price -----------------------------------------------------------------------


def test_min_price_raises_the_total_but_not_the_subtotals():
    # given the 025kwh_min_price fixture: 0.25/kWh (10%), min_price 0.50 / 0.55
    t = tariff(element(energy("0.25", "10.0")), min_price={"excl_vat": "0.50", "incl_vat": "0.55"})

    # when 1.2 kWh
    result = price_session(t, [(utc("2022-01-13 14:30"), {"ENERGY": D("1.2")})])

    # then
    assert result.total_energy_cost == price("0.30", "0.33")
    assert result.total_cost == price("0.50", "0.55")
    assert result.min_price_applied


def test_min_price_checks_excl_and_incl_separately():
    t = tariff(element(energy("0.25", "10.0")), min_price={"excl_vat": "0.20", "incl_vat": "0.40"})
    result = price_session(t, [(utc("2022-01-13 14:30"), {"ENERGY": D("1.2")})])
    assert result.total_cost == price("0.30", "0.40")


def test_min_price_without_incl_vat_only_raises_excl():
    t = tariff(element(energy("0.25", "10.0")), min_price={"excl_vat": "0.50"})
    result = price_session(t, [(utc("2022-01-13 14:30"), {"ENERGY": D("1.2")})])
    assert result.total_cost == price("0.50", "0.33")


def test_min_price_below_the_cost_changes_nothing():
    t = tariff(element(energy("0.25", "10.0")), min_price={"excl_vat": "0.50", "incl_vat": "0.55"})
    result = price_session(t, [(utc("2022-01-13 14:30"), {"ENERGY": D(20)})])
    assert result.total_cost == price("5.00", "5.50")
    assert not result.min_price_applied


@pytest.mark.parametrize(
    ("max_price", "expected"),
    [
        ({"excl_vat": "5.00", "incl_vat": "6.00"}, ("5.00", "6.00")),  # PROTOCOL example C3
        ({"excl_vat": "20.00", "incl_vat": "6.00"}, ("13.20", "6.00")),
        ({"excl_vat": "5.00", "incl_vat": "20.00"}, ("5.00", "15.84")),
        ({"excl_vat": "5.00"}, ("5.00", "15.84")),
    ],
)
def test_max_price_checks_excl_and_incl_separately(max_price, expected):
    # given example C's tariff: TIME 2.40/h per 5 min, PARKING 3.00/h per 15 min, 20% VAT
    t = tariff(
        element(charging_time("2.40", "20", 300), parking("3.00", "20", 900)), max_price=max_price
    )

    # when charging 3 h and parked 2 h (7.20 + 6.00 = 13.20 / 15.84)
    result = price_session(
        t,
        [
            (utc("2025-01-13 10:00"), {"TIME": D(3)}),
            (utc("2025-01-13 13:00"), {"PARKING_TIME": D(2)}),
        ],
    )

    # then
    assert result.total_cost == price(*expected)
    assert result.total_time_cost == price("7.20", "8.64")
    assert result.total_parking_cost == price("6.00", "7.20")
    assert result.max_price_applied


# --- VAT -----------------------------------------------------------------------------------------


def test_vat_is_applied_per_component():
    # given the 025kwh_start fixture: start 0.50 at 20%, 0.25/kWh at 10%
    t = tariff(element(flat("0.50", "20.0"), energy("0.25", "10.0")))

    # when 20 kWh
    result = price_session(t, [(utc("2022-01-13 14:30"), {"ENERGY": D(20)})])

    # then 0.60 + 5.50
    assert result.total_fixed_cost == price("0.50", "0.60")
    assert result.total_energy_cost == price("5.00", "5.50")
    assert result.total_cost == price("5.50", "6.10")


@pytest.mark.parametrize("vat", [None, "0"])
def test_absent_or_zero_vat_leaves_incl_equal_to_excl(vat):
    t = tariff(element(energy("0.25", vat)))
    assert kwh_at(t, "2025-01-13 12:00") == price("2.50", "2.50")


def test_fractional_vat():
    # given the alt_text fixture: 1.90/h per 5 minutes, VAT 5.2%
    t = tariff(element(charging_time("1.90", "5.2", 300)))

    # when charging 1 hour
    result = price_session(t, [(utc("2025-01-13 12:00"), {"TIME": D(1)})])

    # then 1.90 x 1.052 = 1.9988
    assert result.total_time_cost == price("1.90", "2.00")


def test_published_fields_and_reservation_cost_only_when_reserved():
    # given
    t = tariff(element(flat("1.00", "21"), energy("0.40", "21")))

    # when
    data = price_session(t, [(utc("2025-01-13 12:00"), {"ENERGY": D(10), "TIME": D(1)})]).to_ocpi()

    # then
    assert data == {
        "total_cost": {"excl_vat": D("5.00"), "incl_vat": D("6.05")},
        "total_fixed_cost": {"excl_vat": D("1.00"), "incl_vat": D("1.21")},
        "total_energy": D(10),
        "total_energy_cost": {"excl_vat": D("4.00"), "incl_vat": D("4.84")},
        "total_time": D(1),
        "total_time_cost": {"excl_vat": D("0.00"), "incl_vat": D("0.00")},
        "total_parking_time": D(0),
        "total_parking_cost": {"excl_vat": D("0.00"), "incl_vat": D("0.00")},
    }


# --- PROTOCOL.md §7.6 worked examples ------------------------------------------------------------


def test_protocol_example_a_start_fee_energy_step_size_and_parking():
    # given
    t = tariff(
        element(flat("1.00", "21")),
        element(energy("0.40", "21", 100)),
        element(parking("6.00", "21", 600)),
    )

    # when charging 14:00-15:10 (23.43 kWh), then parked 23 minutes
    result = price_session(
        t,
        [
            (utc("2025-01-13 14:00"), {"ENERGY": D("23.43"), "TIME": minutes(70)}),
            (utc("2025-01-13 15:10"), {"PARKING_TIME": minutes(23)}),
        ],
        start=utc("2025-01-13 14:00"),
        end=utc("2025-01-13 15:33"),
    )

    # then
    assert result.total_energy == D("23.43")
    assert result.total_time == D("1.55")
    assert result.total_parking_time.quantize(D("0.0001")) == D("0.3833")
    assert result.total_fixed_cost == price("1.00", "1.21")
    assert result.total_energy_cost == price("9.40", "11.37")
    assert result.total_parking_cost == price("3.00", "3.63")
    assert result.total_time_cost == price("0.00")
    assert result.total_cost == price("13.40", "16.21")


EXAMPLE_B = tariff(
    element(energy("0.30", "21", 1000), start_time="07:00", end_time="23:00"),
    element(energy("0.20", "21", 500)),
    element(charging_time("1.20", "21", 60), min_duration=7200),
    min_price={"excl_vat": "2.00", "incl_vat": "2.42"},
)


def test_protocol_example_b_time_of_day_duration_and_last_step_size():
    # when 21:30-00:45 in Amsterdam in winter (20:30Z-23:45Z), charging all the time
    result = price_session(
        EXAMPLE_B,
        [
            (utc("2025-01-15 20:30"), {"ENERGY": D("9.0"), "TIME": D("1.5")}),
            (utc("2025-01-15 22:00"), {"ENERGY": D("1.5"), "TIME": D("0.5")}),
            (utc("2025-01-15 22:30"), {"ENERGY": D("4.8"), "TIME": D("1.25")}),
        ],
        start=utc("2025-01-15 20:30"),
        end=utc("2025-01-15 23:45"),
        time_zone=AMS,
    )

    # then
    assert result.billed_energy == D("15.5")
    assert result.total_energy_cost == price("4.00", "4.84")
    assert result.total_time_cost == price("1.50", "1.82")
    assert result.total_cost == price("5.50", "6.66")
    assert (result.total_energy, result.total_time) == (D("15.3"), D("3.25"))
    assert not result.min_price_applied


EXAMPLE_C = tariff(
    element(charging_time("2.40", "20", 300), parking("3.00", "20", 900)),
    max_price={"excl_vat": "5.00", "incl_vat": "6.00"},
)


def test_protocol_example_c1_only_parking_is_rounded():
    result = price_session(
        EXAMPLE_C,
        [
            (utc("2025-01-13 10:00"), {"TIME": minutes(47)}),
            (utc("2025-01-13 10:47"), {"PARKING_TIME": minutes(8)}),
        ],
    )
    assert result.total_time_cost == price("1.88", "2.26")
    assert result.total_parking_cost == price("0.75", "0.90")
    assert result.total_cost == price("2.63", "3.16")


def test_protocol_example_c2_time_is_rounded_without_parking():
    result = price_session(EXAMPLE_C, [(utc("2025-01-13 10:00"), {"TIME": minutes(47)})])
    assert result.billed_time * 60 == D(50)
    assert result.total_cost == price("2.00", "2.40")


def test_protocol_example_c3_max_price_clamps_the_total():
    result = price_session(
        EXAMPLE_C,
        [
            (utc("2025-01-13 10:00"), {"TIME": D(3)}),
            (utc("2025-01-13 13:00"), {"PARKING_TIME": D(2)}),
        ],
    )
    assert result.total_cost == price("5.00", "6.00")
    assert result.max_price_applied


# --- split_periods (PROTOCOL §7.2) ---------------------------------------------------------------


def test_split_cuts_at_local_time_and_duration_boundaries():
    # given example B's tariff, one interval 21:30-00:45 Amsterdam at a constant 6 kW
    intervals = [MeterInterval(utc("2025-01-15 20:30"), utc("2025-01-15 23:45"), D("19.5"))]

    # when
    periods = split_periods(EXAMPLE_B, intervals, time_zone=AMS)

    # then cut at 23:00 local (end_time) and at 2 h (min_duration)
    assert periods == [
        ChargingPeriod(utc("2025-01-15 20:30"), {"ENERGY": D("9.0"), "TIME": D("1.5")}),
        ChargingPeriod(utc("2025-01-15 22:00"), {"ENERGY": D("3.0"), "TIME": D("0.5")}),
        ChargingPeriod(utc("2025-01-15 22:30"), {"ENERGY": D("7.5"), "TIME": D("1.25")}),
    ]
    result = price_session(EXAMPLE_B, periods, time_zone=AMS)
    # 9.0 x 0.30 + 10.5 x 0.20 = 4.80; TIME 1.25 h x 1.20 = 1.50
    assert result.total_energy_cost == price("4.80", "5.81")
    assert result.total_time_cost == price("1.50", "1.82")


def test_split_cuts_where_the_energy_reaches_a_kwh_threshold():
    # given the first kWh free; 20 kWh in 2 hours at a constant 10 kW
    intervals = [MeterInterval(utc("2025-01-13 10:00"), utc("2025-01-13 12:00"), D(20))]

    # when
    periods = split_periods(FIRST_KWH_FREE, intervals)

    # then cut at 1 kWh, 6 minutes in
    assert periods == [
        ChargingPeriod(utc("2025-01-13 10:00"), {"ENERGY": D(1), "TIME": D("0.1")}),
        ChargingPeriod(utc("2025-01-13 10:06"), {"ENERGY": D(19), "TIME": D("1.9")}),
    ]
    assert price_session(FIRST_KWH_FREE, periods).total_energy_cost == price("3.80")


def test_split_merges_pieces_that_price_alike_and_keeps_power_changes_that_matter():
    # given 0.20/kWh below 16 kW, else 0.35 or 0.50
    intervals = [
        MeterInterval(utc("2025-01-13 10:00"), utc("2025-01-13 10:30"), D("5.5"), power=D(11)),
        MeterInterval(utc("2025-01-13 10:30"), utc("2025-01-13 11:00"), D("5"), power=D(10)),
        MeterInterval(utc("2025-01-13 11:00"), utc("2025-01-13 11:30"), D("11"), power=D(22)),
        MeterInterval(utc("2025-01-13 11:30"), utc("2025-01-13 12:00"), D("5.5"), power=D(11)),
    ]

    # when
    periods = split_periods(MAX_POWER, intervals)

    # then the first two merge (same price), the 22 kW half hour stands alone
    assert [p.start_date_time for p in periods] == [
        utc("2025-01-13 10:00"), utc("2025-01-13 11:00"), utc("2025-01-13 11:30"),
    ]  # fmt: skip
    assert periods[0].dimensions == {
        "ENERGY": D("10.5"), "TIME": D(1), "MIN_POWER": D(10), "MAX_POWER": D(11),
    }  # fmt: skip
    # 10.5 x 0.20 + 11 x 0.35 + 5.5 x 0.20
    assert price_session(MAX_POWER, periods).total_energy_cost.excl_vat == D("7.05")


def test_split_without_restrictions_gives_one_period_per_kind():
    # given a tariff without restrictions, a reservation, charging in two readings, parking
    t = tariff(element(energy("0.25")))
    intervals = [
        MeterInterval(utc("2025-01-13 09:47"), utc("2025-01-13 10:00"), reservation=True),
        MeterInterval(utc("2025-01-13 10:00"), utc("2025-01-13 10:20"), D("3.3")),
        MeterInterval(utc("2025-01-13 10:20"), utc("2025-01-13 11:00"), D("6.6")),
        MeterInterval(utc("2025-01-13 11:00"), utc("2025-01-13 11:15"), charging=False),
    ]

    # when
    periods = split_periods(t, intervals)

    # then
    assert periods == [
        ChargingPeriod(utc("2025-01-13 09:47"), {"RESERVATION_TIME": minutes(13)}),
        ChargingPeriod(utc("2025-01-13 10:00"), {"ENERGY": D("9.9"), "TIME": D(1)}),
        ChargingPeriod(utc("2025-01-13 11:00"), {"PARKING_TIME": D("0.25")}),
    ]


def test_split_volumes_add_up_exactly():
    # given time-of-day cuts at thirds of an interval
    t = tariff(
        element(energy("0.30"), start_time="10:20", end_time="10:40"), element(energy("0.20"))
    )
    intervals = [MeterInterval(utc("2025-01-13 10:00"), utc("2025-01-13 11:00"), D("1"))]

    # when
    periods = split_periods(t, intervals)

    # then three periods whose energy sums to exactly 1 kWh
    assert len(periods) == 3
    assert sum(p.dimensions["ENERGY"] for p in periods) == D(1)
    assert price_session(t, periods).total_energy_cost == price("0.23")


def test_split_at_the_spring_dst_jump_over_a_skipped_boundary():
    # given day energy from 02:30 local, a time that does not exist on 30 March 2025 in Amsterdam
    t = tariff(
        element(energy("0.40"), start_time="02:30", end_time="12:00"), element(energy("0.20"))
    )
    # 00:00 CET (23:00Z) to 04:00 CEST (02:00Z) at 10 kW
    intervals = [MeterInterval(utc("2025-03-29 23:00"), utc("2025-03-30 02:00"), D(30))]

    # when
    periods = split_periods(t, intervals, time_zone=AMS)

    # then the day price starts at the jump, 01:00Z (02:00 CET becomes 03:00 CEST)
    assert periods == [
        ChargingPeriod(utc("2025-03-29 23:00"), {"ENERGY": D(20), "TIME": D(2)}),
        ChargingPeriod(utc("2025-03-30 01:00"), {"ENERGY": D(10), "TIME": D(1)}),
    ]
    assert price_session(t, periods, time_zone=AMS).total_energy_cost == price("8.00")


def test_split_at_the_autumn_dst_repeated_hour_prices_both_passes():
    # given TIME 6.00/h between 02:15 and 02:45 local only; on 26 October 2025 Amsterdam lives
    # 02:00-03:00 twice (CEST, then CET)
    t = tariff(element(charging_time("6.00"), start_time="02:15", end_time="02:45"))
    intervals = [MeterInterval(utc("2025-10-25 23:00"), utc("2025-10-26 02:00"), D(15))]

    # when
    periods = split_periods(t, intervals, time_zone=AMS)

    # then both 02:15-02:45 windows are periods of their own, half an hour each
    starts = [p.start_date_time for p in periods]
    assert starts == [
        utc("2025-10-25 23:00"), utc("2025-10-26 00:15"), utc("2025-10-26 00:45"),
        utc("2025-10-26 01:15"), utc("2025-10-26 01:45"),
    ]  # fmt: skip
    result = price_session(t, periods, time_zone=AMS)
    assert result.total_time_cost == price("6.00")


def test_split_rejects_unordered_or_naive_intervals():
    t = tariff(element(energy("0.25")))
    later = MeterInterval(utc("2025-01-13 11:00"), utc("2025-01-13 12:00"), D(1))
    earlier = MeterInterval(utc("2025-01-13 10:00"), utc("2025-01-13 11:30"), D(1))
    with pytest.raises(ValueError, match="time order"):
        split_periods(t, [later, earlier])
    naive = MeterInterval(datetime(2025, 1, 13, 10), datetime(2025, 1, 13, 11), D(1))
    with pytest.raises(ValueError, match="timezone-aware"):
        split_periods(t, [naive])


# --- guards --------------------------------------------------------------------------------------


def test_price_session_rejects_naive_or_unordered_periods_and_unknown_zones():
    t = tariff(element(energy("0.25")))
    with pytest.raises(ValueError, match="timezone-aware"):
        price_session(t, [(datetime(2025, 1, 13, 10), {"ENERGY": D(1)})])
    with pytest.raises(ValueError, match="time order"):
        price_session(
            t,
            [
                (utc("2025-01-13 11:00"), {"ENERGY": D(1)}),
                (utc("2025-01-13 10:00"), {"ENERGY": D(1)}),
            ],
        )
    with pytest.raises(ValueError, match="unknown time zone"):
        price_session(t, [], time_zone="Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="money_places"):
        price_session(t, [], money_places=-1)


def test_tariff_validity_window():
    t = tariff(
        element(energy("0.25")),
        start_date_time="2025-01-01T00:00:00Z",
        end_date_time="2025-07-01T00:00:00Z",
    )
    assert not t.is_active_at(utc("2024-12-31 23:59:59"))
    assert t.is_active_at(utc("2025-01-01 00:00"))
    assert not t.is_active_at(utc("2025-07-01 00:00"))


# --- adapters ------------------------------------------------------------------------------------


def test_tariff_from_ocpi_reads_numbers_in_any_json_form():
    # given the same tariff with numbers as str, Decimal, int and float
    forms = [
        {"price": "0.25", "vat": "21", "step_size": "1", "min_kwh": "1.5"},
        {"price": D("0.25"), "vat": D(21), "step_size": 1, "min_kwh": D("1.5")},
        {"price": 0.25, "vat": 21.0, "step_size": 1, "min_kwh": 1.5},
    ]
    tariffs = [
        tariff(
            element(
                {
                    "type": "ENERGY",
                    "price": f["price"],
                    "vat": f["vat"],
                    "step_size": f["step_size"],
                },
                min_kwh=f["min_kwh"],
            )
        )
        for f in forms
    ]

    # then they are equal, with exact decimals
    assert tariffs[0] == tariffs[1] == tariffs[2]
    assert tariffs[2].elements[0].price_components[0] == PriceComponent(
        "ENERGY", D("0.25"), D(21), 1
    )
    assert tariffs[2].elements[0].restrictions == Restrictions(min_kwh=D("1.5"))


def test_tariff_from_ocpi_reads_every_restriction():
    t = tariff(
        element(
            energy("0.25"),
            start_time="07:00", end_time="00:00", start_date="2025-01-01", end_date="2026-01-01",
            min_kwh="0.5", max_kwh="100", min_current="6", max_current="63", min_power="1.5",
            max_power="43", min_duration=60, max_duration=43200, day_of_week=["MONDAY", "FRIDAY"],
        ),
        element(charging_time("5.00"), reservation="RESERVATION_EXPIRES"),
    )  # fmt: skip
    assert t.elements[0].restrictions == Restrictions(
        start_time=time(7), end_time=time(0),
        start_date=datetime(2025, 1, 1).date(), end_date=datetime(2026, 1, 1).date(),
        min_kwh=D("0.5"), max_kwh=D(100), min_current=D(6), max_current=D(63),
        min_power=D("1.5"), max_power=D(43), min_duration=60, max_duration=43200,
        day_of_week=("MONDAY", "FRIDAY"),
    )  # fmt: skip
    assert t.elements[1].restrictions == Restrictions(reservation="RESERVATION_EXPIRES")


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"elements": []}, "elements"),
        ({"elements": [{"price_components": []}]}, "elements[0].price_components"),
        (
            {"elements": [element({"type": "KWH", "price": 1, "step_size": 1})]},
            "elements[0].price_components[0].type",
        ),
        ({"elements": [element(energy("abc"))]}, "elements[0].price_components[0].price"),
        ({"elements": [element(energy("-0.10"))]}, "elements[0].price_components[0].price"),
        ({"elements": [element(energy(True))]}, "elements[0].price_components[0].price"),
        ({"elements": [element(energy("NaN"))]}, "elements[0].price_components[0].price"),
        (
            {"elements": [element(energy("0.1", step="1.5"))]},
            "elements[0].price_components[0].step_size",
        ),
        (
            {"elements": [element(energy("0.1"), start_time="7:00")]},
            "elements[0].restrictions.start_time",
        ),
        (
            {"elements": [element(energy("0.1"), end_time="24:00")]},
            "elements[0].restrictions.end_time",
        ),
        (
            {"elements": [element(energy("0.1"), start_date="2025-02-30")]},
            "elements[0].restrictions.start_date",
        ),
        (
            {"elements": [element(energy("0.1"), day_of_week=["MON"])]},
            "elements[0].restrictions.day_of_week",
        ),
        (
            {"elements": [element(energy("0.1"), reservation="YES")]},
            "elements[0].restrictions.reservation",
        ),
        (
            {"elements": [element(energy("0.1"))], "min_price": {"incl_vat": 1}},
            "min_price.excl_vat",
        ),
        ({"elements": [element(energy("0.1"))], "start_date_time": "yesterday"}, "start_date_time"),
    ],
)
def test_tariff_from_ocpi_names_the_bad_field(data, path):
    with pytest.raises(TariffFormatError) as caught:
        tariff_from_ocpi({"currency": "EUR", **data})
    assert caught.value.path == path


def test_periods_from_ocpi_reads_sorts_and_rejects_duplicates():
    # given periods out of order with numbers as Decimal and str
    data = [
        {
            "start_date_time": "2025-01-13T11:00:00Z",
            "dimensions": [{"type": "PARKING_TIME", "volume": "0.5"}],
        },
        {
            "start_date_time": "2025-01-13T10:00:00.000Z",
            "dimensions": [{"type": "ENERGY", "volume": D("7.5")}, {"type": "TIME", "volume": 1}],
            "tariff_id": "T1",
        },
    ]

    # when / then
    assert periods_from_ocpi(data) == [
        ChargingPeriod(utc("2025-01-13 10:00"), {"ENERGY": D("7.5"), "TIME": D(1)}),
        ChargingPeriod(utc("2025-01-13 11:00"), {"PARKING_TIME": D("0.5")}),
    ]
    twice = [
        {
            "start_date_time": "2025-01-13T10:00:00Z",
            "dimensions": [{"type": "ENERGY", "volume": 1}] * 2,
        }
    ]
    with pytest.raises(TariffFormatError, match="twice"):
        periods_from_ocpi(twice)


@pytest.mark.django_db
def test_tariff_from_model_equals_the_tariff_read_from_its_ocpi_form():
    from ocpi.modules.tariffs.serializers import tariff_to_ocpi
    from stations.models import Tariff as TariffModel
    from tests.factories import PriceComponentFactory, TariffElementFactory, TariffFactory

    # given a tariff with every kind of restriction, a reservation element and min/max price
    model = TariffFactory(full=True, elements=0)
    TariffElementFactory(tariff=model, full=True, price_components=0)
    day = model.elements.get()
    PriceComponentFactory(element=day, type="FLAT", price=D("1.00"), vat=None)
    PriceComponentFactory(element=day, type="ENERGY", price=D("0.35"), step_size=100)
    reservation = TariffElementFactory(tariff=model, reservation="RESERVATION", price_components=0)
    PriceComponentFactory(element=reservation, type="TIME", price=D("2.00"), step_size=300)
    TariffElementFactory(tariff=model)
    model = TariffModel.objects.prefetch_related("elements__price_components").get(pk=model.pk)

    # when
    converted = tariff_from_model(model)

    # then it is the tariff its OCPI form describes
    assert converted == tariff_from_ocpi(tariff_to_ocpi(model))
    assert converted.min_price == Price(D("0.50"), D("0.61"))
    assert len(converted.elements) == 3
    assert converted.elements[0].restrictions.day_of_week == (
        "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY",
    )  # fmt: skip
    assert converted.elements[0].price_components == (
        PriceComponent("FLAT", D("1.00"), None, 1),
        PriceComponent("ENERGY", D("0.35"), D("21.0"), 100),
    )


def test_engine_dataclasses_can_be_built_directly():
    # given a tariff built without the adapters
    t = Tariff(
        elements=[TariffElement([PriceComponent("ENERGY", D("0.30"), D(21))])],
        currency="EUR",
    )

    # when
    result = price_session(t, [(utc("2025-01-13 10:00"), {"ENERGY": D(10)})])

    # then
    assert result.total_cost == price("3.00", "3.63")
    with pytest.raises(ValueError, match="unknown type"):
        Tariff(elements=(TariffElement((PriceComponent("KWH", D(1)),)),))
