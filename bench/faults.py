"""Fault campaign: kill -9 cycles under load, and a destination outage with a kill during it.

Run: `.venv/bin/python bench/faults.py [--cycles 5] [--seconds 4] [--rate 3000] [--senders 4] [--check]`.
(a) `kaon serve` takes events from concurrent senders (unique ids) while its whole process group is killed with
SIGKILL `--cycles` times at random moments and restarted; at the end: acked, stored, lost (acked, not stored),
duplicated (stored more than once). (b) a webhook output to a local capture answering 503; a kill -9 during the
outage; restart; the outage ends: acked vs delivered exactly once, duplicates, per-user order.
`--check` exits 1 on any loss (or a per-user order broken). Loopback only; every wait has a deadline.
"""

import argparse
import itertools
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faults_capture import OutageCapture
from faults_load import Senders
from ingest import HOST, admin_call, free_port, get_all, kaon_init, machine, server_input_of, wait_until

START_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 180.0
# Short backoff so the outage's events come back soon after it ends; the window keeps them from dead-lettering.
RETRY_ENV = {"KAON_RETRY_BASE_SECONDS": "0.5", "KAON_RETRY_CAP_SECONDS": "2", "KAON_RETRY_WINDOW_SECONDS": "3600"}


def serve_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Our environment without KAON_* settings, plus loopback outbound allowed (the capture is local)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAON_")}
    return {**env, "KAON_OUTBOUND_ALLOW": "127.0.0.0/8", **(extra or {})}


class Serve:
    """`kaon serve` in its own process group on one data dir and port, restartable after SIGKILL."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.env = env
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = data_dir / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.restart_s: list[float] = []

    def start(self) -> None:
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kaon", "serve", "--data-dir", str(self.data_dir), "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        wait_until(self._healthy, START_TIMEOUT_S, "kaon serve healthy")
        self.restart_s.append(time.monotonic() - started)

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"kaon serve exited {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/health", timeout=1) as response:
                return int(response.status) == 200
        except OSError:
            return False

    def kill9(self) -> None:
        """SIGKILL the whole process group (server, process stage, delivery), no drain."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        wait_until(lambda: not self._group_alive(), 30, "process group gone")
        self.kills += 1

    def _group_alive(self) -> bool:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return 0 if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(timeout=10)


