"""ChargingProfiles Receiver endpoint (PROTOCOL.md §4.7): {chargingprofiles_url}/{session_id}.

PUT sets a profile (SetChargingProfile body), GET asks for the ActiveChargingProfile
(`?duration=...&response_url=...`), DELETE clears the profile (`?response_url=...`). The
decisions are ocpi.charging_profiles'; every request that reached the OCPI layer is answered
HTTP 200 with data ChargingProfileResponse {result, timeout} (status 1000; the reason, if any,
in status_message); invalid input is HTTP 400 / 2001 and nothing is kept.
"""

from rest_framework.response import Response

from ...charging_profiles import (
    charging_profile_clear,
    charging_profile_get,
    charging_profile_set,
)
from ...commands import CommandAnswer
from ...envelope import envelope
from ...exceptions import InvalidParameters, UnknownObject
from ...views import OCPIView
from .serializers import parse_active_profile_query, parse_clear_profile_query, parse_set_profile


def _answer(answer: CommandAnswer) -> Response:
    return Response(
        envelope(
            answer.to_ocpi(with_message=False),
            status_code=answer.status_code,
            message=answer.message or None,
        )
    )


class ChargingProfileView(OCPIView):
    """GET/PUT/DELETE {chargingprofiles_url}/{session_id}."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        session_id = kwargs.get("session_id")
        if session_id is None:  # the module's base URL itself
            raise UnknownObject("Requests go to {chargingprofiles_url}/{session_id}")
        if len(session_id) > 36:
            raise InvalidParameters("session_id is a CiString(36)")

    def put(self, request, session_id: str) -> Response:
        data = parse_set_profile(request.data)
        return _answer(
            charging_profile_set(
                partner=self.partner,
                session_id=session_id,
                data=data,
                correlation_id=getattr(request, "ocpi_correlation_id", None),
            )
        )

    def get(self, request, session_id: str) -> Response:
        query = parse_active_profile_query(request.query_params)
        return _answer(
            charging_profile_get(
                partner=self.partner,
                session_id=session_id,
                duration=query["duration"],
                response_url=query["response_url"],
                correlation_id=getattr(request, "ocpi_correlation_id", None),
            )
        )

    def delete(self, request, session_id: str) -> Response:
        query = parse_clear_profile_query(request.query_params)
        return _answer(
            charging_profile_clear(
                partner=self.partner,
                session_id=session_id,
                response_url=query["response_url"],
                correlation_id=getattr(request, "ocpi_correlation_id", None),
            )
        )
