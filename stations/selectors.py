"""What of the network a roaming partner may see (Locations, EVSEs, Connectors, Tariffs).

Selectors return querysets ready to render: ordered stably (creation, then primary key, as OCPI
pagination needs: PROTOCOL.md §1.8) and with the children prefetched, so a page of any size costs
a fixed number of queries. Ids are CiStrings, matched case-insensitively (the functional unique
indexes on Lower(...) back these lookups).

Visibility (PROTOCOL.md §4.1): only objects owned by one of our CPO roles; of those, Locations
with publish=true, and publish=false ones that name the token holders allowed to see them in
publish_allowed_to (the eMSP needs them to show them to exactly those drivers). A publish=false
Location without publish_allowed_to is private (e.g. a home charger) and never served. EVSEs set
to REMOVED are served: that is how a partner learns they are gone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Prefetch, Q, QuerySet

from .identity import cpo_roles
from .models import EVSE, Connector, Location, PriceComponent, Tariff, TariffElement

if TYPE_CHECKING:
    from ocpi.models import Partner


def _owned_by_us() -> Q:
    """Objects whose country_code/party_id is one of the CPO roles this platform hosts."""
    owned = Q(pk__in=[])
    for role in cpo_roles():
        owned |= Q(
            country_code__lower=role["country_code"].lower(),
            party_id__lower=role["party_id"].lower(),
        )
    return owned


def _visible_locations(*, partner: Partner) -> QuerySet[Location]:
    # `partner` is the seam for partner-specific visibility; today every registered partner
    # sees the same network.
    shared = Q(publish=True) | ~Q(publish_allowed_to=[])
    return Location.objects.filter(_owned_by_us(), shared)


def _connectors() -> Prefetch:
    return Prefetch("connectors", queryset=Connector.objects.order_by("created", "pk"))


def _evses() -> Prefetch:
    return Prefetch(
        "evses",
        queryset=EVSE.objects.order_by("created", "pk").prefetch_related(_connectors()),
    )


def location_list(*, partner: Partner) -> QuerySet[Location]:
    """The Locations `partner` may see, oldest first, EVSEs and Connectors prefetched."""
    return _visible_locations(partner=partner).order_by("created", "pk").prefetch_related(_evses())


def location_get(*, partner: Partner, location_id: str) -> Location | None:
    """One Location `partner` may see, by OCPI id (case-insensitive), or None."""
    return (
        _visible_locations(partner=partner)
        .filter(ocpi_id__lower=location_id.lower())
        .order_by("created", "pk")
        .prefetch_related(_evses())
        .first()
    )


def evse_get(*, partner: Partner, location_id: str, evse_uid: str) -> EVSE | None:
    """One EVSE of a Location `partner` may see, by uid (case-insensitive), or None."""
    return (
        EVSE.objects.filter(
            location__in=_visible_locations(partner=partner).filter(
                ocpi_id__lower=location_id.lower()
            ),
            uid__lower=evse_uid.lower(),
        )
        .order_by("created", "pk")
        .prefetch_related(_connectors())
        .first()
    )


def connector_get(
    *, partner: Partner, location_id: str, evse_uid: str, connector_id: str
) -> Connector | None:
    """One Connector of an EVSE of a Location `partner` may see (ids case-insensitive), or None."""
    return (
        Connector.objects.filter(
            evse__location__in=_visible_locations(partner=partner).filter(
                ocpi_id__lower=location_id.lower()
            ),
            evse__uid__lower=evse_uid.lower(),
            ocpi_id__lower=connector_id.lower(),
        )
        .order_by("created", "pk")
        .first()
    )


def tariff_list(*, partner: Partner) -> QuerySet[Tariff]:
    """The Tariffs `partner` may see, oldest first, elements and price components prefetched
    in their OCPI order (element order matters: PROTOCOL.md §10.14)."""
    elements = TariffElement.objects.order_by("position", "pk").prefetch_related(
        Prefetch("price_components", queryset=PriceComponent.objects.order_by("position", "pk"))
    )
    return (
        Tariff.objects.filter(_owned_by_us())
        .order_by("created", "pk")
        .prefetch_related(Prefetch("elements", queryset=elements))
    )
