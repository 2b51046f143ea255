"""Partners (eMSPs we roam with) and the push outbox."""

from collections.abc import Iterable

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from stations.identity import cpo_roles  # noqa: F401  (the parties we present)

from . import tokens


class Partner(models.Model):
    """An eMSP platform connected to us by OCPI credentials (one registration).

    Tokens, named as in the partner-initiated handshake (PROTOCOL.md §3.5):
    - token A: issued by us for registration only; kept as a digest.
    - inbound token: what the partner presents to us afterwards (token C when the partner
      registered with us, token B when we registered with it); kept as a digest.
    - outbound token: what we present to the partner (token B, or C when we registered);
      kept encrypted, as we must send it.
    """

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending registration"
        REGISTERED = "REGISTERED", "Registered"
        SUSPENDED = "SUSPENDED", "Suspended"
        UNREGISTERED = "UNREGISTERED", "Unregistered"

    class TokenEncoding(models.TextChoices):
        BASE64 = "BASE64", "Base64 (OCPI 2.2.1)"
        PLAIN = "PLAIN", "Plain (OCPI 2.1.1 and many 2.2 peers)"

    name = models.CharField(max_length=100, unique=True)
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    version = models.CharField(max_length=10, blank=True, help_text="Negotiated OCPI version")
    versions_url = models.URLField(max_length=255, blank=True, help_text="The partner's versions")
    endpoints = models.JSONField(
        default=list, blank=True, help_text="The partner's endpoints: identifier, role, url"
    )
    token_a_digest = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    inbound_token_digest = models.CharField(
        max_length=64, blank=True, db_index=True, editable=False
    )
    outbound_token_encrypted = models.TextField(blank=True, editable=False)
    # A new inbound token we issued in a credentials POST/PUT of ours that is still in flight:
    # the partner calls us back with it before our call returns (PROTOCOL.md §3.4, §3.6).
    next_inbound_token_digest = models.CharField(
        max_length=64, blank=True, db_index=True, editable=False
    )
    # Compatibility profile: partner quirks, editable by staff, so none needs a code change.
    token_encoding = models.CharField(
        max_length=6, choices=TokenEncoding.choices, default=TokenEncoding.BASE64,
        help_text="How we encode our token in the Authorization header towards this partner",
    )  # fmt: skip
    page_size = models.PositiveIntegerField(
        default=100, help_text="The page size (limit) we ask for when pulling from this partner"
    )
    request_timeout = models.FloatField(
        default=30.0, help_text="Seconds before an outbound call to this partner times out"
    )
    send_routing_headers = models.BooleanField(
        default=True, help_text="Send OCPI-from/to headers on functional modules (2.2.1)"
    )
    created = models.DateTimeField(auto_now_add=True)
    registered_at = models.DateTimeField(null=True, blank=True)
    # Start of the last successful pull of the partner's tokens: the next pull asks for changes
    # from there (date_from), so an interrupted sync resumes without a full crawl.
    tokens_synced_until = models.DateTimeField(null=True, blank=True, editable=False)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    # -- tokens ---------------------------------------------------------------------------
    def set_token_a(self, token: str) -> None:
        self.token_a_digest = tokens.token_digest(token)

    def set_inbound_token(self, token: str) -> None:
        self.inbound_token_digest = tokens.token_digest(token)

    def set_next_inbound_token(self, token: str) -> None:
        self.next_inbound_token_digest = tokens.token_digest(token)

    def set_outbound_token(self, token: str) -> None:
        self.outbound_token_encrypted = tokens.encrypt(token)

    @property
    def outbound_token(self) -> str:
        return tokens.decrypt(self.outbound_token_encrypted)

    # -- endpoints ------------------------------------------------------------------------
    def endpoint_url(self, identifier: str, role: str | None = None) -> str | None:
        """The partner's URL for a module, preferring the given interface role."""
        matches = [e for e in self.endpoints if e.get("identifier") == identifier]
        for endpoint in matches:
            if role is None or endpoint.get("role") in (role, None):
                return endpoint["url"]
        return None

    @property
    def is_registered(self) -> bool:
        return self.status == self.Status.REGISTERED

    @property
    def is_authorized_to_receive(self) -> bool:
        """Whether automated pushes may go to this partner now."""
        return self.status == self.Status.REGISTERED


class PartnerRoleQuerySet(models.QuerySet):
    def of_parties(self, parties: Iterable[tuple[str, str]]) -> "PartnerRoleQuerySet":
        """Rows of these (country_code, party_id) pairs, whatever their role, compared
        case-insensitively (CiString, PROTOCOL.md §1.9) as the unique constraint below and every
        ownership check (billing.tokens.token_owner_check, commands) compare them."""
        condition = Q(pk__in=[])
        for country_code, party_id in parties:
            condition |= Q(
                country_code__lower=country_code.lower(), party_id__lower=party_id.lower()
            )
        return self.filter(condition)


