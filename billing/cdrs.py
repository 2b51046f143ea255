"""Charge Detail Records: a finished session's billing record, its credit and its correction
(PROTOCOL.md §4.3, §5.4, §10.15, §10.16).

Creation: `cdr_create_for_session(session=)` makes the one CDR of a session that ended COMPLETED,
or INVALID with energy delivered (kwh > 0). Every field comes from the session, from what was
frozen when it started (SessionSnapshot: the CdrLocation and the connector's tariffs as OCPI
Tariff objects) and from its charging periods, priced by billing.tariff_calc exactly as
Session.total_cost is (each tariff's periods priced on their own, start = the session start,
money rounded by the maths, §7.1). The CDR id is the session id (≤36 characters), so a session
has one CDR and a second call returns it unchanged. `cdr_created` announces it inside the
creating transaction (the outbox POSTs it to the partner).

When: right after the transaction that ended the session commits (receivers at the bottom: the
session's final announcement, and the charger's transaction_stopped for sessions nobody is told
about, such as an unknown token's INVALID one). After the commit, so the CDR's outbox row comes
after the session's final update (which normally reaches the partner first; rows of different
objects are not strictly ordered). The daily reconciliation (ocpi.reconciliation) creates any CDR
that is still missing (`cdr_create_missing`).

What is stored: the OCPI content frozen in the CDR row, JSON parts with numbers as decimal
strings (JSON keeps no Decimal) and DateTimes as OCPI DateTime strings; the OCPI layer renders
the wire form. A CDR never changes once created: saving a changed OCPI field raises
CDRImmutable; only the delivery and reconciliation bookkeeping may change.

Corrections (staff, with a reason): `cdr_credit` makes the credit CDR (id + "-C", credit=True,
credit_reference_id = the original id, every *_cost total negated, the volumes as measured);
`cdr_correct` makes the credit and a corrected CDR (the session's CDR id + "-R<n>", repriced by the
tariff maths after an energy correction, or with a total set by staff).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.signals import pre_save
from django.dispatch import receiver

from stations import gateway

from .choices import SessionStatus
from .exceptions import BillingError
from .models import Session, _now
from .models_cdrs import CDR
from .models_sessions import SessionSnapshot
from .sessions import _cdr_location, _tariff_snapshot, _tariffs_of, session_periods
from .signals import cdr_created, cdr_delivery_requested, session_changed
from .tariff_calc import price_session
from .tariff_model import parse_datetime, tariff_from_ocpi

if TYPE_CHECKING:
    from ocpi.models import Partner

logger = logging.getLogger(__name__)

ZERO = Decimal(0)
KWH = Decimal("0.0001")
HOURS = Decimal("0.000001")  # the model's precision for total_time
MAX_ID = 36  # a normal CDR's id (PROTOCOL.md §5.4)
MAX_CREDIT_ID = 39  # room for the credit suffix
CREDIT_SUFFIX = "-C"
# Session-only dimensions a CDR must not carry (PROTOCOL.md §4.3).
SESSION_ONLY_DIMENSIONS = frozenset(
    {"CURRENT", "ENERGY_EXPORT", "ENERGY_IMPORT", "POWER", "STATE_OF_CHARGE"}
)
# (model field prefix, PriceBreakdown attribute, its name in PriceBreakdown.priced)
SUBTOTALS = (
    ("total_fixed_cost", "FIXED"),
    ("total_energy_cost", "ENERGY"),
    ("total_time_cost", "TIME"),
    ("total_parking_cost", "PARKING"),
    ("total_reservation_cost", "RESERVATION"),
)
COST_FIELDS = tuple(
    f"{prefix}_{side}"
    for prefix in ("total_cost", *(name for name, _ in SUBTOTALS))
    for side in ("excl_vat", "incl_vat")
)
# What may change on a CDR after its creation: delivery and reconciliation bookkeeping.
BOOKKEEPING_FIELDS = frozenset(
    {
        "delivery", "sent_at", "partner_location_url", "reconciliation", "reconciled_at",
        "reconciliation_note",
    }
)  # fmt: skip
DATETIME_KEYS = ("start_date_time", "end_date_time", "last_updated")


class CDRError(BillingError):
    """A CDR request the billing domain refuses."""


class CDRImmutable(CDRError):
    """An attempt to change the OCPI content of an existing CDR (PROTOCOL.md §10.15)."""


class CDRNotCorrectable(CDRError):
    """The CDR cannot be credited or corrected (a credit CDR, credited already, bad input)."""


class CDRPricingError(CDRError):
    """The frozen tariffs or periods cannot be priced."""


# --- small helpers --------------------------------------------------------------------------------
def ocpi_datetime_text(value: datetime | str) -> str:
    """An OCPI DateTime string (UTC, "Z", milliseconds at most) of a datetime or ISO string."""
    if isinstance(value, str):
        value = parse_datetime(value)
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond // 1000:
        text += f".{value.microsecond // 1000:03d}"
    return text + "Z"


def _hours(start: datetime, end: datetime) -> Decimal:
    delta = end - start
    micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    return (Decimal(max(micros, 0)) / Decimal(3_600_000_000)).quantize(HOURS, ROUND_HALF_UP)


def _minus(value: Decimal | None) -> Decimal | None:
    # 0 - x rather than -x: a credited zero stays 0, not "-0".
    return None if value is None else ZERO - value


def bounded_id(base: str, suffix: str, limit: int) -> str:
    """`base + suffix`, shortened (keeping a digest of `base`) when longer than `limit`."""
    if len(base) + len(suffix) <= limit:
        return base + suffix
    digest = hashlib.sha256(base.encode()).hexdigest()[:8].upper()
    return f"{base[: limit - len(suffix) - len(digest) - 1]}-{digest}{suffix}"


def _volumes(period: dict) -> dict[str, Decimal]:
    return {d["type"]: Decimal(str(d["volume"])) for d in period.get("dimensions", [])}


def _volume_sum(periods: Iterable[dict], kind: str) -> Decimal | None:
    found = [_volumes(p)[kind] for p in periods if kind in _volumes(p)]
    return sum(found, ZERO) if found else None


def _same_ci(queryset: QuerySet[CDR], *, country_code: str, party_id: str, ocpi_id: str):
    return queryset.filter(
        country_code__lower=country_code.lower(),
        party_id__lower=party_id.lower(),
        ocpi_id__lower=ocpi_id.lower(),
    )


# --- pricing (the same maths as Session.total_cost) ----------------------------------------------
def cdr_costs(
    *, tariffs: list[dict], charging_periods: list[dict], start: datetime, time_zone: str
) -> dict[str, Decimal | None]:
    """The cost fields of a CDR (model field names) for its frozen tariffs (OCPI Tariff dicts)
    and charging periods, by billing.tariff_calc.

    As Session.total_cost: each tariff's periods are priced on their own (no step_size carried
    between tariffs, §7.1) with the session start anchoring durations, and the results are
    added. Periods without a tariff cost nothing. A subtotal is None unless a tariff prices that
    dimension. Raises CDRPricingError when a tariff or period cannot be read."""
    by_id = {str(t.get("id", "")).lower(): t for t in tariffs}
    groups: dict[str, list] = {}
    try:
        for period in charging_periods:
            key = str(period.get("tariff_id") or "").lower()
            when = parse_datetime(period["start_date_time"], "charging_periods.start_date_time")
            groups.setdefault(key, []).append((when, _volumes(period)))
        total = [ZERO, ZERO]
        subtotals: dict[str, list[Decimal]] = {}
        for key, group in groups.items():
            data = by_id.get(key)
            if data is None or not data.get("elements"):
                continue  # no tariff (or one without price components): free
            breakdown = price_session(
                tariff_from_ocpi(data), group, start=start, time_zone=time_zone
            )
            total[0] += breakdown.total_cost.excl_vat
            total[1] += breakdown.total_cost.incl_vat
            for prefix, name in SUBTOTALS:
                if name in breakdown.priced:
                    price = getattr(breakdown, prefix)
                    sums = subtotals.setdefault(prefix, [ZERO, ZERO])
                    sums[0] += price.excl_vat
                    sums[1] += price.incl_vat
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise CDRPricingError(f"Cannot price the CDR: {exc}") from exc
    costs: dict[str, Decimal | None] = {
        "total_cost_excl_vat": total[0],
        "total_cost_incl_vat": total[1],
    }
    for prefix, _ in SUBTOTALS:
        excl, incl = subtotals.get(prefix, (None, None))
        costs[f"{prefix}_excl_vat"] = excl
        costs[f"{prefix}_incl_vat"] = incl
    return costs


# --- building a session's CDR --------------------------------------------------------------------
def cdr_due(session: Session) -> bool:
    """Whether the session gets a CDR: ended COMPLETED, or INVALID with energy delivered."""
    if session.end_date_time is None:
        return False
    if session.status == SessionStatus.COMPLETED:
        return True
    return session.status == SessionStatus.INVALID and session.kwh > 0


DUE_SESSIONS = Q(end_date_time__isnull=False) & (
    Q(status=SessionStatus.COMPLETED) | Q(status=SessionStatus.INVALID, kwh__gt=0)
)


def _snapshot(session: Session) -> tuple[dict, list[dict]]:
    """The CdrLocation and tariffs frozen at the start; for a session without a snapshot
    (created before snapshots existed) the current ones, with a warning."""
    snapshot = SessionSnapshot.objects.filter(session=session).first()
    if snapshot is not None:
        return snapshot.cdr_location, list(snapshot.tariffs or [])
    logger.warning("Session %s has no snapshot: its CDR shows today's place", session.ocpi_id)
    location = _cdr_location(session.location, session.evse, session.connector)
    tariffs = _tariffs_of(session.connector, session.location, session.start_date_time)
    return location, [_tariff_snapshot(t) for t in tariffs]


def _cdr_location_frozen(data: dict) -> dict:
    location = dict(data)
    for key, limit in (("address", 45), ("city", 45), ("postal_code", 10), ("state", 20)):
        if isinstance(location.get(key), str):
            location[key] = location[key][:limit]
    return {k: v for k, v in location.items() if v not in ("", None)}


def _tariff_frozen(data: dict) -> dict:
    """A snapshot Tariff with its DateTimes as OCPI DateTime strings."""
    tariff = dict(data)
    for key in DATETIME_KEYS:
        if tariff.get(key):
            tariff[key] = ocpi_datetime_text(tariff[key])
    return tariff


def _periods_frozen(session: Session) -> list[dict]:
    periods = []
    for period in session_periods(session):
        dimensions = [
            {"type": d["type"], "volume": str(d["volume"])}
            for d in period.dimensions
            if d.get("type") not in SESSION_ONLY_DIMENSIONS
        ]
        item: dict[str, Any] = {
            "start_date_time": ocpi_datetime_text(period.start_date_time),
            "dimensions": dimensions,
        }
        if period.tariff_id:
            item["tariff_id"] = period.tariff_id
        periods.append(item)
    if not periods:  # a CDR has at least one period (§5.4)
        hours = _hours(session.start_date_time, session.end_date_time)
        periods.append(
            {
                "start_date_time": ocpi_datetime_text(session.start_date_time),
                "dimensions": [
                    {"type": "ENERGY", "volume": str(session.kwh)},
                    {"type": "TIME", "volume": str(hours)},
                ],
            }
        )
    return periods


def _remark(session: Session) -> str:
    if session.status == SessionStatus.INVALID:
        return "Session invalid: the token was not authorized; energy was delivered."
    return f"Stop reason: {session.stop_reason}" if session.stop_reason else ""


def _content(session: Session) -> dict[str, Any]:
    """The CDR fields of a final session."""
    cdr_location, snapshot_tariffs = _snapshot(session)
    periods = _periods_frozen(session)
    used = {p["tariff_id"].lower() for p in periods if p.get("tariff_id")}
    tariffs = [_tariff_frozen(t) for t in snapshot_tariffs if str(t.get("id", "")).lower() in used]
    missing = used - {t["id"].lower() for t in tariffs}
    if missing:
        raise CDRPricingError(f"Session {session.ocpi_id}: tariffs {sorted(missing)} not frozen")
    # A tariff without price components prices nothing and is no valid OCPI Tariff: left out.
    tariffs = [t for t in tariffs if t.get("elements")]
    time_zone = session.location.time_zone
    costs = cdr_costs(
        tariffs=tariffs,
        charging_periods=periods,
        start=session.start_date_time,
        time_zone=time_zone,
    )
    now = _now()
    return {
        "country_code": session.country_code,
        "party_id": session.party_id,
        "ocpi_id": session.ocpi_id,
        "partner_id": session.partner_id,
        "session": session,
        "session_ocpi_id": session.ocpi_id,
        "start_date_time": session.start_date_time,
        "end_date_time": session.end_date_time,
        "time_zone": time_zone,
        "cdr_token": dict(session.cdr_token),
        "auth_method": session.auth_method,
        "authorization_reference": session.authorization_reference,
        "cdr_location": _cdr_location_frozen(cdr_location),
        "meter_id": session.meter_id,
        "currency": session.currency,
        "tariffs": tariffs,
        "charging_periods": periods,
        "signed_data": None,  # no signed meter values from the chargers yet
        "total_energy": _volume_sum(periods, "ENERGY") or ZERO,
        "total_time": _hours(session.start_date_time, session.end_date_time),
        "total_parking_time": _volume_sum(periods, "PARKING_TIME"),
        "remark": _remark(session)[:255],
        "last_updated": now,
        "created": now,
        **costs,
    }


def _original_cdr(session: Session) -> CDR | None:
    return (
        CDR.objects.filter(session=session, credit=False, corrected_by__isnull=True)
        .order_by("pk")
        .first()
    )


def cdr_create_for_session(*, session: Session) -> CDR | None:
    """The CDR of a final session: created once (announced with `cdr_created`), afterwards the
    same CDR. None when the session gets no CDR (still running; INVALID without energy).
    Raises CDRPricingError when the frozen tariffs cannot be priced (nothing is created)."""
    with transaction.atomic():
        session = (
            Session.objects.select_for_update(of=("self",))
            .select_related("location", "evse", "connector")
            .get(pk=session.pk)
        )
        existing = _original_cdr(session)
        if existing is not None:
            return existing
        if not cdr_due(session):
            return None
        cdr = CDR(**_content(session))
        try:
            with transaction.atomic():
                cdr.save()
        except IntegrityError:
            # The id is taken (an earlier CDR of this session under another row): return that.
            found = _same_ci(
                CDR.objects.all(),
                country_code=cdr.country_code,
                party_id=cdr.party_id,
                ocpi_id=cdr.ocpi_id,
            ).first()
            if found is None:
                raise
            return found
        logger.info(
            "CDR %s for session %s: %s kWh, %s %s",
            cdr.ocpi_id, session.ocpi_id, cdr.total_energy, cdr.total_cost_incl_vat, cdr.currency,
        )  # fmt: skip
        cdr_created.send(sender=CDR, cdr=cdr)
    return cdr


# --- credits and corrections ---------------------------------------------------------------------
def _content_fields() -> list:
    return [f for f in CDR._meta.concrete_fields if f.name not in BOOKKEEPING_FIELDS | {"id"}]


def _copy(cdr: CDR) -> CDR:
    """A new, unsaved CDR with the same OCPI content (delivery and reconciliation reset)."""
    copy = CDR(**{f.attname: getattr(cdr, f.attname) for f in _content_fields()})
    copy.last_updated = copy.created = _now()
    return copy


def _check_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise CDRNotCorrectable("A reason is required to credit or correct a CDR.")
    return reason[:255]


def cdr_credit(*, cdr: CDR, reason: str, user: Any = None) -> CDR:
    """Cancel `cdr` with a credit CDR (PROTOCOL.md §4.3): id + "-C", credit=True,
    credit_reference_id = its id, the same content with every *_cost total negated (volumes
    stay as measured). Raises CDRNotCorrectable for a credit CDR, a CDR credited already, or
    no reason."""
    reason = _check_reason(reason)
    with transaction.atomic():
        original = CDR.objects.select_for_update().get(pk=cdr.pk)
        if original.credit:
            raise CDRNotCorrectable(f"{original.ocpi_id} is a credit CDR; it cannot be credited.")
        if CDR.objects.filter(corrected_by=original, credit=True).exists():
            raise CDRNotCorrectable(f"{original.ocpi_id} has been credited already.")
        credit = _copy(original)
        credit.ocpi_id = bounded_id(original.ocpi_id, CREDIT_SUFFIX, MAX_CREDIT_ID)
        credit.credit = True
        credit.credit_reference_id = original.ocpi_id
        for name in COST_FIELDS:
            setattr(credit, name, _minus(getattr(original, name)))
        credit.remark = f"Credit of {original.ocpi_id}: {reason}"[:255]
        credit.correction_reason = reason
        credit.corrected_by = original
        credit.save()
        logger.info(
            "CDR %s credited (%s) by %s: %s", original.ocpi_id, credit.ocpi_id, user, reason
        )
        cdr_created.send(sender=CDR, cdr=credit)
    return credit


def _root(cdr: CDR) -> CDR:
    """The session's own CDR that `cdr` (maybe a corrected CDR) descends from."""
    seen = set()
    while cdr.corrected_by_id is not None and cdr.pk not in seen:
        seen.add(cdr.pk)
        cdr = cdr.corrected_by
    return cdr


