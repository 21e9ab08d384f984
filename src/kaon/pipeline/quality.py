"""Step: record the slice's data-quality warnings in `rejections`, bounded, beside the counters that total them.

A warning is about data Kaon accepted (the request was answered 200/202 and nothing was dropped) but could not
use as sent. Each is listed at `GET /api/v1/rejections` with the status the request was answered with (200 for
Segment-spec doors, 202 for mParticle's), its code and a message naming the field or ids, and a sample of the
request; the hourly counters of `GET /api/v1/stats` hold the totals. Per slice, at most
MAX_RECORDS_PER_CODE warnings of one code and input are listed one by one; the rest become one record with
their count, so a client that sends bad data on every call costs bounded rows.
"""

from collections import defaultdict
from typing import Final

from kaon.log.base import KIND_SEGMENT_PREFIX
from kaon.pipeline.work import DataWarning, Slice
from kaon.store.metrics import MetricsStore

MAX_RECORDS_PER_CODE: Final = 20
SAMPLE_BYTES: Final = 2048

# code: (the stats counter that totals it, meaning). The docs list them (tests/pipeline/test_quality.py checks).
WARNING_CODES: Final[dict[str, tuple[str, str]]] = {
    "AUDIENCE_EVALUATION_FAILED": ("audience_failures", "The profile's audiences and calculated attributes could "
                                                        "not be updated for this batch (the message says why); "
                                                        "its events were processed and forwarded."),
    "INVALID_TIMESTAMP": ("invalid_timestamps", "A time field could not be read (or is out of range); the event "
                                                "took the next rule's time, e.g. the receive time."),
    "IDENTITY_MERGE_REFUSED": ("identity_merges_refused", "A batch from a key-only (web) input would have merged a "
                                                          "profile holding a login id, or one it linked through "
                                                          "no device identity: not merged."),
    "ALIAS_REFUSED_KNOWN_PREVIOUS": ("alias_refused", "An alias from a key-only (web) input whose previous profile "
                                                      "holds a login id: only a server credential may join it."),
    "ALIAS_REFUSED_BLOCKED_VALUE": ("alias_refused", "An alias's previousId or userId is a blocked value."),
    "ALIAS_REFUSED_UNKNOWN_PREVIOUS": ("alias_refused", "No profile holds the alias's previousId (as a "
                                                        "customer id or a device stamp)."),
    "ALIAS_REFUSED_SAME_PROFILE": ("alias_refused", "The alias's previousId is already on the user's profile."),
    "ALIAS_REFUSED_UNIQUE_CONFLICT": ("alias_refused", "The two profiles hold different values of a unique "
                                                       "identity type (e.g. two customer ids): not merged."),
    "ALIAS_REFUSED_SOURCE_WAS_DESTINATION": ("alias_refused", "Copy strategies: the previous profile was the "
                                                              "destination of an earlier alias."),
    "ALIAS_REFUSED_DESTINATION_WAS_SOURCE": ("alias_refused", "Copy strategies: the user's profile was the source "
                                                              "of an earlier alias."),
    "ALIAS_REFUSED_OVERLAP": ("alias_refused", "Copy strategies: the previous profile was already aliased for an "
                                               "overlapping window."),
}

MERGED_MESSAGE: Final = "{count} more `{code}` warnings for this input in one processing slice (see /api/v1/stats)"


def accepted_status(kind: str) -> int:
    """The status the door answered the request with: Segment-spec doors 200, mParticle doors 202."""
    return 200 if kind.startswith(KIND_SEGMENT_PREFIX) else 202


class RecordWarnings:
    name = "quality"

    def run(self, work: Slice) -> None:
        if not work.warnings:
            return
        metrics = MetricsStore(work.tx)
        groups: dict[tuple[str | None, str | None, str], list[DataWarning]] = defaultdict(list)
        for warning in work.warnings:
            entry = warning.entry.entry
            assert warning.code in WARNING_CODES, f"uncatalogued warning code {warning.code}"
            groups[(entry.workspace_id, entry.input_id, warning.code)].append(warning)
        for (workspace_id, input_id, code), warnings in groups.items():
            for warning in warnings[:MAX_RECORDS_PER_CODE]:
                entry = warning.entry.entry
                metrics.record_rejection(
                    workspace_id=workspace_id, input_id=input_id, received_ms=entry.received_ms,
                    status=accepted_status(entry.kind), code=code, message=warning.message, count=1,
                    body=entry.body[:SAMPLE_BYTES],
                )
            rest = warnings[MAX_RECORDS_PER_CODE:]
            if rest:
                last = rest[-1].entry.entry
                metrics.record_rejection(
                    workspace_id=workspace_id, input_id=input_id, received_ms=last.received_ms,
                    status=accepted_status(last.kind), code=code,
                    message=MERGED_MESSAGE.format(count=len(rest), code=code), count=len(rest), body=None,
                )
        work.warnings.clear()
