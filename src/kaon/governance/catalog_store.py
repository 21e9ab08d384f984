"""The data catalog's tables: a slice's aggregate written with a few narrow upserts, read back for the admin API.

`catalog_points` names each data point. A *series* (`catalog_series`) is a data point's events per input,
environment and set of attribute names (`attributes`: a JSON array, sorted); its tally (`catalog_tallies`: counts,
first/last seen) is kept apart under the series' integer id. An attribute's count is the sum over the sets holding
it, so a slice adds to one narrow row per set (`count = count + ?` by rowid) instead of one per attribute. The
user kinds keep one series per attribute (`attribute_count`) and their own count in the `[]` series. `catalog_types`
holds each attribute's type bits per input and environment, written only when a new type appears.
`catalog_examples` keeps at most MAX_EXAMPLES short, masked example values per attribute, apart from the
counts, so that a data subject request can remove them (`forget_values`).
"""

from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from kaon.errors import NotFound
from kaon.governance.catalog_aggregate import Bucket, CatalogAggregate, PointState, packed_bits, unpack
from kaon.governance.catalog_values import MAX_EXAMPLES, TRUNCATED, types_of
from kaon.store.sql import Conn, Dialect, chunks, contains_any, marks
from kaon.store.subject import Subject

_ADD_POINT = (
    "INSERT INTO catalog_points (workspace_id, point_id, point_type, name, custom_event_type)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (workspace_id, point_id) DO NOTHING"
)
_ADD_SERIES = (
    # DO NOTHING: another process stage may have added it since this one read (it is read back either way).
    "INSERT INTO catalog_series (workspace_id, point_id, input_id, environment, attributes)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (workspace_id, point_id, input_id, environment, attributes) DO NOTHING"
)
_NEVER = 2**63 - 1  # a new tally's first seen, before its first addition
_NEW_TALLY = (
    "INSERT INTO catalog_tallies (series_id, count, attribute_count, first_seen_ms, last_seen_ms)"
    f" VALUES (?, 0, 0, {_NEVER}, 0) ON CONFLICT (series_id) DO NOTHING"
)


def _add_tally(dialect: Dialect) -> str:
    return ("UPDATE catalog_tallies SET count = count + ?, attribute_count = attribute_count + ?,"
            f" first_seen_ms = {dialect.least('first_seen_ms', '?')},"
            f" last_seen_ms = {dialect.greatest('last_seen_ms', '?')} WHERE series_id = ?")


# (workspace, point id, input, environment, attribute names as stored)
SeriesKey = tuple[str, str, str, str, str]
_ADD_TYPES = (
    "INSERT INTO catalog_types (workspace_id, point_id, input_id, environment, attribute, types)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, point_id, input_id, environment, attribute)"
    " DO UPDATE SET types = catalog_types.types | excluded.types"
)
_encode_names = msgspec.json.Encoder().encode
_decode_names = msgspec.json.Decoder(list[str]).decode
_CHUNK = 500  # point ids per read (well under SQLite's parameter limit)
_CACHE_LIMIT = 1_000_000  # entries in the type cache: past it, the cache is dropped and rebuilt lazily
_names_json: dict[tuple[str, ...], str] = {}

# Only while the attribute has fewer than MAX_EXAMPLES examples; the same value twice is one example.
# Parameters: workspace, point id, attribute, value, seen_ms, then workspace, point id, attribute again.
_ADD_EXAMPLE = (
    "INSERT INTO catalog_examples (workspace_id, point_id, attribute, value, seen_ms)"
    " SELECT ?, ?, ?, ?, ? WHERE (SELECT COUNT(*) FROM catalog_examples"
    f" WHERE workspace_id = ? AND point_id = ? AND attribute = ?) < {MAX_EXAMPLES}"
    " ON CONFLICT (workspace_id, point_id, attribute, value) DO NOTHING"
)


def _names(names: Iterable[str]) -> str:
    """The stored spelling of a set of attribute names: a JSON array, sorted, each name once."""
    key = tuple(names)
    found = _names_json.get(key)
    if found is None:
        found = _encode_names(sorted(set(key))).decode()
        if len(_names_json) < 100_000:
            _names_json[key] = found
    return found


class Known:
    """The attributes' type bits one process has *read* from the catalog (so the steady state reads nothing).

    Only ever holds what a read returned (never what this process wrote, which could roll back), and the table
    only grows, so it cannot claim too much.
    """

    def __init__(self) -> None:
        # (workspace, point id, input, environment, attribute) → type bits stored.
        self.types: dict[tuple[str, str, str, str, str], int] = {}

    def trim(self) -> None:
        if len(self.types) > _CACHE_LIMIT:
            self.types.clear()


