"""Admin for drivers' tokens: per partner, searchable, and staff's block / unblock.

The token data is the eMSP's (pushed or synced), so staff only read it; what staff decide is
our own block, through the actions (which call billing.tokens).
"""

from django.contrib import admin, messages

from .models import Token
from .tokens import token_block, token_unblock


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    list_display = (
        "uid",
        "type",
        "partner",
        "party",
        "contract_id",
        "visual_number",
        "whitelist",
        "valid",
        "blocked",
        "last_updated",
    )
    list_filter = ("partner", "type", "whitelist", "valid", "blocked")
    search_fields = ("uid", "contract_id", "visual_number")
    list_select_related = ("partner",)
    ordering = ("partner__name", "uid", "type")
    actions = ("block", "unblock")
    fieldsets = (
        (None, {"fields": ("partner", "country_code", "party_id", "uid", "type", "blocked")}),
        (
            "From the eMSP",
            {
                "fields": (
                    "contract_id",
                    "visual_number",
                    "issuer",
                    "group_id",
                    "valid",
                    "whitelist",
                    "language",
                    "default_profile_type",
                    "energy_contract",
                    "last_updated",
                )
            },
        ),
        ("History", {"fields": ("created", "received_at")}),
    )

    @admin.display(description="Party", ordering="party_id")
    def party(self, obj: Token) -> str:
        return f"{obj.country_code}*{obj.party_id}"

    def get_readonly_fields(self, request, obj=None):
        # Everything but our own block is the eMSP's; the block goes through the actions.
        return [f.name for f in Token._meta.fields if f.name != "id"]

    def has_add_permission(self, request) -> bool:
        return False  # tokens come from the partners

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # sessions and CDRs refer to them; block instead

    @admin.action(description="Block the selected tokens (no charging, whatever the eMSP says)")
    def block(self, request, queryset):
        changed = sum(token_block(token=token) for token in queryset)
        self.message_user(request, f"{changed} token(s) blocked.", messages.SUCCESS)

    @admin.action(description="Unblock the selected tokens")
    def unblock(self, request, queryset):
        changed = sum(token_unblock(token=token) for token in queryset)
        self.message_user(request, f"{changed} token(s) unblocked.", messages.SUCCESS)
