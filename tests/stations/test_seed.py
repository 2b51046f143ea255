"""seed_demo builds a valid, realistic network idempotently; seed_bench builds many fast."""

import re
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from stations import signals
from stations.models import EVSE, Connector, Location, PriceComponent, Tariff, TariffElement

pytestmark = pytest.mark.django_db

DEMO_COUNTS = {Location: 25, EVSE: 93, Connector: 105, Tariff: 8}


def run(command, *args) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def counts() -> dict:
    models = (Location, EVSE, Connector, Tariff, TariffElement, PriceComponent)
    return {model: model.objects.count() for model in models}


def stamps() -> dict:
    return {
        model: dict(model.objects.values_list("pk", "last_updated"))
        for model in (Location, EVSE, Connector, Tariff)
    }


@pytest.fixture
def announcements():
    received = []

    def receiver(sender, **kwargs):
        received.append(sender)

    names = ("location_changed", "evse_changed", "connector_changed", "tariff_changed")
    for name in names:
        getattr(signals, name).connect(receiver, weak=False)
    yield received
    for name in names:
        getattr(signals, name).disconnect(receiver)


def test_seed_demo_builds_the_network_and_a_second_run_changes_nothing(announcements):
    # given an empty database
    # when the demo seed runs twice
    first = run("seed_demo")
    after_first, stamps_first = counts(), stamps()
    announced_first = len(announcements)
    second = run("seed_demo")

    # then the first run built the network, announcing it for pushes ...
    for model, expected in DEMO_COUNTS.items():
        assert after_first[model] == expected, model
    assert announced_first > 0
    assert "25 locations (14 NL, 11 DE), 93 EVSEs, 105 connectors, 8 tariffs" in first
    # ... and the second one found everything as wanted: no new rows, no bump, no push
    assert counts() == after_first
    assert stamps() == stamps_first
    assert len(announcements) == announced_first
    assert "network: 0 created, 0 updated, 223 unchanged" in second


def test_seed_demo_objects_are_valid_and_realistic(settings):
    # given our identity from the settings
    settings.OCPI_COUNTRY_CODE, settings.OCPI_PARTY_ID = "NL", "CPO"

    # when the demo seed runs
    run("seed_demo")

    # then every object passes the model validation
    for model in (Location, EVSE, Connector, Tariff, TariffElement, PriceComponent):
        for obj in model.objects.all():
            obj.full_clean()
    locations = Location.objects.all()
    # two countries, each in its own time zone, with our country code and party id
    assert {(loc.country, loc.time_zone) for loc in locations} == {
        ("NLD", "Europe/Amsterdam"),
        ("DEU", "Europe/Berlin"),
    }
    assert {(loc.country_code, loc.party_id) for loc in locations} == {("NL", "CPO")}
    assert all(len(loc.latitude.split(".")[1]) in (5, 6, 7) for loc in locations)
    # eMI3 EVSE ids, AC sockets and DC cables of 50-300 kW
    assert all(re.fullmatch(r"NL\*CPO\*E\d{5}\*\d+", e.evse_id) for e in EVSE.objects.all())
    ac = Connector.objects.filter(power_type="AC_3_PHASE")
    dc = Connector.objects.filter(power_type="DC")
    assert set(ac.values_list("standard", "format")) == {("IEC_62196_T2", "SOCKET")}
    assert set(dc.values_list("standard", "format")) == {
        ("IEC_62196_T2_COMBO", "CABLE"),
        ("CHADEMO", "CABLE"),
    }
    assert {c.max_electric_power for c in ac} == {11000, 22000}
    assert {c.max_electric_power for c in dc} == {50000, 150000, 300000}
    # one private location, shown only to its fleet
    private = Location.objects.get(publish=False)
    assert private.publish_allowed_to
    # opening times: mostly 24/7, some regular hours, one exceptional closing
    hours = [loc.opening_times for loc in locations]
    assert sum(h["twentyfourseven"] for h in hours) >= 20
    assert sum(bool(h.get("exceptional_closings")) for h in hours) == 1
    # statuses are varied, and the planned site announces its opening
    statuses = set(EVSE.objects.values_list("status", flat=True))
    assert {"AVAILABLE", "CHARGING", "OUTOFORDER", "PLANNED", "REMOVED"} <= statuses
    assert all(e.status_schedule for e in EVSE.objects.filter(status="PLANNED"))


