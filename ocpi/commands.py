"""The commands receiver's workflows (PROTOCOL.md §4.6, §5.7, §10.11-12; DESIGN.md "Life of a
remote start"), and the asynchronous results both commands and charging profile requests share.

Two steps, as OCPI has them:
1. `command_receive` checks a validated command against our network and the caller's rights and
   answers at once with a CommandResponse: ACCEPTED (the charger was asked through
   `stations.gateway.gateway()`), REJECTED, NOT_SUPPORTED or UNKNOWN_SESSION, always with the
   `timeout` we announce (settings.OCPI_COMMAND_TIMEOUT). Every command that passed validation is
   kept as a CommandRequest (also the refused ones, for staff); a refusal changes nothing else.
2. The charger's answer arrives as the `command_answered` signal; `command_answer` maps it to a
   CommandResultType, stores it on the CommandRequest and writes the bare CommandResult
   `{result, message?}` (not wrapped in the envelope, §10.11) as an outbox row POSTed to the
   command's `response_url`, in the same transaction: the durable push outbox delivers it
   (retries with backoff; the row reuses the command's X-Correlation-ID, §1.6).
   `commands_expire` (the `expire_commands_task`, run by beat and once per command when its
   answer window closes) sends TIMEOUT for commands the charger did not answer in time: the
   window ends before the announced timeout (`answer_window`), so the result can still arrive
   within it. A late answer from the charger is logged and ignored.

Decisions where the spec leaves room:
- HTTP status: a command that reached the OCPI layer is answered HTTP 200 (layering rule, §1.5;
  the OpenAPI description of the commands endpoints lists no 404). Unknown location, EVSE or
  connector: OCPI status 2003 with data `{result: REJECTED, timeout}` (the spec's
  UNLOCK_CONNECTOR sequence diagram); every other answer has status 1000.
- An unknown command type in the URL (not one of the five CommandTypes) is answered
  NOT_SUPPORTED ("the requested command is not supported by this CPO"), and is not stored.
- START_SESSION: the EVSE must not be REMOVED and must be REMOTE_START_STOP_CAPABLE (else
  REJECTED); without `evse_uid` we choose a remotely startable EVSE of the location (AVAILABLE
  ones first) as the charger would; `connector_id` is required where the EVSE has
  START_SESSION_CONNECTOR_REQUIRED. The token must belong to one of the caller's roles (§4.6);
  it is not validated otherwise (it is pre-authorized, §10.12), except that a token our staff
  blocked is refused. Occupied or faulted EVSEs are the charger's to refuse (EVSE_OCCUPIED,
  EVSE_INOPERATIVE come back asynchronously).
- STOP_SESSION of another partner's session: REJECTED; of an unknown one: UNKNOWN_SESSION.
- RESERVE_NOW: the EVSE must be RESERVABLE (else NOT_SUPPORTED) and not REMOVED; our
  Reservation's pk is the charger's reservation id, never the eMSP's id (§10.26); the same
  location_id + reservation_id replaces the reservation. CANCEL_RESERVATION of a reservation
  the caller does not have: REJECTED when another partner has one with that id, else ACCEPTED
  and, at once, the result UNKNOWN_RESERVATION (also for a reservation that already ended).
  When the charger ends a reservation on its own (`reservation_ended` CANCELLED while the eMSP
  did not ask to cancel it), the eMSP gets CANCELED_RESERVATION at the RESERVE_NOW's
  response_url (spec 13.1, "Reservation canceled by the CPO").
- UNLOCK_CONNECTOR: location, EVSE and connector must exist; the EVSE must be UNLOCK_CAPABLE
  (else NOT_SUPPORTED). A connector with a live (PENDING or ACTIVE) session of anyone but the
  caller is REJECTED: one eMSP must not unplug another's driver; a free connector, or one with
  the caller's own session (a stuck cable, a customer-service call), is unlocked.
- The gateway returning False (the charger cannot even be asked, e.g. offline) makes the
  answer REJECTED, and undoes what the command prepared (savepoint).
"""

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.dispatch import receiver
from django.utils import timezone

from billing import exceptions as billing_errors
from billing.models import Reservation, Token
from billing.models_sessions import PendingStart
from billing.selectors import connector_in_use_by_other
from billing.sessions import pending_start_register, session_stop_request
from billing.signals import session_changed
from billing.tokens import TokenNotOwned, token_owner_check
from stations import gateway as charger_gateway
from stations.choices import EVSEStatus
from stations.models import EVSE, Connector, Location
from stations.selectors import location_get

