"""A Kaon cluster on one machine: PostgreSQL, N collect + N process + N deliver `kaon serve` processes.

    scripts/cluster-demo.sh [--users 200] [--batches 3000] [--no-kill]     (this script, with PostgreSQL started)

It sends batches from many users through every collect process (a user's batches alternate between them, one
at a time, each retried on another collect process until acknowledged), `kill -9`s one process of each role
(with its child processes) during the run and starts it again, then checks and prints:

- every acknowledged event stored exactly once (by source message id, in PostgreSQL's `events` table);
- every event delivered to a capture server standing in for a webhook vendor, at least once, each request with
  its `Idempotency-Key`, and each user's events in the order the user sent them (first deliveries);
- the identity partition (which identities share a profile) equal to the same world sent to a one-process
  Kaon on SQLite.

Exits 1 when a check fails. `run_cluster` is what `tests/e2e/test_cluster.py` runs, with fewer batches.
"""

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.capture import VendorCapture
from support.postgres import free_port, running_cluster

HEALTH_TIMEOUT_S = 60.0


def kaon_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAON_")}
    return {**env, "KAON_OUTBOUND_ALLOW": "127.0.0.1", **extra}


@dataclass
class Node:
    """One `kaon serve` process."""

    role: str
    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Node":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "serve.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kaon", "serve", "--data-dir", str(self.data_dir), "--port", str(self.port),
                 "--role", self.role], stdout=log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kaon serve --role {self.role} exited; see {self.data_dir / 'serve.log'}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"kaon serve --role {self.role} did not become healthy")

    def kill9(self) -> None:
        """SIGKILL the process and its children (the process worker, the delivery engine): a machine lost."""
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        pids = [int(p) for p in children.read_text().split()] if children.exists() else []
        for pid in [self.proc.pid, *pids]:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.kill9()


