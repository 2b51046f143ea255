"""What of the network a roaming partner may see (Locations, EVSEs, Connectors, Tariffs).

Selectors return querysets ready to render: ordered stably (creation, then primary key, as OCPI
pagination needs: PROTOCOL.md §1.8) and with the children prefetched, so a page of any size costs
a fixed number of queries. Ids are CiStrings, matched case-insensitively (the functional unique
indexes on Lower(...) back these lookups).

Visibility (PROTOCOL.md §4.1): only objects owned by one of our CPO roles; of those, Locations
with publish=true, and publish=false ones that name the token holders allowed to see them in
publish_allowed_to (the eMSP needs them to show them to exactly those drivers). A publish=false
Location without publish_allowed_to is private (e.g. a home charger) and never served. EVSEs set
to REMOVED are served: that is how a partner learns they are gone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import connections
from django.db.models import F, Func, JSONField, Prefetch, Q, QuerySet, TextField
from django.db.models.functions import Cast

from .identity import cpo_roles
from .models import EVSE, Connector, Location, PriceComponent, Tariff, TariffElement

if TYPE_CHECKING:
    from ocpi.models import Partner


def _owned_by_us() -> Q:
    """Objects whose country_code/party_id is one of the CPO roles this platform hosts."""
    owned = Q(pk__in=[])
    for role in cpo_roles():
        owned |= Q(
            country_code__lower=role["country_code"].lower(),
            party_id__lower=role["party_id"].lower(),
        )
    return owned


#: Location fields that decide whether a Location is in the list at all (with creation and
#: deletion); changes elsewhere in a Location move it within the list at most.
VISIBILITY_FIELDS = frozenset({"country_code", "party_id", "publish", "publish_allowed_to"})


def _visible_locations(*, partner: Partner) -> QuerySet[Location]:
    # `partner` is the seam for partner-specific visibility; today every registered partner
    # sees the same network. The shape of this filter (lower(country_code), lower(party_id),
    # then publish OR publish_allowed_to) is what the partial index location_shared_page_idx
    # serves: keep them in step.
    shared = Q(publish=True) | ~Q(publish_allowed_to=[])
    return Location.objects.filter(_owned_by_us(), shared)


def _connectors() -> Prefetch:
    return Prefetch("connectors", queryset=Connector.objects.order_by("created", "pk"))


def _evses() -> Prefetch:
    return Prefetch(
        "evses",
        queryset=EVSE.objects.order_by("created", "pk").prefetch_related(_connectors()),
    )


def location_list(*, partner: Partner) -> QuerySet[Location]:
    """The Locations `partner` may see, oldest first, EVSEs and Connectors prefetched."""
    return _visible_locations(partner=partner).order_by("created", "pk").prefetch_related(_evses())


# --- plain rows for the Locations list ------------------------------------------------------------
# A partner's full sync reads every Location, EVSE and Connector a page at a time. Model
# instances cost more Python than the rest of the request together (a page of 100 Locations is
# about 1,100 objects), so the list reads tuples of the fields its objects show instead, in two
# queries per page, with JSON fields as their JSON text (the edge passes them through
# undecoded). On PostgreSQL the database also does what Python would do 1,100 times per page:
# an empty JSON value ([], {}, null) comes as None, and `last_updated` as its OCPI text
# ("2025-03-01T12:00:00.123Z", or "...:00Z" without milliseconds; ocpi.datetimes).

#: The fields of the row tuples: the key(s), the fields OCPI shows (`ocpi_fields`), last_updated.
LOCATION_COLUMNS = ("id", *Location.ocpi_fields, "last_updated")
EVSE_COLUMNS = ("id", "location_id", *EVSE.ocpi_fields, "last_updated")
CONNECTOR_COLUMNS = (*Connector.ocpi_fields, "last_updated")

_JSON_OR_NULL = "NULLIF(NULLIF(NULLIF((%(expressions)s)::text, '[]'), '{}'), 'null')"
_OCPI_DATETIME = (
    "to_char(%(expressions)s AT TIME ZONE 'UTC', CASE"
    " WHEN date_trunc('milliseconds', %(expressions)s) = date_trunc('second', %(expressions)s)"
    """ THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"' END)"""
)


def _row_columns(model, columns: tuple[str, ...], db: str, prefix: str = "") -> list:
    postgresql = connections[db].vendor == "postgresql"
    out = []
    for name in columns:
        field = model._meta.get_field(name)
        if isinstance(field, JSONField):
            if postgresql:
                out.append(Func(F(prefix + name), template=_JSON_OR_NULL, output_field=TextField()))
            else:
                out.append(Cast(prefix + name, output_field=TextField()))
        elif name == "last_updated" and postgresql:
            out.append(Func(F(prefix + name), template=_OCPI_DATETIME, output_field=TextField()))
        else:
            out.append(prefix + name)
    return out


