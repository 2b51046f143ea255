"""A realistic demo network: 25 locations in the Netherlands and Germany, and their tariffs.

    manage.py seed_demo

Idempotent: objects are matched by OCPI id and only saved when their data differs, so a second
run creates nothing, bumps no `last_updated` and pushes nothing. EVSE statuses are set when an
EVSE is created and afterwards left to the chargers (a re-run does not reset a live status).
Everything is saved through the models, so registered partners receive the demo network through
the normal pushes. Our country code and party id come from OCPI_COUNTRY_CODE / OCPI_PARTY_ID.
"""

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from stations.services import SyncResult, location_sync, tariff_sync

IMAGE_BASE = "https://images.example.com/cpo"
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY")


def _d(value: str) -> Decimal:
    return Decimal(value)


def _text(**texts: str) -> list[dict[str, str]]:
    return [{"language": language, "text": text} for language, text in texts.items()]


def _energy(*, vat: str, price: str, step: int = 1) -> dict:
    return {"type": "ENERGY", "price": _d(price), "vat": _d(vat), "step_size": step}


def _component(kind: str, *, vat: str | None, price: str, step: int = 1) -> dict:
    return {"type": kind, "price": _d(price), "vat": _d(vat) if vat else None, "step_size": step}


def demo_tariffs() -> list[dict[str, Any]]:
    """Tariffs as {ocpi_id, fields, elements}. Prices excl. VAT; NL VAT 21 %, DE VAT 19 %."""
    nl, de = "21", "19"
    green_mix = {
        "is_green_energy": True,
        "energy_sources": [
            {"source": "WIND", "percentage": 80},
            {"source": "SOLAR", "percentage": 20},
        ],
        "supplier_name": "Demo Energie B.V.",
        "energy_product_name": "Hollandse Wind",
    }
    return [
        {
            "ocpi_id": "NL-AC-REGULAR",
            "fields": {
                "currency": "EUR",
                "type": "REGULAR",
                "tariff_alt_text": _text(
                    en="After charging, an idle fee applies in the daytime (08:00-20:00).",
                    nl="Na het laden geldt overdag (08:00-20:00) een parkeertarief.",
                ),
                "energy_mix": green_mix,
            },
            "elements": [
                {"price_components": [_energy(vat=nl, price="0.39")]},
                {
                    "start_time": "08:00",
                    "end_time": "20:00",
                    "price_components": [
                        _component("PARKING_TIME", vat=nl, price="3.00", step=300)
                    ],
                },
            ],
        },
        {
            # Peak / off-peak: weekday evening peak, a night rate over midnight, a day rate.
            "ocpi_id": "NL-AC-DYNAMIC",
            "fields": {
                "currency": "EUR",
                "type": "REGULAR",
                "tariff_alt_text": _text(
                    en="Cheaper at night (23:00-07:00), dearer on weekday evenings (17:00-21:00).",
                    nl="'s Nachts (23:00-07:00) goedkoper, doordeweeks 's avonds (17:00-21:00) "
                    "duurder.",
                ),
                "tariff_alt_url": "https://www.example.com/tarieven/dynamisch",
            },
            "elements": [
                {
                    "start_time": "17:00",
                    "end_time": "21:00",
                    "day_of_week": list(WEEKDAYS),
                    "price_components": [_energy(vat=nl, price="0.49")],
                },
                {
                    "start_time": "23:00",
                    "end_time": "07:00",
                    "price_components": [_energy(vat=nl, price="0.29")],
                },
                {"price_components": [_energy(vat=nl, price="0.39")]},
            ],
        },
        {
            "ocpi_id": "NL-DC-FAST",
            "fields": {
                "currency": "EUR",
                "type": "REGULAR",
                "min_price_excl_vat": _d("1.00"),
                "min_price_incl_vat": _d("1.21"),
                "tariff_alt_text": _text(
                    en="Start fee per session; a blocking fee applies after 45 minutes.",
                    nl="Starttarief per sessie; na 45 minuten geldt een blokkeertarief.",
                ),
            },
            "elements": [
                {
                    "price_components": [
                        _component("FLAT", vat=nl, price="0.50"),
                        _energy(vat=nl, price="0.59"),
                    ]
                },
                {
                    "min_duration": 2700,
                    "price_components": [_component("TIME", vat=nl, price="12.00", step=60)],
                },
            ],
        },
        {
            "ocpi_id": "NL-DC-ADHOC",
            "fields": {
                "currency": "EUR",
                "type": "AD_HOC_PAYMENT",
                "max_price_excl_vat": _d("60.00"),
                "max_price_incl_vat": _d("72.60"),
                "tariff_alt_text": _text(
                    en="Pay by card at the charger. The card is pre-authorised for the maximum.",
                    nl="Betaal met uw pas bij de laadpaal; het maximum wordt gereserveerd.",
                ),
            },
            "elements": [{"price_components": [_energy(vat=nl, price="0.69")]}],
        },
        {
            # Free charging: one element, no restrictions, one FLAT component of 0 (§4.4).
            "ocpi_id": "NL-FREE",
            "fields": {
                "currency": "EUR",
                "tariff_alt_text": _text(
                    en="Free charging for customers during opening hours.",
                    nl="Gratis laden voor klanten tijdens openingstijden.",
                ),
            },
            "elements": [{"price_components": [_component("FLAT", vat=None, price="0.00")]}],
        },
        {
            "ocpi_id": "DE-AC-REGULAR",
            "fields": {
                "currency": "EUR",
                "type": "REGULAR",
                "tariff_alt_text": _text(
                    de="Blockiergebühr ab 4 Stunden Standzeit.",
                    en="Blocking fee after 4 hours at the charger.",
                ),
            },
            "elements": [
                {"price_components": [_energy(vat=de, price="0.49")]},
                {
                    "min_duration": 14400,
                    "price_components": [
                        _component("PARKING_TIME", vat=de, price="6.00", step=60),
                        _component("TIME", vat=de, price="6.00", step=60),
                    ],
                },
            ],
        },
        {
            "ocpi_id": "DE-DC-HPC",
            "fields": {
                "currency": "EUR",
                "type": "REGULAR",
                "tariff_alt_text": _text(
                    de="Abrechnung je angefangene 0,1 kWh; Blockiergebühr ab 45 Minuten.",
                    en="Billed per started 0.1 kWh; blocking fee after 45 minutes.",
                ),
            },
            "elements": [
                {"price_components": [_energy(vat=de, price="0.59", step=100)]},
                {
                    "min_duration": 2700,
                    "price_components": [
                        _component("TIME", vat=de, price="9.00", step=60),
                        _component("PARKING_TIME", vat=de, price="9.00", step=60),
                    ],
                },
            ],
        },
        {
            "ocpi_id": "DE-DC-ADHOC",
            "fields": {
                "currency": "EUR",
                "type": "AD_HOC_PAYMENT",
                "max_price_excl_vat": _d("50.00"),
                "max_price_incl_vat": _d("59.50"),
                "tariff_alt_text": _text(
                    de="Ad-hoc-Zahlung mit Karte am Ladepunkt.",
                    en="Ad hoc payment by card at the charger.",
                ),
            },
            "elements": [{"price_components": [_energy(vat=de, price="0.69")]}],
        },
    ]


