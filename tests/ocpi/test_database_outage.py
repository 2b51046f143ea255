"""The database away for a moment: every OCPI request answers HTTP 503 with an OCPI 3000
envelope and a Retry-After header (never a 500, an HTML page or a traceback), changes nothing,
and the same request succeeds once the database is back, without restarting anything.

The outage is real:
- PostgreSQL: the app's connection goes through a TCP proxy on 127.0.0.1 (`DatabaseLink`) that
  the test cuts (open connections are closed under the client, new ones are closed as soon as
  they are accepted, as when the server or the network to it goes away) and restores. It is cut
  between two requests (the app's kept connection is found dead by Django's health check and no
  new one can be opened: the failure is in the ATOMIC_REQUESTS wrapper, or in DRF's
  authentication for the non-atomic locations list), while the caller's token is looked up (in
  DRF), inside the view after authentication (in the view, or at the commit of the request's
  transaction), or after a token was written but before its transaction committed.
- SQLite: the database file cannot be opened (the connection points at a path in a directory
  that does not exist). A file cannot disappear under an open connection the way a server can,
  so only the outage between requests exists there; the other moments are PostgreSQL-only.

Requests go through Django's WSGI handler in the test's own thread (`wsgi_call`), as a WSGI
server such as gunicorn calls it: request_started and request_finished fire, so Django's own
connection housekeeping (CONN_MAX_AGE, CONN_HEALTH_CHECKS) runs exactly as in production. The
test client would not do: it switches that housekeeping off around each request. The test and
the app share the thread's connection, so the tests run outside a transaction
(transactional_db) and look at the database only once requests succeed again.
"""

import io
import logging
import socket
import threading
import wsgiref.util
from dataclasses import dataclass

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection

from billing.models import Token
from ocpi import auth, jsonutil, tokens
from ocpi.exceptions import ServiceUnavailable
from ocpi.models import TrafficLog
from ocpi.modules.tokens import views as token_views
from ocpi.views import OCPIView
from tests.factories import LocationFactory

pytestmark = pytest.mark.django_db(transaction=True)

VERSIONS = "/ocpi/versions"
LOCATIONS = "/ocpi/cpo/2.2.1/locations"
TOKEN_PATH = "/ocpi/cpo/2.2.1/tokens/DE/EMS/0102030405"
ON_POSTGRESQL = connection.vendor == "postgresql"
POSTGRESQL_ONLY = pytest.mark.skipif(
    not ON_POSTGRESQL,
    reason="an SQLite file cannot vanish under an open connection; only the outage between "
    "requests exists there (test_*_between_requests runs on both databases)",
)


# --- the outage -----------------------------------------------------------------------------------
class DatabaseLink:
    """A TCP proxy on 127.0.0.1 in front of the PostgreSQL server; a test cuts and restores it."""

    def __init__(self, host: str, port: int):
        self.upstream = host, port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        """Close every connection through the link; refuse new ones until `restore`."""
        with self.lock:
            self.up = False
            doomed, self.open = self.open, set()
        _close(*doomed)

    def restore(self) -> None:
        with self.lock:
            self.up = True

    def stop(self) -> None:
        self.cut()
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # stopped
            with self.lock:
                if not self.up:
                    _close(client)
                    continue
                try:
                    server = _connect_upstream(*self.upstream)
                except OSError:
                    _close(client)
                    continue
                self.open |= {client, server}
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        with self.lock:
            self.open -= {source, target}
        _close(source, target)


def _connect_upstream(host: str, port: int) -> socket.socket:
    if host.startswith("/"):  # a Unix socket directory, as libpq takes it
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(f"{host}/.s.PGSQL.{port}")
        return sock
    return socket.create_connection((host, port), timeout=5)


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes the pump blocked in recv()
        except OSError:
            pass
        sock.close()


class Outage:
    """Cut and restore the database. While `armed`, hooks inside a request cut it
    (`cut_if_armed`); the requests after the outage must go through."""

    armed = False

    def cut(self) -> None:
        raise NotImplementedError

    def restore(self) -> None:
        raise NotImplementedError

    def cut_if_armed(self) -> None:
        if self.armed:
            self.cut()


