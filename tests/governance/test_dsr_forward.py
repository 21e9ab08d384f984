"""Forwarding a deletion to a vendor obeys the outbound policy: a refused address is not contacted and the
request's extension entry says why."""

import httpx
import pytest

from kaon.governance.dsr_erase import Subject
from kaon.governance.dsr_forward import forward
from kaon.store.outputs import Output
from support.capture import VendorCapture

SUBJECT = Subject(workspace_id="ws_test", mpids={42}, identities={("customer_id", "cust-1")}, attribute_values=set(),
                  event_ids=[])


def amplitude(url: str) -> Output:
    return Output(id="out_amp", workspace_id="ws_test", name="amp", destination="amplitude",
                  settings={"api_key": "k", "secret_key": "s", "base_url": url}, enabled=True, created_ms=0,
                  updated_ms=0)


def test_a_deletion_to_a_refused_address_is_not_sent(monkeypatch: pytest.MonkeyPatch,
                                                     capture: VendorCapture) -> None:
    monkeypatch.setenv("KAON_OUTBOUND_ALLOW", "")
    with httpx.Client() as client:
        entry = forward(amplitude(capture.url), SUBJECT, client, sleep=lambda s: None)
    assert entry["status"] == "failed" and "KAON_OUTBOUND_ALLOW" in entry["status_message"]
    assert capture.requests() == []


def test_a_deletion_to_a_listed_address_is_sent(capture: VendorCapture) -> None:
    with httpx.Client() as client:  # the suite lists 127.0.0.1
        entry = forward(amplitude(capture.url), SUBJECT, client, sleep=lambda s: None)
    assert entry["status"] == "sent", entry
    [seen] = capture.requests()
    assert seen.route == "/api/2/deletions/users" and seen.headers["host"] == capture.url.split("//")[1]
