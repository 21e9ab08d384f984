"""The data catalog's observations, aggregated in memory across slices (no I/O; `catalog_store` writes them).

Events are counted in *buckets*: one per (workspace, input, environment, data point, attribute names in the
order sent). Buckets live for the life of the process, so that a slice in the steady state allocates no bucket:
per event the step builds one key, looks its bucket up and appends the classes of the event's values. Once per
bucket per slice those are cut into type signatures and checked against the signatures known to be stored.

Example values are collected only for attributes that still want them: fewer than MAX_EXAMPLES distinct
examples are stored, and the attribute has not kept offering values already shown (a boolean, a two-value
plan: after SATURATED repeats it stops being offered until the next refresh).
"""

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from itertools import compress
from operator import attrgetter
from typing import Any

from kaon.governance.catalog_values import MAX_EXAMPLES, OBJECT, STRING, TYPE_BITS, example
from kaon.model.batch import Batch
from kaon.model.events import (
    CommerceEventData,
    CustomEventData,
    EventBase,
    ScreenViewData,
    UserAttributeChangeData,
    UserIdentityChangeData,
)
from kaon.model.identities import DEVICE_IDENTITY_TYPES, canonical_identity

USER_ATTRIBUTES = "user_attributes"
USER_IDENTITIES = "user_identities"
# A data point: (type, name, custom event type). Type is the event type, or one of the two user kinds.
PointKey = tuple[str, str, str]
# (workspace, input, environment)
GroupKey = tuple[str, str, str]
# A bucket within a group: the point's three parts and the attribute names in the order sent.
BucketKey = tuple[str, str, str, tuple[str, ...]]
# Per (workspace, point id): attribute → the example values stored.
StoredExamples = Mapping[tuple[str, str], Mapping[str, Iterable[str]]]

# Events (or batches) per data point per slice whose values are offered as examples.
EXAMPLE_BUDGET = 8
# An attribute that offers this many values in a row that are already shown (or null) stops being offered.
SATURATED = 64
# Buckets kept in memory; past it, the aggregate forgets them (after a slice is written) and starts again.
MAX_BUCKETS = 50_000  # about 40 MB (measured with 3 attributes per bucket)

_SPLIT = frozenset({USER_ATTRIBUTES, USER_IDENTITIES})
_EMPTY: dict[str, Any] = {}
_ids: dict[PointKey, str] = {}
_tags: dict[type, str] = {}
_device_identities = attrgetter(*DEVICE_IDENTITY_TYPES)


def point_id(key: PointKey) -> str:
    """The stable, URL-safe id of a data point (the same in every workspace and release)."""
    found = _ids.get(key)
    if found is None:
        digest = hashlib.sha256("\x1f".join(key).encode()).hexdigest()[:16]
        found = f"dp_{digest}"
        if len(_ids) < 100_000:
            _ids[key] = found
    return found


def commerce_action(data: CommerceEventData) -> str:
    """The commerce action a commerce event is catalogued under (`purchase`, `promotion_view`, `impression`)."""
    if data.product_action is not None:
        return data.product_action.action
    if data.promotion_action is not None:
        return f"promotion_{data.promotion_action.action}"
    if data.product_impressions:
        return "impression"
    return data.event_name or ""


def point_of(event: EventBase) -> PointKey:
    data = event.data
    if type(data) is CustomEventData:
        return ("custom_event", data.event_name, data.custom_event_type)
    if type(data) is ScreenViewData:
        return ("screen_view", data.screen_name, "")
    if type(data) is CommerceEventData:
        return ("commerce_event", commerce_action(data), "")
    cls = type(event)
    tag = _tags.get(cls)
    if tag is None:
        tag = _tags[cls] = event.event_type
    return (tag, "", "")


