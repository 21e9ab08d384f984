"""A Node server SDK run as a real client: one `node` process drives `support/node/server-sdk-driver.js`.

The driver constructs each client with the given arguments, makes the calls, awaits the SDK's own close or
flush, and reports what the SDK said: each call's callback error and the errors (with HTTP status) of its
error hook.
"""

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.server_sdks import NodeSdk

DRIVER = Path(__file__).resolve().parent / "node" / "server-sdk-driver.js"

Call = tuple[str, dict[str, Any]]  # (method, message), e.g. ("track", {"userId": ..., "event": ...})


@dataclass(frozen=True)
class ClientRun:
    """One client of a driver run: its constructor arguments and its calls, in order."""

    args: list[Any]
    calls: list[Call]


def require_node(package_dir: Path) -> str:
    """The `node` binary, or a test failure that says how to get it (and which Node the package needs)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: run `make system-deps` (apt-get install nodejs npm)", pytrace=False)
    wanted = str(json.loads((package_dir / "package.json").read_text()).get("engines", {}).get("node", ""))
    floor = re.fullmatch(r">=\s*(\d+)(?:\.\d+)*", wanted.strip())
    have = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    if floor and int(have.lstrip("v").split(".")[0]) < int(floor.group(1)):
        pytest.fail(f"{package_dir.name} needs Node {wanted}, {node} is {have}", pytrace=False)
    return node


def run_node_sdk(sdk: NodeSdk, *clients: ClientRun, timeout: float = 60) -> list[dict[str, Any]]:
    """Each client's report (`calls`: method, messageId, error; `errors`; `statuses`), once node exited."""
    package_dir = sdk.package_dir()
    with tempfile.TemporaryDirectory(prefix="node-sdk-") as scratch:
        result_path = Path(scratch) / "result.json"
        request = {"sdk": sdk.driver_name, "package_dir": str(package_dir), "export_name": sdk.export_name,
                   "close": sdk.close, "result_path": str(result_path),
                   "clients": [{"args": c.args, "calls": [list(call) for call in c.calls]} for c in clients]}
        done = subprocess.run([require_node(package_dir), str(DRIVER)], input=json.dumps(request), capture_output=True,
                              text=True, timeout=timeout)
        assert done.returncode == 0 and result_path.exists(), (
            f"node driver exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}")
        reports: list[dict[str, Any]] = json.loads(result_path.read_text())["clients"]
    return reports
