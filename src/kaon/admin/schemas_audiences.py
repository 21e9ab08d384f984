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


class AudienceConnectionIn(BaseModel):
    """`POST /api/v1/audiences/{id}/connections`."""

    output_id: str = Field(max_length=64)
    settings: dict[str, Any] = Field(default_factory=dict, description=(
        "`identity_types` (canonical names; default: every type the output accepts) and `rules` (the connection "
        "rules of `/api/v1/connections`: consent, forwarding, sampling, ...; an add they drop is not sent)"))


class AudienceConnectionPatch(BaseModel):
    settings: dict[str, Any]


class SyncProgress(BaseModel):
    members_sent: int = 0
    members_removed: int | None = None
    started_unixtime_ms: int | None = None
    finished_unixtime_ms: int | None = Field(default=None, description="when the initial sync ended")
    disconnected_unixtime_ms: int | None = None


class AudienceConnection(BaseModel):
    id: str
    audience_id: str
    audience_name: str
    output_id: str
    mode: str = Field(description="sync (an audience output: adds and removes) or trigger (an event output: each "
                                  "entry and exit as an `audience_membership_change` event)")
    status: str = Field(description="syncing (initial sync), live, disconnecting (removing what was sent)")
    settings: dict[str, Any]
    synced_members: int = Field(description="profiles added at the output and not removed since")
    progress: SyncProgress
    created_unixtime_ms: int
    modified_unixtime_ms: int


class AudienceConnections(BaseModel):
    connections: list[AudienceConnection]
    next_cursor: str | None = None


class ConnectionTrace(BaseModel):
    """Why a profile is (not) in an audience at an output: its membership changes, what was added and the
    deliveries with their attempts."""

    audience_id: str
    connection_id: str
    mpid: str
    member: bool = Field(description="in the audience now")
    synced_identities: dict[str, str] | None = Field(description="the identities added at the output (None: not "
                                                                 "added, or removed since)")
    changes: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]
