"""OCPI 2.2.1 Location, EVSE and Connector objects from the network models.

Plain functions over model instances (with evses/connectors prefetched): one definition of each
object, used by the Sender endpoints and by pushes alike. Optional fields are left out when empty
rather than sent as null (PROTOCOL.md §0).
"""

from typing import Any

from stations.models import EVSE, Connector, Location


def _put_optional(target: dict, key: str, value: Any) -> None:
    if value not in (None, "", [], {}):
        target[key] = value


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
    _put_optional(data, "tariff_ids", connector.tariff_ids)
    _put_optional(data, "terms_and_conditions", connector.terms_and_conditions)
    data["last_updated"] = connector.last_updated
    return data


def evse_to_ocpi(evse: EVSE) -> dict:
    data: dict[str, Any] = {"uid": evse.uid}
    _put_optional(data, "evse_id", evse.evse_id)
    data["status"] = evse.status
    _put_optional(data, "status_schedule", evse.status_schedule)
    _put_optional(data, "capabilities", evse.capabilities)
    data["connectors"] = [connector_to_ocpi(c) for c in evse.connectors.all()]
    _put_optional(data, "floor_level", evse.floor_level)
    if evse.latitude and evse.longitude:
        data["coordinates"] = {"latitude": evse.latitude, "longitude": evse.longitude}
    _put_optional(data, "physical_reference", evse.physical_reference)
    _put_optional(data, "directions", evse.directions)
    _put_optional(data, "parking_restrictions", evse.parking_restrictions)
    _put_optional(data, "images", evse.images)
    data["last_updated"] = evse.last_updated
    return data


def location_to_ocpi(location: Location) -> dict:
    data: dict[str, Any] = {
        "country_code": location.country_code,
        "party_id": location.party_id,
        "id": location.ocpi_id,
        "publish": location.publish,
    }
    if not location.publish:
        _put_optional(data, "publish_allowed_to", location.publish_allowed_to)
    _put_optional(data, "name", location.name)
    data["address"] = location.address
    data["city"] = location.city
    _put_optional(data, "postal_code", location.postal_code)
    _put_optional(data, "state", location.state)
    data["country"] = location.country
    data["coordinates"] = {"latitude": location.latitude, "longitude": location.longitude}
    _put_optional(data, "related_locations", location.related_locations)
    _put_optional(data, "parking_type", location.parking_type)
    # An EVSE needs at least one connector in OCPI: one still being set up is not shown yet.
    evses = [evse_to_ocpi(e) for e in location.evses.all()]
    _put_optional(data, "evses", [e for e in evses if e["connectors"]])
    _put_optional(data, "directions", location.directions)
    _put_optional(data, "operator", location.operator)
    _put_optional(data, "suboperator", location.suboperator)
    _put_optional(data, "owner", location.owner)
    _put_optional(data, "facilities", location.facilities)
    data["time_zone"] = location.time_zone
    _put_optional(data, "opening_times", location.opening_times)
    if location.charging_when_closed is not None:
        data["charging_when_closed"] = location.charging_when_closed
    _put_optional(data, "images", location.images)
    _put_optional(data, "energy_mix", location.energy_mix)
    data["last_updated"] = location.last_updated
    return data
