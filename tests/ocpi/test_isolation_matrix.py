"""Partner isolation (issue 6, "Isolation and security"): one partner can neither read nor change
another's tokens, sessions, commands, reservations, charging profiles or credentials, whatever
endpoint, method or id spelling it tries; and only a registered partner's current token opens the
API (token A: versions, version details and credentials only).

Two registered partners: A (DE*EMS) owns a token, a charging session with a charging profile, a
reservation and the command that made it; B (BE*BMS) attacks. Every refused attempt is checked
for its answer (an OCPI envelope) and for what it left behind: A's rows, every token, session,
reservation and partner row compared before and after, the charger never asked, nothing queued
for any partner, and B's refused commands kept only as B's REJECTED requests.

The 401 matrix walks every OCPI route that ocpi/urls.py declares (2.2.1 and 2.1.1 alike: a
sample URL is built from each route's pattern) with every method.
"""

import re
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.urls import get_resolver, resolve
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import ChargingPeriod, Reservation, Session, Token
from billing.models_sessions import PendingStart
from ocpi import jsonutil, tokens
from ocpi.credentials import CredentialsView
from ocpi.models import CommandRequest, OutboxMessage, Partner, PartnerRole
from ocpi.services import partner_create
from ocpi.versions import VersionDetailsView, VersionsView
from stations.models import EVSE
from tests.emsp_server import EMSPServer
from tests.ocpi.gateway_double import client_for, make_network, make_session, recording_gateway

CPO = "/ocpi/cpo/2.2.1"
RESPONSE_URL = "https://emsp-b.example.com/ocpi/emsp/2.2.1/commands/X/1"
PROFILE_RESULT_URL = "https://emsp-b.example.com/ocpi/emsp/2.2.1/chargingprofiles/result/1"
A_TOKEN = {
    "country_code": "DE",
    "party_id": "EMS",
    "uid": "TOKA1",
    "type": "RFID",
    "contract_id": "DE-EMS-C00001",
    "issuer": "eMSP A",
    "valid": True,
    "whitelist": "ALLOWED",
    "last_updated": "2025-03-01T10:00:00Z",
}
CHARGING_PROFILE = {
    "charging_rate_unit": "A",
    "charging_profile_period": [{"start_period": 0, "limit": 16}],
}


# --- fixtures -------------------------------------------------------------------------------------
@pytest.fixture
def charger(settings):
    yield from recording_gateway(settings)


@pytest.fixture(autouse=True)
def _timeout(settings):
    settings.OCPI_COMMAND_TIMEOUT = 30


@pytest.fixture
def partner_a(make_partner):
    return make_partner("eMSP A", country_code="DE", party_id="EMS")


@pytest.fixture
def partner_b(make_partner):
    return make_partner("eMSP B", country_code="BE", party_id="BMS")


@pytest.fixture
def a_owns(partner_a, charger):
    """A's things: token TOKA1, session S1 (charging, with a profile), reservation RES1 and the
    RESERVE_NOW that made it."""
    partner = partner_a[0]
    make_network()
    token = Token.objects.create(
        partner=partner, **{**A_TOKEN, "last_updated": timezone.now() - timedelta(days=1)}
    )
    session = make_session(
        partner, EVSE.objects.get(uid="EVSE1"), ocpi_id="S1", charging_profile=CHARGING_PROFILE
    )
    reservation = Reservation.objects.create(
        partner=partner,
        reservation_id="RES1",
        location=session.location,
        evse=EVSE.objects.get(uid="EVSE2"),
        cdr_token={k: A_TOKEN[k] for k in ("country_code", "party_id", "uid", "type")},
        expiry_date=timezone.now() + timedelta(minutes=30),
        status=Reservation.Status.ACTIVE,
    )
    CommandRequest.objects.create(
        partner=partner,
        kind="RESERVE_NOW",
        request_ref="ref-a-reserve",
        body={"reservation_id": "RES1"},
        response_url="https://emsp-a.example.com/ocpi/emsp/2.2.1/commands/RESERVE_NOW/1",
        response_result="ACCEPTED",
        result="ACCEPTED",
        state="ANSWERED",
        reservation=reservation,
    )
    return {"token": token, "session": session, "reservation": reservation}


