"""Outbound OCPI calls to a partner: one place for tokens, headers, timeouts and reply parsing.

Every call carries the partner's token in the encoding of its compatibility profile, a fresh
X-Request-ID, an X-Correlation-ID (reused from the request that caused the call, if any), the
routing headers on functional modules, and a timeout. A reply is judged by its OCPI status code
when it carries an envelope (PROTOCOL.md §10.3), else by its HTTP status.
"""

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests
from django.conf import settings

from . import jsonutil, tokens, traffic
from .exceptions import PartnerRejected, PartnerUnavailable
from .models import Partner, cpo_roles

logger = logging.getLogger(__name__)


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
        try:
            payload = jsonutil.loads(response.content) if response.content else None
        except (ValueError, UnicodeDecodeError):
            payload = None
            if status >= 500:
                raise PartnerUnavailable(
                    f"HTTP {status} without JSON from {url}", http_status=status
                ) from None
            raise PartnerRejected(
                f"HTTP {status} from {url} is not JSON: {response.text[:200]!r}",
                http_status=status,
            ) from None
        is_envelope = isinstance(payload, dict) and isinstance(payload.get("status_code"), int)
        headers = dict(response.headers)
        if not is_envelope:
            if status >= 500:
                raise PartnerUnavailable(f"HTTP {status} from {url}", http_status=status)
            if status >= 400 or payload is not None:
                raise PartnerRejected(
                    f"HTTP {status} from {url} without an OCPI envelope", http_status=status
                )
            # An empty 2xx body: accepted by practice (PROTOCOL.md §10.20).
            return OCPIReply(status, None, None, headers)
        ocpi_status = payload["status_code"]
        message = str(payload.get("status_message") or "")
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


def join_url(base: str, *parts: str) -> str:
    """Join with exactly one '/' between parts (PROTOCOL.md §10.8)."""
    url = base.rstrip("/")
    for part in parts:
        part = str(part).strip("/")
        if part:
            url += "/" + part
    return url