from . import jsonutil, outbox
from .models import CommandRequest, Partner

logger = logging.getLogger(__name__)

Kind = CommandRequest.Kind
State = CommandRequest.State

COMMANDS = "commands"
COMMAND_KINDS = (
    Kind.START_SESSION,
    Kind.STOP_SESSION,
    Kind.RESERVE_NOW,
    Kind.CANCEL_RESERVATION,
    Kind.UNLOCK_CONNECTOR,
)
# The spec's own status for a command at an unknown Location/EVSE/Connector.
UNKNOWN_LOCATION_STATUS = 2003


class CommandResponseType:
    """OCPI CommandResponseType (PROTOCOL.md §6): the synchronous answer."""

    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class CommandResultType:
    """OCPI CommandResultType (PROTOCOL.md §6): the asynchronous result."""

    ACCEPTED = "ACCEPTED"
    CANCELED_RESERVATION = "CANCELED_RESERVATION"
    EVSE_OCCUPIED = "EVSE_OCCUPIED"
    EVSE_INOPERATIVE = "EVSE_INOPERATIVE"
    FAILED = "FAILED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TIMEOUT = "TIMEOUT"
    UNKNOWN_RESERVATION = "UNKNOWN_RESERVATION"


# A charger's reason for not accepting (stations.gateway.command_answered) -> CommandResultType.
# Reasons are matched upper-cased, with spaces and dashes as underscores; anything else is
# REJECTED (the charger said no).
REASON_RESULTS = {
    "OCCUPIED": CommandResultType.EVSE_OCCUPIED,
    "EVSE_OCCUPIED": CommandResultType.EVSE_OCCUPIED,
    "CHARGING": CommandResultType.EVSE_OCCUPIED,
    "RESERVED": CommandResultType.EVSE_OCCUPIED,
    "FAULTED": CommandResultType.EVSE_INOPERATIVE,
    "INOPERATIVE": CommandResultType.EVSE_INOPERATIVE,
    "EVSE_INOPERATIVE": CommandResultType.EVSE_INOPERATIVE,
    "OUTOFORDER": CommandResultType.EVSE_INOPERATIVE,
    "OUT_OF_ORDER": CommandResultType.EVSE_INOPERATIVE,
    "UNAVAILABLE": CommandResultType.EVSE_INOPERATIVE,
    "TIMEOUT": CommandResultType.TIMEOUT,
    "UNKNOWN_RESERVATION": CommandResultType.UNKNOWN_RESERVATION,
    "NOT_SUPPORTED": CommandResultType.NOT_SUPPORTED,
    "FAILED": CommandResultType.FAILED,
    "OFFLINE": CommandResultType.FAILED,
    "UNLOCK_FAILED": CommandResultType.FAILED,
    "UNKNOWN_TRANSACTION": CommandResultType.FAILED,
    "REJECTED": CommandResultType.REJECTED,
}

_LIVE_RESERVATION = (Reservation.Status.PENDING, Reservation.Status.ACTIVE)


def normalize_reason(reason) -> str:
    return str(reason or "").strip().upper().replace(" ", "_").replace("-", "_")


def command_result_for(*, accepted: bool, reason: str = "") -> str:
    """The CommandResultType for a charger's answer."""
    if accepted:
        return CommandResultType.ACCEPTED
    return REASON_RESULTS.get(normalize_reason(reason), CommandResultType.REJECTED)


def command_timeout() -> int:
    """The timeout (seconds) we announce in every CommandResponse / ChargingProfileResponse."""
    return int(settings.OCPI_COMMAND_TIMEOUT)


def answer_window(timeout_seconds: int) -> float:
    """Seconds the charger gets to answer: the announced timeout less a margin for delivering
    the TIMEOUT result, so the eMSP has it before it gives up (PROTOCOL.md §10.11)."""
    return max(timeout_seconds - min(5.0, timeout_seconds / 6), 0.0)


def display_text(text: str) -> list[dict]:
    """An OCPI `message` (DisplayText *) in English."""
    return [{"language": "en", "text": text[:512]}] if text else []