def _series_keys(bucket: Bucket) -> tuple[SeriesKey, ...]:
    """A bucket's series: one per set of names, or for the user kinds the `[]` one and one per attribute."""
    workspace_id, input_id, environment = bucket.group
    pid = bucket.point.pid
    if bucket.split:
        return ((workspace_id, pid, input_id, environment, "[]"),
                *((workspace_id, pid, input_id, environment, _names((name,))) for name in bucket.out_names))
    return ((workspace_id, pid, input_id, environment, _names(bucket.names)),)


def write(conn: Conn, aggregate: CatalogAggregate, known: Known | None = None) -> None:
    """Apply one slice's observations with a few statements, whatever the number of events.

    Steady state (every point, series and type already read back): one `executemany` adding to the tallies, and
    one adding examples if any. New points, series or types cost one read and one insert each. Counts are exact:
    they are added in the caller's write transaction, so concurrent stages cannot lose them.
    """
    known = known if known is not None else Known()
    known.trim()
    points: dict[tuple[str, str], PointState] = {}
    unresolved: list[Bucket] = []
    typed: list[tuple[Bucket, int, set[tuple[type | None, ...]]]] = []
    for bucket in aggregate.touched:
        point = bucket.point
        if not point.confirmed:
            points[(point.workspace_id, point.pid)] = point
        if bucket.series is None:
            unresolved.append(bucket)
        if bucket.preset:
            if bucket.preset & ~bucket.covered:
                typed.append((bucket, bucket.preset, set()))
        elif bucket.names:
            signatures = bucket.signatures()
            if not signatures <= bucket.typed:
                signatures -= bucket.typed
                packed = bucket.packed(signatures)
                if packed & ~bucket.covered:
                    typed.append((bucket, packed, signatures))
                else:
                    bucket.typed |= signatures
    if points:
        for key in _read_points(conn, points):
            points.pop(key).confirmed = True
        if points:
            conn.executemany(_ADD_POINT, [(p.workspace_id, p.pid, *p.key) for p in points.values()])
    ids = _resolve(conn, unresolved) if unresolved else {}
    tallies: list[tuple[int, int, int, int, int]] = []
    for bucket in aggregate.touched:
        series = bucket.series or tuple(ids[key] for key in _series_keys(bucket))
        n, first, last = bucket.count, bucket.first_ms, bucket.last_ms
        if bucket.split:
            tallies.append((n, 0, first, last, series[0]))
            tallies.extend((0, n, first, last, sid) for sid in series[1:])
        else:
            tallies.append((n, n, first, last, series[0]))
    if conn.executemany(_add_tally(conn.dialect), tallies).rowcount != len(tallies):
        # A series this process had read is gone (nothing deletes them today): forget every cached id and fail
        # the slice; the runner retries it, and the retry reads (or adds) the series again.
        aggregate.forget_series()
        raise RuntimeError("catalog tallies missing for cached series; series ids re-read on retry")
    if typed:
        _write_types(conn, known, typed)
    examples = [(p.workspace_id, p.pid, name, value, ms, p.workspace_id, p.pid, name)
                for p in aggregate.examined for name, value, ms, _ in p.new]
    if examples:
        conn.executemany(_ADD_EXAMPLE, examples)


def _resolve(conn: Conn, buckets: list[Bucket]) -> dict[SeriesKey, int]:
    """The series ids of buckets that have none yet: read, and the missing ones added (with an empty tally).

    A bucket keeps its ids (`series`) only when the read found them all: an id this transaction assigned could be
    given to another series if the transaction rolled back.
    """
    wanted = {key: bucket for bucket in buckets for key in _series_keys(bucket)}
    ids = _read_series(conn, wanted)
    for bucket in buckets:
        keys = _series_keys(bucket)
        if all(key in ids for key in keys):
            bucket.series = tuple(ids[key] for key in keys)
    missing = [key for key in wanted if key not in ids]
    if missing:
        conn.executemany(_ADD_SERIES, missing)
        added = _read_series(conn, missing)
        conn.executemany(_NEW_TALLY, [(added[key],) for key in missing])
        ids.update(added)
    return ids


def _read_series(conn: Conn, keys: Iterable[SeriesKey]) -> dict[SeriesKey, int]:
    return {(workspace_id, pid, input_id, environment, attributes): sid
            for workspace_id, (sid, pid, input_id, environment, attributes) in _rows_of_points(
                conn, "id, point_id, input_id, environment, attributes", "catalog_series",
                ((key[0], key[1]) for key in keys))}


