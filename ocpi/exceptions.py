"""OCPI errors and the one place where any error becomes an OCPI envelope (STYLE.md)."""

import logging
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError, connections
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from .envelope import envelope

logger = logging.getLogger(__name__)


class OCPIError(Exception):
    """An error answered with an OCPI status code."""

    ocpi_status = 2000
    http_status = 400
    default_message = "Client error"
    #: Seconds the caller should wait before trying again (a Retry-After header), if any.
    retry_after: int | None = None

    def __init__(self, message: str | None = None, *, data=None):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.data = data


class InvalidParameters(OCPIError):
    ocpi_status, http_status, default_message = 2001, 400, "Invalid or missing parameters"


class NotEnoughInformation(OCPIError):
    ocpi_status, http_status, default_message = 2002, 400, "Not enough information"


class UnknownLocation(OCPIError):
    ocpi_status, http_status, default_message = 2003, 404, "Unknown location"


class UnknownToken(OCPIError):
    ocpi_status, http_status, default_message = 2004, 404, "Unknown token"


class UnknownObject(OCPIError):
    ocpi_status, http_status, default_message = 2000, 404, "Unknown object"


class MethodNotAllowedInState(OCPIError):
    """E.g. credentials POST when already registered (PROTOCOL.md §3.2)."""

    ocpi_status, http_status, default_message = 2000, 405, "Method not allowed"


class ServerError(OCPIError):
    ocpi_status, http_status, default_message = 3000, 500, "Server error"


class ServiceUnavailable(OCPIError):
    """We cannot answer now; the caller should try again after `retry_after` seconds (the
    database is unreachable). OCPI has no code of its own for it: 3000, with HTTP 503."""

    ocpi_status, http_status = 3000, 503
    default_message = "The service is temporarily unavailable"
    retry_after = 30


#: The database cannot be reached or is busy right now (connection refused or lost, server
#: restarting, lock or serialization failure): transient, answered ServiceUnavailable. Other
#: DatabaseErrors (integrity, data, programming) are bugs and stay 3000 with HTTP 500.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


class UnableToUseClientAPI(OCPIError):
    ocpi_status, http_status, default_message = 3001, 200, "Unable to use the client's API"


class UnsupportedVersion(OCPIError):
    ocpi_status, http_status, default_message = 3002, 200, "Unsupported version"


class NoMatchingEndpoints(OCPIError):
    ocpi_status, http_status, default_message = 3003, 200, "No matching endpoints"


# --- errors talking to a partner (outbound) ---------------------------------------------------
class PartnerError(Exception):
    """A call to a partner did not succeed."""

    def __init__(self, message: str, *, http_status: int | None = None, ocpi_status=None):
        super().__init__(message)
        self.http_status = http_status
        self.ocpi_status = ocpi_status


class PartnerUnavailable(PartnerError):
    """Worth retrying: timeout, refused connection, HTTP 5xx, OCPI 3xxx."""


class PartnerRejected(PartnerError):
    """Not worth retrying unchanged: HTTP 4xx, OCPI 2xxx, a reply that is not OCPI."""


_DRF_STATUS = {
    drf_exceptions.ParseError: (2001, "Malformed JSON body"),
    drf_exceptions.ValidationError: (2001, None),
    drf_exceptions.UnsupportedMediaType: (2001, None),
    drf_exceptions.NotFound: (2000, None),
    drf_exceptions.MethodNotAllowed: (2000, None),
    drf_exceptions.NotAuthenticated: (2000, "Authorization header missing or invalid"),
    drf_exceptions.AuthenticationFailed: (2000, None),
    drf_exceptions.PermissionDenied: (2000, None),
    drf_exceptions.Throttled: (2000, None),
}


@dataclass(frozen=True)
class ErrorAnswer:
    """How an error is answered: HTTP status, the envelope's code, message and data, headers."""

    http_status: int
    ocpi_status: int
    message: str
    data: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def envelope(self) -> dict:
        return envelope(self.data, status_code=self.ocpi_status, message=self.message)


def error_answer(exc: Exception, request=None) -> ErrorAnswer:
    """The one mapping from an error to its answer, for DRF views (ocpi_exception_handler) and
    for errors outside them (ocpi.middleware: the ATOMIC_REQUESTS transaction opening or
    committing, plain Django views). Logs what is not the caller's fault."""
    if isinstance(exc, DATABASE_UNAVAILABLE):
        logger.warning(
            "Database unavailable, %s %s answered %s: %s",
            getattr(request, "method", "-"),
            getattr(request, "path", "-"),
            ServiceUnavailable.http_status,
            " ".join(f"{exc.__class__.__name__}: {exc}".split()),  # one line, no traceback
        )
        exc = ServiceUnavailable()
    if isinstance(exc, OCPIError):
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else {}
        return ErrorAnswer(exc.http_status, exc.ocpi_status, exc.message, exc.data, headers)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    if isinstance(exc, drf_exceptions.APIException):
        code, message = 2000, None
        for klass, (status_code, text) in _DRF_STATUS.items():
            if isinstance(exc, klass):
                code, message = status_code, text
                break
        if message is None:
            message = _flatten(exc.detail)
        http_status = exc.status_code
        headers = {}
        if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
            http_status = 401
            headers["WWW-Authenticate"] = "Token"
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        return ErrorAnswer(http_status, code, message, headers=headers)
    logger.exception(
        "Unhandled error on %s %s",
        getattr(request, "method", "-"),
        getattr(request, "path", "-"),
        exc_info=exc,
    )
    return ErrorAnswer(500, 3000, "Internal server error")


def ocpi_exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's EXCEPTION_HANDLER: every error on an OCPI view leaves here as an envelope."""
    _set_rollback(context.get("view"))
    answer = error_answer(exc, context.get("request"))
    return Response(answer.envelope(), status=answer.http_status, headers=answer.headers)


def _set_rollback(view) -> None:
    """DRF's set_rollback, except for views outside ATOMIC_REQUESTS (non_atomic_requests): their
    error must not mark a transaction they are not in (a test's, or a caller's) for rollback."""
    non_atomic = getattr(getattr(type(view), "dispatch", None), "_non_atomic_requests", set())
    if not non_atomic:
        set_rollback()
        return
    for db in connections.all():
        atomic_request = db.settings_dict["ATOMIC_REQUESTS"] and db.alias not in non_atomic
        if atomic_request and db.in_atomic_block:
            db.set_rollback(True)


def _flatten(detail) -> str:
    """DRF error details as one readable line: 'field: message; other: message'."""
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return "; ".join(_flatten(item) for item in detail)
    return str(detail)
