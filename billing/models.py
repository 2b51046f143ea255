"""Who charged what: drivers' tokens (issued by partners), charging sessions and their periods,
and reservations. CDRs and the tariff maths arrive with the billing issue.

Partner-owned rows point at `ocpi.Partner` by a string foreign key (DESIGN.md): the domain never
imports the protocol layer.
"""

from decimal import Decimal

from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from .choices import AuthMethod, ProfileType, SessionStatus, TokenType, WhitelistType


def _now():
    now = timezone.now()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Token(models.Model):
    """A driver's token (RFID card, app user) issued by an eMSP partner: the OCPI Token object.

    The eMSP owns it and pushes it to us (Tokens receiver); we cache it to authorize locally.
    `blocked` is our own staff's block, independent of the eMSP's `valid`.
    """

    partner = models.ForeignKey("ocpi.Partner", on_delete=models.PROTECT, related_name="tokens")
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    uid = models.CharField(max_length=36)
    type = models.CharField(max_length=11, choices=TokenType.choices, default=TokenType.RFID)
    contract_id = models.CharField(max_length=36)
    visual_number = models.CharField(max_length=64, blank=True)
    issuer = models.CharField(max_length=64)
    group_id = models.CharField(max_length=36, blank=True)
    valid = models.BooleanField(default=True)
    whitelist = models.CharField(
        max_length=15, choices=WhitelistType.choices, default=WhitelistType.ALLOWED
    )
    language = models.CharField(max_length=2, blank=True)
    default_profile_type = models.CharField(max_length=7, choices=ProfileType.choices, blank=True)
    energy_contract = models.JSONField(null=True, blank=True)
    last_updated = models.DateTimeField(db_index=True, help_text="The eMSP's last_updated")
    blocked = models.BooleanField(
        default=False, help_text="Blocked by our staff, whatever the eMSP says"
    )
    created = models.DateTimeField(default=_now, editable=False)
    received_at = models.DateTimeField(default=_now, help_text="When we last received it")

    class Meta:
        ordering = ("created", "id")
        constraints = [
            models.UniqueConstraint(
                Lower("country_code"),
                Lower("party_id"),
                Lower("uid"),
                "type",
                name="token_unique_ci_key",
            ),  # fmt: skip
        ]
        indexes = [models.Index(Lower("uid"), name="token_uid_ci_idx")]

    def __str__(self) -> str:
        return f"{self.uid} ({self.type}, {self.country_code}*{self.party_id})"

    def cdr_token(self) -> dict:
        """The CdrToken snapshot of this token (PROTOCOL.md §5.4)."""
        return {
            "country_code": self.country_code,
            "party_id": self.party_id,
            "uid": self.uid,
            "type": self.type,
            "contract_id": self.contract_id,
        }


class Reservation(models.Model):
    """A reservation made by a partner's RESERVE_NOW command.

    `reservation_id` is the eMSP's id; our own `pk` is what goes to the charger, so partners can
    never touch each other's reservations (PROTOCOL.md §4.6).
    """

    class Status(models.TextChoices):
        PENDING = "PENDING"
        ACTIVE = "ACTIVE"
        USED = "USED"
        CANCELLED = "CANCELLED"
        EXPIRED = "EXPIRED"
        REJECTED = "REJECTED"

    partner = models.ForeignKey(
        "ocpi.Partner", on_delete=models.PROTECT, related_name="reservations"
    )
    reservation_id = models.CharField(max_length=36, help_text="The eMSP's reservation id")
    location = models.ForeignKey("stations.Location", on_delete=models.PROTECT, related_name="+")
    evse = models.ForeignKey(
        "stations.EVSE", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cdr_token = models.JSONField(help_text="CdrToken of the token in the command")
    authorization_reference = models.CharField(max_length=36, blank=True)
    expiry_date = models.DateTimeField()
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.PENDING)
    created = models.DateTimeField(default=_now, editable=False)
    last_updated = models.DateTimeField(default=_now)

    class Meta:
        ordering = ("-created",)
        constraints = [
            models.UniqueConstraint(
                "partner", "location", Lower("reservation_id"), name="reservation_unique_ci_id"
            ),
        ]

    def __str__(self) -> str:
        return f"Reservation {self.reservation_id} ({self.partner_id})"


