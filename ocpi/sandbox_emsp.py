"""A sandbox eMSP: a small but real OCPI 2.2.1 eMSP server on 127.0.0.1.

Staff and partners' engineers run it with `manage.py sandbox_emsp` to try registration and
pushes against a running platform; the flow tests use it as their partner (not a mock).

It serves versions, version details, credentials (so the CPO can register with it) and the
receiver interfaces the CPO pushes to (locations, tariffs, sessions, cdrs), records every request,
and can misbehave on demand (`mode`): "ok", "http500", "ocpi3000", "timeout", "html",
"ocpi2001" (HTTP 200 with OCPI status 2001), or be stopped and restarted on the same port to look
down. It can also act as the client of the CPO's registration (`register_with`).

As the CDRs Receiver it stores each POSTed CDR, answers HTTP 201 with its URL in the Location
header and serves it with a GET there; a second POST of a CDR it has (same country_code,
party_id and id) gets HTTP 409 "already exists" (the OpenAPI receiver interface).

As the commands and charging profiles Sender it gives response_urls below its own
`commands`/`chargingprofiles` endpoints (`response_url(module, name)`); the CPO's async results
POSTed there are recorded (`received("POST", ...)`) and answered with an envelope without data.

As the tokens Sender it serves `tokens` (a list the test or staff configure, paginated with
date_from/date_to/offset/limit and Link headers) and answers real-time authorization
(`POST tokens/{uid}/authorize`) from `authorizations` or, failing that, from `tokens`; a token it
does not know gets HTTP 404 with OCPI 2004 (PROTOCOL.md §4.5).

`EMSPServer(version="2.1.1")` is a 2.1.1 eMSP (PROTOCOL.md §8): it offers 2.1.1 only, its details
list endpoints without roles (under /ocpi/emsp/2.1.1/), its credentials are the flat 2.1.1
object (token, url, business_details, party_id, country_code), and it reads tokens plain only
(a Base64-encoded token is an unknown token: 401). `upgrade_to("2.2.1")` makes it a 2.2.1 eMSP
that also still offers 2.1.1, and PUTs new credentials to the CPO's 2.2.1 credentials endpoint.
"""

import base64
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import requests

RECEIVER_MODULES = ("locations", "tariffs", "sessions", "cdrs")
VERSIONS = ("2.2.1", "2.1.1")
# Where our response_urls point: POST {endpoint(module)}/... records an async result.
RESULT_MODULES = ("commands", "chargingprofiles")
_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"  # RFC 3986 path characters kept as they are in URLs


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict
    body: object
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self):
        return self.body


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _plain_token(header: str | None) -> str | None:
    """The token of a 2.1.1 Authorization header: as it is (2.1.1 has no Base64)."""
    if not header or not header.startswith("Token "):
        return None
    return header[len("Token ") :].strip()


def _decode_token(header: str | None) -> str | None:
    if not header or not header.startswith("Token "):
        return None
    value = header[len("Token ") :].strip()
    try:
        decoded = base64.b64decode(value, validate=True).decode()
        return decoded
    except Exception:  # noqa: BLE001 - plain token
        return value


