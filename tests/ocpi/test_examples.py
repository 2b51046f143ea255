"""The specification's own examples (examples-2.2.1) load into our models and come back out equal.

Shapes of the files, by name (test_every_location_and_tariff_example_is_used pins the list):
- location_example*.json: a whole Location.
- location_hours_*.json: a bare Hours object; location_regularhours_example.json wraps one as
  {"opening_times": ...}; location_energymix_*.json wrap an EnergyMix as {"energy_mix": ...}.
  They are set on location_example.json (and a tariff) to go through the models.
- location_patch_example_*.json: PATCH bodies at Location, EVSE or Connector level; merged
  into location_example.json at that level.
- tariff_*.json and tariffrestriction_example_*.json: whole Tariffs.
- Broken (examples-2.2.1/SOURCE.md): location_put_example_add_evse.json (an EVSE whose connector
  lacks power_type, max_voltage, max_amperage and last_updated, with a numeric
  physical_reference) and tariff_put_example.json (no last_updated): checked to fail, for
  exactly those reasons.

"Equal" is after normalising: DateTimes compared as instants (the examples write "…Z", we may add
milliseconds), numbers compared as decimals (0.50 == 0.5000), null treated as absent. One known
deviation: tariff_5_free_of_charge.json has a FLAT component with step_size 0, which the schema
allows but our model does not (step_size >= 1; it is meaningless for FLAT, and the spec advises
1): the importer stores 1, and the comparison expects 1 there (_expected_tariff).
"""

import copy
import re
from datetime import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from ocpi import jsonutil
from ocpi.datetimes import parse_datetime
from ocpi.modules.locations.serializers import location_to_ocpi
from ocpi.modules.tariffs.serializers import tariff_to_ocpi
from stations.models import EVSE, Connector, Location, PriceComponent, Tariff, TariffElement
from stations.ocpi_import import location_from_ocpi, tariff_from_ocpi
from tests.contract import contract_errors, examples_dir, validate_ocpi, validate_response

LOCATIONS = "/ocpi/cpo/2.2.1/locations"
TARIFFS = "/ocpi/cpo/2.2.1/tariffs"
# The parties owning the examples, hosted as our CPO roles for these tests.
EXAMPLE_ROLES = "BE:BEC:BeCharged;SE:EVC:EVC;NL:ALF:Alfen;NL:ALL:Allego;DE:ALL:Allego"

EXAMPLES = examples_dir()
BROKEN = ("location_put_example_add_evse.json", "tariff_put_example.json")
LOCATION_FILES = sorted(p.name for p in EXAMPLES.glob("location_example*.json"))
TARIFF_FILES = sorted(
    p.name for p in EXAMPLES.glob("tariff*.json") if p.name not in BROKEN
)  # includes tariffrestriction_example_*.json: whole Tariffs too
HOURS_FILES = {
    **{p.name: None for p in EXAMPLES.glob("location_hours_*.json")},
    "location_regularhours_example.json": "opening_times",
}  # file -> wrapper key
ENERGY_MIX_FILES = sorted(p.name for p in EXAMPLES.glob("location_energymix_*.json"))
PATCH_FILES = {
    "location_patch_example_location.json": ("LocationPatch", "location"),
    "location_patch_example_remove_evse.json": ("EVSEPatch", "evse"),
    "location_patch_example_status.json": ("EVSEPatch", "evse"),
    "location_patch_example_tariff.json": ("ConnectorPatch", "connector"),
}
PRIVATE = {"location_example_uc3_destination_charger_not_published.json"}
DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


def _load(name: str):
    return jsonutil.loads((EXAMPLES / name).read_bytes())


