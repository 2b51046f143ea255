"""factory_boy factories for the network: Location → EVSE → Connector, Tariff → element → component.

Every factory builds an object that passes the models' full_clean() and the official OCPI schema,
owned by our own CPO role (settings.OCPI_COUNTRY_CODE / OCPI_PARTY_ID).

    LocationFactory()                          # one EVSE with one Type 2 connector
    LocationFactory(evses=3)                   # three EVSEs (each with one connector)
    LocationFactory(evses=0)                   # no EVSEs
    LocationFactory(full=True)                 # every optional Location field filled
    EVSEFactory(location=loc, connectors=2)    # an EVSE with two connectors
    ConnectorFactory()                         # a connector with its own EVSE and Location
    ConnectorFactory(dc=True)                  # a CCS DC fast-charging cable
    TariffFactory()                            # 0.30 EUR/kWh excl. 21% VAT
    TariffFactory(elements=0)                  # bare tariff; add TariffElementFactory(tariff=t)
    TariffFactory(full=True)                   # restrictions, alt text, min/max price, mix...
    PriceComponentFactory(element=el, type="TIME", price=Decimal("2.00"))

Children are created after their parent is saved; the models bump the parents' last_updated
themselves, and the factories re-read it so the returned instance matches the database.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory
from django.conf import settings

from stations.choices import EVSEStatus
from stations.models import EVSE, Connector, Location, PriceComponent, Tariff, TariffElement

ENERGY_MIX = {
    "is_green_energy": True,
    "energy_sources": [
        {"source": "SOLAR", "percentage": 40},
        {"source": "WIND", "percentage": 60},
    ],
    "environ_impact": [{"category": "CARBON_DIOXIDE", "amount": 0}],
    "supplier_name": "Greenchoice",
    "energy_product_name": "Wind en zon",
}


def _coordinate(base: float, n: int) -> str:
    """A realistic WGS 84 coordinate string with 6 decimals, spread by the sequence number."""
    return f"{base + (n % 997) * 0.000731:.6f}"


def _refresh_last_updated(obj) -> None:
    obj.refresh_from_db(fields=["last_updated"])


def _next_index(parent, related_name: str) -> int:
    """How many children `parent` has already (0 for an unsaved parent, as in .build())."""
    return getattr(parent, related_name).count() if parent.pk else 0


class LocationFactory(factory.django.DjangoModelFactory):
    """A public street-side charging site in Amsterdam owned by our CPO role."""

    class Meta:
        model = Location
        skip_postgeneration_save = True

    class Params:
        full = factory.Trait(
            name=factory.LazyAttribute(lambda o: f"Parking {o.ocpi_id}"),
            state="Noord-Holland",
            parking_type="PARKING_GARAGE",
            related_locations=[
                {
                    "latitude": "52.370210",
                    "longitude": "4.895170",
                    "name": {"language": "nl", "text": "Ingang Damrak"},
                }
            ],
            directions=[{"language": "en", "text": "Enter at Damrak, level -1."}],
            operator={"name": "Open CPO Platform", "website": "https://cpo.example.com"},
            suboperator={"name": "Parkeerbedrijf Amsterdam"},
            owner={
                "name": "Gemeente Amsterdam",
                "logo": {
                    "url": "https://cpo.example.com/img/owner.png",
                    "thumbnail": "https://cpo.example.com/img/owner-thumb.png",
                    "category": "OWNER",
                    "type": "png",
                    "width": 512,
                    "height": 512,
                },
            },
            facilities=["PARKING_LOT", "CAFE", "WIFI"],
            opening_times={
                "twentyfourseven": False,
                "regular_hours": [
                    {"weekday": day, "period_begin": "07:00", "period_end": "23:00"}
                    for day in range(1, 8)
                ],
                "exceptional_openings": [
                    {"period_begin": "2025-12-31T22:00:00Z", "period_end": "2026-01-01T04:00:00Z"}
                ],
                "exceptional_closings": [
                    {"period_begin": "2025-12-25T00:00:00Z", "period_end": "2025-12-26T00:00:00Z"}
                ],
            },
            charging_when_closed=False,
            images=[
                {
                    "url": "https://cpo.example.com/img/site.jpg",
                    "category": "LOCATION",
                    "type": "jpeg",
                    "width": 1024,
                    "height": 768,
                }
            ],
            energy_mix=ENERGY_MIX,
        )

    country_code = factory.LazyFunction(lambda: settings.OCPI_COUNTRY_CODE)
    party_id = factory.LazyFunction(lambda: settings.OCPI_PARTY_ID)
    ocpi_id = factory.Sequence(lambda n: f"LOC{n:05d}")
    publish = True
    name = factory.Sequence(lambda n: f"Charging plaza {n}")
    address = factory.Sequence(lambda n: f"Keizersgracht {n % 900 + 1}")
    city = "Amsterdam"
    postal_code = "1015 CJ"
    country = "NLD"
    latitude = factory.Sequence(lambda n: _coordinate(52.35, n))
    longitude = factory.Sequence(lambda n: _coordinate(4.88, n))
    parking_type = "ON_STREET"
    time_zone = "Europe/Amsterdam"

    @factory.post_generation
    def evses(obj, create, extracted, **kwargs):
        if not create:
            return
        for _ in range(1 if extracted is None else extracted):
            EVSEFactory(location=obj, **kwargs)
        _refresh_last_updated(obj)


class EVSEFactory(factory.django.DjangoModelFactory):
    """An AC charge point, remotely startable, with one connector by default."""

    class Meta:
        model = EVSE
        skip_postgeneration_save = True

    class Params:
        full = factory.Trait(
            status_schedule=[
                {
                    "period_begin": "2030-01-01T00:00:00Z",
                    "period_end": "2030-01-02T00:00:00Z",
                    "status": "INOPERATIVE",
                }
            ],
            capabilities=[
                "REMOTE_START_STOP_CAPABLE",
                "RFID_READER",
                "RESERVABLE",
                "UNLOCK_CAPABLE",
                "CHARGING_PROFILE_CAPABLE",
            ],
            floor_level="-1",
            latitude="52.370301",
            longitude="4.895301",
            physical_reference=factory.Sequence(lambda n: f"P{n % 10000:04d}"),
            directions=[{"language": "nl", "text": "Naast de lift."}],
            parking_restrictions=["EV_ONLY", "PLUGGED"],
            images=[
                {
                    "url": "https://cpo.example.com/img/charger.jpg",
                    "thumbnail": "https://cpo.example.com/img/charger-thumb.jpg",
                    "category": "CHARGER",
                    "type": "jpeg",
                }
            ],
        )

    location = factory.SubFactory(LocationFactory, evses=0)
    uid = factory.Sequence(lambda n: f"EVSE{n:06d}")
    evse_id = factory.LazyAttribute(
        lambda o: f"{o.location.country_code}*{o.location.party_id}*E{o.uid[4:]}*1"
    )
    status = EVSEStatus.AVAILABLE
    capabilities = ["REMOTE_START_STOP_CAPABLE", "RFID_READER"]

    @factory.post_generation
    def connectors(obj, create, extracted, **kwargs):
        if not create:
            return
        for _ in range(1 if extracted is None else extracted):
            ConnectorFactory(evse=obj, **kwargs)
        _refresh_last_updated(obj)


class ConnectorFactory(factory.django.DjangoModelFactory):
    """A Type 2 socket, 3-phase 230 V 32 A (22 kW); `dc=True` makes a 150 kW CCS cable."""

    class Meta:
        model = Connector

    class Params:
        dc = factory.Trait(
            standard="IEC_62196_T2_COMBO",
            format="CABLE",
            power_type="DC",
            max_voltage=920,
            max_amperage=200,
            max_electric_power=150000,
        )
        full = factory.Trait(
            max_electric_power=22000,
            tariff_ids=["AC-STANDARD"],
            terms_and_conditions="https://cpo.example.com/terms",
        )

    evse = factory.SubFactory(EVSEFactory, connectors=0)
    # Connector ids are unique within their EVSE only: "1", "2", ...
    ocpi_id = factory.LazyAttribute(lambda o: str(_next_index(o.evse, "connectors") + 1))
    standard = "IEC_62196_T2"
    format = "SOCKET"
    power_type = "AC_3_PHASE"
    max_voltage = 230
    max_amperage = 32


class TariffFactory(factory.django.DjangoModelFactory):
    """A plain energy tariff: one element, 0.30 EUR/kWh excl. 21% VAT."""

    class Meta:
        model = Tariff
        skip_postgeneration_save = True

    class Params:
        full = factory.Trait(
            type="REGULAR",
            tariff_alt_text=[
                {"language": "en", "text": "Prices differ by time of day."},
                {"language": "nl", "text": "Prijzen verschillen per tijdstip."},
            ],
            tariff_alt_url="https://cpo.example.com/tariffs/standard",
            min_price_excl_vat=Decimal("0.50"),
            min_price_incl_vat=Decimal("0.61"),
            max_price_excl_vat=Decimal("50.00"),
            max_price_incl_vat=Decimal("60.50"),
            start_date_time=datetime(2025, 1, 1, tzinfo=UTC),
            end_date_time=datetime(2035, 1, 1, tzinfo=UTC) - timedelta(milliseconds=1),
            energy_mix=ENERGY_MIX,
        )

    country_code = factory.LazyFunction(lambda: settings.OCPI_COUNTRY_CODE)
    party_id = factory.LazyFunction(lambda: settings.OCPI_PARTY_ID)
    ocpi_id = factory.Sequence(lambda n: f"TARIFF-{n:05d}")
    currency = "EUR"

    @factory.post_generation
    def elements(obj, create, extracted, **kwargs):
        if not create:
            return
        for _ in range(1 if extracted is None else extracted):
            TariffElementFactory(tariff=obj, **kwargs)
        _refresh_last_updated(obj)


class TariffElementFactory(factory.django.DjangoModelFactory):
    """An element without restrictions (the fallback) with one ENERGY component by default.

    `full=True` gives a weekday-daytime element restricted on every kind of restriction."""

    class Meta:
        model = TariffElement
        skip_postgeneration_save = True

    class Params:
        full = factory.Trait(
            start_time="07:00",
            end_time="23:00",
            start_date="2025-01-01",
            end_date="2035-01-01",
            min_kwh=Decimal("0.5"),
            max_kwh=Decimal("100"),
            min_current=Decimal("6"),
            max_current=Decimal("63"),
            min_power=Decimal("1.5"),
            max_power=Decimal("43"),
            min_duration=60,
            max_duration=43200,
            day_of_week=["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
        )

    tariff = factory.SubFactory(TariffFactory, elements=0)
    position = factory.LazyAttribute(lambda o: _next_index(o.tariff, "elements"))

    @factory.post_generation
    def price_components(obj, create, extracted, **kwargs):
        if not create:
            return
        for _ in range(1 if extracted is None else extracted):
            PriceComponentFactory(element=obj, **kwargs)


class PriceComponentFactory(factory.django.DjangoModelFactory):
    """0.30 EUR/kWh excl. VAT, 21% VAT, billed per Wh."""

    class Meta:
        model = PriceComponent

    element = factory.SubFactory(TariffElementFactory, price_components=0)
    position = factory.LazyAttribute(lambda o: _next_index(o.element, "price_components"))
    type = "ENERGY"
    price = Decimal("0.30")
    vat = Decimal("21.0")
    step_size = 1
