"""The OCPI 2.1.1 views (PROTOCOL.md §8), routed by ocpi/urls.py with the same URL shapes as 2.2.1.

The 2.1.1 views are subclasses of (or views over the same selectors and services as) the 2.2.1
ones that differ in the serializer or parser they use. No chargingprofiles and no
charging_preferences: 2.1.1 has neither.
"""

from .credentials import CredentialsView
from .modules.cdrs.v2_1_1 import CDRListView211
from .modules.commands.v2_1_1 import CommandView211
from .modules.locations.v2_1_1 import (
    ConnectorDetailView211,
    EVSEDetailView211,
    LocationDetailView211,
    LocationListView211,
)
from .modules.sessions.v2_1_1 import SessionListView211
from .modules.tariffs.v2_1_1 import TariffListView211
from .modules.tokens.v2_1_1 import TokenView211
from .modules.tokens.views import TokenBaseView
from .versioning import V211View
from .versions import VersionDetailsView


class VersionDetailsView211(V211View, VersionDetailsView):
    """GET /ocpi/2.1.1: our 2.1.1 endpoints (identifier and url, no role)."""


class CredentialsView211(V211View, CredentialsView):
    """The 2.1.1 credentials endpoint: the flat Credentials object in and out (the version
    comes from the URL: ocpi.serializers)."""


class TokenBaseView211(V211View, TokenBaseView):
    """{tokens_url} itself (2.1.1): every method is 405."""


VIEWS_2_1_1 = {
    "version-details": VersionDetailsView211,
    "credentials": CredentialsView211,
    "locations": LocationListView211,
    "location": LocationDetailView211,
    "evse": EVSEDetailView211,
    "connector": ConnectorDetailView211,
    "tariffs": TariffListView211,
    "sessions": SessionListView211,
    "cdrs": CDRListView211,
    "tokens": TokenBaseView211,
    "token": TokenView211,
    "command": CommandView211,
}
