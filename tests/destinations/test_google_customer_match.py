"""Google Ads Customer Match: OAuth, the job flow (create, addOperations, run), Google's hashing, chunks, errors.

One capture server stands in for both Google's token endpoint and the Google Ads API; its answers are scripted in
call order. The output manages its own calls (`deliver`), so the conformance tests that go through `transform`
and `send` are replaced here by ones that check the same property through `deliver`.
"""

import copy
from typing import Any
from urllib.parse import parse_qs

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from destinations.audience_conformance import IDENTITIES, AudienceConformance, changes, member
from kaon import outbound
from kaon.activation.membership import DELETE
from kaon.destinations import google_customer_match as gcm
from kaon.destinations.google_ads_errors import failed_operations, google_error
from kaon.destinations.google_ads_members import (
    MAX_IDENTIFIERS_PER_REQUEST,
    email_key,
    identifiers_of,
    phone_key,
    user_data,
)
from kaon.destinations.google_customer_match import GoogleCustomerMatch
from kaon.destinations.outcome import Outcome, SendResult
from kaon.destinations.registry import destinations
from support.capture import Captured, VendorCapture
from support.events import every_kind

# Known digests (sha256sum of the normalised text, computed outside this code).
ADA = "e814ff3dc480a94c7ce9334062ec4733c75a002f4bcec0197f62ffea64059e2f"  # ada.lovelace@example.com
GRACE = "b533d4547eaa5a0fa955965a1ca393ccd2ea013032a105726f232eb41bddc4fa"  # grace@example.com
US_PHONE = "1e231c66011e7a2d867a9cfae267a6aff103cf4913640b6e71a99850fc0ffbc8"  # +16505551212
UK_PHONE = "f0bf0228144d9fe2bdf1da2d8ca698f17bf1410ee688b075c27062e47b6f0b6d"  # +442079460958
CUSTOMER = "1234567890"
JOB = f"customers/{CUSTOMER}/offlineUserDataJobs/555"
API = f"/v26/customers/{CUSTOMER}"


def token(value: str = "ya29.first", expires_in: int = 3599) -> dict[str, Any]:
    return {"access_token": value, "expires_in": expires_in, "token_type": "Bearer"}


def job(number: int = 555, adds: int = 1) -> list[Any]:
    """Google's answers to one job's create, `adds` addOperations and run."""
    return [{"resourceName": f"customers/{CUSTOMER}/offlineUserDataJobs/{number}"}, *([{}] * adds),
            {"name": f"customers/{CUSTOMER}/operations/{number}"}]


def script(capture: VendorCapture, *answers: Any) -> None:
    """Answers in call order: a body (200) or (status, body) or (status, body, headers)."""
    for answer in answers:
        status, body, headers = (*answer, {})[:3] if isinstance(answer, tuple) else (200, answer, {})
        capture.answer_next(1, status, body=body, headers=headers)


def ads_error(status: int, grpc: str, code: dict[str, str], message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": "Request contains an invalid argument.", "status": grpc,
                      "details": [{"@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure",
                                   "errors": [{"errorCode": code, "message": message}], "requestId": "r-1"}]}}


def partial_failure(*indices: int) -> dict[str, Any]:
    errors = [{"errorCode": {"offlineUserDataJobError": "INVALID_SHA256_FORMAT"},
               "message": "The SHA256 encoded value is malformed.",
               "location": {"fieldPathElements": [{"fieldName": "operations", "index": i}, {"fieldName": "create"},
                                                  {"fieldName": "user_identifiers", "index": 0}]}} for i in indices]
    return {"partialFailureError": {"code": 3, "message": "Multiple errors in details.", "details": [
        {"@type": "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure", "errors": errors}]}}


def ads_calls(capture: VendorCapture) -> list[Captured]:
    return [r for r in capture.requests() if r.route != "/token"]


def operations(capture: VendorCapture) -> list[list[dict[str, Any]]]:
    return [r.json()["operations"] for r in capture.requests() if r.route.endswith(":addOperations")]