def location_rows(queryset: QuerySet[Location]) -> list[tuple]:
    """`queryset`'s Locations in its order as tuples of LOCATION_COLUMNS, followed by the values
    of its selected annotations (in the order they were added)."""
    columns = _row_columns(Location, LOCATION_COLUMNS, queryset.db)
    return list(
        queryset.prefetch_related(None).values_list(*columns, *queryset.query.annotation_select)
    )


# SQL compiled once per database (compiling costs more than running it): the Location row
# columns, and the children query per page size. On PostgreSQL their values need none of
# Django's converters, so these run as they are.
_compiled: dict[tuple, str] = {}


def location_rows_by_keys(keys_sql: str, params: tuple, *, using: str = "default") -> list[tuple]:
    """PostgreSQL: the Locations whose keys `keys_sql` selects, as tuples of LOCATION_COLUMNS,
    in the list's order (creation, then key), like `location_rows`."""
    key = ("locations", using)
    select = _compiled.get(key)
    if select is None:
        columns = _row_columns(Location, LOCATION_COLUMNS, using)
        select, no_params = (
            Location.objects.using(using).order_by().values_list(*columns).query.sql_with_params()
        )
        assert not no_params, "the Location row columns take no parameters"
        _compiled[key] = select
    ops = connections[using].ops
    table = ops.quote_name(Location._meta.db_table)
    sql = (
        f"{select} WHERE {table}.{ops.quote_name('id')} IN ({keys_sql})"
        f" ORDER BY {table}.{ops.quote_name('created')}, {table}.{ops.quote_name('id')}"
    )
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _children(location_ids: list[int], using: str) -> QuerySet[Connector]:
    columns = _row_columns(EVSE, EVSE_COLUMNS, using, "evse__")
    columns += _row_columns(Connector, CONNECTOR_COLUMNS, using)
    return (
        Connector.objects.using(using)
        .filter(evse__location_id__in=location_ids)
        .order_by("evse__location_id", "evse__created", "evse_id", "created", "pk")
        .values_list(*columns)
    )


def location_children_rows(*, location_ids: list[int], using: str = "default") -> list[tuple]:
    """The EVSEs of these Locations that have connectors, with their connectors: one tuple per
    connector, EVSE_COLUMNS then CONNECTOR_COLUMNS. Grouped by Location, EVSEs and then
    connectors in creation order, as `location_list` prefetches them (an EVSE without
    connectors is not part of an OCPI Location yet, so the join leaves it out)."""
    if not location_ids:
        return []
    connection = connections[using]
    if connection.vendor != "postgresql":
        return list(_children(location_ids, using))  # with Django's value converters
    key = ("children", using, len(location_ids))
    sql = _compiled.get(key)
    if sql is None:
        sql, params = _children(location_ids, using).query.sql_with_params()
        if list(params) != list(location_ids):  # a query shape this shortcut does not know
            return list(_children(location_ids, using))
        _compiled[key] = sql
    with connection.cursor() as cursor:
        cursor.execute(sql, location_ids)
        return cursor.fetchall()


def location_get(*, partner: Partner, location_id: str) -> Location | None:
    """One Location `partner` may see, by OCPI id (case-insensitive), or None."""
    return (
        _visible_locations(partner=partner)
        .filter(ocpi_id__lower=location_id.lower())
        .order_by("created", "pk")
        .prefetch_related(_evses())
        .first()
    )


def evse_get(*, partner: Partner, location_id: str, evse_uid: str) -> EVSE | None:
    """One EVSE of a Location `partner` may see, by uid (case-insensitive), or None."""
    return (
        EVSE.objects.filter(
            location__in=_visible_locations(partner=partner).filter(
                ocpi_id__lower=location_id.lower()
            ),
            uid__lower=evse_uid.lower(),
        )
        .order_by("created", "pk")
        .prefetch_related(_connectors())
        .first()
    )


def connector_get(
    *, partner: Partner, location_id: str, evse_uid: str, connector_id: str
) -> Connector | None:
    """One Connector of an EVSE of a Location `partner` may see (ids case-insensitive), or None."""
    return (
        Connector.objects.filter(
            evse__location__in=_visible_locations(partner=partner).filter(
                ocpi_id__lower=location_id.lower()
            ),
            evse__uid__lower=evse_uid.lower(),
            ocpi_id__lower=connector_id.lower(),
        )
        .order_by("created", "pk")
        .first()
    )


def tariff_list(*, partner: Partner) -> QuerySet[Tariff]:
    """The Tariffs `partner` may see, oldest first, elements and price components prefetched
    in their OCPI order (element order matters: PROTOCOL.md §10.14)."""
    elements = TariffElement.objects.order_by("position", "pk").prefetch_related(
        Prefetch("price_components", queryset=PriceComponent.objects.order_by("position", "pk"))
    )
    return (
        Tariff.objects.filter(_owned_by_us())
        .order_by("created", "pk")
        .prefetch_related(Prefetch("elements", queryset=elements))
    )
