"""Shared by the OCPI 2.1.1 tests: API clients in each version's token form, a network with a
priced connector, and a charge driven through the charger gateway's signals (as the simulator
or an OCPP system would report it), so sessions and CDRs are made by the real services."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rest_framework.test import APIClient

from billing.models import Session
from billing.sessions import pending_start_register
from ocpi import jsonutil, tokens
from stations import gateway
from tests.factories import (
    ConnectorFactory,
    EVSEFactory,
    LocationFactory,
    PriceComponentFactory,
    TariffElementFactory,
    TariffFactory,
)

# 08:50 in Amsterdam (CET), a Monday.
T0 = datetime(2025, 3, 3, 7, 50, 0, 250_000, tzinfo=UTC)
CDR_TOKEN = {
    "country_code": "DE",
    "party_id": "EMS",
    "uid": "04A1B2C3",
    "type": "RFID",
    "contract_id": "DE-EMS-C00000001",
}


def client_211(token: str) -> APIClient:
    """A 2.1.1 partner's client: the raw token, no tracing headers."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def client_221(token: str) -> APIClient:
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION="Token " + tokens.encode_for_header(token, base64_encoded=True)
    )
    return client


def body_of(response) -> dict:
    assert response["Content-Type"] == "application/json"
    return jsonutil.loads(response.content)


def priced_network():
    """A full Location with two EVSEs: EVSE "E1" (one Type 2 connector "1" priced by tariff
    "T-PARK", plus every optional field) and EVSE "E2". T-PARK: 1.00 start fee and 0.30/kWh,
    parking 6.00/h in 10-minute blocks, 21 % VAT."""
    tariff = TariffFactory(ocpi_id="T-PARK", type="REGULAR", elements=0)
    fee_and_energy = TariffElementFactory(tariff=tariff, price_components=0)
    PriceComponentFactory(element=fee_and_energy, type="FLAT", price=Decimal("1.00"))
    PriceComponentFactory(element=fee_and_energy, type="ENERGY", price=Decimal("0.30"))
    parking = TariffElementFactory(tariff=tariff, price_components=0)
    PriceComponentFactory(
        element=parking, type="PARKING_TIME", price=Decimal("6.00"), step_size=600
    )
    location = LocationFactory(ocpi_id="LOC1", full=True, evses=0)
    evse = EVSEFactory(location=location, uid="E1", full=True, connectors=0)
    ConnectorFactory(evse=evse, ocpi_id="1", full=True, tariff_ids=["T-PARK", "T-OTHER"])
    EVSEFactory(location=location, uid="E2")
    return location, evse, tariff


def charge(partner, evse, *, tx: str = "TX-1", auth_method: str = "COMMAND") -> Session:
    """A remote start of `partner`'s token at `evse`: 36 minutes charging 5.4 kWh, then 12
    minutes parked; returns the running session (ended by `stop`)."""
    connector = evse.connectors.order_by("pk").first()
    pending_start_register(
        request_ref=f"REQ-{tx}", partner_id=partner.pk, cdr_token=CDR_TOKEN,
        auth_method=auth_method, authorization_reference="AUTH-REF-1", location=evse.location,
        evse=evse, connector=connector,
    )  # fmt: skip
    gateway.transaction_started.send(
        sender=None, transaction_ref=tx, evse=evse, connector=connector, id_tag="04A1B2C3",
        meter_start_wh=Decimal(1000), timestamp=T0, request_ref=f"REQ-{tx}",
        reservation_ref=None,
    )  # fmt: skip
    for minutes, wh, charging in ((12, 2200, True), (36, 6400, False)):
        gateway.meter_values.send(
            sender=None, transaction_ref=tx, energy_wh=Decimal(wh), power_w=Decimal(11000),
            current_a=Decimal("15.9"), charging=charging,
            timestamp=T0 + timedelta(minutes=minutes),
        )  # fmt: skip
    return Session.objects.get(transaction_ref=tx)


def reading(session: Session, *, minutes: int, wh: int, charging: bool = True) -> None:
    gateway.meter_values.send(
        sender=None, transaction_ref=session.transaction_ref, energy_wh=Decimal(wh),
        power_w=Decimal(11000), current_a=Decimal("15.9"), charging=charging,
        timestamp=T0 + timedelta(minutes=minutes),
    )  # fmt: skip


def stop(session: Session, *, minutes: int = 48, wh: int = 6400) -> Session:
    gateway.transaction_stopped.send(
        sender=None, transaction_ref=session.transaction_ref, meter_stop_wh=Decimal(wh),
        timestamp=T0 + timedelta(minutes=minutes), reason="EV_DISCONNECTED",
    )  # fmt: skip
    session.refresh_from_db()
    return session
