"""Outbound OCPI calls to a partner: one place for tokens, headers, timeouts and reply parsing.

Every call carries the partner's token in the encoding of its compatibility profile, a fresh
X-Request-ID, an X-Correlation-ID (reused from the request that caused the call, if any), the
routing headers on functional modules, and a timeout. A reply is judged by its OCPI status code
when it carries an envelope (PROTOCOL.md §10.3), else by its HTTP status.

A reply that is not an envelope is never an error of ours: invalid JSON (or JSON nested too deeply
to parse), an HTML page, JSON that is not an object, an object without an integer `status_code`
between 1000 and 4999. With HTTP 5xx it is PartnerUnavailable (retry later), otherwise
PartnerRejected; only an empty 2xx body counts as success. The error says what came back (the
start of the body, quoted), and partner text in it is escaped and cut, so it can always be stored.
"""

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests
from django.conf import settings

from . import jsonutil, tokens, traffic
from .exceptions import PartnerRejected, PartnerUnavailable
from .models import Partner, cpo_roles

logger = logging.getLogger(__name__)

#: OCPI status codes (PROTOCOL.md §1.4): 1xxx success, 2xxx client, 3xxx server, 4xxx hub errors.
OCPI_STATUS_CODES = range(1000, 5000)
#: Characters of a partner's reply kept in an error message: of its status_message, and of the
#: start of a body that is not OCPI. The traffic log has the whole reply.
MESSAGE_LIMIT = 1000
SNIPPET_LIMIT = 200


@dataclass
class OCPIReply:
    http_status: int
    ocpi_status: int | None
    data: Any
    headers: dict = field(default_factory=dict)
    message: str = ""


class OCPIClient:
    def __init__(
        self,
        partner: Partner,
        *,
        token: str | None = None,
        correlation_id: str | None = None,
        session: requests.Session | None = None,
    ):
        self.partner = partner
        self.token = token
        self.correlation_id = correlation_id or str(uuid.uuid4())
        self.session = session or requests

    def _headers(self, *, functional: bool, has_body: bool) -> dict[str, str]:
        token = self.token if self.token is not None else self.partner.outbound_token
        encoded = tokens.encode_for_header(
            token, base64_encoded=self.partner.token_encoding == Partner.TokenEncoding.BASE64
        )
        headers = {
            "Authorization": f"Token {encoded}",
            "X-Request-ID": str(uuid.uuid4()),
            "X-Correlation-ID": self.correlation_id,
            "Accept": "application/json",
        }
        if has_body:
            headers["Content-Type"] = "application/json"
        if functional and self.partner.send_routing_headers and self.partner.version != "2.1.1":
            ours = cpo_roles()[0]
            headers["OCPI-from-country-code"] = ours["country_code"]
            headers["OCPI-from-party-id"] = ours["party_id"]
            theirs = self.partner.roles.first()
            if theirs is not None:
                headers["OCPI-to-country-code"] = theirs.country_code
                headers["OCPI-to-party-id"] = theirs.party_id
        return headers

    def request(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        params: dict | None = None,
        functional: bool = True,
        timeout: float | None = None,
    ) -> OCPIReply:
        """Call the partner; raise PartnerUnavailable (retry later) or PartnerRejected.

        `timeout` overrides the partner's request_timeout (e.g. real-time authorization, where
        a driver waits at the charger)."""
        if body is not None and not isinstance(body, bytes | str):
            body = jsonutil.dumps(body)
        headers = self._headers(functional=functional, has_body=body is not None)
        timeout = timeout or self.partner.request_timeout or settings.OCPI_DEFAULT_TIMEOUT
        # For the traffic log (ocpi.traffic), whatever the outcome.
        logged = {"headers": headers, "body": body, "params": params, "started": time.monotonic()}
        try:
            response = self.session.request(
                method, url, data=body, params=params, headers=headers, timeout=timeout
            )
        except requests.Timeout as exc:
            traffic.record_outbound(self.partner, method, url, error=exc, **logged)
            raise PartnerUnavailable(f"Timeout after {timeout:g}s calling {url}") from exc
        except requests.RequestException as exc:
            traffic.record_outbound(self.partner, method, url, error=exc, **logged)
            raise PartnerUnavailable(f"Cannot reach {url}: {exc.__class__.__name__}") from exc
        traffic.record_outbound(self.partner, method, url, response=response, **logged)
        return self._judge(method, url, response)

    def _judge(self, method: str, url: str, response: requests.Response) -> OCPIReply:
        status = response.status_code
        headers = dict(response.headers)
        content = response.content
        if not content.strip():
            if status >= 500:
                raise PartnerUnavailable(f"HTTP {status} from {url}", http_status=status)
            if status >= 400:
                raise PartnerRejected(
                    f"HTTP {status} from {url} with an empty body", http_status=status
                )
            # An empty 2xx body: accepted by practice (PROTOCOL.md §10.20).
            return OCPIReply(status, None, None, headers)
        try:
            payload = jsonutil.loads(content)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            if status >= 500:
                raise PartnerUnavailable(
                    f"HTTP {status} without JSON from {url}: {_snippet(content)}",
                    http_status=status,
                ) from None
            unreadable = "is JSON nested too deeply to read"
            what = unreadable if isinstance(exc, RecursionError) else "is not JSON"
            raise PartnerRejected(
                f"HTTP {status} from {url} {what}: {_snippet(content)}", http_status=status
            ) from None
        problem = _not_an_envelope(payload)
        if problem is not None:
            detail = f"HTTP {status} from {url} is not an OCPI envelope ({problem})"
            detail += f": {_snippet(content)}"
            if status >= 500:
                raise PartnerUnavailable(detail, http_status=status)
            raise PartnerRejected(detail, http_status=status)
        ocpi_status = payload["status_code"]
        message = _readable(payload.get("status_message") or "")
        reply = OCPIReply(status, ocpi_status, payload.get("data"), headers, message)
        if 1000 <= ocpi_status < 2000 and status < 400:
            return reply
        detail = f"{method} {url}: HTTP {status}, OCPI {ocpi_status} {message}".strip()
        if ocpi_status >= 3000 or status >= 500:
            raise PartnerUnavailable(detail, http_status=status, ocpi_status=ocpi_status)
        raise PartnerRejected(detail, http_status=status, ocpi_status=ocpi_status)

    # -- helpers ----------------------------------------------------------------------------
    def get(self, url: str, **kwargs) -> OCPIReply:
        return self.request("GET", url, **kwargs)