class EMSPServer:
    def __init__(
        self,
        *,
        country_code="DE",
        party_id="EMS",
        name="Test eMSP",
        port: int = 0,
        on_request=None,
        version: str = "2.2.1",
    ):
        if version not in VERSIONS:
            raise ValueError(f"version must be one of {', '.join(VERSIONS)}")
        self.version = version  # the OCPI version this eMSP speaks (its newest one)
        self.country_code = country_code
        self.party_id = party_id
        self.name = name
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        self.mode = "ok"
        self.timeout_seconds = 5.0
        # Tokens this eMSP accepts from the CPO: token A (for CPO-initiated registration) and,
        # after registration, the token it issued (C), or the CPO's token B it received.
        self.token_a = secrets.token_urlsafe(24)
        self.accepted_tokens: set[str] = {self.token_a}
        self.token_for_cpo: str | None = None  # what we present to the CPO
        self.cpo_versions_url: str | None = None
        self.cpo_endpoints: list[dict] = []
        self.stored: dict[str, dict] = {}  # receiver objects by path
        self.cdr_counter = 0
        # Tokens sender: Token objects served by GET tokens in this order, our page size cap
        # (X-Limit), and real-time answers: (UID upper-cased, type) -> AuthorizationInfo.
        self.tokens: list[dict] = []
        self.tokens_max_limit = 100
        self.authorizations: dict[tuple[str, str], dict] = {}
        # Versions listed at /ocpi/versions (details are served for 2.2.1 and 2.1.1 only).
        self.versions_offered: list[str] = [version]
        self.last_error: str | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = port
        self.on_request = on_request  # called with each Recorded request (sandbox printing)
        self.start()

    # -- lifecycle --------------------------------------------------------------------------
    def handler_class(self) -> type:
        """The request handler (a test server that misbehaves on purpose supplies its own)."""
        return _make_handler(self)

    def start(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler_class())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        # A short poll interval makes stop() quick (shutdown waits for one poll).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def versions_url(self) -> str:
        return f"{self.base_url}/ocpi/versions"

    def endpoint(self, module: str, version: str | None = None) -> str:
        return f"{self.base_url}/ocpi/emsp/{version or self.version}/{module}"

    def details(self, version: str) -> dict:
        """Our Version details object for `version` (2.1.1 endpoints carry no role)."""
        endpoints = [
            {
                "identifier": "credentials",
                "role": "RECEIVER",
                "url": f"{self.base_url}/ocpi/{version}/credentials",
            }
        ]
        endpoints += [
            {"identifier": m, "role": "RECEIVER", "url": self.endpoint(m, version)}
            for m in RECEIVER_MODULES
        ]
        endpoints.append(
            {"identifier": "tokens", "role": "SENDER", "url": self.endpoint("tokens", version)}
        )
        if version == "2.1.1":
            endpoints.append({"identifier": "commands", "url": self.endpoint("commands", version)})
            endpoints = [{k: v for k, v in e.items() if k != "role"} for e in endpoints]
        return {"version": version, "endpoints": endpoints}

    def token_from_header(self, header: str | None) -> str | None:
        """The credentials token of an Authorization header: plain only for a 2.1.1 eMSP."""
        return _plain_token(header) if self.version == "2.1.1" else _decode_token(header)

    # -- tokens sender ----------------------------------------------------------------------
    def authorize_as(self, uid: str, allowed: str, *, token_type: str = "RFID", **extra) -> None:
        """Answer real-time authorization of this token with `allowed` (an AllowedType) and the
        extra AuthorizationInfo fields given (token, location, authorization_reference, info)."""
        token = self._token(uid, token_type) or {"uid": uid, "type": token_type}
        info = {"allowed": allowed, "token": token, **extra}
        self.authorizations[(uid.upper(), token_type)] = info

    def authorization_for(self, uid: str, token_type: str) -> dict | None:
        """The AuthorizationInfo for a token, or None: unknown to us (2004)."""
        info = self.authorizations.get((uid.upper(), token_type))
        if info is not None:
            return info
        token = self._token(uid, token_type)
        if token is None:
            return None
        allowed = "ALLOWED" if token.get("valid") else "BLOCKED"
        if self.version == "2.1.1":  # a 2.1.1 AuthorizationInfo has no token
            return {"allowed": allowed}
        return {"allowed": allowed, "token": token}

    def _token(self, uid: str, token_type: str) -> dict | None:
        return next(
            (
                t
                for t in self.tokens
                if str(t.get("uid", "")).upper() == uid.upper()
                and t.get("type", "RFID") == token_type
            ),
            None,
        )

    def token_page(self, query: dict) -> tuple[list[dict], dict]:
        """One page of `tokens` for a GET query (PROTOCOL.md §1.8): (items, headers)."""

        def first(name: str) -> str | None:
            return (query.get(name) or [None])[0]

        def when(text: str) -> datetime:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

        selected = self.tokens
        if first("date_from"):
            selected = [t for t in selected if when(t["last_updated"]) >= when(first("date_from"))]
        if first("date_to"):
            selected = [t for t in selected if when(t["last_updated"]) < when(first("date_to"))]
        offset = int(first("offset") or 0)
        limit = min(int(first("limit") or self.tokens_max_limit), self.tokens_max_limit)
        items = selected[offset : offset + limit]
        headers = {"X-Total-Count": str(len(selected)), "X-Limit": str(self.tokens_max_limit)}
        if items and offset + len(items) < len(selected):
            params = {"offset": offset + len(items), "limit": limit}
            for name in ("date_from", "date_to"):
                if first(name):
                    params[name] = first(name)
            headers["Link"] = f'<{self.endpoint("tokens")}?{urlencode(params)}>; rel="next"'
        return items, headers

    def stored_cdr(self, cdr) -> str | None:
        """The key under which a CDR with the same country_code, party_id and id is stored."""

        def ids(data: dict) -> tuple:
            return tuple(str(data.get(k, "")).lower() for k in ("country_code", "party_id", "id"))

        if not isinstance(cdr, dict):
            return None
        for key, stored in self.stored.items():
            if key.startswith("cdrs/") and isinstance(stored, dict) and ids(stored) == ids(cdr):
                return key
        return None

    def response_url(self, module: str = "commands", name: str = "") -> str:
        """A fresh response_url for a command (module "commands", name e.g. START_SESSION) or a
        charging profile request ("chargingprofiles")."""
        return f"{self.endpoint(module)}/{name or 'result'}/{uuid.uuid4()}"

    # -- inspection -------------------------------------------------------------------------
    def received(self, method: str | None = None, path_prefix: str = "") -> list[Recorded]:
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and r.path.startswith(path_prefix)
            ]

    def wait_for(self, predicate, timeout: float = 20.0, interval: float = 0.1):
        """Wait until predicate(self) is truthy; return its value or raise AssertionError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate(self)
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(
            f"condition not met within {timeout}s; got {len(self.requests)} requests"
        )

    # -- acting as client of the CPO (partner-initiated registration) -----------------------
    def cpo_headers(self, token: str) -> dict:
        if self.version == "2.1.1":  # plain, and no tracing headers (PROTOCOL.md §8)
            return {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        encoded = base64.b64encode(token.encode()).decode()
        return {
            "Authorization": f"Token {encoded}",
            "X-Request-ID": str(uuid.uuid4()),
            "X-Correlation-ID": str(uuid.uuid4()),
            "Content-Type": "application/json",
        }

    def credentials_body(self, token: str, version: str | None = None) -> dict:
        """Our Credentials object in `version` (default: the version we speak)."""
        if (version or self.version) == "2.1.1":
            return {
                "token": token,
                "url": self.versions_url,
                "business_details": {"name": self.name},
                "party_id": self.party_id,
                "country_code": self.country_code,
            }
        return {
            "token": token,
            "url": self.versions_url,
            "roles": [
                {
                    "role": "EMSP",
                    "business_details": {"name": self.name},
                    "party_id": self.party_id,
                    "country_code": self.country_code,
                }
            ],
        }

    def register_with(self, cpo_versions_url: str, token_a: str) -> requests.Response:
        """Run the eMSP side of a partner-initiated registration; returns the POST response."""
        versions = requests.get(cpo_versions_url, headers=self.cpo_headers(token_a), timeout=30)
        versions.raise_for_status()
        details_url = next(
            v["url"] for v in versions.json()["data"] if v["version"] == self.version
        )
        details = requests.get(details_url, headers=self.cpo_headers(token_a), timeout=30)
        details.raise_for_status()
        self.cpo_endpoints = details.json()["data"]["endpoints"]
        credentials_url = next(
            e["url"] for e in self.cpo_endpoints if e["identifier"] == "credentials"
        )
        token_b = secrets.token_urlsafe(24)
        self.accepted_tokens.add(token_b)
        response = requests.post(
            credentials_url,
            headers=self.cpo_headers(token_a),
            data=json.dumps(self.credentials_body(token_b)),
            timeout=60,
        )
        if response.status_code == 200 and response.json().get("status_code") == 1000:
            self.token_for_cpo = response.json()["data"]["token"]
            self.cpo_versions_url = response.json()["data"]["url"]
        return response

    def update_credentials_with(self) -> requests.Response:
        """PUT new credentials (a fresh token B) to the CPO, authorized with the current token."""
        credentials_url = self.cpo_endpoint("credentials")
        new_token_b = secrets.token_urlsafe(24)
        self.accepted_tokens.add(new_token_b)
        response = requests.put(
            credentials_url,
            headers=self.cpo_headers(self.token_for_cpo),
            data=json.dumps(self.credentials_body(new_token_b)),
            timeout=60,
        )
        if response.status_code == 200 and response.json().get("status_code") == 1000:
            self.token_for_cpo = response.json()["data"]["token"]
        return response

    def upgrade_to(self, version: str = "2.2.1") -> requests.Response:
        """Move to `version` (still offering the others): fetch the CPO's details of that
        version with the current token and PUT new credentials to its credentials endpoint
        (PROTOCOL.md §3.6)."""
        self.version = version
        if version not in self.versions_offered:
            self.versions_offered.append(version)
        headers = self.cpo_headers(self.token_for_cpo)
        versions = requests.get(self.cpo_versions_url, headers=headers, timeout=30)
        versions.raise_for_status()
        details_url = next(v["url"] for v in versions.json()["data"] if v["version"] == version)
        details = requests.get(details_url, headers=headers, timeout=30)
        details.raise_for_status()
        self.cpo_endpoints = details.json()["data"]["endpoints"]
        return self.update_credentials_with()

    def unregister_from(self) -> requests.Response:
        """DELETE our credentials at the CPO, authorized with the current token."""
        return requests.delete(
            self.cpo_endpoint("credentials"),
            headers=self.cpo_headers(self.token_for_cpo),
            timeout=30,
        )

    def cpo_endpoint(self, module: str) -> str:
        return next(e["url"] for e in self.cpo_endpoints if e["identifier"] == module)


def _store_location_children(stored: dict, key: str, body) -> None:
    """A Location or EVSE PUT also makes its EVSEs/connectors known at their own paths, as a real
    receiver would, so a later PATCH at the EVSE or connector level finds them."""
    if not isinstance(body, dict):
        return
    for child_list, id_field in (("evses", "uid"), ("connectors", "id")):
        for child in body.get(child_list) or []:
            if isinstance(child, dict) and isinstance(child.get(id_field), str):
                child_key = f"{key}/{quote(child[id_field], safe=_SEGMENT_SAFE)}"
                stored[child_key] = child
                _store_location_children(stored, child_key, child)


def _patched(stored: dict, module: str, body: dict) -> dict:
    """The object after a PATCH, as a real receiver applies it: fields replace the stored ones,
    except a Session's `charging_periods`, which are appended (PROTOCOL.md §4.2). A session
    becomes a new dict, so the recorded PUT it came from keeps what was sent."""
    changes = dict(body)
    if module != "sessions":
        stored.update(changes)  # in place: a Location's nested EVSEs share their dicts
        return stored
    appended = changes.pop("charging_periods", None)
    patched = {**stored, **changes}
    if isinstance(appended, list):
        patched["charging_periods"] = list(stored.get("charging_periods") or []) + appended
    return patched


def _make_handler(server: EMSPServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output quiet
            pass

        def _read_body(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not raw:
                return None
            try:
                return json.loads(raw)
            except ValueError:
                return raw.decode(errors="replace")

        def _send(self, http_status: int, payload, headers: dict | None = None):
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(http_status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Request-ID", self.headers.get("X-Request-ID", ""))
            self.send_header("X-Correlation-ID", self.headers.get("X-Correlation-ID", ""))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _envelope(self, data=None, status_code=1000, http_status=200, headers=None):
            payload = {"status_code": status_code, "timestamp": _now()}
            if data is not None:
                payload["data"] = data
            self._send(http_status, payload, headers)

        def _handle(self):
            body = self._read_body()
            record = Recorded(self.command, self.path, dict(self.headers.items()), body)
            with server.lock:
                server.requests.append(record)
            if server.on_request is not None:
                server.on_request(record)
            token = server.token_from_header(self.headers.get("Authorization"))
            if token not in server.accepted_tokens:
                self._envelope(None, 2000, 401)
                return
            path = self.path.split("?")[0].rstrip("/")
            if path == "/ocpi/versions":
                self._envelope(
                    [
                        {"version": v, "url": f"{server.base_url}/ocpi/{v}"}
                        for v in server.versions_offered
                    ]
                )
                return
            details = re.match(r"^/ocpi/(2\.2\.1|2\.1\.1)$", path)
            if details:
                self._envelope(server.details(details.group(1)))
                return
            credentials = re.match(r"^/ocpi/(2\.2\.1|2\.1\.1)/credentials$", path)
            if credentials:
                self._credentials(token, body, credentials.group(1))
                return
            if server.mode == "http500":
                self._send(500, b"<html>Internal Server Error</html>")
                return
            if server.mode == "ocpi3000":
                self._envelope(None, 3000, 200)
                return
            if server.mode == "timeout":
                time.sleep(server.timeout_seconds)
                self._envelope(None, 3000, 200)
                return
            if server.mode == "html":
                self._send(200, b"<html>not ocpi</html>")
                return
            if server.mode == "ocpi2001":
                self._envelope(None, 2001, 200)  # HTTP 200, but the OCPI status rejects it
                return
            match = re.match(r"^/ocpi/emsp/(?:2\.2\.1|2\.1\.1)/(\w+)(/.*)?$", path)
            if not match:
                self._envelope(None, 2000, 404)
                return
            module, rest = match.group(1), match.group(2) or ""
            if module in RESULT_MODULES and self.command == "POST":
                # A response_url of ours: an async command / charging profile result (recorded
                # like every request); answered with an envelope without data (§4.6).
                self._envelope(None)
                return
            if module == "tokens" and self.command in ("GET", "POST"):
                self._tokens(rest)
                return
            if module == "cdrs" and self.command == "POST":
                if server.stored_cdr(body) is not None:
                    # A CDR with this id is stored already (a repeated POST): 409 (§4.3).
                    self._envelope(None, 2001, 409)
                    return
                server.cdr_counter += 1
                location = f"{server.endpoint('cdrs')}/{server.cdr_counter}"
                server.stored[f"cdrs/{server.cdr_counter}"] = body
                self._envelope(None, 1000, 201, {"Location": location})
                return
            key = module + rest
            if self.command == "GET":
                if key in server.stored:
                    self._envelope(server.stored[key])
                else:
                    self._envelope(None, 2000, 404)
                return
            if self.command == "PUT":
                created = key not in server.stored
                server.stored[key] = body
                if module == "locations":
                    _store_location_children(server.stored, key, body)
                self._envelope(None, 1000, 201 if created else 200)
                return
            if self.command == "PATCH":
                if key not in server.stored:
                    self._envelope(None, 2000, 404)
                    return
                if isinstance(server.stored[key], dict) and isinstance(body, dict):
                    server.stored[key] = _patched(server.stored[key], module, body)
                self._envelope(None, 1000, 200)
                return
            if self.command == "DELETE":
                server.stored.pop(key, None)
                self._envelope(None, 1000, 200)
                return
            self._envelope(None, 2000, 405)

        def _tokens(self, rest: str):
            """The eMSP as tokens Sender: the list, and real-time authorization."""
            query = parse_qs(urlsplit(self.path).query)
            if self.command == "GET" and not rest:
                try:
                    items, headers = server.token_page(query)
                except (KeyError, ValueError):
                    self._envelope(None, 2001, 400)
                    return
                self._envelope(items, headers=headers)
                return
            match = re.match(r"^/([^/]+)/authorize$", rest)
            if self.command == "POST" and match:
                token_type = (query.get("type") or ["RFID"])[0]
                info = server.authorization_for(unquote(match.group(1)), token_type)
                if info is None:
                    # 2.1.1 has no 2004 (unknown token): a plain 404
                    self._envelope(None, 2000 if server.version == "2.1.1" else 2004, 404)
                else:
                    self._envelope(info)
                return
            self._envelope(None, 2000, 404)

        def _credentials(self, token, body, version: str = "2.2.1"):
            """The eMSP as credentials receiver: the CPO registers with us (PROTOCOL.md §3.4),
            in the `version` of the credentials endpoint it called."""
            if self.command == "GET":
                self._envelope(server.credentials_body(server.token_for_cpo or ""))
                return
            if self.command == "DELETE":
                server.accepted_tokens.discard(token)
                self._envelope(None)
                return
            if self.command not in ("POST", "PUT") or not isinstance(body, dict):
                self._envelope(None, 2001, 400)
                return
            # Call the CPO back with the token it gave us, while its POST is in flight.
            cpo_token = body["token"]
            try:
                versions = requests.get(
                    body["url"], headers=server.cpo_headers(cpo_token), timeout=10
                )
                details_url = next(
                    v["url"] for v in versions.json()["data"] if v["version"] == version
                )
                details = requests.get(
                    details_url, headers=server.cpo_headers(cpo_token), timeout=10
                )
                server.cpo_endpoints = details.json()["data"]["endpoints"]
            except Exception as exc:  # noqa: BLE001
                self._envelope(None, 3001, 200)
                server.last_error = repr(exc)
                return
            server.token_for_cpo = cpo_token
            server.cpo_versions_url = body["url"]
            new_token = secrets.token_urlsafe(24)
            server.accepted_tokens.discard(token)  # token A (or the old token) stops working
            server.accepted_tokens.add(new_token)
            self._envelope(server.credentials_body(new_token, version))

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return Handler
