"""The network models keep their invariants: validation, last_updated, REMOVED, CiString ids."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from stations import signals
from stations.models import EVSE, Connector, Location, PriceComponent, Tariff, TariffElement

pytestmark = pytest.mark.django_db

OLD = "2020-01-01T00:00:00Z"


def make_location(ocpi_id="LOC1", **fields) -> Location:
    values = {
        "country_code": "NL",
        "party_id": "CPO",
        "ocpi_id": ocpi_id,
        "name": "Stationsplein",
        "address": "Stationsplein 1",
        "city": "Utrecht",
        "postal_code": "3511 ED",
        "country": "NLD",
        "latitude": "52.089447",
        "longitude": "5.110250",
        "time_zone": "Europe/Amsterdam",
        **fields,
    }
    return Location.objects.create(**values)


def make_evse(location, uid="EVSE1", **fields) -> EVSE:
    return EVSE.objects.create(location=location, uid=uid, evse_id=f"NL*CPO*E{uid}", **fields)


def make_connector(evse, ocpi_id="1", **fields) -> Connector:
    values = {
        "standard": "IEC_62196_T2",
        "format": "SOCKET",
        "power_type": "AC_3_PHASE",
        "max_voltage": 230,
        "max_amperage": 32,
        "tariff_ids": ["T1"],
        **fields,
    }
    return Connector.objects.create(evse=evse, ocpi_id=ocpi_id, **values)


def make_tariff(ocpi_id="T1") -> Tariff:
    tariff = Tariff.objects.create(
        country_code="NL", party_id="CPO", ocpi_id=ocpi_id, currency="EUR"
    )
    element = TariffElement.objects.create(tariff=tariff, position=0)
    PriceComponent.objects.create(element=element, type="ENERGY", price=Decimal("0.35"), vat=21)
    return Tariff.objects.get(pk=tariff.pk)


def age(*objects) -> None:
    """Put last_updated far in the past (behind the models' back) so a bump is visible."""
    for obj in objects:
        type(obj).objects.filter(pk=obj.pk).update(last_updated=OLD)


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


@pytest.fixture
def network():
    location = make_location()
    evse = make_evse(location)
    connector = make_connector(evse)
    return location, evse, connector


@pytest.fixture
def sent():
    """Every network signal sent, as (name, kwargs)."""
    received = []
    receivers = {}
    for name in ("location_changed", "evse_changed", "connector_changed", "tariff_changed"):

        def receiver(sender, _name=name, **kwargs):
            received.append((_name, kwargs))

        receivers[name] = receiver
        getattr(signals, name).connect(receiver, weak=False)
    yield received
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


# --- validation --------------------------------------------------------------------------------

LOCATION_INVALID = [
    ("name", "x" * 256),
    ("address", "x" * 256),
    ("city", "x" * 46),
    ("postal_code", "12345678901"),
    ("state", "x" * 46),
    ("ocpi_id", "x" * 37),
    ("ocpi_id", "LOC\u00e91"),  # CiString is ASCII only
    ("country_code", "XX"),
    ("party_id", "CP"),
    ("country", "NL"),  # alpha-2 instead of alpha-3
    ("country", "nld"),
    ("country", "XYZ"),
    ("latitude", "52.37"),  # fewer than 5 decimals
    ("latitude", "52.123456789"),  # more than 7
    ("latitude", "152.123456"),
    ("latitude", "52,123456"),
    ("latitude", "95.123456"),  # outside -90..90
    ("longitude", "4.89"),
    ("longitude", "1234.567890"),
    ("longitude", "190.123456"),
    ("parking_type", "CAR_PARK"),
    ("time_zone", "Mars/Olympus_Mons"),
    ("opening_times", {"twentyfourseven": "yes"}),
    ("opening_times", {"twentyfourseven": False}),  # regular_hours required then
    ("opening_times", "24/7"),
    ("opening_times", {"twentyfourseven": False, "regular_hours": [
        {"weekday": 8, "period_begin": "08:00", "period_end": "20:00"}]}),
    ("opening_times", {"twentyfourseven": False, "regular_hours": [
        {"weekday": 1, "period_begin": "8:00", "period_end": "20:00"}]}),
    ("opening_times", {"twentyfourseven": False, "regular_hours": [
        {"weekday": 1, "period_begin": "20:00", "period_end": "08:00"}]}),
    ("opening_times", {"twentyfourseven": True, "exceptional_closings": [
        {"period_begin": "25-12-2025", "period_end": "2025-12-26T00:00:00Z"}]}),
    ("images", {"url": "https://example.com/a.jpg"}),  # not a list
    ("images", [{"category": "LOCATION", "type": "jpeg"}]),  # no url
    ("images", [{"url": "https://example.com/a.jpg", "category": "SELFIE", "type": "jpeg"}]),
    ("images", [{"url": "https://example.com/a.jpg", "category": "LOCATION", "type": "jpeg",
                 "width": "big"}]),
    ("images", [{"url": "https://example.com/a.jpg", "category": "LOCATION", "type": "jpeg2"}]),
    ("energy_mix", {"energy_sources": []}),  # is_green_energy required
    ("energy_mix", {"is_green_energy": True, "energy_sources": [
        {"source": "WIND", "percentage": 150}]}),
    ("energy_mix", {"is_green_energy": True, "energy_sources": [
        {"source": "PEAT", "percentage": 10}]}),
    ("energy_mix", {"is_green_energy": True, "environ_impact": [
        {"category": "CARBON_DIOXIDE"}]}),
    ("energy_mix", {"is_green_energy": True, "supplier_name": "x" * 65}),
    ("directions", [{"language": "eng", "text": "Left"}]),
    ("directions", [{"language": "en"}]),
    ("directions", "Turn left"),
    ("facilities", ["HOTEL", "SPA"]),
    ("publish_allowed_to", [{}]),
    ("publish_allowed_to", [{"uid": "0123"}]),  # uid requires type
    ("publish_allowed_to", [{"visual_number": "123"}]),  # requires issuer
    ("related_locations", [{"latitude": "52.1", "longitude": "5.123456"}]),
    ("operator", {"website": "https://example.com"}),  # name required
    ("operator", {"name": "x" * 101}),
]  # fmt: skip


@pytest.mark.parametrize(("field", "value"), LOCATION_INVALID)
def test_location_rejects_invalid_values(network, field, value):
    # given a valid location
    location = fresh(network[0])
    before = Location.objects.values().get(pk=location.pk)

    # when an invalid value is saved
    setattr(location, field, value)
    with pytest.raises(ValidationError) as exc:
        location.save()

    # then the error names the field and nothing changed
    assert field in exc.value.message_dict
    assert Location.objects.values().get(pk=location.pk) == before


EVSE_INVALID = [
    ("uid", "x" * 37),
    ("evse_id", "x" * 49),
    ("status", "BROKEN"),
    ("status", "available"),
    ("floor_level", "12345"),
    ("physical_reference", "x" * 17),
    ("capabilities", ["RFID_READER", "TELEPORT"]),
    ("capabilities", "RFID_READER"),
    ("parking_restrictions", ["TRUCKS"]),
    ("status_schedule", [{"period_begin": "2025-01-01T00:00:00Z", "status": "OPEN"}]),
    ("status_schedule", [{"status": "AVAILABLE"}]),
    ("latitude", "52.1"),
    ("images", [{"url": "https://example.com/a.png", "category": "CHARGER"}]),  # no type
]


@pytest.mark.parametrize(("field", "value"), EVSE_INVALID)
def test_evse_rejects_invalid_values(network, field, value):
    # given a valid EVSE
    evse = fresh(network[1])
    before = EVSE.objects.values().get(pk=evse.pk)

    # when an invalid value is saved
    setattr(evse, field, value)
    with pytest.raises(ValidationError) as exc:
        evse.save()

    # then the error names the field and nothing changed
    assert field in exc.value.message_dict
    assert EVSE.objects.values().get(pk=evse.pk) == before


def test_evse_needs_both_coordinates_or_none(network):
    # given an EVSE
    evse = fresh(network[1])

    # when only a latitude is set
    evse.latitude = "52.089447"
    # then it is rejected
    with pytest.raises(ValidationError, match="both latitude and longitude"):
        evse.save()


CONNECTOR_INVALID = [
    ("ocpi_id", "x" * 37),
    ("standard", "TYPE2"),
    ("format", "PLUG"),
    ("power_type", "AC"),
    ("max_voltage", -230),
    ("tariff_ids", "T1"),
    ("tariff_ids", ["x" * 37]),
    ("tariff_ids", [""]),
    ("terms_and_conditions", "not a url"),
]


@pytest.mark.parametrize(("field", "value"), CONNECTOR_INVALID)
def test_connector_rejects_invalid_values(network, field, value):
    # given a valid connector
    connector = fresh(network[2])
    before = Connector.objects.values().get(pk=connector.pk)

    # when an invalid value is saved
    setattr(connector, field, value)
    with pytest.raises(ValidationError) as exc:
        connector.save()

    # then the error names the field and nothing changed
    assert field in exc.value.message_dict
    assert Connector.objects.values().get(pk=connector.pk) == before


TARIFF_INVALID = [
    ("currency", "euro"),
    ("type", "CHEAP"),
    ("tariff_alt_text", {"language": "en", "text": "x"}),
    ("tariff_alt_text", [{"language": "en", "text": "x" * 513}]),
    ("tariff_alt_url", "nope"),
    ("energy_mix", {"is_green_energy": "yes"}),
]


@pytest.mark.parametrize(("field", "value"), TARIFF_INVALID)
def test_tariff_rejects_invalid_values(field, value):
    # given a valid tariff
    tariff = make_tariff()

    # when an invalid value is saved
    setattr(tariff, field, value)
    with pytest.raises(ValidationError) as exc:
        tariff.save()

    # then the error names the field
    assert field in exc.value.message_dict


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("start_time", "24:00"),
        ("end_time", "7:00"),
        ("start_date", "01-01-2025"),
        ("day_of_week", ["MON"]),
        ("reservation", "ALWAYS"),
    ],
)
def test_tariff_element_rejects_invalid_restrictions(field, value):
    # given a tariff element
    element = make_tariff().elements.get()

    # when an invalid restriction is saved
    setattr(element, field, value)
    with pytest.raises(ValidationError) as exc:
        element.save()

    # then the error names the field
    assert field in exc.value.message_dict


