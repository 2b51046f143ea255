"""The OCPI traffic log (issue 6, "OCPI traffic log"): every inbound request and outbound call,
with its response, partner, ids, status codes and duration, secrets redacted, bodies capped; kept
even when the request's transaction rolls back; purged after TRAFFIC_LOG_DAYS; found in the admin.

Inside a test's transaction a row is written once the transaction "commits", so these tests run
the on_commit callbacks (django_capture_on_commit_callbacks); the rollback tests run outside one
(transactional_db), as production does. Outbound calls go to a real EMSPServer on 127.0.0.1.
"""

import base64
import io
import json
import logging
import sys
import wsgiref.util
from datetime import timedelta

import pytest
import requests
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from ocpi import traffic
from ocpi.client import OCPIClient
from ocpi.exceptions import PartnerUnavailable
from ocpi.models import Partner, TrafficLog
from ocpi.redact import REDACTED, RedactTokensFilter

LOCATIONS = "/ocpi/cpo/2.2.1/locations"
Direction = TrafficLog.Direction


def client_for(token: str) -> APIClient:
    return APIClient(HTTP_AUTHORIZATION="Token " + base64.b64encode(token.encode()).decode())


def stored_text(row: TrafficLog) -> str:
    """Everything the row holds, as one string (to look for secrets in)."""
    values = TrafficLog.objects.filter(pk=row.pk).values().get()
    return json.dumps(values, default=str)


# --- inbound --------------------------------------------------------------------------------------
def test_an_inbound_request_is_logged_with_its_response(partner_and_token, committed):
    # given
    partner, token = partner_and_token
    client = client_for(token)

    # when
    with committed():
        response = client.get(
            LOCATIONS, {"limit": 5}, HTTP_X_REQUEST_ID="req-1", HTTP_X_CORRELATION_ID="corr-1"
        )

    # then
    assert response.status_code == 200
    row = TrafficLog.objects.get()
    assert row.direction == Direction.INBOUND
    assert row.partner == partner
    assert (row.method, row.url) == ("GET", f"{LOCATIONS}?limit=5")
    assert (row.http_status, row.ocpi_status) == (200, 1000)
    assert (row.request_id, row.correlation_id) == ("req-1", "corr-1")
    assert row.request_headers["Authorization"] == REDACTED
    assert row.request_headers["X-Request-Id"] == "req-1"
    assert row.response_headers["X-Total-Count"] == "0"
    assert json.loads(row.response_body)["status_code"] == 1000
    assert row.response_size == len(response.content)
    assert 0 <= row.duration_ms < 10_000
    assert token not in stored_text(row)


def test_an_inbound_row_is_written_once_the_response_has_gone_out(
    transactional_db, partner_and_token
):
    # given: a request through Django's WSGI application, as gunicorn makes it
    _, token = partner_and_token
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": LOCATIONS,
        "wsgi.input": io.BytesIO(b""),
        "HTTP_AUTHORIZATION": "Token " + base64.b64encode(token.encode()).decode(),
    }
    wsgiref.util.setup_testing_defaults(environ)
    statuses = []

    # when: the server has the response but has not closed it yet
    result = WSGIHandler()(environ, lambda status, headers: statuses.append(status))
    b"".join(result)

    # then: the partner's answer did not wait for the log's INSERT
    assert statuses == ["200 OK"]
    assert not TrafficLog.objects.exists()

    # when: the server closes the response (request_finished)
    result.close()

    # then
    row = TrafficLog.objects.get()
    assert (row.direction, row.url, row.http_status) == (Direction.INBOUND, LOCATIONS, 200)


def test_a_refused_caller_is_logged_without_a_partner(db, committed):
    # when
    with committed():
        response = APIClient().get(LOCATIONS, HTTP_AUTHORIZATION="Token not-a-token")

    # then
    assert response.status_code == 401
    row = TrafficLog.objects.get()
    assert (row.partner, row.http_status, row.ocpi_status) == (None, 401, 2000)
    assert row.request_headers["Authorization"] == REDACTED
    assert row.request_id == response["X-Request-ID"]  # generated, and echoed


def test_a_request_to_no_endpoint_is_logged(db, committed):
    # when
    with committed():
        response = APIClient().post("/ocpi/nowhere", data=b"{}", content_type="application/json")

    # then: a 404 in the envelope, on record
    assert response.status_code == 404
    row = TrafficLog.objects.get()
    assert (row.method, row.url, row.http_status, row.ocpi_status) == (
        "POST",
        "/ocpi/nowhere",
        404,
        2000,
    )
    assert row.request_body == "{}"


