"""Connecting an audience to an output, changing the connection, disconnecting it (the admin API's rules)."""

from typing import Any

import msgspec

from kaon.activation.settings import parse_settings
from kaon.activation.store import (
    DISCONNECTING,
    SYNC,
    TRIGGER,
    AudienceConnection,
    ConnectionStore,
    IdentityUpdates,
    SyncedStore,
)
from kaon.audiences.store import DefinitionStore, MemberStore
from kaon.destinations.base import Destination
from kaon.destinations.registry import destination
from kaon.errors import Conflict, NotFound
from kaon.governance.consent import check_rule_purposes
from kaon.store.outputs import OutputStore
from kaon.store.sql import Conn
from kaon.store.tx import transaction

FIRST_MPID = -(2**63)


class SettingsError(ValueError):
    """The connection's settings are not valid (400)."""


def _output_settings(found: Destination, mode: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The connection's settings for its output, checked against what the output asks of a sync connection."""
    kind = found.connection_settings_type
    if mode != SYNC or kind is None:
        if raw:
            raise SettingsError(f"`output`: {found.title} takes no connection settings"
                                f"{' in trigger mode' if kind is not None else ''}")
        return {}
    try:
        checked: dict[str, Any] = msgspec.to_builtins(msgspec.convert(raw, kind))
    except (msgspec.ValidationError, ValueError) as error:
        raise SettingsError(f"`output`: {error}") from None
    return checked


def _settings(conn: Conn, workspace_id: str, raw: object) -> dict[str, Any]:
    try:
        settings = parse_settings(raw)
    except ValueError as error:
        raise SettingsError(str(error)) from None
    try:
        check_rule_purposes(conn, workspace_id, settings.rules)
    except ValueError as error:
        raise SettingsError(str(error)) from None
    out: dict[str, Any] = {"rules": settings.rules}
    if settings.mode is not None:
        out["mode"] = settings.mode
    if settings.output:
        out["output"] = settings.output
    if settings.identity_types is not None:
        out["identity_types"] = sorted(set(settings.identity_types))
    return out


def _for_output(found: Destination, mode: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings checked against the output: a sync connection's `identity_types` must name at least one type
    the output takes (otherwise every member would be filtered out, silently), and `output` holds what the output
    asks of a connection (left out when empty)."""
    chosen = settings.get("identity_types")
    if mode == SYNC and chosen is not None and found.identity_types and not set(chosen) & set(found.identity_types):
        raise SettingsError(f"identity_types {', '.join(chosen) or '(none)'}: {found.title} takes none of them; it "
                            f"takes {', '.join(found.identity_types)}")
    out = {k: v for k, v in settings.items() if k != "output"}
    if checked := _output_settings(found, mode, settings.get("output", {})):
        out["output"] = checked
    return out


def connect(conn: Conn, workspace_id: str, audience_id: str, output_id: str, raw_settings: object,
            now: int) -> AudienceConnection:
    """Join the audience to the output. An audience output first receives every current member (the initial
    sync), then each change; any other output receives each change from now on as an event (a trigger)."""
    with transaction(conn):
        audience = DefinitionStore(conn, workspace_id).find("audience", audience_id)
        if audience is None:
            raise NotFound(f"audience {audience_id} not found")
        output = OutputStore(conn, workspace_id).output(output_id)
        settings = _settings(conn, workspace_id, raw_settings)
        store = ConnectionStore(conn, workspace_id)
        if any(c.output_id == output_id for c in store.of_audience(audience_id)):
            raise Conflict(f"audience {audience_id} is already connected to output {output_id}")
        found = destination(output.destination)
        mode = settings.get("mode") or (SYNC if found.audience else TRIGGER)
        if mode == SYNC and not found.audience:
            raise SettingsError(f"output {output_id} ({found.title}) cannot sync audiences: use mode `trigger`")
        if mode == TRIGGER and not found.takes_events:
            raise SettingsError(f"output {output_id} ({found.title}) takes no events: use mode `sync`")
        settings = _for_output(found, mode, settings)
        members = MemberStore(conn, workspace_id)
        members.settle()  # the changes up to here are the initial sync's; later ones are the change stream's
        updates = IdentityUpdates(conn)
        updates.settle()
        return store.create(audience_id=audience_id, audience_name=audience.name, output_id=output_id, mode=mode,
                            settings=settings, change_cursor=members.last_change_id(),
                            member_cursor=FIRST_MPID if mode == SYNC else None, update_cursor=updates.last_id(),
                            now_ms=now)


def update(conn: Conn, workspace_id: str, audience_id: str, connection_id: str, raw_settings: object,
           now: int) -> AudienceConnection:
    """New settings apply to what is sent from now on."""
    with transaction(conn):
        row = get(conn, workspace_id, audience_id, connection_id)
        if row.status == DISCONNECTING:
            raise Conflict(f"audience connection {connection_id} is being disconnected")
        store = ConnectionStore(conn, workspace_id)
        settings = _settings(conn, workspace_id, raw_settings)
        if settings.get("mode", row.mode) != row.mode:
            raise SettingsError("the mode of a connection cannot change: disconnect and connect again")
        output = OutputStore(conn, workspace_id).output(row.output_id)
        settings = _for_output(destination(output.destination), row.mode, settings)
        if row.mode == SYNC and settings.get("output", {}) != row.settings.get("output", {}):
            # What was sent is in the old list (segment, custom audience): removals there would go astray.
            raise SettingsError("the output settings of a sync connection cannot change: disconnect (which removes "
                                "what was sent) and connect again")
        store.update_settings(row, {**settings, "mode": row.mode} if "mode" in row.settings else settings, now)
        return store.get(connection_id)


def get(conn: Conn, workspace_id: str, audience_id: str, connection_id: str) -> AudienceConnection:
    row = ConnectionStore(conn, workspace_id).find(connection_id)
    if row is None or row.audience_id != audience_id:
        raise NotFound(f"audience connection {connection_id} not found")
    return row


def disconnect(conn: Conn, workspace_id: str, audience_id: str, connection_id: str, now: int) -> AudienceConnection:
    """An audience output gets a removal of everything it was sent (the sync worker queues them, then the
    connection goes); a trigger connection just stops."""
    with transaction(conn):
        row = get(conn, workspace_id, audience_id, connection_id)
        store = ConnectionStore(conn, workspace_id)
        if row.mode == TRIGGER:
            store.delete(row)
            return row
        store.advance(row, change_cursor=row.change_cursor, member_cursor=None, status=DISCONNECTING,
                      progress={**row.progress, "members_removed": 0, "disconnected_unixtime_ms": now}, now_ms=now)
        return store.get(connection_id)


def synced_count(conn: Conn, row: AudienceConnection) -> int:
    return SyncedStore(conn, row.workspace_id).count(row.id)
