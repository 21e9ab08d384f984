"""`kaon serve` with the main store on PostgreSQL: collect → process → deliver, identity, and erasure."""

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from cryptography.fernet import Fernet

from support.capture import VendorCapture
from support.server import KaonServer
from support.stores import PostgresStores
from support.waiting import eventually


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, postgres_stores: PostgresStores) -> Iterator[KaonServer]:
    env = {"KAON_DATABASE_URL": postgres_stores.new_url(), "KAON_SECRET_KEY": Fernet.generate_key().decode()}
    running = KaonServer(tmp_path_factory.mktemp("pg"), env=env).start()
    yield running
    running.stop()


def post(server: KaonServer, customer: str, email: str | None, *names: str) -> None:
    identities = {"customer_id": customer, **({"email": email} if email else {})}
    body = {"environment": "production", "user_identities": identities, "events": [
        {"event_type": "custom_event", "data": {"event_name": n, "custom_event_type": "other"}} for n in names]}
    answer = httpx.post(f"{server.url}/v2/events", content=json.dumps(body).encode(), headers=server.basic())
    assert answer.status_code == 202, answer.text


def test_events_are_processed_and_delivered_in_order(server: KaonServer, capture: VendorCapture) -> None:
    output = server.admin("POST", "/outputs", json={"name": f"hook-{uuid.uuid4().hex[:6]}", "destination": "webhook",
                                                     "settings": {"base_url": f"{capture.url}/hook"}})
    assert output.status_code == 201, output.text
    connection = server.admin("POST", "/connections", json={"input_id": server.input("server")["id"],
                                                            "output_id": output.json()["id"]})
    assert connection.status_code == 201, connection.text
    tag = uuid.uuid4().hex[:6]
    post(server, f"c-{tag}", None, f"a-{tag}", f"b-{tag}", f"c-{tag}")

    def delivered() -> list[str]:
        return [r.json()["data"]["event_name"] for r in capture.requests()]

    eventually(lambda: len(delivered()) == 3, timeout=30, what="3 events delivered from a PostgreSQL store")
    assert delivered() == [f"a-{tag}", f"b-{tag}", f"c-{tag}"]


def test_identities_resolve_to_one_profile_and_erasure_removes_it(server: KaonServer) -> None:
    tag = uuid.uuid4().hex[:6]
    post(server, f"u-{tag}", f"{tag}@example.com", "first")
    post(server, f"u-{tag}", None, "second")

    def mpid() -> int | None:
        found = server.admin("GET", "/profiles", params={"identity_type": "email", "value": f"{tag}@example.com"})
        profiles = found.json()["profiles"] if found.status_code == 200 else []
        return int(profiles[0]["mpid"]) if profiles else None

    def events_of_user() -> list[dict[str, object]]:
        found = mpid()
        return server.listed(f"/profiles/{found}/events", "events") if found else []

    eventually(lambda: len(events_of_user()) == 2, timeout=30, what="both events on one profile")
    request_id = str(uuid.uuid4())
    erased = httpx.post(f"{server.url}/opendsr/v3/requests", headers={"Authorization": f"Bearer {server.admin_token}"},
                        json={"regulation": "gdpr", "subject_request_id": request_id, "subject_request_type": "erasure",
                              "submitted_time": "2026-12-01T15:00:00Z", "api_version": "3.0",
                              "subject_identities": {"email": {"value": f"{tag}@example.com", "encoding": "raw"}}})
    assert erased.status_code == 201, erased.text
    eventually(lambda: mpid() is None, timeout=60, what="the profile erased")
