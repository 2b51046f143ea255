"""Shared pieces of the fault-injection tests: polling, processes we start and kill (Celery
workers, celery beat, a private redis-server), pointing this process's Celery app at another
broker, a complete charge that yields a CDR, and the wire form of outbox rows.

Workers are started with tests.worker.start_worker and stopped with tests.worker.stop_worker;
celery beat and redis-server are started here the same way (their own process group, a log file,
a readiness check with a deadline). The tests' fixtures stop whatever they started on teardown
(`Processes.stop_all`, `PrivateRedis.stop`), whatever the outcome.
"""

import json
import os
import random
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import redis

from billing.models import Session
from billing.models_cdrs import CDR
from billing.sessions import pending_start_register
from cpo_platform.celery import app
from ocpi.client import join_url
from ocpi.models import OutboxMessage, Partner
from stations import gateway
from stations.models import EVSE
from tests.emsp_server import EMSPServer, Recorded
from tests.worker import (
    WorkerProcess,
    purge_queue,
    start_celery,
    start_worker,
    stop_worker,
)

State = OutboxMessage.State
# Generous: a loaded 2-core CI machine may be slow; a passing run never waits this long.
DEADLINE = 30.0


# --- polling --------------------------------------------------------------------------------
def until(predicate: Callable, timeout: float = DEADLINE, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy (returned); fail at the deadline
    with the outbox rows, which is what one needs to see when a delivery test fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    rows = list(
        OutboxMessage.objects.order_by("id").values(
            "id", "object_key", "method", "state", "attempts", "next_attempt_at", "last_error"
        )
    )
    raise AssertionError(f"not true within {timeout:g}s; outbox: {rows}")


def all_sent() -> bool:
    return not OutboxMessage.objects.filter(state__in=(State.PENDING, State.FAILED)).exists()


# --- processes ------------------------------------------------------------------------------
def start_beat(*, queue: str, env: dict[str, str], directory: Path) -> WorkerProcess:
    """`celery -A cpo_platform beat` as production runs it (README "Configuration"), sending its
    schedule to `queue` with the tests' database; waits until its scheduler runs."""
    arguments = ["beat", "-s", str(directory / "celerybeat-schedule"), "--loglevel=INFO"]
    return start_celery(
        arguments, queue=queue, env=env, log_path=directory / "beat.log", ready="beat: Starting..."
    )


def kill(process: WorkerProcess) -> int:
    """SIGKILL the process's whole group (no warm shutdown, no acks, no cleanup) and reap it."""
    os.killpg(os.getpgid(process.process.pid), signal.SIGKILL)
    return process.process.wait(timeout=10)


class Processes:
    """The workers and beat processes a test started; all are stopped on teardown."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.started: list[WorkerProcess] = []

    def worker(self, *, queue: str, env: dict[str, str]) -> WorkerProcess:
        log_path = self.directory / f"worker-{len(self.started)}.log"
        worker = start_worker(queue=queue, env=env, log_path=log_path)
        self.started.append(worker)
        return worker

    def worker_and_beat(
        self, *, queue: str, env: dict[str, str], beat_env: dict[str, str]
    ) -> tuple[WorkerProcess, WorkerProcess]:
        """A worker and a beat process, started side by side (each takes a second or two)."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            directory = self.directory / f"beat-{len(self.started)}"
            directory.mkdir()
            beat = pool.submit(start_beat, queue=queue, env=beat_env, directory=directory)
            try:
                worker = self.worker(queue=queue, env=env)
            finally:
                self.started.append(beat.result())
        return worker, self.started[-1]

    def stop_all(self) -> None:
        """Stop them all at once (a warm shutdown takes a second or two each)."""
        with ThreadPoolExecutor(max_workers=max(len(self.started), 1)) as pool:
            list(pool.map(stop_worker, self.started))


@contextmanager
def own_queue() -> Iterator[str]:
    """A fresh queue, made this process's default queue (what it enqueues goes there), as
    tests.worker.celery_worker does; purged and deleted afterwards."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    purge_queue(queue)
    try:
        yield queue
    finally:
        try:
            forget_unacked(queue)
            purge_queue(queue, delete=True)
        finally:
            app.conf.task_default_queue = previous


def forget_unacked(queue: str) -> int:
    """Drop the messages of `queue` a killed worker had taken and never acknowledged; returns
    how many. Redis keeps them aside and hands them back after its visibility timeout (1 h), by
    when the queue is gone; other transports keep nothing aside."""
    with app.connection_for_write() as conn:
        if conn.transport.driver_type != "redis":
            return 0
        channel = conn.default_channel
        client = channel.client
        tags = [
            tag
            for tag, raw in client.hgetall(channel.unacked_key).items()
            if json.loads(raw)[2] == queue  # [message, exchange, routing key]: the queue's name
        ]
        for tag in tags:
            client.pipeline().zrem(channel.unacked_index_key, tag).hdel(
                channel.unacked_key, tag
            ).execute()
        return len(tags)


# --- ports ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ephemeral_ports() -> range:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    except (OSError, ValueError):
        return range(32768, 61000)  # Linux's default
    return range(int(low), int(high) + 1)


def steady_port() -> int:
    """A free loopback port outside the kernel's ephemeral range, for a server that is stopped
    and started again on it: while it is down, no outgoing connection on the machine can be
    given that port as its own, nor can a client calling it connect to itself (TCP
    self-connect), so the port is still free when the server comes back."""
    ephemeral = _ephemeral_ports()
    for _ in range(200):
        port = random.randrange(10000, 65536)
        if port in ephemeral:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    return free_port()


def restart_server(server: EMSPServer, timeout: float = 10.0) -> None:
    """Start a stopped eMSP server again on its port, waiting while something still holds it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            server.start()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# --- a private Redis ------------------------------------------------------------------------


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class PrivateRedis:
    """A redis-server of the test's own on a free loopback port, persisting nothing (no RDB,
    no AOF): a restart loses every key, as a broker restart without persistence does. Never the
    machine's shared Redis."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.starts += 1
        command = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--dir", str(self.directory),
        ]  # fmt: skip
        with (self.directory / f"redis-{self.starts}.log").open("wb") as log_file:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10.0
        while not _redis_answers(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.directory / f"redis-{self.starts}.log").read_text(errors="replace")
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # SIGTERM: Redis shuts down (saving nothing: --save "")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def ensure_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.start()

    def queued_tasks(self, queue: str) -> list[str]:
        """The task names of the messages waiting in `queue` (kombu keeps a Redis list per
        queue, one JSON message per item, the task name in its headers)."""
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)
        try:
            return [json.loads(item)["headers"]["task"] for item in client.lrange(queue, 0, -1)]
        finally:
            client.close()


def _drop_publishing_pools() -> None:
    # Celery keeps the connection and producer pools of the broker it first published to, and
    # has no public call to point a configured app elsewhere; dropping the references (as
    # Celery._after_fork does in a forked child) makes the next publish connect anew. The pools
    # stay in kombu's registry, keyed by URL, so going back finds the original ones intact.
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def publishing_to(broker_url: str) -> Iterator[None]:
    """Make this process's Celery app use `broker_url` for what it sends (what on_commit
    enqueues, purge_queue) and reads; restored afterwards.

    Set as broker_write_url/broker_read_url: Celery reads broker_url from the environment
    first (CELERY_BROKER_URL, which bin/test exports), so setting it in app.conf would not
    take; the read and write URLs are looked up in the environment under names nobody sets."""
    conf = app.conf
    previous = (conf.get("broker_write_url"), conf.get("broker_read_url"))
    conf.broker_write_url = conf.broker_read_url = broker_url
    _drop_publishing_pools()
    try:
        yield
    finally:
        try:  # close our sockets to the private broker (its pools are not used again)
            app.amqp.producer_pool.force_close_all()
            app.pool.force_close_all()
        finally:
            conf.broker_write_url, conf.broker_read_url = previous
            _drop_publishing_pools()


# --- a charge that yields a CDR -------------------------------------------------------------
T0 = datetime(2025, 3, 3, 7, 50, tzinfo=UTC)


def charge(partner: Partner, evse: EVSE, *, ref: str, start: datetime = T0) -> CDR:
    """A remote-started charge of the partner's driver at `evse`, reported by the charger:
    5.4 kWh in 24 minutes, then unplugged. Returns the session's CDR (made after commit)."""
    connector = evse.connectors.get()
    pending_start_register(
        request_ref=f"REQ-{ref}", partner_id=partner.pk,
        cdr_token={"country_code": "DE", "party_id": "EMS", "uid": "04A1B2C3", "type": "RFID",
                   "contract_id": "DE-EMS-C00000001"},
        auth_method="COMMAND", authorization_reference=f"AUTH-{ref}", location=evse.location,
        evse=evse, connector=connector,
    )  # fmt: skip
    gateway.transaction_started.send(
        sender=None, transaction_ref=f"TX-{ref}", evse=evse, connector=connector,
        id_tag="04A1B2C3", meter_start_wh=Decimal(1000), timestamp=start,
        request_ref=f"REQ-{ref}", reservation_ref=None,
    )  # fmt: skip
    gateway.meter_values.send(
        sender=None, transaction_ref=f"TX-{ref}", energy_wh=Decimal(3200),
        power_w=Decimal(11000), current_a=Decimal("15.9"), charging=True,
        timestamp=start + timedelta(minutes=12),
    )  # fmt: skip
    gateway.transaction_stopped.send(
        sender=None, transaction_ref=f"TX-{ref}", meter_stop_wh=Decimal(6400),
        timestamp=start + timedelta(minutes=24), reason="EV_DISCONNECTED",
    )  # fmt: skip
    session = Session.objects.get(transaction_ref=f"TX-{ref}")
    return CDR.objects.get(session=session, credit=False)


# --- what went over the wire ----------------------------------------------------------------
Wire = tuple[str, str, str]  # method, URL path, canonical JSON body


def _canonical(body) -> str:
    return json.dumps(body, sort_keys=True)


def row_wire(row: OutboxMessage, partner: Partner) -> Wire:
    """The request a row makes at the partner (the URL from its current endpoints)."""
    url = partner.endpoint_url(row.module, row.interface_role)
    if row.path:
        url = join_url(url, row.path)
    return row.method, urlsplit(url).path, _canonical(json.loads(row.body))


def heard(request: Recorded) -> Wire:
    return request.method, request.path.split("?")[0], _canonical(request.body)


def collapse_repeats(items: list) -> list:
    """Consecutive repeats made one: a retried request repeats itself, it never reorders."""
    return [item for i, item in enumerate(items) if i == 0 or items[i - 1] != item]


def stored_cdr_ids(emsp: EMSPServer) -> list[str]:
    """The ids of the CDRs the eMSP stored, in the order it stored them."""
    stored = dict(emsp.stored)  # a copy: the server's threads add to it
    numbers = sorted(int(key.split("/")[1]) for key in stored if key.startswith("cdrs/"))
    return [stored[f"cdrs/{n}"]["id"] for n in numbers]