@pytest.mark.parametrize(
    ("field", "value"),
    [("type", "KWH"), ("price", Decimal("-0.01")), ("vat", Decimal("-1")), ("step_size", 0)],
)
def test_price_component_rejects_invalid_values(field, value):
    # given a price component
    component = PriceComponent.objects.get(element__tariff=make_tariff())

    # when an invalid value is saved
    setattr(component, field, value)
    with pytest.raises(ValidationError) as exc:
        component.save()

    # then the error names the field
    assert field in exc.value.message_dict


def test_tariff_min_price_incl_needs_excl():
    # given a tariff
    tariff = make_tariff()

    # when only min_price incl. VAT is set
    tariff.min_price_incl_vat = Decimal("1.21")
    # then it is rejected
    with pytest.raises(ValidationError, match="min_price needs excl_vat"):
        tariff.save()


def test_valid_rich_location_is_accepted():
    # given a location with every JSON value object filled in correctly
    # when it is saved
    location = make_location(
        opening_times={
            "twentyfourseven": False,
            "regular_hours": [{"weekday": 7, "period_begin": "10:00", "period_end": "00:00"}],
            "exceptional_closings": [
                {"period_begin": "2025-12-24T23:00:00Z", "period_end": "2025-12-25T23:00:00Z"}
            ],
        },
        images=[{"url": "https://example.com/a.jpg", "category": "LOCATION", "type": "jpeg",
                 "width": 1024, "height": 768}],
        energy_mix={"is_green_energy": True, "energy_sources": [
            {"source": "WIND", "percentage": 70}, {"source": "SOLAR", "percentage": 30}]},
        directions=[{"language": "nl", "text": "Ingang aan de achterkant"}],
        facilities=["WIFI", "CAFE"],
        publish=False,
        publish_allowed_to=[{"uid": "04A1B2", "type": "RFID"}, {"group_id": "FLEET"}],
        related_locations=[{"latitude": "52.08901", "longitude": "5.11003"}],
        operator={"name": "Open CPO", "website": "https://example.com"},
        latitude="-52.089447",
    )  # fmt: skip

    # then it is stored as given
    assert fresh(location).opening_times["regular_hours"][0]["period_end"] == "00:00"


