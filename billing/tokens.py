"""Drivers' tokens: the partners' writes (Tokens receiver and token sync), staff blocks, and the
authorization decision when a token is presented at one of our chargers (PROTOCOL.md §4.5).

Ownership: a partner reads and writes only tokens under its own roles (its PartnerRoles' country
code and party id, compared case-insensitively) and only tokens it owns itself; anything else is
`TokenNotOwned`, so a partner cannot even learn whether another's token exists.

`last_updated` is the eMSP's: a write carrying an older `last_updated` than the stored one is an
out-of-order delivery (a late push, or a sync page read before a newer push) and is not applied
(§1.10). Equal or newer ones are.

The decision (`token_authorize`) follows the whitelist table of §4.5:
- ALWAYS: from the cache only (allowed if `valid`); the partner is never asked.
- ALLOWED: real-time; if the partner cannot answer, from the cache.
- ALLOWED_OFFLINE: real-time; if the partner cannot answer, allowed (unless the eMSP itself
  marked the token invalid: an explicit "no" we hold beats the offline "yes").
- NEVER: real-time; if the partner cannot answer, denied.
`valid=false` never skips the real-time check where the whitelist asks for one (§10.12): the eMSP
may have re-enabled the token since. Our staff's block and an inactive partner deny without
asking anyone. Tokens not in the cache are denied.

Real-time calls go through `billing.seams.registry.realtime_authorizer` (filled by the OCPI layer
at start-up), so this module never imports the protocol layer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone

from .choices import AllowedType, AuthMethod, TokenType, WhitelistType
from .models import Token
from .seams import PartnerUnreachable, RealtimeAuthorization, TokenUnknownToPartner, registry

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from ocpi.models import Partner
    from stations.models import EVSE

logger = logging.getLogger(__name__)

#: The token fields a partner writes (Token minus our own blocked/created/received_at).
REQUIRED_FIELDS = (
    "country_code",
    "party_id",
    "uid",
    "type",
    "contract_id",
    "issuer",
    "valid",
    "whitelist",
    "last_updated",
)
#: Optional fields and what a PUT without them stores (PUT replaces the whole object, §1.11).
OPTIONAL_DEFAULTS = {
    "visual_number": "",
    "group_id": "",
    "language": "",
    "default_profile_type": "",
    "energy_contract": None,
}
KEY_FIELDS = ("country_code", "party_id", "uid", "type")

#: `AuthorizationDecision.allowed` for a token nobody knows (not an OCPI AllowedType).
UNKNOWN = "UNKNOWN"


class TokenError(Exception):
    """A partner's token request that cannot be served."""


class TokenNotOwned(TokenError):
    """The country code / party id is not one of the partner's roles, or the token is another
    partner's."""


class TokenNotFound(TokenError):
    """No such token among the partner's."""


# -- partners' writes and reads --------------------------------------------------------------------
def token_owner_check(*, partner: Partner, country_code: str, party_id: str) -> None:
    """Raise TokenNotOwned unless `country_code`/`party_id` is one of the partner's roles.

    Iterates `partner.roles.all()`, so a partner fetched with prefetch_related("roles") (the
    token sync) costs no query per token."""
    for role in partner.roles.all():
        if (
            role.country_code.lower() == country_code.lower()
            and role.party_id.lower() == party_id.lower()
        ):
            return
    raise TokenNotOwned(f"{country_code}*{party_id} is not one of {partner}'s parties")


def _key_filter(*, country_code: str, party_id: str, uid: str, token_type: str) -> QuerySet:
    return Token.objects.filter(
        country_code__lower=country_code.lower(),
        party_id__lower=party_id.lower(),
        uid__lower=uid.lower(),
        type=token_type,
    )


@dataclass(frozen=True)
class TokenWrite:
    """What a PUT or PATCH did: `created` a new token; `applied` false for an out-of-order
    write (older `last_updated` than stored) that left the token unchanged."""

    token: Token
    created: bool
    applied: bool


def _full_fields(data: dict) -> dict:
    fields = {name: data[name] for name in REQUIRED_FIELDS}
    for name, default in OPTIONAL_DEFAULTS.items():
        value = data.get(name)
        fields[name] = default if value is None else value
    return fields


