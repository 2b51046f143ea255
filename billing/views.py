"""Finance staff pages (mounted under /staff/, linked from the admin index's "Finance" box):

- /staff/cdrs/export/: a form (from, to, partner); submitted, the CDRs as the finance CSV,
  streamed (billing/export.py documents the columns and the format).
- /staff/settlement/: the per-partner, per-month settlement summary as a table, and the same
  as CSV with ?format=csv.

Both need a staff login (else the admin login page) and the permission to view CDRs. Ranges are
in UTC and half-open, as in the commands: CDRs whose start_date_time is in [from, to).
"""

from __future__ import annotations

from datetime import date, timedelta

from django import forms
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from .export import (
    SETTLEMENT_COLUMNS,
    cdr_csv,
    csv_response,
    export_filename,
    in_one_transaction,
    month_after,
    parse_month,
    settlement_csv,
)
from .selectors import cdr_export_queryset, export_partner_choices, settlement_rows


def _this_month() -> date:
    return timezone.now().date().replace(day=1)


def _previous_month() -> date:
    return (_this_month() - timedelta(days=1)).replace(day=1)


class _PartnerField(forms.ModelChoiceField):
    def __init__(self) -> None:
        super().__init__(
            queryset=export_partner_choices(), required=False, empty_label="All partners"
        )


class CDRExportForm(forms.Form):
    date_from = forms.DateField(
        label="From", help_text="UTC, inclusive: CDRs that started on or after this day"
    )
    date_to = forms.DateField(
        label="To", help_text="UTC, exclusive: CDRs that started before this day"
    )
    partner = _PartnerField()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in ("date_from", "date_to"):
            self.fields[name].widget = forms.DateInput(attrs={"type": "date"})

    def clean(self) -> dict:
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] >= data["date_to"]:
            raise forms.ValidationError("“To” must be after “From” (the range is [from, to)).")
        return data


class _MonthField(forms.CharField):
    widget = forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM"})

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        try:
            return parse_month(value)
        except ValueError:
            raise forms.ValidationError("Enter a month as YYYY-MM.") from None


class SettlementForm(forms.Form):
    month_from = _MonthField(label="From month", help_text="UTC months, inclusive")
    month_to = _MonthField(label="To month", help_text="inclusive")
    partner = _PartnerField()

    def clean(self) -> dict:
        data = super().clean()
        if (
            data.get("month_from")
            and data.get("month_to")
            and data["month_from"] > data["month_to"]
        ):
            raise forms.ValidationError("“To month” must not be before “From month”.")
        return data


def _context(request: HttpRequest, title: str, **extra) -> dict:
    return {**admin.site.each_context(request), "title": title, **extra}


@transaction.non_atomic_requests  # the CSV streams after the view returned (export.py)
@require_GET
@staff_member_required
@permission_required("billing.view_cdr", raise_exception=True)
def cdr_export(request: HttpRequest) -> HttpResponse:
    """The export form; with its fields in the query string, the CSV download."""
    if not request.GET:
        form = CDRExportForm(initial={"date_from": _previous_month(), "date_to": _this_month()})
        return render(
            request, "billing/cdr_export.html", _context(request, "Export CDRs", form=form)
        )
    form = CDRExportForm(request.GET)
    if not form.is_valid():
        context = _context(request, "Export CDRs", form=form)
        return render(request, "billing/cdr_export.html", context, status=400)
    data = form.cleaned_data
    queryset = cdr_export_queryset(
        date_from=data["date_from"], date_to=data["date_to"], partner=data["partner"]
    )
    filename = export_filename("cdrs", data["date_from"], data["date_to"], data["partner"])
    return csv_response(in_one_transaction(cdr_csv(queryset)), filename=filename)


@require_GET
@staff_member_required
@permission_required("billing.view_cdr", raise_exception=True)
def settlement(request: HttpRequest) -> HttpResponse:
    """The settlement summary table (default: last month, all partners); ?format=csv for CSV."""
    params = request.GET.copy()
    wants_csv = params.pop("format", [""])[-1] == "csv"
    if not params:
        previous = _previous_month().strftime("%Y-%m")
        params.update({"month_from": previous, "month_to": previous})
    form = SettlementForm(params)
    if not form.is_valid():
        context = _context(request, "Settlement summary", form=form, rows=None)
        return render(request, "billing/settlement.html", context, status=400)
    data = form.cleaned_data
    date_from, date_to = data["month_from"], month_after(data["month_to"])
    rows = settlement_rows(date_from=date_from, date_to=date_to, partner=data["partner"])
    if wants_csv:
        filename = export_filename("settlement", date_from, date_to, data["partner"])
        return csv_response(settlement_csv(rows), filename=filename)
    context = _context(
        request,
        "Settlement summary",
        form=form,
        headers=[header for header, _ in SETTLEMENT_COLUMNS],
        rows=[[render_cell(row) for _, render_cell in SETTLEMENT_COLUMNS] for row in rows],
        csv_query=_with_format(params, "csv"),
        export_query=_export_query(date_from, date_to, data["partner"]),
    )
    return render(request, "billing/settlement.html", context)


def _with_format(params, fmt: str) -> str:
    query = params.copy()
    query["format"] = fmt
    return query.urlencode()


def _export_query(date_from: date, date_to: date, partner) -> str:
    query = QueryDict(mutable=True)
    query.update({"date_from": date_from.isoformat(), "date_to": date_to.isoformat()})
    if partner is not None:
        query["partner"] = str(partner.pk)
    return query.urlencode()
