"""OCPI 2.2.1 Location, EVSE and Connector objects from the network models.

Plain functions over model instances (with evses/connectors prefetched): one definition of each
object, used by the Sender endpoints and by pushes alike. Optional fields are left out when empty
rather than sent as null (PROTOCOL.md §0).

The Locations list feeds the same functions plain rows instead of model instances
(`locations_from_rows`: about ten times less Python per page), objects that have the same
attributes, with JSON fields passed through as their JSON text and `last_updated` already in
its OCPI form; the JSON a partner receives is the same.
"""

from collections import namedtuple
from functools import lru_cache
from typing import Any

import orjson
from django.db.models import JSONField

from stations.models import EVSE, Connector, Location
from stations.selectors import CONNECTOR_COLUMNS, EVSE_COLUMNS, LOCATION_COLUMNS


def _put_optional(target: dict, key: str, value: Any) -> None:
    if value not in (None, "", [], {}):
        target[key] = value


# The functions below test optional fields for truth where _put_optional compares: the same for
# them all (strings, and JSON lists and objects, never a bare 0 or false), and they run 1,100
# times per page of the Locations list.


def connector_to_ocpi(connector: Connector) -> dict:
    data = {
        "id": connector.ocpi_id,
        "standard": connector.standard,
        "format": connector.format,
        "power_type": connector.power_type,
        "max_voltage": connector.max_voltage,
        "max_amperage": connector.max_amperage,
    }
    if connector.max_electric_power is not None:
        data["max_electric_power"] = connector.max_electric_power
    if connector.tariff_ids:
        data["tariff_ids"] = connector.tariff_ids
    if connector.terms_and_conditions:
        data["terms_and_conditions"] = connector.terms_and_conditions
    data["last_updated"] = connector.last_updated
    return data


def evse_to_ocpi(evse: EVSE) -> dict:
    data: dict[str, Any] = {"uid": evse.uid}
    if evse.evse_id:
        data["evse_id"] = evse.evse_id
    data["status"] = evse.status
    if evse.status_schedule:
        data["status_schedule"] = evse.status_schedule
    if evse.capabilities:
        data["capabilities"] = evse.capabilities
    data["connectors"] = [connector_to_ocpi(c) for c in evse.connectors.all()]
    if evse.floor_level:
        data["floor_level"] = evse.floor_level
    if evse.latitude and evse.longitude:
        data["coordinates"] = {"latitude": evse.latitude, "longitude": evse.longitude}
    if evse.physical_reference:
        data["physical_reference"] = evse.physical_reference
    if evse.directions:
        data["directions"] = evse.directions
    if evse.parking_restrictions:
        data["parking_restrictions"] = evse.parking_restrictions
    if evse.images:
        data["images"] = evse.images
    data["last_updated"] = evse.last_updated
    return data


def location_to_ocpi(location: Location) -> dict:
    data: dict[str, Any] = {
        "country_code": location.country_code,
        "party_id": location.party_id,
        "id": location.ocpi_id,
        "publish": location.publish,
    }
    if not location.publish and location.publish_allowed_to:
        data["publish_allowed_to"] = location.publish_allowed_to
    if location.name:
        data["name"] = location.name
    data["address"] = location.address
    data["city"] = location.city
    if location.postal_code:
        data["postal_code"] = location.postal_code
    if location.state:
        data["state"] = location.state
    data["country"] = location.country
    data["coordinates"] = {"latitude": location.latitude, "longitude": location.longitude}
    if location.related_locations:
        data["related_locations"] = location.related_locations
    if location.parking_type:
        data["parking_type"] = location.parking_type
    # An EVSE needs at least one connector in OCPI: one still being set up is not shown yet.
    evses = [evse_to_ocpi(e) for e in location.evses.all()]
    evses = [e for e in evses if e["connectors"]]
    if evses:
        data["evses"] = evses
    for key in _LOCATION_TAIL:
        value = getattr(location, key)
        if value:
            data[key] = value
    data["time_zone"] = location.time_zone
    if location.opening_times:
        data["opening_times"] = location.opening_times
    if location.charging_when_closed is not None:
        data["charging_when_closed"] = location.charging_when_closed
    if location.images:
        data["images"] = location.images
    if location.energy_mix:
        data["energy_mix"] = location.energy_mix
    data["last_updated"] = location.last_updated
    return data


_LOCATION_TAIL = ("directions", "operator", "suboperator", "owner", "facilities")


# --- the Locations list: the functions above over plain rows -----------------------------------
class _Loaded(list):
    """Children already at hand, with the `.all()` the functions above call on a related
    manager."""

    def all(self) -> list:
        return self


_EMPTY_JSON = frozenset({"[]", "{}", "null"})


def _json_columns(model, columns: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(
        i for i, c in enumerate(columns) if isinstance(model._meta.get_field(c), JSONField)
    )


_LOCATION_JSON = _json_columns(Location, LOCATION_COLUMNS)
_EVSE_JSON = _json_columns(EVSE, EVSE_COLUMNS)
_CONNECTOR_JSON = _json_columns(Connector, CONNECTOR_COLUMNS)
_EVSERow = namedtuple("EVSERow", (*EVSE_COLUMNS, "connectors"))
_ConnectorRow = namedtuple("ConnectorRow", CONNECTOR_COLUMNS)


@lru_cache(maxsize=16)
def _location_row(annotations: tuple[str, ...]) -> type:
    return namedtuple("LocationRow", (*LOCATION_COLUMNS, *annotations, "evses"))


def _prepared(raw: tuple, json_at: tuple[int, ...]) -> list:
    """A row's values with its JSON texts as the functions above take them: None when empty
    (left out, as a decoded [] or {} would be), else embedded in the output undecoded. A
    `last_updated` that is not text yet stays a datetime: ocpi.jsonutil writes it the same."""
    values = list(raw)
    for i in json_at:
        text = values[i]
        if text is not None:
            values[i] = None if text in _EMPTY_JSON else orjson.Fragment(text)
    return values


def locations_from_rows(
    location_rows: list[tuple], children_rows: list[tuple], *, annotations: tuple[str, ...] = ()
) -> list:
    """Objects `location_to_ocpi` renders like Location instances with their EVSEs and
    connectors prefetched, from stations.selectors.location_rows (with the names of the
    queryset's `annotations`, which become attributes too) and location_children_rows."""
    location_row = _location_row(tuple(annotations))
    locations, evses_of = [], {}
    for raw in location_rows:
        values = _prepared(raw, _LOCATION_JSON)
        location = location_row._make((*values, _Loaded()))
        locations.append(location)
        evses_of[location.id] = location.evses
    split = len(EVSE_COLUMNS)
    evse = None
    for raw in children_rows:
        if evse is None or raw[0] != evse.id:
            values = _prepared(raw[:split], _EVSE_JSON)
            evse = _EVSERow._make((*values, _Loaded()))
            evses_of[evse.location_id].append(evse)
        values = _prepared(raw[split:], _CONNECTOR_JSON)
        evse.connectors.append(_ConnectorRow._make(values))
    return locations