def _replacement_id(cdr: CDR) -> str:
    root = _root(cdr)
    n = 1
    while True:
        candidate = bounded_id(root.ocpi_id, f"-R{n}", MAX_ID)
        taken = _same_ci(
            CDR.objects.all(),
            country_code=cdr.country_code,
            party_id=cdr.party_id,
            ocpi_id=candidate,
        )
        if not taken.exists():
            return candidate
        n += 1


def _scale_energy(periods: list[dict], total: Decimal) -> list[dict]:
    """The periods with their ENERGY volumes scaled to add up to `total` exactly."""
    periods = [{**p, "dimensions": [dict(d) for d in p["dimensions"]]} for p in periods]
    energy = [d for p in periods for d in p["dimensions"] if d["type"] == "ENERGY"]
    if not energy:
        periods[0]["dimensions"].insert(0, {"type": "ENERGY", "volume": "0"})
        energy = [periods[0]["dimensions"][0]]
    old = sum((Decimal(str(d["volume"])) for d in energy), ZERO)
    if old > 0:
        values = [(Decimal(str(d["volume"])) * total / old).quantize(KWH) for d in energy]
    else:
        values = [total] + [ZERO] * (len(energy) - 1)
    largest = max(range(len(values)), key=lambda i: values[i])
    values[largest] += total - sum(values, ZERO)  # the rounding rest, where it cannot go < 0
    for dimension, value in zip(energy, values, strict=True):
        dimension["volume"] = str(value)
    return periods


