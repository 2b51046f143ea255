"""Read access to the billing domain for the protocol layer. Every selector touching
partner-owned data takes `partner=` (STYLE.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db.models import Case, Count, DecimalField, F, Prefetch, Q, QuerySet, Sum, When
from django.db.models.functions import Abs, TruncMonth

from .choices import SessionStatus
from .models import ChargingPeriod, Session
from .models_cdrs import CDR

if TYPE_CHECKING:
    from ocpi.models import Partner


def session_list(*, partner: Partner) -> QuerySet[Session]:
    """The partner's sessions (those of its drivers' tokens), oldest first, with what their OCPI
    objects need joined or prefetched: a page costs a fixed number of queries."""
    return (
        Session.objects.filter(partner=partner)
        .select_related("location", "evse", "connector")
        .prefetch_related(
            Prefetch("periods", queryset=ChargingPeriod.objects.order_by("start_date_time", "pk"))
        )
        .order_by("created", "pk")
    )


# --- finance exports (billing/export.py) ------------------------------------------------------


def connector_in_use_by_other(*, connector_pk: int, partner: Partner) -> bool:
    """Whether a session of someone other than `partner` (another eMSP, or a local one) is
    live (PENDING or ACTIVE) on the connector."""
    live = Session.objects.filter(
        connector_id=connector_pk, status__in=(SessionStatus.PENDING, SessionStatus.ACTIVE)
    )
    return live.exclude(partner=partner).exists()


def utc_bound(value: date | datetime) -> datetime:
    """A range bound as an aware UTC datetime: a date is its midnight UTC, a naive datetime is
    taken as UTC, an aware one is converted."""
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def export_partner_get(*, name: str) -> Partner:
    """The partner called `name` (case-insensitive), for the finance exports' --partner option;
    raises the partner model's DoesNotExist."""
    partner_model = CDR._meta.get_field("partner").related_model
    # Compared in Python: SQLite's case-insensitive match folds ASCII only ("Énergie"), and a
    # platform has tens of partners, not thousands.
    wanted = name.strip().casefold()
    matches = [p for p in partner_model.objects.all() if p.name.strip().casefold() == wanted]
    if not matches:
        raise partner_model.DoesNotExist(f"No partner called {name!r}")
    if len(matches) > 1:
        raise partner_model.MultipleObjectsReturned(f"{len(matches)} partners called {name!r}")
    return matches[0]


def export_partner_choices() -> QuerySet[Partner]:
    """Every partner, by name, for the staff pages' partner filter."""
    return CDR._meta.get_field("partner").related_model.objects.order_by("name")


def cdr_export_queryset(
    *, date_from: date | datetime, date_to: date | datetime, partner: Partner | None = None
) -> QuerySet[CDR]:
    """CDRs whose start_date_time lies in the half-open UTC range [date_from, date_to) (a date
    means its midnight UTC), of one partner or of all, ordered by start time then id: the rows
    of the finance CSV (billing/export.py). Credit CDRs are included; they carry their
    original's start time."""
    queryset = CDR.objects.filter(
        start_date_time__gte=utc_bound(date_from), start_date_time__lt=utc_bound(date_to)
    )
    if partner is not None:
        queryset = queryset.filter(partner=partner)
    return queryset.order_by("start_date_time", "pk")


def _signed(field: str) -> Case:
    # A credit CDR reverses money and energy: counted negative whatever sign it was stored
    # with (PROTOCOL.md §10.15: the totals are usually, not always, negated).
    return Case(
        When(credit=True, then=-Abs(F(field))),
        default=F(field),
        output_field=DecimalField(max_digits=20, decimal_places=6),
    )


def settlement_rows(
    *, date_from: date | datetime, date_to: date | datetime, partner: Partner | None = None
) -> list[dict]:
    """The settlement summary: one row per month (UTC, by CDR start_date_time), partner and
    currency over the CDRs of cdr_export_queryset(date_from, date_to, partner), so a month's
    summary sums exactly the rows of that month's CSV export.

    Each row: month (date, first of the month), partner_id, partner (name, "" when none),
    currency, sessions (distinct sessions with a non-credit CDR), cdrs (non-credit CDRs),
    credit_cdrs, kwh (net: credit CDRs subtract), charged_excl_vat / charged_incl_vat
    (non-credit CDRs), credited_excl_vat / credited_incl_vat (credit CDRs, negative),
    net_excl_vat / net_incl_vat (charged + credited) and vat (net incl − net excl). Amounts are
    exact Decimals; an empty sum is 0.
    """
    charged, credited = Q(credit=False), Q(credit=True)
    charged_session = charged & ~Q(session_ocpi_id="")
    zero = Decimal(0)
    queryset = (
        cdr_export_queryset(date_from=date_from, date_to=date_to, partner=partner)
        .annotate(month=TruncMonth("start_date_time", tzinfo=UTC))
        .values("month", "partner_id", "partner__name", "currency")
        .annotate(
            sessions=Count("session_ocpi_id", distinct=True, filter=charged_session),
            cdrs=Count("pk", filter=charged),
            credit_cdrs=Count("pk", filter=credited),
            kwh=Sum(_signed("total_energy")),
            charged_excl_vat=Sum("total_cost_excl_vat", filter=charged),
            charged_incl_vat=Sum("total_cost_incl_vat", filter=charged),
            credited_excl_vat=Sum(_signed("total_cost_excl_vat"), filter=credited),
            credited_incl_vat=Sum(_signed("total_cost_incl_vat"), filter=credited),
        )
        .order_by("month", "partner__name", "partner_id", "currency")
    )
    rows = []
    for group in queryset:
        month = group["month"]
        row = {
            "month": month.date() if isinstance(month, datetime) else month,
            "partner_id": group["partner_id"],
            "partner": group["partner__name"] or "",
            "currency": group["currency"],
            "sessions": group["sessions"],
            "cdrs": group["cdrs"],
            "credit_cdrs": group["credit_cdrs"],
        }
        for key in ("kwh", "charged_excl_vat", "charged_incl_vat", "credited_excl_vat",
                    "credited_incl_vat"):  # fmt: skip
            row[key] = group[key] if group[key] is not None else zero
        row["net_excl_vat"] = row["charged_excl_vat"] + row["credited_excl_vat"]
        row["net_incl_vat"] = row["charged_incl_vat"] + row["credited_incl_vat"]
        row["vat"] = row["net_incl_vat"] - row["net_excl_vat"]
        rows.append(row)
    return rows