def token_upsert(*, partner: Partner, data: dict) -> TokenWrite:
    """Create or replace a partner's token (PUT, and each token of a sync).

    `data` is a validated OCPI Token (ocpi.modules.tokens.serializers.parse_token): required
    fields present, `last_updated` an aware datetime, optional fields absent or None (stored as
    empty). Raises TokenNotOwned (nothing changes)."""
    token_owner_check(partner=partner, country_code=data["country_code"], party_id=data["party_id"])
    fields = _full_fields(data)
    key = {
        "country_code": fields["country_code"],
        "party_id": fields["party_id"],
        "uid": fields["uid"],
        "token_type": fields["type"],
    }
    with transaction.atomic():
        token = _key_filter(**key).select_for_update().first()
        if token is None:
            try:
                with transaction.atomic():  # a savepoint: a concurrent create may win the key
                    token = Token.objects.create(partner=partner, **fields)
            except IntegrityError:
                token = _key_filter(**key).select_for_update().first()
                if token is None:
                    raise
            else:
                logger.info("Token %s created by %s", token, partner)
                return TokenWrite(token, created=True, applied=True)
        if token.partner_id != partner.pk:
            raise TokenNotOwned(f"Token {token.uid} belongs to another partner")
        return _apply(token, fields)


def _apply(token: Token, fields: dict) -> TokenWrite:
    token.received_at = timezone.now()
    if fields["last_updated"] < token.last_updated:
        logger.info("Token %s: ignored an update older than the stored one", token)
        token.save(update_fields=["received_at"])
        return TokenWrite(token, created=False, applied=False)
    for name, value in fields.items():
        setattr(token, name, value)
    token.save()
    return TokenWrite(token, created=False, applied=True)


def token_get(
    *, partner: Partner, country_code: str, party_id: str, uid: str, token_type: str
) -> Token | None:
    """The partner's token with this key (case-insensitive), or None. Raises TokenNotOwned when
    the country code / party id is not the partner's."""
    token_owner_check(partner=partner, country_code=country_code, party_id=party_id)
    return (
        _key_filter(country_code=country_code, party_id=party_id, uid=uid, token_type=token_type)
        .filter(partner=partner)
        .first()
    )


def token_patch(
    *,
    partner: Partner,
    country_code: str,
    party_id: str,
    uid: str,
    token_type: str,
    data: dict,
) -> TokenWrite:
    """Update the fields present in `data` (PATCH, §1.11); `data["last_updated"]` is required.

    `data` is validated (parse_token(partial=True)); key fields in it are ignored (the caller
    checked they match the URL); None means "not sent". Raises TokenNotOwned, TokenNotFound."""
    token_owner_check(partner=partner, country_code=country_code, party_id=party_id)
    with transaction.atomic():
        token = (
            _key_filter(
                country_code=country_code, party_id=party_id, uid=uid, token_type=token_type
            )
            .filter(partner=partner)
            .select_for_update()
            .first()
        )
        if token is None:
            raise TokenNotFound(f"No token {uid} ({token_type}) of {country_code}*{party_id}")
        fields = {
            name: data[name]
            for name in (*REQUIRED_FIELDS, *OPTIONAL_DEFAULTS)
            if name not in KEY_FIELDS and data.get(name) is not None
        }
        fields["last_updated"] = data["last_updated"]
        return _apply(token, fields)


def token_block(*, token: Token) -> bool:
    """Block the token on our side (staff), whatever the eMSP says; True if it changed."""
    return _set_blocked(token, True)


def token_unblock(*, token: Token) -> bool:
    """Lift our staff's block; True if it changed."""
    return _set_blocked(token, False)


def _set_blocked(token: Token, blocked: bool) -> bool:
    changed = Token.objects.filter(pk=token.pk).exclude(blocked=blocked).update(blocked=blocked)
    token.blocked = blocked
    if changed:
        logger.info("Token %s %s by staff", token, "blocked" if blocked else "unblocked")
    return bool(changed)


# -- authorization at a charger --------------------------------------------------------------------
@dataclass(frozen=True)
class AuthorizationDecision:
    """Whether a token presented at a charger may charge there, and what the session records.

    `allowed` is an AllowedType value, or UNKNOWN for a token neither we nor its eMSP know.
    `auth_method` is AUTH_REQUEST when the eMSP answered, WHITELIST when we decided locally.
    `authorization_reference` (from the eMSP) goes into the Session and CDR."""

    allowed: str
    token: Token | None = None
    auth_method: str = AuthMethod.WHITELIST
    authorization_reference: str = ""
    reason: str = ""
    info: dict | None = field(default=None, compare=False)

    @property
    def authorized(self) -> bool:
        return self.allowed == AllowedType.ALLOWED

    @property
    def partner(self) -> Partner | None:
        return self.token.partner if self.token is not None else None


def _cached_token(uid: str, token_type: str) -> Token | None:
    # A uid is unique per eMSP only: if several eMSPs cached the same one, prefer a usable one.
    return (
        Token.objects.filter(uid__lower=uid.lower(), type=token_type)
        .select_related("partner")
        .order_by("blocked", "-valid", "-last_updated", "pk")
        .first()
    )


