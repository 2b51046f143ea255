"""Versions and version details endpoints (PROTOCOL.md §2).

`ENDPOINTS` is the one list of what we advertise: adding a module (sessions, cdrs, tokens,
commands, chargingprofiles) or a version (2.1.1) is one line there, plus its URL in ocpi/urls.py.
Both endpoints answer token A, the current token and our token B during our own registration
(`allow_token_a`); they carry no routing headers (configuration module, §1.7).
"""

from dataclasses import dataclass

from django.conf import settings

from .envelope import ocpi_response
from .exceptions import UnsupportedVersion
from .versioning import WholeSecondsResponses
from .views import OCPIView


@dataclass(frozen=True)
class AdvertisedEndpoint:
    """One interface we implement, as listed in a version's details."""

    version: str
    identifier: str  # ModuleID
    role: str  # InterfaceRole: SENDER (we own the data) or RECEIVER (partners push to us)
    path: str  # under /ocpi/, without slashes at either end


ENDPOINTS: tuple[AdvertisedEndpoint, ...] = (
    AdvertisedEndpoint("2.2.1", "credentials", "SENDER", "2.2.1/credentials"),
    AdvertisedEndpoint("2.2.1", "locations", "SENDER", "cpo/2.2.1/locations"),
    AdvertisedEndpoint("2.2.1", "tariffs", "SENDER", "cpo/2.2.1/tariffs"),
    AdvertisedEndpoint("2.2.1", "sessions", "SENDER", "cpo/2.2.1/sessions"),
    AdvertisedEndpoint("2.2.1", "cdrs", "SENDER", "cpo/2.2.1/cdrs"),
    AdvertisedEndpoint("2.2.1", "commands", "RECEIVER", "cpo/2.2.1/commands"),
    AdvertisedEndpoint("2.2.1", "chargingprofiles", "RECEIVER", "cpo/2.2.1/chargingprofiles"),
    AdvertisedEndpoint("2.2.1", "tokens", "RECEIVER", "cpo/2.2.1/tokens"),
    # OCPI 2.1.1 (PROTOCOL.md §8): no roles in its details, no chargingprofiles/hubclientinfo.
    AdvertisedEndpoint("2.1.1", "credentials", "SENDER", "2.1.1/credentials"),
    AdvertisedEndpoint("2.1.1", "locations", "SENDER", "cpo/2.1.1/locations"),
    AdvertisedEndpoint("2.1.1", "tariffs", "SENDER", "cpo/2.1.1/tariffs"),
    AdvertisedEndpoint("2.1.1", "sessions", "SENDER", "cpo/2.1.1/sessions"),
    AdvertisedEndpoint("2.1.1", "cdrs", "SENDER", "cpo/2.1.1/cdrs"),
    AdvertisedEndpoint("2.1.1", "tokens", "RECEIVER", "cpo/2.1.1/tokens"),
    AdvertisedEndpoint("2.1.1", "commands", "RECEIVER", "cpo/2.1.1/commands"),
)


def version_key(version: str) -> tuple[int, ...]:
    """Sortable form of a VersionNumber ("2.2.1" → (2, 2, 1)); junk sorts lowest."""
    try:
        return tuple(int(part) for part in version.split("."))
    except (AttributeError, ValueError):
        return ()


def supported_versions() -> list[str]:
    """The versions we implement, highest first."""
    return sorted({e.version for e in ENDPOINTS}, key=version_key, reverse=True)


def ocpi_url(path: str) -> str:
    return f"{settings.OCPI_BASE_URL}/ocpi/{path}"


def versions_url() -> str:
    """Our versions endpoint: what partners get offline with token A, and in our credentials."""
    return ocpi_url("versions")


def version_details_url(version: str) -> str:
    return ocpi_url(version)


def version_list() -> list[dict]:
    return [{"version": v, "url": version_details_url(v)} for v in supported_versions()]


def version_details(version: str) -> dict:
    """Our Version details object for one version (2.1.1 endpoints carry no role)."""
    endpoints = []
    for endpoint in ENDPOINTS:
        if endpoint.version != version:
            continue
        item = {"identifier": endpoint.identifier, "url": ocpi_url(endpoint.path)}
        if version != "2.1.1":
            item = {"identifier": endpoint.identifier, "role": endpoint.role, "url": item["url"]}
        endpoints.append(item)
    return {"version": version, "endpoints": endpoints}


class VersionsView(WholeSecondsResponses, OCPIView):
    """GET /ocpi/versions: the versions we implement and their details URLs. Partners of every
    version read it, so its timestamp has no fractional seconds (2.1.1 DateTimes have none)."""

    allow_token_a = True

    def get(self, request, *args, **kwargs):
        return ocpi_response(version_list())


class VersionDetailsView(OCPIView):
    """GET /ocpi/{version}: the endpoints we implement in that version."""

    allow_token_a = True

    def get(self, request, *args, version: str, **kwargs):
        if version not in supported_versions():
            raise UnsupportedVersion(f"Version {version} is not supported")
        return ocpi_response(version_details(version))
