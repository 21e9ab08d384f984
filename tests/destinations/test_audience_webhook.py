"""The audience membership webhook: mParticle's `audience_membership_change_request`, typed identities, signing."""

import hashlib
import hmac
import json
from typing import Any

from destinations.audience_conformance import AudienceConformance, member
from kaon.activation.membership import DELETE


class TestAudienceWebhook(AudienceConformance):
    name = "audience_webhook"

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"base_url": f"{base_url}/audiences", "signing_secret": "s3cret", "account_id": 42}

    def test_one_request_in_the_firehose_shape(self) -> None:
        (request,) = self.transformed([member(1), member(2, DELETE, email="grace@example.com")])
        body = json.loads(request.body)
        assert body["type"] == "audience_membership_change_request" and body["firehose_version"] == "2.8.1"
        assert body["account"] == {"account_id": 42, "account_settings": {}}
        first, second = body["user_profiles"]
        assert first["mpid"] == "8675310"
        assert first["audiences"] == [{"audience_id": "aud_1", "audience_name": "Cart abandoners", "action": "add"}]
        assert {i["type"]: i["value"] for i in first["user_identities"]} == {
            "customer": "cust-1", "email": "Ada.Lovelace@Example.com ", "mobile_number": "+44 (0)20 7946 0958"}
        assert first["device_identities"] == [{"type": "ios_advertising_id", "encoding": "raw",
                                               "value": "6D92078A-8246-4BA4-AE5B-76104861E7DC"}]
        assert second["audiences"][0]["action"] == "delete"
        assert second["user_identities"] == [{"type": "email", "encoding": "raw", "value": "grace@example.com"}]

    def test_identities_can_be_hashed(self) -> None:
        settings = self.destination.parse_settings({"base_url": "http://vendor.test", "encoding": "sha256"})
        (request,) = self.destination.transform([member(1)], settings)
        email = next(i for i in json.loads(request.body)["user_profiles"][0]["user_identities"]
                     if i["type"] == "email")
        assert email == {"type": "email", "encoding": "sha256",
                         "value": hashlib.sha256(b"ada.lovelace@example.com").hexdigest()}

    def test_signed_like_the_webhook_output(self) -> None:
        (request,) = self.transformed([member(1)])
        signed = request.headers["X-Kaon-Timestamp"].encode() + b"." + request.body
        assert request.headers["X-Kaon-Signature"] == hmac.new(b"s3cret", signed, hashlib.sha256).hexdigest()
        assert request.headers["Idempotency-Key"] == "acn_1-1-add"

    def test_the_request_id_is_the_same_on_every_retry(self) -> None:
        assert self.transformed([member(1)])[0].body == self.transformed([member(1)])[0].body
