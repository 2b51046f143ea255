"""Pulling tokens from a partner's tokens Sender (PROTOCOL.md §4.5, §1.8), over real HTTP to the
test eMSP: pagination by Link, idempotency, resuming with date_from, the Celery tasks and the
partner admin's "sync tokens now"."""

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.messages import get_messages

from billing.models import Token
from cpo_platform.celery import app
from ocpi import tasks as ocpi_tasks
from ocpi import token_sync as sync_module
from ocpi.datetimes import format_datetime, now_utc
from ocpi.exceptions import (
    MethodNotAllowedInState,
    NoMatchingEndpoints,
    PartnerRejected,
    PartnerUnavailable,
)
from ocpi.models import Partner
from ocpi.token_sync import SYNC_OVERLAP, sync_tokens_task, token_sync
from tests.emsp_server import EMSPServer

pytestmark = pytest.mark.django_db

TOKENS_PATH = "/ocpi/emsp/2.2.1/tokens"


def emsp_token(n: int, **overrides) -> dict:
    return {
        "country_code": "DE",
        "party_id": "EMS",
        "uid": f"CARD{n:04d}",
        "type": "RFID",
        "contract_id": f"DE-EMS-C{n:05d}",
        "issuer": "Test eMSP",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2025-01-01T00:00:00Z",
    } | overrides


@pytest.fixture
def emsp():
    server = EMSPServer()
    server.tokens = [emsp_token(n) for n in range(1, 6)]
    yield server
    server.stop()


@pytest.fixture
def partner(make_partner, emsp):
    """A registered eMSP (DE*EMS) with a tokens SENDER endpoint, pulled 2 tokens a page."""
    partner, _ = make_partner(
        "Test eMSP",
        endpoints=[{"identifier": "tokens", "role": "SENDER", "url": emsp.endpoint("tokens")}],
        page_size=2,
        request_timeout=2.0,
    )
    emsp.accepted_tokens.add(partner.outbound_token)
    return partner


def token_gets(emsp: EMSPServer) -> list[dict]:
    """The query of each GET the eMSP received on its tokens endpoint, in order."""
    return [
        {k: v[0] for k, v in parse_qs(urlsplit(r.path).query).items()}
        for r in emsp.received("GET", TOKENS_PATH)
    ]


def test_full_sync_follows_the_link_pages_and_stores_every_token(partner, emsp):
    # given
    before = now_utc()
    # when
    report = token_sync(partner_id=partner.pk)
    # then: three pages of at most 2, each following the previous page's Link
    assert token_gets(emsp) == [
        {"limit": "2"},
        {"offset": "2", "limit": "2"},
        {"offset": "4", "limit": "2"},
    ]
    assert (report.pages, report.received, report.created, report.rejected) == (3, 5, 5, 0)
    assert report.date_from is None
    stored = Token.objects.order_by("uid")
    assert [t.uid for t in stored] == [f"CARD{n:04d}" for n in range(1, 6)]
    assert {t.partner_id for t in stored} == {partner.pk}
    assert stored[0].contract_id == "DE-EMS-C00001"
    assert stored[0].last_updated == datetime(2025, 1, 1, tzinfo=UTC)
    partner.refresh_from_db()
    assert before <= partner.tokens_synced_until <= now_utc()
    # and the sync sent our token with the tracing and routing headers
    first = emsp.received("GET", TOKENS_PATH)[0]
    assert first.headers["X-Request-ID"]
    assert first.headers["X-Correlation-ID"]
    assert first.headers["OCPI-to-party-id"] == "EMS"


def test_syncing_again_changes_nothing(partner, emsp):
    # given
    token_sync(partner_id=partner.pk)
    before = list(Token.objects.order_by("pk").values_list("pk", "uid", "contract_id", "valid"))
    # when
    report = token_sync(partner_id=partner.pk, full=True)
    # then
    assert (report.received, report.created, report.rejected) == (5, 0, 0)
    after = list(Token.objects.order_by("pk").values_list("pk", "uid", "contract_id", "valid"))
    assert after == before


