"""Tariffs Sender endpoint (PROTOCOL.md §4.4): GET list only (no single-object GET in 2.2.1)."""

from stations.selectors import tariff_list

from ...views import OCPIListView
from .serializers import tariff_to_ocpi


class TariffListView(OCPIListView):
    """GET {tariffs_url}: every Tariff of our CPO roles, paginated, elements in order."""

    def get_queryset(self):
        return tariff_list(partner=self.partner)

    def serialize(self, obj) -> dict:
        return tariff_to_ocpi(obj)