# --- last_updated ------------------------------------------------------------------------------


def test_connector_change_bumps_evse_and_location(network, sent):
    # given a network last changed long ago
    location, evse, connector = network
    age(location, evse, connector)
    connector = fresh(connector)

    # when a connector field changes
    connector.max_amperage = 16
    connector.save()

    # then connector, EVSE and location carry the same new last_updated
    assert connector.last_updated.year > 2020
    assert fresh(connector).last_updated == connector.last_updated
    assert fresh(evse).last_updated == connector.last_updated
    assert fresh(location).last_updated == connector.last_updated
    assert [(name, kw["changed_fields"]) for name, kw in sent] == [
        ("connector_changed", {"max_amperage"})
    ]


def test_evse_change_bumps_location_not_connectors(network, sent):
    # given a network last changed long ago
    location, evse, connector = network
    age(location, evse, connector)
    evse = fresh(evse)

    # when the EVSE status changes
    evse.status = "CHARGING"
    evse.save()

    # then the EVSE and the location are bumped, the connector is not
    assert fresh(evse).last_updated == evse.last_updated
    assert fresh(location).last_updated == evse.last_updated
    assert fresh(connector).last_updated.year == 2020
    assert [(name, kw["changed_fields"]) for name, kw in sent] == [("evse_changed", {"status"})]


