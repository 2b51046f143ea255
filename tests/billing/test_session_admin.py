"""The sessions admin: the list (live kWh, status, partner, token, place), the detail with its
charging periods, and staff's start and stop through the charger gateway."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.utils import timezone

from billing.models import Session, Token
from billing.models_sessions import PendingStart
from billing.sessions import pending_start_register
from stations import gateway
from stations.models_simulator import SimulatedCommand
from tests.factories import EVSEFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/billing/session/"
T0 = datetime(2025, 3, 3, 7, 50, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def charge(partner, evse, *, tx, uid, wh=None, stop=False) -> Session:
    role = partner.roles.get()
    cdr_token = {"country_code": role.country_code, "party_id": role.party_id, "uid": uid,
                 "type": "RFID", "contract_id": f"C-{uid}"}  # fmt: skip
    pending_start_register(
        request_ref=f"REQ-{tx}", partner_id=partner.pk, cdr_token=cdr_token,
        auth_method="COMMAND", evse=evse,
    )  # fmt: skip
    gateway.transaction_started.send(
        sender=None, transaction_ref=tx, evse=evse, connector=evse.connectors.get(), id_tag=uid,
        meter_start_wh=Decimal(0), timestamp=T0, request_ref=f"REQ-{tx}", reservation_ref=None,
    )  # fmt: skip
    if wh is not None:
        gateway.meter_values.send(
            sender=None, transaction_ref=tx, energy_wh=Decimal(wh), power_w=Decimal(0),
            current_a=Decimal(0), charging=False, timestamp=T0 + timedelta(minutes=30),
        )  # fmt: skip
    if stop:
        gateway.transaction_stopped.send(
            sender=None, transaction_ref=tx, meter_stop_wh=Decimal(wh or 0),
            timestamp=T0 + timedelta(hours=1), reason="REMOTE",
        )  # fmt: skip
    return Session.objects.get(transaction_ref=tx)


@pytest.fixture
def sessions(make_partner):
    first, _ = make_partner("First eMSP")
    second, _ = make_partner("Second eMSP", country_code="FR", party_id="XYZ")
    return (
        charge(first, EVSEFactory(), tx="SIM-1-1", uid="AAA111", wh=2500),
        charge(second, EVSEFactory(), tx="SIM-2-1", uid="BBB222", wh=4000, stop=True),
    )


def ids_in(response) -> set[str]:
    return {s.ocpi_id for s in response.context["cl"].result_list}


def test_the_list_shows_live_kwh_and_searches_and_filters(admin_client, sessions):
    # given
    running, done = sessions

    # when
    everything = admin_client.get(CHANGELIST)
    by_token = admin_client.get(CHANGELIST, {"q": "BBB222"})
    active = admin_client.get(CHANGELIST, {"status__exact": "ACTIVE"})

    # then
    assert everything.status_code == 200
    assert ids_in(everything) == {running.ocpi_id, done.ocpi_id}
    assert ids_in(by_token) == {done.ocpi_id}
    assert ids_in(active) == {running.ocpi_id}
    page = everything.content.decode()
    assert ">2.5<" in page
    assert "AAA111" in page
    assert "Start a session" in page


def test_the_detail_shows_the_charging_periods_read_only(admin_client, sessions):
    # given
    _, done = sessions

    # when
    response = admin_client.get(f"{CHANGELIST}{done.pk}/change/")

    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert "Parking (not charging)" in page
    assert "ENERGY 4.0000 kWh" in page
    assert 'name="_save"' not in page


def test_staff_cannot_add_or_delete_sessions(admin_client, sessions):
    # when / then
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    assert admin_client.post(f"{CHANGELIST}{sessions[0].pk}/delete/").status_code == 403


def test_the_stop_action_asks_the_charger_for_running_sessions_only(admin_client, sessions):
    # given
    running, done = sessions

    # when
    response = admin_client.post(
        CHANGELIST,
        {"action": "stop_at_charger", "_selected_action": [running.pk, done.pk]},
        follow=True,
    )

    # then
    (command,) = SimulatedCommand.objects.all()
    assert (command.kind, command.params["transaction_ref"]) == ("STOP", "SIM-1-1")
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert "stop 1 session(s); 1 not running" in message


def test_the_start_button_authorizes_the_token_and_asks_the_charger(admin_client, make_partner):
    # given: a whitelisted token and a free EVSE
    partner, _ = make_partner()
    token = Token.objects.create(
        partner=partner, country_code="DE", party_id="EMS", uid="04A1B2C3", contract_id="C1",
        issuer="EMS", whitelist="ALWAYS", last_updated=timezone.now(),
    )  # fmt: skip
    evse = EVSEFactory()

    # when
    form = admin_client.get(f"{CHANGELIST}start/")
    response = admin_client.post(f"{CHANGELIST}start/", {"token": token.pk, "evse": evse.pk})

    # then
    assert form.status_code == 200
    assert response.status_code == 302
    command = SimulatedCommand.objects.get()
    assert (command.kind, command.params["id_tag"]) == ("START", "04A1B2C3")
    pending = PendingStart.objects.get()
    assert (pending.request_ref, pending.partner, pending.auth_method) == (
        command.request_ref,
        partner,
        "WHITELIST",
    )


def test_a_token_that_is_not_authorized_is_not_started(admin_client, make_partner):
    # given: a token that must always be authorized in real time
    partner, _ = make_partner()
    token = Token.objects.create(
        partner=partner, country_code="DE", party_id="EMS", uid="04A1B2C3", contract_id="C1",
        issuer="EMS", whitelist="ALWAYS", last_updated=timezone.now(),
    )  # fmt: skip
    evse = EVSEFactory()
    Token.objects.filter(pk=token.pk).update(whitelist="NEVER")

    # when: the eMSP cannot be asked (no endpoint): NEVER denies
    response = admin_client.post(f"{CHANGELIST}start/", {"token": token.pk, "evse": evse.pk})

    # then
    assert response.status_code == 200
    assert "Not authorized: NOT_ALLOWED" in response.content.decode()
    assert not SimulatedCommand.objects.exists()
    assert not PendingStart.objects.exists()


def test_staff_without_the_change_permission_may_look_but_not_charge(client, sessions):
    # given: staff who may only view sessions
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="view_session", content_type__app_label="billing")
    )
    client.force_login(user)

    # when
    listing = client.get(CHANGELIST)
    start = client.get(f"{CHANGELIST}start/")

    # then
    assert listing.status_code == 200
    assert "Start a session" not in listing.content.decode()
    assert "stop_at_charger" not in listing.content.decode()
    assert start.status_code == 403
