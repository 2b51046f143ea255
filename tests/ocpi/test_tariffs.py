"""Tariffs Sender endpoint (PROTOCOL.md §4.4, §1.8): GET list only."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from rest_framework.test import APIClient

from ocpi import jsonutil, tokens
from ocpi.models import Partner
from ocpi.modules.tariffs.serializers import tariff_to_ocpi
from stations.models import PriceComponent, Tariff, TariffElement
from tests.factories import PriceComponentFactory, TariffElementFactory, TariffFactory

TARIFFS = "/ocpi/cpo/2.2.1/tariffs"


def _body(response) -> dict:
    assert response["Content-Type"] == "application/json"
    return jsonutil.loads(response.content)


def _ids(response) -> list[str]:
    return [tariff["id"] for tariff in _body(response)["data"]]


def _next_path(response) -> str:
    link = response["Link"]
    assert link.startswith("<http://testserver/ocpi/")
    assert link.endswith('>; rel="next"')
    parts = urlsplit(link[1 : link.index(">")])
    return f"{parts.path}?{parts.query}"


def test_list_renders_whole_envelope_with_elements_in_order(ocpi_client):
    # given: a restricted daytime element first, the unrestricted fallback after it
    tariff = TariffFactory(full=True, elements=0)
    day = TariffElementFactory(tariff=tariff, full=True, price_components=0)
    PriceComponentFactory(element=day, type="ENERGY", price=Decimal("0.35"))
    PriceComponentFactory(element=day, type="PARKING_TIME", price=Decimal("2.00"), step_size=300)
    fallback = TariffElementFactory(tariff=tariff, price_components=0)
    PriceComponentFactory(element=fallback, type="ENERGY", price=Decimal("0.25"), vat=None)
    tariff = Tariff.objects.prefetch_related("elements__price_components").get(pk=tariff.pk)
    # when
    response = ocpi_client.get(TARIFFS)
    # then
    assert response.status_code == 200
    body = _body(response)
    assert set(body) == {"data", "status_code", "status_message", "timestamp"}
    assert body["status_code"] == 1000
    assert body["data"] == [jsonutil.loads(jsonutil.dumps(tariff_to_ocpi(tariff)))]
    elements = body["data"][0]["elements"]
    assert [[c["price"] for c in e["price_components"]] for e in elements] == [
        [Decimal("0.35"), Decimal("2.00")],
        [Decimal("0.25")],
    ]
    assert "restrictions" in elements[0]
    assert "restrictions" not in elements[1]
    assert "vat" not in elements[1]["price_components"][0]  # no VAT applies (not 0 %)
    assert response["X-Total-Count"] == "1"
    assert response["X-Limit"] == "100"


def test_element_order_follows_position_not_creation(ocpi_client):
    # given
    tariff = TariffFactory(elements=0)
    TariffElementFactory(tariff=tariff, position=2, price_components__price=Decimal("2"))
    TariffElementFactory(tariff=tariff, position=1, price_components__price=Decimal("1"))
    # when
    data = _body(ocpi_client.get(TARIFFS))["data"]
    # then
    prices = [e["price_components"][0]["price"] for e in data[0]["elements"]]
    assert prices == [Decimal("1"), Decimal("2")]


def test_list_serves_only_tariffs_of_our_roles(ocpi_client, settings):
    # given
    settings.OCPI_EXTRA_ROLES = "DE:ALL:Allego"
    ours = TariffFactory()
    TariffFactory(country_code="NL", party_id="OTH")
    second_role = TariffFactory(country_code="DE", party_id="all")
    # when
    response = ocpi_client.get(TARIFFS)
    # then
    assert _ids(response) == [ours.ocpi_id, second_role.ocpi_id]
    assert response["X-Total-Count"] == "2"


def test_list_without_tariffs_is_an_empty_page(ocpi_client):
    # when
    response = ocpi_client.get(TARIFFS)
    # then
    assert response.status_code == 200
    assert _body(response)["data"] == []
    assert response["X-Total-Count"] == "0"
    assert "Link" not in response


def test_following_links_returns_every_tariff_once(ocpi_client, settings):
    # given
    settings.OCPI_MAX_PAGE_SIZE = 2
    created = [TariffFactory().ocpi_id for _ in range(5)]
    # when: a limit above the cap of 2
    seen, path, pages = [], f"{TARIFFS}?limit=50", 0
    while path:
        response = ocpi_client.get(path)
        pages += 1
        assert response["X-Total-Count"] == "5"
        assert response["X-Limit"] == "2"
        seen += _ids(response)
        path = _next_path(response) if "Link" in response else None
    # then
    assert seen == created
    assert pages == 3


def test_date_window_filters_on_last_updated(ocpi_client):
    # given
    t0 = datetime(2025, 6, 1, tzinfo=UTC)
    tariffs = [TariffFactory() for _ in range(4)]
    for hours, tariff in enumerate(tariffs):
        Tariff.objects.filter(pk=tariff.pk).update(last_updated=t0 + timedelta(hours=hours))
    # when
    response = ocpi_client.get(
        TARIFFS,
        {"date_from": "2025-06-01T01:00:00Z", "date_to": "2025-06-01T03:00:00Z", "limit": 1},
    )
    # then
    assert _ids(response) == [tariffs[1].ocpi_id]
    assert response["X-Total-Count"] == "2"
    assert parse_qs(urlsplit(_next_path(response)).query) == {
        "offset": ["1"],
        "limit": ["1"],
        "date_from": ["2025-06-01T01:00:00Z"],
        "date_to": ["2025-06-01T03:00:00Z"],
    }


def test_price_component_change_moves_tariff_into_a_later_window(ocpi_client):
    # given
    tariff = TariffFactory()
    Tariff.objects.filter(pk=tariff.pk).update(last_updated=datetime(2020, 1, 1, tzinfo=UTC))
    component = PriceComponent.objects.get(element__tariff=tariff)
    # when
    component.price = Decimal("0.42")
    component.save()
    response = ocpi_client.get(TARIFFS, {"date_from": "2024-01-01T00:00:00Z"})
    # then
    assert _ids(response) == [tariff.ocpi_id]
    assert _body(response)["data"][0]["elements"][0]["price_components"][0]["price"] == Decimal(
        "0.42"
    )


@pytest.mark.parametrize("page_size", [1, 100])
def test_a_page_costs_a_fixed_number_of_queries(
    ocpi_client, page_size, django_assert_max_num_queries
):
    # given: 100 tariffs of 2 elements with 2 price components each (bulk-created)
    tariffs = Tariff.objects.bulk_create(TariffFactory.build() for _ in range(100))
    elements = TariffElement.objects.bulk_create(
        TariffElementFactory.build(tariff=tariff, position=n) for tariff in tariffs for n in (0, 1)
    )
    PriceComponent.objects.bulk_create(
        PriceComponentFactory.build(element=element, position=n)
        for element in elements
        for n in (0, 1)
    )
    # when: savepoint, partner, count, page, elements, price components, release
    with django_assert_max_num_queries(7):
        response = ocpi_client.get(TARIFFS, {"limit": page_size})
    # then
    data = _body(response)["data"]
    assert len(data) == page_size
    assert all(len(e["price_components"]) == 2 for t in data for e in t["elements"])


def test_single_tariff_get_is_not_an_endpoint(ocpi_client):
    # given: 2.2.1 has no GET of one tariff on the Sender interface
    tariff = TariffFactory()
    # when
    response = ocpi_client.get(f"{TARIFFS}/{tariff.ocpi_id}")
    # then
    assert response.status_code == 404
    assert _body(response)["status_code"] == 2000


@pytest.mark.parametrize("caller", ["no header", "unknown token", "token A", "suspended"])
def test_callers_without_a_current_token_get_401(make_partner, caller):
    # given
    TariffFactory()
    client = APIClient()
    if caller == "unknown token":
        client.credentials(HTTP_AUTHORIZATION=f"Token {tokens.new_token()}")
    elif caller == "token A":
        token_a = tokens.new_token()
        partner = Partner.objects.create(name="Pending eMSP", status=Partner.Status.PENDING)
        partner.set_token_a(token_a)
        partner.save()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_a}")
    elif caller == "suspended":
        _, token = make_partner(status=Partner.Status.SUSPENDED)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    # when
    response = client.get(TARIFFS)
    # then
    assert response.status_code == 401
    body = _body(response)
    assert body["status_code"] == 2000
    assert "data" not in body
