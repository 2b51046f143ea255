"""Admin for partners' commands and charging profile requests: what was asked, what we answered
at once, what the charger's result was. Read-only: the rows are written by ocpi.commands and
ocpi.charging_profiles; the results travel through the outbox (see the outbox admin)."""

import json

from django.contrib import admin
from django.utils.html import format_html

from .models import CommandRequest


@admin.register(CommandRequest)
class CommandRequestAdmin(admin.ModelAdmin):
    list_display = (
        "created",
        "partner",
        "kind",
        "response_result",
        "result",
        "state",
        "session_ocpi_id",
        "answered_at",
    )
    list_filter = ("kind", "state", "response_result", "result", "partner")
    search_fields = ("request_ref", "session_ocpi_id", "response_url", "correlation_id")
    list_select_related = ("partner",)
    date_hierarchy = "created"
    ordering = ("-created", "-pk")
    fields = (
        "partner",
        "kind",
        "state",
        "response_result",
        "timeout_seconds",
        "result",
        "result_message",
        "session_ocpi_id",
        "reservation",
        "response_url",
        "request_ref",
        "correlation_id",
        "pretty_body",
        "created",
        "answered_at",
    )
    readonly_fields = fields

    @admin.display(description="request body")
    def pretty_body(self, obj: CommandRequest) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.body, indent=2, sort_keys=True))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
