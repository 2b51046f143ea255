"""The partner admin: list, add (token A), register, and the actions, as a superuser."""

import base64
import re

import pytest
import requests
from django.contrib.messages import get_messages
from rest_framework.test import APIClient

from ocpi import tokens
from ocpi.models import Partner, PartnerRole
from ocpi.services import partner_create

CHANGELIST = "/admin/ocpi/partner/"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Hashing the admin user's password the production way costs about a second per test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def token_a_in(text: str) -> str:
    return re.search(r"Token A for [^:]+: (\S+)", text).group(1)


def versions_status(token: str) -> int:
    client = APIClient()
    header = "Token " + tokens.encode_for_header(token, base64_encoded=True)
    return client.get("/ocpi/versions", HTTP_AUTHORIZATION=header).status_code


def act(client, action: str, *partners: Partner):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [p.pk for p in partners]},
        follow=True,
    )


def test_changelist_shows_status_version_and_parties_with_filters(admin_client, make_partner):
    # given
    make_partner("Alpha Mobility", country_code="DE", party_id="ALP")
    partner_create(name="Beta Charge")

    # when
    everything = admin_client.get(CHANGELIST)
    pending = admin_client.get(CHANGELIST, {"status__exact": "PENDING"})
    searched = admin_client.get(CHANGELIST, {"q": "ALP"})

    # then
    assert everything.status_code == 200
    page = everything.content.decode()
    for text in ("Alpha Mobility", "Beta Charge", "EMSP DE*ALP", "2.2.1"):
        assert text in page
    assert "Register with a partner" in page
    assert [p.name for p in pending.context["cl"].result_list] == ["Beta Charge"]
    assert [p.name for p in searched.context["cl"].result_list] == ["Alpha Mobility"]


def test_adding_a_partner_shows_its_token_a_once(admin_client):
    # given
    form = {
        "name": "New eMSP",
        "token_encoding": "BASE64",
        "page_size": 100,
        "request_timeout": 30,
        "send_routing_headers": "on",
        "roles-TOTAL_FORMS": 0,
        "roles-INITIAL_FORMS": 0,
    }

    # when
    response = admin_client.post("/admin/ocpi/partner/add/", form, follow=True)

    # then
    shown = [m for m in messages_of(response) if "Token A for New eMSP" in m]
    assert len(shown) == 1
    assert "http://testserver/ocpi/versions" in shown[0]
    token_a = token_a_in(shown[0])
    partner = Partner.objects.get(name="New eMSP")
    assert partner.status == Partner.Status.PENDING
    assert versions_status(token_a) == 200
    change_page = admin_client.get(f"/admin/ocpi/partner/{partner.pk}/change/").content.decode()
    assert token_a not in change_page
    assert "token A issued" in change_page


def test_change_page_shows_endpoints_and_roles_but_no_token(admin_client, make_partner):
    # given
    url = "http://127.0.0.1:9/ocpi/emsp/2.2.1/cdrs"
    partner, token = make_partner(
        endpoints=[{"identifier": "cdrs", "role": "RECEIVER", "url": url}]
    )

    # when
    page = admin_client.get(f"/admin/ocpi/partner/{partner.pk}/change/").content.decode()

    # then
    for text in (url, "RECEIVER", "EMSP DE*EMS", "Partner One"):
        assert text in page
    for secret in (
        token,
        partner.outbound_token,
        partner.outbound_token_encrypted,
        partner.inbound_token_digest,
    ):
        assert secret not in page


def test_create_token_a_action_reissues_for_an_unregistered_partner(admin_client, make_partner):
    # given
    partner, old_token = make_partner(status=Partner.Status.UNREGISTERED)
    registered, _ = make_partner("Registered One", party_id="REG")

    # when
    response = act(admin_client, "issue_token_a", partner, registered)

    # then
    shown = messages_of(response)
    token_a = token_a_in(next(m for m in shown if "Token A for Partner One" in m))
    assert any("Registered One" in m and "not registered" in m for m in shown)
    partner.refresh_from_db()
    assert partner.status == Partner.Status.PENDING
    assert versions_status(token_a) == 200
    assert versions_status(old_token) == 401


def test_suspend_and_reactivate_actions(admin_client, make_partner):
    # given
    partner, token = make_partner()

    # when
    act(admin_client, "suspend", partner)

    # then
    partner.refresh_from_db()
    assert partner.status == Partner.Status.SUSPENDED
    assert versions_status(token) == 401

    # when
    response = act(admin_client, "reactivate", partner)

    # then
    partner.refresh_from_db()
    assert partner.status == Partner.Status.REGISTERED
    assert versions_status(token) == 200
    assert any("reactivated" in m for m in messages_of(response))


