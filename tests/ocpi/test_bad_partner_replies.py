"""A partner that answers our pushes with something that is not OCPI (PROTOCOL.md §1.3, §1.5,
§10.3): invalid JSON, an HTML page, JSON that is not an envelope (no status_code, a status_code
that is not an integer or not an OCPI code, a list, a string, null), JSON nested too deeply to
read, or an envelope whose message cannot be stored as it is.

Delivery (ocpi.delivery) goes on as its policy says: such a reply with HTTP 2xx or 4xx rejects the
row (FAILED, its object blocked; a PATCH is first resent once as a PUT of the whole object), with
HTTP 5xx it is retried after a backoff; `last_error` says what came back, readably; nothing
crashes, and the rows of other objects go out in the same run. Over real HTTP to the test eMSP
(tests/emsp_server.py, BadRepliesEMSPServer), misbehaving on one module only.
"""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from ocpi.delivery import outbox_deliver
from ocpi.models import OutboxMessage
from stations.models import EVSE
from tests.emsp_server import BadRepliesEMSPServer, partner_of
from tests.factories import LocationFactory, TariffFactory

pytestmark = pytest.mark.django_db

State = OutboxMessage.State
BASE = "/ocpi/emsp/2.2.1"

NOT_JSON = "is not JSON"
NOT_ENVELOPE = "is not an OCPI envelope"

# mode -> what last_error says (each fragment), for replies that reject the row
REJECTING = {
    "invalid_json": ["HTTP 200", NOT_JSON, '{"status_code": 1000, "timestamp": "2026-01-0'],
    "html_page": ["HTTP 200", NOT_JSON, "<!DOCTYPE html>", "Welcome to nginx!"],
    "html_page_404": ["HTTP 404", NOT_JSON, "Welcome to nginx!"],
    "empty_object": ["HTTP 200", NOT_ENVELOPE, "no status_code", "{}"],
    "no_status_code": ["HTTP 200", NOT_ENVELOPE, "no status_code", '"status_message": "OK"'],
    "status_code_string": ["HTTP 200", NOT_ENVELOPE, 'status_code "1000" is not an integer'],
    "status_code_float": ["HTTP 200", NOT_ENVELOPE, "status_code 1000.0 is not an integer"],
    "status_code_bool": ["HTTP 200", NOT_ENVELOPE, "status_code true is not an integer"],
    "status_code_null": ["HTTP 200", NOT_ENVELOPE, "status_code null is not an integer"],
    "status_code_negative": ["HTTP 200", NOT_ENVELOPE, "status_code -1 is not an OCPI status"],
    "status_code_huge": [
        "HTTP 200",
        NOT_ENVELOPE,
        "status_code 100000000000000000000 is not an OCPI status",
    ],
    "status_code_five_digits": ["HTTP 200", NOT_ENVELOPE, "status_code 10000 is not an OCPI"],
    "json_list": ["HTTP 200", NOT_ENVELOPE, "a JSON array", '[{"status_code": 1000}]'],
    "json_string": ["HTTP 200", NOT_ENVELOPE, "a JSON string", '"OK"'],
    "json_null": ["HTTP 200", NOT_ENVELOPE, "JSON null"],
    "deeply_nested": ["HTTP 200", "nested too deeply", "[[[["],
    "message_nul": ["HTTP 200, OCPI 2001", "a\\x00b"],
    "message_surrogate": ["HTTP 200, OCPI 2001", "a\\ud800b"],
}
# mode -> what last_error says, for replies retried later (HTTP 5xx)
RETRIED = {
    "html_page_502": ["HTTP 502 without JSON"],
    "invalid_json_503": ["HTTP 503 without JSON"],
}


@pytest.fixture(autouse=True)
def _backoff(settings):
    settings.OUTBOX_BACKOFF_BASE = 10.0
    settings.OUTBOX_BACKOFF_MAX = 60.0


@pytest.fixture
def emsp():
    server = BadRepliesEMSPServer(bad_reply_paths=f"{BASE}/locations")
    yield server
    server.stop()


@pytest.fixture
def partner(make_partner, emsp):
    return partner_of(make_partner, emsp, request_timeout=1.0)


def location_then_tariff() -> tuple[OutboxMessage, OutboxMessage]:
    """A new Location, then a new Tariff: one PUT row each, the Location's first."""
    LocationFactory(ocpi_id="LOC1", evses=1)
    TariffFactory(ocpi_id="T1")
    location_row, tariff_row = OutboxMessage.objects.filter(state=State.PENDING).order_by("id")
    assert (location_row.module, location_row.method) == ("locations", "PUT")
    assert (tariff_row.module, tariff_row.method) == ("tariffs", "PUT")
    return location_row, tariff_row


def assert_readable(reason: str, fragments: list[str]) -> None:
    for fragment in fragments:
        assert fragment in reason
    assert reason.isprintable()  # no NUL or other control character, no raw newline
    reason.encode("utf-8")  # storable: no lone surrogate
    assert len(reason) <= 2000


def assert_delivered(row: OutboxMessage, emsp: BadRepliesEMSPServer, key: str) -> None:
    row.refresh_from_db()
    assert (row.state, row.attempts, row.response_ocpi_status) == (State.SENT, 1, 1000)
    assert key in emsp.stored