def cdr_correct(
    *,
    cdr: CDR,
    reason: str,
    user: Any = None,
    total_energy: Decimal | None = None,
    total_cost_excl_vat: Decimal | None = None,
    total_cost_incl_vat: Decimal | None = None,
) -> tuple[CDR, CDR]:
    """Correct `cdr`: its credit CDR (`cdr_credit`) and a corrected CDR with a new id (the
    session's CDR id + "-R<n>", <n> counting its corrections), the same content except:
    - `total_energy`: the periods' ENERGY scaled to it and everything repriced by the tariff
      maths with the frozen tariffs;
    - `total_cost_excl_vat` (and `total_cost_incl_vat`, by default keeping the CDR's VAT
      ratio): total_cost set by staff; the subtotals, which no longer add up to it, are left
      out (§7.5).
    Returns (credit, corrected). Raises CDRNotCorrectable (nothing to change, negative values,
    a credit CDR, credited already) or CDRPricingError."""
    if total_energy is None and total_cost_excl_vat is None:
        raise CDRNotCorrectable("A correction needs a new total energy or a new total cost.")
    for value in (total_energy, total_cost_excl_vat, total_cost_incl_vat):
        if value is not None and (not Decimal(value).is_finite() or value < 0):
            raise CDRNotCorrectable("Corrected totals must be numbers of at least 0.")
    with transaction.atomic():
        credit = cdr_credit(cdr=cdr, reason=reason, user=user)
        original = credit.corrected_by
        corrected = _copy(original)
        corrected.ocpi_id = _replacement_id(original)
        corrected.credit = False
        corrected.credit_reference_id = ""
        corrected.corrected_by = original
        corrected.correction_reason = credit.correction_reason
        corrected.remark = f"Corrects {original.ocpi_id}: {credit.correction_reason}"[:255]
        if total_energy is not None:
            corrected.charging_periods = _scale_energy(original.charging_periods, total_energy)
            corrected.total_energy = Decimal(total_energy)
            costs = cdr_costs(
                tariffs=original.tariffs,
                charging_periods=corrected.charging_periods,
                start=original.start_date_time,
                time_zone=original.time_zone or "UTC",
            )
            for name, value in costs.items():
                setattr(corrected, name, value)
        if total_cost_excl_vat is not None:
            excl = Decimal(total_cost_excl_vat)
            incl = total_cost_incl_vat
            if incl is None:
                was_excl, was_incl = corrected.total_cost_excl_vat, corrected.total_cost_incl_vat
                ratio = was_incl / was_excl if was_excl and was_incl else Decimal(1)
                incl = (excl * ratio).quantize(Decimal("0.01"), ROUND_HALF_UP)
            for name in COST_FIELDS:
                setattr(corrected, name, None)
            corrected.total_cost_excl_vat = excl
            corrected.total_cost_incl_vat = Decimal(incl)
        corrected.save()
        logger.info("CDR %s corrected by %s (%s)", original.ocpi_id, corrected.ocpi_id, user)
        cdr_created.send(sender=CDR, cdr=corrected)
    return credit, corrected


