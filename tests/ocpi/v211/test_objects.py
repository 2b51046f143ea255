"""Every object served in both versions from the same data, each checked field by field against
its version's rules: 2.2.1 against the official OpenAPI (tests.contract), 2.1.1 against the
2.1.1 object tables (tests.ocpi.v211.rules, PROTOCOL.md §8)."""

from decimal import Decimal

import pytest

from billing.cdrs import cdr_create_for_session, cdr_credit
from billing.models import Token
from ocpi.services import partner_create
from stations.models import EVSE
from tests.contract import validate_envelope
from tests.factories import ConnectorFactory, EVSEFactory, LocationFactory, TariffElementFactory
from tests.ocpi.v211.helpers import (
    body_of,
    charge,
    client_211,
    client_221,
    priced_network,
    stop,
)
from tests.ocpi.v211.rules import assert_211, assert_envelope_211, errors_211

pytestmark = pytest.mark.django_db

V211 = "/ocpi/cpo/2.1.1"
V221 = "/ocpi/cpo/2.2.1"


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.SESSION_PATCH_INTERVAL = 0


@pytest.fixture
def partner_211(make_partner):
    return make_partner("Old eMSP", version="2.1.1", country_code="DE", party_id="EMS")


@pytest.fixture
def partner_221(make_partner):
    return make_partner("New eMSP", version="2.2.1", country_code="BE", party_id="BMS")


@pytest.fixture
def network(db):
    location, evse, tariff = priced_network()
    # Coordinates with 7 and 5 decimals (both valid in 2.2.1); 2.1.1 wants exactly 6.
    location.latitude, location.longitude = "52.3702157", "4.89517"
    location.save()
    evse.capabilities = [*evse.capabilities, "CHARGING_PREFERENCES_CAPABLE", "PED_TERMINAL"]
    evse.latitude, evse.longitude = "52.37031", "4.8953014"
    evse.save()
    return location, EVSE.objects.get(pk=evse.pk), tariff


def whole(stamp: str) -> str:
    """A 2.2.1 DateTime ("...:09.123Z") as 2.1.1 has it ("...:09Z")."""
    return stamp[:19] + "Z"


def both(partner_211, partner_221, path: str) -> tuple[dict, dict]:
    """GET `path` (below the module URL prefix) in 2.1.1 and 2.2.1: the two envelopes."""
    old = client_211(partner_211[1]).get(f"{V211}{path}")
    new = client_221(partner_221[1]).get(f"{V221}{path}")
    assert (old.status_code, new.status_code) == (200, 200)
    return body_of(old), body_of(new)


# --- versions and credentials ---------------------------------------------------------------------
def test_versions_list_both_versions_with_a_2_1_1_timestamp(partner_211):
    # when
    response = client_211(partner_211[1]).get("/ocpi/versions")

    # then
    body = body_of(response)
    assert body["data"] == [
        {"version": "2.2.1", "url": "http://testserver/ocpi/2.2.1"},
        {"version": "2.1.1", "url": "http://testserver/ocpi/2.1.1"},
    ]
    assert_envelope_211(body)


def test_2_1_1_details_list_its_modules_without_roles(partner_211):
    # when
    response = client_211(partner_211[1]).get("/ocpi/2.1.1")

    # then
    body = body_of(response)
    assert_envelope_211(body, "Version")
    base = "http://testserver/ocpi"
    assert body["data"] == {
        "version": "2.1.1",
        "endpoints": [
            {"identifier": "credentials", "url": f"{base}/2.1.1/credentials"},
            {"identifier": "locations", "url": f"{base}/cpo/2.1.1/locations"},
            {"identifier": "tariffs", "url": f"{base}/cpo/2.1.1/tariffs"},
            {"identifier": "sessions", "url": f"{base}/cpo/2.1.1/sessions"},
            {"identifier": "cdrs", "url": f"{base}/cpo/2.1.1/cdrs"},
            {"identifier": "tokens", "url": f"{base}/cpo/2.1.1/tokens"},
            {"identifier": "commands", "url": f"{base}/cpo/2.1.1/commands"},
        ],
    }


