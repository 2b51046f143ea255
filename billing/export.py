"""Finance exports: the CDRs as CSV, and the per-partner, per-month settlement summary.

Who uses it: the staff pages (billing/views.py, under /staff/), the CDR admin's "Export selected
to CSV" action (`export_action`), and the commands `export_cdrs` and `export_settlement`.

The CDR CSV has one column set, EXPORT_COLUMNS below (the header row, in order):

    CDR id, Partner, Session id,
    Start (UTC), End (UTC), Start (local), End (local), Time zone,
    Location id, Location name, Address, Postal code, City, Country,
    EVSE uid, EVSE id, Connector id, Token uid, Token type, Contract id,
    kWh, Duration (h), Parking time (h),
    Energy cost excl. VAT, Energy cost incl. VAT, Time cost excl. VAT, Time cost incl. VAT,
    Parking cost excl. VAT, Parking cost incl. VAT, Fixed cost excl. VAT, Fixed cost incl. VAT,
    Reservation cost excl. VAT, Reservation cost incl. VAT,
    Total cost excl. VAT, Total cost incl. VAT, VAT amount, Currency,
    Credit, Credit reference, Sent at (UTC)

The format, so that a spreadsheet opens it cleanly and finance can trust every cell:
- UTF-8 with a byte-order mark (Excel otherwise reads it as the local code page and mangles
  "Zürich"), comma separated, CRLF line ends, quoted only where needed (RFC 4180).
- Numbers are exact decimals as plain digits with a "." (never a float, never an exponent):
  money as stored with at least 2 decimals (4.0000 -> "4.00", 0.1234 stays), kWh and hours with
  at least 3 ("15.342"). An absent cost component (the CDR has none) is an empty cell. VAT
  amount = total incl. VAT - total excl. VAT (empty when the CDR has no incl. VAT total).
- Times to the second as "YYYY-MM-DD HH:MM:SS" (a spreadsheet reads them as date-times): in UTC,
  and in the CDR's time zone (the location's IANA zone, DST applied; the UTC column tells the
  repeated autumn hour apart). An unknown time zone leaves the local cells empty.
- Location, EVSE, connector and token columns come from the CDR's frozen cdr_location and
  cdr_token (as the partner received them), not from today's network.
- A credit CDR is a row of its own: Credit "yes", its Credit reference = the credited CDR's id,
  and its totals as it carries them (negative). Sums over the export therefore net credits.
- Text cells that a spreadsheet would run as a formula (starting with = + - @, tab or CR) get a
  leading apostrophe: token uids and contract ids come from partners (CSV injection).

Which CDRs: start_date_time in the half-open UTC range [from, to) ("--from 2026-11-01 --to
2026-12-01" is November exactly, UTC), optionally one partner; ordered by start time, then id
(billing.selectors.cdr_export_queryset).

Memory: `export_rows` reads `.values()` rows through `.iterator(chunk_size=...)` (a server-side
cursor on PostgreSQL), and `csv_chunks` writes them out a few hundred rows at a time, so an
export of a million CDRs holds one chunk in memory, never the result set.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.fields.json import KT
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.text import slugify

from .models_cdrs import CDR

#: Rows fetched per database round trip, and rows per chunk of CSV text handed on.
DEFAULT_CHUNK_SIZE = 2000
ROWS_PER_CHUNK = 500
BOM = "\ufeff"

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --- cells ------------------------------------------------------------------------------------


def plain_decimal(value: Decimal | None, min_places: int = 0) -> str:
    """`value` exactly, as plain digits (never an exponent), with at least `min_places`
    decimals and no trailing zeros beyond them; "" for None. Minus zero is written as zero."""
    if value is None:
        return ""
    if not isinstance(value, Decimal):
        # Exports never take floats: a float here would already have lost the exact amount.
        raise TypeError(f"expected a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"cannot export {value}")
    # format(..., "f") writes every digit held and never an exponent; the rest is trimming
    # trailing zeros (string work: this runs for a dozen cells of every exported row).
    text = format(value, "f")
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0")
    if len(fraction) < min_places:
        fraction += "0" * (min_places - len(fraction))
    if whole == "-0" and not value:
        whole = "0"
    return f"{whole}.{fraction}" if fraction else whole


def text_cell(value: Any) -> str:
    """A text cell: "" for None, and a leading apostrophe where a spreadsheet would see a
    formula."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _datetime_cell(value: datetime | None, zone: ZoneInfo | None = UTC) -> str:
    if value is None or zone is None:
        return ""
    # "YYYY-MM-DD HH:MM:SS": the first 19 characters of the ISO form (faster than strftime).
    return value.astimezone(zone).isoformat(" ", "seconds")[:19]


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


