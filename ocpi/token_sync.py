"""Pulling a partner's tokens from its tokens Sender (PROTOCOL.md §4.5, §1.8).

`token_sync(partner_id=...)` GETs the partner's tokens endpoint page by page (page size from the
partner's compatibility profile, following `Link: <…>; rel="next"` until it is absent) and stores
each token with billing.tokens.token_upsert, so running it again changes nothing (idempotent).

Resumable: a sync that completed stores its start on the partner (`tokens_synced_until`); the
next one asks only for changes since then (`date_from`, minus SYNC_OVERLAP against clock skew
between the partner's `last_updated` and our clock). A sync that fails half-way keeps the
previous mark, so the next run asks for the same window again; the pages it did store are simply
stored again. `full=True` ignores the mark (a full crawl).

A token that does not validate, or that names a party that is not the partner's, is skipped and
counted, not fatal. Link URLs must stay on the endpoint's scheme and host (we send our token to
them), and a crawl stops at MAX_PAGES or when a Link repeats.

Celery: `sync_tokens_task` (beat, every TOKEN_SYNC_SECONDS) queues `sync_partner_tokens_task`
for every registered partner with a tokens SENDER endpoint; the latter retries with backoff when
the partner is unavailable.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from celery import shared_task
from django.db import transaction
from django.db.models import Q
from requests.utils import parse_header_links
from rest_framework.exceptions import ValidationError

from billing.tokens import TokenError, token_upsert

from .client import OCPIClient
from .datetimes import format_datetime, now_utc
from .exceptions import (
    MethodNotAllowedInState,
    NoMatchingEndpoints,
    OCPIError,
    PartnerRejected,
    PartnerUnavailable,
)
from .formats import wire_format
from .models import Partner

logger = logging.getLogger(__name__)

SYNC_OVERLAP = timedelta(minutes=5)
MAX_PAGES = 10_000


@dataclass
class TokenSyncReport:
    """What one sync did."""

    partner_id: int
    date_from: datetime | None = None
    pages: int = 0
    received: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0  # older than what we hold (a newer push arrived first)
    rejected: int = 0  # invalid, or of a party that is not the partner's

    def __str__(self) -> str:
        return (
            f"{self.received} tokens in {self.pages} page(s): {self.created} new, "
            f"{self.updated} updated, {self.unchanged} older than ours, {self.rejected} rejected"
        )


def token_sender_url(partner: Partner) -> str | None:
    return partner.endpoint_url("tokens", "SENDER")


def token_sync(*, partner_id: int, full: bool = False) -> TokenSyncReport:
    """Pull the partner's tokens (changes since the last sync, or all with `full`).

    Raises MethodNotAllowedInState (partner not registered), NoMatchingEndpoints (no tokens
    SENDER endpoint), PartnerUnavailable / PartnerRejected (the partner's answers); a sync that
    raises leaves `tokens_synced_until` as it was."""
    partner = Partner.objects.prefetch_related("roles").get(pk=partner_id)
    if not partner.is_registered:
        raise MethodNotAllowedInState(f"{partner} is not registered")
    endpoint = token_sender_url(partner)
    if not endpoint:
        raise NoMatchingEndpoints(f"{partner} has no tokens SENDER endpoint")
    started = now_utc()
    report = TokenSyncReport(partner_id=partner.pk)
    if not full and partner.tokens_synced_until is not None:
        report.date_from = partner.tokens_synced_until - SYNC_OVERLAP
    params: dict | None = {"limit": max(partner.page_size, 1)}
    if report.date_from is not None:
        params["date_from"] = format_datetime(report.date_from)
    client = OCPIClient(partner)
    url: str | None = endpoint
    seen: set[str] = set()
    while url is not None:
        reply = client.get(url, params=params)
        if not isinstance(reply.data, list):
            raise PartnerRejected(f"{partner}: a tokens page is not a list")
        report.pages += 1
        _store_page(partner, reply.data, report)
        seen.add(url)
        url, params = _next_page(reply.headers, endpoint=endpoint), None
        if url is not None and (url in seen or report.pages >= MAX_PAGES):
            raise PartnerRejected(f"{partner}: token pagination does not end (at {url})")
    Partner.objects.filter(
        Q(tokens_synced_until__isnull=True) | Q(tokens_synced_until__lt=started), pk=partner.pk
    ).update(tokens_synced_until=started)
    logger.info("Token sync from %s: %s", partner, report)
    return report


def _store_page(partner: Partner, items: list, report: TokenSyncReport) -> None:
    # Tokens come in the partner's version (2.1.1: no party in them, auth_id: ocpi.formats).
    parse = wire_format(partner.version).parse_partner_token
    with transaction.atomic():
        for item in items:
            report.received += 1
            try:
                write = token_upsert(partner=partner, data=parse(item, partner=partner))
            except (ValidationError, TokenError) as exc:
                report.rejected += 1
                uid = item.get("uid") if isinstance(item, dict) else None
                logger.warning("Token sync from %s: skipped token %r: %s", partner, uid, exc)
                continue
            if write.created:
                report.created += 1
            elif write.applied:
                report.updated += 1
            else:
                report.unchanged += 1


def _next_page(headers: dict, *, endpoint: str) -> str | None:
    """The `rel="next"` URL of a page's Link header, None on the last page."""
    value = next((v for k, v in headers.items() if k.lower() == "link"), "")
    link = next((link for link in parse_header_links(value) if link.get("rel") == "next"), None)
    if link is None or not link.get("url"):
        return None
    ours, theirs = urlsplit(endpoint), urlsplit(link["url"])
    if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
        raise PartnerRejected(f"Token page link leaves the partner's host: {link['url']}")
    return link["url"]


def partners_with_token_sender() -> list[int]:
    """Registered partners that offer a tokens SENDER endpoint."""
    partners = Partner.objects.filter(status=Partner.Status.REGISTERED).order_by("pk")
    return [p.pk for p in partners if token_sender_url(p)]


# -- Celery ----------------------------------------------------------------------------------------
@shared_task(name="ocpi.tasks.sync_tokens_task", acks_late=True, ignore_result=True)
def sync_tokens_task() -> int:
    """Queue a token sync for every partner with a tokens Sender; returns how many."""
    partner_ids = partners_with_token_sender()
    for partner_id in partner_ids:
        sync_partner_tokens_task.delay(partner_id)
    return len(partner_ids)


@shared_task(
    name="ocpi.tasks.sync_partner_tokens_task",
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=5,
)
def sync_partner_tokens_task(self, partner_id: int, full: bool = False) -> None:
    try:
        token_sync(partner_id=partner_id, full=full)
    except PartnerUnavailable as exc:
        countdown = min(60 * 2**self.request.retries, 3600)
        raise self.retry(exc=exc, countdown=countdown) from exc
    except (PartnerRejected, OCPIError, Partner.DoesNotExist) as exc:
        logger.warning("Token sync from partner %s failed: %s", partner_id, exc)
