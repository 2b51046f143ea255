"""The finance exports (billing/export.py): the CDR CSV checked row by row on a small data set
(headers, exact decimals, local times across DST, credit rows, UTF-8, filters), the staff
pages behind a staff login, the admin action, the commands, and the settlement summary with
hand-checked numbers.

The data set (prices: tests/billing/cdr_factories.py; every amount below is computed by hand):
  CDR-A2     Stroomnet  2026-11-01 00:00 UTC  Amsterdam  7.5 kWh, 0.5 h          3.73 /  4.52 EUR
  CDR-B1     Müller     2026-11-01 05:30 UTC  New York  11.25 kWh, 1.5 h (0.25 p) 8.90 /  9.68 USD
  CDR-A1     Stroomnet  2026-11-03 08:15 UTC  Amsterdam  20 kWh, 1.5 h (0.25 p)  10.50 / 12.72 EUR
  CDR-A1-C   Stroomnet  credit of CDR-A1                                      -10.50 / -12.72 EUR
  CDR-A1-2   Stroomnet  the corrected CDR-A1 (energy 0.30/kWh)                  9.50 / 11.51 EUR
  CDR-B2     Müller     2026-11-20 18:00 UTC  Amsterdam  as CDR-A1             10.50 / 12.72 EUR
  CDR-OCT    Stroomnet  2026-10-25 00:30 UTC  Amsterdam, 1 h across the end of summer time
  CDR-DEC    Müller     2026-12-01 00:00 UTC  (just outside November)
"""

import csv
import io
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import RequestFactory

from billing.export import (
    EXPORT_HEADERS,
    cdr_csv,
    csv_chunks,
    export_action,
    export_rows,
    plain_decimal,
    text_cell,
)
from billing.models_cdrs import CDR
from billing.selectors import cdr_export_queryset, settlement_rows
from tests.billing.cdr_factories import CDRFactory, PartnerFactory, credit_cdr_for

BOM = "\ufeff"
NOVEMBER = {"date_from": date(2026, 11, 1), "date_to": date(2026, 12, 1)}
EXPORT_URL = "/staff/cdrs/export/"
SETTLEMENT_URL = "/staff/settlement/"
MANAGE = Path(__file__).resolve().parents[2] / "manage.py"

DOCUMENTED_HEADERS = [
    "CDR id", "Partner", "Session id",
    "Start (UTC)", "End (UTC)", "Start (local)", "End (local)", "Time zone",
    "Location id", "Location name", "Address", "Postal code", "City", "Country",
    "EVSE uid", "EVSE id", "Connector id", "Token uid", "Token type", "Contract id",
    "kWh", "Duration (h)", "Parking time (h)",
    "Energy cost excl. VAT", "Energy cost incl. VAT", "Time cost excl. VAT",
    "Time cost incl. VAT", "Parking cost excl. VAT", "Parking cost incl. VAT",
    "Fixed cost excl. VAT", "Fixed cost incl. VAT",
    "Reservation cost excl. VAT", "Reservation cost incl. VAT",
    "Total cost excl. VAT", "Total cost incl. VAT", "VAT amount", "Currency",
    "Credit", "Credit reference", "Sent at (UTC)",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def partners(db):
    return {
        "stroomnet": PartnerFactory(name="Stroomnet B.V."),
        "muller": PartnerFactory(name="Énergie Müller & Søn", role=("FR", "EMM")),
    }


@pytest.fixture
def dataset(partners):
    stroomnet, muller = partners["stroomnet"], partners["muller"]
    a1 = CDRFactory(
        ocpi_id="CDR-A1", partner=stroomnet, session_ocpi_id="SES-A1", delivered=True,
        start_date_time=datetime(2026, 11, 3, 8, 15, tzinfo=UTC), evse_uid="EVSE1",
        token_uid="04A1B2C3D4E5F6", contract_id="NL-STR-C00000001-X",
    )  # fmt: skip
    cdrs = {
        "A2": CDRFactory(
            ocpi_id="CDR-A2",
            partner=stroomnet,
            session_ocpi_id="SES-A2",
            delivered=True,
            start_date_time=datetime(2026, 11, 1, tzinfo=UTC),
            kwh=Decimal("7.5"),
            hours=Decimal("0.5"),
            parking_hours=Decimal(0),
        ),  # fmt: skip
        "B1": CDRFactory(
            new_york=True,
            ocpi_id="CDR-B1",
            partner=muller,
            session_ocpi_id="SES-B1",
            start_date_time=datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
            kwh=Decimal("11.25"),
        ),  # fmt: skip
        "A1": a1,
        "A1-C": credit_cdr_for(a1, reason="Wrong tariff applied"),
        "A1-2": CDRFactory(
            ocpi_id="CDR-A1-2",
            partner=stroomnet,
            session_ocpi_id="SES-A1",
            start_date_time=a1.start_date_time,
            energy_price=Decimal("0.30"),
            evse_uid="EVSE1",
            correction_reason="Wrong tariff applied",
            corrected_by=a1,
        ),  # fmt: skip
        "B2": CDRFactory(
            ocpi_id="CDR-B2",
            partner=muller,
            session_ocpi_id="SES-B2",
            start_date_time=datetime(2026, 11, 20, 18, 0, tzinfo=UTC),
        ),  # fmt: skip
        "OCT": CDRFactory(
            ocpi_id="CDR-OCT",
            partner=stroomnet,
            session_ocpi_id="SES-OCT",
            start_date_time=datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
            hours=Decimal(1),
            parking_hours=Decimal(0),
        ),  # fmt: skip
        "DEC": CDRFactory(
            ocpi_id="CDR-DEC",
            partner=muller,
            session_ocpi_id="SES-DEC",
            start_date_time=datetime(2026, 12, 1, tzinfo=UTC),
        ),  # fmt: skip
    }
    return cdrs


def parse(text: str) -> list[dict]:
    """The CSV text as dicts by header; asserts the BOM and the documented header row."""
    assert text.startswith(BOM)
    rows = list(csv.reader(io.StringIO(text[1:], newline="")))
    assert rows[0] == DOCUMENTED_HEADERS
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def export_text(**filters) -> str:
    return "".join(cdr_csv(cdr_export_queryset(**filters)))


def staff_client(client, *, perms=("view_cdr",)):
    user = User.objects.create_user("finance", password="pw", is_staff=True)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(user)
    return client


# --- cells ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        (Decimal("4.0000"), 2, "4.00"),
        (Decimal("0.1234"), 2, "0.1234"),
        (Decimal("12.3400"), 2, "12.34"),
        (Decimal("-10.5000"), 2, "-10.50"),
        (Decimal("1000000.0000"), 2, "1000000.00"),
        (Decimal("1E+6"), 2, "1000000.00"),
        (Decimal("0.000001"), 3, "0.000001"),
        (Decimal("1E-7"), 0, "0.0000001"),
        (Decimal("15.342000"), 3, "15.342"),
        (Decimal("20"), 3, "20.000"),
        (Decimal("-0.0000"), 2, "0.00"),
        (Decimal("123456789012.3456"), 2, "123456789012.3456"),
        (None, 2, ""),
    ],
)
def test_decimals_are_written_exactly_as_plain_digits(value, places, expected):
    # when / then
    assert plain_decimal(value, places) == expected


