"""Outputs, the destination directory and connections: `/api/v1/outputs`, `/directory`, `/connections`."""

from typing import Annotated

import httpx
import msgspec
from fastapi import APIRouter, Body, HTTPException, Query

from kaon import outbound
from kaon.admin.deps import Db, Workspace
from kaon.admin.errors import CONFLICT
from kaon.admin.paging import Paging
from kaon.admin.schemas_delivery import (
    Connection,
    ConnectionIn,
    ConnectionPatch,
    Connections,
    Deleted,
    DestinationInfo,
    Directory,
    Output,
    OutputDeleted,
    OutputIn,
    OutputPatch,
    Outputs,
    OutputTestResult,
)
from kaon.clock import now_ms
from kaon.delivery import summary
from kaon.delivery.outcomes import per_event
from kaon.delivery.send import send
from kaon.delivery.store import dead_letter_pending, queued_count
from kaon.destinations.base import redact
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.registry import destination, destinations
from kaon.errors import Conflict, NotFound
from kaon.model.events import CustomEvent, CustomEventData
from kaon.store import outputs as stored
from kaon.store.output_secrets import SecretsRequired
from kaon.store.outputs import OutputStore
from kaon.store.tx import transaction

router = APIRouter(tags=["outputs"])
InputFilter = Annotated[str | None, Query(min_length=1, max_length=100)]


def _bad(code: str, error: Exception) -> HTTPException:
    status = 404 if isinstance(error, NotFound) else 409 if isinstance(error, Conflict) else 400
    return HTTPException(status, detail={"code": "NOT_FOUND" if status == 404 else code, "message": str(error)})


def _refused(error: outbound.Refused) -> HTTPException:
    return HTTPException(400, detail={"code": outbound.CODE, "message": str(error)})


def _output(output: stored.Output) -> Output:
    return Output(id=output.id, workspace_id=output.workspace_id, name=output.name, destination=output.destination,
                  settings=redact(destination(output.destination), output.settings), enabled=output.enabled,
                  created_unixtime_ms=output.created_ms, updated_unixtime_ms=output.updated_ms)


def _connection(connection: stored.Connection) -> Connection:
    return Connection(id=connection.id, workspace_id=connection.workspace_id, input_id=connection.input_id,
                      output_id=connection.output_id, enabled=connection.enabled,
                      created_unixtime_ms=connection.created_ms, updated_unixtime_ms=connection.updated_ms,
                      **connection.rules)


@router.get("/directory", response_model=Directory)
def directory(page: Paging, q: Annotated[str | None, Query(max_length=100)] = None,
              category: Annotated[str | None, Query(max_length=100)] = None) -> Directory:
    """The installed destinations by name (built-ins and plugins), with their settings' JSON Schema."""
    after = page.after(str)
    found = []
    for name, item in sorted(destinations().items()):
        text = f"{name} {item.title} {item.description}".lower()
        if (q and q.lower() not in text) or (category and category.lower() != item.category.lower()):
            continue
        if after is None or name > after[0]:
            found.append(DestinationInfo(name=name, title=item.title, category=item.category,
                                         description=item.description, settings_schema=item.settings_schema()))
        if len(found) > page.limit:
            break
    shown, next_cursor = page.take(found, lambda info: (info.name,))
    return Directory(destinations=shown, next_cursor=next_cursor)


@router.get("/outputs", response_model=Outputs)
def list_outputs(db: Db, workspace_id: Workspace, page: Paging) -> Outputs:
    """Oldest first; settings with secrets redacted."""
    rows = OutputStore(db.conn(), workspace_id).outputs_page(page.limit + 1, page.after(int, str))
    shown, next_cursor = page.take(rows, lambda output: (output.created_ms, output.id))
    return Outputs(outputs=[_output(o) for o in shown], next_cursor=next_cursor)


@router.post("/outputs", status_code=201, response_model=Output, responses=CONFLICT)
def create_output(body: OutputIn, db: Db, workspace_id: Workspace) -> Output:
    try:
        return _output(OutputStore(db.conn(), workspace_id).create_output(body.name, body.destination, body.settings,
                                                                           body.enabled))
    except NotFound as error:
        raise HTTPException(400, detail={"code": "UNKNOWN_DESTINATION", "message": f"{error} - at `destination`"}) \
            from None
    except outbound.Refused as error:
        raise _refused(error) from None
    except (msgspec.ValidationError, ValueError, Conflict) as error:
        raise _bad("INVALID_SETTINGS", error) from None


