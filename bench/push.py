"""Push throughput: session updates queued in the outbox, drained by 2 real Celery workers.

    python -m bench push [--updates 10000] [--partners 1] [--per-session 10]

1. An eMSP served on 127.0.0.1 (ocpi.sandbox_emsp.EMSPServer, the real receiver the flow tests
   use) and --partners REGISTERED 2.2.1 partners whose sessions endpoint is on it.
2. --updates session-like rows per partner written straight into the outbox (bulk, like the
   rows session_changed writes): per session a PUT of the whole Session, then PATCHes each
   setting a higher `kwh`, a new `last_updated` and one more charging period; the sessions'
   updates interleaved, as on a live network.
3. One `celery worker` with 2 prefork processes (the production worker, DEBUG=false, Redis
   broker, the traffic log on) on a queue of its own; two delivery tasks per partner start it.
4. Seconds from the first task queued to the last row sent; updates per second. Then checks:
   every row SENT, and per session the eMSP received exactly its updates in order (kwh 0, 1,
   2, ...), its stored session having every charging period.
Target (issue 6): 10,000 updates for one partner in under 60 s; with 5 partners under 5 minutes.
"""

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta

from . import common

PARTNER = "Bench eMSP (push {})"


def _session(n: int, start: datetime) -> dict:
    return {
        "country_code": "NL",
        "party_id": "CPO",
        "id": f"BENCH-S{n:06d}",
        "start_date_time": start.isoformat().replace("+00:00", "Z"),
        "kwh": 0,
        "cdr_token": {
            "country_code": "DE",
            "party_id": "EMS",
            "uid": f"BENCH{n:08X}",
            "type": "RFID",
            "contract_id": f"DE-EMS-C{n:08d}-X",
        },
        "auth_method": "WHITELIST",
        "location_id": f"BENCH-{n % 1000 + 1:06d}",
        "evse_uid": f"BENCH-{n % 1000 + 1:06d}-1",
        "connector_id": "1",
        "currency": "EUR",
        "charging_periods": [],
        "status": "ACTIVE",
        "last_updated": start.isoformat().replace("+00:00", "Z"),
    }


def _period(i: int, start: datetime) -> dict:
    return {
        "start_date_time": (start + timedelta(minutes=i)).isoformat().replace("+00:00", "Z"),
        "dimensions": [{"type": "ENERGY", "volume": 1}],
    }


def queue_rows(partner, sessions: int, per_session: int) -> int:
    """The outbox rows of one partner: per session a PUT, then PATCHes, interleaved."""
    from ocpi import jsonutil
    from ocpi.models import OutboxMessage

    start = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
    rows = []
    for i in range(per_session):
        for n in range(sessions):
            path = f"NL/CPO/BENCH-S{n:06d}"
            stamp = (start + timedelta(minutes=i)).isoformat().replace("+00:00", "Z")
            if i == 0:
                method, body = "PUT", _session(n, start)
            else:
                method = "PATCH"
                body = {"kwh": i, "charging_periods": [_period(i, start)], "last_updated": stamp}
            rows.append(
                OutboxMessage(
                    partner=partner,
                    module="sessions",
                    object_key=f"sessions/{path}",
                    method=method,
                    path=path,
                    body=jsonutil.dumps(body).decode(),
                )
            )
    OutboxMessage.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def start_worker(queue: str, log) -> object:
    command = [
        common.PYTHON,
        "-m",
        "celery",
        "-A",
        "cpo_platform",
        "worker",
        "--pool=prefork",
        "--concurrency=2",
        "-Q",
        queue,
        "-n",
        f"{queue}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel=INFO",
    ]
    env = common.environment(CELERY_TASK_DEFAULT_QUEUE=queue, LOG_LEVEL="WARNING")
    process = common.start(command, log=log, env=env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"celery worker exited:\n{log.read_text()[-3000:]}")
        if " ready." in log.read_text(errors="replace"):
            return process
        time.sleep(0.2)
    common.stop(process)
    raise RuntimeError(f"celery worker not ready:\n{log.read_text()[-3000:]}")


def _ordered_per_partner(emsp, tokens: dict[str, str], per_session: int) -> list[str]:
    """Per partner (told apart by the token it sends) and session: kwh 0, 1, 2, ... in order."""
    problems = []
    sequences: dict[tuple[str, str], list] = {}
    for record in emsp.received(path_prefix="/ocpi/emsp/2.2.1/sessions/"):
        if record.method in ("PUT", "PATCH") and isinstance(record.json, dict):
            who = tokens.get(emsp.token_from_header(record.headers.get("Authorization")), "?")
            sequences.setdefault((who, record.path), []).append(record.json.get("kwh"))
    for (who, path), sequence in sequences.items():
        if sequence != list(range(per_session)):
            problems.append(f"{who} {path}: received kwh {sequence}")
            if len(problems) > 5:
                break
    return problems