def _normalise(value):
    if isinstance(value, dict):
        return {key: _normalise(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_normalise(item) for item in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, datetime | str) and (
        isinstance(value, datetime) or DATETIME_RE.match(value)
    ):
        return parse_datetime(value) if isinstance(value, str) else value
    return value


def _expected_tariff(example: dict) -> dict:
    """The example as we serve it back: FLAT step_size 0 becomes 1 (see the module docstring)."""
    expected = copy.deepcopy(example)
    for element in expected["elements"]:
        for component in element["price_components"]:
            if component["type"] == "FLAT" and component["step_size"] == 0:
                component["step_size"] = 1
    return _normalise(expected)


def _served(obj) -> object:
    """As a partner receives it, normalised."""
    return _normalise(jsonutil.loads(jsonutil.dumps(obj)))


def _location_out(location: Location) -> dict:
    location = Location.objects.prefetch_related("evses__connectors").get(pk=location.pk)
    return location_to_ocpi(location)


def _tariff_out(tariff: Tariff) -> dict:
    tariff = Tariff.objects.prefetch_related("elements__price_components").get(pk=tariff.pk)
    return tariff_to_ocpi(tariff)


def test_every_location_and_tariff_example_is_used():
    # given
    present = {p.name for p in EXAMPLES.glob("location*.json")} | {
        p.name for p in EXAMPLES.glob("tariff*.json")
    }
    # then: a new or renamed example file makes this fail until it is classified
    used = (
        set(LOCATION_FILES)
        | set(TARIFF_FILES)
        | set(HOURS_FILES)
        | set(ENERGY_MIX_FILES)
        | set(PATCH_FILES)
        | set(BROKEN)
    )
    assert present == used
    assert len(LOCATION_FILES) == 6
    assert len(TARIFF_FILES) == 19


# --- whole objects ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", LOCATION_FILES)
def test_location_example_round_trips_through_the_models(db, name):
    # given
    example = _load(name)
    validate_ocpi(example, "Location", lenient_datetime=True)
    # when
    location = location_from_ocpi(example, keep_last_updated=True)
    out = _location_out(location)
    # then
    validate_ocpi(out, "Location")
    assert _served(out) == _normalise(example)


@pytest.mark.parametrize("name", TARIFF_FILES)
def test_tariff_example_round_trips_through_the_models(db, name):
    # given
    example = _load(name)
    validate_ocpi(example, "Tariff", lenient_datetime=True)
    # when
    tariff = tariff_from_ocpi(example, keep_last_updated=True)
    out = _tariff_out(tariff)
    # then
    validate_ocpi(out, "Tariff")
    assert _served(out) == _expected_tariff(example)


@pytest.mark.parametrize("name", LOCATION_FILES)
def test_location_example_is_served_as_given(ocpi_client, settings, name):
    # given
    settings.OCPI_EXTRA_ROLES = EXAMPLE_ROLES
    example = _load(name)
    location_from_ocpi(example, keep_last_updated=True)
    # when
    response = ocpi_client.get(LOCATIONS)
    detail = ocpi_client.get(f"{LOCATIONS}/{example['id'].upper()}")
    # then
    body = jsonutil.loads(response.content)
    validate_response(body, "locations/sender-interface", "/locations", "get", 200)
    if name in PRIVATE:
        # publish=false without publish_allowed_to: not for roaming (PROTOCOL.md §4.1)
        assert body["data"] == []
        assert detail.status_code == 404
        assert jsonutil.loads(detail.content)["status_code"] == 2003
        return
    assert _normalise(body["data"]) == [_normalise(example)]
    assert _normalise(jsonutil.loads(detail.content)["data"]) == _normalise(example)
    for evse in example.get("evses", []):
        evse_path = f"{LOCATIONS}/{example['id']}/{evse['uid']}"
        assert _normalise(jsonutil.loads(ocpi_client.get(evse_path).content)["data"]) == (
            _normalise(evse)
        )
        for connector in evse["connectors"]:
            response = ocpi_client.get(f"{evse_path}/{connector['id']}")
            assert _normalise(jsonutil.loads(response.content)["data"]) == _normalise(connector)


@pytest.mark.parametrize("name", TARIFF_FILES)
def test_tariff_example_is_served_as_given(ocpi_client, settings, name):
    # given
    settings.OCPI_EXTRA_ROLES = EXAMPLE_ROLES
    example = _load(name)
    tariff_from_ocpi(example, keep_last_updated=True)
    # when
    response = ocpi_client.get(TARIFFS)
    # then
    body = jsonutil.loads(response.content)
    validate_response(body, "tariffs/sender-interface", "/tariffs", "get", 200)
    assert _normalise(body["data"]) == [_expected_tariff(example)]


# --- parts and wrappers -----------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(HOURS_FILES))
def test_hours_example_round_trips_as_opening_times(db, name):
    # given
    hours = _load(name)
    if HOURS_FILES[name]:
        hours = hours[HOURS_FILES[name]]
    validate_ocpi(hours, "Hours")
    example = _load("location_example.json") | {"opening_times": hours}
    # when
    out = _location_out(location_from_ocpi(example, keep_last_updated=True))
    # then
    validate_ocpi(out, "Location")
    assert _served(out["opening_times"]) == _normalise(hours)
    assert _served(out) == _normalise(example)


@pytest.mark.parametrize("name", ENERGY_MIX_FILES)
def test_energy_mix_example_round_trips_on_location_and_tariff(db, name):
    # given
    energy_mix = _load(name)["energy_mix"]
    validate_ocpi(energy_mix, "EnergyMix")
    location_json = _load("location_example.json") | {"energy_mix": energy_mix}
    tariff_json = _load("tariff_1_simple_2hour.json") | {"energy_mix": energy_mix}
    # when
    location = _location_out(location_from_ocpi(location_json, keep_last_updated=True))
    tariff = _tariff_out(tariff_from_ocpi(tariff_json, keep_last_updated=True))
    # then
    validate_ocpi(location, "Location")
    validate_ocpi(tariff, "Tariff")
    assert _served(location) == _normalise(location_json)
    assert _served(tariff) == _expected_tariff(tariff_json)


@pytest.mark.parametrize("name", sorted(PATCH_FILES))
def test_patch_example_validates_and_its_values_fit_the_models(db, name):
    # given
    patch = _load(name)
    schema, level = PATCH_FILES[name]
    validate_ocpi(patch, schema, lenient_datetime=True)
    example = _load("location_example.json")
    target = {
        "location": example,
        "evse": example["evses"][0],
        "connector": example["evses"][0]["connectors"][0],
    }[level]
    target.update(patch)  # PATCH: a shallow merge at its level (PROTOCOL.md §1.11)
    # when
    out = _location_out(location_from_ocpi(example, keep_last_updated=True))
    # then
    validate_ocpi(out, "Location")
    assert _served(out) == _normalise(example)


def test_broken_examples_fail_the_schema_for_the_documented_reasons():
    # when
    evse_errors = contract_errors(
        _load("location_put_example_add_evse.json"), "EVSE", lenient_datetime=True
    )
    tariff_errors = contract_errors(
        _load("tariff_put_example.json"), "Tariff", lenient_datetime=True
    )
    # then
    assert evse_errors == [
        "$.connectors[0]: 'power_type' is a required property",
        "$.connectors[0]: 'max_voltage' is a required property",
        "$.connectors[0]: 'max_amperage' is a required property",
        "$.connectors[0]: 'last_updated' is a required property",
        "$.physical_reference: 3 is not of type 'string'",
    ]
    assert tariff_errors == ["$: 'last_updated' is a required property"]


def test_broken_evse_example_is_refused_by_the_importer_and_nothing_is_kept(db):
    # given
    example = _load("location_example.json")
    example["evses"].append(_load("location_put_example_add_evse.json"))
    # when
    with pytest.raises(ValidationError, match="power_type is required"):
        location_from_ocpi(example)
    # then: the Location and the EVSEs before the broken one were rolled back too
    assert not Location.objects.exists()
    assert not EVSE.objects.exists()


# --- the importer as a feature ----------------------------------------------------------------
def test_reimporting_unchanged_data_changes_nothing(db):
    # given
    example = _load("location_example.json")
    location = location_from_ocpi(example)
    stamps = _stamps()
    # when
    again = location_from_ocpi(example)
    # then
    assert again.pk == location.pk
    assert _stamps() == stamps
    assert (EVSE.objects.count(), Connector.objects.count()) == (2, 3)


def _stamps() -> list:
    return [
        list(Location.objects.values_list("pk", "last_updated")),
        list(EVSE.objects.order_by("pk").values_list("pk", "last_updated")),
        list(Connector.objects.order_by("pk").values_list("pk", "last_updated")),
    ]


def test_reimport_matches_ids_case_insensitively_and_bumps_only_what_changed(db):
    # given
    example = _load("location_example.json")
    location_from_ocpi(example)
    [location_before], evses_before, connectors_before = _stamps()
    changed = copy.deepcopy(example)
    changed["id"] = "loc1"
    changed["evses"][1]["uid"] = "3257"
    changed["evses"][1]["connectors"][0]["max_amperage"] = 32
    # when
    location_from_ocpi(changed)
    # then
    [location_after], evses_after, connectors_after = _stamps()
    assert Location.objects.get().ocpi_id == "LOC1"  # the id keeps its original spelling
    assert location_after[1] > location_before[1]
    assert evses_after[0] == evses_before[0]  # untouched EVSE keeps its last_updated
    assert evses_after[1][1] > evses_before[1][1]
    assert connectors_after[:2] == connectors_before[:2]
    assert connectors_after[2][1] > connectors_before[2][1]
    assert Connector.objects.get(pk=connectors_after[2][0]).max_amperage == 32


def test_reimporting_unchanged_tariff_keeps_its_elements(db):
    # given
    example = _load("tariff_4_complex.json")
    tariff = tariff_from_ocpi(example)
    elements = list(TariffElement.objects.values_list("pk", flat=True))
    # when
    again = tariff_from_ocpi(example)
    # then
    assert again.pk == tariff.pk
    assert again.last_updated == tariff.last_updated
    assert list(TariffElement.objects.values_list("pk", flat=True)) == elements


def test_reimporting_changed_elements_replaces_them_in_order(db):
    # given
    example = _load("tariff_4_complex.json")
    tariff = tariff_from_ocpi(example)
    changed = copy.deepcopy(example)
    changed["elements"].reverse()
    # when
    again = tariff_from_ocpi(changed)
    # then
    assert again.last_updated > tariff.last_updated
    assert TariffElement.objects.count() == len(example["elements"])
    assert PriceComponent.objects.count() == 6
    assert _served(_tariff_out(again))["elements"] == _normalise(changed["elements"])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("address"), "location.address is required"),
        (lambda d: d["coordinates"].update(latitude="51.0"), "latitude"),
        (lambda d: d.update(country="BE"), "alpha-3"),
        (lambda d: d["evses"][0].update(status="FREE"), "FREE"),
        (lambda d: d["evses"][0]["connectors"][0].update(max_voltage=Decimal("1.5")), "integer"),
        (lambda d: d["evses"][0].update(connectors=[]), "at least one connector"),
        (lambda d: d.update(evses={"uid": "1"}), "list of objects"),
    ],
)
def test_invalid_location_data_is_refused_whole(db, mutate, message):
    # given
    example = _load("location_example.json")
    mutate(example)
    # when
    with pytest.raises(ValidationError, match=message):
        location_from_ocpi(example)
    # then
    assert not Location.objects.exists()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(elements=[]), "at least one element"),
        (lambda d: d["elements"][0].update(price_components=[]), "at least one component"),
        (lambda d: d["elements"][0]["price_components"][0].update(price="abc"), "number"),
        (lambda d: d["elements"][0]["price_components"][0].update(price=True), "number"),
        (lambda d: d.update(end_date_time="next year"), "date-time"),
        (lambda d: d.update(currency="euro"), "ISO 4217"),
    ],
)
def test_invalid_tariff_data_is_refused_whole(db, mutate, message):
    # given
    example = _load("tariff_4_complex.json")
    mutate(example)
    # when
    with pytest.raises(ValidationError, match=message):
        tariff_from_ocpi(example)
    # then
    assert not Tariff.objects.exists()
    assert not TariffElement.objects.exists()


def test_flat_step_size_zero_is_stored_as_one_but_zero_elsewhere_is_refused(db):
    # given
    free = _load("tariff_5_free_of_charge.json")
    energy = copy.deepcopy(free)
    energy["id"] = "ENERGY-0"
    energy["elements"][0]["price_components"][0]["type"] = "ENERGY"
    # when
    tariff = tariff_from_ocpi(free)
    # then
    assert PriceComponent.objects.get(element__tariff=tariff).step_size == 1
    with pytest.raises(ValidationError, match="step_size"):
        tariff_from_ocpi(energy)
