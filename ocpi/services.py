"""Partner registration workflows: the credentials handshake in both directions (PROTOCOL.md §3).

Tokens (§3.5), as kept on Partner: token A (digest; registration only), the inbound token (digest;
what the partner presents to us), the outbound token (encrypted; what we present to it) and the
next inbound token (digest; issued in a POST/PUT of ours that is still in flight, because the
partner calls us back with it before our call returns).

Failures are raised as OCPIError subclasses, so the credentials endpoint answers them as they
are, and the admin and the management command show their message:
- UnableToUseClientAPI (3001): the partner's versions/details/credentials could not be used;
- UnsupportedVersion (3002): no mutual version;
- NoMatchingEndpoints (3003): the partner's details lack what we need;
- MethodNotAllowedInState (405): the partner's status does not allow the step;
- PartyHeldByAnotherPartner (2001): the partner lists a party another partner holds.
A failed step changes nothing that was there before it (a partner we created only for a failed
registration of ours is removed again).
"""

import logging
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from . import tokens
from .client import OCPIClient
from .exceptions import (
    InvalidParameters,
    MethodNotAllowedInState,
    NoMatchingEndpoints,
    PartnerError,
    PartnerRejected,
    UnableToUseClientAPI,
    UnsupportedVersion,
)
from .models import Partner, PartnerRole, cpo_roles
from .outbox import outbox_rerender
from .serializers import credentials_to_ocpi, parse_credentials
from .versions import supported_versions, version_key, versions_url

logger = logging.getLogger(__name__)

#: (identifier, role) pairs a partner's details must list, or registration fails with 3003.
#: None strictly required yet; e.g. ("cdrs", "RECEIVER") once CDRs are pushed.
REQUIRED_PARTNER_ENDPOINTS: tuple[tuple[str, str], ...] = ()

INTERFACE_ROLES = ("SENDER", "RECEIVER")

#: Key of the PostgreSQL advisory lock that serializes party claims (see _party_claims_lock).
PARTY_CLAIMS_LOCK = 0x4F43_5049_5041_5254  # "OCPIPART"


class PartyHeldByAnotherPartner(InvalidParameters):
    """A partner's credentials list a party (country_code + party_id) that another partner, one
    not unregistered, holds.

    2001 with HTTP 400: the roles the caller sent are a parameter we cannot accept, like a role
    listed twice (which parse_credentials answers 2001/400 too, and the spec's OpenAPI gives
    credentials POST/PUT a 400 OCPIErrorResponse). It is not 3001-3003: those say that calling
    the client's API failed, and we refuse before calling it. The message names the party but
    not the partner holding it: the caller may be the one trying to take it.
    """

    def __init__(self, message: str, *, holders: list[tuple[str, str]]):
        super().__init__(message)
        self.holders = holders  # (party, holding partner's name), for staff


@dataclass(frozen=True)
class PartnerAPI:
    """What a partner's versions and version details told us."""

    version: str
    versions_url: str
    endpoints: list[dict]

    def endpoint_url(self, identifier: str) -> str | None:
        return next((e["url"] for e in self.endpoints if e["identifier"] == identifier), None)


# -- partner's versions and details ---------------------------------------------------------------
def partner_api_fetch(
    *,
    partner: Partner,
    token: str,
    versions_url: str,
    version: str | None = None,
    correlation_id: str | None = None,
) -> PartnerAPI:
    """GET the partner's versions and one version's details with `token`.

    `version` given: that version must be offered (the version of the credentials endpoint the
    partner called, §3.8); else the highest version both sides implement (§3.4). Sets (does
    not save) the partner's token encoding for that version.
    """
    if version is not None:
        token_encoding_follow_version(partner, version)
    client = OCPIClient(partner, token=token, correlation_id=correlation_id)
    try:
        reply = _versions_reply(client, versions_url)
    except PartnerError as exc:
        raise UnableToUseClientAPI(f"Cannot get the partner's versions: {exc}") from exc
    offered = _version_list(reply.data)
    if version is not None:
        if version not in offered:
            raise UnsupportedVersion(
                f"The partner does not offer version {version} (offers: {_listed(offered)})"
            )
        chosen = version
    else:
        mutual = set(offered) & set(supported_versions())
        if not mutual:
            raise UnsupportedVersion(
                f"No mutual version: the partner offers {_listed(offered)}, "
                f"we implement {_listed(supported_versions())}"
            )
        chosen = max(mutual, key=version_key)
    token_encoding_follow_version(partner, chosen)
    try:
        reply = client.request("GET", offered[chosen], functional=False)
    except PartnerError as exc:
        raise UnableToUseClientAPI(f"Cannot get the partner's {chosen} details: {exc}") from exc
    if not isinstance(reply.data, dict):
        raise UnableToUseClientAPI(f"The partner's {chosen} details are not a Version object")
    endpoints = _endpoint_list(reply.data.get("endpoints"))
    if not endpoints:
        raise NoMatchingEndpoints(f"The partner's {chosen} details list no usable endpoint")
    missing = [
        f"{identifier} {role}"
        for identifier, role in REQUIRED_PARTNER_ENDPOINTS
        if not _offers(endpoints, identifier, role)
    ]
    if missing:
        raise NoMatchingEndpoints(f"The partner's {chosen} details lack: {', '.join(missing)}")
    return PartnerAPI(version=chosen, versions_url=versions_url, endpoints=endpoints)


