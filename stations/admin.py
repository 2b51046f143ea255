"""Admin for the charge network: CPO staff run locations, EVSEs, connectors and tariffs here.

Every change goes through `Model.save()` (directly or through stations.services), so it is
validated, bumps `last_updated` up the tree and is pushed to partners. What OCPI cannot express is
not offered: locations and connectors are not deleted, and deleting an EVSE sets it to REMOVED
(the confirmation page and the message say so). Ids that OCPI says never change are read-only
once created. Lists stay fast on large networks: counts are per-row subqueries and foreign keys
use autocomplete widgets.
"""

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.options import IS_POPUP_VAR
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from .choices import EVSEStatus, PowerType
from .forms import (
    ConnectorForm,
    ConnectorInlineFormSet,
    EVSEForm,
    EVSEInlineFormSet,
    EVSEStatusForm,
    LocationForm,
    PriceComponentForm,
    TariffElementForm,
    TariffForm,
)
from .models import EVSE, Connector, Location, PriceComponent, Tariff, TariffElement
from .services import evse_remove, evses_set_status, tariff_referencing_connectors


def _child_count(model, parent_field: str):
    """COUNT of children per row as a correlated subquery: evaluated only for the shown page."""
    children = (
        model.objects.filter(**{parent_field: OuterRef("pk")})
        .order_by()
        .values(parent_field)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(children), 0)


def connector_power_kw(connector: Connector) -> str:
    """Maximum power in kW: max_electric_power, else V × A (× 3 for three-phase AC)."""
    watts = connector.max_electric_power
    if watts is None:
        phases = 3 if connector.power_type == PowerType.AC_3_PHASE else 1
        watts = connector.max_voltage * connector.max_amperage * phases
    return f"{watts / 1000:g} kW"


def _change_link(obj) -> str:
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, obj)


class AtLeastOneInline(admin.TabularInline):
    """An inline that must keep at least one row (OCPI: `+` cardinality). The admin ignores an
    inline's validate_min attribute, so it is passed to the formset here."""

    extra = 0
    min_num = 1

    def get_formset(self, request, obj=None, **kwargs):
        return super().get_formset(request, obj, validate_min=True, **kwargs)


# --- Location ----------------------------------------------------------------------------------


class EVSEInline(admin.TabularInline):
    """The EVSEs of a location, for a quick look and status changes. New EVSEs are added on the
    EVSE page, where their connectors (OCPI requires at least one) are entered with them."""

    model = EVSE
    form = EVSEForm
    formset = EVSEInlineFormSet
    fields = (
        "uid", "evse_id", "status", "physical_reference", "floor_level", "connector_summary",
        "last_updated",
    )  # fmt: skip
    readonly_fields = ("uid", "connector_summary", "last_updated")
    extra = 0
    can_delete = False  # retiring an EVSE (REMOVED) is done on its own page, with confirmation
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("connectors")

    @admin.display(description="connectors")
    def connector_summary(self, evse: EVSE) -> str:
        return ", ".join(f"{c.standard} {connector_power_kw(c)}" for c in evse.connectors.all())