def test_a_float_is_refused_rather_than_written():
    # when / then
    with pytest.raises(TypeError):
        plain_decimal(0.1, 2)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"), ("+31", "'+31"), ("-1", "'-1"),
     ("@SUM(A1)", "'@SUM(A1)"), ("Zürich", "Zürich"), (None, "")],
)  # fmt: skip
def test_text_a_spreadsheet_would_run_as_a_formula_is_neutralised(value, expected):
    # when / then
    assert text_cell(value) == expected


# --- the CDR CSV, row by row ------------------------------------------------------------------


def test_the_header_row_is_the_documented_column_set(db):
    # when
    text = export_text(**NOVEMBER)
    # then: a BOM, the header row, nothing else (no CDRs)
    assert EXPORT_HEADERS == DOCUMENTED_HEADERS
    assert text == BOM + ",".join(DOCUMENTED_HEADERS) + "\r\n"


def test_a_delivered_cdr_is_exported_with_every_column(dataset):
    # when
    rows = parse(export_text(**NOVEMBER))
    # then
    a1 = next(row for row in rows if row["CDR id"] == "CDR-A1")
    assert a1 == {
        "CDR id": "CDR-A1",
        "Partner": "Stroomnet B.V.",
        "Session id": "SES-A1",
        "Start (UTC)": "2026-11-03 08:15:00",
        "End (UTC)": "2026-11-03 09:45:00",
        "Start (local)": "2026-11-03 09:15:00",
        "End (local)": "2026-11-03 10:45:00",
        "Time zone": "Europe/Amsterdam",
        "Location id": "LOC00001",
        "Location name": "Café De Gouden Leeuw",
        "Address": "Damrak 1",
        "Postal code": "1012 LG",
        "City": "Amsterdam",
        "Country": "NLD",
        "EVSE uid": "EVSE1",
        "EVSE id": "NL*CPO*EEVSE1",
        "Connector id": "1",
        "Token uid": "04A1B2C3D4E5F6",
        "Token type": "RFID",
        "Contract id": "NL-STR-C00000001-X",
        "kWh": "20.000",
        "Duration (h)": "1.500",
        "Parking time (h)": "0.250",
        # 20 kWh × 0.35; 1.25 h × 1.20; 0.25 h × 6.00; 0.50 start; incl. = × 1.21 half-up
        "Energy cost excl. VAT": "7.00",
        "Energy cost incl. VAT": "8.47",
        "Time cost excl. VAT": "1.50",
        "Time cost incl. VAT": "1.82",
        "Parking cost excl. VAT": "1.50",
        "Parking cost incl. VAT": "1.82",
        "Fixed cost excl. VAT": "0.50",
        "Fixed cost incl. VAT": "0.61",
        "Reservation cost excl. VAT": "",
        "Reservation cost incl. VAT": "",
        "Total cost excl. VAT": "10.50",
        "Total cost incl. VAT": "12.72",
        "VAT amount": "2.22",
        "Currency": "EUR",
        "Credit": "no",
        "Credit reference": "",
        "Sent at (UTC)": "2026-11-03 09:47:00",
    }


