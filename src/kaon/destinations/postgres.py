"""PostgreSQL: events as rows, one column per event attribute, the schema evolving as attributes appear."""

import threading
from collections.abc import Sequence
from typing import Annotated, Any, Final, Literal

import msgspec
import psycopg

from kaon import outbound
from kaon.activation.membership import Membership, membership_of
from kaon.destinations.base import Destination, Secret
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import Outcome, SendPolicy, SendResult
from kaon.destinations.postgres_audiences import write as write_memberships
from kaon.destinations.postgres_hosts import check, pinned
from kaon.destinations.postgres_schema import (
    TablePlan,
    TooManyColumns,
    apply,
    create_table,
    ensure_schema,
    existing_columns,
)
from kaon.destinations.postgres_schema import identifier as table_name
from kaon.model.identities import DEVICE_IDENTITY_TYPES, USER_IDENTITY_TYPES

CONNECT_TIMEOUT_S: Final = 10
IDLE_PER_DSN: Final = 2
# Refusals that waiting will not cure: bad data (22, 23 but for a unique violation, which a concurrent
# CREATE TABLE can raise), authentication (28), no such database (3D) or schema (3F), missing rights
# (42501), names PostgreSQL will not take (42601, 42622, 42939). Everything else is retried.
ABORT_CLASSES: Final = frozenset({"22", "23", "28", "3D", "3F"})
# 54011: PostgreSQL's own limit of 1600 columns per table (dropped ones count too), which waiting will not lift.
ABORT_CODES: Final = frozenset({"42501", "42601", "42622", "42939", "54011"})
DEFAULT_MAX_COLUMNS: Final = 400
# Connection failures carry no SQLSTATE: these messages mean the settings (credentials, names) are wrong.
ABORT_MESSAGES: Final = ("authentication failed", "does not exist", "no pg_hba.conf entry", "invalid dsn",
                         "invalid connection option", "invalid sslmode", "permission denied")


class PostgresSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    dsn: Annotated[Secret, msgspec.Meta(
        title="Connection string", description="libpq connection URI or key/value string, with the password.",
        examples=["postgresql://kaon:secret@db.internal:5432/analytics"], min_length=1)]
    schema: Annotated[str, msgspec.Meta(
        title="Schema", description="Schema the tables go to (created if missing and allowed).",
        examples=["kaon"], pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "kaon"
    mode: Annotated[Literal["events_table", "table_per_event_type"], msgspec.Meta(
        title="Tables", description="`events_table`: every event in one `events` table. "
                                    "`table_per_event_type`: one table per event type (`custom_event`, "
                                    "`screen_view`, `commerce_event`, ...).")] = "events_table"
    max_columns: Annotated[int, msgspec.Meta(
        title="Columns per table", description="At most this many columns per table, the standard ones "
                                               "included (PostgreSQL's own limit is 1600). An event that would "
                                               "add a column beyond it is aborted (a dead letter) with an error "
                                               "naming the column; the other events of its batch are written.",
        ge=32, le=1600)] = DEFAULT_MAX_COLUMNS


def classify(error: psycopg.Error) -> SendResult:
    state = error.sqlstate or ""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if state:
        permanent = (state[:2] in ABORT_CLASSES or state in ABORT_CODES) and state != "23505"
    else:
        permanent = isinstance(error, psycopg.ProgrammingError) or any(
            m in str(error).lower() for m in ABORT_MESSAGES)
    return SendResult(Outcome.ABORT if permanent else Outcome.RETRY, f"{type(error).__name__}: {message}")


class _Connections:
    """A few idle connections per DSN, shared by the outputs' delivery threads."""

    def __init__(self) -> None:
        self._idle: dict[str, list[psycopg.Connection[Any]]] = {}
        self._lock = threading.Lock()

    def take(self, dsn: str) -> tuple[psycopg.Connection[Any], bool]:
        """A connection and whether it was idle here (then a server restart may have cut it)."""
        with self._lock:
            idle = self._idle.get(dsn)
            if idle:
                return idle.pop(), True
        return psycopg.connect(pinned(dsn), connect_timeout=CONNECT_TIMEOUT_S, application_name="kaon"), False

    def give(self, dsn: str, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            idle = self._idle.setdefault(dsn, [])
            if len(idle) < IDLE_PER_DSN and not conn.closed:
                idle.append(conn)
                return
        conn.close()


class Postgres(Destination):
    name = "postgres"
    title = "PostgreSQL"
    category = "Warehouse"
    description = "Inserts events into PostgreSQL tables, one column per event attribute, adding columns " \
                  "as new attributes appear."
    settings_type = PostgresSettings
    policy = SendPolicy(batch_size=1000, max_concurrency=1, timeout_s=60.0)
    audience = True
    identity_types = (*USER_IDENTITY_TYPES, *DEVICE_IDENTITY_TYPES)
    docs_notes = (
        "Connects with the `dsn` (psycopg 3) and writes each delivered batch in one transaction. Tables: "
        "`<schema>.events`, or one table per event type. Columns: source_message_id (primary key), event_id, "
        "event_type, event_name, timestamp (timestamptz), timestamp_ms, mpid (text), workspace_id, input_id, "
        "environment, identities, user_attributes, attributes, data (jsonb), then one column per event "
        "attribute: lower snake case of [a-z0-9_], at most 63 characters, prefixed `attr_` when it would "
        "clash with a standard column. Schema evolution: a new attribute adds a column (`ALTER TABLE ... ADD "
        "COLUMN IF NOT EXISTS`) typed from its first non-null value: text, double precision (numbers), "
        "boolean, or jsonb (lists, objects); columns are never retyped. A value of another type goes into "
        "the column as text when the column is text, as JSON when it is jsonb, and otherwise, as text, "
        "into the sibling column `<column>_str`. Idempotent: `INSERT ... ON CONFLICT (source_message_id) DO "
        "NOTHING`, so re-delivery writes no duplicates. Errors: the server unreachable, restarting, read-only "
        "or out of resources is retried; too many columns (over `max_columns`, default 400, or PostgreSQL's "
        "own 1600) aborts the events that would need the new column, with an error naming it; bad "
        "credentials, an unknown database and missing rights (e.g. to create the schema, a table or a "
        "column) abort; a batch refused for its data is retried event by "
        "event so that only the offending events abort. Rights: CREATE on the database (unless the schema "
        "exists) and on the schema, to create tables, and ownership of them to add columns; with tables made "
        "beforehand, USAGE on the schema and SELECT and INSERT on the tables suffice for known attributes."
    )
    mapping_notes = (
        ("audience member added / removed (sync)", "`audience_memberships` (audience_id, audience_name, mpid, "
                                                  "identities jsonb, added_at, updated_at; one row per current "
                                                  "member: upserted on add, deleted on remove) and "
                                                  "`audience_membership_changes` (source_message_id, audience_id, "
                                                  "audience_name, mpid, action, cause, changed_at, identities; "
                                                  "each change once), in the batch's transaction"),
        ("Every event type", "One row in `events` (or in the table named for its event type)"),
        ("custom_event", "event_name = the custom event name; each custom attribute also gets its own column"),
        ("screen_view", "event_name = the screen name; screen attributes as columns"),
        ("commerce_event", "event_name = the event name or product action; products and totals in data"),
        ("user_attribute_change", "event_name empty; the change in data, the new profile in user_attributes"),
    )

    def __init__(self) -> None:
        self._connections = _Connections()

    def check_outbound(self, settings: Any) -> None:
        assert isinstance(settings, PostgresSettings)
        check(settings.dsn)

    def deliver(self, events: Sequence[DeliveryEvent], settings: Any) -> list[SendResult]:
        assert isinstance(settings, PostgresSettings)
        groups: dict[str, list[DeliveryEvent]] = {}
        memberships: list[tuple[str, str | None, Membership]] = []
        for item in events:
            change = membership_of(item)
            if change is not None:  # a sync audience connection's change: the audience tables
                cause = (item.event.data.custom_attributes or {}).get("cause")
                memberships.append((item.source_message_id, None if cause is None else str(cause), change))
                continue
            table = "events" if settings.mode == "events_table" else table_name(item.event_type)
            groups.setdefault(table, []).append(item)
        try:
            self._write(groups, settings, memberships)
        except TooManyColumns as error:
            if len(events) == 1:
                return [SendResult(Outcome.ABORT, f"TooManyColumns: {error}")]
            return [result for item in events for result in self.deliver([item], settings)]
        except (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.TooManyColumns) as error:
            if len(events) == 1:
                return [classify(error)]
            # One event's data must not hold back the others: find it, one event per transaction.
            return [result for item in events for result in self.deliver([item], settings)]
        except psycopg.Error as error:
            return [classify(error)] * len(events)
        except outbound.Refused as error:
            return [SendResult(Outcome.ABORT, f"request could not be sent: {error}")] * len(events)
        return [SendResult(Outcome.DELIVERED)] * len(events)

    def _write(self, groups: dict[str, list[DeliveryEvent]], settings: PostgresSettings,
               memberships: Sequence[tuple[str, str | None, Membership]] = ()) -> None:
        conn, reused = self._connections.take(settings.dsn)
        while True:
            try:
                with conn.transaction():
                    self._insert(conn, groups, settings.schema, settings.max_columns)
                    if memberships:
                        write_memberships(conn, settings.schema, memberships)
            except psycopg.OperationalError:
                conn.close()
                if not reused:
                    raise
                conn, reused = self._connections.take(settings.dsn)  # the idle one was cut: try a fresh one
                continue
            except BaseException:
                conn.close()
                raise
            self._connections.give(settings.dsn, conn)
            return

    @staticmethod
    def _insert(conn: psycopg.Connection[Any], groups: dict[str, list[DeliveryEvent]], schema: str,
                max_columns: int) -> None:
        ensure_schema(conn, schema)
        columns = existing_columns(conn, schema, list(groups))
        for table, items in groups.items():
            if table not in columns:
                create_table(conn, schema, table)
                columns[table] = existing_columns(conn, schema, [table]).get(table, {})
            plan = TablePlan(columns[table], max_columns)
            for item in items:
                plan.add(item)
            apply(conn, schema, table, plan)


destination = Postgres()
