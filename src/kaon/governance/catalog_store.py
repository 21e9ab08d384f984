"""The data catalog's tables: a slice's aggregate written with a few upserts, read back for the admin API.

`catalog_points` names each data point; `catalog_stats` counts it per input and environment, with first/last
seen, and packs its attributes' stats there as JSON `{name: [count, type bits, first ms, last ms]}` (one row
per data point, input and environment: a slice rewrites a few hundred rows, not one per attribute);
`catalog_examples` keeps at most MAX_EXAMPLES short, masked example values per attribute, apart from the
counts, so that a data subject request can remove them (`forget_values`).
"""

import sqlite3
from collections.abc import Iterable
from typing import Any

import msgspec

from kaon.errors import NotFound
from kaon.governance.catalog_aggregate import CatalogAggregate, Packed, point_id
from kaon.governance.catalog_values import MAX_EXAMPLES, TRUNCATED, types_of

_UPSERT_POINT = (
    "INSERT OR IGNORE INTO catalog_points (workspace_id, point_id, point_type, name, custom_event_type)"
    " VALUES (?, ?, ?, ?, ?)"
)
_UPSERT_STATS = (
    "INSERT INTO catalog_stats (workspace_id, point_id, input_id, environment, count, first_seen_ms,"
    " last_seen_ms, attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (workspace_id, point_id, input_id, environment) DO UPDATE SET count = excluded.count,"
    " first_seen_ms = excluded.first_seen_ms, last_seen_ms = excluded.last_seen_ms,"
    " attributes = excluded.attributes"
)
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Packed).decode
_StatsKey = tuple[str, str, str]  # (point id, input id, environment)
_Stats = tuple[int, int, int, Packed]  # (count, first ms, last ms, attributes)
_CHUNK = 500  # point ids per read (well under SQLite's parameter limit)


# Only while the attribute has fewer than MAX_EXAMPLES examples; the same value twice is one example.
_ADD_EXAMPLE = (
    "INSERT OR IGNORE INTO catalog_examples (workspace_id, point_id, attribute, value, seen_ms)"
    " SELECT ?1, ?2, ?3, ?4, ?5 WHERE (SELECT COUNT(*) FROM catalog_examples"
    f" WHERE workspace_id = ?1 AND point_id = ?2 AND attribute = ?3) < {MAX_EXAMPLES}"
)


def write(conn: sqlite3.Connection, aggregate: CatalogAggregate) -> None:
    """Apply one slice's aggregate: one read and three `executemany` statements, whatever the number of events.

    The read and the rewrite happen in the caller's write transaction, so concurrent stages cannot lose counts.
    """
    points: dict[tuple[str, str], tuple[str, str, str, str, str]] = {}
    examples: dict[tuple[str, str, str, str], int] = {}
    by_workspace: dict[str, dict[_StatsKey, _Stats]] = {}
    for (workspace_id, input_id, environment), group in aggregate.groups.items():
        merged = by_workspace.setdefault(workspace_id, {})
        for key, agg in group.items():
            pid = point_id(key)
            points[(workspace_id, pid)] = (workspace_id, pid, *key)
            merged[(pid, input_id, environment)] = (agg.count, agg.first_ms, agg.last_ms, agg.attrs())
            for name, shown in agg.examples.items():
                for value in shown:
                    examples.setdefault((workspace_id, pid, name, value), agg.last_ms)
    rows = []
    for workspace_id, merged in by_workspace.items():
        stored = _read(conn, workspace_id, sorted({pid for pid, _, _ in merged}))
        for key, new in merged.items():
            old = stored.get(key)
            count, first, last, attrs = new if old is None else (
                new[0] + old[0], min(new[1], old[1]), max(new[2], old[2]), _merge(old[3], new[3]))
            rows.append((workspace_id, *key, count, first, last, _encode(attrs).decode()))
    conn.executemany(_UPSERT_POINT, points.values())
    conn.executemany(_UPSERT_STATS, rows)
    conn.executemany(_ADD_EXAMPLE, [(*k, ms) for k, ms in examples.items()])


def _read(conn: sqlite3.Connection, workspace_id: str, ids: list[str]) -> dict[_StatsKey, _Stats]:
    out: dict[_StatsKey, _Stats] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        for pid, input_id, environment, count, first, last, attrs in conn.execute(
            "SELECT point_id, input_id, environment, count, first_seen_ms, last_seen_ms, attributes"
            f" FROM catalog_stats WHERE workspace_id = ? AND point_id IN ({','.join('?' * len(chunk))})",
            [workspace_id, *chunk],
        ):
            out[(pid, input_id, environment)] = (count, first, last, _decode(attrs))
    return out


def _merge(into: Packed, new: Packed) -> Packed:
    for name, (count, types, first, last) in new.items():
        old = into.get(name)
        if old is None:
            into[name] = [count, types, first, last]
            continue
        old[0] += count
        old[1] |= types
        old[2] = min(old[2], first)
        old[3] = max(old[3], last)
    return into


def full_attributes(conn: sqlite3.Connection) -> dict[tuple[str, str], frozenset[str]]:
    """Per (workspace, point id), the attributes that already have MAX_EXAMPLES examples."""
    found: dict[tuple[str, str], set[str]] = {}
    for workspace_id, pid, attribute in conn.execute(
        "SELECT workspace_id, point_id, attribute FROM catalog_examples GROUP BY workspace_id, point_id, attribute"
        f" HAVING COUNT(*) >= {MAX_EXAMPLES}"
    ):
        found.setdefault((workspace_id, pid), set()).add(attribute)
    return {key: frozenset(names) for key, names in found.items()}


