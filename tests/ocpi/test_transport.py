"""Transport behaviour on OCPI paths (PROTOCOL.md §1): every answer is a JSON envelope with the
right HTTP status, tracing headers are echoed (errors included), DateTimes are UTC with "Z",
pagination parameters are validated, and trailing slashes work without redirects."""

import re
import uuid
from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from ocpi import jsonutil, tokens
from ocpi.models import Partner
from stations.models import Location
from tests.factories import EVSEFactory, LocationFactory, TariffFactory

LOCATIONS = "/ocpi/cpo/2.2.1/locations"
TARIFFS = "/ocpi/cpo/2.2.1/tariffs"
CREDENTIALS = "/ocpi/2.2.1/credentials"
DATETIME_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$")
TRACING = {"HTTP_X_REQUEST_ID": "req-7f3c", "HTTP_X_CORRELATION_ID": "corr-19ab"}


def _envelope(response, *, http_status: int, ocpi_status: int) -> dict:
    """Assert `response` is an OCPI envelope (never HTML) with these statuses; return it."""
    assert response.status_code == http_status
    assert response["Content-Type"] == "application/json"
    assert b"<html" not in response.content.lower()
    body = jsonutil.loads(response.content)
    assert body["status_code"] == ocpi_status
    assert isinstance(body["status_message"], str)
    assert body["status_message"]
    assert DATETIME_Z.match(body["timestamp"])
    return body


def _assert_traced(response) -> None:
    assert response["X-Request-ID"] == "req-7f3c"
    assert response["X-Correlation-ID"] == "corr-19ab"


def _header(token: str) -> str:
    return "Token " + tokens.encode_for_header(token, base64_encoded=True)


@pytest.fixture
def network(db):
    EVSEFactory(location=LocationFactory(ocpi_id="L1", evses=0), uid="E1")
    TariffFactory()


# --- 404 / 405 --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "/ocpi/",
        "/ocpi/nothing-here",
        "/ocpi/cpo/2.2.1/unknown-module",
        "/ocpi/cpo/2.0/locations",  # a version we do not serve
        f"{LOCATIONS}/L1/E1/1/too-deep",
        "/ocpi/cpo/2.2.1/tariffs/NL/CPO/T1",
    ],
)
def test_unknown_ocpi_path_is_404_envelope(network, ocpi_client, path):
    # when
    response = ocpi_client.get(path, **TRACING)
    # then
    _envelope(response, http_status=404, ocpi_status=2000)
    _assert_traced(response)


@pytest.mark.parametrize("path", [LOCATIONS, f"{LOCATIONS}/L1", f"{LOCATIONS}/L1/E1", TARIFFS])
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_wrong_method_is_405_envelope_and_changes_nothing(network, ocpi_client, path, method):
    # given
    before = list(Location.objects.values_list("ocpi_id", "name", "last_updated"))
    body = {"country_code": "NL", "party_id": "CPO", "id": "L1", "name": "Hijacked"}
    # when
    response = getattr(ocpi_client, method)(path, body, format="json", **TRACING)
    # then
    _envelope(response, http_status=405, ocpi_status=2000)
    _assert_traced(response)
    assert "GET" in response["Allow"]
    assert list(Location.objects.values_list("ocpi_id", "name", "last_updated")) == before


@pytest.mark.parametrize("path", [LOCATIONS, f"{LOCATIONS}/L1", TARIFFS])
def test_options_is_405_envelope_not_drf_metadata(network, ocpi_client, path):
    # when
    response = ocpi_client.options(path, **TRACING)
    # then
    body = _envelope(response, http_status=405, ocpi_status=2000)
    assert "data" not in body
    _assert_traced(response)


@pytest.mark.parametrize("path", [LOCATIONS, TARIFFS])
def test_limit_zero_is_2001_not_an_empty_truth(network, ocpi_client, path):
    # when
    response = ocpi_client.get(path, {"limit": "0"}, **TRACING)
    # then
    _envelope(response, http_status=400, ocpi_status=2001)


