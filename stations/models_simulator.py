"""State of the built-in charger simulator (stations/simulator.py), kept in the database so every
process (web, Celery worker, `manage.py simulate`) sees the same chargers.

None of this is OCPI data: the OCPI-visible part of a charger is its EVSE's `status`, which the
simulator saves like any charger would report it (and which is pushed like any other change).
"""

from decimal import Decimal

from django.db import models
from django.utils import timezone


class SimulatedCharger(models.Model):
    """The simulated charge point behind one EVSE: its meter register and its reservation."""

    evse = models.OneToOneField(
        "stations.EVSE", on_delete=models.CASCADE, related_name="simulated_charger"
    )
    meter_wh = models.DecimalField(
        max_digits=14, decimal_places=3, default=Decimal(0), help_text="Meter register (Wh)"
    )
    transactions_started = models.PositiveIntegerField(default=0)
    reservation_ref = models.BigIntegerField(
        null=True, blank=True, help_text="The platform's reservation reference (not the eMSP's)"
    )
    reservation_id_tag = models.CharField(max_length=36, blank=True)
    reservation_expiry = models.DateTimeField(null=True, blank=True)
    next_vehicle = models.JSONField(
        null=True,
        blank=True,
        help_text="Vehicle for the next plug-in (demos, tests), e.g. "
        '{"battery_kwh": "60", "soc_start": "20", "target_soc": "100"}; random when empty',
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("evse_id",)

    def __str__(self) -> str:
        return f"Simulated charger {self.evse}"


class SimulatedTransaction(models.Model):
    """A simulated vehicle plugged into a connector: its battery, the driver's plan and the
    charge so far. Times in `*_s` fields are simulated seconds since plug-in."""

    class State(models.TextChoices):
        CHARGING = "CHARGING", "Charging"
        PARKING = "PARKING", "Connected, not charging (full)"
        FINISHED = "FINISHED", "Finished"

    charger = models.ForeignKey(
        SimulatedCharger, on_delete=models.CASCADE, related_name="transactions"
    )
    connector = models.ForeignKey("stations.Connector", on_delete=models.CASCADE, related_name="+")
    transaction_ref = models.CharField(max_length=64, unique=True)
    id_tag = models.CharField(max_length=36)
    request_ref = models.CharField(max_length=64, blank=True)
    reservation_ref = models.BigIntegerField(null=True, blank=True)
    state = models.CharField(
        max_length=8, choices=State.choices, default=State.CHARGING, db_index=True
    )
    # The vehicle.
    battery_kwh = models.DecimalField(max_digits=7, decimal_places=2)
    soc_start = models.DecimalField(max_digits=7, decimal_places=4, help_text="%")
    soc = models.DecimalField(max_digits=7, decimal_places=4, help_text="% now")
    target_soc = models.DecimalField(
        max_digits=7, decimal_places=4, help_text="% at which the EV stops drawing power"
    )
    vehicle_max_power_w = models.DecimalField(
        max_digits=10, decimal_places=1, help_text="AC on-board charger or DC maximum (W)"
    )
    pack_voltage = models.DecimalField(max_digits=7, decimal_places=1, default=Decimal(400))
    # The driver's plan (simulated seconds after plug-in).
    unplug_after_s = models.DecimalField(
        max_digits=14, decimal_places=3, null=True, blank=True,
        help_text="The driver leaves (unplugs) then, full or not; empty = stays until full",
    )  # fmt: skip
    idle_after_full_s = models.DecimalField(
        max_digits=14, decimal_places=3, default=Decimal(600),
        help_text="How long the full EV stays plugged in before the driver unplugs",
    )  # fmt: skip
    # The charge so far.
    meter_start_wh = models.DecimalField(max_digits=14, decimal_places=3)
    energy_wh = models.DecimalField(max_digits=14, decimal_places=3, default=Decimal(0))
    power_w = models.DecimalField(max_digits=10, decimal_places=1, default=Decimal(0))
    current_a = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal(0))
    elapsed_s = models.DecimalField(max_digits=14, decimal_places=3, default=Decimal(0))
    full_at_s = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)
    limit_w = models.DecimalField(
        max_digits=10, decimal_places=1, null=True, blank=True, help_text="Power cap (W)"
    )
    limit_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    last_tick_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ("-started_at", "-id")

    def __str__(self) -> str:
        return f"{self.transaction_ref} ({self.state})"

    @property
    def meter_wh(self) -> Decimal:
        return self.meter_start_wh + self.energy_wh


class SimulatedCommand(models.Model):
    """A command sent to a simulated charger, answered after SIMULATOR_RESPONSE_SECONDS (scaled)
    by a Celery task, or by the next tick if that task was lost."""

    class Kind(models.TextChoices):
        START = "START"
        STOP = "STOP"
        UNLOCK = "UNLOCK"
        RESERVE = "RESERVE"
        CANCEL_RESERVATION = "CANCEL_RESERVATION"
        SET_LIMIT = "SET_LIMIT"

    request_ref = models.CharField(max_length=64, db_index=True)
    kind = models.CharField(max_length=18, choices=Kind.choices)
    params = models.JSONField(default=dict)
    created = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField(db_index=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    accepted = models.BooleanField(null=True)
    reason = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ("due_at", "id")

    def __str__(self) -> str:
        return f"{self.kind} {self.request_ref}"
