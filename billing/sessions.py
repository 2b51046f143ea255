"""Charging sessions: what the chargers report (stations.gateway signals) becomes OCPI Sessions
(PROTOCOL.md §4.2, §5.3), and partners' requests about their sessions.

From the chargers (receivers connected in billing.apps):
- transaction_started → a Session, status ACTIVE, with the cdr_token, auth_method and
  authorization_reference of the start the platform authorized: the PendingStart registered by
  `pending_start_register` (a remote START_SESSION, matched by its request_ref; a swipe, matched
  by token uid at the same EVSE within PENDING_START_WINDOW), else the cached Token with that uid
  (the charger decided from its own whitelist: WHITELIST). A transaction nobody can attribute is
  recorded as an INVALID session without partner (nobody is billed or told). A start on a
  reservation turns the reservation's RESERVATION session ACTIVE if there is one.
- meter_values → `kwh` and the ChargingPeriods. A new period starts (§7.2) when the EV switches
  between charging and not charging (TIME ↔ PARKING_TIME), when the session's tariff changes
  (charging preferences picked a profile tariff), and when the restrictions that hold change
  for any element of the session's tariff (local time of day, date, weekday, kWh so far,
  duration, power, current), judged at each reading: the cut is at the first reading after the
  change. Volumes (Decimal strings, 4 decimals): ENERGY (kWh), TIME or PARKING_TIME (hours),
  and MAX_POWER / MIN_POWER (kW) of the readings in charging periods.
- transaction_stopped → end_date_time, final kWh, status COMPLETED (INVALID stays INVALID).

At the start the place and the connector's tariffs are also frozen in a SessionSnapshot, for the
session's CDR (§10.16).

A period is published once it is closed: while a session runs, its OCPI object (GET and pushes)
carries the closed periods, the open one follows when it closes; `kwh` is always live. That is
what lets PATCHes append periods (§4.2) without ever sending one twice.

Announcements (billing.signals.session_changed, inside the saving transaction): always at start
(`created`) and end (`final`, all periods); in between at most every SESSION_PATCH_INTERVAL
seconds per session (Session.last_announced_at), and only when something changed (kwh, new
closed periods). `changed_fields` are OCPI field names; `new_periods` the closed periods not
announced yet.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.dispatch import receiver
from django.utils import timezone

from stations import gateway
from stations.models import EVSE, Connector, Location, PriceComponent, Tariff, TariffElement

from .choices import AuthMethod, CdrDimensionType, ProfileType, SessionStatus, TokenType
from .exceptions import (
    ChargingPreferencesNotSupported,
    NotYourSession,
    SessionNotActive,
    UnknownSession,
)
from .models import ChargingPeriod, Reservation, Session, Token
from .models_sessions import PendingStart, SessionMeter, SessionSnapshot
from .signals import session_changed
from .tariff_calc import price_session
from .tariff_model import tariff_from_model

if TYPE_CHECKING:
    from ocpi.models import Partner

logger = logging.getLogger(__name__)

#: How long a swipe's authorization waits for the charger to report the transaction.
PENDING_START_WINDOW = timedelta(minutes=15)
FINAL_STATUSES = (SessionStatus.COMPLETED, SessionStatus.INVALID)
CHARGING_PREFERENCES_CAPABLE = "CHARGING_PREFERENCES_CAPABLE"
KWH = Decimal("0.0001")
HOURS = Decimal("0.0001")
KW = Decimal("0.001")
ZERO = Decimal(0)
DAYS_OF_WEEK = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
PHASES = {"AC_1_PHASE": 1, "AC_2_PHASE": 2, "AC_2_PHASE_SPLIT": 2, "AC_3_PHASE": 3, "DC": 1}
# Smart charging for a CHEAP/GREEN preference: at least this power (6 A on one phase), with
# this margin over the average power the energy need requires by the departure time.
MIN_SMART_POWER_W = Decimal(1380)
SMART_MARGIN = Decimal("1.25")


class ChargingPreferencesResponse(models.TextChoices):
    ACCEPTED = "ACCEPTED"
    DEPARTURE_REQUIRED = "DEPARTURE_REQUIRED"
    ENERGY_NEED_REQUIRED = "ENERGY_NEED_REQUIRED"
    NOT_POSSIBLE = "NOT_POSSIBLE"
    PROFILE_TYPE_NOT_SUPPORTED = "PROFILE_TYPE_NOT_SUPPORTED"


def _now() -> datetime:
    now = timezone.now()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def new_session_id(at: datetime) -> str:
    """A readable, unique session id: start date and 40 random bits (20250301-9F3A51C2B7)."""
    return f"{at:%Y%m%d}-{secrets.token_hex(5).upper()}"


def _pk(value) -> int | None:
    if value is None or isinstance(value, int):
        return value
    return value.pk


# --- starts the platform expects -----------------------------------------------------------------
def pending_start_register(
    *,
    request_ref: str,
    partner_id: int | None,
    cdr_token: dict,
    auth_method: str,
    authorization_reference: str = "",
    token_pk: int | None = None,
    location: Location | int | None = None,
    evse: EVSE | int | None = None,
    connector: Connector | int | None = None,
) -> PendingStart:
    """Remember an authorized start before the charger is asked (a remote START_SESSION) or
    after a swipe was authorized, so the transaction the charger reports becomes a Session of
    the right token and partner. Call it in the same transaction as the request to the charger.
    `request_ref` is the reference given to the gateway (unique); for a swipe any unique value."""
    PendingStart.objects.filter(
        session__isnull=True, created__lt=_now() - timedelta(days=1)
    ).delete()  # never-used leftovers
    pending, _ = PendingStart.objects.update_or_create(
        request_ref=request_ref,
        defaults={
            "partner_id": partner_id,
            "token_id": token_pk,
            "id_tag": cdr_token.get("uid", "")[:36],
            "cdr_token": dict(cdr_token),
            "auth_method": auth_method,
            "authorization_reference": authorization_reference or "",
            "location_id": _pk(location),
            "evse_id": _pk(evse),
            "connector_id": _pk(connector),
            "created": _now(),
        },
    )
    return pending


def _pending_for(
    *, request_ref: str | None, id_tag: str, evse: EVSE, at: datetime
) -> PendingStart | None:
    unused = PendingStart.objects.select_for_update().filter(session__isnull=True)
    if request_ref:
        pending = unused.filter(request_ref=request_ref).first()
        if pending is not None:
            return pending
    here = Q(evse=evse) | Q(evse__isnull=True, location=evse.location_id)
    here |= Q(evse__isnull=True, location__isnull=True)
    return (
        unused.filter(here, id_tag__lower=id_tag.lower(), created__gte=at - PENDING_START_WINDOW)
        .order_by("-created", "-id")
        .first()
    )


@dataclass
class _Attribution:
    partner_id: int | None
    token: Token | None
    cdr_token: dict
    auth_method: str
    authorization_reference: str
    valid: bool = True


def _attribute(pending: PendingStart | None, id_tag: str, location: Location) -> _Attribution:
    if pending is not None:
        return _Attribution(
            partner_id=pending.partner_id,
            token=pending.token,
            cdr_token=pending.cdr_token,
            auth_method=pending.auth_method,
            authorization_reference=pending.authorization_reference,
        )
    token = (
        Token.objects.filter(uid__lower=id_tag.lower())
        .order_by("blocked", "-valid", "-last_updated", "pk")
        .first()
    )
    if token is not None:
        # The charger let it charge on its own (local whitelist): that is WHITELIST (§6).
        return _Attribution(token.partner_id, token, token.cdr_token(), AuthMethod.WHITELIST, "")
    logger.warning("Transaction for unknown id_tag %r at %s: INVALID session", id_tag, location)
    unknown = {
        "country_code": location.country_code,
        "party_id": location.party_id,
        "uid": id_tag,
        "type": TokenType.OTHER,
        "contract_id": id_tag,
    }
    return _Attribution(None, None, unknown, AuthMethod.WHITELIST, "", valid=False)


# --- tariffs and period conditions ---------------------------------------------------------------
def _tariffs_of(connector: Connector, location: Location, at: datetime) -> list[Tariff]:
    """The connector's tariffs valid for a session starting at `at`, in the connector's order."""
    ids = [i.lower() for i in connector.tariff_ids or []]
    if not ids:
        return []
    found = Tariff.objects.filter(
        country_code__lower=location.country_code.lower(),
        party_id__lower=location.party_id.lower(),
        ocpi_id__lower__in=ids,
    ).prefetch_related(
        models.Prefetch(
            "elements",
            TariffElement.objects.order_by("position", "pk").prefetch_related(
                models.Prefetch(
                    "price_components", PriceComponent.objects.order_by("position", "pk")
                )
            ),
        )
    )
    valid = [
        t
        for t in found
        if (t.start_date_time is None or t.start_date_time <= at)
        and (t.end_date_time is None or at < t.end_date_time)
    ]
    return sorted(valid, key=lambda t: ids.index(t.ocpi_id.lower()))


def _tariff_for(tariffs: list[Tariff], profile_type: str | None) -> Tariff | None:
    """The tariff that applies (§7.1): PROFILE_<X> for a preference X, else REGULAR; a tariff
    without type applies to everything. AD_HOC_PAYMENT is for card payments, not tokens."""
    wanted = f"PROFILE_{profile_type}" if profile_type and profile_type != "REGULAR" else None
    for kind in (k for k in (wanted, "REGULAR", "") if k is not None):  # "": no type
        for tariff in tariffs:
            if tariff.type == kind:
                return tariff
    return None


def _session_tariff(session: Session) -> Tariff | None:
    profile = (session.charging_preferences or {}).get("profile_type")
    tariffs = _tariffs_of(session.connector, session.location, session.start_date_time)
    return _tariff_for(tariffs, profile)


def _holds(element: TariffElement, *, local: datetime, kwh, duration_s, power_kw, current_a):
    """Whether all restrictions of `element` hold now (PROTOCOL.md §5.5)."""
    hhmm = local.strftime("%H:%M")
    start, end = element.start_time, element.end_time
    if start and end and start != end:
        if start < end and end != "00:00":
            if not start <= hhmm < end:
                return False
        elif end != "00:00" and not (hhmm >= start or hhmm < end):  # wraps past midnight
            return False
        elif end == "00:00" and hhmm < start:
            return False
    elif start and not end and hhmm < start:
        return False
    elif end and not start and end != "00:00" and hhmm >= end:
        return False
    day = local.strftime("%Y-%m-%d")
    if element.start_date and day < element.start_date:
        return False
    if element.end_date and day >= element.end_date:
        return False
    weekday = DAYS_OF_WEEK[local.weekday()]
    if element.day_of_week and weekday not in element.day_of_week:
        return False
    checks = (
        (element.min_kwh, kwh, True),
        (element.max_kwh, kwh, False),
        (element.min_duration, duration_s, True),
        (element.max_duration, duration_s, False),
        (element.min_power, power_kw, True),
        (element.max_power, power_kw, False),
        (element.min_current, current_a, True),
        (element.max_current, current_a, False),
    )
    for bound, value, is_min in checks:
        if bound is None or value is None:
            continue
        if (is_min and value < bound) or (not is_min and value >= bound):
            return False
    return True


def _signature(
    tariff: Tariff | None, session: Session, *, at: datetime, kwh, power_w, current_a
) -> list[bool]:
    """Which elements of the tariff (reservation elements aside) apply now."""
    if tariff is None:
        return []
    local = at.astimezone(ZoneInfo(session.location.time_zone))
    duration_s = max((at - session.start_date_time).total_seconds(), 0)
    power_kw = None if power_w is None else Decimal(power_w) / 1000
    return [
        _holds(e, local=local, kwh=kwh, duration_s=duration_s, power_kw=power_kw,
               current_a=current_a)
        for e in tariff.elements.all()
        if not e.reservation
    ]  # fmt: skip


# --- the snapshot for the CDR --------------------------------------------------------------------
def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _cdr_location(location: Location, evse: EVSE, connector: Connector) -> dict:
    """The OCPI CdrLocation (§5.4): CdrLocation keeps the old 45/20 character limits."""
    data = {
        "id": location.ocpi_id,
        "name": location.name,
        "address": location.address[:45],
        "city": location.city,
        "postal_code": location.postal_code,
        "state": location.state[:20],
        "country": location.country,
        "coordinates": {"latitude": location.latitude, "longitude": location.longitude},
        "evse_uid": evse.uid,
        "evse_id": evse.evse_id or evse.uid,
        "connector_id": connector.ocpi_id,
        "connector_standard": connector.standard,
        "connector_format": connector.format,
        "connector_power_type": connector.power_type,
    }
    return {k: v for k, v in data.items() if v != ""}


def _tariff_snapshot(tariff: Tariff) -> dict:
    """An OCPI Tariff object (§5.5) of the tariff as it is now, in plain JSON values."""
    elements = []
    for element in tariff.elements.all():
        components = [
            {k: v for k, v in (("type", c.type), ("price", str(c.price)),
                               ("vat", _plain(c.vat)), ("step_size", c.step_size)) if v is not None}
            for c in element.price_components.all()
        ]  # fmt: skip
        if not components:
            continue
        item: dict[str, Any] = {"price_components": components}
        restrictions = {
            name: _plain(getattr(element, name))
            for name in TariffElement.RESTRICTION_FIELDS
            if getattr(element, name) not in (None, "", [])
        }
        if restrictions:
            item["restrictions"] = restrictions
        elements.append(item)
    data: dict[str, Any] = {
        "country_code": tariff.country_code,
        "party_id": tariff.party_id,
        "id": tariff.ocpi_id,
        "currency": tariff.currency,
        "type": tariff.type,
        "tariff_alt_text": tariff.tariff_alt_text,
        "tariff_alt_url": tariff.tariff_alt_url,
        "elements": elements,
        "start_date_time": _plain(tariff.start_date_time),
        "end_date_time": _plain(tariff.end_date_time),
        "energy_mix": tariff.energy_mix,
        "last_updated": _plain(tariff.last_updated),
    }
    for name, excl, incl in (
        ("min_price", tariff.min_price_excl_vat, tariff.min_price_incl_vat),
        ("max_price", tariff.max_price_excl_vat, tariff.max_price_incl_vat),
    ):
        if excl is not None:
            data[name] = {"excl_vat": str(excl)}
            if incl is not None:
                data[name]["incl_vat"] = str(incl)
    return {k: v for k, v in data.items() if v not in (None, "", [])}


# --- period volumes -------------------------------------------------------------------------------
def _volume(value: Decimal, places: Decimal) -> str:
    return str(value.quantize(places, ROUND_HALF_UP))


def _dimension(period: ChargingPeriod, kind: str) -> Decimal | None:
    for item in period.dimensions:
        if item.get("type") == kind:
            return Decimal(str(item["volume"]))
    return None


def _fill(
    period: ChargingPeriod,
    *,
    end: datetime,
    energy_kwh: Decimal,
    power_w: Decimal | None = None,
) -> None:
    """Set the period's volumes for the stretch from its start to `end` (a reading)."""
    hours = Decimal(str(max((end - period.start_date_time).total_seconds(), 0))) / 3600
    time_kind = CdrDimensionType.TIME if period.charging else CdrDimensionType.PARKING_TIME
    dims = [
        {"type": CdrDimensionType.ENERGY, "volume": _volume(max(energy_kwh, ZERO), KWH)},
        {"type": time_kind, "volume": _volume(hours, HOURS)},
    ]
    highest = _dimension(period, CdrDimensionType.MAX_POWER)
    lowest = _dimension(period, CdrDimensionType.MIN_POWER)
    if period.charging and power_w is not None and power_w > 0:
        kw = Decimal(power_w) / 1000
        highest = kw if highest is None else max(highest, kw)
        lowest = kw if lowest is None else min(lowest, kw)
    if highest is not None:
        dims.append({"type": CdrDimensionType.MAX_POWER, "volume": _volume(highest, KW)})
    if lowest is not None:
        dims.append({"type": CdrDimensionType.MIN_POWER, "volume": _volume(lowest, KW)})
    period.dimensions = dims


