"""Data plans and the quarantine: `/api/v1/plans`, `/plans/validate`, `/plans/{id}/report`, `/quarantine`."""

import pathlib
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Body, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from kaon.admin.deps import Db, Reader, Workspace
from kaon.admin.errors import CONFLICT
from kaon.admin.paging import Paging
from kaon.admin.schemas_governance import (
    Plan,
    PlanReport,
    Plans,
    Quarantine,
    QuarantineEntry,
    QuarantineReplay,
    Validation,
    Violation,
)
from kaon.admin.times import Since, Until, point
from kaon.clock import now_ms
from kaon.errors import Conflict, NotFound
from kaon.governance.plans_document import MAX_VERSION, check_plan, check_version, check_version_document
from kaon.governance.plans_store import PlanStore
from kaon.governance.plans_validate import check_batch, compile_plan, results
from kaon.governance.quarantine import QuarantineStore
from kaon.model import mparticle
from kaon.model.errors import PayloadError

router = APIRouter(tags=["plans"])
_encode = msgspec.json.Encoder()
DAY_MS = 86_400_000
# mParticle's limit for a plan document (with its 1000 data points per version, plans_document).
MAX_PLAN_BYTES = 10 * 1024 * 1024


class VersionPatch(BaseModel):
    activated_environment: Literal["none", "development", "production"] | None = None
    blocking: dict[Literal["unplanned_events", "unplanned_event_attributes", "unplanned_user_attributes",
                           "unplanned_user_identities"], bool] | None = None


class ValidateIn(BaseModel):
    document: dict[str, Any]
    batch: dict[str, Any]


class ReplayIn(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] | None = Field(default=None, max_length=10_000)
    all: bool = False


def _invalid(errors: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"errors": errors}, status_code=400)


def _too_large(body: Any) -> JSONResponse | None:
    """400 PLAN_TOO_LARGE when the document, as compact JSON, is over 10 MB (checked before anything else)."""
    size = len(_encode.encode(body))
    if size <= MAX_PLAN_BYTES:
        return None
    return _invalid([{"code": "PLAN_TOO_LARGE", "error_type": "plan_too_large", "schema_pointer": "#",
                      "message": f"a plan document is at most {MAX_PLAN_BYTES} bytes (10 MB); this one is {size}"}])


def _failed(error: NotFound | Conflict) -> HTTPException:
    if isinstance(error, NotFound):
        return HTTPException(404, detail={"code": "NOT_FOUND", "message": str(error)})
    return HTTPException(409, detail={"code": "CONFLICT", "message": str(error)})


@router.post("/plans", status_code=201, response_model=Plan, responses=CONFLICT)
def create_plan(body: Annotated[Any, Body()], db: Db, workspace_id: Workspace) -> dict[str, Any] | JSONResponse:
    """Create a plan from mParticle's plan document (with any versions); refused with pointers when invalid."""
    if (refused := _too_large(body)) is not None:
        return refused
    plan, errors = check_plan(body)
    if plan is None:
        return _invalid(errors)
    try:
        return PlanStore(db.conn(), workspace_id).create(plan)
    except Conflict as error:
        raise _failed(error) from None


@router.get("/plans", response_model=Plans)
def list_plans(db: Db, workspace_id: Workspace, page: Paging) -> Plans:
    """In plan id order, each with every version."""
    store = PlanStore(db.conn(), workspace_id)
    after = page.after(str)
    ids, next_cursor = page.take(store.plan_ids(page.limit + 1, None if after is None else after[0]),
                                 lambda plan_id: (plan_id,))
    return Plans(plans=[Plan(**store.plan(p)) for p in ids], next_cursor=next_cursor)


@router.post("/plans/validate", response_model=Validation)
def validate_plan(body: ValidateIn, _workspace_id: Reader) -> dict[str, Any] | JSONResponse:
    """Validate an Events API batch against a version document: mParticle's validation results."""
    errors = check_version_document(body.document, "#/document")
    if errors:
        return _invalid(errors)
    try:
        batch = mparticle.decode_batch(_encode.encode(body.batch))
    except PayloadError as error:
        raise HTTPException(400, detail={"code": error.code, "message": error.message.replace("`$", "`batch")}) \
            from None
    mparticle.normalize(batch, received_ms=now_ms(), ip=None, channel="server_to_server", seed="validate")
    findings = check_batch(compile_plan(body.document), batch)
    return {"results": results(findings, batch)}


@router.get("/plans/{plan_id}", response_model=Plan)
def get_plan(plan_id: str, db: Db, workspace_id: Workspace) -> dict[str, Any]:
    try:
        return PlanStore(db.conn(), workspace_id).plan(plan_id)
    except NotFound as error:
        raise _failed(error) from None


