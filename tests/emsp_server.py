"""The real eMSP OCPI server the flow tests talk to: it lives in ocpi/sandbox_emsp.py, where
staff and partners also run it (`manage.py sandbox_emsp`).

`BadRepliesEMSPServer` is that eMSP with more ways to misbehave (test-only): in one of the modes
of `BAD_REPLIES` it answers requests to its receiver endpoints whose path contains
`bad_reply_paths` (all of them by default) with that reply instead of handling them: invalid
JSON, HTML pages, JSON that is not an OCPI envelope. Every other request, and every request in
the modes of EMSPServer, is handled as EMSPServer handles it.
"""

from ocpi.sandbox_emsp import EMSPServer, Recorded, _make_handler

__all__ = [
    "BAD_REPLIES",
    "BadRepliesEMSPServer",
    "EMSPServer",
    "Recorded",
    "partner_of",
    "receiver_endpoints",
]

PUSHED_MODULES = ("locations", "tariffs", "cdrs")


def receiver_endpoints(server: EMSPServer, modules=PUSHED_MODULES) -> list[dict]:
    """The partner endpoints of an eMSP whose RECEIVER interfaces for `modules` are `server`."""
    return [{"identifier": m, "role": "RECEIVER", "url": server.endpoint(m)} for m in modules]


def partner_of(make_partner, server: EMSPServer, *, request_timeout: float, **fields):
    """A registered partner "eMSP" whose receivers are `server`, which accepts its token."""
    partner, _ = make_partner(
        "eMSP", endpoints=receiver_endpoints(server), request_timeout=request_timeout, **fields
    )
    server.accepted_tokens.add(partner.outbound_token)
    return partner


_HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>"
    b"<body><h1>Welcome to nginx!</h1></body></html>"
)

#: Mode -> (HTTP status, Content-Type, body) of the reply.
BAD_REPLIES: dict[str, tuple[int, str, bytes]] = {
    "invalid_json": (200, "application/json", b'{"status_code": 1000, "timestamp": "2026-01-0'),
    "html_page": (200, "text/html; charset=utf-8", _HTML_PAGE),
    "html_page_404": (404, "text/html; charset=utf-8", _HTML_PAGE),
    "html_page_502": (502, "text/html; charset=utf-8", _HTML_PAGE),
    "invalid_json_503": (503, "application/json", b'{"status_code": 30'),
    "empty_object": (200, "application/json", b"{}"),
    "no_status_code": (200, "application/json", b'{"data": null, "status_message": "OK"}'),
    "status_code_string": (200, "application/json", b'{"status_code": "1000"}'),
    "status_code_float": (200, "application/json", b'{"status_code": 1000.0}'),
    "status_code_bool": (200, "application/json", b'{"status_code": true}'),
    "status_code_null": (200, "application/json", b'{"status_code": null}'),
    "status_code_negative": (200, "application/json", b'{"status_code": -1}'),
    "status_code_huge": (200, "application/json", b'{"status_code": 100000000000000000000}'),
    "status_code_five_digits": (200, "application/json", b'{"status_code": 10000}'),
    "json_list": (200, "application/json", b'[{"status_code": 1000}]'),
    "json_string": (200, "application/json", b'"OK"'),
    "json_null": (200, "application/json", b"null"),
    "deeply_nested": (200, "application/json", b"[" * 100_000 + b"]" * 100_000),
    # An envelope, rejecting, whose message cannot be stored as it is (a NUL, a lone surrogate).
    "message_nul": (
        200,
        "application/json",
        b'{"status_code": 2001, "status_message": "a\\u0000b"}',
    ),
    "message_surrogate": (
        200,
        "application/json",
        b'{"status_code": 2001, "status_message": "a\\ud800b"}',
    ),
}


class BadRepliesEMSPServer(EMSPServer):
    """EMSPServer with the modes of BAD_REPLIES (see the module docstring)."""

    def __init__(self, *args, bad_reply_paths: str = "/ocpi/emsp/", **kwargs):
        self.bad_reply_paths = bad_reply_paths
        super().__init__(*args, **kwargs)

    def handler_class(self) -> type:
        return _bad_replies_handler(self)


def _bad_replies_handler(server: BadRepliesEMSPServer):
    base = _make_handler(server)

    class Handler(base):
        def _handle(self):
            bad = BAD_REPLIES.get(server.mode)
            if bad is None or server.bad_reply_paths not in self.path:
                super()._handle()
                return
            body = self._read_body()
            record = Recorded(self.command, self.path, dict(self.headers.items()), body)
            with server.lock:
                server.requests.append(record)
            http_status, content_type, content = bad
            self.send_response(http_status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return Handler