def _not_an_envelope(payload: Any) -> str | None:
    """What keeps a parsed reply from being an OCPI envelope (PROTOCOL.md §1.3), or None."""
    if not isinstance(payload, dict):
        return _JSON_KINDS.get(type(payload), "a JSON number")
    if "status_code" not in payload:
        return "no status_code"
    code = payload["status_code"]
    if not isinstance(code, int) or isinstance(code, bool):
        text = str(code) if isinstance(code, Decimal) else json.dumps(code, default=str)
        return f"status_code {_readable(text, limit=40)} is not an integer"
    if code not in OCPI_STATUS_CODES:
        return f"status_code {_readable(str(code), limit=40)} is not an OCPI status code"
    return None


_JSON_KINDS = {
    list: "a JSON array",
    str: "a JSON string",
    bool: "a JSON boolean",
    type(None): "JSON null",
}


def _readable(value: Any, *, limit: int = MESSAGE_LIMIT) -> str:
    """Partner text fit for an error message and the database: cut at `limit`, anything not
    printable (NUL, newlines, lone surrogates) escaped as Python does."""
    text = value if isinstance(value, str) else str(value)
    text = text[:limit]
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _snippet(content: bytes) -> str:
    """The start of a reply that is not OCPI, quoted (the traffic log keeps all of it)."""
    text = content[: SNIPPET_LIMIT * 4].decode("utf-8", errors="replace")[:SNIPPET_LIMIT]
    return repr(text)


def join_url(base: str, *parts: str) -> str:
    """Join with exactly one '/' between parts (PROTOCOL.md §10.8)."""
    url = base.rstrip("/")
    for part in parts:
        part = str(part).strip("/")
        if part:
            url += "/" + part
    return url