def rows(model, **filters) -> list[dict]:
    return list(model.objects.filter(**filters).order_by("pk").values())


def world(partner_a: Partner) -> dict:
    """Everything an attack could have touched."""
    return {
        "partners": rows(Partner),
        "roles": rows(PartnerRole),
        "tokens": rows(Token),
        "sessions": rows(Session),
        "periods": rows(ChargingPeriod),
        "reservations": rows(Reservation),
        "pending starts": rows(PendingStart),
        "A's commands": rows(CommandRequest, partner=partner_a),
        "outbox": rows(OutboxMessage),
    }


def envelope_of(response) -> dict:
    assert response["Content-Type"] == "application/json", response.content[:200]
    body = jsonutil.loads(response.content)
    assert isinstance(body["status_code"], int), body
    assert isinstance(body["timestamp"], str), body
    return body


def send(client: APIClient, method: str, path: str, body=None):
    data = None if body is None else jsonutil.dumps(body)
    return getattr(client, method.lower())(path, data=data, content_type="application/json")


# --- B against A's things, one attempt at a time -------------------------------------------------
@dataclass(frozen=True)
class Attempt:
    method: str
    path: str
    body: dict | None = None
    http: int = 404
    ocpi: int = 2000
    result: str | None = None  # data.result of a CommandResponse / ChargingProfileResponse
    extra: dict = field(default_factory=dict)


def _token_put(**changes) -> dict:
    return {**A_TOKEN, "valid": False, "last_updated": "2030-01-01T00:00:00Z", **changes}


def _command(kind: str, **body) -> Attempt:
    return Attempt("POST", f"{CPO}/commands/{kind}", {"response_url": RESPONSE_URL, **body},
                   http=200, ocpi=1000, result="REJECTED")  # fmt: skip


def _a_token_in_command() -> dict:
    return {**A_TOKEN, "type": "APP_USER", "whitelist": "NEVER"}


ATTEMPTS = {
    # tokens: A's token by its key, in any spelling, read or written
    "GET A's token": Attempt("GET", f"{CPO}/tokens/DE/EMS/TOKA1"),
    "GET A's token, other case": Attempt("GET", f"{CPO}/tokens/de/ems/toka1?type=RFID"),
    "PUT over A's token": Attempt("PUT", f"{CPO}/tokens/DE/EMS/TOKA1", _token_put()),
    "PUT a new token under A's party": Attempt(
        "PUT", f"{CPO}/tokens/DE/EMS/NEW1", _token_put(uid="NEW1")
    ),
    "PATCH A's token invalid": Attempt(
        "PATCH",
        f"{CPO}/tokens/DE/EMS/TOKA1",
        {"valid": False, "last_updated": "2030-01-01T00:00:00Z"},
    ),  # fmt: skip
    "PATCH A's token, other case": Attempt(
        "PATCH",
        f"{CPO}/tokens/de/EMS/tokA1",
        {"whitelist": "ALWAYS", "last_updated": "2030-01-01T00:00:00Z"},
    ),  # fmt: skip
    # sessions: A's session's charging preferences
    "PUT charging preferences of A's session": Attempt(
        "PUT",
        f"{CPO}/sessions/S1/charging_preferences",
        {"profile_type": "FAST", "departure_time": "2030-01-01T10:00:00Z", "energy_need": 20},
        ocpi=2001,
    ),  # fmt: skip
    # commands on A's session and reservation, or with A's driver's token
    "STOP_SESSION of A's session": _command("STOP_SESSION", session_id="S1"),
    "STOP_SESSION of A's session, other case": _command("STOP_SESSION", session_id="s1"),
    "CANCEL_RESERVATION of A's reservation": _command("CANCEL_RESERVATION", reservation_id="RES1"),
    "CANCEL_RESERVATION of A's reservation, other case": _command(
        "CANCEL_RESERVATION", reservation_id="res1"
    ),
    "START_SESSION with A's token": _command(
        "START_SESSION", token=_a_token_in_command(), location_id="LOC1", evse_uid="EVSE1"
    ),
    "RESERVE_NOW with A's token": _command(
        "RESERVE_NOW",
        token=_a_token_in_command(),
        expiry_date="2030-01-01T10:00:00Z",
        reservation_id="RES1",
        location_id="LOC1",
        evse_uid="EVSE1",
    ),
    # charging profiles of A's session
    "PUT a charging profile on A's session": Attempt(
        "PUT",
        f"{CPO}/chargingprofiles/S1",
        {"charging_profile": CHARGING_PROFILE, "response_url": PROFILE_RESULT_URL},
        http=200,
        ocpi=1000,
        result="REJECTED",
    ),  # fmt: skip
    "GET the active profile of A's session": Attempt(
        "GET",
        f"{CPO}/chargingprofiles/s1?"
        + urlencode({"duration": 900, "response_url": PROFILE_RESULT_URL}),
        http=200,
        ocpi=1000,
        result="REJECTED",
    ),  # fmt: skip
    "DELETE the profile of A's session": Attempt(
        "DELETE",
        f"{CPO}/chargingprofiles/S1?" + urlencode({"response_url": PROFILE_RESULT_URL}),
        http=200,
        ocpi=1000,
        result="REJECTED",
    ),  # fmt: skip
}


