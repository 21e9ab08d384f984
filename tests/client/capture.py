"""A local capture server standing in for Kaon's `/v2/bulkevents`: records requests, answers on demand.

A thin wrapper of `support.capture.VendorCapture` (which does the serving and recording) that answers
202 with an empty body by default and reads what arrived as the client's bulk batches.
"""

from typing import Any

from support.capture import Answer, Captured, VendorCapture

JSON = {"Content-Type": "application/json"}


class CaptureServer:
    """Answers 202 with an empty body unless told to answer otherwise for the next N requests."""

    def __init__(self) -> None:
        self.vendor = VendorCapture(default=Answer(202, {}, b""))
        self.url = self.vendor.url

    def start(self) -> "CaptureServer":
        self.vendor.start()
        return self

    def stop(self) -> None:
        self.vendor.stop()

    # Scripting
    def answer_next(self, n: int, status: int, *, headers: dict[str, str] | None = None,
                    body: Any = None) -> None:
        """Queue `n` answers; a `body` is sent as JSON (with its Content-Type), none as an empty body."""
        if body is None:
            self.vendor.answer_next(n, status, headers=headers)
        else:
            self.vendor.answer_next(n, status, headers={**(headers or {}), **JSON}, body=body)

    def too_many_next(self, n: int, retry_after: int) -> None:
        self.answer_next(n, 429, headers={"Retry-After": str(retry_after)},
                         body={"errors": [{"code": "TOO_MANY_REQUESTS", "message": "slow down"}]})

    def unavailable_next(self, n: int) -> None:
        self.answer_next(n, 503)

    def bad_request_next(self, n: int) -> None:
        self.answer_next(n, 400, body={"errors": [
            {"code": "BAD_REQUEST", "message": 'Required event field "event_type" is missing or empty.'}]})

    # Reading what arrived
    @property
    def requests(self) -> list[Captured]:
        return self.vendor.requests()

    def batches(self) -> list[dict[str, Any]]:
        return [batch for request in self.requests for batch in request.json()]

    def events(self) -> list[dict[str, Any]]:
        return [event for batch in self.batches() for event in batch["events"]]

    def message_ids(self) -> list[str]:
        return [event["data"]["source_message_id"] for event in self.events()]