def forget_values(conn: sqlite3.Connection, workspace_id: str, values: set[str]) -> int:
    """Remove every example containing one of `values` (a truncated example: whose kept start begins one).

    For erasure: pass the person's identity values and attribute values as text. Returns the rows removed.
    """
    removed = 0
    for value in sorted(v for v in values if v):
        removed += conn.execute(
            "DELETE FROM catalog_examples WHERE workspace_id = ?1 AND (instr(value, ?2) > 0"
            f" OR (substr(value, -1) = '{TRUNCATED}' AND instr(?2, substr(value, 1, length(value) - 1)) = 1))",
            (workspace_id, value),
        ).rowcount
    return removed


def _filters(input_id: str | None, environment: str | None) -> tuple[str, list[object]]:
    sql, args = "", list[object]()
    if input_id is not None:
        sql += " AND s.input_id = ?"
        args.append(input_id)
    if environment is not None:
        sql += " AND s.environment = ?"
        args.append(environment)
    return sql, args


def list_points(conn: sqlite3.Connection, workspace_id: str, *, q: str | None = None, type_: str | None = None,
                input_id: str | None = None, environment: str | None = None, limit: int = 1000,
                offset: int = 0) -> list[dict[str, Any]]:
    """Data points with their totals (over the inputs and environments asked for), ordered by type and name.

    `q` matches the name, type, custom event type or an attribute name, case-insensitively.
    """
    where, args = _filters(input_id, environment)
    sql = (
        "SELECT p.point_id, p.point_type, p.name, p.custom_event_type, s.input_id, s.environment, s.count,"
        " s.first_seen_ms, s.last_seen_ms, s.attributes FROM catalog_points p JOIN catalog_stats s"
        f" ON s.workspace_id = p.workspace_id AND s.point_id = p.point_id WHERE p.workspace_id = ?{where}"
    )
    params: list[object] = [workspace_id, *args]
    if type_ is not None:
        sql += " AND p.point_type = ?"
        params.append(type_)
    sql += " ORDER BY p.point_type, p.name, p.custom_event_type"
    found: dict[str, dict[str, Any]] = {}
    names: dict[str, set[str]] = {}
    for pid, kind, name, cet, input_, env, count, first, last, attrs in conn.execute(sql, params):
        point = found.get(pid)
        if point is None:
            point = found[pid] = {"id": pid, "type": kind, "name": name, "custom_event_type": cet or None,
                                  "count": 0, "first_seen_ms": first, "last_seen_ms": last,
                                  "input_ids": [], "environments": []}
            names[pid] = set()
        point["count"] += count
        point["first_seen_ms"] = min(point["first_seen_ms"], first)
        point["last_seen_ms"] = max(point["last_seen_ms"], last)
        for field, value in (("input_ids", input_), ("environments", env)):
            if value not in point[field]:
                point[field].append(value)
        names[pid].update(_decode(attrs))
    out = []
    needle = q.lower() if q else None
    for pid, point in found.items():
        if needle is not None and not any(needle in text.lower() for text in (
                point["name"], point["type"], point["custom_event_type"] or "", *names[pid])):
            continue
        point["attribute_count"] = len(names[pid])
        point["input_ids"].sort()
        point["environments"].sort()
        out.append(point)
    return out[offset:offset + limit]


def point(conn: sqlite3.Connection, workspace_id: str, pid: str, *, input_id: str | None = None,
          environment: str | None = None) -> dict[str, Any]:
    """One data point: totals, per input and environment, and each attribute with types and examples."""
    row = conn.execute(
        "SELECT point_type, name, custom_event_type FROM catalog_points WHERE workspace_id = ? AND point_id = ?",
        (workspace_id, pid)).fetchone()
    if row is None:
        raise NotFound(f"no data point {pid!r} in the catalog")
    where, args = _filters(input_id, environment)
    own: list[dict[str, Any]] = []
    seen: dict[str, list[dict[str, Any]]] = {}
    for input_, env, count, first, last, attrs in conn.execute(
        "SELECT input_id, environment, count, first_seen_ms, last_seen_ms, attributes FROM catalog_stats s"
        f" WHERE workspace_id = ? AND point_id = ?{where} ORDER BY input_id, environment",
        [workspace_id, pid, *args],
    ):
        own.append({"input_id": input_, "environment": env, "count": count, "first_seen_ms": first,
                    "last_seen_ms": last})
        for name, (a_count, types, a_first, a_last) in _decode(attrs).items():
            seen.setdefault(name, []).append({"input_id": input_, "environment": env, "count": a_count,
                                              "types": types, "first_seen_ms": a_first, "last_seen_ms": a_last})
    examples: dict[str, list[str]] = {}
    for attribute, value in conn.execute(
        "SELECT attribute, value FROM catalog_examples WHERE workspace_id = ? AND point_id = ?"
        " ORDER BY attribute, seen_ms, value", (workspace_id, pid)):
        examples.setdefault(attribute, []).append(value)
    attributes = []
    for name in sorted(seen):
        entries = seen[name]
        bits = 0
        for entry in entries:
            bits |= entry["types"]
            entry["types"] = types_of(entry["types"])
        attributes.append({"name": name, "types": types_of(bits), "examples": examples.get(name, []),
                           **_totals(entries), "seen": entries})
    return {"id": pid, "type": row[0], "name": row[1], "custom_event_type": row[2] or None, **_totals(own),
            "seen": own, "attributes": attributes}


def _totals(entries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    listed = list(entries)
    return {"count": sum(e["count"] for e in listed),
            "first_seen_ms": min((e["first_seen_ms"] for e in listed), default=None),
            "last_seen_ms": max((e["last_seen_ms"] for e in listed), default=None)}
