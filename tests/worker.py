"""A real Celery worker for flow tests: `celery -A cpo_platform worker` in a subprocess.

Use it from a test module with committed data (the worker is another process, so the test must
commit: `transactional_db`):

    from tests.worker import celery_worker, celery_worker_env  # noqa: F401  (fixtures)

    pytestmark = [pytest.mark.worker, pytest.mark.usefixtures("transactional_db", "celery_worker")]

The worker (one per test module) reads the pytest-django TEST database (DATABASE_URL built from
the test connection: "test_<name>" on PostgreSQL, var/test_cpo.sqlite3 on the SQLite fallback)
and the tests' broker (CELERY_BROKER_URL as exported by bin/test: Redis when it answers, else the
filesystem broker). It consumes a queue of its own, which is also made the tests' default queue
while it runs, so workers of parallel test runs never take each other's tasks; the queue is purged
before the worker starts and after it stops. The worker's environment gets small outbox backoffs;
override the `celery_worker_env` fixture (module scope) in a test module to change them.

Robustness: the fixture waits for the worker's "ready." log line (failing with the log if the
worker exits or is not ready within READY_TIMEOUT), and on teardown stops the whole process group
(TERM, then KILL after STOP_TIMEOUT), so a test never hangs on it.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from kombu import Exchange, Queue

from cpo_platform.celery import app

REPO = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0

# Fast backoff for flow tests: retries after 0.2 s, 0.4 s, 0.8 s, then every second.
DEFAULT_WORKER_ENV = {"OUTBOX_BACKOFF_BASE": "0.2", "OUTBOX_BACKOFF_MAX": "1.0"}


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    queue: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None


def worker_database_url() -> str:
    """A DATABASE_URL for the database the tests use (call after django_db_setup)."""
    settings = connection.settings_dict
    engine = settings["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        return "sqlite:///" + str(Path(settings["NAME"]).resolve())
    if engine == "django.db.backends.postgresql":
        user = quote(settings.get("USER") or "", safe="")
        password = quote(settings.get("PASSWORD") or "", safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings.get("HOST") or "127.0.0.1"
        port = f":{settings['PORT']}" if settings.get("PORT") else ""
        return f"postgres://{auth}{host}{port}/{quote(settings['NAME'], safe='')}"
    raise RuntimeError(f"no DATABASE_URL for the test database engine {engine}")


def purge_queue(queue: str, *, delete: bool = False) -> None:
    """Empty the worker's queue; `delete` also removes it (and its binding) from the broker."""
    with app.connection_for_write() as conn:
        # Declared as Celery declares a default queue: a direct exchange of the same name.
        bound = Queue(queue, Exchange(queue, type="direct"), routing_key=queue)(
            conn.default_channel
        )
        bound.declare()
        bound.purge()
        if delete:
            bound.delete()


def start_celery(
    arguments: list[str], *, queue: str, env: dict[str, str], log_path: Path, ready: str
) -> WorkerProcess:
    """Start `celery -A cpo_platform <arguments>` with the tests' database and `queue` as the
    default queue, in a process group of its own; wait until its log says `ready`."""
    celery_env = {**os.environ, **env}
    celery_env.update(
        DATABASE_URL=worker_database_url(),
        CELERY_TASK_DEFAULT_QUEUE=queue,
        CELERY_TASK_ALWAYS_EAGER="false",
        PYTHONUNBUFFERED="1",
    )
    command = [sys.executable, "-m", "celery", "-A", "cpo_platform", *arguments]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=celery_env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as a whole on teardown
        )
    started = WorkerProcess(process, queue, log_path)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if not started.alive():
            raise RuntimeError(
                f"celery {arguments[0]} exited ({process.returncode}):\n{started.log()}"
            )
        if ready in started.log():
            return started
        time.sleep(0.1)
    stop_worker(started)
    raise RuntimeError(
        f"celery {arguments[0]} not ready within {READY_TIMEOUT:g}s:\n{started.log()}"
    )


def start_worker(*, queue: str, env: dict[str, str], log_path: Path) -> WorkerProcess:
    """Start `celery worker` on `queue` and wait until it is ready."""
    arguments = [
        "worker", "--pool=threads", "--concurrency=2", "-Q", queue, "-n", f"{queue}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO",
    ]  # fmt: skip
    return start_celery(arguments, queue=queue, env=env, log_path=log_path, ready=" ready.")


def stop_worker(worker: WorkerProcess) -> None:
    """Stop the worker's whole process group: TERM (warm shutdown), then KILL."""
    if not worker.alive():
        return
    pgid = os.getpgid(worker.process.pid)
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        try:
            worker.process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def celery_worker_env() -> dict[str, str]:
    """Extra environment for the worker (override in a test module)."""
    return dict(DEFAULT_WORKER_ENV)


@pytest.fixture(scope="module")
def celery_worker(django_db_setup, celery_worker_env, tmp_path_factory) -> Iterator[WorkerProcess]:
    """A running Celery worker on a queue of its own, for the tests of one module."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    previous_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    purge_queue(queue)
    worker = start_worker(queue=queue, env=celery_worker_env, log_path=log_path)
    try:
        yield worker
    finally:
        stop_worker(worker)
        purge_queue(queue, delete=True)
        app.conf.task_default_queue = previous_queue