def test_credentials_tokens_in_bodies_are_redacted(partner_and_token, committed):
    # given
    _, token = partner_and_token

    # when: GET credentials answers with the token the caller uses
    with committed():
        response = client_for(token).get("/ocpi/2.2.1/credentials")

    # then
    assert response.json()["data"]["token"] == token
    row = TrafficLog.objects.get()
    assert json.loads(row.response_body)["data"]["token"] == REDACTED
    assert token not in stored_text(row)
    assert base64.b64encode(token.encode()).decode() not in stored_text(row)


def test_bodies_are_cut_at_the_configured_size(partner_and_token, committed, settings):
    # given
    settings.TRAFFIC_LOG_BODY_BYTES = 40
    _, token = partner_and_token
    body = {"country_code": "DE", "party_id": "EMS", "uid": "U" * 30, "padding": "x" * 500}

    # when
    with committed():
        client_for(token).put(
            "/ocpi/cpo/2.2.1/tokens/DE/EMS/" + "U" * 30,
            data=json.dumps(body),
            content_type="application/json",
        )

    # then
    row = TrafficLog.objects.get()
    assert len(row.request_body.encode()) <= 40
    assert row.request_size == len(json.dumps(body))
    assert len(row.response_body.encode()) <= 40
    assert row.response_size > 40


def test_a_body_with_nul_characters_is_logged(partner_and_token, committed):
    # given: a body PostgreSQL text could not hold as it is
    _, token = partner_and_token

    # when
    with committed():
        response = client_for(token).put(
            "/ocpi/cpo/2.2.1/tokens/DE/EMS/U1",
            data=b'{"uid": "U1\x00", "junk": "\x00\xff"}',
            content_type="application/json",
        )

    # then: answered in the envelope, and on record
    assert response.json()["status_code"] == 2001
    row = TrafficLog.objects.get()
    assert row.request_body.startswith('{"uid": "U1')
    assert "\x00" not in row.request_body


def test_nothing_is_logged_when_switched_off(partner_and_token, committed, settings):
    # given
    settings.TRAFFIC_LOG_ENABLED = False

    # when
    with committed():
        client_for(partner_and_token[1]).get(LOCATIONS)

    # then
    assert not TrafficLog.objects.exists()


# --- outbound -------------------------------------------------------------------------------------
def test_an_outbound_call_is_logged_with_the_reply(make_partner, emsp, committed):
    # given
    partner, _ = make_partner(versions_url=emsp.versions_url)
    partner.set_outbound_token(emsp.token_a)
    partner.save()
    client = OCPIClient(partner, correlation_id="corr-out")

    # when
    with committed():
        reply = client.request("GET", emsp.versions_url, params={"x": "1"}, functional=False)

    # then
    assert reply.ocpi_status == 1000
    row = TrafficLog.objects.get()
    sent = emsp.received("GET")[0]
    assert row.direction == Direction.OUTBOUND
    assert row.partner == partner
    assert (row.method, row.url) == ("GET", emsp.versions_url + "?x=1")
    assert (row.http_status, row.ocpi_status, row.error) == (200, 1000, "")
    assert row.request_headers["Authorization"] == REDACTED
    assert row.request_id == sent.headers["X-Request-ID"]
    assert row.correlation_id == "corr-out"
    assert json.loads(row.response_body)["data"][0]["version"] == "2.2.1"
    assert emsp.token_a not in stored_text(row)
    assert base64.b64encode(emsp.token_a.encode()).decode() not in stored_text(row)


def test_the_status_of_a_large_reply_is_found_without_parsing_it(
    make_partner, emsp, committed, monkeypatch
):
    # given: replies count as large from 10 bytes on
    monkeypatch.setattr(traffic, "MAX_STATUS_PARSE_BYTES", 10)
    partner, _ = make_partner()
    partner.set_outbound_token(emsp.token_a)
    partner.save()

    # when
    with committed():
        OCPIClient(partner).request("GET", emsp.versions_url, functional=False)

    # then
    assert TrafficLog.objects.get().ocpi_status == 1000


def test_an_outbound_body_is_logged(make_partner, emsp, committed):
    # given
    partner, _ = make_partner()
    partner.set_outbound_token(emsp.token_a)
    partner.save()

    # when
    with committed():
        OCPIClient(partner).request(
            "PUT", emsp.endpoint("sessions") + "/NL/CPO/S1", body={"id": "S1", "kwh": 1}
        )

    # then
    row = TrafficLog.objects.get()
    assert (row.method, json.loads(row.request_body)) == ("PUT", {"id": "S1", "kwh": 1})
    assert row.request_headers["Content-Type"] == "application/json"


