"""The CDR push end to end (PROTOCOL.md §4.3): a session ends, its CDR is made and the real Celery
worker POSTs it to the eMSP on 127.0.0.1 exactly once, stores the Location header, keeps trying
while the eMSP is down, and the reconciliation task compares the eMSP's stored copy with ours."""

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.cdrs import cdr_credit
from billing.models import Session
from billing.models_cdrs import CDR
from billing.sessions import pending_start_register
from ocpi.models import OutboxMessage
from ocpi.reconciliation import reconcile_cdrs_task
from ocpi.tasks import sweep_outbox_task
from stations import gateway
from tests.contract import validate_ocpi
from tests.factories import EVSEFactory, PriceComponentFactory, TariffElementFactory, TariffFactory
from tests.worker import celery_worker, celery_worker_env  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.worker, pytest.mark.usefixtures("transactional_db", "celery_worker")]

CDRS = "/ocpi/emsp/2.2.1/cdrs"
SESSIONS = "/ocpi/emsp/2.2.1/sessions"
T0 = datetime(2025, 3, 3, 7, 50, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.SESSION_PATCH_INTERVAL = 0


@pytest.fixture
def partner(make_partner, emsp):
    endpoints = [
        {"identifier": m, "role": "RECEIVER", "url": emsp.endpoint(m)} for m in ("sessions", "cdrs")
    ]
    partner, _ = make_partner("eMSP", endpoints=endpoints, request_timeout=2.0)
    emsp.accepted_tokens.add(partner.outbound_token)
    return partner


@pytest.fixture
def evse():
    """A start fee of 1.00 and 0.30/kWh; parking 6.00/h in 10-minute blocks; 21 % VAT."""
    tariff = TariffFactory(ocpi_id="T-PARK", type="REGULAR", elements=0)
    fee_and_energy = TariffElementFactory(tariff=tariff, price_components=0)
    PriceComponentFactory(element=fee_and_energy, type="FLAT", price=Decimal("1.00"))
    PriceComponentFactory(element=fee_and_energy, type="ENERGY", price=Decimal("0.30"))
    parking = TariffElementFactory(tariff=tariff, price_components=0)
    PriceComponentFactory(
        element=parking, type="PARKING_TIME", price=Decimal("6.00"), step_size=600
    )
    evse = EVSEFactory(connectors=0)
    evse.connectors.create(
        ocpi_id="1", standard="IEC_62196_T2", format="SOCKET", power_type="AC_3_PHASE",
        max_voltage=230, max_amperage=32, tariff_ids=[tariff.ocpi_id],
    )  # fmt: skip
    return evse


def start(partner, evse) -> None:
    pending_start_register(
        request_ref="REQ-1", partner_id=partner.pk,
        cdr_token={"country_code": "DE", "party_id": "EMS", "uid": "04A1B2C3", "type": "RFID",
                   "contract_id": "DE-EMS-C00000001"},
        auth_method="COMMAND", authorization_reference="AUTH-1", location=evse.location,
        evse=evse, connector=evse.connectors.get(),
    )  # fmt: skip
    gateway.transaction_started.send(
        sender=None, transaction_ref="TX-1", evse=evse, connector=evse.connectors.get(),
        id_tag="04A1B2C3", meter_start_wh=Decimal(1000), timestamp=T0, request_ref="REQ-1",
        reservation_ref=None,
    )  # fmt: skip


def finish() -> None:
    """36 minutes charging 5.4 kWh, 12 minutes parked, unplugged."""
    for minutes, wh, charging in ((12, 2200, True), (36, 6400, False)):
        gateway.meter_values.send(
            sender=None, transaction_ref="TX-1", energy_wh=Decimal(wh), power_w=Decimal(11000),
            current_a=Decimal("15.9"), charging=charging,
            timestamp=T0 + timedelta(minutes=minutes),
        )  # fmt: skip
    gateway.transaction_stopped.send(
        sender=None, transaction_ref="TX-1", meter_stop_wh=Decimal(6400),
        timestamp=T0 + timedelta(minutes=48), reason="EV_DISCONNECTED",
    )  # fmt: skip


def until(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {list(OutboxMessage.objects.values())}")


def delivered(ocpi_id: str) -> CDR | None:
    return CDR.objects.filter(ocpi_id=ocpi_id, delivery=CDR.Delivery.DELIVERED).first()


def test_a_completed_session_reaches_the_emsp_as_one_cdr_that_reconciles(partner, evse, emsp):
    # when: a session of the partner's driver ends
    start(partner, evse)
    finish()
    session = Session.objects.get()

    # then: one POST of the CDR (beside the session's final update), priced as the tariff says:
    # the start fee, 5.4 kWh at 0.30 and 12 minutes parked in 10-minute blocks, 21 % VAT
    cdr = until(lambda: delivered(session.ocpi_id))
    (post,) = emsp.received("POST", CDRS)
    assert post.path == CDRS
    validate_ocpi(post.body, "CDR")
    assert (post.body["id"], post.body["session_id"]) == (session.ocpi_id, session.ocpi_id)
    assert post.body["total_cost"] == {"excl_vat": 4.62, "incl_vat": 5.59}
    assert post.body["total_fixed_cost"] == {"excl_vat": 1, "incl_vat": 1.21}
    assert post.body["total_energy_cost"] == {"excl_vat": 1.62, "incl_vat": 1.96}
    assert post.body["total_parking_cost"] == {"excl_vat": 2, "incl_vat": 2.42}
    assert (post.body["total_energy"], post.body["total_time"]) == (5.4, 0.8)
    assert [r for r in emsp.received("PUT", SESSIONS) if r.body["status"] == "COMPLETED"]
    assert cdr.partner_location_url == f"{emsp.endpoint('cdrs')}/1"
    assert emsp.stored["cdrs/1"] == post.body

    # when: the reconciliation task fetches the eMSP's copy back
    reconcile_cdrs_task.delay()

    # then
    cdr = until(lambda: CDR.objects.exclude(reconciliation="UNCHECKED").filter(pk=cdr.pk).first())
    assert cdr.reconciliation == CDR.Reconciliation.MATCH
    assert emsp.received("GET", f"{CDRS}/1")

    # when: a credit follows, and the eMSP keeps a different total for it
    credit = cdr_credit(cdr=cdr, reason="Refund")
    until(lambda: delivered(credit.ocpi_id))
    emsp.stored["cdrs/2"]["total_cost"] = {"excl_vat": -4.00, "incl_vat": -5.59}
    reconcile_cdrs_task.delay()

    # then: one POST each, in order; the credit's copy is flagged
    credit = until(lambda: CDR.objects.filter(pk=credit.pk, reconciliation="MISMATCH").first())
    assert credit.reconciliation_note.startswith('total_cost: ours {"excl_vat":-4.62')
    assert [r.body["id"] for r in emsp.received("POST", CDRS)] == [cdr.ocpi_id, credit.ocpi_id]


def test_an_emsp_down_during_the_cdr_push_still_gets_exactly_one(partner, evse, emsp):
    # given: a charge under way, the eMSP has the session
    start(partner, evse)
    until(lambda: emsp.received("PUT", SESSIONS))

    # when: the eMSP is down while the session ends and the CDR is pushed, then comes back
    emsp.stop()
    finish()
    session = Session.objects.get()
    until(lambda: OutboxMessage.objects.filter(module="cdrs", attempts__gte=2).exists())
    assert CDR.objects.get().delivery == CDR.Delivery.PENDING
    emsp.start()

    # then: delivered once, and never again (a sweep finds nothing to send)
    cdr = until(lambda: delivered(session.ocpi_id))
    sweep_outbox_task.delay()
    time.sleep(1.0)
    assert len(emsp.received("POST", CDRS)) == 1
    assert cdr.partner_location_url == f"{emsp.endpoint('cdrs')}/1"
    row = OutboxMessage.objects.get(module="cdrs")
    assert (row.state, row.response_status) == ("SENT", 201)
    assert row.attempts >= 3
