"""Adapters into the tariff maths (billing.tariff_calc): OCPI 2.2.1 JSON and our network models.

`tariff_from_ocpi` and `periods_from_ocpi` read partner or file input leniently where OCPI is
loose (numbers as Decimal, int, str or float; unknown fields ignored; DateTimes with or without
a designator) and strictly where the maths depends on it: a bad value raises
`TariffFormatError` naming the field. `tariff_from_model` reads a `stations.models.Tariff`
(prefetch `elements__price_components` when converting many).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from .tariff_calc import (
    DAYS_OF_WEEK,
    RESERVATION,
    RESERVATION_EXPIRES,
    TARIFF_DIMENSIONS,
    ChargingPeriod,
    Price,
    PriceComponent,
    Restrictions,
    Tariff,
    TariffElement,
)

_HHMM_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class TariffFormatError(ValueError):
    """A Tariff or CDR that the maths cannot read; the message starts with the field's path."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


# --- Values ------------------------------------------------------------------------------------


def _decimal(value: Any, path: str, *, minimum: Decimal | None = None) -> Decimal:
    if isinstance(value, bool):
        raise TariffFormatError(path, "must be a number")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))  # the shortest text that is this float, as JSON wrote it
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise TariffFormatError(path, f"{value!r} is not a number") from None
    else:
        raise TariffFormatError(path, "must be a number")
    if not number.is_finite():
        raise TariffFormatError(path, "must be a finite number")
    if minimum is not None and number < minimum:
        raise TariffFormatError(path, f"must be at least {minimum}")
    return number


def _int(value: Any, path: str) -> int:
    number = _decimal(value, path, minimum=Decimal(0))
    if number != number.to_integral_value():
        raise TariffFormatError(path, "must be a whole number")
    return int(number)


def _time(value: Any, path: str) -> time:
    match = _HHMM_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise TariffFormatError(path, f"{value!r} is not a local time HH:MM")
    return time(int(match.group(1)), int(match.group(2)))


def _date(value: Any, path: str) -> date:
    if isinstance(value, str) and _DATE_RE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise TariffFormatError(path, f"{value!r} is not a local date YYYY-MM-DD")


