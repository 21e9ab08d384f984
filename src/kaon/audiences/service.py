"""What the admin API (and later the console) does with audiences and calculated attributes: one implementation.

Every write runs in one transaction. Definitions are checked when saved (`DefinitionError` with a pointer), and
an audience's references to other audiences must exist and must not loop.
"""

import logging
import math
import secrets
from typing import Any

import msgspec

from kaon.audiences import backfill, calculated
from kaon.audiences.definition import parse_audience
from kaon.audiences.errors import DefinitionError
from kaon.audiences.store import Change, DefinitionRow, DefinitionStore, MemberStore
from kaon.errors import Conflict
from kaon.store.sql import Conn
from kaon.store.tx import transaction

_log = logging.getLogger("kaon.audiences")
DAY_MS = 86_400_000
MAX_NAME = 100  # mParticle's limit for audience names
MAX_DESCRIPTION = 1_000
MAX_DEFINITION_BYTES = 65_536  # a definition as compact JSON (200 nodes of 50 conditions fit well within)
_encode = msgspec.json.Encoder()


def _finite(raw: object, pointer: str) -> None:
    """JSON has no infinity or NaN (Python's parser reads `1e999` and `NaN` as them): refused where they are."""
    if isinstance(raw, float) and not math.isfinite(raw):
        raise DefinitionError(pointer, "must be a finite number")
    if isinstance(raw, dict):
        for key, value in raw.items():
            _finite(value, f"{pointer}/{key}")
    elif isinstance(raw, list):
        for i, value in enumerate(raw):
            _finite(value, f"{pointer}/{i}")


def _bounded(raw: object, pointer: str) -> None:
    _finite(raw, pointer)
    try:
        size = len(_encode.encode(raw))
    except (TypeError, msgspec.EncodeError):
        raise DefinitionError(pointer, "must be JSON") from None
    if size > MAX_DEFINITION_BYTES:
        raise DefinitionError(pointer, f"is at most {MAX_DEFINITION_BYTES} bytes as JSON; this one is {size}")


def new_id(kind: str) -> str:
    return ("aud_" if kind == "audience" else "ca_") + secrets.token_hex(8)


def _name(raw: object, pointer: str = "#/name") -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise DefinitionError(pointer, "is required: a non-empty name")
    if len(raw) > MAX_NAME:
        raise DefinitionError(pointer, f"is at most {MAX_NAME} characters")
    return raw.strip()


def _description(raw: object, pointer: str = "#/description") -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str) or len(raw) > MAX_DESCRIPTION:
        raise DefinitionError(pointer, f"must be a string of at most {MAX_DESCRIPTION} characters")
    return raw


def check_calculated(body: dict[str, Any]) -> dict[str, Any]:
    raw = body.get("draft_definition", body.get("definition"))
    _bounded(raw, "#/draft_definition")
    calculated.parse_definition(raw, "#/draft_definition")
    assert isinstance(raw, dict)
    return calculated.definition_json(raw)


def check_audience(conn: Conn, workspace_id: str, audience_id: str | None, definition: object,
                   lookback_days: object) -> None:
    _bounded(definition, "#/definition")
    parsed = parse_audience(definition, lookback_days)
    graph = {r.id: refs for r, refs in _references(conn, workspace_id) if r.id != audience_id}
    for ref in sorted(parsed.references):
        if ref not in graph:
            raise DefinitionError("#/definition", f"names audience {ref!r}, which does not exist")
    if audience_id is None:
        return
    graph[audience_id] = parsed.references
    stack, seen = list(parsed.references), set()
    while stack:
        current = stack.pop()
        if current == audience_id:
            raise DefinitionError("#/definition", "the audiences it names lead back to it (a cycle)")
        if current not in seen:
            seen.add(current)
            stack.extend(graph.get(current, ()))


def create_calculated(conn: Conn, workspace_id: str, body: dict[str, Any], actor: str, now: int) -> DefinitionRow:
    name = _name(body.get("name"))
    stored = {"description": _description(body.get("description")), "draft_definition": check_calculated(body),
              "active_definition": None, "created_by": actor, "last_modified_by": actor, "activated_by": None,
              "activated_ms": None}
    with transaction(conn):
        return DefinitionStore(conn, workspace_id).create("calculated", new_id("calculated"), name, stored, now)