def token_authorize(
    *, uid: str, token_type: str = TokenType.RFID, evse: EVSE | None
) -> AuthorizationDecision:
    """Decide on a token presented at `evse` (RFID swipe, app): see the module docstring.

    Never raises for the partner's failures: an unreachable partner is the whitelist fallback."""
    token = _cached_token(uid, token_type)
    if token is None:
        return _decided(AuthorizationDecision(UNKNOWN, reason="Token not known"), uid, evse)
    if token.blocked:
        return _decided(
            AuthorizationDecision(AllowedType.BLOCKED, token, reason="Blocked by our staff"),
            uid,
            evse,
        )
    if not token.partner.is_registered:
        decision = AuthorizationDecision(
            AllowedType.NOT_ALLOWED, token, reason=f"Partner {token.partner} is not active"
        )
        return _decided(decision, uid, evse)
    if token.whitelist == WhitelistType.ALWAYS:
        return _decided(_from_cache(token, "Whitelist ALWAYS: decided from the cache"), uid, evse)
    try:
        answer = _ask_partner(token, evse)
    except TokenUnknownToPartner as exc:
        decision = AuthorizationDecision(
            UNKNOWN, token, AuthMethod.AUTH_REQUEST, reason=f"Unknown to the eMSP: {exc}"
        )
    except PartnerUnreachable as exc:
        decision = _offline(token, str(exc))
    else:
        decision = _from_partner(token, answer, evse)
    return _decided(decision, uid, evse)


def _ask_partner(token: Token, evse: EVSE | None) -> RealtimeAuthorization:
    authorizer = registry.realtime_authorizer
    if authorizer is None:
        raise PartnerUnreachable("No real-time authorizer is registered")
    location = evse.location if evse is not None else None
    return authorizer(token.partner, token, location, evse)


def _from_cache(token: Token, reason: str) -> AuthorizationDecision:
    if token.valid:
        return AuthorizationDecision(AllowedType.ALLOWED, token, reason=reason)
    return AuthorizationDecision(
        AllowedType.BLOCKED, token, reason=f"{reason}; the eMSP marked the token invalid"
    )


def _offline(token: Token, error: str) -> AuthorizationDecision:
    """The whitelist fallback when the eMSP cannot answer (§4.5)."""
    why = f"eMSP unreachable ({error})"
    if token.whitelist == WhitelistType.NEVER:
        return AuthorizationDecision(
            AllowedType.NOT_ALLOWED, token, reason=f"{why}; whitelist NEVER"
        )
    # ALLOWED: the cache decides. ALLOWED_OFFLINE: allowed, unless the eMSP told us the token is
    # invalid (then the cache's "no" stands).
    return _from_cache(token, f"{why}; whitelist {token.whitelist}")


def _from_partner(
    token: Token, answer: RealtimeAuthorization, evse: EVSE | None
) -> AuthorizationDecision:
    allowed = answer.allowed if answer.allowed in AllowedType.values else AllowedType.NOT_ALLOWED
    reason = f"eMSP answered {answer.allowed}"
    if (
        allowed == AllowedType.ALLOWED
        and answer.allowed_evse_uids is not None
        and (evse is None or evse.uid.lower() not in {u.lower() for u in answer.allowed_evse_uids})
    ):
        allowed = AllowedType.NOT_ALLOWED
        reason = "eMSP allowed the token, but not at this EVSE"
    _refresh_cache(token, answer.token)
    return AuthorizationDecision(
        allowed,
        token,
        AuthMethod.AUTH_REQUEST,
        authorization_reference=answer.authorization_reference or "",
        reason=reason,
        info=answer.info,
    )


def _refresh_cache(token: Token, data: dict | None) -> None:
    """Store the full Token the eMSP returned with its answer, if it is this token and newer."""
    if not data or any(data.get(name) is None for name in REQUIRED_FIELDS):
        return
    same_key = (
        data["country_code"].lower() == token.country_code.lower()
        and data["party_id"].lower() == token.party_id.lower()
        and data["uid"].lower() == token.uid.lower()
        and data["type"] == token.type
    )
    if not same_key or data["last_updated"] <= token.last_updated:
        return
    try:
        token_upsert(partner=token.partner, data=data)
    except TokenError:
        logger.warning("Token %s: the eMSP returned a token we cannot store", token)
    token.refresh_from_db()


def _decided(decision: AuthorizationDecision, uid: str, evse: EVSE | None) -> AuthorizationDecision:
    logger.info(
        "Authorization of %s at %s: %s (%s)",
        uid,
        evse.uid if evse is not None else "-",
        decision.allowed,
        decision.reason,
    )
    return decision
