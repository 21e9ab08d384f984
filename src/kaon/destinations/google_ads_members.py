"""Google Ads Customer Match: members as UserIdentifiers (Google's normalisation and hashing) and a batch's
plan of uploads (one per action; a profile's last change in the batch decides)."""

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from kaon.activation.membership import membership_of
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.outcome import Outcome, SendResult

MAX_IDENTIFIERS_PER_REQUEST: Final = 10_000
MAX_IDENTIFIERS_PER_USER: Final = 20
_HASHED = re.compile(r"^[0-9a-f]{64}$")
NOT_A_CHANGE = SendResult(Outcome.SKIP, "not an audience membership change")
SUPERSEDED = SendResult(Outcome.SKIP, "superseded by a later change of the same profile in this batch")


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def email_key(value: str) -> str | None:
    """Trimmed, lower-cased, SHA-256 hex (a value already hashed as it is)."""
    cleaned = value.strip().lower()
    return (cleaned if _HASHED.match(cleaned) else sha256_hex(cleaned)) if cleaned else None


def phone_key(value: str) -> str | None:
    """E.164 (`+`, country code, digits) then SHA-256. Only a number written with `+` has a certain country code;
    any other is not used. An international number's "(0)" trunk prefix goes (`+44 (0)20 ...` is +4420...)."""
    cleaned = value.strip()
    if _HASHED.match(cleaned.lower()):
        return cleaned.lower()
    if not cleaned.startswith("+") or re.search(r"[^\d\s().+-]", cleaned):
        return None
    digits = re.sub(r"\D", "", cleaned.replace("(0)", ""))
    return sha256_hex(f"+{digits}") if 7 <= len(digits) <= 15 and not digits.startswith("0") else None


def identifiers_of(identities: dict[str, str], key_type: str) -> list[dict[str, str]]:
    """The member's UserIdentifiers for a list of this key type."""
    pairs: list[tuple[str, str | None]]
    if key_type == "contact_info":
        pairs = [("hashedEmail", email_key(identities.get("email", ""))),
                 ("hashedPhoneNumber", phone_key(identities.get("mobile_number", "")))]
    elif key_type == "crm_id":
        pairs = [("thirdPartyUserId", identities.get("customer_id", "").strip())]
    else:
        pairs = [("mobileId", identities.get(k, "").strip()) for k in ("ios_advertising_id", "android_advertising_id")]
    return [{name: value} for name, value in pairs if value]


def user_data(identifiers: list[dict[str, str]]) -> dict[str, Any]:
    """One person's UserData: at most 20 identifiers (Google's limit)."""
    return {"userIdentifiers": identifiers[:MAX_IDENTIFIERS_PER_USER]}


@dataclass
class Upload:
    """One job's worth of the batch: an action and its members (event index, identifiers) in change order."""

    action: str
    members: list[tuple[int, list[dict[str, str]]]]


def plan(events: Sequence[DeliveryEvent], key_type: str) -> tuple[list[SendResult | None], list[Upload]]:
    """Skips decided up front (None: to be sent), and the uploads in the order their action first appears.
    Membership is a set, so a profile's last change in the batch decides for the identifiers it names; an earlier
    change whose identifiers it all names is superseded."""
    results: list[SendResult | None] = [None] * len(events)
    found: list[tuple[int, int, str, list[dict[str, str]]]] = []
    last: dict[int, int] = {}  # mpid → index of its last change
    for index, item in enumerate(events):
        change = membership_of(item)
        if change is None:
            results[index] = NOT_A_CHANGE
            continue
        identifiers = identifiers_of(change.identities, key_type)
        if not identifiers:
            results[index] = SendResult(Outcome.SKIP, f"no identifier a {key_type} list matches on")
            continue
        found.append((index, change.mpid, change.action, identifiers))
        last[change.mpid] = index
    latest = {index: identifiers for index, _, _, identifiers in found}
    uploads: dict[str, Upload] = {}
    for index, mpid, action, identifiers in found:
        # An earlier change is decided by the later one only when that one names the same identifiers: a removal
        # of values the member lost (an identity change) must still go.
        final = latest[last[mpid]]
        if last[mpid] != index and all(i in final for i in identifiers):
            results[index] = SUPERSEDED
            continue
        uploads.setdefault(action, Upload(action, [])).members.append((index, identifiers))
    return results, list(uploads.values())


def chunks(members: list[tuple[int, list[dict[str, str]]]]) -> list[list[tuple[int, list[dict[str, str]]]]]:
    """Consecutive members, at most MAX_IDENTIFIERS_PER_REQUEST identifiers per chunk."""
    out: list[list[tuple[int, list[dict[str, str]]]]] = [[]]
    size = 0
    for member in members:
        count = min(len(member[1]), MAX_IDENTIFIERS_PER_USER)
        if out[-1] and size + count > MAX_IDENTIFIERS_PER_REQUEST:
            out.append([])
            size = 0
        out[-1].append(member)
        size += count
    return out
