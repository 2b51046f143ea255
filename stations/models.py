"""The charge network: Location → EVSE → Connector, and Tariffs (OCPI 2.2.1 §8, §11).

Models hold the union of what OCPI 2.1.1 and 2.2.1 need, named after 2.2.1. Nested OCPI value
objects (Hours, Image, EnergyMix, DisplayText, ...) are JSON, validated by stations.validators;
everything a query filters on, and every amount, is a column. The OCPI `id` field is `ocpi_id`
(Django owns `id`), matched case-insensitively (CiString) through functional unique indexes.

The models keep their own invariants: `last_updated` changes only when OCPI-visible data changed,
a change bumps the parents (connector → EVSE → location, tariff parts → tariff), an EVSE is never
deleted but set to REMOVED, and every change is announced through stations.signals so the OCPI
layer can push it.
"""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from . import signals, validators
from .choices import (
    ConnectorFormat,
    ConnectorType,
    EVSEStatus,
    ParkingType,
    PowerType,
    ReservationRestrictionType,
    TariffDimensionType,
    TariffType,
)

models.CharField.register_lookup(Lower)


def _now():
    # OCPI DateTimes carry at most milliseconds; store what we will publish.
    now = timezone.now()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class TracksChanges(models.Model):
    """Remembers the values loaded from the database, so save() knows what really changed."""

    #: Fields whose change is visible in OCPI (and so bumps last_updated and is pushed).
    ocpi_fields: tuple[str, ...] = ()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        """Validate; when OCPI-visible data changed, bump last_updated and let `on_changed` bump
        the parents and announce it, all in one transaction. A no-op save changes nothing."""
        self.full_clean()
        created = self._state.adding
        changed = self.changed_ocpi_fields()
        if not changed and not created:
            super().save(*args, **kwargs)
            return
        now = _now()
        if hasattr(self, "last_updated"):
            self.last_updated = now
        with transaction.atomic():
            # Parents first: every writer locks Location, then EVSE, then Connector rows, so two
            # transactions saving children of one location wait for each other, never deadlock.
            self.bump_parents(now=now)
            super().save(*args, **kwargs)
            self.on_changed(now=now, created=created, changed_fields=changed)
        self._remember()

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._loaded = dict(zip(field_names, values, strict=True))
        return instance

    def changed_ocpi_fields(self) -> set[str]:
        loaded = getattr(self, "_loaded", None)
        if self._state.adding or loaded is None:
            return set(self.ocpi_fields)
        changed = set()
        for name in self.ocpi_fields:
            attname = self._meta.get_field(name).attname
            if attname not in loaded:
                changed.add(name)  # deferred field: assume changed
                continue
            field = self._meta.get_field(name)
            if field.to_python(loaded[attname]) != getattr(self, attname):
                changed.add(name)
        return changed

    def _remember(self) -> None:
        self._loaded = {f.attname: getattr(self, f.attname) for f in self._meta.concrete_fields}

    def bump_parents(self, *, now) -> None:
        """Set the parents' last_updated to `now`, outermost first (inside the transaction)."""

    def on_changed(self, *, now, created: bool, changed_fields: set[str]) -> None:
        """Announce the change (inside the transaction, after the row and its parents)."""


