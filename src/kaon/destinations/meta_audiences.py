"""Meta Custom Audiences: members added (POST) and removed (DELETE) on a customer-list audience's `users` edge.

`{base_url}/{version}/{audience_id}/users?access_token=...` with `{"payload": {"schema": [...], "is_raw": true,
"data_source": {"sub_type": "ANYTHING"}, "data": [[...], ...]}}`: one row per member in the multi-key schema
EMAIL, PHONE, EXTERN_ID, MADID, at most 10,000 rows per request. Values are normalised as Meta's Business SDK
does (e-mail trimmed and lower-cased; phone digits only with the country code, no leading zeros), then SHA-256;
EXTERN_ID and MADID are sent as they are (Meta's rule), and a value already hashed (64 hex digits) passes through.
"""

import re
from collections.abc import Sequence
from typing import Annotated, Any, Final
from urllib.parse import quote, urlencode

import msgspec

from kaon.activation.membership import ADD, membership_of
from kaon.destinations.base import Destination, HttpRequest, Secret
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.graph_api import GRAPH_HOST, GRAPH_VERSION, GraphError, GraphUrl, GraphVersion, classify_graph
from kaon.destinations.meta_capi import sha256
from kaon.destinations.outcome import HttpResponse, SendPolicy, SendResult

MAX_ROWS: Final = 10_000
SCHEMA: Final = ("EMAIL", "PHONE", "EXTERN_ID", "MADID")
# Graph error 100 with this subcode: the audience is flagged by Meta's integrity rules (operation_status 471) and
# refuses membership edits until someone looks at it in Ads Manager.
INTEGRITY_SUBCODE: Final = 1713230
_HASHED = re.compile(r"^[0-9a-f]{64}$")
_encoder = msgspec.json.Encoder()


AudienceId = Annotated[str, msgspec.Meta(
    title="Custom audience ID", description="The customer-list custom audience the members go to.",
    examples=["23851234567890123"], pattern=r"^\d{1,30}$")]


class MetaAudienceConnection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An audience connection's settings (`settings.output`): its own custom audience, so one output (one ad
    account's token) serves many audiences."""

    audience_id: AudienceId | None = None


class MetaAudiencesSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    audience_id: Annotated[AudienceId | None, msgspec.Meta(
        title="Default custom audience ID",
        description="The custom audience of connections that name none of their own (`settings.output."
                    "audience_id`, so one output serves many audiences).")] = None
    access_token: Annotated[Secret, msgspec.Meta(
        title="Access token", description="A system-user access token with `ads_management` on the ad account "
                                          "(sent as `access_token`).")]
    base_url: GraphUrl = GRAPH_HOST
    api_version: GraphVersion = GRAPH_VERSION


def _hashed(value: str, normal: str) -> str:
    """SHA-256 hex of the normalised value; a value that already is a SHA-256 hex digest as it is."""
    cleaned = value.strip().lower()
    return cleaned if _HASHED.match(cleaned) else sha256(normal)


def email_key(value: str) -> str:
    return _hashed(value, value.strip(" \t\r\n\0\x0b.").lower()) if value.strip() else ""


def phone_key(value: str) -> str:
    """Digits with the country code and no leading zeros; an international number's "(0)" trunk prefix goes
    (`+44 (0)20 ...` is 4420...)."""
    number = value.replace("(0)", "") if value.strip().startswith("+") else value
    digits = re.sub(r"\D", "", number).lstrip("0")
    return _hashed(value, digits) if digits or _HASHED.match(value.strip().lower()) else ""


def row_of(identities: dict[str, str]) -> list[str]:
    """The member's row in SCHEMA order ("" where the profile has no value)."""
    madid = identities.get("ios_advertising_id") or identities.get("android_advertising_id") or ""
    return [email_key(identities.get("email", "")), phone_key(identities.get("mobile_number", "")),
            identities.get("customer_id", "").strip(), madid.strip().lower()]


