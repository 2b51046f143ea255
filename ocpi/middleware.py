"""Per-request OCPI plumbing for every /ocpi/ path, including errors raised outside DRF.

- X-Request-ID / X-Correlation-ID: taken from the request (or generated) and echoed on the
  response, errors included (PROTOCOL.md §1.6).
- OCPI-from/to routing headers: swapped onto responses of functional modules (§1.7).
- Exceptions that escape a view become an envelope, never an HTML page, by the same mapping as
  DRF's (ocpi.exceptions.error_answer): errors of non-DRF views, and errors of Django's
  ATOMIC_REQUESTS wrapper around every view (opening or committing the request's transaction:
  the database unreachable there is a 503 like anywhere else).
- A body over DATA_UPLOAD_MAX_MEMORY_SIZE is answered HTTP 413 with an OCPI 2001 envelope (not
  Django's HTML 400); the body is read here once, so the traffic log has it too.
- Every request and its response go to the traffic log (ocpi.traffic), once the view's
  transaction has ended.
"""

import time
import uuid

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, UnreadablePostError

from . import jsonutil, traffic
from .envelope import envelope
from .exceptions import error_answer

OCPI_PREFIX = "/ocpi/"
CONFIGURATION_MODULES = ("versions", "credentials")
ROUTING_PAIRS = (
    ("HTTP_OCPI_FROM_COUNTRY_CODE", "OCPI-to-country-code"),
    ("HTTP_OCPI_FROM_PARTY_ID", "OCPI-to-party-id"),
    ("HTTP_OCPI_TO_COUNTRY_CODE", "OCPI-from-country-code"),
    ("HTTP_OCPI_TO_PARTY_ID", "OCPI-from-party-id"),
)


def envelope_response(
    status_code: int, http_status: int, message: str, *, data=None, headers=None
) -> HttpResponse:
    return HttpResponse(
        jsonutil.dumps(envelope(data, status_code=status_code, message=message)),
        status=http_status,
        content_type="application/json",
        headers=headers,
    )


def is_functional_path(path: str) -> bool:
    if not path.startswith(OCPI_PREFIX):
        return False
    parts = [p for p in path.split("/") if p]
    return len(parts) > 2 and not any(p in CONFIGURATION_MODULES for p in parts)


class OCPIRequestMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(OCPI_PREFIX):
            return self.get_response(request)
        request.ocpi_request_id = request.headers.get("X-Request-ID") or str(uuid.uuid4())
        request.ocpi_correlation_id = request.headers.get("X-Correlation-ID") or str(uuid.uuid4())
        started = time.monotonic()
        try:
            request.body  # noqa: B018 - read once: size-checked here, kept for the traffic log
        except RequestDataTooBig:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            response = envelope_response(2001, 413, f"Request body larger than {limit} bytes")
        except UnreadablePostError:
            response = envelope_response(2000, 400, "The request body could not be read")
        else:
            response = self.get_response(request)
        response["X-Request-ID"] = request.ocpi_request_id
        response["X-Correlation-ID"] = request.ocpi_correlation_id
        if is_functional_path(request.path):
            for meta_key, header in ROUTING_PAIRS:
                if request.META.get(meta_key):
                    response[header] = request.META[meta_key]
        traffic.record_inbound(request, response, started=started)
        return response

    def process_exception(self, request, exception):
        if not request.path.startswith(OCPI_PREFIX):
            return None
        answer = error_answer(exception, request)
        return envelope_response(
            answer.ocpi_status,
            answer.http_status,
            answer.message,
            data=answer.data,
            headers=answer.headers,
        )
