"""Credentials module endpoint (PROTOCOL.md §3.2): the partner registers, updates, unregisters.

- POST (token A only): registration; 405 once registered.
- PUT (current token): update and token rotation; 405 when not registered.
- DELETE (current token): unregister; 405 when not registered.
- GET (current token): the credentials the caller uses to access us. We keep only a digest of
  the token we issued, so `token` is the one the caller presented on this very request: that is
  by definition the token it uses, and we reveal nothing it does not hold.
No routing headers (configuration module). Callbacks reuse the caller's X-Correlation-ID.
"""

from . import tokens
from .auth import PartnerUser
from .envelope import ocpi_response
from .exceptions import MethodNotAllowedInState
from .serializers import parse_credentials
from .services import credentials_update, our_credentials, partner_unregister, registration_accept
from .views import OCPIView


class CredentialsView(OCPIView):
    allow_token_a = True

    def get(self, request, *args, version: str, **kwargs):
        user = self._registered_caller(request)
        token = presented_token(request.META.get("HTTP_AUTHORIZATION", ""), user)
        return ocpi_response(our_credentials(token=token, version=version))

    def post(self, request, *args, version: str, **kwargs):
        if request.user.token_kind != "A":
            raise MethodNotAllowedInState("Already registered: use PUT to update credentials")
        credentials = parse_credentials(request.data, version=version)
        data = registration_accept(
            partner=request.auth,
            credentials=credentials,
            version=version,
            correlation_id=_correlation_id(request),
        )
        return ocpi_response(data)

    def put(self, request, *args, version: str, **kwargs):
        user = self._registered_caller(request)
        credentials = parse_credentials(request.data, version=version)
        data = credentials_update(
            partner=user.partner,
            credentials=credentials,
            version=version,
            correlation_id=_correlation_id(request),
        )
        return ocpi_response(data)

    def delete(self, request, *args, version: str, **kwargs):
        user = self._registered_caller(request)
        partner_unregister(partner=user.partner, notify_partner=False)
        return ocpi_response()

    @staticmethod
    def _registered_caller(request) -> PartnerUser:
        user = request.user
        if user.token_kind != "inbound":
            raise MethodNotAllowedInState("Not registered: POST credentials to register")
        return user


def presented_token(header: str, user: PartnerUser) -> str:
    """The credentials token in an Authorization header that authenticated `user`."""
    _, _, value = header.strip().partition(" ")
    partner = user.partner
    for candidate in tokens.candidate_tokens(value.strip()):
        for digest in (partner.inbound_token_digest, partner.next_inbound_token_digest):
            if digest and tokens.digests_match(digest, candidate):
                return candidate
    raise MethodNotAllowedInState("Not registered: POST credentials to register")


def _correlation_id(request) -> str | None:
    return getattr(request, "ocpi_correlation_id", None)
