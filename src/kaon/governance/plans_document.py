"""Data plan documents (mParticle's shape): checking an upload, with a pointer to every problem.

A plan holds versions; a version holds a `version_document` of data points (match + JSON-schema validator)
and Kaon's `blocking` settings. A refused upload lists errors shaped like mParticle's plan errors:
`{code, message, error_type, match_key, schema_pointer, keyword, value}`.
"""

from typing import Any

import msgspec

from kaon.governance.plans_schema import check_schema, pointer_part
from kaon.model.events import CUSTOM_EVENT_TYPES

MAX_DATA_POINTS = 1000
MAX_VERSION = 2**31 - 1
MAX_PLAN_BYTES = 10 * 1024 * 1024
ENVIRONMENTS = ("none", "development", "production")
BLOCKING_KEYS = ("unplanned_events", "unplanned_event_attributes", "unplanned_user_attributes",
                 "unplanned_user_identities")
# match.type → the criteria it needs (all strings).
CRITERIA: dict[str, tuple[str, ...]] = {
    "custom_event": ("event_name", "custom_event_type"),
    "screen_view": ("screen_name",),
    "product_action": ("action",),
    "promotion_action": ("action",),
    "product_impression": (),
    "user_attributes": (),
    "user_identities": (),
    "unknown": (),
}


class Blocking(msgspec.Struct, frozen=True, kw_only=True):
    unplanned_events: bool = False
    unplanned_event_attributes: bool = False
    unplanned_user_attributes: bool = False
    unplanned_user_identities: bool = False


class VersionIn(msgspec.Struct, frozen=True, kw_only=True):
    """A checked plan version, as uploaded."""

    version: int
    version_description: str | None
    activated_environment: str
    version_document: dict[str, Any]
    blocking: Blocking


class PlanIn(msgspec.Struct, frozen=True, kw_only=True):
    data_plan_id: str
    data_plan_name: str
    data_plan_description: str | None
    versions: list[VersionIn]


def match_key(match_type: str, criteria: dict[str, Any]) -> str:
    """A data point's stable name: `custom_event:other:Play Video`, `screen_view:Home`, `user_attributes`."""
    if match_type == "custom_event":
        return f"custom_event:{criteria.get('custom_event_type', '')}:{criteria.get('event_name', '')}"
    if match_type == "screen_view":
        return f"screen_view:{criteria.get('screen_name', '')}"
    if match_type in ("product_action", "promotion_action"):
        return f"{match_type}:{criteria.get('action', '')}"
    return match_type


def _error(error_type: str, message: str, pointer: str, *, match: str | None = None, keyword: str | None = None,
           value: Any = None) -> dict[str, Any]:
    return {"code": "INVALID_PLAN", "message": f"{message} - at `{pointer}`", "error_type": error_type,
            "match_key": match, "schema_pointer": pointer, "keyword": keyword, "value": value}


def check_version_document(document: Any, pointer: str) -> list[dict[str, Any]]:
    """Every problem of a `version_document` (data points, matches, validators)."""
    if not isinstance(document, dict):
        return [_error("invalid_document", "version_document must be an object", pointer)]
    points = document.get("data_points", [])
    where = f"{pointer}/data_points"
    if not isinstance(points, list):
        return [_error("invalid_document", "data_points must be an array", where)]
    if len(points) > MAX_DATA_POINTS:
        return [_error("too_many_data_points", f"a plan version holds at most {MAX_DATA_POINTS} data points "
                       f"(got {len(points)})", where, value=len(points))]
    errors: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, point in enumerate(points):
        at = f"{where}/{index}"
        if not isinstance(point, dict):
            errors.append(_error("invalid_data_point", "a data point must be an object", at))
            continue
        match = point.get("match")
        if not isinstance(match, dict):
            errors.append(_error("invalid_match", "a data point needs a match object", f"{at}/match"))
            continue
        match_type = match.get("type")
        criteria = match.get("criteria", {})
        if match_type not in CRITERIA:
            errors.append(_error("invalid_match_type", f"match.type must be one of {', '.join(CRITERIA)}",
                                 f"{at}/match/type", value=match_type))
            continue
        if not isinstance(criteria, dict):
            errors.append(_error("invalid_criteria", "match.criteria must be an object", f"{at}/match/criteria"))
            continue
        key = match_key(match_type, criteria)
        for name in CRITERIA[match_type]:
            value = criteria.get(name)
            if not isinstance(value, str) or not value:
                errors.append(_error("missing_criteria", f"a {match_type} match needs criteria.{name} (a string)",
                                     f"{at}/match/criteria/{name}", match=key, value=value))
        if match_type == "custom_event" and isinstance(criteria.get("custom_event_type"), str) \
                and criteria["custom_event_type"] not in CUSTOM_EVENT_TYPES:
            errors.append(_error("invalid_criteria", "criteria.custom_event_type must be one of "
                                 + ", ".join(sorted(CUSTOM_EVENT_TYPES)), f"{at}/match/criteria/custom_event_type",
                                 match=key, value=criteria["custom_event_type"]))
        if match_type != "unknown":
            if key in seen:
                errors.append(_error("duplicate_match", f"the same match as data point {seen[key]}",
                                     f"{at}/match", match=key))
            seen.setdefault(key, index)
        validator = point.get("validator")
        if validator is None:
            continue
        if not isinstance(validator, dict) or validator.get("type", "json_schema") != "json_schema":
            errors.append(_error("invalid_validator", "validator.type must be json_schema", f"{at}/validator",
                                 match=key))
            continue
        definition = validator.get("definition", {})
        for problem in check_schema(definition, f"{at}/validator/definition"):
            error_type = problem.error_type or (
                "unsupported_keyword" if "not supported" in problem.message else "invalid_schema")
            errors.append(_error(error_type, problem.message, problem.pointer, match=key,
                                 keyword=problem.keyword or None))
    return errors


