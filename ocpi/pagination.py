"""Pagination of OCPI list endpoints (PROTOCOL.md §1.8): offset, limit, date_from, date_to.

Stable order (creation, then primary key), a server cap on limit, and the headers X-Total-Count,
X-Limit and Link rel="next" that repeats the filters.

What a page costs at depth (a partner's full sync reads every page of a 100,000-object list):
- By offset (every list): the page's keys come from a subquery, a deferred join:
  `... WHERE pk IN (SELECT pk ... ORDER BY created, pk LIMIT m OFFSET n)`. With an index that
  covers the list's filter and order (Locations: location_shared_page_idx) the inner query is an
  index-only scan: a row skipped by a deep OFFSET costs an index entry, not a table row. The
  total is counted inside the same query (one statement, one round trip).
- By key (lists given a `ListIndex`, without a date window): the index keeps the list's total
  and the sort key of every `step`-th row. A page at offset n starts from the key at position
  n // step and skips fewer than `step` index entries: deep pages cost what the first does,
  and nothing is counted. See ListIndex for when what it keeps is rebuilt.
"""

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.db import connections, transaction
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from .datetimes import format_datetime, parse_datetime
from .exceptions import InvalidParameters


@dataclass(frozen=True)
class PageRequest:
    offset: int
    limit: int
    date_from: datetime | None
    date_to: datetime | None

    @classmethod
    def from_query(cls, query, *, max_limit: int | None = None) -> "PageRequest":
        max_limit = max_limit or settings.OCPI_MAX_PAGE_SIZE
        offset = _non_negative_int(query, "offset", default=0)
        limit = min(_non_negative_int(query, "limit", default=max_limit), max_limit)
        if limit < 1:
            # An empty page would read as "nothing exists" to a client taking lists as truth.
            raise InvalidParameters("limit must be at least 1")
        return cls(
            offset=offset,
            limit=limit,
            date_from=_datetime(query, "date_from"),
            date_to=_datetime(query, "date_to"),
        )

    @property
    def windowed(self) -> bool:
        return self.date_from is not None or self.date_to is not None


def _non_negative_int(query, name: str, *, default: int) -> int:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameters(f"{name} must be a whole number") from None
    if value < 0 or value > 2**31:
        raise InvalidParameters(f"{name} must be between 0 and 2^31")
    return value


def _datetime(query, name: str) -> datetime | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        return parse_datetime(raw)
    except ValueError:
        raise InvalidParameters(f"{name} must be an RFC 3339 date-time") from None


@dataclass(frozen=True)
class Page:
    items: list
    total: int
    headers: dict


# --- what is known of an unfiltered list between pages ------------------------------------------
#: Annotations the page's query may carry (attributes of its items).
TOTAL_ANNOTATION = "page_total_count"


@dataclass(frozen=True)
class _Entry:
    version: str
    stamp: object  # the table's highest primary key when the entry was built
    total: int
    anchors: tuple  # the ordering values of rows 0, step, 2 * step, ...
    built_at: float


