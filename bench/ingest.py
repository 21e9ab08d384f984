"""Ingest benchmark: `POST /v2/events` on `kaon serve` against a do-nothing server, loaded by `wrk`.

Run: `.venv/bin/python bench/ingest.py [--duration 10] [--connections 32] [--batch-sizes 1,10,100]`.
Exits 1 when a request was not answered 202, an acknowledged event was not processed, or a server did not
exit with status 0 on SIGTERM. Loopback only; every wait has a deadline.
"""

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wrk_load import Load, WrkResult, check_wrk, run_wrk, write_script

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 60.0  # kaon drains up to 30 s of requests and 10 s of processing


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def http_get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def admin_call(base_url: str, token: str, method: str, path: str,
               body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One admin API call with a Bearer token; its JSON answer, or RuntimeError naming the status."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base_url + path, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"{method} {path} answered {error.code}: {error.read()[:300]!r}") from None


def get_all(base_url: str, path: str, key: str, token: str) -> list[dict[str, Any]]:
    """Every item of an admin API list (`{key: [...], "next_cursor": ...}`), following its cursors."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = urllib.parse.urlencode({"limit": 1000, **({"cursor": cursor} if cursor else {})})
        status, body = http_get(f"{base_url}{path}?{query}", token)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:200]!r}")
        page = json.loads(body)
        items.extend(page[key])
        cursor = page["next_cursor"]
        if not cursor:
            return items


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(0.1)


# Settings every Kaon of the run gets (`--postgres`: the store and its log in a PostgreSQL started for the run).
EXTRA_ENV: dict[str, str] = {}


def clean_env() -> dict[str, str]:
    """Our environment without KAON_* settings (a stray KAON_INPUT_RATE_LIMIT would skew the numbers)."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("KAON_")}, **EXTRA_ENV}


def run_child(script: Path, *args: str) -> dict[str, Any]:
    """Run `script` with `args` in a subprocess (its own peak RSS); the JSON object its last output line holds."""
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, check=False,
                          env=clean_env())
    if done.returncode != 0:
        sys.exit(f"bench child {args} failed (exit {done.returncode}):\n{done.stderr[-4000:]}{done.stdout[-2000:]}")
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


class Server:
    """A server subprocess on a loopback port, ready once `health_path` answers `health_status`."""

    def __init__(self, name: str, command: list[str], port: int, log_path: Path, health_path: str,
                 health_status: int) -> None:
        self.name = name
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=clean_env())
        wait_until(lambda: self._answers(health_path, health_status), START_TIMEOUT_S, f"{name} to start")

    def _answers(self, path: str, status: int) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
        try:
            return http_get(self.url + path)[0] == status
        except OSError:
            return False

    def stop(self) -> int:
        """SIGTERM, then the exit status (SIGKILL and -9 past the deadline)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return -9


@dataclass(frozen=True)
class Kaon:
    server: Server
    key: str
    secret: str
    admin_token: str

    def counts(self) -> tuple[int, int]:
        """(events_received, events_processed) summed over the workspace's stats rows."""
        rows = get_all(self.server.url, "/api/v1/stats", "stats", self.admin_token)
        return (sum(int(r["events_received"]) for r in rows), sum(int(r["events_processed"]) for r in rows))

    def settle(self, acknowledged: int, timeout_s: float) -> tuple[int, float]:
        """Poll until processing reaches `acknowledged` or stops growing for 5 s: (processed, seconds)."""
        start = time.monotonic()
        last, last_change = -1, start
        while True:
            processed = self.counts()[1]
            now = time.monotonic()
            if processed != last:
                last, last_change = processed, now
            if processed >= acknowledged and now - last_change >= 1.0:
                return processed, last_change - start
            if now - last_change >= 5.0 or now - start > timeout_s:
                return processed, last_change - start
            time.sleep(0.25)


def kaon_init(data_dir: Path) -> dict[str, Any]:
    """`kaon init --json` in `data_dir`: workspace, inputs and admin token."""
    init = subprocess.run([sys.executable, "-m", "kaon", "init", "--data-dir", str(data_dir), "--json"],
                          capture_output=True, text=True, timeout=60, env=clean_env(), check=False)
    if init.returncode != 0:
        raise RuntimeError(f"kaon init failed: {init.stderr}")
    created: dict[str, Any] = json.loads(init.stdout)
    return created


