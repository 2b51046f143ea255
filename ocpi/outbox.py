"""The push outbox: network changes become OutboxMessage rows in the same transaction.

Signal handlers for stations.signals (not to be confused with OCPI's Receiver role). Each change
writes one row per interested partner: REGISTERED, on a version we render pushes for, with a
RECEIVER endpoint for the module (PROTOCOL.md §1.14). The rows are written inside the saving
transaction, so a rolled-back change pushes nothing; after commit, one delivery task per partner
is queued (ocpi.tasks.deliver_outbox_task; ocpi.delivery does the HTTP).

What is pushed (PROTOCOL.md §1.11, §4.1, §4.4):
- Locations: a PUT of the full object at the changed level (`{cc}/{pid}/{location_id}`,
  `.../{evse_uid}`, `.../{connector_id}`) when it is new or its id changed; otherwise a PATCH of
  that level with only the changed fields plus `last_updated`. A PATCH cannot remove data, so a
  change that clears an optional field is sent as a PUT of that level instead.
- An EVSE is published with its first connector (OCPI requires at least one): an EVSE without
  connectors is not pushed, the first connector is pushed as a PUT of its EVSE, and such EVSEs are
  left out of Location PUT bodies.
- Tariffs: always a full PUT at `{cc}/{pid}/{tariff_id}`; a tariff is pushed once one of its
  elements has a price component, and elements without components are left out (OCPI requires
  at least one of each).

Ordering and coalescing. All pushes about one Location (its EVSEs and connectors included) share
one `object_key` (`locations/NL/CPO/LOC1`), so the eMSP always gets them in the order they were
made (a connector never arrives before its EVSE). Before a row is appended, the newest unsent rows
of the same partner and key are looked at, newest first: a pending PUT at, above or below the level
of the new change is superseded (state SUPERSEDED) and replaced by one PUT of the higher level,
rendered from the current state. So a Location created with its EVSEs and connectors in one
transaction is one PUT, and a newer full state replaces an older unsent one. The walk stops at the
first PATCH (PATCHes are never dropped), at a FAILED row, and at a row a worker is delivering
right now (locked).

Bodies are rendered from the serializer functions the Sender endpoints use, with ocpi.jsonutil,
in each partner's negotiated version (`ocpi.formats.wire_format(partner.version)`): a change is
rendered once per version, whatever the number of partners. Partners on a version we have no
wire format for get no pushes (they still pull). Where a version has no PATCH rules we trust
(2.1.1), its partners get a PUT of the changed level instead of a PATCH; where it cannot say who
may see an unpublished Location (2.1.1), its partners get no pushes of such Locations.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import quote, unquote

from django.db import connection, transaction
from django.db.models import Prefetch
from django.dispatch import receiver

from billing import seams
from billing.models import Session
from billing.models_cdrs import CDR
from billing.sessions import session_mark_published
from billing.signals import cdr_created, cdr_delivery_requested, session_changed
from stations import signals
from stations.models import EVSE, Connector, Location, PriceComponent, Tariff, TariffElement

from . import jsonutil
from .formats import push_versions, wire_format
from .models import OutboxMessage, Partner
from .modules.cdrs.serializers import cdr_to_ocpi
from .modules.locations.serializers import connector_to_ocpi, evse_to_ocpi, location_to_ocpi
from .modules.sessions.serializers import charging_period_to_ocpi
from .versioning import V2_2_1

logger = logging.getLogger(__name__)

LOCATIONS = "locations"
TARIFFS = "tariffs"
RECEIVER = "RECEIVER"

# Versions we can render push bodies for (ocpi.formats).
_PUSH_VERSIONS = push_versions()

# Model field -> OCPI key, where they differ (the rest keep OCPI names).
_OCPI_KEYS = {"ocpi_id": "id", "latitude": "coordinates", "longitude": "coordinates"}
# A change of these moves the object to another URL: push it as new there.
_LOCATION_IDENTITY = {"country_code", "party_id", "ocpi_id"}
# How many unsent rows of one key the coalescing walk looks at.
_TAIL_WINDOW = 20

# A path segment may hold any CiString character; keep RFC 3986 pchars as they are.
_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"


def path_segment(value: str) -> str:
    return quote(str(value), safe=_SEGMENT_SAFE)


def _path(*ids: str) -> str:
    return "/".join(path_segment(i) for i in ids)


# --- what one change asks for -------------------------------------------------------------
@dataclass
class Push:
    """One change of one object, as it would go to any partner.

    `paths[i]` is the URL path (below the module's endpoint) of level i of the object tree, from
    the top object down to the changed level `level`; `render[i]()` is the full object at that
    level, from the current database state.
    """

    module: str
    object_key: str
    paths: list[str]
    render: list[Callable[[], dict]]
    level: int
    method: str  # PUT or PATCH
    # For a PATCH: the OCPI keys to send, taken from `patch_source` (the changed level's object).
    patch_keys: frozenset[str] = frozenset()
    patch_source: dict | None = None
    # False for a Location with publish=false (and its EVSEs and connectors): not pushed to
    # partners whose version cannot say who may see it.
    public: bool = True
    _bodies: dict = field(default_factory=dict)

    def body(self, level: int, method: str, version: str = V2_2_1) -> str:
        """The JSON body for `method` at `level` in `version`, rendered once per change (for
        any partner). `render[level]` takes the version as keyword (2.2.1 when not given);
        PATCH bodies are 2.2.1 (other versions get PUTs: `method_for`)."""
        key = (level, method, version)
        if key not in self._bodies:
            if method == "PATCH":
                # PATCH: the changed fields and always last_updated (PROTOCOL.md §1.10).
                data = {k: self.patch_source[k] for k in sorted(self.patch_keys)}
                data["last_updated"] = self.patch_source["last_updated"]
            elif version == V2_2_1:
                data = self.render[level]()
            else:
                data = self.render[level](version=version)
            self._bodies[key] = jsonutil.dumps(data).decode()
        return self._bodies[key]

    @staticmethod
    def method_for(method: str, version: str) -> str:
        """The method a partner on `version` gets: a PATCH becomes a PUT where the version's
        PATCHes are not used (ocpi.formats.WireFormat.patches)."""
        if method == "PATCH" and not wire_format(version).patches:
            return "PUT"
        return method

    def level_of(self, path: str) -> int | None:
        try:
            return self.paths.index(path)
        except ValueError:
            return None

    def is_below(self, path: str, level: int) -> bool:
        """Whether `path` is a descendant of our level `level` (e.g. an EVSE of the location)."""
        return path.startswith(self.paths[level] + "/")


# --- rendering ------------------------------------------------------------------------------
def _location_queryset():
    return Location.objects.prefetch_related(
        Prefetch("evses", queryset=EVSE.objects.prefetch_related("connectors"))
    )


def _render_location(pk: int, version: str = V2_2_1) -> dict:
    data = wire_format(version).location(_location_queryset().get(pk=pk))
    # EVSEs without connectors are not published yet (OCPI: connectors has minItems 1).
    evses = [e for e in data.get("evses", []) if e.get("connectors")]
    if evses:
        data["evses"] = evses
    else:
        data.pop("evses", None)
    return data


def _render_evse(pk: int, version: str = V2_2_1) -> dict:
    return wire_format(version).evse(EVSE.objects.prefetch_related("connectors").get(pk=pk))


def _render_connector(pk: int, version: str = V2_2_1) -> dict:
    return wire_format(version).connector(Connector.objects.get(pk=pk))


def _render_tariff(pk: int, version: str = V2_2_1) -> dict:
    tariff = Tariff.objects.prefetch_related(
        Prefetch("elements", queryset=TariffElement.objects.prefetch_related("price_components"))
    ).get(pk=pk)
    data = wire_format(version).tariff(tariff)
    # Elements without price components are not published yet (OCPI: minItems 1).
    data["elements"] = [e for e in data["elements"] if e.get("price_components")]
    return data


def _without_children(instance, related_name: str, empty_queryset):
    """A copy of `instance` whose children read as empty, to render one level without queries."""
    copy = instance.__class__.__new__(instance.__class__)
    copy.__dict__.update(instance.__dict__)
    copy._prefetched_objects_cache = {related_name: empty_queryset}
    return copy


def _patch_keys(changed_fields: Iterable[str], level_data: dict) -> frozenset[str] | None:
    """The OCPI keys a PATCH needs, or None when a PUT is needed (a value was cleared)."""
    keys = frozenset(_OCPI_KEYS.get(name, name) for name in changed_fields)
    if not keys or any(key not in level_data for key in keys):
        return None
    return keys


def _location_push(location: Location) -> Push:
    paths = [_path(location.country_code, location.party_id, location.ocpi_id)]
    return Push(
        module=LOCATIONS,
        object_key=f"{LOCATIONS}/{paths[0]}",
        paths=paths,
        render=[partial(_render_location, location.pk)],
        level=0,
        method="PUT",
        public=location.publish,
    )


def _evse_push(evse: EVSE) -> Push:
    push = _location_push(evse.location)
    push.paths.append(f"{push.paths[0]}/{path_segment(evse.uid)}")
    push.render.append(partial(_render_evse, evse.pk))
    push.level = 1
    return push


def _connector_push(connector: Connector) -> Push:
    push = _evse_push(connector.evse)
    push.paths.append(f"{push.paths[1]}/{path_segment(connector.ocpi_id)}")
    push.render.append(partial(_render_connector, connector.pk))
    push.level = 2
    return push


def _as_patch(push: Push, changed_fields: set[str], level_data: dict) -> Push:
    keys = _patch_keys(changed_fields, level_data)
    if keys is not None:
        push.method = "PATCH"
        push.patch_keys = keys
        push.patch_source = level_data
    return push


# --- signal handlers ------------------------------------------------------------------------
@receiver(signals.location_changed, dispatch_uid="ocpi.outbox.location_changed")
def location_changed(sender, location: Location, created: bool, changed_fields, **kwargs) -> None:
    push = _location_push(location)
    if not created and not (set(changed_fields) & _LOCATION_IDENTITY):
        level_data = location_to_ocpi(_without_children(location, "evses", EVSE.objects.none()))
        level_data.pop("evses", None)
        push = _as_patch(push, set(changed_fields), level_data)
    outbox_write(push)


@receiver(signals.evse_changed, dispatch_uid="ocpi.outbox.evse_changed")
def evse_changed(sender, evse: EVSE, created: bool, changed_fields, **kwargs) -> None:
    if created or not evse.connectors.exists():
        return  # published with its first connector
    push = _evse_push(evse)
    if "uid" not in changed_fields:
        level_data = evse_to_ocpi(_without_children(evse, "connectors", Connector.objects.none()))
        level_data.pop("connectors", None)
        push = _as_patch(push, set(changed_fields), level_data)
    outbox_write(push)


@receiver(signals.connector_changed, dispatch_uid="ocpi.outbox.connector_changed")
def connector_changed(
    sender, connector: Connector, created: bool, changed_fields, **kwargs
) -> None:
    if created and connector.evse.connectors.count() == 1:
        outbox_write(_evse_push(connector.evse))  # the EVSE's first connector publishes it
        return
    push = _connector_push(connector)
    if not created and "ocpi_id" not in changed_fields:
        push = _as_patch(push, set(changed_fields), connector_to_ocpi(connector))
    outbox_write(push)


@receiver(signals.tariff_changed, dispatch_uid="ocpi.outbox.tariff_changed")
def tariff_changed(sender, tariff: Tariff, created: bool, **kwargs) -> None:
    if not PriceComponent.objects.filter(element__tariff=tariff).exists():
        return  # OCPI requires an element with a price component; pushed once it has one
    path = _path(tariff.country_code, tariff.party_id, tariff.ocpi_id)
    outbox_write(
        Push(
            module=TARIFFS,
            object_key=f"{TARIFFS}/{path}",
            paths=[path],
            render=[partial(_render_tariff, tariff.pk)],
            level=0,
            method="PUT",
        )
    )


# --- writing rows -----------------------------------------------------------------------------
def push_partners(module: str) -> list[Partner]:
    """Partners that get pushes for `module` now: REGISTERED, with that RECEIVER endpoint."""
    return [
        partner
        for partner in Partner.objects.filter(status=Partner.Status.REGISTERED).order_by("pk")
        if partner.version in _PUSH_VERSIONS and partner.endpoint_url(module, RECEIVER)
    ]


def outbox_write(push: Push, *, partners: Iterable[Partner] | None = None) -> list[OutboxMessage]:
    """Write the rows for one change (inside the caller's transaction); queue delivery on commit."""
    written = []
    with transaction.atomic():
        for partner in push_partners(push.module) if partners is None else partners:
            if not push.public and not wire_format(partner.version).shows_unpublished_locations:
                continue
            written.append(_write_for_partner(partner, push))
            schedule_delivery(partner.pk)
    return written


def _unsent_tail(partner: Partner, push: Push) -> list[OutboxMessage]:
    """The newest unsent rows of this partner and key that may still be replaced, newest first.

    Stops at a FAILED row and at a row a worker holds (it is being delivered right now).
    """
    tail = []
    candidates = OutboxMessage.objects.filter(
        partner=partner,
        object_key=push.object_key,
        state__in=(OutboxMessage.State.PENDING, OutboxMessage.State.FAILED),
    ).order_by("-id")[:_TAIL_WINDOW]
    for row in candidates:
        if row.state != OutboxMessage.State.PENDING:
            break
        locked = (
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(pk=row.pk, state=OutboxMessage.State.PENDING)
            .exists()
        )
        if not locked:
            break
        tail.append(row)
    return tail


def _write_for_partner(partner: Partner, push: Push) -> OutboxMessage:
    level, method = push.level, push.method
    superseded = []
    for row in _unsent_tail(partner, push):
        if row.method != "PUT" or row.module != push.module:
            break  # PATCHes are never dropped
        row_level = push.level_of(row.path)
        if row_level is not None and row_level <= level:
            # An unsent full state at or above this level: resend that level in full, now.
            level, method = row_level, "PUT"
        elif push.is_below(row.path, level):
            # An unsent full state below this level: our PUT of this level contains it.
            method = "PUT"
        else:
            break
        superseded.append(row)
    method = push.method_for(method, partner.version)
    message = OutboxMessage(
        partner=partner,
        module=push.module,
        interface_role=RECEIVER,
        object_key=push.object_key,
        method=method,
        path=push.paths[level],
        body=push.body(level, method, partner.version),
    )
    if superseded:
        # A replaced row that was being retried hands on its backoff: a new full state does not
        # make an unavailable partner available.
        retried = max(superseded, key=lambda row: (row.attempts, row.next_attempt_at))
        message.attempts = retried.attempts
        message.next_attempt_at = max(message.next_attempt_at, retried.next_attempt_at)
        message.last_error = retried.last_error
    message.save()
    if superseded:
        OutboxMessage.objects.filter(pk__in=[r.pk for r in superseded]).update(
            state=OutboxMessage.State.SUPERSEDED, last_error=f"Superseded by #{message.pk}"
        )
    return message


# --- async results to a URL the partner gave (commands, charging profiles) -------------------
#: interface_role of a row whose `path` is an absolute URL given by the partner (a command's or
#: a charging profile request's response_url) instead of a path below one of its endpoints.
RESPONSE_URL = "RESPONSE"  # (the column holds 8 characters)


def outbox_write_response(
    *,
    partner: Partner,
    module: str,
    object_key: str,
    url: str,
    body: dict,
    correlation_id: str = "",
) -> OutboxMessage:
    """Write one POST of `body` (bare, not in the envelope) to the absolute `url` (inside the
    caller's transaction), delivered like any other push: ordered per `object_key`, retried with
    backoff, after commit (PROTOCOL.md §4.6, §4.7). `body` is given as 2.2.1 has it and sent
    as the partner's version has it (2.1.1: CommandResponse)."""
    body = wire_format(partner.version).response_body(module, body)
    message = OutboxMessage.objects.create(
        partner=partner,
        module=module,
        interface_role=RESPONSE_URL,
        object_key=object_key,
        method="POST",
        path=url,
        body=jsonutil.dumps(body).decode(),
        correlation_id=correlation_id or "",
    )
    schedule_delivery(partner.pk)
    return message


def schedule_delivery(partner_id: int) -> None:
    """Queue delivery for the partner once the current transaction commits (once per partner)."""
    from .tasks import deliver_outbox_task  # the tasks module imports the delivery service

    callback = partial(deliver_outbox_task.delay, partner_id)
    for entry in connection.run_on_commit:
        func = entry[1]
        if isinstance(func, partial) and func.func == callback.func and func.args == callback.args:
            return
    transaction.on_commit(callback, robust=True)


# --- resending the current state (used when a PATCH was rejected) ---------------------------
def render_current(module: str, path: str, version: str = V2_2_1) -> str | None:
    """The current full object at `path` of `module` as a JSON body in `version`, or None if
    unknown."""
    ids = [unquote(segment) for segment in path.split("/")]
    try:
        if module == TARIFFS and len(ids) == 3:
            tariff = Tariff.objects.get(
                country_code__lower=ids[0].lower(),
                party_id__lower=ids[1].lower(),
                ocpi_id__lower=ids[2].lower(),
            )
            data = _render_tariff(tariff.pk, version)
        elif module == LOCATIONS and 3 <= len(ids) <= 5:
            location = Location.objects.get(
                country_code__lower=ids[0].lower(),
                party_id__lower=ids[1].lower(),
                ocpi_id__lower=ids[2].lower(),
            )
            if len(ids) == 3:
                data = _render_location(location.pk, version)
            else:
                evse = location.evses.get(uid__lower=ids[3].lower())
                if len(ids) == 4:
                    data = _render_evse(evse.pk, version)
                else:
                    connector = evse.connectors.get(ocpi_id__lower=ids[4].lower())
                    data = _render_connector(connector.pk, version)
        elif module == SESSIONS and len(ids) == 3:
            return _resend_session(ids, version)
        else:
            return None
    except (Location.DoesNotExist, EVSE.DoesNotExist, Connector.DoesNotExist, Tariff.DoesNotExist):
        return None
    return jsonutil.dumps(data).decode()


# --- a partner that changed version (ocpi.services: a credentials PUT to another version) ----
def outbox_rerender(*, partner: Partner) -> int:
    """Render the partner's unsent rows again in its (new) version, inside the caller's
    transaction; returns how many rows changed.

    The rows were rendered in the version the partner had when they were written, and the URL
    is resolved at delivery from its new endpoints. So: a Location, Tariff or Session row becomes
    a PUT of the object's current state (a Session's later rows are folded into its first);
    a CDR is rendered again (SUPERSEDED when the new version cannot carry it, and the CDR is
    NOT_SENT); an async result is put in the new version's form. Rows whose object is gone
    become SUPERSEDED. Rows a worker is delivering right now are left alone."""
    wire = wire_format(partner.version)
    changed = 0
    unsent = OutboxMessage.objects.filter(
        partner=partner, state__in=(OutboxMessage.State.PENDING, OutboxMessage.State.FAILED)
    ).order_by("id")
    for pk in list(unsent.values_list("pk", flat=True)):
        row = (
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(pk=pk, state__in=(OutboxMessage.State.PENDING, OutboxMessage.State.FAILED))
            .first()
        )
        if row is None:
            continue  # being delivered, or folded into an earlier row of its session
        if row.interface_role == RESPONSE_URL:
            body = jsonutil.dumps(wire.response_body(row.module, jsonutil.loads(row.body)))
            row.body = body.decode()
        elif row.module == CDRS:
            cdr = cdr_of_row(row)
            if cdr is None or not wire.cdr_shown(cdr):
                if cdr is not None:
                    _set_cdr_delivery(cdr, CDR.Delivery.NOT_SENT)
                row.state = OutboxMessage.State.SUPERSEDED
                row.last_error = f"Not sent: {partner} moved to OCPI {partner.version}"
            else:
                row.body = render_cdr(cdr, partner.version)
        else:
            body = render_current(row.module, row.path, partner.version)
            if body is None:
                row.state = OutboxMessage.State.SUPERSEDED
                row.last_error = f"Not sent: the object is gone ({partner} changed version)"
            else:
                row.method, row.body = "PUT", body
        row.save(update_fields=["state", "method", "body", "last_error"])
        changed += 1
    if changed:
        schedule_delivery(partner.pk)
    return changed


# --- sessions (billing.signals.session_changed) ---------------------------------------------
# Session pushes (PROTOCOL.md §4.2, §10.7) go only to the eMSP of the session's token: a PUT of
# the full Session when it is created and as the final update (COMPLETED, all periods), a PATCH
# in between with the changed fields, the newly closed charging periods (the receiver appends
# them) and last_updated. All pushes of one session share the object key
# `sessions/{cc}/{pid}/{id}`, so they arrive in order; PATCHes are never dropped (a pending PUT
# of the session is replaced by a PUT of the current state, as for locations).
SESSIONS = "sessions"
# OCPI Session fields a PATCH may carry; changed_fields may name model fields instead.
_SESSION_FIELDS = frozenset(
    {
        "country_code", "party_id", "id", "start_date_time", "end_date_time", "kwh", "cdr_token",
        "auth_method", "authorization_reference", "location_id", "evse_uid", "connector_id",
        "meter_id", "currency", "total_cost", "status",
    }
)  # fmt: skip
_SESSION_KEYS = {
    "ocpi_id": "id",
    "location": "location_id",
    "evse": "evse_uid",
    "connector": "connector_id",
    "total_cost_excl_vat": "total_cost",
    "total_cost_incl_vat": "total_cost",
}


def _render_session(pk: int, version: str = V2_2_1) -> dict:
    session = (
        Session.objects.select_related("location", "evse", "connector")
        .prefetch_related("periods")
        .get(pk=pk)
    )
    return wire_format(version).session(session)


def _session_path(session: Session) -> str:
    return _path(session.country_code, session.party_id, session.ocpi_id)


def _session_partner(session: Session) -> Partner | None:
    """The eMSP of the session's token, if it takes session pushes now."""
    if session.partner_id is None:
        return None
    partner = Partner.objects.filter(
        pk=session.partner_id, status=Partner.Status.REGISTERED
    ).first()
    if partner is None or partner.version not in _PUSH_VERSIONS:
        return None
    return partner if partner.endpoint_url(SESSIONS, RECEIVER) else None


@receiver(session_changed, dispatch_uid="ocpi.outbox.session_changed")
def session_changed_push(
    sender, session: Session, created: bool, final: bool, changed_fields=(), new_periods=(), **kw
) -> None:
    partner = _session_partner(session)
    if partner is None:
        return
    path = _session_path(session)
    push = Push(
        module=SESSIONS,
        object_key=f"{SESSIONS}/{path}",
        paths=[path],
        render=[partial(_render_session, session.pk)],
        level=0,
        method="PUT",
    )
    if not created and not final:
        data = push.render[0]()
        keys = {_SESSION_KEYS.get(name, name) for name in changed_fields} & _SESSION_FIELDS
        if all(key in data for key in keys):  # else a value was cleared: only a PUT can say so
            source = {key: data[key] for key in keys}
            if new_periods:
                source["charging_periods"] = [charging_period_to_ocpi(p) for p in new_periods]
            push.method = "PATCH"
            push.patch_keys = frozenset(source)
            push.patch_source = {**source, "last_updated": data["last_updated"]}
    outbox_write(push, partners=[partner])


def _resend_session(ids: list[str], version: str = V2_2_1) -> str | None:
    """The current full Session, for a PUT replacing a rejected PATCH (PROTOCOL.md §1.11).

    That PUT holds everything the session's later unsent rows would add: they are superseded,
    and the session is marked published, so no charging period is ever appended twice."""
    session = Session.objects.filter(
        country_code__lower=ids[0].lower(),
        party_id__lower=ids[1].lower(),
        ocpi_id__lower=ids[2].lower(),
    ).first()
    if session is None:
        return None
    pending = list(
        OutboxMessage.objects.filter(
            partner_id=session.partner_id,
            object_key=f"{SESSIONS}/{_session_path(session)}",
            state=OutboxMessage.State.PENDING,
        )
        .order_by("id")
        .values_list("pk", flat=True)
    )
    # pending[0] is the row being converted (the oldest unsent row of the session).
    OutboxMessage.objects.filter(pk__in=pending[1:]).update(
        state=OutboxMessage.State.SUPERSEDED,
        last_error=f"Superseded by the full state sent with #{pending[0] if pending else '?'}",
    )
    session_mark_published(session=session)
    return jsonutil.dumps(_render_session(session.pk, version)).decode()


# --- CDRs (billing.signals.cdr_created) -------------------------------------------------------
# A new CDR (a session's, a credit or a correction) is one POST of the full CDR to the partner's
# cdrs RECEIVER endpoint, with no path below it (PROTOCOL.md §4.3), rendered in the partner's
# version. All CDRs of one CPO role share the object key `cdrs/{cc}/{pid}`, so they reach a
# partner in the order they were made (a credit never overtakes the CDR it credits). A POST is
# never coalesced nor repeated once it succeeded (ocpi.delivery stores the Location header and
# marks the CDR DELIVERED). A CDR is NOT_SENT when it has no partner, when its partner has no
# cdrs receiver, or when the partner's version cannot carry it (a credit CDR in 2.1.1); staff
# may ask for it to be sent later (cdr_delivery_requested), e.g. once the partner has a receiver.
CDRS = "cdrs"
# A suspended partner's CDRs wait in the outbox (delivery resumes when it is registered again).
_CDR_PARTNER_STATUSES = (Partner.Status.REGISTERED, Partner.Status.SUSPENDED)


def cdr_data(cdr: CDR, version: str = V2_2_1) -> dict:
    """The CDR as an OCPI object of `version`."""
    return (wire_format(version).cdr or cdr_to_ocpi)(cdr)


def render_cdr(cdr: CDR, version: str = V2_2_1) -> str:
    """The CDR's JSON body as partners on `version` get it."""
    return jsonutil.dumps(cdr_data(cdr, version)).decode()


seams.registry.cdr_renderer = render_cdr


def cdr_object_key(cdr: CDR) -> str:
    return f"{CDRS}/{_path(cdr.country_code, cdr.party_id)}"


def _cdr_partner(cdr: CDR) -> Partner | None:
    """The CDR's eMSP, if it takes this CDR's push: a cdrs RECEIVER, a version that has it."""
    if cdr.partner_id is None:
        return None
    partner = Partner.objects.filter(pk=cdr.partner_id, status__in=_CDR_PARTNER_STATUSES).first()
    if partner is None or partner.version not in _PUSH_VERSIONS:
        return None
    if not wire_format(partner.version).cdr_shown(cdr):
        return None
    return partner if partner.endpoint_url(CDRS, RECEIVER) else None


def _set_cdr_delivery(cdr: CDR, delivery: str) -> None:
    cdr.delivery = delivery
    CDR.objects.filter(pk=cdr.pk).update(delivery=delivery)


def cdr_outbox_write(cdr: CDR) -> OutboxMessage | None:
    """Write the CDR's POST (inside the caller's transaction) and queue delivery on commit; or
    mark the CDR NOT_SENT when it has nobody to go to (see above). Nothing for a CDR that was
    delivered: a CDR is sent once."""
    if cdr.delivery == CDR.Delivery.DELIVERED:
        return None
    partner = _cdr_partner(cdr)
    if partner is None:
        _set_cdr_delivery(cdr, CDR.Delivery.NOT_SENT)
        return None
    message = OutboxMessage.objects.create(
        partner=partner,
        module=CDRS,
        interface_role=RECEIVER,
        object_key=cdr_object_key(cdr),
        method="POST",
        path="",
        body=render_cdr(cdr, partner.version),
    )
    if cdr.delivery != CDR.Delivery.PENDING:
        _set_cdr_delivery(cdr, CDR.Delivery.PENDING)
    schedule_delivery(partner.pk)
    return message


@receiver(cdr_created, dispatch_uid="ocpi.outbox.cdr_created")
def cdr_created_push(sender, cdr: CDR, **kwargs) -> None:
    cdr_outbox_write(cdr)


def cdr_ids_of_row(row: OutboxMessage) -> tuple[str, str, str] | None:
    """(country_code, party_id, id) of the CDR a row POSTs: the role from its object key (2.1.1
    CDRs carry no role), the id from its body."""
    parts = row.object_key.split("/")
    if row.module != CDRS or row.method != "POST" or len(parts) != 3:
        return None
    try:
        cdr_id = jsonutil.loads(row.body)["id"]
    except (ValueError, TypeError, KeyError):
        return None
    return unquote(parts[1]), unquote(parts[2]), str(cdr_id)


def cdr_of_row(row: OutboxMessage) -> CDR | None:
    """The CDR an outbox row POSTs, or None."""
    ids = cdr_ids_of_row(row)
    if ids is None:
        return None
    return CDR.objects.filter(
        country_code__lower=ids[0].lower(),
        party_id__lower=ids[1].lower(),
        ocpi_id__lower=ids[2].lower(),
    ).first()


def cdr_rows(cdr: CDR, *, states: Iterable[str]) -> list[OutboxMessage]:
    """The outbox rows POSTing this CDR, in the given states, oldest first."""
    wanted = (cdr.country_code.lower(), cdr.party_id.lower(), cdr.ocpi_id.lower())
    rows = OutboxMessage.objects.filter(
        partner_id=cdr.partner_id,
        module=CDRS,
        method="POST",
        object_key=cdr_object_key(cdr),
        state__in=list(states),
    ).order_by("id")
    found = []
    for row in rows:
        ids = cdr_ids_of_row(row)
        if ids is not None and tuple(i.lower() for i in ids) == wanted:
            found.append(row)
    return found


@receiver(cdr_delivery_requested, dispatch_uid="ocpi.outbox.cdr_delivery_requested")
def cdr_redeliver(sender, cdr: CDR, **kwargs) -> str:
    """Staff asked for a CDR that did not reach its partner to be sent: its FAILED (or waiting)
    row is due again now; a CDR without a row gets one if it now has somewhere to go. Never for
    a DELIVERED CDR. Returns what was done, for staff."""
    from .delivery import outbox_retry  # ocpi.delivery imports this module

    if cdr.delivery == CDR.Delivery.DELIVERED:
        return f"{cdr.ocpi_id}: delivered already, not sent again."
    rows = cdr_rows(cdr, states=[OutboxMessage.State.FAILED, OutboxMessage.State.PENDING])
    if rows:
        outbox_retry(message_ids=[row.pk for row in rows])
        _set_cdr_delivery(cdr, CDR.Delivery.PENDING)
        return f"{cdr.ocpi_id}: delivery retried."
    if cdr_outbox_write(cdr) is None:
        return f"{cdr.ocpi_id}: no partner CDRs receiver to send it to; not sent."
    return f"{cdr.ocpi_id}: queued for delivery."
