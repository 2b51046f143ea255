"""The token admin: tokens per partner, search, filters, and staff's block / unblock."""

from datetime import UTC, datetime

import pytest
from django.contrib.messages import get_messages

from billing.models import Token
from billing.tokens import token_upsert

CHANGELIST = "/admin/billing/token/"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def cache(partner, uid: str, **overrides) -> Token:
    role = partner.roles.get()
    data = {
        "country_code": role.country_code,
        "party_id": role.party_id,
        "uid": uid,
        "type": "RFID",
        "contract_id": f"{role.country_code}-{role.party_id}-{uid}",
        "visual_number": f"CARD {uid}",
        "issuer": partner.name,
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": datetime(2025, 1, 1, tzinfo=UTC),
    } | overrides
    return token_upsert(partner=partner, data=data).token


@pytest.fixture
def two_partners(make_partner):
    first, _ = make_partner("First eMSP")
    second, _ = make_partner("Second eMSP", country_code="FR", party_id="XYZ")
    cache(first, "AAA111")
    cache(first, "AAA222", valid=False)
    cache(second, "BBB111", whitelist="NEVER")
    return first, second


def uids_in(response) -> set[str]:
    return {t.uid for t in response.context["cl"].result_list}


def test_changelist_searches_and_filters_per_partner(admin_client, two_partners):
    # given
    first, second = two_partners
    # when
    everything = admin_client.get(CHANGELIST)
    of_second = admin_client.get(CHANGELIST, {"partner__id__exact": second.pk})
    by_contract = admin_client.get(CHANGELIST, {"q": "DE-EMS-AAA2"})
    by_visual_number = admin_client.get(CHANGELIST, {"q": "CARD BBB111"})
    invalid = admin_client.get(CHANGELIST, {"valid__exact": "0"})
    never = admin_client.get(CHANGELIST, {"whitelist__exact": "NEVER"})
    # then
    assert everything.status_code == 200
    assert uids_in(everything) == {"AAA111", "AAA222", "BBB111"}
    assert "DE*EMS" in everything.content.decode()
    assert uids_in(of_second) == {"BBB111"}
    assert uids_in(by_contract) == {"AAA222"}
    assert uids_in(by_visual_number) == {"BBB111"}
    assert uids_in(invalid) == {"AAA222"}
    assert uids_in(never) == {"BBB111"}


def test_block_and_unblock_actions(admin_client, two_partners):
    # given
    tokens = Token.objects.filter(uid__in=["AAA111", "BBB111"])
    selected = [t.pk for t in tokens]
    # when
    blocked = admin_client.post(
        CHANGELIST, {"action": "block", "_selected_action": selected}, follow=True
    )
    # then
    assert [str(m) for m in get_messages(blocked.wsgi_request)] == ["2 token(s) blocked."]
    assert set(Token.objects.filter(blocked=True).values_list("uid", flat=True)) == {
        "AAA111",
        "BBB111",
    }
    assert uids_in(admin_client.get(CHANGELIST, {"blocked__exact": "1"})) == {"AAA111", "BBB111"}
    # when
    unblocked = admin_client.post(
        CHANGELIST, {"action": "unblock", "_selected_action": selected[:1]}, follow=True
    )
    # then
    assert [str(m) for m in get_messages(unblocked.wsgi_request)] == ["1 token(s) unblocked."]
    assert Token.objects.filter(blocked=True).count() == 1


def test_staff_can_read_but_not_edit_add_or_delete_a_token(admin_client, two_partners):
    # given
    token = Token.objects.get(uid="AAA111")
    url = f"{CHANGELIST}{token.pk}/change/"
    # when
    page = admin_client.get(url)
    admin_client.post(url, {"contract_id": "CHANGED", "blocked": "on"})
    add = admin_client.get(f"{CHANGELIST}add/")
    delete = admin_client.get(f"{CHANGELIST}{token.pk}/delete/")
    # then
    assert page.status_code == 200
    assert "DE-EMS-AAA111" in page.content.decode()
    token.refresh_from_db()
    assert (token.contract_id, token.blocked) == ("DE-EMS-AAA111", False)
    assert add.status_code == 403
    assert delete.status_code == 403