# --- extractors: what a column reads from a row and how it writes it --------------------------


class Extractor:
    """Makes one cell from one exported row (a dict of `.values()`); `sources` names what it
    reads: {row key: model field path or query expression}."""

    def __init__(self, sources: dict[str, Any], render: Callable[[dict], str]) -> None:
        self.sources = sources
        self.render = render

    def __call__(self, row: dict) -> str:
        return self.render(row)


def _field(path: str) -> Extractor:
    return Extractor({path: path}, lambda row: text_cell(row[path]))


def _json(alias: str, path: str) -> Extractor:
    # Read on the database side (->> on PostgreSQL): a row carries the key, not the document.
    return Extractor({alias: KT(path)}, lambda row: text_cell(row[alias]))


def _money(field: str) -> Extractor:
    return Extractor({field: field}, lambda row: plain_decimal(row[field], 2))


def _volume(field: str) -> Extractor:
    return Extractor({field: field}, lambda row: plain_decimal(row[field], 3))


def _utc(field: str) -> Extractor:
    return Extractor({field: field}, lambda row: _datetime_cell(row[field]))


def _local(field: str) -> Extractor:
    return Extractor(
        {field: field, "time_zone": "time_zone"},
        lambda row: _datetime_cell(row[field], _zone(row["time_zone"] or "")),
    )


def _vat_amount(row: dict) -> str:
    incl, excl = row["total_cost_incl_vat"], row["total_cost_excl_vat"]
    return "" if incl is None or excl is None else plain_decimal(incl - excl, 2)


_VAT = Extractor(
    {"total_cost_incl_vat": "total_cost_incl_vat", "total_cost_excl_vat": "total_cost_excl_vat"},
    _vat_amount,
)
_CREDIT = Extractor({"credit": "credit"}, lambda row: "yes" if row["credit"] else "no")

