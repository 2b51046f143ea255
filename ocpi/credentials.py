"""Credentials module endpoint (PROTOCOL.md §3). PLACEHOLDER: being written."""

from .views import OCPIView


class CredentialsView(OCPIView):
    allow_token_a = True
