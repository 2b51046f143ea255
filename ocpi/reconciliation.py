"""CDR reconciliation with partners (PROTOCOL.md §4.3, §10.15, §10.24).

Per partner, what may have gone wrong between a session ending and the partner holding its CDR:
sessions that ended without a (delivered) CDR and CDRs whose delivery is unconfirmed
(billing.cdrs.cdr_reconciliation_status, shown in the CDR admin).

`reconcile_cdrs_task` (beat, every RECONCILE_SECONDS, daily by default):
1. creates the CDRs still missing (billing.cdrs.cdr_create_missing), so a session whose CDR
   could not be made at its end (a crash, a tariff staff fixed since) still gets one;
2. per partner, fetches back a sample of delivered CDRs (RECONCILE_SAMPLE per partner: never
   checked ones first, oldest first, then those that could not be fetched last time) with a GET
   at the URL the partner returned in the Location header, and compares the partner's copy with
   ours: ids, money and energy totals, times. The result is stored on the CDR: MATCH, MISMATCH
   with a note naming the differing fields, or UNAVAILABLE (the partner did not answer, did not
   return a CDR, or the URL is not on one of its hosts: our token only goes to the partner's own
   hosts). CDRs delivered without a Location URL cannot be fetched; they stay UNCHECKED and
   count as unconfirmed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from celery import shared_task
from django.conf import settings
from django.db.models import Case, F, IntegerField, Value, When
from django.utils import timezone

from billing.cdrs import cdr_create_missing
from billing.models_cdrs import CDR

from . import jsonutil
from .client import OCPIClient
from .datetimes import parse_datetime
from .exceptions import PartnerRejected, PartnerUnavailable
from .models import Partner
from .outbox import cdr_data

logger = logging.getLogger(__name__)

R = CDR.Reconciliation
ID_FIELDS = ("country_code", "party_id", "id", "session_id", "credit_reference_id", "currency")
TIME_FIELDS = ("start_date_time", "end_date_time", "stop_date_time")  # stop_: 2.1.1
VOLUME_FIELDS = ("total_energy", "total_time", "total_parking_time")
# Optional subtotals: left out by the partner and 0 with us is no difference.
SUBTOTAL_FIELDS = (
    "total_fixed_cost",
    "total_energy_cost",
    "total_time_cost",
    "total_parking_cost",
    "total_reservation_cost",
)


# --- comparing two copies ----------------------------------------------------------------------
def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _same_number(ours: Any, theirs: Any) -> bool:
    a, b = _number(ours), _number(theirs)
    return a is not None and a == b


def _same_price(ours: Any, theirs: Any) -> bool:
    """Prices as OCPI 2.2.1 objects or as 2.1.1 numbers (excl. VAT)."""
    if not isinstance(ours, dict):
        return _same_number(ours, theirs)
    if not isinstance(theirs, dict):
        return False
    sides = [side for side in ("excl_vat", "incl_vat") if side in ours]
    return all(_same_number(ours[side], theirs.get(side)) for side in sides)


def _is_zero(price: Any) -> bool:
    values = price.values() if isinstance(price, dict) else [price]
    return all(_number(v) == 0 for v in values)


def _same_time(ours: Any, theirs: Any) -> bool:
    try:
        a, b = (v if isinstance(v, datetime) else parse_datetime(v) for v in (ours, theirs))
    except (TypeError, ValueError):
        return False
    return abs((a - b).total_seconds()) < 1  # a partner may keep whole seconds only


def cdr_differences(ours: dict, theirs: dict) -> list[str]:
    """The fields in which the partner's copy differs from ours (ours as the OCPI object of the
    partner's version): ids, totals, energy and times; [] when they agree."""
    differences = []
    for name in ID_FIELDS:
        if name in ours and str(ours[name]).lower() != str(theirs.get(name, "")).lower():
            differences.append(name)
    if bool(ours.get("credit")) != bool(theirs.get("credit")):
        differences.append("credit")
    for name in TIME_FIELDS:
        if name in ours and not _same_time(ours[name], theirs.get(name)):
            differences.append(name)
    if not _same_price(ours.get("total_cost"), theirs.get("total_cost")):
        differences.append("total_cost")
    for name in VOLUME_FIELDS:
        if name in ours and not _same_number(ours[name], theirs.get(name)):
            differences.append(name)
    for name in SUBTOTAL_FIELDS:
        if name not in ours and name not in theirs:
            continue
        if name not in theirs and _is_zero(ours[name]):
            continue
        if name not in ours or not _same_price(ours[name], theirs.get(name)):
            differences.append(name)
    return differences