class ListIndex:
    """The total of a list without a date window, and the ordering key of every `step`-th row,
    kept between pages so that a page at any offset is found by key and nothing is counted.

    Kept in Django's default cache (Redis when CACHE_URL is set: shared by all workers; local
    memory otherwise: per process), one entry per distinct list query (so per partner, per
    version's filter, per CPO roles) and database. Built by one query over the list's index
    (about as long as counting it). Used only while all of these hold:
    - the table's highest primary key is the one seen at building: checked inside each page's
      own query, it changes with every insert, bulk inserts included;
    - no change that can move rows into or out of the list was announced since: the list's
      module calls `changed()` for those (for Locations: created, deleted, or one of
      stations.selectors.VISIBILITY_FIELDS changed) and not for changes inside rows (an EVSE's
      status), which are most changes on a live network and leave positions as they are;
    - it is younger than `ttl` seconds: the bound on what is never announced (a queryset
      update() or SQL by hand, a delete on another worker while each worker has its own cache).
    A page whose check fails is served by offset in the same request. For lists ordered by
    non-null fields ending with the primary key (ascending), as all OCPI lists are here, on
    PostgreSQL.
    """

    def __init__(self, name: str, *, ttl: float = 30.0, step: int = 1000):
        self.name = name
        self.ttl = ttl
        self.step = step

    @property
    def _version_key(self) -> str:
        return f"ocpi:list:{self.name}:version"

    def changed(self, using: str = "default") -> None:
        """Rows may have entered or left the list: rebuild, now and (for readers that built
        before the change committed) once more after commit (once per transaction)."""
        self._bump()
        if not any(entry[1] == self._bump for entry in connections[using].run_on_commit):
            transaction.on_commit(self._bump, using=using, robust=True)

    def _bump(self) -> None:
        try:
            cache.set(self._version_key, uuid.uuid4().hex, timeout=None)
        except Exception:  # noqa: BLE001 - a cache outage: entries still expire after ttl
            pass

    def lookup(self, queryset: QuerySet) -> "_Lookup | None":
        """The list's entry, current or rebuilt now; None when this list cannot be indexed
        (or the database is not PostgreSQL: the SQLite demo pages by offset)."""
        order = _ordering(queryset)
        if order is None or connections[queryset.db].vendor != "postgresql":
            return None
        sql, params = queryset.order_by().values_list(*order).query.sql_with_params()
        database = connections[queryset.db].settings_dict["NAME"]
        digest = hashlib.sha256(repr((database, sql, params)).encode()).hexdigest()[:32]
        lookup = _Lookup(self, f"ocpi:list:{self.name}:{digest}", queryset, order, sql, params)
        try:
            found = cache.get_many([self._version_key, lookup.key])
        except Exception:  # noqa: BLE001 - a cache outage: pages by offset, still right
            return None
        lookup.version = found.get(self._version_key, "")
        entry = found.get(lookup.key)
        if (
            isinstance(entry, _Entry)
            and entry.version == lookup.version
            and time.time() - entry.built_at < self.ttl
        ):
            lookup.entry = entry
        else:
            lookup.build()
        return lookup


def _ordering(queryset: QuerySet) -> tuple[str, ...] | None:
    order = tuple(queryset.query.order_by)
    if (
        not order
        or order[-1] not in ("pk", "id")
        or any(not isinstance(f, str) or f.startswith("-") or "__" in f for f in order)
    ):
        return None
    return order