def test_rows_are_the_ranges_cdrs_by_start_time_then_creation(dataset):
    # when
    rows = parse(export_text(**NOVEMBER))
    # then: A1, its credit and its correction share a start time; ties go by id
    assert [row["CDR id"] for row in rows] == [
        "CDR-A2", "CDR-B1", "CDR-A1", "CDR-A1-C", "CDR-A1-2", "CDR-B2",
    ]  # fmt: skip


def test_the_credit_cdr_is_a_row_of_its_own_with_negated_costs(dataset):
    # when
    rows = {row["CDR id"]: row for row in parse(export_text(**NOVEMBER))}
    # then
    credit = rows["CDR-A1-C"]
    assert credit["Credit"] == "yes"
    assert credit["Credit reference"] == "CDR-A1"
    assert credit["Session id"] == "SES-A1"
    assert credit["kWh"] == "20.000"  # same content: only the money is negated
    assert [credit[h] for h in DOCUMENTED_HEADERS[23:36]] == [
        "-7.00", "-8.47", "-1.50", "-1.82", "-1.50", "-1.82", "-0.50", "-0.61", "", "",
        "-10.50", "-12.72", "-2.22",
    ]  # fmt: skip
    assert credit["Sent at (UTC)"] == ""
    # and the corrected CDR bills the session anew: 20 × 0.30 = 6.00 (7.26 incl.)
    corrected = rows["CDR-A1-2"]
    assert (corrected["Credit"], corrected["Credit reference"]) == ("no", "")
    assert corrected["Energy cost excl. VAT"] == "6.00"
    assert corrected["Total cost excl. VAT"] == "9.50"
    assert corrected["Total cost incl. VAT"] == "11.51"
    assert corrected["VAT amount"] == "2.01"


def test_local_times_follow_the_cdrs_time_zone_across_the_end_of_summer_time(dataset):
    # when
    rows = {row["CDR id"]: row for row in parse(export_text(
        date_from=date(2026, 10, 1), date_to=date(2026, 11, 2)
    ))}  # fmt: skip
    # then: Amsterdam leaves CEST at 01:00 UTC on 25 October: 02:30 twice, an hour apart
    amsterdam = rows["CDR-OCT"]
    assert (amsterdam["Start (UTC)"], amsterdam["End (UTC)"]) == (
        "2026-10-25 00:30:00", "2026-10-25 01:30:00",
    )  # fmt: skip
    assert (amsterdam["Start (local)"], amsterdam["End (local)"]) == (
        "2026-10-25 02:30:00", "2026-10-25 02:30:00",
    )  # fmt: skip
    # and New York leaves EDT at 06:00 UTC on 1 November: 01:30 EDT to 02:00 EST is 1.5 h
    new_york = rows["CDR-B1"]
    assert (new_york["Start (UTC)"], new_york["End (UTC)"]) == (
        "2026-11-01 05:30:00", "2026-11-01 07:00:00",
    )  # fmt: skip
    assert (new_york["Start (local)"], new_york["End (local)"]) == (
        "2026-11-01 01:30:00", "2026-11-01 02:00:00",
    )  # fmt: skip
    assert new_york["Time zone"] == "America/New_York"
    # and a winter-time Amsterdam CDR is UTC+1
    assert rows["CDR-A2"]["Start (local)"] == "2026-11-01 01:00:00"


def test_the_new_york_cdr_is_in_dollars_with_its_sales_tax(dataset):
    # when
    row = next(r for r in parse(export_text(**NOVEMBER)) if r["CDR id"] == "CDR-B1")
    # then: 11.25 kWh × 0.48 = 5.40; incl. × 1.08875 half-up: 5.88, 1.63, 1.63, 0.54
    assert row["Currency"] == "USD"
    assert row["Partner"] == "Énergie Müller & Søn"
    assert row["City"] == "New York"
    assert [row[h] for h in DOCUMENTED_HEADERS[20:36]] == [
        "11.250", "1.500", "0.250", "5.40", "5.88", "1.50", "1.63", "1.50", "1.63", "0.50",
        "0.54", "", "", "8.90", "9.68", "0.78",
    ]  # fmt: skip


