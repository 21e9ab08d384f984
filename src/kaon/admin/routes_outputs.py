"""Outputs, the destination directory and connections: `/api/v1/outputs`, `/directory`, `/connections`."""

from typing import Annotated, Any

import httpx
import msgspec
from fastapi import APIRouter, Body, HTTPException, Query
from pydantic import BaseModel, Field

from kaon.admin.deps import Db, Workspace
from kaon.clock import now_ms
from kaon.delivery.outcomes import per_event
from kaon.delivery.queue import dead_letter_pending
from kaon.delivery.send import send
from kaon.destinations.base import redact
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.registry import destination, destinations
from kaon.errors import Conflict, NotFound
from kaon.model.events import CustomEvent, CustomEventData
from kaon.store.outputs import Connection, Output, OutputStore
from kaon.store.tx import transaction

router = APIRouter(tags=["outputs"])


class OutputIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    destination: str = Field(min_length=1, max_length=100)
    settings: dict[str, Any] = {}
    enabled: bool = True


class OutputPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    settings: dict[str, Any] | None = None
    enabled: bool | None = None


class ConnectionIn(BaseModel):
    input_id: str = Field(min_length=1, max_length=100)
    output_id: str = Field(min_length=1, max_length=100)
    enabled: bool = True
    filters: dict[str, Any] | None = None
    forwarding: list[dict[str, Any]] | None = None
    logged_in_only: bool | None = None
    consent: dict[str, Any] | None = None
    sampling_percent: float | None = None
    transformations: list[dict[str, Any]] | None = None

    def rules(self) -> dict[str, Any]:
        return self.model_dump(exclude={"input_id", "output_id", "enabled"}, exclude_none=True)


class ConnectionPatch(ConnectionIn):
    input_id: str = ""
    output_id: str = ""
    enabled: bool | None = None  # type: ignore[assignment]


def _bad(code: str, error: Exception) -> HTTPException:
    status = 404 if isinstance(error, NotFound) else 409 if isinstance(error, Conflict) else 400
    return HTTPException(status, detail={"code": "NOT_FOUND" if status == 404 else code, "message": str(error)})


def _output(output: Output) -> dict[str, Any]:
    shown: dict[str, Any] = msgspec.to_builtins(output)
    shown["settings"] = redact(destination(output.destination), output.settings)
    return shown


def _connection(connection: Connection) -> dict[str, Any]:
    shown: dict[str, Any] = msgspec.to_builtins(connection)
    shown.update(shown.pop("rules"))
    return shown


@router.get("/directory")
def directory(q: Annotated[str | None, Query(max_length=100)] = None,
              category: Annotated[str | None, Query(max_length=100)] = None) -> dict[str, Any]:
    out = []
    for name, found in destinations().items():
        text = f"{name} {found.title} {found.description}".lower()
        if (q and q.lower() not in text) or (category and category.lower() != found.category.lower()):
            continue
        out.append({"name": name, "title": found.title, "category": found.category,
                    "description": found.description, "settings_schema": found.settings_schema()})
    return {"destinations": out}


@router.get("/outputs")
def list_outputs(db: Db, workspace_id: Workspace) -> dict[str, Any]:
    return {"outputs": [_output(o) for o in OutputStore(db.conn(), workspace_id).outputs()]}


@router.post("/outputs", status_code=201)
def create_output(body: OutputIn, db: Db, workspace_id: Workspace) -> dict[str, Any]:
    try:
        return _output(OutputStore(db.conn(), workspace_id).create_output(body.name, body.destination, body.settings,
                                                                           body.enabled))
    except NotFound as error:
        raise HTTPException(400, detail={"code": "UNKNOWN_DESTINATION", "message": f"{error} - at `destination`"}) \
            from None
    except (msgspec.ValidationError, ValueError, Conflict) as error:
        raise _bad("INVALID_SETTINGS", error) from None


@router.get("/outputs/{output_id}")
def get_output(output_id: str, db: Db, workspace_id: Workspace) -> dict[str, Any]:
    try:
        return _output(OutputStore(db.conn(), workspace_id).output(output_id))
    except NotFound as error:
        raise _bad("NOT_FOUND", error) from None