def test_seed_demo_tariffs_cover_the_dimensions_and_are_referenced():
    # when the demo seed runs
    run("seed_demo")

    # then the tariffs use every dimension, both VAT rates and step sizes
    components = PriceComponent.objects.all()
    assert set(components.values_list("type", flat=True)) == {
        "ENERGY",
        "TIME",
        "PARKING_TIME",
        "FLAT",
    }
    assert {Decimal(21), Decimal(19)} <= set(components.values_list("vat", flat=True))
    assert {1, 60, 100, 300} <= set(components.values_list("step_size", flat=True))
    # time-of-day restrictions, one of them over midnight, and weekday peaks
    elements = TariffElement.objects.exclude(start_time="")
    assert any(e.end_time < e.start_time for e in elements)
    assert any(e.day_of_week for e in elements)
    # min and max prices, and alternative texts in two languages
    assert Tariff.objects.filter(min_price_excl_vat__isnull=False).exists()
    assert Tariff.objects.filter(max_price_excl_vat__isnull=False).exists()
    assert all(len(t.tariff_alt_text) == 2 for t in Tariff.objects.all())
    # every tariff id on a connector exists
    ids = set(Tariff.objects.values_list("ocpi_id", flat=True))
    used = {t for c in Connector.objects.all() for t in c.tariff_ids}
    assert used <= ids
    assert len(used) == len(ids)


def test_seed_demo_keeps_live_statuses_and_repairs_edited_data():
    # given the demo network, where one EVSE went out of order and a tariff price was edited
    run("seed_demo")
    evse = EVSE.objects.get(uid="NLAMS001-E1")
    evse.status = "OUTOFORDER"
    evse.save()
    component = PriceComponent.objects.get(element__tariff__ocpi_id="NL-DC-ADHOC")
    component.price = Decimal("9.99")
    component.save()

    # when the seed runs again
    out = run("seed_demo")

    # then the live status stays, the tariff is restored, and nothing is duplicated
    assert EVSE.objects.get(uid="NLAMS001-E1").status == "OUTOFORDER"
    restored = PriceComponent.objects.get(element__tariff__ocpi_id="NL-DC-ADHOC")
    assert restored.price == Decimal("0.69")
    assert "tariffs: 0 created, 1 updated, 7 unchanged" in out
    assert Tariff.objects.count() == DEMO_COUNTS[Tariff]


def test_seed_bench_creates_the_requested_network_without_pushes(announcements):
    # given an empty database
    # when a small bench network is built
    out = run("seed_bench", "--locations", "50")

    # then it has 50 locations with 4 EVSEs and 6 connectors each, and nothing was announced
    assert Location.objects.count() == 50
    assert EVSE.objects.count() == 200
    assert Connector.objects.count() == 300
    assert announcements == []
    assert "Done: 50 locations" in out
    ids = sorted(Location.objects.values_list("ocpi_id", flat=True))
    assert ids[0] == "BENCH-000001"
    assert ids[-1] == "BENCH-000050"
    # every object is valid, though it was never validated on the way in
    for model in (Location, EVSE, Connector, Tariff, TariffElement, PriceComponent):
        for obj in model.objects.all():
            obj.full_clean()
    # every connector refers to an existing tariff
    tariff_ids = set(Tariff.objects.values_list("ocpi_id", flat=True))
    assert {t for c in Connector.objects.all() for t in c.tariff_ids} <= tariff_ids


def test_seed_bench_spreads_history_and_keeps_parents_newest():
    # when a bench network is built over a year of history
    run("seed_bench", "--locations", "40", "--days", "365")

    # then creation times spread over the period, in id order
    created = list(Location.objects.order_by("ocpi_id").values_list("created", flat=True))
    assert created == sorted(created)
    assert (created[-1] - created[0]).days > 300
    # and no EVSE or connector is newer than its parent
    for evse in EVSE.objects.select_related("location"):
        assert evse.created <= evse.last_updated <= evse.location.last_updated
    for connector in Connector.objects.select_related("evse"):
        assert connector.last_updated <= connector.evse.last_updated


def test_seed_bench_adds_after_existing_and_clear_removes_only_bench_data():
    # given the demo network and 10 bench locations
    run("seed_demo")
    run(
        "seed_bench",
        "--locations",
        "10",
        "--evses-per-location",
        "2",
        "--connectors-per-location",
        "3",
    )

    # when 5 more are added
    run(
        "seed_bench",
        "--locations",
        "5",
        "--evses-per-location",
        "2",
        "--connectors-per-location",
        "3",
    )

    # then they continue the numbering, with 2 EVSEs and 3 connectors each
    bench = Location.objects.filter(ocpi_id__startswith="BENCH-")
    assert bench.count() == 15
    assert bench.filter(ocpi_id="BENCH-000015").exists()
    assert EVSE.objects.filter(location__in=bench).count() == 30
    assert Connector.objects.filter(evse__location__in=bench).count() == 45

    # when the bench data is cleared
    out = run("seed_bench", "--clear")

    # then only the demo network remains
    assert "Cleared bench data: 15 locations, 30 EVSEs, 45 connectors, 2 tariffs" in out
    assert Location.objects.count() == DEMO_COUNTS[Location]
    assert EVSE.objects.count() == DEMO_COUNTS[EVSE]
    assert Connector.objects.count() == DEMO_COUNTS[Connector]
    assert Tariff.objects.count() == DEMO_COUNTS[Tariff]
