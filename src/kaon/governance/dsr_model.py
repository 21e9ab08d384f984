"""OpenDSR v3 requests: validation of a submission and the mapping of DSR identity names to Kaon's."""

import datetime
import uuid
from typing import Any

import msgspec

API_VERSION = "3.0"
REQUEST_TYPES = ("access", "portability", "erasure")
REGULATIONS = ("gdpr", "ccpa")
STATUSES = ("pending", "in_progress", "completed", "cancelled")
MAX_IDENTITIES = 50
EXTENSION_DOMAIN = "opendsr.mparticle.com"

# DSR v3 top-level identity names → Kaon's canonical identity types (wire formats §4.3).
TOP_LEVEL: dict[str, str] = {
    "controller_customer_id": "customer_id", "email": "email",
    "android_advertising_id": "android_advertising_id", "android_id": "android_uuid",
    "fire_advertising_id": "fire_advertising_id", "ios_advertising_id": "ios_advertising_id",
    "ios_vendor_id": "ios_idfv", "microsoft_advertising_id": "microsoft_advertising_id",
    "microsoft_publisher_id": "microsoft_publisher_id", "roku_advertising_id": "roku_advertising_id",
    "roku_publisher_id": "roku_publisher_id",
}
# Names allowed in `extensions["opendsr.mparticle.com"].subject_identities`; `mpid` is handled apart.
EXTENSION: dict[str, str] = {
    "other": "other", **{f"other{n}": f"other_id_{n}" for n in range(2, 11)},
    "mobile_number": "mobile_number", "phone_number_2": "phone_number_2", "phone_number_3": "phone_number_3",
}
MPID = "mpid"


class DsrError(Exception):
    """An OpenDSR error answer: `{"code", "message", "errors": [{"domain", "reason", "message"}]}`."""

    def __init__(self, status: int, message: str, reason: str = "ValidationException",
                 details: list[str] | None = None, domain: str = "Validation",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.message = message
        self.errors = [{"domain": domain, "reason": reason, "message": m} for m in (details or [message])]

    def body(self) -> dict[str, Any]:
        return {"code": self.status, "message": self.message, "errors": self.errors}


class Submission(msgspec.Struct, frozen=True, kw_only=True):
    """A validated request: identities in Kaon's canonical names (`mpid` as its own type)."""

    subject_request_id: str
    subject_request_type: str
    regulation: str
    submitted_time: str | None
    identities: dict[str, str]  # canonical type → value
    status_callback_urls: list[str]
    group_id: str | None
    skip_waiting_period: bool
    api_version: str


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _identities(raw: object, names: dict[str, str], where: str, problems: list[str]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(f"`{where}` must be an object of identity type → {{value, encoding}}.")
        return {}
    out: dict[str, str] = {}
    for name, item in raw.items():
        if name not in names:
            problems.append(f"`{where}.{name}` is not a supported identity type.")
            continue
        if not isinstance(item, dict) or not isinstance(item.get("value"), str) or not item["value"].strip():
            problems.append(f"`{where}.{name}.value` must be a non-empty string.")
            continue
        encoding = item.get("encoding", "raw")
        if encoding != "raw":
            problems.append(f"`{where}.{name}.encoding` must be `raw` (hashed encodings are not supported).")
            continue
        value = item["value"].strip()
        out[names[name]] = value.lower() if names[name] == "email" else value
    return out


def parse_submission(body: bytes) -> Submission:
    """The request, or DsrError(400) listing every problem found."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise DsrError(400, "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise DsrError(400, "The request body must be a JSON object.")
    problems: list[str] = []
    request_id = data.get("subject_request_id")
    try:
        parsed = uuid.UUID(str(request_id))
        if str(parsed) != str(request_id).lower():
            raise ValueError
    except ValueError:
        problems.append("`subject_request_id` must be a UUID.")
    kind = data.get("subject_request_type")
    if kind not in REQUEST_TYPES:
        problems.append(f"`subject_request_type` must be one of {', '.join(REQUEST_TYPES)}.")
    regulation = data.get("regulation", "gdpr")
    if regulation not in REGULATIONS:
        problems.append(f"`regulation` must be one of {', '.join(REGULATIONS)}.")
    version = data.get("api_version", API_VERSION)
    if not isinstance(version, str) or not version.startswith("3"):
        problems.append("`api_version` must be 3.0.")
    urls = data.get("status_callback_urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) and u.startswith(("http://", "https://"))
                                              for u in urls):
        problems.append("`status_callback_urls` must be a list of http(s) URLs.")
        urls = []
    group = data.get("group_id")
    if group is not None and not isinstance(group, str):
        problems.append("`group_id` must be a string.")
    submitted = data.get("submitted_time")
    if submitted is not None and not isinstance(submitted, str):
        problems.append("`submitted_time` must be an ISO-8601 time.")
    extension = (data.get("extensions") or {}).get(EXTENSION_DOMAIN) if isinstance(data.get("extensions"),
                                                                                     dict) else None
    if extension is not None and not isinstance(extension, dict):
        problems.append(f"`extensions.{EXTENSION_DOMAIN}` must be an object.")
        extension = None
    extension = extension or {}
    skip = extension.get("skip_waiting_period", False)
    if not isinstance(skip, bool):
        problems.append("`skip_waiting_period` must be a boolean.")
    top = _identities(data.get("subject_identities"), TOP_LEVEL, "subject_identities", problems)
    extra = _identities(extension.get("subject_identities"), {**EXTENSION, MPID: MPID},
                        f"extensions.{EXTENSION_DOMAIN}.subject_identities", problems)
    identities = {**top, **extra}
    if MPID in identities:
        if len(identities) > 1:
            problems.append("`mpid` must be the only identity of a request.")
        elif not identities[MPID].lstrip("-").isdigit():
            problems.append("`mpid` must be an integer.")
    if not identities and not problems:
        problems.append("`subject_identities` must hold at least one identity.")
    if len(identities) > MAX_IDENTITIES:
        problems.append(f"At most {MAX_IDENTITIES} identities per request.")
    if problems:
        raise DsrError(400, "The request is invalid.", details=problems)
    assert isinstance(request_id, str) and isinstance(kind, str) and isinstance(regulation, str)
    return Submission(
        subject_request_id=request_id.lower(), subject_request_type=kind, regulation=regulation,
        submitted_time=submitted, identities=identities, status_callback_urls=list(urls),
        group_id=group, skip_waiting_period=bool(skip), api_version=API_VERSION,
    )
