"""Locations Sender endpoints (PROTOCOL.md §4.1, §1.8): what a partner sees, and how."""

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from rest_framework.test import APIClient

from ocpi import jsonutil, tokens
from ocpi.models import Partner
from ocpi.modules.locations.serializers import connector_to_ocpi, evse_to_ocpi, location_to_ocpi
from stations.choices import EVSEStatus
from stations.models import EVSE, Connector, Location
from tests.factories import ConnectorFactory, EVSEFactory, LocationFactory

LOCATIONS = "/ocpi/cpo/2.2.1/locations"
DATETIME_Z = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$"


def _body(response) -> dict:
    assert response["Content-Type"] == "application/json"
    return jsonutil.loads(response.content)


def _wire(obj):
    """An object as a partner receives it (DateTimes as strings, exact decimals)."""
    return jsonutil.loads(jsonutil.dumps(obj))


def _ids(response) -> list[str]:
    return [location["id"] for location in _body(response)["data"]]


def _crawl(client, url: str) -> tuple[list[dict], list]:
    """Follow Link rel="next" to the end: every object, and each page's response."""
    objects, responses = [], []
    while url:
        response = client.get(url)
        assert response.status_code == 200
        responses.append(response)
        objects += _body(response)["data"]
        if "Link" not in response:
            break
        parts = urlsplit(_next_url(response))
        url = f"{parts.path}?{parts.query}"
    return objects, responses


def _next_url(response) -> str:
    link = response["Link"]
    assert link.startswith("<http://testserver/ocpi/")
    assert link.endswith('>; rel="next"')
    return link[1 : link.index(">")]


def _next_query(response) -> dict:
    return parse_qs(urlsplit(_next_url(response)).query)


def _set_last_updated(location: Location, when: datetime) -> None:
    Location.objects.filter(pk=location.pk).update(last_updated=when)


# --- what a partner sees ----------------------------------------------------------------------
def test_list_serves_public_and_restricted_locations_of_our_roles_only(ocpi_client, settings):
    # given
    settings.OCPI_EXTRA_ROLES = "BE:BEC:BeCharged"
    public = LocationFactory()
    restricted = LocationFactory(
        publish=False, publish_allowed_to=[{"visual_number": "12345-67", "issuer": "NewMotion"}]
    )
    LocationFactory(publish=False)  # private: a home charger, no publish_allowed_to
    LocationFactory(country_code="NL", party_id="OTH")  # another CPO's location
    second_role = LocationFactory(country_code="be", party_id="bec")  # our roles, any case
    # when
    response = ocpi_client.get(LOCATIONS)
    # then
    assert response.status_code == 200
    assert _ids(response) == [public.ocpi_id, restricted.ocpi_id, second_role.ocpi_id]
    assert response["X-Total-Count"] == "3"
    served_restricted = _body(response)["data"][1]
    assert served_restricted["publish"] is False
    assert served_restricted["publish_allowed_to"] == restricted.publish_allowed_to


def test_list_renders_whole_envelope_with_every_evse_and_connector(ocpi_client):
    # given
    location = LocationFactory(
        full=True, evses=2, evses__full=True, evses__connectors=2, evses__connectors__full=True
    )
    location = Location.objects.prefetch_related("evses__connectors").get(pk=location.pk)
    # when
    response = ocpi_client.get(LOCATIONS)
    # then
    body = _body(response)
    assert set(body) == {"data", "status_code", "status_message", "timestamp"}
    assert body["status_code"] == 1000
    assert body["data"] == [_wire(location_to_ocpi(location))]
    assert [len(e["connectors"]) for e in body["data"][0]["evses"]] == [2, 2]
    assert response["X-Total-Count"] == "1"
    assert response["X-Limit"] == "100"
    assert "Link" not in response


def test_list_serves_removed_evses(ocpi_client):
    # given
    location = LocationFactory(evses=2)
    removed = location.evses.order_by("pk").last()
    removed.delete()  # EVSEs are never deleted: they become REMOVED
    # when
    response = ocpi_client.get(LOCATIONS)
    # then
    evses = _body(response)["data"][0]["evses"]
    assert [(e["uid"], e["status"]) for e in evses] == [
        (location.evses.order_by("pk").first().uid, "AVAILABLE"),
        (removed.uid, "REMOVED"),
    ]


def test_list_without_locations_is_an_empty_page(ocpi_client):
    # when
    response = ocpi_client.get(LOCATIONS)
    # then
    assert response.status_code == 200
    assert _body(response)["data"] == []
    assert response["X-Total-Count"] == "0"
    assert response["X-Limit"] == "100"
    assert "Link" not in response