# EVSE kinds: connectors (standard, format, power_type, V, A, W) and capabilities.
AC_CAPS = ["RFID_READER", "REMOTE_START_STOP_CAPABLE", "UNLOCK_CAPABLE", "RESERVABLE",
           "CHARGING_PROFILE_CAPABLE"]  # fmt: skip
DC_CAPS = ["RFID_READER", "REMOTE_START_STOP_CAPABLE", "CREDIT_CARD_PAYABLE",
           "DEBIT_CARD_PAYABLE", "CONTACTLESS_CARD_SUPPORT"]  # fmt: skip
KINDS = {
    "AC11": ([("IEC_62196_T2", "SOCKET", "AC_3_PHASE", 230, 16, 11000)], AC_CAPS),
    "AC22": ([("IEC_62196_T2", "SOCKET", "AC_3_PHASE", 230, 32, 22000)], AC_CAPS),
    "DC50": (
        [
            ("IEC_62196_T2_COMBO", "CABLE", "DC", 500, 125, 50000),
            ("CHADEMO", "CABLE", "DC", 500, 125, 50000),
        ],
        DC_CAPS,
    ),
    "DC150": (
        [
            ("IEC_62196_T2_COMBO", "CABLE", "DC", 920, 200, 150000),
            ("CHADEMO", "CABLE", "DC", 500, 125, 50000),
        ],
        DC_CAPS,
    ),
    "DC300": ([("IEC_62196_T2_COMBO", "CABLE", "DC", 920, 500, 300000)], DC_CAPS),
}
NL_TARIFFS = {"AC": ["NL-AC-REGULAR"], "DC": ["NL-DC-FAST", "NL-DC-ADHOC"]}
DE_TARIFFS = {"AC": ["DE-AC-REGULAR"], "DC": ["DE-DC-HPC", "DE-DC-ADHOC"]}

