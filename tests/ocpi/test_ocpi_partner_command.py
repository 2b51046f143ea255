"""`manage.py ocpi_partner`: create, register, list, rotate, suspend, reactivate, unregister."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from ocpi import tokens
from ocpi.models import Partner


def run(*args) -> str:
    out = StringIO()
    call_command("ocpi_partner", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def versions_status(token: str) -> int:
    header = "Token " + tokens.encode_for_header(token, base64_encoded=True)
    return APIClient().get("/ocpi/versions", HTTP_AUTHORIZATION=header).status_code


def test_create_json_prints_exactly_token_a_and_versions_url(db):
    # when
    output = run("create", "--name", "Test eMSP", "--json")

    # then
    printed = json.loads(output)
    assert set(printed) == {"token_a", "versions_url"}
    assert printed["versions_url"] == "http://testserver/ocpi/versions"
    assert Partner.objects.get(name="Test eMSP").status == Partner.Status.PENDING
    assert versions_status(printed["token_a"]) == 200


def test_create_prints_token_a_and_versions_url_for_people(db):
    # when
    output = run("create", "--name", "Test eMSP")

    # then
    token_a = next(line.split()[-1] for line in output.splitlines() if line.startswith("Token A"))
    assert "http://testserver/ocpi/versions" in output
    assert versions_status(token_a) == 200


def test_create_refuses_a_name_in_use(db):
    # given
    run("create", "--name", "Test eMSP")

    # when / then
    with pytest.raises(CommandError, match="already exists"):
        run("create", "--name", "Test eMSP")
    assert Partner.objects.count() == 1


def test_list_shows_partners_and_their_status(make_partner):
    # given
    make_partner("Alpha Mobility", party_id="ALP")
    run("create", "--name", "Beta Charge")

    # when
    output = run("list")

    # then
    lines = output.splitlines()
    assert lines[0].split("\t") == ["Alpha Mobility", "REGISTERED", "2.2.1", "EMSP DE*ALP"]
    assert lines[1].split("\t") == ["Beta Charge", "PENDING", "-", "-"]


def test_suspend_reactivate_and_unregister(make_partner):
    # given
    partner, token = make_partner()

    # when / then
    run("suspend", "--name", "Partner One")
    assert versions_status(token) == 401
    run("reactivate", "--name", "Partner One")
    assert versions_status(token) == 200
    run("unregister", "--name", "Partner One")
    partner.refresh_from_db()
    assert partner.status == Partner.Status.UNREGISTERED
    assert versions_status(token) == 401
    with pytest.raises(CommandError, match="already unregistered"):
        run("unregister", "--name", "Partner One")


def test_unknown_partner_name_is_an_error(db):
    # when / then
    with pytest.raises(CommandError, match="No partner named"):
        run("suspend", "--name", "Nobody")


def test_register_and_rotate_with_a_partner(live_server, settings, emsp):
    # given
    settings.OCPI_BASE_URL = live_server.url

    # when
    output = run(
        "register", "--name", "Test eMSP", "--versions-url", emsp.versions_url,
        f"--token={emsp.token_a}",
    )  # fmt: skip

    # then
    assert "Registered with Test eMSP (OCPI 2.2.1)" in output
    partner = Partner.objects.get(name="Test eMSP")
    assert partner.status == Partner.Status.REGISTERED
    outbound = partner.outbound_token
    assert outbound in emsp.accepted_tokens

    # when
    run("rotate", "--name", "Test eMSP")

    # then
    partner.refresh_from_db()
    assert partner.outbound_token != outbound
    assert partner.outbound_token in emsp.accepted_tokens


def test_register_reports_the_partners_failure(transactional_db, emsp):
    # given
    emsp.versions_offered = ["2.0"]

    # when / then
    with pytest.raises(CommandError, match="No mutual version"):
        run(
            "register", "--name", "Test eMSP", "--versions-url", emsp.versions_url,
            f"--token={emsp.token_a}",
        )  # fmt: skip
    assert not Partner.objects.exists()
