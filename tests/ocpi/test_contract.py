"""What we serve matches the official OCPI 2.2.1 OpenAPI schemas (tests/contract.py).

Deviation, on purpose: the published schemas follow the 2021 release text, where
Location.address is string(45) and Location.state string(20); we follow the 2.2.1-d2 errata
(address 255, state 45: PROTOCOL.md §5.2), so the contract helper widens those two fields by
default. test_errata_lengths_are_the_only_length_deviation pins exactly that difference, and
the factories keep addresses short enough for partners still validating against the release.
"""

from decimal import Decimal

import pytest

from ocpi import jsonutil
from ocpi.modules.locations.serializers import location_to_ocpi
from ocpi.modules.tariffs.serializers import tariff_to_ocpi
from stations.models import Location, Tariff
from tests.contract import (
    ContractError,
    contract_errors,
    validate_envelope,
    validate_ocpi,
    validate_response,
)
from tests.factories import (
    ConnectorFactory,
    EVSEFactory,
    LocationFactory,
    PriceComponentFactory,
    TariffElementFactory,
    TariffFactory,
)

LOCATIONS = "/ocpi/cpo/2.2.1/locations"
TARIFFS = "/ocpi/cpo/2.2.1/tariffs"
SENDER = "locations/sender-interface"


def _body(response) -> dict:
    return jsonutil.loads(response.content)


@pytest.fixture
def varied_network(db):
    """Locations and EVSEs covering the optional fields and the odd cases."""
    full = LocationFactory(
        ocpi_id="FULL",
        full=True,
        evses=2,
        evses__full=True,
        evses__connectors=2,
        evses__connectors__full=True,
    )
    ConnectorFactory(evse=EVSEFactory(location=full, connectors=0), dc=True)
    LocationFactory(ocpi_id="MINIMAL", evses=0, name="", postal_code="", parking_type="")
    restricted = LocationFactory(
        ocpi_id="RESTRICTED",
        publish=False,
        publish_allowed_to=[
            {"uid": "04A1B2C3D4", "type": "RFID"},
            {"visual_number": "NL-ABC-123456-7", "issuer": "ABC Mobility"},
            {"group_id": "FLEET-42"},
        ],
    )
    restricted.evses.get().delete()  # REMOVED, still served
    tariff = TariffFactory(full=True, elements=0)
    day = TariffElementFactory(tariff=tariff, full=True, price_components=0)
    PriceComponentFactory(element=day, type="ENERGY", price=Decimal("0.3500"))
    PriceComponentFactory(element=day, type="TIME", price=Decimal("1.20"), step_size=60)
    reservation = TariffElementFactory(tariff=tariff, reservation="RESERVATION_EXPIRES")
    PriceComponentFactory(element=reservation, type="FLAT", price=Decimal("2"), vat=None)
    TariffFactory()  # the plain default
    TariffFactory(elements=1, elements__price_components__price=Decimal("0"))  # free


def test_every_served_location_list_validates(varied_network, ocpi_client):
    # when
    response = ocpi_client.get(LOCATIONS)
    # then
    body = _body(response)
    assert [loc["id"] for loc in body["data"]] == ["FULL", "MINIMAL", "RESTRICTED"]
    validate_response(body, SENDER, "/locations", "get", 200)
    validate_envelope(body, "Location", many=True)


def test_every_served_location_evse_and_connector_validates(varied_network, ocpi_client):
    for location in Location.objects.prefetch_related("evses__connectors"):
        # when
        body = _body(ocpi_client.get(f"{LOCATIONS}/{location.ocpi_id}"))
        # then
        validate_response(body, SENDER, "/locations/{location_id}", "get", 200)
        validate_ocpi(body["data"], "Location")
        for evse in location.evses.all():
            body = _body(ocpi_client.get(f"{LOCATIONS}/{location.ocpi_id}/{evse.uid}"))
            validate_response(body, SENDER, "/locations/{location_id}/{evse_uid}", "get", 200)
            validate_ocpi(body["data"], "EVSE")
            for connector in evse.connectors.all():
                path = f"{LOCATIONS}/{location.ocpi_id}/{evse.uid}/{connector.ocpi_id}"
                body = _body(ocpi_client.get(path))
                validate_response(
                    body, SENDER, "/locations/{location_id}/{evse_uid}/{connector_id}", "get", 200
                )
                validate_ocpi(body["data"], "Connector")


def test_every_served_tariff_validates(varied_network, ocpi_client):
    # when
    body = _body(ocpi_client.get(TARIFFS))
    # then
    assert len(body["data"]) == 3
    validate_response(body, "tariffs/sender-interface", "/tariffs", "get", 200)
    validate_envelope(body, "Tariff", many=True)


@pytest.mark.parametrize(
    ("path", "status", "interface", "described_as"),
    [
        (f"{LOCATIONS}/NOPE", 404, SENDER, "/locations/{location_id}"),
        (f"{LOCATIONS}?offset=-1", 400, SENDER, "/locations"),
        (f"{TARIFFS}?limit=x", 400, "tariffs/sender-interface", "/tariffs"),
    ],
)
def test_error_envelopes_validate(db, ocpi_client, path, status, interface, described_as):
    # when
    response = ocpi_client.get(path)
    # then
    assert response.status_code == status
    validate_response(_body(response), interface, described_as, "get", status)
    validate_envelope(_body(response))


def test_unauthorized_envelope_validates(db, client):
    # when
    response = client.get(LOCATIONS)
    # then
    assert response.status_code == 401
    validate_response(_body(response), SENDER, "/locations", "get", 401)


