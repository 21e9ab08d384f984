"""One slice's observations for the data catalog, aggregated in memory (no I/O; the store writes them)."""

import hashlib
from collections.abc import Mapping, Sequence
from operator import itemgetter

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
_NO_FULL: frozenset[str] = frozenset()
_SPLIT = frozenset({USER_ATTRIBUTES, USER_IDENTITIES})
_EMPTY: Mapping[str, object] = {}
_ids: dict[PointKey, str] = {}
_tags: dict[type, str] = {}


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


# Events (or batches) per data point per slice whose values are considered as examples.
EXAMPLE_BUDGET = 8


# Per attribute: [count, type bits, first seen ms, last seen ms].
Packed = dict[str, list[int]]
# One stored row's worth: (sorted attribute names, count of the point, count of the names, first ms, last ms).
SetRow = tuple[tuple[str, ...], int, int, int, int]
_canonical: dict[tuple[str, ...], tuple[str, ...]] = {}


def canonical(names: tuple[str, ...]) -> tuple[str, ...]:
    """The names sorted (events send them in any order; the store keeps one row per set)."""
    found = _canonical.get(names)
    if found is None:
        found = tuple(sorted(set(names)))
        if len(_canonical) < 100_000:
            _canonical[names] = found
    return found


class Bucket:
    """The events (or batches) of one data point in one slice that carried the same attribute names, in order.

    Per event only a list append and a time comparison: types are worked out once per slice (`bits`).
    """

    __slots__ = ("first_ms", "items", "last_ms", "needs", "preset")

    def __init__(self, ms: int, needs: bool) -> None:
        self.first_ms = ms
        self.last_ms = ms
        self.items: list[Mapping[str, object]] = []
        self.needs = needs  # some name still wants examples
        self.preset = 0  # type bits known without values (identity types: strings)

    def bits(self, name: str) -> int:
        if self.preset:
            return self.preset
        bits = 0
        for cls in set(map(type, map(itemgetter(name), self.items))):
            bits |= TYPE_BITS.get(cls, OBJECT)
        return bits


class PointAgg:
    """One data point in one slice, for one (workspace, input, environment).

    Events are bucketed by their attribute names (cheap per event) and expanded per attribute once per slice.
    For the user kinds (`split`), each attribute is its own bucket: a person's set of user attributes varies.
    """

    __slots__ = ("buckets", "budget", "count", "examples", "first_ms", "full", "last_ms", "split")

    def __init__(self, full: frozenset[str], ms: int, split: bool = False) -> None:
        self.full = full
        self.count = 0
        self.first_ms = ms
        self.last_ms = ms
        self.buckets: dict[tuple[str, ...], Bucket] = {}
        self.examples: dict[str, list[str]] = {}
        self.budget = EXAMPLE_BUDGET
        self.split = split

    def bucket(self, names: tuple[str, ...], ms: int) -> Bucket:
        found = self.buckets.get(names)
        if found is None:
            full = self.full
            found = self.buckets[names] = Bucket(ms, any(n not in full for n in names))
        elif ms > found.last_ms:
            found.last_ms = ms
        elif ms < found.first_ms:
            found.first_ms = ms
        return found

    def rows(self) -> list[SetRow]:
        """One row per set of attribute names, as stored (a split point keeps its count in the `()` row)."""
        merged: dict[tuple[str, ...], list[int]] = {}
        if self.split:
            merged[()] = [self.count, 0, self.first_ms, self.last_ms]
        for names, bucket in self.buckets.items():
            key = canonical(names)
            n = len(bucket.items)
            found = merged.get(key)
            if found is None:
                merged[key] = [0 if self.split else n, n, bucket.first_ms, bucket.last_ms]
                continue
            found[0] += 0 if self.split else n
            found[1] += n
            found[2] = min(found[2], bucket.first_ms)
            found[3] = max(found[3], bucket.last_ms)
        return [(names, *values) for names, values in merged.items()]  # type: ignore[misc]

    def types(self) -> dict[str, int]:
        """Each attribute's type bits in this slice."""
        out: dict[str, int] = {}
        for names, bucket in self.buckets.items():
            if bucket.preset or self.split:
                for name in names:
                    out[name] = out.get(name, 0) | bucket.bits(name)
                continue
            # An event bucket's items are the events' attributes, in the bucket's name order.
            for classes in {tuple(map(type, item.values())) for item in bucket.items}:
                for name, cls in zip(names, classes, strict=True):
                    out[name] = out.get(name, 0) | TYPE_BITS.get(cls, OBJECT)
        return out

    def attrs(self) -> Packed:
        """Each attribute's [count, type bits, first ms, last ms] in this slice."""
        out: Packed = {}
        for names, bucket in self.buckets.items():
            count, first, last = len(bucket.items), bucket.first_ms, bucket.last_ms
            for name in names:
                bit = bucket.bits(name)
                found = out.get(name)
                if found is None:
                    out[name] = [count, bit, first, last]
                    continue
                found[0] += count
                found[1] |= bit
                found[2] = min(found[2], first)
                found[3] = max(found[3], last)
        return out


# (workspace, input, environment) → data point → its aggregate.
Groups = dict[tuple[str, str, str], dict[PointKey, PointAgg]]


