"""Workflows on the charge network, used by the admin and the seed commands.

The models keep the invariants (validation, `last_updated` bumps, signals for pushes); these
functions only decide what to save. Everything goes through `Model.save()`, so every change here
is pushed to partners, except where a docstring says otherwise.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from .choices import EVSEStatus
from .models import EVSE, Connector, Location, PriceComponent, Tariff, TariffElement


@dataclass
class SyncResult:
    """How many objects a sync created, changed, or found already as wanted."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def merge(self, other: "SyncResult") -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged


def evse_set_status(*, evse: EVSE, status: str) -> EVSE:
    """Set the status of one EVSE. Only a real change bumps `last_updated` (EVSE and location)
    and is pushed; setting the status it already has writes nothing visible."""
    if status not in EVSEStatus.values:
        raise ValidationError(f"{status!r} is not an EVSE status.")
    evse.status = status
    evse.save()
    return evse


def evse_remove(*, evse: EVSE) -> EVSE:
    """Retire an EVSE: OCPI never deletes one (sessions and CDRs refer to it), it becomes
    REMOVED and stays (PROTOCOL.md §4.1). Its `evse_id` is kept for the record."""
    return evse_set_status(evse=evse, status=EVSEStatus.REMOVED)


def evses_set_status(*, evses: Iterable[EVSE], status: str) -> int:
    """Set the status of several EVSEs, each through `save()` (one push per changed EVSE).
    Returns how many actually changed."""
    changed = 0
    with transaction.atomic():
        for evse in evses:
            before = evse.last_updated
            evse_set_status(evse=evse, status=status)
            changed += evse.last_updated != before
    return changed


def _apply(instance, values: dict[str, Any]) -> str:
    """Set `values` on `instance` and save only when OCPI-visible data differs."""
    for name, value in values.items():
        setattr(instance, name, value)
    if instance._state.adding:
        instance.save()
        return "created"
    if instance.changed_ocpi_fields():
        instance.save()
        return "updated"
    return "unchanged"


def location_sync(
    *,
    country_code: str,
    party_id: str,
    ocpi_id: str,
    fields: dict[str, Any],
    evses: Sequence[dict[str, Any]] = (),
    overwrite_status: bool = False,
) -> tuple[Location, SyncResult]:
    """Make one location, its EVSEs and their connectors look like the given data.

    Matches by OCPI id (case-insensitive); creates what is missing, saves what differs and leaves
    identical objects untouched (no `last_updated` bump, no push), so running it again is a
    no-op. Each EVSE dict holds EVSE fields plus `uid` and `connectors` (dicts with `ocpi_id`).
    EVSEs and connectors absent from the data are left alone (OCPI never deletes them).
    An existing EVSE keeps its live `status` unless `overwrite_status`.
    """
    result = SyncResult()
    with transaction.atomic():
        location = Location.objects.filter(
            country_code__lower=country_code.lower(),
            party_id__lower=party_id.lower(),
            ocpi_id__lower=ocpi_id.lower(),
        ).first() or Location(country_code=country_code, party_id=party_id, ocpi_id=ocpi_id)
        result.count(_apply(location, fields))
        for evse_data in evses:
            evse_fields = dict(evse_data)
            uid = evse_fields.pop("uid")
            connectors = evse_fields.pop("connectors", ())
            evse = location.evses.filter(uid__lower=uid.lower()).first()
            if evse is None:
                evse = EVSE(location=location, uid=uid)
            elif not overwrite_status:
                evse_fields.pop("status", None)
            result.count(_apply(evse, evse_fields))
            for connector_data in connectors:
                connector_fields = dict(connector_data)
                connector_id = connector_fields.pop("ocpi_id")
                connector = evse.connectors.filter(
                    ocpi_id__lower=connector_id.lower()
                ).first() or Connector(evse=evse, ocpi_id=connector_id)
                result.count(_apply(connector, connector_fields))
    return location, result


def _normalized(model, values: dict[str, Any], names: Iterable[str]) -> tuple:
    return tuple((name, model._meta.get_field(name).to_python(values.get(name))) for name in names)


