"""The data catalog's tables: a slice's aggregate written with a few narrow upserts, read back for the admin API.

`catalog_points` names each data point. `catalog_counts` counts it per input, environment and set of attribute
names (`attributes`: a JSON array, sorted), with first/last seen: an attribute's count is the sum over the sets
holding it, so a slice adds to one narrow row per set (`count = count + ?`) instead of one per attribute. The
user kinds keep one row per attribute (`attribute_count`) and their own count in the `[]` row. `catalog_types`
holds each attribute's type bits per input and environment, written only when a new type appears.
`catalog_examples` keeps at most MAX_EXAMPLES short, masked example values per attribute, apart from the
counts, so that a data subject request can remove them (`forget_values`).
"""

import sqlite3
from collections.abc import Iterable
from typing import Any

import msgspec

from kaon.errors import NotFound
from kaon.governance.catalog_aggregate import CatalogAggregate, point_id
from kaon.governance.catalog_values import MAX_EXAMPLES, TRUNCATED, types_of

_ADD_POINT = (
    "INSERT OR IGNORE INTO catalog_points (workspace_id, point_id, point_type, name, custom_event_type)"
    " VALUES (?, ?, ?, ?, ?)"
)
_ADD_COUNTS = (
    "INSERT INTO catalog_counts (workspace_id, point_id, input_id, environment, attributes, count, attribute_count,"
    " first_seen_ms, last_seen_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (workspace_id, point_id, input_id, environment, attributes) DO UPDATE SET"
    " count = count + excluded.count, attribute_count = attribute_count + excluded.attribute_count,"
    " first_seen_ms = min(first_seen_ms, excluded.first_seen_ms),"
    " last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)"
)
_ADD_TYPES = (
    "INSERT INTO catalog_types (workspace_id, point_id, input_id, environment, attribute, types)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, point_id, input_id, environment, attribute)"
    " DO UPDATE SET types = types | excluded.types"
)
_encode_names = msgspec.json.Encoder().encode
_decode_names = msgspec.json.Decoder(list[str]).decode
_CHUNK = 500  # point ids per read (well under SQLite's parameter limit)
_CACHE_LIMIT = 1_000_000  # entries per cache: past it, the cache is dropped and rebuilt lazily
_names_json: dict[tuple[str, ...], str] = {}

# Only while the attribute has fewer than MAX_EXAMPLES examples; the same value twice is one example.
_ADD_EXAMPLE = (
    "INSERT OR IGNORE INTO catalog_examples (workspace_id, point_id, attribute, value, seen_ms)"
    " SELECT ?1, ?2, ?3, ?4, ?5 WHERE (SELECT COUNT(*) FROM catalog_examples"
    f" WHERE workspace_id = ?1 AND point_id = ?2 AND attribute = ?3) < {MAX_EXAMPLES}"
)


def _names(names: tuple[str, ...]) -> str:
    found = _names_json.get(names)
    if found is None:
        found = _encode_names(list(names)).decode()
        if len(_names_json) < 100_000:
            _names_json[names] = found
    return found


class Known:
    """What one process has *read* from the catalog tables: data points and attributes' type bits.

    Only an optimisation, so that the steady state reads nothing: it only ever holds what a read returned (never
    what this process wrote, which could roll back), and the tables only grow, so it cannot claim too much.
    """

    def __init__(self) -> None:
        self.points: set[tuple[str, str]] = set()
        # (workspace, point id, input, environment, attribute) → type bits stored.
        self.types: dict[tuple[str, str, str, str, str], int] = {}

    def trim(self) -> None:
        if len(self.points) > _CACHE_LIMIT:
            self.points.clear()
        if len(self.types) > _CACHE_LIMIT:
            self.types.clear()


def write(conn: sqlite3.Connection, aggregate: CatalogAggregate, known: Known | None = None) -> None:
    """Apply one slice's aggregate with a few statements, whatever the number of events.

    Steady state (every point and type already known): one `executemany` adding to the counts, and one adding
    examples if any. New points or types cost one read and one upsert each. Counts are exact: they are added in
    the caller's write transaction, so concurrent stages cannot lose them.
    """
    known = known if known is not None else Known()
    known.trim()
    points: dict[tuple[str, str], tuple[str, str, str, str, str]] = {}
    counts = []
    types: dict[tuple[str, str, str, str, str], int] = {}
    examples: dict[tuple[str, str, str, str], int] = {}
    for (workspace_id, input_id, environment), group in aggregate.groups.items():
        for key, agg in group.items():
            pid = point_id(key)
            if (workspace_id, pid) not in known.points:
                points[(workspace_id, pid)] = (workspace_id, pid, *key)
            for names, count, named, first, last in agg.rows():
                counts.append((workspace_id, pid, input_id, environment, _names(names), count, named, first, last))
            for name, bits in agg.types().items():
                type_key = (workspace_id, pid, input_id, environment, name)
                if bits & ~known.types.get(type_key, 0):
                    types[type_key] = types.get(type_key, 0) | bits
            for name, shown in agg.examples.items():
                for value in shown:
                    examples.setdefault((workspace_id, pid, name, value), agg.last_ms)
    if points:
        _read_points(conn, known, points)
        new_points = [row for key, row in points.items() if key not in known.points]
        if new_points:
            conn.executemany(_ADD_POINT, new_points)
    conn.executemany(_ADD_COUNTS, counts)
    if types:
        _read_types(conn, known, {(k[0], k[1]) for k in types})
        new_types = [(*k, bits) for k, bits in types.items() if bits & ~known.types.get(k, 0)]
        if new_types:
            conn.executemany(_ADD_TYPES, new_types)
    if examples:
        conn.executemany(_ADD_EXAMPLE, [(*k, ms) for k, ms in examples.items()])