def test_location_change_bumps_only_the_location(network, sent):
    # given a network last changed long ago
    location, evse, connector = network
    age(location, evse, connector)
    location = fresh(location)

    # when a location field changes
    location.name = "Stationsplein Noord"
    location.save()

    # then only the location is bumped
    assert fresh(location).last_updated.year > 2020
    assert fresh(evse).last_updated.year == 2020
    assert [(name, kw["changed_fields"]) for name, kw in sent] == [("location_changed", {"name"})]


def test_saving_unchanged_objects_bumps_nothing(network, sent):
    # given a network last changed long ago
    location, evse, connector = network
    tariff = make_tariff()
    element = tariff.elements.get()
    component = element.price_components.get()
    age(location, evse, connector, tariff)
    sent.clear()

    # when every object is loaded and saved without a change (same values, other forms)
    for obj in (location, evse, connector, tariff, element, component):
        obj = fresh(obj)
        if isinstance(obj, PriceComponent):
            obj.price = Decimal("0.35")  # the same number as the stored 0.3500
        obj.save()

    # then no last_updated moved and nothing was announced
    for obj in (location, evse, connector, tariff):
        assert fresh(obj).last_updated.year == 2020
    assert sent == []


@pytest.mark.parametrize("part", ["element", "component"])
def test_tariff_part_change_bumps_the_tariff(part, sent):
    # given a tariff last changed long ago
    tariff = make_tariff()
    age(tariff)
    sent.clear()

    # when an element restriction or a component price changes
    if part == "element":
        element = tariff.elements.get()
        element.start_time = "07:00"
        element.save()
    else:
        component = PriceComponent.objects.get(element__tariff=tariff)
        component.price = Decimal("0.40")
        component.save()

    # then the tariff is bumped and announced
    assert fresh(tariff).last_updated.year > 2020
    assert [name for name, _ in sent] == ["tariff_changed"]


def test_deleting_a_tariff_element_bumps_the_tariff():
    # given a tariff with two elements, last changed long ago
    tariff = make_tariff()
    extra = TariffElement.objects.create(tariff=tariff, position=1, start_time="07:00")
    age(tariff)

    # when one element is deleted
    extra.delete()

    # then the tariff is bumped
    assert fresh(tariff).last_updated.year > 2020
    assert tariff.elements.count() == 1


# --- EVSE lifecycle and ids --------------------------------------------------------------------


def test_deleting_an_evse_sets_removed_and_keeps_it(network, sent):
    # given an available EVSE, last changed long ago
    location, evse, _ = network
    age(location, evse)
    evse = fresh(evse)

    # when it is deleted
    evse.delete()

    # then it still exists, REMOVED, with its connectors, and the location is bumped
    stored = fresh(evse)
    assert stored.status == "REMOVED"
    assert stored.connectors.count() == 1
    assert fresh(location).last_updated == stored.last_updated
    assert [(name, kw["changed_fields"]) for name, kw in sent] == [("evse_changed", {"status"})]


def test_connectors_cannot_be_deleted(network):
    # given a connector
    connector = network[2]

    # when it is deleted, then that is refused and it stays
    with pytest.raises(ValidationError):
        connector.delete()
    assert Connector.objects.filter(pk=connector.pk).exists()


def test_location_ids_are_unique_ignoring_case(network):
    # given location LOC1 of NL/CPO
    # when loc1 of nl/cpo is created
    with pytest.raises(ValidationError):
        make_location("loc1", country_code="nl", party_id="cpo")

    # then only one exists, found by any case; another party may use the same id
    assert Location.objects.filter(ocpi_id__lower="LoC1".lower()).count() == 1
    make_location("loc1", party_id="ABC")
    assert Location.objects.count() == 2


def test_evse_uids_are_unique_per_location_ignoring_case(network):
    # given EVSE EVSE1 at LOC1
    location = network[0]

    # when evse1 is added to the same location, then it is refused
    with pytest.raises(ValidationError):
        make_evse(location, uid="evse1")
    # and another location may have it
    make_evse(make_location("LOC2"), uid="evse1")
    assert EVSE.objects.filter(uid__lower="evse1").count() == 2


def test_connector_ids_are_unique_per_evse_ignoring_case():
    # given an EVSE with connector "A"
    evse = make_evse(make_location())
    make_connector(evse, ocpi_id="A")

    # when connector "a" is added, then it is refused
    with pytest.raises(ValidationError):
        make_connector(evse, ocpi_id="a")
    assert evse.connectors.count() == 1


def test_tariff_ids_are_unique_ignoring_case():
    # given tariff T1
    make_tariff("T1")

    # when t1 is created, then it is refused
    with pytest.raises(ValidationError):
        Tariff.objects.create(country_code="NL", party_id="CPO", ocpi_id="t1", currency="EUR")
    assert Tariff.objects.count() == 1