def test_the_file_is_utf8_with_a_bom_and_keeps_accents(dataset):
    # when
    raw = export_text(**NOVEMBER).encode("utf-8")
    # then
    assert raw.startswith(b"\xef\xbb\xbf")
    assert "Énergie Müller & Søn".encode() in raw
    assert "Café De Gouden Leeuw".encode() in raw
    assert b"\r\n" in raw


def test_exotic_decimals_and_a_missing_incl_vat_total_are_written_exactly(partners):
    # given: six-decimal kWh, sub-cent money, a huge amount, and no incl. VAT figures at all
    CDRFactory(
        ocpi_id="CDR-X",
        partner=partners["stroomnet"],
        start_date_time=datetime(2026, 11, 5, tzinfo=UTC),
        total_energy=Decimal("12.345678"),
        total_time=Decimal("0.000001"),
        total_energy_cost_excl_vat=Decimal("0.1234"),
        total_cost_excl_vat=Decimal("9999999999.9999"),
        total_cost_incl_vat=None,
        total_energy_cost_incl_vat=None,
        total_parking_time=None,
    )
    # when
    (row,) = parse(export_text(**NOVEMBER))
    # then
    assert row["kWh"] == "12.345678"
    assert row["Duration (h)"] == "0.000001"
    assert row["Parking time (h)"] == ""
    assert row["Energy cost excl. VAT"] == "0.1234"
    assert row["Energy cost incl. VAT"] == ""
    assert row["Total cost excl. VAT"] == "9999999999.9999"
    assert (row["Total cost incl. VAT"], row["VAT amount"]) == ("", "")


def test_partner_supplied_text_cannot_become_a_spreadsheet_formula(partners):
    # given: a partner pushed a token whose contract id is a formula
    CDRFactory(
        partner=partners["stroomnet"], start_date_time=datetime(2026, 11, 5, tzinfo=UTC),
        contract_id='=HYPERLINK("http://evil.example","x")', token_uid="@SUM(1)",
    )  # fmt: skip
    # when
    (row,) = parse(export_text(**NOVEMBER))
    # then
    assert row["Contract id"] == '\'=HYPERLINK("http://evil.example","x")'
    assert row["Token uid"] == "'@SUM(1)"


def test_an_unknown_time_zone_leaves_the_local_times_empty(partners):
    # given
    CDRFactory(
        partner=partners["stroomnet"], start_date_time=datetime(2026, 11, 5, tzinfo=UTC),
        time_zone="Mars/Olympus_Mons",
    )  # fmt: skip
    # when
    (row,) = parse(export_text(**NOVEMBER))
    # then
    assert (row["Start (UTC)"], row["Start (local)"], row["End (local)"]) == (
        "2026-11-05 00:00:00", "", "",
    )  # fmt: skip
    assert row["Time zone"] == "Mars/Olympus_Mons"


def test_the_range_is_half_open_in_utc(dataset):
    # when
    november = [row["CDR id"] for row in parse(export_text(**NOVEMBER))]
    first_day = [row["CDR id"] for row in parse(export_text(
        date_from=datetime(2026, 11, 1, 6, 0, tzinfo=UTC), date_to=date(2026, 11, 2)
    ))]  # fmt: skip
    # then: 1 Nov 00:00 UTC is in November, 1 Dec 00:00 UTC is not; 25 Oct is not
    assert "CDR-A2" in november
    assert "CDR-DEC" not in november
    assert "CDR-OCT" not in november
    assert first_day == []  # from 06:00 UTC: neither 00:00 nor 05:30 is in range
    assert [row["CDR id"] for row in parse(export_text(
        date_from=datetime(2026, 11, 1, 5, 30, tzinfo=UTC), date_to=date(2026, 11, 2)
    ))] == ["CDR-B1"]  # fmt: skip


def test_the_partner_filter_keeps_only_that_partners_cdrs(dataset, partners):
    # when
    rows = parse(export_text(**NOVEMBER, partner=partners["muller"]))
    # then
    assert [row["CDR id"] for row in rows] == ["CDR-B1", "CDR-B2"]
    assert {row["Partner"] for row in rows} == {"Énergie Müller & Søn"}


def test_the_export_reads_only_its_columns_in_one_query(dataset, django_assert_num_queries):
    # given
    queryset = cdr_export_queryset(**NOVEMBER)
    # when: the whole export, fetched two rows at a time
    with django_assert_num_queries(1):
        rows = list(export_rows(queryset, chunk_size=2))
        text = "".join(csv_chunks(iter(rows)))
    # then: small flat rows (no JSON documents, no tariffs or periods), all of them written
    assert len(rows) == 6
    assert "cdr_location" not in rows[0]
    assert "charging_periods" not in rows[0]
    assert "tariffs" not in rows[0]
    assert len(parse(text)) == 6


