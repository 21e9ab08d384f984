"""Response models of `/api/v1/audiences` and `/api/v1/calculated-attributes`."""

from typing import Any

from pydantic import BaseModel, Field


class Backfill(BaseModel):
    """Progress of the activation's backfill over the stored history."""

    phase: str | None = Field(description="events (reading history), profiles (evaluating them), done")
    events_total: int | None = Field(default=None, description="stored events of the types its criteria take, "
                                     "inside its window or lookback: those the backfill reads")
    events_done: int = 0
    history_events: int | None = Field(default=None, description="every stored event of the window or lookback "
                                       "(what the backfill covers)")
    profiles_done: int = 0
    started_unixtime_ms: int | None = None
    finished_unixtime_ms: int | None = None
    error: str | None = Field(default=None, description="why the backfill failed (status `failed`)")


class CalculatedAttribute(BaseModel):
    """mParticle's calculated attribute object (Platform API v2), times as unix ms."""

    id: str
    name: str
    description: str
    status: str = Field(description="draft, backfilling (activating), active, failed (see backfill.error)")
    draft_definition: dict[str, Any]
    active_definition: dict[str, Any] | None
    audience_count: int
    created_by: str
    created_unixtime_ms: int
    last_modified_by: str
    last_modified_unixtime_ms: int
    activated_by: str | None
    activated_unixtime_ms: int | None
    backfill: Backfill


class CalculatedAttributes(BaseModel):
    calculated_attributes: list[CalculatedAttribute]
    next_cursor: str | None


class Audience(BaseModel):
    """An audience as mParticle lists it (size, 24 h movement, status) with its definition."""

    id: str
    name: str
    external_name: str
    description: str
    status: str = Field(description="draft, backfilling (activating), active, inactive, failed (see backfill.error)")
    lookback_days: int
    definition: dict[str, Any]
    size: int
    added_last_24_hours: int
    dropped_last_24_hours: int
    is_calculated: bool = Field(description="mParticle's flag for calculated (real-time) audiences: always true")
    created_by: str
    created_unixtime_ms: int
    last_modified_by: str
    last_modified_unixtime_ms: int
    backfill: Backfill


class Audiences(BaseModel):
    audiences: list[Audience]
    next_cursor: str | None


class Member(BaseModel):
    mpid: str
    entered_unixtime_ms: int


class Members(BaseModel):
    members: list[Member]
    next_cursor: str | None


class Size(BaseModel):
    audience_id: str
    size: int
    added_last_24_hours: int
    dropped_last_24_hours: int
    as_of_unixtime_ms: int


class MembershipChange(BaseModel):
    """One entry or exit (append-only): `cause` is event, time, activation, merge, unmerge, deactivated, deleted."""

    id: int
    audience_id: str
    mpid: str
    action: str = Field(description="enter or exit")
    at_unixtime_ms: int
    cause: str
    recorded_unixtime_ms: int


class MembershipChanges(BaseModel):
    changes: list[MembershipChange]
    next_cursor: str | None


class EstimateOut(BaseModel):
    size: int
    profiles_evaluated: int
    events_read: int
    exact: bool = Field(description="false when the estimate stopped at its bounds (events or profiles read)")
