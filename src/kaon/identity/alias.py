"""Alias requests: copy a source profile's events in a time window to a destination profile.

mParticle's rules: source and destination differ and exist; a source was never a destination; a destination
was never a source; one source's windows do not overlap; windows are at most 90 days. mParticle waits 24 h
before copying (so late events are included); Kaon copies at once unless the workspace sets
`alias_delay_hours`, in which case the process stage copies when the request is due.

A client-side request (key-only web credential: `client_login_types` given) must also name the device stamp
the source holds (`ALIAS_DEVICE_MISMATCH`; the web SDK sends it) and its source may hold no login id
(`ALIAS_SOURCE_KNOWN`): otherwise anyone with the public key could copy a known user's events.
"""

from typing import Any

from kaon.identity.idsync import ALIAS_MAX_WINDOW_MS, AliasData
from kaon.identity.store import ProfileStore, alias_request, due_aliases, finish_alias
from kaon.model.errors import PayloadError
from kaon.store.events import EventStore
from kaon.store.sql import Conn


def _refuse(code: str, message: str) -> PayloadError:
    return PayloadError(code, message)


def request_alias(conn: Conn, workspace_id: str, data: AliasData, *, now_ms: int,
                  delay_ms: int = 0, client_login_types: tuple[str, ...] | None = None) -> dict[str, Any]:
    source, destination = data.source_mpid, data.destination_mpid
    end = data.end_unixtime_ms if data.end_unixtime_ms is not None else now_ms
    start = data.start_unixtime_ms if data.start_unixtime_ms is not None else end - ALIAS_MAX_WINDOW_MS
    if source == destination:
        raise _refuse("ALIAS_SAME_MPID", "source_mpid and destination_mpid must differ - at `$.data`")
    if end < start:
        raise _refuse("ALIAS_INVALID_WINDOW", "end_unixtime_ms is before start_unixtime_ms - at `$.data`")
    if end - start > ALIAS_MAX_WINDOW_MS:
        raise _refuse("ALIAS_INVALID_WINDOW", "the alias window is longer than 90 days - at `$.data`")
    store = ProfileStore(conn, workspace_id)
    for name, mpid in (("source_mpid", source), ("destination_mpid", destination)):
        if store.row(mpid) is None:
            raise _refuse("ALIAS_UNKNOWN_MPID", f"no profile {mpid} - at `$.data.{name}`")
    if client_login_types is not None:
        _check_client_side(store, data, client_login_types)
    if store.was_alias_destination(source):
        raise _refuse("ALIAS_SOURCE_WAS_DESTINATION", "the source was the destination of an earlier alias")
    if store.was_alias_source(destination):
        raise _refuse("ALIAS_DESTINATION_WAS_SOURCE", "the destination was the source of an earlier alias")
    if store.alias_overlaps(source, start, end):
        raise _refuse("ALIAS_OVERLAP", "the source was already aliased for an overlapping window")
    alias_id = store.add_alias_request(source, destination, start, end, now_ms=now_ms, due_ms=now_ms + delay_ms)
    copied = run_alias(conn, alias_id, now_ms) if delay_ms == 0 else None
    return {"alias_id": alias_id, "events_copied": copied}


def _check_client_side(store: ProfileStore, data: AliasData, login_types: tuple[str, ...]) -> None:
    held = {(t, v) for t, v, _ in store.identities(data.source_mpid)}
    stamp = (data.device_application_stamp or "").strip()
    if not stamp or ("device_application_stamp", stamp) not in held:
        raise _refuse("ALIAS_DEVICE_MISMATCH", "a key-only alias must name the source profile's device stamp - at "
                                               "`$.data.device_application_stamp`")
    if any(t in login_types for t, _ in held):
        raise _refuse("ALIAS_SOURCE_KNOWN", "the source profile holds a login id: only a server credential may alias"
                                            " it - at `$.data.source_mpid`")


def run_alias(conn: Conn, alias_id: int, now_ms: int) -> int:
    request = alias_request(conn, alias_id)
    assert request is not None
    if request.done_ms is not None:
        return 0
    ws, source, destination = request.workspace_id, request.source_mpid, request.destination_mpid
    copied = EventStore(conn).copy_window(ws, source, destination, request.start_ms, request.end_ms)
    store = ProfileStore(conn, ws)
    first = store.row(source)
    if first is not None:
        store.seen(destination, first["first_seen_ms"], first["first_seen_ms"])
    finish_alias(conn, alias_id, now_ms=now_ms, events_copied=copied)
    return copied


def run_due_aliases(conn: Conn, now_ms: int) -> int:
    return sum(run_alias(conn, alias_id, now_ms) for alias_id in due_aliases(conn, now_ms))