def _versions_reply(client: OCPIClient, versions_url: str):
    """GET the partner's versions. Before a version is agreed we cannot know whether the partner
    reads our token Base64-encoded (2.2.1) or plain (2.1.1, PROTOCOL.md §10.1): a 401 in one
    encoding is tried once in the other, and the partner keeps the one that worked."""
    partner = client.partner
    try:
        return client.request("GET", versions_url, functional=False)
    except PartnerRejected as exc:
        if exc.http_status != 401:
            raise
        first_error, tried = exc, partner.token_encoding
    partner.token_encoding = (
        Partner.TokenEncoding.PLAIN
        if tried == Partner.TokenEncoding.BASE64
        else Partner.TokenEncoding.BASE64
    )
    try:
        return client.request("GET", versions_url, functional=False)
    except PartnerError:
        partner.token_encoding = tried
        raise first_error from None


def token_encoding_follow_version(partner: Partner, version: str) -> None:
    """Our token's encoding towards a partner registering or switching to `version` (not
    saved): plain for 2.1.1 (PROTOCOL.md §8); Base64, the 2.2.1 rule, for a partner leaving
    2.1.1; otherwise the compatibility profile's (staff may have chosen plain for a 2.2 peer)."""
    if version == "2.1.1":
        partner.token_encoding = Partner.TokenEncoding.PLAIN
    elif partner.version == "2.1.1":
        partner.token_encoding = Partner.TokenEncoding.BASE64


def _version_list(data) -> dict[str, str]:
    if not isinstance(data, list):
        raise UnableToUseClientAPI("The partner's versions endpoint did not return a list")
    offered = {}
    for item in data:
        if (
            isinstance(item, dict)
            and isinstance(item.get("version"), str)
            and _is_http_url(item.get("url"))
        ):
            offered[item["version"]] = item["url"]
    if not offered:
        raise UnableToUseClientAPI("The partner's versions endpoint lists no usable version")
    return offered


def _endpoint_list(data) -> list[dict]:
    """The usable entries of an Endpoint list; unknown modules are kept (ignored elsewhere)."""
    if not isinstance(data, list):
        return []
    endpoints = []
    for item in data:
        if not isinstance(item, dict):
            continue
        identifier, url, role = item.get("identifier"), item.get("url"), item.get("role")
        if not isinstance(identifier, str) or not identifier or not _is_http_url(url):
            continue
        endpoint = {"identifier": identifier, "url": url}
        if role in INTERFACE_ROLES:  # 2.1.1 has no roles; for credentials it is meaningless
            endpoint["role"] = role
        endpoints.append(endpoint)
    return endpoints


def _offers(endpoints: list[dict], identifier: str, role: str) -> bool:
    # 2.1.1 endpoints carry no role: any interface of the module counts.
    return any(e["identifier"] == identifier and e.get("role") in (role, None) for e in endpoints)


def _is_http_url(value) -> bool:
    return (
        isinstance(value, str) and value.startswith(("http://", "https://")) and len(value) <= 255
    )


def _listed(versions) -> str:
    return ", ".join(sorted(versions, key=version_key)) or "none"


# -- our credentials ----------------------------------------------------------------------------
def our_credentials(*, token: str, version: str) -> dict:
    """The Credentials object we give a partner: the token it must use, our versions, our roles."""
    return credentials_to_ocpi(token=token, url=versions_url(), roles=cpo_roles(), version=version)


