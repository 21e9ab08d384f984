"""Identity resolution benchmark: a synthetic world sent to a real `kaon serve`, its profiles scored against truth.

Run: `.venv/bin/python bench/identity.py [--people 2000] [--seed 1] [--orders 0,1] [--check]`.
For each shuffle order, the honest and the adversarial world (bench/identity_world.py) each go to a fresh Kaon
through `POST /v2/bulkevents` (bulk requests of 100 batches, so merges happen inside one processed slice);
once every event is processed the partition, the events and the attributes are read from `kaon.db`
(read-only) and compared: the honest world must match its connected components exactly, every event must be
on its component's profile and every profile's `last_batch` attribute must be its component's newest batch;
in both worlds nothing may be stored on a merged-away profile, and in the adversarial world no profile may
hold two customer ids. `--check` exits 1 when any of these fails.
Loopback only; every wait has a deadline.
"""

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx

from identity_world import LAST_BATCH, Identity, World, adversarial_world, honest_world
from ingest import Server, free_port, kaon_init, machine, server_input_of

BULK_SIZE = 100  # batches per /v2/bulkevents request, the documented limit
POLL_S = 0.05


class BenchError(RuntimeError):
    """The benchmark could not measure (server, ingest or store not as assumed); the message says why."""


@dataclass(frozen=True)
class Kaon:
    server: Server
    data_dir: Path
    workspace_id: str
    key: str
    secret: str
    admin_token: str


def start_kaon(data_dir: Path) -> Kaon:
    try:
        created = kaon_init(data_dir)
    except RuntimeError as error:
        raise BenchError(str(error)) from None
    server_input = server_input_of(created)
    port = free_port()
    server = Server("kaon", [sys.executable, "-m", "kaon", "serve", "--data-dir", str(data_dir),
                             "--port", str(port)], port, data_dir / "serve.log", "/api/v1/health", 200)
    return Kaon(server, data_dir, str(created["workspace_id"]), str(server_input["key"]),
                str(server_input["secret"]), str(created["admin_token"]))


def processed_events(client: httpx.Client, kaon: Kaon) -> int:
    """Events processed, summed over every row of `/api/v1/stats` (following its cursors)."""
    total, params = 0, {"limit": "1000"}
    while True:
        response = client.get("/api/v1/stats", params=params, headers={"Authorization": f"Bearer {kaon.admin_token}"})
        if response.status_code != 200:
            raise BenchError(f"GET /api/v1/stats answered {response.status_code}: {response.text[:200]}")
        page = response.json()
        total += sum(int(row["events_processed"]) for row in page["stats"])
        if not page["next_cursor"]:
            return total
        params = {"limit": "1000", "cursor": page["next_cursor"]}


def send_and_settle(kaon: Kaon, world: World, timeout_s: float) -> tuple[int, float]:
    """Send every batch, wait until all are processed: (events, seconds from first send to the last one)."""
    with httpx.Client(base_url=kaon.server.url, timeout=30.0) as client:
        start = time.monotonic()
        sent = 0
        for i in range(0, len(world.batches), BULK_SIZE):
            chunk = world.batches[i:i + BULK_SIZE]
            response = client.post("/v2/bulkevents", content=json.dumps(chunk, separators=(",", ":")),
                                   auth=(kaon.key, kaon.secret), headers={"Content-Type": "application/json"})
            if response.status_code != 202:
                raise BenchError(f"POST /v2/bulkevents answered {response.status_code}: {response.text[:300]}")
            sent += sum(len(batch["events"]) for batch in chunk)
        deadline = start + timeout_s
        while (processed := processed_events(client, kaon)) < sent:
            if time.monotonic() > deadline:
                raise BenchError(f"timed out after {timeout_s:g}s: {processed:,} of {sent:,} events processed "
                                 f"(server log: {kaon.server.log_path})")
            time.sleep(POLL_S)
        return sent, time.monotonic() - start


@dataclass(frozen=True)
class Placement:
    """Where the store put events and attributes: by message id and by profile, with the merged-away profiles."""

    event_owner: dict[str, int]  # source_message_id -> mpid as stored
    last_batch: dict[int, str]  # mpid -> its `last_batch` attribute
    attribute_owners: set[int]  # every mpid holding any attribute row
    tombstones: set[int]


def read_placement(kaon: Kaon) -> Placement:
    """Events and attributes as stored (not followed through merges: a row on a merged profile is a bug)."""
    conn = sqlite3.connect(f"file:{kaon.data_dir / 'kaon.db'}?mode=ro", uri=True)
    try:
        ws = (kaon.workspace_id,)
        events = {str(m): int(p) for m, p in conn.execute(
            "SELECT source_message_id, mpid FROM events WHERE workspace_id = ?", ws)}
        last = {int(p): json.loads(v) for p, v in conn.execute(
            "SELECT mpid, value FROM profile_attributes WHERE workspace_id = ? AND name = ? AND deleted = 0",
            (kaon.workspace_id, LAST_BATCH))}
        owners = {int(p) for (p,) in conn.execute(
            "SELECT DISTINCT mpid FROM profile_attributes WHERE workspace_id = ?", ws)}
        tombstones = {int(p) for (p,) in conn.execute(
            "SELECT mpid FROM profiles WHERE workspace_id = ? AND merged_into IS NOT NULL", ws)}
    finally:
        conn.close()
    return Placement(events, last, owners, tombstones)