def test_reactivating_a_registered_partner_is_refused(admin_client, make_partner):
    # given
    partner, _ = make_partner()

    # when
    response = act(admin_client, "reactivate", partner)

    # then
    assert any("not suspended" in m for m in messages_of(response))
    partner.refresh_from_db()
    assert partner.status == Partner.Status.REGISTERED


def test_unregister_action_tells_the_partner_and_ends_the_tokens(admin_client, make_partner, emsp):
    # given
    credentials_url = f"{emsp.base_url}/ocpi/2.2.1/credentials"
    partner, token = make_partner(
        endpoints=[{"identifier": "credentials", "role": "RECEIVER", "url": credentials_url}]
    )
    emsp.accepted_tokens.add(partner.outbound_token)

    # when
    response = act(admin_client, "unregister", partner)

    # then
    partner.refresh_from_db()
    assert partner.status == Partner.Status.UNREGISTERED
    assert versions_status(token) == 401
    assert [r.method for r in emsp.received(path_prefix="/ocpi/2.2.1/credentials")] == ["DELETE"]
    assert any("Partner One: unregistered." in m for m in messages_of(response))


def test_unregister_action_warns_when_the_partner_does_not_answer(admin_client, make_partner):
    # given: the partner's credentials endpoint does not answer
    url = "http://127.0.0.1:9/ocpi/2.2.1/credentials"
    partner, _ = make_partner(
        endpoints=[{"identifier": "credentials", "role": "RECEIVER", "url": url}]
    )

    # when
    response = act(admin_client, "unregister", partner)

    # then
    partner.refresh_from_db()
    assert partner.status == Partner.Status.UNREGISTERED
    assert any("did not acknowledge" in m for m in messages_of(response))


def test_register_with_partner_page_and_rotate_action(admin_client, live_server, settings, emsp):
    # given
    settings.OCPI_BASE_URL = live_server.url
    form = admin_client.get("/admin/ocpi/partner/register/")
    assert form.status_code == 200
    assert f"{live_server.url}/ocpi/versions" in form.content.decode()

    # when: staff register with the eMSP
    response = admin_client.post(
        "/admin/ocpi/partner/register/",
        {"name": "Test eMSP", "versions_url": emsp.versions_url, "token": emsp.token_a},
        follow=True,
    )

    # then
    partner = Partner.objects.get(name="Test eMSP")
    assert response.redirect_chain[-1][0] == f"/admin/ocpi/partner/{partner.pk}/change/"
    assert partner.status == Partner.Status.REGISTERED
    assert partner.outbound_token in emsp.accepted_tokens
    token_b = emsp.token_for_cpo

    # when: staff rotate the credentials
    response = act(admin_client, "rotate_credentials", partner)

    # then
    assert any("credentials rotated" in m for m in messages_of(response))
    partner.refresh_from_db()
    assert partner.outbound_token in emsp.accepted_tokens
    assert emsp.token_for_cpo != token_b
    versions = f"{live_server.url}/ocpi/versions"
    for token, expected in ((token_b, 401), (emsp.token_for_cpo, 200)):
        header = {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}
        assert requests.get(versions, headers=header, timeout=10).status_code == expected


def test_register_page_shows_the_partners_error(admin_client, transactional_db, emsp):
    # given
    emsp.versions_offered = ["2.0"]

    # when
    response = admin_client.post(
        "/admin/ocpi/partner/register/",
        {"name": "Test eMSP", "versions_url": emsp.versions_url, "token": emsp.token_a},
    )

    # then
    assert response.status_code == 200
    assert "No mutual version" in response.content.decode()
    assert not Partner.objects.exists()


def test_rotate_action_reports_a_partner_without_credentials_endpoint(
    admin_client, transactional_db
):
    # given: a registered partner whose details listed no credentials endpoint
    partner = Partner.objects.create(name="Odd eMSP", status=Partner.Status.REGISTERED)
    PartnerRole.objects.create(partner=partner, country_code="DE", party_id="ODD")

    # when
    response = act(admin_client, "rotate_credentials", partner)

    # then
    assert any("no credentials endpoint" in m for m in messages_of(response))


def test_staff_without_admin_rights_cannot_register(client, django_user_model, db):
    # given
    user = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(user)

    # when
    response = client.get("/admin/ocpi/partner/register/")

    # then
    assert response.status_code == 403
