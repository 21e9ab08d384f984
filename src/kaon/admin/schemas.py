"""Request and response bodies of the admin API's core routes (pydantic: they generate the OpenAPI document).

Conventions (docs/api/conventions.md): a point in time is `*_unixtime_ms`; a list is `{"<plural>": [...],
"next_cursor": ...}`; mpids are strings (64-bit integers do not survive JavaScript's numbers).
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

NextCursor = Annotated[str | None, Field(description="Pass as `cursor` for the next page; null on the last page.")]


class Health(BaseModel):
    status: Literal["ok"]
    role: str = "all"
    # collect / process / deliver: running, stopped (503 degraded) or off (not this process's role).
    parts: dict[str, str] = {}


class EventOut(BaseModel):
    id: int
    event_type: str
    event_name: str | None
    source_message_id: str
    timestamp_unixtime_ms: int
    received_unixtime_ms: int
    input_id: str
    batch_id: int
    mpid: str | None
    environment: str
    data: dict[str, Any]
    context: dict[str, Any] | None = Field(default=None, description=(
        "The context of the event's batch, as stored: `ip`, `device_info` (platform, user agent as "
        "`http_header_user_agent`, os version, model, screen, locale, ...), `application_info`, and what mParticle's "
        "batch has no field for: `page` (url, path, referrer, title, search), `campaign` (name, source, medium, term, "
        "content, other), `library` (name, version), `referrer`, `locale`, `timezone`, `os_name`, `location`, "
        "`traits` (a non-identify call's `context.traits`), `data_plan`. Absent parts are left out."))


class EventPage(BaseModel):
    events: list[EventOut]
    next_cursor: NextCursor


class InputOut(BaseModel):
    id: str
    workspace_id: str
    name: str
    kind: Literal["platform", "feed"]
    platform: str
    key: str
    has_secret: bool
    allow_key_only: bool
    enabled: bool
    rate_limit_rps: float | None
    created_unixtime_ms: int
    default_plan_id: str | None = Field(default=None, description="Data plan for batches that name none.")
    default_plan_version: int | None = Field(default=None, description="null: the latest active version.")


class Inputs(BaseModel):
    inputs: list[InputOut]
    next_cursor: NextCursor


class InputCreated(InputOut):
    secret: str | None = Field(description="Shown once; stored hashed.")


class InputCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    platform: Literal["web", "ios", "android", "server", "tvos", "roku", "alexa", "smart_tv", "fire_tv",
                      "xbox", "feed"]
    feed: bool = False
    allow_key_only: bool | None = None
    rate_limit_rps: float | None = Field(default=None, gt=0)


class InputPatch(BaseModel):
    """Each field is optional; `default_plan_id: null` removes the default plan."""

    enabled: bool | None = None
    default_plan_id: str | None = Field(default=None, min_length=1, max_length=200)
    default_plan_version: int | None = Field(default=None, ge=1, le=2**31 - 1)


class StatsRow(BaseModel):
    input_id: str
    hour_start_unixtime_ms: int
    batches_received: int
    events_received: int
    events_processed: int
    events_duplicate: int
    profiles_created: int = 0
    profiles_merged: int = 0
    identity_links_skipped: int = 0
    consent_unknown_purpose: int = 0
    # Identities not linked because a data subject request erased them (kaon.governance.dsr_suppress).
    identity_suppressed: int = 0
    rejected: dict[str, int]
    aliases_applied: dict[str, int] = Field(
        default={}, description="Segment alias calls applied, by outcome: `merged` (unify) or `copied`.")
    alias_refused: dict[str, int] = Field(
        default={}, description="Segment alias calls refused, by reason (each also listed in /rejections).")
    invalid_timestamps: dict[str, int] = Field(
        default={}, description="Unreadable times replaced by the next rule's time, by field (`timestamp`, ...).")


class Stats(BaseModel):
    stats: list[StatsRow]
    next_cursor: NextCursor


class Rejection(BaseModel):
    id: int
    workspace_id: str | None = Field(description="None: refused before any workspace was known (operator view)")
    input_id: str | None
    received_unixtime_ms: int
    status: int
    code: str
    message: str
    count: int
    body_sample: str | None


class Rejections(BaseModel):
    rejections: list[Rejection]
    next_cursor: NextCursor


class UnknownPurpose(BaseModel):
    input_id: str
    hour_start_unixtime_ms: int
    purpose: str
    count: int


class UnknownPurposes(BaseModel):
    unknown_purposes: list[UnknownPurpose]
    next_cursor: NextCursor
