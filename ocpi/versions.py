"""Versions and version details endpoints (PROTOCOL.md §2). PLACEHOLDER: being written."""

from .views import OCPIView


class VersionsView(OCPIView):
    allow_token_a = True


class VersionDetailsView(OCPIView):
    allow_token_a = True