class Location(TracksChanges):
    """A site with charge points, the OCPI Location object."""

    country_code = models.CharField(max_length=2, validators=[validators.validate_country_alpha2])
    party_id = models.CharField(max_length=3, validators=[validators.validate_party_id])
    ocpi_id = models.CharField(
        "id", max_length=36, validators=[validators.validate_ci_string], help_text="OCPI id"
    )
    publish = models.BooleanField(default=True)
    publish_allowed_to = models.JSONField(
        default=list, blank=True, validators=[validators.validate_publish_allowed_to]
    )
    name = models.CharField(max_length=255, blank=True)
    address = models.CharField(max_length=255)
    city = models.CharField(max_length=45)
    postal_code = models.CharField(max_length=10, blank=True)
    state = models.CharField(max_length=45, blank=True)
    country = models.CharField(
        max_length=3, validators=[validators.validate_country_alpha3], help_text="ISO alpha-3"
    )
    latitude = models.CharField(max_length=10, validators=[validators.validate_latitude])
    longitude = models.CharField(max_length=11, validators=[validators.validate_longitude])
    related_locations = models.JSONField(
        default=list, blank=True, validators=[validators.validate_related_locations]
    )
    parking_type = models.CharField(max_length=20, choices=ParkingType.choices, blank=True)
    directions = models.JSONField(
        default=list, blank=True, validators=[validators.validate_display_text_list]
    )
    operator = models.JSONField(
        null=True, blank=True, validators=[validators.validate_business_details]
    )
    suboperator = models.JSONField(
        null=True, blank=True, validators=[validators.validate_business_details]
    )
    owner = models.JSONField(
        null=True, blank=True, validators=[validators.validate_business_details]
    )
    facilities = models.JSONField(
        default=list, blank=True, validators=[validators.validate_facilities]
    )
    time_zone = models.CharField(
        max_length=255, default="Europe/Amsterdam", validators=[validators.validate_time_zone]
    )
    opening_times = models.JSONField(null=True, blank=True, validators=[validators.validate_hours])
    charging_when_closed = models.BooleanField(null=True, blank=True)
    images = models.JSONField(default=list, blank=True, validators=[validators.validate_image_list])
    energy_mix = models.JSONField(
        null=True, blank=True, validators=[validators.validate_energy_mix]
    )
    created = models.DateTimeField(default=_now, editable=False)
    last_updated = models.DateTimeField(default=_now, db_index=True, editable=False)

    ocpi_fields = (
        "country_code", "party_id", "ocpi_id", "publish", "publish_allowed_to", "name",
        "address", "city", "postal_code", "state", "country", "latitude", "longitude",
        "related_locations", "parking_type", "directions", "operator", "suboperator", "owner",
        "facilities", "time_zone", "opening_times", "charging_when_closed", "images",
        "energy_mix",
    )  # fmt: skip

    class Meta:
        ordering = ("created", "id")
        constraints = [
            models.UniqueConstraint(
                Lower("country_code"),
                Lower("party_id"),
                Lower("ocpi_id"),
                name="location_unique_ci_id",
            ),  # fmt: skip
        ]
        indexes = [
            models.Index(fields=["created", "id"], name="location_page_idx"),
            # The Locations list (stations.selectors.location_list): the rows shared with
            # partners, per owning party, in page order, so a page's ids come from an
            # index-only scan even at a deep offset (and the total from the same index).
            models.Index(
                Lower("country_code"),
                Lower("party_id"),
                "created",
                "id",
                include=["country_code", "party_id", "publish"],
                condition=models.Q(publish=True) | ~models.Q(publish_allowed_to=[]),
                name="location_shared_page_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ocpi_id} {self.name}".strip()

    def on_changed(self, *, now, created: bool, changed_fields: set[str]) -> None:
        signals.location_changed.send(
            sender=Location, location=self, created=created, changed_fields=changed_fields
        )


class EVSE(TracksChanges):
    """One charge point that charges one vehicle at a time, the OCPI EVSE object."""

    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="evses")
    uid = models.CharField(max_length=36, validators=[validators.validate_ci_string])
    evse_id = models.CharField(
        max_length=48, blank=True, help_text="eMI3 EVSE ID, e.g. NL*CPO*E12345*1"
    )
    status = models.CharField(
        max_length=12, choices=EVSEStatus.choices, default=EVSEStatus.AVAILABLE, db_index=True
    )
    status_schedule = models.JSONField(
        default=list, blank=True, validators=[validators.validate_status_schedule]
    )
    capabilities = models.JSONField(
        default=list, blank=True, validators=[validators.validate_capabilities]
    )
    floor_level = models.CharField(max_length=4, blank=True)
    latitude = models.CharField(
        max_length=10, blank=True, validators=[validators.validate_latitude]
    )
    longitude = models.CharField(
        max_length=11, blank=True, validators=[validators.validate_longitude]
    )
    physical_reference = models.CharField(max_length=16, blank=True)
    directions = models.JSONField(
        default=list, blank=True, validators=[validators.validate_display_text_list]
    )
    parking_restrictions = models.JSONField(
        default=list, blank=True, validators=[validators.validate_parking_restrictions]
    )
    images = models.JSONField(default=list, blank=True, validators=[validators.validate_image_list])
    created = models.DateTimeField(default=_now, editable=False)
    last_updated = models.DateTimeField(default=_now, db_index=True, editable=False)

    ocpi_fields = (
        "uid", "evse_id", "status", "status_schedule", "capabilities", "floor_level", "latitude",
        "longitude", "physical_reference", "directions", "parking_restrictions", "images",
    )  # fmt: skip

    class Meta:
        verbose_name = "EVSE"
        verbose_name_plural = "EVSEs"
        ordering = ("location_id", "created", "id")
        constraints = [
            models.UniqueConstraint("location", Lower("uid"), name="evse_unique_ci_uid"),
        ]

    def __str__(self) -> str:
        return self.evse_id or self.uid

    def bump_parents(self, *, now) -> None:
        Location.objects.filter(pk=self.location_id).update(last_updated=now)

    def on_changed(self, *, now, created: bool, changed_fields: set[str]) -> None:
        signals.evse_changed.send(
            sender=EVSE, evse=self, created=created, changed_fields=changed_fields
        )

    def clean(self) -> None:
        if bool(self.latitude) != bool(self.longitude):
            raise ValidationError("EVSE coordinates need both latitude and longitude.")

    def delete(self, *args, **kwargs):
        """EVSEs are never deleted (sessions and CDRs refer to them): they become REMOVED."""
        self.status = EVSEStatus.REMOVED
        self.save()
        return 0, {}


class Connector(TracksChanges):
    """A socket or cable of an EVSE, the OCPI Connector object."""

    evse = models.ForeignKey(EVSE, on_delete=models.PROTECT, related_name="connectors")
    ocpi_id = models.CharField(
        "id", max_length=36, validators=[validators.validate_ci_string], help_text="OCPI id"
    )
    standard = models.CharField(max_length=30, choices=ConnectorType.choices)
    format = models.CharField(max_length=6, choices=ConnectorFormat.choices)
    power_type = models.CharField(max_length=16, choices=PowerType.choices)
    max_voltage = models.PositiveIntegerField(help_text="V (line to neutral for AC_3_PHASE)")
    max_amperage = models.PositiveIntegerField(help_text="A")
    max_electric_power = models.PositiveIntegerField(null=True, blank=True, help_text="W")
    tariff_ids = models.JSONField(
        default=list, blank=True, validators=[validators.validate_tariff_ids]
    )
    terms_and_conditions = models.URLField(max_length=255, blank=True)
    created = models.DateTimeField(default=_now, editable=False)
    last_updated = models.DateTimeField(default=_now, db_index=True, editable=False)

    ocpi_fields = (
        "ocpi_id", "standard", "format", "power_type", "max_voltage", "max_amperage",
        "max_electric_power", "tariff_ids", "terms_and_conditions",
    )  # fmt: skip

    class Meta:
        ordering = ("evse_id", "created", "id")
        constraints = [
            models.UniqueConstraint("evse", Lower("ocpi_id"), name="connector_unique_ci_id"),
        ]

    def __str__(self) -> str:
        return f"{self.evse} #{self.ocpi_id}"

    def bump_parents(self, *, now) -> None:
        Location.objects.filter(evses__pk=self.evse_id).update(last_updated=now)
        EVSE.objects.filter(pk=self.evse_id).update(last_updated=now)

    def on_changed(self, *, now, created: bool, changed_fields: set[str]) -> None:
        signals.connector_changed.send(
            sender=Connector, connector=self, created=created, changed_fields=changed_fields
        )

    def delete(self, *args, **kwargs):
        raise ValidationError("Connectors are not deleted; set their EVSE to REMOVED instead.")


class Tariff(TracksChanges):
    """A price list for charging, the OCPI Tariff object. Elements apply in `position` order."""

    country_code = models.CharField(max_length=2, validators=[validators.validate_country_alpha2])
    party_id = models.CharField(max_length=3, validators=[validators.validate_party_id])
    ocpi_id = models.CharField(
        "id", max_length=36, validators=[validators.validate_ci_string], help_text="OCPI id"
    )
    currency = models.CharField(max_length=3, validators=[validators.validate_currency])
    type = models.CharField(max_length=16, choices=TariffType.choices, blank=True)
    tariff_alt_text = models.JSONField(
        default=list, blank=True, validators=[validators.validate_display_text_list]
    )
    tariff_alt_url = models.URLField(max_length=255, blank=True)
    min_price_excl_vat = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    min_price_incl_vat = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    max_price_excl_vat = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    max_price_incl_vat = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    start_date_time = models.DateTimeField(null=True, blank=True)
    end_date_time = models.DateTimeField(null=True, blank=True)
    energy_mix = models.JSONField(
        null=True, blank=True, validators=[validators.validate_energy_mix]
    )
    created = models.DateTimeField(default=_now, editable=False)
    last_updated = models.DateTimeField(default=_now, db_index=True, editable=False)

    ocpi_fields = (
        "country_code", "party_id", "ocpi_id", "currency", "type", "tariff_alt_text",
        "tariff_alt_url", "min_price_excl_vat", "min_price_incl_vat", "max_price_excl_vat",
        "max_price_incl_vat", "start_date_time", "end_date_time", "energy_mix",
    )  # fmt: skip

    class Meta:
        ordering = ("created", "id")
        constraints = [
            models.UniqueConstraint(
                Lower("country_code"),
                Lower("party_id"),
                Lower("ocpi_id"),
                name="tariff_unique_ci_id",
            ),  # fmt: skip
        ]

    def __str__(self) -> str:
        return f"{self.ocpi_id} ({self.currency})"

    def on_changed(self, *, now, created: bool, changed_fields: set[str]) -> None:
        signals.tariff_changed.send(sender=Tariff, tariff=self, created=created)

    def clean(self) -> None:
        if self.min_price_incl_vat is not None and self.min_price_excl_vat is None:
            raise ValidationError("min_price needs excl_vat when incl_vat is given.")
        if self.max_price_incl_vat is not None and self.max_price_excl_vat is None:
            raise ValidationError("max_price needs excl_vat when incl_vat is given.")
        if (
            self.start_date_time
            and self.end_date_time
            and self.end_date_time <= self.start_date_time
        ):
            raise ValidationError("end_date_time must be after start_date_time.")

    def touch(self) -> None:
        """A part (element or price component) changed: bump last_updated and announce it."""
        self.last_updated = _now()
        Tariff.objects.filter(pk=self.pk).update(last_updated=self.last_updated)
        signals.tariff_changed.send(sender=Tariff, tariff=self, created=False)


class TariffElement(TracksChanges):
    """One element of a tariff: price components and the restrictions that switch them on."""

    tariff = models.ForeignKey(Tariff, on_delete=models.CASCADE, related_name="elements")
    position = models.PositiveIntegerField(default=0, help_text="Order matters: first match wins")
    start_time = models.CharField(
        max_length=5, blank=True, validators=[validators.validate_hhmm], help_text="local HH:MM"
    )
    end_time = models.CharField(
        max_length=5, blank=True, validators=[validators.validate_hhmm], help_text="local HH:MM"
    )
    start_date = models.CharField(
        max_length=10, blank=True, validators=[validators.validate_local_date]
    )
    end_date = models.CharField(
        max_length=10, blank=True, validators=[validators.validate_local_date]
    )
    min_kwh = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    max_kwh = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    min_current = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    max_current = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    min_power = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    max_power = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    min_duration = models.PositiveIntegerField(null=True, blank=True, help_text="seconds")
    max_duration = models.PositiveIntegerField(null=True, blank=True, help_text="seconds")
    day_of_week = models.JSONField(
        default=list, blank=True, validators=[validators.validate_days_of_week]
    )
    reservation = models.CharField(
        max_length=19, choices=ReservationRestrictionType.choices, blank=True
    )

    RESTRICTION_FIELDS = (
        "start_time", "end_time", "start_date", "end_date", "min_kwh", "max_kwh", "min_current",
        "max_current", "min_power", "max_power", "min_duration", "max_duration", "day_of_week",
        "reservation",
    )  # fmt: skip
    ocpi_fields = ("position", *RESTRICTION_FIELDS)

    class Meta:
        ordering = ("tariff_id", "position", "id")

    def __str__(self) -> str:
        return f"{self.tariff.ocpi_id} element {self.position}"

    def on_changed(self, *, now, created: bool, changed_fields: set[str]) -> None:
        self.tariff.touch()

    def has_restrictions(self) -> bool:
        return any(getattr(self, name) not in (None, "", []) for name in self.RESTRICTION_FIELDS)

    def delete(self, *args, **kwargs):
        tariff = self.tariff
        with transaction.atomic():
            result = super().delete(*args, **kwargs)
            tariff.touch()
        return result


class PriceComponent(TracksChanges):
    """A price for one dimension (ENERGY, FLAT, TIME, PARKING_TIME) of a tariff element."""

    element = models.ForeignKey(
        TariffElement, on_delete=models.CASCADE, related_name="price_components"
    )
    position = models.PositiveIntegerField(default=0)
    type = models.CharField(max_length=12, choices=TariffDimensionType.choices)
    price = models.DecimalField(
        max_digits=14, decimal_places=4, validators=[MinValueValidator(Decimal(0))],
        help_text="Excl. VAT, per kWh / per hour / per session (FLAT)",
    )  # fmt: skip
    vat = models.DecimalField(
        max_digits=6, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="Percentage; empty means no VAT applies (not the same as 0)",
    )  # fmt: skip
    step_size = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="Wh for ENERGY, s for times"
    )

    ocpi_fields = ("position", "type", "price", "vat", "step_size")

    class Meta:
        ordering = ("element_id", "position", "id")

    def __str__(self) -> str:
        return f"{self.type} {self.price}"

    def on_changed(self, *, now, created: bool, changed_fields: set[str]) -> None:
        self.element.tariff.touch()

    def delete(self, *args, **kwargs):
        tariff = self.element.tariff
        with transaction.atomic():
            result = super().delete(*args, **kwargs)
            tariff.touch()
        return result


from . import models_simulator  # noqa: E402, F401  (the charger simulator's state)
