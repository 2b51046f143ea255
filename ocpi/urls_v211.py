"""OCPI 2.1.1 URLs (PROTOCOL.md §8), included by ocpi/urls.py before its catch-all.

The same URL shapes as 2.2.1 under 2.1.1, served by the 2.1.1 views: subclasses of (or views
over the same selectors and services as) the 2.2.1 ones that differ in the serializer or parser
they use. No chargingprofiles and no charging_preferences: 2.1.1 has neither.
"""

from django.urls import re_path

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

ID = r"[^/]+"
CPO = r"^cpo/2\.1\.1"


class VersionDetailsView211(V211View, VersionDetailsView):
    """GET /ocpi/2.1.1: our 2.1.1 endpoints (identifier and url, no role)."""


class CredentialsView211(V211View, CredentialsView):
    """The 2.1.1 credentials endpoint: the flat Credentials object in and out (the version
    comes from the URL: ocpi.serializers)."""


class TokenBaseView211(V211View, TokenBaseView):
    """{tokens_url} itself (2.1.1): every method is 405."""


urlpatterns = [
    re_path(r"^(?P<version>2\.1\.1)/?$", VersionDetailsView211.as_view(), name="ocpi-211-version"),
    re_path(
        r"^(?P<version>2\.1\.1)/credentials/?$",
        CredentialsView211.as_view(),
        name="ocpi-211-credentials",
    ),
    re_path(rf"{CPO}/locations/?$", LocationListView211.as_view(), name="ocpi-211-locations"),
    re_path(
        rf"{CPO}/locations/(?P<location_id>{ID})/?$",
        LocationDetailView211.as_view(),
        name="ocpi-211-location",
    ),
    re_path(
        rf"{CPO}/locations/(?P<location_id>{ID})/(?P<evse_uid>{ID})/?$",
        EVSEDetailView211.as_view(),
        name="ocpi-211-evse",
    ),
    re_path(
        rf"{CPO}/locations/(?P<location_id>{ID})/(?P<evse_uid>{ID})/(?P<connector_id>{ID})/?$",
        ConnectorDetailView211.as_view(),
        name="ocpi-211-connector",
    ),
    re_path(rf"{CPO}/tariffs/?$", TariffListView211.as_view(), name="ocpi-211-tariffs"),
    re_path(rf"{CPO}/sessions/?$", SessionListView211.as_view(), name="ocpi-211-sessions"),
    re_path(rf"{CPO}/cdrs/?$", CDRListView211.as_view(), name="ocpi-211-cdrs"),
    re_path(rf"{CPO}/tokens/?$", TokenBaseView211.as_view(), name="ocpi-211-tokens"),
    re_path(
        rf"{CPO}/tokens/(?P<country_code>{ID})/(?P<party_id>{ID})/(?P<uid>{ID})/?$",
        TokenView211.as_view(),
        name="ocpi-211-token",
    ),
    re_path(
        rf"{CPO}/commands(?:/(?P<command>{ID}))?/?$",
        CommandView211.as_view(),
        name="ocpi-211-command",
    ),
]