def test_2_1_1_credentials_are_the_flat_object(partner_211, settings):
    # when
    response = client_211(partner_211[1]).get("/ocpi/2.1.1/credentials")

    # then
    body = body_of(response)
    assert_envelope_211(body, "Credentials")
    assert body["data"] == {
        "token": partner_211[1],
        "url": "http://testserver/ocpi/versions",
        "business_details": {"name": settings.OCPI_BUSINESS_NAME},
        "party_id": "CPO",
        "country_code": "NL",
    }


# --- locations --------------------------------------------------------------------------------
def test_a_location_in_each_version(partner_211, partner_221, network):
    # when
    old_body, new_body = both(partner_211, partner_221, "/locations/LOC1")

    # then: each version's rules hold
    validate_envelope(new_body, "Location")
    assert_envelope_211(old_body, "Location")
    old, new = old_body["data"], new_body["data"]
    # the fields 2.1.1 lacks are gone, `type` stands for parking_type
    assert set(new) - set(old) == {"country_code", "party_id", "publish", "state", "parking_type"}
    assert set(old) - set(new) == {"type"}
    assert (old["type"], new["parking_type"]) == ("PARKING_GARAGE", "PARKING_GARAGE")
    for name in (
        "id", "name", "address", "city", "postal_code", "country", "directions", "operator",
        "suboperator", "owner", "time_zone", "opening_times", "charging_when_closed", "images",
    ):  # fmt: skip
        assert old[name] == new[name], name
    # coordinates with exactly 6 decimals; 2.1.1's enums; energy mix impact by `source`
    assert new["coordinates"] == {"latitude": "52.3702157", "longitude": "4.89517"}
    assert old["coordinates"] == {"latitude": "52.370216", "longitude": "4.895170"}
    assert old["related_locations"] == new["related_locations"]
    assert (new["facilities"], old["facilities"]) == (
        ["PARKING_LOT", "CAFE", "WIFI"],
        ["CAFE", "WIFI"],
    )
    assert new["energy_mix"]["environ_impact"] == [{"category": "CARBON_DIOXIDE", "amount": 0}]
    assert old["energy_mix"]["environ_impact"] == [{"source": "CARBON_DIOXIDE", "amount": 0}]
    assert old["energy_mix"]["energy_sources"] == new["energy_mix"]["energy_sources"]
    assert old["last_updated"] == whole(new["last_updated"])
    assert "." in new["last_updated"]  # the data has milliseconds: 2.1.1 drops them

    # then: the EVSEs, field by field
    assert [e["uid"] for e in old["evses"]] == [e["uid"] for e in new["evses"]] == ["E1", "E2"]
    old_evse, new_evse = old["evses"][0], new["evses"][0]
    assert set(old_evse) == set(new_evse)
    for name in (
        "uid", "evse_id", "status", "status_schedule", "floor_level", "physical_reference",
        "directions", "parking_restrictions", "images",
    ):  # fmt: skip
        assert old_evse[name] == new_evse[name], name
    assert old_evse["capabilities"] == [
        "REMOTE_START_STOP_CAPABLE", "RFID_READER", "RESERVABLE", "UNLOCK_CAPABLE",
        "CHARGING_PROFILE_CAPABLE",
    ]  # fmt: skip
    assert len(new_evse["capabilities"]) == 7
    assert old_evse["coordinates"] == {"latitude": "52.370310", "longitude": "4.895301"}
    assert old_evse["last_updated"] == whole(new_evse["last_updated"])

    # then: the connector: voltage/amperage, one tariff_id, no max_electric_power
    (old_connector,) = old_evse["connectors"]
    (new_connector,) = new_evse["connectors"]
    assert new_connector["tariff_ids"] == ["T-PARK", "T-OTHER"]
    assert new_connector["max_electric_power"] == 22000
    assert old_connector == {
        "id": "1",
        "standard": "IEC_62196_T2",
        "format": "SOCKET",
        "power_type": "AC_3_PHASE",
        "voltage": 230,
        "amperage": 32,
        "tariff_id": "T-PARK",
        "terms_and_conditions": "https://cpo.example.com/terms",
        "last_updated": whole(new_connector["last_updated"]),
    }


