"""Outputs (configured destinations) and connections (input → output with rules) in the config store."""

import logging
import uuid
from typing import Any

import msgspec

from kaon.clock import now_ms
from kaon.connections.rules import parse_rules
from kaon.destinations.registry import destination
from kaon.errors import Conflict, NotFound
from kaon.governance.consent import check_rule_purposes
from kaon.store import output_secrets as secrets
from kaon.store.config import ConfigStore
from kaon.store.sql import Conn
from kaon.store.tx import transaction

_log = logging.getLogger("kaon.store")
_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()


class Output(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    workspace_id: str
    name: str
    destination: str
    settings: dict[str, Any]
    enabled: bool
    created_ms: int
    updated_ms: int


class Connection(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    workspace_id: str
    input_id: str
    output_id: str
    enabled: bool
    rules: dict[str, Any]
    created_ms: int
    updated_ms: int


def validate_settings(name: str, settings: dict[str, Any]) -> None:
    """Raises NotFound for an unknown destination, ValueError/msgspec.ValidationError naming the bad field,
    outbound.Refused when they point at an address the outbound policy refuses."""
    found = destination(name)
    found.check_outbound(found.parse_settings(settings))


_OUT = "id, workspace_id, name, destination, settings, enabled, created_ms, updated_ms"
_CON = "id, workspace_id, input_id, output_id, enabled, rules, created_ms, updated_ms"


def _opened(conn: Conn, name: str, stored: str | bytes, strict: bool = False) -> dict[str, Any]:
    """Stored settings with their secrets unsealed (as stored when the destination is not installed, or, unless
    `strict`, when the key cannot open them: listing and routing must not fail for one such output)."""
    settings: dict[str, Any] = _decode.decode(stored)
    try:
        return secrets.unseal(destination(name), settings, secrets.sealer_for(conn))
    except NotFound:
        return settings
    except ValueError:
        if strict:
            raise
        return settings


def _stored(conn: Conn, name: str, settings: dict[str, Any]) -> str:
    return _json.encode(secrets.seal(destination(name), settings, secrets.sealer_for(conn))).decode()


def _output(conn: Conn, row: tuple[Any, ...]) -> Output:
    return Output(id=row[0], workspace_id=row[1], name=row[2], destination=row[3],
                  settings=_opened(conn, row[3], row[4]), enabled=bool(row[5]), created_ms=row[6],
                  updated_ms=row[7])


def enabled_outputs(conn: Conn) -> list[tuple[str, str, dict[str, Any], int]]:
    """(id, destination, settings with secrets unsealed, updated_ms) of every enabled output, for delivery."""
    rows = conn.execute("SELECT id, destination, settings, updated_ms FROM outputs WHERE enabled = 1").fetchall()
    out = []
    for output_id, name, stored, updated_ms in rows:
        try:
            out.append((output_id, name, _opened(conn, name, stored, strict=True), updated_ms))
        except ValueError as error:  # this output waits (its jobs stay queued); the others are delivered
            _log.error("output %s cannot start: %s", output_id, error)
    return out


def seal_stored(conn: Conn) -> int:
    """Seal output secrets stored in plaintext by an earlier release; how many outputs were sealed."""
    sealed = 0
    with transaction(conn):
        for output_id, name, stored in conn.execute("SELECT id, destination, settings FROM outputs").fetchall():
            try:
                found = destination(name)
            except NotFound:
                continue
            settings = _decode.decode(stored)
            if not secrets.is_sealed(found, settings):
                conn.execute("UPDATE outputs SET settings = ? WHERE id = ?",
                             (_stored(conn, name, settings), output_id))
                sealed += 1
    return sealed


def _connection(row: tuple[Any, ...]) -> Connection:
    return Connection(id=row[0], workspace_id=row[1], input_id=row[2], output_id=row[3], enabled=bool(row[4]),
                      rules=_decode.decode(row[5]), created_ms=row[6], updated_ms=row[7])


def _after(after: tuple[int, str] | None) -> tuple[str, list[Any]]:
    """The keyset condition past (created_ms, id)."""
    if after is None:
        return "", []
    return " AND (created_ms > ? OR (created_ms = ? AND id > ?))", [after[0], after[0], after[1]]


class OutputStore:
    def __init__(self, conn: Conn, workspace_id: str) -> None:
        self.conn = conn
        self.ws = workspace_id

    # Outputs
    def outputs(self) -> list[Output]:
        rows = self.conn.execute(f"SELECT {_OUT} FROM outputs WHERE workspace_id = ? ORDER BY created_ms, id",
                                 (self.ws,))
        return [_output(self.conn, r) for r in rows]

    def outputs_page(self, limit: int, after: tuple[int, str] | None = None) -> list[Output]:
        """Oldest first; `after` is the (created_ms, id) of the last output shown."""
        where, args = _after(after)
        rows = self.conn.execute(f"SELECT {_OUT} FROM outputs WHERE workspace_id = ?{where}"
                                 " ORDER BY created_ms, id LIMIT ?", (self.ws, *args, limit))
        return [_output(self.conn, r) for r in rows]

    def output(self, output_id: str) -> Output:
        row = self.conn.execute(f"SELECT {_OUT} FROM outputs WHERE workspace_id = ? AND id = ?",
                                (self.ws, output_id)).fetchone()
        if row is None:
            raise NotFound(f"output {output_id} not found")
        return _output(self.conn, row)

    def create_output(self, name: str, destination_name: str, settings: dict[str, Any], enabled: bool) -> Output:
        secrets.refuse_placeholder(destination(destination_name), settings)
        validate_settings(destination_name, settings)
        now = now_ms()
        output = Output(id=f"out_{uuid.uuid4().hex[:16]}", workspace_id=self.ws, name=name,
                        destination=destination_name, settings=settings, enabled=enabled, created_ms=now,
                        updated_ms=now)
        with transaction(self.conn):
            if self.conn.execute("SELECT 1 FROM outputs WHERE workspace_id = ? AND name = ?",
                                 (self.ws, name)).fetchone():
                raise Conflict(f"output {name!r} already exists")
            self.conn.execute(f"INSERT INTO outputs ({_OUT}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                              (output.id, self.ws, name, destination_name,
                               _stored(self.conn, destination_name, settings), int(enabled),
                               now, now))
        return output

    def update_output(self, output_id: str, *, name: str | None = None, settings: dict[str, Any] | None = None,
                      enabled: bool | None = None) -> Output:
        with transaction(self.conn):
            current = self.output(output_id)
            merged = current.settings if settings is None else secrets.merge(
                destination(current.destination), current.settings, settings)
            validate_settings(current.destination, merged)
            # Fix: a rename onto another output's name hit the UNIQUE constraint as a raw IntegrityError.
            if name and name != current.name and self.conn.execute(
                    "SELECT 1 FROM outputs WHERE workspace_id = ? AND name = ?", (self.ws, name)).fetchone():
                raise Conflict(f"output {name!r} already exists")
            self.conn.execute(
                "UPDATE outputs SET name = ?, settings = ?, enabled = ?, updated_ms = ? WHERE id = ?",
                (name or current.name, _stored(self.conn, current.destination, merged),
                 int(current.enabled if enabled is None else enabled),
                 now_ms(), output_id))
        return self.output(output_id)

    def delete_output(self, output_id: str) -> None:
        with transaction(self.conn):
            self.output(output_id)
            self.conn.execute("DELETE FROM connections WHERE workspace_id = ? AND output_id = ?", (self.ws, output_id))
            self.conn.execute("DELETE FROM outputs WHERE id = ?", (output_id,))

    # Connections
    def connections(self, input_id: str | None = None) -> list[Connection]:
        sql = f"SELECT {_CON} FROM connections WHERE workspace_id = ?"
        args: list[Any] = [self.ws]
        if input_id is not None:
            sql += " AND input_id = ?"
            args.append(input_id)
        return [_connection(r) for r in self.conn.execute(sql + " ORDER BY created_ms, id", args)]

    def connections_page(self, limit: int, after: tuple[int, str] | None = None, *, input_id: str | None = None,
                         output_id: str | None = None) -> list[Connection]:
        """Oldest first, of one input and/or output if given; `after` is the (created_ms, id) last shown."""
        where, args = _after(after)
        for column, value in (("input_id", input_id), ("output_id", output_id)):
            if value is not None:
                where += f" AND {column} = ?"
                args.append(value)
        rows = self.conn.execute(f"SELECT {_CON} FROM connections WHERE workspace_id = ?{where}"
                                 " ORDER BY created_ms, id LIMIT ?", (self.ws, *args, limit))
        return [_connection(r) for r in rows]

    def connection(self, connection_id: str) -> Connection:
        row = self.conn.execute(f"SELECT {_CON} FROM connections WHERE workspace_id = ? AND id = ?",
                                (self.ws, connection_id)).fetchone()
        if row is None:
            raise NotFound(f"connection {connection_id} not found")
        return _connection(row)

    def create_connection(self, input_id: str, output_id: str, enabled: bool, rules: dict[str, Any]) -> Connection:
        parse_rules(rules)
        check_rule_purposes(self.conn, self.ws, rules)  # only purposes the workspace lists
        now = now_ms()
        connection = Connection(id=f"con_{uuid.uuid4().hex[:16]}", workspace_id=self.ws, input_id=input_id,
                                output_id=output_id, enabled=enabled, rules=rules, created_ms=now, updated_ms=now)
        with transaction(self.conn):
            ConfigStore(self.conn).input(input_id, self.ws)  # NotFound unless the workspace has it
            self.output(output_id)
            self.conn.execute(f"INSERT INTO connections ({_CON}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                              (connection.id, self.ws, input_id, output_id, int(enabled), _json.encode(rules).decode(),
                               now, now))
        return connection

    def update_connection(self, connection_id: str, *, enabled: bool | None = None,
                          rules: dict[str, Any] | None = None) -> Connection:
        if rules is not None:
            parse_rules(rules)
            check_rule_purposes(self.conn, self.ws, rules)  # only purposes the workspace lists
        with transaction(self.conn):
            current = self.connection(connection_id)
            self.conn.execute("UPDATE connections SET enabled = ?, rules = ?, updated_ms = ? WHERE id = ?",
                              (int(current.enabled if enabled is None else enabled),
                               _json.encode(current.rules if rules is None else rules).decode(), now_ms(),
                               connection_id))
        return self.connection(connection_id)

    def delete_connection(self, connection_id: str) -> None:
        with transaction(self.conn):
            self.connection(connection_id)
            self.conn.execute("DELETE FROM connections WHERE id = ?", (connection_id,))


def connection_rules(conn: Conn, workspace_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(id, rules) of every connection of the workspace, by id (for checks over all rules, such as consent's)."""
    return [(str(i), _decode.decode(raw)) for i, raw in conn.execute(
        "SELECT id, rules FROM connections WHERE workspace_id = ? ORDER BY id", (workspace_id,))]