def _describe(name: str, ours: dict, theirs: dict) -> str:
    def show(value: Any) -> str:
        return "(missing)" if value is None else jsonutil.dumps(value).decode()

    return f"{name}: ours {show(ours.get(name))}, theirs {show(theirs.get(name))}"


# --- fetching one -------------------------------------------------------------------------------
@dataclass
class ReconcileReport:
    """What one reconciliation run did."""

    cdrs_created: int = 0
    checked: int = 0
    results: dict[str, int] = field(default_factory=dict)

    def count(self, result: str) -> None:
        self.checked += 1
        self.results[result] = self.results.get(result, 0) + 1


def _partner_hosts(partner: Partner) -> set[str]:
    urls = [partner.versions_url, *(e.get("url", "") for e in partner.endpoints or [])]
    return {urlsplit(url).netloc.lower() for url in urls if url}


def _record(cdr: CDR, result: str, note: str) -> str:
    now = timezone.now()
    CDR.objects.filter(pk=cdr.pk).update(
        reconciliation=result, reconciled_at=now, reconciliation_note=note
    )
    cdr.reconciliation, cdr.reconciled_at, cdr.reconciliation_note = result, now, note
    return result


def cdr_reconcile(*, cdr: CDR, partner: Partner, client: OCPIClient | None = None) -> str:
    """Fetch the partner's copy of a delivered CDR from its Location URL and compare it with
    ours; store and return the result (MATCH, MISMATCH or UNAVAILABLE)."""
    url = cdr.partner_location_url
    if not url:
        return _record(cdr, R.UNAVAILABLE, "No Location URL: the partner's copy cannot be fetched.")
    if urlsplit(url).netloc.lower() not in _partner_hosts(partner):
        return _record(cdr, R.UNAVAILABLE, f"Not fetched: {url} is not on the partner's hosts.")
    client = client or OCPIClient(partner)
    try:
        reply = client.get(url)
    except (PartnerUnavailable, PartnerRejected) as exc:
        return _record(cdr, R.UNAVAILABLE, f"GET failed: {exc}"[:2000])
    theirs = reply.data
    if not isinstance(theirs, dict):
        return _record(cdr, R.UNAVAILABLE, "The partner's reply holds no CDR.")
    ours = jsonutil.loads(jsonutil.dumps(cdr_data(cdr, partner.version)))
    differences = cdr_differences(ours, theirs)
    if differences:
        note = "; ".join(_describe(name, ours, theirs) for name in differences)
        logger.warning("CDR %s differs at %s: %s", cdr.ocpi_id, partner, note)
        return _record(cdr, R.MISMATCH, note[:4000])
    return _record(cdr, R.MATCH, "")


# --- the run ------------------------------------------------------------------------------------
def reconcile_sample(*, partner: Partner, size: int):
    """The partner's delivered CDRs to check now: never checked ones first (oldest first),
    then those whose copy could not be fetched, longest ago first."""
    return (
        CDR.objects.filter(
            partner=partner,
            delivery=CDR.Delivery.DELIVERED,
            reconciliation__in=(R.UNCHECKED, R.UNAVAILABLE),
        )
        .exclude(partner_location_url="")
        .annotate(
            never=Case(
                When(reconciliation=R.UNCHECKED, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("never", F("reconciled_at").asc(nulls_first=True), "sent_at", "pk")[:size]
    )


def reconcile_partner(*, partner: Partner, sample: int, report: ReconcileReport) -> None:
    client = OCPIClient(partner)
    for cdr in reconcile_sample(partner=partner, size=sample):
        report.count(cdr_reconcile(cdr=cdr, partner=partner, client=client))


def reconcile_cdrs(*, sample: int | None = None) -> ReconcileReport:
    """One reconciliation run (see the module docstring)."""
    sample = settings.RECONCILE_SAMPLE if sample is None else sample
    report = ReconcileReport(cdrs_created=cdr_create_missing())
    for partner in Partner.objects.filter(status=Partner.Status.REGISTERED).order_by("pk"):
        reconcile_partner(partner=partner, sample=sample, report=report)
    logger.info(
        "CDR reconciliation: %s CDR(s) created, %s checked %s",
        report.cdrs_created, report.checked, report.results,
    )  # fmt: skip
    return report


@shared_task(name="ocpi.tasks.reconcile_cdrs_task", acks_late=True, ignore_result=True)
def reconcile_cdrs_task() -> dict:
    report = reconcile_cdrs()
    return {"cdrs_created": report.cdrs_created, "checked": report.checked, **report.results}
