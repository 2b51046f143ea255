"""Delivering the push outbox to a partner (DESIGN.md "Life of a change", PROTOCOL.md §1.13).

Guarantees of `outbox_deliver`:
- Per object (`object_key`) rows go out oldest first, one at a time: a row is sent only when no
  older row of its key is still PENDING or FAILED ("the head" of its key). Different objects do
  not wait for each other.
- Each row is sent inside its own transaction while holding its row lock
  (`select_for_update(skip_locked=True)`), so concurrent runs for the same partner (a task per
  commit, the sweeper, a retry) never send a row twice, nor a row while an older one of its key is
  in flight. Running delivery twice is harmless. (On SQLite the lock is a no-op; SQLite
  serialises writers itself.)
- The URL comes from the partner's endpoints at delivery time (ocpi.client.join_url), the token,
  encoding and timeout from its compatibility profile (ocpi.client.OCPIClient). A RESPONSE_URL
  row (an async command or charging profile result) goes to the absolute URL in its `path`, with
  the X-Correlation-ID of the request it answers.
- Success (OCPI 1xxx): SENT, with the HTTP/OCPI status and the Location header (CDR POST).
- PartnerUnavailable (timeout, refused connection, HTTP 5xx, OCPI 3xxx): attempts + 1, retried
  at now + OUTBOX_BACKOFF_BASE * 2^(attempts-1), capped at OUTBOX_BACKOFF_MAX; later rows of that
  object wait (their order matters), other objects go on.
- PartnerRejected (HTTP 4xx, OCPI 2xxx, a reply that is not OCPI):
  - a rejected PATCH is replaced, once, by a PUT of the object's current full state at the same
    URL (PROTOCOL.md §1.11: when a PATCH fails, e.g. the receiver lost the object, send it whole),
    and that PUT is tried at once;
  - anything else becomes FAILED with the reason, and BLOCKS its object: the later rows of that
    object_key stay PENDING, unsent, until staff retry the failed row ("retry now") or skip it
    ("mark superseded/skip") in the admin. Later updates must not silently overtake a change the
    partner never accepted (a PATCH on top of a missing PUT would be rejected too, or worse,
    accepted against stale data).
- A partner that is not REGISTERED gets nothing; its rows wait. A row whose module the partner
  no longer has an endpoint for becomes FAILED.
- CDR POSTs (module cdrs) also keep their CDR's delivery state (billing.models_cdrs.CDR): on
  success DELIVERED with sent_at and the Location header the partner returned (made absolute
  against the endpoint URL); FAILED when the row fails. A CDR is delivered once: a row whose CDR
  is DELIVERED already is never sent (SUPERSEDED, counted as skipped), and HTTP 409 ("CDR already
  exists") counts as delivered, without a Location: an earlier POST arrived (one that timed out,
  or one sent by a worker killed before it could record the answer, whose attempt was rolled
  back, so a 409 may come on the row's first recorded attempt). CDR ids are ours, so the partner
  can only have it from us (PROTOCOL.md: key CDRs by id and tolerate "already exists").
"""

import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urljoin

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from . import outbox, traffic
from .client import OCPIClient, OCPIReply, join_url
from .exceptions import PartnerRejected, PartnerUnavailable
from .models import OutboxMessage, Partner
from .outbox import CDR

logger = logging.getLogger(__name__)

State = OutboxMessage.State
# Rows one run delivers at most; the task queues the next run at once when more are due.
DELIVERY_BATCH = 200


@dataclass
class DeliveryReport:
    """What one `outbox_deliver` run did, and when the partner has something due next."""

    sent: int = 0
    deferred: int = 0
    failed: int = 0
    converted: int = 0  # rejected PATCHes turned into PUTs of the current state
    skipped: int = 0  # CDR POSTs not sent: their CDR was delivered already
    more: bool = False  # stopped at the batch size with rows still due
    next_due_at: datetime | None = None

    @property
    def did_work(self) -> bool:
        return bool(self.sent or self.deferred or self.failed or self.converted or self.skipped)


