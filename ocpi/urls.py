"""OCPI URLs. Each path accepts an optional trailing slash (no redirects: PROTOCOL.md §10.8)."""

from django.urls import re_path

from .credentials import CredentialsView
from .modules.cdrs.views import CDRListView
from .modules.chargingprofiles.views import ChargingProfileView
from .modules.commands.views import CommandView
from .modules.locations.views import (
    ConnectorDetailView,
    EVSEDetailView,
    LocationDetailView,
    LocationListView,
)
from .modules.sessions.views import ChargingPreferencesView, SessionListView
from .modules.tariffs.views import TariffListView
from .modules.tokens.views import TokenBaseView, TokenView
from .openapi_view import openapi_view
from .urls_v211 import urlpatterns as v211_urlpatterns
from .versions import VersionDetailsView, VersionsView
from .views import unknown_ocpi_path

ID = r"[^/]+"

urlpatterns = [
    re_path(r"^versions/?$", VersionsView.as_view(), name="ocpi-versions"),
    re_path(r"^(?P<version>2\.2\.1)/?$", VersionDetailsView.as_view(), name="ocpi-version-details"),
    re_path(
        r"^(?P<version>2\.2\.1)/credentials/?$",
        CredentialsView.as_view(),
        name="ocpi-credentials",
    ),
    re_path(r"^cpo/2\.2\.1/locations/?$", LocationListView.as_view(), name="ocpi-locations"),
    re_path(
        rf"^cpo/2\.2\.1/locations/(?P<location_id>{ID})/?$",
        LocationDetailView.as_view(),
        name="ocpi-location",
    ),
    re_path(
        rf"^cpo/2\.2\.1/locations/(?P<location_id>{ID})/(?P<evse_uid>{ID})/?$",
        EVSEDetailView.as_view(),
        name="ocpi-evse",
    ),
    re_path(
        rf"^cpo/2\.2\.1/locations/(?P<location_id>{ID})/(?P<evse_uid>{ID})/(?P<connector_id>{ID})/?$",
        ConnectorDetailView.as_view(),
        name="ocpi-connector",
    ),
    re_path(r"^cpo/2\.2\.1/tariffs/?$", TariffListView.as_view(), name="ocpi-tariffs"),
    re_path(r"^cpo/2\.2\.1/sessions/?$", SessionListView.as_view(), name="ocpi-sessions"),
    re_path(
        rf"^cpo/2\.2\.1/sessions/(?P<session_id>{ID})/charging_preferences/?$",
        ChargingPreferencesView.as_view(),
        name="ocpi-session-charging-preferences",
    ),
    re_path(r"^cpo/2\.2\.1/cdrs/?$", CDRListView.as_view(), name="ocpi-cdrs"),
    re_path(r"^cpo/2\.2\.1/tokens/?$", TokenBaseView.as_view(), name="ocpi-tokens"),
    re_path(
        rf"^cpo/2\.2\.1/tokens/(?P<country_code>{ID})/(?P<party_id>{ID})/(?P<uid>{ID})/?$",
        TokenView.as_view(),
        name="ocpi-token",
    ),
    re_path(
        rf"^cpo/2\.2\.1/commands(?:/(?P<command>{ID}))?/?$",
        CommandView.as_view(),
        name="ocpi-command",
    ),
    re_path(
        rf"^cpo/2\.2\.1/chargingprofiles(?:/(?P<session_id>{ID}))?/?$",
        ChargingProfileView.as_view(),
        name="ocpi-chargingprofile",
    ),
    *v211_urlpatterns,  # OCPI 2.1.1 (ocpi/urls_v211.py)
    re_path(r"^openapi\.json$", openapi_view, name="ocpi-openapi"),
    re_path(r"^.*$", unknown_ocpi_path),
]