@router.post("/plans/{plan_id}/versions", status_code=201, response_model=Plan, responses=CONFLICT)
def add_version(plan_id: str, body: Annotated[Any, Body()], db: Db,
                workspace_id: Workspace) -> dict[str, Any] | JSONResponse:
    """Add a version (the next number unless `version` is given); it may be activated at once."""
    if (refused := _too_large(body)) is not None:
        return refused
    store = PlanStore(db.conn(), workspace_id)
    version, errors = check_version(body, version=store.next_version(plan_id))
    if version is None:
        return _invalid(errors)
    try:
        return store.add_version(plan_id, version)
    except (NotFound, Conflict) as error:
        raise _failed(error) from None


@router.patch("/plans/{plan_id}/versions/{version}", response_model=Plan, responses=CONFLICT)
def patch_version(plan_id: str, version: Annotated[int, Path(ge=1, le=MAX_VERSION)], body: VersionPatch, db: Db,
                  workspace_id: Workspace) -> dict[str, Any]:
    """Activate a version for an environment (or `none`) and/or change its blocking settings: one transaction."""
    try:
        blocking = None
        if body.blocking is not None:
            current = PlanStore(db.conn(), workspace_id).active(plan_id, version, "production")
            if current is None:
                raise NotFound(f"version {version} of data plan {plan_id!r} not found")
            blocking = msgspec.structs.replace(current.blocking, **body.blocking)
        return PlanStore(db.conn(), workspace_id).update_version(
            plan_id, version, environment=body.activated_environment, blocking=blocking)
    except NotFound as error:
        raise _failed(error) from None


@router.get("/plans/{plan_id}/report", response_model=PlanReport)
def plan_report(plan_id: str, db: Db, workspace_id: Workspace, page: Paging, since: Since = None,
                until: Until = None) -> PlanReport:
    """Violations per hour, data point and type (unplanned_event, invalid_value, missing_required, ...), oldest
    hour first; the window defaults to the last 24 hours."""
    now = now_ms()
    since_ms = page.pin("since", lambda: point("since", since, now) if since is not None else now - DAY_MS) or 0
    until_ms = page.pin("until", lambda: point("until", until, now))
    try:
        rows = PlanStore(db.conn(), workspace_id).report(
            plan_id, since_ms, until_ms, after=page.after(int, int, str, str), limit=page.limit + 1)
    except NotFound as error:
        raise _failed(error) from None
    shown, next_cursor = page.take(rows, lambda r: (r["hour_start_unixtime_ms"], r["version"], r["data_point"],
                                                    r["violation"]))
    return PlanReport(plan_id=plan_id, since_unixtime_ms=since_ms, until_unixtime_ms=until_ms,
                      violations=[Violation(**r) for r in shown], next_cursor=next_cursor)


@router.get("/quarantine", response_model=Quarantine)
def list_quarantine(db: Db, workspace_id: Workspace, page: Paging) -> Quarantine:
    """Blocked batches, newest first: reasons, plan and version, times and the original batch."""
    store = QuarantineStore(db.conn(), workspace_id)
    after = page.after(int)
    entries, more = store.page(page.limit, None if after is None else after[0])
    next_cursor = page.cursor_after((entries[-1]["id"],)) if more is not None else None
    return Quarantine(entries=[QuarantineEntry(**e) for e in entries], next_cursor=next_cursor, total=store.count())


def log_dir(request: Request, db: Db) -> pathlib.Path:
    """Where `kaon serve` keeps the ingest log (set by the server; else the default beside the database)."""
    found: pathlib.Path | None = getattr(request.app.state, "log_dir", None)
    if found is None:
        found = db.data_dir / "log"
        if not any(found.glob("ingest-*.db")):
            raise HTTPException(503, detail={"code": "LOG_UNAVAILABLE", "message": "the ingest log directory is "
                                             "not known to this server; use `kaon quarantine replay`"})
    return found


@router.post("/quarantine/replay", response_model=QuarantineReplay)
def replay_quarantine(body: ReplayIn, request: Request, db: Db, workspace_id: Workspace) -> QuarantineReplay:
    """Run quarantined batches through processing again (after the plan is fixed); each leaves the
    quarantine when its replay is processed, and is quarantined anew if the plan still blocks it."""
    if body.all == (body.ids is not None):
        raise HTTPException(400, detail={"code": "INVALID_REQUEST", "message": "give either `ids` or `all: true`"})
    queued = QuarantineStore(db.conn(), workspace_id).replay(log_dir(request, db), None if body.all else body.ids)
    return QuarantineReplay(queued=len(queued), ids=queued)
