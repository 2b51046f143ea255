"""The push outbox: which rows a change writes, for whom, with which method, URL path and body."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from ocpi import tasks
from ocpi.datetimes import format_datetime
from ocpi.models import OutboxMessage, Partner
from stations.models import EVSE, Connector, Location, PriceComponent
from tests.contract import validate_ocpi
from tests.factories import (
    ConnectorFactory,
    EVSEFactory,
    LocationFactory,
    TariffElementFactory,
    TariffFactory,
)

pytestmark = pytest.mark.django_db

State = OutboxMessage.State
EMSP = "http://127.0.0.1:9/ocpi/emsp/2.2.1"
ENDPOINTS = [
    {"identifier": "locations", "role": "RECEIVER", "url": f"{EMSP}/locations"},
    {"identifier": "tariffs", "role": "RECEIVER", "url": f"{EMSP}/tariffs"},
]


@pytest.fixture
def partner(make_partner):
    return make_partner("eMSP", endpoints=ENDPOINTS)[0]


@pytest.fixture
def network():
    """Location LOC1 with EVSE1 (one connector "1"), made before any partner exists."""
    location = LocationFactory(ocpi_id="LOC1", evses=0)
    evse = EVSEFactory(location=location, uid="EVSE1")
    return location, evse


def pending(partner=None):
    rows = OutboxMessage.objects.filter(state=State.PENDING).order_by("id")
    return list(rows.filter(partner=partner) if partner else rows)


def body(row: OutboxMessage) -> dict:
    return json.loads(row.body)


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


# --- who gets rows -----------------------------------------------------------------------------
def test_a_change_writes_one_row_per_registered_partner_with_the_receiver_endpoint(make_partner):
    # given
    first, _ = make_partner("First", endpoints=ENDPOINTS)
    second, _ = make_partner("Second", endpoints=ENDPOINTS, country_code="BE", party_id="EMB")
    make_partner("Sender only", endpoints=[{**ENDPOINTS[0], "role": "SENDER"}])
    make_partner("Tariffs only", endpoints=ENDPOINTS[1:])
    make_partner("Suspended", endpoints=ENDPOINTS, status=Partner.Status.SUSPENDED)
    make_partner("Pending", endpoints=ENDPOINTS, status=Partner.Status.PENDING)
    make_partner("Unregistered", endpoints=ENDPOINTS, status=Partner.Status.UNREGISTERED)

    # when
    LocationFactory(ocpi_id="LOC1", evses=2)

    # then
    rows = pending()
    assert [(r.partner, r.module, r.method, r.path, r.object_key) for r in rows] == [
        (first, "locations", "PUT", "NL/CPO/LOC1", "locations/NL/CPO/LOC1"),
        (second, "locations", "PUT", "NL/CPO/LOC1", "locations/NL/CPO/LOC1"),
    ]
    assert rows[0].body == rows[1].body
    assert all(r.attempts == 0 and r.interface_role == "RECEIVER" for r in rows)


def test_a_rolled_back_change_writes_nothing_and_queues_nothing(
    partner, django_capture_on_commit_callbacks
):
    # given
    def change_that_fails():
        with transaction.atomic():
            LocationFactory(ocpi_id="LOC1")
            raise RuntimeError("the change fails after the save")

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(RuntimeError):
            change_that_fails()

    # then
    assert not OutboxMessage.objects.exists()
    assert not Location.objects.exists()
    assert callbacks == []


def test_a_committed_change_queues_one_delivery_per_partner(
    make_partner, monkeypatch, django_capture_on_commit_callbacks
):
    # given
    first, _ = make_partner("First", endpoints=ENDPOINTS)
    second, _ = make_partner("Second", endpoints=ENDPOINTS)
    queued = []
    monkeypatch.setattr(tasks.deliver_outbox_task, "delay", queued.append)

    # when: many saves (location, EVSEs, connectors) in one transaction
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            LocationFactory(evses=3)

    # then
    assert queued == [first.pk, second.pk]


def test_partners_on_a_version_without_push_bodies_get_no_rows(make_partner):
    # given
    make_partner("Old", endpoints=ENDPOINTS, version="2.0")

    # when
    LocationFactory()

    # then
    assert not OutboxMessage.objects.exists()


def test_no_partner_means_no_rows():
    # when
    LocationFactory()
    TariffFactory()

    # then
    assert not OutboxMessage.objects.exists()


# --- PUT for new objects, at the right level -----------------------------------------------------
def test_a_new_location_is_one_put_of_the_whole_location(partner):
    # when: the factory saves the location, then each EVSE and connector
    location = LocationFactory(ocpi_id="LOC1", evses=2, full=True)

    # then
    (row,) = pending(partner)
    assert (row.method, row.path) == ("PUT", "NL/CPO/LOC1")
    pushed = body(row)
    validate_ocpi(pushed, "Location")
    assert [e["uid"] for e in pushed["evses"]] == list(
        location.evses.order_by("id").values_list("uid", flat=True)
    )
    assert pushed["last_updated"] == format_datetime(fresh(location).last_updated)
    assert OutboxMessage.objects.filter(state=State.SUPERSEDED).exists()


def test_a_new_evse_is_put_at_the_evse_url_with_its_connectors(network, partner):
    # given
    location, _ = network

    # when
    EVSEFactory(location=location, uid="EVSE2", connectors=2)

    # then
    (row,) = pending(partner)
    assert (row.method, row.path) == ("PUT", "NL/CPO/LOC1/EVSE2")
    pushed = body(row)
    validate_ocpi(pushed, "EVSE")
    assert [c["id"] for c in pushed["connectors"]] == ["1", "2"]


def test_a_new_connector_is_put_at_the_connector_url(network, partner):
    # given
    _, evse = network

    # when
    connector = ConnectorFactory(evse=evse, ocpi_id="2", dc=True)

    # then
    (row,) = pending(partner)
    assert (row.method, row.path) == ("PUT", "NL/CPO/LOC1/EVSE1/2")
    pushed = body(row)
    validate_ocpi(pushed, "Connector")
    assert pushed["id"] == "2"
    assert pushed["last_updated"] == format_datetime(connector.last_updated)


def test_an_evse_is_published_with_its_first_connector(network, partner):
    # given
    location, _ = network

    # when: an EVSE without connectors is saved
    evse = EVSE.objects.create(location=location, uid="EVSE2")

    # then: nothing to push yet (OCPI requires a connector)
    assert pending(partner) == []

    # when
    ConnectorFactory(evse=evse)

    # then
    (row,) = pending(partner)
    assert (row.method, row.path) == ("PUT", "NL/CPO/LOC1/EVSE2")
    validate_ocpi(body(row), "EVSE")


def test_a_location_put_leaves_out_evses_without_connectors(partner):
    # given
    location = LocationFactory(ocpi_id="LOC1", evses=1)
    EVSE.objects.create(location=location, uid="BARE")

    # when
    location.name = ""
    location.save()

    # then
    row = pending(partner)[-1]
    assert (row.method, row.path) == ("PUT", "NL/CPO/LOC1")
    assert "BARE" not in [e["uid"] for e in body(row)["evses"]]
    validate_ocpi(body(row), "Location")


def test_a_changed_location_id_is_put_at_the_new_url(network, partner):
    # given
    location, _ = network

    # when
    location.ocpi_id = "LOC-NEW"
    location.save()

    # then
    (row,) = pending(partner)
    assert (row.method, row.path, row.object_key) == (
        "PUT",
        "NL/CPO/LOC-NEW",
        "locations/NL/CPO/LOC-NEW",
    )
    validate_ocpi(body(row), "Location")


def test_ids_are_escaped_as_url_path_segments(network, partner):
    # given
    location, _ = network

    # when
    EVSEFactory(location=location, uid="A/B C*1")

    # then
    (row,) = pending(partner)
    assert row.path == "NL/CPO/LOC1/A%2FB%20C*1"
    assert body(row)["uid"] == "A/B C*1"


# --- PATCH for updates ---------------------------------------------------------------------------
def test_an_evse_status_change_is_a_patch_of_status_and_last_updated(network, partner):
    # given
    _, evse = network
    evse = fresh(evse)

    # when
    evse.status = "CHARGING"
    evse.save()

    # then
    (row,) = pending(partner)
    assert (row.method, row.path) == ("PATCH", "NL/CPO/LOC1/EVSE1")
    assert body(row) == {"status": "CHARGING", "last_updated": format_datetime(evse.last_updated)}
    validate_ocpi(body(row), "EVSEPatch")


def test_a_location_change_is_a_patch_of_the_changed_fields(network, partner):
    # given
    location = fresh(network[0])

    # when
    location.name = "Renamed plaza"
    location.latitude, location.longitude = "52.111111", "4.222222"
    location.save()

    # then
    (row,) = pending(partner)
    assert (row.method, row.path) == ("PATCH", "NL/CPO/LOC1")
    assert body(row) == {
        "coordinates": {"latitude": "52.111111", "longitude": "4.222222"},
        "name": "Renamed plaza",
        "last_updated": format_datetime(location.last_updated),
    }
    validate_ocpi(body(row), "LocationPatch")


def test_a_connector_change_is_a_patch_at_the_connector_url(network, partner):
    # given
    connector = Connector.objects.get(evse=network[1])

    # when
    connector.tariff_ids = ["AC-1", "AC-2"]
    connector.save()

    # then
    (row,) = pending(partner)
    assert (row.method, row.path) == ("PATCH", "NL/CPO/LOC1/EVSE1/1")
    assert body(row) == {
        "tariff_ids": ["AC-1", "AC-2"],
        "last_updated": format_datetime(connector.last_updated),
    }
    validate_ocpi(body(row), "ConnectorPatch")


def test_clearing_a_field_is_sent_as_a_put_because_a_patch_cannot_remove(network, partner):
    # given
    location = fresh(network[0])
    assert location.name

    # when
    location.name = ""
    location.save()

    # then
    (row,) = pending(partner)
    assert (row.method, row.path) == ("PUT", "NL/CPO/LOC1")
    assert "name" not in body(row)
    validate_ocpi(body(row), "Location")


def test_saving_unchanged_data_writes_nothing(network, partner):
    # when
    fresh(network[0]).save()
    fresh(network[1]).save()

    # then
    assert pending(partner) == []


def test_patches_are_never_dropped_or_merged(network, partner):
    # given
    evse = fresh(network[1])

    # when
    for status in ("CHARGING", "AVAILABLE", "CHARGING"):
        evse.status = status
        evse.save()

    # then
    rows = pending(partner)
    assert [(r.method, body(r)["status"]) for r in rows] == [
        ("PATCH", "CHARGING"),
        ("PATCH", "AVAILABLE"),
        ("PATCH", "CHARGING"),
    ]


# --- coalescing of unsent full states ------------------------------------------------------------
def test_a_change_below_an_unsent_location_put_is_folded_into_a_fresh_put(partner):
    # given: the location's PUT is not sent yet
    location = LocationFactory(ocpi_id="LOC1", evses=1)
    (old,) = pending(partner)
    evse = location.evses.get()

    # when
    evse.status = "CHARGING"
    evse.save()

    # then
    (row,) = pending(partner)
    assert (row.method, row.path) == ("PUT", "NL/CPO/LOC1")
    assert body(row)["evses"][0]["status"] == "CHARGING"
    old.refresh_from_db()
    assert old.state == State.SUPERSEDED
    assert old.last_error == f"Superseded by #{row.pk}"


def test_a_newer_put_does_not_supersede_across_a_patch(network, partner):
    # given: an unsent PATCH of the EVSE
    evse = fresh(network[1])
    evse.status = "CHARGING"
    evse.save()

    # when: the location is renamed to nothing (a PUT)
    location = fresh(network[0])
    location.name = ""
    location.save()

    # then
    assert [(r.method, r.path) for r in pending(partner)] == [
        ("PATCH", "NL/CPO/LOC1/EVSE1"),
        ("PUT", "NL/CPO/LOC1"),
    ]


def test_a_failed_row_is_never_superseded(network, partner):
    # given
    location = fresh(network[0])
    location.name = ""
    location.save()
    OutboxMessage.objects.update(state=State.FAILED, last_error="HTTP 400")

    # when
    location.address = "Damrak 1"
    location.save()

    # then
    assert list(OutboxMessage.objects.order_by("id").values_list("method", "state")) == [
        ("PUT", State.FAILED),
        ("PATCH", State.PENDING),
    ]


def test_sent_rows_are_left_alone_and_a_new_row_is_written(network, partner):
    # given
    location = fresh(network[0])
    location.name = ""
    location.save()
    OutboxMessage.objects.update(state=State.SENT)

    # when
    location.name = "Back again"
    location.save()

    # then
    assert list(OutboxMessage.objects.order_by("id").values_list("method", "state")) == [
        ("PUT", State.SENT),
        ("PATCH", State.PENDING),
    ]


# --- tariffs ----------------------------------------------------------------------------------
def test_a_new_tariff_is_one_full_put(partner):
    # when
    tariff = TariffFactory(ocpi_id="T1", full=True, elements=2)

    # then
    (row,) = pending(partner)
    assert (row.module, row.method, row.path, row.object_key) == (
        "tariffs",
        "PUT",
        "NL/CPO/T1",
        "tariffs/NL/CPO/T1",
    )
    pushed = json.loads(row.body, parse_float=Decimal)
    validate_ocpi(pushed, "Tariff")
    assert len(pushed["elements"]) == 2
    assert pushed["elements"][0]["price_components"][0]["price"] == Decimal("0.30")
    assert pushed["last_updated"] == format_datetime(fresh(tariff).last_updated)


def test_a_tariff_change_is_always_a_full_put(partner):
    # given: the tariff was pushed
    tariff = TariffFactory(ocpi_id="T1")
    OutboxMessage.objects.update(state=State.SENT)

    # when: a price changes
    component = PriceComponent.objects.get(element__tariff=tariff)
    component.price = Decimal("0.35")
    component.save()

    # then
    (row,) = pending(partner)
    assert (row.method, row.path) == ("PUT", "NL/CPO/T1")
    pushed = json.loads(row.body, parse_float=Decimal)
    validate_ocpi(pushed, "Tariff")
    assert pushed["elements"][0]["price_components"][0]["price"] == Decimal("0.35")


def test_a_newer_tariff_put_supersedes_the_unsent_one(partner):
    # given
    tariff = TariffFactory(ocpi_id="T1")
    (first,) = pending(partner)

    # when
    tariff.currency = "CHF"
    tariff.save()

    # then
    (row,) = pending(partner)
    assert body(row)["currency"] == "CHF"
    first.refresh_from_db()
    assert first.state == State.SUPERSEDED


def test_a_superseding_put_keeps_the_backoff_of_the_row_it_replaces(partner):
    # given: the tariff's PUT is being retried
    tariff = TariffFactory(ocpi_id="T1")
    later = timezone.now() + timedelta(seconds=30)
    OutboxMessage.objects.filter(state=State.PENDING).update(
        attempts=3, next_attempt_at=later, last_error="HTTP 500"
    )

    # when
    tariff.currency = "CHF"
    tariff.save()

    # then
    (row,) = pending(partner)
    assert (row.attempts, row.next_attempt_at, row.last_error) == (3, later, "HTTP 500")
    assert body(row)["currency"] == "CHF"


def test_a_tariff_without_price_components_is_not_pushed_yet(partner):
    # when
    tariff = TariffFactory(ocpi_id="T1", elements=0)
    element = TariffElementFactory(tariff=tariff, price_components=0)

    # then
    assert pending(partner) == []

    # when
    PriceComponent.objects.create(element=element, type="FLAT", price=Decimal("0"))

    # then
    (row,) = pending(partner)
    validate_ocpi(body(row), "Tariff")