def _volumes(period: ChargingPeriod) -> dict[str, Decimal]:
    return {item["type"]: Decimal(str(item["volume"])) for item in period.dimensions}


def _energy(period: ChargingPeriod) -> Decimal:
    return _dimension(period, CdrDimensionType.ENERGY) or ZERO


def _kwh(wh: Decimal) -> Decimal:
    return (Decimal(wh) / 1000).quantize(KWH, ROUND_HALF_UP)


# --- cost so far ---------------------------------------------------------------------------------
def _session_cost(session: Session, periods: list[ChargingPeriod]) -> tuple | None:
    """(excl_vat, incl_vat) of the session so far under its tariffs (billing.tariff_calc, the
    maths CDRs use), or None when it cannot be known (no tariff). The periods of each tariff are
    priced on their own (no step_size carried over between tariffs, §7.1); volumes include the
    open period up to the last reading."""
    by_id = {
        t.ocpi_id: t
        for t in _tariffs_of(session.connector, session.location, session.start_date_time)
    }
    groups: dict[str, list[ChargingPeriod]] = {}
    for period in periods:
        if period.tariff_id not in by_id:
            return None
        groups.setdefault(period.tariff_id, []).append(period)
    if not groups:
        return None
    excl, incl = ZERO, ZERO
    try:
        for tariff_id, group in groups.items():
            breakdown = price_session(
                tariff_from_model(by_id[tariff_id]),
                [(p.start_date_time, _volumes(p)) for p in group],
                start=session.start_date_time,
                time_zone=session.location.time_zone,
            )
            excl += breakdown.total_cost.excl_vat
            incl += breakdown.total_cost.incl_vat
    except ValueError:
        logger.exception("Session %s: cannot price it", session.ocpi_id)
        return None
    return excl, incl


