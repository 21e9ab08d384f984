"""Pure packing of queued events into per-user batches and requests within the Events API limits."""

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import msgspec

from kaon.client.events import Queued, User, UserKey
from kaon.client.models import Batch

MAX_BATCHES_PER_REQUEST = 100
MAX_BATCH_BYTES = 128 * 1024
MAX_REQUEST_BYTES = 256 * 1024

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Request:
    """One `/v2/bulkevents` body and the events it carries (so outcomes can be counted per event)."""

    body: bytes
    items: tuple[Queued, ...]
    batches: int


@dataclass(frozen=True, slots=True)
class Packed:
    requests: list[Request]
    too_large: list[Queued]


@dataclass(slots=True)
class _Open:
    """A batch being filled: its events so far and their encoded size with separating commas."""

    items: list[Queued]
    removed: set[str]
    events_size: int


def _header(user: User, environment: str, request_id: str, removed: set[str]) -> Batch:
    identities = dict(user.identities)
    deleted = sorted(removed - user.attributes.keys())
    return Batch(
        environment=environment, source_request_id=request_id, events=[], mpid=user.mpid,
        user_identities=identities or None, user_attributes=dict(user.attributes) or None,
        deleted_user_attributes=deleted or None,
    )


def _encode_batch(items: list[Queued], removed: set[str], environment: str, request_id: str) -> bytes:
    header = _header(items[-1].user, environment, request_id, removed)
    batch = msgspec.structs.replace(header, events=[msgspec.Raw(item.payload) for item in items])
    return _encoder.encode(batch)


def _batches(
    items: list[Queued], environment: str, new_id: Callable[[], str], too_large: list[Queued]
) -> Iterable[tuple[bytes, list[Queued]]]:
    """One user's events cut into batches of at most MAX_BATCH_BYTES, in order."""
    current: _Open | None = None
    request_id = new_id()
    sized: tuple[User, int, int] | None = None  # (user, len(removed), header size) last measured

    def header_size(user: User, removed: set[str]) -> int:
        # The header carries the attributes as of the batch's last event; re-measure only when they change.
        nonlocal sized
        if sized is None or sized[0] is not user or sized[1] != len(removed):
            header = _header(user, environment, request_id, removed)
            sized = (user, len(removed), len(_encoder.encode(header)))
        return sized[2]

    for item in items:
        removed = set(current.removed) if current else set()
        if item.removed_attribute is not None:
            removed.add(item.removed_attribute)
        if current is not None:
            grown = current.events_size + 1 + len(item.payload)
            if header_size(item.user, removed) + grown <= MAX_BATCH_BYTES:
                current.items.append(item)
                current.removed = removed
                current.events_size = grown
                continue
            yield _encode_batch(current.items, current.removed, environment, request_id), current.items
            request_id = new_id()
            sized = None
            removed = {item.removed_attribute} if item.removed_attribute is not None else set()
        if header_size(item.user, removed) + len(item.payload) > MAX_BATCH_BYTES:
            too_large.append(item)
            current = None
            continue
        current = _Open([item], removed, len(item.payload))
    if current is not None:
        yield _encode_batch(current.items, current.removed, environment, request_id), current.items


def pack(items: Iterable[Queued], environment: str, new_id: Callable[[], str] | None = None) -> Packed:
    """Group events by user, cut them into batches and the batches into requests, in each user's order."""
    make_id = new_id or (lambda: str(uuid.uuid4()))
    by_user: dict[UserKey, list[Queued]] = {}
    for item in items:
        by_user.setdefault(item.user.key, []).append(item)
    too_large: list[Queued] = []
    requests: list[Request] = []
    bodies: list[bytes] = []
    carried: list[Queued] = []
    size = 2  # the array's brackets

    def close_request() -> None:
        nonlocal size
        if bodies:
            requests.append(Request(b"[" + b",".join(bodies) + b"]", tuple(carried), len(bodies)))
        bodies.clear()
        carried.clear()
        size = 2

    for user_items in by_user.values():
        for body, batch_items in _batches(user_items, environment, make_id, too_large):
            extra = len(body) + (1 if bodies else 0)
            if len(bodies) == MAX_BATCHES_PER_REQUEST or size + extra > MAX_REQUEST_BYTES:
                close_request()
                extra = len(body)
            bodies.append(body)
            carried.extend(batch_items)
            size += extra
    close_request()
    return Packed(requests, too_large)