def admin(serve: Serve, token: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return admin_call(serve.url, token, method, path, body)


@dataclass(frozen=True)
class Figures:
    scenario: str
    sent: int
    acked: int
    stored: int  # distinct acked-or-not events found stored (or delivered)
    lost: int
    duplicated: int
    kills: int
    seconds: float
    restarts_s: tuple[float, ...]  # start → healthy, for each start after a kill
    order_broken: int = 0


def stored_ids(serve: Serve, token: str) -> Counter[str]:
    events = get_all(serve.url, "/api/v1/events", "events", token)
    out: Counter[str] = Counter()
    for event in events:
        attributes = event.get("data", {}).get("custom_attributes", {})
        if "seq" in attributes:
            out[f"{attributes['user']}:{attributes['seq']}"] += 1
    return out


def settle(probe: Any, want: set[str], timeout_s: float) -> Counter[str]:
    """Poll `probe()` until it holds every wanted id, or stops growing for 10 s, or the deadline: the last count."""
    start = time.monotonic()
    last: Counter[str] = Counter()
    last_total, changed = -1, start
    while True:
        last = probe()
        total = sum(last.values())
        now = time.monotonic()
        if total != last_total:
            last_total, changed = total, now
        if want <= set(last) and now - changed >= 1.0:
            return last
        if now - changed >= 10.0 or now - start > timeout_s:
            return last
        time.sleep(0.25)


def kill_cycles(args: argparse.Namespace, root: Path, rng: random.Random) -> Figures:
    data_dir = root / "cycles"
    data_dir.mkdir()
    created = kaon_init(data_dir)
    server_input = server_input_of(created)
    serve = Serve(data_dir, serve_env())
    started = time.monotonic()
    serve.start()
    senders = Senders(serve.url, server_input["key"], server_input["secret"], args.senders, args.events,
                      per_request=args.batch, rate=args.rate).start()
    for cycle in range(args.cycles):
        moment = time.monotonic() + rng.uniform(0.3, args.seconds)

        def due(at: float = moment) -> bool:
            return senders.done() or time.monotonic() >= at

        wait_until(due, args.seconds + 5, "the kill moment")
        serve.kill9()
        print(f"  cycle {cycle + 1}: kill -9, {senders.acked_count()} acked so far", flush=True)
        serve.start()
    senders.stop()  # the load runs until the last cycle's restart (or `--events` are sent)
    acked = senders.acked()
    stored = settle(lambda: stored_ids(serve, created["admin_token"]), acked, SETTLE_TIMEOUT_S)
    elapsed = time.monotonic() - started
    code = serve.stop()
    if code != 0:
        print(f"  kaon serve exited {code} on SIGTERM")
    return Figures("kill -9 cycles", senders.sent(), len(acked), len(stored), len(acked - set(stored)),
                   sum(1 for n in stored.values() if n > 1), serve.kills, elapsed, tuple(serve.restart_s[1:]))


def outage(args: argparse.Namespace, root: Path, rng: random.Random) -> Figures:
    data_dir = root / "outage"
    data_dir.mkdir()
    created = kaon_init(data_dir)
    server_input = server_input_of(created)
    token = created["admin_token"]
    capture = OutageCapture().start()
    serve = Serve(data_dir, serve_env(RETRY_ENV))
    started = time.monotonic()
    try:
        serve.start()
        output = admin(serve, token, "POST", "/api/v1/outputs", {
            "name": "vendor", "destination": "webhook", "settings": {"base_url": capture.url, "batch": False}})
        admin(serve, token, "POST", "/api/v1/connections", {"input_id": server_input["id"], "output_id": output["id"]})
        capture.set_down(True)
        events = max(args.events // 60, 200)
        senders = Senders(serve.url, server_input["key"], server_input["secret"], args.senders, events,
                          per_request=1, rate=args.outage_rate).start()
        # Kill once some events are queued for the failing vendor and it has refused a few.
        wait_until(lambda: senders.acked_count() >= events // 3 and capture.refused > 0, 120, "outage under way")
        serve.kill9()
        print(f"  kill -9 during the outage: {senders.acked_count()} acked, {capture.refused} refused by vendor",
              flush=True)
        serve.start()
        wait_until(senders.done, SETTLE_TIMEOUT_S, "senders to finish")
        senders.stop()
        outage_s = time.monotonic() - started
        capture.set_down(False)
        print(f"  outage ended after {outage_s:.1f}s ({capture.refused} requests answered 503)", flush=True)
        acked = senders.acked()

        def delivered() -> Counter[str]:
            return Counter(f"{user}:{seq}" for user, seqs in capture.snapshot().items() for seq in seqs)

        got = settle(delivered, acked, SETTLE_TIMEOUT_S)
        broken = 0
        for _user, seqs in capture.snapshot().items():
            first: list[int] = list(dict.fromkeys(seqs))  # first delivery of each, in arrival order
            broken += sum(1 for a, b in itertools.pairwise(first) if b < a)
        elapsed = time.monotonic() - started
        serve.stop()
    finally:
        capture.stop()
    return Figures("outage + kill -9", senders.sent(), len(acked), len(got), len(acked - set(got)),
                   sum(1 for n in got.values() if n > 1), serve.kills, elapsed, tuple(serve.restart_s[1:]), broken)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=5, help="kill -9 cycles under load (scenario a)")
    parser.add_argument("--events", type=int, default=200000,
                        help="most events sent in scenario a (the load stops at the last restart); a 60th in b")
    parser.add_argument("--rate", type=float, default=3000.0, help="events/s offered in scenario a (all senders)")
    parser.add_argument("--seconds", type=float, default=4.0, help="longest run between two kills")
    parser.add_argument("--outage-rate", type=float, default=200.0, help="events/s sent during the outage (b)")
    parser.add_argument("--senders", type=int, default=4, help="concurrent senders")
    parser.add_argument("--batch", type=int, default=5, help="events per request in scenario a")
    parser.add_argument("--seed", type=int, default=None, help="random seed for the kill moments")
    parser.add_argument("--check", action="store_true", help="exit 1 on any loss or broken per-user order")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"fault campaign: {machine()}, load average {os.getloadavg()[0]:.2f}, seed {seed}", flush=True)
    results: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="kaon-faults-") as tmp:
        print("(a) kill -9 cycles under load", flush=True)
        results.append(kill_cycles(args, Path(tmp), rng))
        print("(b) destination outage with a kill -9 during it", flush=True)
        results.append(outage(args, Path(tmp), rng))
    print(f"\n{'scenario':<18} {'sent':>7} {'acked':>7} {'stored':>7} {'lost':>5} {'dup':>5} {'order':>5} "
          f"{'kills':>5} {'seconds':>8}")
    for r in results:
        print(f"{r.scenario:<18} {r.sent:>7} {r.acked:>7} {r.stored:>7} {r.lost:>5} {r.duplicated:>5} "
              f"{r.order_broken:>5} {r.kills:>5} {r.seconds:>8.1f}")
    for r in results:
        if r.restarts_s:
            print(f"{r.scenario}: restart after kill -9 → healthy: mean {sum(r.restarts_s) / len(r.restarts_s):.2f}s, "
                  f"max {max(r.restarts_s):.2f}s; {r.acked / r.seconds:,.0f} events acked/s over the scenario")
    print("(a): stored counts distinct ids, including events stored whose answer the kill cut off (not acked)")
    print("(b): stored = delivered to the vendor; dup = delivered more than once; order = per-user inversions")
    failed = any(r.lost or r.order_broken for r in results)
    if failed:
        print("FAIL: an acknowledged event was lost or a user's order broken")
    return 1 if failed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