def wire(data) -> dict:
    """`data` as it goes over the wire (OCPI DateTimes, numbers with their digits), storable in
    a JSONField."""
    return json.loads(jsonutil.dumps(data))


# --- the synchronous answer ---------------------------------------------------------------------
@dataclass(frozen=True)
class CommandAnswer:
    """What we answer at once: CommandResponse (or ChargingProfileResponse) data and status."""

    result: str
    timeout: int
    message: str = ""
    status_code: int = 1000
    command: CommandRequest | None = None

    def to_ocpi(self, *, with_message: bool = True) -> dict:
        data = {"result": self.result, "timeout": self.timeout}
        if with_message and self.message:
            data["message"] = display_text(self.message)
        return data


class Refused(Exception):
    """A request we answer with something else than ACCEPTED; nothing it prepared is kept."""

    def __init__(self, result: str, message: str, *, status_code: int = 1000):
        super().__init__(message)
        self.result = result
        self.message = message
        self.status_code = status_code


def ask_charger(asked: bool) -> None:
    """The gateway's return value: False means the charger cannot even be asked now."""
    if not asked:
        raise Refused(CommandResponseType.REJECTED, "The charger cannot be reached at the moment")


def request_receive(
    *,
    partner: Partner,
    kind: str,
    body: dict,
    response_url: str,
    correlation_id: str | None,
    handler: Callable[[CommandRequest], None],
    session_ocpi_id: str = "",
) -> CommandAnswer:
    """Keep the request, run `handler` in a savepoint and answer.

    `handler` raises Refused to refuse (its changes are rolled back, the request is kept as
    REJECTED with our answer); otherwise it asked the charger, or answered already (ANSWERED).
    """
    timeout = command_timeout()
    with transaction.atomic():
        command = CommandRequest.objects.create(
            partner=partner,
            kind=kind,
            request_ref=str(uuid.uuid4()),
            body=wire(body),
            response_url=response_url,
            response_result=CommandResponseType.ACCEPTED,
            timeout_seconds=timeout,
            state=State.WAITING,
            session_ocpi_id=session_ocpi_id[:36],
            correlation_id=(correlation_id or "")[:64],
        )
        try:
            with transaction.atomic():
                handler(command)
        except Refused as refusal:
            CommandRequest.objects.filter(pk=command.pk).update(
                state=State.REJECTED,
                response_result=refusal.result,
                result_message=refusal.message[:255],
                reservation=None,
            )
            command.refresh_from_db()
            logger.info("%s from %s refused: %s", kind, partner, refusal.message)
            return CommandAnswer(
                refusal.result, timeout, refusal.message, refusal.status_code, command
            )
        command.refresh_from_db()
        if command.state == State.WAITING:
            transaction.on_commit(
                partial(expire_commands_task.apply_async, countdown=answer_window(timeout) + 0.5),
                robust=True,
            )
    return CommandAnswer(CommandResponseType.ACCEPTED, timeout, command=command)


# --- commands -----------------------------------------------------------------------------------
def command_receive(
    *, partner: Partner, kind: str, data: dict, correlation_id: str | None = None
) -> CommandAnswer:
    """Answer a command (validated by ocpi.modules.commands.serializers) of `partner`."""
    handlers = {
        Kind.START_SESSION: _start_session,
        Kind.STOP_SESSION: _stop_session,
        Kind.RESERVE_NOW: _reserve_now,
        Kind.CANCEL_RESERVATION: _cancel_reservation,
        Kind.UNLOCK_CONNECTOR: _unlock_connector,
    }
    handler = handlers.get(kind)
    if handler is None:
        return CommandAnswer(
            CommandResponseType.NOT_SUPPORTED,
            command_timeout(),
            f"Command {kind!r} is not supported",
        )
    return request_receive(
        partner=partner,
        kind=kind,
        body=data,
        response_url=data["response_url"],
        correlation_id=correlation_id,
        handler=partial(handler, data=data),
        session_ocpi_id=data.get("session_id", "") if kind == Kind.STOP_SESSION else "",
    )


def _unknown_place(message: str) -> Refused:
    return Refused(CommandResponseType.REJECTED, message, status_code=UNKNOWN_LOCATION_STATUS)


