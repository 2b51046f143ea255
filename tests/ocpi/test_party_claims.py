"""A party (country_code + party_id) belongs to one partner (PROTOCOL.md §1.12, §3.1).

A partner's credentials (POST or PUT to us, or the reply to our own POST/PUT) may not list a
party that another partner holds, unless that partner is unregistered: otherwise the claimer
could push tokens under the other's party. Refusals answer 2001 (HTTP 400) and change nothing;
a party is compared case-insensitively and whatever the role it is listed under, as every
ownership check compares it.

The partner's side of the callbacks is a real EMSPServer on 127.0.0.1. The CPO-initiated tests
need our server reachable (pytest-django's live_server, committed data), the others run in a
rolled-back transaction.
"""

import json

import pytest
from rest_framework.test import APIClient

from billing.models import Token
from ocpi import tokens
from ocpi.models import Partner, PartnerRole
from ocpi.services import (
    PartyHeldByAnotherPartner,
    credentials_rotate,
    partner_create,
    partner_token_a_issue,
    partner_unregister,
    register_with_partner,
)
from tests.contract import examples_dir, validate_response
from tests.emsp_server import EMSPServer

CREDENTIALS_URL = "/ocpi/2.2.1/credentials"
TOKENS = "/ocpi/cpo/2.2.1/tokens"


def a_token(**changes) -> dict:
    """The spec's full RFID Token, under A's party DE*EMS."""
    body = json.loads((examples_dir() / "token_example_2_full_rfid.json").read_text())
    return body | {"country_code": "DE", "party_id": "EMS", "uid": "TOKA1", **changes}


def call(method: str, path: str, token: str, body=None, *, base64_encoded: bool = True):
    client = APIClient()
    header = "Token " + tokens.encode_for_header(token, base64_encoded=base64_encoded)
    if method == "GET":
        return client.get(path, HTTP_AUTHORIZATION=header)
    return getattr(client, method.lower())(
        path, data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=header
    )


def role(country_code: str, party_id: str, kind: str = "EMSP") -> dict:
    return {
        "role": kind,
        "business_details": {"name": f"Party {party_id}"},
        "party_id": party_id,
        "country_code": country_code,
    }


def credentials(emsp: EMSPServer, token: str, *roles: dict) -> dict:
    return {"token": token, "url": emsp.versions_url, "roles": list(roles)}


def world() -> dict:
    """Every partner (status, tokens, version, endpoints), every role and every token."""
    return {
        "partners": list(Partner.objects.order_by("pk").values()),
        "roles": list(PartnerRole.objects.order_by("pk").values()),
        "tokens": list(Token.objects.order_by("pk").values()),
    }


def parties(partner: Partner) -> list[tuple[str, str, str]]:
    return list(partner.roles.order_by("pk").values_list("role", "country_code", "party_id"))


def assert_refused(response, *, party: str, method: str) -> None:
    assert response.status_code == 400
    body = response.json()
    assert body["status_code"] == 2001
    assert party in body["status_message"]
    assert "eMSP A" not in body["status_message"]  # who holds it is none of the claimer's business
    validate_response(body, "credentials/interface", "/credentials", method, 400)


@pytest.fixture
def emsp():
    server = EMSPServer(country_code="BE", party_id="BMS", name="eMSP B")
    yield server
    server.stop()


@pytest.fixture
def holder(make_partner):
    """eMSP A, registered, holding DE*EMS, with a token under it: (partner, token)."""
    partner, token = make_partner("eMSP A", country_code="DE", party_id="EMS")
    assert call("PUT", f"{TOKENS}/DE/EMS/TOKA1", token, a_token()).status_code == 201
    return partner, token


@pytest.fixture
def claimer(make_partner, emsp):
    """eMSP B, registered, holding BE*BMS; its versions URL is the eMSP server: (partner, token)."""
    return make_partner("eMSP B", country_code="BE", party_id="BMS", versions_url=emsp.versions_url)


# -- partner-initiated: POST and PUT to our credentials endpoint ---------------------------------
CLAIMS = {
    "as listed": ("EMSP", "DE", "EMS"),
    "in another case": ("EMSP", "de", "eMs"),
    "under another role": ("OTHER", "DE", "EMS"),
}


