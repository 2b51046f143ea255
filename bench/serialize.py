"""Serializing one page of 100 Locations in-process, layer by layer: ms per page.

    python -m bench serialize [--pages 30]

On the locations benchmark's data (run that first, or `manage.py seed_bench`), for --pages
random pages (the same pages for every contender), the median over the pages of each layer:
- SQL: the queries of the page and the rows (or model instances) they return;
- objects: the OCPI objects (dicts) from those rows;
- JSON: the envelope rendered to bytes.
Contenders:
- product: the Locations list as it serves a page: Location rows, then EVSE+connector rows
  (stations.selectors.location_rows / location_children_rows), location_to_ocpi over them,
  ocpi.jsonutil;
- product, model instances: the same queryset as Django model instances with EVSEs and
  connectors prefetched (what the list did before, and what the 2.1.1 list and pushes still
  use), location_to_ocpi, ocpi.jsonutil;
- baseline: bench/baseline_app.py (3 plain SQL queries, flat dict building, orjson).
The pages' keys are picked the same way by all (the index-only ordered scan), outside the timing
of the product's layers for none of them: each contender pays for its own id query. Also the
whole request in-process (Django test client: authentication, middleware, the traffic log),
for the product only.
"""

import argparse
import random
import statistics
import time

from . import common


def _ms(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return (time.perf_counter() - started) * 1000, result


def run(*, pages: int = 30, seed: int = 7) -> list[dict]:
    common.migrate()
    common.setup_django()
    from django.test import Client

    from bench import baseline_app
    from ocpi import jsonutil
    from ocpi.envelope import envelope
    from ocpi.modules.locations.serializers import location_to_ocpi, locations_from_rows
    from stations.selectors import location_children_rows, location_list, location_rows

    queryset = location_list(partner=None)
    total = queryset.count()
    if total < 100:
        raise SystemExit("serialize: no Locations; run `python -m bench locations` first")
    rng = random.Random(seed)
    offsets = [rng.randrange(total // 100) * 100 for _ in range(pages)]
    print(f"Serializing a page of 100 Locations ({total:,} in the list, {pages} random pages)")

    def page(offset):
        return queryset.filter(pk__in=queryset.values("pk")[offset : offset + 100])

    def product_sql(offset):
        rows = location_rows(page(offset))
        return rows, location_children_rows(location_ids=[r[0] for r in rows])

    def product_objects(fetched):
        return [location_to_ocpi(x) for x in locations_from_rows(*fetched)]

    def instances_sql(offset):
        return list(page(offset))

    def instances_objects(items):
        return [location_to_ocpi(x) for x in items]

    def render(data):
        return jsonutil.dumps(envelope(data))

    conn = baseline_app.connect()
    contenders = {
        "product": (product_sql, product_objects, render),
        "product, model instances": (instances_sql, instances_objects, render),
        "baseline": (
            lambda offset: baseline_app.fetch(conn, offset, 100),
            lambda fetched: baseline_app.build(*fetched),
            baseline_app.render,
        ),
    }
    timings = {name: {"SQL": [], "objects": [], "JSON": []} for name in contenders}
    sizes = {}
    for sql, objects, json in contenders.values():  # warm-up: caches, imports
        json(objects(sql(offsets[0])))
    for offset in offsets:
        for name, (sql, objects, json) in contenders.items():
            t_sql, fetched = _ms(sql, offset)
            t_objects, data = _ms(objects, fetched)
            t_json, body = _ms(json, data)
            timings[name]["SQL"].append(t_sql)
            timings[name]["objects"].append(t_objects)
            timings[name]["JSON"].append(t_json)
            sizes[name] = len(body)

    partner, token = common.bench_partner()
    client = Client(HTTP_AUTHORIZATION=common.authorization_header(token))
    client.get("/ocpi/cpo/2.2.1/locations", {"offset": 0, "limit": 100})  # count the total
    requests = []
    for offset in offsets:
        t, response = _ms(client.get, "/ocpi/cpo/2.2.1/locations", {"offset": offset})
        assert response.status_code == 200
        requests.append(t)

    figures = []
    print(f"  {'ms per page (median)':28} {'SQL':>7} {'objects':>8} {'JSON':>7} {'total':>7}")
    for name, layers in timings.items():
        medians = {layer: statistics.median(values) for layer, values in layers.items()}
        whole = statistics.median(
            sum(layers[layer][i] for layer in layers) for i in range(len(offsets))
        )
        print(
            f"  {name:28} {medians['SQL']:7.1f} {medians['objects']:8.1f} {medians['JSON']:7.1f}"
            f" {whole:7.1f}   ({sizes[name]:,} bytes)"
        )
        figures.append(
            common.figure(
                f"serialize: {name} (SQL / objects / JSON)",
                f"{medians['SQL']:.1f} / {medians['objects']:.1f} / {medians['JSON']:.1f}",
                "ms/page",
            )
        )
    whole_request = statistics.median(requests)
    print(f"  product, whole request in-process (test client): {whole_request:.1f} ms")
    figures.append(
        common.figure(
            "serialize: product whole request in-process", round(whole_request, 1), "ms/page"
        )
    )
    notes = [
        f"Medians over {pages} random pages of 100 of {total:,} Locations; each contender "
        "picks its page's ids itself (index-only deferred join / OFFSET query)."
    ]
    common.save_results("serialize", figures, notes)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=30)
    args = parser.parse_args(argv)
    run(pages=args.pages)


if __name__ == "__main__":
    main()
