"""Load OCPI 2.2.1 Location and Tariff objects (decoded JSON) into the network models.

The inverse of the OCPI layer's serializers, for bringing a network in from OCPI JSON (another
platform's export, the spec's examples, fixtures). Objects are created or updated by their OCPI
identity (country_code, party_id, id; ids matched case-insensitively), with PUT meaning: optional
fields absent from the data are reset to empty. Saving goes through the models, so their
validation (full_clean), last_updated bookkeeping and change signals all apply, and re-importing
unchanged data changes nothing.

Not deleted, as OCPI never deletes them: EVSEs and Connectors missing from a Location's data are
left as they are (import an EVSE with status REMOVED to retire it). A Tariff's elements are
replaced as a whole when they differ, since their order is their identity.

Numbers may come as int, float or Decimal; amounts are stored as Decimal. Malformed data raises
django.core.exceptions.ValidationError naming the field, and nothing of that object is kept.
One leniency: step_size 0 on a FLAT price component (meaningless there, and what the spec's
free-of-charge example sends) is stored as 1.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.dateparse import parse_datetime

from .models import EVSE, Connector, Location, PriceComponent, Tariff, TariffElement


def _required(data: Mapping, key: str, where: str) -> Any:
    value = data.get(key)
    if value is None:
        raise ValidationError(f"{where}.{key} is required")
    return value


def _datetime(value: Any, where: str) -> datetime | None:
    """An OCPI DateTime (no designator = UTC) as an aware UTC datetime."""
    if value is None:
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise ValidationError(f"{where} must be an RFC 3339 date-time, not {value!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _decimal(value: Any, where: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ValidationError(f"{where} must be a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValidationError(f"{where} must be a number") from None
    if not number.is_finite():
        raise ValidationError(f"{where} must be a finite number")
    return number


def _int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        raise ValidationError(f"{where} must be an integer")
    if value != int(value):
        raise ValidationError(f"{where} must be an integer")
    return int(value)


def _plain(value: Any) -> Any:
    """JSON for a JSONField: Decimals (from an exact JSON parse) become int or float."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _list(data: Mapping, key: str) -> list:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError(f"{key} must be a list")
    return _plain(value)


def _set_fields(obj, values: Mapping[str, Any]) -> None:
    for name, value in values.items():
        setattr(obj, name, value)


def _set_last_updated(model, pk: int, value: Any, where: str) -> None:
    stamp = _datetime(value, f"{where}.last_updated")
    if stamp is not None:
        model.objects.filter(pk=pk).update(last_updated=stamp)


# --- Locations --------------------------------------------------------------------------------
def _location_values(data: Mapping) -> dict[str, Any]:
    coordinates = _required(data, "coordinates", "location")
    return {
        "publish": bool(_required(data, "publish", "location")),
        "publish_allowed_to": _list(data, "publish_allowed_to"),
        "name": data.get("name") or "",
        "address": _required(data, "address", "location"),
        "city": _required(data, "city", "location"),
        "postal_code": data.get("postal_code") or "",
        "state": data.get("state") or "",
        "country": _required(data, "country", "location"),
        "latitude": _required(coordinates, "latitude", "location.coordinates"),
        "longitude": _required(coordinates, "longitude", "location.coordinates"),
        "related_locations": _list(data, "related_locations"),
        "parking_type": data.get("parking_type") or "",
        "directions": _list(data, "directions"),
        "operator": _plain(data.get("operator")),
        "suboperator": _plain(data.get("suboperator")),
        "owner": _plain(data.get("owner")),
        "facilities": _list(data, "facilities"),
        "time_zone": _required(data, "time_zone", "location"),
        "opening_times": _plain(data.get("opening_times")),
        "charging_when_closed": data.get("charging_when_closed"),
        "images": _list(data, "images"),
        "energy_mix": _plain(data.get("energy_mix")),
    }


def _evse_values(data: Mapping) -> dict[str, Any]:
    coordinates = data.get("coordinates") or {}
    return {
        "evse_id": data.get("evse_id") or "",
        "status": _required(data, "status", "evse"),
        "status_schedule": _list(data, "status_schedule"),
        "capabilities": _list(data, "capabilities"),
        "floor_level": data.get("floor_level") or "",
        "latitude": coordinates.get("latitude") or "",
        "longitude": coordinates.get("longitude") or "",
        "physical_reference": data.get("physical_reference") or "",
        "directions": _list(data, "directions"),
        "parking_restrictions": _list(data, "parking_restrictions"),
        "images": _list(data, "images"),
    }