def update_calculated(conn: Conn, workspace_id: str, attribute_id: str, body: dict[str, Any], actor: str,
                      now: int) -> DefinitionRow:
    with transaction(conn):
        store = DefinitionStore(conn, workspace_id)
        row = store.get("calculated", attribute_id)
        stored = dict(row.body)
        name = _name(body["name"]) if "name" in body else row.name
        if name.lower() != row.name.lower():
            _refuse_if_read(conn, workspace_id, row, "renaming")
        if "description" in body:
            stored["description"] = _description(body["description"])
        if "draft_definition" in body or "definition" in body:
            stored["draft_definition"] = check_calculated(body)
        stored["last_modified_by"] = actor
        return store.update(row, name=name, body=stored, now_ms=now)


def activate_calculated(conn: Conn, workspace_id: str, attribute_id: str, actor: str, now: int) -> DefinitionRow:
    """The draft becomes the active definition; its values are backfilled from the stored history."""
    with transaction(conn):
        store = DefinitionStore(conn, workspace_id)
        row = store.get("calculated", attribute_id)
        if row.status == "backfilling":
            raise Conflict(f"calculated attribute {attribute_id!r} is being activated; wait for its backfill")
        stored = {**row.body, "active_definition": row.body["draft_definition"], "activated_by": actor,
                  "activated_ms": now, "last_modified_by": actor}
        return backfill.activate(conn, row, stored, now)


def create_audience(conn: Conn, workspace_id: str, body: dict[str, Any], actor: str, now: int) -> DefinitionRow:
    name = _name(body.get("name"))
    external = _name(body["external_name"], "#/external_name") if body.get("external_name") else name
    with transaction(conn):
        check_audience(conn, workspace_id, None, body.get("definition"), body.get("lookback_days"))
        stored = {"external_name": external, "description": _description(body.get("description")),
                  "lookback_days": body.get("lookback_days") or 30, "definition": body["definition"],
                  "created_by": actor, "last_modified_by": actor}
        return DefinitionStore(conn, workspace_id).create("audience", new_id("audience"), name, stored, now)


def _clear(conn: Conn, row: DefinitionRow, cause: str, now: int) -> None:
    """Every member leaves; profiles' states forget entries made up to this version when next refreshed."""
    members = MemberStore(conn, row.workspace_id)
    gone = members.clear(row.id)
    members.record([Change(row.id, mpid, "exit", now, cause) for mpid in gone], now)
    DefinitionStore(conn, row.workspace_id).update(row, name=row.name, body={**row.body,
                                                                             "cleared_version": row.version},
                                                   now_ms=now)


def update_audience(conn: Conn, workspace_id: str, audience_id: str, body: dict[str, Any], actor: str,
                    now: int) -> DefinitionRow:
    """A changed definition of a live audience is backfilled again (members change when that ends)."""
    with transaction(conn):
        store = DefinitionStore(conn, workspace_id)
        row = store.get("audience", audience_id)
        stored = dict(row.body)
        name = _name(body["name"]) if "name" in body else row.name
        if "external_name" in body:
            stored["external_name"] = _name(body["external_name"], "#/external_name")
        if "description" in body:
            stored["description"] = _description(body["description"])
        definition = body.get("definition", row.body["definition"])
        lookback = body.get("lookback_days", row.body.get("lookback_days"))
        # Only a definition or lookback that changes what the audience means is backfilled again.
        redefined = definition != row.body["definition"] or (lookback or 30) != (row.body.get("lookback_days") or 30)
        if redefined:
            check_audience(conn, workspace_id, audience_id, definition, lookback)
            stored["definition"], stored["lookback_days"] = definition, lookback or 30
        stored["last_modified_by"] = actor
        row = store.update(row, name=name, body=stored, now_ms=now)
        if redefined and row.status in ("active", "backfilling"):
            row = backfill.activate(conn, row, stored, now)
        return row


