"""Refuses query parameters a route does not declare: 400 `UNKNOWN_PARAMETER` naming each one.

A misspelt filter (`?event_nme=Purchase`) would otherwise be ignored and answer the unfiltered list, which looks
right and is not. The declared names are read from the route's dependency tree (its own parameters and those of
its dependencies, such as paging's `limit` and `cursor`), once per route.
"""

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from kaon.admin.errors import api_errors

_declared: dict[int, frozenset[str]] = {}


def _names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _names(sub)
    return names


def declared(route: APIRoute) -> frozenset[str]:
    """The query parameter names a route takes (aliases, as clients spell them)."""
    found = _declared.get(id(route))
    if found is None:
        found = _declared[id(route)] = frozenset(_names(route.dependant))
    return found


def reject_unknown_parameters(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    allowed = declared(route)
    unknown = sorted({key for key in request.query_params if key not in allowed})
    if unknown:
        takes = ", ".join(f"`{name}`" for name in sorted(allowed)) or "no query parameters"
        raise api_errors(400, [("UNKNOWN_PARAMETER", f"unknown query parameter `{name}`; this route takes {takes}"
                                                     f" - at `{name}`") for name in unknown])
