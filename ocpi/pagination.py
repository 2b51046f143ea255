"""Pagination of OCPI list endpoints (PROTOCOL.md §1.8): offset, limit, date_from, date_to.

Stable order (creation, then primary key), a server cap on limit, and the headers X-Total-Count,
X-Limit and Link rel="next" that repeats the filters.
"""

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import QuerySet

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


def paginate(
    queryset: QuerySet, page: PageRequest, *, base_url: str, date_field: str = "last_updated"
) -> Page:
    """Filter by the date window, count, slice: two queries plus the queryset's prefetches."""
    if page.date_from is not None:
        queryset = queryset.filter(**{f"{date_field}__gte": page.date_from})
    if page.date_to is not None:
        queryset = queryset.filter(**{f"{date_field}__lt": page.date_to})
    total = queryset.count()
    items = list(queryset[page.offset : page.offset + page.limit]) if page.limit else []
    headers = {"X-Total-Count": str(total), "X-Limit": str(settings.OCPI_MAX_PAGE_SIZE)}
    next_offset = page.offset + len(items)
    if items and next_offset < total:
        params = {"offset": next_offset, "limit": page.limit}
        if page.date_from is not None:
            params["date_from"] = format_datetime(page.date_from)
        if page.date_to is not None:
            params["date_to"] = format_datetime(page.date_to)
        headers["Link"] = f'<{base_url}?{urlencode(params)}>; rel="next"'
    return Page(items=items, total=total, headers=headers)
