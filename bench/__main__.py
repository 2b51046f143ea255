"""python -m bench all|locations|serialize|push|tariff|export|report [options]

    all         every benchmark below, then the table
    locations   the Locations list under random-page load, beside a bare WSGI baseline
    serialize   one page of 100 Locations in-process: SQL, objects, JSON, per layer
    push        10,000 session updates drained from the outbox by 2 Celery worker processes
    tariff      CDRs priced per second on one core (bench/tariff_bench.py)
    export      1,000,000 CDRs to CSV: time and peak memory (bench/export_bench.py, if present)
    report      print the table of the latest figures again

Options (for `all` and the benchmark they belong to):
    --locations N      Locations in the list (default 100,000; seeded once, kept)
    --seconds S        load per server in the locations benchmark (default 20)
    --connections C    concurrent connections of the load generator (default 4)
    --loadgen auto|wrk|python
    --rounds R         locations: interleaved rounds of product and baseline (default 4)
    --updates N        push: updates per partner (default 10,000)
    --partners P       push: partners (default 1; 5 for the fan-out target)
    --cdrs N           export: CDRs (default 1,000,000)
    --skip NAME        leave a benchmark out of `all` (repeatable)

Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/cpo_bench, created if
missing) and BENCH_REDIS_URL (default redis://127.0.0.1:6379/13); everything stays on
127.0.0.1. Figures are kept in var/bench/results.json; the table is Markdown for the README.
"""

import argparse
import re
import subprocess
import sys

from . import common, report

BENCHMARKS = ("locations", "serialize", "push", "tariff", "export")


def run_tariff(cdrs: int = 20_000) -> list[dict]:
    """bench/tariff_bench.py in a process of its own; its figure against the 5,000/s target."""
    print("Tariff maths (bench/tariff_bench.py)")
    out = subprocess.run(
        [common.PYTHON, "bench/tariff_bench.py", "--cdrs", str(cdrs)],
        cwd=common.ROOT,
        env=common.environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    print("  " + out.stdout.strip().replace("\n", "\n  "))
    match = re.search(r"price_session: ([\d,]+) CDRs/s", out.stdout)
    split = re.search(r"split_periods: ([\d,]+) sessions/s", out.stdout)
    rate = int(match.group(1).replace(",", "")) if match else 0
    figures = [
        common.figure(
            "tariff: CDRs priced per second, one core", rate, "CDRs/s", "≥ 5,000", rate >= 5000
        ),
    ]
    if split:
        figures.append(
            common.figure(
                "tariff: sessions cut into periods per second",
                int(split.group(1).replace(",", "")),
                "sessions/s",
            )
        )
    notes = [
        "3-element tariff with restrictions, 20 charging periods per CDR; best of 5 rounds "
        "in process CPU time."
    ]
    common.save_results("tariff", figures, notes)
    return figures


def run_export(cdrs: int = 1_000_000) -> list[dict]:
    """bench/export_bench.py (written beside this suite), if it exists."""
    script = common.ROOT / "bench" / "export_bench.py"
    if not script.exists():
        print("CDR export: bench/export_bench.py not present; skipped")
        return []
    print(f"CDR export (bench/export_bench.py, {cdrs:,} CDRs)", flush=True)
    out = subprocess.run(
        [common.PYTHON, str(script), "--cdrs", str(cdrs), "--keep"],
        cwd=common.ROOT,
        env=common.environment(),
        capture_output=True,
        text=True,
    )
    print("  " + out.stdout.strip().replace("\n", "\n  "))
    if out.returncode != 0:
        print(out.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"export_bench.py failed ({out.returncode})")
    elapsed = re.search(r"^elapsed\s+([\d.,]+) s", out.stdout, re.M)
    peak = re.search(r"^peak RSS\s+([\d.,]+) MiB", out.stdout, re.M)
    rows = re.search(r"^rows\s+([\d,]+)", out.stdout, re.M)
    seconds = float(elapsed.group(1).replace(",", "")) if elapsed else float("nan")
    memory = float(peak.group(1).replace(",", "")) if peak else float("nan")
    count = int(rows.group(1).replace(",", "")) if rows else cdrs
    figures = [
        common.figure(
            f"export: {count:,} CDRs to CSV", round(seconds, 1), "s", "< 180 s", seconds < 180
        ),
        common.figure(
            "export: peak memory", round(memory, 1), "MiB", "< 200 MB", memory * 2**20 < 200e6
        ),
    ]
    common.save_results("export", figures, ["export_cdrs management command, streamed."])
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("all", *BENCHMARKS, "report"))
    parser.add_argument("--locations", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--updates", type=int, default=10_000)
    parser.add_argument("--partners", type=int, default=1)
    parser.add_argument("--cdrs", type=int, default=1_000_000)
    parser.add_argument("--skip", action="append", default=[], choices=BENCHMARKS)
    args = parser.parse_args(argv)

    from . import locations, push, serialize

    runs = {
        "locations": lambda: locations.run(
            locations=args.locations,
            seconds=args.seconds,
            connections=args.connections,
            tool=args.loadgen,
            rounds=args.rounds,
        ),
        "serialize": lambda: serialize.run(),
        "push": lambda: push.run(updates=args.updates, partners=args.partners),
        "tariff": lambda: run_tariff(),
        "export": lambda: run_export(args.cdrs),
    }
    if args.command == "report":
        print(report.table())
        return
    chosen = (
        [args.command]
        if args.command != "all"
        else [name for name in BENCHMARKS if name not in args.skip]
    )
    for name in chosen:
        runs[name]()
        print(flush=True)
    print(report.table())


if __name__ == "__main__":
    main()
