"""The seam between the platform and the chargers (DESIGN.md "Life of a remote start").

Everything above (billing, ocpi) talks to chargers only through `gateway()`, an object with the
`ChargerGateway` methods; everything the chargers report comes back as the signals below. The
built-in simulator (stations/simulator.py) is the default implementation; an OCPP 1.6J/2.0.1
central system can implement the same interface (settings.CHARGER_GATEWAY names the class)
without touching the OCPI layer.

Commands are asynchronous, as in OCPP: a method returns at once (False if the charger cannot
even be asked, e.g. unknown or offline) and the charger's answer arrives later as
`command_answered(request_ref=..., accepted=..., reason=...)`.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.dispatch import Signal
from django.utils.module_loading import import_string

# --- what chargers report (receivers: billing services, the OCPI layer) ----------------------
#: The answer to a command sent with request_ref: accepted (bool), reason (str, e.g. "OCCUPIED",
#: "FAULTED", "TIMEOUT", "UNKNOWN_TRANSACTION").
command_answered = Signal()  # request_ref, accepted, reason
#: A charging transaction started at a connector: transaction_ref (str, unique), evse, connector,
#: id_tag, meter_start_wh (Decimal), timestamp, request_ref (the remote start's, or None for a
#: local swipe), reservation_ref (or None).
transaction_started = Signal()
#: Meter values of a running transaction: transaction_ref, energy_wh (Decimal, meter reading),
#: power_w (Decimal, now), current_a (Decimal, now), charging (bool: the EV draws power; False
#: means connected but not charging, i.e. PARKING_TIME), timestamp.
meter_values = Signal()
#: A transaction ended: transaction_ref, meter_stop_wh, timestamp, reason ("REMOTE", "LOCAL",
#: "EV_DISCONNECTED", "BATTERY_FULL", "FAULT").
transaction_stopped = Signal()
#: A reservation ended without being used: reservation_ref, reason ("EXPIRED", "CANCELLED").
reservation_ended = Signal()


@dataclass(frozen=True)
class ChargingLimit:
    """A power limit for a running transaction (from an OCPI charging profile)."""

    limit_w: Decimal | None  # None = no limit
    valid_until: datetime | None = None


class ChargerGateway(Protocol):
    def start_transaction(
        self, *, request_ref: str, evse_pk: int, connector_pk: int | None, id_tag: str
    ) -> bool: ...

    def stop_transaction(self, *, request_ref: str, transaction_ref: str) -> bool: ...

    def unlock_connector(self, *, request_ref: str, connector_pk: int) -> bool: ...

    def reserve_now(
        self,
        *,
        request_ref: str,
        reservation_ref: int,
        evse_pk: int,
        id_tag: str,
        expiry: datetime,
    ) -> bool: ...

    def cancel_reservation(self, *, request_ref: str, reservation_ref: int) -> bool: ...

    def set_charging_limit(
        self, *, request_ref: str, transaction_ref: str, limit: ChargingLimit
    ) -> bool: ...


def gateway() -> ChargerGateway:
    """The configured gateway (default: the built-in simulator)."""
    path = getattr(settings, "CHARGER_GATEWAY", "stations.simulator.SimulatorGateway")
    return import_string(path)()