@dataclass
class _Lookup:
    index: ListIndex
    key: str
    queryset: QuerySet
    order: tuple[str, ...]
    sql: str
    params: tuple
    version: str = ""
    entry: _Entry | None = None

    def build(self) -> None:
        """One query: the key of every step-th row (row_number over the list's order, an
        index-only scan), the total and the table's highest primary key."""
        model = self.queryset.model
        names = ", ".join(f"k{i}" for i in range(len(self.order)))
        table = connections[self.queryset.db].ops.quote_name(model._meta.db_table)
        pk = connections[self.queryset.db].ops.quote_name(model._meta.pk.column)
        sql = (
            f"SELECT {names}, (SELECT COUNT(*) FROM ({self.sql}) counted),"
            f" (SELECT MAX({pk}) FROM {table})"
            f" FROM (SELECT {names}, ROW_NUMBER() OVER (ORDER BY {names}) AS n"
            f" FROM ({self.sql}) listed ({names})) numbered"
            f" WHERE (n - 1) %% %s = 0 ORDER BY n"
        )
        with connections[self.queryset.db].cursor() as cursor:
            cursor.execute(sql, (*self.params, *self.params, self.index.step))
            rows = cursor.fetchall()
        if not rows:
            return  # an empty list: nothing worth keeping
        width = len(self.order)
        self.entry = _Entry(
            version=self.version,
            stamp=rows[0][width + 1],
            total=rows[0][width],
            anchors=tuple(tuple(row[:width]) for row in rows),
            built_at=time.time(),
        )
        try:
            cache.set(self.key, self.entry, timeout=self.index.ttl)
        except Exception:  # noqa: BLE001 - a cache outage: nothing kept, nothing wrong
            pass

    def forget(self) -> None:
        try:
            cache.delete(self.key)
        except Exception:  # noqa: BLE001 - it expires anyway
            pass

    def page(self, page: "PageRequest") -> "PageQuery":
        """The page by key: from the anchor before the offset, fewer than `step` rows skipped;
        no rows at all if the table's highest key is not the entry's any more."""
        entry, step = self.entry, self.index.step
        position = min(page.offset // step, len(entry.anchors) - 1)
        skip = page.offset - position * step
        ops = connections[self.queryset.db].ops
        model = self.queryset.model
        names = ", ".join(f"k{i}" for i in range(len(self.order)))
        marks = ", ".join(["%s"] * len(self.order))
        sql = (
            f"SELECT k{len(self.order) - 1} FROM ({self.sql}) listed ({names})"
            f" WHERE ({names}) >= ({marks})"
            f" AND (SELECT MAX({ops.quote_name(model._meta.pk.column)})"
            f" FROM {ops.quote_name(model._meta.db_table)}) = %s"
            f" ORDER BY {names} LIMIT %s OFFSET %s"
        )
        params = (*self.params, *entry.anchors[position], entry.stamp, page.limit, skip)
        return PageQuery(self.queryset, keys=(sql, params))


@dataclass
class PageQuery:
    """A page for `paginate`'s `fetch`. `queryset`: its rows, with the list's ordering,
    prefetches and annotations. `keys`, when the page was found by key: SQL and params that
    select the page's primary keys in the list's order, for a fetch that reads rows by SQL."""

    base: QuerySet
    keys: tuple[str, tuple] | None = None

    @cached_property
    def queryset(self) -> QuerySet:
        if self.keys is None:
            return self.base
        return self.base.filter(pk__in=RawSQL(*self.keys))


def fetch_instances(page: PageQuery) -> list:
    """The default `fetch`: the page's model instances, with the queryset's prefetches."""
    return list(page.queryset)


# --- paginate -----------------------------------------------------------------------------------
def paginate(
    queryset: QuerySet,
    page: PageRequest,
    *,
    base_url: str,
    date_field: str = "last_updated",
    fetch: Callable[[PageQuery], list] = fetch_instances,
    index: ListIndex | None = None,
) -> Page:
    """Filter by the date window, find the page (by key with `index`, else by offset), know
    the total; `fetch` turns the page into its items. One query plus the prefetches; one more
    to (re)build the index, or to count when the page is empty."""
    if page.date_from is not None:
        queryset = queryset.filter(**{f"{date_field}__gte": page.date_from})
    if page.date_to is not None:
        queryset = queryset.filter(**{f"{date_field}__lt": page.date_to})
    lookup = index.lookup(queryset) if index is not None and not page.windowed else None
    if lookup is not None and lookup.entry is not None:
        items = fetch(lookup.page(page))
        if items or page.offset >= lookup.entry.total:
            total = lookup.entry.total
            return Page(items, total, page_headers(page, total, len(items), base_url))
        lookup.forget()  # the table changed since the index was built: by offset, this once
    elif lookup is not None:
        total = 0  # the list is empty
        return Page([], total, page_headers(page, total, 0, base_url))
    keys = queryset.values("pk")[page.offset : page.offset + page.limit]
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    counted = RawSQL(f"SELECT COUNT(*) FROM ({sql}) page_window", params)
    rows = queryset.filter(pk__in=keys).annotate(**{TOTAL_ANNOTATION: counted})
    items = fetch(PageQuery(rows))
    total = getattr(items[0], TOTAL_ANNOTATION) if items else queryset.count()
    return Page(items, total, page_headers(page, total, len(items), base_url))


def page_headers(page: PageRequest, total: int, count: int, base_url: str) -> dict:
    headers = {"X-Total-Count": str(total), "X-Limit": str(settings.OCPI_MAX_PAGE_SIZE)}
    next_offset = page.offset + count
    if count and next_offset < total:
        params = {"offset": next_offset, "limit": page.limit}
        if page.date_from is not None:
            params["date_from"] = format_datetime(page.date_from)
        if page.date_to is not None:
            params["date_to"] = format_datetime(page.date_to)
        headers["Link"] = f'<{base_url}?{urlencode(params)}>; rel="next"'
    return headers
