"""The OCPI traffic log: every request a partner makes to us and every call we make to a partner,
with its response, kept for TRAFFIC_LOG_DAYS (ocpi.models_traffic.TrafficLog).

Hooks: `record_inbound` at the end of ocpi.middleware.OCPIRequestMiddleware (every /ocpi/ path,
errors and 404s included) and `record_outbound` in ocpi.client.OCPIClient.request (every reply,
timeout or refused connection). Nothing here may break the request being logged: a failure to
build or write a row is logged and dropped. ocpi.delivery makes its calls inside
`delivering(row_id)`, so their rows point at the outbox row they delivered; staff may send such
a push again from its row (`traffic_resend`).

Secrets: the Authorization header (and cookies) are stored as REDACTED, and so is the `token` of
Credentials objects in bodies (ocpi.redact). Bodies are cut at TRAFFIC_LOG_BODY_BYTES after the
redaction; the row keeps the real size.

Outside the request's transaction. A row must survive the rollback of the work that caused it
(a registration answered 3001, a delivery that raised), so rows are never written inside a
transaction of the caller. They are collected per thread and written:
- inbound: once the response has gone out to the partner (Django's `request_finished`, sent
  when the server closes the response), so the INSERT and its commit add nothing to the
  partner's wait; with ATOMIC_REQUESTS the view's transaction has ended by then;
- outbound: at once when no transaction is open (calls made in autocommit mode);
- otherwise after the transaction commits (`on_commit`), or, if it rolled back, at the end of the
  unit of work: Django's `request_finished` and Celery's `task_postrun`, where no transaction is
  open any more. A row collected in a rolled-back transaction is therefore still written, with
  the time it was recorded.
This keeps the log on the default database connection, with no second connection per worker,
and inside a test's transaction when tests run in one (there `on_commit` callbacks run only when
the test asks: django_capture_on_commit_callbacks(execute=True)). What is lost: rows collected in
a transaction of a process that dies before the unit of work ends.
"""

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta

import orjson
import requests
from celery import shared_task
from celery.signals import after_setup_logger, after_setup_task_logger, task_postrun
from django.conf import settings
from django.core.signals import request_finished
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from billing.cdrs import CDRError, cdr_request_delivery

from . import outbox
from .models import OutboxMessage, Partner
from .models_traffic import TrafficLog
from .redact import RedactTokensFilter, redact_body, redact_headers

logger = logging.getLogger(__name__)

#: Rows held per thread while waiting for a transaction to end; beyond this the oldest go.
MAX_PENDING = 1000
#: Response bodies larger than this are not parsed whole for their OCPI status code.
MAX_STATUS_PARSE_BYTES = 64 * 1024
_STATUS_RE = re.compile(rb'"status_code"\s*:\s*(\d{1,4})\b')
_MAX_HEADERS = 100
_MAX_HEADER_VALUE = 2000

_local = threading.local()
#: The outbox row the calls being made deliver (`delivering`).
_outbox_message_id: ContextVar[int | None] = ContextVar("traffic_outbox_message", default=None)


# --- settings ---------------------------------------------------------------------------------
def enabled() -> bool:
    return getattr(settings, "TRAFFIC_LOG_ENABLED", True)


def body_limit() -> int:
    return getattr(settings, "TRAFFIC_LOG_BODY_BYTES", 16384)


# --- building rows ----------------------------------------------------------------------------
def _clean(text: str) -> str:
    # PostgreSQL text and jsonb cannot hold NUL characters.
    return text.replace("\x00", "\ufffd")


def _headers(headers) -> dict[str, str]:
    items = list(redact_headers(headers).items())[:_MAX_HEADERS]
    return {_clean(name): _clean(value[:_MAX_HEADER_VALUE]) for name, value in items}


