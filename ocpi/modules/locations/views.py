"""Locations Sender endpoints (PROTOCOL.md §4.1): the list, and one Location, EVSE or Connector.

What a partner may see is the selectors' business (stations.selectors); these views validate the
request, render with the one serializer per object, and turn "not found" into HTTP 404 / 2003.
"""

from rest_framework.response import Response

from stations.selectors import connector_get, evse_get, location_get, location_list

from ...envelope import ocpi_response
from ...exceptions import UnknownLocation
from ...views import OCPIListView, OCPIView
from .serializers import connector_to_ocpi, evse_to_ocpi, location_to_ocpi


class LocationListView(OCPIListView):
    """GET {locations_url}: every Location shared with the caller, paginated, with all EVSEs."""

    def get_queryset(self):
        return location_list(partner=self.partner)

    def serialize(self, obj) -> dict:
        return location_to_ocpi(obj)


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
