"""The CDR admin: the read-only list and detail with the OCPI JSON, "Credit and correct" with a
reason, "Retry delivery" for CDRs that did not reach their partner, and the reconciliation page."""

import html
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages

from billing.cdrs import cdr_create_for_session
from billing.models_cdrs import CDR
from billing.sessions import pending_start_register
from ocpi.models import OutboxMessage
from stations import gateway
from tests.factories import EVSEFactory, TariffFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/billing/cdr/"
T0 = datetime(2025, 3, 3, 7, 50, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def session_cdr(partner, *, tx="TX-1", kwh=10) -> CDR:
    """The CDR of a one-hour session charging `kwh` at 0.30/kWh excl. 21 % VAT."""
    tariff = TariffFactory()
    evse = EVSEFactory(connectors=0)
    evse.connectors.create(
        ocpi_id="1", standard="IEC_62196_T2", format="SOCKET", power_type="AC_3_PHASE",
        max_voltage=230, max_amperage=32, tariff_ids=[tariff.ocpi_id],
    )  # fmt: skip
    pending_start_register(
        request_ref=f"REQ-{tx}", partner_id=partner.pk,
        cdr_token={"country_code": "DE", "party_id": "EMS", "uid": "AAA111", "type": "RFID",
                   "contract_id": "DE-EMS-C1"},
        auth_method="COMMAND", evse=evse,
    )  # fmt: skip
    gateway.transaction_started.send(
        sender=None, transaction_ref=tx, evse=evse, connector=evse.connectors.get(),
        id_tag="AAA111", meter_start_wh=Decimal(0), timestamp=T0, request_ref=f"REQ-{tx}",
        reservation_ref=None,
    )  # fmt: skip
    gateway.transaction_stopped.send(
        sender=None, transaction_ref=tx, meter_stop_wh=Decimal(kwh * 1000),
        timestamp=T0 + timedelta(hours=1), reason="REMOTE",
    )  # fmt: skip
    return cdr_create_for_session(session=partner.sessions.get(transaction_ref=tx))


@pytest.fixture
def partner(make_partner):
    return make_partner("First eMSP")[0]


@pytest.fixture
def cdr(partner):
    return session_cdr(partner)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_list_shows_partner_session_energy_cost_and_states(admin_client, cdr, make_partner):
    # given: another partner's CDR too
    other, _ = make_partner("Second eMSP", country_code="FR", party_id="XYZ")
    session_cdr(other, tx="TX-2", kwh=5)

    # when
    everything = admin_client.get(CHANGELIST)
    filtered = admin_client.get(CHANGELIST, {"partner__id__exact": other.pk})
    searched = admin_client.get(CHANGELIST, {"q": cdr.ocpi_id})

    # then
    assert everything.status_code == 200
    page = everything.content.decode()
    for text in (cdr.ocpi_id, "First eMSP", "10", "3.63 EUR", "Not sent (no receiver endpoint)",
                 "Not checked", "Reconciliation"):  # fmt: skip
        assert text in page, text
    assert [c.partner for c in filtered.context["cl"].result_list] == [other]
    assert [c.pk for c in searched.context["cl"].result_list] == [cdr.pk]


def test_the_detail_is_read_only_and_shows_the_ocpi_json(admin_client, cdr):
    # when
    response = admin_client.get(f"{CHANGELIST}{cdr.pk}/change/")

    # then: the JSON partners get, indented
    page = html.unescape(response.content.decode())
    assert response.status_code == 200
    assert f'  "id": "{cdr.ocpi_id}",' in page
    assert '"total_cost": {\n    "excl_vat": 3,\n    "incl_vat": 3.63\n  }' in page
    assert "Credit and correct" in page
    assert 'name="_save"' not in page
    assert admin_client.post(f"{CHANGELIST}{cdr.pk}/delete/").status_code == 403


def test_credit_and_correct_makes_both_cdrs_with_the_reason(admin_client, cdr):
    # when: staff correct the energy to 8 kWh
    response = admin_client.post(
        f"{CHANGELIST}{cdr.pk}/credit/", {"reason": "Meter over-read", "total_energy": "8"}
    )

    # then
    assert response.status_code == 302
    credit = CDR.objects.get(credit=True)
    corrected = CDR.objects.get(corrected_by=cdr, credit=False)
    assert (credit.credit_reference_id, credit.total_cost_excl_vat) == (
        cdr.ocpi_id, Decimal("-3.00")
    )  # fmt: skip
    assert (corrected.ocpi_id, corrected.total_energy) == (f"{cdr.ocpi_id}-R1", Decimal(8))
    assert (corrected.total_cost_excl_vat, corrected.total_cost_incl_vat) == (
        Decimal("2.40"), Decimal("2.90")
    )  # fmt: skip
    assert corrected.correction_reason == "Meter over-read"
    assert LogEntry.objects.filter(object_id__in=[str(credit.pk), str(corrected.pk)]).count() == 2
    assert messages_of(response) == [
        f"{cdr.ocpi_id}: made {credit.ocpi_id}, {corrected.ocpi_id}; they go to the partner "
        "like any CDR."
    ]


def test_a_credit_only_needs_a_reason_and_happens_once(admin_client, cdr):
    # when: no reason
    refused = admin_client.post(f"{CHANGELIST}{cdr.pk}/credit/", {"reason": ""})

    # then
    assert refused.status_code == 200
    assert refused.context["form"].errors["reason"]
    assert CDR.objects.count() == 1

    # when: a reason, no correction
    admin_client.post(f"{CHANGELIST}{cdr.pk}/credit/", {"reason": "Refund"})
    again = admin_client.post(f"{CHANGELIST}{cdr.pk}/credit/", {"reason": "Refund twice"})

    # then: one credit; the second attempt is refused on the form
    assert CDR.objects.filter(credit=True).count() == 1
    assert CDR.objects.count() == 2
    assert "credited already" in str(again.context["form"].non_field_errors())
    detail = admin_client.get(f"{CHANGELIST}{cdr.pk}/change/").content.decode()
    assert "Credit and correct</a>" not in detail


def test_the_action_opens_the_form_for_one_cdr(admin_client, cdr, partner):
    # given
    other = session_cdr(partner, tx="TX-2")

    # when
    one = admin_client.post(
        CHANGELIST, {"action": "credit_and_correct", "_selected_action": [cdr.pk]}
    )
    two = admin_client.post(
        CHANGELIST, {"action": "credit_and_correct", "_selected_action": [cdr.pk, other.pk]},
        follow=True,
    )  # fmt: skip

    # then
    assert one.status_code == 302
    assert one["Location"] == f"{CHANGELIST}{cdr.pk}/credit/"
    assert "Select exactly one CDR to credit." in messages_of(two)
    assert CDR.objects.count() == 2


def test_retry_delivery_resets_a_failed_push(admin_client, make_partner):
    # given: a CDR whose POST the partner rejected
    partner, _ = make_partner(
        "Receiver",
        endpoints=[{"identifier": "cdrs", "role": "RECEIVER", "url": "http://127.0.0.1:9/cdrs"}],
    )
    cdr = session_cdr(partner)
    row = OutboxMessage.objects.get(module="cdrs")
    OutboxMessage.objects.filter(pk=row.pk).update(state="FAILED", last_error="HTTP 400")
    CDR.objects.filter(pk=cdr.pk).update(delivery=CDR.Delivery.FAILED)
    detail = admin_client.get(f"{CHANGELIST}{cdr.pk}/change/").content.decode()

    # when
    response = admin_client.post(f"{CHANGELIST}{cdr.pk}/retry/")

    # then
    assert "Retry delivery" in detail
    assert response.status_code == 302
    row.refresh_from_db()
    cdr.refresh_from_db()
    assert (row.state, cdr.delivery) == ("PENDING", CDR.Delivery.PENDING)
    assert messages_of(response) == [f"{cdr.ocpi_id}: delivery retried."]
    assert OutboxMessage.objects.filter(module="cdrs").count() == 1


def test_a_delivered_cdr_cannot_be_retried(admin_client, cdr):
    # given
    CDR.objects.filter(pk=cdr.pk).update(delivery=CDR.Delivery.DELIVERED)

    # when
    response = admin_client.post(f"{CHANGELIST}{cdr.pk}/retry/")

    # then
    assert messages_of(response) == [f"{cdr.ocpi_id} was delivered; it is never sent twice."]
    assert not OutboxMessage.objects.filter(module="cdrs").exists()


def test_the_reconciliation_page_counts_per_partner(admin_client, cdr, partner):
    # given: a second session of the partner that ended without a CDR
    session_cdr(partner, tx="TX-2").delete()

    # when
    response = admin_client.get(f"{CHANGELIST}reconciliation/")

    # then
    assert response.status_code == 200
    (row,) = response.context["rows"]
    assert (row["status"].partner, row["status"].sessions_without_cdr) == ("First eMSP", 1)
    assert row["status"].not_sent == 1
    assert (
        f"?partner__id__exact={partner.pk}&amp;delivery__exact=FAILED" in response.content.decode()
    )


def test_staff_who_may_only_view_cannot_credit_or_retry(client, cdr):
    # given
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_cdr"))
    client.force_login(user)

    # when
    detail = client.get(f"{CHANGELIST}{cdr.pk}/change/")
    credit = client.post(f"{CHANGELIST}{cdr.pk}/credit/", {"reason": "No"})
    retry = client.post(f"{CHANGELIST}{cdr.pk}/retry/")

    # then
    assert detail.status_code == 200
    assert "Credit and correct" not in detail.content.decode()
    assert (credit.status_code, retry.status_code) == (403, 403)
    assert CDR.objects.count() == 1
