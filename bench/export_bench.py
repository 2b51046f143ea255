"""The finance CSV export on a large data set: rows per second, and memory that stays flat.

    DATABASE_URL=postgres://... .venv/bin/python bench/export_bench.py [--cdrs 1000000] [--keep]

1. In a child process, creates --cdrs CDRs (default 1,000,000) for a partner "Bench eMSP" with
   bulk_create, in batches, spread over the year 2025 (ids BENCH-...; earlier bench CDRs are
   removed first). A child, so that this process never holds them: its peak memory below is
   the export's alone (a child's getrusage peak would inherit its parent's at fork).
2. Runs `export_cdrs --from 2025-01-01 --to 2026-01-01 --partner "Bench eMSP" --output FILE`
   here, recording the resident memory (RSS) at every tenth of the rows.
3. Prints rows/s, elapsed time, the RSS at each tenth and the peak RSS (resource.getrusage).
   Flat memory means the RSS at 10% and at 100% are about the same and the peak stays near
   them whatever --cdrs is: rows stream from a database cursor, never the whole result set.
4. Removes the bench CDRs and the file unless --keep. With --keep, a later run that finds
   exactly --cdrs bench CDRs exports those again instead of creating them anew (--reuse forces
   that); `python -m bench` always keeps them, like its Locations.

Use a database of its own (it writes a million rows), never a production one.
"""

import argparse
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cpo_platform.settings")
# DEBUG keeps every query's SQL in memory; a benchmark must not. A throwaway key if none is set.
os.environ["DEBUG"] = "false"
os.environ.setdefault("SECRET_KEY", "export-bench-only-not-a-secret")

PARTNER = "Bench eMSP"
YEAR = datetime(2025, 1, 1, tzinfo=UTC)
BATCH = 1000  # × 45 columns: under PostgreSQL's 65,535 parameters per statement