def _update_cost(session: Session, periods: list[ChargingPeriod]) -> bool:
    """Store the cost so far on the session; True if it changed."""
    cost = _session_cost(session, periods)
    excl, incl = cost if cost is not None else (None, None)
    if (excl, incl) == (session.total_cost_excl_vat, session.total_cost_incl_vat):
        return False
    session.total_cost_excl_vat, session.total_cost_incl_vat = excl, incl
    Session.objects.filter(pk=session.pk).update(total_cost_excl_vat=excl, total_cost_incl_vat=incl)
    return True


# --- announcing -----------------------------------------------------------------------------------
def _published_periods(session: Session, periods: list[ChargingPeriod]) -> list[ChargingPeriod]:
    """The periods the OCPI object carries: all once the session ended, else the closed ones."""
    return periods if session.status in FINAL_STATUSES else periods[:-1]


def session_periods(session: Session) -> list[ChargingPeriod]:
    """The published ChargingPeriods of a session (see the module docstring), in order.
    Uses the prefetched `periods` when there are any."""
    periods = sorted(session.periods.all(), key=lambda p: (p.start_date_time, p.pk))
    return _published_periods(session, periods)


def _announce(
    session: Session,
    meter: SessionMeter | None,
    *,
    created: bool = False,
    final: bool = False,
    changed: set[str] = frozenset(),
) -> None:
    """Send session_changed if due (see the module docstring) and remember what was said."""
    now = _now()
    if session.partner_id is None:
        return  # nobody to tell (an INVALID session of an unknown token)
    changed = set(changed)
    if not created and not final:
        last = session.last_announced_at
        interval = timedelta(seconds=float(settings.SESSION_PATCH_INTERVAL))
        if not changed and last is not None and now - last < interval:
            return
    periods = list(session.periods.order_by("start_date_time", "pk"))
    published = _published_periods(session, periods)
    already = meter.announced_periods if meter is not None else 0
    new_periods = published[already:]
    if _update_cost(session, periods):
        changed.add("total_cost")
    if not created and not final:
        if meter is None or meter.announced_kwh != session.kwh:
            changed.add("kwh")
        if new_periods:
            changed.add("charging_periods")
        if not changed:
            return
    if final:
        changed |= {"status", "end_date_time", "kwh", "charging_periods"}
    changed.add("last_updated")
    session_changed.send(
        sender=Session,
        session=session,
        created=created,
        final=final,
        changed_fields=frozenset(changed),
        new_periods=new_periods,
    )
    session.last_announced_at = now
    Session.objects.filter(pk=session.pk).update(last_announced_at=now)
    if meter is not None:
        meter.announced_periods = len(published)
        meter.announced_kwh = session.kwh
        meter.save(update_fields=["announced_periods", "announced_kwh"])


