"""Rate limiting of the OCPI API: a partner that floods us gets HTTP 429, the others do not slow.

DRF throttling (REST_FRAMEWORK DEFAULT_THROTTLE_CLASSES) over the default cache: Redis when
CACHE_URL is set, so the limit holds across gunicorn workers; local memory otherwise (per worker
process: a demo's limit is then per process). One bucket per partner, keyed by the partner
whose token authenticated the request; callers without a valid token share a bucket per client
IP (DRF's get_ident: REMOTE_ADDR, or X-Forwarded-For behind NUM_PROXIES proxies). OCPIView
throttles callers that failed authentication too, so guessing tokens meets the same limit.

The rate is OCPI_RATE_LIMIT, read on each request ("600/minute", "20/second"; empty: no limit).
The answer is the OCPI envelope with HTTP 429 and Retry-After (ocpi.exceptions handler). If the
cache cannot be reached, requests are let through (and a warning logged): a cache outage must not
take the API down with it.
"""

import logging

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from .models import Partner

logger = logging.getLogger(__name__)


class PartnerRateThrottle(SimpleRateThrottle):
    scope = "ocpi"

    def get_rate(self) -> str | None:
        return getattr(settings, "OCPI_RATE_LIMIT", "") or None

    def get_cache_key(self, request, view) -> str:
        partner = getattr(request, "auth", None)
        if isinstance(partner, Partner) and partner.pk:
            ident = f"partner-{partner.pk}"
        else:
            ident = f"ip-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:  # noqa: BLE001 - fail open: see the module docstring
            logger.warning("Rate limit cache unavailable: request let through", exc_info=True)
            return True
