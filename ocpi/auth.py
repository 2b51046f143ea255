"""`Authorization: Token …` → the calling Partner (PROTOCOL.md §1.2, §3.5).

Accepts the 2.2.1 Base64 form and the raw form many 2.2 partners still send. Unknown, suspended
or unregistered tokens get HTTP 401. Token A authenticates only on versions, version details and
credentials (views that set `allow_token_a = True`).
"""

from dataclasses import dataclass

from rest_framework import authentication, exceptions, permissions

from . import tokens
from .models import Partner


@dataclass(frozen=True)
class PartnerUser:
    """The authenticated caller: a partner and which of its tokens it used."""

    partner: Partner
    # "A" (registration token), "inbound" (token C/B after registration) or "B" (the token we
    # gave the partner in our own registration POST, while that POST is in flight)
    token_kind: str

    is_authenticated = True
    is_anonymous = False


def partner_for_header(value: str | None) -> PartnerUser | None:
    if not value:
        return None
    scheme, _, credential = value.strip().partition(" ")
    if scheme.lower() != "token" or not credential.strip():
        return None
    candidates = tokens.candidate_tokens(credential.strip())
    digests = [tokens.token_digest(c) for c in candidates]
    partner = Partner.objects.filter(inbound_token_digest__in=digests).first()
    if partner is not None:
        if partner.status != Partner.Status.REGISTERED:
            return None
        return PartnerUser(partner, "inbound")
    partner = Partner.objects.filter(
        token_a_digest__in=digests, status=Partner.Status.PENDING
    ).first()
    if partner is not None:
        return PartnerUser(partner, "A")
    # A token we issued in a credentials POST/PUT of ours still in flight (ocpi.services):
    # while we register, it only opens versions/details ("B"); while we rotate, it is already
    # as good as the current one, in case the partner uses it before our PUT returns.
    partner = Partner.objects.filter(next_inbound_token_digest__in=digests).first()
    if partner is not None:
        if partner.status == Partner.Status.REGISTERED:
            return PartnerUser(partner, "inbound")
        if partner.status == Partner.Status.PENDING:
            return PartnerUser(partner, "B")
    return None


class CredentialsTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION")
        if not header:
            return None
        user = partner_for_header(header)
        if user is None:
            raise exceptions.AuthenticationFailed("Unknown or inactive credentials token")
        return user, user.partner

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) to unauthenticated requests.
        return "Token"


class IsRegisteredPartner(permissions.BasePermission):
    """Functional modules: a registered partner using its current token (never token A)."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not isinstance(user, PartnerUser):
            raise exceptions.NotAuthenticated()
        if user.token_kind in ("A", "B") and not getattr(view, "allow_token_a", False):
            raise exceptions.AuthenticationFailed("Token A is only valid for registration")
        return True