def _place(
    partner: Partner, location_id: str, evse_uid: str | None, connector_id: str | None
) -> tuple[Location, EVSE | None, Connector | None]:
    """The Location (visible to the partner), EVSE and Connector a command names; ids are
    CiStrings. Unknown ones are refused with 2003."""
    location = location_get(partner=partner, location_id=location_id)
    if location is None:
        raise _unknown_place(f"Unknown location {location_id!r}")
    evse = connector = None
    if evse_uid is not None:
        evse = next((e for e in location.evses.all() if e.uid.lower() == evse_uid.lower()), None)
        if evse is None:
            raise _unknown_place(f"Unknown EVSE {evse_uid!r} at location {location_id!r}")
    if connector_id is not None and evse is not None:
        connector = next(
            (c for c in evse.connectors.all() if c.ocpi_id.lower() == connector_id.lower()), None
        )
        if connector is None:
            raise _unknown_place(f"Unknown connector {connector_id!r} of EVSE {evse_uid!r}")
    return location, evse, connector


def _check_token_owner(partner: Partner, token: dict) -> None:
    """A command's token must be the caller's own (one of its roles; PROTOCOL.md §4.6)."""
    try:
        token_owner_check(
            partner=partner, country_code=token["country_code"], party_id=token["party_id"]
        )
    except TokenNotOwned as exc:
        raise Refused(
            CommandResponseType.REJECTED,
            f"Token of {token['country_code']}*{token['party_id']} is not one of your parties'",
        ) from exc


def _cached_token(partner: Partner, token: dict) -> Token | None:
    return Token.objects.filter(
        partner=partner,
        country_code__lower=token["country_code"].lower(),
        party_id__lower=token["party_id"].lower(),
        uid__lower=token["uid"].lower(),
        type=token["type"],
    ).first()


def _cdr_token(token: dict) -> dict:
    return {key: token[key] for key in ("country_code", "party_id", "uid", "type", "contract_id")}


def _usable(evse: EVSE, capability: str, *, missing: str) -> None:
    if evse.status == EVSEStatus.REMOVED:
        raise Refused(CommandResponseType.REJECTED, f"EVSE {evse.uid!r} is removed")
    if capability not in (evse.capabilities or []):
        raise Refused(missing, f"EVSE {evse.uid!r} is not {capability}")


def _choose_evse(
    location: Location, capability: str, *, missing: str, without: str | None = None
) -> EVSE:
    """An EVSE of the location for a command without evse_uid: one with the capability (and
    not the capability `without`), not REMOVED, AVAILABLE ones first (as a charger would)."""
    candidates = [
        e
        for e in location.evses.all()
        if e.status != EVSEStatus.REMOVED
        and capability in (e.capabilities or [])
        and (without is None or without not in (e.capabilities or []))
    ]
    if not candidates:
        raise Refused(missing, f"No EVSE at location {location.ocpi_id!r} is {capability}")
    candidates.sort(key=lambda e: e.status != EVSEStatus.AVAILABLE)
    return candidates[0]


def _start_session(command: CommandRequest, *, data: dict) -> None:
    partner, token = command.partner, data["token"]
    location, evse, connector = _place(
        partner, data["location_id"], data.get("evse_uid"), data.get("connector_id")
    )
    _check_token_owner(partner, token)
    if evse is None:
        evse = _choose_evse(
            location,
            "REMOTE_START_STOP_CAPABLE",
            missing=CommandResponseType.REJECTED,
            without="START_SESSION_CONNECTOR_REQUIRED",  # we are not told which connector
        )
    _usable(evse, "REMOTE_START_STOP_CAPABLE", missing=CommandResponseType.REJECTED)
    if connector is None:
        if "START_SESSION_CONNECTOR_REQUIRED" in (evse.capabilities or []):
            raise Refused(
                CommandResponseType.REJECTED,
                f"EVSE {evse.uid!r} needs a connector_id (START_SESSION_CONNECTOR_REQUIRED)",
            )
        connectors = list(evse.connectors.all())
        if len(connectors) == 1:
            connector = connectors[0]
    cached = _cached_token(partner, token)
    if cached is not None and cached.blocked:
        raise Refused(CommandResponseType.REJECTED, "This token is blocked by the CPO")
    pending_start_register(
        request_ref=command.request_ref,
        partner_id=partner.pk,
        cdr_token=_cdr_token(token),
        auth_method="COMMAND",
        authorization_reference=data.get("authorization_reference") or "",
        token_pk=cached.pk if cached is not None else None,
        location=location,
        evse=evse,
        connector=connector,
    )
    ask_charger(
        charger_gateway.gateway().start_transaction(
            request_ref=command.request_ref,
            evse_pk=evse.pk,
            connector_pk=connector.pk if connector is not None else None,
            id_tag=token["uid"],
        )
    )


