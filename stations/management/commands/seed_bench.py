"""A large benchmark network, built fast with bulk inserts.

    manage.py seed_bench --locations 100000 [--evses-per-location 4]
                         [--connectors-per-location 6] [--clear]

Locations are BENCH-000001, BENCH-000002, ... (EVSE uids BENCH-000001-1, ...); a second run adds
after the highest existing number, `--clear` first deletes all BENCH-* data. `created` spreads
evenly over the last `--days` days and `last_updated` between creation and now (children never
newer than their parents), so date_from/date_to filters select meaningful slices.

On purpose this bypasses Model.save(): no per-object validation, no `last_updated` logic and
no signals, hence no OCPI pushes. Benchmark data must not reach partners, and a million pushes
would swamp the outbox. The values are built valid by construction (tests check a sample with
full_clean()). Each batch of locations is one transaction; progress and timing are printed.
"""

import random
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Length
from django.utils import timezone

from stations.models import EVSE, Connector, Location, PriceComponent, Tariff, TariffElement

PREFIX = "BENCH-"
TARIFF_AC, TARIFF_DC = "BENCH-AC", "BENCH-DC"

# (city, postal code, state, latitude, longitude) per country; coordinates are jittered.
CITIES = {
    ("NL", "NLD", "Europe/Amsterdam"): [
        ("Amsterdam", "1012 AB", "Noord-Holland", 52.3702, 4.8952),
        ("Rotterdam", "3011 AD", "Zuid-Holland", 51.9244, 4.4777),
        ("Den Haag", "2511 CV", "Zuid-Holland", 52.0705, 4.3007),
        ("Utrecht", "3511 LX", "Utrecht", 52.0907, 5.1214),
        ("Eindhoven", "5611 AZ", "Noord-Brabant", 51.4416, 5.4697),
        ("Groningen", "9711 LM", "Groningen", 53.2194, 6.5665),
        ("Tilburg", "5038 BA", "Noord-Brabant", 51.5555, 5.0913),
        ("Almere", "1315 HR", "Flevoland", 52.3508, 5.2647),
        ("Nijmegen", "6511 PP", "Gelderland", 51.8126, 5.8372),
        ("Zwolle", "8011 PK", "Overijssel", 52.5168, 6.0830),
    ],
    ("DE", "DEU", "Europe/Berlin"): [
        ("Berlin", "10117", "Berlin", 52.5200, 13.4050),
        ("Hamburg", "20095", "Hamburg", 53.5511, 9.9937),
        ("München", "80331", "Bayern", 48.1351, 11.5820),
        ("Köln", "50667", "Nordrhein-Westfalen", 50.9375, 6.9603),
        ("Frankfurt am Main", "60311", "Hessen", 50.1109, 8.6821),
        ("Stuttgart", "70173", "Baden-Württemberg", 48.7758, 9.1829),
        ("Düsseldorf", "40213", "Nordrhein-Westfalen", 51.2277, 6.7735),
        ("Leipzig", "04109", "Sachsen", 51.3397, 12.3731),
        ("Dortmund", "44135", "Nordrhein-Westfalen", 51.5136, 7.4653),
        ("Hannover", "30159", "Niedersachsen", 52.3759, 9.7320),
    ],
}
STREETS = {
    "NLD": ["Stationsplein", "Marktstraat", "Kerkstraat", "Dorpsstraat", "Industrieweg",
            "Parallelweg", "Julianalaan", "Beatrixlaan", "Molenweg", "Havenkade"],
    "DEU": ["Bahnhofstraße", "Hauptstraße", "Schulstraße", "Gartenstraße", "Industriestraße",
            "Lindenstraße", "Kirchstraße", "Bergstraße", "Am Markt", "Ringstraße"],
}  # fmt: skip
PARKING_TYPES = ["ON_STREET", "PARKING_LOT", "PARKING_GARAGE", "UNDERGROUND_GARAGE",
                 "ALONG_MOTORWAY"]  # fmt: skip
FACILITIES = ["PARKING_LOT", "SUPERMARKET", "RESTAURANT", "CAFE", "WIFI", "TRAIN_STATION",
              "BUS_STOP", "HOTEL", "MALL"]  # fmt: skip
STATUSES = (
    ["AVAILABLE"] * 70
    + ["CHARGING"] * 20
    + ["OUTOFORDER"] * 3
    + ["INOPERATIVE"] * 3
    + ["UNKNOWN"] * 2
    + ["BLOCKED", "RESERVED"]
)
AC_CAPS = ["RFID_READER", "REMOTE_START_STOP_CAPABLE", "UNLOCK_CAPABLE", "RESERVABLE"]
DC_CAPS = ["RFID_READER", "REMOTE_START_STOP_CAPABLE", "CREDIT_CARD_PAYABLE"]
AC_CONNECTORS = [("IEC_62196_T2", "SOCKET", "AC_3_PHASE", 230, 16, 11000),
                 ("IEC_62196_T2", "SOCKET", "AC_3_PHASE", 230, 32, 22000)]  # fmt: skip
