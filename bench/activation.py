"""Audience activation benchmark: initial sync, steady-state add and remove latency, the cost of triggers on
processing.

The world: `--members` users (default 100,000), each one batch with a purchase (customer id and e-mail), written
to the ingest log of a `kaon init` data directory and processed by the real process stage with one active
audience ("Buyers": a purchase in the last 7 days), so every user is a member. Then, each in its own subprocess
(peak RSS is per process):

1. **Initial sync.** The audience is connected to a Meta Custom Audiences output whose `base_url` is a local
   capture server (it checks each request: path, token, 4-key schema, at most 10,000 rows, 64-hex e-mails).
   Timed: the sync worker's steps until the connection is `live` (queueing one add per member), then the
   output's delivery worker until every job is delivered. Figures: members/s end to end, requests, rows per
   request, peak RSS.
2. **Steady-state latency.** A real `kaon serve` on a copy of the store, the audience connected to an
   `audience_webhook` output (a capture server in this process timing each arrival). The script sends
   `--rate` batches/s for `--seconds` s over keep-alive HTTP, each a new user's purchase, and measures from the
   sender's clock before each request to the capture server receiving that user's add: p50/p99/max. A second
   audience, "Gold" (user attribute `tier` equals `gold`), is connected to the same output; the probes carry
   `tier: gold`, and once their adds arrived each probe user is sent, at the same rate, a batch setting
   `tier: silver`: from that send to the capture server receiving the user's removal from Gold is the remove
   latency.
3. **Cost of triggers on processing.** The process stage (with its chores) drains the same log of `--batches`
   new users' purchases into two copies of the store, each with the sync worker running in a second process (as
   in `kaon serve`, where it is a thread of the deliver process):
   once with no audience connection, once with three trigger connections (webhook outputs, no delivery worker:
   jobs queue) and one sync connection whose initial sync ended before the run. The ratio of the two events/s
   figures, the jobs the run queued, and the sync steps still owed when the stage had caught up.

Run: `.venv/bin/python bench/activation.py` (defaults), or smaller: `--members 2000 --batches 2000 --seconds 3`.
"""

import argparse
import base64
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ingest import EXTRA_ENV, Server, clean_env, free_port, kaon_init, machine, run_child, server_input_of
from kaon.activation import service as activation
from kaon.activation import sync
from kaon.activation.store import ConnectionStore
from kaon.audiences import service
from kaon.audiences.backfill import run_backfills
from kaon.audiences.store import MemberStore
from kaon.clock import now_ms
from kaon.delivery.retry import RetryPolicy
from kaon.delivery.worker import OutputWorker
from kaon.destinations.registry import destination
from kaon.log.base import KIND_MPARTICLE_BATCH, LogEntry
from kaon.log.sqlite import SqliteLogReader, SqliteLogWriter
from kaon.pipeline.runner import ProcessStage
from kaon.pipeline.steps import default_chores, default_steps
from kaon.pipeline.worker import tune_gc
from kaon.store.db import Database, DatabaseUrl
from kaon.store.outputs import OutputStore

BENCH = Path(__file__).resolve()
DAY = 86_400_000
AUDIENCE = "Buyers"
TIER_AUDIENCE = "Gold"  # the latency run's second audience: a user attribute, so a batch can take a member out
DEFINITION = {"event": {"event_type": "commerce_event", "name": "purchase", "within": "7d"}}
META_AUDIENCE = "23851234567890123"
HEX64 = frozenset("0123456789abcdef")


def purchase(n: int, at: int, prefix: str) -> dict[str, Any]:
    return {"environment": "production",
            "user_identities": {"customer_id": f"{prefix}{n}", "email": f"{prefix}{n}@example.com"},
            "events": [{"event_type": "commerce_event", "data": {
                "timestamp_unixtime_ms": at, "source_message_id": f"{prefix}{n}-buy",
                "product_action": {"action": "purchase", "total_amount": 10.0}}}]}


