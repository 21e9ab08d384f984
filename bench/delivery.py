"""Delivery benchmark: `kaon serve` fanning events out to local capture servers (webhook, Amplitude).

Run: `.venv/bin/python bench/delivery.py [--events 20000] [--isolation-seconds 60]`.
Measures (1) delivery throughput for webhook batch 1 / batch 100 and Amplitude, (2) ingest → vendor latency at
a steady load, (3) isolation: one output answering 503 while another keeps delivering, then recovering.
Each scenario gets a fresh data directory and server. Exits 1 when an acknowledged event is not delivered
within its deadline or a server does not exit 0. Loopback only; every wait has a deadline.
"""

import argparse
import base64
import http.client
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest import (
    BENCH_DIR,
    HOST,
    Kaon,
    Server,
    admin_call,
    free_port,
    kaon_init,
    machine,
    server_input_of,
    wait_until,
)

AMPLITUDE = "amplitude"
# Short backoff for the isolation run, so the failing output's events come back within the bench's deadline;
# the window keeps them from being dead-lettered (a job gives up only when both limits are spent).
THROUGHPUT_RUNS: list[tuple[str, str, dict[str, Any]]] = [
    ("webhook-batch1", "webhook", {"batch": False}), ("webhook-batch100", "webhook", {"batch": True}),
    ("amplitude", AMPLITUDE, {"api_key": "x"})]
ISOLATION_RETRY_ENV = {"KAON_RETRY_BASE_SECONDS": "0.5", "KAON_RETRY_CAP_SECONDS": "5",
                       "KAON_RETRY_WINDOW_SECONDS": "3600"}


