"""Fuzzing the OCPI API (issue 6, "Fuzzing"): a bounded schemathesis run against the live server,
from the OpenAPI description it serves at /ocpi/openapi.json: zero server errors, and every
answer an OCPI envelope with the tracing headers (a custom check, `ocpi_envelope`).

Every operation of the description is called with data that fits its schema and with data that
does not (schemathesis' positive and negative modes), authenticated with a registered partner's
real token, against a network with a location, a running session of that partner and a token of
its driver, so that some calls reach real objects. The run is bounded: OCPI_FUZZ_EXAMPLES cases
per operation and mode (default 5), derandomized so CI sees the same cases every run
(OCPI_FUZZ_RANDOM=1 explores new ones): some 500 requests.

Not fuzzed: DELETE credentials (it would unregister the caller for the rest of the run; it is
tested in tests/ocpi/test_credentials.py). Calls our server would make to a URL found in a fuzzed
body (a credentials `url`, a command's `response_url`) are refused by a guard unless they go to
127.0.0.1; the partner's own endpoints point at a closed local port.
"""

import os
from collections import Counter, defaultdict
from urllib.parse import urlsplit

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure
from schemathesis.generation.modes import GenerationMode

from billing.models import Token
from ocpi import jsonutil, tokens
from ocpi.openapi_view import openapi_document
from ocpi.versions import ENDPOINTS
from stations.models import EVSE
from tests.ocpi.gateway_double import make_network, make_session, recording_gateway

EXAMPLES = int(os.environ.get("OCPI_FUZZ_EXAMPLES", "5"))
DERANDOMIZE = os.environ.get("OCPI_FUZZ_RANDOM") != "1"
NOT_FUZZED = {("DELETE", "/ocpi/2.2.1/credentials")}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
#: Path parameters naming the objects the `caller` fixture made.
KNOWN_IDS = {
    "country_code": "DE",
    "party_id": "EMS",
    "token_uid": "TOKA1",
    "session_id": "S1",
    "location_id": "LOC1",
    "evse_uid": "EVSE1",
    "connector_id": "1",
}


class NotAnEnvelope(Failure):
    """A response that is not an OCPI envelope with the tracing headers."""

    def __init__(self, *, operation: str, message: str):
        self.operation = operation
        self.title = "Not an OCPI envelope"
        self.message = message
        self.code = "not_an_ocpi_envelope"
        self.case_id = None
        self.severity = None

    @property
    def _unique_key(self) -> str:
        return self.message


def _problem(response) -> str | None:
    content_type = (response.headers.get("content-type") or [""])[0]
    if not content_type.startswith("application/json"):
        return f"Content-Type {content_type!r}, body {response.content[:120]!r}"
    try:
        body = response.json()
    except ValueError:
        return f"invalid JSON: {response.content[:120]!r}"
    if not isinstance(body, dict):
        return f"not an object: {body!r:.120}"
    status = body.get("status_code")
    if not isinstance(status, int) or not 1000 <= status <= 4999:
        return f"status_code {status!r}"
    if not isinstance(body.get("timestamp"), str):
        return f"timestamp {body.get('timestamp')!r}"
    sent = response.request.headers.get("X-Request-ID")
    echoed = (response.headers.get("x-request-id") or [None])[0]
    if not echoed or (sent and echoed != sent):
        return f"X-Request-ID {sent!r} answered with {echoed!r}"
    if not response.headers.get("x-correlation-id"):
        return "no X-Correlation-ID"
    return None


@schemathesis.check
def ocpi_envelope(ctx, response, case) -> bool | None:
    """Every answer is an OCPI envelope (PROTOCOL.md §1.3) echoing the tracing headers (§1.6)."""
    problem = _problem(response)
    if problem is not None:
        raise NotAnEnvelope(operation=case.operation.label, message=problem)
    return None


@pytest.fixture
def loopback_only(monkeypatch):
    """Outbound HTTP from this process (our server's calls, schemathesis' own) stays local."""
    original = requests.Session.request

    def guarded(self, method, url, *args, **kwargs):
        host = urlsplit(url if isinstance(url, str) else url.decode()).hostname
        if host not in LOOPBACK:
            raise requests.ConnectionError(f"test guard: no traffic to {host!r}")
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", guarded)


@pytest.fixture
def served(transactional_db, settings):
    """What the live server runs with: the recording charger gateway, and a base URL (in Link
    headers and the description's servers) nobody calls."""
    settings.OCPI_BASE_URL = "http://127.0.0.1:9"
    yield from recording_gateway(settings)


@pytest.fixture
def caller(served, make_partner):
    """A registered partner with a session at LOC1/EVSE1 and a driver's token; its headers."""
    partner, token = make_partner(
        "Fuzzing eMSP",
        country_code="DE",
        party_id="EMS",
        endpoints=[
            {"identifier": module, "role": "RECEIVER", "url": f"http://127.0.0.1:9/{module}"}
            for module in ("locations", "sessions", "cdrs", "tariffs", "commands")
        ],
    )
    make_network()
    make_session(partner, EVSE.objects.get(uid="EVSE1"), ocpi_id="S1")
    Token.objects.create(
        partner=partner, country_code="DE", party_id="EMS", uid="TOKA1", type="RFID",
        contract_id="DE-EMS-C1", issuer="eMSP", last_updated="2025-01-01T00:00:00Z",
    )  # fmt: skip
    return {"Authorization": "Token " + tokens.encode_for_header(token, base64_encoded=True)}