def read_profiles(kaon: Kaon) -> dict[Identity, int]:
    """Identity -> profile (mpid, following merge tombstones) from the store, on a read-only connection."""
    path = kaon.data_dir / "kaon.db"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        try:
            rows = conn.execute("SELECT identity_type, value, mpid FROM identities WHERE workspace_id = ?",
                                (kaon.workspace_id,)).fetchall()
        except sqlite3.OperationalError as error:
            raise BenchError(f"cannot read table `identities` in {path} ({error}): has the identity resolver "
                             "landed?") from None
        try:
            merged = dict(conn.execute("SELECT mpid, merged_into FROM profiles WHERE workspace_id = ? AND "
                                       "merged_into IS NOT NULL", (kaon.workspace_id,)).fetchall())
        except sqlite3.OperationalError:
            merged = {}
    finally:
        conn.close()
    if not rows:
        raise BenchError(f"table `identities` in {path} holds no rows for the workspace: events were processed "
                         "but no identity was resolved (is the identity step in the pipeline?)")
    stale = 0
    out: dict[Identity, int] = {}
    for kind, value, owner in rows:
        stale += owner in merged
        mpid, seen = owner, set()
        while mpid in merged and mpid not in seen:
            seen.add(mpid)
            mpid = merged[mpid]
        out[(str(kind), str(value))] = int(mpid)
    if stale:
        print(f"  note: {stale} identity rows point at a merged profile (followed to the survivor)")
    return out


def profile(found: dict[Identity, int], identity: Identity) -> int | Identity:
    """The identity's profile; one missing from the store stands alone (mpids may be negative: no sentinel)."""
    return found.get(identity, identity)


