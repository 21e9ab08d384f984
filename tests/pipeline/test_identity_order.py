"""Property: the profiles Kaon builds do not depend on arrival order or on how batches are split.

Hypothesis generates worlds of people whose identifiers never collide (each batch carries some of one person's
identities and attributes, every event at its own time), shuffles the batches, cuts them into bulk requests of
1-100 batches spread over 1-3 log partitions, and runs the real process stage with a random slice size. The
result must equal the reference computed from the batches alone:
- the partition of identities is the connected components of "seen in one batch" (unify);
- every event belongs to the live profile of its batch's component (never to a merged-away profile);
- every profile's attributes are, per name, the newest value set in its component (a newer removal wins).
"""

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaon.log.base import KIND_MPARTICLE_BULK, LogEntry
from kaon.log.sqlite import SqliteLogReader, SqliteLogWriter
from kaon.pipeline.runner import ProcessStage
from kaon.pipeline.steps import default_steps
from kaon.store.config import ConfigStore
from kaon.store.db import Database, DatabaseUrl

NOW = 1_800_000_000_000
DAY = 86_400_000
Identity = tuple[str, str]
DELETED = object()


@dataclass(frozen=True)
class WorldBatch:
    name: str
    at: int
    identities: tuple[Identity, ...]
    attributes: tuple[tuple[str, str | None], ...]  # None: the attribute is removed

    def body(self) -> dict[str, Any]:
        user = {t: v for t, v in self.identities if t in ("customer_id", "email", "other")}
        device = {t: v for t, v in self.identities if t == "ios_idfv"}
        stamp = next((v for t, v in self.identities if t == "device_application_stamp"), None)
        out: dict[str, Any] = {
            "environment": "production", "user_identities": user,
            "user_attributes": {n: v for n, v in self.attributes if v is not None},
            "deleted_user_attributes": [n for n, v in self.attributes if v is None],
            "events": [{"event_type": "custom_event", "data": {
                "event_name": self.name, "custom_event_type": "other", "source_message_id": self.name,
                "timestamp_unixtime_ms": self.at}}],
        }
        if device:
            out["device_info"] = {"platform": "iOS", **device}
        if stamp is not None:
            out["mp_deviceid"] = stamp
        return out


@st.composite
def worlds(draw: st.DrawFn) -> list[WorldBatch]:
    people: list[list[Identity]] = []
    for p in range(draw(st.integers(1, 5))):
        own: list[Identity] = []
        if draw(st.booleans()):
            own.append(("customer_id", f"c{p}"))
        for kind, count in (("email", 2), ("other", 2), ("ios_idfv", 2), ("device_application_stamp", 3)):
            for k in range(draw(st.integers(0, count))):
                own.append((kind, f"{kind[0]}{p}-{k}@x.io" if kind == "email" else f"{kind[0]}{p}-{k}"))
        if not own:
            own.append(("device_application_stamp", f"s{p}-only"))
        people.append(own)
    batches: list[WorldBatch] = []
    for n in range(draw(st.integers(1, 40))):
        own = people[draw(st.integers(0, len(people) - 1))]
        chosen = draw(st.lists(st.sampled_from(own), min_size=1, max_size=4, unique=True))
        by_type = {t: v for t, v in chosen}  # a batch holds one value per identity type
        attributes = draw(st.lists(st.tuples(st.sampled_from(["tier", "plan", "city"]),
                                             st.one_of(st.none(), st.sampled_from(["a", "b", "c"]))),
                                   max_size=2, unique_by=lambda pair: pair[0]))
        # Distinct event times, unrelated to the arrival order drawn later.
        batches.append(WorldBatch(name=f"e{n}", at=NOW - DAY + n * 1_000, identities=tuple(sorted(by_type.items())),
                                  attributes=tuple(attributes)))
    return batches


def components(batches: list[WorldBatch]) -> dict[Identity, frozenset[Identity]]:
    groups: list[set[Identity]] = []
    for b in batches:
        ids = set(b.identities)
        touching = [g for g in groups if g & ids]
        groups = [g for g in groups if not g & ids] + [ids.union(*touching)]
    return {i: frozenset(g) for g in groups for i in g}


def expected_attributes(batches: list[WorldBatch], group: frozenset[Identity]) -> dict[str, str]:
    newest: dict[str, tuple[int, object]] = {}
    for b in batches:
        if not set(b.identities) & group:
            continue
        for name, value in b.attributes:
            if name not in newest or b.at > newest[name][0]:
                newest[name] = (b.at, DELETED if value is None else value)
    return {name: str(value) for name, (_, value) in newest.items() if value is not DELETED}