class PointState:
    """One data point in one workspace: its id, and which of its attributes still want example values."""

    __slots__ = (
        "buckets",
        "budget",
        "collects",
        "confirmed",
        "done",
        "key",
        "misses",
        "new",
        "pid",
        "shown",
        "workspace_id",
    )

    def __init__(self, workspace_id: str, key: PointKey, stored: Mapping[str, Iterable[str]]) -> None:
        self.workspace_id = workspace_id
        self.key = key
        self.pid = point_id(key)
        self.confirmed = False  # a read of the store returned this point (set by the store)
        self.collects = key[0] != USER_IDENTITIES  # identity values are never kept, not even masked
        self.buckets: list[Bucket] = []
        self.budget = EXAMPLE_BUDGET
        # (attribute, example, ms, the group it came from) found this slice; stored per point, whatever the group.
        self.new: list[tuple[str, str, int, GroupKey]] = []
        self.shown: dict[str, set[str]] = {}
        self.misses: dict[str, int] = {}
        self.done: set[str] = set()
        self.reset_examples(stored)

    def reset_examples(self, stored: Mapping[str, Iterable[str]]) -> None:
        """Start again from the examples the store holds (after a refresh: erasures remove some)."""
        self.shown = {name: set(values) for name, values in stored.items()}
        self.misses = {}
        self.done = {name for name, values in self.shown.items() if len(values) >= MAX_EXAMPLES}
        for bucket in self.buckets:
            bucket.needs = self.wants(bucket.names)

    def wants(self, names: Sequence[str]) -> bool:
        done = self.done
        return self.collects and any(name not in done for name in names)

    def offer(self, attrs: Mapping[str, object], identities: set[str], ms: int, group: GroupKey) -> None:
        """Consider one event's (or batch's) values as examples; at most `budget` times per slice."""
        self.budget -= 1
        done, shown, finished = self.done, self.shown, False
        for name, value in attrs.items():
            if name in done:
                continue
            candidate = example(name, value, identities)
            seen = shown.get(name)
            if seen is None:
                seen = shown[name] = set()
            if candidate is None or candidate in seen:
                misses = self.misses[name] = self.misses.get(name, 0) + 1
                if misses >= SATURATED:
                    done.add(name)
                    finished = True
                continue
            seen.add(candidate)
            self.misses[name] = 0
            self.new.append((name, candidate, ms, group))
            if len(seen) >= MAX_EXAMPLES:
                done.add(name)
                finished = True
        if finished:
            for bucket in self.buckets:
                bucket.needs = self.wants(bucket.names)


# Type bits per attribute packed into one integer, 6 bits apart (one comparison checks a bucket's types).
_WIDTH = 6


def unpack(packed: int, size: int) -> tuple[int, ...]:
    """Per attribute, its type bits."""
    mask = (1 << _WIDTH) - 1
    return tuple((packed >> (_WIDTH * i)) & mask for i in range(size))


def packed_bits(bits: Iterable[int]) -> int:
    out = 0
    for i, value in enumerate(bits):
        out |= value << (_WIDTH * i)
    return out


class Bucket:
    """The events (or batches) of one data point in one group that carried the same attribute names, in order.

    Per event: first/last seen, and the class of each of its values appended to one flat list (`width` entries per
    event: one column per attribute; a single `None` for an event without attributes or an identity set). Once per
    slice the list is cut into the events' *signatures* (their classes, in order); `typed` holds the signatures
    whose types a read of the store showed it holds (`covered`: those type bits, packed). So in the steady state a
    bucket's types cost one subset check per slice.
    """

    __slots__ = ("classes", "covered", "first_ms", "group", "last_ms", "names", "needs", "out_names", "point",
                 "preset", "series", "split", "typed", "width")

    def __init__(self, group: GroupKey, point: PointState, names: tuple[str, ...]) -> None:
        self.group = group
        self.point = point
        self.names = names
        kind = point.key[0]
        self.split = kind in _SPLIT
        # The names as stored: identity types in their canonical spelling, each once.
        self.out_names = tuple(dict.fromkeys(map(canonical_identity, names))) if kind == USER_IDENTITIES else names
        # Identity types are strings (their values are never looked at).
        self.preset = packed_bits([STRING] * len(self.out_names)) if kind == USER_IDENTITIES else 0
        self.width = len(names) if names and not self.preset else 1
        self.first_ms = self.last_ms = 0
        self.classes: list[type | None] = []  # this slice's; empty: not touched yet
        self.covered = 0
        self.typed: set[tuple[type | None, ...]] = set()
        self.needs = point.wants(names)
        self.series: tuple[int, ...] | None = None  # the store's ids of the bucket's series, once read back

    @property
    def count(self) -> int:
        """Events (or batches) this slice."""
        return len(self.classes) // self.width

    def signatures(self) -> set[tuple[type | None, ...]]:
        """This slice's distinct signatures (for an identity set or no attributes: `(None,)`)."""
        classes = iter(self.classes)
        return set(zip(*[classes] * self.width, strict=True))

    def packed(self, signatures: Iterable[tuple[type | None, ...]] | None = None) -> int:
        """The type bits per attribute of the given signatures (default: this slice's), packed."""
        if self.preset or not self.names:
            return self.preset
        out = 0
        for signature in self.signatures() if signatures is None else signatures:
            out |= _pack(signature)
        return out

    def bits(self) -> tuple[int, ...]:
        """This slice's type bits per name in `out_names`."""
        return unpack(self.packed(), len(self.out_names))


