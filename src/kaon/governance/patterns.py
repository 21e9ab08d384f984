"""Data plans' `pattern`s, run by RE2: time linear in the value's length, whatever the pattern says.

A pattern is a user's input that runs on every event of the plan's workspace, in the process stage that
serves every workspace. Python's backtracking engine takes exponential time on patterns such as `^(a+)+$`
against `aaa…a!`, so one plan could stall processing for everyone; RE2 never backtracks. What RE2 cannot run
in linear time (backreferences such as `\\1`, lookahead and lookbehind) is refused at upload, with the reason.
Patterns match anywhere in the value (JSON schema's rule: anchor with `^…$` to match it whole).
"""

import re
from typing import Any, Protocol, cast

import re2

MAX_PATTERN_CHARS = 1_000
MAX_PROGRAM_BYTES = 1 << 20  # RE2 refuses patterns whose compiled form needs more (e.g. `(a{999}){999}`)

_OPTIONS: Any = re2.Options()
_OPTIONS.log_errors = False
_OPTIONS.max_mem = MAX_PROGRAM_BYTES


# Backreferences (\1, \k<name>) and lookaround ((?=, (?!, (?<=, (?<!): valid ECMA-262, not linear.
_UNSUPPORTED = re.compile(r"\\[1-9k]|\(\?<?[=!]")


class Pattern(Protocol):
    """What validation needs of a compiled pattern."""

    pattern: str

    def search(self, text: str) -> object | None: ...


class PatternError(ValueError):
    """A pattern Kaon will not run: `unsupported` when it is a valid regular expression RE2 cannot run."""

    def __init__(self, message: str, *, unsupported: bool) -> None:
        super().__init__(message)
        self.unsupported = unsupported


def compile_pattern(text: str) -> Pattern:
    """The pattern compiled by RE2, or PatternError saying why not."""
    if len(text) > MAX_PATTERN_CHARS:
        raise PatternError(f"pattern is over {MAX_PATTERN_CHARS} characters", unsupported=False)
    try:
        return cast(Pattern, re2.compile(text, options=_OPTIONS))
    except re2.error as error:
        reason = error.args[0].decode("utf-8", "replace") if error.args and isinstance(error.args[0], bytes) \
            else str(error)
    if _UNSUPPORTED.search(text) and ("invalid perl operator" in reason or "invalid escape sequence" in reason):
        raise PatternError(f"pattern uses a feature that cannot run in linear time ({reason}): backreferences, "
                           "lookahead and lookbehind are not supported", unsupported=True)
    raise PatternError(f"pattern is not a usable regular expression: {reason}", unsupported=False)
