"""Admin for the OCPI traffic log: what a partner sent us and what we sent it, for "we never got
it". Read-only: rows are written by ocpi.traffic and removed by the retention task.

Search: an X-Correlation-ID or X-Request-ID (exact), a piece of URL, a partner's name. Filters:
direction, HTTP and OCPI status class, partner, date. The detail page shows the headers and
bodies pretty-printed, the other messages of the same correlation id (a command and its result,
a registration and its callbacks), and the commands that carried that correlation id.

"Concerns" links each row to the admin pages of what it was about (`attach_concerns`): a push
to the outbox row it delivered and that row's session, CDR, location, tariff or command; a
partner's request on sessions, cdrs, tokens, commands or chargingprofiles to the object its URL
names (or, for commands, the command it made), only when that object belongs to the partner.
The action "Resend" sends the pushes behind failed calls again (ocpi.traffic.traffic_resend).
"""

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import mark_safe

from billing.models import Session, Token
from billing.models_cdrs import CDR
from stations.models import Location, Tariff

from . import outbox, traffic
from .models import CommandRequest, OutboxMessage, cpo_roles
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


# --- what a row concerns ------------------------------------------------------------------------
@dataclass(eq=False)
class _Kind:
    """A kind of object a row may concern, found by its key: `fields`, matched case-insensitively
    for OCPI ids (as the functional indexes do), exactly for references we made."""

    model: type[models.Model]
    fields: tuple[str, ...]
    label: str
    shown: str  # the field after the label in the link
    owned: bool = True  # belongs to a partner: linked only for that partner's rows
    case_insensitive: bool = True

    def normal(self, value: str) -> str:
        return value.lower() if self.case_insensitive else value


SESSION = _Kind(Session, ("ocpi_id",), "Session", "ocpi_id")
CDR_KIND = _Kind(CDR, ("country_code", "party_id", "ocpi_id"), "CDR", "ocpi_id")
TOKEN = _Kind(Token, ("country_code", "party_id", "uid"), "Token", "uid")
LOCATION = _Kind(Location, ("country_code", "party_id", "ocpi_id"), "Location", "ocpi_id", False)
TARIFF = _Kind(Tariff, ("country_code", "party_id", "ocpi_id"), "Tariff", "ocpi_id", False)
COMMAND = _Kind(CommandRequest, ("request_ref",), "Command", "kind", case_insensitive=False)
COMMAND_OF_REQUEST = _Kind(
    CommandRequest, ("correlation_id",), "Command", "kind", case_insensitive=False
)
# Pushes by outbox module; their object key is `{module}/{country_code}/{party_id}/{id}`.
_PUSHED = {outbox.LOCATIONS: LOCATION, outbox.TARIFFS: TARIFF, outbox.SESSIONS: SESSION}


@dataclass(frozen=True)
class _Ref:
    kind: _Kind
    partner_id: int | None  # None for the network's objects (anybody may be told about them)
    key: tuple[str, ...]


def _ref(kind: _Kind, partner_id: int | None, *key: str) -> _Ref:
    return _Ref(kind, partner_id if kind.owned else None, tuple(kind.normal(k) for k in key))


def _message_refs(message: OutboxMessage) -> list[_Ref]:
    """What an outbox row pushed (ocpi.outbox writes its object keys)."""
    module, *ids = [unquote(part) for part in message.object_key.split("/")]
    if module == outbox.CDRS:
        cdr_ids = outbox.cdr_ids_of_row(message)  # the CDR's id is in the POST's body only
        return [_ref(CDR_KIND, message.partner_id, *cdr_ids)] if cdr_ids else []
    if message.interface_role == outbox.RESPONSE_URL and len(ids) == 1:
        return [_ref(COMMAND, message.partner_id, ids[0])]  # `{module}/{request_ref}`
    if module in _PUSHED and len(ids) == 3:
        kind = _PUSHED[module]
        return [_ref(kind, message.partner_id, *ids[-len(kind.fields) :])]  # the last segments
    return []


def _url_refs(row: TrafficLog) -> list[_Ref]:
    """What a partner's request to `/ocpi/cpo/{version}/{module}/...` names, as that partner's."""
    if row.direction != TrafficLog.Direction.INBOUND or row.partner_id is None:
        return []
    parts = [unquote(part) for part in urlsplit(row.url).path.split("/") if part]
    if parts[:2] != ["ocpi", "cpo"] or len(parts) < 4:
        return []
    module, ids, partner_id = parts[3], parts[4:], row.partner_id
    refs = []
    if module in ("sessions", "chargingprofiles") and ids:  # sessions/{id}/charging_preferences
        refs.append(_ref(SESSION, partner_id, ids[0]))
    if module == "cdrs" and ids:  # a CDR of ours, so of one of our roles
        roles = [(role["country_code"], role["party_id"]) for role in cpo_roles()]
        refs += [_ref(CDR_KIND, partner_id, *role, ids[0]) for role in roles]
    if module == "tokens" and len(ids) >= 3:
        refs.append(_ref(TOKEN, partner_id, *ids[:3]))
    if module in ("commands", "chargingprofiles") and row.correlation_id:
        # The URL names no command: the request made one, with its X-Correlation-ID.
        refs.append(_ref(COMMAND_OF_REQUEST, partner_id, row.correlation_id))
    return refs


