"""Admin for charging sessions: live kWh, status, partner, token and place, the charging periods,
and staff's buttons to start a session at a charger and to stop running ones.

Sessions are the chargers' record, so staff only read them; starting and stopping go through
the charger gateway (stations.gateway) like a partner's commands, so the session that follows
is reported, recorded and pushed exactly as any other.
"""

import secrets

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from stations import gateway
from stations.choices import EVSEStatus
from stations.models import EVSE

from .choices import SessionStatus
from .models import ChargingPeriod, Session, Token
from .sessions import pending_start_register
from .tokens import token_authorize


class ChargingPeriodInline(admin.TabularInline):
    model = ChargingPeriod
    fields = ("start_date_time", "kind", "tariff_id", "volumes")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("start_date_time", "pk")

    @admin.display(description="Kind")
    def kind(self, period: ChargingPeriod) -> str:
        return "Charging" if period.charging else "Parking (not charging)"

    @admin.display(description="Volumes")
    def volumes(self, period: ChargingPeriod) -> str:
        units = {"ENERGY": "kWh", "TIME": "h", "PARKING_TIME": "h", "MAX_POWER": "kW",
                 "MIN_POWER": "kW"}  # fmt: skip
        return ", ".join(
            f"{d['type']} {d['volume']} {units.get(d['type'], '')}".strip()
            for d in period.dimensions
        )

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = (
        "ocpi_id",
        "status",
        "live_kwh",
        "partner",
        "token_uid",
        "place",
        "start_date_time",
        "end_date_time",
        "cost",
    )
    list_filter = ("status", "auth_method", "partner", "stop_reason")
    search_fields = (
        "ocpi_id",
        "transaction_ref",
        "authorization_reference",
        "cdr_token__uid",
        "cdr_token__contract_id",
        "location__ocpi_id",
        "location__name",
        "evse__uid",
        "evse__evse_id",
    )
    list_select_related = ("partner", "location", "evse", "connector")
    date_hierarchy = "start_date_time"
    ordering = ("-created", "-pk")
    inlines = (ChargingPeriodInline,)
    actions = ("stop_at_charger",)
    fieldsets = (
        (None, {"fields": ("ocpi_id", "status", "kwh", "partner", "token", "cdr_token")}),
        (
            "Where and when",
            {"fields": ("location", "evse", "connector", "start_date_time", "end_date_time")},
        ),
        (
            "Authorization and billing",
            {
                "fields": (
                    "auth_method",
                    "authorization_reference",
                    "reservation",
                    "currency",
                    "total_cost_excl_vat",
                    "total_cost_incl_vat",
                    "charging_preferences",
                    "charging_profile",
                )
            },
        ),
        (
            "Charger",
            {"fields": ("transaction_ref", "meter_start_wh", "meter_id", "stop_reason")},
        ),
        ("History", {"fields": ("created", "last_updated", "last_announced_at", "traffic")}),
    )

    @admin.display(description="kWh", ordering="kwh")
    def live_kwh(self, session: Session) -> str:
        return f"{session.kwh.normalize():f}"

    @admin.display(description="Token", ordering="cdr_token__uid")
    def token_uid(self, session: Session) -> str:
        return session.cdr_token.get("uid", "")

    @admin.display(description="Location / EVSE", ordering="location__ocpi_id")
    def place(self, session: Session) -> str:
        return f"{session.location.ocpi_id} / {session.evse}"

    @admin.display(description="Cost so far (incl. VAT)")
    def cost(self, session: Session) -> str:
        if session.total_cost_incl_vat is None:
            return "—"
        return f"{session.total_cost_incl_vat:.2f} {session.currency}"

    @admin.display(description="OCPI traffic")
    def traffic(self, session: Session) -> str:
        """The traffic log searched for the session's id: its pushes and the partner's requests
        naming it (charging preferences, charging profiles)."""
        query = {"q": session.ocpi_id}
        if session.partner_id is not None:
            query["partner__id__exact"] = session.partner_id
        url = f"{reverse('admin:ocpi_trafficlog_changelist')}?{urlencode(query)}"
        return format_html('<a href="{}">Messages with the partner about it</a>', url)

    def get_readonly_fields(self, request, obj=None):
        fields = [f.name for f in Session._meta.fields if f.name != "id"]
        return [*fields, "last_announced_at", "traffic"]

    def has_add_permission(self, request) -> bool:
        return False  # sessions come from the chargers; "Start a session" asks one

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the partner has them, CDRs follow from them

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_charge_permission(self, request) -> bool:
        """Starting and stopping charges: staff who may change sessions."""
        return request.user.has_perm("billing.change_session")

    @admin.action(description="Stop the selected sessions at the charger", permissions=["charge"])
    def stop_at_charger(self, request, queryset):
        asked, skipped = 0, 0
        charger_gateway = gateway.gateway()
        for session in queryset.filter(status=SessionStatus.ACTIVE).exclude(transaction_ref=""):
            if charger_gateway.stop_transaction(
                request_ref=f"ADMIN-{secrets.token_hex(8)}",
                transaction_ref=session.transaction_ref,
            ):
                asked += 1
            else:
                skipped += 1
        skipped += queryset.exclude(status=SessionStatus.ACTIVE).count()
        self.message_user(
            request,
            f"Asked the charger to stop {asked} session(s); {skipped} not running or unreachable.",
            messages.SUCCESS if asked else messages.WARNING,
        )

    # -- "Start a session" ----------------------------------------------------------------
    def get_urls(self):
        start = transaction.non_atomic_requests(self.admin_site.admin_view(self.start_view))
        return [path("start/", start, name="billing_session_start"), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "may_start": self.has_charge_permission(request)}
        return super().changelist_view(request, extra_context)

    def start_view(self, request):
        if not self.has_charge_permission(request):
            raise PermissionDenied
        form = StartSessionForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            error = session_start_at_charger(**form.cleaned_data)
            if error:
                form.add_error(None, error)
            else:
                evse = form.cleaned_data["evse"]
                self.message_user(
                    request,
                    f"Asked {evse} to start charging for {form.cleaned_data['token'].uid}; "
                    "the session appears here once the charger reports it.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:billing_session_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "title": "Start a session at a charger",
        }
        return TemplateResponse(request, "admin/billing/session/start.html", context)