# --- what the chargers report ---------------------------------------------------------------------
def session_start(
    *,
    transaction_ref: str,
    evse: EVSE,
    connector: Connector,
    id_tag: str,
    meter_start_wh: Decimal,
    timestamp: datetime,
    request_ref: str | None = None,
    reservation_ref: int | None = None,
) -> Session:
    """A charger started a transaction: the Session (ACTIVE), announced as created."""
    timestamp = _ms(timestamp)
    with transaction.atomic():
        existing = Session.objects.filter(transaction_ref=transaction_ref).first()
        if existing is not None:
            return existing  # a repeated report
        location = Location.objects.get(pk=evse.location_id)
        pending = _pending_for(request_ref=request_ref, id_tag=id_tag, evse=evse, at=timestamp)
        who = _attribute(pending, id_tag, location)
        reservation = None
        if reservation_ref is not None:
            reservation = Reservation.objects.filter(pk=reservation_ref).first()
        session = None
        if reservation is not None:
            session = (
                Session.objects.select_for_update()
                .filter(reservation=reservation, status=SessionStatus.RESERVATION)
                .first()
            )
        created = session is None
        if created:
            session = Session(ocpi_id=new_session_id(timestamp), reservation=reservation)
        session.country_code = location.country_code
        session.party_id = location.party_id
        session.partner_id = who.partner_id
        session.token = who.token
        session.cdr_token = who.cdr_token
        session.auth_method = who.auth_method
        session.authorization_reference = who.authorization_reference[:36]
        session.location = location
        session.evse = evse
        session.connector = connector
        session.transaction_ref = transaction_ref
        session.meter_start_wh = Decimal(meter_start_wh)
        session.kwh = ZERO
        session.start_date_time = timestamp
        session.status = SessionStatus.ACTIVE if who.valid else SessionStatus.INVALID
        tariffs = _tariffs_of(connector, location, timestamp)
        tariff = _tariff_for(tariffs, None)
        session.currency = tariff.currency if tariff is not None else session.currency or "EUR"
        session.touch()
        session.save()
        earlier_periods = session.periods.count()  # a reservation's, already announced
        ChargingPeriod.objects.create(
            session=session,
            start_date_time=timestamp,
            dimensions=[
                {"type": CdrDimensionType.ENERGY, "volume": "0.0000"},
                {"type": CdrDimensionType.TIME, "volume": "0.0000"},
            ],
            tariff_id=tariff.ocpi_id if tariff is not None else "",
            charging=True,
        )
        meter, _ = SessionMeter.objects.update_or_create(
            session=session,
            defaults={
                "last_reading_at": timestamp,
                "tariff_id": tariff.ocpi_id if tariff is not None else "",
                "signature": _signature(
                    tariff, session, at=timestamp, kwh=ZERO, power_w=None, current_a=None
                ),
                "announced_periods": earlier_periods,
                "announced_kwh": None,
            },
        )
        SessionSnapshot.objects.update_or_create(
            session=session,
            defaults={
                "cdr_location": _cdr_location(location, evse, connector),
                "tariffs": [_tariff_snapshot(t) for t in tariffs],
            },
        )
        if pending is not None:
            pending.session = session
            pending.save(update_fields=["session"])
        if reservation is not None and reservation.status in ("PENDING", "ACTIVE"):
            reservation.status = Reservation.Status.USED
            reservation.save(update_fields=["status"])
        logger.info("Session %s started: %s at %s", session.ocpi_id, id_tag, evse)
        changed = set() if created else {
            "status", "start_date_time", "evse_uid", "connector_id", "auth_method",
            "authorization_reference", "kwh", "currency", "cdr_token",
        }  # fmt: skip
        _announce(session, meter, created=created, changed=changed)
    return session