class PostgreSQLOutage(Outage):
    """The app's connection goes through a DatabaseLink for the duration of the test."""

    def __init__(self):
        self.settings = connection.settings_dict
        host = self.settings["HOST"] or "127.0.0.1"
        self.link = DatabaseLink(host, int(self.settings["PORT"] or 5432))
        connection.close()
        connection.settings_dict = self.settings | {"HOST": "127.0.0.1", "PORT": self.link.port}

    def cut(self) -> None:
        self.link.cut()

    def restore(self) -> None:
        self.link.restore()

    def end(self) -> None:
        self.link.stop()
        connection.close()
        connection.settings_dict = self.settings


class SQLiteOutage(Outage):
    """Cut: the connection is closed and points at a file that cannot be opened."""

    def __init__(self, missing_dir):
        self.settings = connection.settings_dict
        self.unopenable = str(missing_dir / "gone" / "cpo.sqlite3")

    def cut(self) -> None:
        connection.close()
        connection.settings_dict = self.settings | {"NAME": self.unopenable}

    def restore(self) -> None:
        connection.settings_dict = self.settings

    def end(self) -> None:
        connection.close()
        connection.settings_dict = self.settings


@pytest.fixture
def outage(transactional_db, tmp_path):
    database = PostgreSQLOutage() if ON_POSTGRESQL else SQLiteOutage(tmp_path)
    yield database
    database.end()  # before transactional_db empties the tables


# --- requests through the WSGI handler ------------------------------------------------------------
@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    content: bytes

    def json(self):
        return jsonutil.loads(self.content)