def test_the_served_description_is_the_assembled_one(live_server, served):
    # when
    response = requests.get(live_server.url + "/ocpi/openapi.json", timeout=10)

    # then
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == openapi_document("http://127.0.0.1:9", ENDPOINTS)
    assert response.json()["openapi"] == "3.1.0"


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from [value] if key == "$ref" else _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_the_description_covers_what_we_advertise_and_stands_alone():
    # when
    document = openapi_document("https://cpo.example.com", ENDPOINTS)

    # then: every 2.2.1 endpoint we advertise is described, under our URL
    paths = set(document["paths"])
    for endpoint in (e for e in ENDPOINTS if e.version == "2.2.1"):
        base = f"/ocpi/{endpoint.path}"
        assert any(p == base or p.startswith(base + "/") for p in paths), endpoint
    assert {"/ocpi/versions", "/ocpi/2.2.1"} <= paths
    # every reference points inside the document, at something that is there
    for ref in _refs(document):
        _, kind, name = ref.removeprefix("#/").split("/")
        assert ref.startswith("#/components/"), ref
        assert name in document["components"][kind], ref
    assert document["servers"] == [{"url": "https://cpo.example.com"}]


def test_the_description_takes_only_get(db):
    # when
    response = APIClient().post("/ocpi/openapi.json", data="{}", content_type="application/json")

    # then
    assert response.status_code == 405
    assert jsonutil.loads(response.content)["status_code"] == 2000


@pytest.fixture
def http():
    """One keep-alive connection to the live server (closed after: its server thread holds a
    database connection until then)."""
    with requests.Session() as session:
        yield session


def test_every_operation_survives_fuzzing(live_server, caller, loopback_only, http):
    # given: the description our server serves
    schema = schemathesis.openapi.from_url(live_server.url + "/ocpi/openapi.json")
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if (result.ok().method.upper(), result.ok().path) not in NOT_FUZZED
    ]
    statuses: dict[str, Counter] = defaultdict(Counter)
    failures: dict[str, str] = {}
    # when: each operation with fitting and with unfitting data, and with fitting data aimed at
    # the objects that exist (the partner's token, session, our location)
    for operation in operations:
        ours = {name: value for name, value in KNOWN_IDS.items() if name in _path_names(operation)}
        runs = [
            ("positive", GenerationMode.POSITIVE, {}),
            ("negative", GenerationMode.NEGATIVE, {}),
        ]
        if ours:
            runs.append(("on existing objects", GenerationMode.POSITIVE, ours))
        for title, mode, path_parameters in runs:
            seen = statuses[operation.label]
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
            error = _fuzz(strategy, live_server.url, caller, http, seen)
            if error is not None:
                failures[f"{operation.label} ({title})"] = error

    # then: no server error, every answer an envelope
    assert failures == {}
    # and the run reached the endpoints: every operation answered, authenticated, at least once
    assert {op.label for op in operations} == set(statuses)
    unauthenticated = [label for label, seen in statuses.items() if set(seen) == {401}]
    assert unauthenticated == []
    succeeded = {label for label, seen in statuses.items() if any(200 <= c < 300 for c in seen)}
    assert {"GET /ocpi/versions", "GET /ocpi/cpo/2.2.1/locations"} <= succeeded


def _path_names(operation) -> set[str]:
    return {parameter.name for parameter in operation.path_parameters}


def _fuzz(strategy, base_url: str, headers: dict, session, seen: Counter) -> str | None:
    """Run one strategy's cases; the failure as text, or None."""

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=DERANDOMIZE,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=strategy)
    def run(case):
        response = case.call(base_url=base_url, headers=headers, timeout=30, session=session)
        seen[response.status_code] += 1
        case.validate_response(response, checks=[not_a_server_error, ocpi_envelope])

    try:
        run()
    except Unsatisfiable:
        return None  # nothing about this operation can be made invalid (no parameters, no body)
    except Exception as exc:  # noqa: BLE001 - reported with every other operation's
        return f"{exc.__class__.__name__}: {exc}"[:4000]
    return None


# --- what the fuzzing found, kept as plain tests ------------------------------------------------
PROFILES = "/ocpi/cpo/2.2.1/chargingprofiles/S1"


@pytest.mark.parametrize(
    ("start", "first_period"),
    [
        ("2025-01-01T00:00:00Z", 0),
        ("0598-11-03T13:28:29Z", 0),
        ("9999-12-31T23:59:59Z", 0),
        ("9999-12-31T23:59:59Z", 86400),
    ],
    ids=["recent", "year 598", "year 9999", "year 9999, first period a day later"],
)
def test_a_charging_profile_with_a_start_time_is_answered(
    make_partner, settings, start, first_period
):
    # given: a running session of the caller (SET_CHARGING_PROFILE of start_date_time once
    # answered 500: a datetime taken for a string, then a date past year 9999)
    next(recording_gateway(settings))
    partner, token = make_partner(country_code="DE", party_id="EMS")
    make_network()
    make_session(partner, EVSE.objects.get(uid="EVSE1"), ocpi_id="S1")
    body = {
        "response_url": "https://emsp.example.com/ocpi/emsp/2.2.1/chargingprofiles/result/1",
        "charging_profile": {
            "start_date_time": start,
            "duration": 33554433,
            "charging_rate_unit": "W",
            "charging_profile_period": [{"start_period": first_period, "limit": 7400}],
        },
    }

    # when
    response = APIClient(
        HTTP_AUTHORIZATION="Token " + tokens.encode_for_header(token, base64_encoded=True)
    ).put(PROFILES, data=jsonutil.dumps(body), content_type="application/json")

    # then: an answer in the envelope, not a server error
    assert response.status_code < 500, response.content
    assert jsonutil.loads(response.content)["status_code"] < 3000
