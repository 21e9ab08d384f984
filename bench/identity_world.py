"""A seeded synthetic world of people, devices and Events API batches, with the identity ground truth.

`honest_world` is people who never share an identifier: resolving it with the "unify" strategy must give exactly
`World.expected`, the connected components of "seen in one batch" (each one person's identities).
`adversarial_world` adds household tablets (several people log in with their own customer id on one device) and
recycled phone numbers (a number sent with one customer id, later with another): its connected components join
different people, so the property to check there is safety (no profile holds two customer ids), not the partition.

Pure: the same (people, seed, order) always gives the same world. Blocking and normalisation are written here,
not imported from Kaon, so the benchmark checks Kaon against an independent reading of the rules.
"""

import random
import re
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

Identity = tuple[str, str]  # (identity_type, value) in Kaon's canonical names
JsonBatch = dict[str, Any]  # one mParticle Events API batch, ready for json.dumps

DEVICE_STAMP = "device_application_stamp"
DEVICE_ID_TYPES = (
    "ios_advertising_id", "ios_idfv", "android_advertising_id", "android_uuid", "push_token",
    "roku_advertising_id", "roku_publisher_id", "fire_advertising_id", "amp_id",
    "microsoft_advertising_id", "microsoft_publisher_id",
)
BLOCKED_VALUES = frozenset({"", "null", "none", "undefined", "anonymous", "nan", "-1", "test@test.com"})
_ZEROS_AND_DASHES = re.compile(r"^[0\-]+$")
ZEROED_AD_ID = "00000000-0000-0000-0000-000000000000"
# What broken clients send; all blocked (case and padding included on purpose).
JUNK_VALUES = ("null", "undefined", "", "test@test.com", "NULL", " Undefined ", "anonymous", "-1", "none", "0")

LAST_BATCH = "last_batch"  # the user attribute every batch sets to its own message id
START_MS = 1_735_689_600_000  # 2025-01-01
WINDOW_MS = 30 * 24 * 3600 * 1000
HOUSEHOLD_SHARE = 0.06  # of people, in households of 2-3 sharing one tablet (adversarial world)
RECYCLED_SHARE = 0.03  # of people, as (earlier, later) owners of one phone number (adversarial world)


def is_blocked(value: str) -> bool:
    """Never used for matching: the default blocked values (trimmed, any case) and zeros-and-dashes values."""
    folded = value.strip().lower()
    return folded in BLOCKED_VALUES or bool(_ZEROS_AND_DASHES.match(folded))


def normalise(identity_type: str, value: str) -> str:
    """Values are trimmed; emails compare case-insensitively."""
    value = value.strip()
    return value.lower() if identity_type == "email" else value


def batch_identities(batch: Mapping[str, Any]) -> list[Identity]:
    """The usable identities one batch carries: user identities, device identities, the device stamp."""
    found: list[Identity] = [(name, value) for name, value in (batch.get("user_identities") or {}).items()
                             if isinstance(value, str)]
    device = batch.get("device_info") or {}
    found += [(name, device[name]) for name in DEVICE_ID_TYPES if isinstance(device.get(name), str)]
    if isinstance(batch.get("mp_deviceid"), str):
        found.append((DEVICE_STAMP, batch["mp_deviceid"]))
    normal = [(kind, normalise(kind, value)) for kind, value in found]
    return [(kind, value) for kind, value in normal if not is_blocked(value)]


def connected_components(batches: Iterable[Mapping[str, Any]],
                         ignore: Collection[Identity] = ()) -> list[frozenset[Identity]]:
    """Components of the graph joining identities seen in one batch (union-find), largest first.

    Identities in `ignore` are left out as if blocked (the adversarial world's shared ones, say).
    """
    parent: dict[Identity, Identity] = {}
    size: dict[Identity, int] = {}

    def find(node: Identity) -> Identity:
        while parent[node] != node:
            parent[node] = parent[parent[node]]  # path halving keeps later finds near O(1)
            node = parent[node]
        return node

    for batch in batches:
        identities = [i for i in batch_identities(batch) if i not in ignore]
        for node in identities:
            if node not in parent:
                parent[node], size[node] = node, 1
        for other in identities[1:]:
            a, b = find(identities[0]), find(other)
            if a != b:
                if size[a] < size[b]:
                    a, b = b, a
                parent[b] = a
                size[a] += size[b]
    groups: dict[Identity, set[Identity]] = {}
    for node in parent:
        groups.setdefault(find(node), set()).add(node)
    return sorted((frozenset(g) for g in groups.values()), key=lambda g: (-len(g), min(g)))