class Session(models.Model):
    """A charging session at one of our connectors: the OCPI Session object.

    `cdr_token` and the location/EVSE/connector are fixed at start (PROTOCOL.md §10.16);
    `transaction_ref` links the gateway's transaction. kWh are Decimal, times aware UTC.
    """

    ocpi_id = models.CharField("id", max_length=36, unique=True)
    country_code = models.CharField(max_length=2, help_text="CPO country code")
    party_id = models.CharField(max_length=3, help_text="CPO party id")
    partner = models.ForeignKey(
        "ocpi.Partner", on_delete=models.PROTECT, null=True, blank=True, related_name="sessions",
        help_text="The eMSP whose token is charging (receives this session)",
    )  # fmt: skip
    token = models.ForeignKey(
        Token, on_delete=models.SET_NULL, null=True, blank=True, related_name="sessions"
    )
    cdr_token = models.JSONField()
    auth_method = models.CharField(max_length=12, choices=AuthMethod.choices)
    authorization_reference = models.CharField(max_length=36, blank=True)
    reservation = models.ForeignKey(
        Reservation, on_delete=models.SET_NULL, null=True, blank=True, related_name="sessions"
    )
    location = models.ForeignKey(
        "stations.Location", on_delete=models.PROTECT, related_name="sessions"
    )
    evse = models.ForeignKey("stations.EVSE", on_delete=models.PROTECT, related_name="sessions")
    connector = models.ForeignKey(
        "stations.Connector", on_delete=models.PROTECT, related_name="sessions"
    )
    transaction_ref = models.CharField(max_length=64, blank=True, db_index=True)
    meter_id = models.CharField(max_length=255, blank=True)
    meter_start_wh = models.DecimalField(max_digits=14, decimal_places=3, default=Decimal(0))
    currency = models.CharField(max_length=3, default="EUR")
    kwh = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal(0))
    start_date_time = models.DateTimeField()
    end_date_time = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=11, choices=SessionStatus.choices, default=SessionStatus.PENDING, db_index=True
    )
    total_cost_excl_vat = models.DecimalField(
        max_digits=14, decimal_places=4, null=True, blank=True
    )
    total_cost_incl_vat = models.DecimalField(
        max_digits=14, decimal_places=4, null=True, blank=True
    )
    charging_preferences = models.JSONField(null=True, blank=True)
    charging_profile = models.JSONField(
        null=True, blank=True, help_text="The charging profile the eMSP set (OCPI object)"
    )
    stop_reason = models.CharField(max_length=32, blank=True)
    created = models.DateTimeField(default=_now, editable=False)
    last_updated = models.DateTimeField(default=_now, db_index=True)
    last_announced_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the partner was last sent an update"
    )

    class Meta:
        ordering = ("created", "id")
        indexes = [models.Index(Lower("ocpi_id"), name="session_id_ci_idx")]

    def __str__(self) -> str:
        return f"Session {self.ocpi_id} ({self.status})"

    def touch(self) -> None:
        self.last_updated = _now()


class ChargingPeriod(models.Model):
    """A period of a session with constant tariff conditions (OCPI ChargingPeriod).

    Volumes are what was measured in the period (kWh, hours); a new period starts when a price
    may change (charging ↔ parking, tariff switch, time-of-day boundary).
    """

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="periods")
    start_date_time = models.DateTimeField()
    dimensions = models.JSONField(default=list, help_text='[{"type": "ENERGY", "volume": "1.5"}]')
    tariff_id = models.CharField(max_length=36, blank=True)
    charging = models.BooleanField(default=True, help_text="False: parking (not charging)")

    class Meta:
        ordering = ("session_id", "start_date_time", "id")

    def __str__(self) -> str:
        return f"{self.session.ocpi_id} from {self.start_date_time:%H:%M:%S}"


# Session bookkeeping (billing/sessions.py) and CDRs (billing/cdrs.py) live in their own modules.
from . import models_cdrs, models_sessions  # noqa: E402, F401