DC_CONNECTORS = [("IEC_62196_T2_COMBO", "CABLE", "DC", 920, 200, 150000),
                 ("CHADEMO", "CABLE", "DC", 500, 125, 50000),
                 ("IEC_62196_T2_COMBO", "CABLE", "DC", 920, 500, 300000)]  # fmt: skip


def _ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _batch_size(model) -> int:
    # Stay well under PostgreSQL's 65535 bind parameters per statement.
    return max(1, 60000 // len(model._meta.concrete_fields))


class Command(BaseCommand):
    help = "Build a large benchmark network fast (bulk inserts, no validation, no pushes)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--locations", type=int, default=0, help="how many to add")
        parser.add_argument("--evses-per-location", type=int, default=4)
        parser.add_argument(
            "--connectors-per-location",
            type=int,
            default=6,
            help="spread over the EVSEs (at least one each); EVSEs with two are DC",
        )
        parser.add_argument("--clear", action="store_true", help="delete BENCH-* data first")
        parser.add_argument("--batch", type=int, default=1000, help="locations per transaction")
        parser.add_argument("--days", type=int, default=730, help="history to spread over")
        parser.add_argument("--seed", type=int, default=1, help="random seed (reproducible)")

    def handle(self, *args, **options) -> None:
        count, evses = options["locations"], options["evses_per_location"]
        connectors = max(options["connectors_per_location"], evses)
        if count < 0 or evses < 1 or options["batch"] < 1 or options["days"] < 1:
            raise CommandError("--locations ≥ 0, --evses-per-location, --batch, --days ≥ 1")
        if options["clear"]:
            self._clear()
        if not count:
            return
        self.rng = random.Random(options["seed"])
        self.country_code = settings.OCPI_COUNTRY_CODE
        self.party_id = settings.OCPI_PARTY_ID
        self._ensure_tariffs()
        first = self._next_number()
        self.now = timezone.now()
        self.start = self.now - timedelta(days=options["days"])
        self.step = (self.now - self.start) / count
        started = time.monotonic()
        self.stdout.write(
            f"seed_bench: {count} locations from {PREFIX}{first:06d}, {evses} EVSEs and "
            f"{connectors} connectors each, batches of {options['batch']}"
        )
        done = 0
        while done < count:
            size = min(options["batch"], count - done)
            with transaction.atomic():
                self._create_batch(first + done, size, done, evses, connectors)
            done += size
            elapsed = time.monotonic() - started
            self.stdout.write(
                f"  {done}/{count} locations, {done * evses} EVSEs, {done * connectors} "
                f"connectors in {elapsed:.1f} s ({done / elapsed:.0f} locations/s)"
            )
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # fresh statistics for the benchmark's plans
                for model in (Location, EVSE, Connector):
                    cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        self.stdout.write(
            self.style.SUCCESS(f"Done: {count} locations in {time.monotonic() - started:.1f} s")
        )

    def _next_number(self) -> int:
        last = (
            Location.objects.filter(ocpi_id__startswith=PREFIX)
            .order_by(Length("ocpi_id").desc(), "-ocpi_id")
            .values_list("ocpi_id", flat=True)
            .first()
        )
        return int(last.removeprefix(PREFIX)) + 1 if last else 1

    def _create_batch(self, first: int, size: int, offset: int, evses: int, connectors: int):
        rng = self.rng
        locations, evse_rows, connector_rows = [], [], []
        for i in range(size):
            number = first + i
            (country_code, country, time_zone), cities = rng.choice(list(CITIES.items()))
            city, postal_code, state, lat, lon = rng.choice(cities)
            created = _ms(self.start + self.step * (offset + i) + timedelta(seconds=rng.random()))
            # Most objects change rarely: skew last_updated towards creation.
            updated = _ms(created + (self.now - created) * rng.random() ** 3)
            ocpi_id = f"{PREFIX}{number:06d}"
            locations.append(
                Location(
                    country_code=self.country_code,
                    party_id=self.party_id,
                    ocpi_id=ocpi_id,
                    publish=True,
                    name=f"{city} {rng.choice(STREETS[country])} {number}",
                    address=f"{rng.choice(STREETS[country])} {rng.randint(1, 250)}",
                    city=city,
                    postal_code=postal_code,
                    state=state,
                    country=country,
                    latitude=f"{lat + rng.uniform(-0.08, 0.08):.6f}",
                    longitude=f"{lon + rng.uniform(-0.12, 0.12):.6f}",
                    parking_type=rng.choice(PARKING_TYPES),
                    facilities=rng.sample(FACILITIES, rng.randint(0, 3)),
                    time_zone=time_zone,
                    opening_times={"twentyfourseven": True},
                    operator={"name": settings.OCPI_BUSINESS_NAME},
                    created=created,
                    last_updated=updated,
                )
            )
            # Connectors per EVSE: 1 each, the remainder as a second (DC) connector.
            per_evse = [1 + (connectors - evses + e) // evses for e in range(evses)]
            for e in range(evses):
                evse_updated = _ms(created + (updated - created) * rng.random())
                dc = per_evse[e] > 1
                evse = EVSE(
                    uid=f"{ocpi_id}-{e + 1}",
                    evse_id=f"{self.country_code}*{self.party_id}*EB{number:07d}*{e + 1}",
                    status=rng.choice(STATUSES),
                    capabilities=DC_CAPS if dc else AC_CAPS,
                    physical_reference=str(e + 1),
                    created=created,
                    last_updated=evse_updated,
                )
                evse_rows.append((i, evse))
                for c in range(per_evse[e]):
                    spec = (
                        DC_CONNECTORS[c % len(DC_CONNECTORS)] if dc else rng.choice(AC_CONNECTORS)
                    )
                    standard, fmt, power_type, volts, amps, watts = spec
                    connector_rows.append(
                        (
                            evse,
                            Connector(
                                ocpi_id=str(c + 1),
                                standard=standard,
                                format=fmt,
                                power_type=power_type,
                                max_voltage=volts,
                                max_amperage=amps,
                                max_electric_power=watts,
                                tariff_ids=[TARIFF_DC if dc else TARIFF_AC],
                                created=created,
                                last_updated=_ms(created + (evse_updated - created) * rng.random()),
                            ),
                        )
                    )
        Location.objects.bulk_create(locations, batch_size=_batch_size(Location))
        for i, evse in evse_rows:
            evse.location_id = locations[i].pk
        EVSE.objects.bulk_create([e for _, e in evse_rows], batch_size=_batch_size(EVSE))
        for evse, connector in connector_rows:
            connector.evse_id = evse.pk
        Connector.objects.bulk_create(
            [c for _, c in connector_rows], batch_size=_batch_size(Connector)
        )

    def _ensure_tariffs(self) -> None:
        """Two plain tariffs the bench connectors refer to, also created without pushes."""
        specs = {
            TARIFF_AC: [("ENERGY", "0.39", "21", 1)],
            TARIFF_DC: [("FLAT", "0.50", "21", 1), ("ENERGY", "0.59", "21", 1)],
        }
        for ocpi_id, components in specs.items():
            if Tariff.objects.filter(ocpi_id__lower=ocpi_id.lower()).exists():
                continue
            with transaction.atomic():
                (tariff,) = Tariff.objects.bulk_create(
                    [
                        Tariff(
                            country_code=self.country_code,
                            party_id=self.party_id,
                            ocpi_id=ocpi_id,
                            currency="EUR",
                            type="REGULAR",
                        )
                    ]
                )
                (element,) = TariffElement.objects.bulk_create([TariffElement(tariff=tariff)])
                PriceComponent.objects.bulk_create(
                    PriceComponent(element=element, position=n, type=kind, price=price, vat=vat,
                                   step_size=step)
                    for n, (kind, price, vat, step) in enumerate(components)
                )  # fmt: skip

    def _clear(self) -> None:
        """Delete all BENCH-* locations, EVSEs, connectors and tariffs with plain SQL.

        QuerySet.delete() would load every object to run the PROTECT checks and delete signals;
        for a million rows that takes long and much memory. Nothing is pushed: bench data never
        reached partners.
        """
        started = time.monotonic()
        q = connection.ops.quote_name
        location, evse, connector = (q(m._meta.db_table) for m in (Location, EVSE, Connector))
        tariff, element, component = (
            q(m._meta.db_table) for m in (Tariff, TariffElement, PriceComponent)
        )
        like = PREFIX + "%"
        statements = [
            f"DELETE FROM {connector} WHERE evse_id IN (SELECT e.id FROM {evse} e JOIN "
            f"{location} l ON e.location_id = l.id WHERE l.ocpi_id LIKE %s)",
            f"DELETE FROM {evse} WHERE location_id IN "
            f"(SELECT id FROM {location} WHERE ocpi_id LIKE %s)",
            f"DELETE FROM {location} WHERE ocpi_id LIKE %s",
            f"DELETE FROM {component} WHERE element_id IN (SELECT el.id FROM {element} el JOIN "
            f"{tariff} t ON el.tariff_id = t.id WHERE t.ocpi_id LIKE %s)",
            f"DELETE FROM {element} WHERE tariff_id IN "
            f"(SELECT id FROM {tariff} WHERE ocpi_id LIKE %s)",
            f"DELETE FROM {tariff} WHERE ocpi_id LIKE %s",
        ]
        deleted = []
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                for sql in statements:
                    cursor.execute(sql, [like])  # table names from _meta, quoted
                    deleted.append(cursor.rowcount)
        except IntegrityError as exc:
            raise CommandError(
                f"Bench data is referenced by other rows (sessions, CDRs?); not cleared: {exc}"
            ) from exc
        self.stdout.write(
            f"Cleared bench data: {deleted[2]} locations, {deleted[1]} EVSEs, {deleted[0]} "
            f"connectors, {deleted[5]} tariffs in {time.monotonic() - started:.1f} s"
        )