def write_log(directory: Path, created: dict[str, Any], count: int, prefix: str) -> None:
    writer = SqliteLogWriter(directory / "log", "0")
    workspace_id, input_id = created["workspace_id"], server_input_of(created)["id"]
    at = now_ms() - 60_000
    for start in range(0, count, 1000):
        writer.append([LogEntry(kind=KIND_MPARTICLE_BATCH, workspace_id=workspace_id, input_id=input_id,
                                received_ms=at, ip="10.0.0.1", body=json.dumps(purchase(n, at, prefix)).encode())
                       for n in range(start, min(count, start + 1000))])
    writer.close()


def db_of(directory: Path) -> Database:
    return Database(DatabaseUrl.parse(f"sqlite:///{directory / 'kaon.db'}"), data_dir=directory)


def drain(directory: Path) -> float:
    """Run the process stage (steps and chores) over the log; seconds."""
    db = db_of(directory)
    reader = SqliteLogReader(directory / "log")
    stage = ProcessStage(db, reader, default_steps(dedup_window_ms=DAY), chores=default_chores(dedup_window_ms=DAY))
    tune_gc()
    started = time.perf_counter()
    while stage.run_once():
        pass
    elapsed = time.perf_counter() - started
    reader.close()
    return elapsed


def build_world(directory: Path, members: int) -> dict[str, Any]:
    created = kaon_init(directory)
    db = db_of(directory)
    conn, ws = db.conn(), created["workspace_id"]
    row = service.create_audience(conn, ws, {"name": AUDIENCE, "definition": DEFINITION}, "bench", now_ms())
    service.activate_audience(conn, ws, row.id, "bench", now_ms())
    run_backfills(conn)
    write_log(directory, created, members, "m")
    seconds = drain(directory)
    size = MemberStore(conn, ws).size(row.id)
    facts = {"created": created, "audience_id": row.id, "members": size, "process_s": seconds}
    (directory / "world.json").write_text(json.dumps(facts))
    return facts


# A vendor stand-in ---------------------------------------------------------------------------------------------


class Capture:
    """A loopback HTTP server answering 200 `{}`; `check(method, path, body)` may raise to answer 400."""

    def __init__(self, check: Any) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.rows = 0
        self.problems: list[str] = []
        self.arrivals: dict[str, float] = {}  # customer id -> wall ms of the first add
        self.removals: dict[str, float] = {}  # customer id -> wall ms of the first removal
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self._handle()

            def do_DELETE(self) -> None:
                self._handle()

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                at = time.time() * 1000
                try:
                    rows = check(self.command, self.path, json.loads(body), at, outer)
                    status = 200
                except Exception as error:
                    with outer.lock:
                        outer.problems.append(f"{type(error).__name__}: {error}")
                    rows, status = 0, 400
                with outer.lock:
                    outer.requests += 1
                    outer.rows += rows
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def meta_check(method: str, path: str, body: dict[str, Any], _at: float, _capture: Capture) -> int:
    assert method == "POST", method
    assert path.startswith(f"/v25.0/{META_AUDIENCE}/users?access_token=bench"), path
    payload = body["payload"]
    assert payload["schema"] == ["EMAIL", "PHONE", "EXTERN_ID", "MADID"], payload["schema"]
    rows = payload["data"]
    assert 0 < len(rows) <= 10_000, len(rows)
    assert all(len(r[0]) == 64 and set(r[0]) <= HEX64 and r[2] for r in rows), "EMAIL must be SHA-256 hex"
    return len(rows)


def webhook_check(_method: str, _path: str, body: dict[str, Any], at: float, capture: Capture) -> int:
    assert body["type"] == "audience_membership_change_request"
    for profile in body["user_profiles"]:
        (change,) = profile["audiences"]
        customer = next(i["value"] for i in profile["user_identities"] if i["type"] == "customer")
        with capture.lock:
            if change["action"] == "add" and change["audience_name"] == AUDIENCE:
                capture.arrivals.setdefault(customer, at)
            elif change["action"] == "delete" and change["audience_name"] == TIER_AUDIENCE:
                capture.removals.setdefault(customer, at)
    return len(body["user_profiles"])