def test_the_csv_is_produced_lazily_in_chunks():
    # given: rows that could be endless
    def endless():
        n = 0
        while True:
            n += 1
            yield n

    columns = [("n", str)]
    # when
    chunks = csv_chunks(endless(), columns, rows_per_chunk=3)
    first, second, third = next(chunks), next(chunks), next(chunks)
    # then
    assert first == BOM + "n\r\n"
    assert second == "1\r\n2\r\n3\r\n"
    assert third == "4\r\n5\r\n6\r\n"


# --- the staff page ---------------------------------------------------------------------------


def test_the_export_page_needs_a_staff_login(dataset, client):
    # when
    response = client.get(EXPORT_URL, {"date_from": "2026-11-01", "date_to": "2026-12-01"})
    # then: the admin login, and no CSV
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/staff/cdrs/export/")


def test_the_export_page_needs_the_permission_to_view_cdrs(dataset, client):
    # given: staff, but not allowed to see CDRs
    staff_client(client, perms=())
    # when
    response = client.get(EXPORT_URL, {"date_from": "2026-11-01", "date_to": "2026-12-01"})
    # then
    assert response.status_code == 403
    assert not isinstance(response, StreamingHttpResponse)


def test_the_export_page_shows_the_form(dataset, client):
    # given
    staff_client(client)
    # when
    response = client.get(EXPORT_URL)
    # then
    assert response.status_code == 200
    content = response.content.decode()
    assert 'name="date_from"' in content
    assert 'name="date_to"' in content
    assert "Énergie Müller &amp; Søn" in content  # the partner filter
    assert "Download CSV" in content


def test_the_export_page_streams_the_csv(dataset, client):
    # given
    staff_client(client)
    # when
    response = client.get(EXPORT_URL, {"date_from": "2026-11-01", "date_to": "2026-12-01"})
    # then
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="cdrs_2026-11-01_2026-12-01.csv"'
    )
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body == export_text(**NOVEMBER)
    assert len(parse(body)) == 6


@pytest.mark.django_db(transaction=True)
def test_the_streamed_export_runs_in_its_own_transaction_and_ends_it(client):
    # given: real request transactions (ATOMIC_REQUESTS), a few CDRs
    for day in (2, 3, 4):
        CDRFactory(partner=PartnerFactory(name="Stroomnet B.V."),
                   start_date_time=datetime(2026, 11, day, tzinfo=UTC))  # fmt: skip
    staff_client(client)
    params = {"date_from": "2026-11-01", "date_to": "2026-12-01"}
    # when: a download read to the end, and one the client abandons after the header
    whole = client.get(EXPORT_URL, params)
    body = b"".join(whole.streaming_content).decode("utf-8")
    whole.close()
    abandoned = client.get(EXPORT_URL, params)
    first = next(iter(abandoned.streaming_content))
    in_transaction_while_streaming = connection.in_atomic_block
    abandoned.close()
    # then
    assert len(parse(body)) == 3
    assert first.decode("utf-8").startswith(BOM + "CDR id,")
    assert in_transaction_while_streaming
    assert not connection.in_atomic_block


def test_the_export_page_filters_by_partner(dataset, partners, client):
    # given
    staff_client(client)
    # when
    response = client.get(
        EXPORT_URL,
        {"date_from": "2026-11-01", "date_to": "2026-12-01", "partner": partners["muller"].pk},
    )
    # then
    assert response["Content-Disposition"] == (
        'attachment; filename="cdrs_2026-11-01_2026-12-01_energie-muller-sn.csv"'
    )
    rows = parse(b"".join(response.streaming_content).decode("utf-8"))
    assert [row["CDR id"] for row in rows] == ["CDR-B1", "CDR-B2"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"date_from": "2026-12-01", "date_to": "2026-11-01"}, "must be after"),
        ({"date_from": "2026-11-01", "date_to": "2026-11-01"}, "must be after"),
        ({"date_from": "1 Nov", "date_to": "2026-12-01"}, "Enter a valid date"),
        ({"date_from": "2026-11-01"}, "This field is required"),
        ({"date_from": "2026-11-01", "date_to": "2026-12-01", "partner": "999999"},
         "Select a valid choice"),
    ],
)  # fmt: skip
def test_a_bad_export_request_shows_the_form_with_the_error(dataset, client, params, message):
    # given
    staff_client(client)
    # when
    response = client.get(EXPORT_URL, params)
    # then
    assert response.status_code == 400
    assert not isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/html")
    assert message in response.content.decode()


def test_the_admin_index_has_a_finance_box(admin_client):
    # when
    response = admin_client.get("/admin/")
    # then
    content = response.content.decode()
    assert 'id="finance-module"' in content
    assert f'href="{EXPORT_URL}"' in content
    assert f'href="{SETTLEMENT_URL}"' in content


