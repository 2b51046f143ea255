"""A recording charger gateway for the commands and charging profiles tests, and their fixtures.

`RecordingGateway` implements stations.gateway.ChargerGateway: it records every call and answers
with `reachable` (False: the charger cannot be asked). The charger's later answer is fired by the
test, as a charger would, with `answer(...)` (the stations.gateway.command_answered signal).

    @pytest.fixture
    def charger(settings):
        yield from recording_gateway(settings)

    @pytest.fixture
    def network(db):
        return make_network()
"""

from collections.abc import Iterator
from datetime import timedelta
from typing import ClassVar

from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import Session
from ocpi import tokens
from stations import gateway as charger_gateway
from tests.factories import EVSEFactory, LocationFactory

CAPABILITIES = [
    "REMOTE_START_STOP_CAPABLE",
    "RESERVABLE",
    "UNLOCK_CAPABLE",
    "CHARGING_PROFILE_CAPABLE",
    "RFID_READER",
]


class RecordingGateway:
    calls: ClassVar[list[tuple[str, dict]]] = []
    reachable: ClassVar[bool] = True

    def _record(self, method: str, kwargs: dict) -> bool:
        RecordingGateway.calls.append((method, kwargs))
        return RecordingGateway.reachable

    def start_transaction(self, **kwargs) -> bool:
        return self._record("start_transaction", kwargs)

    def stop_transaction(self, **kwargs) -> bool:
        return self._record("stop_transaction", kwargs)

    def unlock_connector(self, **kwargs) -> bool:
        return self._record("unlock_connector", kwargs)

    def reserve_now(self, **kwargs) -> bool:
        return self._record("reserve_now", kwargs)

    def cancel_reservation(self, **kwargs) -> bool:
        return self._record("cancel_reservation", kwargs)

    def set_charging_limit(self, **kwargs) -> bool:
        return self._record("set_charging_limit", kwargs)

    # -- test helpers ---------------------------------------------------------------------
    @classmethod
    def only_call(cls) -> tuple[str, dict]:
        assert len(cls.calls) == 1, cls.calls
        return cls.calls[0]

    @classmethod
    def answer(cls, *, accepted: bool = True, reason: str = "", request_ref: str | None = None):
        """The charger answers (the last call, unless `request_ref` names another)."""
        ref = request_ref or cls.calls[-1][1]["request_ref"]
        charger_gateway.command_answered.send(
            sender=cls, request_ref=ref, accepted=accepted, reason=reason
        )


def recording_gateway(settings) -> Iterator[type[RecordingGateway]]:
    """The recording gateway, installed as settings.CHARGER_GATEWAY, with no calls yet (use it
    as a fixture: `yield from recording_gateway(settings)`)."""
    settings.CHARGER_GATEWAY = "tests.ocpi.gateway_double.RecordingGateway"
    RecordingGateway.calls = []
    RecordingGateway.reachable = True
    yield RecordingGateway
    RecordingGateway.calls = []
    RecordingGateway.reachable = True


def client_for(token: str) -> APIClient:
    """An APIClient presenting a partner's credentials token (2.2.1 Base64 form)."""
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION="Token " + tokens.encode_for_header(token, base64_encoded=True),
        HTTP_X_CORRELATION_ID="corr-1234",
    )
    return client


def make_network():
    """LOC1 with EVSE1 (connector 1, every capability a command needs) and EVSE2 (two
    connectors, START_SESSION_CONNECTOR_REQUIRED)."""
    location = LocationFactory(ocpi_id="LOC1", evses=0)
    EVSEFactory(location=location, uid="EVSE1", capabilities=CAPABILITIES)
    EVSEFactory(
        location=location,
        uid="EVSE2",
        capabilities=[*CAPABILITIES, "START_SESSION_CONNECTOR_REQUIRED"],
        connectors=2,
    )
    return location


def token_body(country_code: str = "DE", party_id: str = "EMS", uid: str = "DRIVER1") -> dict:
    return {
        "country_code": country_code,
        "party_id": party_id,
        "uid": uid,
        "type": "APP_USER",
        "contract_id": f"{country_code}-{party_id}-C{uid}",
        "issuer": "Test eMSP",
        "valid": True,
        "whitelist": "NEVER",
        "last_updated": "2025-03-01T10:00:00Z",
    }


def make_session(partner, evse, *, ocpi_id: str = "S1", status: str = "ACTIVE", **fields):
    """A running session of `partner` at `evse`'s first connector."""
    connector = evse.connectors.order_by("pk").first()
    defaults = {
        "country_code": "NL",
        "party_id": "CPO",
        "partner": partner,
        "cdr_token": {
            "country_code": "DE",
            "party_id": "EMS",
            "uid": "DRIVER1",
            "type": "APP_USER",
            "contract_id": "DE-EMS-C1",
        },
        "auth_method": "COMMAND",
        "location": evse.location,
        "evse": evse,
        "connector": connector,
        "transaction_ref": f"TX-{ocpi_id}",
        "start_date_time": timezone.now() - timedelta(minutes=10),
        "status": status,
    }
    defaults.update(fields)
    return Session.objects.create(ocpi_id=ocpi_id, **defaults)