@receiver(pre_save, sender=CDR, dispatch_uid="billing.cdrs.immutable")
def _refuse_content_changes(sender, instance: CDR, raw: bool = False, update_fields=None, **kw):
    """A CDR never changes (PROTOCOL.md §10.15): only its bookkeeping may be saved again."""
    if raw or instance._state.adding or instance.pk is None:
        return
    if update_fields is not None and set(update_fields) <= BOOKKEEPING_FIELDS:
        return
    fields = _content_fields()
    stored = CDR.objects.filter(pk=instance.pk).values(*(f.attname for f in fields)).first()
    if stored is None:
        return
    changed = [f.name for f in fields if stored[f.attname] != getattr(instance, f.attname)]
    if changed:
        raise CDRImmutable(
            f"CDR {instance.ocpi_id} cannot change ({', '.join(changed)}); credit and correct it."
        )


# --- selectors ------------------------------------------------------------------------------------
def cdr_list(*, partner: Partner) -> QuerySet[CDR]:
    """The partner's CDRs (those of its drivers' sessions, credits and corrections included),
    oldest first. Everything a CDR's OCPI object holds is on its row: one query per page."""
    return CDR.objects.filter(partner=partner).order_by("created", "pk")


def sessions_without_cdr() -> QuerySet[Session]:
    """Sessions that should have a CDR and have none (oldest first)."""
    own = CDR.objects.filter(session=OuterRef("pk"), credit=False, corrected_by__isnull=True)
    return Session.objects.filter(DUE_SESSIONS).filter(~Exists(own)).order_by("end_date_time", "pk")


