"""The OCPI response envelope (PROTOCOL.md §1.3) and its renderer."""

from typing import Any

from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response

from . import jsonutil
from .datetimes import now_utc


def envelope(data: Any = None, *, status_code: int = 1000, message: str | None = None) -> dict:
    body: dict[str, Any] = {}
    if data is not None:
        body["data"] = data
    body["status_code"] = status_code
    body["status_message"] = message or ("Success" if status_code < 2000 else "Error")
    body["timestamp"] = now_utc()
    return body


def ocpi_response(
    data: Any = None, *, http_status: int = 200, status_code: int = 1000, headers=None
) -> Response:
    return Response(envelope(data, status_code=status_code), status=http_status, headers=headers)


class OCPIJSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data: Any, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return jsonutil.dumps(data)