@pytest.mark.parametrize("attempt", ATTEMPTS.values(), ids=ATTEMPTS.keys())
def test_a_partner_cannot_touch_another_partners_things(
    attempt, a_owns, partner_a, partner_b, charger
):
    # given
    before = world(partner_a[0])
    client_b = client_for(partner_b[1])

    # when
    response = send(client_b, attempt.method, attempt.path, attempt.body)

    # then: refused, in the envelope
    assert response.status_code == attempt.http, response.content
    body = envelope_of(response)
    assert body["status_code"] == attempt.ocpi, body
    if attempt.result is not None:
        assert body["data"]["result"] == attempt.result, body
    else:
        assert "data" not in body or body["data"] is None
    # nothing of A's (or anyone's) changed, the charger was never asked, nothing was queued
    assert world(partner_a[0]) == before
    assert charger.calls == []
    # a refused command is kept for staff, as B's own and REJECTED
    assert set(
        CommandRequest.objects.filter(partner=partner_b[0]).values_list("state", flat=True)
    ) <= {"REJECTED"}


def test_a_partners_session_list_holds_none_of_anothers_sessions(a_owns, partner_a, partner_b):
    # given
    since = {"date_from": "2000-01-01T00:00:00Z"}

    # when
    theirs = client_for(partner_b[1]).get(f"{CPO}/sessions", since)
    own = client_for(partner_a[1]).get(f"{CPO}/sessions", since)

    # then
    assert (theirs.status_code, envelope_of(theirs)["data"]) == (200, [])
    assert theirs["X-Total-Count"] == "0"
    assert [s["id"] for s in envelope_of(own)["data"]] == ["S1"]


def test_a_partners_credentials_read_shows_only_its_own(a_owns, partner_a, partner_b):
    # when
    response = client_for(partner_b[1]).get("/ocpi/2.2.1/credentials")

    # then: B's own token, our roles; nothing of A
    body = envelope_of(response)
    assert body["data"]["token"] == partner_b[1]
    assert partner_a[1] not in response.content.decode()
    assert "EMS" not in {role["party_id"] for role in body["data"]["roles"]}


def test_a_partner_unregistering_leaves_the_other_registered(a_owns, partner_a, partner_b):
    # given
    before = world(partner_a[0])

    # when
    response = client_for(partner_b[1]).delete("/ocpi/2.2.1/credentials")

    # then: B is out, A and all it owns untouched, A's token still opens the API
    assert envelope_of(response)["status_code"] == 1000
    assert Partner.objects.get(pk=partner_b[0].pk).status == Partner.Status.UNREGISTERED
    after = world(partner_a[0])
    assert [p for p in after.pop("partners") if p["id"] == partner_a[0].pk] == [
        p for p in before.pop("partners") if p["id"] == partner_a[0].pk
    ]
    assert after == before
    assert client_for(partner_a[1]).get("/ocpi/versions").status_code == 200
    assert client_for(partner_b[1]).get("/ocpi/versions").status_code == 401


