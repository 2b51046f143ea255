"""Real-time authorization at the partner's tokens Sender (PROTOCOL.md §4.5): the callable the
billing domain reaches through `billing.seams.registry.realtime_authorizer` (filled when this
module is imported, from ocpi.apps at start-up).

`POST {tokens_url}/{uid}/authorize?type={type}` with LocationReferences for the EVSE the driver
stands at, with the short settings.OCPI_AUTHORIZE_TIMEOUT (a driver is waiting). The answer:
- AuthorizationInfo → RealtimeAuthorization (allowed, authorization_reference, the allowed EVSEs
  when the eMSP restricted them, the full Token it returned, info);
- OCPI 2004 or HTTP 404 → TokenUnknownToPartner;
- anything else that is not an AuthorizationInfo (timeout, refused connection, 5xx, OCPI 3xxx,
  another 2xxx, a malformed body) → PartnerUnreachable, so the whitelist fallback decides.
"""

import logging
from urllib.parse import quote

from django.conf import settings
from rest_framework.exceptions import ValidationError

from billing.models import Token
from billing.seams import (
    PartnerUnreachable,
    RealtimeAuthorization,
    TokenUnknownToPartner,
    registry,
)
from stations.models import EVSE, Location

from .client import OCPIClient, join_url
from .exceptions import PartnerRejected, PartnerUnavailable
from .models import Partner
from .modules.tokens.serializers import parse_authorization_info

logger = logging.getLogger(__name__)


def location_references(location: Location | None, evse: EVSE | None) -> dict | None:
    """The LocationReferences body for the EVSE the token was presented at, if known."""
    if location is None:
        return None
    body: dict = {"location_id": location.ocpi_id}
    if evse is not None:
        body["evse_uids"] = [evse.uid]
    return body


def realtime_authorize(
    partner: Partner, token: Token, location: Location | None, evse: EVSE | None
) -> RealtimeAuthorization:
    """Ask `partner` whether `token` may charge at `evse`; see the module docstring."""
    base = partner.endpoint_url("tokens", "SENDER")
    if not base:
        raise PartnerUnreachable(f"{partner} has no tokens SENDER endpoint")
    url = join_url(base, quote(token.uid, safe=""), "authorize")
    client = OCPIClient(partner)
    try:
        reply = client.request(
            "POST",
            url,
            params={"type": token.type},
            body=location_references(location, evse),
            timeout=settings.OCPI_AUTHORIZE_TIMEOUT,
        )
    except PartnerRejected as exc:
        if exc.ocpi_status == 2004 or exc.http_status == 404:
            raise TokenUnknownToPartner(str(exc)) from exc
        raise PartnerUnreachable(str(exc)) from exc
    except PartnerUnavailable as exc:
        raise PartnerUnreachable(str(exc)) from exc
    try:
        info = parse_authorization_info(reply.data)
    except ValidationError as exc:
        raise PartnerUnreachable(f"{partner} answered no usable AuthorizationInfo: {exc}") from exc
    return RealtimeAuthorization(
        allowed=info["allowed"],
        authorization_reference=info.get("authorization_reference", ""),
        allowed_evse_uids=_allowed_evse_uids(info.get("location"), location),
        token=info.get("token"),
        info=info.get("info"),
    )


def _allowed_evse_uids(returned: dict | None, asked: Location | None) -> list[str] | None:
    """None: no restriction. A list: only these EVSEs (§4.5). A reference to another location
    than the one we asked about allows none of ours."""
    if returned is None:
        return None
    if asked is None or returned["location_id"].lower() != asked.ocpi_id.lower():
        return []
    return list(returned.get("evse_uids") or []) or None


registry.realtime_authorizer = realtime_authorize