def test_objects_pushes_would_send_validate_without_http(varied_network):
    # given: the serializers are shared by endpoints and pushes
    locations = Location.objects.prefetch_related("evses__connectors")
    # then
    for location in locations:
        validate_ocpi(location_to_ocpi(location), "Location")
    for tariff in Tariff.objects.prefetch_related("elements__price_components"):
        validate_ocpi(tariff_to_ocpi(tariff), "Tariff")


# --- the helper itself catches what a partner's validator would reject ------------------------
@pytest.fixture
def location_json(db) -> dict:
    location = LocationFactory(full=True, evses__full=True, evses__connectors__full=True)
    location = Location.objects.prefetch_related("evses__connectors").get(pk=location.pk)
    return jsonutil.loads(jsonutil.dumps(location_to_ocpi(location)))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda o: o.pop("time_zone"), "'time_zone' is a required property"),
        (lambda o: o.update(publish="yes"), "$.publish: 'yes' is not of type 'boolean'"),
        (lambda o: o.update(country_code="NLD"), "$.country_code: 'NLD' is too long"),
        (lambda o: o.update(parking_type="on_street"), "$.parking_type: 'on_street' is not one"),
        (lambda o: o["coordinates"].update(latitude="x52.3700001"), "$.coordinates.latitude"),
        (
            lambda o: o["coordinates"].update(latitude=52.37),
            "$.coordinates.latitude: Decimal('52.37') is not of type 'string'",
        ),
        (
            lambda o: o.update(last_updated="2025-01-01T10:00:00+00:00"),
            "$.last_updated: '2025-01-01T10:00:00+00:00' is not a 'date-time'",
        ),
        (
            lambda o: o.update(last_updated="2025-01-01T10:00:00.123456Z"),
            "$.last_updated: '2025-01-01T10:00:00.123456Z' is not a 'date-time'",
        ),
        (lambda o: o["evses"][0].update(connectors=[]), "$.evses[0].connectors: [] should be non"),
        (
            lambda o: o["evses"][0]["connectors"][0].update(max_voltage=Decimal("230.5")),
            "$.evses[0].connectors[0].max_voltage",
        ),
        (
            lambda o: o["evses"][0]["connectors"][0].update(terms_and_conditions="/terms"),
            "$.evses[0].connectors[0].terms_and_conditions: '/terms' is not a 'uri'",
        ),
        (lambda o: o["evses"][0].update(status="FREE"), "$.evses[0].status: 'FREE' is not one"),
        (
            lambda o: o["opening_times"]["regular_hours"][0].update(period_begin="7:00"),
            "$.opening_times.regular_hours[0].period_begin: '7:00' does not match",
        ),
    ],
)
def test_contract_helper_reports_violations(location_json, mutate, expected):
    # given
    validate_ocpi(location_json, "Location")
    # when
    mutate(location_json)
    # then
    errors = contract_errors(location_json, "Location")
    assert any(expected in error for error in errors), errors
    with pytest.raises(ContractError):
        validate_ocpi(location_json, "Location")


def test_envelope_needs_status_code_and_timestamp():
    # then: the published envelope schema requires nothing; the spec requires both
    with pytest.raises(ContractError, match="'timestamp' is a required property"):
        validate_envelope({"status_code": 1000, "data": []})
    with pytest.raises(ContractError, match="'status_code' is a required property"):
        validate_envelope({"timestamp": "2025-01-01T00:00:00Z"})
    with pytest.raises(ContractError, match="'data' is a required property"):
        validate_envelope({"status_code": 1000, "timestamp": "2025-01-01T00:00:00Z"}, "Tariff")


def test_lenient_datetime_accepts_the_input_forms_the_spec_allows(location_json):
    # given
    location_json["last_updated"] = "2015-06-29T20:39:09"
    # then
    assert contract_errors(location_json, "Location", lenient_datetime=True) == []
    assert contract_errors(location_json, "Location") == [
        "$.last_updated: '2015-06-29T20:39:09' is not a 'date-time'"
    ]


def test_errata_lengths_are_the_only_length_deviation(location_json):
    # given: lengths valid under the 2.2.1-d2 errata, too long for the 2021 release text
    location_json["address"] = "Burgemeester van Walsumweg, Parkeergarage Noord 1234"  # 52
    location_json["state"] = "Provincie Noord-Holland"  # 23
    # then
    assert contract_errors(location_json, "Location") == []
    assert contract_errors(location_json, "Location", release=True) == [
        f"$.address: '{location_json['address']}' is too long",
        f"$.state: '{location_json['state']}' is too long",
    ]
    location_json["address"] = "x" * 256
    assert contract_errors(location_json, "Location") == [
        f"$.address: '{location_json['address']}' is too long"
    ]


def test_factory_defaults_fit_the_release_lengths_too(location_json):
    # then: partners validating against the release text accept what the factories build
    assert contract_errors(location_json, "Location", release=True) == []


@pytest.mark.parametrize(
    ("interface", "path", "status"),
    [
        (SENDER, "/locations", 200),
        (SENDER, "/locations/{location_id}/{evse_uid}/{connector_id}", 200),
        ("tariffs/sender-interface", "/tariffs", 200),
    ],
)
def test_validate_response_checks_the_operations_data_schema(interface, path, status):
    # given: an envelope whose data is not what the operation returns
    body = {"status_code": 1000, "timestamp": "2025-01-01T00:00:00Z", "data": [{"id": 1}]}
    if "{" in path:
        body["data"] = {"id": 1}
    # then
    with pytest.raises(ContractError, match=r"\$\.data"):
        validate_response(body, interface, path, "get", status)