#: The CDR CSV's one column set: (header, extractor), in order (documented above).
EXPORT_COLUMNS: list[tuple[str, Extractor]] = [
    ("CDR id", _field("ocpi_id")),
    ("Partner", _field("partner__name")),
    ("Session id", _field("session_ocpi_id")),
    ("Start (UTC)", _utc("start_date_time")),
    ("End (UTC)", _utc("end_date_time")),
    ("Start (local)", _local("start_date_time")),
    ("End (local)", _local("end_date_time")),
    ("Time zone", _field("time_zone")),
    ("Location id", _json("location_id", "cdr_location__id")),
    ("Location name", _json("location_name", "cdr_location__name")),
    ("Address", _json("location_address", "cdr_location__address")),
    ("Postal code", _json("location_postal_code", "cdr_location__postal_code")),
    ("City", _json("location_city", "cdr_location__city")),
    ("Country", _json("location_country", "cdr_location__country")),
    ("EVSE uid", _json("evse_uid", "cdr_location__evse_uid")),
    ("EVSE id", _json("evse_id", "cdr_location__evse_id")),
    ("Connector id", _json("connector_id", "cdr_location__connector_id")),
    ("Token uid", _json("token_uid", "cdr_token__uid")),
    ("Token type", _json("token_type", "cdr_token__type")),
    ("Contract id", _json("contract_id", "cdr_token__contract_id")),
    ("kWh", _volume("total_energy")),
    ("Duration (h)", _volume("total_time")),
    ("Parking time (h)", _volume("total_parking_time")),
    ("Energy cost excl. VAT", _money("total_energy_cost_excl_vat")),
    ("Energy cost incl. VAT", _money("total_energy_cost_incl_vat")),
    ("Time cost excl. VAT", _money("total_time_cost_excl_vat")),
    ("Time cost incl. VAT", _money("total_time_cost_incl_vat")),
    ("Parking cost excl. VAT", _money("total_parking_cost_excl_vat")),
    ("Parking cost incl. VAT", _money("total_parking_cost_incl_vat")),
    ("Fixed cost excl. VAT", _money("total_fixed_cost_excl_vat")),
    ("Fixed cost incl. VAT", _money("total_fixed_cost_incl_vat")),
    ("Reservation cost excl. VAT", _money("total_reservation_cost_excl_vat")),
    ("Reservation cost incl. VAT", _money("total_reservation_cost_incl_vat")),
    ("Total cost excl. VAT", _money("total_cost_excl_vat")),
    ("Total cost incl. VAT", _money("total_cost_incl_vat")),
    ("VAT amount", _VAT),
    ("Currency", _field("currency")),
    ("Credit", _CREDIT),
    ("Credit reference", _field("credit_reference_id")),
    ("Sent at (UTC)", _utc("sent_at")),
]

EXPORT_HEADERS = [header for header, _ in EXPORT_COLUMNS]


def _query_values(columns: list[tuple[str, Extractor]]) -> tuple[list[str], dict[str, Any]]:
    """What `.values()` must select for `columns`: plain field paths, and named expressions."""
    fields: list[str] = []
    expressions: dict[str, Any] = {}
    for _, extractor in columns:
        for key, source in extractor.sources.items():
            if isinstance(source, str) and source == key:
                if key not in fields:
                    fields.append(key)
            else:
                expressions[key] = source
    return fields, expressions


# --- the CDR export ---------------------------------------------------------------------------