# --- the admin action ---------------------------------------------------------------------


def test_the_admin_action_exports_the_selected_cdrs(dataset, admin_user):
    # given: two CDRs selected on the changelist
    request = RequestFactory().post("/admin/billing/cdr/")
    request.user = admin_user
    selected = CDR.objects.filter(ocpi_id__in=["CDR-B2", "CDR-OCT"])
    # when
    response = export_action(None, request, selected)
    # then: streamed, by start time
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Disposition"].startswith('attachment; filename="cdrs_selected_')
    rows = parse(b"".join(response.streaming_content).decode("utf-8"))
    assert [row["CDR id"] for row in rows] == ["CDR-OCT", "CDR-B2"]
    assert export_action.short_description == "Export selected to CSV"


def test_the_cdr_changelist_offers_the_export_action(dataset, admin_client):
    # given: "select all" on the changelist filtered to one partner
    muller = CDR.objects.get(ocpi_id="CDR-B1").partner
    changelist = f"/admin/billing/cdr/?partner__id__exact={muller.pk}"
    # when
    page = admin_client.get(changelist)
    response = admin_client.post(
        changelist,
        {"action": "export_action", "select_across": "1", "index": "0",
         "_selected_action": [CDR.objects.get(ocpi_id="CDR-B1").pk]},
    )  # fmt: skip
    # then: the filtered list (all of it), as the finance CSV
    assert "Export selected to CSV" in page.content.decode()
    assert isinstance(response, StreamingHttpResponse)
    rows = parse(b"".join(response.streaming_content).decode("utf-8"))
    assert [row["CDR id"] for row in rows] == ["CDR-B1", "CDR-B2", "CDR-DEC"]


# --- the command ------------------------------------------------------------------------------


def test_the_command_writes_the_file_with_progress_on_stderr(dataset, tmp_path):
    # given
    output = tmp_path / "november.csv"
    stdout, stderr = io.StringIO(), io.StringIO()
    # when
    call_command(
        "export_cdrs", "--from", "2026-11-01", "--to", "2026-12-01", "--output", str(output),
        "--progress-every", "2", stdout=stdout, stderr=stderr,
    )  # fmt: skip
    # then: the same bytes as the staff page, nothing on stdout, progress every 2 rows
    assert output.read_bytes().decode("utf-8") == export_text(**NOVEMBER)
    assert stdout.getvalue() == ""
    lines = stderr.getvalue().splitlines()
    assert lines[0].startswith("export_cdrs: 2/6 rows (33%), ")
    assert lines[1].startswith("export_cdrs: 4/6 rows (67%), ")
    assert lines[2].startswith("export_cdrs: 6/6 rows (100%), ")
    assert lines[3].startswith(f"export_cdrs: wrote 6 rows to {output} in ")
    assert all(line.endswith("rows/s)") or line.endswith("rows/s") for line in lines)
    assert list(tmp_path.iterdir()) == [output]  # the temporary file is gone


def test_the_command_writes_to_stdout_without_progress(dataset):
    # given
    stdout, stderr = io.StringIO(), io.StringIO()
    # when
    call_command(
        "export_cdrs", "--from", "2026-11-01", "--to", "2026-12-01",
        "--partner", "énergie müller & søn", stdout=stdout, stderr=stderr,
    )  # fmt: skip
    # then: the partner is found case-insensitively
    assert [row["CDR id"] for row in parse(stdout.getvalue())] == ["CDR-B1", "CDR-B2"]
    assert stderr.getvalue() == ""


def test_the_command_takes_date_times_with_an_offset_and_can_leave_out_the_bom(dataset):
    # given
    stdout = io.StringIO()
    # when: 06:30+01:00 is 05:30 UTC
    call_command(
        "export_cdrs", "--from", "2026-11-01T06:30:00+01:00", "--to", "2026-11-02",
        "--no-bom", stdout=stdout,
    )  # fmt: skip
    # then
    text = stdout.getvalue()
    assert text.startswith("CDR id,Partner,")
    assert [row["CDR id"] for row in parse(BOM + text)] == ["CDR-B1"]