class MetaAudiences(Destination):
    name = "meta_custom_audiences"
    title = "Meta Custom Audiences"
    category = "Advertising"
    description = ("Keeps a Meta customer-list custom audience in step with a Kaon audience: members are added "
                   "and removed with hashed e-mail, phone, external id and mobile advertiser id.")
    settings_type = MetaAudiencesSettings
    policy = SendPolicy(batch_size=MAX_ROWS, max_concurrency=1, timeout_s=60.0)
    audience = True
    takes_events = False
    connection_settings_type = MetaAudienceConnection
    identity_types = ("email", "mobile_number", "customer_id", "ios_advertising_id", "android_advertising_id")
    docs_notes = (
        "An audience output: connect an audience to it (`POST /api/v1/audiences/{id}/connections`). Adds are "
        "`POST` and removals `DELETE` on `{base_url}/{api_version}/{audience_id}/users?access_token=...`, JSON "
        "bodies, at most 10,000 rows per request; a run of adds and a run of removals are separate requests, in "
        "change order. Meta applies changes within about 24 hours. Graph error codes 4, 17, 32, 613 and 80004 "
        "(throttling) are retried after `Retry-After` or 60 s; 1, 2, 341 and `is_transient` errors are retried; "
        "error 100 with subcode 1713230 (the audience is flagged by Meta's integrity rules) is aborted with that "
        "reason, as is any other 4xx (dead-lettered, replayable once fixed).")
    mapping_notes = (
        ("member added / removed", '`{"payload": {"schema": ["EMAIL", "PHONE", "EXTERN_ID", "MADID"], "is_raw": '
                                   'true, "data_source": {"sub_type": "ANYTHING"}, "data": [[...]]}}`'),
        ("email", "EMAIL: trimmed, lower-cased, SHA-256 (a 64-hex value as it is)"),
        ("mobile_number", "PHONE: digits only (with the country code; an international number's `(0)` dropped), "
                          "leading zeros dropped, SHA-256"),
        ("customer_id", "EXTERN_ID, not hashed"),
        ("ios_advertising_id / android_advertising_id", "MADID, lower-cased, not hashed"),
    )

    def transform(self, events: Sequence[DeliveryEvent], settings: Any) -> list[HttpRequest]:
        assert isinstance(settings, MetaAudiencesSettings)
        runs: list[tuple[str, str, list[int], list[list[str]]]] = []  # (audience, action, events, rows)
        for index, item in enumerate(events):
            change = membership_of(item)
            if change is None:
                continue
            audience = change.settings.get("audience_id") or settings.audience_id
            row = row_of(change.identities)
            if not audience or not any(row):
                continue  # no custom audience to go to, or nothing Meta can match on
            if not runs or runs[-1][:2] != (audience, change.action) or len(runs[-1][2]) >= MAX_ROWS:
                runs.append((audience, change.action, [], []))
            runs[-1][2].append(index)
            runs[-1][3].append(row)
        query = urlencode({"access_token": settings.access_token})
        base = f"{settings.base_url.rstrip('/')}/{settings.api_version}"
        return [HttpRequest("POST" if action == ADD else "DELETE", f"{base}/{quote(audience)}/users?{query}",
                            {"Content-Type": "application/json"},
                            _encoder.encode({"payload": {"schema": list(SCHEMA), "is_raw": True,
                                                         "data_source": {"sub_type": "ANYTHING"}, "data": rows}}),
                            tuple(indices))
                for audience, action, indices, rows in runs]

    def classify(self, request: HttpRequest, response: HttpResponse) -> SendResult:
        return classify_graph(response, _flagged)


def _flagged(error: GraphError, text: str) -> str | None:
    if error.code == 100 and error.subcode == INTEGRITY_SUBCODE:
        return f"the audience is flagged by Meta's integrity rules and refuses membership changes: review it in " \
               f"Ads Manager ({text})"
    return None


destination = MetaAudiences()