def test_a_call_nobody_answered_is_logged_with_the_reason(make_partner, emsp, committed):
    # given: the partner is down
    partner, _ = make_partner()
    url = emsp.versions_url
    emsp.stop()

    # when
    with committed(), pytest.raises(PartnerUnavailable):
        OCPIClient(partner).request("GET", url, functional=False)

    # then
    row = TrafficLog.objects.get()
    assert (row.direction, row.http_status, row.ocpi_status) == (Direction.OUTBOUND, None, None)
    assert row.error.startswith("ConnectionError")
    assert row.url == url


def test_a_call_that_timed_out_is_logged(make_partner, emsp, committed):
    # given
    partner, _ = make_partner()
    partner.set_outbound_token(emsp.token_a)
    partner.request_timeout = 0.2
    partner.save()
    emsp.mode, emsp.timeout_seconds = "timeout", 1.0

    # when
    with committed(), pytest.raises(PartnerUnavailable):
        OCPIClient(partner).request("GET", emsp.endpoint("locations"))

    # then
    row = TrafficLog.objects.get()
    assert row.error.startswith("ReadTimeout")
    assert row.http_status is None
    assert row.duration_ms >= 200


# --- outside the request's transaction ------------------------------------------------------------
def test_a_rolled_back_request_is_still_logged_in_and_out(transactional_db, make_partner, emsp):
    # given: a registered partner updating its credentials while its own server is down, so
    # the update fails (3001) and the request's transaction is rolled back
    partner, token = make_partner(versions_url=emsp.versions_url)
    body = emsp.credentials_body("new-token")
    emsp.stop()

    # when
    response = client_for(token).put(
        "/ocpi/2.2.1/credentials",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_X_CORRELATION_ID="corr-rollback",
    )

    # then: both the partner's request and our failed call to it are on record
    assert response.json()["status_code"] == 3001
    rows = TrafficLog.objects.filter(correlation_id="corr-rollback").order_by("id")
    assert [(r.direction, r.method, r.http_status) for r in rows] == [
        (Direction.OUTBOUND, "GET", None),
        (Direction.INBOUND, "PUT", 200),
    ]
    assert rows[1].ocpi_status == 3001
    assert rows[0].url == emsp.versions_url
    assert json.loads(rows[1].request_body)["token"] == REDACTED


def test_a_call_in_a_rolled_back_transaction_is_written_when_the_work_ends(
    transactional_db, make_partner, emsp
):
    # given
    partner, _ = make_partner()
    partner.set_outbound_token(emsp.token_a)
    partner.save()

    def work():
        with transaction.atomic():
            OCPIClient(partner).request("GET", emsp.versions_url, functional=False)
            raise RuntimeError("the work failed after the call")

    # when: a call inside a transaction that then rolls back (a delivery that raised)
    with pytest.raises(RuntimeError):
        work()
    left = TrafficLog.objects.count()
    request_finished.send(sender=None)  # the end of the request (or a task: task_postrun)

    # then
    assert left == 0
    row = TrafficLog.objects.get()
    assert (row.direction, row.http_status) == (Direction.OUTBOUND, 200)


def test_a_call_in_a_committed_transaction_is_written_on_commit(
    transactional_db, make_partner, emsp
):
    # given
    partner, _ = make_partner()
    partner.set_outbound_token(emsp.token_a)
    partner.save()

    # when
    with transaction.atomic():
        OCPIClient(partner).request("GET", emsp.versions_url, functional=False)
        inside = TrafficLog.objects.count()

    # then: not written inside the caller's transaction, written once it committed
    assert inside == 0
    assert TrafficLog.objects.count() == 1


def test_a_log_row_of_a_partner_deleted_meanwhile_is_kept_without_it(
    transactional_db, make_partner, emsp
):
    # given: a call is made for a partner that is gone by the time the row is written
    partner, _ = make_partner()
    partner.set_outbound_token(emsp.token_a)
    partner.save()
    with transaction.atomic():
        OCPIClient(partner).request("GET", emsp.versions_url, functional=False)
        Partner.objects.filter(pk=partner.pk).delete()

    # then
    row = TrafficLog.objects.get()
    assert (row.partner_id, row.http_status) == (None, 200)


# --- retention ------------------------------------------------------------------------------------
def _row(age: timedelta) -> TrafficLog:
    return TrafficLog.objects.create(
        direction=Direction.INBOUND,
        method="GET",
        url="/ocpi/versions",
        created=timezone.now() - age,
    )