def _write_types(conn: Conn, known: Known,
                 typed: list[tuple[Bucket, int, set[tuple[type | None, ...]]]]) -> None:
    """Check a slice's possibly new types against the stored ones; add the types that are new.

    What earlier reads returned is checked first; the store is read (once per slice) only for what that does not
    cover. A bucket's `covered` bits only ever come from a read, never from this process's own writes.
    """
    unread = [item for item in typed if not _covered(*item, known)]
    if not unread:
        return
    _read_types(conn, known, {(bucket.group[0], bucket.point.pid) for bucket, _, _ in unread})
    new: dict[tuple[str, str, str, str, str], int] = {}
    for bucket, packed, signatures in unread:
        if _covered(bucket, packed, signatures, known):
            continue
        for key, bits in zip(_type_keys(bucket), unpack(packed, len(bucket.out_names)), strict=True):
            if bits & ~known.types.get(key, 0):
                new[key] = new.get(key, 0) | bits
    if new:
        conn.executemany(_ADD_TYPES, [(*key, bits) for key, bits in new.items()])


def _type_keys(bucket: Bucket) -> list[tuple[str, str, str, str, str]]:
    workspace_id, input_id, environment = bucket.group
    return [(workspace_id, bucket.point.pid, input_id, environment, name) for name in bucket.out_names]


def _covered(bucket: Bucket, packed: int, signatures: set[tuple[type | None, ...]], known: Known) -> bool:
    """Whether the types read so far hold these types (`covered` is updated; if so, the signatures are `typed`)."""
    types = known.types
    bucket.covered = packed_bits(types.get(key, 0) for key in _type_keys(bucket))
    if packed & ~bucket.covered:
        return False
    bucket.typed |= signatures
    return True