@dataclass(frozen=True)
class Person:
    index: int
    customer_id: str | None
    identities: frozenset[Identity]  # every usable identity this person's batches carried, shared ones included


@dataclass(frozen=True)
class World:
    name: str
    seed: int
    order: int
    batches: tuple[JsonBatch, ...]  # shuffled by (seed, order)
    people: tuple[Person, ...]
    expected: frozenset[frozenset[Identity]]  # connected components of the batches
    shared: frozenset[Identity] = frozenset()  # household tablets' identities and recycled numbers
    households: tuple[tuple[int, ...], ...] = ()  # person indexes sharing one tablet
    recycled: tuple[tuple[str, int, int], ...] = ()  # (phone number, earlier owner, later owner)

    @property
    def events(self) -> int:
        return sum(len(batch["events"]) for batch in self.batches)

    def newest_batches(self) -> dict[frozenset[Identity], str | None]:
        """Per connected component, the message id of its newest batch (None when two share the newest time)."""
        component = {identity: group for group in self.expected for identity in group}
        newest: dict[frozenset[Identity], tuple[int, str | None]] = {}
        for batch in self.batches:
            data = batch["events"][0]["data"]
            group = component[batch_identities(batch)[0]]
            at, message_id = int(data["timestamp_unixtime_ms"]), str(data["source_message_id"])
            held = newest.get(group)
            if held is None or at > held[0]:
                newest[group] = (at, message_id)
            elif at == held[0]:
                newest[group] = (at, None)
        return {group: message_id for group, (_, message_id) in newest.items()}

    def component_of_batches(self) -> dict[str, frozenset[Identity]]:
        """Message id -> the connected component its batch belongs to."""
        component = {identity: group for group in self.expected for identity in group}
        return {str(b["events"][0]["data"]["source_message_id"]): component[batch_identities(b)[0]]
                for b in self.batches}

    def person_partition(self) -> frozenset[frozenset[Identity]]:
        """Each person's own identities (shared ones left out): the truth a safe resolver should approach."""
        return frozenset(own for p in self.people if (own := p.identities - self.shared))

    def reordered(self, order: int) -> "World":
        """The same world, its batches in another seeded order."""
        return replace(self, order=order, batches=tuple(_shuffled(self.batches, self.seed, order)))


def honest_world(people: int, seed: int, order: int = 0) -> World:
    """`people` people who share nothing; every connected component is one person's identities."""
    return _Builder(people, seed, "honest").build(order)


def adversarial_world(people: int, seed: int, order: int = 0) -> World:
    """The honest world plus household tablets and recycled phone numbers."""
    return _Builder(people, seed, "adversarial").build(order)


def _shuffled(batches: Iterable[JsonBatch], seed: int, order: int) -> list[JsonBatch]:
    out = sorted(batches, key=lambda b: str(b["events"][0]["data"]["source_message_id"]))
    random.Random(seed * 1_000_003 + order).shuffle(out)
    return out


@dataclass
class _Device:
    platform: str  # "iOS" | "Android"
    vendor_id: str  # ios_idfv / android_uuid: always present, never blocked
    ad_id: str  # ZEROED_AD_ID when the user limits ad tracking

    def info(self, full: bool, rng: random.Random) -> dict[str, str]:
        ios = self.platform == "iOS"
        info = {"platform": self.platform}
        if full:
            info["ios_idfv" if ios else "android_uuid"] = self.vendor_id
        if full or rng.random() < 0.5:
            info["ios_advertising_id" if ios else "android_advertising_id"] = self.ad_id
        return info


