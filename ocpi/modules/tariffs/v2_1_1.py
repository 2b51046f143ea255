"""OCPI 2.1.1 Tariff objects (PROTOCOL.md §8 "Tariffs") from the same models as 2.2.1, and the
2.1.1 Tariffs Sender endpoint.

A 2.1.1 Tariff has id, currency, tariff_alt_text, tariff_alt_url, elements, energy_mix and
last_updated only (no country_code, party_id, type, min/max price, start/end date); its
PriceComponents have no `vat`. TariffRestrictions have no min/max_current and no reservation:
an element restricted on those cannot be said in 2.1.1 (dropping only the restriction would
make it apply always), so it is left out, and the next element of its dimension applies, as a
partner reading it would compute. Elements without price components are not published.
DateTimes in whole seconds, text folded to ASCII (ocpi.versioning).

`tariff_dict_to_211` does the same for a Tariff already frozen as 2.2.1 JSON (a CDR's tariffs,
billing.models_sessions.SessionSnapshot: numbers as decimal strings, DateTimes as ISO strings).
"""

from decimal import Decimal
from typing import Any

from stations.models import PriceComponent, Tariff, TariffElement

from ...versioning import V211View, ascii_strings, whole_seconds
from ..locations.v2_1_1 import energy_mix_211
from .views import TariffListView

#: TariffRestrictions fields 2.1.1 has.
RESTRICTIONS = (
    "start_time", "end_time", "start_date", "end_date", "min_kwh", "max_kwh", "min_power",
    "max_power", "min_duration", "max_duration", "day_of_week",
)  # fmt: skip
#: Restrictions 2.1.1 cannot express: an element with one of these is left out.
UNSUPPORTED_RESTRICTIONS = ("min_current", "max_current", "reservation")
_DECIMAL_RESTRICTIONS = ("min_kwh", "max_kwh", "min_power", "max_power")


def _present(value) -> bool:
    return value not in (None, "", [])


def price_component_to_ocpi_211(component: PriceComponent) -> dict:
    return {"type": component.type, "price": component.price, "step_size": component.step_size}


def tariff_element_to_ocpi_211(element: TariffElement) -> dict | None:
    """The 2.1.1 TariffElement, or None when it cannot be said in 2.1.1 (see above)."""
    if any(_present(getattr(element, name)) for name in UNSUPPORTED_RESTRICTIONS):
        return None
    components = [price_component_to_ocpi_211(c) for c in element.price_components.all()]
    if not components:
        return None
    data: dict[str, Any] = {"price_components": components}
    restrictions = {
        name: getattr(element, name) for name in RESTRICTIONS if _present(getattr(element, name))
    }
    if restrictions:
        data["restrictions"] = restrictions
    return data


def tariff_to_ocpi_211(tariff: Tariff) -> dict:
    """The 2.1.1 Tariff (elements and components prefetched in order)."""
    data: dict[str, Any] = {"id": tariff.ocpi_id, "currency": tariff.currency}
    if tariff.tariff_alt_text:
        data["tariff_alt_text"] = tariff.tariff_alt_text
    if tariff.tariff_alt_url:
        data["tariff_alt_url"] = tariff.tariff_alt_url
    elements = (tariff_element_to_ocpi_211(e) for e in tariff.elements.all())
    data["elements"] = [e for e in elements if e is not None]
    energy_mix = energy_mix_211(tariff.energy_mix)
    if energy_mix:
        data["energy_mix"] = energy_mix
    data["last_updated"] = whole_seconds(tariff.last_updated)
    return ascii_strings(data)


def _number(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _element_dict_to_211(element: dict) -> dict | None:
    restrictions = element.get("restrictions") or {}
    if any(_present(restrictions.get(name)) for name in UNSUPPORTED_RESTRICTIONS):
        return None
    components = [
        {"type": c["type"], "price": _number(c["price"]), "step_size": c["step_size"]}
        for c in element.get("price_components") or []
    ]
    if not components:
        return None
    data: dict[str, Any] = {"price_components": components}
    kept = {}
    for name in RESTRICTIONS:
        if _present(restrictions.get(name)):
            value = restrictions[name]
            kept[name] = _number(value) if name in _DECIMAL_RESTRICTIONS else value
    if kept:
        data["restrictions"] = kept
    return data


def tariff_dict_to_211(tariff: dict) -> dict:
    """A 2.2.1 Tariff object (as JSON values) as a 2.1.1 Tariff object."""
    data: dict[str, Any] = {"id": tariff["id"], "currency": tariff["currency"]}
    if tariff.get("tariff_alt_text"):
        data["tariff_alt_text"] = tariff["tariff_alt_text"]
    if tariff.get("tariff_alt_url"):
        data["tariff_alt_url"] = tariff["tariff_alt_url"]
    elements = (_element_dict_to_211(e) for e in tariff.get("elements") or [])
    data["elements"] = [e for e in elements if e is not None]
    energy_mix = energy_mix_211(tariff.get("energy_mix"))
    if energy_mix:
        data["energy_mix"] = energy_mix
    data["last_updated"] = whole_seconds(tariff["last_updated"])
    return ascii_strings(data)


class TariffListView211(V211View, TariffListView):
    """GET {tariffs_url} (2.1.1): the same tariffs, as 2.1.1 objects."""

    def serialize(self, obj) -> dict:
        return tariff_to_ocpi_211(obj)
