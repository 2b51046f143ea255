"""Admin for the OCPI traffic log: what a partner sent us and what we sent it, for "we never got
it". Read-only: rows are written by ocpi.traffic and removed by the retention task.

Search: an X-Correlation-ID or X-Request-ID (exact), a piece of URL, a partner's name. Filters:
direction, HTTP and OCPI status class, partner, date. The detail page shows the headers and
bodies pretty-printed, the other messages of the same correlation id (a command and its result,
a registration and its callbacks), and the commands that carried that correlation id.
"""

import json

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import mark_safe

from .models import CommandRequest
from .models_traffic import TrafficLog


class HTTPStatusFilter(admin.SimpleListFilter):
    title = "HTTP status"
    parameter_name = "http"

    def lookups(self, request, model_admin):
        return (
            ("2xx", "2xx success"),
            ("4xx", "4xx client error"),
            ("429", "429 rate limited"),
            ("5xx", "5xx server error"),
            ("none", "No response (timeout, refused)"),
        )

    def queryset(self, request, queryset):
        ranges = {"2xx": (200, 300), "4xx": (400, 500), "5xx": (500, 600)}
        if self.value() in ranges:
            low, high = ranges[self.value()]
            return queryset.filter(http_status__gte=low, http_status__lt=high)
        if self.value() == "429":
            return queryset.filter(http_status=429)
        if self.value() == "none":
            return queryset.filter(http_status__isnull=True)
        return queryset


class OCPIStatusFilter(admin.SimpleListFilter):
    title = "OCPI status"
    parameter_name = "ocpi"

    def lookups(self, request, model_admin):
        return (
            ("1", "1xxx success"),
            ("2", "2xxx client error"),
            ("3", "3xxx server error"),
            ("4", "4xxx hub error"),
            ("none", "No envelope"),
        )

    def queryset(self, request, queryset):
        if self.value() in ("1", "2", "3", "4"):
            low = int(self.value()) * 1000
            return queryset.filter(ocpi_status__gte=low, ocpi_status__lt=low + 1000)
        if self.value() == "none":
            return queryset.filter(ocpi_status__isnull=True)
        return queryset


def _pretty_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text  # not JSON, or cut at the size cap: shown as stored


def _pre(text: str) -> str:
    return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)


@admin.register(TrafficLog)
class TrafficLogAdmin(admin.ModelAdmin):
    list_display = (
        "created",
        "arrow",
        "partner",
        "method",
        "short_url",
        "http_status",
        "ocpi_status",
        "duration_ms",
        "correlation_id",
    )
    list_display_links = ("created", "short_url")
    list_filter = (
        "direction",
        HTTPStatusFilter,
        OCPIStatusFilter,
        "partner",
        "method",
        ("created", admin.DateFieldListFilter),
    )
    search_fields = ("=correlation_id", "=request_id", "url", "partner__name")
    search_help_text = "An X-Correlation-ID or X-Request-ID, part of a URL, or a partner's name"
    list_select_related = ("partner",)
    date_hierarchy = "created"
    ordering = ("-created", "-id")
    show_full_result_count = False  # no count(*) over a large log on every page
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "created", "direction", "partner", "method", "url", "http_status",
                    "ocpi_status", "error", "duration_ms", "request_id", "correlation_id",
                    "related",
                )
            },
        ),
        ("Request", {"fields": ("pretty_request_headers", "pretty_request_body", "request_size")}),
        (
            "Response",
            {"fields": ("pretty_response_headers", "pretty_response_body", "response_size")},
        ),
    )  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        return [
            name
            for _title, options in self.fieldsets
            for name in options["fields"]
        ]  # fmt: skip

    # -- columns ----------------------------------------------------------------------------
    @admin.display(description="", ordering="direction")
    def arrow(self, obj: TrafficLog) -> str:
        return "→ out" if obj.direction == TrafficLog.Direction.OUTBOUND else "← in"

    @admin.display(description="URL", ordering="url")
    def short_url(self, obj: TrafficLog) -> str:
        return obj.url if len(obj.url) <= 90 else obj.url[:89] + "…"

    # -- detail -----------------------------------------------------------------------------
    @admin.display(description="Request headers")
    def pretty_request_headers(self, obj: TrafficLog) -> str:
        return _pre(json.dumps(obj.request_headers, indent=2, ensure_ascii=False))

    @admin.display(description="Request body")
    def pretty_request_body(self, obj: TrafficLog) -> str:
        return _pre(_pretty_json(obj.request_body))

    @admin.display(description="Response headers")
    def pretty_response_headers(self, obj: TrafficLog) -> str:
        return _pre(json.dumps(obj.response_headers, indent=2, ensure_ascii=False))

    @admin.display(description="Response body")
    def pretty_response_body(self, obj: TrafficLog) -> str:
        return _pre(_pretty_json(obj.response_body))

    @admin.display(description="Related")
    def related(self, obj: TrafficLog) -> str:
        if not obj.correlation_id:
            return "—"
        same = TrafficLog.objects.filter(correlation_id=obj.correlation_id).exclude(pk=obj.pk)
        links = [
            format_html(
                '<a href="{}?{}">{} other message(s) with this correlation id</a>',
                reverse("admin:ocpi_trafficlog_changelist"),
                urlencode({"correlation_id": obj.correlation_id}),
                same.count(),
            )
        ]
        commands = CommandRequest.objects.filter(
            Q(correlation_id=obj.correlation_id) & ~Q(correlation_id="")
        ).order_by("created")[:10]
        links += [
            format_html(
                '<a href="{}">{}</a>',
                reverse("admin:ocpi_commandrequest_change", args=[command.pk]),
                command,
            )
            for command in commands
        ]
        return format_html_join(mark_safe("<br>"), "{}", ((link,) for link in links))

    # -- read-only --------------------------------------------------------------------------
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