@pytest.mark.parametrize(
    ("args", "returncode", "message"),
    [
        (["--partner", "Nobody"], 2, "unknown partner 'Nobody'"),
        (["--from", "2026-12-01"], 2, "--to must be after --from"),
        (["--output", "/nonexistent-dir/x.csv"], 1, "cannot write /nonexistent-dir/x.csv"),
    ],
)
def test_the_command_fails_cleanly(dataset, args, returncode, message):
    # given
    options = {"--from": "2026-11-01", "--to": "2026-12-01"}
    argv = []
    for name, value in options.items():
        if name not in args:
            argv += [name, value]
    # when
    with pytest.raises(CommandError) as failure:
        call_command("export_cdrs", *argv, *args, stdout=io.StringIO(), stderr=io.StringIO())
    # then
    assert failure.value.returncode == returncode
    assert message in str(failure.value)
    assert not Path("/nonexistent-dir").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export_cdrs", "--from", "01-11-2026", "--to", "2026-12-01"],
         "argument --from: '01-11-2026' is not a date"),
        (["export_cdrs", "--from", "2026-11-01"], "the following arguments are required: --to"),
        (["export_settlement", "--month", "2026-13"], "argument --month: '2026-13' is not a month"),
        (["export_settlement", "--month", "Nov"], "argument --month: 'Nov' is not a month"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_with_2_and_a_clean_message(argv, message):
    # when: the real command line (argparse's own exit code and usage message)
    result = subprocess.run(
        [sys.executable, str(MANAGE), *argv],
        capture_output=True, text=True, timeout=60, env={**os.environ, "DEBUG": "true"},
    )  # fmt: skip
    # then
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


# --- the settlement summary -------------------------------------------------------------------


def by_partner(rows: list[dict]) -> dict:
    return {(row["partner"], row["currency"]): row for row in rows}


def test_the_settlement_numbers_are_the_hand_checked_ones(dataset):
    # when
    rows = settlement_rows(**NOVEMBER)
    # then: one row per partner and currency in November; credits netted
    assert {row["month"] for row in rows} == {date(2026, 11, 1)}
    summary = by_partner(rows)
    assert set(summary) == {
        ("Stroomnet B.V.", "EUR"), ("Énergie Müller & Søn", "EUR"),
        ("Énergie Müller & Søn", "USD"),
    }  # fmt: skip
    stroomnet = summary[("Stroomnet B.V.", "EUR")]
    # A2 + A1 + A1-2 charged, A1-C credited; sessions SES-A1 and SES-A2
    assert (stroomnet["sessions"], stroomnet["cdrs"], stroomnet["credit_cdrs"]) == (2, 3, 1)
    assert stroomnet["kwh"] == Decimal("27.5")  # 7.5 + 20 - 20 + 20
    assert stroomnet["charged_excl_vat"] == Decimal("23.73")  # 3.73 + 10.50 + 9.50
    assert stroomnet["charged_incl_vat"] == Decimal("28.75")  # 4.52 + 12.72 + 11.51
    assert stroomnet["credited_excl_vat"] == Decimal("-10.50")
    assert stroomnet["credited_incl_vat"] == Decimal("-12.72")
    assert stroomnet["net_excl_vat"] == Decimal("13.23")  # = A2 + A1-2
    assert stroomnet["net_incl_vat"] == Decimal("16.03")
    assert stroomnet["vat"] == Decimal("2.80")
    euro = summary[("Énergie Müller & Søn", "EUR")]
    assert (euro["sessions"], euro["cdrs"], euro["credit_cdrs"]) == (1, 1, 0)
    assert (euro["kwh"], euro["net_excl_vat"], euro["net_incl_vat"], euro["vat"]) == (
        Decimal(20), Decimal("10.50"), Decimal("12.72"), Decimal("2.22"),
    )  # fmt: skip
    assert (euro["credited_excl_vat"], euro["credited_incl_vat"]) == (0, 0)
    dollar = summary[("Énergie Müller & Søn", "USD")]
    assert (dollar["kwh"], dollar["net_excl_vat"], dollar["net_incl_vat"], dollar["vat"]) == (
        Decimal("11.25"), Decimal("8.90"), Decimal("9.68"), Decimal("0.78"),
    )  # fmt: skip


def test_a_credit_stored_with_positive_totals_still_nets(partners):
    # given: a partner-style credit CDR whose amounts were not negated
    original = CDRFactory(
        partner=partners["stroomnet"], start_date_time=datetime(2026, 11, 5, tzinfo=UTC)
    )
    credit_cdr_for(
        original, total_cost_excl_vat=Decimal("10.50"), total_cost_incl_vat=Decimal("12.72")
    )
    # when
    (row,) = settlement_rows(**NOVEMBER)
    # then
    assert (row["net_excl_vat"], row["net_incl_vat"], row["kwh"]) == (0, 0, 0)
    assert (row["cdrs"], row["credit_cdrs"], row["sessions"]) == (1, 1, 1)


def test_the_settlement_of_a_month_sums_that_months_export(dataset):
    # given
    rows = parse(export_text(**NOVEMBER))
    # when
    summary = by_partner(settlement_rows(**NOVEMBER))
    # then
    for (partner, currency), totals in summary.items():
        mine = [r for r in rows if (r["Partner"], r["Currency"]) == (partner, currency)]
        assert sum(Decimal(r["Total cost excl. VAT"]) for r in mine) == totals["net_excl_vat"]
        assert sum(Decimal(r["Total cost incl. VAT"]) for r in mine) == totals["net_incl_vat"]


def test_the_settlement_is_per_month(dataset):
    # when: October to December
    rows = settlement_rows(date_from=date(2026, 10, 1), date_to=date(2027, 1, 1))
    # then
    months = sorted({(row["month"], row["partner"]) for row in rows})
    assert months[0] == (date(2026, 10, 1), "Stroomnet B.V.")
    assert months[-1] == (date(2026, 12, 1), "Énergie Müller & Søn")
    october = [row for row in rows if row["month"] == date(2026, 10, 1)]
    # 20 kWh × 0.35 + 1 h × 1.20 + 0.50
    assert [(r["cdrs"], r["net_excl_vat"]) for r in october] == [(1, Decimal("8.70"))]


def test_the_settlement_page_shows_the_table(dataset, client):
    # given
    staff_client(client)
    # when
    response = client.get(SETTLEMENT_URL, {"month_from": "2026-11", "month_to": "2026-11"})
    # then
    assert response.status_code == 200
    rows = {(r[1], r[2]): r for r in response.context["rows"]}
    assert rows[("Stroomnet B.V.", "EUR")] == [
        "2026-11", "Stroomnet B.V.", "EUR", "2", "3", "1", "27.500", "23.73", "28.75",
        "-10.50", "-12.72", "13.23", "16.03", "2.80",
    ]  # fmt: skip
    content = response.content.decode()
    assert "<td>Stroomnet B.V.</td>" in content
    assert '<td class="num">16.03</td>' in content
    assert "Download as CSV" in content
    assert "date_from=2026-11-01&amp;date_to=2026-12-01" in content  # the matching CDR export


def test_the_settlement_page_defaults_to_last_month(db, client):
    # given
    staff_client(client)
    # when
    response = client.get(SETTLEMENT_URL)
    # then
    assert response.status_code == 200
    assert response.context["form"].is_valid()
    assert "No CDRs in this period." in response.content.decode()


def test_the_settlement_page_gives_the_csv(dataset, partners, client):
    # given
    staff_client(client)
    # when
    response = client.get(
        SETTLEMENT_URL,
        {"month_from": "2026-11", "month_to": "2026-11", "partner": partners["stroomnet"].pk,
         "format": "csv"},
    )  # fmt: skip
    # then
    assert response["Content-Disposition"] == (
        'attachment; filename="settlement_2026-11-01_2026-12-01_stroomnet-bv.csv"'
    )
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text == (
        BOM + "Month,Partner,Currency,Sessions,CDRs,Credit CDRs,kWh (net),Charged excl. VAT,"
        "Charged incl. VAT,Credited excl. VAT,Credited incl. VAT,Net revenue excl. VAT,"
        "Net revenue incl. VAT,VAT (net)\r\n"
        "2026-11,Stroomnet B.V.,EUR,2,3,1,27.500,23.73,28.75,-10.50,-12.72,13.23,16.03,2.80\r\n"
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"month_from": "2026-11", "month_to": "2026-10"}, "must not be before"),
        ({"month_from": "November", "month_to": "2026-11"}, "Enter a month as YYYY-MM."),
    ],
)
def test_a_bad_settlement_request_shows_the_error(db, client, params, message):
    # given
    staff_client(client)
    # when
    response = client.get(SETTLEMENT_URL, params)
    # then
    assert response.status_code == 400
    assert message in response.content.decode()


