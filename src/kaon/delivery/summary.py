"""What a test send reports of a vendor's answer: a bounded, printable excerpt and a classification, never the
body itself (a test send must not become a way to read what an address serves)."""

import re

from kaon.destinations.outcome import Outcome, SendResult

EXCERPT_CHARS = 200
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]+")


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """At most `limit` printable ASCII characters: other characters and runs of whitespace become one space."""
    flat = " ".join(_UNPRINTABLE.sub(" ", text[: limit * 4]).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def classification(result: SendResult) -> str:
    if result.outcome == Outcome.DELIVERED:
        return "accepted"
    if result.outcome == Outcome.SKIP:
        return "skipped"
    if result.status is None:
        return "temporary_failure" if result.outcome in (Outcome.RETRY, Outcome.RETRY_PART) else "not_sent"
    return "temporary_failure" if result.outcome in (Outcome.RETRY, Outcome.RETRY_PART) else "refused"