def test_the_purge_removes_rows_older_than_the_retention(db, settings):
    # given
    settings.TRAFFIC_LOG_DAYS = 30
    old = [_row(timedelta(days=31)), _row(timedelta(days=400))]
    kept = [_row(timedelta(days=29)), _row(timedelta(minutes=1))]

    # when
    deleted = traffic.purge_traffic_log_task.apply().get()

    # then
    assert deleted == len(old)
    assert set(TrafficLog.objects.values_list("pk", flat=True)) == {r.pk for r in kept}


def test_the_purge_works_in_batches(db, settings):
    # given
    settings.TRAFFIC_LOG_DAYS = 1
    for _ in range(7):
        _row(timedelta(days=2))

    # when
    deleted = traffic.traffic_purge(batch=3)

    # then
    assert (deleted, TrafficLog.objects.count()) == (7, 0)


def test_a_retention_of_zero_days_keeps_everything(db, settings):
    # given
    settings.TRAFFIC_LOG_DAYS = 0
    _row(timedelta(days=4000))

    # when / then
    assert traffic.traffic_purge() == 0
    assert TrafficLog.objects.count() == 1


def test_the_purge_is_scheduled(settings):
    # then
    entry = settings.CELERY_BEAT_SCHEDULE["purge-traffic-log"]
    assert entry["task"] == traffic.purge_traffic_log_task.name


# --- admin ----------------------------------------------------------------------------------------
@pytest.fixture
def logged(partner_and_token, committed):
    """Two inbound rows: a tokens PUT (correlation corr-A) and a sessions GET (corr-B)."""
    _, token = partner_and_token
    client = client_for(token)
    with committed():
        client.put(
            "/ocpi/cpo/2.2.1/tokens/DE/EMS/T1",
            data=json.dumps({"uid": "T1"}),
            content_type="application/json",
            HTTP_X_CORRELATION_ID="corr-A",
        )
        client.get("/ocpi/cpo/2.2.1/sessions", HTTP_X_CORRELATION_ID="corr-B")
    return TrafficLog.objects.get(correlation_id="corr-A"), TrafficLog.objects.get(
        correlation_id="corr-B"
    )


def test_the_admin_finds_a_message_by_correlation_id(admin_client, logged):
    # when
    response = admin_client.get("/admin/ocpi/trafficlog/", {"q": "corr-A"})

    # then
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [logged[0]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"q": "/tokens/DE/EMS"}, [0]),
        ({"q": "Partner One"}, [0, 1]),
        ({"http": "4xx"}, [0, 1]),
        ({"ocpi": "2"}, [0, 1]),
        ({"direction__exact": "OUT"}, []),
        ({"method__exact": "PUT"}, [0]),
    ],
)
def test_the_admin_searches_and_filters(admin_client, logged, query, expected):
    # when
    response = admin_client.get("/admin/ocpi/trafficlog/", query)

    # then
    assert response.status_code == 200
    assert {r.pk for r in response.context["cl"].result_list} == {logged[i].pk for i in expected}


def test_the_admin_shows_a_message_pretty_printed_and_read_only(admin_client, logged):
    # when
    page = admin_client.get(f"/admin/ocpi/trafficlog/{logged[0].pk}/change/")

    # then
    html = page.content.decode()
    assert page.status_code == 200
    assert "&quot;status_code&quot;: 2001" in html  # indented JSON of the response body
    assert "&quot;Authorization&quot;: &quot;REDACTED&quot;" in html
    assert 'name="_save"' not in html
    assert admin_client.get("/admin/ocpi/trafficlog/add/").status_code == 403


# --- log files ------------------------------------------------------------------------------------
def test_log_lines_never_carry_credentials_tokens():
    # given
    record = logging.LogRecord(
        "ocpi", logging.WARNING, __file__, 1,
        "Call failed: headers %s, body %s",
        ({"Authorization": "Token c2VjcmV0LXRva2VuLTEyMw=="}, '{"token": "secret-token-123"}'),
        None,
    )  # fmt: skip

    # when
    RedactTokensFilter().filter(record)

    # then
    assert "c2VjcmV0" not in record.getMessage()
    assert "secret-token-123" not in record.getMessage()
    assert record.getMessage().startswith("Call failed: headers {'Authorization': 'Token REDACT")


def test_the_console_log_handler_redacts_tokens():
    # then: settings.LOGGING put the filter on the root handlers
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    assert any(isinstance(f, RedactTokensFilter) for handler in handlers for f in handler.filters)


def test_a_traceback_is_redacted_too():
    # given
    try:
        raise requests.HTTPError("401 for Authorization: Token abcdefghijklmnop")
    except requests.HTTPError:
        record = logging.LogRecord("ocpi", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())

    # when
    RedactTokensFilter().filter(record)

    # then
    assert "abcdefghijklmnop" not in record.exc_text
    assert "Authorization: Token REDACTED" in record.exc_text
