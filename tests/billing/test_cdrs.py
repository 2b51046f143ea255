"""Charge Detail Records (billing/cdrs.py): a final session's CDR with every field from the
session and its start-time snapshot, priced by the tariff maths; immutability; credits and
corrections; error sessions; the reconciliation overview."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.cdrs import (
    CDRImmutable,
    CDRNotCorrectable,
    bounded_id,
    cdr_correct,
    cdr_create_for_session,
    cdr_create_missing,
    cdr_credit,
    cdr_reconciliation_status,
)
from billing.models import Session
from billing.models_cdrs import CDR
from billing.sessions import pending_start_register
from billing.signals import cdr_created
from billing.tariff_calc import price_session
from billing.tariff_model import tariff_from_model
from stations import gateway
from tests.factories import EVSEFactory, PriceComponentFactory, TariffElementFactory, TariffFactory

pytestmark = pytest.mark.django_db

# 08:50 in Amsterdam (CET), a Monday.
T0 = datetime(2025, 3, 3, 7, 50, tzinfo=UTC)
CDR_TOKEN = {
    "country_code": "DE",
    "party_id": "EMS",
    "uid": "04A1B2C3",
    "type": "RFID",
    "contract_id": "DE-EMS-C00000001",
}


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.SESSION_PATCH_INTERVAL = 0


@pytest.fixture
def announced():
    got = []

    def record(sender, cdr, **kwargs):
        got.append(cdr.ocpi_id)

    cdr_created.connect(record, weak=False, dispatch_uid="test-cdr-created")
    yield got
    cdr_created.disconnect(dispatch_uid="test-cdr-created")


@pytest.fixture
def partner(make_partner):
    return make_partner()[0]


@pytest.fixture
def tariff():
    """A start fee of 1.00 and 0.30/kWh; parking 6.00/h in 10-minute blocks; 21 % VAT."""
    tariff = TariffFactory(ocpi_id="T-PARK", type="REGULAR", elements=0)
    fee_and_energy = TariffElementFactory(tariff=tariff, price_components=0)
    PriceComponentFactory(element=fee_and_energy, type="FLAT", price=Decimal("1.00"))
    PriceComponentFactory(element=fee_and_energy, type="ENERGY", price=Decimal("0.30"))
    parking = TariffElementFactory(tariff=tariff, price_components=0)
    PriceComponentFactory(
        element=parking, type="PARKING_TIME", price=Decimal("6.00"), step_size=600
    )
    return tariff


@pytest.fixture
def evse(tariff):
    evse = EVSEFactory(connectors=0)
    evse.connectors.create(
        ocpi_id="1", standard="IEC_62196_T2", format="SOCKET", power_type="AC_3_PHASE",
        max_voltage=230, max_amperage=32, tariff_ids=[tariff.ocpi_id],
    )  # fmt: skip
    return evse


def register(partner, evse):
    pending_start_register(
        request_ref="REQ-1", partner_id=partner.pk, cdr_token=CDR_TOKEN, auth_method="COMMAND",
        authorization_reference="AUTH-REF-1", location=evse.location, evse=evse,
        connector=evse.connectors.get(),
    )  # fmt: skip


def started(evse, *, id_tag="04A1B2C3", request_ref="REQ-1", tx="TX-1"):
    gateway.transaction_started.send(
        sender=None, transaction_ref=tx, evse=evse, connector=evse.connectors.get(),
        id_tag=id_tag, meter_start_wh=Decimal(1000), timestamp=T0, request_ref=request_ref,
        reservation_ref=None,
    )  # fmt: skip
    return Session.objects.get(transaction_ref=tx)


def reading(minutes, wh, *, charging=True, tx="TX-1"):
    gateway.meter_values.send(
        sender=None, transaction_ref=tx, energy_wh=Decimal(wh), power_w=Decimal(11000),
        current_a=Decimal("15.9"), charging=charging, timestamp=T0 + timedelta(minutes=minutes),
    )  # fmt: skip


def stopped(minutes, wh, *, tx="TX-1", reason="EV_DISCONNECTED"):
    gateway.transaction_stopped.send(
        sender=None, transaction_ref=tx, meter_stop_wh=Decimal(wh),
        timestamp=T0 + timedelta(minutes=minutes), reason=reason,
    )  # fmt: skip


def charge(evse, *, tx="TX-1", id_tag="04A1B2C3", request_ref="REQ-1") -> Session:
    """36 minutes charging 5.4 kWh, then 12 minutes parked; the session is left running."""
    session = started(evse, tx=tx, id_tag=id_tag, request_ref=request_ref)
    reading(12, 2200, tx=tx)
    reading(36, 6400, charging=False, tx=tx)
    return session


@pytest.fixture
def completed(partner, evse, django_capture_on_commit_callbacks):
    """A completed session (its CDR made after commit, as in production)."""
    register(partner, evse)
    session = charge(evse)
    with django_capture_on_commit_callbacks(execute=True):
        stopped(48, 6400)
    session.refresh_from_db()
    return session


def test_a_completed_session_gets_a_cdr_with_every_field_from_the_session(completed, evse, tariff):
    # then: one CDR, made right after the session's end
    cdr = CDR.objects.get()
    location = evse.location
    assert (cdr.country_code, cdr.party_id, cdr.ocpi_id) == ("NL", "CPO", completed.ocpi_id)
    assert (cdr.partner, cdr.session, cdr.session_ocpi_id) == (
        completed.partner, completed, completed.ocpi_id
    )  # fmt: skip
    assert (cdr.start_date_time, cdr.end_date_time) == (T0, T0 + timedelta(minutes=48))
    assert cdr.cdr_token == CDR_TOKEN
    assert (cdr.auth_method, cdr.authorization_reference) == ("COMMAND", "AUTH-REF-1")
    assert cdr.cdr_location == {
        "id": location.ocpi_id, "name": location.name, "address": location.address,
        "city": "Amsterdam", "postal_code": "1015 CJ", "country": "NLD",
        "coordinates": {"latitude": location.latitude, "longitude": location.longitude},
        "evse_uid": evse.uid, "evse_id": evse.evse_id, "connector_id": "1",
        "connector_standard": "IEC_62196_T2", "connector_format": "SOCKET",
        "connector_power_type": "AC_3_PHASE",
    }  # fmt: skip
    assert (cdr.currency, cdr.time_zone) == ("EUR", "Europe/Amsterdam")
    (frozen,) = cdr.tariffs
    assert (frozen["id"], frozen["currency"], frozen["type"]) == ("T-PARK", "EUR", "REGULAR")
    assert frozen["last_updated"].endswith("Z")
    assert [[c["type"] for c in e["price_components"]] for e in frozen["elements"]] == [
        ["FLAT", "ENERGY"],
        ["PARKING_TIME"],
    ]
    assert cdr.charging_periods == [
        {
            "start_date_time": "2025-03-03T07:50:00Z",
            "dimensions": [
                {"type": "ENERGY", "volume": "5.4000"},
                {"type": "TIME", "volume": "0.6000"},
                {"type": "MAX_POWER", "volume": "11.000"},
                {"type": "MIN_POWER", "volume": "11.000"},
            ],
            "tariff_id": "T-PARK",
        },
        {
            "start_date_time": "2025-03-03T08:26:00Z",
            "dimensions": [
                {"type": "ENERGY", "volume": "0.0000"},
                {"type": "PARKING_TIME", "volume": "0.2000"},
            ],
            "tariff_id": "T-PARK",
        },
    ]
    assert (cdr.total_energy, cdr.total_time, cdr.total_parking_time) == (
        Decimal("5.4"), Decimal("0.8"), Decimal("0.2")
    )  # fmt: skip
    assert cdr.signed_data is None
    assert cdr.remark == "Stop reason: EV_DISCONNECTED"
    assert (cdr.credit, cdr.credit_reference_id, cdr.corrected_by) == (False, "", None)
    assert cdr.delivery == CDR.Delivery.NOT_SENT  # the partner has no CDRs receiver
    assert cdr.last_updated == cdr.created


def test_the_cdr_is_priced_by_the_tariff_maths_like_the_session(completed, tariff):
    # given: the start fee, 5.4 kWh at 0.30 and 12 minutes parked in 10-minute blocks (20 min)
    cdr = CDR.objects.get()

    # then: the hand-computed prices (21 % VAT, rounded to cents per subtotal)
    assert (cdr.total_fixed_cost_excl_vat, cdr.total_fixed_cost_incl_vat) == (
        Decimal("1.00"), Decimal("1.21")
    )  # fmt: skip
    assert (cdr.total_energy_cost_excl_vat, cdr.total_energy_cost_incl_vat) == (
        Decimal("1.62"), Decimal("1.96")
    )  # fmt: skip
    assert (cdr.total_parking_cost_excl_vat, cdr.total_parking_cost_incl_vat) == (
        Decimal("2.00"), Decimal("2.42")
    )  # fmt: skip
    assert (cdr.total_time_cost_excl_vat, cdr.total_reservation_cost_excl_vat) == (None, None)
    assert (cdr.total_cost_excl_vat, cdr.total_cost_incl_vat) == (
        Decimal("4.62"), Decimal("5.59")
    )  # fmt: skip

    # then: the same as the tariff maths on the session's periods, and as Session.total_cost
    periods = [
        (p.start_date_time, {d["type"]: Decimal(d["volume"]) for d in p.dimensions})
        for p in completed.periods.order_by("start_date_time")
    ]
    maths = price_session(
        tariff_from_model(tariff), periods, start=T0, time_zone="Europe/Amsterdam"
    )
    assert (cdr.total_cost_excl_vat, cdr.total_cost_incl_vat) == maths.total_cost
    assert (cdr.total_cost_excl_vat, cdr.total_cost_incl_vat) == (
        completed.total_cost_excl_vat, completed.total_cost_incl_vat
    )  # fmt: skip


def test_the_cdr_shows_the_place_and_the_price_as_at_the_start(partner, evse, tariff):
    # given: a session started at 0.30/kWh on "Keizersgracht"
    register(partner, evse)
    session = charge(evse)
    address = evse.location.address

    # when: the street is renamed and the energy price raised before the session ends
    location = evse.location
    location.address = "Nieuwe Straat 1"
    location.save()
    energy = tariff.elements.first().price_components.get(type="ENERGY")
    energy.price = Decimal("0.99")
    energy.save()
    stopped(48, 6400)
    cdr = cdr_create_for_session(session=session)

    # then
    assert cdr.cdr_location["address"] == address
    prices = [c["price"] for t in cdr.tariffs for e in t["elements"] for c in e["price_components"]]
    assert prices == ["1.0000", "0.3000", "6.0000"]
    assert (cdr.total_energy_cost_excl_vat, cdr.total_cost_excl_vat) == (
        Decimal("1.62"), Decimal("4.62")
    )  # fmt: skip


def test_a_session_has_one_cdr_and_a_second_call_returns_it_unchanged(completed, announced):
    # given
    cdr = CDR.objects.get()

    # when
    again = cdr_create_for_session(session=completed)

    # then
    assert again.pk == cdr.pk
    assert again.last_updated == cdr.last_updated
    assert CDR.objects.count() == 1
    assert announced == []  # nothing new was announced


def test_a_cdr_never_changes_only_its_bookkeeping_does(completed):
    # given
    cdr = CDR.objects.get()

    # when: its content is changed and saved
    cdr.total_cost_excl_vat = Decimal("0.01")
    with pytest.raises(CDRImmutable, match="total_cost_excl_vat"):
        cdr.save()

    # then: stored as it was; delivery bookkeeping may still change
    cdr.refresh_from_db()
    assert cdr.total_cost_excl_vat == Decimal("4.62")
    cdr.delivery = CDR.Delivery.DELIVERED
    cdr.partner_location_url = "https://emsp.example.com/cdrs/1"
    cdr.save(update_fields=["delivery", "partner_location_url"])
    cdr.refresh_from_db()
    assert cdr.delivery == CDR.Delivery.DELIVERED


def test_a_credit_cdr_negates_the_costs_and_references_the_original(completed, announced):
    # given
    original = CDR.objects.get()

    # when
    credit = cdr_credit(cdr=original, reason="Charger fault, driver refunded")

    # then
    assert credit.ocpi_id == f"{original.ocpi_id}-C"
    assert (credit.credit, credit.credit_reference_id) == (True, original.ocpi_id)
    assert (credit.corrected_by, credit.correction_reason) == (
        original, "Charger fault, driver refunded"
    )  # fmt: skip
    assert credit.remark == f"Credit of {original.ocpi_id}: Charger fault, driver refunded"
    assert (credit.total_cost_excl_vat, credit.total_cost_incl_vat) == (
        Decimal("-4.62"), Decimal("-5.59")
    )  # fmt: skip
    assert credit.total_fixed_cost_excl_vat == Decimal("-1.00")
    assert credit.total_energy_cost_incl_vat == Decimal("-1.96")
    assert credit.total_parking_cost_excl_vat == Decimal("-2.00")
    assert credit.total_time_cost_excl_vat is None
    # the same content: volumes as measured, place, token, periods, session
    same = ("total_energy", "total_time", "cdr_location", "cdr_token", "charging_periods",
            "tariffs", "start_date_time", "end_date_time", "session_id", "partner_id")  # fmt: skip
    for name in same:
        assert getattr(credit, name) == getattr(original, name), name
    assert credit.last_updated > original.last_updated
    assert announced == [credit.ocpi_id]
    original.refresh_from_db()
    assert (original.total_cost_excl_vat, original.credit) == (Decimal("4.62"), False)


def test_a_cdr_is_credited_once_a_credit_never_and_only_with_a_reason(completed):
    # given
    original = CDR.objects.get()

    # then
    with pytest.raises(CDRNotCorrectable, match="reason"):
        cdr_credit(cdr=original, reason="  ")
    credit = cdr_credit(cdr=original, reason="Refund")
    with pytest.raises(CDRNotCorrectable, match="credited already"):
        cdr_credit(cdr=original, reason="Refund again")
    with pytest.raises(CDRNotCorrectable, match="credit CDR"):
        cdr_credit(cdr=credit, reason="Credit the credit")
    assert CDR.objects.count() == 2


def test_a_correction_of_the_energy_credits_and_reprices_a_new_cdr(completed, announced):
    # given: the meter over-read: 4.5 kWh were delivered, not 5.4
    original = CDR.objects.get()

    # when
    credit, corrected = cdr_correct(
        cdr=original, reason="Meter over-read", total_energy=Decimal("4.5")
    )

    # then: the credit, and a new CDR whose periods add up to 4.5 kWh, priced by the maths
    assert (credit.ocpi_id, corrected.ocpi_id) == (
        f"{original.ocpi_id}-C",
        f"{original.ocpi_id}-R1",
    )
    assert (corrected.credit, corrected.credit_reference_id, corrected.corrected_by) == (
        False, "", original
    )  # fmt: skip
    energies = [
        Decimal(d["volume"])
        for p in corrected.charging_periods
        for d in p["dimensions"]
        if d["type"] == "ENERGY"
    ]
    assert energies == [Decimal("4.5"), Decimal("0")]
    assert corrected.total_energy == Decimal("4.5")
    assert (corrected.total_energy_cost_excl_vat, corrected.total_energy_cost_incl_vat) == (
        Decimal("1.35"), Decimal("1.63")
    )  # fmt: skip
    assert (corrected.total_cost_excl_vat, corrected.total_cost_incl_vat) == (
        Decimal("4.35"), Decimal("5.26")
    )  # fmt: skip
    assert corrected.remark == f"Corrects {original.ocpi_id}: Meter over-read"
    assert announced == [credit.ocpi_id, corrected.ocpi_id]

    # when: the corrected CDR is corrected in turn
    credit2, corrected2 = cdr_correct(
        cdr=corrected, reason="Goodwill", total_cost_excl_vat=Decimal("3.00")
    )

    # then: its own credit, and the session's next replacement id
    assert (credit2.ocpi_id, credit2.credit_reference_id) == (
        f"{original.ocpi_id}-R1-C", corrected.ocpi_id
    )  # fmt: skip
    assert corrected2.ocpi_id == f"{original.ocpi_id}-R2"


def test_ids_of_credits_and_corrections_stay_within_the_ocpi_limits():
    # given: the longest ordinary id
    longest = "X" * 36

    # when
    credit = bounded_id(longest, "-C", 39)
    corrected = bounded_id(longest, "-R12", 36)

    # then: a credit fits as it is (CDR ids are 39 long for that); a corrected CDR's id, an
    # ordinary one, is shortened to 36 keeping a digest of the id it corrects
    assert credit == longest + "-C"
    assert len(corrected) == 36
    assert corrected.endswith("-R12")
    assert corrected.startswith("X" * 23 + "-")
    assert bounded_id("Y" * 36, "-R12", 36) != corrected
    assert bounded_id("20250303-9F3A51C2B7", "-R1", 36) == "20250303-9F3A51C2B7-R1"


def test_a_correction_of_the_total_keeps_the_vat_ratio_and_drops_the_subtotals(completed):
    # given
    original = CDR.objects.get()

    # when
    _, corrected = cdr_correct(
        cdr=original, reason="Goodwill discount", total_cost_excl_vat=Decimal("2.31")
    )

    # then: 2.31 × 5.59 / 4.62 = 2.795 → 2.80 incl.; subtotals no longer add up, so left out
    assert (corrected.total_cost_excl_vat, corrected.total_cost_incl_vat) == (
        Decimal("2.31"), Decimal("2.80")
    )  # fmt: skip
    assert corrected.total_energy_cost_excl_vat is None
    assert corrected.total_parking_cost_incl_vat is None
    assert corrected.total_energy == original.total_energy


def test_a_correction_needs_a_change_and_sane_values(completed):
    # given
    original = CDR.objects.get()

    # then: nothing is made
    with pytest.raises(CDRNotCorrectable, match="needs"):
        cdr_correct(cdr=original, reason="Nothing")
    with pytest.raises(CDRNotCorrectable, match="at least 0"):
        cdr_correct(cdr=original, reason="Oops", total_energy=Decimal("-1"))
    assert CDR.objects.count() == 1


def test_an_error_session_with_energy_gets_a_cdr_for_nobody(
    evse, django_capture_on_commit_callbacks
):
    # given: a charger lets an unknown token charge (an INVALID session, told to nobody)
    session = charge(evse, id_tag="UNKNOWN-TAG", request_ref=None)
    assert session.status == "INVALID"

    # when
    with django_capture_on_commit_callbacks(execute=True):
        stopped(48, 6400, reason="EmergencyStop")

    # then: a CDR of the delivered energy, for no partner, not sent
    cdr = CDR.objects.get()
    assert (cdr.session, cdr.partner, cdr.total_energy) == (session, None, Decimal("5.4"))
    assert cdr.cdr_token["uid"] == "UNKNOWN-TAG"
    assert cdr.remark.startswith("Session invalid")
    assert cdr.total_cost_excl_vat == Decimal("4.62")
    assert cdr.delivery == CDR.Delivery.NOT_SENT


def test_an_error_session_without_energy_gets_no_cdr(evse, django_capture_on_commit_callbacks):
    # given
    started(evse, id_tag="UNKNOWN-TAG", request_ref=None)

    # when: it ends without any energy delivered
    with django_capture_on_commit_callbacks(execute=True):
        stopped(5, 1000, reason="EmergencyStop")

    # then
    session = Session.objects.get()
    assert (session.status, session.kwh) == ("INVALID", Decimal(0))
    assert cdr_create_for_session(session=session) is None
    assert not CDR.objects.exists()


def test_a_running_session_gets_no_cdr(partner, evse):
    # given
    register(partner, evse)
    session = charge(evse)

    # then
    assert cdr_create_for_session(session=session) is None
    assert not CDR.objects.exists()


def test_missing_cdrs_are_made_and_the_overview_counts_per_partner(partner, evse):
    # given: a session that ended without its CDR being made (its commit callback never ran)
    register(partner, evse)
    charge(evse)
    stopped(48, 6400)
    before = {s.partner_id: s for s in cdr_reconciliation_status()}

    # when
    created = cdr_create_missing()

    # then
    assert created == 1
    assert cdr_create_missing() == 0
    assert (before[partner.pk].sessions_without_cdr, before[partner.pk].not_sent) == (1, 0)
    (after,) = cdr_reconciliation_status()
    assert (after.partner_id, after.partner) == (partner.pk, partner.name)
    assert (after.sessions_without_cdr, after.sessions_without_delivered_cdr) == (0, 1)
    assert (after.not_sent, after.delivered, after.unconfirmed) == (1, 0, 0)


def test_the_overview_counts_delivery_and_reconciliation(completed, partner):
    # given: the CDR was delivered and its partner's copy differs
    CDR.objects.update(
        delivery=CDR.Delivery.DELIVERED,
        partner_location_url="",
        reconciliation=CDR.Reconciliation.MISMATCH,
    )

    # when
    (status,) = cdr_reconciliation_status()

    # then
    assert (status.sessions_without_cdr, status.sessions_without_delivered_cdr) == (0, 0)
    assert (status.delivered, status.unconfirmed, status.mismatch) == (1, 1, 1)
    assert status.needs_attention