@dataclass(frozen=True)
class Arrival:
    order: list[int]
    cuts: list[int]  # request sizes
    partitions: list[int]  # partition of each request
    slice_size: int


@st.composite
def arrivals(draw: st.DrawFn, count: int) -> Arrival:
    order = draw(st.permutations(range(count)))
    sizes: list[int] = []
    left = count
    while left:
        size = draw(st.integers(1, min(100, left)))
        sizes.append(size)
        left -= size
    partitions = [draw(st.integers(0, 2)) for _ in sizes]
    return Arrival(list(order), sizes, partitions, draw(st.integers(1, 8)))


def run(batches: list[WorldBatch], arrival: Arrival) -> dict[str, Any]:
    """Everything the property compares, read from a fresh store after processing."""
    with tempfile.TemporaryDirectory(prefix="kaon-order-") as tmp:
        root = Path(tmp)
        db = Database(DatabaseUrl.parse(f"sqlite:///{root / 'kaon.db'}"))
        config = ConfigStore(db.conn())
        workspace = config.create_workspace("order").id
        source = config.create_input(workspace, "server", "server").input.id
        writers = {p: SqliteLogWriter(root / "log", str(p)) for p in set(arrival.partitions)}
        reader = SqliteLogReader(root / "log")
        try:
            start = 0
            for size, partition in zip(arrival.cuts, arrival.partitions, strict=True):
                chunk = [batches[i].body() for i in arrival.order[start:start + size]]
                start += size
                writers[partition].append([LogEntry(kind=KIND_MPARTICLE_BULK, workspace_id=workspace,
                                                    input_id=source, received_ms=NOW, ip=None,
                                                    body=json.dumps(chunk).encode())])
            stage = ProcessStage(db, reader, default_steps(dedup_window_ms=DAY), slice_size=arrival.slice_size,
                                 clock=lambda: NOW)
            stage.drain(NOW + 1)
            conn = db.conn()
            owners = {(str(t), str(v)): int(m) for t, v, m in conn.execute(
                "SELECT identity_type, value, mpid FROM identities WHERE workspace_id = ?", (workspace,))}
            tombstones = {int(m) for (m,) in conn.execute(
                "SELECT mpid FROM profiles WHERE workspace_id = ? AND merged_into IS NOT NULL", (workspace,))}
            events = {str(n): int(m) for n, m in conn.execute(
                "SELECT event_name, mpid FROM events WHERE workspace_id = ?", (workspace,))}
            attributes: dict[int, dict[str, str]] = {}
            for mpid, name, value in conn.execute(
                    "SELECT mpid, name, value FROM profile_attributes WHERE workspace_id = ? AND deleted = 0",
                    (workspace,)):
                attributes.setdefault(int(mpid), {})[str(name)] = json.loads(value)
            on_tombstones = conn.execute(
                "SELECT COUNT(*) FROM profile_attributes WHERE workspace_id = ? AND mpid IN"
                " (SELECT mpid FROM profiles WHERE workspace_id = ? AND merged_into IS NOT NULL)",
                (workspace, workspace)).fetchone()[0]
        finally:
            for writer in writers.values():
                writer.close()
            reader.close()
    members: dict[int, set[Identity]] = {}
    for identity, mpid in owners.items():
        members.setdefault(mpid, set()).add(identity)
    groups = {mpid: frozenset(ids) for mpid, ids in members.items()}
    return {
        "partition": set(groups.values()),
        "stale_owners": sorted(set(owners.values()) & tombstones),
        "stale_events": sorted(n for n, m in events.items() if m in tombstones or m not in groups),
        "attributes_on_tombstones": on_tombstones,
        "event_groups": {n: groups.get(m) for n, m in events.items()},
        "attributes": {groups[m]: a for m, a in attributes.items() if m in groups},
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_profiles_do_not_depend_on_arrival_order_or_slicing(data: st.DataObject) -> None:
    batches = data.draw(worlds(), label="world")
    truth = components(batches)
    first = run(batches, data.draw(arrivals(len(batches)), label="arrival"))
    assert first["stale_owners"] == [] and first["stale_events"] == []
    assert first["attributes_on_tombstones"] == 0
    assert first["partition"] == set(truth.values())
    assert first["event_groups"] == {b.name: truth[b.identities[0]] for b in batches}
    expected = {g: expected_attributes(batches, g) for g in set(truth.values())}
    assert {g: a for g, a in first["attributes"].items() if a} == {g: a for g, a in expected.items() if a}
    second = run(batches, data.draw(arrivals(len(batches)), label="another arrival"))
    assert second == first
