"""The OCPI traffic log: what went over the wire, for staff answering "we never got it"."""

from django.db import models
from django.db.models import Q
from django.utils import timezone


class TrafficLogQuerySet(models.QuerySet):
    def failed(self) -> "TrafficLogQuerySet":
        """Exchanges that did not succeed: no response, HTTP 4xx/5xx, or no OCPI 1xxx status.
        (An empty 2xx reply, which delivery accepts, is in too: its outbox row says SENT.)"""
        return self.filter(
            Q(http_status__isnull=True)
            | Q(http_status__gte=400)
            | ~Q(ocpi_status__gte=1000, ocpi_status__lt=2000)
        )


class TrafficLog(models.Model):
    """One OCPI HTTP exchange with a partner: a request a partner made to us (inbound) or a call
    we made to a partner (outbound), with its response, or the error that stood in for one.

    Written by ocpi.traffic outside the transaction of the request that caused it, so a request
    that was rolled back is still on record. Secrets are redacted before storage (the
    Authorization header, the `token` of Credentials objects); bodies are cut at
    TRAFFIC_LOG_BODY_BYTES (the `*_size` fields keep the real size). Rows older than
    TRAFFIC_LOG_DAYS are purged by a beat task.

    A call made to deliver an outbox row points at that row (`outbox_message`), and through it
    at the session, CDR, location, tariff or command it pushed; the admin resolves the object an
    inbound request concerns from its URL (ocpi.traffic_admin).
    """

    class Direction(models.TextChoices):
        INBOUND = "IN", "Inbound (partner → us)"
        OUTBOUND = "OUT", "Outbound (us → partner)"

    direction = models.CharField(max_length=3, choices=Direction.choices, db_index=True)
    partner = models.ForeignKey(
        "ocpi.Partner", on_delete=models.SET_NULL, null=True, blank=True, related_name="traffic",
        help_text="Inbound: the partner whose token authenticated the request, if any",
    )  # fmt: skip
    method = models.CharField(max_length=10)
    url = models.CharField(max_length=2048)
    request_headers = models.JSONField(default=dict, blank=True)
    request_body = models.TextField(blank=True)
    request_size = models.PositiveIntegerField(default=0, help_text="Bytes, before truncation")
    http_status = models.PositiveSmallIntegerField(
        null=True, blank=True, db_index=True, help_text="Empty: no response (timeout, refused)"
    )
    ocpi_status = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="status_code of the response envelope, if it had one"
    )
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True)
    response_size = models.PositiveIntegerField(default=0, help_text="Bytes, before truncation")
    error = models.CharField(max_length=500, blank=True, help_text="Outbound: why no response")
    duration_ms = models.PositiveIntegerField(default=0)
    request_id = models.CharField(max_length=100, blank=True, db_index=True)
    correlation_id = models.CharField(max_length=100, blank=True, db_index=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    outbox_message = models.ForeignKey(
        "ocpi.OutboxMessage", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="traffic", help_text="Outbound: the push this call delivered",
    )  # fmt: skip

    objects = TrafficLogQuerySet.as_manager()

    class Meta:
        ordering = ("-created", "-id")
        verbose_name = "OCPI traffic"
        verbose_name_plural = "OCPI traffic"
        indexes = [
            models.Index(fields=["partner", "created"], name="traffic_partner_created_idx"),
        ]

    def __str__(self) -> str:
        arrow = "→" if self.direction == self.Direction.OUTBOUND else "←"
        status = self.http_status or self.error[:40] or "no response"
        return f"{arrow} {self.method} {self.url} ({status})"