def test_a_location_list_page_in_each_version(partner_211, partner_221, network):
    # given: two more locations
    LocationFactory(evses=2)
    LocationFactory(evses=0)

    # when
    old = client_211(partner_211[1]).get(f"{V211}/locations?limit=2")
    new = client_221(partner_221[1]).get(f"{V221}/locations?limit=2")

    # then: the same page of the same list, each in its version
    old_body, new_body = body_of(old), body_of(new)
    assert_envelope_211(old_body, "Location", many=True)
    validate_envelope(new_body, "Location", many=True)
    assert [loc["id"] for loc in old_body["data"]] == [loc["id"] for loc in new_body["data"]]
    assert old["X-Total-Count"] == new["X-Total-Count"] == "3"
    assert old["Link"] == f'<http://testserver{V211}/locations?offset=2&limit=2>; rel="next"'


def test_2_1_1_defaults_where_our_data_says_nothing(partner_211):
    # given: no postal code, no parking type; a motorway site; a GB/T connector; AC_2_PHASE
    bare = LocationFactory(ocpi_id="BARE", postal_code="", parking_type="", evses=0)
    evse = EVSEFactory(location=bare, uid="MIXED", connectors=0)
    ConnectorFactory(evse=evse, ocpi_id="1", power_type="AC_2_PHASE")
    ConnectorFactory(evse=evse, ocpi_id="2", standard="GBT_AC")
    only_gbt = EVSEFactory(location=bare, uid="GBT", connectors=0)
    ConnectorFactory(evse=only_gbt, ocpi_id="1", standard="GBT_DC", power_type="DC")
    LocationFactory(ocpi_id="ROAD", parking_type="ALONG_MOTORWAY")
    client = client_211(partner_211[1])

    # when
    bare_body = body_of(client.get(f"{V211}/locations/BARE"))
    road_body = body_of(client.get(f"{V211}/locations/ROAD"))

    # then: valid 2.1.1; an empty postal code, UNKNOWN / OTHER types; only what 2.1.1 can name
    assert_envelope_211(bare_body, "Location")
    assert_envelope_211(road_body, "Location")
    data = bare_body["data"]
    assert (data["postal_code"], data["type"], road_body["data"]["type"]) == (
        "",
        "UNKNOWN",
        "OTHER",
    )
    (mixed,) = data["evses"]  # the EVSE with only a GB/T connector is not shown
    assert [(c["id"], c["power_type"]) for c in mixed["connectors"]] == [("1", "AC_1_PHASE")]


def test_text_is_ascii_in_2_1_1(partner_211, partner_221):
    # given
    LocationFactory(ocpi_id="DUS", name="Königsallee – Café", address="Straße 1", city="Düsseldorf")

    # when
    old_body, new_body = both(partner_211, partner_221, "/locations/DUS")

    # then
    assert (new_body["data"]["name"], new_body["data"]["city"]) == (
        "Königsallee – Café",
        "Düsseldorf",
    )
    old = old_body["data"]
    assert (old["name"], old["address"], old["city"]) == (
        "Konigsallee - Cafe",
        "Strasse 1",
        "Dusseldorf",
    )
    assert_envelope_211(old_body, "Location")


def test_evse_and_connector_objects_in_2_1_1(partner_211, partner_221, network):
    # when
    evse_old, evse_new = both(partner_211, partner_221, "/locations/LOC1/E1")
    conn_old, conn_new = both(partner_211, partner_221, "/locations/loc1/e1/1")

    # then
    assert_envelope_211(evse_old, "EVSE")
    validate_envelope(evse_new, "EVSE")
    assert_envelope_211(conn_old, "Connector")
    validate_envelope(conn_new, "Connector")
    assert evse_old["data"]["uid"] == evse_new["data"]["uid"] == "E1"
    assert conn_old["data"]["voltage"] == conn_new["data"]["max_voltage"] == 230


def test_unpublished_locations_are_not_shown_in_2_1_1(partner_211, partner_221):
    # given: a location shown only to some drivers (2.1.1 cannot say so)
    LocationFactory(
        ocpi_id="PRIVATE", publish=False, publish_allowed_to=[{"uid": "04A1B2C3", "type": "RFID"}]
    )
    old, new = client_211(partner_211[1]), client_221(partner_221[1])

    # when / then: 2.2.1 lists it with its restriction; 2.1.1 knows nothing of it
    assert [loc["id"] for loc in body_of(new.get(f"{V221}/locations"))["data"]] == ["PRIVATE"]
    assert body_of(old.get(f"{V211}/locations"))["data"] == []
    for path in ("PRIVATE", "PRIVATE/" + EVSE.objects.get().uid):
        response = old.get(f"{V211}/locations/{path}")
        assert response.status_code == 404
        body = body_of(response)
        assert body["status_code"] == 2003
        assert_envelope_211(body)


