"""The charging profiles receiver's workflows (PROTOCOL.md §4.7, §5.8).

A partner sets, reads or clears the charging profile of one of its sessions; like commands, the
answer is two-step (ocpi.commands has the shared machinery): a ChargingProfileResponse at once,
then a result POSTed to `response_url` through the outbox.

- SET (PUT): the limit the profile gives now is handed to the charger as a
  `stations.gateway.ChargingLimit` in W (a limit in A per phase is converted with the
  connector's voltage and phases); when the charger accepts, the profile is stored on
  Session.charging_profile and ChargingProfileResult ACCEPTED is sent (else REJECTED).
- GET: the ActiveChargingProfile is computed by us from the stored profile (or, without one,
  the connector's maximum capacity, as §4.7 asks for "no profile") for the requested `duration`,
  and ActiveChargingProfileResult is written at once.
- CLEAR (DELETE): the charger's limit is lifted; when it accepts, the stored profile is removed.
  Without a stored profile the result is UNKNOWN at once (no profile found).

Synchronous answers (HTTP 200, OCPI 1000, data ChargingProfileResponse): UNKNOWN_SESSION for an
unknown session id; REJECTED for another partner's session ("session might not be from a
customer of the eMSP", as for STOP_SESSION) and for a session that is not charging;
NOT_SUPPORTED when the EVSE is not CHARGING_PROFILE_CAPABLE; TOO_OFTEN beyond
PROFILE_REQUESTS_PER_MINUTE requests per session; ACCEPTED otherwise, with our `timeout`.
An unanswered SET/CLEAR gets REJECTED when its window closes (ChargingProfileResultType has no
TIMEOUT).

Only the limit valid now goes to the charger (with `valid_until`, when the next period starts);
re-applying later periods of a multi-period profile is left to the gateway.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from django.utils import timezone

from billing.choices import SessionStatus
from billing.models import Session
from stations import gateway as charger_gateway
from stations.models import Connector

from .commands import (
    CommandAnswer,
    Refused,
    ask_charger,
    command_finish,
    normalize_reason,
    request_receive,
)
from .datetimes import parse_datetime
from .models import CommandRequest, Partner

Kind = CommandRequest.Kind
State = CommandRequest.State

PROFILE_KINDS = (
    Kind.SET_CHARGING_PROFILE,
    Kind.GET_CHARGING_PROFILE,
    Kind.CLEAR_CHARGING_PROFILE,
)
#: Requests per session and minute above which we answer TOO_OFTEN.
PROFILE_REQUESTS_PER_MINUTE = 10
_CHARGING = (SessionStatus.PENDING, SessionStatus.ACTIVE)
_PHASES = {"AC_1_PHASE": 1, "AC_2_PHASE": 2, "AC_2_PHASE_SPLIT": 2, "AC_3_PHASE": 3, "DC": 1}
_ONE_DECIMAL = Decimal("0.1")


class ChargingProfileResponseType:
    ACCEPTED = "ACCEPTED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TOO_OFTEN = "TOO_OFTEN"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class ChargingProfileResultType:
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"


# --- limits ---------------------------------------------------------------------------------------
def _number(value) -> Decimal:
    """A stored number (JSON) as an exact Decimal."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def limit_in_watts(limit, unit: str, connector: Connector) -> Decimal:
    """A ChargingProfilePeriod limit in W: `A` is per phase (PROTOCOL.md §5.8), times the
    connector's voltage (line to neutral) and its number of phases."""
    limit = _number(limit)
    if unit == "A":
        limit = limit * connector.max_voltage * _PHASES.get(connector.power_type, 1)
    return limit.quantize(_ONE_DECIMAL)


def max_power_w(connector: Connector) -> Decimal:
    """The connector's capacity in W."""
    if connector.max_electric_power:
        return Decimal(connector.max_electric_power)
    return (
        Decimal(connector.max_amperage)
        * connector.max_voltage
        * _PHASES.get(connector.power_type, 1)
    )


def _profile_start(profile: dict, session: Session) -> datetime:
    """Absolute start of the profile; without start_date_time, the start of charging."""
    start = profile.get("start_date_time")
    if start:  # a datetime from the request's serializer, an OCPI DateTime once stored
        return start if isinstance(start, datetime) else parse_datetime(start)
    return session.start_date_time


def _periods(profile: dict) -> list[tuple[int, Decimal]]:
    periods = [
        (int(p["start_period"]), _number(p["limit"]))
        for p in profile.get("charging_profile_period") or []
    ]
    return sorted(periods)