def _connector_values(data: Mapping) -> dict[str, Any]:
    return {
        "standard": _required(data, "standard", "connector"),
        "format": _required(data, "format", "connector"),
        "power_type": _required(data, "power_type", "connector"),
        "max_voltage": _int(_required(data, "max_voltage", "connector"), "max_voltage"),
        "max_amperage": _int(_required(data, "max_amperage", "connector"), "max_amperage"),
        "max_electric_power": _int(data.get("max_electric_power"), "max_electric_power"),
        "tariff_ids": _list(data, "tariff_ids"),
        "terms_and_conditions": data.get("terms_and_conditions") or "",
    }


@transaction.atomic
def location_from_ocpi(data: Mapping, *, keep_last_updated: bool = False) -> Location:
    """Create or update a Location with its EVSEs and Connectors from an OCPI Location object.

    keep_last_updated: store the data's last_updated timestamps instead of the import time
    (to keep the owner's history, e.g. when migrating a network).
    """
    if not isinstance(data, Mapping):
        raise ValidationError("a Location must be a JSON object")
    country_code = _required(data, "country_code", "location")
    party_id = _required(data, "party_id", "location")
    ocpi_id = _required(data, "id", "location")
    location = Location.objects.filter(
        country_code__lower=country_code.lower(),
        party_id__lower=party_id.lower(),
        ocpi_id__lower=ocpi_id.lower(),
    ).first() or Location(country_code=country_code, party_id=party_id, ocpi_id=ocpi_id)
    _set_fields(location, _location_values(data))
    location.save()
    for index, evse_data in enumerate(_list_of_objects(data, "evses")):
        _evse_from_ocpi(location, evse_data, f"evses[{index}]", keep_last_updated)
    if keep_last_updated:
        _set_last_updated(Location, location.pk, data.get("last_updated"), "location")
    location.refresh_from_db(fields=["last_updated"])
    return location


def _list_of_objects(data: Mapping, key: str) -> list[Mapping]:
    items = data.get(key) or []
    if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
        raise ValidationError(f"{key} must be a list of objects")
    return items


def _evse_from_ocpi(location: Location, data: Mapping, where: str, keep: bool) -> EVSE:
    uid = _required(data, "uid", where)
    evse = location.evses.filter(uid__lower=uid.lower()).first() or EVSE(location=location, uid=uid)
    _set_fields(evse, _evse_values(data))
    evse.save()
    connectors = _list_of_objects(data, "connectors")
    if not connectors:
        raise ValidationError(f"{where}.connectors needs at least one connector")
    for index, connector_data in enumerate(connectors):
        connector_id = _required(connector_data, "id", f"{where}.connectors[{index}]")
        connector = evse.connectors.filter(ocpi_id__lower=connector_id.lower()).first()
        connector = connector or Connector(evse=evse, ocpi_id=connector_id)
        _set_fields(connector, _connector_values(connector_data))
        connector.save()
        if keep:
            _set_last_updated(Connector, connector.pk, connector_data.get("last_updated"), where)
    if keep:
        _set_last_updated(EVSE, evse.pk, data.get("last_updated"), where)
    return evse


# --- Tariffs ----------------------------------------------------------------------------------
def _price(data: Mapping, key: str) -> tuple[Decimal | None, Decimal | None]:
    price = data.get(key)
    if price is None:
        return None, None
    excl = _decimal(_required(price, "excl_vat", key), f"{key}.excl_vat")
    return excl, _decimal(price.get("incl_vat"), f"{key}.incl_vat")


def _tariff_values(data: Mapping) -> dict[str, Any]:
    min_excl, min_incl = _price(data, "min_price")
    max_excl, max_incl = _price(data, "max_price")
    return {
        "currency": _required(data, "currency", "tariff"),
        "type": data.get("type") or "",
        "tariff_alt_text": _list(data, "tariff_alt_text"),
        "tariff_alt_url": data.get("tariff_alt_url") or "",
        "min_price_excl_vat": min_excl,
        "min_price_incl_vat": min_incl,
        "max_price_excl_vat": max_excl,
        "max_price_incl_vat": max_incl,
        "start_date_time": _datetime(data.get("start_date_time"), "start_date_time"),
        "end_date_time": _datetime(data.get("end_date_time"), "end_date_time"),
        "energy_mix": _plain(data.get("energy_mix")),
    }


