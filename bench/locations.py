"""Locations paging: the product's Locations list under a partner's full sync, beside a baseline.

    python -m bench locations [--locations 100000] [--seconds 20] [--connections 4]
                              [--loadgen auto|wrk|python] [--rounds 4]

1. Data: `manage.py seed_bench` until the database holds --locations BENCH Locations (4 EVSEs
   and 6 connectors each; a different count is cleared and seeded again), then VACUUM ANALYZE
   of the three tables (index-only scans need the visibility map; autovacuum keeps it in
   production, a benchmark right after a bulk load cannot wait for it).
2. SQL per page, counted in this process with Django's CaptureQueriesContext through the whole
   request (authentication, the page, the traffic log) at offsets 0, the middle and the last
   page, the first one with the total to count.
3. Two servers on free 127.0.0.1 ports under the same gunicorn settings (2 gthread workers, 4
   threads each): the product (cpo_platform.wsgi, DEBUG=false, PostgreSQL, Redis as the cache,
   the traffic log on as in production, the rate limit off: its default of 600 requests a minute
   per partner would answer 429 to a benchmark) and the baseline (bench/baseline_app.py: the same
   page with plain SQL in 3 queries and orjson). One page is fetched from both and compared.
4. Each is warmed up, then loaded for --seconds with random pages of 100 over the whole list
   (wrk when installed, else Python threads) in --rounds interleaved rounds (product, baseline,
   baseline, product, ...), so that what else the machine does weighs on both alike: pages/s,
   p50 and p99 latency over all rounds.
Targets (issue 6): the product at least 60% of the baseline's pages/s, p99 under 100 ms, at most
4 SQL queries per page whatever the offset.
"""

import argparse
import subprocess
import time

import orjson

from . import common, loadgen

PATH = "/ocpi/cpo/2.2.1/locations"
PREFIX = "BENCH-"
WARM_UP = 5.0  # seconds of load before measuring: workers import, connect, build the index


def ensure_locations(count: int) -> int:
    """Seed (or re-seed) the bench network to `count` BENCH Locations; returns how many exist."""
    from stations.models import Location

    existing = Location.objects.filter(ocpi_id__startswith=PREFIX).count()
    command = [common.PYTHON, "manage.py", "seed_bench", "--locations"]
    if existing == count:
        print(f"  {existing:,} bench Locations in the database already")
    elif existing < count:
        print(f"  seeding {count - existing:,} Locations (have {existing:,}) ...", flush=True)
        subprocess.run(
            [*command, str(count - existing)], cwd=common.ROOT, check=True, env=common.environment()
        )
    else:
        print(f"  {existing:,} bench Locations; clearing and seeding {count:,} ...", flush=True)
        subprocess.run(
            [*command, str(count), "--clear"], cwd=common.ROOT, check=True, env=common.environment()
        )
    vacuum()
    return Location.objects.filter(ocpi_id__startswith=PREFIX).count()


def vacuum() -> None:
    from django.db import connection

    from stations.models import EVSE, Connector, Location

    started = time.monotonic()
    with connection.cursor() as cursor:
        for model in (Location, EVSE, Connector):
            cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(model._meta.db_table)}")
    print(f"  VACUUM ANALYZE in {time.monotonic() - started:.1f} s")


