"""Google Ads Customer Match: a customer list kept in step with a Kaon audience through OfflineUserDataJobs.

Per batch: an OAuth2 access token, then one job per action (Google refuses creates and removes in one job):
`:create`, `:addOperations` in chunks of at most 10,000 identifiers, `:run`. A profile's earlier change in the
batch is superseded by its last one when that names the same identifiers, so a batch's jobs never share one.
Jobs run asynchronously at Google: the last ones run are remembered in memory and their status read back at the
start of later deliveries (`job_states()`).
"""

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlencode

import httpx
import msgspec

from kaon import outbound
from kaon.activation.membership import ADD
from kaon.clock import now_ms
from kaon.delivery.send import send
from kaon.destinations.base import Destination, HttpRequest, Secret
from kaon.destinations.event import DeliveryEvent
from kaon.destinations.google_ads_errors import as_dict, as_list, decoded_object, failed_operations, google_error
from kaon.destinations.google_ads_members import (
    MAX_IDENTIFIERS_PER_REQUEST,
    Upload,
    chunks,
    plan,
    sha256_hex,
    user_data,
)
from kaon.destinations.outcome import HttpResponse, Outcome, SendPolicy, SendResult, classify_http, retry_after

_log = logging.getLogger("kaon.destinations.google_customer_match")
TOKEN_MARGIN_S: Final = 60.0  # a token is not used in its last minute
TRACKED_JOBS: Final = 100  # jobs remembered for job_states(), oldest dropped first
POLLED_JOBS: Final = 5  # unfinished jobs whose status one delivery reads back
BUSY_WAIT_S: Final = 60.0  # CONCURRENT_MODIFICATION: another job is changing the list
FINISHED: Final = frozenset({"SUCCESS", "FAILED"})
NOT_ALLOWLISTED: Final = "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE"
_JOB_NAME = re.compile(r"^customers/\d+/offlineUserDataJobs/\d+$")
_CUSTOMER = r"^\d{3}-?\d{3}-?\d{4}$"
_encoder = msgspec.json.Encoder()
KeyType = Literal["contact_info", "crm_id", "mobile_advertising_id"]
Consent = Literal["GRANTED", "DENIED"]


class GoogleCustomerMatchSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    customer_id: Annotated[str, msgspec.Meta(
        title="Customer ID", description="The Google Ads account that owns the customer list: 10 digits, with or "
                                         "without the dashes Google Ads shows (`123-456-7890`); dashes are "
                                         "stripped.", examples=["123-456-7890"], pattern=_CUSTOMER)]
    user_list_id: Annotated[str, msgspec.Meta(
        title="User list ID", description="The Customer Match (CRM-based) user list the members go to, "
                                          "`customers/{customer_id}/userLists/{user_list_id}`. Create it first "
                                          "(Google Ads or UserListService) with the upload key type of `key_type`.",
        examples=["8123456789"], pattern=r"^\d{1,20}$")]
    key_type: Annotated[KeyType, msgspec.Meta(
        title="Key type", description="What the list matches on (a Customer Match list takes one upload key type): "
                                      "`contact_info` (hashed e-mail and E.164 phone), `crm_id` (the customer id "
                                      "as `thirdPartyUserId`) or `mobile_advertising_id` (IDFA / AAID as "
                                      "`mobileId`). Identities of other kinds are not sent.")] = "contact_info"
    developer_token: Annotated[Secret, msgspec.Meta(
        title="Developer token", description="The Google Ads API developer token (`developer-token` header). Since "
                                             "1 April 2026 Google takes Customer Match uploads only from tokens that "
                                             "used Customer Match before.", min_length=1)]
    client_id: Annotated[str, msgspec.Meta(
        title="OAuth client ID", description="The OAuth2 client the refresh token was issued to.", min_length=1)]
    client_secret: Annotated[Secret, msgspec.Meta(
        title="OAuth client secret", description="That OAuth2 client's secret.", min_length=1)]
    refresh_token: Annotated[Secret, msgspec.Meta(
        title="Refresh token", description="An OAuth2 refresh token with the `https://www.googleapis.com/auth/"
                                           "adwords` scope, of a user with access to the account.", min_length=1)]
    login_customer_id: Annotated[Annotated[str, msgspec.Meta(pattern=_CUSTOMER)] | None, msgspec.Meta(
        title="Login customer ID", description="The manager account the user's access goes through, when it goes "
                                               "through one (`login-customer-id` header; dashes stripped).")] = None
    ad_user_data_consent: Annotated[Consent | None, msgspec.Meta(
        title="Ad user data consent", description="Sent as the add jobs' `consent.adUserData` when set (Google asks "
                                                  "for it on adds; removals need none).")] = None
    ad_personalization_consent: Annotated[Consent | None, msgspec.Meta(
        title="Ad personalization consent", description="Sent as the add jobs' `consent.adPersonalization` when "
                                                        "set.")] = None
    base_url: Annotated[str, msgspec.Meta(
        title="Google Ads API URL", description="The Google Ads API host.", pattern=r"^https?://")] = \
        "https://googleads.googleapis.com"
    token_url: Annotated[str, msgspec.Meta(
        title="OAuth token URL", description="Where the refresh token is exchanged for an access token.",
        pattern=r"^https?://")] = "https://oauth2.googleapis.com/token"
    api_version: Annotated[str, msgspec.Meta(
        title="API version", description="The Google Ads API version in the path (each is sunset about a year "
                                         "after its release).", pattern=r"^v\d{1,3}$", examples=["v26"])] = "v26"

    def __post_init__(self) -> None:
        self.customer_id = self.customer_id.replace("-", "")
        if self.login_customer_id is not None:
            self.login_customer_id = self.login_customer_id.replace("-", "")


@dataclass(frozen=True)
class JobState:
    """A job this process ran, and its status as Google last reported it (None: not read back yet)."""

    resource_name: str
    action: str  # add | delete
    operations: int
    run_at_ms: int
    status: str | None = None  # PENDING, RUNNING, SUCCESS or FAILED
    failure_reason: str | None = None
    checked_at_ms: int | None = None


