"""OCPI 2.1.1 Location, EVSE and Connector (PROTOCOL.md §8 "Locations"), from the same models
as the 2.2.1 objects, and the 2.1.1 Locations Sender endpoints.

What differs from 2.2.1, and the choices made where 2.1.1 cannot say what our data says:
- Location: no country_code, party_id, publish, publish_allowed_to, state. `type` (LocationType,
  required) comes from `parking_type`: the four values both versions share map to themselves,
  ALONG_MOTORWAY and ON_DRIVEWAY to OTHER, none to UNKNOWN. `postal_code` is required: an
  empty string when we have none. `address` is string(45): longer ones are cut.
- 2.1.1 cannot restrict a Location to some drivers (publish_allowed_to), so unpublished
  Locations are not shown to 2.1.1 partners at all (views and pushes).
- GeoLocation: exactly 6 decimals (rounded half up). EnvironmentalImpact has `source` where
  2.2.1 has `category`.
- Enums are smaller: capabilities and facilities 2.1.1 lacks are left out; AC_2_PHASE and
  AC_2_PHASE_SPLIT become AC_1_PHASE (the conservative power estimate); a connector whose
  standard 2.1.1 lacks (GB/T, NEMA, ...) is left out of Locations (an EVSE left without
  connectors with it), but kept where it is the connector of a session or CDR.
- Connector: `voltage`/`amperage` (the model's max_voltage/max_amperage), no
  max_electric_power, one `tariff_id`: the first of tariff_ids.
- DateTimes in whole seconds; text folded to ASCII (2.1.1 strings are ASCII: ocpi.versioning).
"""

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from rest_framework.response import Response

from stations.models import EVSE, Connector, Location
from stations.selectors import connector_get, evse_get, location_get

from ...envelope import ocpi_response
from ...exceptions import UnknownLocation
from ...versioning import V211View, ascii_strings, ascii_text, whole_seconds
from ...views import OCPIView
from .serializers import _put_optional
from .views import LocationListView

LOCATION_TYPES = ("ON_STREET", "PARKING_GARAGE", "UNDERGROUND_GARAGE", "PARKING_LOT")
CAPABILITIES = frozenset(
    {
        "CHARGING_PROFILE_CAPABLE", "CREDIT_CARD_PAYABLE", "REMOTE_START_STOP_CAPABLE",
        "RESERVABLE", "RFID_READER", "UNLOCK_CAPABLE",
    }
)  # fmt: skip
FACILITIES = frozenset(
    {
        "HOTEL", "RESTAURANT", "CAFE", "MALL", "SUPERMARKET", "SPORT", "RECREATION_AREA",
        "NATURE", "MUSEUM", "BUS_STOP", "TAXI_STAND", "TRAIN_STATION", "AIRPORT",
        "CARPOOL_PARKING", "FUEL_STATION", "WIFI",
    }
)  # fmt: skip
CONNECTOR_TYPES = frozenset(
    ["CHADEMO"]
    + [f"DOMESTIC_{c}" for c in "ABCDEFGHIJKL"]
    + ["IEC_60309_2_single_16", "IEC_60309_2_three_16", "IEC_60309_2_three_32"]
    + ["IEC_60309_2_three_64", "IEC_62196_T1", "IEC_62196_T1_COMBO", "IEC_62196_T2"]
    + ["IEC_62196_T2_COMBO", "IEC_62196_T3A", "IEC_62196_T3C", "TESLA_R", "TESLA_S"]
)
POWER_TYPES = {
    "AC_1_PHASE": "AC_1_PHASE",
    "AC_2_PHASE": "AC_1_PHASE",
    "AC_2_PHASE_SPLIT": "AC_1_PHASE",
    "AC_3_PHASE": "AC_3_PHASE",
    "DC": "DC",
}
_SIX_DECIMALS = Decimal("0.000001")


# --- value objects --------------------------------------------------------------------------
def location_type(parking_type: str) -> str:
    """The 2.1.1 LocationType for a 2.2.1 ParkingType (blank: UNKNOWN)."""
    if not parking_type:
        return "UNKNOWN"
    return parking_type if parking_type in LOCATION_TYPES else "OTHER"


def six_decimals(value: str) -> str:
    """A coordinate with exactly 6 decimals, as the 2.1.1 GeoLocation regex wants."""
    return format(Decimal(value).quantize(_SIX_DECIMALS, rounding=ROUND_HALF_UP), "f")


def coordinates_211(latitude: str, longitude: str) -> dict:
    return {"latitude": six_decimals(latitude), "longitude": six_decimals(longitude)}


def energy_mix_211(energy_mix: dict | None) -> dict | None:
    """A 2.2.1 EnergyMix as 2.1.1: EnvironmentalImpact `category` becomes `source`."""
    if not energy_mix:
        return None
    data = dict(energy_mix)
    if data.get("environ_impact"):
        data["environ_impact"] = [
            {"source": item.get("source", item.get("category")), "amount": item["amount"]}
            for item in data["environ_impact"]
        ]
    return data


def _related_locations(related: list[dict]) -> list[dict]:
    return [
        {**item, **coordinates_211(item["latitude"], item["longitude"])} for item in related or []
    ]


