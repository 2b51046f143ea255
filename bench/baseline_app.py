"""The yardstick of the locations benchmark: the same page as the product's Locations list, built
by a bare WSGI app with plain SQL (3 queries) and orjson, no framework.

    gunicorn bench.baseline_app:application   (DATABASE_URL, OCPI_COUNTRY_CODE, OCPI_PARTY_ID,
                                               OCPI_BASE_URL, OCPI_MAX_PAGE_SIZE from the env)

GET /ocpi/cpo/2.2.1/locations?offset=&limit= answers the same envelope, the same Location
objects (the same fields left out when empty, DateTimes with milliseconds and Z) and the same
X-Total-Count, X-Limit and Link headers, from:
1. the page's ids: an index-only scan of location_shared_page_idx with OFFSET/LIMIT;
2. those Locations;
3. their EVSEs joined with their connectors.
It uses the tricks the product uses and nothing it cannot: JSON columns passed through as JSON
text, DateTimes formatted by PostgreSQL. What it leaves out: authentication (the product reads
the partner for every request), date_from/date_to, parameter validation, error envelopes, the
traffic log, and counting: the total is counted once per process and kept (the product keeps
its count too, and recounts when the list may have changed).

Only the CPO role from OCPI_COUNTRY_CODE/OCPI_PARTY_ID (the benchmark's network has no other).
"""

import os
import threading
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode

import orjson
import psycopg

DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cpo_bench")
COUNTRY_CODE = os.environ.get("OCPI_COUNTRY_CODE", "NL").lower()
PARTY_ID = os.environ.get("OCPI_PARTY_ID", "CPO").lower()
BASE_URL = os.environ.get("OCPI_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
MAX_LIMIT = int(os.environ.get("OCPI_MAX_PAGE_SIZE", "100"))
PATH = "/ocpi/cpo/2.2.1/locations"

_UPDATED = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""
VISIBLE = (
    "lower(country_code) = %(cc)s AND lower(party_id) = %(pid)s"
    " AND (publish OR NOT (publish_allowed_to = '[]'::jsonb))"
)
SQL_IDS = (
    f"SELECT id FROM stations_location WHERE {VISIBLE}"
    " ORDER BY created, id OFFSET %(offset)s LIMIT %(limit)s"
)
SQL_COUNT = f"SELECT count(*) FROM stations_location WHERE {VISIBLE}"
SQL_LOCATIONS = f"""
SELECT id, country_code, party_id, ocpi_id, publish, publish_allowed_to::text, name, address, city,
       postal_code, state, country, latitude, longitude, related_locations::text, parking_type,
       directions::text, operator::text, suboperator::text, owner::text, facilities::text,
       time_zone, opening_times::text, charging_when_closed, images::text, energy_mix::text,
       {_UPDATED.format("last_updated")}
  FROM stations_location WHERE id = ANY(%(ids)s) ORDER BY created, id"""
SQL_CHILDREN = f"""
SELECT e.id, e.location_id, e.uid, e.evse_id, e.status, e.status_schedule::text,
       e.capabilities::text, e.floor_level, e.latitude, e.longitude, e.physical_reference,
       e.directions::text, e.parking_restrictions::text, e.images::text,
       {_UPDATED.format("e.last_updated")},
       c.ocpi_id, c.standard, c.format, c.power_type, c.max_voltage, c.max_amperage,
       c.max_electric_power, c.tariff_ids::text, c.terms_and_conditions,
       {_UPDATED.format("c.last_updated")}
  FROM stations_evse e JOIN stations_connector c ON c.evse_id = e.id
 WHERE e.location_id = ANY(%(ids)s)
 ORDER BY e.location_id, e.created, e.id, c.created, c.id"""

_EMPTY = frozenset({None, "", "[]", "{}", "null"})
_local = threading.local()
_total: dict[str, int] = {}


def connect() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg.connect(DATABASE_URL, autocommit=True)
    return conn


def _time(text: str) -> str:
    return text[:-5] + "Z" if text.endswith(".000Z") else text


def _json(target: dict, key: str, text: str | None) -> None:
    if text not in _EMPTY:
        target[key] = orjson.Fragment(text)


def _str(target: dict, key: str, value: str | None) -> None:
    if value:
        target[key] = value


def fetch(conn: psycopg.Connection, offset: int, limit: int) -> tuple[list, list]:
    """The page's Location rows and their EVSE+connector rows: 3 queries."""
    params = {"cc": COUNTRY_CODE, "pid": PARTY_ID, "offset": offset, "limit": limit}
    ids = [row[0] for row in conn.execute(SQL_IDS, params)]
    if not ids:
        return [], []
    locations = conn.execute(SQL_LOCATIONS, {"ids": ids}).fetchall()
    children = conn.execute(SQL_CHILDREN, {"ids": ids}).fetchall()
    return locations, children


def build(locations: list, children: list) -> list[dict]:
    """The OCPI 2.2.1 Location objects (the product's serializer rules, written out flat)."""
    evses_of: dict[int, list] = {}
    evse = evse_id = None
    for r in children:
        if r[0] != evse_id:
            evse_id = r[0]
            evse = {"uid": r[2]}
            _str(evse, "evse_id", r[3])
            evse["status"] = r[4]
            _json(evse, "status_schedule", r[5])
            _json(evse, "capabilities", r[6])
            evse["connectors"] = []
            _str(evse, "floor_level", r[7])
            if r[8] and r[9]:
                evse["coordinates"] = {"latitude": r[8], "longitude": r[9]}
            _str(evse, "physical_reference", r[10])
            _json(evse, "directions", r[11])
            _json(evse, "parking_restrictions", r[12])
            _json(evse, "images", r[13])
            evse["last_updated"] = _time(r[14])
            evses_of.setdefault(r[1], []).append(evse)
        connector = {
            "id": r[15],
            "standard": r[16],
            "format": r[17],
            "power_type": r[18],
            "max_voltage": r[19],
            "max_amperage": r[20],
        }
        if r[21] is not None:
            connector["max_electric_power"] = r[21]
        _json(connector, "tariff_ids", r[22])
        _str(connector, "terms_and_conditions", r[23])
        connector["last_updated"] = _time(r[24])
        evse["connectors"].append(connector)
    out = []
    for r in locations:
        loc = {"country_code": r[1], "party_id": r[2], "id": r[3], "publish": r[4]}
        if not r[4]:
            _json(loc, "publish_allowed_to", r[5])
        _str(loc, "name", r[6])
        loc["address"] = r[7]
        loc["city"] = r[8]
        _str(loc, "postal_code", r[9])
        _str(loc, "state", r[10])
        loc["country"] = r[11]
        loc["coordinates"] = {"latitude": r[12], "longitude": r[13]}
        _json(loc, "related_locations", r[14])
        _str(loc, "parking_type", r[15])
        if r[0] in evses_of:
            loc["evses"] = evses_of[r[0]]
        _json(loc, "directions", r[16])
        _json(loc, "operator", r[17])
        _json(loc, "suboperator", r[18])
        _json(loc, "owner", r[19])
        _json(loc, "facilities", r[20])
        loc["time_zone"] = r[21]
        _json(loc, "opening_times", r[22])
        if r[23] is not None:
            loc["charging_when_closed"] = r[23]
        _json(loc, "images", r[24])
        _json(loc, "energy_mix", r[25])
        loc["last_updated"] = _time(r[26])
        out.append(loc)
    return out


def render(data: list[dict]) -> bytes:
    now = datetime.now(UTC)
    millis = now.microsecond // 1000
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S") + (f".{millis:03d}Z" if millis else "Z")
    body = {"data": data, "status_code": 1000, "status_message": "Success", "timestamp": stamp}
    return orjson.dumps(body)


def total(conn: psycopg.Connection) -> int:
    if "all" not in _total:
        _total["all"] = conn.execute(SQL_COUNT, {"cc": COUNTRY_CODE, "pid": PARTY_ID}).fetchone()[0]
    return _total["all"]


def _int(query: dict, name: str, default: int) -> int:
    try:
        return max(0, int(query.get(name, [default])[0]))
    except ValueError:
        return default


def application(environ, start_response):
    if environ.get("PATH_INFO", "").rstrip("/") != PATH:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    offset = _int(query, "offset", 0)
    limit = min(_int(query, "limit", MAX_LIMIT) or MAX_LIMIT, MAX_LIMIT)
    conn = connect()
    locations, children = fetch(conn, offset, limit)
    body = render(build(locations, children))
    count = total(conn)
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("X-Total-Count", str(count)),
        ("X-Limit", str(MAX_LIMIT)),
    ]
    if locations and offset + len(locations) < count:
        link = f"{BASE_URL}{PATH}?{urlencode({'offset': offset + len(locations), 'limit': limit})}"
        headers.append(("Link", f'<{link}>; rel="next"'))
    start_response("200 OK", headers)
    return [body]
