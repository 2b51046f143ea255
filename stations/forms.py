"""Admin forms for the charge network.

The models call `full_clean()` in `save()`, so anything a form lets through but the model rejects
would surface as a server error. These forms run the model's complete validation while the form
is validated and show what it finds as form errors. Lists of OCPI enum values are checkboxes and
tariff ids a comma-separated line; the other OCPI value objects are JSON with an example.
"""

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, ValidationError
from django.db import models
from django.forms.models import InlineForeignKeyField

from . import choices
from .models import EVSE, Connector, Location, PriceComponent, Tariff, TariffElement

JSON_HELP = {
    "publish_allowed_to": (
        'Only used when publish is off. OCPI PublishTokenType list, e.g. [{"group_id": '
        '"ACME-FLEET"}, {"uid": "04A1B2C3D4", "type": "RFID"}, {"visual_number": '
        '"NL-ACM-000123-4", "issuer": "Acme Mobility"}]'
    ),
    "opening_times": (
        'OCPI Hours; empty = no information (treated as 24/7). {"twentyfourseven": true} or '
        '{"twentyfourseven": false, "regular_hours": [{"weekday": 1, "period_begin": "08:00", '
        '"period_end": "20:00"}], "exceptional_closings": [{"period_begin": '
        '"2025-12-24T23:00:00Z", "period_end": "2025-12-25T23:00:00Z"}]}. Weekday 1 = Monday; '
        "regular hours are local time, exceptional periods UTC."
    ),
    "images": (
        'List of OCPI Image, e.g. [{"url": "https://example.com/site.jpg", "category": '
        '"LOCATION", "type": "jpeg", "width": 1024, "height": 768}]. Categories: '
        + ", ".join(choices.IMAGE_CATEGORIES)
        + "."
    ),
    "energy_mix": (
        'OCPI EnergyMix, e.g. {"is_green_energy": true, "energy_sources": [{"source": "WIND", '
        '"percentage": 70}, {"source": "SOLAR", "percentage": 30}], "supplier_name": '
        '"Demo Energie B.V."}. Sources: ' + ", ".join(choices.ENERGY_SOURCE_CATEGORIES) + "."
    ),
    "directions": (
        'List of OCPI DisplayText, e.g. [{"language": "en", "text": "Level -1, bays 12-15"}]'
    ),
    "tariff_alt_text": (
        'List of OCPI DisplayText, e.g. [{"language": "en", "text": "Idle fee applies after '
        'charging"}]. Do not repeat the structured prices here.'
    ),
    "related_locations": (
        'List of OCPI AdditionalGeoLocation, e.g. [{"latitude": "52.370216", "longitude": '
        '"4.895168", "name": {"language": "en", "text": "Pedestrian entrance"}}]'
    ),
    "operator": 'OCPI BusinessDetails, e.g. {"name": "Open CPO", "website": "https://example.com"}',
    "suboperator": 'OCPI BusinessDetails, e.g. {"name": "Garage Operator B.V."}',
    "owner": 'OCPI BusinessDetails, e.g. {"name": "Municipality of Utrecht"}',
    "status_schedule": (
        'Planned statuses (informational), e.g. [{"period_begin": "2026-03-01T00:00:00Z", '
        '"status": "AVAILABLE"}]. The real change must still be made when it happens.'
    ),
}


# The models' case-insensitive unique constraints, in words staff understand.
CONSTRAINT_MESSAGES = {
    "location_unique_ci_id": "A location with this id already exists (ids ignore case).",
    "evse_unique_ci_uid": "This location already has an EVSE with this uid (uids ignore case).",
    "connector_unique_ci_id": "This EVSE already has a connector with this id (ids ignore case).",
    "tariff_unique_ci_id": "A tariff with this id already exists (ids ignore case).",
}


def _json_widget() -> forms.Textarea:
    return forms.Textarea(attrs={"rows": 3, "cols": 90, "style": "font-family: monospace"})