def test_detail_endpoints_match_ids_case_insensitively(ocpi_client):
    # given
    location = LocationFactory(ocpi_id="Loc-Amsterdam-1", evses=0)
    evse = EVSEFactory(location=location, uid="Evse-A", connectors=0)
    connector = ConnectorFactory(evse=evse, ocpi_id="Plug-1")
    location = Location.objects.prefetch_related("evses__connectors").get(pk=location.pk)
    evse = EVSE.objects.prefetch_related("connectors").get(pk=evse.pk)
    connector = Connector.objects.get(pk=connector.pk)
    # when
    location_response = ocpi_client.get(f"{LOCATIONS}/LOC-AMSTERDAM-1")
    evse_response = ocpi_client.get(f"{LOCATIONS}/loc-amsterdam-1/EVSE-a")
    connector_response = ocpi_client.get(f"{LOCATIONS}/LOC-amsterdam-1/evse-A/PLUG-1")
    # then
    assert location_response.status_code == 200
    assert _body(location_response)["data"] == _wire(location_to_ocpi(location))
    assert evse_response.status_code == 200
    assert _body(evse_response)["data"] == _wire(evse_to_ocpi(evse))
    assert connector_response.status_code == 200
    assert _body(connector_response)["data"] == _wire(connector_to_ocpi(connector))
    assert _body(connector_response)["status_code"] == 1000


def test_detail_serves_restricted_location_and_removed_evse(ocpi_client):
    # given
    location = LocationFactory(
        ocpi_id="R1", publish=False, publish_allowed_to=[{"uid": "04A1B2C3", "type": "RFID"}]
    )
    evse = location.evses.get()
    evse.delete()
    # when
    response = ocpi_client.get(f"{LOCATIONS}/R1/{evse.uid}")
    # then
    assert response.status_code == 200
    assert _body(response)["data"]["status"] == EVSEStatus.REMOVED


@pytest.mark.parametrize(
    "path",
    [
        "NOPE",  # unknown location
        "PRIVATE",  # publish=false without publish_allowed_to: never served
        "PRIVATE/E-PRIVATE",
        "PRIVATE/E-PRIVATE/1",
        "THEIRS",  # another CPO's location
        "THEIRS/E-THEIRS",
        "MINE/NOPE",  # unknown EVSE
        "MINE/NOPE/1",
        "MINE/E-MINE/9",  # unknown connector
        "MINE/E-PRIVATE/1",  # an EVSE of another location
    ],
)
def test_unknown_or_hidden_objects_are_404_with_2003(ocpi_client, path):
    # given
    EVSEFactory(location=LocationFactory(ocpi_id="MINE", evses=0), uid="E-MINE")
    EVSEFactory(
        location=LocationFactory(ocpi_id="PRIVATE", publish=False, evses=0), uid="E-PRIVATE"
    )
    EVSEFactory(location=LocationFactory(ocpi_id="THEIRS", party_id="OTH", evses=0), uid="E-THEIRS")
    # when
    response = ocpi_client.get(f"{LOCATIONS}/{path}")
    # then
    assert response.status_code == 404
    body = _body(response)
    assert body["status_code"] == 2003
    assert "data" not in body
    assert body["status_message"]
    assert response["X-Request-ID"]


# --- pagination -------------------------------------------------------------------------------
def test_following_links_returns_every_location_once(ocpi_client):
    # given
    created = [LocationFactory(evses=0).ocpi_id for _ in range(7)]
    # when
    objects, pages = _crawl(ocpi_client, f"{LOCATIONS}?limit=3")
    # then
    assert [o["id"] for o in objects] == created
    assert [len(_body(page)["data"]) for page in pages] == [3, 3, 1]
    assert {page["X-Total-Count"] for page in pages} == {"7"}
    assert {page["X-Limit"] for page in pages} == {"100"}
    assert "Link" not in pages[-1]


def test_limit_above_the_cap_is_capped(ocpi_client, settings):
    # given
    settings.OCPI_MAX_PAGE_SIZE = 4
    for _ in range(6):
        LocationFactory(evses=0)
    # when
    response = ocpi_client.get(f"{LOCATIONS}?limit=1000")
    # then
    assert len(_body(response)["data"]) == 4
    assert response["X-Limit"] == "4"
    assert response["X-Total-Count"] == "6"
    assert _next_query(response) == {"offset": ["4"], "limit": ["4"]}


def test_date_window_is_inclusive_from_and_exclusive_to_and_kept_in_links(ocpi_client):
    # given
    t0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    locations = [LocationFactory(evses=0) for _ in range(5)]
    for minutes, location in enumerate(locations):
        _set_last_updated(location, t0 + timedelta(minutes=minutes))
    # when: [t0+1min, t0+4min) holds locations 1, 2 and 3
    objects, pages = _crawl(
        ocpi_client,
        f"{LOCATIONS}?date_from=2025-03-01T12:01:00Z&date_to=2025-03-01T12:04:00Z&limit=2",
    )
    # then
    assert [o["id"] for o in objects] == [loc.ocpi_id for loc in locations[1:4]]
    assert {page["X-Total-Count"] for page in pages} == {"3"}
    assert _next_query(pages[0]) == {
        "offset": ["2"],
        "limit": ["2"],
        "date_from": ["2025-03-01T12:01:00Z"],
        "date_to": ["2025-03-01T12:04:00Z"],
    }