TWENTYFOURSEVEN = {"twentyfourseven": True}


def _hours(*days: tuple[tuple[int, ...], str, str], **extra) -> dict:
    regular = [
        {"weekday": weekday, "period_begin": begin, "period_end": end}
        for weekdays, begin, end in days
        for weekday in weekdays
    ]
    return {"twentyfourseven": False, "regular_hours": regular, **extra}


def _christmas_year() -> int:
    today = timezone.now().date()
    return today.year if (today.month, today.day) <= (12, 26) else today.year + 1


def demo_locations() -> list[dict[str, Any]]:
    """Location specs: address data plus `evses` as (kind, initial status) pairs."""
    year = _christmas_year()
    nl_mix = {
        "is_green_energy": True,
        "energy_sources": [
            {"source": "WIND", "percentage": 62.5},
            {"source": "SOLAR", "percentage": 27.5},
            {"source": "WATER", "percentage": 10},
        ],
        "environ_impact": [{"category": "CARBON_DIOXIDE", "amount": 0}],
        "supplier_name": "Demo Energie B.V.",
        "energy_product_name": "Hollandse Wind",
    }
    de_mix = {
        "is_green_energy": False,
        "energy_sources": [
            {"source": "GENERAL_GREEN", "percentage": 52.3},
            {"source": "COAL", "percentage": 25.5},
            {"source": "GAS", "percentage": 14.2},
            {"source": "GENERAL_FOSSIL", "percentage": 8},
        ],
        "environ_impact": [
            {"category": "CARBON_DIOXIDE", "amount": 380},
            {"category": "NUCLEAR_WASTE", "amount": 0},
        ],
        "supplier_name": "Stadtwerke Demo GmbH",
        "energy_product_name": "Strommix Deutschland",
    }
    supermarket = _hours(
        ((1, 2, 3, 4, 5, 6), "08:00", "22:00"),
        ((7,), "12:00", "18:00"),
        exceptional_closings=[
            # Closed on both Christmas days (local midnight = 23:00 UTC the day before).
            {"period_begin": f"{year}-12-24T23:00:00Z", "period_end": f"{year}-12-26T23:00:00Z"}
        ],
    )
    mall_berlin = _hours(
        ((1, 2, 3, 4, 5, 6), "07:00", "23:00"),
        exceptional_openings=[
            # A shopping Sunday in Advent (13:00-18:00 local = 12:00-17:00 UTC).
            {"period_begin": f"{year}-12-14T12:00:00Z", "period_end": f"{year}-12-14T17:00:00Z"}
        ],
    )
    depot = _hours(((1, 2, 3, 4, 5), "06:00", "20:00"))
    nl = {"country": "NLD", "time_zone": "Europe/Amsterdam", "energy_mix": nl_mix}
    de = {"country": "DEU", "time_zone": "Europe/Berlin", "energy_mix": de_mix}
    return [
        {
            **nl, "ocpi_id": "NLAMS001", "name": "P+R Zeeburg",
            "address": "Zuiderzeeweg 46", "postal_code": "1095 KJ", "city": "Amsterdam",
            "state": "Noord-Holland", "latitude": "52.3695840", "longitude": "4.9546350",
            "parking_type": "PARKING_LOT", "opening_times": TWENTYFOURSEVEN,
            "facilities": ["PARKING_LOT", "TRAM_STOP", "BUS_STOP"],
            "evses": [("AC22", "AVAILABLE"), ("AC22", "CHARGING"), ("AC22", "AVAILABLE"),
                      ("AC22", "AVAILABLE"), ("DC50", "AVAILABLE")],
        },
        {
            **nl, "ocpi_id": "NLAMS002", "name": "Parkeergarage Museumplein",
            "address": "Van Baerlestraat 33B", "postal_code": "1071 AP", "city": "Amsterdam",
            "state": "Noord-Holland", "latitude": "52.357630", "longitude": "4.880570",
            "parking_type": "UNDERGROUND_GARAGE", "opening_times": TWENTYFOURSEVEN,
            "facilities": ["MUSEUM", "PARKING_LOT", "TRAM_STOP"], "floor_level": "-2",
            "directions": _text(en="Level -2, bays 201-206, next to the lifts.",
                                nl="Niveau -2, vakken 201-206, naast de liften."),
            "suboperator": {"name": "Garage Exploitatie Amsterdam B.V."},
            "evses": [("AC11", "AVAILABLE"), ("AC11", "CHARGING"), ("AC11", "AVAILABLE"),
                      ("AC11", "OUTOFORDER")],
        },
        {
            **nl, "ocpi_id": "NLAMS003", "name": "Jan Pieter Heijestraat",
            "address": "Jan Pieter Heijestraat 101", "postal_code": "1053 GM",
            "city": "Amsterdam", "state": "Noord-Holland", "latitude": "52.364120",
            "longitude": "4.861950", "parking_type": "ON_STREET",
            "opening_times": TWENTYFOURSEVEN, "owner": {"name": "Gemeente Amsterdam"},
            "tariffs": {"AC": ["NL-AC-DYNAMIC"]}, "parking_restrictions": ["EV_ONLY"],
            "evses": [("AC11", "AVAILABLE"), ("AC11", "CHARGING")],
        },
        {
            **nl, "ocpi_id": "NLRTM001", "name": "Parkeergarage Kruisplein",
            "address": "Kruisplein 25", "postal_code": "3014 DB", "city": "Rotterdam",
            "state": "Zuid-Holland", "latitude": "51.921870", "longitude": "4.471870",
            "parking_type": "UNDERGROUND_GARAGE", "opening_times": TWENTYFOURSEVEN,
            "facilities": ["TRAIN_STATION", "METRO_STATION", "PARKING_LOT"], "floor_level": "-1",
            "evses": [("AC22", "AVAILABLE"), ("AC22", "AVAILABLE"), ("AC22", "CHARGING"),
                      ("AC22", "BLOCKED"), ("DC50", "CHARGING"), ("DC50", "AVAILABLE")],
        },
        {
            **nl, "ocpi_id": "NLUTR001", "name": "Jaarbeurs P1",
            "address": "Jaarbeursplein 6", "postal_code": "3521 AL", "city": "Utrecht",
            "state": "Utrecht", "latitude": "52.0886410", "longitude": "5.1054880",
            "parking_type": "PARKING_GARAGE", "opening_times": TWENTYFOURSEVEN,
            "facilities": ["TRAIN_STATION", "RESTAURANT", "PARKING_LOT"], "floor_level": "0",
            "related_locations": [{
                "latitude": "52.088970", "longitude": "5.107260",
                "name": {"language": "en", "text": "Entrance for cars, Croeselaan"},
            }],
            "evses": [("AC22", "AVAILABLE"), ("AC22", "AVAILABLE"), ("AC22", "AVAILABLE"),
                      ("AC22", "CHARGING"), ("AC22", "REMOVED"), ("DC150", "AVAILABLE")],
        },
        {
            **nl, "ocpi_id": "NLHAG001", "name": "Spui",
            "address": "Spui 70", "postal_code": "2511 BT", "city": "Den Haag",
            "state": "Zuid-Holland", "latitude": "52.077260", "longitude": "4.316010",
            "parking_type": "ON_STREET", "opening_times": TWENTYFOURSEVEN,
            "owner": {"name": "Gemeente Den Haag"}, "facilities": ["TRAM_STOP"],
            "evses": [("AC11", "AVAILABLE"), ("AC11", "AVAILABLE")],
        },
        {
            **nl, "ocpi_id": "NLEIN001", "name": "Strijp-S",
            "address": "Torenallee 20", "postal_code": "5617 BC", "city": "Eindhoven",
            "state": "Noord-Brabant", "latitude": "51.447610", "longitude": "5.456780",
            "parking_type": "PARKING_GARAGE", "opening_times": TWENTYFOURSEVEN,
            "facilities": ["RESTAURANT", "CAFE", "WIFI"],
            "evses": [("AC22", "AVAILABLE"), ("AC22", "AVAILABLE"), ("AC22", "CHARGING"),
                      ("DC150", "AVAILABLE")],
        },
        {
            **nl, "ocpi_id": "NLGRQ001", "name": "P+R Europapark",
            "address": "Europaweg 2", "postal_code": "9723 AS", "city": "Groningen",
            "state": "Groningen", "latitude": "53.204640", "longitude": "6.585740",
            "parking_type": "PARKING_LOT", "opening_times": TWENTYFOURSEVEN,
            "facilities": ["TRAIN_STATION", "BUS_STOP", "PARKING_LOT"],
            "evses": [("AC22", "AVAILABLE"), ("AC22", "AVAILABLE"), ("AC22", "AVAILABLE")],
        },
        {
            **nl, "ocpi_id": "NLHLM001", "name": "Winkelcentrum Schalkwijk",
            "address": "Fie Carelsenplein 1", "postal_code": "2034 EA", "city": "Haarlem",
            "state": "Noord-Holland", "latitude": "52.3642120", "longitude": "4.6520630",
            "parking_type": "PARKING_LOT", "opening_times": supermarket,
            "charging_when_closed": False, "facilities": ["SUPERMARKET", "MALL", "CAFE"],
            "tariffs": {"AC": ["NL-FREE"]}, "parking_restrictions": ["CUSTOMERS"],
            "evses": [("AC11", "AVAILABLE"), ("AC11", "AVAILABLE"), ("AC11", "CHARGING")],
        },
        {
            **nl, "ocpi_id": "NLARN001", "name": "Arnhem Centraal",
            "address": "Willemsplein 20", "postal_code": "6811 KD", "city": "Arnhem",
            "state": "Gelderland", "latitude": "51.983810", "longitude": "5.904620",
            "parking_type": "PARKING_GARAGE", "opening_times": TWENTYFOURSEVEN,
            "facilities": ["TRAIN_STATION", "BUS_STOP"],
            "evses": [("AC22", "AVAILABLE"), ("AC22", "INOPERATIVE"), ("AC22", "AVAILABLE")],
        },
        {
            **nl, "ocpi_id": "NLUTR002", "name": "Verzorgingsplaats Bijleveld (A12)",
            "address": "Rijksweg A12 Hectometerpaal 56,4", "postal_code": "3454 ZG",
            "city": "De Meern", "state": "Utrecht", "latitude": "52.081120",
            "longitude": "5.020980", "parking_type": "ALONG_MOTORWAY",
            "opening_times": TWENTYFOURSEVEN,
            "facilities": ["FUEL_STATION", "RESTAURANT", "WIFI"],
            "evses": [("DC300", "AVAILABLE"), ("DC300", "CHARGING"), ("DC300", "AVAILABLE"),
                      ("DC300", "AVAILABLE"), ("DC150", "AVAILABLE"), ("DC150", "CHARGING")],
        },
        {
            **nl, "ocpi_id": "NLZWO001", "name": "Station Zwolle Zuidzijde",
            "address": "Spoorlaan 6", "postal_code": "8011 CM", "city": "Zwolle",
            "state": "Overijssel", "latitude": "52.503640", "longitude": "6.091110",
            "parking_type": "PARKING_LOT", "opening_times": TWENTYFOURSEVEN,
            "facilities": ["TRAIN_STATION", "BIKE_SHARING"],
            "evses": [("AC22", "AVAILABLE"), ("AC22", "AVAILABLE")],
        },
        {
            **nl, "ocpi_id": "NLMST001", "name": "Maastricht Aachen Airport",
            "address": "Vliegveldweg 90", "postal_code": "6199 AD",
            "city": "Maastricht-Airport", "state": "Limburg", "latitude": "50.914090",
            "longitude": "5.775370", "parking_type": "PARKING_LOT",
            "opening_times": TWENTYFOURSEVEN, "facilities": ["AIRPORT", "TAXI_STAND"],
            "evses": [("AC11", "AVAILABLE"), ("AC11", "AVAILABLE"), ("AC11", "AVAILABLE"),
                      ("AC11", "CHARGING")],
        },
        {
            # Not public: only the fleet's drivers may see it (publish_allowed_to).
            **nl, "ocpi_id": "NLAME001", "name": "Fleet depot Amersfoort",
            "address": "De Brand 10", "postal_code": "3823 LJ", "city": "Amersfoort",
            "state": "Utrecht", "latitude": "52.176480", "longitude": "5.426550",
            "parking_type": "PARKING_LOT", "opening_times": depot,
            "charging_when_closed": True, "publish": False,
            "publish_allowed_to": [
                {"group_id": "ACME-FLEET"},
                {"visual_number": "NL-ACM-000123-4", "issuer": "Acme Mobility"},
            ],
            "evses": [("AC11", "AVAILABLE"), ("AC11", "AVAILABLE"), ("AC11", "CHARGING"),
                      ("AC11", "AVAILABLE")],
        },
        {
            **de, "ocpi_id": "DEBER001", "name": "Potsdamer Platz Arkaden",
            "address": "Alte Potsdamer Straße 7", "postal_code": "10785", "city": "Berlin",
            "state": "Berlin", "latitude": "52.507390", "longitude": "13.374060",
            "parking_type": "UNDERGROUND_GARAGE", "opening_times": mall_berlin,
            "charging_when_closed": False, "facilities": ["MALL", "RESTAURANT", "METRO_STATION"],
            "floor_level": "-1",
            "evses": [("AC22", "AVAILABLE"), ("AC22", "CHARGING"), ("AC22", "AVAILABLE"),
                      ("AC22", "AVAILABLE")],
        },
        {
            **de, "ocpi_id": "DEBER002", "name": "Kastanienallee",
            "address": "Kastanienallee 12", "postal_code": "10435", "city": "Berlin",
            "state": "Berlin", "latitude": "52.535740", "longitude": "13.409110",
            "parking_type": "ON_STREET", "opening_times": TWENTYFOURSEVEN,
            "facilities": ["TRAM_STOP"], "parking_restrictions": ["EV_ONLY"],
            "evses": [("AC11", "AVAILABLE"), ("AC11", "CHARGING")],
        },
        {
            **de, "ocpi_id": "DEHAM001", "name": "HafenCity Am Kaiserkai",
            "address": "Am Kaiserkai 10", "postal_code": "20457", "city": "Hamburg",
            "state": "Hamburg", "latitude": "53.541450", "longitude": "9.984320",
            "parking_type": "UNDERGROUND_GARAGE", "opening_times": TWENTYFOURSEVEN,
            "facilities": ["RESTAURANT", "CAFE", "MUSEUM"], "floor_level": "-1",
            "evses": [("AC22", "AVAILABLE"), ("AC22", "AVAILABLE"), ("DC50", "AVAILABLE")],
        },
        {
            **de, "ocpi_id": "DEMUC001", "name": "Parkhaus Hauptbahnhof",
            "address": "Bayerstraße 10a", "postal_code": "80335", "city": "München",
            "state": "Bayern", "latitude": "48.140230", "longitude": "11.558950",
            "parking_type": "PARKING_GARAGE", "opening_times": TWENTYFOURSEVEN,
            "facilities": ["TRAIN_STATION", "METRO_STATION"], "floor_level": "2",
            "evses": [("AC22", "AVAILABLE"), ("AC22", "CHARGING"), ("AC22", "AVAILABLE"),
                      ("AC22", "UNKNOWN"), ("DC150", "AVAILABLE")],
        },
        {
            **de, "ocpi_id": "DECGN001", "name": "Koelnmesse P21",
            "address": "Messeplatz 1", "postal_code": "50679", "city": "Köln",
            "state": "Nordrhein-Westfalen", "latitude": "50.946830", "longitude": "6.983170",
            "parking_type": "PARKING_LOT", "opening_times": TWENTYFOURSEVEN,
            "facilities": ["PARKING_LOT", "TRAIN_STATION"],
            "evses": [("AC22", "AVAILABLE"), ("AC22", "AVAILABLE"), ("AC22", "AVAILABLE")],
        },
        {
            **de, "ocpi_id": "DEFRA001", "name": "Flughafen Frankfurt P36",
            "address": "Hugo-Eckener-Ring 1", "postal_code": "60549",
            "city": "Frankfurt am Main", "state": "Hessen", "latitude": "50.0510410",
            "longitude": "8.5710870", "parking_type": "PARKING_GARAGE",
            "opening_times": TWENTYFOURSEVEN, "facilities": ["AIRPORT", "HOTEL", "TAXI_STAND"],
            "evses": [("AC11", "AVAILABLE"), ("AC11", "CHARGING"), ("AC11", "AVAILABLE"),
                      ("AC11", "AVAILABLE"), ("DC150", "CHARGING")],
        },
        {
            **de, "ocpi_id": "DEDUS001", "name": "Königsallee",
            "address": "Königsallee 60", "postal_code": "40212", "city": "Düsseldorf",
            "state": "Nordrhein-Westfalen", "latitude": "51.222510", "longitude": "6.779630",
            "parking_type": "ON_STREET", "opening_times": TWENTYFOURSEVEN,
            "facilities": ["MALL", "HOTEL"],
            "evses": [("AC22", "AVAILABLE"), ("AC22", "AVAILABLE")],
        },
        {
            **de, "ocpi_id": "DESTR001", "name": "Mercedes-Benz Museum",
            "address": "Mercedesstraße 100", "postal_code": "70372", "city": "Stuttgart",
            "state": "Baden-Württemberg", "latitude": "48.788330", "longitude": "9.233880",
            "parking_type": "PARKING_LOT", "opening_times": TWENTYFOURSEVEN,
            "facilities": ["MUSEUM", "RESTAURANT"],
            "evses": [("AC22", "AVAILABLE"), ("AC22", "AVAILABLE"), ("DC50", "AVAILABLE")],
        },
        {
            **de, "ocpi_id": "DELEJ001", "name": "Leipzig Hauptbahnhof Ost",
            "address": "Willy-Brandt-Platz 5", "postal_code": "04109", "city": "Leipzig",
            "state": "Sachsen", "latitude": "51.345530", "longitude": "12.382580",
            "parking_type": "PARKING_GARAGE", "opening_times": TWENTYFOURSEVEN,
            "facilities": ["TRAIN_STATION", "TRAM_STOP"],
            "evses": [("AC22", "AVAILABLE"), ("AC22", "CHARGING"), ("AC22", "AVAILABLE")],
        },
        {
            **de, "ocpi_id": "DEPEG001", "name": "Rastanlage Fränkische Schweiz (A9)",
            "address": "A9 Rastanlage Fränkische Schweiz/Pegnitz Ost", "postal_code": "91257",
            "city": "Pegnitz", "state": "Bayern", "latitude": "49.763070",
            "longitude": "11.531210", "parking_type": "ALONG_MOTORWAY",
            "opening_times": TWENTYFOURSEVEN,
            "facilities": ["FUEL_STATION", "RESTAURANT", "WIFI"],
            "evses": [("DC300", "AVAILABLE"), ("DC300", "CHARGING"), ("DC300", "AVAILABLE"),
                      ("DC300", "AVAILABLE"), ("DC300", "OUTOFORDER"), ("DC300", "AVAILABLE")],
        },
        {
            # Being built: the EVSEs are PLANNED, with the opening date announced.
            **de, "ocpi_id": "DEHAJ001", "name": "Expo Plaza",
            "address": "Expo Plaza 1", "postal_code": "30539", "city": "Hannover",
            "state": "Niedersachsen", "latitude": "52.322710", "longitude": "9.815830",
            "parking_type": "PARKING_LOT", "opening_times": TWENTYFOURSEVEN,
            "facilities": ["PARKING_LOT"],
            "status_schedule": [
                {"period_begin": f"{year + 1}-03-01T00:00:00Z", "status": "AVAILABLE"}
            ],
            "evses": [("AC22", "PLANNED"), ("AC22", "PLANNED"), ("DC150", "PLANNED")],
        },
    ]  # fmt: skip


