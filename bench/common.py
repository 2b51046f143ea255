"""What the benchmarks share: the environment they run in, Django, the bench partner, servers on
free loopback ports, the machine's description, and the results file the report reads.

Environment (each may be set; these are the defaults):
    DATABASE_URL       postgres://postgres@127.0.0.1:5432/cpo_bench   (a database of its own:
                       the benchmarks write 100,000 Locations, outbox rows and traffic log rows)
    BENCH_REDIS_URL    redis://127.0.0.1:6379/13   (the Celery broker and the Django cache)
Every process the benchmarks start (gunicorn, Celery) gets the same environment, with
DEBUG=false (production settings) and fixed throwaway SECRET_KEY and OCPI_TOKEN_ENCRYPTION_KEY
(the workers must decrypt the tokens this process stores).
"""

import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "var" / "bench" / "results.json"
PYTHON = sys.executable

BENCH_ENV = {
    "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cpo_bench"),
    "BENCH_REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
    "DEBUG": "false",
    "SECRET_KEY": "bench-only-secret-key-not-for-production",
    "OCPI_TOKEN_ENCRYPTION_KEY": "bench-only-token-key",
    "DJANGO_SETTINGS_MODULE": "cpo_platform.settings",
    "LOG_LEVEL": "WARNING",
}
BENCH_ENV["CELERY_BROKER_URL"] = BENCH_ENV["BENCH_REDIS_URL"]
BENCH_ENV["CACHE_URL"] = BENCH_ENV["BENCH_REDIS_URL"]
LOOPBACK = {None, "", "127.0.0.1", "localhost", "::1"}
for _name in ("DATABASE_URL", "BENCH_REDIS_URL"):
    if urlsplit(BENCH_ENV[_name]).hostname not in LOOPBACK:
        raise SystemExit(f"bench: {_name} must point at 127.0.0.1 (benchmarks stay on loopback)")


def environment(**extra: str) -> dict[str, str]:
    """The environment for a process the benchmarks start."""
    return {**os.environ, **BENCH_ENV, "PYTHONPATH": str(ROOT), **extra}


_django_ready = False


def setup_django(**extra: str) -> None:
    """Django in this process, with the benchmarks' environment (once)."""
    global _django_ready
    if _django_ready:
        return
    os.environ.update({**BENCH_ENV, **extra})
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    _django_ready = True


def migrate() -> None:
    """Create the bench database if there is none, and bring it up to date."""
    import psycopg

    url = urlsplit(BENCH_ENV["DATABASE_URL"])
    name = url.path.lstrip("/")
    try:
        psycopg.connect(BENCH_ENV["DATABASE_URL"], connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
        admin = url._replace(path="/postgres").geturl()
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # the name comes from DATABASE_URL
        print(f"  created database {name}")
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=environment(),
        check=True,
    )


def bench_partner(name: str = "Bench eMSP (locations)", **fields):
    """A REGISTERED 2.2.1 partner with a fresh inbound token; returns (partner, token)."""
    from ocpi import tokens
    from ocpi.models import Partner

    token = tokens.new_token()
    partner, _ = Partner.objects.get_or_create(
        name=name,
        defaults={
            "status": Partner.Status.REGISTERED,
            "version": "2.2.1",
            "versions_url": "http://127.0.0.1:9/ocpi/versions",
        },
    )
    partner.status = Partner.Status.REGISTERED
    partner.version = "2.2.1"
    for key, value in fields.items():
        setattr(partner, key, value)
    partner.set_inbound_token(token)
    partner.set_outbound_token(tokens.new_token())
    partner.save()
    return partner, token


def authorization_header(token: str) -> str:
    from ocpi import tokens

    return "Token " + tokens.encode_for_header(token, base64_encoded=True)


# --- processes on loopback ports ----------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:g}s")


def start(command: list[str], *, log: Path, env: dict[str, str]) -> subprocess.Popen:
    """A child process in a process group of its own (stopped as a whole by `stop`)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen, timeout: float = 15.0) -> None:
    import signal

    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)  # the group this process leads (start_new_session)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def gunicorn(app: str, *, port: int, log: Path, env: dict[str, str], workers: int, threads: int):
    """The production server as deployed (README): gunicorn, gthread workers."""
    command = [
        PYTHON,
        "-m",
        "gunicorn",
        app,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--worker-class",
        "gthread",
        "--keep-alive",
        "30",
        "--log-level",
        "warning",
        "--no-control-socket",
    ]
    process = start(command, log=log, env=env)
    try:
        wait_for_port(port, process, log)
    except Exception:
        stop(process)
        raise
    return process


# --- CPU spent by a server and the database -----------------------------------------------------
def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


class CPUMeter:
    """CPU seconds used by a gunicorn master's workers and by the PostgreSQL backends of the
    bench database between start() and stop() (Linux /proc; zeros elsewhere). Unlike wall
    time, what other processes on the machine do barely changes it."""

    def __init__(self, master_pid: int):
        import psycopg

        self.master = master_pid
        self.admin = psycopg.connect(BENCH_ENV["DATABASE_URL"], autocommit=True)

    def _backends(self) -> list[int]:
        rows = self.admin.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in rows]

    def start(self) -> None:
        self.workers = {pid: _ticks(pid) for pid in _children(self.master)}
        self.backends = {pid: _ticks(pid) for pid in self._backends()}

    def stop(self) -> tuple[float, float]:
        tick = os.sysconf("SC_CLK_TCK")
        workers = sum(_ticks(pid) - start for pid, start in self.workers.items())
        backends = sum(_ticks(pid) - self.backends.get(pid, 0) for pid in self._backends())
        self.admin.close()
        return workers / tick, backends / tick


# --- the machine --------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    """CPU, cores, memory, load, Python, PostgreSQL (and the libraries that matter)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "load average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    try:
        setup_django()
        import django
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            info["postgresql"] = cursor.fetchone()[0]
        info["django"] = django.get_version()
    except Exception as exc:  # noqa: BLE001 - the report still prints what it knows
        info["postgresql"] = f"unknown ({exc.__class__.__name__})"
    return info


# --- results ------------------------------------------------------------------------------------
def save_results(benchmark: str, figures: list[dict], notes: list[str] | None = None) -> None:
    """Keep a benchmark's figures (the report prints the latest of each)."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[benchmark] = {
        "figures": figures,
        "notes": notes or [],
        "at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    RESULTS.write_text(json.dumps(data, indent=2))


def load_results() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def figure(name: str, value, unit: str, target: str = "", ok: bool | None = None) -> dict:
    return {"name": name, "value": value, "unit": unit, "target": target, "ok": ok}