# --- objects ----------------------------------------------------------------------------------
def connector_to_ocpi_211(connector: Connector) -> dict:
    data: dict[str, Any] = {
        "id": connector.ocpi_id,
        "standard": connector.standard,
        "format": connector.format,
        "power_type": POWER_TYPES.get(connector.power_type, connector.power_type),
        "voltage": connector.max_voltage,
        "amperage": connector.max_amperage,
    }
    if connector.tariff_ids:
        data["tariff_id"] = connector.tariff_ids[0]
    _put_optional(data, "terms_and_conditions", connector.terms_and_conditions)
    data["last_updated"] = whole_seconds(connector.last_updated)
    return ascii_strings(data)


def evse_to_ocpi_211(evse: EVSE, *, connectors: list[Connector] | None = None) -> dict:
    """The EVSE with its connectors 2.1.1 can describe, or with exactly `connectors`."""
    if connectors is None:
        connectors = [c for c in evse.connectors.all() if c.standard in CONNECTOR_TYPES]
    data: dict[str, Any] = {"uid": evse.uid}
    _put_optional(data, "evse_id", evse.evse_id)
    data["status"] = evse.status
    _put_optional(data, "status_schedule", evse.status_schedule)
    _put_optional(data, "capabilities", [c for c in evse.capabilities if c in CAPABILITIES])
    data["connectors"] = [connector_to_ocpi_211(c) for c in connectors]
    _put_optional(data, "floor_level", evse.floor_level)
    if evse.latitude and evse.longitude:
        data["coordinates"] = coordinates_211(evse.latitude, evse.longitude)
    _put_optional(data, "physical_reference", evse.physical_reference)
    _put_optional(data, "directions", evse.directions)
    _put_optional(data, "parking_restrictions", evse.parking_restrictions)
    _put_optional(data, "images", evse.images)
    data["last_updated"] = whole_seconds(evse.last_updated)
    return ascii_strings(data)


def location_to_ocpi_211(
    location: Location, *, evse: EVSE | None = None, connector: Connector | None = None
) -> dict:
    """The 2.1.1 Location: with all its EVSEs (prefetched), or, for a Session or CDR, only
    `evse` with only `connector`."""
    data: dict[str, Any] = {"id": location.ocpi_id, "type": location_type(location.parking_type)}
    _put_optional(data, "name", location.name)
    data["address"] = ascii_text(location.address)[:45]
    data["city"] = location.city
    data["postal_code"] = location.postal_code or ""
    data["country"] = location.country
    data["coordinates"] = coordinates_211(location.latitude, location.longitude)
    _put_optional(data, "related_locations", _related_locations(location.related_locations))
    if evse is not None:
        evses = [evse_to_ocpi_211(evse, connectors=[connector] if connector else None)]
    else:
        evses = [evse_to_ocpi_211(e) for e in location.evses.all()]
    # An EVSE needs at least one connector (one still being set up is not shown yet).
    _put_optional(data, "evses", [e for e in evses if e["connectors"]])
    _put_optional(data, "directions", location.directions)
    _put_optional(data, "operator", location.operator)
    _put_optional(data, "suboperator", location.suboperator)
    _put_optional(data, "owner", location.owner)
    _put_optional(data, "facilities", [f for f in location.facilities if f in FACILITIES])
    _put_optional(data, "time_zone", location.time_zone)
    _put_optional(data, "opening_times", location.opening_times)
    if location.charging_when_closed is not None:
        data["charging_when_closed"] = location.charging_when_closed
    _put_optional(data, "images", location.images)
    _put_optional(data, "energy_mix", energy_mix_211(location.energy_mix))
    data["last_updated"] = whole_seconds(location.last_updated)
    return ascii_strings(data)


# --- Sender endpoints -------------------------------------------------------------------------
class LocationListView211(V211View, LocationListView):
    """GET {locations_url} (2.1.1): the same list, published Locations only, 2.1.1 objects."""

    def get_queryset(self):
        return super().get_queryset().filter(publish=True)

    def serialize(self, obj) -> dict:
        return location_to_ocpi_211(obj)


def _published(location: Location | None, location_id: str) -> Location:
    if location is None or not location.publish:
        raise UnknownLocation(f"Unknown location {location_id!r}")
    return location


class LocationDetailView211(V211View, OCPIView):
    """GET {locations_url}/{location_id} (2.1.1)."""

    def get(self, request, location_id: str) -> Response:
        location = location_get(partner=self.partner, location_id=location_id)
        return ocpi_response(location_to_ocpi_211(_published(location, location_id)))


class EVSEDetailView211(V211View, OCPIView):
    """GET {locations_url}/{location_id}/{evse_uid} (2.1.1)."""

    def get(self, request, location_id: str, evse_uid: str) -> Response:
        evse = evse_get(partner=self.partner, location_id=location_id, evse_uid=evse_uid)
        if evse is None or not evse.location.publish:
            raise UnknownLocation(f"Unknown EVSE {evse_uid!r} at location {location_id!r}")
        return ocpi_response(evse_to_ocpi_211(evse))


class ConnectorDetailView211(V211View, OCPIView):
    """GET {locations_url}/{location_id}/{evse_uid}/{connector_id} (2.1.1)."""

    def get(self, request, location_id: str, evse_uid: str, connector_id: str) -> Response:
        connector = connector_get(
            partner=self.partner,
            location_id=location_id,
            evse_uid=evse_uid,
            connector_id=connector_id,
        )
        if connector is None or not connector.evse.location.publish:
            raise UnknownLocation(
                f"Unknown connector {connector_id!r} of EVSE {evse_uid!r} at {location_id!r}"
            )
        return ocpi_response(connector_to_ocpi_211(connector))