def _location_fields(spec: dict[str, Any], *, operator: dict) -> dict[str, Any]:
    location_id = spec["ocpi_id"]
    fields = {
        key: spec[key]
        for key in (
            "name", "address", "postal_code", "city", "state", "country", "latitude",
            "longitude", "parking_type", "time_zone", "opening_times", "energy_mix",
        )
    }  # fmt: skip
    fields.update(
        publish=spec.get("publish", True),
        publish_allowed_to=spec.get("publish_allowed_to", []),
        facilities=spec.get("facilities", []),
        directions=spec.get("directions", []),
        related_locations=spec.get("related_locations", []),
        charging_when_closed=spec.get("charging_when_closed"),
        operator=operator,
        suboperator=spec.get("suboperator"),
        owner=spec.get("owner"),
        images=[
            {
                "url": f"{IMAGE_BASE}/locations/{location_id}.jpg",
                "thumbnail": f"{IMAGE_BASE}/locations/{location_id}_thumb.jpg",
                "category": "LOCATION",
                "type": "jpeg",
                "width": 1024,
                "height": 768,
            }
        ],
    )
    return fields


def _evses(spec: dict[str, Any], number: int, *, country_code: str, party_id: str) -> list:
    tariffs = {
        **(NL_TARIFFS if spec["country"] == "NLD" else DE_TARIFFS),
        **spec.get("tariffs", {}),
    }
    evses = []
    for n, (kind, status) in enumerate(spec["evses"], start=1):
        connectors, capabilities = KINDS[kind]
        current = "DC" if kind.startswith("DC") else "AC"
        evses.append(
            {
                "uid": f"{spec['ocpi_id']}-E{n}",
                "evse_id": f"{country_code}*{party_id}*E{number:05d}*{n}",
                "status": status,
                "status_schedule": spec.get("status_schedule", []) if status == "PLANNED" else [],
                "capabilities": capabilities,
                "physical_reference": f"{number:02d}-{n}",
                "floor_level": spec.get("floor_level", ""),
                "parking_restrictions": spec.get("parking_restrictions", []),
                "images": [
                    {
                        "url": f"{IMAGE_BASE}/chargers/{kind.lower()}.png",
                        "thumbnail": f"{IMAGE_BASE}/chargers/{kind.lower()}_thumb.png",
                        "category": "CHARGER",
                        "type": "png",
                        "width": 800,
                        "height": 600,
                    }
                ],
                "connectors": [
                    {
                        "ocpi_id": str(c),
                        "standard": standard,
                        "format": fmt,
                        "power_type": power_type,
                        "max_voltage": volts,
                        "max_amperage": amps,
                        "max_electric_power": watts,
                        "tariff_ids": tariffs[current],
                        "terms_and_conditions": "https://www.example.com/terms",
                    }
                    for c, (standard, fmt, power_type, volts, amps, watts) in enumerate(
                        connectors, start=1
                    )
                ],
            }
        )
    return evses


