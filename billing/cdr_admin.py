"""Admin for Charge Detail Records: read-only, as a CDR never changes (PROTOCOL.md §10.15).

Staff see each CDR's partner, session, energy, cost, whether it reached the partner (delivery)
and whether the partner's copy matches ours (reconciliation), with the OCPI JSON partners get.
What staff may do goes through billing.cdrs:
- "Credit and correct" (button on a CDR, or the action on one selected CDR): a form asking a
  reason and, for a correction, the corrected energy or total; it makes the credit CDR and, when
  something was corrected, a new CDR (`cdr_credit`, `cdr_correct`). Both go to the partner.
- "Retry delivery" for CDRs that did not reach their partner (FAILED, NOT_SENT): their outbox
  row is due again now, or written if the partner now has a CDRs receiver
  (`cdr_request_delivery`). A delivered CDR is never sent again.
- "Reconciliation": per partner, sessions that ended without a (delivered) CDR and CDRs by
  delivery and reconciliation state, linking to the filtered lists.
"""

import json
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from . import seams
from .cdrs import (
    CDRError,
    cdr_correct,
    cdr_credit,
    cdr_reconciliation_status,
    cdr_request_delivery,
)
from .export import export_action
from .models_cdrs import CDR

Delivery = CDR.Delivery
RETRYABLE = (Delivery.FAILED, Delivery.NOT_SENT)


def pretty_json(text: str) -> str:
    """JSON text indented for reading, numbers exactly as written."""
    return _pretty(json.loads(text, parse_float=Decimal), 0)