def activate_audience(conn: Conn, workspace_id: str, audience_id: str, actor: str, now: int) -> DefinitionRow:
    with transaction(conn):
        row = DefinitionStore(conn, workspace_id).get("audience", audience_id)
        if row.status == "backfilling":
            raise Conflict(f"audience {audience_id!r} is being activated; wait for its backfill")
        if row.status == "active":
            return row
        return backfill.activate(conn, row, {**row.body, "activated_by": actor, "activated_ms": now}, now)


def deactivate_audience(conn: Conn, workspace_id: str, audience_id: str, now: int) -> DefinitionRow:
    """Stops evaluation; every member leaves (recorded as exits, cause `deactivated`)."""
    with transaction(conn):
        store = DefinitionStore(conn, workspace_id)
        row = store.get("audience", audience_id)
        store.set_status(row, "inactive", now)
        _clear(conn, row, "deactivated", now)
        return store.get("audience", audience_id)


def _references(conn: Conn, workspace_id: str) -> list[tuple[DefinitionRow, frozenset[str]]]:
    """Each stored audience with the audiences it names (one that no longer parses names none, and is logged)."""
    out = []
    for row in DefinitionStore(conn, workspace_id).all("audience"):
        try:
            out.append((row, parse_audience(row.body["definition"], row.body.get("lookback_days")).references))
        except DefinitionError as error:
            _log.error("audience %s does not parse (%s)", row.id, error)
            out.append((row, frozenset()))
    return out


def _referrers(conn: Conn, workspace_id: str, audience_id: str) -> list[str]:
    return [r.id for r, refs in _references(conn, workspace_id) if r.id != audience_id and audience_id in refs]


def delete_audience(conn: Conn, workspace_id: str, audience_id: str, now: int) -> None:
    with transaction(conn):
        store = DefinitionStore(conn, workspace_id)
        row = store.get("audience", audience_id)
        users = _referrers(conn, workspace_id, audience_id)
        if users:
            raise Conflict(f"audience {audience_id!r} is named by {', '.join(users)}: change those first")
        _clear(conn, row, "deleted", now)
        store.delete(row)


def _refuse_if_read(conn: Conn, workspace_id: str, row: DefinitionRow, doing: str) -> None:
    found = readers(conn, workspace_id, row.name)
    if found:
        raise Conflict(f"calculated attribute {row.id!r} is read by audience {', '.join(found)}: change those"
                       f" before {doing} it")


def delete_calculated(conn: Conn, workspace_id: str, attribute_id: str) -> None:
    """Refused while an audience reads it (its members would no longer mean what the audience says)."""
    with transaction(conn):
        store = DefinitionStore(conn, workspace_id)
        row = store.get("calculated", attribute_id)
        _refuse_if_read(conn, workspace_id, row, "deleting")
        store.delete(row)


def readers(conn: Conn, workspace_id: str, name: str) -> list[str]:
    """Ids of the audiences whose criteria read the calculated attribute `name`."""
    return [row.id for row in DefinitionStore(conn, workspace_id).all("audience")
            if _names_calculated(row.body.get("definition"), name.lower())]


def audience_count(conn: Conn, workspace_id: str, name: str) -> int:
    return len(readers(conn, workspace_id, name))


def _names_calculated(node: object, name: str) -> bool:
    if isinstance(node, dict):
        found = node.get("calculated_attribute")
        if isinstance(found, dict) and str(found.get("name", "")).lower() == name:
            return True
        return any(_names_calculated(v, name) for v in node.values())
    if isinstance(node, list):
        return any(_names_calculated(v, name) for v in node)
    return False


def progress_of(row: DefinitionRow) -> dict[str, Any]:
    return {"phase": row.phase or None, **row.progress}


def size_of(conn: Conn, row: DefinitionRow, now: int) -> dict[str, Any]:
    members = MemberStore(conn, row.workspace_id)
    added, dropped = members.moved_since(row.id, now - DAY_MS)
    return {"size": members.size(row.id), "added_last_24_hours": added, "dropped_last_24_hours": dropped}
