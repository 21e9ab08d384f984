"""The contract of a process-stage step: one module each, run in order inside the slice's transaction."""

from typing import Protocol

from kaon.pipeline.work import Slice


class Step(Protocol):
    name: str

    def run(self, work: Slice) -> None:
        """Apply this step's effects to the slice, using `work.tx` for every write."""