def _stop_session(command: CommandRequest, *, data: dict) -> None:
    try:
        session = session_stop_request(partner=command.partner, session_ocpi_id=data["session_id"])
    except billing_errors.UnknownSession as exc:
        raise Refused(
            CommandResponseType.UNKNOWN_SESSION, f"Unknown session {data['session_id']!r}"
        ) from exc
    except billing_errors.NotYourSession as exc:
        raise Refused(
            CommandResponseType.REJECTED, "This session belongs to another partner"
        ) from exc
    except billing_errors.BillingError as exc:  # e.g. the session is not running
        raise Refused(
            CommandResponseType.REJECTED, str(exc) or "Session cannot be stopped"
        ) from exc
    CommandRequest.objects.filter(pk=command.pk).update(session_ocpi_id=session.ocpi_id)
    ask_charger(
        charger_gateway.gateway().stop_transaction(
            request_ref=command.request_ref, transaction_ref=session.transaction_ref
        )
    )


def _reserve_now(command: CommandRequest, *, data: dict) -> None:
    partner, token = command.partner, data["token"]
    location, evse, _ = _place(partner, data["location_id"], data.get("evse_uid"), None)
    _check_token_owner(partner, token)
    if evse is None:
        evse = _choose_evse(location, "RESERVABLE", missing=CommandResponseType.NOT_SUPPORTED)
    _usable(evse, "RESERVABLE", missing=CommandResponseType.NOT_SUPPORTED)
    expiry: datetime = data["expiry_date"]
    if expiry <= timezone.now():
        raise Refused(CommandResponseType.REJECTED, "expiry_date is in the past")
    cached = _cached_token(partner, token)
    if cached is not None and cached.blocked:
        raise Refused(CommandResponseType.REJECTED, "This token is blocked by the CPO")
    # The same location_id + reservation_id replaces the reservation (spec 13.3.4).
    reservation = (
        Reservation.objects.select_for_update()
        .filter(
            partner=partner,
            location=location,
            reservation_id__lower=data["reservation_id"].lower(),
        )
        .first()
    ) or Reservation(partner=partner, location=location)
    reservation.reservation_id = data["reservation_id"]
    reservation.evse = evse
    reservation.cdr_token = _cdr_token(token)
    reservation.authorization_reference = data.get("authorization_reference") or ""
    reservation.expiry_date = expiry
    reservation.status = Reservation.Status.PENDING
    reservation.last_updated = timezone.now()
    reservation.save()
    CommandRequest.objects.filter(pk=command.pk).update(reservation=reservation)
    ask_charger(
        charger_gateway.gateway().reserve_now(
            request_ref=command.request_ref,
            reservation_ref=reservation.pk,
            evse_pk=evse.pk,
            id_tag=token["uid"],
            expiry=expiry,
        )
    )


def _cancel_reservation(command: CommandRequest, *, data: dict) -> None:
    partner, reservation_id = command.partner, data["reservation_id"]
    theirs = Reservation.objects.select_for_update().filter(
        partner=partner, reservation_id__lower=reservation_id.lower()
    )
    reservation = (
        theirs.filter(status__in=_LIVE_RESERVATION).order_by("-created").first()
        or theirs.order_by("-created").first()
    )
    if reservation is None:
        others = Reservation.objects.filter(reservation_id__lower=reservation_id.lower())
        if others.exclude(partner=partner).exists():
            raise Refused(
                CommandResponseType.REJECTED, "This reservation belongs to another partner"
            )
        command_finish(
            command,
            CommandResultType.UNKNOWN_RESERVATION,
            message=f"Unknown reservation {reservation_id!r}",
        )
        return
    CommandRequest.objects.filter(pk=command.pk).update(reservation=reservation)
    if reservation.status not in _LIVE_RESERVATION:
        command_finish(
            command,
            CommandResultType.UNKNOWN_RESERVATION,
            message=f"Reservation {reservation_id!r} has ended ({reservation.status})",
        )
        return
    ask_charger(
        charger_gateway.gateway().cancel_reservation(
            request_ref=command.request_ref, reservation_ref=reservation.pk
        )
    )