class PartnerRole(models.Model):
    """A party behind a partner's connection (CredentialsRole): what it may own and see.

    A party (country_code + party_id) belongs to one partner that is not unregistered; the
    credentials services keep that (ocpi.services._store_roles), not the database: one partner
    may list a party under several roles (§3.1), which no unique constraint across partners can
    allow, and an unregistered partner keeps its rows until another partner takes the party.
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="roles")
    role = models.CharField(max_length=5, default="EMSP")
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    business_details = models.JSONField(default=dict, blank=True)

    objects = PartnerRoleQuerySet.as_manager()

    class Meta:
        ordering = ("partner_id", "id")
        constraints = [
            models.UniqueConstraint(
                "partner",
                "role",
                Lower("country_code"),
                Lower("party_id"),
                name="partner_role_unique",
            ),  # fmt: skip
        ]

    def __str__(self) -> str:
        return f"{self.role} {self.country_code}*{self.party_id}"


class OutboxMessage(models.Model):
    """One push to one partner, written in the same transaction as the change it announces.

    The URL is resolved at delivery time from the partner's current endpoints (module + role +
    path), so a partner that re-registers with new endpoints still gets its backlog.
    """

    class State(models.TextChoices):
        PENDING = "PENDING", "Pending"
        SENT = "SENT", "Sent"
        FAILED = "FAILED", "Failed (needs staff)"
        SUPERSEDED = "SUPERSEDED", "Superseded by a newer full update"

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="outbox")
    module = models.CharField(max_length=20, help_text="OCPI module id, e.g. locations")
    interface_role = models.CharField(max_length=8, default="RECEIVER")
    object_key = models.CharField(
        max_length=200, db_index=True, help_text="Orders pushes of one object, e.g. NL/CPO/LOC1"
    )
    method = models.CharField(max_length=6)
    path = models.CharField(max_length=255, blank=True, help_text="Appended to the endpoint URL")
    body = models.TextField(blank=True, help_text="JSON, rendered in the partner's version")
    state = models.CharField(
        max_length=10, choices=State.choices, default=State.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_error = models.TextField(blank=True)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    response_ocpi_status = models.PositiveIntegerField(null=True, blank=True)
    response_location = models.URLField(
        max_length=512, blank=True, help_text="Location header (CDR POST)"
    )
    created = models.DateTimeField(default=timezone.now, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True)
    # X-Correlation-ID to send, e.g. a command's async result reuses the command's (PROTOCOL.md
    # §1.6); blank: a fresh one per delivery run.
    correlation_id = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        ordering = ("id",)
        # Delivery picks a partner's oldest PENDING row with no older unsent row of its object
        # (ocpi.delivery.outbox_heads) once per row sent: both lookups stay on small partial
        # indexes however many SENT rows the table holds.
        indexes = [
            models.Index(fields=["partner", "state", "next_attempt_at"], name="outbox_due_idx"),
            models.Index(
                fields=["partner", "id"], condition=Q(state="PENDING"), name="outbox_pending_idx"
            ),
            models.Index(
                fields=["partner", "object_key", "id"],
                condition=Q(state__in=["PENDING", "FAILED"]),
                name="outbox_unsent_object_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.module} {self.object_key} → {self.partner}"


class CommandRequest(models.Model):
    """An asynchronous request from a partner: a command (START_SESSION, STOP_SESSION,
    RESERVE_NOW, CANCEL_RESERVATION, UNLOCK_CONNECTOR) or a charging profile request (SET, GET,
    CLEAR). Holds the synchronous answer we gave and the asynchronous result we POST to
    `response_url` through the outbox."""

    class Kind(models.TextChoices):
        START_SESSION = "START_SESSION"
        STOP_SESSION = "STOP_SESSION"
        RESERVE_NOW = "RESERVE_NOW"
        CANCEL_RESERVATION = "CANCEL_RESERVATION"
        UNLOCK_CONNECTOR = "UNLOCK_CONNECTOR"
        SET_CHARGING_PROFILE = "SET_CHARGING_PROFILE"
        GET_CHARGING_PROFILE = "GET_CHARGING_PROFILE"
        CLEAR_CHARGING_PROFILE = "CLEAR_CHARGING_PROFILE"

    class State(models.TextChoices):
        REJECTED = "REJECTED", "Rejected at once"
        WAITING = "WAITING", "Waiting for the charger"
        ANSWERED = "ANSWERED", "Result known"
        TIMED_OUT = "TIMED_OUT", "Charger did not answer in time"

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="commands")
    kind = models.CharField(max_length=22, choices=Kind.choices, db_index=True)
    request_ref = models.CharField(max_length=36, unique=True, help_text="Our reference")
    body = models.JSONField(help_text="The request as received")
    response_url = models.URLField(max_length=512)
    response_result = models.CharField(max_length=20, help_text="Synchronous answer")
    timeout_seconds = models.PositiveIntegerField(default=30)
    result = models.CharField(max_length=20, blank=True, help_text="Asynchronous result")
    result_message = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=9, choices=State.choices, db_index=True)
    session_ocpi_id = models.CharField(max_length=36, blank=True, db_index=True)
    reservation = models.ForeignKey(
        "billing.Reservation", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="commands", help_text="RESERVE_NOW / CANCEL_RESERVATION: the reservation",
    )  # fmt: skip
    correlation_id = models.CharField(
        max_length=64,
        blank=True,
        db_index=True,  # the traffic log finds a command by its request's correlation id
        help_text="The request's X-Correlation-ID, reused for the result",
    )
    created = models.DateTimeField(default=timezone.now, editable=False)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created",)

    def __str__(self) -> str:
        return f"{self.kind} from {self.partner} ({self.result or self.response_result})"


from .models_traffic import TrafficLog  # noqa: E402, F401