def _after(begin: datetime, seconds: int) -> datetime | None:
    """`seconds` after `begin`; None past the calendar's end (year 9999): never."""
    try:
        return begin + timedelta(seconds=seconds)
    except OverflowError:
        return None


def limit_at(
    profile: dict, *, session: Session, connector: Connector, at: datetime
) -> charger_gateway.ChargingLimit:
    """The limit `profile` gives at `at` (None outside its periods), until its next change."""
    begin = _profile_start(profile, session)
    elapsed = (at - begin).total_seconds()
    duration = profile.get("duration")
    end = _after(begin, int(duration)) if duration is not None else None
    periods = _periods(profile)
    if (end is not None and at >= end) or not periods:
        return charger_gateway.ChargingLimit(limit_w=None)
    if elapsed < periods[0][0]:
        return charger_gateway.ChargingLimit(limit_w=None, valid_until=_after(begin, periods[0][0]))
    index = max(i for i, (start, _) in enumerate(periods) if start <= elapsed)
    boundaries = [_after(begin, start) for start, _ in periods[index + 1 :]]
    boundaries = [moment for moment in boundaries + [end] if moment is not None]
    return charger_gateway.ChargingLimit(
        limit_w=limit_in_watts(periods[index][1], profile["charging_rate_unit"], connector),
        valid_until=min(boundaries) if boundaries else None,
    )


def active_profile(*, session: Session, connector: Connector, at: datetime, duration: int) -> dict:
    """The ActiveChargingProfile from `at` for `duration` seconds: the stored profile's periods
    relative to `at`, and the connector's capacity where the profile sets no limit."""
    profile = session.charging_profile
    if not profile:
        return {
            "start_date_time": at,
            "charging_profile": {
                "duration": duration,
                "charging_rate_unit": "W",
                "charging_profile_period": [
                    {"start_period": 0, "limit": max_power_w(connector).quantize(_ONE_DECIMAL)}
                ],
            },
        }
    unit = profile["charging_rate_unit"]
    capacity = Decimal(connector.max_amperage) if unit == "A" else max_power_w(connector)
    begin = (_profile_start(profile, session) - at).total_seconds()  # relative to `at`
    end = begin + int(profile["duration"]) if profile.get("duration") is not None else None
    # (start, limit) relative to `at`; None = no limit from the profile = capacity
    steps: list[tuple[float, Decimal | None]] = [(float("-inf"), None)]
    steps += [(begin + start, limit) for start, limit in _periods(profile)]
    if end is not None:
        steps.append((end, None))
    periods = []
    for i, (start, limit) in enumerate(steps):
        next_start = steps[i + 1][0] if i + 1 < len(steps) else float("inf")
        if next_start <= 0 or start >= duration:
            continue
        offset = int(max(start, 0))
        value = (capacity if limit is None else limit).quantize(_ONE_DECIMAL)
        if periods and periods[-1]["start_period"] == offset:
            periods[-1]["limit"] = value
        else:
            periods.append({"start_period": offset, "limit": value})
    charging_profile = {
        "duration": duration,
        "charging_rate_unit": unit,
        "charging_profile_period": periods,
    }
    if profile.get("min_charging_rate") is not None:
        charging_profile["min_charging_rate"] = _number(profile["min_charging_rate"])
    return {"start_date_time": at, "charging_profile": charging_profile}


# --- requests -------------------------------------------------------------------------------------
def _session_for(command: CommandRequest, session_id: str) -> Session:
    """The caller's charging session, or a refusal (PROTOCOL.md §4.7)."""
    session = (
        Session.objects.select_related("evse", "connector")
        .filter(ocpi_id__lower=session_id.lower())
        .first()
    )
    if session is None:
        raise Refused(
            ChargingProfileResponseType.UNKNOWN_SESSION, f"Unknown session {session_id!r}"
        )
    if session.partner_id != command.partner_id:
        raise Refused(
            ChargingProfileResponseType.REJECTED, "This session belongs to another partner"
        )
    CommandRequest.objects.filter(pk=command.pk).update(session_ocpi_id=session.ocpi_id)
    if "CHARGING_PROFILE_CAPABLE" not in (session.evse.capabilities or []):
        raise Refused(
            ChargingProfileResponseType.NOT_SUPPORTED,
            f"EVSE {session.evse.uid!r} does not support charging profiles",
        )
    if session.status not in _CHARGING or not session.transaction_ref:
        raise Refused(ChargingProfileResponseType.REJECTED, "This session is not charging")
    recent = CommandRequest.objects.filter(
        partner_id=command.partner_id,
        kind__in=PROFILE_KINDS,
        session_ocpi_id=session.ocpi_id,
        created__gte=timezone.now() - timedelta(minutes=1),
    ).exclude(pk=command.pk)
    if recent.exclude(state=State.REJECTED).count() >= PROFILE_REQUESTS_PER_MINUTE:
        raise Refused(
            ChargingProfileResponseType.TOO_OFTEN,
            f"At most {PROFILE_REQUESTS_PER_MINUTE} requests per session and minute",
        )
    return session


