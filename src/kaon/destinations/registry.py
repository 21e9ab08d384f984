"""Finding destinations: the `kaon.destinations` entry-point group (built-ins are listed there too)."""

import functools
import logging
from importlib.metadata import entry_points

from kaon.destinations.base import Destination
from kaon.errors import NotFound

GROUP = "kaon.destinations"
_log = logging.getLogger("kaon.destinations")


@functools.cache
def destinations() -> dict[str, Destination]:
    found: dict[str, Destination] = {}
    for entry in entry_points(group=GROUP):
        try:
            destination = entry.load()
        except Exception:  # one broken plugin must not take every destination down
            _log.exception("destination plugin %s failed to load; it is unavailable", entry.name)
            continue
        if not isinstance(destination, Destination):
            _log.error("entry point %s is not a kaon Destination; ignored", entry.name)
            continue
        found[destination.name] = destination
    return dict(sorted(found.items()))


def destination(name: str) -> Destination:
    found = destinations().get(name)
    if found is None:
        raise NotFound(f"unknown destination {name!r}")
    return found
