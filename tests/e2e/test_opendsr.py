"""OpenDSR v3 end to end: a real `kaon serve`, erasure completeness over the whole data dir (and, with the store on
PostgreSQL, every table of its database), callbacks, errors. The module runs once per store dialect."""

import base64
import json
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from kaon.governance.dsr_keys import verify
from support.capture import VendorCapture
from support.server import KaonServer
from support.stores import DIALECTS, server_env
from support.waiting import eventually

ENV = {"KAON_DSR_CALLBACK_BASE_SECONDS": "0.2"}
# Person A (erased): every value is unique so that any leftover anywhere is found by a byte search.
A_EMAIL, A_CUSTOMER, A_DEVICE = "ada.erasable@example.org", "cust-erase-4711", "aaid-erase-9f2c"
A_ATTRIBUTES = {"favourite_city": "Zanzibar-7781", "nickname": "Quokka-Ada-552"}
B_EMAIL, B_CUSTOMER, B_CITY = "bob.keeper@example.org", "cust-keep-0815", "Reykjavik-3391"


@pytest.fixture(scope="module")
def capture(server: KaonServer) -> Iterator[VendorCapture]:
    """One per server (per store dialect), so each sees only its own server's requests."""
    started = VendorCapture().start()
    yield started
    started.stop()


@pytest.fixture(scope="module", params=DIALECTS)
def server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[KaonServer]:
    running = KaonServer(tmp_path_factory.mktemp("opendsr"), env={**ENV, **server_env(request, request.param)})
    running.env["KAON_PUBLIC_URL"] = running.url  # links Kaon hands out point here, whatever Host a caller sends
    running.start()
    yield running
    running.stop()


def controller(server: KaonServer) -> dict[str, str]:
    """OpenDSR's credential: an admin token of the workspace (not an input's key:secret)."""
    return {"Authorization": f"Bearer {server.admin_token}"}