# --- tariffs ------------------------------------------------------------------------------------
def test_a_tariff_in_each_version(partner_211, partner_221, network):
    # given: T-PARK gets alt text, an energy mix, min/max prices, validity and an element
    # restricted on current (2.1.1 has no such restriction)
    _, _, tariff = network
    tariff.tariff_alt_text = [{"language": "en", "text": "Parking costs extra."}]
    tariff.min_price_excl_vat = Decimal("0.50")
    tariff.energy_mix = {"is_green_energy": True}
    tariff.save()
    TariffElementFactory(tariff=tariff, full=True, position=0)

    # when
    old_body, new_body = both(partner_211, partner_221, "/tariffs")

    # then
    assert_envelope_211(old_body, "Tariff", many=True)
    validate_envelope(new_body, "Tariff", many=True)
    (old,), (new,) = old_body["data"], new_body["data"]
    assert set(new) - set(old) == {"country_code", "party_id", "type", "min_price"}
    assert (old["id"], old["currency"]) == ("T-PARK", "EUR")
    assert old["tariff_alt_text"] == new["tariff_alt_text"]
    assert old["energy_mix"] == {"is_green_energy": True}
    assert old["last_updated"] == whole(new["last_updated"])
    # the current-restricted element is left out; components lose their vat
    assert len(new["elements"]) == 3
    assert old["elements"] == [
        {
            "price_components": [
                {"type": "FLAT", "price": 1, "step_size": 1},
                {"type": "ENERGY", "price": Decimal("0.3"), "step_size": 1},
            ]
        },
        {"price_components": [{"type": "PARKING_TIME", "price": 6, "step_size": 600}]},
    ]
    assert new["elements"][1]["price_components"][0]["vat"] == Decimal("21")


# --- sessions -----------------------------------------------------------------------------------
def test_a_session_in_each_version(make_partner, partner_221, network):
    # given: a finished remote-started charge of the 2.1.1 partner's driver
    partner, token = make_partner("Old eMSP", version="2.1.1")
    _, evse, _ = network
    session = stop(charge(partner, evse))

    # when: the partner reads it in 2.1.1; the same session as 2.2.1 has it
    response = client_211(token).get(f"{V211}/sessions?date_from=2025-01-01T00:00:00Z")
    new = client_221(token).get(f"{V221}/sessions?date_from=2025-01-01T00:00:00Z")

    # then
    old_body, new_body = body_of(response), body_of(new)
    assert_envelope_211(old_body, "Session", many=True)
    validate_envelope(new_body, "Session", many=True)
    (old,), (new,) = old_body["data"], new_body["data"]
    assert old["id"] == new["id"] == session.ocpi_id
    assert old["start_datetime"] == whole(new["start_date_time"]) == "2025-03-03T07:50:00Z"
    assert new["start_date_time"] == "2025-03-03T07:50:00.250Z"
    assert old["end_datetime"] == whole(new["end_date_time"])
    assert old["kwh"] == new["kwh"] == Decimal("5.4")
    assert old["auth_id"] == new["cdr_token"]["contract_id"] == "DE-EMS-C00000001"
    assert (old["auth_method"], new["auth_method"]) == ("AUTH_REQUEST", "COMMAND")
    assert "authorization_reference" in new
    assert "authorization_reference" not in old
    assert old["total_cost"] == new["total_cost"]["excl_vat"]
    assert (old["status"], old["currency"]) == ("COMPLETED", "EUR")
    # the location with only the charged EVSE and connector
    location = old["location"]
    assert (location["id"], new["location_id"]) == ("LOC1", "LOC1")
    assert [e["uid"] for e in location["evses"]] == ["E1"]
    assert [c["id"] for c in location["evses"][0]["connectors"]] == ["1"]
    # charging periods without tariff_id, and only 2.1.1's dimensions
    assert [p["tariff_id"] for p in new["charging_periods"]] == ["T-PARK", "T-PARK"]
    assert old["charging_periods"] == [
        {
            "start_date_time": "2025-03-03T07:50:00Z",
            "dimensions": [
                {"type": "ENERGY", "volume": Decimal("5.4")},
                {"type": "TIME", "volume": Decimal("0.6")},
            ],
        },
        {
            "start_date_time": "2025-03-03T08:26:00Z",
            "dimensions": [
                {"type": "ENERGY", "volume": 0},
                {"type": "PARKING_TIME", "volume": Decimal("0.2")},
            ],
        },
    ]