def _live_session(transaction_ref: str) -> Session | None:
    return (
        Session.objects.select_for_update(of=("self",))
        .filter(transaction_ref=transaction_ref)
        .exclude(transaction_ref="")
        .exclude(status__in=(SessionStatus.COMPLETED, SessionStatus.RESERVATION))
        .exclude(status=SessionStatus.INVALID, end_date_time__isnull=False)
        .select_related("location", "connector", "evse")
        .first()
    )


def session_meter_values(
    *,
    transaction_ref: str,
    energy_wh: Decimal,
    power_w: Decimal | None,
    current_a: Decimal | None,
    charging: bool,
    timestamp: datetime,
) -> Session | None:
    """A reading of a running transaction: kWh, the open period, maybe a new period, and a
    (throttled) announcement. Readings older than the last one are ignored."""
    timestamp = _ms(timestamp)
    with transaction.atomic():
        session = _live_session(transaction_ref)
        if session is None:
            return None
        meter, _ = SessionMeter.objects.select_for_update().get_or_create(session=session)
        if meter.last_reading_at is not None and timestamp < meter.last_reading_at:
            return session
        kwh = max(session.kwh, _kwh(Decimal(energy_wh) - session.meter_start_wh))
        periods = list(session.periods.order_by("start_date_time", "pk"))
        current = periods[-1]
        closed_kwh = sum((_energy(p) for p in periods[:-1]), ZERO)
        tariff = _session_tariff(session)
        tariff_id = tariff.ocpi_id if tariff is not None else ""
        signature = _signature(
            tariff, session, at=timestamp, kwh=kwh, power_w=power_w, current_a=current_a
        )
        switch = (
            current.charging != charging
            or current.tariff_id != tariff_id
            or meter.signature != signature
        )
        if switch and timestamp > current.start_date_time:
            _fill(current, end=timestamp, energy_kwh=kwh - closed_kwh)
            current.save(update_fields=["dimensions"])
            opened = ChargingPeriod(
                session=session,
                start_date_time=timestamp,
                tariff_id=tariff_id,
                charging=charging,
                dimensions=[],
            )
            _fill(opened, end=timestamp, energy_kwh=ZERO, power_w=power_w)
            opened.save()
        else:
            if switch:  # nothing measured in the open period yet: it takes the new conditions
                current.charging = charging
                current.tariff_id = tariff_id
            _fill(current, end=timestamp, energy_kwh=kwh - closed_kwh, power_w=power_w)
            current.save()
        meter.last_reading_at = timestamp
        meter.power_w = power_w
        meter.current_a = current_a
        meter.tariff_id = tariff_id
        meter.signature = signature
        meter.save()
        if kwh != session.kwh or switch:
            session.kwh = kwh
            session.touch()
            session.save(update_fields=["kwh", "last_updated"])
        _announce(session, meter)
    return session


