"""factory_boy factories for CDRs as the finance export sees them, made directly through the
model (billing.models_cdrs.CDR), priced by a simple flat tariff with exact Decimals:

    CDRFactory()                              # Amsterdam, EUR, 21% VAT, 20 kWh in 1.5 h
    CDRFactory(new_york=True)                 # New York, USD, 8.875% sales tax
    CDRFactory(kwh=Decimal("7.5"), hours=Decimal("0.5"), parking_hours=Decimal(0))
    CDRFactory(start_date_time=..., partner=p, delivered=True)
    credit_cdr_for(cdr, reason="wrong tariff")  # the credit CDR (id + "-C", negated costs)

The price of a CDR (see `price`): energy kWh × energy_price, charging time (hours − parking)
× time_price, parking hours × parking_price, a fixed start fee; each component rounded half-up
to cents excl. VAT, its incl. VAT = excl. × (1 + vat/100) rounded half-up; the totals are sums
of the components, so every number in a test can be checked by hand.
"""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import factory

from billing.models_cdrs import CDR
from ocpi.models import Partner, PartnerRole

CENT = Decimal("0.01")
COST_FIELDS = ("energy", "time", "parking", "fixed", "reservation", "")


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def price(o) -> dict:
    """The CDR's cost fields for factory parameters `o` (kwh, hours, parking_hours, prices)."""
    charging_hours = o.hours - o.parking_hours
    excl = {
        "energy": _cents(o.kwh * o.energy_price),
        "time": _cents(charging_hours * o.time_price),
        "parking": _cents(o.parking_hours * o.parking_price) if o.parking_hours else None,
        "fixed": _cents(o.fixed_price),
    }
    rate = 1 + o.vat / 100
    fields = {}
    for name, amount in excl.items():
        fields[f"total_{name}_cost_excl_vat"] = amount
        fields[f"total_{name}_cost_incl_vat"] = None if amount is None else _cents(amount * rate)
    fields["total_cost_excl_vat"] = sum(v for v in excl.values() if v is not None)
    fields["total_cost_incl_vat"] = sum(
        fields[f"total_{name}_cost_incl_vat"] or Decimal(0) for name in excl
    )
    return fields


class PartnerFactory(factory.django.DjangoModelFactory):
    """A registered eMSP partner with one EMSP role (no tokens: the export never calls it)."""

    class Meta:
        model = Partner
        django_get_or_create = ("name",)
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"eMSP {n}")
    status = Partner.Status.REGISTERED
    version = "2.2.1"
    versions_url = "http://127.0.0.1:9/ocpi/versions"

    @factory.post_generation
    def role(obj, create, extracted, **kwargs):  # noqa: N805 (factory_boy's signature)
        if create and not obj.roles.exists():
            country_code, party_id = extracted or ("DE", "EMS")
            PartnerRole.objects.create(
                partner=obj, role="EMSP", country_code=country_code, party_id=party_id,
                business_details={"name": obj.name},
            )  # fmt: skip


