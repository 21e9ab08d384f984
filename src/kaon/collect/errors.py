"""Errors answered by the front doors, each with an HTTP status and a stable code.

    KaonError
    └── CollectError          refused request: status, code, message, extra headers
"""

from typing import TYPE_CHECKING

from kaon.errors import KaonError

if TYPE_CHECKING:
    from kaon.collect.auth import InputInfo


class CollectError(KaonError):
    """`input` is the input the request named when it is known (so the refusal is counted against it)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
        input: "InputInfo | None" = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.input = input


def unauthorized(message: str, input: "InputInfo | None" = None) -> CollectError:
    return CollectError(401, "UNAUTHORIZED", message, input=input)
