"""OpenDSR routes in-process (FastAPI TestClient): waiting period, cancel only while pending, 409, link expiry."""

import base64
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # starlette's TestClient asks for `httpx2`; httpx works the same here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from kaon.admin.app import create_admin_app
from kaon.admin.routes_opendsr import RateLimit
from kaon.governance.dsr_model import DsrError
from kaon.governance.dsr_worker import DsrWorker
from kaon.store.config import ConfigStore
from kaon.store.db import Database, DatabaseUrl

DAY_MS = 86_400_000


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          ) -> Iterator[tuple[TestClient, Database, Clock, dict[str, str]]]:
    monkeypatch.setenv("KAON_DSR_WAITING_DAYS", "7")
    monkeypatch.delenv("KAON_DATA_DIR", raising=False)
    db = Database(DatabaseUrl.parse(f"sqlite:///{tmp_path / 'kaon.db'}"))
    store = ConfigStore(db.conn())
    workspace = store.create_workspace("default")
    made = store.create_input(workspace.id, "server", "server")
    assert made.secret is not None
    app = create_admin_app(db)
    clock = Clock()
    app.state.dsr_clock = clock
    auth = {"Authorization": f"Bearer {store.create_admin_token(workspace.id, 'dsr')}"}
    with TestClient(app) as client:
        yield client, db, clock, auth


def body(kind: str = "erasure", skip: bool = False, **identities: str) -> dict[str, Any]:
    return {"subject_request_id": str(uuid.uuid4()), "subject_request_type": kind, "regulation": "gdpr",
            "subject_identities": {k: {"value": v, "encoding": "raw"} for k, v in identities.items()},
            "extensions": {"opendsr.mparticle.com": {"skip_waiting_period": skip}}}


def test_waiting_period_cancel_while_pending_and_conflict(setup: Any) -> None:
    client, db, clock, auth = setup
    first = body(email="a@example.org")
    assert client.post("/opendsr/v3/requests/", json=first, headers=auth).status_code == 201
    dup = client.post("/opendsr/v3/requests/", json={**body(email="A@example.org"), "subject_request_id":
                                                      str(uuid.uuid4())}, headers=auth)
    assert dup.status_code == 409 and dup.json()["code"] == 409
    # Another type, or other identities, is no conflict.
    assert client.post("/opendsr/v3/requests/", json=body("access", email="a@example.org"),
                       headers=auth).status_code == 201
    worker = DsrWorker(db, Path(db.url.path).parent, clock=clock)
    worker.run_once()  # seven days' wait: still pending
    status = client.get(f"/opendsr/v3/requests/{first['subject_request_id']}", headers=auth).json()
    assert status["request_status"] == "pending"
    cancelled = client.delete(f"/opendsr/v3/requests/{first['subject_request_id']}", headers=auth)
    assert cancelled.status_code == 200 and cancelled.json()["expected_completion_time"] is None
    again = client.delete(f"/opendsr/v3/requests/{first['subject_request_id']}", headers=auth)
    assert again.status_code == 400
    skipping = body(skip=True, email="b@example.org")
    assert client.post("/opendsr/v3/requests/", json=skipping, headers=auth).status_code == 201
    worker.run_once()
    done = client.get(f"/opendsr/v3/requests/{skipping['subject_request_id']}", headers=auth).json()
    assert done["request_status"] == "completed"
    assert client.delete(f"/opendsr/v3/requests/{skipping['subject_request_id']}", headers=auth).status_code == 400


def test_results_link_expires_after_seven_days(setup: Any) -> None:
    client, db, clock, auth = setup
    request = body("access", skip=True, email="c@example.org")
    assert client.post("/opendsr/v3/requests/", json=request, headers=auth).status_code == 201
    DsrWorker(db, Path(db.url.path).parent, clock=clock).run_once()
    url = client.get(f"/opendsr/v3/requests/{request['subject_request_id']}", headers=auth).json()["results_url"]
    path = url.split("://", 1)[1].split("/", 1)[1]
    assert client.get(f"/{path}").status_code == 200
    clock.now += 7 * DAY_MS - 1
    assert client.get(f"/{path}").status_code == 200
    clock.now += 1
    expired = client.get(f"/{path}")
    assert expired.status_code == 410 and expired.json()["code"] == 410


def test_auth_is_required_and_checked(setup: Any) -> None:
    client, db, _clock, auth = setup
    assert client.get(f"/opendsr/v3/requests/{uuid.uuid4()}").status_code == 401
    wrong = {"Authorization": auth["Authorization"][:-4] + "AAAA"}
    assert client.post("/opendsr/v3/requests/", json=body(email="d@example.org"), headers=wrong).status_code == 401
    # An input's key:secret is a credential for sending data, not for data subject requests.
    store = ConfigStore(db.conn())
    server_input = store.create_input(store.workspace_by_name("default").id, "server2", "server")  # type: ignore[union-attr]
    basic = base64.b64encode(f"{server_input.input.key}:{server_input.secret}".encode()).decode()
    refused = client.post("/opendsr/v3/requests/", json=body(email="d@example.org"),
                          headers={"Authorization": f"Basic {basic}"})
    assert refused.status_code == 401 and refused.json()["errors"][0]["reason"] == "AuthenticationException"
    discovery = client.get("/opendsr/v3/discovery/").json()
    assert {"identity_type": "email", "identity_format": "raw"} in discovery["supported_identities"]
    assert discovery["processor_certificate"].endswith("/opendsr/v3/cert.pem")
    assert client.get("/opendsr/v3/cert.pem").text.startswith("-----BEGIN CERTIFICATE-----")


def test_requests_over_the_rate_limit_get_429_with_retry_after(setup: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client, db, _clock, auth = setup
    monkeypatch.setenv("KAON_OPENDSR_RATE_LIMIT_PER_MINUTE", "3")
    for _ in range(3):
        assert client.get(f"/opendsr/v3/requests/{uuid.uuid4()}", headers=auth).status_code == 404
    limited = client.post("/opendsr/v3/requests/", json=body(email="e@example.org"), headers=auth)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.json()["code"] == 429 and limited.json()["errors"][0]["reason"] == "TooManyRequestsException"
    # Per workspace: another workspace's controller is not limited by this one's requests.
    store = ConfigStore(db.conn())
    other = store.create_admin_token(store.create_workspace("other").id, "dsr")
    basic = base64.b64encode(f"opendsr:{other}".encode()).decode()  # Basic, the token as the password
    assert client.get(f"/opendsr/v3/requests/{uuid.uuid4()}",
                      headers={"Authorization": f"Basic {basic}"}).status_code == 404
    # The window slides: a minute later the first workspace is served again.
    limit = client.app.state.dsr_rate_limit  # type: ignore[attr-defined]
    limit.clock = lambda: time.monotonic() + 61
    assert client.get(f"/opendsr/v3/requests/{uuid.uuid4()}", headers=auth).status_code == 404


def test_rate_limit_unit() -> None:
    now = [0.0]
    limit = RateLimit(2, clock=lambda: now[0])
    limit.check("w")
    now[0] = 30
    limit.check("w")
    with pytest.raises(DsrError) as refused:
        limit.check("w")
    assert refused.value.status == 429 and refused.value.headers == {"Retry-After": "30"}
    now[0] = 60.5  # the first request left the window
    limit.check("w")
    RateLimit(0).check("w")  # 0: no limit
