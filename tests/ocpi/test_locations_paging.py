"""The Locations list at depth (ocpi.pagination.ListIndex, the plain-row rendering): pages found
by key are the pages found by offset, a page costs three queries at any offset, and what is kept
between pages follows every change that moves Locations into or out of the list."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache

from ocpi import jsonutil
from ocpi.modules.locations import views
from ocpi.modules.locations.serializers import location_to_ocpi
from stations.models import EVSE, Connector, Location
from stations.selectors import location_list
from tests.factories import ConnectorFactory, EVSEFactory, LocationFactory

LOCATIONS = "/ocpi/cpo/2.2.1/locations"


@pytest.fixture(autouse=True)
def small_steps(monkeypatch):
    """An index entry every 4 Locations (1,000 in production), from an empty cache."""
    monkeypatch.setattr(views.LOCATION_INDEX, "step", 4)
    cache.clear()
    yield
    cache.clear()


def _page(client, offset: int, limit: int = 100):
    response = client.get(LOCATIONS, {"offset": offset, "limit": limit})
    assert response.status_code == 200
    return jsonutil.loads(response.content)["data"], response


def _ids(data: list[dict]) -> list[str]:
    return [location["id"] for location in data]


def _bulk_locations(count: int, *, evses: int = 2, connectors: int = 2) -> list[Location]:
    locations = Location.objects.bulk_create(LocationFactory.build() for _ in range(count))
    evse_rows = EVSE.objects.bulk_create(
        EVSEFactory.build(location=location) for location in locations for _ in range(evses)
    )
    Connector.objects.bulk_create(
        ConnectorFactory.build(evse=evse, ocpi_id=str(n + 1))
        for evse in evse_rows
        for n in range(connectors)
    )
    return locations


def _all_ids() -> list[str]:
    return list(location_list(partner=None).values_list("ocpi_id", flat=True))


# --- pages by key are pages by offset --------------------------------------------------------
def test_every_page_at_every_offset_is_the_page_by_offset(ocpi_client):
    # given: 23 Locations, index entries at 0, 4, 8, ...
    _bulk_locations(23, evses=1, connectors=1)
    expected = _all_ids()
    # when: every offset, pages of 5 (across index entries)
    pages = {offset: _page(ocpi_client, offset, limit=5) for offset in range(0, 25)}
    # then
    for offset, (data, response) in pages.items():
        assert _ids(data) == expected[offset : offset + 5], offset
        assert response["X-Total-Count"] == "23"


def test_rows_render_as_the_model_instances_do(ocpi_client):
    # given: every optional field, restricted and private Locations, an EVSE without
    # connectors (not shown yet), a REMOVED EVSE, non-ASCII text
    full = LocationFactory(
        full=True, evses=2, evses__full=True, evses__connectors=2, evses__connectors__full=True
    )
    restricted = LocationFactory(
        evses=0,
        publish=False,
        publish_allowed_to=[{"visual_number": "12345-67", "issuer": "Nieuwe Mobiliteit"}],
        directions=[{"language": "de", "text": "Einfahrt über die Bahnhofstraße, Ebene −1"}],
    )
    EVSEFactory(location=restricted, connectors=0)
    EVSEFactory(location=restricted).delete()  # REMOVED
    LocationFactory(publish=False)  # private: not listed
    expected = [
        jsonutil.loads(jsonutil.dumps(location_to_ocpi(location)))
        for location in location_list(partner=None).filter(pk__in=[full.pk, restricted.pk])
    ]
    # when: the first page (by offset: the index is built with it) and the same page by key
    first, _ = _page(ocpi_client, 0)
    again, _ = _page(ocpi_client, 0)
    # then
    assert first == expected
    assert again == expected
    assert [len(e["connectors"]) for e in first[1]["evses"]] == [1]  # empty EVSE left out
    assert [e["status"] for e in first[1]["evses"]] == ["REMOVED"]


# --- cost -----------------------------------------------------------------------------------
@pytest.mark.parametrize("offset", [0, 17, 36])
def test_a_page_costs_three_queries_at_any_offset(
    ocpi_client, offset, django_assert_max_num_queries
):
    # given: the index is built
    _bulk_locations(40)
    _page(ocpi_client, 0)
    # when: partner, the page's Locations, their EVSEs with connectors
    with django_assert_max_num_queries(3):
        data, response = _page(ocpi_client, offset, limit=4)
    # then
    assert _ids(data) == _all_ids()[offset : offset + 4]
    assert response["X-Total-Count"] == "40"
    assert all(len(e["connectors"]) == 2 for location in data for e in location["evses"])


def test_building_the_index_costs_one_query_more(ocpi_client, django_assert_max_num_queries):
    # given
    _bulk_locations(10)
    # when
    with django_assert_max_num_queries(4):
        data, response = _page(ocpi_client, 8)
    # then
    assert _ids(data) == _all_ids()[8:]
    assert response["X-Total-Count"] == "10"


# --- what is kept follows the changes -------------------------------------------------------
def test_a_new_location_counts_and_shows_at_once(ocpi_client):
    # given
    _bulk_locations(9, evses=1, connectors=1)
    _page(ocpi_client, 0)
    # when
    new = LocationFactory()
    data, response = _page(ocpi_client, 8)
    # then
    assert response["X-Total-Count"] == "10"
    assert _ids(data)[-1] == new.ocpi_id


def test_locations_inserted_in_bulk_before_the_others_are_seen(ocpi_client):
    # given: the index is built for 9 Locations
    _bulk_locations(9, evses=1, connectors=1)
    before = _all_ids()
    _page(ocpi_client, 0)
    # when: two older Locations arrive without signals (as seed_bench or an import would)
    early = datetime(2001, 1, 1, tzinfo=UTC)
    Location.objects.bulk_create(
        [LocationFactory.build(created=early), LocationFactory.build(created=early)]
    )
    data, response = _page(ocpi_client, 4, limit=4)
    # then: positions moved by two
    assert response["X-Total-Count"] == "11"
    assert _ids(data) == before[2:6]


@pytest.mark.parametrize(
    "change",
    [
        {"publish": False},  # private now
        {"party_id": "OTH"},  # another CPO's now
    ],
)
def test_a_location_leaving_the_list_leaves_total_and_pages(ocpi_client, change):
    # given
    locations = [LocationFactory(evses=0) for _ in range(9)]
    _page(ocpi_client, 0)
    leaving = locations[1]
    # when
    for field, value in change.items():
        setattr(leaving, field, value)
    leaving.save()
    data, response = _page(ocpi_client, 0)
    # then
    assert response["X-Total-Count"] == "8"
    assert _ids(data) == [loc.ocpi_id for loc in locations if loc.pk != leaving.pk]


def test_a_restricted_location_entering_the_list_is_counted(ocpi_client):
    # given: a private Location, not listed
    locations = [LocationFactory(evses=0) for _ in range(5)]
    private = LocationFactory(publish=False, evses=0)
    _, response = _page(ocpi_client, 0)
    assert response["X-Total-Count"] == "5"
    # when: it is shared with some drivers
    private.publish_allowed_to = [{"uid": "DEADBEEF", "type": "RFID"}]
    private.save()
    data, response = _page(ocpi_client, 0)
    # then
    assert response["X-Total-Count"] == "6"
    assert _ids(data) == [loc.ocpi_id for loc in locations] + [private.ocpi_id]


def test_a_deleted_location_leaves_the_list(ocpi_client):
    # given
    locations = [LocationFactory(evses=0) for _ in range(6)]
    _page(ocpi_client, 0)
    # when
    locations[0].delete()
    data, response = _page(ocpi_client, 0)
    # then
    assert response["X-Total-Count"] == "5"
    assert _ids(data) == [loc.ocpi_id for loc in locations[1:]]


def test_an_evse_status_change_keeps_the_index(ocpi_client, django_assert_max_num_queries):
    # given
    location = LocationFactory()
    _bulk_locations(8)
    _page(ocpi_client, 0)
    evse = location.evses.get()
    # when: most changes on a live network change a Location's content, not the list
    evse.status = "CHARGING"
    evse.save()
    with django_assert_max_num_queries(3):
        data, _ = _page(ocpi_client, 0, limit=1)
    # then
    assert data[0]["evses"][0]["status"] == "CHARGING"


def test_an_unannounced_change_is_seen_after_the_ttl(ocpi_client, monkeypatch):
    # given
    locations = [LocationFactory(evses=0) for _ in range(5)]
    _page(ocpi_client, 0)
    Location.objects.filter(pk=locations[0].pk).update(publish=False)  # no signal
    # when: the entry's time is up
    later = datetime.now(UTC) + timedelta(seconds=views.LOCATION_INDEX.ttl + 1)
    monkeypatch.setattr("ocpi.pagination.time.time", later.timestamp)
    data, response = _page(ocpi_client, 0)
    # then
    assert response["X-Total-Count"] == "4"
    assert _ids(data) == [loc.ocpi_id for loc in locations[1:]]


# --- edges ----------------------------------------------------------------------------------
def test_a_page_past_the_end_is_empty_with_the_total(ocpi_client):
    # given
    _bulk_locations(6, evses=0)
    _page(ocpi_client, 0)
    # when
    data, response = _page(ocpi_client, 40)
    # then
    assert data == []
    assert response["X-Total-Count"] == "6"
    assert "Link" not in response


def test_without_a_cache_pages_come_by_offset(ocpi_client, monkeypatch):
    # given: the cache is down
    _bulk_locations(7, evses=1, connectors=1)

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get_many", down)
    # when
    data, response = _page(ocpi_client, 3, limit=3)
    # then
    assert _ids(data) == _all_ids()[3:6]
    assert response["X-Total-Count"] == "7"


def test_a_date_window_is_counted_not_indexed(ocpi_client):
    # given
    locations = _bulk_locations(6, evses=0)
    _page(ocpi_client, 0)
    Location.objects.filter(pk__in=[loc.pk for loc in locations[:2]]).update(
        last_updated=datetime(2020, 1, 1, tzinfo=UTC)
    )
    # when
    response = ocpi_client.get(LOCATIONS, {"date_to": "2021-01-01T00:00:00Z"})
    # then
    assert response["X-Total-Count"] == "2"
    assert _ids(jsonutil.loads(response.content)["data"]) == [loc.ocpi_id for loc in locations[:2]]
