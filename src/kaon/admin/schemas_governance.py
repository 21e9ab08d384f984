"""Response bodies of data plans, the quarantine and the data catalog.

A plan is mParticle's plan document (Data Planning API: `created_on`, `last_modified_on` ISO-8601, documents as
sent), so that plans move between mParticle and Kaon unchanged; the lists around them follow Kaon's convention.
"""

from typing import Any

from pydantic import BaseModel, Field

from kaon.admin.schemas import NextCursor


class PlanVersion(BaseModel):
    version: int
    version_description: str | None
    data_plan_id: str
    activated_environment: str
    version_document: dict[str, Any]
    blocking: dict[str, bool]
    created_on: str
    last_modified_on: str


class Plan(BaseModel):
    data_plan_id: str
    data_plan_name: str
    data_plan_description: str | None
    created_on: str
    last_modified_on: str
    data_plan_versions: list[PlanVersion]


class Plans(BaseModel):
    plans: list[Plan]
    next_cursor: NextCursor


class Validation(BaseModel):
    results: list[dict[str, Any]] = Field(description="mParticle's validation results for the batch.")


class Violation(BaseModel):
    hour_start_unixtime_ms: int
    version: int
    data_point: str
    violation: str
    count: int


class PlanReport(BaseModel):
    plan_id: str
    since_unixtime_ms: int
    until_unixtime_ms: int | None
    violations: list[Violation]
    next_cursor: NextCursor


class QuarantineEntry(BaseModel):
    id: int
    input_id: str
    plan_id: str
    plan_version: int
    received_unixtime_ms: int
    quarantined_unixtime_ms: int
    reasons: list[dict[str, Any]]
    replay_requested_unixtime_ms: int | None
    batch: dict[str, Any] = Field(description="The original batch, as received.")


class Quarantine(BaseModel):
    entries: list[QuarantineEntry]
    next_cursor: NextCursor
    total: int = Field(description="Entries in the quarantine now (all pages).")


class QuarantineReplay(BaseModel):
    queued: int
    ids: list[int]


class CatalogPoint(BaseModel):
    id: str
    type: str
    name: str
    custom_event_type: str | None
    count: int
    first_seen_unixtime_ms: int
    last_seen_unixtime_ms: int
    attribute_count: int
    input_ids: list[str]
    environments: list[str]


class DataPoints(BaseModel):
    data_points: list[CatalogPoint]
    next_cursor: NextCursor


class Seen(BaseModel):
    input_id: str
    environment: str
    count: int
    first_seen_unixtime_ms: int
    last_seen_unixtime_ms: int


class AttributeSeen(Seen):
    types: list[str]


class CatalogAttribute(BaseModel):
    name: str
    types: list[str]
    examples: list[str]
    count: int
    first_seen_unixtime_ms: int | None
    last_seen_unixtime_ms: int | None
    seen: list[AttributeSeen]


class DataPoint(BaseModel):
    id: str
    type: str
    name: str
    custom_event_type: str | None
    count: int
    first_seen_unixtime_ms: int | None
    last_seen_unixtime_ms: int | None
    seen: list[Seen]
    attributes: list[CatalogAttribute]