# --- the reply rejects the row --------------------------------------------------------------------
@pytest.mark.parametrize("mode", list(REJECTING))
def test_a_reply_that_is_not_ocpi_fails_the_put_and_other_objects_go_out(partner, emsp, mode):
    # given
    location_row, tariff_row = location_then_tariff()
    emsp.mode = mode

    # when
    report = outbox_deliver(partner_id=partner.pk)

    # then: the Location's row failed with the reason; the Tariff went out
    location_row.refresh_from_db()
    assert (location_row.state, location_row.attempts) == (State.FAILED, 1)
    assert_readable(location_row.last_error, REJECTING[mode])
    http_status = 404 if mode == "html_page_404" else 200
    ocpi_status = 2001 if mode.startswith("message_") else None
    assert (location_row.response_status, location_row.response_ocpi_status) == (
        http_status,
        ocpi_status,
    )
    assert_delivered(tariff_row, emsp, "tariffs/NL/CPO/T1")
    assert "locations/NL/CPO/LOC1" not in emsp.stored
    assert (report.sent, report.failed, report.deferred) == (1, 1, 0)
    assert [r.path.removeprefix(BASE) for r in emsp.received()] == [
        "/locations/NL/CPO/LOC1",
        "/tariffs/NL/CPO/T1",
    ]


@pytest.mark.parametrize("mode", ["invalid_json", "html_page", "json_list", "status_code_huge"])
def test_a_rejected_patch_is_resent_as_a_put_which_fails_too(partner, emsp, mode):
    # given: LOC1 is at the eMSP; its EVSE changes (a PATCH), then a Tariff is new
    LocationFactory(ocpi_id="LOC1", evses=1)
    outbox_deliver(partner_id=partner.pk)
    OutboxMessage.objects.all().delete()
    evse = EVSE.objects.get()
    evse.status = "CHARGING"
    evse.save()
    TariffFactory(ocpi_id="T1")
    patch_row, tariff_row = OutboxMessage.objects.filter(state=State.PENDING).order_by("id")
    assert patch_row.method == "PATCH"
    emsp.mode = mode
    emsp.requests.clear()

    # when
    report = outbox_deliver(partner_id=partner.pk)

    # then: the PATCH became a PUT of the EVSE (policy), which failed with the PUT's reason
    patch_row.refresh_from_db()
    assert (patch_row.method, patch_row.state, patch_row.attempts) == ("PUT", State.FAILED, 2)
    assert_readable(patch_row.last_error, REJECTING[mode])
    assert json.loads(patch_row.body)["status"] == "CHARGING"
    assert_delivered(tariff_row, emsp, "tariffs/NL/CPO/T1")
    assert (report.converted, report.failed, report.sent) == (1, 1, 1)
    evse_path = "/locations/NL/CPO/LOC1/" + evse.uid
    assert [(r.method, r.path.removeprefix(BASE)) for r in emsp.received()] == [
        ("PATCH", evse_path),
        ("PUT", evse_path),
        ("PUT", "/tariffs/NL/CPO/T1"),
    ]


@pytest.mark.parametrize("mode", ["invalid_json", "html_page", "no_status_code", "json_null"])
def test_a_cdr_post_answered_with_something_else_fails(partner, mode):
    # given: the eMSP misbehaves on its cdrs endpoint only; a CDR POST, then a Tariff
    server = BadRepliesEMSPServer(bad_reply_paths=f"{BASE}/cdrs")
    try:
        server.accepted_tokens.add(partner.outbound_token)
        partner.endpoints = [
            {"identifier": module, "role": "RECEIVER", "url": server.endpoint(module)}
            for module in ("cdrs", "tariffs")
        ]
        partner.save()
        cdr_row = OutboxMessage.objects.create(
            partner=partner, module="cdrs", object_key="cdrs/NL/CPO/CDR1", method="POST",
            body=json.dumps({"country_code": "NL", "party_id": "CPO", "id": "CDR1"}),
        )  # fmt: skip
        TariffFactory(ocpi_id="T1")
        tariff_row = OutboxMessage.objects.get(module="tariffs")
        server.mode = mode

        # when
        report = outbox_deliver(partner_id=partner.pk)

        # then
        cdr_row.refresh_from_db()
        assert (cdr_row.state, cdr_row.attempts) == (State.FAILED, 1)
        assert_readable(cdr_row.last_error, REJECTING[mode])
        assert_delivered(tariff_row, server, "tariffs/NL/CPO/T1")
        assert (report.sent, report.failed) == (1, 1)
    finally:
        server.stop()


# --- the reply is retried later (HTTP 5xx) --------------------------------------------------------
@pytest.mark.parametrize("mode", list(RETRIED))
def test_a_5xx_reply_that_is_not_ocpi_is_retried_and_other_objects_go_out(partner, emsp, mode):
    # given
    location_row, tariff_row = location_then_tariff()
    emsp.mode = mode
    before = timezone.now()

    # when
    report = outbox_deliver(partner_id=partner.pk)

    # then
    location_row.refresh_from_db()
    assert (location_row.state, location_row.attempts) == (State.PENDING, 1)
    assert location_row.next_attempt_at >= before + timedelta(seconds=10)
    assert_readable(location_row.last_error, RETRIED[mode])
    assert_delivered(tariff_row, emsp, "tariffs/NL/CPO/T1")
    assert (report.sent, report.deferred, report.failed) == (1, 1, 0)

    # when: the partner is fine again and the row is due
    emsp.mode = "ok"
    OutboxMessage.objects.filter(pk=location_row.pk).update(next_attempt_at=timezone.now())
    outbox_deliver(partner_id=partner.pk)

    # then
    location_row.refresh_from_db()
    assert (location_row.state, location_row.attempts) == (State.SENT, 2)
    assert "locations/NL/CPO/LOC1" in emsp.stored