def session_end(
    *, transaction_ref: str, meter_stop_wh: Decimal, timestamp: datetime, reason: str = ""
) -> Session | None:
    """A charger ended a transaction: the final kWh and period, end_date_time, COMPLETED, and
    the final announcement (a full update)."""
    timestamp = _ms(timestamp)
    with transaction.atomic():
        session = _live_session(transaction_ref)
        if session is None:
            return None
        meter = SessionMeter.objects.select_for_update().filter(session=session).first()
        kwh = max(session.kwh, _kwh(Decimal(meter_stop_wh) - session.meter_start_wh))
        periods = list(session.periods.order_by("start_date_time", "pk"))
        current = periods[-1]
        timestamp = max(timestamp, current.start_date_time)
        closed_kwh = sum((_energy(p) for p in periods[:-1]), ZERO)
        energy = kwh - closed_kwh
        if timestamp == current.start_date_time and energy <= 0 and len(periods) > 1:
            current.delete()  # an empty last period (the transaction ended as it began)
        else:
            _fill(current, end=timestamp, energy_kwh=energy)
            current.save(update_fields=["dimensions"])
        session.kwh = kwh
        session.end_date_time = timestamp
        if session.status != SessionStatus.INVALID:
            session.status = SessionStatus.COMPLETED
        session.stop_reason = (reason or "")[:32]
        session.touch()
        session.save()
        logger.info("Session %s ended (%s): %s kWh", session.ocpi_id, reason, kwh)
        _announce(session, meter, final=True)
    return session