def test_evse_change_moves_location_into_a_later_date_window(ocpi_client):
    # given
    location = LocationFactory()
    _set_last_updated(location, datetime(2020, 1, 1, tzinfo=UTC))
    evse = location.evses.get()
    since = datetime.now(UTC) - timedelta(seconds=1)
    # when
    evse.status = EVSEStatus.CHARGING
    evse.save()
    response = ocpi_client.get(LOCATIONS, {"date_from": since.isoformat().replace("+00:00", "Z")})
    # then
    assert _ids(response) == [location.ocpi_id]
    assert _body(response)["data"][0]["evses"][0]["status"] == "CHARGING"


@pytest.mark.parametrize("page_size", [1, 100])
def test_a_page_costs_a_fixed_number_of_queries(
    ocpi_client, page_size, django_assert_max_num_queries
):
    # given: 100 locations with 2 EVSEs of 2 connectors each (bulk-created: only reads matter)
    locations = Location.objects.bulk_create(LocationFactory.build() for _ in range(100))
    evses = EVSE.objects.bulk_create(
        EVSEFactory.build(location=location) for location in locations for _ in range(2)
    )
    Connector.objects.bulk_create(
        ConnectorFactory.build(evse=evse, ocpi_id=str(n)) for evse in evses for n in (1, 2)
    )
    # when: savepoint, partner, count, page, EVSEs, connectors, release
    with django_assert_max_num_queries(7):
        response = ocpi_client.get(LOCATIONS, {"limit": page_size})
    # then
    data = _body(response)["data"]
    assert len(data) == page_size
    assert all(len(e["connectors"]) == 2 for loc in data for e in loc["evses"])


def test_timestamps_are_utc_with_z(ocpi_client):
    # given
    LocationFactory()
    # when
    body = _body(ocpi_client.get(LOCATIONS))
    # then
    location = body["data"][0]
    evse = location["evses"][0]
    stamps = [
        body["timestamp"],
        location["last_updated"],
        evse["last_updated"],
        evse["connectors"][0]["last_updated"],
    ]
    assert all(re.match(DATETIME_Z, stamp) for stamp in stamps), stamps


# --- who may ask ------------------------------------------------------------------------------
DETAIL_PATHS = [LOCATIONS, f"{LOCATIONS}/L1", f"{LOCATIONS}/L1/E1", f"{LOCATIONS}/L1/E1/1"]


@pytest.fixture
def network(db):
    EVSEFactory(location=LocationFactory(ocpi_id="L1", evses=0), uid="E1")


def _client(header: str | None) -> APIClient:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client


@pytest.mark.parametrize("path", DETAIL_PATHS)
def test_registered_partner_may_read_every_endpoint(network, ocpi_client, path):
    # when
    response = ocpi_client.get(path)
    # then
    assert response.status_code == 200
    assert _body(response)["status_code"] == 1000


@pytest.mark.parametrize("path", DETAIL_PATHS)
@pytest.mark.parametrize(
    "caller",
    ["no header", "unknown token", "not a token scheme", "token A", "suspended", "old token"],
)
def test_callers_without_a_current_token_get_401(network, make_partner, path, caller):
    # given
    header = None
    if caller == "unknown token":
        header = "Token " + tokens.encode_for_header(tokens.new_token(), base64_encoded=True)
    elif caller == "not a token scheme":
        header = "Bearer " + tokens.new_token()
    elif caller == "token A":
        token_a = tokens.new_token()
        partner = Partner.objects.create(name="Pending eMSP", status=Partner.Status.PENDING)
        partner.set_token_a(token_a)
        partner.save()
        header = "Token " + tokens.encode_for_header(token_a, base64_encoded=True)
    elif caller == "suspended":
        _, token = make_partner(status=Partner.Status.SUSPENDED)
        header = "Token " + tokens.encode_for_header(token, base64_encoded=True)
    elif caller == "old token":
        partner, old = make_partner()
        partner.set_inbound_token(tokens.new_token())  # rotated (credentials PUT)
        partner.save()
        header = "Token " + tokens.encode_for_header(old, base64_encoded=True)
    # when
    response = _client(header).get(path)
    # then
    assert response.status_code == 401
    body = _body(response)
    assert body["status_code"] == 2000
    assert "data" not in body
    assert response["WWW-Authenticate"] == "Token"


def test_plain_token_of_a_2_1_1_style_partner_is_accepted(network, partner_and_token):
    # given: many partners send the token without Base64 (PROTOCOL.md §1.2)
    _, token = partner_and_token
    # when
    response = _client(f"Token {token}").get(LOCATIONS)
    # then
    assert response.status_code == 200