def dsr(server: KaonServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {**controller(server), **kwargs.pop("headers", {})}
    return httpx.request(method, f"{server.url}/opendsr/v3{path}", headers=headers, timeout=30, **kwargs)


def request_body(kind: str = "erasure", callback: str | None = None, group: str | None = None,
                 **identities: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "regulation": "gdpr", "subject_request_id": str(uuid.uuid4()), "subject_request_type": kind,
        "submitted_time": "2024-11-01T15:00:00Z", "api_version": "3.0",
        "subject_identities": {k: {"value": v, "encoding": "raw"} for k, v in identities.items()},
    }
    if callback:
        body["status_callback_urls"] = [callback]
    if group:
        body["group_id"] = group
    return body


def completed(server: KaonServer, request_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        found: dict[str, Any] = dsr(server, "GET", f"/requests/{request_id}").json()
        return found if found["request_status"] == "completed" else None
    done: dict[str, Any] = eventually(probe, timeout=60, what=f"request {request_id} completed")
    return done


def upload(server: KaonServer, body: dict[str, Any], item: dict[str, Any] | None = None) -> None:
    item = item or server.input("server")
    response = httpx.post(f"{server.url}/v2/events", json={"environment": "production", **body},
                          headers=server.basic(item["key"], item["secret"]), timeout=30)
    assert response.status_code == 202, response.text


def events(name: str, n: int, **attributes: str) -> list[dict[str, Any]]:
    return [{"event_type": "custom_event", "data": {"event_name": name, "custom_event_type": "other",
                                                    "custom_attributes": {"i": str(i), **attributes}}}
            for i in range(n)]


def scan_postgres(url: str, needles: list[bytes]) -> list[str]:
    """Every row of every table in every schema of the database (the main store and the `kaon_log` schema)."""
    found: list[str] = []
    with psycopg.connect(url) as conn:
        tables = conn.execute("SELECT table_schema, table_name FROM information_schema.tables WHERE table_type ="
                              " 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')").fetchall()
        for schema, table in tables:
            for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"'):
                text = b" ".join(bytes(c) if isinstance(c, (bytes, memoryview)) else str(c).encode()
                                 for c in row).lower()
                found += [f"{schema}.{table}: {n!r}" for n in needles if n in text]
    return found


def scan(data_dir: Path, roots: list[Path], needles: list[str], database_url: str | None = None) -> list[str]:
    """Every SQLite file's every table and column, and every other file's bytes, searched for the needles; with
    a PostgreSQL `database_url`, every table of that database too."""
    found: list[str] = []
    lowered = [n.lower().encode() for n in needles]
    if database_url is not None:
        found += scan_postgres(database_url, lowered)
    for root in roots:
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.name.endswith(("-wal", "-shm", "-journal")):
                continue
            raw = path.read_bytes()
            if raw.startswith(b"SQLite format 3\x00"):
                conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
                tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                for table in tables:
                    for row in conn.execute(f'SELECT * FROM "{table}"'):
                        text = b" ".join(c if isinstance(c, bytes) else str(c).encode() for c in row).lower()
                        found += [f"{path.name}:{table}: {n!r}" for n in lowered if n in text]
                conn.close()
            else:
                found += [f"{path}: {n!r}" for n in lowered if n in raw.lower()]
    return found


def test_erasure_leaves_nothing_of_the_person_anywhere(server: KaonServer, capture: VendorCapture,
                                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    export_dir = tmp_path_factory.mktemp("files-output")
    output = server.admin("POST", "/outputs", json={"name": "lake", "destination": "files",
                                                     "settings": {"directory": str(export_dir)}}).json()
    braze = server.admin("POST", "/outputs", json={"name": "braze", "destination": "braze", "settings": {
        "api_key": "braze-key", "base_url": f"{capture.url}/braze"}}).json()
    feed = server.admin("POST", "/inputs", json={"name": "crm-feed", "platform": "server"}).json()
    for source in (server.input("server"), feed):
        for target in (output, braze):
            made = server.admin("POST", "/connections", json={"input_id": source["id"],
                                                               "output_id": target["id"]})
            assert made.status_code == 201, made.text
    # A: a customer-id profile (server input), an email profile (a second input), then a batch linking both merges
    # them; attributes; a device id; a rejected request whose body sample holds the email.
    upload(server, {"user_identities": {"customer_id": A_CUSTOMER}, "user_attributes": A_ATTRIBUTES,
                    "events": events("a-first", 3)})
    upload(server, {"user_identities": {"email": A_EMAIL}, "device_info": {"android_advertising_id": A_DEVICE},
                    "events": events("a-web", 2, city=A_ATTRIBUTES["favourite_city"])}, feed)
    upload(server, {"user_identities": {"customer_id": A_CUSTOMER, "email": A_EMAIL}, "events": events("a-both", 2)})
    bad = httpx.post(f"{server.url}/v2/events", content=json.dumps({"user_identities": {"email": A_EMAIL},
                                                                     "events": "not-a-list"}),
                     headers=server.basic(), timeout=30)
    assert bad.status_code == 400
    upload(server, {"user_identities": {"customer_id": B_CUSTOMER, "email": B_EMAIL},
                    "user_attributes": {"favourite_city": B_CITY}, "events": events("b-only", 3)})
    eventually(lambda: len(server.events()) == 10, timeout=30, what="10 events stored")
    # The quarantine: a plan blocks one of A's events (batch with A's customer id), and one of a batch that names
    # A's profile by mpid only; both original batches are kept in the quarantine until the erasure.
    plan = {"data_plan_id": "dsr-plan", "data_plan_versions": [{
        "activated_environment": "production", "blocking": {"unplanned_events": True},
        "version_document": {"data_points": [{"match": {"type": "custom_event", "criteria": {
            "event_name": "a-planned", "custom_event_type": "other"}}}]}}]}
    assert server.admin("POST", "/plans", json=plan).status_code == 201
    a_mpid = (server.profile("customer_id", A_CUSTOMER) or {})["mpid"]
    in_plan = {"data_plan": {"plan_id": "dsr-plan"}}
    upload(server, {"user_identities": {"customer_id": A_CUSTOMER}, "context": in_plan,
                    "events": events("a-planned", 1) + events("a-blocked", 1, mood=A_ATTRIBUTES["nickname"])})
    upload(server, {"mpid": a_mpid, "context": in_plan,
                    "events": events("a-blocked-by-mpid", 1, town=A_ATTRIBUTES["favourite_city"])})
    eventually(lambda: len(server.listed("/quarantine", "entries")) == 2, timeout=30,
               what="2 batches quarantined")
    eventually(lambda: len(server.events()) == 11, timeout=30, what="the planned event stored")
    # Amplitude with a secret key: the erasure is forwarded to its User Privacy API.
    amplitude = server.admin("POST", "/outputs", json={"name": "amplitude", "destination": "amplitude", "settings": {
        "api_key": "amp-key", "secret_key": "amp-secret", "base_url": f"{capture.url}/amplitude"}})
    assert amplitude.status_code == 201, amplitude.text
    eventually(lambda: A_CUSTOMER in "".join(p.read_text() for p in export_dir.rglob("*.jsonl")), timeout=30,
               what="the files output holds A's rows")
    a_needles = [A_EMAIL, A_CUSTOMER, A_DEVICE, *A_ATTRIBUTES.values()]
    database = server.env.get("KAON_DATABASE_URL")
    assert scan(server.data_dir, [server.data_dir, export_dir], a_needles, database), "the scan must see A first"

    body = request_body(callback=f"{capture.url}/callbacks", email=A_EMAIL.upper(),
                        controller_customer_id=A_CUSTOMER)
    created = dsr(server, "POST", "/requests/", json=body)
    assert created.status_code == 201, created.text
    status = completed(server, body["subject_request_id"])

    leftovers = scan(server.data_dir, [server.data_dir, export_dir], a_needles, database)
    assert leftovers == []
    assert [e["event_name"] for e in server.events()].count("b-only") == 3
    assert B_CITY in "".join(p.read_text() for p in export_dir.rglob("*.jsonl"))
    assert server.profile("email", B_EMAIL) is not None
    assert server.profile("email", A_EMAIL) is None
    assert server.admin("GET", "/quarantine").json()["entries"] == []
    amplitude_status = next(e for e in status["extensions"] if e["domain"] == "amplitude")
    assert amplitude_status["status"] == "sent", amplitude_status
    [amp] = [r for r in capture.requests() if r.route == "/amplitude/api/2/deletions/users"]
    assert amp.method == "POST"
    assert amp.headers["authorization"] == "Basic " + base64.b64encode(b"amp-key:amp-secret").decode()
    assert amp.json()["user_ids"] == [A_CUSTOMER] and amp.json()["requester"] == "kaon"
    braze_status = next(e for e in status["extensions"] if e["domain"] == "braze")
    assert braze_status["status"] == "sent", braze_status
    deletion = next(r for r in capture.requests() if r.path == "/braze/users/delete")
    assert deletion.headers["authorization"] == "Bearer braze-key"
    assert deletion.json()["external_ids"] == [A_CUSTOMER]


def test_a_late_event_is_not_linked_to_an_erased_identity(server: KaonServer) -> None:
    email = f"late-{uuid.uuid4().hex[:6]}@example.org"
    upload(server, {"user_identities": {"email": email}, "events": events("late-before", 1)})
    eventually(lambda: server.profile("email", email), timeout=30, what="profile")
    body = request_body(email=email)
    assert dsr(server, "POST", "/requests/", json=body).status_code == 201
    completed(server, body["subject_request_id"])
    upload(server, {"user_identities": {"email": email}, "events": events("late-after", 1)})
    eventually(lambda: any(e["event_name"] == "late-after" for e in server.events()), timeout=30, what="late event")
    assert server.profile("email", email) is None

    def suppressed() -> int:
        return sum(int(r["identity_suppressed"]) for r in server.listed("/stats", "stats"))
    assert eventually(suppressed, timeout=10, what="identity_suppressed counted") >= 1


def test_callbacks_are_signed_with_the_served_certificate(server: KaonServer, capture: VendorCapture) -> None:
    capture.answer_next(1, 503)  # the first callback is retried
    body = request_body(kind="access", callback=f"{capture.url}/cb-signed", email=B_EMAIL)
    assert dsr(server, "POST", "/requests/", json=body).status_code == 201
    completed(server, body["subject_request_id"])

    def statuses() -> list[str]:
        return [r.json()["request_status"] for r in capture.requests() if r.path == "/cb-signed"]
    eventually(lambda: statuses()[-3:] == ["pending", "in_progress", "completed"] or
               ("completed" in statuses() and len(statuses()) >= 4), timeout=30, what=f"callbacks {statuses()}")
    discovery = httpx.get(f"{server.url}/opendsr/v3/discovery/").json()
    cert = httpx.get(discovery["processor_certificate"]).content
    for item in (r for r in capture.requests() if r.path == "/cb-signed"):
        assert item.headers["x-opendsr-processor-domain"]
        assert verify(cert, item.body, item.headers["x-opendsr-signature"])
        assert not verify(cert, item.body + b" ", item.headers["x-opendsr-signature"])
    last = [r for r in capture.requests() if r.path == "/cb-signed"][-1].json()
    assert set(last) == {"controller_id", "expected_completion_time", "subject_request_id", "request_status",
                         "api_version", "results_url", "extensions"}
    export = httpx.get(last["results_url"]).json()
    assert B_EMAIL in [i["value"] for i in export["identities"]]
    assert {e["event_name"] for e in export["events"]} == {"b-only"}
    assert {a["value"] for a in export["attributes"]} == {B_CITY}


def test_portability_has_csv(server: KaonServer) -> None:
    body = request_body(kind="portability", email=B_EMAIL)
    assert dsr(server, "POST", "/requests/", json=body).status_code == 201
    url = completed(server, body["subject_request_id"])["results_url"]
    csv_text = httpx.get(f"{url}&format=csv").text
    assert csv_text.startswith("section,mpid,name,value,timestamp_ms") and B_CITY in csv_text
    assert httpx.get(url.replace("token=", "token=1")).status_code == 403


def test_create_response_is_signed(server: KaonServer) -> None:
    body = request_body(kind="access", group="g-" + uuid.uuid4().hex[:6], email="nobody@example.org")
    raw = json.dumps(body).encode()
    created = httpx.post(f"{server.url}/opendsr/v3/requests/", content=raw,
                         headers={**controller(server), "Content-Type": "application/json"})
    assert created.status_code == 201
    answer = created.json()
    assert set(answer) == {"expected_completion_time", "received_time", "encoded_request", "subject_request_id",
                           "controller_id"}
    assert base64.b64decode(answer["encoded_request"]) == raw
    cert = httpx.get(f"{server.url}/opendsr/v3/cert.pem").content
    assert verify(cert, created.content, created.headers["x-opendsr-signature"])
    listed = dsr(server, "GET", "/requests", params={"group_id": body["group_id"]}).json()
    assert [r["subject_request_id"] for r in listed] == [body["subject_request_id"]]


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda b: b.update(subject_request_id="not-a-uuid"), "UUID"),
    (lambda b: b.update(subject_request_type="delete"), "subject_request_type"),
    (lambda b: b["subject_identities"]["email"].update(encoding="sha256"), "raw"),
    (lambda b: b.update(extensions={"opendsr.mparticle.com": {"subject_identities": {
        "mpid": {"value": "123", "encoding": "raw"}}}}), "only identity"),
    (lambda b: b["subject_identities"].update(unknown_id={"value": "x", "encoding": "raw"}), "not a supported"),
    (lambda b: b.update(subject_identities={}), "at least one"),
])
def test_invalid_requests_are_400_with_reasons(server: KaonServer, mutate: Any, reason: str) -> None:
    body = request_body(email="someone@example.org")
    body["extensions"] = {"opendsr.mparticle.com": {"subject_identities": {}}}
    mutate(body)
    response = dsr(server, "POST", "/requests/", json=body)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["code"] == 400 and answer["message"]
    assert any(reason in e["message"] for e in answer["errors"]), answer