_packed: dict[tuple[type | None, ...], int] = {}


def _pack(signature: tuple[type | None, ...]) -> int:
    found = _packed.get(signature)
    if found is None:
        found = 0
        for i, cls in enumerate(signature):
            found |= TYPE_BITS.get(cls, OBJECT) << (_WIDTH * i)  # type: ignore[arg-type]
        if len(_packed) < 100_000:
            _packed[signature] = found
    return found


class PointSummary:
    """One data point's observations in one slice and group, added up over its buckets (for inspection)."""

    def __init__(self) -> None:
        self.count = 0
        self.first_ms = self.last_ms = 0
        self.attrs: dict[str, list[int]] = {}  # name → [count, type bits, first ms, last ms]
        self.examples: dict[str, list[str]] = {}


class CatalogAggregate:
    """Counts, types, first/last seen and new example values, per input and environment.

    Per slice: `add` each batch, let the store write `touched`, then `clear`.
    """

    def __init__(self, stored: StoredExamples | None = None) -> None:
        self.groups: dict[GroupKey, dict[BucketKey, Bucket]] = {}
        self.points: dict[tuple[str, PointKey], PointState] = {}
        self.touched: list[Bucket] = []
        self.examined: list[PointState] = []  # points that offered examples this slice
        self.stored: StoredExamples = stored or {}
        self.size = 0

    def clear(self) -> None:
        """Forget the current slice's observations (after each write, and before a slice in case one failed)."""
        for bucket in self.touched:
            bucket.classes = []
        for point in self.examined:
            point.budget = EXAMPLE_BUDGET
            point.new = []
        self.touched = []
        self.examined = []
        if self.size > MAX_BUCKETS:
            self.groups, self.points, self.size = {}, {}, 0

    def forget_series(self) -> None:
        """Drop every cached series id (they are read again when next needed)."""
        for group in self.groups.values():
            for bucket in group.values():
                bucket.series = None

    def refresh(self, stored: StoredExamples) -> None:
        """Take the examples the store holds now (and forget saturation: values may have changed)."""
        self.stored = stored
        for (workspace_id, _), point in self.points.items():
            point.reset_examples(stored.get((workspace_id, point.pid), {}))

    def add(self, workspace_id: str, input_id: str, received_ms: int, batch: Batch,
            keep: Sequence[bool] | None = None) -> None:
        """Observe one batch: its kept events (`keep`, by position; default all), user attributes, identity types."""
        gkey = (workspace_id, input_id, batch.environment)
        group = self.groups.get(gkey)
        if group is None:
            group = self.groups[gkey] = {}
        ms = received_ms
        identities: set[str] | None = None
        for event in batch.events if keep is None else compress(batch.events, keep):
            # `_observe` inlined for custom events and screens (a call per event costs as much as its body):
            # per event a key, a bucket lookup and an extend. Keep the two in step.
            data = event.data
            cls = type(data)
            attrs = data.custom_attributes or _EMPTY
            if cls is CustomEventData:
                key: BucketKey = ("custom_event", data.event_name, data.custom_event_type, tuple(attrs))  # type: ignore[attr-defined]
            elif cls is ScreenViewData:
                key = ("screen_view", data.screen_name, "", tuple(attrs))  # type: ignore[attr-defined]
            else:
                self._other(group, gkey, event, attrs, ms, batch)
                continue
            bucket = group.get(key)
            if bucket is None or not bucket.classes:
                bucket = self._touch(group, gkey, key, bucket, ms)
            elif ms > bucket.last_ms:
                bucket.last_ms = ms
            elif ms < bucket.first_ms:
                bucket.first_ms = ms
            if attrs:
                bucket.classes.extend(map(type, attrs.values()))
            else:
                bucket.classes.append(None)
            if bucket.needs and bucket.point.budget > 0:
                if identities is None:
                    identities = _identity_values(batch)
                self._offer(bucket, attrs, identities, ms)
        users = batch.user_attributes
        if users:
            self._observe(group, gkey, (USER_ATTRIBUTES, "", "", tuple(users)), users, ms, batch)
        ids = batch.user_identities
        device = batch.device_info
        if device is None and ids and all(ids.values()):
            self._observe(group, gkey, (USER_IDENTITIES, "", "", tuple(ids)), _EMPTY, ms, None)
            return
        names = [name for name, value in ids.items() if value] if ids else []
        if device is not None:
            names.extend(compress(DEVICE_IDENTITY_TYPES, _device_identities(device)))
        if names:
            self._observe(group, gkey, (USER_IDENTITIES, "", "", tuple(names)), _EMPTY, ms, None)

    def _other(self, group: dict[BucketKey, Bucket], gkey: GroupKey, event: EventBase, attrs: dict[str, Any],
               ms: int, batch: Batch) -> None:
        """An event other than a custom event or a screen view; user attribute and identity changes also count
        towards the user kinds."""
        self._observe(group, gkey, (*point_of(event), tuple(attrs)), attrs, ms, batch)
        data = event.data
        if type(data) is UserAttributeChangeData:
            change = {data.user_attribute_name: data.new}
            self._observe(group, gkey, (USER_ATTRIBUTES, "", "", tuple(change)), change, ms, batch)
        elif type(data) is UserIdentityChangeData and data.new is not None and data.new.identity_type:
            self._observe(group, gkey, (USER_IDENTITIES, "", "", (data.new.identity_type,)), _EMPTY, ms, None)

    def summary(self) -> dict[tuple[GroupKey, PointKey], PointSummary]:
        """This slice's observations per group and data point (what the store adds for them)."""
        out: dict[tuple[GroupKey, PointKey], PointSummary] = {}
        for bucket in self.touched:
            point = out.get((bucket.group, bucket.point.key))
            count, first, last = bucket.count, bucket.first_ms, bucket.last_ms
            if point is None:
                point = out[(bucket.group, bucket.point.key)] = PointSummary()
                point.first_ms, point.last_ms = first, last
                mine = [(name, value) for name, value, _, group in bucket.point.new if group == bucket.group]
                point.examples = {name: [v for n, v in mine if n == name] for name, _ in mine}
            point.count += count
            point.first_ms, point.last_ms = min(point.first_ms, first), max(point.last_ms, last)
            for name, bits in zip(bucket.out_names, bucket.bits(), strict=True):
                found = point.attrs.get(name)
                if found is None:
                    point.attrs[name] = [count, bits, first, last]
                    continue
                found[0] += count
                found[1] |= bits
                found[2], found[3] = min(found[2], first), max(found[3], last)
        return out

    def _touch(self, group: dict[BucketKey, Bucket], gkey: GroupKey, key: BucketKey, bucket: Bucket | None,
               ms: int) -> Bucket:
        if bucket is None:
            point_key: PointKey = key[:3]
            point = self.points.get((gkey[0], point_key))
            if point is None:
                point = self.points[(gkey[0], point_key)] = PointState(
                    gkey[0], point_key, self.stored.get((gkey[0], point_id(point_key)), {}))
            bucket = group[key] = Bucket(gkey, point, key[3])
            point.buckets.append(bucket)
            self.size += 1
        bucket.first_ms = bucket.last_ms = ms
        self.touched.append(bucket)
        return bucket

    def _observe(self, group: dict[BucketKey, Bucket], gkey: GroupKey, key: BucketKey, attrs: dict[str, Any],
                 ms: int, batch: Batch | None) -> None:
        bucket = group.get(key)
        if bucket is None or not bucket.classes:
            bucket = self._touch(group, gkey, key, bucket, ms)
        elif ms > bucket.last_ms:
            bucket.last_ms = ms
        elif ms < bucket.first_ms:
            bucket.first_ms = ms
        if attrs:
            bucket.classes.extend(map(type, attrs.values()))
        else:
            bucket.classes.append(None)
        if bucket.needs and bucket.point.budget > 0 and batch is not None:
            self._offer(bucket, attrs, _identity_values(batch), ms)

    def _offer(self, bucket: Bucket, attrs: Mapping[str, object], identities: set[str], ms: int) -> None:
        point = bucket.point
        if point.budget == EXAMPLE_BUDGET:
            self.examined.append(point)
        point.offer(attrs, identities, ms, bucket.group)


def _identity_values(batch: Batch) -> set[str]:
    return {value for value in (batch.user_identities or {}).values() if value}
