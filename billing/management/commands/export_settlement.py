"""Export the settlement summary of a month as CSV (the rows: billing.selectors.settlement_rows;
the columns: billing.export.SETTLEMENT_COLUMNS).

    manage.py export_settlement --month 2026-11 [--partner NAME] [--output FILE] [--no-bom]

One row per partner and currency for the CDRs whose start_date_time lies in that month (UTC):
sessions, CDRs, credit CDRs, kWh, charged / credited / net revenue excl. and incl. VAT, and
VAT; credit CDRs are netted. The same month of `export_cdrs` holds exactly the CDRs summed here.
Without --output the CSV goes to stdout.

Exit codes: 0 done; 1 FILE could not be written; 2 bad arguments (a month that is not YYYY-MM,
an unknown partner).
"""

import argparse
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from billing.export import month_after, parse_month, settlement_csv
from billing.selectors import settlement_rows

from .export_cdrs import resolve_partner, write_atomically


def _month(text: str):
    try:
        return parse_month(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class Command(BaseCommand):
    help = "Export a month's per-partner settlement summary (UTC month, credits netted) as CSV."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--month", required=True, type=_month, help="The month, YYYY-MM (UTC)")
        parser.add_argument("--partner", help="Only this partner (its name)")
        parser.add_argument("--output", help="Write to this file (default: stdout)")
        parser.add_argument(
            "--no-bom", action="store_true", help="Leave out the UTF-8 byte-order mark"
        )

    def handle(self, *args, **options) -> None:
        partner = resolve_partner(options["partner"])
        month = options["month"]
        rows = settlement_rows(date_from=month, date_to=month_after(month), partner=partner)
        chunks = settlement_csv(rows, bom=not options["no_bom"])
        if not options["output"]:
            for chunk in chunks:
                self.stdout.write(chunk, ending="")
            return
        path = Path(options["output"])
        try:
            write_atomically(path, chunks)
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None
        self.stderr.write(f"export_settlement: wrote {len(rows)} rows for {month:%Y-%m} to {path}")