class CatalogAggregate:
    """Counts, types, first/last seen and example candidates of one slice, per input and environment.

    `full` names, per (workspace, point id), the attributes that already have enough examples stored.
    """

    def __init__(self, full: Mapping[tuple[str, str], frozenset[str]]) -> None:
        self.full = full
        self.groups: Groups = {}

    def _point(self, group: dict[PointKey, PointAgg], workspace_id: str, key: PointKey, ms: int) -> PointAgg:
        agg = group.get(key)
        if agg is None:
            agg = group[key] = PointAgg(self.full.get((workspace_id, point_id(key)), _NO_FULL), ms,
                                        split=key[0] in _SPLIT)
        agg.count += 1
        if ms > agg.last_ms:
            agg.last_ms = ms
        elif ms < agg.first_ms:
            agg.first_ms = ms
        return agg

    def add(self, workspace_id: str, input_id: str, received_ms: int, batch: Batch, kept: Sequence[int]) -> None:
        """Observe one batch: its kept events, user attributes and identity types."""
        group = self.groups.get((workspace_id, input_id, batch.environment))
        if group is None:
            group = self.groups[(workspace_id, input_id, batch.environment)] = {}
        ms = received_ms
        identities = {v for v in (batch.user_identities or {}).values() if v}
        events = batch.events
        for index in kept:
            # The common path inlined (one call per event would cost as much as the rest of the step): per event
            # a point lookup, a bucket lookup by attribute names and an append.
            event = events[index]
            data = event.data
            cls = type(data)
            if cls is CustomEventData:
                key: PointKey = ("custom_event", data.event_name, data.custom_event_type)  # type: ignore[attr-defined]
            elif cls is ScreenViewData:
                key = ("screen_view", data.screen_name, "")  # type: ignore[attr-defined]
            else:
                key = point_of(event)
            agg = group.get(key)
            if agg is None:
                agg = group[key] = PointAgg(self.full.get((workspace_id, point_id(key)), _NO_FULL), ms)
            agg.count += 1
            if ms > agg.last_ms:
                agg.last_ms = ms
            elif ms < agg.first_ms:
                agg.first_ms = ms
            attrs = data.custom_attributes
            if attrs:
                names = tuple(attrs)
                bucket = agg.buckets.get(names)
                if bucket is None:
                    bucket = agg.bucket(names, ms)
                elif ms > bucket.last_ms:
                    bucket.last_ms = ms
                elif ms < bucket.first_ms:
                    bucket.first_ms = ms
                bucket.items.append(attrs)
                if bucket.needs and agg.budget > 0:
                    self._examples(agg, attrs, identities)
            else:
                agg.bucket((), ms).items.append(_EMPTY)
            if cls is UserAttributeChangeData:
                user = self._point(group, workspace_id, (USER_ATTRIBUTES, "", ""), ms)
                self._attrs(user, {data.user_attribute_name: data.new}, ms, identities)  # type: ignore[attr-defined]
            elif cls is UserIdentityChangeData and data.new is not None and data.new.identity_type:  # type: ignore[attr-defined]
                user = self._point(group, workspace_id, (USER_IDENTITIES, "", ""), ms)
                self._types_only(user, [canonical_identity(data.new.identity_type)], ms)  # type: ignore[attr-defined]
        if batch.user_attributes:
            self._attrs(self._point(group, workspace_id, (USER_ATTRIBUTES, "", ""), ms),
                        batch.user_attributes, ms, identities)
        names_ = [canonical_identity(k) for k, v in (batch.user_identities or {}).items() if v]
        device = batch.device_info
        if device is not None:
            names_.extend(name for name in DEVICE_IDENTITY_TYPES if getattr(device, name, None))
        if names_:
            self._types_only(self._point(group, workspace_id, (USER_IDENTITIES, "", ""), ms), names_, ms)

    def filled(self) -> dict[tuple[str, str], frozenset[str]]:
        """Per (workspace, point id), the attributes this slice offered MAX_EXAMPLES distinct examples for."""
        found: dict[tuple[str, str], set[str]] = {}
        for (workspace_id, _, _), group in self.groups.items():
            for key, agg in group.items():
                names = [n for n, shown in agg.examples.items() if len(shown) >= MAX_EXAMPLES]
                if names:
                    found.setdefault((workspace_id, point_id(key)), set()).update(names)
        return {key: frozenset(names) for key, names in found.items()}

    @classmethod
    def _attrs(cls, agg: PointAgg, attrs: Mapping[str, object], ms: int, identities: set[str]) -> None:
        """User attributes: one bucket per attribute (the `split` kinds)."""
        needs = False
        for name in attrs:
            bucket = agg.bucket((name,), ms)
            bucket.items.append(attrs)
            needs = needs or bucket.needs
        if needs and agg.budget > 0:
            cls._examples(agg, attrs, identities)

    @staticmethod
    def _examples(agg: PointAgg, attrs: Mapping[str, object], identities: set[str]) -> None:
        agg.budget -= 1
        full, examples = agg.full, agg.examples
        for name, value in attrs.items():
            if name in full:
                continue
            shown = examples.get(name)
            if shown is None:
                shown = examples[name] = []
            elif len(shown) >= MAX_EXAMPLES:
                continue
            candidate = example(name, value, identities)
            if candidate is not None and candidate not in shown:
                shown.append(candidate)

    @staticmethod
    def _types_only(agg: PointAgg, names: Sequence[str], ms: int) -> None:
        """Identity types: counted and typed, never an example (identity values are never kept)."""
        for name in names:
            bucket = agg.bucket((name,), ms)
            bucket.preset = STRING
            bucket.items.append(_EMPTY)