class TestGoogleCustomerMatch(AudienceConformance):
    name = "google_customer_match"

    @pytest.fixture(autouse=True)
    def own_instance(self) -> None:
        self.instance = GoogleCustomerMatch()  # its own token cache and job record: tests share neither

    @property
    def destination(self) -> GoogleCustomerMatch:
        return self.instance

    def settings(self, base_url: str, **overrides: Any) -> dict[str, Any]:
        return {"customer_id": "123-456-7890", "user_list_id": "8123456789", "developer_token": "dev-token",
                "client_id": "client.apps.googleusercontent.com", "client_secret": "client-secret",
                "refresh_token": "1//refresh", "base_url": base_url, "token_url": f"{base_url}/token", **overrides}

    def deliver(self, events: list[Any], capture: VendorCapture, **overrides: Any) -> list[SendResult]:
        settings = self.destination.parse_settings(self.settings(capture.url, **overrides))
        return self.destination.deliver(events, settings)

    # The conformance tests that go through transform and send, checked through deliver instead.

    def test_transform_is_pure_and_covers_each_change_once_in_order(self, capture: VendorCapture) -> None:
        events = changes()  # 1 added, 2 added, 1 removed, 3 (customer id only) added
        before = copy.deepcopy([msgspec.to_builtins(e) for e in events])
        script(capture, token(), *job(1), *job(2))
        results = self.deliver(events, capture)
        assert [msgspec.to_builtins(e) for e in events] == before
        assert [r.outcome for r in results] == [Outcome.SKIP, Outcome.DELIVERED, Outcome.DELIVERED, Outcome.SKIP]
        assert "superseded" in results[0].message and "contact_info" in results[3].message
        assert operations(capture) == [[{"create": {"userIdentifiers": [{"hashedEmail": GRACE}]}}],
                                       [{"remove": {"userIdentifiers": [{"hashedEmail": ADA},
                                                                        {"hashedPhoneNumber": UK_PHONE}]}}]]

    def test_other_events_are_not_membership_changes(self, capture: VendorCapture) -> None:
        results = self.deliver(every_kind(), capture)
        assert results and {r.outcome for r in results} == {Outcome.SKIP}
        assert capture.requests() == [], "nothing to send: not even a token"

    def test_delivers_to_the_vendor(self, capture: VendorCapture) -> None:
        script(capture, token(), *job())
        results = self.deliver([member(1)], capture, login_customer_id="987-654-3210")
        assert [r.outcome for r in results] == [Outcome.DELIVERED]
        calls = capture.requests()
        assert [(c.method, c.route) for c in calls] == [
            ("POST", "/token"), ("POST", f"{API}/offlineUserDataJobs:create"),
            ("POST", f"/v26/{JOB}:addOperations"), ("POST", f"/v26/{JOB}:run")]
        for call in calls[1:]:
            assert call.headers["authorization"] == "Bearer ya29.first"
            assert call.headers["developer-token"] == "dev-token"
            assert call.headers["login-customer-id"] == "9876543210"
            assert call.headers["content-type"] == "application/json"
        assert calls[1].json() == {"job": {"type": "CUSTOMER_MATCH_USER_LIST", "customerMatchUserListMetadata": {
            "userList": f"customers/{CUSTOMER}/userLists/8123456789"}}}
        assert calls[2].json() == {"operations": [{"create": {"userIdentifiers": [
            {"hashedEmail": ADA}, {"hashedPhoneNumber": UK_PHONE}]}}], "enablePartialFailure": True}
        assert calls[3].json() == {}
        assert [(j.resource_name, j.action, j.operations, j.status) for j in self.destination.job_states()] == [
            (JOB, "add", 1, None)]

    def test_retry_classes(self, capture: VendorCapture) -> None:
        script(capture, token(), (429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}, {"Retry-After": "7"}))
        throttled = self.deliver([member(1)], capture)[0]
        assert throttled.outcome == Outcome.RETRY and throttled.retry_after_s == 7
        assert [c.route for c in capture.requests()] == ["/token", f"{API}/offlineUserDataJobs:create"], \
            "nothing more is sent once Google throttles"
        script(capture, (503, {"error": {"code": 503, "status": "UNAVAILABLE"}}))
        assert self.deliver([member(1)], capture)[0].outcome == Outcome.RETRY
        quota = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [{"errors": [{
            "errorCode": {"quotaError": "RESOURCE_EXHAUSTED"}, "message": "Too many requests.",
            "details": {"quotaErrorDetails": {"rateScope": "DEVELOPER", "retryDelay": "30s"}}}]}]}}
        script(capture, (429, quota))
        assert self.deliver([member(1)], capture)[0].retry_after_s == 30, "Google's retryDelay, without Retry-After"
        script(capture, (409, ads_error(409, "ABORTED", {"databaseError": "CONCURRENT_MODIFICATION"}, "busy")))
        busy = self.deliver([member(1)], capture)[0]
        assert busy.outcome == Outcome.RETRY and busy.retry_after_s == gcm.BUSY_WAIT_S

    # Registration, settings.

    def test_registered_under_its_name(self) -> None:
        registered = destinations()[self.name]
        assert isinstance(registered, GoogleCustomerMatch) and registered.audience and not registered.takes_events
        assert registered.title == "Google Ads Customer Match" and registered.category == "Advertising"

    def test_settings_are_normalised_and_checked(self) -> None:
        parsed = self.destination.parse_settings(self.settings("http://vendor.test", login_customer_id="987-654-3210"))
        assert parsed.customer_id == CUSTOMER and parsed.login_customer_id == "9876543210"
        assert parsed.key_type == "contact_info" and parsed.api_version == "v26"
        for bad in ({"customer_id": "12345"}, {"api_version": "21"}, {"key_type": "email"}, {"user_list_id": "x"}):
            with pytest.raises(msgspec.ValidationError):
                self.destination.parse_settings(self.settings("http://vendor.test", **bad))

    def test_the_token_url_is_under_the_outbound_policy_too(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("KAON_OUTBOUND_ALLOW")
        public = self.destination.parse_settings(self.settings("http://8.8.8.8", token_url="http://8.8.4.4/token"))
        self.destination.check_outbound(public)
        private = self.destination.parse_settings(self.settings("http://8.8.8.8", token_url="http://10.1.2.3/t"))
        with pytest.raises(outbound.Refused):
            self.destination.check_outbound(private)

    # OAuth.

    def test_the_refresh_token_is_exchanged_once_and_the_access_token_cached(self, capture: VendorCapture) -> None:
        script(capture, token(), *job(1), *job(2))
        self.deliver([member(1)], capture)
        self.deliver([member(2)], capture)
        tokens = [c for c in capture.requests() if c.route == "/token"]
        assert len(tokens) == 1, "the second delivery reuses the cached access token"
        assert tokens[0].method == "POST" and tokens[0].headers["content-type"] == "application/x-www-form-urlencoded"
        assert "authorization" not in tokens[0].headers
        assert parse_qs(tokens[0].body.decode()) == {
            "grant_type": ["refresh_token"], "client_id": ["client.apps.googleusercontent.com"],
            "client_secret": ["client-secret"], "refresh_token": ["1//refresh"]}

    def test_a_token_about_to_expire_is_not_used(self, capture: VendorCapture) -> None:
        script(capture, token("ya29.short", expires_in=30), *job(1), token("ya29.next"), *job(2))
        self.deliver([member(1)], capture)
        self.deliver([member(2)], capture)
        assert [c.headers["authorization"] for c in ads_calls(capture)][-1] == "Bearer ya29.next"

    def test_a_401_gets_one_fresh_token(self, capture: VendorCapture) -> None:
        script(capture, token("ya29.first"), (401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}}),
               token("ya29.second"), *job())
        assert [r.outcome for r in self.deliver([member(1)], capture)] == [Outcome.DELIVERED]
        calls = capture.requests()
        assert [c.route for c in calls][:4] == ["/token", f"{API}/offlineUserDataJobs:create", "/token",
                                                f"{API}/offlineUserDataJobs:create"]
        assert calls[1].headers["authorization"] == "Bearer ya29.first"
        assert {c.headers["authorization"] for c in calls[3:]} == {"Bearer ya29.second"}

    def test_a_second_401_is_aborted_as_an_oauth_problem(self, capture: VendorCapture) -> None:
        unauthenticated = (401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})
        script(capture, token("ya29.first"), unauthenticated, token("ya29.second"), unauthenticated)
        result = self.deliver([member(1)], capture)[0]
        assert result.outcome == Outcome.ABORT and result.message.startswith("OAuth") and result.status == 401
        assert len(capture.requests()) == 4, "no third token, no job"

    def test_a_refused_refresh_token_is_aborted_with_googles_reason(self, capture: VendorCapture) -> None:
        script(capture, (400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}))
        result = self.deliver([member(1), member(2)], capture)
        assert [r.outcome for r in result] == [Outcome.ABORT, Outcome.ABORT]
        assert result[0].message.startswith("OAuth") and "invalid_grant" in result[0].message
        assert [c.route for c in capture.requests()] == ["/token"]

    # Errors.

    def test_a_400_is_aborted_with_googles_message(self, capture: VendorCapture) -> None:
        script(capture, token(), (400, ads_error(400, "INVALID_ARGUMENT", {
            "offlineUserDataJobError": "INVALID_USER_LIST_ID"}, "The user list ID provided for the job is invalid.")))
        result = self.deliver([member(1)], capture)[0]
        assert result.outcome == Outcome.ABORT and result.status == 400
        assert "INVALID_USER_LIST_ID" in result.message and "user list ID provided" in result.message

    def test_a_developer_token_new_to_customer_match_is_told_why(self, capture: VendorCapture) -> None:
        script(capture, token(), job()[0], (403, ads_error(403, "PERMISSION_DENIED", {
            "authorizationError": "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE"}, "Customer is not allowlisted.")))
        result = self.deliver([member(1)], capture)[0]
        assert result.outcome == Outcome.ABORT and "Data Manager API" in result.message

    def test_partial_failure_aborts_only_the_refused_members(self, capture: VendorCapture) -> None:
        script(capture, token(), job()[0], partial_failure(1), job()[-1])
        events = [member(1), member(2, email="grace@example.com"), member(3, email="c@example.com")]
        results = self.deliver(events, capture)
        assert [r.outcome for r in results] == [Outcome.DELIVERED, Outcome.ABORT, Outcome.DELIVERED]
        assert "INVALID_SHA256_FORMAT" in results[1].message
        assert capture.requests()[-1].route == f"/v26/{JOB}:run", "the accepted operations are still run"

    def test_partial_failure_in_a_later_request_is_mapped_to_its_member(self, capture: VendorCapture) -> None:
        count = MAX_IDENTIFIERS_PER_REQUEST + 2
        script(capture, token(), job()[0], {}, partial_failure(1), job()[-1])
        results = self.deliver([member(n, email=f"m{n}@example.com") for n in range(count)], capture)
        assert [len(ops) for ops in operations(capture)] == [MAX_IDENTIFIERS_PER_REQUEST, 2]
        refused = [n for n, r in enumerate(results) if r.outcome == Outcome.ABORT]
        assert refused == [MAX_IDENTIFIERS_PER_REQUEST + 1]
        assert {r.outcome for n, r in enumerate(results) if n not in refused} == {Outcome.DELIVERED}

    def test_a_failed_request_leaves_its_job_unrun_and_the_rest_of_the_batch_retried(
            self, capture: VendorCapture) -> None:
        script(capture, token(), job()[0], (500, {"error": {"code": 500, "status": "INTERNAL"}}))
        results = self.deliver([member(1), member(2, DELETE, email="grace@example.com")], capture)
        assert [r.outcome for r in results] == [Outcome.RETRY, Outcome.RETRY]
        assert "not sent" in results[1].message
        assert not any(c.route.endswith(":run") for c in capture.requests())
        assert self.destination.job_states() == []

    # Hashing and identifiers.

    def test_googles_normalisation_and_known_digests(self) -> None:
        assert email_key(" Ada.Lovelace@Example.com ") == ADA
        assert phone_key("+1 (650) 555-1212") == US_PHONE
        assert phone_key("+44 (0)20 7946 0958") == UK_PHONE, "an international number's (0) goes"
        assert phone_key("650 555 1212") is None and phone_key("020 7946 0958") is None, "no country code"
        assert phone_key("+1 650 CALL NOW") is None and phone_key("+12") is None
        assert email_key(ADA.upper()) == ADA and phone_key(f" {US_PHONE.upper()} ") == US_PHONE, "hashed: as is"
        assert email_key("  ") is None

    def test_identifiers_follow_the_lists_key_type(self) -> None:
        assert identifiers_of(IDENTITIES, "contact_info") == [{"hashedEmail": ADA}, {"hashedPhoneNumber": UK_PHONE}]
        assert identifiers_of(IDENTITIES, "crm_id") == [{"thirdPartyUserId": "cust-1"}]
        assert identifiers_of(IDENTITIES, "mobile_advertising_id") == [
            {"mobileId": "6D92078A-8246-4BA4-AE5B-76104861E7DC"}]
        assert identifiers_of({"customer_id": "c-1"}, "contact_info") == []

    def test_a_user_data_holds_at_most_twenty_identifiers(self) -> None:
        many = [{"hashedEmail": f"{n:064x}"} for n in range(25)]
        assert user_data(many) == {"userIdentifiers": many[:20]}

    def test_crm_id_lists_get_the_customer_id_unhashed(self, capture: VendorCapture) -> None:
        script(capture, token(), *job())
        self.deliver([member(1)], capture, key_type="crm_id")
        assert operations(capture) == [[{"create": {"userIdentifiers": [{"thirdPartyUserId": "cust-1"}]}}]]

    def test_members_without_a_usable_identifier_are_skipped(self, capture: VendorCapture) -> None:
        script(capture, token(), *job())
        results = self.deliver([member(1, customer_id="c-1"), member(2, mobile_number="650 555 1212"),
                                member(3, mobile_number="+1 (650) 555-1212")], capture)
        assert [r.outcome for r in results] == [Outcome.SKIP, Outcome.SKIP, Outcome.DELIVERED]
        assert operations(capture) == [[{"create": {"userIdentifiers": [{"hashedPhoneNumber": US_PHONE}]}}]]

    # Chunks and order.

    def test_at_most_ten_thousand_identifiers_per_request(self, capture: VendorCapture) -> None:
        members = [member(n, email=f"m{n}@example.com", mobile_number=f"+1650555{n:04d}") for n in range(5001)]
        script(capture, token(), *job(adds=2))
        results = self.deliver(members, capture)
        assert {r.outcome for r in results} == {Outcome.DELIVERED}
        sent = operations(capture)
        assert [len(ops) for ops in sent] == [5000, 1], "counted in identifiers (two per member), not operations"
        assert [len(op["create"]["userIdentifiers"]) for ops in sent for op in ops] == [2] * 5001
        assert len([c for c in capture.requests() if c.route.endswith(":create")]) == 1, "one job"

    def test_adds_and_removes_go_to_separate_jobs_in_change_order(self, capture: VendorCapture) -> None:
        script(capture, token(), *job(1), *job(2))
        events = [member(1, email="a@example.com"), member(2, DELETE, email="grace@example.com"),
                  member(3, email="ada.lovelace@example.com")]
        results = self.deliver(events, capture, ad_user_data_consent="GRANTED", ad_personalization_consent="GRANTED")
        assert [r.outcome for r in results] == [Outcome.DELIVERED] * 3
        calls = ads_calls(capture)
        assert [c.route.rsplit("/", 1)[-1] for c in calls] == [
            "offlineUserDataJobs:create", "1:addOperations", "1:run", "offlineUserDataJobs:create",
            "2:addOperations", "2:run"]
        sent = operations(capture)
        assert [next(iter(op)) for ops in sent for op in ops] == ["create", "create", "remove"]
        assert sent[0][1] == {"create": {"userIdentifiers": [{"hashedEmail": ADA}]}}
        assert sent[1] == [{"remove": {"userIdentifiers": [{"hashedEmail": GRACE}]}}]
        consent = [c.json()["job"]["customerMatchUserListMetadata"].get("consent") for c in calls
                   if c.route.endswith("offlineUserDataJobs:create")]
        assert consent == [{"adUserData": "GRANTED", "adPersonalization": "GRANTED"}, None], "consent on adds only"

    def test_a_profiles_last_change_in_the_batch_decides(self, capture: VendorCapture) -> None:
        script(capture, token(), *job(1))
        results = self.deliver([member(1), member(1, DELETE), member(2, email="grace@example.com"), member(1)],
                               capture)
        assert [r.outcome for r in results] == [Outcome.SKIP, Outcome.SKIP, Outcome.DELIVERED, Outcome.DELIVERED]
        assert operations(capture) == [[{"create": {"userIdentifiers": [{"hashedEmail": GRACE}]}},
                                        {"create": {"userIdentifiers": [{"hashedEmail": ADA},
                                                                        {"hashedPhoneNumber": UK_PHONE}]}}]]

    # Job state.

    def test_job_states_are_read_back_at_the_next_delivery(self, capture: VendorCapture) -> None:
        script(capture, token(), *job(555))
        self.deliver([member(1)], capture)
        failed = {"resourceName": JOB, "status": "FAILED", "failureReason": "INSUFFICIENT_MATCHED_TRANSACTIONS"}
        script(capture, {"results": [{"offlineUserDataJob": failed}]}, *job(556))
        assert self.deliver([member(2)], capture)[0].outcome == Outcome.DELIVERED
        search = ads_calls(capture)[3]
        assert search.route == f"{API}/googleAds:search"
        assert "FROM offline_user_data_job" in search.json()["query"]
        assert search.json()["query"].endswith("WHERE offline_user_data_job.id IN (555)")
        states = {j.resource_name: j for j in self.destination.job_states()}
        assert (states[JOB].status, states[JOB].failure_reason) == ("FAILED", "INSUFFICIENT_MATCHED_TRANSACTIONS")
        assert states[f"customers/{CUSTOMER}/offlineUserDataJobs/556"].status is None
        capture.clear()
        script(capture, {"results": [{"offlineUserDataJob": {
            "resourceName": f"customers/{CUSTOMER}/offlineUserDataJobs/556", "status": "SUCCESS"}}]})
        self.deliver(every_kind(), capture)
        assert [c.json()["query"].rsplit("(", 1)[-1] for c in capture.requests()] == ["556)"], "finished ones rest"
        assert {j.status for j in self.destination.job_states()} == {"FAILED", "SUCCESS"}

    def test_an_unreadable_job_state_does_not_hold_delivery_back(self, capture: VendorCapture) -> None:
        script(capture, token(), *job(555))
        self.deliver([member(1)], capture)
        script(capture, (500, {"error": {"code": 500}}), *job(556))
        assert self.deliver([member(2)], capture)[0].outcome == Outcome.DELIVERED
        assert self.destination.job_states()[0].status is None

    def test_the_job_record_is_bounded(self, capture: VendorCapture, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(gcm, "TRACKED_JOBS", 2)
        script(capture, token(), *job(1), {"results": []}, *job(2), {"results": []}, *job(3))
        for n in range(3):
            self.deliver([member(n)], capture)
        assert [j.resource_name.rsplit("/", 1)[-1] for j in self.destination.job_states()] == ["2", "3"]


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=10)
# Google's shapes (a google.rpc.Status of GoogleAdsErrors) with any JSON at any level.
ERROR = st.fixed_dictionaries({}, optional={
    "errorCode": JSON | st.dictionaries(st.text(max_size=5), JSON, max_size=2), "message": JSON,
    "location": JSON | st.fixed_dictionaries({"fieldPathElements": JSON | st.lists(st.fixed_dictionaries(
        {"fieldName": st.sampled_from(["operations", "create"]) | JSON}, optional={"index": JSON}), max_size=3)}),
    "details": JSON | st.fixed_dictionaries({"quotaErrorDetails": JSON | st.fixed_dictionaries(
        {"retryDelay": JSON | st.from_regex(r"\A\d{1,3}s\Z")})})})
