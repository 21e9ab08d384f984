"""Meta Custom Audiences: the users edge, Meta's normalisation and hashing (known digests), chunks, Graph errors."""

import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import msgspec

from destinations.audience_conformance import AudienceConformance, member
from kaon.activation.membership import DELETE, SETTINGS_FLAG
from kaon.delivery.send import send
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.meta_audiences import MAX_ROWS, email_key, phone_key, row_of
from kaon.destinations.outcome import Outcome
from kaon.destinations.registry import destinations
from support.capture import VendorCapture


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class TestMetaAudiences(AudienceConformance):
    name = "meta_custom_audiences"

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"audience_id": "23851234567890123", "access_token": "EAAB-token", "base_url": base_url}

    def test_adds_are_posted_and_removals_deleted_on_the_users_edge(self) -> None:
        requests = self.transformed([member(1), member(2), member(3, DELETE), member(4)])
        assert [(r.method, r.event_indices) for r in requests] == [("POST", (0, 1)), ("DELETE", (2,)),
                                                                   ("POST", (3,))]
        url = urlsplit(requests[0].url)
        assert url.path == "/v25.0/23851234567890123/users"
        assert parse_qs(url.query) == {"access_token": ["EAAB-token"]}
        payload = json.loads(requests[0].body)["payload"]
        assert payload["schema"] == ["EMAIL", "PHONE", "EXTERN_ID", "MADID"]
        assert payload["is_raw"] is True and payload["data_source"] == {"sub_type": "ANYTHING"}
        assert payload["data"][0] == [sha("ada.lovelace@example.com"), sha("442079460958"), "cust-1",
                                      "6d92078a-8246-4ba4-ae5b-76104861e7dc"]

    def test_the_rudderstack_fixture_digest_of_an_email(self) -> None:
        # rudder-transformer fb_custom_audience/processor: EMAIL "shrouti@abc.com" → 85cc9fef…0f05.
        assert email_key(" Shrouti@ABC.com") == "85cc9fefa1eff1baab55d10df0cecff2acb25344867a5d0f96e1b1c5e2f10f05"

    def test_normalisation_follows_meta(self) -> None:
        assert phone_key("+1 (650) 555-1212") == sha("16505551212")
        assert phone_key("0044 20 7946 0958") == sha("442079460958"), "leading zeros go"
        already = sha("someone@example.com")
        assert email_key(already.upper()) == already and phone_key(already) == already, "hashed values pass"
        assert row_of({"customer_id": " c-9 "}) == ["", "", "c-9", ""]
        assert row_of({"android_advertising_id": "ABC-1"}) == ["", "", "", "abc-1"]

    def test_a_member_without_any_key_meta_matches_on_is_skipped(self) -> None:
        requests = self.transformed([member(1, other="x"), member(2)])
        assert [r.event_indices for r in requests] == [(1,)]

    def test_at_most_ten_thousand_rows_per_request(self) -> None:
        requests = self.transformed([member(n) for n in range(MAX_ROWS + 1)])
        assert [len(r.event_indices) for r in requests] == [MAX_ROWS, 1]
        assert len(json.loads(requests[0].body)["payload"]["data"]) == MAX_ROWS

    def test_graph_errors_are_classified(self, capture: VendorCapture) -> None:
        request = self.transformed([member(1)], capture.url)[0]

        def answer(status: int, error: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
            capture.answer_next(1, status, headers=headers, body={"error": error})
            with httpx.Client() as client:
                return send(client, self.destination, request, 10)

        throttled = answer(400, {"code": 17, "message": "User request limit reached"})
        assert throttled.outcome == Outcome.RETRY and throttled.retry_after_s == 60
        assert answer(400, {"code": 2, "message": "Service temporarily unavailable"}).outcome == Outcome.RETRY
        flagged = answer(400, {"code": 100, "error_subcode": 1713230, "message": "Audience flagged"})
        assert flagged.outcome == Outcome.ABORT and "integrity" in flagged.message
        token = answer(400, {"code": 190, "message": "Invalid OAuth access token"})
        assert token.outcome == Outcome.ABORT and "190" in token.message


def test_each_connection_may_name_its_own_custom_audience() -> None:
    meta = destinations()["meta_custom_audiences"]
    settings = meta.parse_settings({"access_token": "t"})

    def to(audience: str | None, n: int) -> DeliveryEvent:
        made = member(n)
        flags = {**(made.event.data.custom_flags or {}), **({SETTINGS_FLAG: {"audience_id": audience}} if audience
                                                             else {})}
        return msgspec.structs.replace(made, event=msgspec.structs.replace(
            made.event, data=msgspec.structs.replace(made.event.data, custom_flags=flags)))

    requests = meta.transform([to("111", 1), to("111", 2), to("222", 3), to(None, 4)], settings)
    assert [(urlsplit(r.url).path, r.event_indices) for r in requests] == [
        ("/v25.0/111/users", (0, 1)), ("/v25.0/222/users", (2,))], "no audience at all: skipped"
