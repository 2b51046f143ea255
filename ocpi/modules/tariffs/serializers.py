"""OCPI 2.2.1 Tariff objects from the network models (elements and components prefetched)."""

from typing import Any

from stations.models import PriceComponent, Tariff, TariffElement


def _price(excl_vat, incl_vat) -> dict | None:
    if excl_vat is None:
        return None
    price = {"excl_vat": excl_vat}
    if incl_vat is not None:
        price["incl_vat"] = incl_vat
    return price


def price_component_to_ocpi(component: PriceComponent) -> dict:
    data: dict[str, Any] = {"type": component.type, "price": component.price}
    if component.vat is not None:
        data["vat"] = component.vat
    data["step_size"] = component.step_size
    return data


def restrictions_to_ocpi(element: TariffElement) -> dict:
    restrictions = {}
    for name in TariffElement.RESTRICTION_FIELDS:
        value = getattr(element, name)
        if value not in (None, "", []):
            restrictions[name] = value
    return restrictions


def tariff_element_to_ocpi(element: TariffElement) -> dict:
    data: dict[str, Any] = {
        "price_components": [price_component_to_ocpi(c) for c in element.price_components.all()]
    }
    restrictions = restrictions_to_ocpi(element)
    if restrictions:
        data["restrictions"] = restrictions
    return data


def tariff_to_ocpi(tariff: Tariff) -> dict:
    data: dict[str, Any] = {
        "country_code": tariff.country_code,
        "party_id": tariff.party_id,
        "id": tariff.ocpi_id,
        "currency": tariff.currency,
    }
    if tariff.type:
        data["type"] = tariff.type
    if tariff.tariff_alt_text:
        data["tariff_alt_text"] = tariff.tariff_alt_text
    if tariff.tariff_alt_url:
        data["tariff_alt_url"] = tariff.tariff_alt_url
    min_price = _price(tariff.min_price_excl_vat, tariff.min_price_incl_vat)
    if min_price:
        data["min_price"] = min_price
    max_price = _price(tariff.max_price_excl_vat, tariff.max_price_incl_vat)
    if max_price:
        data["max_price"] = max_price
    data["elements"] = [tariff_element_to_ocpi(e) for e in tariff.elements.all()]
    if tariff.start_date_time:
        data["start_date_time"] = tariff.start_date_time
    if tariff.end_date_time:
        data["end_date_time"] = tariff.end_date_time
    if tariff.energy_mix:
        data["energy_mix"] = tariff.energy_mix
    data["last_updated"] = tariff.last_updated
    return data