_DECIMAL_RESTRICTIONS = (
    "min_kwh", "max_kwh", "min_current", "max_current", "min_power", "max_power",
)  # fmt: skip
_INT_RESTRICTIONS = ("min_duration", "max_duration")
_TEXT_RESTRICTIONS = ("start_time", "end_time", "start_date", "end_date", "reservation")


def _restriction_values(data: Mapping | None, where: str) -> dict[str, Any]:
    data = data or {}
    if not isinstance(data, Mapping):
        raise ValidationError(f"{where} must be an object")
    values: dict[str, Any] = {name: data.get(name) or "" for name in _TEXT_RESTRICTIONS}
    values |= {name: _decimal(data.get(name), f"{where}.{name}") for name in _DECIMAL_RESTRICTIONS}
    values |= {name: _int(data.get(name), f"{where}.{name}") for name in _INT_RESTRICTIONS}
    values["day_of_week"] = _list(data, "day_of_week")
    return values


def _component_values(data: Mapping, where: str) -> dict[str, Any]:
    dimension = _required(data, "type", where)
    step_size = _int(_required(data, "step_size", where), f"{where}.step_size")
    if step_size == 0 and dimension == "FLAT":
        # A FLAT price is per session: its step_size means nothing, and the spec's own
        # free-of-charge example sends 0. Our model (and the tariff maths) want at least 1.
        step_size = 1
    return {
        "type": dimension,
        "price": _decimal(_required(data, "price", where), f"{where}.price"),
        "vat": _decimal(data.get("vat"), f"{where}.vat"),
        "step_size": step_size,
    }


def _elements_from_data(data: Mapping) -> list[tuple[dict, list[dict]]]:
    elements = _list_of_objects(data, "elements")
    if not elements:
        raise ValidationError("tariff.elements needs at least one element")
    parsed = []
    for i, element in enumerate(elements):
        components = _list_of_objects(element, "price_components")
        if not components:
            raise ValidationError(f"elements[{i}].price_components needs at least one component")
        parsed.append(
            (
                _restriction_values(element.get("restrictions"), f"elements[{i}].restrictions"),
                [
                    _component_values(c, f"elements[{i}].price_components[{j}]")
                    for j, c in enumerate(components)
                ],
            )
        )
    return parsed


def _elements_in_db(tariff: Tariff) -> list[tuple[dict, list[dict]]]:
    names = (*_TEXT_RESTRICTIONS, *_DECIMAL_RESTRICTIONS, *_INT_RESTRICTIONS, "day_of_week")
    components = ("type", "price", "vat", "step_size")
    return [
        (
            {name: getattr(element, name) for name in names},
            [
                {name: getattr(c, name) for name in components}
                for c in element.price_components.order_by("position", "pk")
            ],
        )
        for element in tariff.elements.order_by("position", "pk")
    ]


@transaction.atomic
def tariff_from_ocpi(data: Mapping, *, keep_last_updated: bool = False) -> Tariff:
    """Create or update a Tariff with its elements from an OCPI Tariff object.

    keep_last_updated: store the data's last_updated instead of the import time.
    """
    if not isinstance(data, Mapping):
        raise ValidationError("a Tariff must be a JSON object")
    country_code = _required(data, "country_code", "tariff")
    party_id = _required(data, "party_id", "tariff")
    ocpi_id = _required(data, "id", "tariff")
    elements = _elements_from_data(data)
    tariff = Tariff.objects.filter(
        country_code__lower=country_code.lower(),
        party_id__lower=party_id.lower(),
        ocpi_id__lower=ocpi_id.lower(),
    ).first() or Tariff(country_code=country_code, party_id=party_id, ocpi_id=ocpi_id)
    _set_fields(tariff, _tariff_values(data))
    tariff.save()
    if _elements_in_db(tariff) != elements:
        for old in tariff.elements.all():
            old.delete()
        for position, (restrictions, components) in enumerate(elements):
            element = TariffElement(tariff=tariff, position=position, **restrictions)
            element.save()
            for index, values in enumerate(components):
                PriceComponent(element=element, position=index, **values).save()
    if keep_last_updated:
        _set_last_updated(Tariff, tariff.pk, data.get("last_updated"), "tariff")
    tariff.refresh_from_db(fields=["last_updated"])
    return tariff