def _party(data: dict) -> str:
    return f"{data['role']} {data['country_code']}*{data['party_id']}"


def _party_claims_check(partner: Partner, roles: list[dict]) -> None:
    """Raise PartyHeldByAnotherPartner if a listed party is held by another partner that is not
    unregistered (PENDING and SUSPENDED ones hold theirs).

    A party is country_code + party_id whatever the role, compared case-insensitively: that is
    what every ownership check compares (billing.tokens.token_owner_check, commands), so a
    partner listing another's party under another role (say OTHER DE*EMS beside EMSP DE*EMS)
    would own that partner's tokens' URLs just the same.
    """
    held = (
        PartnerRole.objects.of_parties((r["country_code"], r["party_id"]) for r in roles)
        .exclude(partner=partner)
        .exclude(partner__status=Partner.Status.UNREGISTERED)
        .select_related("partner")
    )
    holders = {(r.country_code.upper(), r.party_id.upper()): r.partner.name for r in held}
    if not holders:
        return
    claimed = [
        (_party(r), holders[key])
        for r in roles
        if (key := (r["country_code"].upper(), r["party_id"].upper())) in holders
    ]
    parties = ", ".join(party for party, _ in claimed)
    raise PartyHeldByAnotherPartner(
        f"{parties}: registered here by another partner; a party (country_code and party_id) "
        "can be registered by one partner only",
        holders=claimed,
    )