@router.get("/outputs/{output_id}", response_model=Output)
def get_output(output_id: str, db: Db, workspace_id: Workspace) -> Output:
    try:
        return _output(OutputStore(db.conn(), workspace_id).output(output_id))
    except NotFound as error:
        raise _bad("NOT_FOUND", error) from None


@router.patch("/outputs/{output_id}", response_model=Output, responses=CONFLICT)
def patch_output(output_id: str, body: OutputPatch, db: Db, workspace_id: Workspace) -> Output:
    try:
        return _output(OutputStore(db.conn(), workspace_id).update_output(
            output_id, name=body.name, settings=body.settings, enabled=body.enabled))
    except outbound.Refused as error:
        raise _refused(error) from None
    except SecretsRequired as error:
        raise _bad(SecretsRequired.code, error) from None
    except (NotFound, Conflict, msgspec.ValidationError, ValueError) as error:
        raise _bad("INVALID_SETTINGS", error) from None


@router.delete("/outputs/{output_id}", response_model=OutputDeleted, responses=CONFLICT)
def delete_output(output_id: str, db: Db, workspace_id: Workspace, force: bool = False) -> OutputDeleted:
    """Refused while jobs are queued unless `force=true`, which dead-letters them (visibly) first."""
    conn = db.conn()
    store = OutputStore(conn, workspace_id)
    try:
        store.output(output_id)
    except NotFound as error:
        raise _bad("NOT_FOUND", error) from None
    queued = queued_count(conn, output_id)
    if queued and not force:
        raise HTTPException(409, detail={"code": "JOBS_QUEUED", "message": f"{queued} jobs are queued for this "
                                         "output; repeat with ?force=true to dead-letter them and delete it"})
    with transaction(conn):
        dead = dead_letter_pending(conn, output_id, "output deleted", now_ms())
    store.delete_output(output_id)
    return OutputDeleted(deleted=output_id, dead_lettered=dead)


@router.post("/outputs/{output_id}/test", response_model=OutputTestResult)
def test_output(output_id: str, db: Db, workspace_id: Workspace) -> OutputTestResult:
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
    return OutputTestResult(outcome=result.outcome.value, classification=summary.classification(result),
                            status=result.status, message=summary.excerpt(result.message) or None,
                            response=summary.excerpt(result.response_body), requests=len(requests))


@router.get("/connections", response_model=Connections)
def list_connections(db: Db, workspace_id: Workspace, page: Paging, input_id: InputFilter = None,
                     output_id: InputFilter = None) -> Connections:
    """Oldest first; of one input and/or output when given."""
    rows = OutputStore(db.conn(), workspace_id).connections_page(page.limit + 1, page.after(int, str),
                                                                 input_id=input_id, output_id=output_id)
    shown, next_cursor = page.take(rows, lambda connection: (connection.created_ms, connection.id))
    return Connections(connections=[_connection(c) for c in shown], next_cursor=next_cursor)


@router.post("/connections", status_code=201, response_model=Connection)
def create_connection(body: ConnectionIn, db: Db, workspace_id: Workspace) -> Connection:
    try:
        return _connection(OutputStore(db.conn(), workspace_id).create_connection(
            body.input_id, body.output_id, body.enabled, body.rules()))
    except (NotFound, msgspec.ValidationError, ValueError) as error:
        raise _bad("INVALID_RULES", error) from None


@router.get("/connections/{connection_id}", response_model=Connection)
def get_connection(connection_id: str, db: Db, workspace_id: Workspace) -> Connection:
    try:
        return _connection(OutputStore(db.conn(), workspace_id).connection(connection_id))
    except NotFound as error:
        raise _bad("NOT_FOUND", error) from None


@router.patch("/connections/{connection_id}", response_model=Connection)
def patch_connection(connection_id: str, db: Db, workspace_id: Workspace,
                     body: Annotated[ConnectionPatch, Body()]) -> Connection:
    rules = body.rules()
    try:
        return _connection(OutputStore(db.conn(), workspace_id).update_connection(
            connection_id, enabled=body.enabled, rules=rules or None))
    except (NotFound, msgspec.ValidationError, ValueError) as error:
        raise _bad("INVALID_RULES", error) from None


@router.delete("/connections/{connection_id}", response_model=Deleted)
def delete_connection(connection_id: str, db: Db, workspace_id: Workspace) -> Deleted:
    try:
        OutputStore(db.conn(), workspace_id).delete_connection(connection_id)
    except NotFound as error:
        raise _bad("NOT_FOUND", error) from None
    return Deleted(deleted=connection_id)
