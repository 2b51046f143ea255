"""`manage.py price_cdr`: the tariff maths from the command line, for finance and disputes."""

import json
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

FIXTURES = Path(__file__).resolve().parents[2] / "spec" / "ocpi" / "tariff-fixtures"
EXTRA = FIXTURES / "extra" / "codeberg_issue_228"
STEP_SIZE = FIXTURES / "tandemdrive" / "step_size"


def run(*args: str) -> tuple[dict, str, str]:
    """Run the command; returns (parsed JSON output, raw stdout, stderr)."""
    out, err = StringIO(), StringIO()
    call_command("price_cdr", *args, stdout=out, stderr=err)
    return json.loads(out.getvalue(), parse_float=Decimal), out.getvalue(), err.getvalue()


def write(tmp_path: Path, name: str, data) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data, default=str))
    return str(path)


def load(path: Path):
    return json.loads(path.read_text(), parse_float=Decimal)


def price(excl: str, incl: str) -> dict:
    return {"excl_vat": Decimal(excl), "incl_vat": Decimal(incl)}


ZERO = price("0.00", "0.00")

RESERVATION_TARIFF = {
    "country_code": "NL",
    "party_id": "CPO",
    "id": "RES",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [{"type": "TIME", "price": "5.00", "vat": "20", "step_size": 60}],
            "restrictions": {"reservation": "RESERVATION"},
        },
        {
            "price_components": [
                {"type": "FLAT", "price": "0.50", "vat": "20", "step_size": 1},
                {"type": "ENERGY", "price": "0.25", "vat": "10", "step_size": 1},
            ]
        },
    ],
    "last_updated": "2025-01-01T00:00:00Z",
}
RESERVATION_CDR = {
    "start_date_time": "2025-01-13T14:00:00Z",
    "end_date_time": "2025-01-13T15:15:00Z",
    "currency": "EUR",
    "charging_periods": [
        {
            "start_date_time": "2025-01-13T14:00:00Z",
            "dimensions": [{"type": "RESERVATION_TIME", "volume": 0.25}],
        },
        {
            "start_date_time": "2025-01-13T14:15:00Z",
            "dimensions": [{"type": "ENERGY", "volume": 20}, {"type": "TIME", "volume": 1}],
            "tariff_id": "RES",
        },
    ],
}


def test_prints_the_cdr_cost_fields_as_ocpi_json():
    # when the Codeberg case is priced in Amsterdam local time with its tariff file
    data, raw, err = run(
        "--cdr", str(EXTRA / "cdr.json"), "--tariff", str(EXTRA / "tariff.json"),
        "--time-zone", "Europe/Amsterdam",
    )  # fmt: skip

    # then
    assert data == {
        "total_cost": price("1.84", "2.22"),
        "total_fixed_cost": ZERO,
        "total_energy": Decimal("8.262"),
        "total_energy_cost": price("1.84", "2.22"),
        "total_time": Decimal("0.7569444444444444444444444444"),
        "total_time_cost": ZERO,
        "total_parking_time": 0,
        "total_parking_cost": ZERO,
    }
    assert '"excl_vat": 0.00' in raw  # exact decimals, cents kept
    assert err == ""


def test_uses_the_cdrs_own_tariffs_without_tariff_option():
    data, _, _ = run("--cdr", str(EXTRA / "cdr.json"), "--time-zone", "Europe/Amsterdam")
    assert data["total_cost"] == price("1.84", "2.22")


def test_local_time_defaults_to_utc_and_says_so():
    # when no time zone is given
    data, _, err = run("--cdr", str(EXTRA / "cdr.json"))

    # then the periods are read as 12:00 and 13:00 (0.23 and 0.21): 1.88088 -> 1.88
    assert data["total_cost"] == price("1.88", "2.28")
    assert "no --time-zone given; local time is taken as UTC" in err


def test_a_time_zone_in_cdr_location_is_used(tmp_path):
    # given a CDR whose sender added a time_zone to cdr_location (not in OCPI 2.2.1)
    cdr = load(EXTRA / "cdr.json")
    cdr["cdr_location"]["time_zone"] = "Europe/Amsterdam"

    # when
    data, _, err = run("--cdr", write(tmp_path, "cdr.json", cdr))

    # then
    assert data["total_cost"] == price("1.84", "2.22")
    assert err == ""


def test_reads_response_envelopes(tmp_path):
    # given both files as OCPI responses
    envelope = {"status_code": 1000, "timestamp": "2025-08-20T14:00:00Z"}
    cdr = write(tmp_path, "cdr.json", {**envelope, "data": load(EXTRA / "cdr.json")})
    tariff = write(tmp_path, "tariff.json", {**envelope, "data": load(EXTRA / "tariff.json")})

    # when
    data, _, _ = run("--cdr", cdr, "--tariff", tariff, "--time-zone", "Europe/Amsterdam")

    # then
    assert data["total_cost"] == price("1.84", "2.22")


def test_reads_the_fixture_form_with_money_places(tmp_path):
    # given a tandemdrive fixture CDR ("tariffs": [], a partial cdr_location)
    data, raw, _ = run(
        "--cdr", str(STEP_SIZE / "cdr1.json"), "--tariff", str(STEP_SIZE / "tariff.json"),
        "--time-zone", "UTC", "--money-places", "4",
    )  # fmt: skip

    # then the fixture's totals, to 4 decimals
    assert data["total_cost"] == price("0.5502", "0.5502")
    assert data["total_time_cost"] == price("0.3002", "0.3002")
    assert data["total_parking_cost"] == price("0.2500", "0.2500")
    assert (data["total_time"], data["total_parking_time"]) == (Decimal("0.2"), Decimal("0.0334"))
    assert '"excl_vat": 0.2500' in raw


