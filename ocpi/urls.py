"""OCPI URLs. Each path accepts an optional trailing slash (no redirects: PROTOCOL.md §10.8).

Both versions have the same URL shapes (`ROUTES`); a version names the view serving each shape it
has (`VIEWS_2_2_1`, ocpi/urls_v211.py's `VIEWS_2_1_1`), and `version_urls` builds its patterns.
"""

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
from .urls_v211 import VIEWS_2_1_1
from .versions import VersionDetailsView, VersionsView
from .views import unknown_ocpi_path

ID = r"[^/]+"

#: URL name → path after the version (`{v}` is the escaped version number), slash optional.
ROUTES = {
    "version-details": r"(?P<version>{v})",
    "credentials": r"(?P<version>{v})/credentials",
    "locations": r"cpo/{v}/locations",
    "location": rf"cpo/{{v}}/locations/(?P<location_id>{ID})",
    "evse": rf"cpo/{{v}}/locations/(?P<location_id>{ID})/(?P<evse_uid>{ID})",
    "connector": (
        rf"cpo/{{v}}/locations/(?P<location_id>{ID})/(?P<evse_uid>{ID})/(?P<connector_id>{ID})"
    ),
    "tariffs": r"cpo/{v}/tariffs",
    "sessions": r"cpo/{v}/sessions",
    "session-charging-preferences": (
        rf"cpo/{{v}}/sessions/(?P<session_id>{ID})/charging_preferences"
    ),
    "cdrs": r"cpo/{v}/cdrs",
    "tokens": r"cpo/{v}/tokens",
    "token": rf"cpo/{{v}}/tokens/(?P<country_code>{ID})/(?P<party_id>{ID})/(?P<uid>{ID})",
    "command": rf"cpo/{{v}}/commands(?:/(?P<command>{ID}))?",
    "chargingprofile": rf"cpo/{{v}}/chargingprofiles(?:/(?P<session_id>{ID}))?",
}

VIEWS_2_2_1 = {
    "version-details": VersionDetailsView,
    "credentials": CredentialsView,
    "locations": LocationListView,
    "location": LocationDetailView,
    "evse": EVSEDetailView,
    "connector": ConnectorDetailView,
    "tariffs": TariffListView,
    "sessions": SessionListView,
    "session-charging-preferences": ChargingPreferencesView,
    "cdrs": CDRListView,
    "tokens": TokenBaseView,
    "token": TokenView,
    "command": CommandView,
    "chargingprofile": ChargingProfileView,
}


def version_urls(version: str, views: dict, *, name_prefix: str) -> list:
    """The patterns of one OCPI version: each route the version has, served by its view."""
    escaped = version.replace(".", r"\.")
    return [
        re_path(
            "^" + ROUTES[name].format(v=escaped) + "/?$",
            view.as_view(),
            name=f"{name_prefix}{name}",
        )
        for name, view in views.items()
    ]


urlpatterns = [
    re_path(r"^versions/?$", VersionsView.as_view(), name="ocpi-versions"),
    *version_urls("2.2.1", VIEWS_2_2_1, name_prefix="ocpi-"),
    *version_urls("2.1.1", VIEWS_2_1_1, name_prefix="ocpi-211-"),
    re_path(r"^openapi\.json$", openapi_view, name="ocpi-openapi"),
    re_path(r"^.*$", unknown_ocpi_path),
]