@pytest.mark.parametrize("status", ["REGISTERED", "SUSPENDED", "PENDING"])
@pytest.mark.parametrize("claim", CLAIMS.values(), ids=CLAIMS.keys())
def test_post_listing_another_partners_party_is_refused_and_changes_nothing(
    holder, emsp, claim, status
):
    # given: A holds DE*EMS (a partner not unregistered holds its parties); B registers
    Partner.objects.filter(pk=holder[0].pk).update(status=status)
    partner_b, token_a = partner_create(name="eMSP B")
    emsp.accepted_tokens.add("token-b")
    kind, country_code, party_id = claim
    before = world()

    # when
    response = call(
        "POST", CREDENTIALS_URL, token_a,
        credentials(emsp, "token-b", role("BE", "BMS"), role(country_code, party_id, kind)),
    )  # fmt: skip

    # then: refused before calling B back; B is still pending with its token A, A untouched
    assert_refused(response, party=f"{kind} {country_code}*{party_id}", method="post")
    assert world() == before
    assert emsp.received() == []
    assert call("GET", "/ocpi/versions", token_a).status_code == 200


@pytest.mark.parametrize("version", ["2.2.1", "2.1.1"])
def test_put_listing_another_partners_party_is_refused_and_changes_nothing(
    holder, claimer, version
):
    # given: B's eMSP now calls itself DE*EMS, A's party
    partner_b, token = claimer
    emsp = EMSPServer(country_code="DE", party_id="EMS", name="eMSP B", version=version)
    emsp.accepted_tokens.add("new-token-b")
    before = world()

    # when
    try:
        response = call(
            "PUT", f"/ocpi/{version}/credentials", token,
            emsp.credentials_body("new-token-b"), base64_encoded=version != "2.1.1",
        )  # fmt: skip
    finally:
        emsp.stop()

    # then: B keeps its token, version, endpoints and BE*BMS; no new token; A untouched
    assert_refused(response, party="EMSP DE*EMS", method="put")
    assert world() == before
    assert emsp.received() == []
    assert call("GET", "/ocpi/versions", token).status_code == 200
    assert parties(partner_b) == [("EMSP", "BE", "BMS")]


def test_put_keeping_its_own_party_and_adding_anothers_is_refused_whole(holder, claimer, emsp):
    # given
    _, token = claimer
    emsp.accepted_tokens.add("new-token-b")
    before = world()

    # when
    response = call(
        "PUT", CREDENTIALS_URL, token,
        credentials(emsp, "new-token-b", role("BE", "BMS"), role("DE", "EMS")),
    )  # fmt: skip

    # then
    assert_refused(response, party="EMSP DE*EMS", method="put")
    assert world() == before


def test_after_a_refused_claim_the_claimer_still_cannot_put_a_token_under_the_party(
    holder, claimer, emsp
):
    # given: B tried to take A's party
    _, token = claimer
    emsp.accepted_tokens.add("new-token-b")
    refused = call(
        "PUT", CREDENTIALS_URL, token, credentials(emsp, "new-token-b", role("DE", "EMS"))
    )
    assert refused.json()["status_code"] == 2001
    before = world()

    # when: B, still on its old token, pushes a new token and overwrites A's, under DE*EMS
    new = call("PUT", f"{TOKENS}/DE/EMS/TOKB1", token, a_token(uid="TOKB1"))
    overwrite = call("PUT", f"{TOKENS}/DE/EMS/TOKA1", token, a_token(valid=False))
    read = call("GET", f"{TOKENS}/DE/EMS/TOKA1", token)

    # then: the same answer as for any party not its own, and nothing stored
    for response in (new, overwrite, read):
        assert response.status_code == 404
        assert response.json()["status_code"] == 2000
    assert world() == before


def test_put_listing_its_own_party_again_in_any_case_is_fine(holder, make_partner, emsp):
    # given: A (DE*EMS) rotates its credentials, spelling its party in lower case
    partner_a, token = holder
    Partner.objects.filter(pk=partner_a.pk).update(versions_url=emsp.versions_url)
    emsp.accepted_tokens.add("new-token-a")
    make_partner("eMSP C", country_code="FR", party_id="XYZ")  # someone else, elsewhere

    # when
    response = call(
        "PUT", CREDENTIALS_URL, token, credentials(emsp, "new-token-a", role("de", "ems"))
    )

    # then: the same row, now as spelled; the new token works, the old one does not
    assert response.status_code == 200
    assert response.json()["status_code"] == 1000
    assert parties(partner_a) == [("EMSP", "de", "ems")]
    assert call("GET", "/ocpi/versions", response.json()["data"]["token"]).status_code == 200
    assert call("GET", "/ocpi/versions", token).status_code == 401
    assert call("GET", f"{TOKENS}/DE/EMS/TOKA1", response.json()["data"]["token"]).status_code == (
        200
    )


