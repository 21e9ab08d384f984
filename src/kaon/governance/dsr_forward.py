"""Forwarding an erasure to outputs whose vendor has a deletion API; each output gets a status and a message.

Statuses are OpenDSR's `pending | skipped | sent | failed`. Requests are made synchronously by the DSR worker
with a few bounded retries, before the request completes, so no identifier has to be kept afterwards.
"""

import base64
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import httpx

from kaon import outbound
from kaon.store.outputs import Output
from kaon.store.subject import Subject

ATTEMPTS = 3
# Event-ingestion hosts → the host of the vendor's deletion API; any other (self-hosted, test) base is kept.
HOSTS = {
    "https://api2.amplitude.com": "https://amplitude.com", "https://api.eu.amplitude.com":
        "https://analytics.eu.amplitude.com",
    "https://api.mixpanel.com": "https://mixpanel.com", "https://api-eu.mixpanel.com": "https://eu.mixpanel.com",
    "https://api-in.mixpanel.com": "https://in.mixpanel.com",
}
Call = tuple[str, str, dict[str, str], Any]  # method, url, headers, JSON body (None: no body)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _host(settings: dict[str, Any], default: str) -> str:
    base = str(settings.get("base_url") or default).rstrip("/")
    return HOSTS.get(base, base)


def _values(subject: Subject, identity_type: str) -> list[str]:
    return sorted(v for t, v in subject.identities if t == identity_type)


def _amplitude(s: dict[str, Any], subject: Subject) -> list[Call] | str:
    users = _values(subject, "customer_id")
    if not s.get("secret_key"):
        return "Amplitude's deletion API needs the project's secret key; this output's settings have none."
    if not users:
        return "no customer id to identify the user at Amplitude"
    return [("POST", _host(s, "https://api2.amplitude.com") + "/api/2/deletions/users",
             {"Authorization": _basic(str(s["api_key"]), str(s["secret_key"]))},
             {"user_ids": users, "requester": "kaon", "ignore_invalid_id": "True"})]


def _mixpanel(s: dict[str, Any], subject: Subject) -> list[Call] | str:
    ids = _values(subject, "customer_id") + sorted(str(m) for m in subject.mpids)
    if s.get("service_account_username") and s.get("service_account_secret"):
        auth = _basic(str(s["service_account_username"]), str(s["service_account_secret"]))
    elif s.get("api_secret"):
        auth = "Bearer " + str(s["api_secret"])
    else:
        return "Mixpanel's GDPR API needs a service account or the API secret; this output's settings have none."
    token = urllib.parse.quote(str(s["project_token"]))
    return [("POST", _host(s, "https://api.mixpanel.com") + f"/api/app/data-deletions/v3.0/?token={token}",
             {"Authorization": auth}, {"distinct_ids": ids, "compliance_type": "GDPR"})]


def _braze(s: dict[str, Any], subject: Subject) -> list[Call] | str:
    body: dict[str, Any] = {}
    if externals := _values(subject, "customer_id"):
        body["external_ids"] = externals
    body["user_aliases"] = [{"alias_name": str(m), "alias_label": s.get("alias_label", "mpid")}
                            for m in sorted(subject.mpids)]
    return [("POST", _host(s, "https://rest.iad-01.braze.com") + "/users/delete",
             {"Authorization": f"Bearer {s['api_key']}"}, body)]


def _iterable(s: dict[str, Any], subject: Subject) -> list[Call] | str:
    base = _host(s, "https://api.eu.iterable.com" if s.get("region") == "eu" else "https://api.iterable.com")
    headers = {"Api-Key": str(s["api_key"])}
    calls: list[Call] = [("DELETE", f"{base}/api/users/{urllib.parse.quote(e, safe='')}", headers, None)
                         for e in _values(subject, "email")]
    calls += [("DELETE", f"{base}/api/users/byUserId/{urllib.parse.quote(u, safe='')}", headers, None)
              for u in _values(subject, "customer_id")]
    return calls or "no email or customer id to identify the user at Iterable"


def _customerio(s: dict[str, Any], subject: Subject) -> list[Call] | str:
    base = _host(s, "https://track-eu.customer.io" if s.get("region") == "eu" else "https://track.customer.io")
    auth = {"Authorization": _basic(str(s["site_id"]), str(s["api_key"]))}
    calls: list[Call] = [("DELETE", f"{base}/api/v1/customers/{urllib.parse.quote(c, safe='')}", auth, None)
                         for c in _values(subject, "customer_id")]
    return calls or "no customer id to identify the person at Customer.io"


PLANNERS: dict[str, Callable[[dict[str, Any], Subject], list[Call] | str]] = {
    "amplitude": _amplitude, "mixpanel": _mixpanel, "braze": _braze, "iterable": _iterable,
    "customerio": _customerio,
}


def redacted(message: str, values: set[str]) -> str:
    """The message without these values: a vendor may echo an identifier back, and the entry outlives the erasure."""
    for needle in sorted(values, key=len, reverse=True):
        if needle:
            message = message.replace(needle, "<redacted>")
    return message


def supports(output: Output) -> bool:
    return output.destination in PLANNERS


def forward(output: Output, subject: Subject, client: httpx.Client,
            sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Send the output's deletion calls; the extension entry `{domain, name, status, status_message}`."""
    entry: dict[str, Any] = {"domain": output.destination, "name": output.name, "output_id": output.id}
    planned = PLANNERS[output.destination](output.settings, subject)
    if isinstance(planned, str):
        return {**entry, "status": "skipped", "status_message": planned}
    for method, url, headers, body in planned:
        error = "not sent"
        for attempt in range(ATTEMPTS):
            try:
                response = outbound.request(client, method, url, headers=headers, json=body, timeout=10)
            except outbound.Refused as failure:  # the same on every attempt
                error = str(failure)
                break
            except httpx.HTTPError as failure:
                error = f"{type(failure).__name__}: {failure}"
            else:
                if response.is_success or response.status_code == 404:  # 404: the vendor has no such user
                    error = ""
                    break
                error = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code not in (408, 429) and response.status_code < 500:
                    break
            sleep(min(0.5 * 2 ** attempt, 4.0))
        if error:
            message = f"{method} {urllib.parse.urlsplit(url).netloc}: {error}"
            return {**entry, "status": "failed", "status_message": redacted(message, subject.all_values())}
    return {**entry, "status": "sent", "status_message": f"{len(planned)} deletion request(s) accepted"}