@receiver(gateway.transaction_started, dispatch_uid="billing.sessions.transaction_started")
def _on_transaction_started(sender, **kwargs: Any) -> None:
    session_start(
        transaction_ref=kwargs["transaction_ref"],
        evse=kwargs["evse"],
        connector=kwargs["connector"],
        id_tag=kwargs["id_tag"],
        meter_start_wh=kwargs.get("meter_start_wh") or ZERO,
        timestamp=kwargs["timestamp"],
        request_ref=kwargs.get("request_ref"),
        reservation_ref=kwargs.get("reservation_ref"),
    )


@receiver(gateway.meter_values, dispatch_uid="billing.sessions.meter_values")
def _on_meter_values(sender, **kwargs: Any) -> None:
    session_meter_values(
        transaction_ref=kwargs["transaction_ref"],
        energy_wh=kwargs["energy_wh"],
        power_w=kwargs.get("power_w"),
        current_a=kwargs.get("current_a"),
        charging=kwargs.get("charging", True),
        timestamp=kwargs["timestamp"],
    )


@receiver(gateway.transaction_stopped, dispatch_uid="billing.sessions.transaction_stopped")
def _on_transaction_stopped(sender, **kwargs: Any) -> None:
    session_end(
        transaction_ref=kwargs["transaction_ref"],
        meter_stop_wh=kwargs["meter_stop_wh"],
        timestamp=kwargs["timestamp"],
        reason=kwargs.get("reason", ""),
    )


# --- partners' requests ---------------------------------------------------------------------------
def _partner_session(*, partner: Partner, session_ocpi_id: str, lock: bool = False) -> Session:
    sessions = Session.objects.select_related("evse", "connector", "location")
    if lock:
        sessions = sessions.select_for_update(of=("self",))
    session = sessions.filter(ocpi_id__lower=str(session_ocpi_id).lower()).first()
    if session is None:
        raise UnknownSession(f"Unknown session {session_ocpi_id!r}")
    if session.partner_id != partner.pk:
        raise NotYourSession(f"Session {session_ocpi_id!r} is another partner's")
    return session


def session_stop_request(*, partner: Partner, session_ocpi_id: str) -> Session:
    """The session a partner's STOP_SESSION may stop. Raises UnknownSession, NotYourSession, or
    SessionNotActive (ended already, or not charging yet)."""
    session = _partner_session(partner=partner, session_ocpi_id=session_ocpi_id)
    if session.status != SessionStatus.ACTIVE or not session.transaction_ref:
        raise SessionNotActive(f"Session {session.ocpi_id} is {session.status}, not charging")
    return session


def _connector_power_w(connector: Connector) -> Decimal:
    if connector.max_electric_power:
        return Decimal(connector.max_electric_power)
    phases = PHASES.get(connector.power_type, 1)
    return Decimal(connector.max_voltage * connector.max_amperage * phases)


