"""Charge Detail Records: the billing record of a finished session (OCPI CDR, PROTOCOL.md §4.3).

A CDR never changes once created (PROTOCOL.md §10.15): every OCPI field is frozen at creation
from the session and its start-time snapshot, priced by billing.tariff_calc. Corrections are a
credit CDR (credit=True, credit_reference_id = the original id, negated totals) plus a new CDR.
Delivery to the partner (POST through the outbox, Location header) and reconciliation
(fetching the partner's copy back) are tracked beside the frozen content.
"""

from django.db import models
from django.db.models.functions import Lower

from .choices import AuthMethod
from .models import Session, _now

MONEY = {"max_digits": 14, "decimal_places": 4}
VOLUME = {"max_digits": 14, "decimal_places": 6}


class CDR(models.Model):
    """A Charge Detail Record (OCPI 2.2.1 CDR object, plus delivery bookkeeping)."""

    class Delivery(models.TextChoices):
        PENDING = "PENDING", "Not yet delivered"
        DELIVERED = "DELIVERED", "Delivered (partner accepted)"
        FAILED = "FAILED", "Delivery failed (needs staff)"
        NOT_SENT = "NOT_SENT", "Not sent (no receiver endpoint)"

    class Reconciliation(models.TextChoices):
        UNCHECKED = "UNCHECKED", "Not checked"
        MATCH = "MATCH", "Partner's copy matches"
        MISMATCH = "MISMATCH", "Partner's copy differs"
        UNAVAILABLE = "UNAVAILABLE", "Partner's copy not retrievable"

    # --- the OCPI CDR (frozen at creation) ---
    country_code = models.CharField(max_length=2, help_text="CPO country code")
    party_id = models.CharField(max_length=3, help_text="CPO party id")
    ocpi_id = models.CharField("id", max_length=39)
    partner = models.ForeignKey(
        "ocpi.Partner", on_delete=models.PROTECT, null=True, blank=True, related_name="cdrs",
        help_text="The eMSP this CDR is for",
    )  # fmt: skip
    session = models.ForeignKey(
        Session, on_delete=models.PROTECT, null=True, blank=True, related_name="cdrs"
    )
    session_ocpi_id = models.CharField(max_length=36, blank=True)
    start_date_time = models.DateTimeField(db_index=True)
    end_date_time = models.DateTimeField()
    time_zone = models.CharField(max_length=64, help_text="The location's time zone (for export)")
    cdr_token = models.JSONField()
    auth_method = models.CharField(max_length=12, choices=AuthMethod.choices)
    authorization_reference = models.CharField(max_length=36, blank=True)
    cdr_location = models.JSONField()
    meter_id = models.CharField(max_length=255, blank=True)
    currency = models.CharField(max_length=3)
    tariffs = models.JSONField(default=list, blank=True, help_text="Tariffs as applied (OCPI)")
    charging_periods = models.JSONField(default=list)
    signed_data = models.JSONField(null=True, blank=True)
    total_cost_excl_vat = models.DecimalField(**MONEY)
    total_cost_incl_vat = models.DecimalField(**MONEY, null=True, blank=True)
    total_fixed_cost_excl_vat = models.DecimalField(**MONEY, null=True, blank=True)
    total_fixed_cost_incl_vat = models.DecimalField(**MONEY, null=True, blank=True)
    total_energy = models.DecimalField(**VOLUME, help_text="kWh")
    total_energy_cost_excl_vat = models.DecimalField(**MONEY, null=True, blank=True)
    total_energy_cost_incl_vat = models.DecimalField(**MONEY, null=True, blank=True)
    total_time = models.DecimalField(**VOLUME, help_text="hours")
    total_time_cost_excl_vat = models.DecimalField(**MONEY, null=True, blank=True)
    total_time_cost_incl_vat = models.DecimalField(**MONEY, null=True, blank=True)
    total_parking_time = models.DecimalField(**VOLUME, null=True, blank=True, help_text="hours")
    total_parking_cost_excl_vat = models.DecimalField(**MONEY, null=True, blank=True)
    total_parking_cost_incl_vat = models.DecimalField(**MONEY, null=True, blank=True)
    total_reservation_cost_excl_vat = models.DecimalField(**MONEY, null=True, blank=True)
    total_reservation_cost_incl_vat = models.DecimalField(**MONEY, null=True, blank=True)
    remark = models.CharField(max_length=255, blank=True)
    invoice_reference_id = models.CharField(max_length=39, blank=True)
    credit = models.BooleanField(default=False)
    credit_reference_id = models.CharField(max_length=39, blank=True)
    home_charging_compensation = models.BooleanField(null=True, blank=True)
    last_updated = models.DateTimeField(default=_now, db_index=True)
    created = models.DateTimeField(default=_now, editable=False, db_index=True)
    # --- corrections (staff) ---
    correction_reason = models.CharField(max_length=255, blank=True)
    corrected_by = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="corrections",
        help_text="For a credit CDR or a replacement: the CDR it corrects",
    )  # fmt: skip
    # --- delivery and reconciliation (not OCPI content; may change) ---
    delivery = models.CharField(
        max_length=9, choices=Delivery.choices, default=Delivery.PENDING, db_index=True
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    partner_location_url = models.URLField(
        max_length=512, blank=True, help_text="Location header the partner returned"
    )
    reconciliation = models.CharField(
        max_length=11, choices=Reconciliation.choices, default=Reconciliation.UNCHECKED
    )
    reconciled_at = models.DateTimeField(null=True, blank=True)
    reconciliation_note = models.TextField(blank=True)

    class Meta:
        verbose_name = "CDR"
        verbose_name_plural = "CDRs"
        ordering = ("created", "id")
        constraints = [
            models.UniqueConstraint(
                Lower("country_code"),
                Lower("party_id"),
                Lower("ocpi_id"),
                name="cdr_unique_ci_id",
            ),  # fmt: skip
        ]
        indexes = [models.Index(fields=["partner", "last_updated"], name="cdr_partner_updated")]

    def __str__(self) -> str:
        return f"CDR {self.ocpi_id}"