def wsgi_call(method: str, path: str, *, token: str, body: dict | None = None) -> Reply:
    """One request through Django's WSGI application, as a WSGI server makes it."""
    data = jsonutil.dumps(body) if body is not None else b""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "wsgi.input": io.BytesIO(data),
        "CONTENT_LENGTH": str(len(data)),
        "HTTP_AUTHORIZATION": "Token " + tokens.encode_for_header(token, base64_encoded=True),
        "HTTP_X_REQUEST_ID": "outage-request",
    }
    if data:
        environ["CONTENT_TYPE"] = "application/json"
    wsgiref.util.setup_testing_defaults(environ)
    started = {}

    def start_response(status, headers, exc_info=None):
        started["status"] = int(status.split()[0])
        started["headers"] = {name.lower(): value for name, value in headers}

    result = WSGIHandler()(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        result.close()  # request_finished, as a WSGI server does
    return Reply(started["status"], started["headers"], content)


def assert_unavailable(reply: Reply) -> None:
    """HTTP 503, an OCPI 3000 envelope without data, Retry-After, the tracing headers."""
    assert reply.status == 503, reply.content[:500]
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert set(body) == {"status_code", "status_message", "timestamp"}
    assert body["status_code"] == 3000
    assert body["status_message"] == "The service is temporarily unavailable"
    assert reply.headers["retry-after"] == str(ServiceUnavailable.retry_after)
    assert reply.headers["x-request-id"] == "outage-request"
    assert b"Traceback" not in reply.content


def token_body() -> dict:
    return {
        "country_code": "DE",
        "party_id": "EMS",
        "uid": "0102030405",
        "type": "RFID",
        "contract_id": "DE8ACC12E46L89",
        "issuer": "TheNewMotion",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2026-01-01T10:00:00Z",
    }


# The requests under test: (method, path, body, status once the database is back).
REQUESTS = {
    "versions": ("GET", VERSIONS, None, 200),
    "locations": ("GET", LOCATIONS, None, 200),
    "token-put": ("PUT", TOKEN_PATH, token_body(), 201),
}


@pytest.fixture
def partner_token(make_partner):
    LocationFactory(ocpi_id="LOC1", evses=1)
    _, token = make_partner()
    return token


def check_outage_and_recovery(outage, token: str, name: str, caplog, *, hooked: bool) -> None:
    """The request fails twice while the database is away, changing nothing, and succeeds once
    the database is back."""
    method, path, body, ok_status = REQUESTS[name]
    logged = TrafficLog.objects.filter(url=path, http_status=ok_status)
    logged_before = logged.count()
    caplog.clear()

    # when: the database goes away (now, or by a hook during each request)
    if hooked:
        outage.armed = True
    else:
        outage.cut()
    try:
        with caplog.at_level(logging.WARNING):
            during = [wsgi_call(method, path, token=token, body=body) for _ in range(2)]
    finally:
        outage.armed = False
        outage.restore()

    # then
    for reply in during:
        assert_unavailable(reply)
    # logged as what it is, on one line per request, without a traceback
    outage_logs = [r for r in caplog.records if r.name == "ocpi.exceptions"]
    assert len(outage_logs) >= len(during)  # twice when DRF answered and the commit failed too
    assert all(r.levelno == logging.WARNING for r in outage_logs)
    assert all(r.getMessage().startswith("Database unavailable") for r in outage_logs)
    assert not [r for r in caplog.records if r.exc_info]

    # when: the database is back
    if body is not None:
        # then: the PUT changed nothing
        missing = wsgi_call("GET", path, token=token)
        assert (missing.status, missing.json()["status_code"]) == (404, 2004)
        assert not Token.objects.exists()
    after = wsgi_call(method, path, token=token, body=body)

    # then: the same request succeeds, and the traffic log writes again
    assert after.status == ok_status, after.content[:500]
    assert after.json()["status_code"] == 1000
    assert logged.count() == logged_before + 1
    if name == "locations":
        assert [location["id"] for location in after.json()["data"]] == ["LOC1"]
    if name == "token-put":
        assert list(Token.objects.values_list("uid", flat=True)) == ["0102030405"]


# --- the tests ------------------------------------------------------------------------------------
def test_the_database_away_between_requests(outage, partner_token, caplog, subtests):
    # given: a request that went well, so the app holds an open connection
    assert wsgi_call("GET", VERSIONS, token=partner_token).status == 200

    for name in REQUESTS:
        with subtests.test(name):
            check_outage_and_recovery(outage, partner_token, name, caplog, hooked=False)


@POSTGRESQL_ONLY
def test_the_database_away_while_authenticating(
    outage, partner_token, caplog, subtests, monkeypatch
):
    # given: the link goes down as the caller's token is looked up
    look_up = auth.partner_for_header

    def cut_then_look_up(value):
        outage.cut_if_armed()
        return look_up(value)

    monkeypatch.setattr(auth, "partner_for_header", cut_then_look_up)

    for name in REQUESTS:
        with subtests.test(name):
            check_outage_and_recovery(outage, partner_token, name, caplog, hooked=True)


@POSTGRESQL_ONLY
def test_the_database_away_inside_the_view(outage, partner_token, caplog, subtests, monkeypatch):
    # given: the link goes down once the caller passed authentication, permissions and throttles
    # (the versions view reads nothing more: its transaction's commit fails)
    initial = OCPIView.initial

    def initial_then_cut(self, request, *args, **kwargs):
        initial(self, request, *args, **kwargs)
        outage.cut_if_armed()

    monkeypatch.setattr(OCPIView, "initial", initial_then_cut)

    for name in REQUESTS:
        with subtests.test(name):
            check_outage_and_recovery(outage, partner_token, name, caplog, hooked=True)


@POSTGRESQL_ONLY
def test_a_token_written_before_the_outage_is_not_committed(
    outage, partner_token, caplog, monkeypatch
):
    # given: the link goes down after the token was written, before the request commits
    upsert = token_views.token_upsert

    def upsert_then_cut(**kwargs):
        written = upsert(**kwargs)
        outage.cut_if_armed()
        return written

    monkeypatch.setattr(token_views, "token_upsert", upsert_then_cut)

    check_outage_and_recovery(outage, partner_token, "token-put", caplog, hooked=True)