def _body(raw: bytes | str | None) -> tuple[str, int]:
    """(redacted text cut at the size cap, size in bytes before cutting)."""
    if raw is None:
        return "", 0
    if isinstance(raw, str):
        raw = raw.encode("utf-8", errors="replace")
    size = len(raw)
    text = redact_body(raw.decode("utf-8", errors="replace"))
    limit = body_limit()
    if len(text) > limit:
        text = text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")
    return _clean(text), size


def _ocpi_status(content: bytes | None, data=None) -> int | None:
    """The envelope's status_code, if the body is an envelope."""
    if not isinstance(data, dict):
        if not content or content[:1] != b"{":
            return None
        if len(content) > MAX_STATUS_PARSE_BYTES:
            # A large page: the envelope's members sit before or after `data`; not parsed whole.
            found = _STATUS_RE.findall(content[:200]) or _STATUS_RE.findall(content[-200:])
            return int(found[-1]) if found else None
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError:
            return None
    status = data.get("status_code") if isinstance(data, dict) else None
    if isinstance(status, int) and not isinstance(status, bool) and 0 <= status <= 32767:
        return status
    return None


def _partner_id(partner) -> int | None:
    return partner.pk if isinstance(partner, Partner) and partner.pk else None


@contextmanager
def delivering(outbox_message_id: int) -> Iterator[None]:
    """Calls recorded inside deliver this outbox row: their rows point at it."""
    token = _outbox_message_id.set(outbox_message_id)
    try:
        yield
    finally:
        _outbox_message_id.reset(token)


def _elapsed_ms(started: float) -> int:
    return max(int((time.monotonic() - started) * 1000), 0)


def record_inbound(request, response, *, started: float) -> None:
    """Log a request a partner made to an /ocpi/ path, and our response."""
    if not enabled():
        return
    try:
        try:
            raw_request = request.body
        except Exception:  # noqa: BLE001 - too large or unreadable: answered without reading it
            raw_request = None
        request_body, request_size = _body(raw_request)
        if raw_request is None:
            request_size = int(request.META.get("CONTENT_LENGTH") or 0)
        streaming = getattr(response, "streaming", False)
        response_body, response_size = _body(None if streaming else response.content)
        entry = TrafficLog(
            direction=TrafficLog.Direction.INBOUND,
            # DRF sets `auth` on the Django request too once it authenticated the caller.
            partner_id=_partner_id(getattr(request, "auth", None)),
            method=request.method[:10],
            url=_clean(request.get_full_path())[:2048],
            request_headers=_headers(request.headers),
            request_body=request_body,
            request_size=request_size,
            http_status=response.status_code,
            ocpi_status=None if streaming else _ocpi_status(
                response.content, getattr(response, "data", None)
            ),
            response_headers=_headers(response.headers),
            response_body=response_body,
            response_size=response_size,
            duration_ms=_elapsed_ms(started),
            request_id=_clean(str(getattr(request, "ocpi_request_id", "")))[:100],
            correlation_id=_clean(str(getattr(request, "ocpi_correlation_id", "")))[:100],
        )  # fmt: skip
    except Exception:
        logger.exception("Traffic log: cannot record %s %s", request.method, request.path)
        return
    _collect(entry, after_response=True)


def record_outbound(
    partner: Partner | None,
    method: str,
    url: str,
    *,
    headers: dict,
    body: bytes | str | None,
    started: float,
    params: dict | None = None,
    response: requests.Response | None = None,
    error: BaseException | str | None = None,
) -> None:
    """Log a call we made to a partner: its response, or the error that stood in for one."""
    if not enabled():
        return
    try:
        if response is not None:
            full_url = response.url or url
        else:
            try:
                full_url = requests.Request(method, url, params=params).prepare().url
            except Exception:  # noqa: BLE001 - an unusable URL is logged as given
                full_url = url
        request_body, request_size = _body(body)
        response_body, response_size = _body(response.content if response is not None else None)
        if isinstance(error, BaseException):
            error = f"{error.__class__.__name__}: {error}"
        entry = TrafficLog(
            direction=TrafficLog.Direction.OUTBOUND,
            partner_id=_partner_id(partner),
            method=method.upper()[:10],
            url=_clean(str(full_url))[:2048],
            request_headers=_headers(headers),
            request_body=request_body,
            request_size=request_size,
            http_status=response.status_code if response is not None else None,
            ocpi_status=_ocpi_status(response.content) if response is not None else None,
            response_headers=_headers(response.headers) if response is not None else {},
            response_body=response_body,
            response_size=response_size,
            error=_clean(error or "")[:500],
            duration_ms=_elapsed_ms(started),
            request_id=_clean(str(headers.get("X-Request-ID", "")))[:100],
            correlation_id=_clean(str(headers.get("X-Correlation-ID", "")))[:100],
            outbox_message_id=_outbox_message_id.get(),
        )
    except Exception:
        logger.exception("Traffic log: cannot record %s %s", method, url)
        return
    _collect(entry)


