"""Locations Sender endpoints. PLACEHOLDER: being written."""

from ...views import OCPIView


class LocationListView(OCPIView):
    pass


class LocationDetailView(OCPIView):
    pass


class EVSEDetailView(OCPIView):
    pass


class ConnectorDetailView(OCPIView):
    pass