def api(kaon: Kaon, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return admin_call(kaon.server.url, kaon.admin_token, method, path, body)


@dataclass(frozen=True)
class Instance:
    kaon: Kaon
    input_id: str
    profile: subprocess.Popen[bytes] | None

    def connect(self, name: str, destination: str, settings: dict[str, Any]) -> str:
        output = api(self.kaon, "POST", "/api/v1/outputs", {"name": name, "destination": destination,
                                                            "settings": settings})
        api(self.kaon, "POST", "/api/v1/connections", {"input_id": self.input_id, "output_id": output["id"]})
        return str(output["id"])

    def status(self, output_id: str) -> dict[str, Any]:
        # The default window (24 h) holds at most 25 hours: one page of 1000.
        found = api(self.kaon, "GET", f"/api/v1/outputs/{output_id}/status?limit=1000")
        totals = {k: sum(int(h[k]) for h in found["hours"]) for k in ("sent", "failed", "dead_lettered")}
        return {"queue_depth": found["queue_depth"], **totals}

    def stop(self) -> int:
        status = self.kaon.server.stop()
        if self.profile is not None:
            self.profile.wait(timeout=60)
        return status


def start_instance(data_dir: Path, env: dict[str, str], profile_to: Path | None) -> Instance:
    """`kaon init` + `kaon serve` (with extra KAON_* settings), optionally under `py-spy record`."""
    created = kaon_init(data_dir)
    server_input = server_input_of(created)
    port = free_port()
    # `env` execs the server in place: the pid stays the server's; Server() itself passes no KAON_* settings.
    command = ["env", *(f"{k}={v}" for k, v in env.items()), sys.executable, "-m", "kaon", "serve",
               "--data-dir", str(data_dir), "--port", str(port)]
    server = Server("kaon", command, port, data_dir / "serve.log", "/api/v1/health", 200)
    profile = None
    if profile_to is not None:
        spy = str(Path(sys.executable).parent / "py-spy")
        profile = subprocess.Popen([spy, "record", "--pid", str(server.proc.pid), "--subprocesses", "--nonblocking",
                                    "--format", "raw", "-r", "100", "-o", str(profile_to)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kaon = Kaon(server, str(server_input["key"]), str(server_input["secret"]), str(created["admin_token"]))
    return Instance(kaon, str(server_input["id"]), profile)


class Capture:
    """Client side of one `bench/capture_app.py` process."""

    def __init__(self, name: str, work: Path) -> None:
        port = free_port()
        self.server = Server(name, [sys.executable, str(BENCH_DIR / "capture_app.py"), "--port", str(port)], port,
                             work / f"{name}.log", "/_stats", 200)
        self.url = self.server.url

    def stats(self, samples: bool = False) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + ("/_stats?samples=1" if samples else "/_stats"), timeout=30) as r:
            found: dict[str, Any] = json.loads(r.read())
            return found

    def answer(self, status: int) -> None:
        request = urllib.request.Request(self.url + "/_status", data=json.dumps({"status": status}).encode(),
                                         method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def wait_unique(self, expected: int, timeout_s: float) -> bool:
        try:
            wait_until(lambda: int(self.stats()["unique"]) >= expected, timeout_s, f"{expected} events")
        except TimeoutError:
            return False
        return True


BAD_EXITS: list[str] = []


def stop_all(scenario: str, instance: Instance, *captures: Capture) -> None:
    """SIGTERM every server of a scenario; an exit status other than 0 fails the bench."""
    for name, status in [("kaon", instance.stop()), *((c.server.name, c.server.stop()) for c in captures)]:
        if status != 0:
            BAD_EXITS.append(f"{scenario}: {name} exited {status}")


# --- load -------------------------------------------------------------------------------------------------

def body(first_seq: int, events: int, user: int, timed: bool) -> bytes:
    def one(seq: int) -> dict[str, Any]:
        attrs = {"seq": str(seq), "plan": "gold"}
        if timed:
            attrs["sent"] = repr(time.monotonic())
        return {"event_type": "custom_event",
                "data": {"event_name": "bench", "custom_event_type": "other", "custom_attributes": attrs}}

    batch = {"environment": "production", "user_identities": {"customer_id": f"user-{user}"},
             "events": [one(first_seq + i) for i in range(events)]}
    return json.dumps(batch, separators=(",", ":")).encode()


@dataclass
class Tally:
    requests: int = 0
    accepted: int = 0  # events answered 202
    errors: int = 0
    late: int = 0  # paced sends more than 50 ms behind schedule


class Sender:
    """Threads with one keep-alive `http.client` connection each, posting queued bodies to `POST /v2/events`.

    (httpx's async client costs about 4 ms of CPU per request here, which would compete with the server.)
    """

    def __init__(self, kaon: Kaon, threads: int) -> None:
        token = base64.b64encode(f"{kaon.key}:{kaon.secret}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        self.port = kaon.server.port
        self.tally = Tally()
        self.lock = threading.Lock()
        self.jobs: queue.Queue[tuple[bytes, int] | None] = queue.Queue()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def submit(self, content: bytes, events: int) -> None:
        self.jobs.put((content, events))

    def close(self) -> Tally:
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join(timeout=60)
        return self.tally

    def _run(self) -> None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        while (job := self.jobs.get()) is not None:
            content, events = job
            try:
                conn.request("POST", "/v2/events", body=content, headers=self.headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 202
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
                ok = False
            with self.lock:
                self.tally.requests += 1
                self.tally.accepted += events if ok else 0
                self.tally.errors += 0 if ok else 1
        conn.close()


def bulk(kaon: Kaon, events: int, per_request: int, users: int) -> Tally:
    sender = Sender(kaon, 8)
    for n, first in enumerate(range(0, events, per_request)):
        count = min(per_request, events - first)
        sender.submit(body(first, count, n % users, False), count)
    return sender.close()


def paced(kaon: Kaon, rate: float, seconds: float, users: int, first_seq: int) -> Tally:
    """Open loop: one event per request at `rate` requests/s, stamped with its scheduled send time."""
    sender = Sender(kaon, 8)
    start = time.monotonic()
    late = 0
    for n in range(int(rate * seconds)):
        delay = start + n / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -0.05:
            late += 1
        sender.submit(body(first_seq + n, 1, n % users, True), 1)
    tally = sender.close()
    tally.late = late
    return tally


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


# --- scenarios --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Throughput:
    name: str
    events: int
    ingest_s: float  # first request sent → last answered
    processed_s: float  # first request sent → all processed
    delivered_at_processed: int
    drain_s: float  # all processed → the capture server has them all
    total_s: float  # first request sent → the capture server has them all
    requests: int
    complete: bool

    @property
    def drain_rate(self) -> float:
        return (self.events - self.delivered_at_processed) / self.drain_s if self.drain_s > 0 else float("nan")

    @property
    def total_rate(self) -> float:
        return self.events / self.total_s if self.total_s > 0 else float("nan")


def throughput(args: argparse.Namespace, work: Path, name: str, destination: str,
               settings: dict[str, Any]) -> Throughput:
    capture = Capture(f"capture-{name}", work)
    profile = Path(args.profile) / f"{name}.txt" if args.profile else None
    instance = start_instance(work / f"data-{name}", {}, profile)
    try:
        instance.connect(name, destination, {**settings, "base_url": capture.url})
        time.sleep(1.0)  # the deliver process picks new outputs up every 0.5 s
        start = time.monotonic()
        tally = bulk(instance.kaon, args.events, args.ingest_batch, args.users)
        ingested = time.monotonic()
        if tally.errors or tally.accepted != args.events:
            raise RuntimeError(f"{name}: {tally.errors} ingest errors, {tally.accepted} of {args.events} accepted")
        wait_until(lambda: instance.kaon.counts()[1] >= args.events, args.timeout, f"{name}: processing")
        processed = time.monotonic()
        delivered_then = int(capture.stats()["unique"])
        complete = capture.wait_unique(args.events, args.timeout)
        stats = capture.stats(samples=True)
        last = float(stats["last"] or processed)
        return Throughput(name, args.events, ingested - start, processed - start, delivered_then,
                          max(0.0, last - processed), last - start, int(stats["requests"]), complete)
    finally:
        stop_all(name, instance, capture)


@dataclass(frozen=True)
class Latency:
    samples: list[float]  # ms, one per delivered timed event
    accepted: int
    delivered: int
    late_sends: int


def latency(args: argparse.Namespace, work: Path) -> Latency:
    capture = Capture("capture-latency", work)
    instance = start_instance(work / "data-latency", {}, None)
    try:
        instance.connect("latency", "webhook", {"base_url": capture.url, "batch": False})
        time.sleep(1.0)
        tally = paced(instance.kaon, args.rate, args.latency_seconds, args.users, 0)
        capture.wait_unique(tally.accepted, args.timeout)
        stats = capture.stats(samples=True)
        ms = [(arrived - sent) * 1000 for arrived, sent in stats["sent"]]
        return Latency(ms, tally.accepted, int(stats["unique"]), tally.late)
    finally:
        stop_all("latency", instance, capture)


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float
    accepted: int
    b_rate: float  # B's events/s arriving during the load
    b_p50_ms: float
    b_p99_ms: float


@dataclass(frozen=True)
class Isolation:
    baseline: Phase
    outage: Phase
    a_rejected: int
    a_recovered_s: float | None  # outage end → A has every event
    a_status: dict[str, Any]
    b_status: dict[str, Any]


def _phase(name: str, instance: Instance, b: Capture, rate: float, seconds: float, users: int,
           first_seq: int) -> Phase:
    before = b.stats(samples=True)
    skip_arrivals, skip_sent = len(before["arrivals"]), len(before["sent"])
    start = time.monotonic()
    tally = paced(instance.kaon, rate, seconds, users, first_seq)
    end = time.monotonic()
    after = b.stats(samples=True)
    arrived = sum(n for t, n in after["arrivals"][skip_arrivals:] if start <= t <= end)
    ms = [(t - s) * 1000 for t, s in after["sent"][skip_sent:] if start <= s <= end]
    return Phase(name, end - start, tally.accepted, arrived / (end - start), percentile(ms, 50), percentile(ms, 99))


def isolation(args: argparse.Namespace, work: Path) -> Isolation:
    a, b = Capture("capture-a", work), Capture("capture-b", work)
    instance = start_instance(work / "data-isolation", ISOLATION_RETRY_ENV, None)
    try:
        a_id = instance.connect("a", "webhook", {"base_url": a.url, "batch": False})
        b_id = instance.connect("b", "webhook", {"base_url": b.url, "batch": False})
        time.sleep(1.0)
        seconds = args.isolation_seconds
        baseline = _phase("baseline", instance, b, args.rate, seconds, args.users, 0)
        for capture in (a, b):
            if not capture.wait_unique(baseline.accepted, args.timeout):
                raise RuntimeError("baseline: not every event was delivered")
        first_seq = int(args.rate * seconds)
        a.answer(503)
        outage = _phase("outage", instance, b, args.rate, seconds, args.users, first_seq)
        a.answer(200)
        recovered = time.monotonic()
        total = baseline.accepted + outage.accepted
        b.wait_unique(total, args.timeout)
        a_done = a.wait_unique(total, args.recovery_timeout)
        a_recovered_s = time.monotonic() - recovered if a_done else None
        time.sleep(1.0)  # the last attempt rows are written just after the answer
        return Isolation(baseline, outage, int(a.stats()["rejected"]), a_recovered_s, instance.status(a_id),
                         instance.status(b_id))
    finally:
        stop_all("isolation", instance, a, b)


# --- report -----------------------------------------------------------------------------------------------

def print_throughput(rows: list[Throughput]) -> None:
    print(f"\n{'output':<16} {'events':>7} {'requests':>8} {'ev/req':>7} {'ingest s':>8} {'processed s':>11} "
          f"{'done@proc':>9} {'drain s':>7} {'drain ev/s':>10} {'total s':>7} {'total ev/s':>10}")
    for r in rows:
        flag = "" if r.complete else "  <-- INCOMPLETE"
        print(f"{r.name:<16} {r.events:>7,} {r.requests:>8,} {r.events / max(1, r.requests):>7.1f} "
              f"{r.ingest_s:>8.2f} {r.processed_s:>11.2f} {r.delivered_at_processed:>9,} {r.drain_s:>7.2f} "
              f"{r.drain_rate:>10,.0f} {r.total_s:>7.2f} {r.total_rate:>10,.0f}{flag}")


def print_latency(found: Latency, args: argparse.Namespace) -> None:
    s = found.samples
    print(f"\nlatency ingest → capture, webhook batch 1, {args.rate:g} events/s for {args.latency_seconds:g}s "
          f"(one event per request, {args.users} users): accepted {found.accepted:,}, delivered {found.delivered:,}, "
          f"sends > 50 ms late {found.late_sends}")
    print(f"  p50 {percentile(s, 50):.1f} ms, p90 {percentile(s, 90):.1f} ms, p99 {percentile(s, 99):.1f} ms, "
          f"max {max(s, default=float('nan')):.1f} ms")


def print_isolation(found: Isolation, args: argparse.Namespace) -> bool:
    print(f"\nisolation: outputs A and B (webhook batch 1), {args.rate:g} events/s to both; "
          f"A answers 503 for {args.isolation_seconds:g}s; retry env {ISOLATION_RETRY_ENV}")
    for p in (found.baseline, found.outage):
        print(f"  {p.name:<8}: {p.accepted:,} events in {p.seconds:.1f}s; B delivered {p.b_rate:,.1f} events/s, "
              f"B latency p50 {p.b_p50_ms:.1f} ms, p99 {p.b_p99_ms:.1f} ms")
    ratio = found.outage.b_rate / found.baseline.b_rate if found.baseline.b_rate else float("nan")
    met = abs(1 - ratio) <= 0.10
    print(f"  B events/s during A's outage / baseline = {ratio:.3f} (target within 10%: "
          f"{'met' if met else 'NOT met'})")
    recovered = found.a_recovered_s is not None
    print(f"  A: {found.a_rejected:,} requests answered 503; all events delivered after recovery: "
          + (f"yes, {found.a_recovered_s:.1f}s after the outage ended" if recovered
             else f"NO within {args.recovery_timeout:g}s"))
    print(f"  kaon status A {found.a_status}; B {found.b_status}")
    return met and recovered and not found.a_status["dead_lettered"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Kaon delivery benchmark (throughput, latency, isolation).")
    parser.add_argument("--events", type=int, default=20_000, help="events per throughput run (default 20000)")
    parser.add_argument("--ingest-batch", type=int, default=10, help="events per ingest request (default 10)")
    parser.add_argument("--users", type=int, default=100, help="distinct customer_ids, round robin (default 100)")
    parser.add_argument("--rate", type=float, default=200.0, help="events/s for latency and isolation (default 200)")
    parser.add_argument("--latency-seconds", type=float, default=20.0, help="latency load seconds (default 20)")
    parser.add_argument("--isolation-seconds", type=float, default=60.0,
                        help="seconds A answers 503, and of the healthy baseline (default 60)")
    parser.add_argument("--recovery-timeout", type=float, default=120.0,
                        help="seconds for A to get every event after its outage (default 120)")
    parser.add_argument("--timeout", type=float, default=300.0, help="deadline of every other wait (default 300)")
    parser.add_argument("--only", default="throughput,latency,isolation",
                        help="scenarios (throughput, latency, isolation) or throughput runs by name")
    parser.add_argument("--keep", help="work in this directory (data dirs and logs) instead of a temporary one")
    parser.add_argument("--profile", help="directory for py-spy raw profiles of the throughput runs")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    only = set(args.only.split(","))
    print(f"machine: {machine()}; load average before {os.getloadavg()[0]:.2f}")
    ok = True
    with tempfile.TemporaryDirectory(prefix="kaon-bench-delivery-") as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
        if "throughput" in only or only & {name for name, _, _ in THROUGHPUT_RUNS}:
            print(f"throughput: {args.events:,} events, {args.ingest_batch} per ingest request, "
                  f"{args.users} users round robin")
            rows = []
            for name, destination, settings in THROUGHPUT_RUNS:
                if "throughput" not in only and name not in only:
                    continue
                rows.append(throughput(args, work, name, destination, settings))
                print(f"  {name}: drain {rows[-1].drain_rate:,.0f} events/s, total {rows[-1].total_rate:,.0f}")
            print_throughput(rows)
            if any(r.name == AMPLITUDE for r in rows):
                print("  amplitude: batch size is the destination's policy (up to 2,000 events per request, 100 "
                      "requests/s); it cannot be set per output")
            ok = ok and all(r.complete for r in rows)
        if "latency" in only:
            found = latency(args, work)
            print_latency(found, args)
            ok = ok and found.delivered >= found.accepted
        if "isolation" in only:
            ok = print_isolation(isolation(args, work), args) and ok
    print(f"\nload average after {os.getloadavg()[0]:.2f} (other work on the machine skews the numbers)")
    print("SIGTERM: " + ("every server exited 0" if not BAD_EXITS else "; ".join(BAD_EXITS)))
    return 0 if ok and not BAD_EXITS else 1


if __name__ == "__main__":
    raise SystemExit(main())