def backoff_seconds(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed attempt (1, 2, ...): doubling, capped."""
    base = float(settings.OUTBOX_BACKOFF_BASE)
    cap = float(settings.OUTBOX_BACKOFF_MAX)
    return min(base * 2 ** max(attempts - 1, 0), cap)


# --- selectors ------------------------------------------------------------------------------
_UNSENT = (State.PENDING, State.FAILED)


def _pending_heads(rows: QuerySet[OutboxMessage]) -> list[tuple[int, int, datetime]]:
    """(id, partner_id, next_attempt_at) of the PENDING rows among `rows` that have no older
    PENDING or FAILED row of their partner and object ("heads"), oldest first.

    One ordered pass over the unsent rows (the partial index outbox_unsent_object_idx), in
    Python: linear, whatever the planner believes. The same rule as an SQL anti-join is planned,
    with statistics from before a burst of rows, as a nested loop that rescans every unsent row
    of the partner for each one (bench/push.py: 95 ms per pick at 600 rows, and quadratic)."""
    unsent = (
        rows.filter(state__in=_UNSENT)
        .order_by("partner_id", "object_key", "id")
        .values_list("id", "partner_id", "object_key", "state", "next_attempt_at")
    )
    heads, previous = [], None
    for pk, partner_id, object_key, state, due_at in unsent.iterator(chunk_size=5000):
        if (partner_id, object_key) != previous and state == State.PENDING:
            heads.append((pk, partner_id, due_at))
        previous = (partner_id, object_key)
    heads.sort()
    return heads


def outbox_due_head_ids(*, partner_id: int, now: datetime | None = None) -> list[int]:
    """Ids of the partner's heads that are due, oldest first."""
    now = now or timezone.now()
    rows = OutboxMessage.objects.filter(partner_id=partner_id)
    return [pk for pk, _, due_at in _pending_heads(rows) if due_at <= now]


def outbox_next_due_at(*, partner_id: int) -> datetime | None:
    """When the partner's next row becomes due (rows blocked behind an older one excluded)."""
    heads = _pending_heads(OutboxMessage.objects.filter(partner_id=partner_id))
    return min((due_at for _, _, due_at in heads), default=None)


def outbox_partners_due(*, now: datetime | None = None) -> list[int]:
    """Ids of REGISTERED partners with at least one row due for delivery."""
    now = now or timezone.now()
    rows = OutboxMessage.objects.filter(partner__status=Partner.Status.REGISTERED)
    return sorted({partner_id for _, partner_id, due_at in _pending_heads(rows) if due_at <= now})


# --- the service ----------------------------------------------------------------------------
def outbox_deliver(*, partner_id: int, batch: int = DELIVERY_BATCH) -> DeliveryReport:
    """Deliver the partner's due rows (see the module docstring for the guarantees).

    The due heads are listed once, then each is locked (skipping rows another run holds) and,
    if still PENDING, sent in a transaction of its own; the list is made again when it runs out,
    as sending a head makes the next row of its object the head. A head listed stays a head
    until it is sent: rows are only ever added with higher ids, and a SENT or SUPERSEDED row
    never becomes unsent again (staff retry only PENDING and FAILED ones). A list of which
    nothing could be sent (other runs hold its rows) ends the run."""
    report = DeliveryReport()
    partner = Partner.objects.filter(pk=partner_id).first()
    if partner is None or not partner.is_authorized_to_receive:
        return report
    _deliver_heads(report, partner, OCPIClient(partner), batch)
    report.next_due_at = outbox_next_due_at(partner_id=partner.pk)
    return report


def _deliver_heads(report: DeliveryReport, partner: Partner, client: OCPIClient, batch: int):
    partner_id = partner.pk
    done, candidates = 0, outbox_due_head_ids(partner_id=partner_id)
    while candidates:
        sent_from_list = 0
        queue = deque(candidates)
        while queue and done < batch:
            row_id = queue.popleft()
            with transaction.atomic():
                row = (
                    OutboxMessage.objects.select_for_update(skip_locked=True)
                    .filter(pk=row_id, state=State.PENDING, next_attempt_at__lte=timezone.now())
                    .first()
                )
                if row is None:
                    continue  # sent, or held by another run, meanwhile
                outcome = _deliver_row(partner, client, row)
            setattr(report, outcome, getattr(report, outcome) + 1)
            done += 1
            sent_from_list += 1
            if outcome == "converted":
                queue.appendleft(row_id)  # the PUT that replaced a rejected PATCH goes at once
        if not sent_from_list or done >= batch:
            break
        candidates = outbox_due_head_ids(partner_id=partner_id)
    if done >= batch:
        report.more = bool(outbox_due_head_ids(partner_id=partner_id))


def _deliver_row(partner: Partner, client: OCPIClient, row: OutboxMessage) -> str:
    """Send one locked row; returns the report field to count it under."""
    now = timezone.now()
    if row.module == outbox.CDRS and _cdr_delivered_already(row):
        return "skipped"
    if row.interface_role == outbox.RESPONSE_URL:
        url = row.path  # an absolute URL the partner gave (a response_url)
    else:
        base_url = partner.endpoint_url(row.module, row.interface_role)
        if not base_url:
            return _fail(row, f"{partner} has no {row.interface_role} endpoint for {row.module}")
        url = join_url(base_url, row.path) if row.path else base_url
    if row.correlation_id:
        client = OCPIClient(partner, correlation_id=row.correlation_id)
    row.attempts += 1
    try:
        with traffic.delivering(row.pk):  # the traffic log links the call to this row
            body = row.body.encode("utf-8") if row.body else None
            reply = client.request(row.method, url, body=body)
    except PartnerUnavailable as exc:
        delay = backoff_seconds(row.attempts)
        row.next_attempt_at = now + timedelta(seconds=delay)
        row.last_error = str(exc)[:2000]
        row.response_status = exc.http_status
        row.response_ocpi_status = exc.ocpi_status
        row.save(update_fields=_RESULT_FIELDS)
        logger.info("Outbox #%s to %s deferred %.1fs: %s", row.pk, partner, delay, exc)
        return "deferred"
    except PartnerRejected as exc:
        row.response_status = exc.http_status
        row.response_ocpi_status = exc.ocpi_status
        if row.method == "PATCH" and _convert_to_put(row, exc, version=partner.version):
            return "converted"
        if row.module == outbox.CDRS and exc.http_status == 409:
            # The partner has the CDR: an earlier POST arrived. Not only when attempts > 1: a
            # worker killed mid-POST rolls its attempt back (tests/faults/test_worker_crash.py).
            _mark_sent(row, OCPIReply(exc.http_status, exc.ocpi_status, None))
            row.last_error = f"Partner already had the CDR: {exc}"[:2000]
            row.save(update_fields=["last_error"])
            _cdr_delivered(row, url)
            return "sent"
        return _fail(row, str(exc))
    _mark_sent(row, reply)
    if row.module == outbox.CDRS:
        _cdr_delivered(row, url)
    return "sent"


_RESULT_FIELDS = [
    "state",
    "method",
    "body",
    "attempts",
    "next_attempt_at",
    "last_error",
    "response_status",
    "response_ocpi_status",
    "response_location",
    "sent_at",
]


def _mark_sent(row: OutboxMessage, reply: OCPIReply) -> None:
    row.state = State.SENT
    row.sent_at = timezone.now()
    row.response_status = reply.http_status
    row.response_ocpi_status = reply.ocpi_status
    location = next((v for k, v in reply.headers.items() if k.lower() == "location"), "")
    row.response_location = location[:512]
    row.save(update_fields=_RESULT_FIELDS)


def _fail(row: OutboxMessage, reason: str) -> str:
    row.state = State.FAILED
    row.last_error = reason[:2000]
    row.save(update_fields=_RESULT_FIELDS)
    if row.module == outbox.CDRS:
        _cdr_update(row, delivery=CDR.Delivery.FAILED)
    logger.warning("Outbox #%s to partner %s failed: %s", row.pk, row.partner_id, reason)
    return "failed"


def _convert_to_put(row: OutboxMessage, exc: PartnerRejected, *, version: str) -> bool:
    """Turn a rejected PATCH into a PUT of the current full object in the partner's `version`,
    due now (PROTOCOL.md §1.11)."""
    body = outbox.render_current(row.module, row.path, version)
    if body is None:
        return False
    row.method = "PUT"
    row.body = body
    row.next_attempt_at = timezone.now()
    row.last_error = f"PATCH rejected, resending the full object as a PUT: {exc}"[:2000]
    row.save(update_fields=_RESULT_FIELDS)
    logger.info("Outbox #%s: PATCH rejected, converted to a full PUT: %s", row.pk, exc)
    return True


# --- CDR delivery state -----------------------------------------------------------------------
def _cdr_update(row: OutboxMessage, **fields) -> None:
    cdr = outbox.cdr_of_row(row)
    if cdr is not None:
        CDR.objects.filter(pk=cdr.pk).update(**fields)


def _cdr_delivered(row: OutboxMessage, url: str) -> None:
    location = urljoin(url, row.response_location) if row.response_location else ""
    _cdr_update(
        row,
        delivery=CDR.Delivery.DELIVERED,
        sent_at=row.sent_at,
        partner_location_url=location[:512],
    )


def _cdr_delivered_already(row: OutboxMessage) -> bool:
    """Whether the row's CDR was delivered (by another row): then this row is not sent."""
    cdr = outbox.cdr_of_row(row)
    if cdr is None or cdr.delivery != CDR.Delivery.DELIVERED:
        return False
    row.state = State.SUPERSEDED
    row.last_error = f"CDR {cdr.ocpi_id} was delivered already; a CDR is sent once."
    row.save(update_fields=["state", "last_error"])
    logger.warning("Outbox #%s not sent: CDR %s delivered already", row.pk, cdr.ocpi_id)
    return True


# --- staff actions ---------------------------------------------------------------------------
def _enqueue_on_commit(partner_ids: set[int]) -> None:
    for partner_id in sorted(partner_ids):
        outbox.schedule_delivery(partner_id)


@transaction.atomic
def outbox_retry(*, message_ids: list[int]) -> int:
    """Staff: send these PENDING or FAILED rows now (FAILED ones become PENDING again)."""
    rows = OutboxMessage.objects.select_for_update().filter(
        pk__in=message_ids, state__in=(State.PENDING, State.FAILED)
    )
    partner_ids = set(rows.values_list("partner_id", flat=True))
    count = rows.update(state=State.PENDING, next_attempt_at=timezone.now())
    _enqueue_on_commit(partner_ids)
    return count


@transaction.atomic
def outbox_skip(*, message_ids: list[int]) -> int:
    """Staff: give up on these PENDING or FAILED rows (SUPERSEDED), unblocking their objects."""
    rows = OutboxMessage.objects.select_for_update().filter(
        pk__in=message_ids, state__in=(State.PENDING, State.FAILED)
    )
    partner_ids = set(rows.values_list("partner_id", flat=True))
    count = 0
    for row in rows:
        row.state = State.SUPERSEDED
        row.last_error = (f"Skipped by staff. {row.last_error}").strip()[:2000]
        row.save(update_fields=["state", "last_error"])
        count += 1
    _enqueue_on_commit(partner_ids)
    return count
