"""One slice's observations for the data catalog, aggregated in memory (no I/O; the store writes them)."""

import hashlib
from collections.abc import Mapping, Sequence

from kaon.governance.catalog_values import MAX_EXAMPLES, OBJECT, TYPE_BITS, example
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


# The attribute names and value classes of one event, in order: events of a data point mostly share a few.
Shape = tuple[tuple[str, ...], tuple[type, ...]]
# Events (or batches) per data point per slice whose values are considered as examples.
EXAMPLE_BUDGET = 8


# Per attribute: [count, type bits, first seen ms, last seen ms] (the store keeps the same lists as JSON).
Packed = dict[str, list[int]]
_bits: dict[tuple[type, ...], tuple[int, ...]] = {}


def _type_bits(classes: tuple[type, ...]) -> tuple[int, ...]:
    found = _bits.get(classes)
    if found is None:
        found = tuple(TYPE_BITS.get(cls, OBJECT) for cls in classes)
        if len(_bits) < 100_000:
            _bits[classes] = found
    return found


class PointAgg:
    """One data point in one slice, for one (workspace, input, environment).

    Attributes are counted by shape (cheap per event) and expanded per attribute once per slice (`attrs`).
    """

    __slots__ = ("budget", "count", "examples", "first_ms", "full", "last_ms", "shapes")

    def __init__(self, full: frozenset[str], ms: int) -> None:
        self.full = full
        self.count = 0
        self.first_ms = ms
        self.last_ms = ms
        self.shapes: dict[Shape, list[int]] = {}
        self.examples: dict[str, list[str]] = {}
        self.budget = EXAMPLE_BUDGET

    def attrs(self) -> Packed:
        """Each attribute's [count, type bits, first ms, last ms] in this slice."""
        out: Packed = {}
        for (names, classes), (count, first, last) in self.shapes.items():
            for name, bit in zip(names, _type_bits(classes), strict=True):
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
            agg = group[key] = PointAgg(self.full.get((workspace_id, point_id(key)), _NO_FULL), ms)
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
            # The common path inlined (one call per event would cost as much as the rest of the step).
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
                shape = (tuple(attrs), tuple(map(type, attrs.values())))
                seen = agg.shapes.get(shape)
                if seen is None:
                    agg.shapes[shape] = [1, ms, ms]
                else:
                    seen[0] += 1
                    if ms > seen[2]:
                        seen[2] = ms
                    elif ms < seen[1]:
                        seen[1] = ms
                if agg.budget > 0:
                    self._examples(agg, attrs, identities)
            if type(data) is UserAttributeChangeData:
                user = self._point(group, workspace_id, (USER_ATTRIBUTES, "", ""), ms)
                self._attrs(user, {data.user_attribute_name: data.new}, ms, identities)
            elif type(data) is UserIdentityChangeData and data.new is not None and data.new.identity_type:
                user = self._point(group, workspace_id, (USER_IDENTITIES, "", ""), ms)
                self._types_only(user, [canonical_identity(data.new.identity_type)], ms)
        if batch.user_attributes:
            self._attrs(self._point(group, workspace_id, (USER_ATTRIBUTES, "", ""), ms),
                        batch.user_attributes, ms, identities)
        names = [canonical_identity(k) for k, v in (batch.user_identities or {}).items() if v]
        device = batch.device_info
        if device is not None:
            names.extend(name for name in DEVICE_IDENTITY_TYPES if getattr(device, name, None))
        if names:
            self._types_only(self._point(group, workspace_id, (USER_IDENTITIES, "", ""), ms), names, ms)

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
        shape = (tuple(attrs), tuple(map(type, attrs.values())))
        seen = agg.shapes.get(shape)
        if seen is None:
            agg.shapes[shape] = [1, ms, ms]
        else:
            seen[0] += 1
            if ms > seen[2]:
                seen[2] = ms
            elif ms < seen[1]:
                seen[1] = ms
        if agg.budget > 0:
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
        shape = (tuple(names), (str,) * len(names))
        seen = agg.shapes.get(shape)
        if seen is None:
            agg.shapes[shape] = [1, ms, ms]
        else:
            seen[0] += 1
            if ms > seen[2]:
                seen[2] = ms
            elif ms < seen[1]:
                seen[1] = ms
