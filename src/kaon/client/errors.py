"""The client's errors; delivery errors are reported (on_error, flush result, log), never raised.

    KaonError (kaon.errors)
    └── ClientError                    base of every error the client SDK raises or reports
        ├── ClientClosedError          a call on a client after close()
        └── DeliveryError              events that will never be delivered
            ├── RejectedError          the server refused them with a 4xx other than 408/429
            ├── RetriesExhaustedError  408, 429, 5xx or connection errors outlasted max_retries
            ├── EventTooLargeError     one event is larger than a batch may be (128 KB)
            └── QueueFullError         dropped when logged because max_queue events were waiting
"""

from kaon.errors import KaonError


class ClientError(KaonError):
    code = "CLIENT_ERROR"


class ClientClosedError(ClientError):
    code = "CLIENT_CLOSED"


class DeliveryError(ClientError):
    """Events that were dropped; `status` and `server_code` come from the server's answer if there was one."""

    code = "DELIVERY_FAILED"

    def __init__(
        self,
        message: str,
        *,
        source_message_ids: tuple[str, ...],
        status: int | None = None,
        server_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source_message_ids = source_message_ids
        self.status = status
        self.server_code = server_code

    @property
    def events(self) -> int:
        """How many events were dropped."""
        return len(self.source_message_ids)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, status={self.status!r}, "
            f"server_code={self.server_code!r}, events={self.events})"
        )


class RejectedError(DeliveryError):
    code = "REJECTED"


class RetriesExhaustedError(DeliveryError):
    code = "RETRIES_EXHAUSTED"


class EventTooLargeError(DeliveryError):
    code = "EVENT_TOO_LARGE"


class QueueFullError(DeliveryError):
    code = "QUEUE_FULL"