# 1. Initial sync -------------------------------------------------------------------------------------------------


def initial_sync(directory: Path) -> dict[str, Any]:
    world = json.loads((directory / "world.json").read_text())
    ws, audience_id = world["created"]["workspace_id"], world["audience_id"]
    capture = Capture(meta_check)
    db = db_of(directory)
    conn = db.conn()
    output = OutputStore(conn, ws).create_output("Meta", "meta_custom_audiences", {
        "audience_id": META_AUDIENCE, "access_token": "bench", "base_url": capture.url}, True)
    meta = destination("meta_custom_audiences")
    worker = OutputWorker(db, output.id, meta, meta.parse_settings(output.settings), RetryPolicy())
    started = time.perf_counter()
    row = activation.connect(conn, ws, audience_id, output.id, {}, now_ms())
    steps = 0
    while sync.step(conn, row.id, ws, now_ms()):
        steps += 1
    queued = time.perf_counter() - started
    while worker.run_once():
        pass
    elapsed = time.perf_counter() - started
    worker.stop_event.set()
    worker.start()
    worker.stop()
    capture.stop()
    done = ConnectionStore(conn, ws).get(row.id)
    return {"members": world["members"], "queue_s": queued, "seconds": elapsed, "steps": steps,
            "requests": capture.requests, "rows": capture.rows, "problems": capture.problems[:3],
            "status": done.status, "sent": done.progress.get("members_sent"),
            "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


# 2. Steady-state latency through kaon serve --------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def latency(directory: Path, rate: float, seconds: float) -> dict[str, Any]:
    world = json.loads((directory / "world.json").read_text())
    created, audience_id = world["created"], world["audience_id"]
    ws, server_input = created["workspace_id"], server_input_of(created)
    capture = Capture(webhook_check)
    db = db_of(directory)
    conn = db.conn()
    output = OutputStore(conn, ws).create_output("Hook", "audience_webhook", {"base_url": capture.url}, True)
    gold = service.create_audience(conn, ws, {"name": TIER_AUDIENCE, "definition": {"user_attribute": {
        "name": "tier", "operator": "equals", "value": "gold"}}}, "bench", now_ms())
    service.activate_audience(conn, ws, gold.id, "bench", now_ms())
    run_backfills(conn)  # no world user has a tier: nobody is in it yet
    for audience in (audience_id, gold.id):
        row = activation.connect(conn, ws, audience, output.id, {}, now_ms())
        while sync.step(conn, row.id, ws, now_ms()):
            pass  # the initial sync is queued before the server starts; its deliveries go first
    SqliteLogWriter(directory / "log", "0").close()
    port = free_port()
    server = Server("kaon", [sys.executable, "-m", "kaon", "serve", "--data-dir", str(directory), "--port",
                             str(port)], port, directory / "serve.log", "/api/v1/health", 200)
    sent: dict[str, float] = {}
    removed: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 120
        while capture.rows < world["members"] and time.monotonic() < deadline:
            time.sleep(0.1)  # the initial sync's deliveries drain first
        http = HTTPConnection("127.0.0.1", port, timeout=10)
        auth = "Basic " + base64.b64encode(f"{server_input['key']}:{server_input['secret']}".encode()).decode()

        def paced(body_of: Any, into: dict[str, float]) -> None:
            """Send one batch per probe at `rate`; the sender's wall clock before each request, by customer id."""
            begin = time.monotonic() + 0.2
            for k in range(int(rate * seconds)):
                wait = begin + k / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                sent_ms = time.time() * 1000
                http.request("POST", "/v2/events", body=json.dumps(body_of(k)).encode(),
                             headers={"Authorization": auth, "Content-Type": "application/json"})
                answer = http.getresponse()
                answer.read()
                if answer.status != 202:
                    raise RuntimeError(f"POST /v2/events answered {answer.status}")
                into[f"probe-{k}"] = sent_ms

        def arrived(arrivals: dict[str, float], of: dict[str, float]) -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and any(c not in arrivals for c in of):
                time.sleep(0.1)

        # Adds: each probe a new user's purchase, with tier gold (entering both audiences).
        paced(lambda k: {**purchase(k, now_ms(), "probe-"), "user_attributes": {"tier": "gold"}}, sent)
        arrived(capture.arrivals, sent)
        # Removals: each probe user's tier becomes silver, taking them out of Gold.
        paced(lambda k: {"environment": "production", "user_identities": {"customer_id": f"probe-{k}"},
                         "user_attributes": {"tier": "silver"}, "events": [{"event_type": "custom_event", "data": {
                             "event_name": "tier_changed", "custom_event_type": "other",
                             "timestamp_unixtime_ms": now_ms()}}]}, removed)
        http.close()
        arrived(capture.removals, removed)
    finally:
        status = server.stop()
        capture.stop()
    got = [capture.arrivals[c] - t for c, t in sent.items() if c in capture.arrivals]
    gone = [capture.removals[c] - t for c, t in removed.items() if c in capture.removals]
    return {"probes": len(sent), "missing": len(sent) - len(got) + len(removed) - len(gone), "latency_ms": got,
            "removal_ms": gone, "exit": status, "problems": capture.problems[:3], "rate": rate}


# 3. Cost of triggers on processing -----------------------------------------------------------------------------


def processing(directory: Path, batches: int, with_connections: bool) -> dict[str, Any]:
    world = json.loads((directory / "world.json").read_text())
    created, audience_id = world["created"], world["audience_id"]
    ws = created["workspace_id"]
    conn = db_of(directory).conn()
    if with_connections:
        store = OutputStore(conn, ws)
        for n in range(3):
            hook = store.create_output(f"Trigger {n}", "webhook", {"base_url": "http://127.0.0.1:9/hook"}, True)
            activation.connect(conn, ws, audience_id, hook.id, {}, now_ms())
        meta = store.create_output("Meta sync", "meta_custom_audiences", {
            "audience_id": META_AUDIENCE, "access_token": "bench", "base_url": "http://127.0.0.1:9"}, True)
        row = activation.connect(conn, ws, audience_id, meta.id, {}, now_ms())
        while sync.step(conn, row.id, ws, now_ms()):
            pass  # the initial sync of the existing members ends before the timed run: only new changes count
    initial_jobs = int(conn.execute("SELECT count(*) FROM delivery_jobs").fetchone()[0])
    write_log(directory, created, batches, "p")
    # As in `kaon serve`: the sync worker runs in the deliver process, beside the process stage's.
    worker = subprocess.Popen([sys.executable, "-c", "import sys; from kaon.activation.sync import _loop;"
                               " _loop(sys.argv[1])", f"sqlite:///{directory / 'kaon.db'}"], env=clean_env())
    started_cpu = time.process_time()
    seconds = drain(directory)
    cpu = time.process_time() - started_cpu
    worker.terminate()
    worker.wait(timeout=30)
    # What the sync worker still owed when the stage caught up (it ran concurrently on its thread).
    behind = 0
    lag_started = time.perf_counter()
    for row in ConnectionStore(conn, ws).of_audience(audience_id):
        while sync.step(conn, row.id, ws, now_ms()):
            behind += 1
    lag = time.perf_counter() - lag_started
    jobs = int(conn.execute("SELECT count(*) FROM delivery_jobs").fetchone()[0]) - initial_jobs
    return {"batches": batches, "seconds": seconds, "cpu": cpu, "jobs": jobs, "steps_behind": behind,
            "lag_s": lag}


# Driver --------------------------------------------------------------------------------------------------------


def child(*args: str) -> dict[str, Any]:
    return run_child(BENCH, *args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=20_000, help="new users' batches for the processing cost")
    parser.add_argument("--rate", type=float, default=50.0, help="batches per second in the latency run")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--step", choices=("world", "sync", "latency", "without", "with"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    # The capture servers are on loopback: every Kaon of the run (this process, children, `kaon serve`) may call it.
    EXTRA_ENV["KAON_OUTBOUND_ALLOW"] = "127.0.0.1"
    os.environ["KAON_OUTBOUND_ALLOW"] = "127.0.0.1"
    if args.step == "world":
        print(json.dumps(build_world(args.dir, args.members)))
        return 0
    if args.step == "sync":
        print(json.dumps(initial_sync(args.dir)))
        return 0
    if args.step == "latency":
        print(json.dumps(latency(args.dir, args.rate, args.seconds)))
        return 0
    if args.step in ("without", "with"):
        print(json.dumps(processing(args.dir, args.batches, args.step == "with")))
        return 0
    return measure(args)


def measure(args: argparse.Namespace) -> int:
    print(f"machine: {machine()}")
    failed = False
    with tempfile.TemporaryDirectory(prefix="kaon-bench-activation-") as tmp:
        work = Path(tmp)
        world = child("--step", "world", "--dir", str(work / "world"), "--members", str(args.members))
        print(f"world: {world['members']:,} members of {AUDIENCE!r} from {args.members:,} users' purchases"
              f" (processed in {world['process_s']:.0f} s)")
        runs = {}
        for name in ("sync", "latency", "without", "with"):
            target = work / name
            shutil.copytree(work / "world", target)
            runs[name] = child("--step", name, "--dir", str(target), "--batches", str(args.batches),
                               "--rate", str(args.rate), "--seconds", str(args.seconds))
            shutil.rmtree(target)
    s, lat, without, with_ = runs["sync"], runs["latency"], runs["without"], runs["with"]
    if s["problems"] or s["rows"] != s["members"] or s["status"] != "live":
        print(f"initial sync FAILED: {s}")
        failed = True
    if lat["missing"] or lat["problems"] or lat["exit"] != 0:
        print(f"latency run FAILED: {({k: v for k, v in lat.items() if k != 'latency_ms'})}")
        failed = True
    values = lat["latency_ms"] or [0.0]
    rate_without, rate_with = without["batches"] / without["seconds"], with_["batches"] / with_["seconds"]
    print(f"\n== Audience activation: {s['members']:,} members ==")

    def row(figure: str, value: str) -> None:
        print(f"{figure:<64} {value:>24}")

    row("initial sync to Meta Custom Audiences (members/s, end to end)", f"{s['members'] / s['seconds']:,.0f}")
    row("  queueing the adds (sync worker), s / delivering them, s",
        f"{s['queue_s']:.1f} / {s['seconds'] - s['queue_s']:.1f}")
    row("  requests / rows per request", f"{s['requests']:,} / {s['rows'] / max(1, s['requests']):,.0f}")
    row("  peak RSS of the process (MiB)", f"{s['rss_kb'] / 1024:.0f}")
    row(f"add latency, send -> vendor request, p50 / p99 / max (s) at {lat['rate']:g}/s",
        f"{percentile(values, 50) / 1000:.3f} / {percentile(values, 99) / 1000:.3f} / {max(values) / 1000:.3f}")
    gone = lat["removal_ms"] or [0.0]
    row(f"remove latency, send -> vendor request, p50 / p99 / max (s) at {lat['rate']:g}/s",
        f"{percentile(gone, 50) / 1000:.3f} / {percentile(gone, 99) / 1000:.3f} / {max(gone) / 1000:.3f}")
    row("  probes (each a new member, then leaving Gold)", f"{lat['probes']:,}")
    row("process stage, no connections (batches/s)", f"{rate_without:,.0f}")
    row("process stage, 3 trigger + 1 sync connections (batches/s)", f"{rate_with:,.0f}")
    row("  ratio with / without (same log, same machine, same run)", f"{rate_with / rate_without:.2f}")
    row("  delivery jobs queued / sync steps still owed after the run", f"{with_['jobs']:,} / {with_['steps_behind']}")
    row("  median of the two runs' CPU seconds", f"{statistics.median([without['cpu'], with_['cpu']]):.1f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