# --- writing outside the caller's transaction ---------------------------------------------------
def _pending() -> list[TrafficLog]:
    if not hasattr(_local, "pending"):
        _local.pending = []
    return _local.pending


def _collect(entry: TrafficLog, *, after_response: bool = False) -> None:
    pending = _pending()
    if len(pending) >= MAX_PENDING:
        logger.warning(
            "Traffic log: %d rows waiting for a transaction; oldest dropped", MAX_PENDING
        )
        del pending[0]
    pending.append(entry)
    try:
        if transaction.get_connection().in_atomic_block:
            transaction.on_commit(flush, robust=True)
        elif not after_response:
            flush()
        # else: request_finished (end_of_unit) writes it once the response has gone out
    except Exception:
        logger.exception("Traffic log: cannot schedule the writing of a row")


def flush() -> int:
    """Write the rows collected by this thread; returns how many were written."""
    pending = _pending()
    if not pending:
        return 0
    entries = pending[:]
    pending.clear()
    try:
        outermost = not transaction.get_connection().in_atomic_block
        with transaction.atomic():
            if outermost:
                _commit_without_waiting_for_disk()
            TrafficLog.objects.bulk_create(entries)
        return len(entries)
    except (OperationalError, InterfaceError) as exc:
        logger.warning("Traffic log: database unavailable, %d row(s) lost: %s", len(entries), exc)
        return 0
    except DatabaseError:
        pass  # a row the database refused: write the others one by one
    except Exception as exc:  # noqa: BLE001 - e.g. no database at all (unit tests)
        logger.warning("Traffic log: %d row(s) not written: %s", len(entries), exc)
        return 0
    written = 0
    for entry in entries:  # one by one: a partner deleted meanwhile must not lose the others
        entry.pk = None
        try:
            try:
                with transaction.atomic():
                    entry.save(force_insert=True)
            except IntegrityError:  # its partner (and so its outbox row) deleted meanwhile
                entry.partner_id = entry.outbox_message_id = None
                with transaction.atomic():
                    entry.save(force_insert=True)
            written += 1
        except DatabaseError:
            logger.warning("Traffic log: a row could not be written", exc_info=True)
    return written


def _commit_without_waiting_for_disk() -> None:
    """PostgreSQL: this transaction commits without waiting for its WAL to reach the disk
    (asynchronous commit). A log row is not business data: a crash of the database server may
    lose the last fraction of a second of rows (never corrupts anything), and in exchange a
    worker thread does not wait for an fsync after every request it served."""
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def end_of_unit(**kwargs) -> None:
    """A request or task ended: write what a rolled-back transaction left collected."""
    try:
        if not transaction.get_connection().in_atomic_block:
            flush()
    except Exception:
        logger.exception("Traffic log: flushing at the end of a request or task failed")


def discard_pending() -> None:
    """Forget rows not written yet (tests: start from a clean slate)."""
    _pending().clear()


request_finished.connect(end_of_unit, dispatch_uid="ocpi.traffic.request_finished")
task_postrun.connect(end_of_unit, dispatch_uid="ocpi.traffic.task_postrun")