def export_rows(queryset: QuerySet[CDR], *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[dict]:
    """The rows of `queryset` as small dicts holding only what EXPORT_COLUMNS read, streamed
    from the database `chunk_size` at a time (never the whole result in memory). The queryset's
    own ordering is kept (cdr_export_queryset orders by start time, then id)."""
    fields, expressions = _query_values(EXPORT_COLUMNS)
    return queryset.values(*fields, **expressions).iterator(chunk_size=chunk_size)


class _Buffer:
    """A write-only file for csv.writer that hands back what was written since last asked."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def write(self, text: str) -> None:
        self._parts.append(text)

    def take(self) -> str:
        text = "".join(self._parts)
        self._parts.clear()
        return text


def csv_chunks(
    rows: Iterable[Any],
    columns: Sequence[tuple[str, Callable[[Any], str]]] = EXPORT_COLUMNS,
    *,
    bom: bool = True,
    rows_per_chunk: int = ROWS_PER_CHUNK,
) -> Iterator[str]:
    """CSV text (the header row first, led by a BOM unless bom=False) of `rows` under
    `columns`, in chunks of `rows_per_chunk` rows: lazy, one chunk in memory at a time."""
    buffer = _Buffer()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([header for header, _ in columns])
    yield (BOM if bom else "") + buffer.take()
    # Extractor.render directly: one call less per cell of every row.
    extractors = [getattr(extract, "render", extract) for _, extract in columns]
    pending = 0
    for row in rows:
        writer.writerow([extract(row) for extract in extractors])
        pending += 1
        if pending == rows_per_chunk:
            yield buffer.take()
            pending = 0
    if pending:
        yield buffer.take()


def cdr_csv(
    queryset: QuerySet[CDR], *, bom: bool = True, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[str]:
    """The finance CSV of `queryset`, streamed (see the module docstring for the format)."""
    return csv_chunks(export_rows(queryset, chunk_size=chunk_size), bom=bom)


def in_one_transaction(chunks: Iterable[str]) -> Iterator[str]:
    """`chunks`, produced inside one read-only transaction opened when streaming starts (a
    streamed response is iterated after its view returned, outside ATOMIC_REQUESTS): one
    consistent snapshot, and on PostgreSQL a plain server-side cursor rather than a WITH HOLD
    one, which the server would first materialize whole. A client that goes away closes the
    generator, which ends the transaction."""
    with transaction.atomic():
        yield from chunks


def csv_response(chunks: Iterable[str], *, filename: str) -> StreamingHttpResponse:
    """A download of CSV text chunks, streamed as they are produced (UTF-8)."""
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"  # finance data: not for shared caches
    return response


def export_filename(
    prefix: str, date_from: date | datetime, date_to: date | datetime, partner: Any = None
) -> str:
    """E.g. cdrs_2026-11-01_2026-12-01_partner-one.csv (the range is [from, to) in UTC)."""

    def part(value: date | datetime) -> str:
        if isinstance(value, datetime):
            value = value.astimezone(UTC)
            return value.strftime("%Y-%m-%d" if value.time() == datetime.min.time() else
                                  "%Y-%m-%dT%H%M%SZ")  # fmt: skip
        return value.isoformat()

    name = f"{prefix}_{part(date_from)}_{part(date_to)}"
    if partner is not None:
        name += "_" + (slugify(str(partner)) or f"partner-{partner.pk}")
    return name + ".csv"


@admin.action(description="Export selected to CSV")
def export_action(modeladmin, request, queryset: QuerySet[CDR]) -> StreamingHttpResponse:
    """The CDR changelist's action: the selected CDRs (or the whole filtered list with "select
    all") as the finance CSV, ordered by start time."""
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    return csv_response(
        in_one_transaction(cdr_csv(queryset.order_by("start_date_time", "pk"))),
        filename=f"cdrs_selected_{stamp}.csv",
    )


# --- the settlement summary -------------------------------------------------------------------


def _count(key: str) -> Callable[[dict], str]:
    return lambda row: str(row[key])


def _sum(key: str, places: int) -> Callable[[dict], str]:
    return lambda row: plain_decimal(row[key], places)


#: The settlement CSV's columns over billing.selectors.settlement_rows() rows.
SETTLEMENT_COLUMNS: list[tuple[str, Callable[[dict], str]]] = [
    ("Month", lambda row: row["month"].strftime("%Y-%m")),
    ("Partner", lambda row: text_cell(row["partner"])),
    ("Currency", lambda row: text_cell(row["currency"])),
    ("Sessions", _count("sessions")),
    ("CDRs", _count("cdrs")),
    ("Credit CDRs", _count("credit_cdrs")),
    ("kWh (net)", _sum("kwh", 3)),
    ("Charged excl. VAT", _sum("charged_excl_vat", 2)),
    ("Charged incl. VAT", _sum("charged_incl_vat", 2)),
    ("Credited excl. VAT", _sum("credited_excl_vat", 2)),
    ("Credited incl. VAT", _sum("credited_incl_vat", 2)),
    ("Net revenue excl. VAT", _sum("net_excl_vat", 2)),
    ("Net revenue incl. VAT", _sum("net_incl_vat", 2)),
    ("VAT (net)", _sum("vat", 2)),
]


def settlement_csv(rows: Iterable[dict], *, bom: bool = True) -> Iterator[str]:
    """The settlement summary as CSV text (same format rules as the CDR export)."""
    return csv_chunks(rows, SETTLEMENT_COLUMNS, bom=bom)


def parse_month(text: str) -> date:
    """ "2026-11" -> date(2026, 11, 1); ValueError otherwise."""
    try:
        year, month = text.strip().split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError
        return date(int(year), int(month), 1)
    except ValueError:
        raise ValueError(f"{text!r} is not a month (YYYY-MM)") from None


def month_after(month: date) -> date:
    """The first day of the month after `month`."""
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)
