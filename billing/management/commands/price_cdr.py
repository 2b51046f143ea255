"""Price a CDR with the tariff maths, outside the web app (finance, partners' disputes).

    manage.py price_cdr --cdr CDR.json [--tariff TARIFF.json] [--time-zone Europe/Amsterdam]
                        [--money-places 2]

Reads an OCPI 2.2.1 CDR and Tariff (each file a bare object, an OCPI response envelope
{"data": ...}, or a list; a tariff list is narrowed to the tariff the CDR's charging periods name,
else to the first one valid at the CDR's start, PROTOCOL.md §7.1). Without --tariff the CDR's
own `tariffs` are used. Prints the CDR's cost fields as OCPI JSON: total_cost,
total_fixed_cost, total_energy_cost, total_time_cost, total_parking_cost (each excl_vat and
incl_vat), total_energy, total_time, total_parking_time, and total_reservation_cost when the
session had a reservation part.

Time zone: time-of-day, date and weekday restrictions are local to the location. An OCPI 2.2.1
CdrLocation carries no time zone, so give --time-zone (an IANA name such as Europe/Amsterdam).
Without it a `time_zone` in cdr_location is used if the sender added one, else UTC (said on
stderr). Money is rounded half-up to --money-places decimals; volumes are never rounded.
"""

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandError

from billing.tariff_calc import Tariff, get_zone, price_session
from billing.tariff_model import (
    TariffFormatError,
    parse_datetime,
    periods_from_ocpi,
    tariff_from_ocpi,
)


def _read_json(path: str, what: str) -> Any:
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise CommandError(f"cannot read the {what} file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CommandError(f"the {what} file {path} is not UTF-8 text") from None
    try:
        data = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise CommandError(f"the {what} file {path} is not JSON: {exc}") from None
    # An OCPI response envelope: the object is its `data` (no CDR or Tariff has that field).
    if isinstance(data, dict) and "data" in data:
        data = data["data"]
    return data


def _default(value: Any) -> Any:
    # A JSON number with exactly the digits held (money keeps its cents: 0.00, 13.40).
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(format(value, "f"))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class Command(BaseCommand):
    help = "Price an OCPI 2.2.1 CDR with a Tariff and print the CDR's cost fields as JSON."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--cdr", required=True, help="OCPI 2.2.1 CDR JSON file")
        parser.add_argument(
            "--tariff", help="OCPI 2.2.1 Tariff JSON file (default: the CDR's own tariffs)"
        )
        parser.add_argument(
            "--time-zone",
            help="The location's IANA time zone, e.g. Europe/Amsterdam (default: UTC)",
        )
        parser.add_argument(
            "--money-places", type=int, default=2, help="Decimals of money amounts (default 2)"
        )

    def handle(self, *args, **options) -> None:
        if not 0 <= options["money_places"] <= 10:
            raise CommandError("--money-places must be between 0 and 10")
        cdr = _read_json(options["cdr"], "CDR")
        if isinstance(cdr, list):
            if len(cdr) != 1:
                raise CommandError(f"the CDR file holds {len(cdr)} CDRs; give exactly one")
            cdr = cdr[0]
        if not isinstance(cdr, dict):
            raise CommandError("the CDR file must hold a CDR object")
        try:
            start = parse_datetime(cdr.get("start_date_time"), "start_date_time")
            end = parse_datetime(cdr.get("end_date_time"), "end_date_time")
            periods = periods_from_ocpi(cdr.get("charging_periods"))
        except TariffFormatError as exc:
            raise CommandError(f"CDR {exc}") from None
        if options["tariff"]:
            tariffs = _read_json(options["tariff"], "tariff")
        else:
            tariffs = cdr.get("tariffs")
            if not tariffs:
                raise CommandError("the CDR embeds no tariffs; give one with --tariff")
        tariff = self._choose(tariffs, cdr, start)
        time_zone = self._time_zone(options["time_zone"], cdr)
        currency = cdr.get("currency")
        if currency and tariff.currency and currency != tariff.currency:
            self.stderr.write(
                f"price_cdr: the CDR is in {currency} but the tariff in {tariff.currency}."
            )
        try:
            breakdown = price_session(
                tariff,
                periods,
                start=start,
                end=end,
                time_zone=time_zone,
                money_places=options["money_places"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        output = orjson.dumps(breakdown.to_ocpi(), default=_default, option=orjson.OPT_INDENT_2)
        self.stdout.write(output.decode())

    def _choose(self, data: Any, cdr: dict, start) -> Tariff:
        candidates = data if isinstance(data, list) else [data]
        tariffs = []
        for i, item in enumerate(candidates):
            try:
                tariffs.append(tariff_from_ocpi(item))
            except TariffFormatError as exc:
                where = f"tariff[{i}] " if len(candidates) > 1 else "tariff "
                raise CommandError(where + str(exc)) from None
        if len(tariffs) == 1:
            return tariffs[0]
        named = {
            str(p.get("tariff_id")).lower()
            for p in cdr.get("charging_periods") or []
            if isinstance(p, dict) and p.get("tariff_id")
        }
        for tariff in tariffs:
            if tariff.id.lower() in named:
                return tariff
        for tariff in tariffs:
            if tariff.is_active_at(start):
                return tariff
        raise CommandError("none of the tariffs is valid at the CDR's start_date_time")

    def _time_zone(self, option: str | None, cdr: dict) -> str:
        name = option
        if not name:
            location = cdr.get("cdr_location")
            name = location.get("time_zone") if isinstance(location, dict) else None
        if not name:
            self.stderr.write("price_cdr: no --time-zone given; local time is taken as UTC.")
            name = "UTC"
        try:
            get_zone(name)
        except ValueError:
            raise CommandError(f"unknown time zone {name!r}") from None
        return name