def _unlock_connector(command: CommandRequest, *, data: dict) -> None:
    _, evse, connector = _place(
        command.partner, data["location_id"], data["evse_uid"], data["connector_id"]
    )
    _usable(evse, "UNLOCK_CAPABLE", missing=CommandResponseType.NOT_SUPPORTED)
    if connector_in_use_by_other(connector_pk=connector.pk, partner=command.partner):
        raise Refused(
            CommandResponseType.REJECTED, "The connector is in use by another provider's session"
        )
    ask_charger(
        charger_gateway.gateway().unlock_connector(
            request_ref=command.request_ref, connector_pk=connector.pk
        )
    )


# --- the asynchronous result ------------------------------------------------------------------
def _module_of(command: CommandRequest) -> str:
    return COMMANDS if command.kind in COMMAND_KINDS else "chargingprofiles"


def command_finish(
    command: CommandRequest,
    result: str,
    *,
    message: str = "",
    body: dict | None = None,
    state: str = State.ANSWERED,
) -> None:
    """Store the async result on the request and write its POST to the response_url (bare body:
    `{result, message?}` by default) into the outbox, in the caller's transaction."""
    if body is None:
        body = {"result": result}
        if message:
            body["message"] = display_text(message)
    CommandRequest.objects.filter(pk=command.pk).update(
        result=result,
        result_message=message[:255],
        state=state,
        answered_at=timezone.now(),
    )
    outbox.outbox_write_response(
        partner=command.partner,
        module=_module_of(command),
        object_key=f"{_module_of(command)}/{command.request_ref}",
        url=command.response_url,
        body=body,
        correlation_id=command.correlation_id,
    )


@receiver(charger_gateway.command_answered, dispatch_uid="ocpi.commands.command_answered")
def _command_answered(sender, request_ref: str, accepted: bool, reason: str = "", **kwargs):
    command_answer(request_ref=request_ref, accepted=accepted, reason=reason)


def command_answer(*, request_ref: str, accepted: bool, reason: str = "") -> CommandRequest | None:
    """The charger answered the request `request_ref`: store the result and send it.

    Requests that are not ours (e.g. a start from the admin) are ignored, as are answers to a
    request that is no longer waiting (answered, or timed out already)."""
    with transaction.atomic():
        command = (
            CommandRequest.objects.select_for_update()
            .select_related("partner")
            .filter(request_ref=request_ref)
            .first()
        )
        if command is None:
            return None
        if command.state != State.WAITING:
            logger.info(
                "Late answer to %s %s (accepted=%s, %s) ignored: already %s",
                command.kind, request_ref, accepted, reason, command.state,
            )  # fmt: skip
            return command
        message = "" if accepted else f"The charger answered: {reason}" if reason else ""
        if command.kind in COMMAND_KINDS:
            result = command_result_for(accepted=accepted, reason=reason)
            _apply_result(command, result)
            command_finish(command, result, message=message)
        else:
            from .charging_profiles import profile_answer  # (it imports this module)

            result, body = profile_answer(command, accepted=accepted, reason=reason)
            command_finish(command, result, message=message, body=body)
        command.refresh_from_db()
        return command


def _apply_result(command: CommandRequest, result: str) -> None:
    """What a result changes besides the request: the reservation's state."""
    reservation = command.reservation
    if reservation is None:
        return
    reservation = Reservation.objects.select_for_update().get(pk=reservation.pk)
    status = None
    if command.kind == Kind.RESERVE_NOW and reservation.status == Reservation.Status.PENDING:
        accepted = result == CommandResultType.ACCEPTED
        status = Reservation.Status.ACTIVE if accepted else Reservation.Status.REJECTED
    elif command.kind == Kind.CANCEL_RESERVATION and result == CommandResultType.ACCEPTED:
        if reservation.status in _LIVE_RESERVATION:
            status = Reservation.Status.CANCELLED
    if status is not None:
        reservation.status = status
        reservation.last_updated = timezone.now()
        reservation.save(update_fields=["status", "last_updated"])


