"""Keeping credentials tokens out of what we write down: the traffic log and the log files.

A credentials token travels in two places: the `Authorization: Token …` header of every call,
and the `token` field of a Credentials object (registration, update, GET credentials). Both are
replaced by REDACTED before a request or a log line is stored, so neither a database dump of the
traffic log nor a log file lets anyone call us or a partner (DESIGN.md "Tokens at rest").

This module imports no models: settings.LOGGING loads `RedactTokensFilter` before the apps are
ready.
"""

import logging
import re

REDACTED = "REDACTED"

#: Headers whose values are secrets, whatever they hold.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})

# An Authorization header as it shows in text ("Authorization: Token …", or a dict repr
# "'Authorization': 'Token …'"); drivers' tokens ("Token 04A2… (RFID)") are not credentials.
_AUTHORIZATION_RE = re.compile(
    r"""(Authorization['"]?\s*[:=]\s*['"]?(?:Token\s+)?)[^\s'",;}]+""", re.IGNORECASE
)
# A member "token": "<string>" (a Credentials object) in JSON or in a Python dict repr; objects
# under "token" (a Token in a START_SESSION) are not secrets and stay.
_TOKEN_MEMBER_RE = re.compile(r"""(["']token["']\s*:\s*)(["'])(?:(?!\2)[^\\]|\\.)*\2""")


def redact_headers(headers) -> dict[str, str]:
    """A copy of `headers` (any mapping) with secret values replaced by REDACTED."""
    return {
        str(name): REDACTED if str(name).lower() in SECRET_HEADERS else str(value)
        for name, value in headers.items()
    }


def redact_body(text: str) -> str:
    """`text` with every `"token": "…"` string member replaced by REDACTED."""
    if "token" not in text:
        return text
    return _TOKEN_MEMBER_RE.sub(rf"\1\2{REDACTED}\2", text)


def redact_text(text: str) -> str:
    """A log line without credentials tokens (header form or JSON member form)."""
    return redact_body(_AUTHORIZATION_RE.sub(rf"\1{REDACTED}", text))


class RedactTokensFilter(logging.Filter):
    """A handler filter: formats the record's message (and traceback) and redacts tokens in it.

    Installed on the console handler by settings.LOGGING, and on the Celery worker's handlers
    by ocpi.traffic (Celery replaces the root handlers when a worker starts)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is logging's business
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True
