"""Export CDRs as the finance CSV (the columns and format: billing/export.py).

    manage.py export_cdrs --from 2026-11-01 --to 2026-12-01 [--partner NAME] [--output FILE]
                          [--no-bom] [--progress-every N]

Exports the CDRs whose start_date_time lies in [--from, --to) in UTC (a date is its midnight
UTC; a date-time may carry an offset, a naive one is UTC), of every partner or of the one named
(case-insensitive). Without --output the CSV goes to stdout. With --output it is written to a
temporary file beside FILE and renamed into place at the end, so FILE is never half written;
progress (rows, percentage, rows/s) goes to stderr every N rows. Memory stays flat however many
CDRs there are: rows stream from a database cursor.

Exit codes: 0 done; 1 the export failed (e.g. FILE not writable); 2 bad arguments (a date that
does not parse, --to not after --from, an unknown partner).
"""

import argparse
import os
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

from django.core.exceptions import MultipleObjectsReturned, ObjectDoesNotExist
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from billing.export import cdr_csv, csv_chunks, export_rows
from billing.selectors import cdr_export_queryset, export_partner_get, utc_bound


def parse_bound(text: str) -> datetime:
    """A --from/--to value: YYYY-MM-DD, or an ISO 8601 date-time (naive = UTC)."""
    text = text.strip()
    try:
        if len(text) == 10:
            return utc_bound(date.fromisoformat(text))
        return utc_bound(datetime.fromisoformat(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 date-time"
        ) from None


def resolve_partner(name: str | None):
    """The partner named `name`, or None for all; CommandError (exit 2) if there is none."""
    if name is None:
        return None
    try:
        return export_partner_get(name=name)
    except ObjectDoesNotExist:
        raise CommandError(f"unknown partner {name!r}", returncode=2) from None
    except MultipleObjectsReturned:
        raise CommandError(f"several partners are called {name!r}", returncode=2) from None


class Progress:
    """Counts rows and reports on stderr every `every` rows: count, share of total, rate."""

    def __init__(self, stream, *, total: int, every: int, label: str) -> None:
        self.stream, self.total, self.every, self.label = stream, total, every, label
        self.count = 0
        self.started = time.monotonic()

    def wrap(self, rows):
        for row in rows:
            yield row
            self.count += 1
            if self.every and self.count % self.every == 0:
                self.report()

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.count / elapsed if elapsed > 0 else 0.0

    def report(self) -> None:
        share = f" ({100 * self.count / self.total:.0f}%)" if self.total else ""
        self.stream.write(
            f"{self.label}: {self.count}/{self.total} rows{share}, {self.rate():.0f} rows/s"
        )


def write_atomically(path: Path, chunks) -> None:
    """Write text chunks to `path` (UTF-8) via a temporary file renamed into place."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); give it the mode any new file would get.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            for chunk in chunks:
                handle.write(chunk)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class Command(BaseCommand):
    help = "Export CDRs whose start time is in [--from, --to) (UTC) as the finance CSV."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--from", dest="date_from", required=True, type=parse_bound,
            help="Start of the range (UTC, inclusive): YYYY-MM-DD or an ISO 8601 date-time",
        )  # fmt: skip
        parser.add_argument(
            "--to", dest="date_to", required=True, type=parse_bound,
            help="End of the range (UTC, exclusive): YYYY-MM-DD or an ISO 8601 date-time",
        )  # fmt: skip
        parser.add_argument("--partner", help="Only this partner's CDRs (its name)")
        parser.add_argument("--output", help="Write to this file (default: stdout)")
        parser.add_argument(
            "--no-bom", action="store_true", help="Leave out the UTF-8 byte-order mark"
        )
        parser.add_argument(
            "--progress-every", type=int, default=50_000, metavar="N",
            help="With --output, report progress on stderr every N rows (0: never)",
        )  # fmt: skip

    def handle(self, *args, **options) -> None:
        date_from, date_to = options["date_from"], options["date_to"]
        if date_to <= date_from:
            raise CommandError("--to must be after --from (the range is [from, to))", returncode=2)
        partner = resolve_partner(options["partner"])
        queryset = cdr_export_queryset(date_from=date_from, date_to=date_to, partner=partner)
        bom = not options["no_bom"]
        if not options["output"]:
            self._to_stdout(queryset, bom=bom)
            return
        path = Path(options["output"])
        # One transaction: a consistent snapshot, and a plain (not WITH HOLD) server cursor.
        with transaction.atomic():
            total = queryset.count()
            progress = Progress(
                self.stderr, total=total, every=max(options["progress_every"], 0),
                label="export_cdrs",
            )  # fmt: skip
            rows = progress.wrap(export_rows(queryset))
            try:
                write_atomically(path, csv_chunks(rows, bom=bom))
            except OSError as exc:
                raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None
        elapsed = time.monotonic() - progress.started
        self.stderr.write(
            f"export_cdrs: wrote {progress.count} rows to {path} in {elapsed:.1f}s "
            f"({progress.rate():.0f} rows/s)"
        )

    def _to_stdout(self, queryset, *, bom: bool) -> None:
        try:
            with transaction.atomic():
                for chunk in cdr_csv(queryset, bom=bom):
                    self.stdout.write(chunk, ending="")
            self.stdout.flush()
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, as Unix tools do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
