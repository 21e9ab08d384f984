"""Tables of the PostgreSQL destination: identifiers, column types, schema evolution and the rows to insert.

Evolution rule: a new attribute adds a column typed from its first non-null value (text for strings, double
precision for numbers, boolean, jsonb for lists and objects); columns are never narrowed nor retyped. A value
whose type differs from its column's goes, as text, into the column itself when that is text, as JSON when
it is jsonb, and otherwise into the text sibling `<column>_str` (added when needed). Every attribute is
also kept whole in the `attributes` jsonb column.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from psycopg import Connection, sql
from psycopg.types.json import Jsonb

from kaon.destinations.event import DeliveryEvent
from kaon.destinations.files_rows import COLUMNS, JSON_COLUMNS, event_row, moment

MAX_IDENTIFIER: Final = 63  # PostgreSQL truncates longer names (NAMEDATALEN - 1 bytes)
STANDARD_TYPES: Final = {
    "event_id": "bigint", "source_message_id": "text", "event_type": "text", "event_name": "text",
    "timestamp": "timestamp with time zone", "timestamp_ms": "bigint", "mpid": "text", "workspace_id": "text",
    "input_id": "text", "environment": "text", "identities": "jsonb", "user_attributes": "jsonb",
    "attributes": "jsonb", "data": "jsonb",
}
_NOT_IDENTIFIER: Final = re.compile(r"[^a-z0-9_]+")
_encoder = msgspec.json.Encoder()


def _dumps(value: Any) -> str:
    # msgspec writes non-finite floats as null; json.dumps would write `Infinity`, which jsonb refuses.
    return _encoder.encode(value).decode()


def json_value(value: Any) -> Jsonb:
    return Jsonb(value, dumps=_dumps)


def identifier(raw: str) -> str:
    """Lower snake case of [a-z0-9_], not starting with a digit, at most 63 characters."""
    name = _NOT_IDENTIFIER.sub("_", raw.lower()).strip("_") or "attribute"
    if name[0].isdigit():
        name = f"_{name}"
    return name[:MAX_IDENTIFIER]


def attribute_column(raw: str) -> str:
    """The column of an event attribute; names of standard columns get an `attr_` prefix."""
    name = identifier(raw)
    return identifier(f"attr_{name}") if name in STANDARD_TYPES else name


def sibling(column: str) -> str:
    return f"{column[:MAX_IDENTIFIER - 4]}_str"


def kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "double precision"
    if isinstance(value, str):
        return "text"
    return "jsonb"


def clean(value: Any) -> Any:
    """PostgreSQL text and jsonb cannot hold NUL characters: drop them."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def as_text(value: Any) -> str:
    return str(value) if isinstance(value, str) else _encoder.encode(value).decode()


def adapt(value: Any, column_type: str) -> Any:
    if column_type == "jsonb":
        return json_value(value)
    if column_type == "text":
        return as_text(value)
    if column_type == "double precision":
        return float(value)
    return value


class TooManyColumns(Exception):
    """An event needs a column the table may not have: over the output's `max_columns` (a settings problem)."""


@dataclass
class TablePlan:
    """The rows for one table and the columns they need added (never more than `max_columns` in all)."""

    columns: dict[str, str]  # existing and planned column -> type
    max_columns: int = 1600
    added: dict[str, str] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def _new_column(self, column: str, column_type: str) -> None:
        if len(self.columns) >= self.max_columns:
            raise TooManyColumns(f"the table has {len(self.columns)} columns, the output's max_columns; the "
                                 f"attribute column {column!r} would exceed it (raise max_columns, at most 1600, "
                                 f"or send fewer distinct attributes)")
        self.columns[column] = self.added[column] = column_type

    def place(self, row: dict[str, Any], column: str, value: Any) -> None:
        wanted = kind(value)
        if wanted is None or column in row:  # nulls need no column; first attribute wins a shared column
            return
        current = self.columns.get(column)
        if current is None:
            self._new_column(column, wanted)
            current = wanted
        if current in (wanted, "text", "jsonb"):
            row[column] = adapt(value, current)
            return
        other = sibling(column)
        other_type = self.columns.get(other)
        if other_type is None:
            self._new_column(other, "text")
        elif other_type != "text" or other in row:
            return  # the name is taken by another attribute: the value stays in `attributes` only
        row[other] = as_text(value)

    def add(self, item: DeliveryEvent) -> None:
        standard = clean(event_row(item))
        row: dict[str, Any] = {name: json_value(standard[name]) if name in JSON_COLUMNS else standard[name]
                               for name in COLUMNS}
        row["timestamp"] = moment(item.timestamp_ms)
        for raw, value in sorted(standard["attributes"].items()):
            self.place(row, attribute_column(raw), value)
        self.rows.append(row)


def existing_columns(conn: Connection[Any], schema: str, tables: Sequence[str]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for table, column, data_type in conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = ANY(%s)", (schema, list(tables))):
        found.setdefault(table, {})[column] = data_type
    return found


def ensure_schema(conn: Connection[Any], schema: str) -> None:
    """Create the schema only when missing: CREATE SCHEMA IF NOT EXISTS needs the CREATE right regardless."""
    if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is None:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def create_table(conn: Connection[Any], schema: str, table: str) -> None:
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}{}").format(sql.Identifier(name), sql.SQL(STANDARD_TYPES[name]),
                                  sql.SQL(" PRIMARY KEY" if name == "source_message_id" else ""))
        for name in COLUMNS)
    conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {}.{} ({})").format(
        sql.Identifier(schema), sql.Identifier(table), columns))


def apply(conn: Connection[Any], schema: str, table: str, plan: TablePlan) -> None:
    """Add the planned columns, then insert the rows (rows already there, by source_message_id, are kept)."""
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    for column, column_type in plan.added.items():
        conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
            target, sql.Identifier(column), sql.SQL(column_type)))
    names = list(COLUMNS) + sorted({c for row in plan.rows for c in row} - set(COLUMNS))
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (source_message_id) DO NOTHING").format(
        target, sql.SQL(", ").join(map(sql.Identifier, names)), sql.SQL(", ").join(sql.Placeholder() * len(names)))
    with conn.cursor() as cursor:
        cursor.executemany(statement, [[row.get(name) for name in names] for row in plan.rows])