# --- malformed bodies -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw", [b'{"token": "abc", ', b"\xff\xfe not utf-8", b"<xml/>", b"[" * 100_000]
)
def test_malformed_json_on_credentials_put_is_400_2001_and_changes_nothing(partner_and_token, raw):
    # given
    partner, token = partner_and_token
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=_header(token))
    # when
    response = client.put(CREDENTIALS, raw, content_type="application/json", **TRACING)
    # then
    _envelope(response, http_status=400, ocpi_status=2001)
    _assert_traced(response)
    fresh = Partner.objects.get(pk=partner.pk)
    assert fresh.status == Partner.Status.REGISTERED
    assert fresh.inbound_token_digest == partner.inbound_token_digest
    assert fresh.endpoints == partner.endpoints


def test_malformed_json_on_credentials_post_is_400_2001_and_registers_nobody(db):
    # given
    token_a = tokens.new_token()
    partner = Partner.objects.create(name="Pending eMSP", status=Partner.Status.PENDING)
    partner.set_token_a(token_a)
    partner.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=_header(token_a))
    # when
    response = client.post(CREDENTIALS, b"{", content_type="application/json", **TRACING)
    # then
    _envelope(response, http_status=400, ocpi_status=2001)
    _assert_traced(response)
    fresh = Partner.objects.get(pk=partner.pk)
    assert fresh.status == Partner.Status.PENDING
    assert fresh.inbound_token_digest == ""


# --- 401 --------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [LOCATIONS, f"{LOCATIONS}/L1", TARIFFS])
@pytest.mark.parametrize("caller", ["missing", "wrong", "token A"])
def test_authorization_failures_are_401_envelopes_with_tracing(network, path, caller):
    # given
    client = APIClient()
    if caller == "wrong":
        client.credentials(HTTP_AUTHORIZATION=_header("not-a-token-we-issued"))
    elif caller == "token A":
        token_a = tokens.new_token()
        partner = Partner.objects.create(name="Pending eMSP", status=Partner.Status.PENDING)
        partner.set_token_a(token_a)
        partner.save()
        client.credentials(HTTP_AUTHORIZATION=_header(token_a))
    # when
    response = client.get(path, **TRACING)
    # then
    _envelope(response, http_status=401, ocpi_status=2000)
    _assert_traced(response)


# --- 500 --------------------------------------------------------------------------------------
def _boom(**kwargs):
    raise RuntimeError("database on fire")


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("ocpi.modules.locations.views.location_list", LOCATIONS),
        ("ocpi.modules.locations.views.location_get", f"{LOCATIONS}/L1"),
        ("ocpi.modules.locations.views.evse_get", f"{LOCATIONS}/L1/E1"),
        ("ocpi.modules.locations.views.connector_get", f"{LOCATIONS}/L1/E1/1"),
        ("ocpi.modules.tariffs.views.tariff_list", TARIFFS),
    ],
)
def test_unhandled_exception_is_3000_envelope_not_html(
    network, ocpi_client, monkeypatch, target, path
):
    # given
    monkeypatch.setattr(target, _boom)
    # when
    response = ocpi_client.get(path, **TRACING)
    # then
    body = _envelope(response, http_status=500, ocpi_status=3000)
    _assert_traced(response)
    assert "database on fire" not in body["status_message"]  # no internals leak
    assert "data" not in body


def test_exception_outside_drf_is_3000_envelope_not_html(db, monkeypatch):
    # given: the catch-all 404 view is plain Django; make it fail
    def broken(*args, **kwargs):
        raise RuntimeError("renderer broke")

    monkeypatch.setattr("ocpi.views.envelope_response", broken)
    # when
    response = APIClient().get("/ocpi/no-such-module", **TRACING)
    # then
    _envelope(response, http_status=500, ocpi_status=3000)
    _assert_traced(response)


# --- tracing headers --------------------------------------------------------------------------
def test_tracing_headers_are_echoed_on_success(network, ocpi_client):
    # when
    response = ocpi_client.get(LOCATIONS, **TRACING)
    # then
    _envelope(response, http_status=200, ocpi_status=1000)
    _assert_traced(response)