def _blocking(value: Any, pointer: str, errors: list[dict[str, Any]]) -> Blocking:
    if value is None:
        return Blocking()
    if not isinstance(value, dict):
        errors.append(_error("invalid_blocking", "blocking must be an object", pointer))
        return Blocking()
    for name, flag in value.items():
        if name not in BLOCKING_KEYS:
            errors.append(_error("invalid_blocking", f"blocking has no setting {name!r}; settings are "
                                 + ", ".join(BLOCKING_KEYS), f"{pointer}/{pointer_part(name)}"))
        elif not isinstance(flag, bool):
            errors.append(_error("invalid_blocking", f"blocking.{name} must be true or false",
                                 f"{pointer}/{name}", value=flag))
    return Blocking(**{k: v for k, v in value.items() if k in BLOCKING_KEYS and isinstance(v, bool)})


def check_version(body: Any, pointer: str = "#", *, version: int | None = None) -> tuple[VersionIn | None,
                                                                                        list[dict[str, Any]]]:
    """A plan version from its upload (`version` is assigned when the body gives none)."""
    if not isinstance(body, dict):
        return None, [_error("invalid_document", "a plan version must be an object", pointer)]
    errors: list[dict[str, Any]] = []
    number = body.get("version", version)
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_VERSION:
        errors.append(_error("invalid_version", f"version must be an integer from 1 to {MAX_VERSION}",
                             f"{pointer}/version", value=number))
    environment = body.get("activated_environment", "none")
    if environment not in ENVIRONMENTS:
        errors.append(_error("invalid_environment", f"activated_environment must be one of {', '.join(ENVIRONMENTS)}",
                             f"{pointer}/activated_environment", value=environment))
    description = body.get("version_description")
    document = body.get("version_document", {"data_points": []})
    errors.extend(check_version_document(document, f"{pointer}/version_document"))
    blocking = _blocking(body.get("blocking"), f"{pointer}/blocking", errors)
    if errors or not isinstance(number, int):
        return None, errors
    return VersionIn(version=number, version_description=description if isinstance(description, str) else None,
                     activated_environment=environment, version_document=document, blocking=blocking), []


def check_plan(body: Any) -> tuple[PlanIn | None, list[dict[str, Any]]]:
    """A whole plan document from its upload."""
    if not isinstance(body, dict):
        return None, [_error("invalid_document", "a plan must be a JSON object", "#")]
    errors: list[dict[str, Any]] = []
    plan_id = body.get("data_plan_id")
    if not isinstance(plan_id, str) or not plan_id or len(plan_id) > 100:
        errors.append(_error("invalid_plan_id", "data_plan_id must be a string of 1-100 characters",
                             "#/data_plan_id", value=plan_id))
    name = body.get("data_plan_name", plan_id)
    if not isinstance(name, str):
        errors.append(_error("invalid_plan_name", "data_plan_name must be a string", "#/data_plan_name"))
    raw_versions = body.get("data_plan_versions", [])
    if not isinstance(raw_versions, list):
        errors.append(_error("invalid_document", "data_plan_versions must be an array", "#/data_plan_versions"))
        raw_versions = []
    versions: list[VersionIn] = []
    numbers: set[int] = set()
    for index, raw in enumerate(raw_versions):
        version, problems = check_version(raw, f"#/data_plan_versions/{index}", version=index + 1)
        errors.extend(problems)
        if version is not None:
            if version.version in numbers:
                errors.append(_error("duplicate_version", f"version {version.version} appears twice",
                                     f"#/data_plan_versions/{index}/version", value=version.version))
            numbers.add(version.version)
            versions.append(version)
    if errors:
        return None, errors
    description = body.get("data_plan_description")
    return PlanIn(data_plan_id=str(plan_id), data_plan_name=str(name),
                  data_plan_description=description if isinstance(description, str) else None,
                  versions=versions), []
