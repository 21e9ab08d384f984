"""Finding destinations: the `kaon.destinations` entry-point group (built-ins are listed there too)."""

import functools
from importlib.metadata import entry_points

from kaon.destinations.base import Destination
from kaon.errors import NotFound

GROUP = "kaon.destinations"


@functools.cache
def destinations() -> dict[str, Destination]:
    found: dict[str, Destination] = {}
    for entry in entry_points(group=GROUP):
        destination = entry.load()
        if not isinstance(destination, Destination):
            raise TypeError(f"entry point {entry.name} is not a kaon Destination")
        found[destination.name] = destination
    return dict(sorted(found.items()))


def destination(name: str) -> Destination:
    found = destinations().get(name)
    if found is None:
        raise NotFound(f"unknown destination {name!r}")
    return found