def test_missing_tracing_headers_are_generated_not_rejected(network, ocpi_client):
    # when: a 2.1.1-style partner sends none
    response = ocpi_client.get(LOCATIONS)
    # then
    _envelope(response, http_status=200, ocpi_status=1000)
    assert uuid.UUID(response["X-Request-ID"])
    assert uuid.UUID(response["X-Correlation-ID"])
    assert response["X-Request-ID"] != response["X-Correlation-ID"]


def test_routing_headers_are_swapped_on_functional_module_responses(network, ocpi_client):
    # when
    response = ocpi_client.get(
        LOCATIONS,
        HTTP_OCPI_FROM_COUNTRY_CODE="DE",
        HTTP_OCPI_FROM_PARTY_ID="EMS",
        HTTP_OCPI_TO_COUNTRY_CODE="NL",
        HTTP_OCPI_TO_PARTY_ID="CPO",
    )
    # then
    assert response.status_code == 200
    assert response["OCPI-to-country-code"] == "DE"
    assert response["OCPI-to-party-id"] == "EMS"
    assert response["OCPI-from-country-code"] == "NL"
    assert response["OCPI-from-party-id"] == "CPO"


# --- pagination parameters --------------------------------------------------------------------
@pytest.mark.parametrize(
    "query",
    [
        {"offset": "-1"},
        {"offset": "ten"},
        {"offset": "1.5"},
        {"offset": str(2**40)},
        {"limit": "-5"},
        {"limit": "many"},
        {"date_from": "yesterday"},
        {"date_from": "2025-13-01T00:00:00Z"},
        {"date_to": "2025-01-01T25:00:00Z"},
        {"date_to": "2025-01-01T00:00:00Z" + "0" * 40},
    ],
)
@pytest.mark.parametrize("path", [LOCATIONS, TARIFFS])
def test_invalid_pagination_parameters_are_400_2001(network, ocpi_client, path, query):
    # when
    response = ocpi_client.get(path, query, **TRACING)
    # then
    body = _envelope(response, http_status=400, ocpi_status=2001)
    _assert_traced(response)
    assert "data" not in body
    assert next(iter(query)) in body["status_message"]


def test_date_with_an_offset_is_read_as_that_instant_and_echoed_in_utc(ocpi_client):
    # given
    early, late = LocationFactory(evses=0), LocationFactory(evses=0)
    Location.objects.filter(pk=early.pk).update(last_updated=datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
    Location.objects.filter(pk=late.pk).update(last_updated=datetime(2025, 3, 1, 10, 0, tzinfo=UTC))
    LocationFactory(evses=0)  # now: after the window
    # when: 11:30+02:00 is 09:30Z; no designator means UTC
    response = ocpi_client.get(
        LOCATIONS,
        {"date_from": "2025-03-01T11:30:00+02:00", "date_to": "2025-03-02T00:00:00", "limit": 1},
    )
    # then
    body = _envelope(response, http_status=200, ocpi_status=1000)
    assert [loc["id"] for loc in body["data"]] == [late.ocpi_id]
    assert response["X-Total-Count"] == "1"
    assert "Link" not in response
    assert body["data"][0]["last_updated"] == "2025-03-01T10:00:00Z"


def test_date_filter_link_renders_dates_in_utc_with_z(ocpi_client):
    # given
    for _ in range(2):
        LocationFactory(evses=0)
    # when
    response = ocpi_client.get(LOCATIONS, {"date_from": "2000-01-01T01:00:00+01:00", "limit": 1})
    # then
    assert "date_from=2000-01-01T00%3A00%3A00Z" in response["Link"]


# --- trailing slashes -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        f"{LOCATIONS}/",
        f"{LOCATIONS}/L1/",
        f"{LOCATIONS}/L1/E1/",
        f"{LOCATIONS}/L1/E1/1/",
        f"{TARIFFS}/",
    ],
)
def test_trailing_slash_is_served_without_redirect(network, ocpi_client, path):
    # when
    response = ocpi_client.get(path, **TRACING)
    # then
    _envelope(response, http_status=200, ocpi_status=1000)
    _assert_traced(response)