def _fetch(kind: _Kind, refs: set[_Ref]) -> dict[_Ref, list[models.Model]]:
    """The objects of one kind that `refs` name, in one query."""
    lookup = "__lower__in" if kind.case_insensitive else "__in"
    filters = {
        f"{name}{lookup}": {ref.key[i] for ref in refs} for i, name in enumerate(kind.fields)
    }
    columns = {"pk", *kind.fields, kind.shown}
    if kind.owned:
        filters["partner_id__in"] = {ref.partner_id for ref in refs}
        columns.add("partner_id")
    found = defaultdict(list)
    for obj in kind.model.objects.filter(**filters).only(*columns).order_by("pk"):
        key = tuple(kind.normal(getattr(obj, name)) for name in kind.fields)
        ref = _Ref(kind, obj.partner_id if kind.owned else None, key)
        if ref in refs:
            found[ref].append(obj)
    return found


def _admin_link(label: str, obj: models.Model) -> tuple[str, str]:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]), label


def attach_concerns(rows: Iterable[TrafficLog]) -> None:
    """Give each row `_concerns`: (url, label) of its outbox row and of the objects it concerns,
    in a fixed number of queries however many rows (one per kind of object on the page)."""
    rows = list(rows)
    pushes = [row.outbox_message for row in rows if row.outbox_message_id]
    cdr_pushes = {message.pk: message for message in pushes if message.module == outbox.CDRS}
    if cdr_pushes:  # their bodies (deferred in the list) hold the CDRs' ids
        bodies = OutboxMessage.objects.filter(pk__in=cdr_pushes).values_list("pk", "body")
        for pk, body in bodies:
            cdr_pushes[pk].body = body
    refs = {
        row.pk: _message_refs(row.outbox_message) if row.outbox_message_id else _url_refs(row)
        for row in rows
    }
    wanted = defaultdict(set)
    for ref in (ref for row_refs in refs.values() for ref in row_refs):
        wanted[ref.kind].add(ref)
    found = {}
    for kind, kind_refs in wanted.items():
        found.update(_fetch(kind, kind_refs))
    for row in rows:
        links = []
        if row.outbox_message_id:
            message = row.outbox_message
            links.append(_admin_link(f"Outbox #{message.pk} ({message.state})", message))
        for ref in refs[row.pk]:
            links += [
                _admin_link(f"{ref.kind.label} {getattr(obj, ref.kind.shown)}", obj)
                for obj in found.get(ref, [])
            ]
        row._concerns = links


class TrafficChangeList(ChangeList):
    def get_results(self, request) -> None:
        super().get_results(request)
        self.result_list = list(self.result_list)
        attach_concerns(self.result_list)


# --- presentation --------------------------------------------------------------------------------
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
        "concerns",
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
    date_hierarchy = "created"
    ordering = ("-created", "-id")
    show_full_result_count = False  # no count(*) over a large log on every page
    actions = ("resend",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "created", "direction", "partner", "method", "url", "http_status",
                    "ocpi_status", "error", "duration_ms", "request_id", "correlation_id",
                    "concerns", "related",
                )
            },
        ),
        ("Request", {"fields": ("pretty_request_headers", "pretty_request_body", "request_size")}),
        (
            "Response",
            {"fields": ("pretty_response_headers", "pretty_response_body", "response_size")},
        ),
    )  # fmt: skip

    def get_queryset(self, request):
        # The joins are here, as list_select_related is ignored once the queryset has some. An
        # outbox row's body can be large (a Location PUT): left out; attach_concerns reads those
        # of CDR POSTs, once per page.
        return (
            super()
            .get_queryset(request)
            .select_related("partner", "outbox_message")
            .defer("outbox_message__body")
        )

    def get_changelist(self, request, **kwargs):
        return TrafficChangeList

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

    @admin.display(description="Concerns")
    def concerns(self, obj: TrafficLog) -> str:
        if not hasattr(obj, "_concerns"):  # the detail page: one row
            attach_concerns([obj])
        if not obj._concerns:
            return "—"
        return format_html_join(", ", '<a href="{}">{}</a>', obj._concerns)

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

    # -- resending failed pushes ------------------------------------------------------------
    def has_resend_permission(self, request) -> bool:
        """Staff who may retry outbox rows (the outbox admin's "retry now")."""
        return request.user.has_perm("ocpi.change_outboxmessage")

    @admin.action(description="Resend failed pushes (through the outbox)", permissions=["resend"])
    def resend(self, request, queryset):
        report = traffic.traffic_resend(traffic_ids=list(queryset.values_list("pk", flat=True)))
        if report.queued:
            text = "; ".join(line.rstrip(".") for line in report.queued)
            self.message_user(request, f"Queued for delivery now: {text}.", messages.SUCCESS)
        if report.skipped:
            text = "; ".join(line.rstrip(".") for line in report.skipped)
            self.message_user(request, f"Not resent: {text}.", messages.WARNING)

    # -- read-only --------------------------------------------------------------------------
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