class _Stop(Exception):
    """A call of the flow failed: `result` is what its events get."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(result.message)
        self.result = result


class _Session:
    """One delivery's calls to the Google Ads API, authorised with the owner's cached access token."""

    def __init__(self, owner: "GoogleCustomerMatch", settings: GoogleCustomerMatchSettings) -> None:
        self.owner, self.settings = owner, settings
        self.api = f"{settings.base_url.rstrip('/')}/{settings.api_version}"
        self.token: str | None = None  # one token for the whole delivery, unless Google refuses it

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        stale: str | None = None
        while True:
            if self.token is None or stale is not None:
                self.token = self.owner.access_token(self.settings, stale)
            token = self.token
            headers = {"Authorization": f"Bearer {token}", "developer-token": self.settings.developer_token,
                       "Content-Type": "application/json"}
            if self.settings.login_customer_id:
                headers["login-customer-id"] = self.settings.login_customer_id
            request = HttpRequest("POST", f"{self.api}/{path}", headers, _encoder.encode(payload),
                                  extra={"step": "ads"})
            result = send(self.owner.client(), self.owner, request, self.owner.policy.timeout_s)
            if result.status == 401 and stale is None:
                stale = token  # expired or revoked early: one fresh token, then give up
                continue
            if result.status == 401:
                raise _Stop(replace(result, message=f"OAuth: Google Ads refused a freshly refreshed access "
                                                    f"token (401); check the refresh token's scope and user "
                                                    f"({result.message})"[:500]))
            if result.outcome is not Outcome.DELIVERED:
                raise _Stop(result)
            return decoded_object(result.response_body)


class GoogleCustomerMatch(Destination):
    name = "google_customer_match"
    title = "Google Ads Customer Match"
    category = "Advertising"
    description = ("Keeps a Google Ads Customer Match list in step with a Kaon audience: members are added and "
                   "removed through offline user data jobs, with hashed e-mail and phone, the customer id or the "
                   "mobile advertising id.")
    settings_type = GoogleCustomerMatchSettings
    policy = SendPolicy(batch_size=MAX_IDENTIFIERS_PER_REQUEST, max_concurrency=1, timeout_s=60.0)
    audience = True
    takes_events = False
    identity_types = ("email", "mobile_number", "customer_id", "ios_advertising_id", "android_advertising_id")
    docs_notes = (
        "An audience output: connect an audience to it (`POST /api/v1/audiences/{id}/connections`). Auth: the "
        "refresh token is exchanged at `token_url` (`grant_type=refresh_token`) for an access token, cached until a "
        "minute before `expires_in` and refreshed once when Google answers 401; requests carry `Authorization: "
        "Bearer`, `developer-token` and, when set, `login-customer-id`. Per delivered batch and action: `POST "
        "{base_url}/{api_version}/customers/{customer_id}/offlineUserDataJobs:create` (type "
        "CUSTOMER_MATCH_USER_LIST, the list, and for adds the consent settings), `POST .../{job}:addOperations` "
        "(`create` or `remove` operations, one UserData per person with at most 20 identifiers, at most 10,000 "
        "identifiers per request, `enablePartialFailure: true`), then `POST .../{job}:run`. Google refuses creates "
        "and removes in one job, so adds and removes are separate jobs; a profile's earlier change in a batch is "
        "skipped as superseded when its last change names the same identifiers, so the two jobs of a batch never "
        "name the same identifier (a removal of values a member lost goes with the add of its new ones). "
        "Google does not document the order in which separate jobs are processed: a profile added in one batch and "
        "removed in the next could end up in either state if Google processes the later job first. A change is "
        "delivered once `:run` is accepted; Google then processes the job asynchronously (often for hours). Job "
        "state: the last 100 jobs this process ran are kept in memory (resource name, action, operations, run "
        "time); each delivery first reads back the status (PENDING, RUNNING, SUCCESS, FAILED with its "
        "failureReason) of up to 5 unfinished ones of its account through `googleAds:search`, logs it and shows it "
        "in `job_states()`. Not tracked: jobs of other processes or from before a restart, jobs past the 100, the "
        "status of jobs when nothing is delivered; a FAILED job is logged, never re-sent. Errors: 408, 429, 5xx and "
        "CONCURRENT_MODIFICATION are retried (after `Retry-After` or the quota's `retryDelay`); a 401 after the "
        "fresh token and OAuth refusals (`invalid_grant`, ...) are aborted with an OAuth message; "
        "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE (developer tokens new to Customer Match since April 2026, which "
        "Google sends to its Data Manager API) and any other 4xx are aborted with Google's message; operations "
        "refused in `partialFailureError` abort only their own changes. A request that fails stops the batch: its "
        "job is not run and the changes not yet sent are retried.")
    mapping_notes = (
        ("member added / removed", "a `create` / `remove` operation: `{\"userIdentifiers\": [...]}`, one per member"),
        ("email (`contact_info`)", "`hashedEmail`: trimmed, lower-cased, SHA-256 hex (a 64-hex value as it is)"),
        ("mobile_number (`contact_info`)", "`hashedPhoneNumber`: E.164 (`+`, country code, digits; an "
                                           "international `(0)` dropped), SHA-256; a number without `+` and a "
                                           "country code is not sent"),
        ("customer_id (`crm_id`)", "`thirdPartyUserId`, not hashed"),
        ("ios_advertising_id / android_advertising_id (`mobile_advertising_id`)", "`mobileId`, not hashed"),
        ("member without an identifier of the key type", "skipped"),
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._jobs: OrderedDict[tuple[str, str], JobState] = OrderedDict()

    def check_outbound(self, settings: Any) -> None:
        assert isinstance(settings, GoogleCustomerMatchSettings)
        outbound.check_url(settings.base_url)
        outbound.check_url(settings.token_url)

    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.policy.timeout_s)
            return self._client

    def job_states(self) -> list[JobState]:
        """The jobs this process ran (the last TRACKED_JOBS), oldest first, as Google last reported them."""
        with self._lock:
            return list(self._jobs.values())

    def classify(self, request: HttpRequest, response: HttpResponse) -> SendResult:
        if 200 <= response.status < 300:
            return SendResult(Outcome.DELIVERED, status=response.status,
                              response_body=response.body.decode("utf-8", "replace"))
        result = classify_http(response)
        if request.extra.get("step") == "token":
            answer = decoded_object(result.response_body)
            said = ": ".join(str(answer[k]) for k in ("error", "error_description") if answer.get(k))
            return replace(result, message=f"OAuth: the token endpoint answered HTTP {response.status}"
                                           f"{f': {said}' if said else ''}"[:300])
        codes, text, wait = google_error(response.body)
        message = f"Google Ads API HTTP {response.status}: {text}"[:500] if text else result.message
        if NOT_ALLOWLISTED in codes:
            return SendResult(Outcome.ABORT, f"this developer token may not upload Customer Match data through the "
                                             f"Google Ads API (Google sends new users to the Data Manager API): "
                                             f"{message}", response.status, response_body=result.response_body)
        if "CONCURRENT_MODIFICATION" in codes:
            return SendResult(Outcome.RETRY, message, response.status, retry_after(response.headers) or BUSY_WAIT_S,
                              response_body=result.response_body)
        if result.outcome is Outcome.RETRY and result.retry_after_s is None:
            return replace(result, message=message, retry_after_s=wait)
        return replace(result, message=message)

    def access_token(self, settings: GoogleCustomerMatchSettings, stale: str | None = None) -> str:
        """A cached access token for these credentials, or a new one (also when the cached one is `stale`)."""
        key = (settings.token_url, settings.client_id, sha256_hex(settings.refresh_token))
        with self._lock:
            cached = self._tokens.get(key)
        if cached is not None and cached[0] != stale and time.monotonic() < cached[1]:
            return cached[0]
        form = urlencode({"grant_type": "refresh_token", "client_id": settings.client_id,
                          "client_secret": settings.client_secret, "refresh_token": settings.refresh_token})
        request = HttpRequest("POST", settings.token_url, {"Content-Type": "application/x-www-form-urlencoded"},
                              form.encode(), extra={"step": "token"})
        result = send(self.client(), self, request, self.policy.timeout_s)
        if result.outcome is not Outcome.DELIVERED:
            raise _Stop(result)
        answer = decoded_object(result.response_body)
        token, lifetime = answer.get("access_token"), answer.get("expires_in", 3600)
        if not isinstance(token, str) or not token or not isinstance(lifetime, int | float):
            raise _Stop(SendResult(Outcome.ABORT, "OAuth: the token endpoint answered without an access_token",
                                   result.status))
        with self._lock:
            self._tokens[key] = (token, time.monotonic() + float(lifetime) - TOKEN_MARGIN_S)
        return token

    def deliver(self, events: Sequence[DeliveryEvent], settings: Any) -> list[SendResult]:
        assert isinstance(settings, GoogleCustomerMatchSettings)
        session = _Session(self, settings)
        self._check_jobs(session)
        results, uploads = plan(events, settings.key_type)
        failure: SendResult | None = None
        for upload in uploads:
            indices = [index for index, _ in upload.members]
            if failure is not None:  # the vendor, the account or the credentials failed: do not insist
                sent = dict.fromkeys(indices, SendResult(
                    Outcome.RETRY, f"not sent: an earlier request of this batch failed ({failure.message})"[:500],
                    retry_after_s=failure.retry_after_s))
            else:
                try:
                    sent = self._upload(session, upload)
                except _Stop as stop:
                    failure = stop.result
                    sent = dict.fromkeys(indices, failure)
            for index, result in sent.items():
                results[index] = result
        return [result or SendResult(Outcome.RETRY, "not sent") for result in results]

    def _upload(self, session: _Session, upload: Upload) -> dict[int, SendResult]:
        settings = session.settings
        metadata: dict[str, Any] = {"userList": f"customers/{settings.customer_id}/userLists/{settings.user_list_id}"}
        consent = {k: v for k, v in (("adUserData", settings.ad_user_data_consent),
                                     ("adPersonalization", settings.ad_personalization_consent)) if v}
        if consent and upload.action == ADD:
            metadata["consent"] = consent
        created = session.post(f"customers/{settings.customer_id}/offlineUserDataJobs:create",
                               {"job": {"type": "CUSTOMER_MATCH_USER_LIST", "customerMatchUserListMetadata": metadata}})
        job = created.get("resourceName")
        if not isinstance(job, str) or not _JOB_NAME.match(job):
            raise _Stop(SendResult(Outcome.RETRY, f"offlineUserDataJobs:create answered no job resource name "
                                                  f"({str(created)[:200]})"))
        verb = "create" if upload.action == ADD else "remove"
        refused: dict[int, str] = {}
        for chunk in chunks(upload.members):
            answer = session.post(f"{job}:addOperations", {"operations": [{verb: user_data(ids)} for _, ids in chunk],
                                                           "enablePartialFailure": True})
            for position, why in failed_operations(answer, len(chunk)).items():
                refused[chunk[position][0]] = why
        session.post(f"{job}:run", {})
        _log.info("ran Customer Match job %s: %d %s operations", job, len(upload.members), verb)
        with self._lock:
            self._jobs[(settings.base_url, job)] = JobState(job, upload.action, len(upload.members), now_ms())
            while len(self._jobs) > TRACKED_JOBS:
                self._jobs.popitem(last=False)
        return {index: SendResult(Outcome.ABORT, f"Google refused this member: {refused[index]}")
                if index in refused else SendResult(Outcome.DELIVERED, f"in job {job}") for index, _ in upload.members}

    def _check_jobs(self, session: _Session) -> None:
        """Read back the status of up to POLLED_JOBS unfinished jobs of this account (longest unchecked first)."""
        settings = session.settings
        prefix = f"customers/{settings.customer_id}/"
        with self._lock:
            pending = sorted((job for (url, name), job in self._jobs.items() if url == settings.base_url
                              and name.startswith(prefix) and job.status not in FINISHED),
                             key=lambda job: job.checked_at_ms or 0)[:POLLED_JOBS]
        if not pending:
            return
        ids = ", ".join(job.resource_name.rsplit("/", 1)[1] for job in pending)
        query = ("SELECT offline_user_data_job.resource_name, offline_user_data_job.status, "
                 f"offline_user_data_job.failure_reason FROM offline_user_data_job "
                 f"WHERE offline_user_data_job.id IN ({ids})")
        try:
            answer = session.post(f"customers/{settings.customer_id}/googleAds:search", {"query": query})
        except _Stop as stop:
            _log.warning("could not read the status of Customer Match jobs (%s): %s", ids, stop.result.message)
            return
        rows = [as_dict(as_dict(row).get("offlineUserDataJob")) for row in as_list(answer.get("results"))]
        found = {row.get("resourceName"): row for row in rows}
        checked = now_ms()
        with self._lock:
            for job in pending:
                row = found.get(job.resource_name, {})
                status = str(row["status"]) if row.get("status") else job.status
                reason = str(row["failureReason"]) if row.get("failureReason") else None
                key = (settings.base_url, job.resource_name)
                if key in self._jobs:
                    self._jobs[key] = replace(job, status=status, failure_reason=reason, checked_at_ms=checked)
                if status == "FAILED":
                    _log.warning("Customer Match job %s FAILED at Google: %s", job.resource_name, reason)
                elif status != job.status:
                    _log.info("Customer Match job %s is %s", job.resource_name, status)


destination = GoogleCustomerMatch()