def world(users: int, batches: int) -> list[list[dict[str, Any]]]:
    """Each user's batches in order. Even users are web-like (a device stamp on every batch, anonymous at first,
    then logged in); odd users are server-side (their customer id on every batch); some batches add an email."""
    per_user = max(1, batches // users)
    out = []
    for n in range(users):
        mine = []
        for seq in range(per_user):
            identities: dict[str, str] = {}
            if n % 2 == 1 or seq > 0:
                identities["customer_id"] = f"u{n}"
            if seq % 3 == 2:
                identities["email"] = f"u{n}@example.com"
            events = [{"event_type": "custom_event", "data": {
                "event_name": "step", "custom_event_type": "navigation",
                "source_message_id": f"u{n}:{seq:05d}:{k}", "custom_attributes": {"seq": str(seq)}}}
                for k in range(1 + seq % 3)]
            batch: dict[str, Any] = {"environment": "production", "user_identities": identities, "events": events}
            if n % 2 == 0:
                batch["mp_deviceid"] = f"das-{n}"
            mine.append(batch)
        out.append(mine)
    return out


@dataclass
class Load:
    acknowledged: set[str] = field(default_factory=set)
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def send_world(urls: list[str], auth: tuple[str, str], users: list[list[dict[str, Any]]], threads: int,
               progress: threading.Event | None = None, at: int = 0) -> Load:
    """Send every user's batches in order (the next only once the last is acknowledged), alternating the collect
    processes and retrying a refused or failed request on the next one."""
    load = Load()
    total = sum(len(u) for u in users)
    sent = [0]

    def worker(mine: list[list[dict[str, Any]]]) -> None:
        with httpx.Client(timeout=10, auth=auth) as client:
            turn = 0
            for batches in mine:
                for batch in batches:
                    body = json.dumps(batch).encode()
                    for attempt in range(200):
                        url = urls[(turn + attempt) % len(urls)]
                        try:
                            answer = client.post(f"{url}/v2/events", content=body,
                                                 headers={"Content-Type": "application/json"})
                            if answer.status_code == 202:
                                break
                        except httpx.HTTPError:
                            pass
                        with load.lock:
                            load.retries += 1
                        time.sleep(0.05)
                    else:
                        raise RuntimeError("a batch was never acknowledged")
                    turn += 1
                    with load.lock:
                        load.acknowledged.update(e["data"]["source_message_id"] for e in batch["events"])
                        sent[0] += 1
                        if progress is not None and sent[0] >= at:
                            progress.set()

    groups = [users[i::threads] for i in range(threads)]
    running = [threading.Thread(target=worker, args=(g,)) for g in groups]
    for t in running:
        t.start()
    for t in running:
        t.join()
    assert sent[0] == total
    return load


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def stored_counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT source_message_id, count(*) FROM events GROUP BY 1").fetchall()
    return {str(m): int(c) for m, c in rows}


Partition = set[frozenset[tuple[str, str]]]


def partition_of(rows: list[tuple[Any, str, str]]) -> Partition:
    groups: dict[Any, set[tuple[str, str]]] = {}
    for mpid, kind, value in rows:
        groups.setdefault(mpid, set()).add((kind, value))
    return {frozenset(g) for g in groups.values()}


IDENTITIES = "SELECT mpid, identity_type, value FROM identities"


def delivered(capture: VendorCapture) -> tuple[list[str], int]:
    """Message ids in delivery order (repeats included) and how many requests lacked an Idempotency-Key."""
    ids, unkeyed = [], 0
    for request in capture.requests():
        if not request.headers.get("idempotency-key"):
            unkeyed += 1
        ids += [e["source_message_id"] for e in request.json()["batch"]]
    return ids, unkeyed


def order_breaks(ids: list[str]) -> int:
    """How many first deliveries come before an earlier batch of the same user's."""
    last: dict[str, tuple[int, int]] = {}
    seen: set[str] = set()
    breaks = 0
    for message in ids:
        if message in seen:
            continue
        seen.add(message)
        user, seq, k = message.split(":")
        mark = (int(seq), int(k))
        if user in last and mark < last[user]:
            breaks += 1
        last[user] = max(mark, last.get(user, mark))
    return breaks


@dataclass
class Report:
    batches: int
    acknowledged: int
    stored_once: int
    stored_twice_or_more: int
    missing: int
    delivered_distinct: int
    delivered_repeats: int
    requests_without_idempotency_key: int
    order_breaks: int
    profiles: int
    identity_partition_equal: bool
    retries: int
    send_seconds: float  # until the last batch was acknowledged
    seconds: float  # until the last event was delivered
    killed: list[str]

    @property
    def ingest_events_per_s(self) -> float:
        return self.acknowledged / self.send_seconds

    @property
    def end_to_end_events_per_s(self) -> float:
        return self.acknowledged / self.seconds

    @property
    def ok(self) -> bool:
        return (self.missing == 0 and self.stored_twice_or_more == 0 and self.stored_once == self.acknowledged
                and self.delivered_distinct == self.acknowledged and self.requests_without_idempotency_key == 0
                and self.order_breaks == 0 and self.identity_partition_equal)


def admin(url: str, token: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.request(method, f"{url}/api/v1{path}", json=body, headers={"Authorization": f"Bearer {token}"},
                           timeout=30)
    if answer.status_code >= 300:
        raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text}")
    found: dict[str, Any] = answer.json()
    return found


def init(data_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "kaon", "init", "--json", "--data-dir", str(data_dir)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"kaon init: {done.stderr}")
    created: dict[str, Any] = json.loads(done.stdout)
    return created


def connect_webhook(url: str, token: str, input_id: str, capture: VendorCapture, name: str) -> None:
    output = admin(url, token, "POST", "/outputs", {"name": name, "destination": "webhook", "settings": {
        "base_url": f"{capture.url}/hook", "batch": True}})
    admin(url, token, "POST", "/connections", {"input_id": input_id, "output_id": output["id"]})


def sqlite_partition(work: Path, users: list[list[dict[str, Any]]]) -> Partition:
    """The same world through one `kaon serve` on SQLite, one batch at a time per user."""
    env = kaon_env({})
    data_dir = work / "sqlite"
    created = init(data_dir, env)
    server = next(i for i in created["inputs"] if i["platform"] == "server")
    node = Node("all", data_dir, env).start()
    try:
        send_world([node.url], (server["key"], server["secret"]), users, threads=4)
        expected = sum(len(b["events"]) for u in users for b in u)

        def processed() -> int:
            with sqlite3.connect(data_dir / "kaon.db") as conn:
                return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])

        wait_for(lambda: processed() >= expected, 300, "the SQLite world processed")
        with sqlite3.connect(data_dir / "kaon.db") as conn:
            return partition_of(conn.execute(IDENTITIES).fetchall())
    finally:
        node.stop()


