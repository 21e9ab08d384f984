"""Errors of audience and calculated attribute definitions.

KaonError
└── DefinitionError   a definition refused; `pointer` is the JSON pointer of the bad node (`#/definition/all/1`)
"""

from kaon.errors import KaonError


class DefinitionError(KaonError, ValueError):
    code = "INVALID_DEFINITION"

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(f"{message} - at `{pointer}`")
        self.pointer = pointer
        self.detail = message
