"""Locations Sender endpoints (PROTOCOL.md §4.1): the list, and one Location, EVSE or Connector.

What a partner may see is the selectors' business (stations.selectors); these views validate the
request, render with the one serializer per object, and turn "not found" into HTTP 404 / 2003.

The list is the endpoint a partner's full sync reads page after page (100,000 Locations: 1,000
pages), so it is built for that (figures: bench/, README): the page found by key from the
positions and total kept between pages (`LOCATION_INDEX`, ocpi.pagination.ListIndex), else by an
index-only deferred join with the total counted in the same query; the Locations and then their
EVSEs with connectors read as plain rows, no model instances. With the partner's token: three
queries per page at any offset; four when the index is rebuilt after a change, or the page is
empty.
"""

from django.conf import settings
from django.db import connections, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils.decorators import method_decorator
from rest_framework.response import Response

from stations.models import Location
from stations.selectors import (
    VISIBILITY_FIELDS,
    connector_get,
    evse_get,
    location_children_rows,
    location_get,
    location_list,
    location_rows,
    location_rows_by_keys,
)
from stations.signals import location_changed

from ...envelope import ocpi_response
from ...exceptions import UnknownLocation
from ...pagination import ListIndex, PageQuery, PageRequest, paginate
from ...views import OCPIListView, OCPIView
from .serializers import connector_to_ocpi, evse_to_ocpi, location_to_ocpi, locations_from_rows

#: Total and positions of the Locations list, kept between pages (ocpi.pagination.ListIndex).
LOCATION_INDEX = ListIndex("locations")


@receiver(location_changed, dispatch_uid="ocpi.locations.totals")
def _location_changed(sender, location, created, changed_fields, **kwargs) -> None:
    if created or not VISIBILITY_FIELDS.isdisjoint(changed_fields):
        LOCATION_INDEX.changed()


@receiver(post_delete, sender=Location, dispatch_uid="ocpi.locations.totals.delete")
def _location_deleted(sender, instance, **kwargs) -> None:
    LOCATION_INDEX.changed()


@method_decorator(transaction.non_atomic_requests, name="dispatch")
class LocationListView(OCPIListView):
    """GET {locations_url}: every Location shared with the caller, paginated, with all EVSEs.

    Read only, so outside ATOMIC_REQUESTS' transaction: no BEGIN and COMMIT round trips (each
    statement reads a consistent snapshot on its own, as it would inside the transaction at
    READ COMMITTED)."""

    def get_queryset(self):
        return location_list(partner=self.partner)

    def serialize(self, obj) -> dict:
        return location_to_ocpi(obj)

    def get(self, request, *args, **kwargs) -> Response:
        page = paginate(
            self.get_queryset(),
            PageRequest.from_query(request.query_params),
            base_url=settings.OCPI_BASE_URL + request.path,
            fetch=self.fetch_page,
            index=LOCATION_INDEX,
        )
        return ocpi_response(self.serialize_page(page.items), headers=page.headers)

    def fetch_page(self, page: PageQuery) -> list:
        """The page's Locations as plain rows for `location_to_ocpi`. A subclass with its own
        serializer (2.1.1) gets model instances, EVSEs and connectors prefetched."""
        if type(self).serialize is not LocationListView.serialize:
            return list(page.queryset)
        using = page.base.db
        if page.keys is not None and connections[using].vendor == "postgresql":
            rows, annotations = location_rows_by_keys(*page.keys, using=using), ()
        else:
            rows = location_rows(page.queryset)
            annotations = tuple(page.queryset.query.annotation_select)
        children = location_children_rows(location_ids=[row[0] for row in rows], using=using)
        return locations_from_rows(rows, children, annotations=annotations)


class LocationDetailView(OCPIView):
    """GET {locations_url}/{location_id}."""

    def get(self, request, location_id: str) -> Response:
        location = location_get(partner=self.partner, location_id=location_id)
        if location is None:
            raise UnknownLocation(f"Unknown location {location_id!r}")
        return ocpi_response(location_to_ocpi(location))


class EVSEDetailView(OCPIView):
    """GET {locations_url}/{location_id}/{evse_uid}."""

    def get(self, request, location_id: str, evse_uid: str) -> Response:
        evse = evse_get(partner=self.partner, location_id=location_id, evse_uid=evse_uid)
        if evse is None:
            raise UnknownLocation(f"Unknown EVSE {evse_uid!r} at location {location_id!r}")
        return ocpi_response(evse_to_ocpi(evse))


class ConnectorDetailView(OCPIView):
    """GET {locations_url}/{location_id}/{evse_uid}/{connector_id}."""

    def get(self, request, location_id: str, evse_uid: str, connector_id: str) -> Response:
        connector = connector_get(
            partner=self.partner,
            location_id=location_id,
            evse_uid=evse_uid,
            connector_id=connector_id,
        )
        if connector is None:
            raise UnknownLocation(
                f"Unknown connector {connector_id!r} of EVSE {evse_uid!r} at {location_id!r}"
            )
        return ocpi_response(connector_to_ocpi(connector))