def _json_safe(preferences: dict) -> dict:
    safe = {}
    for key, value in preferences.items():
        if value is None:
            continue
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        safe[key] = value
    return safe


def session_set_charging_preferences(
    *, partner: Partner, session_ocpi_id: str, preferences: dict
) -> str:
    """A driver's charging preferences for a running session (PROTOCOL.md §4.2, §5.3): returns
    a ChargingPreferencesResponse value.

    `preferences` is validated: profile_type (ProfileType), departure_time (aware datetime or
    None), energy_need (Decimal kWh or None), discharge_allowed. Raises UnknownSession,
    NotYourSession, ChargingPreferencesNotSupported (the EVSE lacks CHARGING_PREFERENCES_CAPABLE).
    - PROFILE_TYPE_NOT_SUPPORTED: no tariff of that profile (PROFILE_<X>) at the connector
      (REGULAR is always supported);
    - DEPARTURE_REQUIRED / ENERGY_NEED_REQUIRED: CHEAP and GREEN shift charging in time, which
      needs both;
    - NOT_POSSIBLE: the session is not charging, the departure time has passed, the energy need
      cannot be met by then at the connector's power, or the charger cannot be reached;
    - ACCEPTED: stored on the session and handed to the charger as a power limit (CHEAP/GREEN:
      enough for the energy need by the departure, with a margin; FAST/REGULAR: no limit).
    The profile's tariff applies from the next reading on (a new charging period, §7.1)."""
    R = ChargingPreferencesResponse
    with transaction.atomic():
        session = _partner_session(partner=partner, session_ocpi_id=session_ocpi_id, lock=True)
        if CHARGING_PREFERENCES_CAPABLE not in (session.evse.capabilities or []):
            raise ChargingPreferencesNotSupported(
                f"EVSE {session.evse.uid} does not support charging preferences"
            )
        if session.status != SessionStatus.ACTIVE or not session.transaction_ref:
            return R.NOT_POSSIBLE
        profile = preferences["profile_type"]
        tariffs = _tariffs_of(session.connector, session.location, session.start_date_time)
        if profile != ProfileType.REGULAR and not any(
            t.type == f"PROFILE_{profile}" for t in tariffs
        ):
            return R.PROFILE_TYPE_NOT_SUPPORTED
        departure = preferences.get("departure_time")
        energy_need = preferences.get("energy_need")
        smart = profile in (ProfileType.CHEAP, ProfileType.GREEN)
        if smart and departure is None:
            return R.DEPARTURE_REQUIRED
        if smart and energy_need is None:
            return R.ENERGY_NEED_REQUIRED
        now = _now()
        if departure is not None and departure <= now:
            return R.NOT_POSSIBLE
        limit_w = None
        if departure is not None and energy_need is not None:
            hours = Decimal(str((departure - now).total_seconds())) / 3600
            remaining_kwh = max(Decimal(energy_need) - session.kwh, ZERO)
            max_w = _connector_power_w(session.connector)
            if remaining_kwh * 1000 > max_w * hours:
                return R.NOT_POSSIBLE
            if smart:
                needed_w = remaining_kwh * 1000 / hours * SMART_MARGIN
                limit_w = min(max(needed_w, MIN_SMART_POWER_W), max_w).quantize(Decimal("0.1"))
        asked = gateway.gateway().set_charging_limit(
            request_ref=f"PREF-{secrets.token_hex(8)}",
            transaction_ref=session.transaction_ref,
            limit=gateway.ChargingLimit(
                limit_w=limit_w, valid_until=departure if limit_w is not None else None
            ),
        )
        if not asked:
            return R.NOT_POSSIBLE
        session.charging_preferences = _json_safe(preferences)
        session.save(update_fields=["charging_preferences"])
        logger.info("Session %s: charging preferences %s", session.ocpi_id, preferences)
    return R.ACCEPTED


def session_mark_published(*, session: Session) -> None:
    """The partner was just sent the session's full current state outside the announcements
    (a PUT replacing a rejected PATCH): it now holds every published period and the current
    kWh, so the next PATCH appends only periods closed after this."""
    with transaction.atomic():
        meter = SessionMeter.objects.select_for_update().filter(session=session).first()
        now = _now()
        Session.objects.filter(pk=session.pk).update(last_announced_at=now)
        if meter is not None:
            meter.announced_periods = len(session_periods(session))
            meter.announced_kwh = Session.objects.values_list("kwh", flat=True).get(pk=session.pk)
            meter.save(update_fields=["announced_periods", "announced_kwh"])
