"""Load generators for the locations benchmark: random pages of 100 over a list, as a partner's
full sync reads them, from `connections` keep-alive connections at once, for a fixed time.

- `run_wrk`: wrk (Debian package `wrk`), with a Lua script choosing the page of each request.
  Preferred when installed: written in C, it takes little of the CPU the servers need.
- `run_python`: threads with http.client, the same requests; a bounded number of requests
  (`max_requests`) and the time limit, whichever ends first. Every response is checked
  (HTTP 200, a body); errors are counted, not retried.

Both return a LoadResult: requests, errors, seconds and the latency distribution as 1,000
quantiles (ms), so that runs in several rounds merge (`merge`) into one pages/s, p50 and p99.
"""

import http.client
import math
import random
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

POINTS = 1000  # latency quantiles kept per run: 0.1%, 0.2%, ..., 100%


@dataclass
class LoadResult:
    tool: str
    requests: int
    errors: int
    seconds: float
    quantiles: list[float]  # latency (ms) below which 0.1%, 0.2%, ..., 100% of requests were

    @property
    def pages_per_second(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.quantiles:
            return 0.0
        index = min(len(self.quantiles) - 1, max(0, math.ceil(p / 100 * POINTS) - 1))
        return self.quantiles[index]

    @property
    def p50_ms(self) -> float:
        return self.percentile(50)

    @property
    def p99_ms(self) -> float:
        return self.percentile(99)


def _quantiles(weighted: list[tuple[float, float]]) -> list[float]:
    """POINTS quantiles of (value, weight) pairs."""
    if not weighted:
        return []
    weighted.sort()
    total = sum(w for _, w in weighted)
    out, seen, i = [], 0.0, 0
    for k in range(1, POINTS + 1):
        target = total * k / POINTS
        while i < len(weighted) - 1 and seen + weighted[i][1] < target - 1e-9:
            seen += weighted[i][1]
            i += 1
        out.append(weighted[i][0])
    return out


def merge(results: list[LoadResult]) -> LoadResult:
    """Rounds of one server's load as one run: their requests, errors, time and latencies."""
    weighted = [
        (q, r.requests / len(r.quantiles)) for r in results if r.quantiles for q in r.quantiles
    ]
    return LoadResult(
        tool=results[0].tool,
        requests=sum(r.requests for r in results),
        errors=sum(r.errors for r in results),
        seconds=sum(r.seconds for r in results),
        quantiles=_quantiles(weighted),
    )


def page_path(path: str, pages: int, rng: random.Random, limit: int = 100) -> str:
    return f"{path}?offset={rng.randrange(pages) * limit}&limit={limit}"


# --- wrk ----------------------------------------------------------------------------------------
WRK_SCRIPT = r"""
local pages, path, auth
function init(args)
  pages = tonumber(args[1]); path = args[2]; auth = args[3]
  math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1000000))
end
function request()
  local headers = {}
  if auth ~= "" then headers["Authorization"] = auth end
  local offset = math.random(0, pages - 1) * 100
  return wrk.format("GET", path .. "?offset=" .. offset .. "&limit=100", headers)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %d\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status))
  local q = {}
  for i = 1, 1000 do q[i] = latency:percentile(i / 10) end
  io.write("QUANTILES " .. table.concat(q, " ") .. "\n")
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    url: str, *, pages: int, seconds: float, connections: int, authorization: str = ""
) -> LoadResult:
    """`url` without a query (http://127.0.0.1:PORT/ocpi/cpo/2.2.1/locations)."""
    parts = urlsplit(url)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    try:
        command = [
            "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
            "-s", script.name, f"{parts.scheme}://{parts.netloc}", "--", str(pages), parts.path,
            authorization,
        ]  # fmt: skip
        out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        Path(script.name).unlink(missing_ok=True)
    lines = {x.split(" ", 1)[0]: x.split()[1:] for x in out.stdout.splitlines() if " " in x}
    if "BENCH" not in lines or "QUANTILES" not in lines:
        raise RuntimeError(f"wrk said:\n{out.stdout}\n{out.stderr}")
    requests, duration, socket_errors, status_errors = (int(x) for x in lines["BENCH"])
    return LoadResult(
        tool=f"wrk, {connections} keep-alive connections",
        requests=requests,
        errors=socket_errors + status_errors,
        seconds=duration / 1e6,
        quantiles=[float(x) / 1000 for x in lines["QUANTILES"]],  # µs -> ms
    )


# --- Python threads -----------------------------------------------------------------------------
def run_python(
    url: str,
    *,
    pages: int,
    seconds: float,
    connections: int,
    authorization: str = "",
    max_requests: int = 100_000,
) -> LoadResult:
    parts = urlsplit(url)
    host, port, path = parts.hostname, parts.port or 80, parts.path
    headers = {"Authorization": authorization} if authorization else {}
    latencies: list[float] = []
    errors = [0]
    issued = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection(host, port, timeout=10)
        while time.monotonic() < deadline:
            with lock:
                if issued[0] >= max_requests:
                    break
                issued[0] += 1
            started = time.perf_counter()
            try:
                conn.request("GET", page_path(path, pages, rng), headers=headers)
                response = conn.getresponse()
                body = response.read()
                ok = response.status == 200 and bool(body)
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed * 1000)
                if not ok:
                    errors[0] += 1
        conn.close()

    started = time.monotonic()
    threads = [
        threading.Thread(target=client, args=(random.randrange(2**32),)) for _ in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(
        tool=f"Python threads, {connections} keep-alive connections",
        requests=len(latencies),
        errors=errors[0],
        seconds=time.monotonic() - started,
        quantiles=_quantiles([(x, 1.0) for x in latencies]),
    )


def run(url: str, *, tool: str, max_requests: int = 100_000, **kwargs) -> LoadResult:
    """With wrk when `tool` is "wrk", or "auto" and wrk is installed; else Python threads."""
    if tool == "wrk" or (tool == "auto" and wrk_available()):
        return run_wrk(url, **kwargs)
    return run_python(url, max_requests=max_requests, **kwargs)
