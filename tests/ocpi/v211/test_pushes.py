"""Pushes in each partner's version (PROTOCOL.md §8): the outbox renders one change once per
version; a 2.1.1 partner gets 2.1.1 bodies, full PUTs of the changed level where a 2.2.1 partner
gets PATCHes, no unpublished Locations, 2.1.1 Sessions and CDRs and no credit CDRs."""

import json

import pytest
from django.db import transaction

from billing.cdrs import cdr_create_for_session, cdr_credit
from billing.models_cdrs import CDR
from ocpi.models import OutboxMessage
from ocpi.outbox import outbox_rerender, outbox_write_response, render_current
from stations.models import EVSE
from tests.contract import validate_ocpi
from tests.factories import LocationFactory, TariffFactory
from tests.ocpi.v211.helpers import charge, priced_network, reading, stop
from tests.ocpi.v211.rules import DATETIME, assert_211

pytestmark = pytest.mark.django_db

OLD, NEW = "http://127.0.0.1:9/ocpi/emsp/2.1.1", "http://127.0.0.1:9/ocpi/emsp/2.2.1"
MODULES = ("locations", "tariffs", "sessions", "cdrs")


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.SESSION_PATCH_INTERVAL = 0


@pytest.fixture
def old(make_partner):
    """A 2.1.1 partner: its endpoints carry no role."""
    endpoints = [{"identifier": m, "url": f"{OLD}/{m}"} for m in MODULES]
    return make_partner("Old eMSP", version="2.1.1", endpoints=endpoints)[0]


@pytest.fixture
def new(make_partner):
    endpoints = [{"identifier": m, "role": "RECEIVER", "url": f"{NEW}/{m}"} for m in MODULES]
    return make_partner("New eMSP", endpoints=endpoints, country_code="BE", party_id="BMS")[0]


def rows(partner, module: str | None = None) -> list[OutboxMessage]:
    found = OutboxMessage.objects.filter(partner=partner, state="PENDING").order_by("id")
    return list(found.filter(module=module) if module else found)


def body(row: OutboxMessage) -> dict:
    return json.loads(row.body)


def sent(*partners) -> None:
    OutboxMessage.objects.filter(partner__in=partners).update(state="SENT")


def test_a_new_location_is_pushed_to_each_partner_in_its_version(old, new):
    # when
    LocationFactory(ocpi_id="LOC1", full=True, evses=2)

    # then: one PUT each, at the same path, in each version's shape
    (old_row,), (new_row,) = rows(old), rows(new)
    assert (
        (old_row.method, old_row.path) == (new_row.method, new_row.path) == ("PUT", "NL/CPO/LOC1")
    )
    validate_ocpi(body(new_row), "Location")
    assert_211(body(old_row), "Location")
    assert body(old_row)["type"] == body(new_row)["parking_type"] == "PARKING_GARAGE"
    assert DATETIME.match(body(old_row)["last_updated"])  # whole seconds in the push too


def test_an_evse_change_is_a_patch_in_2_2_1_and_a_full_evse_put_in_2_1_1(old, new):
    # given: both partners have the location
    location = LocationFactory(ocpi_id="LOC1", evses=1)
    sent(old, new)
    evse = EVSE.objects.get()

    # when
    evse.status = "CHARGING"
    evse.save()

    # then
    (old_row,), (new_row,) = rows(old), rows(new)
    assert (new_row.method, body(new_row)["status"]) == ("PATCH", "CHARGING")
    assert set(body(new_row)) == {"status", "last_updated"}
    assert (old_row.method, old_row.path) == ("PUT", f"NL/CPO/LOC1/{evse.uid}")
    assert_211(body(old_row), "EVSE")
    assert body(old_row)["status"] == "CHARGING"
    assert location.pk


def test_unpublished_locations_are_not_pushed_to_2_1_1_partners(old, new):
    # when
    LocationFactory(publish=False, publish_allowed_to=[{"uid": "04A1B2C3", "type": "RFID"}])

    # then
    assert rows(old) == []
    assert body(rows(new)[0])["publish"] is False


def test_a_tariff_is_pushed_in_each_version(old, new):
    # when
    TariffFactory(ocpi_id="T1", full=True)

    # then
    (old_row,), (new_row,) = rows(old, "tariffs"), rows(new, "tariffs")
    validate_ocpi(body(new_row), "Tariff")
    assert_211(body(old_row), "Tariff")
    assert "vat" in body(new_row)["elements"][0]["price_components"][0]
    assert "vat" not in body(old_row)["elements"][0]["price_components"][0]