def queries_per_page(token: str, total: int) -> dict:
    """The SQL statements of one request, at three offsets, counted in this process."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from ocpi.modules.locations.views import LOCATION_INDEX

    client = Client(HTTP_AUTHORIZATION=common.authorization_header(token))
    LOCATION_INDEX.changed()  # the first page below rebuilds the index
    last = max(0, (total - 1) // 100 * 100)
    counts = {}
    for offset in (0, total // 200 * 100, last):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(PATH, {"offset": offset, "limit": 100})
        assert response.status_code == 200, response.content[:500]
        kinds = {"SELECT": 0, "INSERT": 0, "other": 0}
        for query in captured.captured_queries:
            word = query["sql"].lstrip().split(None, 1)[0].upper()
            kinds[word if word in kinds else "other"] += 1
        counts[offset] = kinds
    return counts


def _same_page(product_url: str, baseline_url: str, token: str, offset: int) -> bool:
    import urllib.request

    def data(url: str, auth: str | None) -> list:
        request = urllib.request.Request(f"{url}?offset={offset}&limit=100")
        if auth:
            request.add_header("Authorization", auth)
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return orjson.loads(response.read())["data"]

    return data(product_url, common.authorization_header(token)) == data(baseline_url, None)


def run(
    *,
    locations: int = 100_000,
    seconds: float = 20.0,
    connections: int = 4,
    tool: str = "auto",
    rounds: int = 4,
) -> list[dict]:
    common.migrate()
    common.setup_django()
    print(f"Locations paging ({locations:,} Locations)")
    ensure_locations(locations)
    from stations.selectors import location_list

    total = location_list(partner=None).count()
    pages = max(1, (total + 99) // 100)
    partner, token = common.bench_partner()
    counts = queries_per_page(token, total)
    for offset, kinds in counts.items():
        print(f"  offset {offset:>7,}: {kinds}")

    logs = common.ROOT / "var" / "bench"
    product_port, baseline_port = common.free_port(), common.free_port()
    env = common.environment(OCPI_RATE_LIMIT="", OCPI_BASE_URL=f"http://127.0.0.1:{product_port}")
    apps = {
        "product": ("cpo_platform.wsgi:application", product_port),
        "baseline": ("bench.baseline_app:application", baseline_port),
    }
    servers, results, cpu = {}, {}, {}
    try:
        for name, (app, port) in apps.items():
            servers[name] = common.gunicorn(
                app, port=port, log=logs / f"{name}.log", env=env, workers=2, threads=4
            )
        urls = {name: f"http://127.0.0.1:{port}{PATH}" for name, (_, port) in apps.items()}
        same = _same_page(urls["product"], urls["baseline"], token, (pages // 3) * 100)
        print(f"  product and baseline pages identical: {same}")
        auth = {"product": common.authorization_header(token), "baseline": ""}
        load = {name: {"pages": pages, "connections": connections, "authorization": auth[name]}
                for name in urls}  # fmt: skip
        for name, url in urls.items():
            loadgen.run(url, tool=tool, seconds=WARM_UP, **load[name])
        # Interleaved rounds (product, baseline, baseline, product, ...): whatever else the
        # machine does meanwhile weighs on both servers alike.
        per_round = max(1.0, round(seconds / rounds))  # whole seconds: wrk's -d
        rounds_of = {name: [] for name in urls}
        ticks = {name: [0.0, 0.0] for name in urls}
        for round_ in range(rounds):
            order = list(urls) if round_ % 2 == 0 else list(reversed(urls))
            for name in order:
                meter = common.CPUMeter(servers[name].pid)
                meter.start()
                part = loadgen.run(urls[name], tool=tool, seconds=per_round, **load[name])
                worker_cpu, database_cpu = meter.stop()
                ticks[name][0] += worker_cpu
                ticks[name][1] += database_cpu
                rounds_of[name].append(part)
        for name in urls:
            result = results[name] = loadgen.merge(rounds_of[name])
            done = max(1, result.requests)
            cpu[name] = (ticks[name][0] / done * 1000, ticks[name][1] / done * 1000)
            print(
                f"  {name:8}: {result.pages_per_second:7.1f} pages/s, p50 {result.p50_ms:6.1f} ms,"
                f" p99 {result.p99_ms:6.1f} ms, {result.requests} requests, {result.errors} errors"
                f" ({result.tool}, {rounds} rounds); CPU per page: workers {cpu[name][0]:.1f} ms,"
                f" PostgreSQL {cpu[name][1]:.1f} ms",
                flush=True,
            )
    finally:
        for server in servers.values():
            common.stop(server)

    product, baseline = results["product"], results["baseline"]
    ratio = product.pages_per_second / baseline.pages_per_second
    worst_selects = max(k["SELECT"] for k in counts.values())
    per_offset = " / ".join(str(k["SELECT"]) for k in counts.values())
    inserts = max(k["INSERT"] for k in counts.values())
    figure = common.figure
    figures = [
        figure("locations: product pages/s", round(product.pages_per_second, 1), "pages/s"),
        figure("locations: baseline pages/s", round(baseline.pages_per_second, 1), "pages/s"),
        figure("locations: product / baseline", f"{ratio:.0%}", "", "≥ 60%", ratio >= 0.6),
        figure("locations: product p50", round(product.p50_ms, 1), "ms"),
        figure(
            "locations: product p99",
            round(product.p99_ms, 1),
            "ms",
            "< 100 ms",
            product.p99_ms < 100,
        ),
        figure(
            "locations: baseline p50 / p99", f"{baseline.p50_ms:.1f} / {baseline.p99_ms:.1f}", "ms"
        ),
        figure(
            "locations: SQL SELECTs per page (offset 0 / mid / last)",
            per_offset,
            "",
            "≤ 4",
            worst_selects <= 4,
        ),
        figure(
            "locations: CPU per page, product (workers + PostgreSQL)",
            f"{cpu['product'][0]:.1f} + {cpu['product'][1]:.1f}",
            "ms",
        ),
        figure(
            "locations: CPU per page, baseline (workers + PostgreSQL)",
            f"{cpu['baseline'][0]:.1f} + {cpu['baseline'][1]:.1f}",
            "ms",
        ),
    ]
    notes = [
        f"{total:,} Locations, random pages of 100, {seconds:g} s per server in {rounds} "
        f"interleaved rounds after {WARM_UP:g} s of warm-up, {product.tool}; both under "
        "gunicorn, 2 gthread workers × 4 threads.",
        f"Errors: product {product.errors}, baseline {baseline.errors}; one page compared "
        f"between the two: {'identical' if same else 'DIFFERENT'}.",
        f"Per page also {inserts} INSERT: the traffic log's row, written after the response. "
        "Offset 0 was requested first and rebuilt the list's index (positions and total).",
    ]
    common.save_results("locations", figures, notes)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--locations", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    run(
        locations=args.locations,
        seconds=args.seconds,
        connections=args.connections,
        tool=args.loadgen,
        rounds=args.rounds,
    )


if __name__ == "__main__":
    main()
