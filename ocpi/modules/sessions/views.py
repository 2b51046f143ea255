"""Sessions Sender endpoints (PROTOCOL.md §4.2): the paginated list of the caller's sessions,
and the driver's charging preferences for a running session.

What a partner may see and do is billing's business (billing.selectors, billing.sessions); these
views validate the request and translate billing's refusals into OCPI answers:
- GET without `date_from` (required for this endpoint, §10.19): HTTP 400, 2001.
- PUT charging_preferences of an unknown session, or of another partner's session (answered
  alike, so nobody learns which ids exist): HTTP 404, 2001 (the session_id names no session of
  the caller); on an EVSE without CHARGING_PREFERENCES_CAPABLE: HTTP 404, 2001 (§1.5); an invalid
  body: 2001 and nothing changes. Otherwise HTTP 200 with the bare ChargingPreferencesResponse
  enum string as data.
"""

from rest_framework.response import Response

from billing.exceptions import ChargingPreferencesNotSupported, NotYourSession, UnknownSession
from billing.selectors import session_list
from billing.sessions import session_set_charging_preferences

from ...envelope import ocpi_response
from ...exceptions import InvalidParameters
from ...views import OCPIListView, OCPIView
from .serializers import parse_charging_preferences, session_to_ocpi


class UnknownSessionId(InvalidParameters):
    http_status = 404


class SessionListView(OCPIListView):
    """GET {sessions_url}?date_from=...: the caller's sessions, paginated."""

    def get(self, request, *args, **kwargs):
        if not request.query_params.get("date_from"):
            raise InvalidParameters("date_from is required for the sessions list")
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return session_list(partner=self.partner)

    def serialize(self, obj) -> dict:
        return session_to_ocpi(obj)


class ChargingPreferencesView(OCPIView):
    """PUT {sessions_url}/{session_id}/charging_preferences."""

    def put(self, request, session_id: str) -> Response:
        preferences = parse_charging_preferences(request.data)
        try:
            answer = session_set_charging_preferences(
                partner=self.partner, session_ocpi_id=session_id, preferences=preferences
            )
        except (UnknownSession, NotYourSession):
            raise UnknownSessionId(f"Unknown session {session_id!r}") from None
        except ChargingPreferencesNotSupported as exc:
            raise UnknownSessionId(str(exc)) from None
        return ocpi_response(str(answer))