def test_claiming_another_partners_party_in_credentials_is_refused_and_opens_nothing(
    a_owns, partner_a, partner_b, charger
):
    """A partner listing a party that another partner holds is refused (2001, nothing changes;
    tests/ocpi/test_party_claims.py has the cases), and A's things stay closed to it."""
    # given: B updates its credentials listing A's party (DE*EMS) as its own
    before = world(partner_a[0])
    emsp_b = EMSPServer(country_code="DE", party_id="EMS", name="eMSP B")
    try:
        emsp_b.accepted_tokens.add("token-for-b")
        client_b = client_for(partner_b[1])
        update = send(
            client_b, "PUT", "/ocpi/2.2.1/credentials", emsp_b.credentials_body("token-for-b")
        )
    finally:
        emsp_b.stop()
    assert update.status_code == 400
    assert envelope_of(update)["status_code"] == 2001
    assert world(partner_a[0]) == before
    assert set(partner_b[0].roles.values_list("country_code", "party_id")) == {("BE", "BMS")}

    # when: B, on its unchanged token, goes after A's token, session and reservation again
    answers = {
        "token": send(client_b, "GET", f"{CPO}/tokens/DE/EMS/TOKA1"),
        "token write": send(client_b, "PATCH", f"{CPO}/tokens/DE/EMS/TOKA1",
                            {"valid": False, "last_updated": "2030-01-01T00:00:00Z"}),
        "stop": send(client_b, "POST", f"{CPO}/commands/STOP_SESSION",
                     {"response_url": RESPONSE_URL, "session_id": "S1"}),
        "cancel": send(client_b, "POST", f"{CPO}/commands/CANCEL_RESERVATION",
                       {"response_url": RESPONSE_URL, "reservation_id": "RES1"}),
    }  # fmt: skip

    # then
    assert answers["token"].status_code == 404
    assert answers["token write"].status_code == 404
    assert envelope_of(answers["stop"])["data"]["result"] == "REJECTED"
    assert envelope_of(answers["cancel"])["data"]["result"] == "REJECTED"
    assert world(partner_a[0]) == before
    assert charger.calls == []


# --- who may call at all: every route, every method -------------------------------------------
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SAMPLES = {
    "country_code": "DE",
    "party_id": "EMS",
    "uid": "TOKA1",
    "location_id": "LOC1",
    "evse_uid": "EVSE1",
    "connector_id": "1",
    "session_id": "S1",
    "command": "STOP_SESSION",
}
ANY_SEGMENT = re.escape("[^/]+")


def sample_path(regex: str) -> str:
    """A URL that the route `regex` matches, with SAMPLES for its ids."""
    path = regex.removeprefix("^").removesuffix("$").removesuffix("/?")
    path = re.sub(rf"\(\?:/\(\?P<(\w+)>{ANY_SEGMENT}\)\)\?", lambda m: "/" + SAMPLES[m[1]], path)
    path = re.sub(rf"\(\?P<(\w+)>{ANY_SEGMENT}\)", lambda m: SAMPLES[m[1]], path)
    path = re.sub(r"\(\?P<\w+>([^()]*)\)", lambda m: m[1], path)  # a literal: the version
    return "/ocpi/" + path.replace("\\.", ".")


def ocpi_routes() -> list[tuple[str, str, type]]:
    """(route name, sample URL, view class) for every OCPI endpoint route."""
    ocpi = next(p for p in get_resolver().url_patterns if str(p.pattern) == "ocpi/")
    routes = []
    for pattern in ocpi.url_patterns:
        if pattern.name in (None, "ocpi-openapi"):  # the catch-all 404, the public description
            continue
        path = sample_path(pattern.pattern.regex.pattern)
        match = resolve(path)
        assert match.url_name == pattern.name, f"{path} is not a sample of {pattern.name}"
        routes.append((pattern.name, path, match.func.view_class))
    return routes