@router.patch("/outputs/{output_id}")
def patch_output(output_id: str, body: OutputPatch, db: Db, workspace_id: Workspace) -> dict[str, Any]:
    try:
        return _output(OutputStore(db.conn(), workspace_id).update_output(
            output_id, name=body.name, settings=body.settings, enabled=body.enabled))
    except (NotFound, Conflict, msgspec.ValidationError, ValueError) as error:
        raise _bad("INVALID_SETTINGS", error) from None


@router.delete("/outputs/{output_id}")
def delete_output(output_id: str, db: Db, workspace_id: Workspace, force: bool = False) -> dict[str, Any]:
    """Refused while jobs are queued unless `force=true`, which dead-letters them (visibly) first."""
    conn = db.conn()
    store = OutputStore(conn, workspace_id)
    try:
        store.output(output_id)
    except NotFound as error:
        raise _bad("NOT_FOUND", error) from None
    queued = conn.execute("SELECT COUNT(*) FROM delivery_pending WHERE output_id = ?", (output_id,)).fetchone()[0]
    if queued and not force:
        raise HTTPException(409, detail={"code": "JOBS_QUEUED", "message": f"{queued} jobs are queued for this "
                                         "output; repeat with ?force=true to dead-letter them and delete it"})
    with transaction(conn):
        dead = dead_letter_pending(conn, output_id, "output deleted", now_ms())
    store.delete_output(output_id)
    return {"deleted": output_id, "dead_lettered": dead}


@router.post("/outputs/{output_id}/test")
def test_output(output_id: str, db: Db, workspace_id: Workspace) -> dict[str, Any]:
    """Send one sample event through the destination and report the vendor's answer."""
    try:
        output = OutputStore(db.conn(), workspace_id).output(output_id)
    except NotFound as error:
        raise _bad("NOT_FOUND", error) from None
    found = destination(output.destination)
    sample = DeliveryEvent(
        event_id=0, workspace_id=workspace_id, input_id="test", mpid=1, source_message_id=f"kaon-test-{now_ms()}",
        timestamp_ms=now_ms(), user_identities={"customer_id": "kaon-test-user", "email": "test@example.com"},
        event=CustomEvent(data=CustomEventData(event_name="Kaon Test Event", custom_event_type="other",
                                               custom_attributes={"source": "kaon"})))
    requests = found.transform([sample], found.parse_settings(output.settings))
    with httpx.Client() as client:
        results = [send(client, found, r, found.policy.timeout_s) for r in requests]
    result = per_event(1, requests, results)[0]
    return {"outcome": result.outcome.value, "status": result.status, "message": result.message,
            "response": result.response_body[:2000], "requests": len(requests)}


@router.get("/connections")
def list_connections(db: Db, workspace_id: Workspace) -> dict[str, Any]:
    return {"connections": [_connection(c) for c in OutputStore(db.conn(), workspace_id).connections()]}


@router.post("/connections", status_code=201)
def create_connection(body: ConnectionIn, db: Db, workspace_id: Workspace) -> dict[str, Any]:
    try:
        return _connection(OutputStore(db.conn(), workspace_id).create_connection(
            body.input_id, body.output_id, body.enabled, body.rules()))
    except (NotFound, msgspec.ValidationError, ValueError) as error:
        raise _bad("INVALID_RULES", error) from None


@router.get("/connections/{connection_id}")
def get_connection(connection_id: str, db: Db, workspace_id: Workspace) -> dict[str, Any]:
    try:
        return _connection(OutputStore(db.conn(), workspace_id).connection(connection_id))
    except NotFound as error:
        raise _bad("NOT_FOUND", error) from None


@router.patch("/connections/{connection_id}")
def patch_connection(connection_id: str, db: Db, workspace_id: Workspace,
                     body: Annotated[ConnectionPatch, Body()]) -> dict[str, Any]:
    rules = body.rules()
    try:
        return _connection(OutputStore(db.conn(), workspace_id).update_connection(
            connection_id, enabled=body.enabled, rules=rules or None))
    except (NotFound, msgspec.ValidationError, ValueError) as error:
        raise _bad("INVALID_RULES", error) from None


@router.delete("/connections/{connection_id}")
def delete_connection(connection_id: str, db: Db, workspace_id: Workspace) -> dict[str, Any]:
    try:
        OutputStore(db.conn(), workspace_id).delete_connection(connection_id)
    except NotFound as error:
        raise _bad("NOT_FOUND", error) from None
    return {"deleted": connection_id}