def rss_mb() -> float:
    """This process's resident memory now, in MiB (Linux /proc; else the peak so far)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_rss_mb()


def peak_rss_mb() -> float:
    # ru_maxrss: kilobytes on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def setup_django(*, fast_inserts: bool = False) -> None:
    import django
    from django.conf import settings

    if fast_inserts and "postgresql" in settings.DATABASES["default"]["ENGINE"]:
        # Server-side parameter binding: psycopg does not quote 45 values per row in Python.
        settings.DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
    django.setup()


def drop_cdrs() -> int:
    """Remove the bench CDRs in one statement (a queryset delete() would load them all)."""
    from django.db import connection

    from billing.models_cdrs import CDR

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {CDR._meta.db_table} WHERE ocpi_id LIKE 'BENCH-%%'")
        return cursor.rowcount


def bench_cdr_count() -> int:
    from billing.models_cdrs import CDR

    return CDR.objects.filter(ocpi_id__startswith="BENCH-").count()


def create_cdrs(count: int) -> None:
    from billing.models_cdrs import CDR
    from ocpi.models import Partner

    partner, _ = Partner.objects.get_or_create(
        name=PARTNER, defaults={"status": Partner.Status.REGISTERED, "version": "2.2.1"}
    )
    drop_cdrs()
    step = timedelta(seconds=365 * 24 * 3600 / count)
    location = {
        "id": "LOC00001",
        "name": "Café De Gouden Leeuw",
        "address": "Damrak 1",
        "city": "Amsterdam",
        "postal_code": "1012 LG",
        "country": "NLD",
        "coordinates": {"latitude": "52.377956", "longitude": "4.897070"},
        "evse_uid": "EVSE00001",
        "evse_id": "NL*CPO*E00001",
        "connector_id": "1",
        "connector_standard": "IEC_62196_T2",
        "connector_format": "SOCKET",
        "connector_power_type": "AC_3_PHASE",
    }
    dimensions = [{"type": "ENERGY", "volume": "20.000"}, {"type": "TIME", "volume": "1.25"}]
    periods = [
        {"start_date_time": "2025-01-01T00:00:00Z", "tariff_id": "FLAT", "dimensions": dimensions}
    ]
    started = time.monotonic()
    for first in range(0, count, BATCH):
        batch = []
        for n in range(first, min(first + BATCH, count)):
            start = YEAR + step * n
            kwh = Decimal(5 + n % 60) + Decimal(n % 1000) / 1000
            energy = (kwh * Decimal("0.35")).quantize(Decimal("0.01"))
            total = energy + Decimal("3.50")
            batch.append(
                CDR(
                    country_code="NL",
                    party_id="CPO",
                    ocpi_id=f"BENCH-{n:08d}",
                    partner=partner,
                    session_ocpi_id=f"BENCH-S{n:08d}",
                    start_date_time=start,
                    end_date_time=start + timedelta(minutes=90),
                    time_zone="Europe/Amsterdam",
                    cdr_token={
                        "country_code": "DE",
                        "party_id": "EMS",
                        "uid": f"04{n:012X}",
                        "type": "RFID",
                        "contract_id": f"DE-EMS-C{n:08d}-X",
                    },
                    auth_method="WHITELIST",
                    cdr_location=location,
                    currency="EUR",
                    charging_periods=periods,
                    total_energy=kwh,
                    total_time=Decimal("1.5"),
                    total_parking_time=Decimal("0.25"),
                    total_energy_cost_excl_vat=energy,
                    total_energy_cost_incl_vat=(energy * Decimal("1.21")).quantize(Decimal("0.01")),
                    total_time_cost_excl_vat=Decimal("1.50"),
                    total_time_cost_incl_vat=Decimal("1.82"),
                    total_parking_cost_excl_vat=Decimal("1.50"),
                    total_parking_cost_incl_vat=Decimal("1.82"),
                    total_fixed_cost_excl_vat=Decimal("0.50"),
                    total_fixed_cost_incl_vat=Decimal("0.61"),
                    total_cost_excl_vat=total,
                    total_cost_incl_vat=(total * Decimal("1.21")).quantize(Decimal("0.01")),
                    credit=n % 97 == 96,  # now and then a credit CDR of the one before
                    credit_reference_id=f"BENCH-{n - 1:08d}" if n % 97 == 96 else "",
                    sent_at=start + timedelta(minutes=95),
                )
            )
        CDR.objects.bulk_create(batch)
        done = min(first + BATCH, count)
        if done % (BATCH * 100) == 0 or done == count:
            elapsed = time.monotonic() - started
            print(f"  created {done:,} CDRs ({done / elapsed:,.0f}/s)", file=sys.stderr)


class _RSSAtProgress:
    """A stderr for export_cdrs: keeps each progress line with this process's RSS at that
    moment (the command writes a line every tenth of the rows)."""

    def __init__(self) -> None:
        self.samples: list[tuple[str, float]] = []

    def write(self, text: str) -> None:
        if text.strip():
            self.samples.append((text.strip(), rss_mb()))

    def flush(self) -> None:
        pass


def export(output: str) -> None:
    """One export with export_cdrs, in this process; its figures on stdout."""
    from django.core.management import call_command

    from billing.models_cdrs import CDR

    count = CDR.objects.filter(partner__name=PARTNER).count()
    before = rss_mb()
    stream = _RSSAtProgress()
    started = time.monotonic()
    call_command(
        "export_cdrs",
        "--from",
        "2025-01-01",
        "--to",
        "2026-01-01",
        "--partner",
        PARTNER,
        "--output",
        output,
        "--progress-every",
        str(max(count // 10, 1)),
        stderr=stream,
    )
    elapsed = time.monotonic() - started
    print(f"rows            {count:,}")
    print(f"elapsed         {elapsed:.1f} s")
    print(f"rate            {count / elapsed:,.0f} rows/s")
    print(f"file size       {os.path.getsize(output) / 2**20:,.1f} MiB")
    print(f"RSS before      {before:,.1f} MiB (Django loaded, before the export)")
    for line, rss in stream.samples:
        print(f"RSS {rss:8,.1f} MiB  at  {line}")
    print(f"peak RSS        {peak_rss_mb():,.1f} MiB (getrusage ru_maxrss of this process)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cdrs", type=int, default=1_000_000, help="CDRs to create and export")
    parser.add_argument("--keep", action="store_true", help="Keep the CDRs and the CSV file")
    parser.add_argument("--reuse", action="store_true", help="Export the kept CDRs again")
    parser.add_argument("--output", help="The CSV file (default: a temporary file)")
    parser.add_argument("--create-only", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.create_only:
        setup_django(fast_inserts=True)
        create_cdrs(options.cdrs)
        return
    output = options.output or os.path.join(tempfile.gettempdir(), "export_bench.csv")
    setup_django()
    if options.keep and not options.reuse and bench_cdr_count() == options.cdrs:
        print(
            f"{options.cdrs:,} bench CDRs kept from an earlier run: exported again", file=sys.stderr
        )
        options.reuse = True
    if not options.reuse:
        print(f"Creating {options.cdrs:,} CDRs (child process) ...", file=sys.stderr)
        started = time.monotonic()
        creator = [sys.executable, __file__, "--create-only", "--cdrs", str(options.cdrs)]
        subprocess.run(creator, check=True)
        print(f"  in {time.monotonic() - started:.1f} s", file=sys.stderr)
    try:
        print("Exporting ...", file=sys.stderr)
        export(output)
    finally:
        if not options.keep:
            drop_cdrs()
            pathlib.Path(output).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
