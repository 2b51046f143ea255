"""Celery tasks of the OCPI layer: thin interfaces over the services. Tasks take ids only.

Push delivery (DESIGN.md "Life of a change"): `deliver_outbox_task(partner_id)` is queued after
each commit that wrote outbox rows; it runs `outbox_deliver` and, when that run did something and
rows stay pending, schedules itself again for the moment the next row is due (its backoff). Runs
that find nothing to do end the chain, so duplicate messages do not multiply. `sweep_outbox_task`
(beat, every OUTBOX_SWEEP_SECONDS) queues delivery for every partner with a due row, so nothing
depends on one broker message surviving (a lost message, a killed worker, a long backoff).
"""

import logging

from celery import shared_task
from django.db import DatabaseError
from django.utils import timezone

from .commands import expire_commands_task  # noqa: F401
from .delivery import backoff_seconds, outbox_deliver, outbox_partners_due
from .reconciliation import reconcile_cdrs_task  # noqa: F401
from .token_sync import sync_partner_tokens_task, sync_tokens_task  # noqa: F401

logger = logging.getLogger(__name__)

# A next attempt further away than this is left to the sweeper rather than parked in the broker
# as a long-ETA message (which Redis redelivers after its visibility timeout anyway).
MAX_FOLLOW_UP_SECONDS = 300.0


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=10)
def deliver_outbox_task(self, partner_id: int) -> None:
    try:
        report = outbox_deliver(partner_id=partner_id)
    except DatabaseError as exc:
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries + 1)) from exc
    if report.more:
        deliver_outbox_task.apply_async((partner_id,), countdown=0)
        return
    if report.did_work and report.next_due_at is not None:
        countdown = max((report.next_due_at - timezone.now()).total_seconds(), 0.0)
        if countdown <= MAX_FOLLOW_UP_SECONDS:
            deliver_outbox_task.apply_async((partner_id,), countdown=countdown)


@shared_task(acks_late=True, ignore_result=True)
def sweep_outbox_task() -> int:
    """Queue delivery for every registered partner with rows due; returns how many."""
    partner_ids = outbox_partners_due()
    for partner_id in partner_ids:
        deliver_outbox_task.delay(partner_id)
    if partner_ids:
        logger.info("Outbox sweep: delivery queued for partners %s", partner_ids)
    return len(partner_ids)