def test_duplicate_id_conflict_cancel_and_not_found(server: KaonServer) -> None:
    env_waiting = request_body(email="waiting@example.org")
    first = dsr(server, "POST", "/requests/", json=env_waiting)
    assert first.status_code == 201
    again = dsr(server, "POST", "/requests/", json=env_waiting)
    assert again.status_code == 400 and again.json()["message"] == "Subject request already exists."
    assert dsr(server, "GET", f"/requests/{uuid.uuid4()}").status_code == 404
    assert dsr(server, "DELETE", f"/requests/{uuid.uuid4()}").status_code == 404
    done = completed(server, env_waiting["subject_request_id"])
    refused = dsr(server, "DELETE", f"/requests/{done['subject_request_id']}")
    assert refused.status_code == 400 and "pending" in refused.json()["message"]
    assert httpx.get(f"{server.url}/opendsr/v3/requests/{uuid.uuid4()}").status_code == 401


def test_an_erasure_in_progress_when_the_server_is_killed_completes_after_restart(
        fresh_server: KaonServer, capture: VendorCapture) -> None:
    """Killed while forwarding (after the main store was erased): on restart the request resumes and still
    forwards by the customer id and mpid it found before the kill, though the store no longer holds them."""
    server = fresh_server
    server.env.update(ENV)
    server.start()
    hanging = socket.socket()  # accepts connections (backlog) but never answers
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(16)
    email, customer = f"crash-{uuid.uuid4().hex[:6]}@example.org", f"cust-crash-{uuid.uuid4().hex[:6]}"
    try:
        for name, base in (("braze-hangs", f"http://127.0.0.1:{hanging.getsockname()[1]}"),
                           ("braze-ok", f"{capture.url}/crash-braze")):
            made = server.admin("POST", "/outputs", json={"name": name, "destination": "braze",
                                                           "settings": {"api_key": "k", "base_url": base}})
            assert made.status_code == 201, made.text
            time.sleep(0.01)  # forwarding goes through outputs in creation order
        upload(server, {"user_identities": {"email": email, "customer_id": customer}, "events": events("crash", 2)})
        mpid = str(eventually(lambda: server.profile("email", email), timeout=30, what="profile")["mpid"])
        body = request_body(email=email)  # the customer id is known only from the profile
        assert dsr(server, "POST", "/requests/", json=body).status_code == 201
        eventually(lambda: dsr(server, "GET", f"/requests/{body['subject_request_id']}").json()["request_status"]
                   == "in_progress", timeout=30, what="in progress")
        eventually(lambda: server.profile("email", email) is None, timeout=30, what="main store erased")
        server.kill()
    finally:
        hanging.close()
    assert not [r for r in capture.requests() if r.route.startswith("/crash-braze")]
    server.start()
    status = completed(server, body["subject_request_id"])
    [deletion] = [r for r in capture.requests() if r.route == "/crash-braze/users/delete"]
    assert deletion.json()["external_ids"] == [customer]
    assert [a["alias_name"] for a in deletion.json()["user_aliases"]] == [mpid]
    statuses = {e["name"]: e["status"] for e in status["extensions"]}
    assert statuses == {"braze-hangs": "failed", "braze-ok": "sent"}
    assert scan(server.data_dir, [server.data_dir], [email, customer], server.env.get("KAON_DATABASE_URL")) == []


