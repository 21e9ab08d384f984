"""Data plans (owner of `plans`, `plan_versions`, `plan_report`, `input_default_plans`): plans, their versions
(document + blocking), activation, inputs' default plans, the plan report."""

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import msgspec

from kaon.clock import now_ms
from kaon.errors import Conflict, NotFound
from kaon.governance.plans_document import Blocking, PlanIn, VersionIn
from kaon.store.config import ConfigStore
from kaon.store.sql import Conn, marks, rows_limit
from kaon.store.tx import transaction

_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()
_blocking = msgspec.json.Decoder(Blocking)

# Plan report counter key: (workspace_id, plan_id, version, data_point, violation, hour_ms)
ReportKey = tuple[str, str, int, str, str, int]


class ActiveVersion(msgspec.Struct, frozen=True):
    """The version a batch is validated against; (plan, version, updated_ms) names its compiled form."""

    plan_id: str
    version: int
    updated_ms: int
    document: bytes
    blocking: Blocking


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def environments_for(batch_environment: str) -> tuple[str, ...]:
    """Activations that apply to a batch: a development batch also follows a version active in production."""
    return ("development", "production") if batch_environment == "development" else ("production",)


class PlanStore:
    def __init__(self, conn: Conn, workspace_id: str) -> None:
        self.conn = conn
        self.ws = workspace_id

    # Reading
    def plan_ids(self, limit: int = -1, after: str | None = None) -> list[str]:
        """In id order; `after` is the last id shown (limit -1: all)."""
        return [r[0] for r in self.conn.execute(
            "SELECT plan_id FROM plans WHERE workspace_id = ? AND plan_id > ? ORDER BY plan_id LIMIT ?",
            (self.ws, "" if after is None else after, rows_limit(limit)))]

    def plan(self, plan_id: str) -> dict[str, Any]:
        """The plan document as mParticle shows it, with every version."""
        row = self.conn.execute("SELECT name, description, created_ms, updated_ms FROM plans"
                                " WHERE workspace_id = ? AND plan_id = ?", (self.ws, plan_id)).fetchone()
        if row is None:
            raise NotFound(f"data plan {plan_id!r} not found")
        versions = [
            {"version": v, "version_description": d, "data_plan_id": plan_id, "activated_environment": env,
             "version_document": _decode.decode(doc), "blocking": msgspec.to_builtins(_blocking.decode(blk)),
             "created_on": _iso(c), "last_modified_on": _iso(u)}
            for v, d, env, doc, blk, c, u in self.conn.execute(
                "SELECT version, description, activated_environment, document, blocking, created_ms, updated_ms"
                " FROM plan_versions WHERE workspace_id = ? AND plan_id = ? ORDER BY version", (self.ws, plan_id))
        ]
        return {"data_plan_id": plan_id, "data_plan_name": row[0], "data_plan_description": row[1],
                "created_on": _iso(row[2]), "last_modified_on": _iso(row[3]), "data_plan_versions": versions}

    def active(self, plan_id: str, version: int | None, environment: str) -> ActiveVersion | None:
        """The version given, or the latest activated for the environment; None when there is none."""
        columns = "version, updated_ms, document, blocking"
        if version is not None:
            row = self.conn.execute(f"SELECT {columns} FROM plan_versions WHERE workspace_id = ? AND plan_id = ?"
                                    " AND version = ?", (self.ws, plan_id, version)).fetchone()
        else:
            envs = environments_for(environment)
            row = self.conn.execute(
                f"SELECT {columns} FROM plan_versions WHERE workspace_id = ? AND plan_id = ?"
                f" AND activated_environment IN ({marks(envs)}) ORDER BY version DESC LIMIT 1",
                (self.ws, plan_id, *envs)).fetchone()
        if row is None:
            return None
        return ActiveVersion(plan_id, row[0], row[1], row[2].encode() if isinstance(row[2], str) else row[2],
                             _blocking.decode(row[3]))

    # Writing: each call is one transaction
    def _insert_version(self, plan_id: str, version: VersionIn, now: int) -> None:
        self.conn.execute(
            "INSERT INTO plan_versions (workspace_id, plan_id, version, description, activated_environment, document,"
            " blocking, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.ws, plan_id, version.version, version.version_description, version.activated_environment,
             _json.encode(version.version_document).decode(), _json.encode(version.blocking).decode(), now, now))

    def create(self, plan: PlanIn) -> dict[str, Any]:
        now = now_ms()
        with transaction(self.conn):
            exists = self.conn.execute("SELECT 1 FROM plans WHERE workspace_id = ? AND plan_id = ?",
                                       (self.ws, plan.data_plan_id)).fetchone()
            if exists:
                raise Conflict(f"data plan {plan.data_plan_id!r} already exists; add a version instead")
            self.conn.execute("INSERT INTO plans (workspace_id, plan_id, name, description, created_ms, updated_ms)"
                              " VALUES (?, ?, ?, ?, ?, ?)", (self.ws, plan.data_plan_id, plan.data_plan_name,
                                                             plan.data_plan_description, now, now))
            for version in plan.versions:
                self._insert_version(plan.data_plan_id, version, now)
        return self.plan(plan.data_plan_id)

    def next_version(self, plan_id: str) -> int:
        row = self.conn.execute("SELECT MAX(version) FROM plan_versions WHERE workspace_id = ? AND plan_id = ?",
                                (self.ws, plan_id)).fetchone()
        return int(row[0] or 0) + 1

    def add_version(self, plan_id: str, version: VersionIn) -> dict[str, Any]:
        now = now_ms()
        with transaction(self.conn):
            self.plan_or_404(plan_id)
            if self.conn.execute("SELECT 1 FROM plan_versions WHERE workspace_id = ? AND plan_id = ? AND version = ?",
                                 (self.ws, plan_id, version.version)).fetchone():
                raise Conflict(f"version {version.version} of data plan {plan_id!r} already exists")
            self._insert_version(plan_id, version, now)
            self.conn.execute("UPDATE plans SET updated_ms = ? WHERE workspace_id = ? AND plan_id = ?",
                              (now, self.ws, plan_id))
        return self.plan(plan_id)

    def update_version(self, plan_id: str, version: int, *, environment: str | None,
                       blocking: Blocking | None) -> dict[str, Any]:
        """Activate (or deactivate) a version and/or change its blocking settings, in one transaction."""
        now = now_ms()
        with transaction(self.conn):
            self.plan_or_404(plan_id)
            cursor = self.conn.execute(
                "UPDATE plan_versions SET activated_environment = COALESCE(?, activated_environment),"
                " blocking = COALESCE(?, blocking), updated_ms = ? WHERE workspace_id = ? AND plan_id = ?"
                " AND version = ?",
                (environment, None if blocking is None else _json.encode(blocking).decode(), now, self.ws,
                 plan_id, version))
            if cursor.rowcount == 0:
                raise NotFound(f"version {version} of data plan {plan_id!r} not found")
            self.conn.execute("UPDATE plans SET updated_ms = ? WHERE workspace_id = ? AND plan_id = ?",
                              (now, self.ws, plan_id))
        return self.plan(plan_id)

    def plan_or_404(self, plan_id: str) -> None:
        if not self.conn.execute("SELECT 1 FROM plans WHERE workspace_id = ? AND plan_id = ?",
                                 (self.ws, plan_id)).fetchone():
            raise NotFound(f"data plan {plan_id!r} not found")

    # Default plans: applied to an input's batches that name no plan (kaon.pipeline.plans)
    def default_plans(self) -> dict[str, tuple[str, int | None]]:
        """input id → (plan id, version or None for the latest active one)."""
        return {str(i): (str(p), None if v is None else int(v)) for i, p, v in self.conn.execute(
            "SELECT input_id, plan_id, plan_version FROM input_default_plans WHERE workspace_id = ?",
            (self.ws,))}

    def set_default_plan(self, input_id: str, plan_id: str | None, version: int | None) -> None:
        """Name (or with None, clear) the input's default plan; the input, plan (and version) must exist."""
        config = ConfigStore(self.conn)
        with transaction(self.conn):
            config.input(input_id, self.ws)
            if plan_id is None:
                self.conn.execute("DELETE FROM input_default_plans WHERE input_id = ?", (input_id,))
            else:
                if version is None:
                    known = self.conn.execute("SELECT 1 FROM plans WHERE workspace_id = ? AND plan_id = ?",
                                              (self.ws, plan_id)).fetchone()
                else:
                    known = self.conn.execute(
                        "SELECT 1 FROM plan_versions WHERE workspace_id = ? AND plan_id = ? AND version = ?",
                        (self.ws, plan_id, version)).fetchone()
                if known is None:
                    raise NotFound(f"data plan {plan_id!r}" + ("" if version is None else f" version {version}")
                                   + " not found")
                self.conn.execute(
                    "INSERT INTO input_default_plans (input_id, workspace_id, plan_id, plan_version)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (input_id) DO UPDATE SET plan_id = excluded.plan_id,"
                    " plan_version = excluded.plan_version", (input_id, self.ws, plan_id, version))
            config.bump_version()

    # The plan report
    def report(self, plan_id: str, since_ms: int, until_ms: int | None = None, *,
               after: tuple[int, int, str, str] | None = None, limit: int = -1) -> list[dict[str, Any]]:
        """Violation counts per hour in [since, until), oldest first; `after` is the last (hour, version, data
        point, violation) shown (limit -1: all)."""
        self.plan_or_404(plan_id)
        where, args = "", list[object]()
        if until_ms is not None:
            where += " AND hour_ms < ?"
            args.append(until_ms)
        if after is not None:
            where += " AND (hour_ms, version, data_point, violation) > (?, ?, ?, ?)"
            args.extend(after)
        rows = self.conn.execute(
            "SELECT hour_ms, version, data_point, violation, count FROM plan_report WHERE workspace_id = ?"
            f" AND plan_id = ? AND hour_ms >= ?{where} ORDER BY hour_ms, version, data_point, violation LIMIT ?",
            (self.ws, plan_id, since_ms, *args, rows_limit(limit)))
        return [{"hour_start_unixtime_ms": h, "version": v, "data_point": d, "violation": t, "count": c}
                for h, v, d, t, c in rows]


def add_report(conn: Conn, counts: Counter[ReportKey]) -> None:
    conn.executemany(
        "INSERT INTO plan_report (workspace_id, plan_id, version, data_point, violation, hour_ms, count)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, plan_id, hour_ms, version, data_point, violation)"
        " DO UPDATE SET count = plan_report.count + excluded.count",
        [(*key, n) for key, n in counts.items() if n])