def test_next_sync_asks_only_for_changes_since_the_last_one(partner, emsp):
    # given: a completed sync, then a new token and a changed one at the eMSP
    token_sync(partner_id=partner.pk)
    partner.refresh_from_db()
    mark = partner.tokens_synced_until
    changed_at = format_datetime(now_utc())
    emsp.tokens[0] = emsp_token(1, whitelist="NEVER", last_updated=changed_at)
    emsp.tokens.append(emsp_token(6, last_updated=changed_at))
    emsp.requests.clear()
    # when
    report = token_sync(partner_id=partner.pk)
    # then: date_from is the previous sync's start (less the clock-skew overlap)
    assert token_gets(emsp) == [{"limit": "2", "date_from": format_datetime(mark - SYNC_OVERLAP)}]
    assert report.date_from == mark - SYNC_OVERLAP
    assert (report.received, report.created, report.updated) == (2, 1, 1)
    assert Token.objects.get(uid="CARD0001").whitelist == "NEVER"
    assert Token.objects.count() == 6
    partner.refresh_from_db()
    assert partner.tokens_synced_until > mark


def test_a_sync_failing_half_way_keeps_its_window_for_the_next_run(partner, emsp):
    # given: a completed sync, then five changed tokens, and an eMSP failing on the second page
    token_sync(partner_id=partner.pk)
    partner.refresh_from_db()
    mark = partner.tokens_synced_until
    changed_at = format_datetime(now_utc())
    emsp.tokens = [emsp_token(n, valid=False, last_updated=changed_at) for n in range(1, 6)]
    emsp.requests.clear()

    def fail_after_first_page(record):
        if len(emsp.received("GET", TOKENS_PATH)) >= 2:
            emsp.mode = "http500"

    emsp.on_request = fail_after_first_page
    # when
    with pytest.raises(PartnerUnavailable):
        token_sync(partner_id=partner.pk)
    # then: the first page is stored, the mark is unchanged
    assert Token.objects.filter(valid=False).count() == 2
    partner.refresh_from_db()
    assert partner.tokens_synced_until == mark
    # when: the eMSP is back
    emsp.on_request, emsp.mode = None, "ok"
    emsp.requests.clear()
    report = token_sync(partner_id=partner.pk)
    # then: the same window again, and everything arrives
    assert token_gets(emsp)[0]["date_from"] == format_datetime(mark - SYNC_OVERLAP)
    assert report.received == 5
    assert not Token.objects.filter(valid=True).exists()


def test_invalid_tokens_and_tokens_of_other_parties_are_skipped(partner, emsp):
    # given
    emsp.tokens = [
        emsp_token(1),
        emsp_token(2, whitelist="SOMETIMES"),
        emsp_token(3, country_code="FR", party_id="XYZ"),
        {"uid": "CARD0004"},
        "not a token",
        emsp_token(5),
    ]
    # when
    report = token_sync(partner_id=partner.pk)
    # then
    assert (report.received, report.created, report.rejected) == (6, 2, 4)
    assert sorted(Token.objects.values_list("uid", flat=True)) == ["CARD0001", "CARD0005"]


def test_a_token_older_than_ours_does_not_overwrite_a_newer_push(partner, emsp):
    # given: a newer state of CARD0001 pushed to us
    token_sync(partner_id=partner.pk)
    Token.objects.filter(uid="CARD0001").update(
        valid=False, last_updated=datetime(2026, 1, 1, tzinfo=UTC)
    )
    # when: the eMSP's list still holds the older state
    report = token_sync(partner_id=partner.pk, full=True)
    # then
    assert report.unchanged == 1
    assert Token.objects.get(uid="CARD0001").valid is False


def test_a_page_link_to_another_host_is_refused():
    # given
    headers = {"link": '<http://127.0.0.2:9/ocpi/emsp/2.2.1/tokens?offset=2>; rel="next"'}
    # when / then: we would send our token there
    with pytest.raises(PartnerRejected):
        sync_module._next_page(headers, endpoint="http://127.0.0.1:9/ocpi/emsp/2.2.1/tokens")