def server_input_of(created: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(i for i in created["inputs"] if i["platform"] == "server")
    return found


def start_kaon(data_dir: Path) -> Kaon:
    created = kaon_init(data_dir)
    server_input = server_input_of(created)
    port = free_port()
    server = Server("kaon", [sys.executable, "-m", "kaon", "serve", "--data-dir", str(data_dir),
                             "--port", str(port)], port, data_dir / "serve.log", "/api/v1/health", 200)
    return Kaon(server, str(server_input["key"]), str(server_input["secret"]), str(created["admin_token"]))


def start_noop(work_dir: Path) -> Server:
    port = free_port()
    return Server("noop", [sys.executable, str(BENCH_DIR / "noop_app.py"), "--port", str(port)], port,
                  work_dir / "noop.log", "/", 202)


def batch_body(events: int) -> bytes:
    one = {"event_type": "custom_event",
           "data": {"event_name": "bench", "custom_event_type": "other",
                    "custom_attributes": {"i": "1", "plan": "gold"}}}
    batch = {"environment": "production", "user_identities": {"customer_id": "c1"}, "events": [one] * events}
    return json.dumps(batch, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Row:
    batch: int
    target: str
    result: WrkResult

    @property
    def events_per_s(self) -> float:
        return self.result.accepted * self.batch / self.result.duration_s if self.result.duration_s else 0.0


def machine() -> str:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"nproc {os.cpu_count()}, CPU {model}, Python {platform.python_version()}"


def print_table(rows: list[Row]) -> None:
    print(f"\n{'batch':>5} {'target':<6} {'req/s':>9} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'non-2xx':>7} {'not-202':>7} {'sockerr':>7}")
    for row in rows:
        r = row.result
        flag = "" if r.ok else "  <-- ERRORS"
        print(f"{row.batch:>5} {row.target:<6} {r.requests_per_s:>9,.0f} {row.events_per_s:>10,.0f} "
              f"{r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.non_2xx:>7} {r.not_202:>7} {r.socket_errors:>7}{flag}")
    print()
    for size in sorted({row.batch for row in rows}):
        by = {row.target: row.result.requests_per_s for row in rows if row.batch == size}
        if by.get("noop"):
            print(f"batch {size:>3}: kaon/noop requests/s = {by.get('kaon', 0.0) / by['noop']:.2f}")


def print_targets(rows: list[Row]) -> None:
    kaon = {row.batch: row for row in rows if row.target == "kaon"}
    noop = {row.batch: row for row in rows if row.target == "noop"}
    print("\nTargets:")
    for size, floor in ((100, 70_000), (10, 40_000)):
        if size in kaon:
            got = kaon[size].events_per_s
            print(f"  batch {size:>3}: > {floor:,} events/s: {got:,.0f} -> {'met' if got > floor else 'NOT met'}")
    if 1 in kaon and 1 in noop:
        rate, quarter = kaon[1].result.requests_per_s, noop[1].result.requests_per_s / 4
        print(f"  batch   1: > noop/4 = {quarter:,.0f} req/s: {rate:,.0f} -> "
              f"{'met' if rate > quarter else 'NOT met'}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Kaon ingest benchmark (POST /v2/events, wrk).")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (default 32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: 2-core machines)")
    parser.add_argument("--batch-sizes", default="1,10,100", help="events per batch (default 1,10,100)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load first (default 2)")
    parser.add_argument("--settle-timeout", type=float, default=300.0,
                        help="seconds to wait for processing to catch up after each Kaon run (default 300)")
    parser.add_argument("--verbose", action="store_true", help="print wrk's own output")
    parser.add_argument("--postgres", action="store_true",
                        help="the main store and ingest log on a PostgreSQL cluster started for the run")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.postgres:
        sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
        from cryptography.fernet import Fernet

        from support.postgres import running_cluster

        with running_cluster() as cluster:
            EXTRA_ENV.update(KAON_DATABASE_URL=cluster.dsn(), KAON_SECRET_KEY=Fernet.generate_key().decode())
            print(f"store: PostgreSQL on 127.0.0.1:{cluster.port} (main store and ingest log)")
            return measure(args)
    return measure(args)


def measure(args: argparse.Namespace) -> int:
    sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    check_wrk()
    print(f"machine: {machine()}; load average before {os.getloadavg()[0]:.2f}")
    print(f"load: wrk -t{args.threads} -c{args.connections} -d{args.duration}s (warm-up {args.warmup}s), "
          f"POST /v2/events, batch sizes {sizes}")
    rows: list[Row] = []
    failed = False
    acknowledged = 0
    with tempfile.TemporaryDirectory(prefix="kaon-bench-") as tmp:
        work = Path(tmp)
        kaon = start_kaon(work / "data")
        noop = start_noop(work)
        print(f"kaon pid {kaon.server.proc.pid} on {kaon.server.url}; noop pid {noop.proc.pid} on {noop.url}")
        try:
            for size in sizes:
                load = Load("/v2/events", batch_body(size), kaon.key, kaon.secret)
                script = write_script(work, f"batch-{size}", load)
                for name, url in (("noop", noop.url), ("kaon", kaon.server.url)):
                    for seconds, measured in ((args.warmup, False), (args.duration, True)):
                        if seconds <= 0:
                            continue
                        result = run_wrk(url, script, duration_s=seconds, connections=args.connections,
                                         threads=args.threads)
                        if name == "kaon":
                            acknowledged += result.accepted * size
                        failed = failed or not result.ok
                        if measured:
                            rows.append(Row(size, name, result))
                            if args.verbose:
                                print(result.output)
                            print(f"batch {size:>3} {name}: {result.requests_per_s:,.0f} req/s, "
                                  f"not-202 {result.not_202}, socket errors {result.socket_errors}")
                # Let processing catch up, so the next run does not share the CPU with this one's backlog.
                processed_now = kaon.counts()[1]
                processed, seconds_to_settle = kaon.settle(acknowledged, args.settle_timeout)
                print(f"batch {size:>3} kaon: backlog at end of load {acknowledged - processed_now:,} events; "
                      f"processing caught up in {seconds_to_settle:.1f}s")
            received, processed = kaon.counts()
        finally:
            kaon_status = kaon.server.stop()
            noop_status = noop.stop()
    print_table(rows)
    print(f"\nevents acknowledged (202) {acknowledged:,}; received by processing {received:,}; "
          f"processed {processed:,}; processed - acknowledged = {processed - acknowledged:+,}")
    print("  (a request answered after wrk stopped counting can make processed exceed acknowledged)")
    lost = processed < acknowledged
    if lost:
        print("  LOST: fewer events processed than acknowledged")
    print_targets(rows)
    print(f"load average after {os.getloadavg()[0]:.2f} (other work on the machine skews the numbers)")
    print(f"\nSIGTERM: kaon exited {kaon_status}, noop exited {noop_status}")
    if failed:
        print("FAILED: some requests were not answered 202 (see the table)")
    return 1 if failed or lost or kaon_status != 0 or noop_status != 0 else 0


if __name__ == "__main__":
    raise SystemExit(main())
