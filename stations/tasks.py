"""Celery tasks of the charge network: thin interfaces over the simulator. Tasks take ids only."""

import logging

from celery import shared_task

from . import simulator

logger = logging.getLogger(__name__)


@shared_task(name="stations.tasks.simulator_tick_task", ignore_result=True)
def simulator_tick_task() -> int:
    """Beat, every SIMULATOR_TICK_SECONDS: advance the simulated chargers; returns how many
    transactions it advanced."""
    report = simulator.simulator_tick()
    if report.stopped or report.reservations_expired:
        logger.info("Simulator tick: %s", report)
    return report.advanced


@shared_task(name="stations.tasks.simulator_answer_task", acks_late=True, ignore_result=True)
def simulator_answer_task(command_id: int) -> None:
    """A simulated charger answers one command (idempotent)."""
    simulator.answer_command(command_id)
