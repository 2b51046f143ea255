"""Limits (issue 6, "Limits"): a client that floods the API gets HTTP 429 with Retry-After in the
OCPI envelope, per partner (or per client IP without a valid token), at OCPI_RATE_LIMIT, and the
others do not notice; a request body over DATA_UPLOAD_MAX_MEMORY_SIZE is an HTTP 413 with OCPI
status 2001, not Django's HTML page, and changes nothing.

Each test sets its own rate (the suite runs with none: tests/conftest.py) and keys its counters
apart (the `rate` fixture), so the counters in the cache belong to it alone.
"""

import json
import runpy
import uuid
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from billing.models import Token
from ocpi import jsonutil, tokens
from ocpi.throttling import PartnerRateThrottle

LOCATIONS = "/ocpi/cpo/2.2.1/locations"
REPO = Path(__file__).resolve().parents[2]


def client(token: str | None = None, ip: str = "127.0.0.1") -> APIClient:
    extra = {"REMOTE_ADDR": ip}
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = "Token " + tokens.encode_for_header(
            token, base64_encoded=True
        )
    return APIClient(**extra)


def fresh_ip() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"


def envelope(response) -> dict:
    assert response["Content-Type"] == "application/json"
    body = jsonutil.loads(response.content)
    assert isinstance(body["status_code"], int)
    assert isinstance(body["timestamp"], str)
    return body


@pytest.fixture
def rate(settings, monkeypatch):
    # Counters of this test only: partner ids come back in later tests on SQLite (a rolled-back
    # insert frees its id there), so a key by partner id alone would carry another test's count.
    monkeypatch.setattr(
        PartnerRateThrottle, "cache_format", f"throttle_{uuid.uuid4().hex}_%(scope)s_%(ident)s"
    )

    def set_rate(value: str) -> None:
        settings.OCPI_RATE_LIMIT = value

    return set_rate


# --- per partner ------------------------------------------------------------------------------
def test_a_partner_over_the_limit_gets_429_with_retry_after(make_partner, rate):
    # given
    rate("3/minute")
    _, token = make_partner()
    flooding = client(token)

    # when
    answers = [flooding.get(LOCATIONS, HTTP_X_REQUEST_ID=f"r{n}") for n in range(4)]

    # then: three answered, the fourth refused in the envelope, with when to come back
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    body = envelope(refused)
    assert body["status_code"] == 2000
    assert "throttled" in body["status_message"]
    assert 0 < int(refused["Retry-After"]) <= 60
    assert refused["X-Request-ID"] == "r3"


def test_other_partners_are_not_slowed_by_one_that_floods(make_partner, rate):
    # given: A used its whole allowance
    rate("2/minute")
    _, token_a = make_partner("eMSP A", country_code="DE", party_id="EMS")
    _, token_b = make_partner("eMSP B", country_code="BE", party_id="BMS")
    a = client(token_a)
    for _ in range(2):
        a.get(LOCATIONS)

    # when
    a_again = a.get(LOCATIONS)
    b_answers = [client(token_b).get(LOCATIONS).status_code for _ in range(2)]

    # then
    assert a_again.status_code == 429
    assert b_answers == [200, 200]


def test_the_limit_is_per_partner_whatever_the_ip(make_partner, rate):
    # given
    rate("2/minute")
    _, token = make_partner()

    # when: the same partner from three addresses
    answers = [client(token, ip=fresh_ip()).get(LOCATIONS).status_code for _ in range(3)]

    # then
    assert answers == [200, 200, 429]


def test_every_module_counts_against_the_same_allowance(make_partner, rate):
    # given
    rate("3/minute")
    _, token = make_partner()
    partner = client(token)

    # when
    answers = [
        partner.get(LOCATIONS).status_code,
        partner.get("/ocpi/cpo/2.2.1/tariffs").status_code,
        partner.get("/ocpi/versions").status_code,
        partner.put(
            "/ocpi/cpo/2.2.1/tokens/DE/EMS/T1", data="{}", content_type="application/json"
        ).status_code,
    ]

    # then
    assert answers == [200, 200, 200, 429]


def test_a_refused_write_changes_nothing(make_partner, rate):
    # given
    rate("1/minute")
    _, token = make_partner(country_code="DE", party_id="EMS")
    partner = client(token)
    partner.get(LOCATIONS)
    body = {
        "country_code": "DE", "party_id": "EMS", "uid": "T1", "type": "RFID",
        "contract_id": "DE-EMS-C1", "issuer": "eMSP", "valid": True, "whitelist": "ALLOWED",
        "last_updated": "2025-03-01T10:00:00Z",
    }  # fmt: skip

    # when
    response = partner.put(
        "/ocpi/cpo/2.2.1/tokens/DE/EMS/T1", data=json.dumps(body), content_type="application/json"
    )

    # then
    assert response.status_code == 429
    assert not Token.objects.exists()