def _party_claims_lock() -> None:
    """Serialize party claims until the end of the transaction, so two partners listing the same
    party at once cannot both pass _party_claims_check (the rule is not a database constraint:
    see PartnerRole). Claims are rare (registrations and updates), so one lock for all is
    enough. Without PostgreSQL (the SQLite fallback of bin/test) writers are serialized anyway."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PARTY_CLAIMS_LOCK])


def _store_roles(partner: Partner, roles: list[dict]) -> None:
    """Make the partner's roles those listed; rows of roles still listed are kept (updated).

    Must run in a transaction. Raises PartyHeldByAnotherPartner, before writing anything, if
    another partner holds a listed party. A listed party of an unregistered partner is taken
    over: that partner's rows of it are deleted, so it cannot hold it again when it registers
    anew (its tokens, sessions and CDRs keep their partner)."""
    _party_claims_lock()
    _party_claims_check(partner, roles)
    lapsed = (
        PartnerRole.objects.of_parties((r["country_code"], r["party_id"]) for r in roles)
        .exclude(partner=partner)
        .filter(partner__status=Partner.Status.UNREGISTERED)
        .select_related("partner")
    )
    for row in lapsed:
        logger.info("Partner %s takes %s over from unregistered %s", partner, row, row.partner)
        row.delete()
    existing = {
        (r.role, r.country_code.upper(), r.party_id.upper()): r for r in partner.roles.all()
    }
    keep = []
    for data in roles:
        key = (data["role"], data["country_code"].upper(), data["party_id"].upper())
        role = existing.get(key) or PartnerRole(partner=partner, role=data["role"])
        role.country_code = data["country_code"]
        role.party_id = data["party_id"]
        role.business_details = data["business_details"]
        role.save()
        keep.append(role.pk)
    partner.roles.exclude(pk__in=keep).delete()


def _store_api(partner: Partner, api: PartnerAPI) -> None:
    token_encoding_follow_version(partner, api.version)
    partner.version = api.version
    partner.versions_url = api.versions_url
    partner.endpoints = api.endpoints


def _version_changed(partner: Partner, previous_version: str) -> None:
    """The partner now speaks another version than before: its unsent pushes, rendered in the
    old one, are rendered again in the new one (in the caller's transaction)."""
    if previous_version and previous_version != partner.version:
        count = outbox_rerender(partner=partner)
        logger.info(
            "Partner %s moved from OCPI %s to %s: %d unsent push(es) rendered again",
            partner, previous_version, partner.version, count,
        )  # fmt: skip


def _require_outside_transaction(what: str) -> None:
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError(
            f"{what} must run outside a database transaction: the partner calls us back with "
            "the new token before our call returns, so that token must be committed first."
        )


# -- staff: partners and token A ----------------------------------------------------------------
def partner_create(*, name: str) -> tuple[Partner, str]:
    """A new PENDING partner and its token A (returned once; only its digest is stored)."""
    name = name.strip()
    if not name:
        raise InvalidParameters("A partner needs a name")
    token_a = tokens.new_token()
    partner = Partner(name=name, status=Partner.Status.PENDING)
    partner.set_token_a(token_a)
    try:
        with transaction.atomic():
            partner.save()
    except IntegrityError as exc:
        raise InvalidParameters(f"A partner named {name!r} already exists") from exc
    return partner, token_a


def partner_token_a_issue(*, partner: Partner) -> str:
    """A fresh token A for a PENDING or UNREGISTERED partner (any earlier token A stops working)."""
    with transaction.atomic():
        partner = Partner.objects.select_for_update().get(pk=partner.pk)
        if partner.status not in (Partner.Status.PENDING, Partner.Status.UNREGISTERED):
            raise MethodNotAllowedInState(
                f"{partner} is {partner.get_status_display().lower()}; "
                "token A is only for partners not registered"
            )
        token_a = tokens.new_token()
        partner.set_token_a(token_a)
        partner.inbound_token_digest = partner.next_inbound_token_digest = ""
        partner.outbound_token_encrypted = ""
        partner.status = Partner.Status.PENDING
        partner.save()
    return token_a


# -- partner-initiated registration and updates (we are the credentials server, §3.3) -----------
def registration_accept(
    *, partner: Partner, credentials: dict, version: str, correlation_id: str | None = None
) -> dict:
    """Handle a partner's credentials POST made with token A; returns our Credentials (token C).

    Before answering, calls the partner back (versions, then `version`'s details) with the token
    B it gave us. On success token A stops working; on failure nothing changes. A party another
    partner holds is refused before any callback (PartyHeldByAnotherPartner).
    """
    with transaction.atomic():
        partner = Partner.objects.select_for_update().get(pk=partner.pk)
        if partner.status != Partner.Status.PENDING or not partner.token_a_digest:
            raise MethodNotAllowedInState("Already registered: use PUT to update credentials")
        _party_claims_check(partner, credentials["roles"])  # before calling the partner back
        api = partner_api_fetch(
            partner=partner,
            token=credentials["token"],
            versions_url=credentials["url"],
            version=version,
            correlation_id=correlation_id,
        )
        token_c = tokens.new_token()
        _registration_store(partner, api, theirs=credentials, inbound_token=token_c)
    logger.info("Partner %s registered with us (OCPI %s)", partner, api.version)
    return our_credentials(token=token_c, version=api.version)


def _registration_store(
    partner: Partner, api: PartnerAPI, *, theirs: dict, inbound_token: str
) -> None:
    """Store a finished registration on the locked `partner` (either direction): its API, its
    credentials `theirs` (the token we present, its versions URL, its roles) and the token it
    presents; token A is spent. Raises PartyHeldByAnotherPartner: the caller's transaction
    must roll back."""
    previous_version = partner.version
    _store_api(partner, api)
    partner.versions_url = theirs["url"]
    partner.set_outbound_token(theirs["token"])
    partner.set_inbound_token(inbound_token)
    partner.token_a_digest = partner.next_inbound_token_digest = ""
    partner.status = Partner.Status.REGISTERED
    partner.registered_at = timezone.now()
    partner.save()
    _store_roles(partner, theirs["roles"])
    _version_changed(partner, previous_version)


def credentials_update(
    *, partner: Partner, credentials: dict, version: str, correlation_id: str | None = None
) -> dict:
    """Handle a registered partner's credentials PUT; returns our Credentials with a new token.

    Re-fetches the partner's versions and details every time (PROTOCOL.md §10.25) with its new
    token, switches to `version` (the version of the endpoint called). Until this succeeds the
    partner's current token stays valid. A party another partner holds is refused before any
    callback (PartyHeldByAnotherPartner), and nothing changes.
    """
    with transaction.atomic():
        partner = Partner.objects.select_for_update().get(pk=partner.pk)
        if partner.status != Partner.Status.REGISTERED:
            raise MethodNotAllowedInState("Not registered: POST credentials to register")
        _party_claims_check(partner, credentials["roles"])  # before calling the partner back
        api = partner_api_fetch(
            partner=partner,
            token=credentials["token"],
            versions_url=credentials["url"],
            version=version,
            correlation_id=correlation_id,
        )
        new_token = tokens.new_token()
        previous_version = partner.version
        _store_api(partner, api)
        partner.set_outbound_token(credentials["token"])
        partner.set_inbound_token(new_token)
        partner.save()
        _store_roles(partner, credentials["roles"])
        _version_changed(partner, previous_version)
    logger.info("Partner %s updated its credentials (OCPI %s)", partner, api.version)
    return our_credentials(token=new_token, version=api.version)


# -- CPO-initiated registration and our-side rotation (we are the credentials client, §3.4) -----
def register_with_partner(
    *, name: str, versions_url: str, token: str, correlation_id: str | None = None
) -> Partner:
    """Register with a partner that gave us its versions URL and a token A.

    Fetches its versions (highest mutual version) and details, issues token B (valid for our
    versions/details at once, since the partner calls us back during our POST), POSTs our
    credentials with token A and keeps the token C it returns. Must run outside a transaction.
    If its reply lists a party another partner holds, the registration fails
    (PartyHeldByAnotherPartner): we DELETE our credentials at the partner and forget its token.
    """
    _require_outside_transaction("Registering with a partner")
    name = name.strip()
    if not name:
        raise InvalidParameters("A partner needs a name")
    partner = Partner.objects.filter(name=name).first()
    created = partner is None
    if created:
        partner = Partner(name=name, status=Partner.Status.PENDING)
    elif partner.status not in (Partner.Status.PENDING, Partner.Status.UNREGISTERED):
        raise MethodNotAllowedInState(
            f"{partner} is {partner.get_status_display().lower()}; unregister it first"
        )
    api = partner_api_fetch(
        partner=partner, token=token, versions_url=versions_url, correlation_id=correlation_id
    )
    credentials_url = api.endpoint_url("credentials")
    if credentials_url is None:
        raise NoMatchingEndpoints("The partner's details list no credentials endpoint")
    token_b = tokens.new_token()
    previous_status = partner.status
    partner.status = Partner.Status.PENDING
    partner.set_next_inbound_token(token_b)
    try:
        partner.save()
    except IntegrityError as exc:  # created concurrently under the same name
        raise InvalidParameters(f"A partner named {name!r} already exists") from exc
    try:
        reply = OCPIClient(partner, token=token, correlation_id=correlation_id).request(
            "POST",
            credentials_url,
            body=our_credentials(token=token_b, version=api.version),
            functional=False,
        )
        theirs = parse_credentials(reply.data, version=api.version)
    except (PartnerError, ValidationError) as exc:
        _abandon_registration(partner, created=created, status=previous_status)
        raise UnableToUseClientAPI(f"Registration POST to the partner failed: {exc}") from exc
    try:
        with transaction.atomic():
            partner = Partner.objects.select_for_update().get(pk=partner.pk)
            _registration_store(partner, api, theirs=theirs, inbound_token=token_b)
    except PartyHeldByAnotherPartner as exc:
        # The partner's roles come only with its reply, so it has registered us by now: tell it
        # that this registration is over (DELETE with the token C it gave us, §3.7).
        _withdraw_registration(
            partner, credentials_url, token=theirs["token"], correlation_id=correlation_id
        )
        _abandon_registration(partner, created=created, status=previous_status)
        held = "; ".join(f"{party} is held by partner {holder}" for party, holder in exc.holders)
        raise PartyHeldByAnotherPartner(
            f"Registration with {name} refused, as its credentials list another partner's party: "
            f"{held}",
            holders=exc.holders,
        ) from exc
    logger.info("Registered with partner %s (OCPI %s)", partner, api.version)
    return partner


def _withdraw_registration(
    partner: Partner, credentials_url: str, *, token: str, correlation_id: str | None
) -> None:
    """Best effort: DELETE our credentials at a partner whose registration we refuse."""
    try:
        OCPIClient(partner, token=token, correlation_id=correlation_id).request(
            "DELETE", credentials_url, functional=False
        )
    except PartnerError as exc:
        logger.warning("Partner %s did not acknowledge our withdrawal: %s", partner, exc)


def _abandon_registration(partner: Partner, *, created: bool, status: str) -> None:
    if created:
        partner.delete()
        return
    Partner.objects.filter(pk=partner.pk).update(next_inbound_token_digest="", status=status)


def credentials_rotate(*, partner: Partner, correlation_id: str | None = None) -> Partner:
    """Rotate both tokens from our side: PUT new credentials to the partner (§3.6).

    Our current inbound token stays valid until the PUT succeeded; the new one is valid from
    before the PUT (the partner calls us back with it). Must run outside a transaction.
    If the partner's reply lists a party another partner holds, the new tokens are kept (both
    sides use them already) but the roles are not changed, and PartyHeldByAnotherPartner says so.
    """
    _require_outside_transaction("Rotating credentials")
    partner.refresh_from_db()
    if partner.status != Partner.Status.REGISTERED:
        raise MethodNotAllowedInState(f"{partner} is not registered")
    credentials_url = partner.endpoint_url("credentials")
    if credentials_url is None:
        raise NoMatchingEndpoints(f"{partner} has no credentials endpoint on record")
    new_token = tokens.new_token()
    partner.set_next_inbound_token(new_token)
    partner.save(update_fields=["next_inbound_token_digest", "updated"])
    try:
        reply = OCPIClient(partner, correlation_id=correlation_id).request(
            "PUT",
            credentials_url,
            body=our_credentials(token=new_token, version=partner.version),
            functional=False,
        )
        theirs = parse_credentials(reply.data, version=partner.version)
    except (PartnerError, ValidationError) as exc:
        Partner.objects.filter(pk=partner.pk).update(next_inbound_token_digest="")
        raise UnableToUseClientAPI(f"Credentials PUT to the partner failed: {exc}") from exc
    refused = None
    with transaction.atomic():
        partner = Partner.objects.select_for_update().get(pk=partner.pk)
        partner.versions_url = theirs["url"]
        partner.set_outbound_token(theirs["token"])
        partner.set_inbound_token(new_token)
        partner.next_inbound_token_digest = ""
        partner.save()
        # Both sides use the new tokens by now: they are kept whatever the roles say.
        try:
            _store_roles(partner, theirs["roles"])
        except PartyHeldByAnotherPartner as exc:
            refused = exc
    if refused is not None:
        held = "; ".join(f"{party} is held by partner {h}" for party, h in refused.holders)
        logger.warning("Rotated credentials with %s; its roles were refused: %s", partner, held)
        raise PartyHeldByAnotherPartner(
            f"Credentials rotated with {partner}, but its roles were left as they were, as its "
            f"credentials list another partner's party: {held}",
            holders=refused.holders,
        )
    logger.info("Rotated credentials with partner %s", partner)
    return partner


# -- status changes -----------------------------------------------------------------------------
def partner_unregister(
    *, partner: Partner, notify_partner: bool = True, correlation_id: str | None = None
) -> bool:
    """End the registration (§3.7): every token of this partner stops working, pushes stop.

    With `notify_partner`, first DELETEs our credentials at the partner (best effort). Returns
    whether the partner acknowledged that DELETE.
    """
    partner.refresh_from_db()
    if partner.status == Partner.Status.UNREGISTERED:
        raise MethodNotAllowedInState(f"{partner} is already unregistered")
    acknowledged = False
    credentials_url = partner.endpoint_url("credentials")
    if (
        notify_partner
        and partner.status in (Partner.Status.REGISTERED, Partner.Status.SUSPENDED)
        and credentials_url
        and partner.outbound_token_encrypted
    ):
        try:
            OCPIClient(partner, correlation_id=correlation_id).request(
                "DELETE", credentials_url, functional=False
            )
            acknowledged = True
        except PartnerError as exc:
            logger.warning("Partner %s did not acknowledge unregistering: %s", partner, exc)
    with transaction.atomic():
        partner = Partner.objects.select_for_update().get(pk=partner.pk)
        partner.status = Partner.Status.UNREGISTERED
        partner.token_a_digest = partner.inbound_token_digest = ""
        partner.next_inbound_token_digest = partner.outbound_token_encrypted = ""
        partner.save()
    logger.info("Partner %s unregistered", partner)
    return acknowledged


def partner_suspend(*, partner: Partner) -> Partner:
    """Stop all traffic both ways, keeping the registration (its token answers 401 meanwhile)."""
    return _status_change(partner, Partner.Status.REGISTERED, Partner.Status.SUSPENDED)


def partner_reactivate(*, partner: Partner) -> Partner:
    return _status_change(partner, Partner.Status.SUSPENDED, Partner.Status.REGISTERED)


def _status_change(partner: Partner, current: str, new: str) -> Partner:
    with transaction.atomic():
        partner = Partner.objects.select_for_update().get(pk=partner.pk)
        if partner.status != current:
            raise MethodNotAllowedInState(
                f"{partner} is {partner.get_status_display().lower()}, "
                f"not {Partner.Status(current).label.lower()}"
            )
        partner.status = new
        partner.save(update_fields=["status", "updated"])
    return partner
