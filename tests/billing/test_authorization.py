"""Authorization of a token presented at one of our chargers (PROTOCOL.md §4.5, §10.12): the
whitelist table, and real-time authorization over real HTTP at the test eMSP's tokens Sender."""

import time
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from billing.models import Token
from billing.seams import TokenUnknownToPartner, registry
from billing.tokens import UNKNOWN, token_authorize, token_block, token_upsert
from ocpi.authorize import realtime_authorize
from ocpi.models import Partner
from tests.emsp_server import EMSPServer
from tests.factories import EVSEFactory

pytestmark = pytest.mark.django_db

AUTHORIZE = "/ocpi/emsp/2.2.1/tokens/"


def emsp_token(uid: str = "04A1B2C3D4", **overrides) -> dict:
    return {
        "country_code": "DE",
        "party_id": "EMS",
        "uid": uid,
        "type": "RFID",
        "contract_id": "DE-EMS-C00001",
        "issuer": "Test eMSP",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2025-01-01T00:00:00Z",
    } | overrides


@pytest.fixture(autouse=True)
def _short_authorize_timeout(settings):
    settings.OCPI_AUTHORIZE_TIMEOUT = 0.5


@pytest.fixture
def emsp():
    server = EMSPServer()
    server.timeout_seconds = 2.0
    yield server
    server.stop()


@pytest.fixture
def partner(make_partner, emsp):
    """A registered eMSP (DE*EMS) with a tokens SENDER; its ordinary timeout is long (30 s)."""
    partner, _ = make_partner(
        "Test eMSP",
        endpoints=[{"identifier": "tokens", "role": "SENDER", "url": emsp.endpoint("tokens")}],
        request_timeout=30.0,
    )
    emsp.accepted_tokens.add(partner.outbound_token)
    return partner


@pytest.fixture
def evse():
    return EVSEFactory(uid="EVSE-1", location__ocpi_id="LOC1")


def cache(partner: Partner, **overrides) -> Token:
    """Store a token as if the eMSP had pushed it."""
    data = emsp_token(**overrides)
    data["last_updated"] = datetime.fromisoformat(data["last_updated"].replace("Z", "+00:00"))
    return token_upsert(partner=partner, data=data).token


def authorize_calls(emsp: EMSPServer) -> list:
    return [
        r for r in emsp.received("POST", AUTHORIZE) if r.path.split("?")[0].endswith("/authorize")
    ]


# -- real-time answers -----------------------------------------------------------------------------
def test_allowed_with_authorization_reference(partner, emsp, evse):
    # given
    token = cache(partner)
    emsp.authorize_as("04A1B2C3D4", "ALLOWED", authorization_reference="AUTH-REF-1")
    # when
    decision = token_authorize(uid="04A1B2C3D4", token_type="RFID", evse=evse)
    # then
    assert decision.authorized
    assert decision.allowed == "ALLOWED"
    assert decision.auth_method == "AUTH_REQUEST"
    assert decision.authorization_reference == "AUTH-REF-1"
    assert decision.token == token
    assert decision.partner == partner
    # and the eMSP got POST {uid}/authorize?type=RFID with the LocationReferences
    (call,) = authorize_calls(emsp)
    url = urlsplit(call.path)
    assert url.path == f"{AUTHORIZE}04A1B2C3D4/authorize"
    assert parse_qs(url.query) == {"type": ["RFID"]}
    assert call.body == {"location_id": "LOC1", "evse_uids": ["EVSE-1"]}
    assert call.headers["Content-Type"] == "application/json"
    assert call.headers["X-Request-ID"]


@pytest.mark.parametrize("allowed", ["BLOCKED", "EXPIRED", "NO_CREDIT", "NOT_ALLOWED"])
def test_the_emsps_refusals_deny(partner, emsp, evse, allowed):
    # given: our cache still says valid
    cache(partner)
    emsp.authorize_as("04A1B2C3D4", allowed)
    # when
    decision = token_authorize(uid="04A1B2C3D4", evse=evse)
    # then
    assert not decision.authorized
    assert decision.allowed == allowed
    assert decision.auth_method == "AUTH_REQUEST"
    assert len(authorize_calls(emsp)) == 1


def test_an_allowed_type_we_do_not_know_denies(partner, emsp, evse):
    # given
    cache(partner)
    emsp.authorize_as("04A1B2C3D4", "MAYBE_LATER")
    # when
    decision = token_authorize(uid="04A1B2C3D4", evse=evse)
    # then
    assert not decision.authorized
    assert decision.allowed == "NOT_ALLOWED"


