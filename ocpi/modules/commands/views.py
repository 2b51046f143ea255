"""Commands Receiver endpoint (PROTOCOL.md §4.6): POST {commands_url}/{command}.

The view validates the body for its CommandType and hands it to ocpi.commands, which decides and
asks the charger. Answers (HTTP 200 once the request reached the OCPI layer, §1.5):
- data CommandResponse {result, timeout, message?}, status 1000 (ACCEPTED, REJECTED,
  NOT_SUPPORTED, UNKNOWN_SESSION);
- unknown location/EVSE/connector: status 2003 with data {result: REJECTED, timeout};
- a body that does not fit the command: HTTP 400, status 2001, nothing kept;
- a command type we do not know: NOT_SUPPORTED.
"""

from rest_framework.response import Response

from ...commands import command_receive
from ...envelope import envelope
from ...exceptions import UnknownObject
from ...views import OCPIView
from .serializers import COMMAND_SERIALIZERS, parse_command


class CommandView(OCPIView):
    """POST {commands_url}/{command}."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if kwargs.get("command") is None:  # the module's base URL itself
            raise UnknownObject("Commands go to {commands_url}/{command}")

    def post(self, request, command: str) -> Response:
        data = parse_command(command, request.data) if command in COMMAND_SERIALIZERS else {}
        answer = command_receive(
            partner=self.partner,
            kind=command,
            data=data,
            correlation_id=getattr(request, "ocpi_correlation_id", None),
        )
        return Response(
            envelope(
                answer.to_ocpi(),
                status_code=answer.status_code,
                message=answer.message or None,
            )
        )