class EVSEStatusFilter(admin.SimpleListFilter):
    """Locations with at least one EVSE in a status. A semi-join (pk IN ...) instead of the
    admin's per-row EXISTS for a reverse relation: fast on 100k locations."""

    title = "EVSE status"
    parameter_name = "evse_status"

    def lookups(self, request, model_admin):
        return EVSEStatus.choices

    def queryset(self, request, queryset):
        if self.value() not in EVSEStatus.values:
            return queryset
        return queryset.filter(
            pk__in=EVSE.objects.filter(status=self.value()).values("location_id")
        )


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    form = LocationForm
    inlines = (EVSEInline,)
    list_display = (
        "ocpi_id", "name", "city", "country", "evse_count", "publish", "last_updated",
    )  # fmt: skip
    list_filter = ("country", "parking_type", "publish", EVSEStatusFilter)
    search_fields = ("ocpi_id", "name", "address", "city")  # and EVSE uid / evse_id, below
    search_help_text = "Location id, name, address or city, or an EVSE's uid or EVSE ID"
    show_full_result_count = False
    date_hierarchy = "last_updated"
    list_per_page = 50
    readonly_fields = ("created", "last_updated", "add_evse_link")
    fieldsets = (
        (None, {"fields": ("country_code", "party_id", "ocpi_id", "name")}),
        ("Visibility", {"fields": ("publish", "publish_allowed_to")}),
        (
            "Address",
            {
                "fields": (
                    "address",
                    ("postal_code", "city"),
                    ("state", "country"),
                    ("latitude", "longitude"),
                    "time_zone",
                    "parking_type",
                    "related_locations",
                )  # fmt: skip
            },
        ),
        (
            "Opening hours and facilities",
            {"fields": ("opening_times", "charging_when_closed", "facilities", "directions")},
        ),
        ("Operator", {"fields": ("operator", "suboperator", "owner")}),
        ("Media and energy", {"fields": ("images", "energy_mix")}),
        ("History", {"fields": ("created", "last_updated", "add_evse_link")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(evse_total=_child_count(EVSE, "location"))

    def get_search_results(self, request, queryset, search_term):
        result, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            evses = EVSE.objects.filter(Q(uid__icontains=term) | Q(evse_id__icontains=term))
            result |= queryset.filter(pk__in=evses.values("location_id"))
        return result, may_have_duplicates

    @admin.display(description="EVSEs", ordering="evse_total")
    def evse_count(self, location: Location) -> int:
        return location.evse_total

    @admin.display(description="add EVSE")
    def add_evse_link(self, location: Location) -> str:
        if not location.pk:
            return "Save the location first."
        url = reverse("admin:stations_evse_add") + f"?location={location.pk}"
        return format_html('<a href="{}">Add an EVSE (with its connectors)</a>', url)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:  # OCPI: a location's identity never changes
            return ("country_code", "party_id", "ocpi_id", *self.readonly_fields)
        return self.readonly_fields

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("country_code", settings.OCPI_COUNTRY_CODE)
        initial.setdefault("party_id", settings.OCPI_PARTY_ID)
        initial.setdefault("operator", {"name": settings.OCPI_BUSINESS_NAME})
        return initial

    def has_delete_permission(self, request, obj=None) -> bool:
        # OCPI has no way to delete a location; retire its EVSEs (REMOVED) instead.
        return False


# --- EVSE --------------------------------------------------------------------------------------


class ConnectorInline(AtLeastOneInline):
    model = Connector
    form = ConnectorForm
    formset = ConnectorInlineFormSet
    fields = (
        "ocpi_id", "standard", "format", "power_type", "max_voltage", "max_amperage",
        "max_electric_power", "tariff_ids", "terms_and_conditions", "last_updated",
    )  # fmt: skip
    readonly_fields = ("last_updated",)
    can_delete = False  # connectors are never deleted
    show_change_link = True


@admin.action(permissions=["delete"], description="Remove selected EVSEs (status REMOVED)")
def remove_selected(modeladmin, request, queryset):
    """The EVSE version of "delete selected": the same confirmation page (saying what really
    happens), then every EVSE is set to REMOVED through its save()."""
    if not request.POST.get("post"):
        return delete_selected(modeladmin, request, queryset)
    if not modeladmin.has_delete_permission(request):
        raise PermissionDenied
    evses = list(queryset)
    modeladmin.log_deletions(request, evses)
    changed = evses_set_status(evses=evses, status=EVSEStatus.REMOVED)
    modeladmin.message_user(
        request,
        f"Set {changed} EVSE(s) to REMOVED ({len(evses) - changed} already were). EVSEs are "
        "never deleted: sessions and CDRs refer to them, and partners learn of the removal.",
        messages.SUCCESS,
    )
    return None


@admin.register(EVSE)
class EVSEAdmin(admin.ModelAdmin):
    form = EVSEForm
    inlines = (ConnectorInline,)
    list_display = (
        "__str__", "uid", "location_link", "status", "connector_count", "last_updated",
    )  # fmt: skip
    list_display_links = ("__str__",)
    list_editable = ("status",)
    list_filter = ("status", "location__country", "location__parking_type")
    search_fields = (
        "uid", "evse_id", "physical_reference", "location__ocpi_id", "location__name",
        "location__city",
    )  # fmt: skip
    list_select_related = ("location",)
    autocomplete_fields = ("location",)
    date_hierarchy = "last_updated"
    list_per_page = 50
    readonly_fields = ("created", "last_updated")
    actions = ("mark_available", "mark_inoperative", "mark_outoforder")
    fieldsets = (
        (None, {"fields": ("location", "uid", "evse_id", "status", "status_schedule")}),
        ("Capabilities", {"fields": ("capabilities", "parking_restrictions")}),
        (
            "Where",
            {
                "fields": (
                    ("physical_reference", "floor_level"),
                    ("latitude", "longitude"),
                    "directions",
                    "images",
                )  # fmt: skip
            },
        ),
        ("History", {"fields": ("created", "last_updated")}),
    )

    def get_queryset(self, request):
        return (
            super().get_queryset(request).annotate(connector_total=_child_count(Connector, "evse"))
        )

    @admin.display(description="location", ordering="location__ocpi_id")
    def location_link(self, evse: EVSE) -> str:
        return _change_link(evse.location)

    @admin.display(description="connectors", ordering="connector_total")
    def connector_count(self, evse: EVSE) -> int:
        return evse.connector_total

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:  # OCPI: uid never changes; moving an EVSE is a new EVSE
            return ("location", "uid", *self.readonly_fields)
        return self.readonly_fields

    def get_changelist_form(self, request, **kwargs):
        # The status column is validated like a save() of the whole EVSE.
        return super().get_changelist_form(request, form=EVSEStatusForm, **kwargs)

    def _set_status(self, request, queryset, status: str) -> None:
        evses = list(queryset)
        changed = evses_set_status(evses=evses, status=status)
        self.message_user(
            request, f"Set {changed} EVSE(s) to {status} ({len(evses) - changed} already were)."
        )

    @admin.action(permissions=["change"], description="Set status AVAILABLE")
    def mark_available(self, request, queryset):
        self._set_status(request, queryset, EVSEStatus.AVAILABLE)

    @admin.action(permissions=["change"], description="Set status INOPERATIVE")
    def mark_inoperative(self, request, queryset):
        self._set_status(request, queryset, EVSEStatus.INOPERATIVE)

    @admin.action(permissions=["change"], description="Set status OUTOFORDER")
    def mark_outoforder(self, request, queryset):
        self._set_status(request, queryset, EVSEStatus.OUTOFORDER)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            actions["delete_selected"] = (
                remove_selected,
                "delete_selected",
                remove_selected.short_description,
            )
        return actions

    # Deleting an EVSE sets it to REMOVED (templates/admin/stations/evse/ say so).

    def get_deleted_objects(self, objs, request):
        evses = list(objs)
        perms_needed = set() if self.has_delete_permission(request) else {"EVSE"}
        summary = [f"{e} at {e.location.ocpi_id}: {e.status} → REMOVED" for e in evses]
        return summary, {"EVSEs set to REMOVED": len(evses)}, perms_needed, []

    def delete_model(self, request, obj: EVSE) -> None:
        evse_remove(evse=obj)

    def delete_queryset(self, request, queryset) -> None:
        evses_set_status(evses=queryset, status=EVSEStatus.REMOVED)

    def log_deletions(self, request, queryset) -> None:
        for evse in queryset:
            self.log_change(request, evse, "Set status to REMOVED (EVSEs are never deleted).")

    def response_delete(self, request, obj_display, obj_id):
        if IS_POPUP_VAR in request.POST:
            return super().response_delete(request, obj_display, obj_id)
        self.message_user(
            request,
            f"The EVSE “{obj_display}” was set to REMOVED. EVSEs are never deleted: sessions "
            "and CDRs refer to them, and partners learn of the removal.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:stations_evse_change", args=[obj_id]))


# --- Connector ---------------------------------------------------------------------------------


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    form = ConnectorForm
    list_display = (
        "__str__", "evse_link", "standard", "format", "power_type", "power", "tariffs",
        "last_updated",
    )  # fmt: skip
    list_filter = ("standard", "power_type", "format", "evse__status")
    search_fields = ("ocpi_id", "evse__uid", "evse__evse_id", "evse__location__ocpi_id")
    list_select_related = ("evse",)
    autocomplete_fields = ("evse",)
    list_per_page = 50
    readonly_fields = ("created", "last_updated")

    @admin.display(description="EVSE", ordering="evse__uid")
    def evse_link(self, connector: Connector) -> str:
        return _change_link(connector.evse)

    @admin.display(description="max power")
    def power(self, connector: Connector) -> str:
        return connector_power_kw(connector)

    @admin.display(description="tariff ids")
    def tariffs(self, connector: Connector) -> str:
        return ", ".join(connector.tariff_ids)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return ("evse", "ocpi_id", *self.readonly_fields)
        return self.readonly_fields

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # connectors are never deleted; retire the EVSE (REMOVED)


# --- Tariff ------------------------------------------------------------------------------------


def _component_summary(element: TariffElement) -> str:
    parts = []
    for c in element.price_components.all():
        vat = "no VAT" if c.vat is None else f"VAT {c.vat.normalize():f}%"
        parts.append(f"{c.type} {c.price.normalize():f} ({vat}, step {c.step_size})")
    return "; ".join(parts) or "— none yet: open the element to add price components"


def _restriction_summary(element: TariffElement) -> str:
    parts = []
    for name in TariffElement.RESTRICTION_FIELDS:
        value = getattr(element, name)
        if value not in (None, "", []):
            shown = ",".join(v[:3] for v in value) if name == "day_of_week" else value
            parts.append(f"{name}={shown}")
    return " ".join(parts) or "always"


SHOWN_USERS = 20  # connectors named on a tariff's page


class TariffElementInline(admin.StackedInline):
    """Elements in order, with their restrictions. Django has no nested inlines: the price
    components of an element are edited on its own page (the "change" link)."""

    model = TariffElement
    form = TariffElementForm
    extra = 0
    show_change_link = True
    fields = (
        "position", "price_components", ("start_time", "end_time"), "day_of_week",
        ("start_date", "end_date"), ("min_kwh", "max_kwh"), ("min_current", "max_current"),
        ("min_power", "max_power"), ("min_duration", "max_duration"), "reservation",
    )  # fmt: skip
    readonly_fields = ("price_components",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("price_components")

    @admin.display(description="price components")
    def price_components(self, element: TariffElement) -> str:
        if not element.pk:
            return "Save first, then open the element to add price components."
        return _component_summary(element)


@admin.register(Tariff)
class TariffAdmin(admin.ModelAdmin):
    form = TariffForm
    inlines = (TariffElementInline,)
    list_display = (
        "ocpi_id", "type", "currency", "element_count", "start_date_time", "end_date_time",
        "last_updated",
    )  # fmt: skip
    list_filter = ("currency", "type")
    search_fields = ("ocpi_id",)
    date_hierarchy = "last_updated"
    readonly_fields = ("created", "last_updated", "add_element_link", "used_by")
    fieldsets = (
        (None, {"fields": ("country_code", "party_id", "ocpi_id", "currency", "type")}),
        (
            "Limits and validity",
            {
                "fields": (
                    ("min_price_excl_vat", "min_price_incl_vat"),
                    ("max_price_excl_vat", "max_price_incl_vat"),
                    ("start_date_time", "end_date_time"),
                )
            },
        ),
        ("Texts and energy", {"fields": ("tariff_alt_text", "tariff_alt_url", "energy_mix")}),
        ("History", {"fields": ("created", "last_updated", "used_by", "add_element_link")}),
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(element_total=_child_count(TariffElement, "tariff"))
        )

    @admin.display(description="elements", ordering="element_total")
    def element_count(self, tariff: Tariff) -> int:
        return tariff.element_total

    @admin.display(description="add element")
    def add_element_link(self, tariff: Tariff) -> str:
        if not tariff.pk:
            return "Save the tariff first."
        url = reverse("admin:stations_tariffelement_add") + f"?tariff={tariff.pk}"
        return format_html('<a href="{}">Add an element with its price components</a>', url)

    @admin.display(description="used by connectors")
    def used_by(self, tariff: Tariff) -> str:
        if not tariff.pk:
            return "—"
        connectors = tariff_referencing_connectors(tariff=tariff, limit=SHOWN_USERS + 1)
        if not connectors:
            return "none"
        shown = format_html_join(", ", "{}", ((_change_link(c),) for c in connectors[:SHOWN_USERS]))
        return format_html("{}{}", shown, " and more" if len(connectors) > SHOWN_USERS else "")

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return ("country_code", "party_id", "ocpi_id", *self.readonly_fields)
        return self.readonly_fields

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("country_code", settings.OCPI_COUNTRY_CODE)
        initial.setdefault("party_id", settings.OCPI_PARTY_ID)
        initial.setdefault("currency", "EUR")
        return initial

    def get_deleted_objects(self, objs, request):
        # OCPI: remove a tariff from all connectors before deleting it (PROTOCOL.md §4.4).
        objs = list(objs)
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        for tariff in objs:
            users = tariff_referencing_connectors(tariff=tariff, limit=SHOWN_USERS + 1)
            for connector in users[:SHOWN_USERS]:
                protected.append(f"Connector {connector} lists tariff {tariff.ocpi_id}")
            if len(users) > SHOWN_USERS:
                protected.append(f"... and more connectors list tariff {tariff.ocpi_id}")
        return deleted, counts, perms_needed, protected

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        empty = [e.position for e in form.instance.elements.all() if not e.price_components.all()]
        if empty:
            self.message_user(
                request,
                f"Element(s) at position {', '.join(map(str, empty))} have no price components "
                "yet; open them to add some (OCPI requires at least one).",
                messages.WARNING,
            )


class PriceComponentInline(AtLeastOneInline):
    model = PriceComponent
    form = PriceComponentForm
    fields = ("position", "type", "price", "vat", "step_size")


@admin.register(TariffElement)
class TariffElementAdmin(admin.ModelAdmin):
    """One element of a tariff with its price components. Reached from the tariff's page (not
    listed on the admin index); saving returns there."""

    form = TariffElementForm
    inlines = (PriceComponentInline,)
    list_display = ("__str__", "tariff", "position", "restrictions", "components")
    search_fields = ("tariff__ocpi_id",)
    list_select_related = ("tariff",)
    autocomplete_fields = ("tariff",)
    fields = (
        "tariff", "position", ("start_time", "end_time"), "day_of_week",
        ("start_date", "end_date"), ("min_kwh", "max_kwh"), ("min_current", "max_current"),
        ("min_power", "max_power"), ("min_duration", "max_duration"), "reservation",
    )  # fmt: skip

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("price_components")

    def has_module_permission(self, request) -> bool:
        return False

    @admin.display(description="restrictions")
    def restrictions(self, element: TariffElement) -> str:
        return _restriction_summary(element)

    @admin.display(description="price components")
    def components(self, element: TariffElement) -> str:
        return _component_summary(element)

    def get_readonly_fields(self, request, obj=None):
        return ("tariff",) if obj is not None else ()

    def _back_to_tariff(self, request, obj: TariffElement):
        self.message_user(request, f"Saved {obj}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:stations_tariff_change", args=[obj.tariff_id]))

    def response_add(self, request, obj, post_url_continue=None):
        if "_save" in request.POST and IS_POPUP_VAR not in request.POST:
            return self._back_to_tariff(request, obj)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if "_save" in request.POST and IS_POPUP_VAR not in request.POST:
            return self._back_to_tariff(request, obj)
        return super().response_change(request, obj)
