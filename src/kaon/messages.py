"""Typed messages that cross a stage boundary inside the ingest log (besides raw request bodies)."""

import msgspec


class RejectionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A refused request, recorded so a person can see why (the body of a `rejection` log entry)."""

    status: int
    code: str
    message: str
    count: int = 1
    sample: str | None = None