def test_allowed_only_at_other_evses_is_not_allowed_here(partner, emsp, evse):
    # given
    cache(partner)
    emsp.authorize_as(
        "04A1B2C3D4", "ALLOWED", location={"location_id": "LOC1", "evse_uids": ["EVSE-2"]}
    )
    # when
    decision = token_authorize(uid="04A1B2C3D4", evse=evse)
    # then
    assert not decision.authorized
    assert decision.allowed == "NOT_ALLOWED"


@pytest.mark.parametrize(
    ("location", "authorized"),
    [
        ({"location_id": "loc1", "evse_uids": ["evse-1", "EVSE-2"]}, True),
        ({"location_id": "LOC1"}, True),  # the whole location
        ({"location_id": "LOC2", "evse_uids": ["EVSE-1"]}, False),  # another location
    ],
)
def test_location_restriction_is_matched_case_insensitively(
    partner, emsp, evse, location, authorized
):
    # given
    cache(partner)
    emsp.authorize_as("04A1B2C3D4", "ALLOWED", location=location)
    # when
    decision = token_authorize(uid="04A1B2C3D4", evse=evse)
    # then
    assert decision.authorized is authorized


def test_token_unknown_to_the_emsp_is_denied(partner, emsp, evse):
    # given: cached here, but the eMSP answers 404 / 2004
    cache(partner)
    # when
    decision = token_authorize(uid="04A1B2C3D4", evse=evse)
    # then
    assert not decision.authorized
    assert decision.allowed == UNKNOWN
    assert decision.auth_method == "AUTH_REQUEST"
    assert len(authorize_calls(emsp)) == 1


def test_the_authorizer_maps_2004_to_token_unknown(partner, emsp, evse):
    # given
    token = cache(partner)
    # when / then: straight at the seam's callable
    with pytest.raises(TokenUnknownToPartner):
        realtime_authorize(partner, token, evse.location, evse)
    assert registry.realtime_authorizer is realtime_authorize


def test_a_newer_token_in_the_answer_refreshes_the_cache(partner, emsp, evse):
    # given
    cache(partner)
    newer = emsp_token(
        whitelist="NEVER", contract_id="DE-EMS-NEW", last_updated="2026-01-01T00:00:00Z"
    )
    emsp.authorize_as("04A1B2C3D4", "ALLOWED", token=newer)
    # when
    decision = token_authorize(uid="04A1B2C3D4", evse=evse)
    # then
    assert decision.authorized
    stored = Token.objects.get()
    assert (stored.whitelist, stored.contract_id) == ("NEVER", "DE-EMS-NEW")
    assert decision.token.contract_id == "DE-EMS-NEW"


def test_app_user_tokens_are_asked_with_their_type(partner, emsp, evse):
    # given
    cache(partner, uid="APP-USER-7", type="APP_USER", whitelist="NEVER")
    emsp.authorize_as("APP-USER-7", "ALLOWED", token_type="APP_USER")
    # when
    decision = token_authorize(uid="app-user-7", token_type="APP_USER", evse=evse)
    # then
    assert decision.authorized
    assert parse_qs(urlsplit(authorize_calls(emsp)[0].path).query) == {"type": ["APP_USER"]}


@pytest.mark.parametrize("whitelist", ["ALLOWED", "ALLOWED_OFFLINE", "NEVER"])
def test_an_invalid_token_is_still_asked_in_real_time(partner, emsp, evse, whitelist):
    # given: the eMSP invalidated the token, then enabled it again (§10.12)
    cache(partner, valid=False, whitelist=whitelist)
    emsp.authorize_as("04A1B2C3D4", "ALLOWED", authorization_reference="R2")
    # when
    decision = token_authorize(uid="04A1B2C3D4", evse=evse)
    # then
    assert decision.authorized
    assert decision.authorization_reference == "R2"


# -- the eMSP cannot answer: the whitelist fallback ------------------------------------------------
@pytest.fixture(params=["stopped", "timeout", "http500", "ocpi3000", "not-authorization-info"])
def emsp_down(request, emsp):
    """The eMSP unable to answer, each way it can fail."""
    if request.param == "stopped":
        emsp.stop()
    elif request.param == "not-authorization-info":
        emsp.authorize_as("04A1B2C3D4", "ALLOWED")
        del emsp.authorizations[("04A1B2C3D4", "RFID")]["allowed"]
    else:
        emsp.mode = request.param
    return request.param