def run_cluster(dsn: str, work: Path, *, users: int = 200, batches: int = 3000, per_role: int = 2,
                kill: bool = True, threads: int = 16, timeout: float = 600, process_workers: int | None = None,
                compare_sqlite: bool = True) -> Report:
    users_batches = world(users, batches)
    env = kaon_env({"KAON_DATABASE_URL": dsn, "KAON_SECRET_KEY": Fernet.generate_key().decode()})
    created = init(work / "init", env)
    server = next(i for i in created["inputs"] if i["platform"] == "server")
    token = str(created["admin_token"])
    killed: list[str] = []
    with ExitStack() as stack:
        capture = VendorCapture().start()
        stack.callback(capture.stop)
        counts = {"collect": per_role, "process": per_role if process_workers is None else process_workers,
                  "deliver": per_role}
        nodes = {role: [Node(role, work / f"{role}-{i}", env) for i in range(n)] for role, n in counts.items()}
        for role_nodes in nodes.values():
            for node in role_nodes:
                node.start()
                stack.callback(node.stop)
        connect_webhook(nodes["collect"][0].url, token, server["id"], capture, "cluster-hook")
        started = time.monotonic()
        halfway = threading.Event()
        total_batches = sum(len(u) for u in users_batches)

        def chaos() -> None:
            halfway.wait()
            for role in ("collect", "process", "deliver"):
                victim = nodes[role][0]
                victim.kill9()
                killed.append(f"{role} (port {victim.port})")
                time.sleep(0.5)
                victim.start()

        chaos_thread = threading.Thread(target=chaos)
        if kill:
            chaos_thread.start()
        load = send_world([n.url for n in nodes["collect"]], (server["key"], server["secret"]), users_batches,
                          threads, progress=halfway, at=total_batches // 3)
        if kill:
            chaos_thread.join()
        send_seconds = time.monotonic() - started
        acknowledged = load.acknowledged
        wait_for(lambda: acknowledged <= set(stored_counts(dsn)), timeout, "every acknowledged event stored")
        wait_for(lambda: acknowledged <= set(delivered(capture)[0]), timeout, "every event delivered")
        seconds = time.monotonic() - started
        stored = stored_counts(dsn)
        ids, unkeyed = delivered(capture)
        with psycopg.connect(dsn) as conn:
            cluster_partition = partition_of(conn.execute(IDENTITIES).fetchall())
    expected_partition = sqlite_partition(work, users_batches) if compare_sqlite else cluster_partition
    return Report(
        batches=total_batches, acknowledged=len(acknowledged),
        stored_once=sum(1 for m in acknowledged if stored.get(m) == 1),
        stored_twice_or_more=sum(1 for c in stored.values() if c > 1),
        missing=sum(1 for m in acknowledged if m not in stored),
        delivered_distinct=len(set(ids) & acknowledged), delivered_repeats=len(ids) - len(set(ids)),
        requests_without_idempotency_key=unkeyed, order_breaks=order_breaks(ids),
        profiles=len(cluster_partition), identity_partition_equal=cluster_partition == expected_partition,
        retries=load.retries, send_seconds=send_seconds, seconds=seconds, killed=killed)


@contextmanager
def postgres() -> Iterator[str]:
    with running_cluster() as cluster:
        yield cluster.dsn()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--batches", type=int, default=3000)
    parser.add_argument("--per-role", type=int, default=2, help="processes of each role (default 2)")
    parser.add_argument("--no-kill", action="store_true", help="do not kill -9 a process of each role")
    parser.add_argument("--figures", action="store_true",
                        help="no kills: events/s with 1 and then 2 process workers (2 collect, 2 deliver), same run")
    args = parser.parse_args()
    if args.figures:
        return figures(args.users, args.batches)
    with tempfile.TemporaryDirectory(prefix="kaon-cluster-") as work, postgres() as dsn:
        report = run_cluster(dsn, Path(work), users=args.users, batches=args.batches, per_role=args.per_role,
                             kill=not args.no_kill)
    for name, value in vars(report).items():
        print(f"{name:>34}: {value}")
    print(f"{'ingest events/s':>34}: {report.ingest_events_per_s:,.0f}")
    print(f"{'end-to-end events/s':>34}: {report.end_to_end_events_per_s:,.0f}")
    print(f"{'result':>34}: {'ok' if report.ok else 'FAILED'}")
    return 0 if report.ok else 1


def figures(users: int, batches: int) -> int:
    """Ingest and end-to-end events/s on PostgreSQL with 1 and 2 process workers, each on a fresh database."""
    rows = []
    with postgres() as dsn:
        for n, workers in enumerate((1, 2, 1, 2)):
            database = f"figures_{n}"
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {database}")
            url = dsn.rsplit("/", 1)[0] + f"/{database}"
            with tempfile.TemporaryDirectory(prefix="kaon-cluster-") as work:
                report = run_cluster(url, Path(work), users=users, batches=batches, kill=False,
                                     process_workers=workers, compare_sqlite=False)
            rows.append((workers, report))
            print(f"process workers {workers}: ingest {report.ingest_events_per_s:>8,.0f} events/s, end to end "
                  f"{report.end_to_end_events_per_s:>8,.0f} events/s ({report.acknowledged} events, "
                  f"{'ok' if report.ok else 'FAILED'})", flush=True)
    by = {w: [r.end_to_end_events_per_s for x, r in rows if x == w] for w in (1, 2)}
    print(f"end to end, 2 workers / 1 worker (mean of {len(by[1])} runs each): "
          f"{sum(by[2]) / len(by[2]) / (sum(by[1]) / len(by[1])):.2f}")
    print(f"machine: {os.cpu_count()} cores; the sender is this script (16 threads, one batch per user at a time)")
    return 0 if all(r.ok for _, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
