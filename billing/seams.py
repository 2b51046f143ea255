"""Narrow seams where the domain asks the protocol layer (DESIGN.md): registries of callables
that `ocpi` fills at start-up, so billing never imports ocpi's machinery."""

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RealtimeAuthorization:
    """The partner's answer to a real-time authorization (OCPI AuthorizationInfo)."""

    allowed: str  # AllowedType value
    authorization_reference: str = ""
    allowed_evse_uids: list[str] | None = None  # None = no restriction by location
    token: dict | None = None  # the full Token the eMSP returned, if any
    info: dict | None = None  # DisplayText


class PartnerUnreachable(Exception):
    """The partner could not answer in time (timeout, refused connection, 5xx, OCPI 3xxx)."""


class TokenUnknownToPartner(Exception):
    """The partner answered 2004: it does not know the token."""


@dataclass
class _Registry:
    #: (partner, token, location, evse) -> RealtimeAuthorization; raises PartnerUnreachable or
    #: TokenUnknownToPartner. Filled by ocpi.apps at start-up.
    realtime_authorizer: Callable | None = field(default=None)
    #: cdr -> its OCPI JSON text as partners get it (the CDR admin shows it). Filled by ocpi.outbox.
    cdr_renderer: Callable | None = field(default=None)


registry = _Registry()