def test_a_page_that_is_not_a_list_fails_the_sync(partner, emsp):
    # given: a broken sender answering an object where a list belongs
    emsp.token_page = lambda query: ({"not": "a list"}, {})
    # when / then
    with pytest.raises(PartnerRejected):
        token_sync(partner_id=partner.pk)
    partner.refresh_from_db()
    assert partner.tokens_synced_until is None


def test_sync_of_a_partner_without_tokens_sender_or_not_registered_fails(make_partner):
    # given
    no_endpoint, _ = make_partner("No sender")
    suspended, _ = make_partner(
        "Suspended",
        country_code="FR",
        party_id="XYZ",
        status=Partner.Status.SUSPENDED,
        endpoints=[{"identifier": "tokens", "role": "SENDER", "url": "http://127.0.0.1:9/t"}],
    )
    # when / then
    with pytest.raises(NoMatchingEndpoints):
        token_sync(partner_id=no_endpoint.pk)
    with pytest.raises(MethodNotAllowedInState):
        token_sync(partner_id=suspended.pk)


# -- Celery tasks ---------------------------------------------------------------------------------
def test_beat_task_queues_a_sync_for_each_registered_partner_with_a_tokens_sender(
    partner, make_partner, monkeypatch
):
    # given
    make_partner("No sender", country_code="FR", party_id="XYZ")
    queued = []
    monkeypatch.setattr(
        sync_module.sync_partner_tokens_task, "delay", lambda partner_id: queued.append(partner_id)
    )
    # when
    count = sync_tokens_task()
    # then
    assert count == 1
    assert queued == [partner.pk]


def test_tasks_are_registered_under_the_names_beat_uses():
    # then: the worker finds them through ocpi.tasks, under the names beat sends
    assert ocpi_tasks.sync_tokens_task.name == "ocpi.tasks.sync_tokens_task"
    assert app.tasks["ocpi.tasks.sync_tokens_task"].run == sync_tokens_task.run
    assert "ocpi.tasks.sync_partner_tokens_task" in app.tasks
    schedule = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "ocpi.tasks.sync_tokens_task" in schedule


def test_partner_task_runs_the_sync(partner, emsp):
    # when
    sync_module.sync_partner_tokens_task.apply(args=(partner.pk,))
    # then
    assert Token.objects.count() == 5


def test_partner_task_retries_when_the_partner_is_unavailable(partner, emsp, monkeypatch):
    # given
    emsp.mode = "http500"
    retries = []

    def retry(*, exc, countdown):
        retries.append((exc, countdown))
        return RuntimeError("retry scheduled")

    monkeypatch.setattr(sync_module.sync_partner_tokens_task, "retry", retry)
    # when
    with pytest.raises(RuntimeError, match="retry scheduled"):
        sync_module.sync_partner_tokens_task.run(partner.pk)
    # then
    assert len(retries) == 1
    assert isinstance(retries[0][0], PartnerUnavailable)
    assert retries[0][1] > 0
    assert not Token.objects.exists()


# -- admin ----------------------------------------------------------------------------------------
@pytest.fixture
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_admin_action_syncs_tokens_now_and_reports(fast_passwords, admin_client, partner, emsp):
    # when
    response = admin_client.post(
        "/admin/ocpi/partner/",
        {"action": "sync_tokens", "_selected_action": [partner.pk]},
        follow=True,
    )
    # then
    assert response.status_code == 200
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == [
        f"{partner}: 5 tokens in 3 page(s): 5 new, 0 updated, 0 older than ours, 0 rejected."
    ]
    assert Token.objects.count() == 5


def test_admin_action_reports_a_partner_that_cannot_be_synced(
    fast_passwords, admin_client, partner, emsp
):
    # given
    emsp.stop()
    # when
    response = admin_client.post(
        "/admin/ocpi/partner/",
        {"action": "sync_tokens", "_selected_action": [partner.pk]},
        follow=True,
    )
    # then
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert len(messages) == 1
    assert messages[0].startswith(f"{partner}: token sync failed: Cannot reach")
    assert not Token.objects.exists()
    partner.refresh_from_db()
    assert partner.tokens_synced_until is None