def test_a_partner_registering_anew_keeps_its_own_party(holder, emsp):
    # given: A unregistered and got a new token A; its old role rows are still there
    partner_a, _ = holder
    partner_unregister(partner=partner_a, notify_partner=False)
    token_a = partner_token_a_issue(partner=partner_a)
    emsp.accepted_tokens.add("token-b")

    # when: it registers again with its party
    response = call(
        "POST", CREDENTIALS_URL, token_a, credentials(emsp, "token-b", role("DE", "EMS"))
    )

    # then
    assert response.json()["status_code"] == 1000
    assert parties(partner_a) == [("EMSP", "DE", "EMS")]


def test_an_unregistered_partners_party_may_be_taken(holder, emsp):
    # given: A unregistered; B registers with A's former party
    partner_a, _ = holder
    partner_unregister(partner=partner_a, notify_partner=False)
    partner_b, token_a = partner_create(name="eMSP B")
    emsp.accepted_tokens.add("token-b")

    # when
    response = call(
        "POST", CREDENTIALS_URL, token_a, credentials(emsp, "token-b", role("DE", "EMS"))
    )

    # then: B holds DE*EMS, A no longer does; A's token stays A's
    assert response.json()["status_code"] == 1000
    token_c = response.json()["data"]["token"]
    assert parties(partner_b) == [("EMSP", "DE", "EMS")]
    assert parties(partner_a) == []
    assert Token.objects.get(uid="TOKA1").partner == partner_a
    # B may push its own tokens under DE*EMS
    created = call("PUT", f"{TOKENS}/DE/EMS/TOKB1", token_c, a_token(uid="TOKB1"))
    assert created.status_code == 201
    assert Token.objects.get(uid="TOKB1").partner == partner_b

    # when: A comes back and asks for DE*EMS again
    token_a_again = partner_token_a_issue(partner=partner_a)
    again = call("POST", CREDENTIALS_URL, token_a_again, credentials(emsp, "x", role("DE", "EMS")))

    # then: it is B's now
    assert_refused(again, party="EMSP DE*EMS", method="post")
    assert Partner.objects.get(pk=partner_a.pk).status == Partner.Status.PENDING


# -- CPO-initiated: the roles in the partner's reply to our POST / PUT ----------------------------
@pytest.fixture
def cpo(live_server, settings):
    """Our server, reachable over HTTP for the eMSP's callbacks (committed data)."""
    settings.OCPI_BASE_URL = live_server.url


def test_registering_with_a_partner_that_lists_another_partners_party_fails(cpo, holder):
    # given: the eMSP we register with calls itself DE*EMS, A's party
    emsp = EMSPServer(country_code="DE", party_id="EMS", name="eMSP B")
    before = world()

    # when
    try:
        with pytest.raises(PartyHeldByAnotherPartner) as refused:
            register_with_partner(name="eMSP B", versions_url=emsp.versions_url, token=emsp.token_a)
    finally:
        emsp.stop()

    # then: the error tells staff which party and who holds it; nothing of B is kept
    assert "EMSP DE*EMS is held by partner eMSP A" in str(refused.value)
    assert refused.value.ocpi_status == 2001
    assert world() == before
    # the eMSP had registered us: we withdrew, with the token it gave us, and its token for us
    # (our token B) opens nothing
    (delete,) = emsp.received("DELETE", "/ocpi/2.2.1/credentials")
    (post,) = emsp.received("POST", "/ocpi/2.2.1/credentials")
    token_b = post.json["token"]
    assert emsp.token_for_cpo == token_b
    assert call("GET", "/ocpi/versions", token_b).status_code == 401


def test_a_rotation_whose_reply_lists_another_partners_party_keeps_the_roles(cpo, holder):
    # given: registered with B (BE*BMS); then B's eMSP calls itself DE*EMS, A's party
    emsp = EMSPServer(country_code="BE", party_id="BMS", name="eMSP B")
    try:
        partner_b = register_with_partner(
            name="eMSP B", versions_url=emsp.versions_url, token=emsp.token_a
        )
        emsp.country_code = "DE"
        emsp.party_id = "EMS"
        roles_before = list(PartnerRole.objects.order_by("pk").values())

        # when
        with pytest.raises(PartyHeldByAnotherPartner) as refused:
            credentials_rotate(partner=partner_b)
    finally:
        emsp.stop()

    # then: the tokens rotated on both sides (each already uses the new ones); roles unchanged
    assert "EMSP DE*EMS is held by partner eMSP A" in str(refused.value)
    assert list(PartnerRole.objects.order_by("pk").values()) == roles_before
    partner_b.refresh_from_db()
    assert partner_b.outbound_token in emsp.accepted_tokens
    assert call("GET", "/ocpi/versions", emsp.token_for_cpo).status_code == 200