def _pretty(value, depth: int) -> str:
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, dict) and value:
        items = (f"{inner}{json.dumps(k)}: {_pretty(v, depth + 1)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and value:
        items = (f"{inner}{_pretty(v, depth + 1)}" for v in value)
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


class CreditForm(forms.Form):
    reason = forms.CharField(
        max_length=255,
        help_text="Why (sent to the partner in the remark, and kept with the CDRs).",
    )
    total_energy = forms.DecimalField(
        label="Corrected energy (kWh)",
        required=False,
        min_value=Decimal(0),
        max_digits=12,
        decimal_places=4,
        help_text="The corrected CDR's periods are scaled to it and repriced with its tariffs.",
    )
    total_cost_excl_vat = forms.DecimalField(
        label="Corrected total excl. VAT",
        required=False,
        min_value=Decimal(0),
        max_digits=12,
        decimal_places=2,
        help_text="Sets the corrected CDR's total_cost (its subtotals are then left out).",
    )
    total_cost_incl_vat = forms.DecimalField(
        label="Corrected total incl. VAT",
        required=False,
        min_value=Decimal(0),
        max_digits=12,
        decimal_places=2,
        help_text="Default: the excl. VAT total with the CDR's VAT ratio.",
    )

    def clean(self):
        data = super().clean()
        if data.get("total_cost_incl_vat") is not None and data.get("total_cost_excl_vat") is None:
            raise forms.ValidationError("Give the total excl. VAT with the total incl. VAT.")
        return data

    @property
    def corrects(self) -> bool:
        data = self.cleaned_data
        return data.get("total_energy") is not None or data.get("total_cost_excl_vat") is not None


@admin.register(CDR)
class CDRAdmin(admin.ModelAdmin):
    list_display = (
        "ocpi_id",
        "partner",
        "session_link",
        "start_date_time",
        "energy",
        "cost",
        "delivery_state",
        "reconciliation",
        "credit",
    )
    list_filter = (
        "partner",
        "delivery",
        "reconciliation",
        "credit",
        ("start_date_time", admin.DateFieldListFilter),
    )
    search_fields = (
        "ocpi_id",
        "session_ocpi_id",
        "credit_reference_id",
        "cdr_token__uid",
        "cdr_token__contract_id",
        "cdr_location__id",
        "cdr_location__evse_id",
        "partner__name",
    )
    list_select_related = ("partner", "session")
    date_hierarchy = "start_date_time"
    ordering = ("-created", "-pk")
    actions = ("credit_and_correct", "retry_delivery", export_action)
    change_form_template = "admin/billing/cdr/change_form.html"
    change_list_template = "admin/billing/cdr/change_list.html"
    fieldsets = (
        (None, {"fields": ("ocpi_id", "partner", "session", "credit", "credit_reference_id")}),
        (
            "Session",
            {
                "fields": (
                    "start_date_time",
                    "end_date_time",
                    "time_zone",
                    "auth_method",
                    "authorization_reference",
                    "cdr_token",
                    "cdr_location",
                    "meter_id",
                )
            },
        ),  # fmt: skip
        (
            "Totals",
            {
                "fields": (
                    "currency",
                    "total_energy",
                    "total_time",
                    "total_parking_time",
                    "total_cost_excl_vat",
                    "total_cost_incl_vat",
                    "remark",
                )
            },
        ),  # fmt: skip
        ("Corrections", {"fields": ("correction_reason", "corrected_by", "related")}),
        (
            "Delivery and reconciliation",
            {
                "fields": (
                    "delivery",
                    "sent_at",
                    "partner_location_url",
                    "outbox",
                    "reconciliation",
                    "reconciled_at",
                    "reconciliation_note",
                )
            },
        ),  # fmt: skip
        ("OCPI", {"fields": ("ocpi_json", "last_updated", "created")}),
    )
    readonly_fields = ("related", "outbox", "ocpi_json")

    # -- columns ------------------------------------------------------------------------------
    @admin.display(description="Session", ordering="session_ocpi_id")
    def session_link(self, cdr: CDR) -> str:
        if cdr.session_id is None:
            return cdr.session_ocpi_id or "—"
        url = reverse("admin:billing_session_change", args=[cdr.session_id])
        return format_html('<a href="{}">{}</a>', url, cdr.session_ocpi_id)

    @admin.display(description="kWh", ordering="total_energy")
    def energy(self, cdr: CDR) -> str:
        return f"{cdr.total_energy.normalize():f}"

    @admin.display(description="Total cost (incl. VAT)", ordering="total_cost_incl_vat")
    def cost(self, cdr: CDR) -> str:
        value = cdr.total_cost_incl_vat
        if value is None:
            value = cdr.total_cost_excl_vat
        return f"{value:.2f} {cdr.currency}"

    @admin.display(description="Delivery", ordering="delivery")
    def delivery_state(self, cdr: CDR) -> str:
        colours = {Delivery.FAILED: "#ba2121", Delivery.DELIVERED: "#417505"}
        return format_html(
            '<span style="color: {}">{}</span>',
            colours.get(cdr.delivery, "inherit"),
            cdr.get_delivery_display(),
        )

    @admin.display(description="Credits and corrections")
    def related(self, cdr: CDR) -> str:
        rows = CDR.objects.filter(corrected_by=cdr).order_by("pk")
        if not rows:
            return "—"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a> ({})',
            (
                (
                    reverse("admin:billing_cdr_change", args=[row.pk]),
                    row.ocpi_id,
                    "credit" if row.credit else "corrected CDR",
                )
                for row in rows
            ),
        )

    @admin.display(description="Outbox")
    def outbox(self, cdr: CDR) -> str:
        if cdr.partner_id is None:
            return "—"
        url = reverse("admin:ocpi_outboxmessage_changelist")
        query = f"?module=cdrs&partner__id__exact={cdr.partner_id}"
        return format_html(
            '<a href="{}{}">The partner\'s CDR pushes (errors and attempts)</a>', url, query
        )

    @admin.display(description="OCPI JSON (as partners get it)")
    def ocpi_json(self, cdr: CDR) -> str:
        renderer = seams.registry.cdr_renderer
        if renderer is None:
            return "—"
        text = pretty_json(renderer(cdr))
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', text)

    # -- read-only ------------------------------------------------------------------------------
    def has_add_permission(self, request) -> bool:
        return False  # CDRs come from sessions, credits and corrections

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a CDR never changes

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_credit_permission(self, request) -> bool:
        """Crediting, correcting and resending CDRs: staff who may change CDRs."""
        return request.user.has_perm("billing.change_cdr")

    # -- actions --------------------------------------------------------------------------------
    @admin.action(description="Credit and correct the selected CDR", permissions=["credit"])
    def credit_and_correct(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one CDR to credit.", messages.WARNING)
            return None
        cdr = queryset.get()
        return HttpResponseRedirect(reverse("admin:billing_cdr_credit", args=[cdr.pk]))

    @admin.action(description="Retry delivery (failed or not sent)", permissions=["credit"])
    def retry_delivery(self, request, queryset):
        done = []
        for cdr in queryset.filter(delivery__in=RETRYABLE).order_by("pk"):
            done += cdr_request_delivery(cdr=cdr)
        skipped = queryset.exclude(delivery__in=RETRYABLE).count()
        text = " ".join(done) or "Nothing to retry."
        if skipped:
            text += f" {skipped} CDR(s) skipped (delivered or waiting already)."
        self.message_user(request, text, messages.SUCCESS if done else messages.WARNING)

    # -- pages ----------------------------------------------------------------------------------
    def get_urls(self):
        def view(func):
            return self.admin_site.admin_view(func)

        return [
            path("<int:object_id>/credit/", view(self.credit_view), name="billing_cdr_credit"),
            path(
                "<int:object_id>/retry/",
                view(require_POST(self.retry_view)),
                name="billing_cdr_retry",
            ),
            path(
                "reconciliation/",
                view(self.reconciliation_view),
                name="billing_cdr_reconciliation",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        cdr = self.get_object(request, object_id)
        extra_context = {
            **(extra_context or {}),
            "may_credit": cdr is not None
            and self.has_credit_permission(request)
            and not cdr.credit
            and not CDR.objects.filter(corrected_by=cdr, credit=True).exists(),
            "may_retry": cdr is not None
            and self.has_credit_permission(request)
            and cdr.delivery in RETRYABLE,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def credit_view(self, request, object_id):
        if not self.has_credit_permission(request):
            raise PermissionDenied
        cdr = get_object_or_404(CDR, pk=object_id)
        form = CreditForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                with transaction.atomic():
                    if form.corrects:
                        credit, corrected = cdr_correct(
                            cdr=cdr,
                            reason=data["reason"],
                            user=request.user,
                            total_energy=data.get("total_energy"),
                            total_cost_excl_vat=data.get("total_cost_excl_vat"),
                            total_cost_incl_vat=data.get("total_cost_incl_vat"),
                        )
                        made = [credit, corrected]
                    else:
                        made = [cdr_credit(cdr=cdr, reason=data["reason"], user=request.user)]
            except CDRError as exc:
                form.add_error(None, str(exc))
            else:
                for new in made:
                    self.log_addition(request, new, f"{data['reason']} (for {cdr.ocpi_id})")
                self.message_user(
                    request,
                    f"{cdr.ocpi_id}: made {', '.join(c.ocpi_id for c in made)}; "
                    "they go to the partner like any CDR.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:billing_cdr_change", args=[cdr.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "form": form,
            "cdr": cdr,
            "title": f"Credit and correct {cdr.ocpi_id}",
        }
        return TemplateResponse(request, "admin/billing/cdr/credit.html", context)

    def retry_view(self, request, object_id):
        if not self.has_credit_permission(request):
            raise PermissionDenied
        cdr = get_object_or_404(CDR, pk=object_id)
        try:
            done = cdr_request_delivery(cdr=cdr)
        except CDRError as exc:
            self.message_user(request, str(exc), messages.WARNING)
        else:
            self.message_user(request, " ".join(done) or "Nothing to retry.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:billing_cdr_change", args=[cdr.pk]))

    def reconciliation_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = reverse("admin:billing_cdr_changelist")
        rows = []
        for status in cdr_reconciliation_status():
            base = f"{changelist}?partner__id__exact={status.partner_id}"
            rows.append(
                {
                    "status": status,
                    "all": base,
                    "failed": f"{base}&delivery__exact={Delivery.FAILED}",
                    "pending": f"{base}&delivery__exact={Delivery.PENDING}",
                    "not_sent": f"{base}&delivery__exact={Delivery.NOT_SENT}",
                    "mismatch": f"{base}&reconciliation__exact={CDR.Reconciliation.MISMATCH}",
                    "unavailable": (
                        f"{base}&reconciliation__exact={CDR.Reconciliation.UNAVAILABLE}"
                    ),
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "rows": rows,
            "title": "CDR reconciliation per partner",
        }
        return TemplateResponse(request, "admin/billing/cdr/reconciliation.html", context)