def test_a_sessions_list_without_date_from_is_2001_in_2_1_1(partner_211):
    # when
    response = client_211(partner_211[1]).get(f"{V211}/sessions")

    # then
    assert response.status_code == 400
    body = body_of(response)
    assert body["status_code"] == 2001
    assert_envelope_211(body)


def test_2_1_1_has_no_charging_preferences(partner_211):
    # when
    response = client_211(partner_211[1]).put(
        f"{V211}/sessions/S1/charging_preferences", {"profile_type": "FAST"}, format="json"
    )

    # then
    assert response.status_code == 404
    assert body_of(response)["status_code"] == 2000


# --- CDRs ---------------------------------------------------------------------------------------
def test_a_cdr_in_each_version(make_partner, network):
    # given: the CDR of a finished charge
    partner, token = make_partner("Old eMSP", version="2.1.1")
    location, evse, _ = network
    cdr = cdr_create_for_session(session=stop(charge(partner, evse)))

    # when
    old_body = body_of(client_211(token).get(f"{V211}/cdrs"))
    new_body = body_of(client_221(token).get(f"{V221}/cdrs"))

    # then
    assert_envelope_211(old_body, "CDR", many=True)
    validate_envelope(new_body, "CDR", many=True)
    (old,), (new,) = old_body["data"], new_body["data"]
    assert old["id"] == new["id"] == cdr.ocpi_id
    assert old["start_date_time"] == whole(new["start_date_time"])
    assert old["stop_date_time"] == whole(new["end_date_time"])
    assert old["auth_id"] == new["cdr_token"]["contract_id"]
    assert old["auth_method"] == "AUTH_REQUEST"
    assert old["total_cost"] == new["total_cost"]["excl_vat"] == cdr.total_cost_excl_vat
    for name in ("currency", "total_energy", "total_time", "total_parking_time", "remark"):
        assert old[name] == new[name], name
    assert not set(old) & {"cdr_token", "cdr_location", "country_code", "session_id"}
    # the tariffs as 2.1.1 has them, the periods without session-only dimensions
    assert [t["id"] for t in old["tariffs"]] == ["T-PARK"]
    assert "vat" not in old["tariffs"][0]["elements"][0]["price_components"][0]
    assert [[d["type"] for d in p["dimensions"]] for p in old["charging_periods"]] == [
        ["ENERGY", "TIME"],
        ["ENERGY", "PARKING_TIME"],
    ]
    # the location of the charge: the frozen CdrLocation with its one EVSE and connector
    assert old["location"] == {
        "id": "LOC1",
        "type": "PARKING_GARAGE",
        "name": "Parking LOC1",
        "address": location.address,
        "city": "Amsterdam",
        "postal_code": "1015 CJ",
        "country": "NLD",
        "coordinates": {"latitude": "52.370216", "longitude": "4.895170"},
        "evses": [
            {
                "uid": "E1",
                "evse_id": evse.evse_id,
                "status": "UNKNOWN",
                "connectors": [
                    {
                        "id": "1",
                        "standard": "IEC_62196_T2",
                        "format": "SOCKET",
                        "power_type": "AC_3_PHASE",
                        "voltage": 230,
                        "amperage": 32,
                        "tariff_id": "T-PARK",
                        "last_updated": old["last_updated"],
                    }
                ],
                "last_updated": old["last_updated"],
            }
        ],
        "time_zone": "Europe/Amsterdam",
        "last_updated": old["last_updated"],
    }