def test_the_settlement_page_needs_a_staff_login(db, client):
    # when
    response = client.get(SETTLEMENT_URL)
    # then
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_settlement_command_writes_the_month(dataset, tmp_path, client):
    # given
    output = tmp_path / "settlement.csv"
    stderr = io.StringIO()
    # when
    call_command("export_settlement", "--month", "2026-11", "--output", str(output), stderr=stderr)
    stdout = io.StringIO()
    call_command("export_settlement", "--month", "2026-11", stdout=stdout)
    # then: the file, stdout and the staff page's CSV are the same
    staff_client(client)
    page = client.get(
        SETTLEMENT_URL, {"month_from": "2026-11", "month_to": "2026-11", "format": "csv"}
    )
    expected = b"".join(page.streaming_content).decode("utf-8")
    assert output.read_bytes().decode("utf-8") == expected
    assert stdout.getvalue() == expected
    assert len(expected.splitlines()) == 4  # header + three partner/currency rows
    assert f"wrote 3 rows for 2026-11 to {output}" in stderr.getvalue()


def test_the_settlement_command_rejects_an_unknown_partner(db):
    # when
    with pytest.raises(CommandError) as failure:
        call_command("export_settlement", "--month", "2026-11", "--partner", "Nobody")
    # then
    assert failure.value.returncode == 2
    assert "unknown partner 'Nobody'" in str(failure.value)
