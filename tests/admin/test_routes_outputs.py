"""Outputs through the admin API of a real `kaon serve`: secrets (sealed at rest, redacted, never replaced by
the placeholder, re-entered when the target moves) and the test send's bounded summary."""

import hashlib
import hmac
import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import httpx

from support.capture import Answer, VendorCapture
from support.server import KaonServer
from support.waiting import eventually

SECRET, TOKEN = "s1-signing-secret", "Bearer t0k3n-growth"


def create(server: KaonServer, url: str, **settings: Any) -> dict[str, Any]:
    answer = server.admin("POST", "/outputs", json={
        "name": f"hook-{uuid.uuid4().hex[:8]}", "destination": "webhook",
        "settings": {"base_url": url, "signing_secret": SECRET, "headers": {"Authorization": TOKEN}, **settings}})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def patch(server: KaonServer, output_id: str, settings: dict[str, Any]) -> httpx.Response:
    return server.admin("PATCH", f"/outputs/{output_id}", json={"settings": settings})


def sent_by_test(server: KaonServer, output_id: str, capture: VendorCapture) -> dict[str, Any]:
    """Test-send and return the request the vendor saw (its headers and whether the signature is `SECRET`'s)."""
    capture.clear()
    assert server.admin("POST", f"/outputs/{output_id}/test").json()["outcome"] == "delivered"
    [seen] = capture.requests()
    signed = seen.headers["x-kaon-timestamp"].encode() + b"." + seen.body
    return {"authorization": seen.headers.get("authorization"),
            "signed_with_secret": hmac.compare_digest(seen.headers["x-kaon-signature"], hmac.new(
                SECRET.encode(), signed, hashlib.sha256).hexdigest())}


def stored_settings(server: KaonServer, output_id: str) -> str:
    with sqlite3.connect(server.data_dir / "kaon.db") as conn:
        return str(conn.execute("SELECT settings FROM outputs WHERE id = ?", (output_id,)).fetchone()[0])


def test_secrets_and_headers_are_redacted_and_sealed_at_rest(kaon_server: KaonServer,
                                                             capture: VendorCapture) -> None:
    output = create(kaon_server, f"{capture.url}/hook")
    assert output["settings"]["signing_secret"] == "********"
    assert output["settings"]["headers"] == {"Authorization": "********"}
    shown = kaon_server.admin("GET", f"/outputs/{output['id']}").json()["settings"]
    assert shown["headers"] == {"Authorization": "********"} and shown["signing_secret"] == "********"
    at_rest = stored_settings(kaon_server, output["id"])
    assert SECRET not in at_rest and "t0k3n" not in at_rest and "kaon-sealed:" in at_rest
    assert sent_by_test(kaon_server, output["id"], capture) == {"authorization": TOKEN, "signed_with_secret": True}


def test_patching_the_placeholder_keeps_the_stored_secret(kaon_server: KaonServer, capture: VendorCapture) -> None:
    """Fix: a client that read an output and PATCHed its settings back stored `********` as the secret."""
    output = create(kaon_server, f"{capture.url}/hook")
    answer = patch(kaon_server, output["id"], {**output["settings"], "batch": True})
    assert answer.status_code == 200, answer.text
    assert answer.json()["settings"]["batch"] is True
    assert sent_by_test(kaon_server, output["id"], capture) == {"authorization": TOKEN, "signed_with_secret": True}
    assert "********" not in stored_settings(kaon_server, output["id"])


def test_a_new_output_cannot_store_the_placeholder(kaon_server: KaonServer, capture: VendorCapture) -> None:
    answer = kaon_server.admin("POST", "/outputs", json={"name": f"p-{uuid.uuid4().hex[:6]}", "destination": "webhook",
                                                         "settings": {"base_url": capture.url,
                                                                      "signing_secret": "********"}})
    assert answer.status_code == 400 and answer.json()["errors"][0]["code"] == "INVALID_SETTINGS"


def test_moving_the_url_needs_the_secrets_again(kaon_server: KaonServer, capture: VendorCapture) -> None:
    """Fix: changing base_url alone sent the stored signing secret and Authorization header to the new URL."""
    output = create(kaon_server, f"{capture.url}/hook")
    elsewhere = capture.url.replace("127.0.0.1", "localhost") + "/other"
    moved = patch(kaon_server, output["id"], {"base_url": elsewhere})
    assert moved.status_code == 400, moved.text
    error = moved.json()["errors"][0]
    assert error["code"] == "SECRETS_REQUIRED" and "`headers`" in error["message"]
    assert "`signing_secret`" in error["message"]
    with_placeholders = patch(kaon_server, output["id"], {**output["settings"], "base_url": elsewhere})
    assert with_placeholders.json()["errors"][0]["code"] == "SECRETS_REQUIRED"
    assert kaon_server.admin("GET", f"/outputs/{output['id']}").json()["settings"]["base_url"] == f"{capture.url}/hook"
    again = patch(kaon_server, output["id"], {"base_url": elsewhere, "signing_secret": SECRET,
                                              "headers": {"Authorization": TOKEN}})
    assert again.status_code == 200, again.text
    assert sent_by_test(kaon_server, output["id"], capture) == {"authorization": TOKEN, "signed_with_secret": True}


def test_the_test_send_reports_a_bounded_printable_summary(kaon_server: KaonServer) -> None:
    """Fix: the test send echoed 2,000 characters of whatever the URL answered (a way to read internal pages)."""
    body = b"denied\x00\x1b[31m\n" + b"x" * 5000 + b"INTERNAL-ONLY-TOKEN" + "é".encode() * 100
    vendor = VendorCapture(Answer(403, {"Content-Type": "text/html"}, body)).start()
    try:
        output = create(kaon_server, f"{vendor.url}/hook")
        result = kaon_server.admin("POST", f"/outputs/{output['id']}/test").json()
    finally:
        vendor.stop()
    assert result["outcome"] == "abort" and result["classification"] == "refused" and result["status"] == 403
    for text in (result["response"], result["message"]):
        assert len(text) <= 200 and text.isprintable() and text.isascii()
        assert "INTERNAL-ONLY-TOKEN" not in text and "\x1b" not in text
    assert result["response"].startswith("denied")


def test_the_test_send_to_an_unreachable_port_is_a_temporary_failure(kaon_server: KaonServer) -> None:
    vendor = VendorCapture().start()
    url = vendor.url
    vendor.stop()
    result = kaon_server.admin("POST", f"/outputs/{create(kaon_server, url)['id']}/test").json()
    assert result["classification"] == "temporary_failure" and result["status"] is None


def test_plaintext_secrets_of_an_earlier_release_are_sealed(tmp_path: Path, capture: VendorCapture) -> None:
    server = KaonServer(tmp_path / "data").start()
    try:
        output = create(server, f"{capture.url}/hook")
        server.stop()
        with sqlite3.connect(server.data_dir / "kaon.db") as conn:  # as an earlier release stored it
            conn.execute("UPDATE outputs SET settings = ? WHERE id = ?", (json.dumps({
                "base_url": f"{capture.url}/hook", "signing_secret": SECRET, "headers": {"Authorization": TOKEN}}),
                output["id"]))
        server.start()
        eventually(lambda: SECRET not in stored_settings(server, output["id"]), timeout=20, what="sealed")
        assert "t0k3n" not in stored_settings(server, output["id"])
        assert sent_by_test(server, output["id"], capture) == {"authorization": TOKEN, "signed_with_secret": True}
    finally:
        server.stop()
