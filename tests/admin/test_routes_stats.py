"""`/api/v1/rejections` through a real `kaon serve`: a workspace sees its own refused bodies; refusals of no
workspace (bad key, unknown path) only an operator token sees."""

import json
import uuid

import httpx

from support.server import KaonServer, kaon
from support.waiting import eventually


def rejections(server: KaonServer, token: str) -> list[dict[str, object]]:
    answer = httpx.get(f"{server.url}/api/v1/rejections", params={"limit": 1000},
                       headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, object]] = answer.json()["rejections"]
    return rows


def test_rejections_are_visible_only_to_their_workspace_and_unowned_ones_to_operators(
        kaon_server: KaonServer) -> None:
    other = json.loads(kaon("init", "--workspace", "other", "--json", data_dir=kaon_server.data_dir).stdout)
    marker = uuid.uuid4().hex
    # Refused with the workspace known (a malformed body on a real key) and with none (an unknown key).
    owned = httpx.post(f"{kaon_server.url}/v2/events", content=f'{{"events": "{marker}"'.encode(),
                       headers=kaon_server.basic(), timeout=30)
    assert owned.status_code == 400
    unowned = httpx.post(f"{kaon_server.url}/v2/{marker}", content=b"{}", timeout=30)  # sampled as its line
    assert unowned.status_code == 404

    def mine() -> list[dict[str, object]]:
        rows = [r for r in rejections(kaon_server, kaon_server.admin_token) if marker in str(r["body_sample"])]
        return rows if len(rows) == 2 else []

    operator_rows = eventually(mine, what="both refusals listed to the operator (kaon init's first token)")
    assert {r["workspace_id"] for r in operator_rows} == {kaon_server.init["workspace_id"], None}
    assert not [r for r in rejections(kaon_server, other["admin_token"]) if marker in str(r["body_sample"])]
    read = kaon_server.admin("POST", "/tokens", json={"name": "reader"}).json()["token"]  # not an operator
    seen = [r for r in rejections(kaon_server, read) if marker in str(r["body_sample"])]
    assert [r["workspace_id"] for r in seen] == [kaon_server.init["workspace_id"]]