def _by_workspace(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for workspace_id, pid in keys:
        out.setdefault(workspace_id, []).append(pid)
    return out


def _read_points(conn: sqlite3.Connection, known: Known, keys: Iterable[tuple[str, str]]) -> None:
    for workspace_id, ids in _by_workspace(keys).items():
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            known.points.update((workspace_id, pid) for (pid,) in conn.execute(
                "SELECT point_id FROM catalog_points"
                f" WHERE workspace_id = ? AND point_id IN ({','.join('?' * len(chunk))})", [workspace_id, *chunk]))


def _read_types(conn: sqlite3.Connection, known: Known, keys: Iterable[tuple[str, str]]) -> None:
    for workspace_id, ids in _by_workspace(keys).items():
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            for pid, input_id, environment, attribute, bits in conn.execute(
                "SELECT point_id, input_id, environment, attribute, types FROM catalog_types"
                f" WHERE workspace_id = ? AND point_id IN ({','.join('?' * len(chunk))})", [workspace_id, *chunk],
            ):
                known.types[(workspace_id, pid, input_id, environment, attribute)] = bits


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
        "SELECT p.point_id, p.point_type, p.name, p.custom_event_type, s.input_id, s.environment, s.attributes,"
        " s.count, s.first_seen_ms, s.last_seen_ms FROM catalog_points p JOIN catalog_counts s"
        f" ON s.workspace_id = p.workspace_id AND s.point_id = p.point_id WHERE p.workspace_id = ?{where}"
    )
    params: list[object] = [workspace_id, *args]
    if type_ is not None:
        sql += " AND p.point_type = ?"
        params.append(type_)
    sql += " ORDER BY p.point_type, p.name, p.custom_event_type"
    found: dict[str, dict[str, Any]] = {}
    names: dict[str, set[str]] = {}
    for pid, kind, name, cet, input_, env, attrs, count, first, last in conn.execute(sql, params):
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
        if attrs != "[]":
            names[pid].update(_decode_names(attrs))
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
    own: dict[tuple[str, str], dict[str, Any]] = {}
    # attribute → (input, environment) → its entry
    seen: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for input_, env, attrs, count, named, first, last in conn.execute(
        "SELECT input_id, environment, attributes, count, attribute_count, first_seen_ms, last_seen_ms"
        f" FROM catalog_counts s WHERE workspace_id = ? AND point_id = ?{where}", [workspace_id, pid, *args],
    ):
        if count:
            _add(own, (input_, env), count, first, last)
        if attrs != "[]":
            for name in _decode_names(attrs):
                _add(seen.setdefault(name, {}), (input_, env), named, first, last)
    for input_, env, attribute, bits in conn.execute(
        f"SELECT input_id, environment, attribute, types FROM catalog_types s WHERE workspace_id = ? AND point_id = ?"
        f"{where}", [workspace_id, pid, *args],
    ):
        entry = seen.get(attribute, {}).get((input_, env))
        if entry is not None:
            entry["types"] = bits
    examples: dict[str, list[str]] = {}
    for attribute, value in conn.execute(
        "SELECT attribute, value FROM catalog_examples WHERE workspace_id = ? AND point_id = ?"
        " ORDER BY attribute, seen_ms, value", (workspace_id, pid)):
        examples.setdefault(attribute, []).append(value)
    attributes = []
    for name in sorted(seen):
        entries = [seen[name][k] for k in sorted(seen[name])]
        bits = 0
        for entry in entries:
            bits |= entry["types"]
            entry["types"] = types_of(entry["types"])
        attributes.append({"name": name, "types": types_of(bits), "examples": examples.get(name, []),
                           **_totals(entries), "seen": entries})
    entries = [own[k] for k in sorted(own)]
    for entry in entries:
        del entry["types"]
    return {"id": pid, "type": row[0], "name": row[1], "custom_event_type": row[2] or None, **_totals(entries),
            "seen": entries, "attributes": attributes}


def _add(into: dict[tuple[str, str], dict[str, Any]], key: tuple[str, str], count: int, first: int,
         last: int) -> None:
    entry = into.get(key)
    if entry is None:
        into[key] = {"input_id": key[0], "environment": key[1], "count": count, "types": 0,
                     "first_seen_ms": first, "last_seen_ms": last}
        return
    entry["count"] += count
    entry["first_seen_ms"] = min(entry["first_seen_ms"], first)
    entry["last_seen_ms"] = max(entry["last_seen_ms"], last)


def _totals(entries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    listed = list(entries)
    return {"count": sum(e["count"] for e in listed),
            "first_seen_ms": min((e["first_seen_ms"] for e in listed), default=None),
            "last_seen_ms": max((e["last_seen_ms"] for e in listed), default=None)}