@pytest.mark.parametrize(
    ("whitelist", "valid", "allowed"),
    [
        ("ALLOWED", True, "ALLOWED"),  # from the cache
        ("ALLOWED", False, "BLOCKED"),
        ("ALLOWED_OFFLINE", True, "ALLOWED"),
        ("ALLOWED_OFFLINE", False, "BLOCKED"),  # the eMSP's own "invalid" stands
        ("NEVER", True, "NOT_ALLOWED"),
    ],
)
def test_partner_unreachable_falls_back_on_the_whitelist(
    partner, emsp, emsp_down, evse, whitelist, valid, allowed
):
    # given
    cache(partner, whitelist=whitelist, valid=valid)
    # when
    started = time.monotonic()
    decision = token_authorize(uid="04A1B2C3D4", evse=evse)
    elapsed = time.monotonic() - started
    # then
    assert decision.allowed == allowed
    assert decision.authorized is (allowed == "ALLOWED")
    assert decision.auth_method == "WHITELIST"
    assert decision.authorization_reference == ""
    assert "unreachable" in decision.reason
    # and a slow eMSP costs the driver OCPI_AUTHORIZE_TIMEOUT, not the partner's 30 s
    assert elapsed < 1.5


def test_partner_without_tokens_sender_falls_back_on_the_whitelist(make_partner, evse):
    # given
    partner, _ = make_partner("No sender")
    cache(partner, whitelist="ALLOWED_OFFLINE")
    # when
    decision = token_authorize(uid="04A1B2C3D4", evse=evse)
    # then
    assert decision.authorized
    assert decision.auth_method == "WHITELIST"


# -- decided without asking ------------------------------------------------------------------------
@pytest.mark.parametrize(("valid", "allowed"), [(True, "ALLOWED"), (False, "BLOCKED")])
def test_whitelist_always_never_calls_the_partner(partner, emsp, evse, valid, allowed):
    # given: the eMSP would say otherwise, if asked
    cache(partner, whitelist="ALWAYS", valid=valid)
    emsp.authorize_as("04A1B2C3D4", "BLOCKED" if valid else "ALLOWED")
    # when
    decision = token_authorize(uid="04A1B2C3D4", evse=evse)
    # then
    assert decision.allowed == allowed
    assert decision.auth_method == "WHITELIST"
    assert emsp.received("POST") == []


def test_a_token_blocked_by_our_staff_is_denied_without_asking(partner, emsp, evse):
    # given
    token = cache(partner, whitelist="NEVER")
    emsp.authorize_as("04A1B2C3D4", "ALLOWED")
    token_block(token=token)
    # when
    decision = token_authorize(uid="04A1B2C3D4", evse=evse)
    # then
    assert decision.allowed == "BLOCKED"
    assert emsp.received("POST") == []


def test_an_unknown_token_is_denied_without_asking(partner, emsp, evse):
    # given: the eMSP knows it, we do not (no guessing which partner to ask)
    emsp.tokens = [emsp_token("UNSEEN")]
    # when
    decision = token_authorize(uid="UNSEEN", evse=evse)
    # then
    assert decision.allowed == UNKNOWN
    assert decision.token is None
    assert not decision.authorized
    assert emsp.received("POST") == []


def test_a_token_of_a_suspended_partner_is_denied_without_asking(partner, emsp, evse):
    # given
    cache(partner, whitelist="ALWAYS")
    Partner.objects.filter(pk=partner.pk).update(status=Partner.Status.SUSPENDED)
    # when
    decision = token_authorize(uid="04A1B2C3D4", evse=evse)
    # then
    assert decision.allowed == "NOT_ALLOWED"
    assert emsp.received("POST") == []


def test_the_uid_is_matched_case_insensitively_and_by_type(partner, emsp, evse):
    # given
    cache(partner, uid="04a1b2c3d4", whitelist="ALWAYS")
    # when
    rfid = token_authorize(uid="04A1B2C3D4", token_type="RFID", evse=evse)
    app = token_authorize(uid="04A1B2C3D4", token_type="APP_USER", evse=evse)
    # then
    assert rfid.authorized
    assert app.allowed == UNKNOWN


def test_of_two_partners_with_the_same_uid_the_usable_token_decides(make_partner, emsp, evse):
    # given: the same card uid at two eMSPs, one of them blocked by our staff
    first, _ = make_partner("First")
    second, _ = make_partner("Second", country_code="FR", party_id="XYZ")
    token_block(token=cache(first, whitelist="ALWAYS"))
    cache(second, country_code="FR", party_id="XYZ", whitelist="ALWAYS")
    # when
    decision = token_authorize(uid="04A1B2C3D4", evse=evse)
    # then
    assert decision.authorized
    assert decision.partner == second
