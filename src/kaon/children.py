"""Stages that run as child OS processes of `kaon serve` (process, deliver): start, stop, and orphan exit.

A child gets the settings, a stop event and the parent's pid; it must return when the stop event is set or
the parent is gone (after `kill -9` of the parent), so a restart never leaves stale stages for long.
"""

import logging
import multiprocessing
import multiprocessing.synchronize
import os
from collections.abc import Callable

from kaon.settings import Settings

_log = logging.getLogger("kaon.children")
StopEvent = multiprocessing.synchronize.Event
Target = Callable[[Settings, StopEvent, int], None]


class ChildProcess:
    def __init__(self, name: str, target: Target, settings: Settings) -> None:
        context = multiprocessing.get_context("spawn")
        self.name = name
        self._stop = context.Event()
        self._process = context.Process(target=target, args=(settings, self._stop, os.getpid()), name=name,
                                        daemon=False)

    def start(self) -> None:
        self._process.start()

    def alive(self) -> bool:
        return self._process.is_alive()

    def stop(self, timeout_s: float) -> None:
        """Ask the child to finish (it may drain first) and wait a little longer than its own bound."""
        self._stop.set()
        self._process.join(timeout_s + 10)
        if self._process.is_alive():
            _log.error("%s did not stop in time; terminating it (its work resumes at restart)", self.name)
            self._process.terminate()
            self._process.join(10)
