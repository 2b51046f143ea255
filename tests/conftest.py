"""Shared fixtures: settings for tests, partners with real tokens, an OCPI API client."""

import pytest
from rest_framework.test import APIClient

from ocpi import tokens, traffic
from ocpi.models import Partner, PartnerRole
from tests.emsp_server import EMSPServer


@pytest.fixture(autouse=True)
def _ocpi_settings(settings):
    settings.OCPI_BASE_URL = "http://testserver"
    settings.OCPI_COUNTRY_CODE = "NL"
    settings.OCPI_PARTY_ID = "CPO"
    settings.OCPI_EXTRA_ROLES = ""
    settings.OCPI_MAX_PAGE_SIZE = 100
    # The rate limit's counters live in a cache shared by every test of the run (tests of the
    # limit itself set their own rate: tests/ocpi/test_rate_limit.py).
    settings.OCPI_RATE_LIMIT = ""


@pytest.fixture(autouse=True)
def _traffic_log_rows_stay_in_their_test():
    """Traffic log rows collected inside a test's transaction are written only if the test runs
    its on_commit callbacks; whatever is left must not leak into the next test (ocpi.traffic)."""
    yield
    traffic.discard_pending()


@pytest.fixture
def make_partner(db):
    """A registered partner with a real inbound token; returns (partner, token)."""

    def make(name="Partner One", *, country_code="DE", party_id="EMS", version="2.2.1", **kw):
        token = tokens.new_token()
        partner = Partner.objects.create(
            name=name,
            status=kw.pop("status", Partner.Status.REGISTERED),
            version=version,
            versions_url=kw.pop("versions_url", "http://127.0.0.1:9/ocpi/versions"),
            endpoints=kw.pop("endpoints", []),
            **kw,
        )
        partner.set_inbound_token(token)
        partner.set_outbound_token(tokens.new_token())
        partner.save()
        PartnerRole.objects.create(
            partner=partner,
            role="EMSP",
            country_code=country_code,
            party_id=party_id,
            business_details={"name": name},
        )
        return partner, token

    return make


@pytest.fixture
def partner_and_token(make_partner):
    return make_partner()


@pytest.fixture
def ocpi_client(partner_and_token):
    """An APIClient authenticated as a registered partner (2.2.1 Base64 token form)."""
    _, token = partner_and_token
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION="Token " + tokens.encode_for_header(token, base64_encoded=True)
    )
    return client


@pytest.fixture
def emsp():
    """A real eMSP on 127.0.0.1 (tests/emsp_server.py); a module may define its own."""
    server = EMSPServer()
    yield server
    server.stop()


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run a block and the on_commit callbacks it registered, as a commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
