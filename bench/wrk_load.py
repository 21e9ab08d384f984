"""Drive one keep-alive HTTP load with `wrk` (a separate process) and read its results back as numbers."""

import base64
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

WRK = "wrk"
RESULT_MARK = "BENCH-RESULT "

# wrk keeps one Lua state per thread: each counts its own answers that are not 202, and `done` (run in the
# main state) adds them up. `errors.status` is wrk's "Non-2xx or 3xx responses" (statuses above 399).
_LUA = """\
wrk.method = "POST"
wrk.path = [==[{path}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = [==[{authorization}]==]
local file = assert(io.open([==[{body_path}]==], "rb"))
wrk.body = file:read("*a")
file:close()

local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) not_202 = 0 end
function response(status, headers, body)
  if status ~= 202 then not_202 = not_202 + 1 end
end
function done(summary, latency, requests)
  local not_202_total = 0
  for _, thread in ipairs(threads) do not_202_total = not_202_total + thread:get("not_202") end
  local e = summary.errors
  io.write(string.format(
    '{mark}{{"requests": %d, "duration_us": %d, "non_2xx": %d, "not_202": %d, "connect": %d, "read": %d,'
    .. ' "write": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}}\\n',
    summary.requests, summary.duration, e.status, not_202_total, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class Load:
    """What to send: one POST with a fixed body, Basic-authenticated."""

    path: str
    body: bytes
    key: str
    secret: str

    def authorization(self) -> str:
        return "Basic " + base64.b64encode(f"{self.key}:{self.secret}".encode()).decode()


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    non_2xx: int  # wrk's "Non-2xx or 3xx responses"
    not_202: int  # every answer other than 202, counted by the Lua script
    socket_errors: int  # connect + read + write + timeout
    p50_ms: float
    p99_ms: float
    max_ms: float
    output: str

    @property
    def accepted(self) -> int:
        """Requests answered 202; with keep-alive a socket error loses at most the request in flight."""
        return self.requests - self.not_202

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def ok(self) -> bool:
        return self.not_202 == 0 and self.non_2xx == 0 and self.socket_errors == 0


def check_wrk() -> str:
    found = shutil.which(WRK)
    if found is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    return found


def write_script(directory: Path, name: str, load: Load) -> Path:
    body_path = directory / f"{name}.json"
    body_path.write_bytes(load.body)
    script = directory / f"{name}.lua"
    script.write_text(_LUA.format(path=load.path, authorization=load.authorization(),
                                  body_path=body_path, mark=RESULT_MARK))
    return script


def run_wrk(url: str, script: Path, *, duration_s: int, connections: int, threads: int) -> WrkResult:
    """One wrk run against `url`; raises RuntimeError when wrk fails or prints no result."""
    command = [WRK, f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--timeout", "10s", "--latency",
               "-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited with {done.returncode}: {done.stderr or done.stdout}")
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if not lines:
        raise RuntimeError(f"wrk printed no result line:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(lines[-1].removeprefix(RESULT_MARK))
    return WrkResult(
        requests=int(raw["requests"]),
        duration_s=int(raw["duration_us"]) / 1e6,
        non_2xx=int(raw["non_2xx"]),
        not_202=int(raw["not_202"]),
        socket_errors=sum(int(raw[k]) for k in ("connect", "read", "write", "timeout")),
        p50_ms=int(raw["p50_us"]) / 1000,
        p99_ms=int(raw["p99_us"]) / 1000,
        max_ms=int(raw["max_us"]) / 1000,
        output=done.stdout,
    )
