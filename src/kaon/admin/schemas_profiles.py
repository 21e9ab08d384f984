"""Response bodies of the profile routes: profiles, merges, identity and consent settings, consent history."""

from typing import Any

from pydantic import BaseModel, Field

from kaon.admin.schemas import NextCursor


class ProfileIdentity(BaseModel):
    type: str
    value: str
    first_seen_unixtime_ms: int


class Profile(BaseModel):
    mpid: str
    requested_mpid: str
    created_unixtime_ms: int
    first_seen_unixtime_ms: int
    last_seen_unixtime_ms: int
    session_count: int
    is_opted_out: bool
    consent_state: dict[str, Any]
    user_identities: list[ProfileIdentity]
    device_identities: list[ProfileIdentity]
    user_attributes: dict[str, Any]
    calculated_attributes: dict[str, Any] = Field(
        default_factory=dict, description="Active calculated attributes' values now (null: nothing in the window)")
    audience_memberships: list["ProfileMembership"] = Field(default_factory=list)


class ProfileMembership(BaseModel):
    audience_id: str
    audience_name: str
    entered_unixtime_ms: int


class Profiles(BaseModel):
    profiles: list[Profile]
    next_cursor: NextCursor


class Merge(BaseModel):
    merge_id: int
    survivor_mpid: str
    merged_mpid: str
    reason: str
    actor: str
    merged_unixtime_ms: int
    undone_unixtime_ms: int | None
    undone_by: str | None


class Merges(BaseModel):
    merges: list[Merge]
    next_cursor: NextCursor


class Unmerge(BaseModel):
    merge_id: int
    restored: list[str]
    events_restored: int


class IdentitySettings(BaseModel):
    strategy: str
    priority: list[str]
    unique_types: list[str]
    login_types: list[str]
    limits: dict[str, int]
    blocked_values: list[str]


class Purpose(BaseModel):
    name: str
    description: str


class ConsentSettings(BaseModel):
    gdpr_purposes: list[Purpose]
    configured: bool


class ConsentRecord(BaseModel):
    id: int
    mpid: str
    regulation: str
    purpose: str
    consented: bool
    document: str | None
    timestamp_unixtime_ms: int
    location: str | None
    hardware_id: str | None
    received_unixtime_ms: int
    input_id: str | None
    source_request_id: str | None
    source: str | None
    batch_id: int | None


class ProfileConsent(BaseModel):
    """The current consent (newest record per purpose, mParticle's `consent_state` shape) and a page of history."""

    mpid: str
    current: dict[str, Any]
    is_opted_out: bool
    history: list[ConsentRecord]
    next_cursor: NextCursor
