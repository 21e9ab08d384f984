"""Data plan `pattern`s: compiled with RE2 (linear time), ECMA-262 features RE2 cannot run refused by name.

A plan's pattern runs against every event of its workspace in the process stage, which all workspaces share,
so a backtracking engine would let one plan (`^(a+)+$`) stall every workspace. RE2 has no backtracking; what
it cannot do (backreferences, lookahead, lookbehind) is refused at upload with `unsupported_pattern`.
"""

import re
from typing import Protocol, cast

import re2

MAX_PATTERN_LENGTH = 1000

# ECMA-262 features RE2 refuses, named so the upload error says which one (checked before compiling).
_UNSUPPORTED = (
    (re.compile(r"(?<!\\)(?:\\\\)*\\[1-9]"), "a backreference (\\1 ... \\9)"),
    (re.compile(r"(?<!\\)(?:\\\\)*\\k<"), "a named backreference (\\k<name>)"),
    (re.compile(r"(?<!\\)(?:\\\\)*\(\?<?[=!]"), "a lookahead or lookbehind ((?=, (?!, (?<=, (?<!)"),
)

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False


class Program(Protocol):
    """A compiled pattern, as the validator uses it."""

    @property
    def pattern(self) -> str: ...

    def search(self, text: str) -> object | None: ...


class PatternRefused(ValueError):
    """A pattern Kaon will not run; `error_type` is the stable name of the reason."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def compile_pattern(pattern: str) -> Program:
    """The RE2 program for a plan pattern, or PatternRefused saying why not."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternRefused("pattern_too_long", f"pattern is {len(pattern)} characters long; "
                             f"a data plan pattern holds at most {MAX_PATTERN_LENGTH}")
    for finder, feature in _UNSUPPORTED:
        if finder.search(pattern):
            raise PatternRefused("unsupported_pattern", f"pattern {pattern!r} uses {feature}, which Kaon's "
                                 "linear-time regular expression engine (RE2) cannot run")
    try:
        return cast(Program, re2.compile(pattern, _OPTIONS))
    except re2.error as error:
        reason = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else str(error)
        raise PatternRefused("unsupported_pattern", f"pattern {pattern!r} is not a regular expression Kaon's "
                             f"linear-time engine (RE2) can run: {reason}") from None
