"""Tariffs Sender endpoint. PLACEHOLDER: being written."""

from ...views import OCPIView


class TariffListView(OCPIView):
    pass