def test_an_input_key_and_secret_is_not_an_opendsr_credential(server: KaonServer) -> None:
    body = request_body(kind="access", email="nobody@example.org")
    for headers in (server.basic(), {"x-mp-key": server.web_key}, {"Authorization": "Bearer not-a-token"}):
        refused = httpx.post(f"{server.url}/opendsr/v3/requests/", json=body, headers=headers, timeout=30)
        assert refused.status_code == 401, refused.text
        assert refused.json()["errors"][0]["reason"] == "AuthenticationException"
    basic = base64.b64encode(f"opendsr:{server.admin_token}".encode()).decode()  # Basic, token as the password
    assert httpx.post(f"{server.url}/opendsr/v3/requests/", json=body, headers={"Authorization": f"Basic {basic}"},
                      timeout=30).status_code == 201


def test_a_read_or_revoked_admin_token_cannot_submit_a_request(server: KaonServer) -> None:
    body = request_body(kind="erasure", email="nobody-read@example.org")
    made = server.admin("POST", "/tokens", json={"name": "reader", "scope": "read"})
    assert made.status_code == 201, made.text
    read = {"Authorization": f"Bearer {made.json()['token']}"}
    refused = httpx.post(f"{server.url}/opendsr/v3/requests/", json=body, headers=read, timeout=30)
    assert refused.status_code == 403, refused.text
    assert refused.json()["errors"][0]["reason"] == "AuthorizationException"
    writer = server.admin("POST", "/tokens", json={"name": "writer", "scope": "write"}).json()
    assert server.admin("DELETE", f"/tokens/{writer['id']}").status_code == 200
    gone = httpx.post(f"{server.url}/opendsr/v3/requests/", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {writer['token']}"})
    assert gone.status_code == 401, gone.text


def test_links_come_from_the_public_url_not_the_host_header(server: KaonServer) -> None:
    evil = {"Host": "evil.example:666", "X-Forwarded-Host": "evil.example"}
    discovery = dsr(server, "GET", "/discovery/", headers=evil).json()
    assert discovery["processor_certificate"] == f"{server.url}/opendsr/v3/cert.pem"
    body = request_body(kind="access", email="nobody-host@example.org")
    body["extensions"] = {"opendsr.mparticle.com": {"skip_waiting_period": True}}
    assert dsr(server, "POST", "/requests/", json=body, headers=evil).status_code == 201
    done = completed(server, body["subject_request_id"])
    assert done["results_url"].startswith(f"{server.url}/opendsr/v3/results/"), done
    again = dsr(server, "GET", f"/requests/{body['subject_request_id']}", headers=evil).json()
    assert "evil" not in json.dumps(again)