class CDRFactory(factory.django.DjangoModelFactory):
    """A delivered-looking CDR of a finished session, frozen as CDR generation would make it."""

    class Meta:
        model = CDR
        exclude = ("prices",)

    class Params:
        kwh = Decimal("20.000")
        hours = Decimal("1.500")
        parking_hours = Decimal("0.250")
        energy_price = Decimal("0.35")
        time_price = Decimal("1.20")
        parking_price = Decimal("6.00")
        fixed_price = Decimal("0.50")
        vat = Decimal("21")
        location_id = "LOC00001"
        location_name = "Café De Gouden Leeuw"
        address = "Damrak 1"
        postal_code = "1012 LG"
        city = "Amsterdam"
        country = "NLD"
        evse_uid = factory.Sequence(lambda n: f"EVSE{n:05d}")
        connector_id = "1"
        token_uid = factory.Sequence(lambda n: f"04A1B2C3{n:06X}")
        token_type = "RFID"
        contract_id = factory.Sequence(lambda n: f"DE-EMS-C{n:08d}-X")
        delivered = factory.Trait(
            delivery=CDR.Delivery.DELIVERED,
            sent_at=factory.LazyAttribute(lambda o: o.end_date_time + timedelta(minutes=2)),
        )
        new_york = factory.Trait(
            time_zone="America/New_York",
            currency="USD",
            vat=Decimal("8.875"),
            energy_price=Decimal("0.48"),
            location_id="LOC00002",
            location_name="Hudson Yards Garage",
            address="500 W 33rd St",
            postal_code="10001",
            city="New York",
            country="USA",
        )

    country_code = "NL"
    party_id = "CPO"
    ocpi_id = factory.Sequence(lambda n: f"CDR{n:06d}")
    partner = factory.SubFactory(PartnerFactory)
    session_ocpi_id = factory.Sequence(lambda n: f"SES{n:06d}")
    start_date_time = datetime(2026, 11, 3, 8, 15, tzinfo=UTC)
    end_date_time = factory.LazyAttribute(
        lambda o: o.start_date_time + timedelta(seconds=int(o.hours * 3600))
    )
    time_zone = "Europe/Amsterdam"
    cdr_token = factory.LazyAttribute(
        lambda o: {
            "country_code": "DE",
            "party_id": "EMS",
            "uid": o.token_uid,
            "type": o.token_type,
            "contract_id": o.contract_id,
        }
    )
    auth_method = "WHITELIST"
    cdr_location = factory.LazyAttribute(
        lambda o: {
            "id": o.location_id,
            "name": o.location_name,
            "address": o.address,
            "city": o.city,
            "postal_code": o.postal_code,
            "country": o.country,
            "coordinates": {"latitude": "52.377956", "longitude": "4.897070"},
            "evse_uid": o.evse_uid,
            "evse_id": f"{o.country_code}*{o.party_id}*E{o.evse_uid}",
            "connector_id": o.connector_id,
            "connector_standard": "IEC_62196_T2",
            "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        }
    )
    currency = "EUR"
    tariffs = factory.LazyAttribute(
        lambda o: [
            {
                "country_code": o.country_code,
                "party_id": o.party_id,
                "id": "FLAT",
                "currency": o.currency,
                "elements": [
                    {
                        "price_components": [
                            {
                                "type": "FLAT",
                                "price": str(o.fixed_price),
                                "vat": str(o.vat),
                                "step_size": 1,
                            },
                            {
                                "type": "ENERGY",
                                "price": str(o.energy_price),
                                "vat": str(o.vat),
                                "step_size": 1,
                            },
                            {
                                "type": "TIME",
                                "price": str(o.time_price),
                                "vat": str(o.vat),
                                "step_size": 1,
                            },
                            {
                                "type": "PARKING_TIME",
                                "price": str(o.parking_price),
                                "vat": str(o.vat),
                                "step_size": 1,
                            },
                        ]  # fmt: skip
                    }
                ],
                "last_updated": "2026-01-01T00:00:00Z",
            }
        ]
    )
    charging_periods = factory.LazyAttribute(
        lambda o: (
            [
                {
                    "start_date_time": o.start_date_time.isoformat().replace("+00:00", "Z"),
                    "dimensions": [
                        {"type": "ENERGY", "volume": str(o.kwh)},
                        {"type": "TIME", "volume": str(o.hours - o.parking_hours)},
                    ],
                    "tariff_id": "FLAT",
                }
            ]
            + (
                [
                    {
                        "start_date_time": (
                            o.end_date_time - timedelta(seconds=int(o.parking_hours * 3600))
                        )
                        .isoformat()
                        .replace("+00:00", "Z"),
                        "dimensions": [{"type": "PARKING_TIME", "volume": str(o.parking_hours)}],
                        "tariff_id": "FLAT",
                    }
                ]
                if o.parking_hours
                else []
            )
        )
    )
    prices = factory.LazyAttribute(price)
    total_energy = factory.SelfAttribute("kwh")
    total_time = factory.SelfAttribute("hours")
    total_parking_time = factory.SelfAttribute("parking_hours")
    total_cost_excl_vat = factory.LazyAttribute(lambda o: o.prices["total_cost_excl_vat"])
    total_cost_incl_vat = factory.LazyAttribute(lambda o: o.prices["total_cost_incl_vat"])
    total_energy_cost_excl_vat = factory.LazyAttribute(
        lambda o: o.prices["total_energy_cost_excl_vat"]
    )
    total_energy_cost_incl_vat = factory.LazyAttribute(
        lambda o: o.prices["total_energy_cost_incl_vat"]
    )
    total_time_cost_excl_vat = factory.LazyAttribute(lambda o: o.prices["total_time_cost_excl_vat"])
    total_time_cost_incl_vat = factory.LazyAttribute(lambda o: o.prices["total_time_cost_incl_vat"])
    total_parking_cost_excl_vat = factory.LazyAttribute(
        lambda o: o.prices["total_parking_cost_excl_vat"]
    )
    total_parking_cost_incl_vat = factory.LazyAttribute(
        lambda o: o.prices["total_parking_cost_incl_vat"]
    )
    total_fixed_cost_excl_vat = factory.LazyAttribute(
        lambda o: o.prices["total_fixed_cost_excl_vat"]
    )
    total_fixed_cost_incl_vat = factory.LazyAttribute(
        lambda o: o.prices["total_fixed_cost_incl_vat"]
    )
    remark = "EV disconnected"
    last_updated = factory.LazyAttribute(lambda o: o.end_date_time + timedelta(minutes=1))
    created = factory.LazyAttribute(lambda o: o.end_date_time + timedelta(minutes=1))


_COPIED = [
    f.name
    for f in CDR._meta.concrete_fields
    if f.name not in ("id", "ocpi_id", "created", "last_updated", "delivery", "sent_at")
]


def credit_cdr_for(original: CDR, *, reason: str = "Wrong tariff applied", **overrides) -> CDR:
    """The credit CDR of `original` (PROTOCOL.md §10.15): id + "-C", credit=True,
    credit_reference_id = the original's id, same content with every cost negated."""
    values = {name: getattr(original, name) for name in _COPIED}
    for name in COST_FIELDS:
        for vat in ("excl_vat", "incl_vat"):
            field = f"total_{name}_cost_{vat}".replace("__", "_")
            if values[field] is not None:
                values[field] = -values[field]
    values.update(
        ocpi_id=f"{original.ocpi_id}-C",
        credit=True,
        credit_reference_id=original.ocpi_id,
        corrected_by=original,
        correction_reason=reason,
        remark=reason,
        created=original.created + timedelta(days=3),
        last_updated=original.created + timedelta(days=3),
    )
    values.update(overrides)
    return CDR.objects.create(**values)