def _element_key(restrictions: dict[str, Any], components: Sequence[dict[str, Any]]) -> tuple:
    blank = {name: TariffElement._meta.get_field(name).get_default() for name in
             TariffElement.RESTRICTION_FIELDS}  # fmt: skip
    restriction_key = _normalized(
        TariffElement, {**blank, **restrictions}, TariffElement.RESTRICTION_FIELDS
    )
    component_names = ("type", "price", "vat", "step_size")
    component_key = tuple(
        _normalized(PriceComponent, {"vat": None, "step_size": 1, **c}, component_names)
        for c in components
    )
    return restriction_key, component_key


def _current_elements(tariff: Tariff) -> list[tuple]:
    keys = []
    for element in tariff.elements.prefetch_related("price_components"):
        restrictions = {name: getattr(element, name) for name in TariffElement.RESTRICTION_FIELDS}
        components = [
            {"type": c.type, "price": c.price, "vat": c.vat, "step_size": c.step_size}
            for c in element.price_components.all()
        ]
        keys.append(_element_key(restrictions, components))
    return keys


def tariff_sync(
    *,
    country_code: str,
    party_id: str,
    ocpi_id: str,
    fields: dict[str, Any],
    elements: Sequence[dict[str, Any]],
) -> tuple[Tariff, SyncResult]:
    """Make one tariff look like the given data (fields, plus elements in order, each a dict of
    restriction fields and `price_components`).

    Identical data changes nothing. Different elements are replaced as a whole, validated first,
    and announced with one `tariff_changed` (one push) instead of one per element and component.
    """
    result = SyncResult()
    with transaction.atomic():
        tariff = Tariff.objects.filter(
            country_code__lower=country_code.lower(),
            party_id__lower=party_id.lower(),
            ocpi_id__lower=ocpi_id.lower(),
        ).first() or Tariff(country_code=country_code, party_id=party_id, ocpi_id=ocpi_id)
        outcome = _apply(tariff, fields)
        wanted = [
            _element_key(
                {k: v for k, v in e.items() if k != "price_components"}, e["price_components"]
            )
            for e in elements
        ]
        if outcome == "created" or _current_elements(tariff) != wanted:
            _replace_elements(tariff, elements)
            if outcome == "unchanged":
                outcome = "updated"
        result.count(outcome)
    return tariff, result


def _replace_elements(tariff: Tariff, elements: Sequence[dict[str, Any]]) -> None:
    # A queryset delete and bulk inserts skip the per-part touch(); the single touch() at the
    # end bumps last_updated and announces the finished tariff once.
    tariff.elements.all().delete()
    new_elements, new_components = [], []
    for position, data in enumerate(elements):
        restrictions = {k: v for k, v in data.items() if k != "price_components"}
        element = TariffElement(tariff=tariff, position=position, **restrictions)
        element.full_clean()
        new_elements.append((element, data["price_components"]))
    TariffElement.objects.bulk_create([element for element, _ in new_elements])
    for element, components in new_elements:
        for position, component_data in enumerate(components):
            component = PriceComponent(element=element, position=position, **component_data)
            component.full_clean()
            new_components.append(component)
    PriceComponent.objects.bulk_create(new_components)
    tariff.touch()


def tariff_referencing_connectors(*, tariff: Tariff, limit: int | None = None) -> list[Connector]:
    """Connectors whose `tariff_ids` name this tariff (ids compared case-insensitively), at most
    `limit` of them (a tariff on a large network may be on tens of thousands)."""
    wanted = tariff.ocpi_id.lower()
    # icontains on the JSON text narrows the scan portably (PostgreSQL and SQLite); the exact,
    # case-insensitive match is checked here, on ids only; the matches are loaded at the end.
    candidates = (
        Connector.objects.filter(tariff_ids__icontains=tariff.ocpi_id)
        .order_by("pk")
        .values_list("pk", "tariff_ids")
    )
    found: list[int] = []
    last_pk, page_size = 0, 2000
    while limit is None or len(found) < limit:
        # Keyset pages (LIMIT queries on the primary key) stop early once `limit` are found.
        page = list(candidates.filter(pk__gt=last_pk)[:page_size])
        found += [pk for pk, ids in page if any(t.lower() == wanted for t in ids)]
        if len(page) < page_size:
            break
        last_pk = page[-1][0]
    found = found[:limit] if limit is not None else found
    return list(Connector.objects.select_related("evse").filter(pk__in=found).order_by("pk"))
