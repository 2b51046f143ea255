"""The wire format of each OCPI version we speak, for what we send on our own initiative
(DESIGN.md "One data model, many versions"): the outbox's push bodies, the async results we
POST to a response_url, and the tokens we pull. Chosen by the partner's negotiated version:

    fmt = wire_format(partner.version)
    body = fmt.location(location)

Endpoints choose by their URL instead (their 2.1.1 views sit beside the 2.2.1 ones). The
outbox, the services and the models never look at a version themselves: what differs between
versions is a field of `WireFormat`.
"""

from collections.abc import Callable
from dataclasses import dataclass

from .modules.cdrs.v2_1_1 import cdr_to_ocpi_211, shown_to_211
from .modules.locations.serializers import connector_to_ocpi, evse_to_ocpi, location_to_ocpi
from .modules.locations.v2_1_1 import (
    connector_to_ocpi_211,
    evse_to_ocpi_211,
    location_to_ocpi_211,
)
from .modules.sessions.serializers import session_to_ocpi
from .modules.sessions.v2_1_1 import session_to_ocpi_211
from .modules.tariffs.serializers import tariff_to_ocpi
from .modules.tariffs.v2_1_1 import tariff_to_ocpi_211
from .modules.tokens.serializers import parse_token
from .modules.tokens.v2_1_1 import parse_partner_token_211
from .versioning import V2_1_1, V2_2_1


def _as_is(module: str, body: dict) -> dict:
    return body


def _response_211(module: str, body: dict) -> dict:
    """An async command result as 2.1.1 has it: CommandResponse `{result}` (PROTOCOL.md §8)."""
    from .modules.commands.v2_1_1 import command_response_211  # (ocpi.commands imports us)

    return command_response_211(body.get("result", "")) if module == "commands" else body


@dataclass(frozen=True)
class WireFormat:
    version: str
    location: Callable
    evse: Callable
    connector: Callable
    tariff: Callable
    session: Callable
    #: A CDR, or None where another module renders it (2.2.1: ocpi.modules.cdrs).
    cdr: Callable | None
    #: Whether pushes may be PATCHes of the changed fields; else full PUTs of the changed
    #: level (2.1.1: its Session PATCH rules are unspecified, PROTOCOL.md §8).
    patches: bool
    #: Whether the version can say who may see an unpublished Location (publish_allowed_to).
    shows_unpublished_locations: bool
    #: Whether a CDR may go to a partner of this version (2.1.1 has no credit CDRs).
    cdr_shown: Callable
    #: The body of an async result POSTed to a response_url: (module, 2.2.1 body) -> body.
    response_body: Callable[[str, dict], dict]
    #: A Token from the partner's tokens Sender: (data, partner=) -> billing's token fields.
    parse_partner_token: Callable


FORMATS = {
    V2_2_1: WireFormat(
        version=V2_2_1,
        location=location_to_ocpi,
        evse=evse_to_ocpi,
        connector=connector_to_ocpi,
        tariff=tariff_to_ocpi,
        session=session_to_ocpi,
        cdr=None,
        patches=True,
        shows_unpublished_locations=True,
        cdr_shown=lambda cdr: True,
        response_body=_as_is,
        parse_partner_token=lambda data, *, partner: parse_token(data),
    ),
    V2_1_1: WireFormat(
        version=V2_1_1,
        location=location_to_ocpi_211,
        evse=evse_to_ocpi_211,
        connector=connector_to_ocpi_211,
        tariff=tariff_to_ocpi_211,
        session=session_to_ocpi_211,
        cdr=cdr_to_ocpi_211,
        patches=False,
        shows_unpublished_locations=False,
        cdr_shown=shown_to_211,
        response_body=_response_211,
        parse_partner_token=parse_partner_token_211,
    ),
}


def wire_format(version: str) -> WireFormat:
    """The wire format of `version`; 2.2.1's for a version we do not speak (such partners get
    no pushes: ocpi.outbox)."""
    return FORMATS.get(version, FORMATS[V2_2_1])


def push_versions() -> tuple[str, ...]:
    """The versions we render pushes in."""
    return tuple(FORMATS)
