"""OCPI 2.1.1 CDR objects (PROTOCOL.md §8 "CDRs") from the CDR model (billing.models_cdrs: the
2.2.1 content frozen at creation), and the 2.1.1 CDRs Sender endpoint.

What differs from 2.2.1:
- no country_code, party_id, session_id, authorization_reference, cdr_token, signed_data,
  invoice_reference_id, home_charging_compensation, cost breakdown; `stop_date_time` instead of
  end_date_time; `auth_id` (the token's auth_id: 2.2.1's contract_id);
- `location`: a 2.1.1 Location with only the charged EVSE and connector, built from the frozen
  CdrLocation. What a CdrLocation lacks comes from what does not change with the session: the
  Location's type (its parking_type) and the connector's voltage/amperage from the session's
  Location and connector; the connector's `tariff_id` is the CDR's first tariff; the EVSE's
  status is UNKNOWN (a CDR knows no current status); the nested last_updated are the CDR's.
  So a CDR renders the same every time;
- `total_cost`: a number, excluding VAT; `tariffs` as 2.1.1 Tariffs; ChargingPeriods without
  tariff_id and with the 2.1.1 dimension types only;
- AuthMethod without COMMAND (AUTH_REQUEST: the eMSP authorized the start);
- 2.1.1 cannot correct a CDR: credit CDRs are never shown to (nor pushed to) 2.1.1 partners;
- DateTimes in whole seconds; text folded to ASCII.
"""

from typing import Any

from billing.models_cdrs import CDR
from stations.models import Connector, Location

from ...versioning import V211View, ascii_strings, ascii_text, whole_seconds
from ..locations.v2_1_1 import POWER_TYPES, coordinates_211, location_type
from ..sessions.v2_1_1 import auth_method_211, charging_periods_211
from ..tariffs.v2_1_1 import tariff_dict_to_211
from .views import CDRListView


def _place(cdr: CDR) -> tuple[Location | None, Connector | None]:
    """The Location and Connector the CDR's session charged at, if still known."""
    session = cdr.session
    if session is not None:
        return session.location, session.connector
    where = cdr.cdr_location
    connector = (
        Connector.objects.select_related("evse__location")
        .filter(
            evse__location__country_code__lower=cdr.country_code.lower(),
            evse__location__party_id__lower=cdr.party_id.lower(),
            evse__location__ocpi_id__lower=str(where.get("id", "")).lower(),
            evse__uid__lower=str(where.get("evse_uid", "")).lower(),
            ocpi_id__lower=str(where.get("connector_id", "")).lower(),
        )
        .first()
    )
    return (connector.evse.location, connector) if connector is not None else (None, None)


def cdr_location_to_211(cdr: CDR) -> dict:
    """The 2.1.1 Location of a CDR: its CdrLocation, with the one EVSE and connector."""
    where = cdr.cdr_location
    location, connector = _place(cdr)
    stamp = whole_seconds(cdr.last_updated)
    connector_data: dict[str, Any] = {
        "id": where["connector_id"],
        "standard": where["connector_standard"],
        "format": where["connector_format"],
        "power_type": POWER_TYPES.get(where["connector_power_type"], where["connector_power_type"]),
        "voltage": connector.max_voltage if connector is not None else 0,
        "amperage": connector.max_amperage if connector is not None else 0,
    }
    if cdr.tariffs:
        connector_data["tariff_id"] = cdr.tariffs[0]["id"]
    connector_data["last_updated"] = stamp
    evse: dict[str, Any] = {"uid": where["evse_uid"]}
    if where.get("evse_id"):
        evse["evse_id"] = where["evse_id"]
    evse.update(status="UNKNOWN", connectors=[connector_data], last_updated=stamp)
    coordinates = where["coordinates"]
    data: dict[str, Any] = {
        "id": where["id"],
        "type": location_type(location.parking_type if location is not None else ""),
    }
    if where.get("name"):
        data["name"] = where["name"]
    data.update(
        address=ascii_text(where["address"])[:45],
        city=where["city"],
        postal_code=where.get("postal_code") or "",
        country=where["country"],
        coordinates=coordinates_211(coordinates["latitude"], coordinates["longitude"]),
        evses=[evse],
    )
    if cdr.time_zone:
        data["time_zone"] = cdr.time_zone
    data["last_updated"] = stamp
    return data


def cdr_to_ocpi_211(cdr: CDR) -> dict:
    """The 2.1.1 CDR (select_related session__location and session__connector for many)."""
    data: dict[str, Any] = {
        "id": cdr.ocpi_id,
        "start_date_time": whole_seconds(cdr.start_date_time),
        "stop_date_time": whole_seconds(cdr.end_date_time),
        "auth_id": cdr.cdr_token.get("contract_id") or cdr.cdr_token.get("uid", ""),
        "auth_method": auth_method_211(cdr.auth_method),
        "location": cdr_location_to_211(cdr),
    }
    if cdr.meter_id:
        data["meter_id"] = cdr.meter_id
    data["currency"] = cdr.currency
    if cdr.tariffs:
        data["tariffs"] = [tariff_dict_to_211(t) for t in cdr.tariffs]
    data["charging_periods"] = charging_periods_211(cdr.charging_periods or [])
    data["total_cost"] = cdr.total_cost_excl_vat
    data["total_energy"] = cdr.total_energy
    data["total_time"] = cdr.total_time
    if cdr.total_parking_time is not None:
        data["total_parking_time"] = cdr.total_parking_time
    if cdr.remark:
        data["remark"] = cdr.remark
    data["last_updated"] = whole_seconds(cdr.last_updated)
    return ascii_strings(data)


def shown_to_211(cdr: CDR) -> bool:
    """Whether a 2.1.1 partner may get this CDR: not a credit CDR (2.1.1 has none)."""
    return not cdr.credit


class CDRListView211(V211View, CDRListView):
    """GET {cdrs_url} (2.1.1): the caller's CDRs from the same selector, without credit CDRs
    (2.1.1 has none), as 2.1.1 objects."""

    def get_queryset(self):
        return (
            super()
            .get_queryset()
            .filter(credit=False)
            .select_related("session__location", "session__connector")
        )

    def serialize(self, obj) -> dict:
        return cdr_to_ocpi_211(obj)