def _receive(
    *, partner: Partner, kind: str, session_id: str, body: dict, response_url: str, handler,
    correlation_id: str | None,
) -> CommandAnswer:  # fmt: skip
    return request_receive(
        partner=partner,
        kind=kind,
        body=body,
        response_url=response_url,
        correlation_id=correlation_id,
        handler=partial(handler, session_id=session_id),
        session_ocpi_id=session_id,
    )


def charging_profile_set(
    *, partner: Partner, session_id: str, data: dict, correlation_id: str | None = None
) -> CommandAnswer:
    """PUT: set the profile (validated SetChargingProfile `data`) on the partner's session."""

    def handler(command: CommandRequest, *, session_id: str) -> None:
        session = _session_for(command, session_id)
        limit = limit_at(
            data["charging_profile"],
            session=session,
            connector=session.connector,
            at=timezone.now(),
        )
        ask_charger(
            charger_gateway.gateway().set_charging_limit(
                request_ref=command.request_ref,
                transaction_ref=session.transaction_ref,
                limit=limit,
            )
        )

    return _receive(
        partner=partner, kind=Kind.SET_CHARGING_PROFILE, session_id=session_id, body=data,
        response_url=data["response_url"], handler=handler, correlation_id=correlation_id,
    )  # fmt: skip


def charging_profile_get(
    *,
    partner: Partner,
    session_id: str,
    duration: int,
    response_url: str,
    correlation_id: str | None = None,
) -> CommandAnswer:
    """GET: the ActiveChargingProfile for `duration` seconds, POSTed to `response_url`."""

    def handler(command: CommandRequest, *, session_id: str) -> None:
        session = _session_for(command, session_id)
        profile = active_profile(
            session=session, connector=session.connector, at=timezone.now(), duration=duration
        )
        command_finish(
            command,
            ChargingProfileResultType.ACCEPTED,
            body={"result": ChargingProfileResultType.ACCEPTED, "profile": profile},
        )

    return _receive(
        partner=partner, kind=Kind.GET_CHARGING_PROFILE, session_id=session_id,
        body={"duration": duration, "response_url": response_url}, response_url=response_url,
        handler=handler, correlation_id=correlation_id,
    )  # fmt: skip


def charging_profile_clear(
    *, partner: Partner, session_id: str, response_url: str, correlation_id: str | None = None
) -> CommandAnswer:
    """DELETE: lift the partner's profile from its session; ClearProfileResult to response_url."""

    def handler(command: CommandRequest, *, session_id: str) -> None:
        session = _session_for(command, session_id)
        if not session.charging_profile:
            command_finish(command, ChargingProfileResultType.UNKNOWN)
            return
        ask_charger(
            charger_gateway.gateway().set_charging_limit(
                request_ref=command.request_ref,
                transaction_ref=session.transaction_ref,
                limit=charger_gateway.ChargingLimit(limit_w=None),
            )
        )

    return _receive(
        partner=partner, kind=Kind.CLEAR_CHARGING_PROFILE, session_id=session_id,
        body={"response_url": response_url}, response_url=response_url, handler=handler,
        correlation_id=correlation_id,
    )  # fmt: skip


def profile_answer(command: CommandRequest, *, accepted: bool, reason: str) -> tuple[str, dict]:
    """The charger answered a SET or CLEAR: update the stored profile; (result, result body)."""
    if accepted:
        result = ChargingProfileResultType.ACCEPTED
        sessions = Session.objects.filter(
            ocpi_id=command.session_ocpi_id, partner_id=command.partner_id
        )
        if command.kind == Kind.SET_CHARGING_PROFILE:
            sessions.update(charging_profile=command.body["charging_profile"])
        elif command.kind == Kind.CLEAR_CHARGING_PROFILE:
            sessions.update(charging_profile=None)
    elif normalize_reason(reason) in ("UNKNOWN", "NO_PROFILE", "UNKNOWN_PROFILE"):
        result = ChargingProfileResultType.UNKNOWN
    else:
        result = ChargingProfileResultType.REJECTED
    return result, {"result": result}