STATUS = st.fixed_dictionaries({}, optional={"message": JSON, "status": JSON, "details": JSON | st.lists(
    st.fixed_dictionaries({}, optional={"errors": JSON | st.lists(ERROR | JSON, max_size=3)}) | JSON, max_size=3)})


@given(STATUS | JSON)
def test_any_answer_google_might_give_is_read_without_crashing(value: Any) -> None:
    codes, message, wait = google_error(msgspec.json.encode({"error": value}))
    assert isinstance(codes, set) and isinstance(message, str) and (wait is None or wait >= 0)
    failed = failed_operations({"partialFailureError": value}, 3)
    assert set(failed) <= {0, 1, 2} and all(isinstance(why, str) for why in failed.values())


@given(st.text())
def test_any_phone_text_is_hashed_as_e164_or_left_out(value: str) -> None:
    key = phone_key(value)
    assert key is None or (len(key) == 64 and set(key) <= set("0123456789abcdef"))


def test_a_removal_of_identities_a_member_lost_is_not_superseded_by_its_new_add() -> None:
    from kaon.destinations.google_ads_members import plan

    lost = member(1, DELETE, email="old@example.com")
    again = member(1, email="new@example.com")
    results, uploads = plan([lost, again], "contact_info")
    assert results == [None, None]
    assert [(u.action, [i for i, _ in u.members]) for u in uploads] == [("delete", [0]), ("add", [1])]
    same = plan([member(2, email="x@example.com"), member(2, DELETE, email="x@example.com")], "contact_info")
    assert same[0][0] is not None and same[0][0].outcome == Outcome.SKIP, "the same identifiers: the last decides"
