"""The user key of an accepted request, for a partitioned ingest log: one user's entries stay in one partition.

    split(kind, body) -> [(user_key, body), ...]     # in the request's order; one item unless it mixes users

Used by the doors only when the log has several partitions (PostgreSQL); an embedded SQLite log has one and
skips this. The key is the identifier the sending client keeps constant, so one device's or one server-side
user's stream is ordered end to end (identity resolution happens later, in the process stage):

- mParticle batch (server, web): `mp_deviceid` (the web SDK's device stamp), else `mpid`, else the user
  identities `customer_id`, `email`, then the others by name, else the device ids, else none.
- Segment call: `anonymousId`, else `userId`.
- A request that carries several users — mParticle's bulk array, Segment's `/v1/batch` as server libraries
  send it — is split into one entry per user key, each in the request's order, with the request's other
  top-level fields kept as they were (Segment's batch `context`, `writeKey`, `sentAt`). All of them are
  appended in one commit, so the request is still acknowledged all or nothing.

An entry with no key goes to partition 0. The key only routes: it is not stored.
"""

from typing import Any

import msgspec

from kaon.log.base import KIND_MPARTICLE_BULK, KIND_SEGMENT_PREFIX

Keyed = list[tuple[str | None, bytes]]

_SEGMENT_BATCH = f"{KIND_SEGMENT_PREFIX}batch"
_FIRST_IDENTITIES = ("customer_id", "email")
_encoder = msgspec.json.Encoder()


class _MparticleIds(msgspec.Struct):
    mp_deviceid: Any = None
    mpid: Any = None
    user_identities: dict[str, Any] | None = None
    device_info: dict[str, Any] | None = None


class _SegmentIds(msgspec.Struct):
    anonymousId: Any = None  # noqa: N815 - the wire's name
    userId: Any = None  # noqa: N815


_mparticle = msgspec.json.Decoder(_MparticleIds)
_segment = msgspec.json.Decoder(_SegmentIds)
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])
_raw_object = msgspec.json.Decoder(dict[str, msgspec.Raw])


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def mparticle_key(body: bytes) -> str | None:
    ids = _mparticle.decode(body)
    for value in (ids.mp_deviceid, ids.mpid):
        if (key := _text(value)) is not None:
            return key
    identities = ids.user_identities or {}
    for name in (*_FIRST_IDENTITIES, *sorted(set(identities) - set(_FIRST_IDENTITIES))):
        if (key := _text(identities.get(name))) is not None:
            return f"{name}:{key}"
    devices = ids.device_info or {}
    for name in sorted(devices):
        if name.endswith(("_idfa", "_idfv", "_uuid", "_advertising_id", "das")) and \
                (key := _text(devices[name])) is not None:
            return f"{name}:{key}"
    return None


def segment_key(body: bytes) -> str | None:
    ids = _segment.decode(body)
    return _text(ids.anonymousId) or _text(ids.userId)


def _grouped(items: list[msgspec.Raw], key_of: Any) -> list[tuple[str | None, list[msgspec.Raw]]]:
    """Items grouped by key, groups in the order of their first item, items in order within a group."""
    groups: dict[str | None, list[msgspec.Raw]] = {}
    for item in items:
        groups.setdefault(key_of(bytes(item)), []).append(item)
    return list(groups.items())


def split(kind: str, body: bytes) -> Keyed:
    """(user key, body) per user of a request that passed validation; the body itself when it has one user."""
    if kind == KIND_MPARTICLE_BULK:
        groups = _grouped(_raw_list.decode(body), mparticle_key)
        if len(groups) == 1:
            return [(groups[0][0], body)]
        return [(key, b"[" + b",".join(bytes(item) for item in items) + b"]") for key, items in groups]
    if kind == _SEGMENT_BATCH:
        top = _raw_object.decode(body)
        calls = top.get("batch")
        groups = _grouped(_raw_list.decode(calls) if calls is not None else [], segment_key)
        if len(groups) <= 1:
            return [(groups[0][0] if groups else None, body)]
        return [(key, _encoder.encode({**top, "batch": items})) for key, items in groups]
    if kind.startswith(KIND_SEGMENT_PREFIX):
        return [(segment_key(body), body)]
    return [(mparticle_key(body), body)]