def run(*, updates: int = 10_000, partners: int = 1, per_session: int = 10) -> list[dict]:
    common.migrate()
    common.setup_django()
    from django.db import connection
    from django.db.models import Count

    from cpo_platform.celery import app
    from ocpi import tokens
    from ocpi.models import OutboxMessage
    from ocpi.sandbox_emsp import EMSPServer
    from ocpi.tasks import deliver_outbox_task

    sessions = max(1, updates // per_session)
    total = sessions * per_session * partners
    print(f"Push throughput ({partners} partner(s) × {sessions * per_session:,} session updates)")
    emsp = EMSPServer(name="Bench eMSP")
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    worker = None
    try:
        OutboxMessage.objects.filter(partner__name__startswith="Bench eMSP (push").delete()
        bench_partners, by_token = [], {}
        for p in range(partners):
            token = tokens.new_token()
            emsp.accepted_tokens.add(token)
            partner, _ = common.bench_partner(
                PARTNER.format(p + 1),
                endpoints=[
                    {"identifier": "sessions", "role": "RECEIVER", "url": emsp.endpoint("sessions")}
                ],
            )
            partner.set_outbound_token(token)
            partner.save()
            bench_partners.append(partner)
            by_token[token] = partner.name
        for partner in bench_partners:
            queue_rows(partner, sessions, per_session)
        # Fresh statistics for the delivery's queries, as autovacuum would have them shortly
        # after a burst (with the pre-burst ones the head query plans a nested loop that
        # rescans every pending row per row: see the README).
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(OutboxMessage._meta.db_table)}")
        print(f"  {total:,} rows queued; starting 2 worker processes ...", flush=True)
        worker = start_worker(queue, common.ROOT / "var" / "bench" / "celery.log")
        app.conf.task_default_queue = queue
        rows = OutboxMessage.objects.filter(partner__in=bench_partners)
        started = datetime.now(UTC)
        t0 = time.monotonic()
        for partner in bench_partners:
            for _ in range(2):  # one chain per worker process; rows are locked, never sent twice
                deliver_outbox_task.delay(partner.pk)
        deadline = t0 + max(600.0, total / 20)
        while time.monotonic() < deadline:
            if not rows.filter(state=OutboxMessage.State.PENDING).exists():
                break
            if worker.poll() is not None:
                raise RuntimeError("the celery worker died")
            time.sleep(0.25)
        else:
            raise RuntimeError("the outbox did not drain in time")
        last_sent = max(rows.values_list("sent_at", flat=True).exclude(sent_at=None))
        seconds = (last_sent - started).total_seconds()
        states = dict(rows.order_by().values_list("state").annotate(n=Count("pk")))
    finally:
        if worker is not None:
            common.stop(worker)
        emsp.stop()
    problems = _ordered_per_partner(emsp, by_token, per_session)
    sent = states.get(OutboxMessage.State.SENT, 0)
    if sent != total:
        problems.insert(0, f"rows by state: {states}")
    rate = total / seconds
    target = 60.0 if partners == 1 else 300.0
    print(f"  drained {total:,} updates in {seconds:.1f} s: {rate:,.0f} updates/s")
    print(f"  order per session and exactly once: {'yes' if not problems else problems}")
    label = "push" if partners == 1 else f"push, {partners} partners"
    figures = [
        common.figure(
            f"{label}: {total:,} updates drained",
            round(seconds, 1),
            "s",
            f"< {target:g} s",
            seconds < target and not problems,
        ),
        common.figure(f"{label}: throughput", round(rate), "updates/s"),
        common.figure(
            f"{label}: in order per session, each once",
            "yes" if not problems else "NO",
            "",
            "yes",
            not problems,
        ),
    ]
    notes = [
        f"{partners} partner(s), {sessions:,} sessions × {per_session} updates each (a PUT, then "
        "PATCHes), interleaved; 1 celery worker, 2 prefork processes; eMSP: ocpi.sandbox_emsp."
    ]
    common.save_results("push" if partners == 1 else f"push{partners}", figures, notes)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=10_000, help="per partner")
    parser.add_argument("--partners", type=int, default=1)
    parser.add_argument("--per-session", type=int, default=10)
    args = parser.parse_args(argv)
    run(updates=args.updates, partners=args.partners, per_session=args.per_session)


if __name__ == "__main__":
    main()