def cdr_create_missing(*, limit: int = 500) -> int:
    """Create the CDRs still missing (a crash between a session's end and its CDR, a tariff
    fixed by staff after a pricing error); returns how many were created."""
    created = 0
    for pk in sessions_without_cdr().values_list("pk", flat=True)[:limit]:
        try:
            if cdr_create_for_session(session=Session(pk=pk)) is not None:
                created += 1
        except CDRPricingError:
            logger.exception("Session pk=%s: no CDR, its tariffs cannot be priced", pk)
    return created


@dataclass
class PartnerCDRStatus:
    """Where one partner's CDRs stand (the reconciliation overview)."""

    partner_id: int
    partner: str
    sessions_without_cdr: int = 0  # ended sessions that have no CDR at all
    sessions_without_delivered_cdr: int = 0  # ...or none of whose CDRs reached the partner
    pending: int = 0
    failed: int = 0
    not_sent: int = 0
    delivered: int = 0
    unconfirmed: int = 0  # not delivered, or delivered without a Location to check it at
    match: int = 0
    mismatch: int = 0
    unavailable: int = 0
    unchecked: int = 0

    @property
    def needs_attention(self) -> bool:
        return bool(self.sessions_without_cdr or self.failed or self.mismatch or self.unavailable)


def cdr_reconciliation_status() -> list[PartnerCDRStatus]:
    """Per partner (by name): sessions that ended without a (delivered) CDR, and the CDRs by
    delivery and reconciliation state. Two queries, whatever the number of partners."""
    D, R = CDR.Delivery, CDR.Reconciliation
    rows: dict[int, PartnerCDRStatus] = {}
    own = CDR.objects.filter(session=OuterRef("pk"), credit=False, corrected_by__isnull=True)
    delivered = CDR.objects.filter(session=OuterRef("pk"), credit=False, delivery=D.DELIVERED)
    sessions = (
        Session.objects.filter(DUE_SESSIONS, partner__isnull=False)
        .annotate(has_cdr=Exists(own), has_delivered=Exists(delivered))
        .values("partner_id", "partner__name")
        .annotate(
            without=Count("pk", filter=Q(has_cdr=False)),
            undelivered=Count("pk", filter=Q(has_delivered=False)),
        )
        .order_by()
    )
    for row in sessions:
        status = rows.setdefault(
            row["partner_id"], PartnerCDRStatus(row["partner_id"], row["partner__name"])
        )
        status.sessions_without_cdr = row["without"]
        status.sessions_without_delivered_cdr = row["undelivered"]
    no_url = Q(delivery=D.DELIVERED, partner_location_url="")
    counts = {
        "pending": Count("pk", filter=Q(delivery=D.PENDING)),
        "failed": Count("pk", filter=Q(delivery=D.FAILED)),
        "not_sent": Count("pk", filter=Q(delivery=D.NOT_SENT)),
        "delivered": Count("pk", filter=Q(delivery=D.DELIVERED)),
        "unconfirmed": Count("pk", filter=Q(delivery__in=(D.PENDING, D.FAILED)) | no_url),
        "match": Count("pk", filter=Q(reconciliation=R.MATCH)),
        "mismatch": Count("pk", filter=Q(reconciliation=R.MISMATCH)),
        "unavailable": Count("pk", filter=Q(reconciliation=R.UNAVAILABLE)),
        "unchecked": Count("pk", filter=Q(delivery=D.DELIVERED, reconciliation=R.UNCHECKED)),
    }
    cdrs = (
        CDR.objects.filter(partner__isnull=False)
        .values("partner_id", "partner__name")
        .annotate(**counts)
        .order_by()
    )
    for row in cdrs:
        status = rows.setdefault(
            row["partner_id"], PartnerCDRStatus(row["partner_id"], row["partner__name"])
        )
        for name in counts:
            setattr(status, name, row[name])
    return sorted(rows.values(), key=lambda s: (s.partner.lower(), s.partner_id))