# --- resending failed pushes --------------------------------------------------------------------
@dataclass
class ResendReport:
    """What `traffic_resend` did, in words for staff."""

    queued: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def traffic_resend(*, traffic_ids: list[int]) -> ResendReport:
    """Staff: send again the pushes behind these failed outbound calls, as the outbox admin's
    "retry now" does (ocpi.delivery.outbox_retry: due now, delivered after commit), a CDR as the
    CDR admin's "retry delivery" does (billing.cdrs.cdr_request_delivery). Left alone, and
    reported: inbound rows, calls that succeeded, calls that delivered no outbox row, and outbox
    rows that were delivered or superseded since."""
    from .delivery import outbox_retry  # ocpi.delivery imports ocpi.client, which imports us

    report = ResendReport()
    rows = TrafficLog.objects.filter(pk__in=traffic_ids)
    failed = set(rows.failed().values_list("pk", flat=True))
    left, message_ids = Counter(), set()
    for pk, direction, message_id in rows.values_list("pk", "direction", "outbox_message_id"):
        if direction != TrafficLog.Direction.OUTBOUND:
            left["inbound"] += 1
        elif pk not in failed:
            left["succeeded"] += 1
        elif message_id is None:
            left["not a push from the outbox"] += 1
        else:
            message_ids.add(message_id)
    report.skipped += [f"{count} row(s) {why}" for why, count in left.items()]

    with transaction.atomic():
        cdr_ids, retry_ids = set(), []
        messages = OutboxMessage.objects.select_for_update().filter(pk__in=message_ids)
        for message in messages.order_by("pk"):
            name = f"outbox #{message.pk} ({message.method} {message.object_key})"
            if message.state == OutboxMessage.State.SENT:
                report.skipped.append(f"{name}: delivered since")
            elif message.state == OutboxMessage.State.SUPERSEDED:
                report.skipped.append(f"{name}: superseded ({message.last_error[:100]})")
            elif (cdr := outbox.cdr_of_row(message)) is None:
                retry_ids.append(message.pk)
                report.queued.append(name)
            elif cdr.pk not in cdr_ids:  # a CDR once: its request retries all its rows
                cdr_ids.add(cdr.pk)
                try:
                    report.queued += cdr_request_delivery(cdr=cdr)
                except CDRError as exc:
                    report.skipped.append(f"{name}: {exc}")
        if retry_ids:
            outbox_retry(message_ids=retry_ids)
    return report


# --- retention ----------------------------------------------------------------------------------
def traffic_purge(*, days: int | None = None, batch: int = 5000) -> int:
    """Delete rows older than `days` (TRAFFIC_LOG_DAYS; 0 keeps everything), in batches so no
    single statement holds locks for long. Returns how many rows went."""
    days = settings.TRAFFIC_LOG_DAYS if days is None else days
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    deleted = 0
    while True:
        ids = list(
            TrafficLog.objects.filter(created__lt=cutoff)
            .order_by()
            .values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return deleted
        deleted += TrafficLog.objects.filter(pk__in=ids).delete()[0]


@shared_task(name="ocpi.traffic.purge_traffic_log_task", ignore_result=True)
def purge_traffic_log_task() -> int:
    deleted = traffic_purge()
    if deleted:
        logger.info(
            "Traffic log: purged %d rows older than %s days", deleted, settings.TRAFFIC_LOG_DAYS
        )
    return deleted


# --- log files ----------------------------------------------------------------------------------
def _redact_celery_handlers(logger=None, **kwargs) -> None:
    """A Celery worker replaces the root handlers settings.LOGGING installed: give its handlers
    the same token filter."""
    for handler in getattr(logger, "handlers", []):
        if not any(isinstance(f, RedactTokensFilter) for f in handler.filters):
            handler.addFilter(RedactTokensFilter())


after_setup_logger.connect(_redact_celery_handlers, weak=False)
after_setup_task_logger.connect(_redact_celery_handlers, weak=False)