def test_the_matrix_walks_every_module_we_advertise():
    # given
    from ocpi.versions import ENDPOINTS

    # when
    paths = {path for _, path, _ in ocpi_routes()}

    # then: each advertised endpoint's base URL (or one below it) is in the matrix
    for endpoint in ENDPOINTS:
        base = f"/ocpi/{endpoint.path}"
        assert any(p == base or p.startswith(base + "/") for p in paths), endpoint


def _suspended(make_partner):
    partner, token = make_partner("Suspended eMSP", country_code="NL", party_id="SUS")
    Partner.objects.filter(pk=partner.pk).update(status=Partner.Status.SUSPENDED)
    return "Token " + tokens.encode_for_header(token, base64_encoded=True)


def _unregistered(make_partner):
    partner, token = make_partner("Former eMSP", country_code="NL", party_id="OLD")
    Partner.objects.filter(pk=partner.pk).update(status=Partner.Status.UNREGISTERED)
    return "Token " + token  # the raw form (2.1.1 style) is refused alike


CALLERS = {
    "no Authorization header": lambda make_partner: None,
    "an unknown token": lambda make_partner: "Token " + tokens.new_token(),
    "not the Token scheme": lambda make_partner: "Bearer " + tokens.new_token(),
    "a suspended partner's token": _suspended,
    "an unregistered partner's token": _unregistered,
}


@pytest.mark.parametrize("caller", CALLERS.values(), ids=CALLERS.keys())
def test_only_registered_partners_get_in_anywhere(caller, make_partner, a_owns, partner_a):
    # given
    header = caller(make_partner)
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    before = world(partner_a[0])

    # when / then: every route, every method: HTTP 401 in the envelope
    wrong = []
    for name, path, _view in ocpi_routes():
        for method in METHODS:
            response = send(client, method, path, None if method in ("GET", "DELETE") else {})
            body = envelope_of(response)
            if (response.status_code, body["status_code"]) != (401, 2000):
                wrong.append((name, method, response.status_code, body))
            elif response["WWW-Authenticate"] != "Token":
                wrong.append((name, method, "no WWW-Authenticate"))
    assert wrong == []
    assert world(partner_a[0]) == before


def test_token_a_opens_only_versions_details_and_credentials(a_owns, partner_a):
    # given: a partner staff created, not registered yet, with its token A
    pending, token_a = partner_create(name="New eMSP")
    client = client_for(token_a)
    registration = (VersionsView, VersionDetailsView, CredentialsView)
    before = world(partner_a[0])

    # when
    answers = {
        (name, method): send(client, method, path, None if method in ("GET", "DELETE") else {})
        for name, path, _view in ocpi_routes()
        for method in METHODS
    }

    # then: 401 everywhere but on the registration endpoints (2.2.1 and 2.1.1 alike)
    views = {name: view for name, _path, view in ocpi_routes()}
    opened = {name for (name, _method), response in answers.items() if response.status_code != 401}
    assert opened == {name for name, view in views.items() if issubclass(view, registration)}
    assert all(envelope_of(response) for response in answers.values())
    assert views.keys() - opened  # the functional modules are there, and closed
    # versions answer, and token A registered nobody (an empty POST is a 2001)
    assert answers[("ocpi-versions", "GET")].status_code == 200
    assert answers[("ocpi-credentials", "POST")].status_code == 400
    assert Partner.objects.get(pk=pending.pk).status == Partner.Status.PENDING
    assert world(partner_a[0])["A's commands"] == before["A's commands"]


def test_a_token_is_looked_up_whole(a_owns, partner_a):
    # given: A's token with a character more, less, or another case
    token = partner_a[1]
    variants = [token + "x", token[:-1], token.swapcase(), token[:20], token + " " + token]

    # when
    statuses = [
        APIClient(HTTP_AUTHORIZATION="Token " + variant)
        .get(f"{CPO}/tokens/DE/EMS/TOKA1")
        .status_code
        for variant in variants
    ]

    # then
    assert statuses == [401] * len(variants)
    assert (
        client_for(token).get(f"{CPO}/tokens/DE/EMS/TOKA1").status_code == 200
    )  # the real one works