def test_credit_cdrs_are_not_shown_in_2_1_1(make_partner, network):
    # given: a CDR and its credit
    partner, token = make_partner("Old eMSP", version="2.1.1")
    _, evse, _ = network
    cdr = cdr_create_for_session(session=stop(charge(partner, evse)))
    cdr_credit(cdr=cdr, reason="Wrong tariff")

    # when
    old = body_of(client_211(token).get(f"{V211}/cdrs"))
    new = body_of(client_221(token).get(f"{V221}/cdrs"))

    # then
    assert [c["id"] for c in old["data"]] == [cdr.ocpi_id]
    assert [c["id"] for c in new["data"]] == [cdr.ocpi_id, f"{cdr.ocpi_id}-C"]


# --- tokens -------------------------------------------------------------------------------------
def test_a_token_in_each_version(partner_211):
    # given: a token the partner pushed
    partner, token = partner_211
    Token.objects.create(
        partner=partner, country_code="DE", party_id="EMS", uid="CARD1", type="RFID",
        contract_id="DE-EMS-C1", visual_number="1234", issuer="Old eMSP", valid=True,
        whitelist="ALLOWED", language="de", last_updated="2025-03-01T10:00:00.500Z",
    )  # fmt: skip

    # when
    old = body_of(client_211(token).get(f"{V211}/tokens/DE/EMS/CARD1"))
    new = body_of(client_221(token).get(f"{V221}/tokens/DE/EMS/CARD1"))

    # then
    assert_envelope_211(old, "Token")
    validate_envelope(new, "Token")
    assert old["data"] == {
        "uid": "CARD1",
        "type": "RFID",
        "auth_id": "DE-EMS-C1",
        "visual_number": "1234",
        "issuer": "Old eMSP",
        "valid": True,
        "whitelist": "ALLOWED",
        "language": "de",
        "last_updated": "2025-03-01T10:00:00Z",
    }
    assert new["data"]["contract_id"] == "DE-EMS-C1"


# --- the rules themselves -------------------------------------------------------------------------
def test_the_2_1_1_rules_reject_2_2_1_objects(partner_221, network):
    # given: a 2.2.1 Location
    new = body_of(client_221(partner_221[1]).get(f"{V221}/locations/LOC1"))["data"]

    # when
    errors = errors_211(new, "Location")

    # then: what makes it 2.2.1 is named
    for expected in (
        "Location.country_code: not a 2.1.1 field",
        "Location.publish: not a 2.1.1 field",
        "Location.type: required",
        "Location.coordinates.latitude: '52.3702157' is not a latitude with 6 decimals",
        "Location.facilities[0]: 'PARKING_LOT' is not a 2.1.1 Facility",
        "Location.evses[0].connectors[0].voltage: required",
        "Location.evses[0].connectors[0].max_electric_power: not a 2.1.1 field",
    ):
        assert expected in errors
    assert any("is not a 2.1.1 DateTime" in e for e in errors)
    with pytest.raises(AssertionError):
        assert_211(new, "Location")


# --- cost and access ------------------------------------------------------------------------------
def test_2_1_1_list_pages_cost_a_fixed_number_of_queries(
    make_partner, network, django_assert_max_num_queries
):
    # given: twenty more locations with two EVSEs each, and a finished charge with its CDR
    partner, token = make_partner("Old eMSP", version="2.1.1")
    for _ in range(20):
        LocationFactory(evses=2)
    _, evse, _ = network
    cdr_create_for_session(session=stop(charge(partner, evse)))
    client = client_211(token)

    # when / then: each page costs the same, whatever it holds
    for path in (
        "/locations",
        "/tariffs",
        "/sessions?date_from=2025-01-01T00:00:00Z",
        "/cdrs",
    ):
        with django_assert_max_num_queries(8):
            response = client.get(f"{V211}{path}")
        assert response.status_code == 200, path


def test_token_a_opens_no_2_1_1_module(make_partner):
    # given: a partner that has not registered yet
    _, token_a = partner_create(name="Pending eMSP")

    # when
    details = client_211(token_a).get("/ocpi/2.1.1")
    locations = client_211(token_a).get(f"{V211}/locations")

    # then
    assert details.status_code == 200
    assert locations.status_code == 401
    body = body_of(locations)
    assert body["status_code"] == 2000
    assert_envelope_211(body)