def parse_datetime(value: Any, path: str = "date_time") -> datetime:
    """An OCPI DateTime as an aware UTC datetime (no designator means UTC, §1.9)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and 0 < len(value) <= 35:
        text = value.strip()
        if text[-1:] in ("z", "Z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise TariffFormatError(path, f"{value!r} is not an RFC 3339 date-time") from None
    else:
        raise TariffFormatError(path, f"{value!r} is not an RFC 3339 date-time")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _price(value: Any, path: str) -> Price | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TariffFormatError(path, "must be an object")
    if value.get("excl_vat") is None:
        raise TariffFormatError(f"{path}.excl_vat", "is required")
    excl = _decimal(value["excl_vat"], f"{path}.excl_vat", minimum=Decimal(0))
    incl = value.get("incl_vat")
    return Price(excl, None if incl is None else _decimal(incl, f"{path}.incl_vat"))


# --- OCPI JSON ---------------------------------------------------------------------------------


def _component(data: Any, path: str) -> PriceComponent:
    if not isinstance(data, Mapping):
        raise TariffFormatError(path, "must be an object")
    kind = data.get("type")
    if kind not in TARIFF_DIMENSIONS:
        raise TariffFormatError(f"{path}.type", f"{kind!r} is not a TariffDimensionType")
    if data.get("price") is None:
        raise TariffFormatError(f"{path}.price", "is required")
    vat = data.get("vat")
    step = data.get("step_size")
    return PriceComponent(
        type=kind,
        price=_decimal(data["price"], f"{path}.price", minimum=Decimal(0)),
        vat=None if vat is None else _decimal(vat, f"{path}.vat", minimum=Decimal(0)),
        step_size=1 if step is None else _int(step, f"{path}.step_size"),
    )


def _restrictions(data: Any, path: str) -> Restrictions | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise TariffFormatError(path, "must be an object")
    values: dict[str, Any] = {}
    for name in ("start_time", "end_time"):
        if data.get(name) is not None:
            values[name] = _time(data[name], f"{path}.{name}")
    for name in ("start_date", "end_date"):
        if data.get(name) is not None:
            values[name] = _date(data[name], f"{path}.{name}")
    for name in ("min_kwh", "max_kwh", "min_current", "max_current", "min_power", "max_power"):
        if data.get(name) is not None:
            values[name] = _decimal(data[name], f"{path}.{name}")
    for name in ("min_duration", "max_duration"):
        if data.get(name) is not None:
            values[name] = _int(data[name], f"{path}.{name}")
    days = data.get("day_of_week")
    if days is not None:
        if isinstance(days, str):
            days = [days]  # seen in the wild: one day as a bare string
        if not isinstance(days, list) or any(d not in DAYS_OF_WEEK for d in days):
            raise TariffFormatError(f"{path}.day_of_week", f"{days!r} is not a list of days")
        values["day_of_week"] = tuple(days)
    reservation = data.get("reservation")
    if reservation is not None:
        if reservation not in (RESERVATION, RESERVATION_EXPIRES):
            raise TariffFormatError(
                f"{path}.reservation", f"{reservation!r} is not a ReservationRestrictionType"
            )
        values["reservation"] = reservation
    return Restrictions(**values) if values else None


def tariff_from_ocpi(data: Mapping[str, Any]) -> Tariff:
    """An OCPI 2.2.1 Tariff object (a dict, as parsed JSON) for the maths."""
    if not isinstance(data, Mapping):
        raise TariffFormatError("tariff", "must be an object")
    elements_data = data.get("elements")
    if not isinstance(elements_data, list) or not elements_data:
        raise TariffFormatError("elements", "must be a non-empty list")
    elements = []
    for i, element in enumerate(elements_data):
        path = f"elements[{i}]"
        if not isinstance(element, Mapping):
            raise TariffFormatError(path, "must be an object")
        components = element.get("price_components")
        if not isinstance(components, list) or not components:
            raise TariffFormatError(f"{path}.price_components", "must be a non-empty list")
        elements.append(
            TariffElement(
                price_components=tuple(
                    _component(c, f"{path}.price_components[{j}]") for j, c in enumerate(components)
                ),
                restrictions=_restrictions(element.get("restrictions"), f"{path}.restrictions"),
            )
        )
    currency = data.get("currency") or ""
    if not isinstance(currency, str):
        raise TariffFormatError("currency", "must be a string")
    starts, ends = data.get("start_date_time"), data.get("end_date_time")
    return Tariff(
        elements=tuple(elements),
        currency=currency,
        id=str(data.get("id") or ""),
        country_code=str(data.get("country_code") or ""),
        party_id=str(data.get("party_id") or ""),
        type=data.get("type") or None,
        min_price=_price(data.get("min_price"), "min_price"),
        max_price=_price(data.get("max_price"), "max_price"),
        start_date_time=None if starts is None else parse_datetime(starts, "start_date_time"),
        end_date_time=None if ends is None else parse_datetime(ends, "end_date_time"),
    )


def periods_from_ocpi(charging_periods: Any) -> list[ChargingPeriod]:
    """A CDR's or Session's `charging_periods` as the maths' periods, in time order."""
    if not isinstance(charging_periods, list):
        raise TariffFormatError("charging_periods", "must be a list")
    periods = []
    for i, period in enumerate(charging_periods):
        path = f"charging_periods[{i}]"
        if not isinstance(period, Mapping):
            raise TariffFormatError(path, "must be an object")
        start = parse_datetime(period.get("start_date_time"), f"{path}.start_date_time")
        dimensions = period.get("dimensions")
        if not isinstance(dimensions, list):
            raise TariffFormatError(f"{path}.dimensions", "must be a list")
        volumes: dict[str, Decimal] = {}
        for j, dimension in enumerate(dimensions):
            dpath = f"{path}.dimensions[{j}]"
            if not isinstance(dimension, Mapping) or not isinstance(dimension.get("type"), str):
                raise TariffFormatError(dpath, "must be an object with a type")
            kind = dimension["type"]
            if kind in volumes:
                raise TariffFormatError(f"{dpath}.type", f"{kind} appears twice in the period")
            volumes[kind] = _decimal(dimension.get("volume"), f"{dpath}.volume")
        periods.append(ChargingPeriod(start, volumes))
    periods.sort(key=lambda p: p.start_date_time)  # stable: equal starts keep their order
    return periods


# --- Our models --------------------------------------------------------------------------------


def tariff_from_model(tariff) -> Tariff:
    """A `stations.models.Tariff` (with its elements and price components) for the maths."""
    elements = []
    for element in tariff.elements.all():
        values: dict[str, Any] = {}
        for name in ("start_time", "end_time"):
            if getattr(element, name):
                values[name] = _time(getattr(element, name), name)
        for name in ("start_date", "end_date"):
            if getattr(element, name):
                values[name] = _date(getattr(element, name), name)
        for name in (
            "min_kwh", "max_kwh", "min_current", "max_current", "min_power", "max_power",
            "min_duration", "max_duration",
        ):  # fmt: skip
            if getattr(element, name) is not None:
                values[name] = getattr(element, name)
        if element.day_of_week:
            values["day_of_week"] = tuple(element.day_of_week)
        if element.reservation:
            values["reservation"] = element.reservation
        elements.append(
            TariffElement(
                price_components=tuple(
                    PriceComponent(type=c.type, price=c.price, vat=c.vat, step_size=c.step_size)
                    for c in element.price_components.all()
                ),
                restrictions=Restrictions(**values) if values else None,
            )
        )
    return Tariff(
        elements=tuple(elements),
        currency=tariff.currency,
        id=tariff.ocpi_id,
        country_code=tariff.country_code,
        party_id=tariff.party_id,
        type=tariff.type or None,
        min_price=_model_price(tariff.min_price_excl_vat, tariff.min_price_incl_vat),
        max_price=_model_price(tariff.max_price_excl_vat, tariff.max_price_incl_vat),
        start_date_time=tariff.start_date_time,
        end_date_time=tariff.end_date_time,
    )


def _model_price(excl: Decimal | None, incl: Decimal | None) -> Price | None:
    return None if excl is None else Price(excl, incl)