def seed_demo() -> dict[str, SyncResult]:
    """Create or update the demo network; returns what happened per kind of object."""
    country_code, party_id = settings.OCPI_COUNTRY_CODE, settings.OCPI_PARTY_ID
    operator = {"name": settings.OCPI_BUSINESS_NAME}
    if settings.OCPI_BUSINESS_WEBSITE:
        operator["website"] = settings.OCPI_BUSINESS_WEBSITE
    results = {"tariffs": SyncResult(), "network": SyncResult()}
    with transaction.atomic():
        # Tariffs first: connectors refer to them and partners need them first (§4.1).
        for tariff in demo_tariffs():
            _, result = tariff_sync(
                country_code=country_code,
                party_id=party_id,
                ocpi_id=tariff["ocpi_id"],
                fields=tariff["fields"],
                elements=tariff["elements"],
            )
            results["tariffs"].merge(result)
        for number, spec in enumerate(demo_locations(), start=1):
            _, result = location_sync(
                country_code=country_code,
                party_id=party_id,
                ocpi_id=spec["ocpi_id"],
                fields=_location_fields(spec, operator=operator),
                evses=_evses(spec, number, country_code=country_code, party_id=party_id),
            )
            results["network"].merge(result)
    return results


class Command(BaseCommand):
    help = "Create (or bring up to date) the demo network: 25 locations in NL and DE, tariffs."

    def handle(self, *args, **options) -> None:
        locations = demo_locations()
        results = seed_demo()
        evses = sum(len(spec["evses"]) for spec in locations)
        connectors = sum(len(KINDS[kind][0]) for spec in locations for kind, _ in spec["evses"])
        countries = {c: sum(s["country"] == c for s in locations) for c in ("NLD", "DEU")}
        self.stdout.write(
            f"Demo network ({settings.OCPI_COUNTRY_CODE}*{settings.OCPI_PARTY_ID}): "
            f"{len(locations)} locations ({countries['NLD']} NL, {countries['DEU']} DE), "
            f"{evses} EVSEs, {connectors} connectors, {len(demo_tariffs())} tariffs."
        )
        for kind, result in results.items():
            self.stdout.write(
                f"  {kind}: {result.created} created, {result.updated} updated, "
                f"{result.unchanged} unchanged"
            )