def cdr_request_delivery(*, cdr: CDR) -> list[str]:
    """Staff: send a FAILED or NOT_SENT CDR (again). Returns what the OCPI layer did; raises
    CDRNotCorrectable for a CDR that was delivered (it is never sent twice)."""
    cdr.refresh_from_db(fields=["delivery"])
    if cdr.delivery == CDR.Delivery.DELIVERED:
        raise CDRNotCorrectable(f"{cdr.ocpi_id} was delivered; it is never sent twice.")
    with transaction.atomic():
        answers = cdr_delivery_requested.send(sender=CDR, cdr=cdr)
    return [str(answer) for _, answer in answers if answer]


# --- when: right after the session's final update commits -----------------------------------------
def _create_after_commit(session_pk: int) -> None:
    try:
        cdr_create_for_session(session=Session(pk=session_pk))
    except Exception:
        # The daily reconciliation retries (cdr_create_missing); the session's end stands.
        logger.exception("Session pk=%s: the CDR could not be created", session_pk)


def schedule_cdr(session_pk: int) -> None:
    """Create the session's CDR once the current transaction commits (once per session)."""
    callback = partial(_create_after_commit, session_pk)
    for entry in connection.run_on_commit:
        func = entry[1]
        if isinstance(func, partial) and func.func is _create_after_commit:
            if func.args == callback.args:
                return
    transaction.on_commit(callback)


@receiver(session_changed, dispatch_uid="billing.cdrs.session_changed")
def _on_session_final(sender, session: Session, final: bool = False, **kwargs: Any) -> None:
    if final and cdr_due(session):
        schedule_cdr(session.pk)


@receiver(gateway.transaction_stopped, dispatch_uid="billing.cdrs.transaction_stopped")
def _on_transaction_stopped(sender, transaction_ref: str = "", **kwargs: Any) -> None:
    # Connected after billing.sessions' receiver (imported above), so the session has ended.
    # Covers sessions without a partner, which are not announced.
    if not transaction_ref:
        return
    session = (
        Session.objects.filter(transaction_ref=transaction_ref, end_date_time__isnull=False)
        .order_by("-pk")
        .first()
    )
    if session is not None and cdr_due(session):
        schedule_cdr(session.pk)
