"""Admin for the push outbox: see what went where, retry or skip what a partner did not take.

Rows are written by ocpi.outbox and updated by ocpi.delivery only; staff do not edit them. The
actions call the delivery services: "retry now" (FAILED or waiting rows become due now and
delivery is queued) and "skip" (mark SUPERSEDED, which unblocks the later rows of that object).
A row's page links to its calls in the traffic log.
"""

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from . import delivery
from .models import OutboxMessage

State = OutboxMessage.State


class BlockedFilter(admin.SimpleListFilter):
    """PENDING rows waiting behind an older unsent row of the same object."""

    title = "blocked"
    parameter_name = "blocked"

    def lookups(self, request, model_admin):
        return (("yes", "Waiting behind an older row"), ("no", "Not waiting"))

    def queryset(self, request, queryset):
        older = OutboxMessage.objects.filter(
            partner_id=OuterRef("partner_id"),
            object_key=OuterRef("object_key"),
            state__in=(State.PENDING, State.FAILED),
            id__lt=OuterRef("id"),
        )
        if self.value() == "yes":
            return queryset.filter(state=State.PENDING).filter(Exists(older))
        if self.value() == "no":
            waiting = queryset.filter(state=State.PENDING).filter(Exists(older))
            return queryset.exclude(pk__in=waiting.values("pk"))
        return queryset


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "partner",
        "module",
        "method",
        "object_key",
        "path",
        "state",
        "attempts",
        "next_attempt_at",
        "short_error",
        "created",
        "sent_at",
    )
    list_filter = ("state", "module", "method", "partner", BlockedFilter)
    search_fields = ("object_key", "path")
    list_select_related = ("partner",)
    date_hierarchy = "created"
    ordering = ("-id",)
    actions = ("retry_now", "skip")
    readonly_fields = (
        "partner",
        "module",
        "interface_role",
        "object_key",
        "method",
        "path",
        "pretty_body",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
        "response_status",
        "response_ocpi_status",
        "response_location",
        "created",
        "sent_at",
        "traffic",
    )
    exclude = ("body",)

    @admin.display(description="last error")
    def short_error(self, obj: OutboxMessage) -> str:
        return obj.last_error[:80] + ("…" if len(obj.last_error) > 80 else "")

    @admin.display(description="body")
    def pretty_body(self, obj: OutboxMessage) -> str:
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', obj.body)

    @admin.display(description="traffic")
    def traffic(self, obj: OutboxMessage) -> str:
        query = urlencode({"outbox_message__id__exact": obj.pk})
        url = f"{reverse('admin:ocpi_trafficlog_changelist')}?{query}"
        return format_html('<a href="{}">Its calls to the partner (traffic log)</a>', url)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Retry now (failed and waiting rows)", permissions=["change"])
    def retry_now(self, request, queryset):
        count = delivery.outbox_retry(message_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} row(s) queued for delivery now.", messages.SUCCESS)

    @admin.action(
        description="Mark superseded / skip (unblocks later rows)", permissions=["change"]
    )
    def skip(self, request, queryset):
        count = delivery.outbox_skip(message_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} row(s) skipped.", messages.SUCCESS)