class StartSessionForm(forms.Form):
    token = forms.ModelChoiceField(
        queryset=Token.objects.filter(blocked=False, valid=True).select_related("partner"),
        help_text="A driver's token from a partner; it is authorized as at the charger.",
    )
    evse = forms.ModelChoiceField(
        label="EVSE",
        queryset=EVSE.objects.filter(status=EVSEStatus.AVAILABLE).select_related("location"),
        help_text="A free EVSE; the charger chooses the connector if it has several.",
    )


def session_start_at_charger(*, token: Token, evse: EVSE) -> str:
    """Authorize `token` at `evse` (as a swipe would be) and ask the charger to start; returns
    an error for staff, or "" when the charger was asked."""
    decision = token_authorize(uid=token.uid, token_type=token.type, evse=evse)
    if not decision.authorized:
        return f"Not authorized: {decision.allowed} ({decision.reason})."
    request_ref = f"ADMIN-{secrets.token_hex(8)}"
    connectors = list(evse.connectors.order_by("created", "pk"))
    with transaction.atomic():
        pending_start_register(
            request_ref=request_ref,
            partner_id=token.partner_id,
            cdr_token=token.cdr_token(),
            auth_method=decision.auth_method,
            authorization_reference=decision.authorization_reference,
            token_pk=token.pk,
            location=evse.location_id,
            evse=evse,
            connector=connectors[0] if len(connectors) == 1 else None,
        )
        asked = gateway.gateway().start_transaction(
            request_ref=request_ref, evse_pk=evse.pk, connector_pk=None, id_tag=token.uid
        )
        if not asked:
            transaction.set_rollback(True)
            return f"The charger of {evse} cannot be reached."
    return ""
