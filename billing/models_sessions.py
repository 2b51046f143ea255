"""Bookkeeping behind charging sessions (billing/sessions.py): not OCPI objects themselves.

- PendingStart: who is about to charge where. Written before a charger is asked to start (a
  remote START_SESSION, or a swipe the platform authorized), so the transaction the charger then
  reports can be attributed to the right token, partner and authorization.
- SessionMeter: the live state of a running session's metering: the last reading, the
  restriction state of the open charging period, and what was last announced to the partner.
- SessionSnapshot: the place and the tariffs as they were when the session started, for its CDR
  (PROTOCOL.md §10.16: a street renamed or a tariff edited the next day must not show up).
"""

from django.db import models

from .choices import AuthMethod
from .models import Session, Token, _now


class PendingStart(models.Model):
    """A start the platform authorized and expects a charger to report (PROTOCOL.md §4.5, §4.6).

    Matched to the charger's transaction by `request_ref` (a remote start), or, for a local
    start (the charger reports no reference), by the token uid at the same EVSE within a few
    minutes. Used once."""

    request_ref = models.CharField(max_length=64, unique=True)
    partner = models.ForeignKey(
        "ocpi.Partner", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    token = models.ForeignKey(
        Token, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    id_tag = models.CharField(max_length=36, db_index=True, help_text="cdr_token uid")
    cdr_token = models.JSONField()
    auth_method = models.CharField(max_length=12, choices=AuthMethod.choices)
    authorization_reference = models.CharField(max_length=36, blank=True)
    location = models.ForeignKey(
        "stations.Location", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    evse = models.ForeignKey(
        "stations.EVSE", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    connector = models.ForeignKey(
        "stations.Connector", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    created = models.DateTimeField(default=_now, db_index=True)
    session = models.OneToOneField(
        Session, on_delete=models.SET_NULL, null=True, blank=True, related_name="pending_start"
    )

    class Meta:
        ordering = ("-created", "-id")

    def __str__(self) -> str:
        return f"Pending start {self.request_ref} ({self.id_tag})"


class SessionMeter(models.Model):
    """The metering state of one session: the last reading, the open period's conditions, and
    what the partner was last told (for the throttled PATCHes, PROTOCOL.md §4.2)."""

    session = models.OneToOneField(Session, on_delete=models.CASCADE, related_name="meter")
    last_reading_at = models.DateTimeField(null=True, blank=True)
    power_w = models.DecimalField(max_digits=10, decimal_places=1, null=True, blank=True)
    current_a = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    tariff_id = models.CharField(max_length=36, blank=True, help_text="Tariff of the open period")
    signature = models.JSONField(
        default=list, blank=True, help_text="Which tariff elements' restrictions hold (open period)"
    )
    announced_periods = models.PositiveIntegerField(
        default=0, help_text="Closed periods the partner was told about"
    )
    announced_kwh = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)

    def __str__(self) -> str:
        return f"Meter of {self.session.ocpi_id}"


class SessionSnapshot(models.Model):
    """What a session's CDR must show as it was at the start (PROTOCOL.md §4.3, §10.16).

    `cdr_location` is the OCPI CdrLocation; `tariffs` the OCPI Tariff objects of the connector
    valid at the start (its PROFILE_* tariffs included). Numbers are kept as decimal strings and
    DateTimes as ISO 8601 strings (JSON holds no Decimal)."""

    session = models.OneToOneField(Session, on_delete=models.CASCADE, related_name="snapshot")
    cdr_location = models.JSONField()
    tariffs = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(default=_now)

    def __str__(self) -> str:
        return f"Snapshot of {self.session.ocpi_id}"