def test_a_tariff_list_is_narrowed_to_the_tariff_the_periods_name(tmp_path):
    # given a tariff list (as from GET tariffs) with a decoy first
    decoy = {**RESERVATION_TARIFF, "id": "OTHER", "elements": [{"price_components": [
        {"type": "ENERGY", "price": "9.99", "step_size": 1}
    ]}]}  # fmt: skip
    tariffs = write(tmp_path, "tariffs.json", {"data": [decoy, RESERVATION_TARIFF]})

    # when
    data, _, _ = run("--cdr", write(tmp_path, "cdr.json", RESERVATION_CDR), "--tariff", tariffs)

    # then the RES tariff priced it, reservation included (example 15 of the specification)
    assert data["total_reservation_cost"] == price("1.25", "1.50")
    assert data["total_fixed_cost"] == price("0.50", "0.60")
    assert data["total_energy_cost"] == price("5.00", "5.50")
    assert data["total_cost"] == price("6.75", "7.60")


def test_a_tariff_list_without_names_takes_the_first_valid_at_the_start(tmp_path):
    # given an expired tariff before a valid one, and periods that name no tariff
    expired = {**RESERVATION_TARIFF, "id": "OLD", "end_date_time": "2024-01-01T00:00:00Z"}
    periods = [
        {k: v for k, v in p.items() if k != "tariff_id"}
        for p in RESERVATION_CDR["charging_periods"]
    ]
    cdr = {**RESERVATION_CDR, "charging_periods": periods}
    expensive = {**RESERVATION_TARIFF, "id": "NEW", "elements": [{"price_components": [
        {"type": "ENERGY", "price": "1.00", "step_size": 1}
    ]}]}  # fmt: skip
    tariffs = write(tmp_path, "tariffs.json", [expired, expensive])

    # when
    data, _, _ = run("--cdr", write(tmp_path, "cdr.json", cdr), "--tariff", tariffs)

    # then the NEW tariff, which has no reservation element: the reserved time is free
    assert data["total_cost"] == price("20.00", "20.00")
    assert data["total_reservation_cost"] == ZERO


BAD_TARIFF = {"currency": "EUR", "elements": [{"price_components": [{"type": "KWH", "price": 1}]}]}
BAD_START = {**RESERVATION_CDR, "start_date_time": "soon"}
FUTURE_TARIFF = {**RESERVATION_TARIFF, "id": "A", "start_date_time": "2030-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({}, ["--cdr", "{tmp}/missing.json", "--tariff", "{tmp}/missing.json"], "cannot read"),
        ({"cdr.json": "{not json"}, ["--cdr", "{tmp}/cdr.json"], "is not JSON"),
        ({"cdr.json": "[1, 2]"}, ["--cdr", "{tmp}/cdr.json"], "holds 2 CDRs"),
        ({"cdr.json": '"text"'}, ["--cdr", "{tmp}/cdr.json"], "must hold a CDR object"),
        (
            {"cdr.json": RESERVATION_CDR},
            ["--cdr", "{tmp}/cdr.json"],
            "embeds no tariffs",
        ),
        (
            {"cdr.json": RESERVATION_CDR, "t.json": BAD_TARIFF},
            ["--cdr", "{tmp}/cdr.json", "--tariff", "{tmp}/t.json"],
            "elements[0].price_components[0].type",
        ),
        (
            {"cdr.json": BAD_START, "t.json": RESERVATION_TARIFF},
            ["--cdr", "{tmp}/cdr.json", "--tariff", "{tmp}/t.json"],
            "CDR start_date_time",
        ),
        (
            {"cdr.json": RESERVATION_CDR, "t.json": RESERVATION_TARIFF},
            ["--cdr", "{tmp}/cdr.json", "--tariff", "{tmp}/t.json", "--time-zone", "Mars/Base"],
            "unknown time zone",
        ),
        (
            {"cdr.json": RESERVATION_CDR, "t.json": [FUTURE_TARIFF, {**FUTURE_TARIFF, "id": "B"}]},
            ["--cdr", "{tmp}/cdr.json", "--tariff", "{tmp}/t.json"],
            "none of the tariffs is valid",
        ),
        (
            {"cdr.json": RESERVATION_CDR, "t.json": RESERVATION_TARIFF},
            ["--cdr", "{tmp}/cdr.json", "--tariff", "{tmp}/t.json", "--money-places", "-1"],
            "--money-places",
        ),
    ],
)  # fmt: skip
def test_bad_input_is_a_clear_error(tmp_path, files, args, message):
    # given
    for name, content in files.items():
        text = content if isinstance(content, str) else json.dumps(content)
        (tmp_path / name).write_text(text)

    # when / then
    with pytest.raises(CommandError) as caught:
        run(*(a.format(tmp=tmp_path) for a in args))
    assert message in str(caught.value)


def test_currency_mismatch_is_reported(tmp_path):
    cdr = write(tmp_path, "cdr.json", {**RESERVATION_CDR, "currency": "SEK"})
    data, _, err = run("--cdr", cdr, "--tariff", write(tmp_path, "t.json", RESERVATION_TARIFF))
    assert "the CDR is in SEK but the tariff in EUR" in err
    assert data["total_cost"] == price("6.75", "7.60")
