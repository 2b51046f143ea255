"""Run a sandbox eMSP on 127.0.0.1 to try registration and pushes against this platform."""

import json
import time

import requests
from django.core.management.base import BaseCommand, CommandError

from ocpi.sandbox_emsp import EMSPServer, Recorded


class Command(BaseCommand):
    help = (
        "Run a sandbox eMSP (a real OCPI 2.2.1 server on 127.0.0.1) that prints every request it "
        "receives. Without options it waits for the CPO to register with it (prints its versions "
        "URL and token A). With --register-with and --token it registers with the CPO itself "
        "(partner-initiated) and pages through the CPO's locations."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8100)
        parser.add_argument("--country-code", default="DE")
        parser.add_argument("--party-id", default="EMS")
        parser.add_argument("--name", default="Sandbox eMSP")
        parser.add_argument(
            "--ocpi-version",
            choices=("2.2.1", "2.1.1"),
            default="2.2.1",
            help="the OCPI version the sandbox eMSP speaks (default 2.2.1)",
        )
        parser.add_argument(
            "--register-with", metavar="VERSIONS_URL", help="the CPO's versions URL"
        )
        parser.add_argument("--token", metavar="TOKEN_A", help="the token A the CPO issued")
        parser.add_argument(
            "--seconds", type=float, default=0, help="stop after this long (default: run until ^C)"
        )

    def handle(self, *args, **options):
        server = EMSPServer(
            country_code=options["country_code"],
            party_id=options["party_id"],
            name=options["name"],
            port=options["port"],
            on_request=self._print_request,
            version=options["ocpi_version"],
        )
        self.stdout.write(
            f"Sandbox eMSP {options['name']} (OCPI {server.version}) listening on {server.base_url}"
        )
        self.stdout.write(f"  versions URL: {server.versions_url}")
        self.stdout.write(f"  token A:      {server.token_a}")
        try:
            if options["register_with"]:
                if not options["token"]:
                    raise CommandError("--register-with needs --token (the CPO's token A)")
                self._register(server, options["register_with"], options["token"])
            self.stdout.write("Waiting for requests (Ctrl-C to stop) ...")
            deadline = time.monotonic() + options["seconds"] if options["seconds"] else None
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()

    def _register(self, server: EMSPServer, versions_url: str, token_a: str) -> None:
        response = server.register_with(versions_url, token_a)
        body = response.json()
        if response.status_code != 200 or body.get("status_code") != 1000:
            raise CommandError(f"Registration failed: HTTP {response.status_code} {body}")
        self.stdout.write(
            self.style.SUCCESS(f"Registered; token C for calling the CPO: {server.token_for_cpo}")
        )
        url = server.cpo_endpoint("locations")
        pages = total = 0
        while url:
            page = requests.get(url, headers=server.cpo_headers(server.token_for_cpo), timeout=30)
            page.raise_for_status()
            total += len(page.json()["data"])
            pages += 1
            link = page.headers.get("Link", "")
            url = link[1 : link.index(">")] if link.startswith("<") else None
        self.stdout.write(f"Paged {total} locations in {pages} page(s) from {versions_url}")

    def _print_request(self, record: Recorded) -> None:
        body = json.dumps(record.body)[:300] if record.body is not None else ""
        self.stdout.write(f"<- {record.method} {record.path} {body}")