def test_each_partners_session_is_pushed_in_its_version(
    old, new, django_capture_on_commit_callbacks
):
    # given
    _, evse, _ = priced_network()
    other = EVSE.objects.get(uid="E2")
    sent(old, new)

    # when: each partner's driver charges
    old_session = charge(old, evse, tx="TX-OLD")
    new_session = charge(new, other, tx="TX-NEW")

    # then: each partner has its session in its version
    (old_row,), (new_row,) = rows(old, "sessions"), rows(new, "sessions")
    assert (old_row.path, new_row.path) == (
        f"NL/CPO/{old_session.ocpi_id}",
        f"NL/CPO/{new_session.ocpi_id}",
    )
    assert_211(body(old_row), "Session")
    validate_ocpi(body(new_row), "Session")
    first = body(old_row)
    assert (first["status"], first["auth_id"], first["auth_method"]) == (
        "ACTIVE",
        "DE-EMS-C00000001",
        "AUTH_REQUEST",
    )
    assert [e["uid"] for e in first["location"]["evses"]] == ["E1"]

    # when: both partners have them, and both cars charge on
    sent(old, new)
    reading(old_session, minutes=40, wh=6600)
    reading(new_session, minutes=40, wh=6600)

    # then: the 2.2.1 partner gets a PATCH, the 2.1.1 partner the full 2.1.1 Session
    (old_row,), (new_row,) = rows(old, "sessions"), rows(new, "sessions")
    assert new_row.method == "PATCH"
    assert body(new_row)["kwh"] == 5.6
    assert "location_id" not in body(new_row)
    assert old_row.method == "PUT"
    assert_211(body(old_row), "Session")
    assert (body(old_row)["kwh"], len(body(old_row)["charging_periods"])) == (5.6, 2)

    # when: the 2.1.1 partner's session ends, and its CDR is made after commit
    with django_capture_on_commit_callbacks(execute=True):
        stop(old_session, wh=6600)

    # then: the final 2.1.1 Session and the 2.1.1 CDR, in that order
    old_rows = rows(old)
    final = [r for r in old_rows if r.module == "sessions"][-1]
    assert (final.method, body(final)["status"]) == ("PUT", "COMPLETED")
    (cdr_row,) = [r for r in old_rows if r.module == "cdrs"]
    assert cdr_row.id > final.id
    assert (cdr_row.method, cdr_row.path) == ("POST", "")
    assert_211(body(cdr_row), "CDR")
    assert body(cdr_row)["id"] == old_session.ocpi_id


def test_credit_cdrs_are_not_pushed_to_2_1_1_partners(old):
    # given: a CDR the partner has
    _, evse, _ = priced_network()
    cdr = cdr_create_for_session(session=stop(charge(old, evse)))
    assert [r.module for r in rows(old, "cdrs")] == ["cdrs"]

    # when
    credit = cdr_credit(cdr=cdr, reason="Wrong tariff")

    # then
    assert len(rows(old, "cdrs")) == 1
    assert CDR.objects.get(pk=credit.pk).delivery == CDR.Delivery.NOT_SENT


def test_the_current_state_is_rendered_in_the_partners_version(old):
    # given
    with transaction.atomic():
        LocationFactory(ocpi_id="LOC1", evses=1)
    evse_uid = EVSE.objects.get().uid

    # when
    old_body = json.loads(render_current("locations", f"NL/CPO/LOC1/{evse_uid}", "2.1.1"))
    new_body = json.loads(render_current("locations", f"NL/CPO/LOC1/{evse_uid}"))

    # then
    assert_211(old_body, "EVSE")
    validate_ocpi(new_body, "EVSE")


def test_unsent_pushes_are_rendered_again_when_the_partner_changes_version(new):
    # given: a Location PUT and a command result waiting for a 2.2.1 partner
    LocationFactory(ocpi_id="LOC1")
    outbox_write_response(
        partner=new,
        module="commands",
        object_key="commands/REQ-1",
        url="https://emsp.example.com/ocpi/emsp/2.2.1/commands/START_SESSION/1",
        body={"result": "EVSE_OCCUPIED", "message": [{"language": "en", "text": "Occupied"}]},
    )

    # when: the partner now speaks 2.1.1 (a credentials PUT to our 2.1.1 endpoint)
    new.version = "2.1.1"
    new.save()
    changed = outbox_rerender(partner=new)

    # then
    assert changed == 2
    location_row, result_row = rows(new)
    assert location_row.method == "PUT"
    assert_211(body(location_row), "Location")
    assert body(result_row) == {"result": "REJECTED"}