@dataclass
class _Profile:
    index: int
    customer_id: str | None
    email: str | None
    phone: str | None
    devices: list[_Device] = field(default_factory=list)
    batches: list[JsonBatch] = field(default_factory=list)


class _Builder:
    def __init__(self, people: int, seed: int, name: str) -> None:
        self.rng = random.Random(seed)
        self.people, self.seed, self.name = people, seed, name
        self.serial = 0
        self.shared: set[Identity] = set()

    def uuid(self, upper: bool = False) -> str:
        text = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        return text.upper() if upper else text

    def device(self) -> _Device:
        ios = self.rng.random() < 0.5
        ad_id = ZEROED_AD_ID if self.rng.random() < 0.15 else self.uuid(upper=ios)
        return _Device("iOS" if ios else "Android", self.uuid(upper=ios), ad_id)

    def batch(self, device: _Device, stamp: str, full: bool, user: dict[str, str], ts: int) -> JsonBatch:
        user = dict(user)
        info: dict[str, str] = device.info(full, self.rng)
        if self.rng.random() < 0.1:  # a broken client fills an empty slot with junk
            slot = self.rng.choice(("customer_id", "email", "other", "mobile_number", "ad_id"))
            if slot == "ad_id":
                info["ios_advertising_id" if device.platform == "iOS" else "android_advertising_id"] = ZEROED_AD_ID
            elif slot not in user:
                user[slot] = self.rng.choice(JUNK_VALUES)
        self.serial += 1
        event = {"event_type": "custom_event",
                 "data": {"event_name": "e", "custom_event_type": "other", "timestamp_unixtime_ms": ts,
                          "source_message_id": f"{self.name}-{self.seed}-{self.serial:08d}"}}
        # Each batch sets `last_batch` to its own message id at its event's time: newest wins, so a profile must
        # end with the id of its component's newest batch, whatever the arrival order (bench/identity.py checks).
        return {"environment": "production", "user_identities": user, "device_info": info,
                "mp_deviceid": stamp, "user_attributes": {LAST_BATCH: event["data"]["source_message_id"]},
                "events": [event]}

    def known(self, person: _Profile, key_only: bool = False) -> dict[str, str]:
        """The person-level identities one identified batch carries: customer id (if any) or another key."""
        user: dict[str, str] = {}
        if person.customer_id:
            user["customer_id"] = person.customer_id
        if person.email and (not user or (not key_only and self.rng.random() < 0.5)):
            user["email"] = person.email
        if person.phone and (not user or (not key_only and self.rng.random() < 0.3)):
            user["mobile_number"] = person.phone
        return user

    def sessions(self, person: _Profile, device: _Device, must_identify: bool, lo: int, hi: int) -> None:
        """1-4 anonymous sessions (a fresh stamp each) on `device`; some log in part-way through."""
        count = self.rng.randint(1, 4)
        identify_at = self.rng.randrange(count) if must_identify else -1
        has_key = bool(person.customer_id or person.email or person.phone)
        for session in range(count):
            stamp = self.uuid()
            logs_in = has_key and (session == identify_at or self.rng.random() < 0.3)
            length = self.rng.randint(1, 4)
            login_at = self.rng.randrange(length) if logs_in else length
            start = self.rng.randrange(lo, hi)
            for i in range(length):
                user = self.known(person) if i >= login_at else {}
                # The session's first batch names the device, which ties this stamp to the device's others.
                person.batches.append(self.batch(device, stamp, i == 0, user, start + i * 60_000))

    def build(self, order: int) -> World:
        adversarial = self.name == "adversarial"
        indexes = list(range(self.people))
        self.rng.shuffle(indexes)
        households: list[tuple[int, ...]] = []
        recycled_pairs: list[tuple[int, int]] = []
        if adversarial:
            pool = indexes[: int(self.people * HOUSEHOLD_SHARE)]
            while len(pool) >= 2:
                size = 2 if len(pool) < 4 else self.rng.randint(2, 3)
                households.append(tuple(sorted(pool[:size])))
                pool = pool[size:]
            rest = indexes[int(self.people * HOUSEHOLD_SHARE):][: int(self.people * RECYCLED_SHARE) // 2 * 2]
            recycled_pairs = [(rest[i], rest[i + 1]) for i in range(0, len(rest), 2)]
        must_log_in = {i for h in households for i in h} | {i for pair in recycled_pairs for i in pair}
        profiles = [self.person(i, i in must_log_in) for i in range(self.people)]
        recycled = [self.recycle(profiles[a], profiles[b]) for a, b in recycled_pairs]
        for household in households:
            self.tablet([profiles[i] for i in household])
        people = tuple(Person(p.index, p.customer_id,
                              frozenset(i for b in p.batches for i in batch_identities(b))) for p in profiles)
        batches = [b for p in profiles for b in p.batches]
        expected = frozenset(connected_components(batches))
        return World(self.name, self.seed, order, tuple(_shuffled(batches, self.seed, order)), people, expected,
                     frozenset(self.shared), tuple(households), tuple(recycled))

    def person(self, index: int, logs_in: bool) -> _Profile:
        customer_id = f"cust-{index:06d}" if logs_in or self.rng.random() < 0.6 else None
        email = f"user{index}.{self.rng.getrandbits(16):04x}@example.com" if self.rng.random() < 0.5 else None
        phone = f"+1555{index:07d}" if self.rng.random() < 0.3 else None
        devices = [self.device() for _ in range(self.rng.choice((1, 1, 2, 2, 3)))]
        if len(devices) > 1 and not (customer_id or email or phone):
            email = f"user{index}.{self.rng.getrandbits(16):04x}@example.com"  # else the devices never meet
        person = _Profile(index, customer_id, email, phone, devices)
        for device in devices:
            # Several devices are one person only if each is identified at least once.
            # A household or recycled-number person identifies everywhere, so their own identities stay one
            # group without the shared ones.
            must_identify = len(devices) > 1 or logs_in or (customer_id is not None and self.rng.random() < 0.8)
            self.sessions(person, device, must_identify, START_MS, START_MS + WINDOW_MS)
        return person

    def recycle(self, earlier: _Profile, later: _Profile) -> tuple[str, int, int]:
        """`later` gets `earlier`'s number after it is given up; each sends it with their own customer id."""
        number = earlier.phone or f"+1555{earlier.index:07d}"
        self.shared.add(("mobile_number", number))
        half = START_MS + WINDOW_MS // 2
        for owner, lo, hi in ((earlier, START_MS, half), (later, half, START_MS + WINDOW_MS)):
            user = {"customer_id": str(owner.customer_id), "mobile_number": number}
            device = self.rng.choice(owner.devices)  # a new session on a device the owner already uses
            owner.batches.append(self.batch(device, self.uuid(), True, user, self.rng.randrange(lo, hi)))
        return number, earlier.index, later.index

    def tablet(self, members: list[_Profile]) -> None:
        """One tablet, used anonymously and by each member logged in with their own customer id."""
        tablet = self.device()
        ids = {"ios_idfv" if tablet.platform == "iOS" else "android_uuid": tablet.vendor_id}
        if not is_blocked(tablet.ad_id):
            ids["ios_advertising_id" if tablet.platform == "iOS" else "android_advertising_id"] = tablet.ad_id
        self.shared.update(ids.items())
        for member in members:
            for _ in range(self.rng.randint(1, 3)):
                stamp = self.uuid()
                self.shared.add((DEVICE_STAMP, stamp))
                start = self.rng.randrange(START_MS, START_MS + WINDOW_MS)
                member.batches.append(self.batch(tablet, stamp, True, {}, start))
                user = {"customer_id": str(member.customer_id)}
                member.batches.append(self.batch(tablet, stamp, self.rng.random() < 0.5, user, start + 60_000))