# --- reservations the charger ended ---------------------------------------------------------------
@receiver(charger_gateway.reservation_ended, dispatch_uid="ocpi.commands.reservation_ended")
def _reservation_ended(sender, reservation_ref, reason: str = "", **kwargs):
    reservation_end(reservation_ref=reservation_ref, reason=reason)


def reservation_end(*, reservation_ref, reason: str) -> Reservation | None:
    """A reservation ended unused at the charger: EXPIRED, or CANCELLED. A cancellation the eMSP
    did not ask for is announced to it as CANCELED_RESERVATION at the RESERVE_NOW's
    response_url."""
    try:
        pk = int(reservation_ref)
    except (TypeError, ValueError):
        return None
    with transaction.atomic():
        reservation = Reservation.objects.select_for_update().filter(pk=pk).first()
        if reservation is None or reservation.status not in _LIVE_RESERVATION:
            return reservation
        expired = normalize_reason(reason) == "EXPIRED"
        reservation.status = Reservation.Status.EXPIRED if expired else Reservation.Status.CANCELLED
        reservation.last_updated = timezone.now()
        reservation.save(update_fields=["status", "last_updated"])
        if expired:
            return reservation
        reserve = (
            reservation.commands.filter(kind=Kind.RESERVE_NOW)
            .exclude(state=State.REJECTED)
            .select_related("partner")
            .order_by("-created", "-pk")
            .first()
        )
        if reserve is None:
            return reservation
        asked_to_cancel = reservation.commands.filter(
            Q(state=State.WAITING) | Q(result=CommandResultType.ACCEPTED),
            kind=Kind.CANCEL_RESERVATION,
            created__gte=reserve.created,
        ).exists()
        if not asked_to_cancel:
            outbox.outbox_write_response(
                partner=reserve.partner,
                module=COMMANDS,
                object_key=f"{COMMANDS}/{reserve.request_ref}",
                url=reserve.response_url,
                body={
                    "result": CommandResultType.CANCELED_RESERVATION,
                    "message": display_text("The CPO had to cancel this reservation"),
                },
                correlation_id=reserve.correlation_id,
            )
        return reservation


# --- the session a START_SESSION led to -----------------------------------------------------------
@receiver(session_changed, dispatch_uid="ocpi.commands.session_changed")
def _session_changed(sender, session, created: bool = False, **kwargs):
    """Note on a START_SESSION request the session it started (for staff; billing matched the
    charger's transaction to the request by its request_ref)."""
    if not created:
        return
    refs = PendingStart.objects.filter(session=session).values_list("request_ref", flat=True)
    CommandRequest.objects.filter(
        request_ref__in=list(refs), kind=Kind.START_SESSION, session_ocpi_id=""
    ).update(session_ocpi_id=session.ocpi_id)


# --- timeouts -----------------------------------------------------------------------------------
def commands_expire(*, now: datetime | None = None) -> int:
    """Answer TIMEOUT (REJECTED for charging profile requests, which have no TIMEOUT result) for
    requests the charger did not answer within their window; returns how many."""
    now = now or timezone.now()
    expired = 0
    waiting = CommandRequest.objects.filter(state=State.WAITING, created__lte=now).order_by("pk")
    for command in waiting.only("pk", "created", "timeout_seconds"):
        if command.created + timedelta(seconds=answer_window(command.timeout_seconds)) > now:
            continue
        with transaction.atomic():
            locked = (
                CommandRequest.objects.select_for_update(skip_locked=True)
                .select_related("partner")
                .filter(pk=command.pk, state=State.WAITING)
                .first()
            )
            if locked is None:
                continue
            message = f"The charger did not answer within {locked.timeout_seconds} seconds"
            if locked.kind in COMMAND_KINDS:
                command_finish(
                    locked, CommandResultType.TIMEOUT, message=message, state=State.TIMED_OUT
                )
            else:
                command_finish(
                    locked, "REJECTED", body={"result": "REJECTED"}, state=State.TIMED_OUT
                )
                CommandRequest.objects.filter(pk=locked.pk).update(result_message=message)
            expired += 1
    if expired:
        logger.info("Commands: %d timed out", expired)
    return expired


@shared_task(name="ocpi.tasks.expire_commands_task", acks_late=True, ignore_result=True)
def expire_commands_task() -> int:
    """Beat (and each command's own countdown): send TIMEOUT for unanswered commands."""
    return commands_expire()