class EnumListField(forms.MultipleChoiceField):
    """A list of OCPI enum values (capabilities, facilities, ...) as checkboxes."""

    widget = forms.CheckboxSelectMultiple

    def __init__(self, values, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(choices=[(v, v) for v in values], **kwargs)


class TariffIdsField(forms.CharField):
    """`Connector.tariff_ids` as one comma-separated line."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text",
            "Comma-separated tariff ids, e.g. NL-AC-REGULAR, NL-DC-ADHOC. At most one tariff "
            "per tariff type may be active at a time. The tariffs must exist.",
        )
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(value)
        return value

    def to_python(self, value) -> list[str]:
        if isinstance(value, list):
            return value
        return [part.strip() for part in (value or "").split(",") if part.strip()]

    def has_changed(self, initial, data) -> bool:
        return self.to_python(initial or []) != self.to_python(data)


class ModelValidationForm(forms.ModelForm):
    """A ModelForm that runs everything `Model.save()` will run, so errors become form errors.

    Django's ModelForm validates only the fields on the form; our models validate all fields
    (and their constraints) again in `save()`, e.g. an EVSE row on the change list that only
    edits `status`. Errors on fields the form does not show are listed above the form with the
    field name.
    """

    def clean(self):
        cleaned = super().clean()
        for name, value in list(cleaned.items()):
            field = self._model_field(name)
            if field is None:
                continue
            if value is None and isinstance(field, models.JSONField) and not field.null:
                # An emptied JSON box means "none": the list default, not SQL NULL.
                cleaned[name] = field.get_default()
            if isinstance(self.fields[name], EnumListField | TariffIdsField) and (
                self.instance.pk and name not in self.changed_data
            ):
                # Unchanged selection: keep the stored order, so saving an untouched form is
                # not a change (no last_updated bump, no push).
                cleaned[name] = getattr(self.instance, name)
        return cleaned

    def _model_field(self, name: str):
        try:
            return self._meta.model._meta.get_field(name)
        except FieldDoesNotExist:  # a form-only field
            return None

    def _post_clean(self):
        super()._post_clean()
        if self._errors:
            return
        exclude = set()
        for name, field in self.fields.items():
            # An inline's parent may not exist yet (added on the same page): skip its key.
            if isinstance(field, InlineForeignKeyField):
                model_field = self._meta.model._meta.get_field(name)
                if getattr(self.instance, model_field.attname) is None:
                    exclude.add(name)
        try:
            self.instance.full_clean(exclude=exclude)
        except ValidationError as exc:
            self._add_model_errors(exc)

    def _add_model_errors(self, exc: ValidationError) -> None:
        error_dict = exc.error_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc}
        for name, errors in error_dict.items():
            messages = [_readable(m) for error in errors for m in ValidationError(error).messages]
            if name in self.fields:
                self.add_error(name, messages)
            elif name == NON_FIELD_ERRORS:
                self.add_error(None, messages)
            else:
                self.add_error(None, [f"{name}: {message}" for message in messages])

    def _update_errors(self, errors: ValidationError) -> None:
        # Django's own constraint check (fields all on the form) also gets the readable text.
        if hasattr(errors, "error_dict") and NON_FIELD_ERRORS in errors.error_dict:
            errors.error_dict[NON_FIELD_ERRORS] = [
                ValidationError(_readable(m), code=e.code)
                for e in errors.error_dict[NON_FIELD_ERRORS]
                for m in e.messages
            ]
        super()._update_errors(errors)


def _readable(message: str) -> str:
    return next((text for key, text in CONSTRAINT_MESSAGES.items() if key in message), message)


class LocationForm(ModelValidationForm):
    facilities = EnumListField(choices.FACILITIES)

    class Meta:
        model = Location
        fields = Location.ocpi_fields
        help_texts = {
            **{
                k: JSON_HELP[k]
                for k in (
                    "publish_allowed_to",
                    "opening_times",
                    "images",
                    "energy_mix",
                    "directions",
                    "related_locations",
                    "operator",
                    "suboperator",
                    "owner",
                )
            },  # fmt: skip
            "country_code": "Owner CPO's ISO 3166-1 alpha-2 code, e.g. NL",
            "party_id": "Owner CPO's party id (3 characters)",
            "ocpi_id": "OCPI id (max 36 ASCII characters); it never changes once created",
            "country": "ISO 3166-1 alpha-3 code, e.g. NLD or DEU",
            "latitude": "WGS 84, 5 to 7 decimals, e.g. 52.3702160",
            "longitude": "WGS 84, 5 to 7 decimals, e.g. 4.8951680",
            "time_zone": "IANA name, e.g. Europe/Amsterdam; restrictions and hours are local",
            "charging_when_closed": "Can a car keep charging outside opening hours? Unknown = yes",
            "address": "Street and number",
        }
        widgets = {
            name: _json_widget()
            for name in (
                "publish_allowed_to", "opening_times", "images", "energy_mix", "directions",
                "related_locations", "operator", "suboperator", "owner",
            )
        }  # fmt: skip


class EVSEForm(ModelValidationForm):
    capabilities = EnumListField(choices.CAPABILITIES)
    parking_restrictions = EnumListField(choices.PARKING_RESTRICTIONS)

    class Meta:
        model = EVSE
        fields = ("location", *EVSE.ocpi_fields)
        help_texts = {
            "status_schedule": JSON_HELP["status_schedule"],
            "directions": JSON_HELP["directions"],
            "images": JSON_HELP["images"],
            "uid": "Technical id, unique within the CPO forever; never changes (not the serial "
            "number of the hardware)",
            "evse_id": "eMI3 EVSE ID, e.g. NL*CPO*E12345*1",
            "physical_reference": "Number printed on the charger (max 16 characters)",
            "floor_level": "e.g. -1, 0, 2 (max 4 characters)",
            "latitude": "Only when the EVSE is far from the location's point; 5-7 decimals",
            "status": "Changes are pushed to partners. Use the delete action to retire an "
            "EVSE (it becomes REMOVED).",
        }
        widgets = {name: _json_widget() for name in ("status_schedule", "directions", "images")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and "uid" in self.fields:
            self.fields["uid"].disabled = True  # OCPI: an EVSE uid never changes


class EVSEStatusForm(ModelValidationForm):
    """The status column of the EVSE change list."""

    class Meta:
        model = EVSE
        fields = ("status",)


class ConnectorForm(ModelValidationForm):
    tariff_ids = TariffIdsField()
    terms_and_conditions = forms.URLField(max_length=255, required=False, assume_scheme="https")

    class Meta:
        model = Connector
        fields = ("evse", *Connector.ocpi_fields)
        help_texts = {
            "ocpi_id": "Connector id, unique within its EVSE (e.g. 1, 2); never changes",
            "max_voltage": "V (line to neutral for AC_3_PHASE, e.g. 230; DC e.g. 920)",
            "max_electric_power": "W; set it when lower than V×A(×3 phases), e.g. 22000",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and "ocpi_id" in self.fields:
            self.fields["ocpi_id"].disabled = True

    def clean_tariff_ids(self) -> list[str]:
        ids = self.cleaned_data["tariff_ids"]
        known = {
            t.lower()
            for t in Tariff.objects.filter(ocpi_id__lower__in=[i.lower() for i in ids]).values_list(
                "ocpi_id", flat=True
            )
        }
        unknown = [i for i in ids if i.lower() not in known]
        if unknown:
            raise ValidationError(
                "Unknown tariff id(s): %(ids)s. Create the tariff first: partners need it "
                "before a connector refers to it.",
                params={"ids": ", ".join(unknown)},
            )
        if len({i.lower() for i in ids}) != len(ids):
            raise ValidationError("A tariff id is listed twice.")
        return ids


class TariffForm(ModelValidationForm):
    tariff_alt_url = forms.URLField(
        max_length=255,
        required=False,
        assume_scheme="https",
        help_text="A page explaining the tariff to drivers",
    )

    class Meta:
        model = Tariff
        fields = Tariff.ocpi_fields
        help_texts = {
            "tariff_alt_text": JSON_HELP["tariff_alt_text"],
            "energy_mix": JSON_HELP["energy_mix"],
            "ocpi_id": "OCPI id (max 36 ASCII characters). Prefer a new tariff over editing one "
            "in use: the tariff at session start governs the session.",
            "currency": "ISO 4217, e.g. EUR",
            "type": "Empty = applies to all sessions",
            "min_price_excl_vat": "A session never costs less than this (excl. VAT)",
            "max_price_excl_vat": "A session never costs more than this (excl. VAT)",
            "start_date_time": "UTC; empty = valid now",
            "end_date_time": "UTC; empty = no end",
        }
        widgets = {name: _json_widget() for name in ("tariff_alt_text", "energy_mix")}


class TariffElementForm(ModelValidationForm):
    day_of_week = EnumListField(choices.DAYS_OF_WEEK)

    class Meta:
        model = TariffElement
        fields = ("tariff", *TariffElement.ocpi_fields)
        help_texts = {
            "start_time": "Local HH:MM, from (inclusive). End before start wraps past midnight.",
            "end_time": "Local HH:MM, until (exclusive); 00:00 = end of day",
            "start_date": "Local YYYY-MM-DD, from (inclusive)",
            "end_date": "Local YYYY-MM-DD, until (exclusive)",
            "min_kwh": "Session energy so far ≥ this (kWh)",
            "max_kwh": "Session energy so far < this (kWh)",
            "min_current": "Current now ≥ this (A, sum of phases)",
            "max_current": "Current now < this (A)",
            "min_power": "Power now ≥ this (kW)",
            "max_power": "Power now < this (kW)",
            "min_duration": "Session duration so far ≥ this (s)",
            "max_duration": "Session duration so far < this (s)",
            "reservation": "Set only for an element that prices a reservation (FLAT and TIME)",
        }


class PriceComponentForm(ModelValidationForm):
    class Meta:
        model = PriceComponent
        fields = ("element", *PriceComponent.ocpi_fields)
        help_texts = {
            "price": "Excl. VAT, per kWh (ENERGY), per hour (TIME, PARKING_TIME) or per session "
            "(FLAT)",
            "vat": "Percentage, e.g. 21; empty means no VAT applies (not the same as 0)",
            "step_size": "Billing block: Wh for ENERGY, seconds for TIME and PARKING_TIME, 1 for "
            "FLAT",
        }


class EVSEInlineFormSet(forms.BaseInlineFormSet):
    """Rejects two EVSEs of one location whose uids differ only in case."""

    key = "uid"

    def clean(self):
        super().clean()
        seen = set()
        for form in self.forms:
            if not getattr(form, "cleaned_data", None) or form.cleaned_data.get("DELETE"):
                continue
            value = form.cleaned_data.get(self.key) or getattr(form.instance, self.key, "")
            if not value:
                continue
            if value.lower() in seen:
                raise ValidationError(
                    "%(key)s %(value)s appears twice (ids are compared case-insensitively).",
                    params={"key": self.key, "value": value},
                )
            seen.add(value.lower())


class ConnectorInlineFormSet(EVSEInlineFormSet):
    """Rejects two connectors of one EVSE whose ids differ only in case."""

    key = "ocpi_id"
