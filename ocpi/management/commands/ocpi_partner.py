"""Manage OCPI partners from the shell (the same services as the admin).

ocpi_partner create --name NAME [--json]     a partner + token A, and our versions URL
ocpi_partner register --name NAME --versions-url URL --token TOKEN_A
ocpi_partner list
ocpi_partner rotate --name NAME
ocpi_partner suspend --name NAME
ocpi_partner reactivate --name NAME
ocpi_partner unregister --name NAME
"""

import json

from django.core.management.base import BaseCommand, CommandError

from ocpi import services
from ocpi.exceptions import OCPIError
from ocpi.models import Partner
from ocpi.versions import versions_url as our_versions_url


class Command(BaseCommand):
    help = "Create, register, list, rotate, suspend, reactivate or unregister OCPI partners."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a partner and print its token A")
        create.add_argument("--name", required=True)
        create.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            help='Print {"token_a": ..., "versions_url": ...} only',
        )
        register = sub.add_parser("register", help="Register with a partner (we initiate)")
        register.add_argument("--name", required=True)
        register.add_argument("--versions-url", required=True, dest="versions_url")
        register.add_argument("--token", required=True, help="The token A the partner gave us")
        sub.add_parser("list", help="List partners")
        for action, text in (
            ("rotate", "Send the partner new credentials (both tokens change)"),
            ("suspend", "Stop traffic both ways, keeping the registration"),
            ("reactivate", "Undo suspend"),
            ("unregister", "End the registration (tokens stop working)"),
        ):
            sub.add_parser(action, help=text).add_argument("--name", required=True)

    def handle(self, *args, action: str, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except OCPIError as exc:
            raise CommandError(exc.message) from exc

    def _partner(self, name: str) -> Partner:
        try:
            return Partner.objects.get(name=name)
        except Partner.DoesNotExist:
            raise CommandError(f"No partner named {name!r}") from None

    def _create(self, *, name: str, as_json: bool = False, **options):
        partner, token_a = services.partner_create(name=name)
        if as_json:
            self.stdout.write(json.dumps({"token_a": token_a, "versions_url": our_versions_url()}))
            return
        self.stdout.write(f"Created partner {partner} (pending registration).")
        self.stdout.write(f"Token A:      {token_a}")
        self.stdout.write(f"Versions URL: {our_versions_url()}")
        self.stdout.write("Send both to the partner through a secure channel; not shown again.")

    def _register(self, *, name: str, versions_url: str, token: str, **options):
        partner = services.register_with_partner(name=name, versions_url=versions_url, token=token)
        message = f"Registered with {partner} (OCPI {partner.version})."
        self.stdout.write(self.style.SUCCESS(message))

    def _list(self, **options):
        partners = Partner.objects.prefetch_related("roles")
        if not partners:
            self.stdout.write("No partners.")
            return
        for partner in partners:
            parties = ", ".join(str(role) for role in partner.roles.all()) or "-"
            self.stdout.write(
                f"{partner.name}\t{partner.status}\t{partner.version or '-'}\t{parties}"
            )

    def _rotate(self, *, name: str, **options):
        services.credentials_rotate(partner=self._partner(name))
        self.stdout.write(self.style.SUCCESS(f"Rotated credentials with {name}."))

    def _suspend(self, *, name: str, **options):
        services.partner_suspend(partner=self._partner(name))
        self.stdout.write(self.style.SUCCESS(f"Suspended {name}."))

    def _reactivate(self, *, name: str, **options):
        services.partner_reactivate(partner=self._partner(name))
        self.stdout.write(self.style.SUCCESS(f"Reactivated {name}."))

    def _unregister(self, *, name: str, **options):
        partner = self._partner(name)
        was_registered = partner.status in (Partner.Status.REGISTERED, Partner.Status.SUSPENDED)
        acknowledged = services.partner_unregister(partner=partner)
        self.stdout.write(self.style.SUCCESS(f"Unregistered {name}."))
        if was_registered and not acknowledged:
            self.stderr.write(
                self.style.WARNING("The partner did not acknowledge: tell it another way.")
            )
