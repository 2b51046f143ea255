"""CDRs (PROTOCOL.md §4.3, §5.4): the Sender list of the caller's own CDRs, the CDR object against
the official schema, the POST the outbox writes for a new CDR, its delivery state (Location
header, failures, never twice) and the reconciliation with the partner's copy."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from billing.cdrs import CDRNotCorrectable, cdr_create_for_session, cdr_credit, cdr_request_delivery
from billing.models import Session
from billing.models_cdrs import CDR
from billing.sessions import pending_start_register
from ocpi import jsonutil, tokens
from ocpi.delivery import outbox_deliver
from ocpi.models import OutboxMessage
from ocpi.modules.cdrs.serializers import cdr_to_ocpi
from ocpi.outbox import cdr_outbox_write
from ocpi.reconciliation import cdr_differences, cdr_reconcile, reconcile_cdrs
from stations import gateway
from tests.contract import validate_envelope, validate_ocpi, validate_response
from tests.factories import EVSEFactory, PriceComponentFactory, TariffElementFactory, TariffFactory

pytestmark = pytest.mark.django_db

CDRS = "/ocpi/cpo/2.2.1/cdrs"
T0 = datetime(2025, 3, 3, 7, 50, tzinfo=UTC)
State = OutboxMessage.State


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.SESSION_PATCH_INTERVAL = 0


def client_for(token: str) -> APIClient:
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION="Token " + tokens.encode_for_header(token, base64_encoded=True)
    )
    return client


def body(response) -> dict:
    return json.loads(response.content)


def make_cdr(partner, ocpi_id: str, *, last_updated: datetime = T0, **fields) -> CDR:
    """A CDR as billing.cdrs stores one (decimal strings in its JSON parts)."""
    role = partner.roles.get() if partner is not None else None
    values = {
        "country_code": "NL",
        "party_id": "CPO",
        "ocpi_id": ocpi_id,
        "partner": partner,
        "session_ocpi_id": ocpi_id,
        "start_date_time": last_updated - timedelta(hours=1),
        "end_date_time": last_updated,
        "time_zone": "Europe/Amsterdam",
        "cdr_token": {
            "country_code": role.country_code if role else "NL",
            "party_id": role.party_id if role else "CPO",
            "uid": "04A1B2C3",
            "type": "RFID",
            "contract_id": "C-1",
        },
        "auth_method": "WHITELIST",
        "cdr_location": {
            "id": "LOC1", "address": "Keizersgracht 1", "city": "Amsterdam", "country": "NLD",
            "coordinates": {"latitude": "52.370210", "longitude": "4.895170"},
            "evse_uid": "EVSE1", "evse_id": "NL*CPO*E1*1", "connector_id": "1",
            "connector_standard": "IEC_62196_T2", "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        },
        "currency": "EUR",
        "charging_periods": [
            {
                "start_date_time": "2025-03-03T06:50:00Z",
                "dimensions": [{"type": "ENERGY", "volume": "10.0000"},
                               {"type": "TIME", "volume": "1.0000"}],
            }
        ],
        "total_cost_excl_vat": Decimal("3.00"),
        "total_cost_incl_vat": Decimal("3.63"),
        "total_energy": Decimal("10"),
        "total_time": Decimal("1"),
        "last_updated": last_updated,
        "created": last_updated,
    }  # fmt: skip
    values.update(fields)
    return CDR.objects.create(**values)


# --- the Sender list ------------------------------------------------------------------------------
def test_the_list_holds_the_callers_cdrs_as_ocpi_objects(partner_and_token):
    # given
    partner, token = partner_and_token
    make_cdr(partner, "CDR-1")

    # when
    response = client_for(token).get(CDRS)

    # then
    assert response.status_code == 200
    payload = body(response)
    assert payload["status_code"] == 1000
    assert (response["X-Total-Count"], response["X-Limit"]) == ("1", "100")
    assert "Link" not in response
    (cdr,) = payload["data"]
    assert cdr == {
        "country_code": "NL", "party_id": "CPO", "id": "CDR-1",
        "start_date_time": "2025-03-03T06:50:00Z", "end_date_time": "2025-03-03T07:50:00Z",
        "session_id": "CDR-1",
        "cdr_token": {"country_code": "DE", "party_id": "EMS", "uid": "04A1B2C3",
                      "type": "RFID", "contract_id": "C-1"},
        "auth_method": "WHITELIST",
        "cdr_location": {
            "id": "LOC1", "address": "Keizersgracht 1", "city": "Amsterdam", "country": "NLD",
            "coordinates": {"latitude": "52.370210", "longitude": "4.895170"},
            "evse_uid": "EVSE1", "evse_id": "NL*CPO*E1*1", "connector_id": "1",
            "connector_standard": "IEC_62196_T2", "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        },
        "currency": "EUR",
        "charging_periods": [{"start_date_time": "2025-03-03T06:50:00Z",
                              "dimensions": [{"type": "ENERGY", "volume": 10.0},
                                             {"type": "TIME", "volume": 1.0}]}],
        "total_cost": {"excl_vat": 3.0, "incl_vat": 3.63},
        "total_energy": 10,
        "total_time": 1,
        "last_updated": "2025-03-03T07:50:00Z",
    }  # fmt: skip
    assert b'"total_cost":{"excl_vat":3,"incl_vat":3.63}' in response.content  # exact decimals
    validate_response(payload, "cdrs/sender-interface", "/cdrs", "get", 200)
    validate_envelope(payload, "CDR", many=True)


def test_a_partner_never_sees_another_partners_cdrs(make_partner):
    # given
    partner_a, token_a = make_partner("A", country_code="DE", party_id="AAA")
    partner_b, token_b = make_partner("B", country_code="FR", party_id="BBB")
    make_cdr(partner_a, "CDR-A1")
    make_cdr(partner_a, "CDR-A2")
    make_cdr(partner_b, "CDR-B1")
    make_cdr(None, "CDR-NOBODY")

    # when
    seen_by_b = client_for(token_b).get(CDRS)
    seen_by_a = client_for(token_a).get(CDRS)

    # then
    assert [c["id"] for c in body(seen_by_b)["data"]] == ["CDR-B1"]
    assert seen_by_b["X-Total-Count"] == "1"
    assert [c["id"] for c in body(seen_by_a)["data"]] == ["CDR-A1", "CDR-A2"]


def test_the_list_is_paginated_and_filtered_on_last_updated(partner_and_token):
    # given: CDRs made an hour apart
    partner, token = partner_and_token
    for n in range(4):
        make_cdr(partner, f"CDR-{n}", last_updated=T0 + timedelta(hours=n))
    client = client_for(token)

    # when: from the second CDR (inclusive) to the fourth (exclusive), one per page
    query = {"date_from": "2025-03-03T08:50:00Z", "date_to": "2025-03-03T10:50:00Z", "limit": 1}
    first = client.get(CDRS, query)
    second = client.get(CDRS, {**query, "offset": 1})

    # then
    assert [c["id"] for c in body(first)["data"]] == ["CDR-1"]
    assert first["X-Total-Count"] == "2"
    assert first["Link"] == (
        "<http://testserver/ocpi/cpo/2.2.1/cdrs?offset=1&limit=1"
        '&date_from=2025-03-03T08%3A50%3A00Z&date_to=2025-03-03T10%3A50%3A00Z>; rel="next"'
    )
    assert [c["id"] for c in body(second)["data"]] == ["CDR-2"]
    assert "Link" not in second


@pytest.mark.parametrize("count", [1, 15])
def test_a_page_costs_a_fixed_number_of_queries(
    partner_and_token, count, django_assert_max_num_queries
):
    # given
    partner, token = partner_and_token
    for n in range(count):
        make_cdr(partner, f"CDR-{n}")
    client = client_for(token)

    # when: savepoint, partner, count, page, release
    with django_assert_max_num_queries(5):
        response = client.get(CDRS)

    # then
    assert len(body(response)["data"]) == count


def test_bad_parameters_are_a_2001_and_cdrs_cannot_be_posted(partner_and_token):
    # given
    partner, token = partner_and_token
    make_cdr(partner, "CDR-1")
    client = client_for(token)

    # when
    bad_date = client.get(CDRS, {"date_from": "yesterday"})
    posted = client.post(CDRS, {"id": "X"}, format="json")

    # then: OCPI envelopes, and nothing changed
    assert (bad_date.status_code, body(bad_date)["status_code"]) == (400, 2001)
    assert posted.status_code == 405
    assert body(posted)["status_code"] >= 2000
    assert CDR.objects.count() == 1


def test_an_unauthenticated_caller_gets_a_401_envelope():
    # when
    response = APIClient().get(CDRS)

    # then
    assert response.status_code == 401
    assert body(response)["status_code"] == 2000


# --- the CDR object -------------------------------------------------------------------------------
@pytest.fixture
def tariff():
    """A start fee of 1.00 and 0.30/kWh; parking 6.00/h in 10-minute blocks; 21 % VAT."""
    tariff = TariffFactory(ocpi_id="T-PARK", type="REGULAR", elements=0, full=True)
    fee_and_energy = TariffElementFactory(tariff=tariff, price_components=0, full=True)
    PriceComponentFactory(element=fee_and_energy, type="FLAT", price=Decimal("1.00"))
    PriceComponentFactory(element=fee_and_energy, type="ENERGY", price=Decimal("0.30"))
    parking = TariffElementFactory(tariff=tariff, price_components=0)
    PriceComponentFactory(
        element=parking, type="PARKING_TIME", price=Decimal("6.00"), step_size=600
    )
    PriceComponentFactory(element=parking, type="ENERGY", price=Decimal("0.35"))
    return tariff


def tariffed_evse(tariff):
    evse = EVSEFactory(connectors=0)
    evse.connectors.create(
        ocpi_id="1", standard="IEC_62196_T2", format="SOCKET", power_type="AC_3_PHASE",
        max_voltage=230, max_amperage=32, tariff_ids=[tariff.ocpi_id],
    )  # fmt: skip
    return evse


@pytest.fixture
def evse(tariff):
    return tariffed_evse(tariff)


def charged(partner, evse, *, tx="TX-1") -> Session:
    """A completed session of `partner`: 36 minutes charging 5.4 kWh, 12 minutes parked."""
    role = partner.roles.get()
    pending_start_register(
        request_ref=f"REQ-{tx}", partner_id=partner.pk,
        cdr_token={"country_code": role.country_code, "party_id": role.party_id,
                   "uid": "04A1B2C3", "type": "RFID", "contract_id": "DE-EMS-C1"},
        auth_method="AUTH_REQUEST", authorization_reference="AUTH-1", location=evse.location,
        evse=evse, connector=evse.connectors.get(),
    )  # fmt: skip
    gateway.transaction_started.send(
        sender=None, transaction_ref=tx, evse=evse, connector=evse.connectors.get(),
        id_tag="04A1B2C3", meter_start_wh=Decimal(1000), timestamp=T0, request_ref=f"REQ-{tx}",
        reservation_ref=None,
    )  # fmt: skip
    for minutes, wh, charging in ((12, 2200, True), (36, 6400, False)):
        gateway.meter_values.send(
            sender=None, transaction_ref=tx, energy_wh=Decimal(wh), power_w=Decimal(11000),
            current_a=Decimal("15.9"), charging=charging,
            timestamp=T0 + timedelta(minutes=minutes),
        )  # fmt: skip
    gateway.transaction_stopped.send(
        sender=None, transaction_ref=tx, meter_stop_wh=Decimal(6400),
        timestamp=T0 + timedelta(minutes=48), reason="EV_DISCONNECTED",
    )  # fmt: skip
    return Session.objects.get(transaction_ref=tx)


def test_a_sessions_cdr_meets_the_official_schema_and_leaves_empty_optionals_out(
    partner_and_token, evse
):
    # given
    partner, _ = partner_and_token
    cdr = cdr_create_for_session(session=charged(partner, evse))

    # when
    data = jsonutil.loads(jsonutil.dumps(cdr_to_ocpi(cdr)))

    # then
    validate_ocpi(data, "CDR")
    assert list(data) == [
        "country_code", "party_id", "id", "start_date_time", "end_date_time", "session_id",
        "cdr_token", "auth_method", "authorization_reference", "cdr_location", "currency",
        "tariffs", "charging_periods", "total_cost", "total_fixed_cost", "total_energy",
        "total_energy_cost", "total_time", "total_parking_time", "total_parking_cost", "remark",
        "last_updated",
    ]  # fmt: skip
    (tariff,) = data["tariffs"]
    assert tariff["elements"][0]["price_components"][1] == {
        "type": "ENERGY", "price": Decimal("0.3000"), "vat": Decimal("21.00"), "step_size": 1
    }  # fmt: skip
    assert tariff["elements"][0]["restrictions"]["min_kwh"] == Decimal("0.500")
    assert tariff["min_price"] == {"excl_vat": Decimal("0.5000"), "incl_vat": Decimal("0.6100")}
    assert tariff["start_date_time"] == "2025-01-01T00:00:00Z"
    assert data["charging_periods"][-1]["dimensions"] == [
        {"type": "ENERGY", "volume": Decimal("0.0000")},
        {"type": "PARKING_TIME", "volume": Decimal("0.2000")},
    ]


def test_a_credit_cdr_and_every_optional_field_meet_the_schema(partner_and_token):
    # given: a CDR with every optional field, and its credit
    partner, _ = partner_and_token
    full = make_cdr(
        partner, "CDR-FULL", authorization_reference="AUTH-9", meter_id="M-1",
        signed_data={"encoding_method": "OCMF", "encoding_method_version": 1,
                     "public_key": "cHVibGlj", "url": "https://cpo.example.com/verify",
                     "signed_values": [{"nature": "Start", "plain_data": "x",
                                        "signed_data": "eA=="}]},
        total_fixed_cost_excl_vat=Decimal("1"), total_fixed_cost_incl_vat=Decimal("1.21"),
        total_energy_cost_excl_vat=Decimal("2"), total_energy_cost_incl_vat=Decimal("2.42"),
        total_time_cost_excl_vat=Decimal("0"), total_time_cost_incl_vat=Decimal("0"),
        total_parking_time=Decimal("0.25"), total_parking_cost_excl_vat=Decimal("0"),
        total_reservation_cost_excl_vat=Decimal("0"), remark="Stop reason: REMOTE",
        invoice_reference_id="INV-1", home_charging_compensation=False,
    )  # fmt: skip
    credit = cdr_credit(cdr=full, reason="Refund")

    # when
    full_data, credit_data = cdr_to_ocpi(full), cdr_to_ocpi(credit)

    # then
    validate_ocpi(full_data, "CDR")
    validate_ocpi(credit_data, "CDR")
    assert full_data["total_parking_cost"] == {"excl_vat": Decimal("0")}
    assert full_data["home_charging_compensation"] is False
    assert (credit_data["id"], credit_data["credit"], credit_data["credit_reference_id"]) == (
        "CDR-FULL-C", True, "CDR-FULL"
    )  # fmt: skip
    assert credit_data["total_cost"] == {"excl_vat": Decimal("-3.00"), "incl_vat": Decimal("-3.63")}
    assert "credit" not in full_data


# --- the push -------------------------------------------------------------------------------------
@pytest.fixture
def receiving(make_partner, emsp, monkeypatch):
    """A partner with a CDRs receiver at the test eMSP; delivery runs in the test (not queued)."""
    from ocpi import tasks

    monkeypatch.setattr(tasks.deliver_outbox_task, "delay", lambda *args: None)
    endpoints = [{"identifier": "cdrs", "role": "RECEIVER", "url": emsp.endpoint("cdrs")}]
    partner, _ = make_partner("eMSP", endpoints=endpoints, request_timeout=2.0)
    emsp.accepted_tokens.add(partner.outbound_token)
    return partner


def test_a_new_cdr_is_one_post_of_the_cdr_to_the_partners_receiver(receiving, evse):
    # when
    cdr = cdr_create_for_session(session=charged(receiving, evse))

    # then
    (row,) = OutboxMessage.objects.filter(module="cdrs")
    assert (row.partner, row.method, row.path, row.object_key, row.state) == (
        receiving, "POST", "", "cdrs/NL/CPO", State.PENDING
    )  # fmt: skip
    assert row.body == jsonutil.dumps(cdr_to_ocpi(cdr)).decode()
    cdr.refresh_from_db()
    assert cdr.delivery == CDR.Delivery.PENDING


def test_a_cdr_without_a_receiver_is_not_sent(make_partner, evse):
    # given: a partner without a CDRs receiver
    partner, _ = make_partner("No receiver", endpoints=[])

    # when
    cdr = cdr_create_for_session(session=charged(partner, evse))

    # then
    cdr.refresh_from_db()
    assert cdr.delivery == CDR.Delivery.NOT_SENT
    assert not OutboxMessage.objects.filter(module="cdrs").exists()


def test_a_delivered_cdr_keeps_the_location_header_and_is_never_sent_again(receiving, emsp, evse):
    # given
    cdr = cdr_create_for_session(session=charged(receiving, evse))

    # when
    report = outbox_deliver(partner_id=receiving.pk)

    # then: one POST to the endpoint itself, the URL of the partner's copy stored
    assert report.sent == 1
    (post,) = emsp.received("POST", "/ocpi/emsp/2.2.1/cdrs")
    assert post.path == "/ocpi/emsp/2.2.1/cdrs"
    assert jsonutil.loads(json.dumps(post.body)) == jsonutil.loads(jsonutil.dumps(cdr_to_ocpi(cdr)))
    cdr.refresh_from_db()
    assert (cdr.delivery, cdr.partner_location_url) == (
        CDR.Delivery.DELIVERED, f"{emsp.endpoint('cdrs')}/1"
    )  # fmt: skip
    assert cdr.sent_at is not None

    # then: staff cannot send it again, and a stray row for it is never sent
    with pytest.raises(CDRNotCorrectable, match="never sent twice"):
        cdr_request_delivery(cdr=cdr)
    assert cdr_outbox_write(cdr) is None
    stray = OutboxMessage.objects.get(module="cdrs")
    stray.pk, stray.state = None, State.PENDING
    stray.save()
    report = outbox_deliver(partner_id=receiving.pk)
    assert (report.sent, report.skipped) == (0, 1)
    assert len(emsp.received("POST", "/ocpi/emsp/2.2.1/cdrs")) == 1
    assert OutboxMessage.objects.filter(module="cdrs", state=State.SUPERSEDED).count() == 1


def test_a_rejected_cdr_fails_for_staff_who_may_send_it_again(receiving, emsp, evse):
    # given: the partner rejects the POST (HTTP 200, OCPI 2001)
    cdr = cdr_create_for_session(session=charged(receiving, evse))
    emsp.mode = "ocpi2001"

    # when
    outbox_deliver(partner_id=receiving.pk)

    # then
    cdr.refresh_from_db()
    assert cdr.delivery == CDR.Delivery.FAILED
    assert OutboxMessage.objects.get(module="cdrs").state == State.FAILED

    # when: staff retry once the partner is fixed
    emsp.mode = "ok"
    assert cdr_request_delivery(cdr=cdr) == [f"{cdr.ocpi_id}: delivery retried."]
    cdr.refresh_from_db()
    assert cdr.delivery == CDR.Delivery.PENDING
    outbox_deliver(partner_id=receiving.pk)

    # then: the same row went out, once more in all
    cdr.refresh_from_db()
    assert cdr.delivery == CDR.Delivery.DELIVERED
    (row,) = OutboxMessage.objects.filter(module="cdrs")
    assert (row.state, row.attempts) == (State.SENT, 2)
    assert len(emsp.received("POST", "/ocpi/emsp/2.2.1/cdrs")) == 2


def test_a_retried_post_the_partner_already_has_counts_as_delivered(receiving, emsp, evse):
    # given: the first POST could not be answered (the partner looks down) ...
    cdr = cdr_create_for_session(session=charged(receiving, evse))
    emsp.stop()
    outbox_deliver(partner_id=receiving.pk)
    row = OutboxMessage.objects.get(module="cdrs")
    assert (row.state, row.attempts) == (State.PENDING, 1)
    # ... but it had arrived
    emsp.start()
    emsp.stored["cdrs/1"] = jsonutil.loads(row.body)
    OutboxMessage.objects.filter(pk=row.pk).update(next_attempt_at=row.created)

    # when: the retry gets HTTP 409 "already exists"
    outbox_deliver(partner_id=receiving.pk)

    # then: delivered (once), with no Location to check it at
    row.refresh_from_db()
    assert (row.state, row.response_status) == (State.SENT, 409)
    cdr.refresh_from_db()
    assert (cdr.delivery, cdr.partner_location_url) == (CDR.Delivery.DELIVERED, "")


def test_a_partner_without_a_receiver_gets_it_once_it_has_one(make_partner, emsp, evse):
    # given: a CDR not sent, as its partner had no CDRs receiver
    partner, _ = make_partner("Late", endpoints=[])
    cdr = cdr_create_for_session(session=charged(partner, evse))
    assert cdr_request_delivery(cdr=cdr) == [
        f"{cdr.ocpi_id}: no partner CDRs receiver to send it to; not sent."
    ]

    # when: the partner now has one, and staff ask again
    partner.endpoints = [{"identifier": "cdrs", "role": "RECEIVER", "url": emsp.endpoint("cdrs")}]
    partner.save()
    answer = cdr_request_delivery(cdr=cdr)

    # then
    assert answer == [f"{cdr.ocpi_id}: queued for delivery."]
    cdr.refresh_from_db()
    assert cdr.delivery == CDR.Delivery.PENDING
    assert OutboxMessage.objects.get(module="cdrs").partner == partner


# --- reconciliation -------------------------------------------------------------------------------
OURS = {
    "id": "CDR-1", "country_code": "NL", "party_id": "CPO", "session_id": "S-1",
    "currency": "EUR", "start_date_time": "2025-03-03T06:50:00.250Z",
    "end_date_time": "2025-03-03T07:50:00Z", "total_cost": {"excl_vat": Decimal("3.00"),
    "incl_vat": Decimal("3.63")}, "total_energy": Decimal("10.0000"), "total_time": 1,
    "total_energy_cost": {"excl_vat": Decimal("3.00"), "incl_vat": Decimal("3.63")},
    "total_parking_cost": {"excl_vat": Decimal("0"), "incl_vat": Decimal("0")},
}  # fmt: skip


def test_copies_that_agree_have_no_differences():
    # given: the partner kept whole seconds, dropped a zero subtotal, wrote numbers its way
    theirs = {**OURS, "id": "cdr-1", "start_date_time": "2025-03-03T06:50:00Z",
              "total_energy": 10, "total_time": Decimal("1.000")}  # fmt: skip
    del theirs["total_parking_cost"]

    # then
    assert cdr_differences(OURS, theirs) == []


def test_copies_that_differ_name_the_fields():
    # given
    theirs = {**OURS, "total_cost": {"excl_vat": 3, "incl_vat": Decimal("3.60")},
              "end_date_time": "2025-03-03T08:50:00Z", "credit": True}  # fmt: skip
    del theirs["total_energy"]
    del theirs["session_id"]

    # then
    assert cdr_differences(OURS, theirs) == [
        "session_id", "credit", "end_date_time", "total_cost", "total_energy"
    ]  # fmt: skip


def test_a_2_1_1_copy_is_compared_in_2_1_1_terms():
    # given: 2.1.1 has stop_date_time and a plain total_cost (excl. VAT)
    ours = {"id": "CDR-1", "stop_date_time": "2025-03-03T07:50:00Z", "total_cost": Decimal("3"),
            "total_energy": Decimal("10"), "total_time": Decimal("1")}  # fmt: skip

    # then
    assert cdr_differences(ours, {**ours, "total_cost": 3.0}) == []
    assert cdr_differences(ours, {**ours, "total_cost": 2.5}) == ["total_cost"]


def test_reconciliation_fetches_the_partners_copy_and_flags_a_mismatch(
    receiving, emsp, evse, tariff
):
    # given: two delivered CDRs
    first = cdr_create_for_session(session=charged(receiving, evse, tx="TX-1"))
    second = cdr_create_for_session(session=charged(receiving, tariffed_evse(tariff), tx="TX-2"))
    outbox_deliver(partner_id=receiving.pk)
    # the partner's copy of the second one says less energy and a lower total
    emsp.stored["cdrs/2"]["total_energy"] = 5
    emsp.stored["cdrs/2"]["total_cost"]["excl_vat"] = 4.0

    # when
    report = reconcile_cdrs(sample=10)

    # then
    assert (report.checked, report.results) == (2, {"MATCH": 1, "MISMATCH": 1})
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.reconciliation, first.reconciliation_note) == (CDR.Reconciliation.MATCH, "")
    assert second.reconciliation == CDR.Reconciliation.MISMATCH
    excl, incl = second.total_cost_excl_vat, second.total_cost_incl_vat
    assert second.reconciliation_note == (
        f'total_cost: ours {{"excl_vat":{excl:.2f},"incl_vat":{incl:.2f}}}, '
        f'theirs {{"excl_vat":4,"incl_vat":{incl:.2f}}}; total_energy: ours 5.4, theirs 5'
    )
    assert second.reconciled_at is not None
    assert len(emsp.received("GET", "/ocpi/emsp/2.2.1/cdrs/")) == 2

    # when: the next run: checked CDRs are not fetched again
    assert reconcile_cdrs(sample=10).checked == 0


def test_a_copy_that_cannot_be_fetched_is_unavailable(receiving, emsp, evse):
    # given: a delivered CDR the partner then lost, and one whose URL is not the partner's
    lost = cdr_create_for_session(session=charged(receiving, evse, tx="TX-1"))
    elsewhere = cdr_create_for_session(session=charged(receiving, EVSEFactory(), tx="TX-2"))
    outbox_deliver(partner_id=receiving.pk)
    emsp.stored.pop("cdrs/1")
    CDR.objects.filter(pk=elsewhere.pk).update(partner_location_url="https://evil.example/x")
    lost.refresh_from_db()
    elsewhere.refresh_from_db()

    # when
    results = [cdr_reconcile(cdr=c, partner=receiving) for c in (lost, elsewhere)]

    # then: nothing sent to a foreign host; the missing copy is noted
    assert results == ["UNAVAILABLE", "UNAVAILABLE"]
    lost.refresh_from_db()
    assert lost.reconciliation_note.startswith("GET failed:")
    assert "not on the partner's hosts" in CDR.objects.get(pk=elsewhere.pk).reconciliation_note
    assert len(emsp.received("GET")) == 1
