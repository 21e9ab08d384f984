"""Request and response bodies of outputs, connections, the destination directory and delivery visibility."""

from typing import Any, Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr

from kaon.admin.schemas import NextCursor
from kaon.durations import POINT_FORMS


class OutputIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    destination: str = Field(min_length=1, max_length=100)
    settings: dict[str, Any] = {}
    enabled: bool = True


class OutputPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    settings: dict[str, Any] | None = None
    enabled: bool | None = None


class Output(BaseModel):
    id: str
    workspace_id: str
    name: str
    destination: str
    settings: dict[str, Any] = Field(description="The destination's settings; secrets are redacted.")
    enabled: bool
    created_unixtime_ms: int
    updated_unixtime_ms: int


class Outputs(BaseModel):
    outputs: list[Output]
    next_cursor: NextCursor


class OutputDeleted(BaseModel):
    deleted: str
    dead_lettered: int


class OutputTestResult(BaseModel):
    """A bounded, sanitised summary of the vendor's answer: never its whole body."""

    outcome: str
    classification: str = Field(description="accepted, temporary_failure, refused (by the destination), not_sent "
                                            "(no request left Kaon: e.g. the outbound policy) or skipped")
    status: int | None
    message: str | None = Field(description="why, in at most 200 printable characters")
    response: str = Field(description="the start of the answer's body: at most 200 printable characters")
    requests: int


class ConnectionRules(BaseModel):
    filters: dict[str, Any] | None = None
    forwarding: list[dict[str, Any]] | None = None
    logged_in_only: bool | None = None
    consent: dict[str, Any] | None = None
    sampling_percent: float | None = None
    transformations: list[dict[str, Any]] | None = None


class ConnectionIn(ConnectionRules):
    input_id: str = Field(min_length=1, max_length=100)
    output_id: str = Field(min_length=1, max_length=100)
    enabled: bool = True

    def rules(self) -> dict[str, Any]:
        return self.model_dump(exclude={"input_id", "output_id", "enabled"}, exclude_none=True)


class ConnectionPatch(ConnectionIn):
    input_id: str = ""
    output_id: str = ""
    enabled: bool | None = None  # type: ignore[assignment]


class Connection(ConnectionRules):
    id: str
    workspace_id: str
    input_id: str
    output_id: str
    enabled: bool
    created_unixtime_ms: int
    updated_unixtime_ms: int


class Connections(BaseModel):
    connections: list[Connection]
    next_cursor: NextCursor


class Deleted(BaseModel):
    deleted: str


class DestinationInfo(BaseModel):
    name: str
    title: str
    category: str
    description: str
    settings_schema: dict[str, Any] = Field(description="JSON Schema of the destination's settings.")


class Directory(BaseModel):
    destinations: list[DestinationInfo]
    next_cursor: NextCursor


class StatusHour(BaseModel):
    hour_start_unixtime_ms: int
    queued: int
    sent: int
    failed: int
    dead_lettered: int
    skipped: int
    filtered: dict[str, int] = Field(description="Events dropped by the connection's rules, by reason.")
    average_latency_duration_ms: float | None = Field(description="Mean time of a successful send; null: none.")


class OutputStatus(BaseModel):
    """The output's queue now, and a page of its hourly counters (oldest hour first)."""

    output_id: str
    queue_depth: int
    oldest_queued_unixtime_ms: int | None
    hours: list[StatusHour]
    next_cursor: NextCursor


class Alert(BaseModel):
    output_id: str
    output_name: str | None
    hour_start_unixtime_ms: int
    failed_attempts: int
    dead_lettered: int
    error: str | None
    last_status: int | None


class Alerts(BaseModel):
    alerts: list[Alert]
    next_cursor: NextCursor


class TraceAttempt(BaseModel):
    attempt: int
    state: str
    at_unixtime_ms: int
    status: int | None
    error: str | None


class TraceRoute(BaseModel):
    connection_id: str
    result: str = Field(description="filtered, not_routed, queued, or the last attempt's state.")
    reason: str | None = None
    output_id: str | None = None
    job_id: int | None = None
    next_attempt_unixtime_ms: int | None = None
    attempts: list[TraceAttempt] | None = None


class Trace(BaseModel):
    event_id: int
    input_id: str
    connections: list[TraceRoute]


class ReplayIn(BaseModel):
    since: StrictInt | StrictStr = Field(description=f"Replay jobs created since: {POINT_FORMS}.")
    until: StrictInt | StrictStr | None = Field(default=None,
                                                description=f"... and before (default: now): {POINT_FORMS}.")
    status: Literal["dead", "all"] = "dead"


class Replayed(BaseModel):
    output_id: str
    replayed: int
