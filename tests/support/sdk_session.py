"""One browser SDK on a test page, driven through its harness, and the checks every SDK e2e test shares:
Kaon stored page, track, identify, group and alias; every call was cross-origin, answered 2xx, met no CORS
error; and no request left 127.0.0.1 (the vendor's CDN and control plane are never reached)."""

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from support.browser import PageLog, VendorGuard
from support.server import KaonServer
from support.waiting import eventually


class SdkPage:
    def __init__(self, page: Any, log: PageLog, guard: VendorGuard, kaon: KaonServer, origin: str) -> None:
        self.page, self.log, self.guard, self.kaon, self.origin = page, log, guard, kaon, origin

    def evaluate(self, script: str, *args: Any) -> Any:
        return self.page.evaluate(script, list(args))

    def pump(self) -> bool:
        """A round trip to the page: Playwright's sync API delivers page events (responses, console) and runs
        route handlers (so requests the page makes on its own timers leave the browser) only then."""
        return bool(self.evaluate("() => true"))

    def describe(self) -> str:
        self.pump()
        return self.log.describe() + "".join(f"\nvendor request aborted: {u}" for u in self.guard.attempted)


@contextmanager
def sdk_page(browser: Any, kaon: KaonServer, page_url: str, **context_options: Any) -> Iterator[SdkPage]:
    """A fresh browser context (no storage carried over) with the page at `page_url` loaded."""
    context = browser.new_context(**context_options)
    try:
        guard = VendorGuard()
        guard.attach(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        log = PageLog(watch_prefix=kaon.url)
        log.attach(page)
        page.goto(page_url)
        assert page.evaluate("() => typeof kaonSdk === 'object'")
        parts = urlsplit(page_url)
        yield SdkPage(page, log, guard, kaon, f"{parts.scheme}://{parts.netloc}")
    finally:
        context.close()


def the_five_calls(tag: str) -> list[tuple[str, list[Any]]]:
    """page, track (with revenue and currency), identify (with an email), group and alias, as both Segment's
    and RudderStack's SDKs take them."""
    return [
        ("page", ["Docs", f"Home {tag}", {"section": "intro"}]),
        ("track", [f"Clicked {tag}", {"revenue": 9.5, "currency": "EUR", "button": "buy"}]),
        ("identify", [f"user-{tag}", {"email": f"{tag}@example.com", "plan": "pro"}]),
        ("group", [f"group-{tag}", {"name": f"Acme {tag}", "employees": 50}]),
        ("alias", [f"new-{tag}", f"user-{tag}"]),
    ]


def stored_calls(kaon: KaonServer, tag: str, sdk: SdkPage) -> dict[str, list[dict[str, Any]]]:
    """The events Kaon stored for the five calls of `tag`, by call, once each call has its events."""

    def probe() -> dict[str, list[dict[str, Any]]]:
        sdk.pump()  # the vendor guard's route handler runs only while Playwright is called
        mine = [e for e in kaon.events() if tag in json.dumps(e)]
        found = {
            "page": [e for e in mine if e["event_type"] == "screen_view" and e["event_name"] == f"Docs Home {tag}"],
            "track": [e for e in mine if e["event_type"] in ("custom_event", "commerce_event")
                      and e["event_name"] == f"Clicked {tag}"],
            "identify": [e for e in mine if e["event_type"] in ("user_identity_change", "user_attribute_change")],
            "group": [e for e in mine if e["event_type"] == "group"],
            "alias": [e for e in mine if e["event_type"] == "alias"],
        }
        missing = [call for call, events in found.items() if not events]
        assert not missing, f"no stored events yet for {missing}"
        return found

    try:
        return eventually(probe, timeout=20, what=f"every call of {tag} stored")
    except AssertionError as error:
        raise AssertionError(f"{error}\nWhat the page saw:\n{sdk.describe()}") from None


def check_stored(found: dict[str, list[dict[str, Any]]], tag: str, input_id: str) -> None:
    """What each call became in Kaon."""
    assert len(found["page"]) == 1 and len(found["track"]) == 1, found
    assert found["track"][0]["data"]["custom_attributes"]["revenue"] == 9.5, found["track"]
    assert found["track"][0]["data"]["custom_attributes"]["currency"] == "EUR", found["track"]
    identities = {e["data"]["new"]["identity_type"]: e["data"]["new"]["identity"]
                  for e in found["identify"] if e["event_type"] == "user_identity_change"}
    assert identities == {"customer_id": f"user-{tag}", "email": f"{tag}@example.com"}, found["identify"]
    attributes = {e["data"]["user_attribute_name"]: e["data"]["new"]
                  for e in found["identify"] if e["event_type"] == "user_attribute_change"}
    assert attributes.get("email") == f"{tag}@example.com", found["identify"]
    assert [e["data"]["group_id"] for e in found["group"]] == [f"group-{tag}"], found["group"]
    assert found["group"][0]["data"]["traits"]["name"] == f"Acme {tag}", found["group"]
    assert [e["data"]["previous_id"] for e in found["alias"]] == [f"user-{tag}"], found["alias"]
    assert all(e["input_id"] == input_id for events in found.values() for e in events), found


def check_traffic(sdk: SdkPage, expected_paths: set[str]) -> list[dict[str, Any]]:
    """Every request to Kaon was cross-origin and answered 2xx, no CORS error, nothing left 127.0.0.1, and
    the SDK used each of `expected_paths` (path, no query); returns the exchanges with Kaon."""
    exchanges = eventually(lambda: sdk.pump() and expected_paths <= {urlsplit(x["url"]).path
                                                                        for x in sdk.log.exchanges}
                           and sdk.log.exchanges, timeout=15, what=f"requests to {sorted(expected_paths)} seen")
    described = sdk.describe()
    assert sdk.origin != sdk.kaon.url
    # The browser said: another origin (Playwright reports no request headers of a beacon, so those are skipped).
    origins = [x["origin"] for x in exchanges if x["origin"] is not None]
    assert origins and all(o == sdk.origin for o in origins), described
    assert all(200 <= x["status"] < 300 for x in exchanges), described
    assert sdk.log.cors_errors() == [], described
    assert sdk.log.failed == [], described
    assert sdk.guard.attempted == [], described
    return list(exchanges)


def rate_limited_key(kaon: KaonServer) -> str:
    """The key of a new web input limited to 2 requests/s: Kaon answers 429 with `Retry-After`, so an SDK
    making several calls at once retries some (with its retry headers, through the browser's own CORS)."""
    made = kaon.admin("POST", "/inputs", json={"name": f"limited-{uuid.uuid4().hex[:8]}", "platform": "web",
                                               "rate_limit_rps": 2})
    assert made.status_code == 201, made.text
    key = str(made.json()["key"])
    eventually(lambda: kaon.admin("GET", "/inputs").status_code == 200, what="admin API up")
    return key


def retried(sdk: SdkPage, path: str, header: str) -> dict[str, Any]:
    """An exchange under `path` that reached Kaon (200) carrying `header`, once seen."""

    def probe() -> list[dict[str, Any]]:
        sdk.pump()
        return [x for x in sdk.log.exchanges if urlsplit(x["url"]).path.startswith(path) and header in x["headers"]
                and x["status"] == 200]

    try:
        return eventually(probe, timeout=20, what=f"a retry of {path} with {header}")[0]
    except AssertionError as error:
        raise AssertionError(f"{error}\nWhat the page saw:\n{sdk.describe()}") from None