# --- callers without a valid token --------------------------------------------------------------
def test_callers_without_a_valid_token_are_limited_per_ip(make_partner, rate):
    # given
    rate("3/minute")
    ip = fresh_ip()
    guesser = client("wrong-token-" + uuid.uuid4().hex, ip=ip)

    # when: guessing tokens from one address
    answers = [guesser.get(LOCATIONS).status_code for _ in range(4)]
    anonymous_same_ip = client(None, ip=ip).get("/ocpi/versions")
    other_ip = client("wrong-token", ip=fresh_ip()).get(LOCATIONS)
    _, token = make_partner()
    partner_same_ip = client(token, ip=ip).get(LOCATIONS)

    # then: 401s, then 429 for that address only; a partner behind it has its own allowance
    assert answers == [401, 401, 401, 429]
    assert envelope(anonymous_same_ip)["status_code"] == 2000
    assert anonymous_same_ip.status_code == 429
    assert "Retry-After" in anonymous_same_ip
    assert other_ip.status_code == 401
    assert partner_same_ip.status_code == 200


def test_the_client_ip_cannot_be_forged_with_x_forwarded_for(db, rate):
    # given
    rate("2/minute")
    ip = fresh_ip()

    # when: each request claims another origin
    answers = [
        client("wrong", ip=ip).get(LOCATIONS, HTTP_X_FORWARDED_FOR=fresh_ip()).status_code
        for _ in range(3)
    ]

    # then (NUM_PROXIES = 0: only REMOTE_ADDR counts)
    assert answers == [401, 401, 429]


# --- configuration ------------------------------------------------------------------------------
def test_the_allowance_comes_back_after_the_window(make_partner, rate, monkeypatch):
    # given: a partner that used its allowance at t=1000
    rate("2/minute")
    now = [1000.0]
    monkeypatch.setattr(PartnerRateThrottle, "timer", lambda self: now[0])
    _, token = make_partner()
    partner = client(token)
    first = [partner.get(LOCATIONS).status_code for _ in range(3)]

    # when
    now[0] += 61
    later = partner.get(LOCATIONS).status_code

    # then
    assert first == [200, 200, 429]
    assert later == 200


def test_an_empty_rate_means_no_limit(make_partner, rate):
    # given
    rate("")
    _, token = make_partner()

    # when
    answers = {client(token).get("/ocpi/versions").status_code for _ in range(10)}

    # then
    assert answers == {200}


def test_an_unreachable_cache_lets_requests_through(make_partner, rate, monkeypatch, caplog):
    # given
    rate("1/minute")
    _, token = make_partner()

    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(PartnerRateThrottle.cache, "get", broken)

    # when
    answers = [client(token).get(LOCATIONS).status_code for _ in range(3)]

    # then
    assert answers == [200, 200, 200]
    assert "Rate limit cache unavailable" in caplog.text


def _settings_with(monkeypatch, **env) -> dict:
    """cpo_platform/settings.py evaluated afresh under `env` (as a new process would)."""
    for name in ("CACHE_URL", "REDIS_URL", "OCPI_RATE_LIMIT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(REPO / "cpo_platform" / "settings.py"))


def test_the_cache_is_redis_when_a_cache_url_is_set(monkeypatch):
    # when
    with_redis = _settings_with(monkeypatch, CACHE_URL="redis://127.0.0.1:6379/1")
    with_redis_url = _settings_with(monkeypatch, REDIS_URL="redis://127.0.0.1:6379/2")
    without = _settings_with(monkeypatch)

    # then
    redis = with_redis["CACHES"]["default"]
    assert redis["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert redis["LOCATION"] == "redis://127.0.0.1:6379/1"
    assert with_redis_url["CACHES"]["default"]["LOCATION"] == "redis://127.0.0.1:6379/2"
    local = without["CACHES"]["default"]["BACKEND"]
    assert local == "django.core.cache.backends.locmem.LocMemCache"
    assert without["OCPI_RATE_LIMIT"] == "600/minute"
    throttles = without["REST_FRAMEWORK"]["DEFAULT_THROTTLE_CLASSES"]
    assert throttles == ["ocpi.throttling.PartnerRateThrottle"]


# --- request body size --------------------------------------------------------------------------
def test_a_body_over_the_limit_is_413_in_the_envelope_and_changes_nothing(make_partner, settings):
    # given
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    _, token = make_partner(country_code="DE", party_id="EMS")
    body = json.dumps({"uid": "T1", "padding": "x" * 2000})

    # when
    response = client(token).put(
        "/ocpi/cpo/2.2.1/tokens/DE/EMS/T1",
        data=body,
        content_type="application/json",
        HTTP_X_REQUEST_ID="big-1",
    )

    # then
    assert response.status_code == 413
    answer = envelope(response)
    assert answer["status_code"] == 2001
    assert "1000 bytes" in answer["status_message"]
    assert response["X-Request-ID"] == "big-1"
    assert not Token.objects.exists()


def test_a_body_within_the_limit_is_read_as_usual(make_partner, settings):
    # given
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    _, token = make_partner(country_code="DE", party_id="EMS")

    # when: a body under the limit that is not a valid token
    response = client(token).put(
        "/ocpi/cpo/2.2.1/tokens/DE/EMS/T1", data=json.dumps({"uid": "T1"}), content_type="x/y"
    )

    # then: it reached the view (a 2001 about the token, not about the size)
    assert response.status_code == 400
    assert "bytes" not in envelope(response)["status_message"]


def test_the_body_limit_holds_before_authentication(db, settings):
    # given
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100

    # when
    response = APIClient().post("/ocpi/2.2.1/credentials", data="x" * 101, content_type="a/b")

    # then
    assert (response.status_code, envelope(response)["status_code"]) == (413, 2001)
