"""Admin for partners: status at a glance, the partner's endpoints, and actions calling services.

Tokens are never displayed, except a new token A, once, in the message after it is issued (it
must reach the partner through a side channel). The changelist and the "register with a partner"
page run outside a database transaction (non-atomic requests): registering and rotating call
the partner, which calls us back with a token that must already be committed (ocpi.services).
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from . import services
from .exceptions import OCPIError, PartnerError
from .models import Partner, PartnerRole
from .token_sync import token_sync
from .versions import versions_url


class PartnerRoleInline(admin.TabularInline):
    """The parties behind the connection, as the partner's credentials listed them."""

    model = PartnerRole
    extra = 0
    can_delete = False
    fields = ("role", "country_code", "party_id", "business_name")
    readonly_fields = fields

    @admin.display(description="Business name")
    def business_name(self, obj: PartnerRole) -> str:
        return (obj.business_details or {}).get("name", "")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class RegisterWithPartnerForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="A name for this partner in our system")
    versions_url = forms.URLField(
        max_length=255, assume_scheme="https", help_text="The partner's OCPI versions URL"
    )
    token = forms.CharField(
        max_length=64,
        label="Token A",
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="The registration token the partner gave us",
    )


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "version", "parties", "registered_at", "updated")
    list_filter = ("status", "version", "token_encoding")
    search_fields = ("name", "versions_url", "roles__party_id", "roles__country_code")
    readonly_fields = (
        "status",
        "version",
        "versions_url",
        "tokens",
        "endpoint_table",
        "registered_at",
        "created",
        "updated",
    )
    fieldsets = (
        (None, {"fields": ("name", "status", "version", "versions_url", "tokens")}),
        ("Endpoints", {"fields": ("endpoint_table",)}),
        (
            "Compatibility profile",
            {"fields": ("token_encoding", "page_size", "request_timeout", "send_routing_headers")},
        ),
        ("History", {"fields": ("registered_at", "created", "updated")}),
    )
    inlines = (PartnerRoleInline,)
    actions = (
        "issue_token_a",
        "rotate_credentials",
        "suspend",
        "reactivate",
        "unregister",
        "sync_tokens",
    )
    change_list_template = "admin/ocpi/partner/change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("roles")

    # -- display ----------------------------------------------------------------------------
    @admin.display(description="Parties")
    def parties(self, obj: Partner) -> str:
        return ", ".join(str(role) for role in obj.roles.all())

    @admin.display(description="Tokens")
    def tokens(self, obj: Partner) -> str:
        """Which tokens exist, never their values."""
        if obj.pk is None:
            return "A token A is issued when the partner is saved."
        states = []
        if obj.token_a_digest:
            states.append("token A issued (registration pending)")
        if obj.inbound_token_digest:
            states.append("partner's token to us: set")
        if obj.outbound_token_encrypted:
            states.append("our token to the partner: set")
        return "; ".join(states) or "none"

    @admin.display(description="Endpoints")
    def endpoint_table(self, obj: Partner) -> str:
        if not obj.endpoints:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((e.get("identifier", ""), e.get("role", ""), e.get("url", "")) for e in obj.endpoints),
        )
        return format_html(
            "<table><thead><tr><th>Module</th><th>Role</th><th>URL</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    # -- add: a new partner gets its token A ------------------------------------------------
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            self._show_token_a(request, obj, services.partner_token_a_issue(partner=obj))

    @staticmethod
    def _show_token_a(request, partner: Partner, token_a: str) -> None:
        messages.warning(
            request,
            f"Token A for {partner}: {token_a} — our versions URL: {versions_url()}. "
            "It is shown only now: send both to the partner through a secure channel.",
        )

    # -- actions ----------------------------------------------------------------------------
    @transaction.non_atomic_requests
    def changelist_view(self, request, extra_context=None):
        # Non-atomic: "rotate credentials" must commit our new token before calling the partner.
        return super().changelist_view(request, extra_context)

    def _run(self, request, queryset, call, done: str) -> None:
        for partner in queryset:
            try:
                call(partner)
            except OCPIError as exc:
                self.message_user(request, f"{partner}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{partner}: {done}", messages.SUCCESS)

    @admin.action(description="Create token A (for partners not registered)")
    def issue_token_a(self, request, queryset):
        for partner in queryset:
            try:
                token_a = services.partner_token_a_issue(partner=partner)
            except OCPIError as exc:
                self.message_user(request, f"{partner}: {exc.message}", messages.ERROR)
            else:
                self._show_token_a(request, partner, token_a)

    @admin.action(description="Rotate credentials (send the partner new tokens)")
    def rotate_credentials(self, request, queryset):
        self._run(
            request,
            queryset,
            lambda p: services.credentials_rotate(partner=p),
            "credentials rotated.",
        )

    @admin.action(description="Suspend (stop traffic both ways)")
    def suspend(self, request, queryset):
        self._run(request, queryset, lambda p: services.partner_suspend(partner=p), "suspended.")

    @admin.action(description="Reactivate")
    def reactivate(self, request, queryset):
        self._run(
            request, queryset, lambda p: services.partner_reactivate(partner=p), "reactivated."
        )

    @admin.action(description="Unregister (tokens stop working)")
    def unregister(self, request, queryset):
        for partner in queryset:
            was_registered = partner.status in (Partner.Status.REGISTERED, Partner.Status.SUSPENDED)
            try:
                acknowledged = services.partner_unregister(partner=partner)
            except OCPIError as exc:
                self.message_user(request, f"{partner}: {exc.message}", messages.ERROR)
                continue
            if acknowledged or not was_registered:
                self.message_user(request, f"{partner}: unregistered.", messages.SUCCESS)
            else:
                self.message_user(
                    request,
                    f"{partner}: unregistered here, but the partner did not acknowledge it: "
                    "tell it through another channel.",
                    messages.WARNING,
                )

    @admin.action(description="Sync tokens now (pull changes from the partner's tokens)")
    def sync_tokens(self, request, queryset):
        for partner in queryset:
            try:
                report = token_sync(partner_id=partner.pk)
            except (OCPIError, PartnerError) as exc:
                self.message_user(request, f"{partner}: token sync failed: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{partner}: {report}.", messages.SUCCESS)

    # -- register with a partner (CPO-initiated, PROTOCOL.md §3.4) --------------------------
    def get_urls(self):
        register = transaction.non_atomic_requests(self.admin_site.admin_view(self.register_view))
        return [
            path("register/", register, name="ocpi_partner_register"),
            *super().get_urls(),
        ]

    def register_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = RegisterWithPartnerForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                partner = services.register_with_partner(**form.cleaned_data)
            except OCPIError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request,
                    f"Registered with {partner} (OCPI {partner.version}).",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:ocpi_partner_change", args=[partner.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Register with a partner",
            "form": form,
            "our_versions_url": versions_url(),
        }
        return TemplateResponse(request, "admin/ocpi/partner/register_with_partner.html", context)