def _pairs(sizes: Iterable[int]) -> int:
    return sum(k * (k - 1) // 2 for k in sizes)


def pair_scores(found: dict[Identity, int], truth: Iterable[frozenset[Identity]]) -> tuple[float, float]:
    """Pairwise (precision, recall) over the truth's identities: same profile vs same truth group.

    Counted from group sizes, so a resolver that merges everything costs O(identities), not O(pairs).
    An identity missing from the store counts as a profile of its own.
    """
    group_of = {identity: n for n, group in enumerate(truth) for identity in group}
    profile_of = {identity: profile(found, identity) for identity in group_of}
    same_profile = _pairs(Counter(profile_of.values()).values())
    same_group = _pairs(Counter(group_of.values()).values())
    both = _pairs(Counter((profile_of[i], group_of[i]) for i in group_of).values())
    return (both / same_profile if same_profile else 1.0, both / same_group if same_group else 1.0)


@dataclass(frozen=True)
class Result:
    world: str
    order: int
    events: int
    seconds: float
    partition: frozenset[frozenset[Identity]]
    exact: bool  # partition == the world's connected components
    precision: float  # against the connected components (honest) or each person's own identities (adversarial)
    recall: float
    missing: int  # truth identities not in the store
    extra: int  # stored identities the truth does not know (a blocked value stored, a normalisation mismatch)
    multi_customer_profiles: int  # profiles holding two or more customer ids
    profiles_per_person: Counter[int]  # people with a customer id -> how many profiles hold their own identities
    events_stored: int
    events_on_merged: int  # events stored with the mpid of a merged-away profile
    attributes_on_merged: int  # merged-away profiles still holding attribute rows
    # Honest world only (None otherwise): events not on the profile holding their batch's component, and
    # components whose profile's `last_batch` is not the component's newest batch (ties excluded).
    events_misplaced: int | None
    attributes_wrong: int | None
    attributes_checked: int | None

    @property
    def placement_exact(self) -> bool:
        return (self.events_on_merged == 0 and self.attributes_on_merged == 0 and not self.events_misplaced
                and not self.attributes_wrong)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def placement_scores(world: World, found: dict[Identity, int], placed: Placement) -> tuple[int, int, int]:
    """(events misplaced, components with a wrong `last_batch`, components checked) against the components."""
    misplaced = 0
    for message_id, group in world.component_of_batches().items():
        owner = placed.event_owner.get(message_id)
        misplaced += owner is None or owner != found.get(min(group))
    wrong = checked = 0
    for group, newest in world.newest_batches().items():
        if newest is None:
            continue
        checked += 1
        wrong += placed.last_batch.get(found.get(min(group), 0)) != newest
    return misplaced, wrong, checked


def score(world: World, found: dict[Identity, int], placed: Placement, events: int, seconds: float) -> Result:
    groups: dict[int, set[Identity]] = {}
    for identity, mpid in found.items():
        groups.setdefault(mpid, set()).add(identity)
    partition = frozenset(frozenset(g) for g in groups.values())
    known = {identity for component in world.expected for identity in component}
    truth = world.expected if world.name == "honest" else world.person_partition()
    precision, recall = pair_scores(found, truth)
    customers = Counter(mpid for (kind, _), mpid in found.items() if kind == "customer_id")
    spread = Counter(len({profile(found, i) for i in p.identities - world.shared})
                     for p in world.people if p.customer_id)
    honest = world.name == "honest"
    misplaced, wrong, checked = placement_scores(world, found, placed) if honest else (None, None, None)
    return Result(world.name, world.order, events, seconds, partition, partition == world.expected, precision,
                  recall, len(known - found.keys()), len(found.keys() - known),
                  sum(1 for count in customers.values() if count >= 2), spread, len(placed.event_owner),
                  sum(1 for mpid in placed.event_owner.values() if mpid in placed.tombstones),
                  len(placed.attribute_owners & placed.tombstones), misplaced, wrong, checked)


def run(world: World, work: Path, timeout_s: float) -> Result:
    kaon = start_kaon(work / f"{world.name}-{world.order}")
    try:
        events, seconds = send_and_settle(kaon, world, timeout_s)
        found = read_profiles(kaon)
        placed = read_placement(kaon)
    finally:
        status = kaon.server.stop()
    if status != 0:
        print(f"  note: kaon exited {status} on SIGTERM")
    return score(world, found, placed, events, seconds)


def report(result: Result) -> None:
    spread = ", ".join(f"{k}: {v}" for k, v in sorted(result.profiles_per_person.items()))
    print(f"{result.world:<11} order {result.order}: {result.events:,} events in {result.seconds:.2f}s = "
          f"{result.events_per_s:,.0f} events/s; {len(result.partition):,} profiles")
    truth = "connected components" if result.world == "honest" else "each person's own identities"
    print(f"  pairwise vs {truth}: precision {result.precision:.4f}, recall {result.recall:.4f}; "
          f"identities missing {result.missing}, extra {result.extra}")
    if result.world == "honest":
        print(f"  exact partition match: {'yes' if result.exact else 'NO'}")
    print(f"  profiles holding >=2 customer ids: {result.multi_customer_profiles}; "
          f"profiles per logged-in person {{{spread}}}")
    print(f"  events stored {result.events_stored:,}; on merged-away profiles {result.events_on_merged}; "
          f"merged-away profiles holding attributes {result.attributes_on_merged}")
    if result.events_misplaced is not None:
        print(f"  events not on their component's profile: {result.events_misplaced}; newest-batch attribute wrong "
              f"on {result.attributes_wrong} of {result.attributes_checked} components; "
              f"placement exact: {'yes' if result.placement_exact else 'NO'}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Kaon identity resolution benchmark (unify strategy).")
    parser.add_argument("--people", type=int, default=2000, help="people per world (default 2000)")
    parser.add_argument("--seed", type=int, default=1, help="world seed (default 1)")
    parser.add_argument("--orders", default="0,1", help="shuffle orders to run (default 0,1)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds to wait for one world to be processed (default 600)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 unless the honest partition matches exactly and no profile has 2 customer ids")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    orders = [int(s) for s in args.orders.split(",") if s.strip()]
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} (other work skews events/s)")
    worlds = {"honest": honest_world(args.people, args.seed), "adversarial": adversarial_world(args.people, args.seed)}
    for world in worlds.values():
        print(f"{world.name}: {args.people:,} people, {len(world.batches):,} batches, "
              f"{len(world.expected):,} connected components, {len(world.households)} household tablets, "
              f"{len(world.recycled)} recycled numbers")
    results: list[Result] = []
    try:
        with tempfile.TemporaryDirectory(prefix="kaon-identity-") as tmp:
            for order in orders:
                for world in worlds.values():
                    results.append(run(world.reordered(order), Path(tmp), args.timeout))
                    report(results[-1])
    except BenchError as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 2
    if len(orders) > 1:
        for world in worlds.values():
            # Who keeps a shared tablet depends on arrival order; each person's own identities must not.
            whole = {r.partition for r in results if r.world == world.name}
            own = {frozenset(g - world.shared for g in r.partition) - {frozenset()}
                   for r in results if r.world == world.name}
            print(f"order independence, {world.name} over orders {orders}: "
                  f"{'same' if len(whole) == 1 else 'different'} partition; "
                  f"{'same' if len(own) == 1 else 'different'} partition of unshared identities")
    failed = [r for r in results
              if (r.world == "honest" and not r.exact) or r.multi_customer_profiles or not r.placement_exact]
    for r in failed:
        print(f"CHECK FAILED: {r.world} order {r.order}: exact {r.exact}, "
              f"profiles with >=2 customer ids {r.multi_customer_profiles}, placement exact {r.placement_exact}")
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
