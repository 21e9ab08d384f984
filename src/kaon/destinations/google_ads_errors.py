"""Google Ads API answers read defensively: error codes, messages and quota delays of an error body, and the
operations a partial failure refused."""

import re
from typing import Any

import msgspec


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def decoded_object(text: str) -> dict[str, Any]:
    try:
        return as_dict(msgspec.json.decode(text))
    except msgspec.DecodeError:
        return {}


def _failures(status: dict[str, Any]) -> list[dict[str, Any]]:
    """The GoogleAdsError entries of a google.rpc.Status (an error body's `error`, or `partialFailureError`)."""
    return [e for d in as_list(status.get("details")) for e in as_list(as_dict(d).get("errors")) if isinstance(e, dict)]


def _describe(error: dict[str, Any]) -> str:
    codes = error.get("errorCode")
    code = " ".join(f"{k} {v}" for k, v in codes.items()) if isinstance(codes, dict) else ""
    return f"{code}: {error.get('message', '')}" if code else str(error.get("message", ""))


def failed_operations(answer: dict[str, Any], count: int) -> dict[int, str]:
    """Positions (in the request's operations) Google refused, with why, from `partialFailureError`."""
    status = answer.get("partialFailureError")
    if not isinstance(status, dict):
        return {}
    failed: dict[int, str] = {}
    for error in _failures(status):
        for element in as_list(as_dict(error.get("location")).get("fieldPathElements")):
            if as_dict(element).get("fieldName") == "operations":
                index = element.get("index", 0)  # proto3 JSON may leave a 0 out
                if isinstance(index, int) and 0 <= index < count:
                    failed.setdefault(index, _describe(error)[:300])
                break
    if not failed:  # a failure Google did not place: every operation of the request is in doubt
        return dict.fromkeys(range(count), str(status.get("message", "refused"))[:300])
    return failed


def google_error(body: bytes) -> tuple[set[str], str, float | None]:
    """(error codes, a readable message, the quota retryDelay in seconds) of a Google Ads API error body."""
    status = decoded_object(body.decode("utf-8", "replace")).get("error")
    if not isinstance(status, dict):
        return set(), "", None
    errors = _failures(status)
    codes = {str(v) for e in errors if isinstance(e.get("errorCode"), dict) for v in e["errorCode"].values()}
    delay = next((d for e in errors if (d := as_dict(as_dict(e.get("details")).get("quotaErrorDetails"))
                                        .get("retryDelay"))), None)
    wait = float(delay[:-1]) if isinstance(delay, str) and re.fullmatch(r"\d+(\.\d+)?s", delay) else None
    head = " ".join(str(status[k]) for k in ("status", "message") if status.get(k))
    return codes, "; ".join([head, *(_describe(e) for e in errors[:3])]).strip("; "), wait