def _rows_of_points(conn: Conn, columns: str, table: str,
                    keys: Iterable[tuple[str, str]]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """(workspace, row) for every row of `table` belonging to the given (workspace, point id) pairs."""
    by_workspace: dict[str, set[str]] = {}
    for workspace_id, pid in keys:
        by_workspace.setdefault(workspace_id, set()).add(pid)
    for workspace_id, pids in by_workspace.items():
        for chunk in chunks(sorted(pids), _CHUNK):
            for row in conn.execute(f"SELECT {columns} FROM {table} WHERE workspace_id = ? AND point_id IN"
                                    f" ({marks(chunk)})", [workspace_id, *chunk]):
                yield workspace_id, row


def _read_points(conn: Conn, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(workspace_id, pid) for workspace_id, (pid,) in _rows_of_points(conn, "point_id", "catalog_points", keys)}


def _read_types(conn: Conn, known: Known, keys: Iterable[tuple[str, str]]) -> None:
    for workspace_id, (pid, input_id, environment, attribute, bits) in _rows_of_points(
            conn, "point_id, input_id, environment, attribute, types", "catalog_types", keys):
        known.types[(workspace_id, pid, input_id, environment, attribute)] = bits


def stored_examples(conn: Conn) -> dict[tuple[str, str], dict[str, list[str]]]:
    """Per (workspace, point id), each attribute's stored example values."""
    found: dict[tuple[str, str], dict[str, list[str]]] = {}
    for workspace_id, pid, attribute, value in conn.execute(
            "SELECT workspace_id, point_id, attribute, value FROM catalog_examples"):
        found.setdefault((workspace_id, pid), {}).setdefault(attribute, []).append(value)
    return found


def forget_values(conn: Conn, workspace_id: str, values: set[str]) -> int:
    """Remove every example containing one of `values` (a truncated example: whose kept start begins one).

    For erasure: pass the person's identity values and attribute values as text. Returns the rows removed.
    """
    removed = 0
    for value in sorted(v for v in values if v):
        # A truncated example's kept start: all but its last character (the TRUNCATED mark).
        kept = "substr(value, 1, length(value) - 1)"
        removed += conn.execute(
            f"DELETE FROM catalog_examples WHERE workspace_id = ? AND ({conn.dialect.contains('value')}"
            f" OR (substr(value, length(value), 1) = '{TRUNCATED}' AND substr(?, 1, length(value) - 1) = {kept}))",
            (workspace_id, value, value),
        ).rowcount
    return removed


def erase_subject(conn: Conn, subject: Subject) -> dict[str, int]:
    """Delete the person's example values: those equal to one of their values (identities, attributes, mpids)
    or holding one of their identity values as a JSON string."""
    ws = subject.workspace_id
    match, args = contains_any(conn.dialect, "lower(value)", subject.needles())
    erased = conn.execute(f"DELETE FROM catalog_examples WHERE workspace_id = ? AND {match}", (ws, *args)).rowcount
    for chunk in chunks(sorted(subject.all_values())):
        erased += conn.execute(f"DELETE FROM catalog_examples WHERE workspace_id = ? AND value IN ({marks(chunk)})",
                               (ws, *chunk)).rowcount
    return {"catalog_examples": erased}


def _filters(input_id: str | None, environment: str | None) -> tuple[str, list[object]]:
    sql, args = "", list[object]()
    if input_id is not None:
        sql += " AND s.input_id = ?"
        args.append(input_id)
    if environment is not None:
        sql += " AND s.environment = ?"
        args.append(environment)
    return sql, args


# A data point's place in the listing: (type, name, custom event type, id).
PointKey = tuple[str, str, str, str]


def list_points(conn: Conn, workspace_id: str, *, q: str | None = None, type_: str | None = None,
                input_id: str | None = None, environment: str | None = None, limit: int = 1000,
                after: PointKey | None = None) -> list[dict[str, Any]]:
    """Data points with their totals (over the inputs and environments asked for), ordered by type, name, custom
    event type and id; `after` is the key (`point_key`) of the last one shown.

    `q` matches the name, type, custom event type or an attribute name, case-insensitively. Rows arrive grouped
    by point, so reading stops once `limit` points matched.
    """
    where, args = _filters(input_id, environment)
    sql = (
        "SELECT p.point_id, p.point_type, p.name, p.custom_event_type, s.input_id, s.environment, s.attributes,"
        " t.count, t.first_seen_ms, t.last_seen_ms FROM catalog_points p JOIN catalog_series s"
        " ON s.workspace_id = p.workspace_id AND s.point_id = p.point_id JOIN catalog_tallies t ON t.series_id = s.id"
        f" WHERE p.workspace_id = ?{where}"
    )
    params: list[object] = [workspace_id, *args]
    if type_ is not None:
        sql += " AND p.point_type = ?"
        params.append(type_)
    if after is not None:
        sql += " AND (p.point_type, p.name, p.custom_event_type, p.point_id) > (?, ?, ?, ?)"
        params.extend(after)
    sql += " ORDER BY p.point_type, p.name, p.custom_event_type, p.point_id"
    needle = q.lower() if q else None
    out: list[dict[str, Any]] = []
    entry: dict[str, Any] | None = None
    names: set[str] = set()

    def done() -> None:
        if entry is None or (needle is not None and not any(needle in text.lower() for text in (
                entry["name"], entry["type"], entry["custom_event_type"] or "", *names))):
            return
        entry["attribute_count"] = len(names)
        entry["input_ids"].sort()
        entry["environments"].sort()
        out.append(entry)

    for pid, kind, name, cet, input_, env, attrs, count, first, last in conn.execute(sql, params):
        if entry is None or entry["id"] != pid:
            done()
            if len(out) >= limit:
                return out
            entry = {"id": pid, "type": kind, "name": name, "custom_event_type": cet or None, "count": 0,
                     "first_seen_unixtime_ms": first, "last_seen_unixtime_ms": last, "input_ids": [],
                     "environments": []}
            names = set()
        entry["count"] += count
        entry["first_seen_unixtime_ms"] = min(entry["first_seen_unixtime_ms"], first)
        entry["last_seen_unixtime_ms"] = max(entry["last_seen_unixtime_ms"], last)
        for field, value in (("input_ids", input_), ("environments", env)):
            if value not in entry[field]:
                entry[field].append(value)
        if attrs != "[]":
            names.update(_decode_names(attrs))
    done()
    return out[:limit]


def point_key(point: dict[str, Any]) -> PointKey:
    """A listed point's place in the order (what `list_points(after=...)` continues from)."""
    return (point["type"], point["name"], point["custom_event_type"] or "", point["id"])


def point(conn: Conn, workspace_id: str, pid: str, *, input_id: str | None = None,
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
        "SELECT s.input_id, s.environment, s.attributes, t.count, t.attribute_count, t.first_seen_ms, t.last_seen_ms"
        " FROM catalog_series s JOIN catalog_tallies t ON t.series_id = s.id"
        f" WHERE s.workspace_id = ? AND s.point_id = ?{where}", [workspace_id, pid, *args],
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
                     "first_seen_unixtime_ms": first, "last_seen_unixtime_ms": last}
        return
    entry["count"] += count
    entry["first_seen_unixtime_ms"] = min(entry["first_seen_unixtime_ms"], first)
    entry["last_seen_unixtime_ms"] = max(entry["last_seen_unixtime_ms"], last)


def _totals(entries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    listed = list(entries)
    return {"count": sum(e["count"] for e in listed),
            "first_seen_unixtime_ms": min((e["first_seen_unixtime_ms"] for e in listed), default=None),
            "last_seen_unixtime_ms": max((e["last_seen_unixtime_ms"] for e in listed), default=None)}
