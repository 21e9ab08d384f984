"""The `kaon` command line as a user runs it (subprocesses): init, inputs, KAON_DATA_DIR."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KAON_")}
    return subprocess.run([sys.executable, "-m", "kaon", *args], capture_output=True, text=True, timeout=60,
                          env={**clean, **(env or {})})


def ok_json(*args: str, env: dict[str, str] | None = None) -> Any:
    done = run(*args, env=env)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected exactly one JSON line, got {done.stdout!r}"
    return json.loads(lines[0])


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_init_json_prints_one_object_with_the_documented_keys(data_dir: Path) -> None:
    out = ok_json("init", "--data-dir", str(data_dir), "--json")
    assert set(out) == {"workspace_id", "workspace", "inputs", "admin_token"}
    assert out["workspace_id"].startswith("ws_")
    assert out["admin_token"].startswith("kaon_")
    assert [(i["name"], i["platform"]) for i in out["inputs"]] == [("server", "server"), ("web", "web")]
    for item in out["inputs"]:
        assert set(item) == {"id", "name", "platform", "key", "secret"}
    server, web = out["inputs"]
    assert server["secret"] and web["secret"] is None
    credentials = data_dir / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600


def test_init_twice_adds_nothing_twice(data_dir: Path) -> None:
    first = ok_json("init", "--data-dir", str(data_dir), "--json")
    second = ok_json("init", "--data-dir", str(data_dir), "--json")
    assert second == first
    listed = ok_json("inputs", "--data-dir", str(data_dir), "--json", "list")
    assert sorted(i["name"] for i in listed) == ["server", "web"]


def test_init_other_workspace_on_the_same_data_dir(data_dir: Path) -> None:
    default = ok_json("init", "--data-dir", str(data_dir), "--json")
    other = ok_json("init", "--data-dir", str(data_dir), "--workspace", "other", "--json")
    assert other["workspace_id"] != default["workspace_id"]
    assert {i["key"] for i in other["inputs"]}.isdisjoint(i["key"] for i in default["inputs"])
    assert ok_json("init", "--data-dir", str(data_dir), "--json") == default


def test_init_without_json_is_human_text(data_dir: Path) -> None:
    done = run("init", "--data-dir", str(data_dir))
    assert done.returncode == 0, done.stderr
    out = ok_json("init", "--data-dir", str(data_dir), "--json")
    assert out["admin_token"] in done.stdout
    assert out["inputs"][0]["key"] in done.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(done.stdout)


def test_inputs_lifecycle(data_dir: Path) -> None:
    ok_json("init", "--data-dir", str(data_dir), "--json")
    base = ("inputs", "--data-dir", str(data_dir), "--json")
    made = ok_json(*base, "create", "--name", "ios-app", "--platform", "ios", "--rate-limit", "5")
    assert made["name"] == "ios-app" and made["platform"] == "ios" and made["enabled"] is True
    assert made["secret"] and made["rate_limit_rps"] == 5.0 and made["allow_key_only"] is False
    feed = ok_json(*base, "create", "--name", "partner", "--platform", "server", "--feed", "--key-only")
    assert feed["kind"] == "feed" and feed["allow_key_only"] is True
    listed = ok_json(*base, "list")
    assert {i["name"] for i in listed} == {"server", "web", "ios-app", "partner"}
    assert all("secret" not in i for i in listed)
    assert ok_json(*base, "disable", made["id"])["enabled"] is False
    assert next(i for i in ok_json(*base, "list") if i["id"] == made["id"])["enabled"] is False
    assert ok_json(*base, "enable", made["id"])["enabled"] is True
    rotated = ok_json(*base, "rotate-secret", made["id"])
    assert rotated["secret"] and rotated["secret"] != made["secret"]
    assert rotated["key"] == made["key"]


def test_inputs_errors_exit_2_with_a_json_error(data_dir: Path) -> None:
    ok_json("init", "--data-dir", str(data_dir), "--json")
    base = ("inputs", "--data-dir", str(data_dir), "--json")
    for args in (("disable", "in_nope"), ("create", "--name", "x", "--platform", "mainframe"),
                 ("create", "--name", "server", "--platform", "server")):
        done = run(*base, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "error" in json.loads(done.stderr)
        assert done.stdout == ""
    done = run("inputs", "--data-dir", str(data_dir), "--workspace", "missing", "--json", "list")
    assert done.returncode == 2 and "missing" in json.loads(done.stderr)["error"]


def test_kaon_data_dir_env_works_like_the_flag(data_dir: Path) -> None:
    env = {"KAON_DATA_DIR": str(data_dir)}
    first = ok_json("init", "--json", env=env)
    assert (data_dir / "kaon.db").exists()
    assert ok_json("init", "--data-dir", str(data_dir), "--json") == first
    listed = ok_json("inputs", "--json", "list", env=env)
    assert {i["id"] for i in listed} == {i["id"] for i in first["inputs"]}
    # The flag wins over the environment.
    elsewhere = data_dir.parent / "elsewhere"
    ok_json("init", "--data-dir", str(elsewhere), "--json", env=env)
    assert (elsewhere / "kaon.db").exists()


def test_unknown_command_is_a_usage_error() -> None:
    done = run("frobnicate")
    assert done.returncode == 2
    assert "usage" in done.stderr.lower()


def test_init_shell_exports_evaluate_to_the_credentials(data_dir: Path) -> None:
    out = ok_json("init", "--data-dir", str(data_dir), "--json")
    done = run("init", "--data-dir", str(data_dir), "--shell")
    assert done.returncode == 0, done.stderr
    script = done.stdout + 'printf "%s\\n" "$KAON_KEY" "$KAON_SECRET" "$KAON_WEB_KEY" "$KAON_ADMIN_TOKEN"' \
        ' "$KAON_WORKSPACE_ID" "$KAON_SERVER_INPUT_ID" "$KAON_WEB_INPUT_ID"'
    shown = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, check=True)
    server, web = out["inputs"]
    assert shown.stdout.splitlines() == [server["key"], server["secret"], web["key"], out["admin_token"],
                                         out["workspace_id"], server["id"], web["id"]]


def test_init_text_says_how_to_get_the_credentials_into_a_shell(data_dir: Path) -> None:
    done = run("init", "--data-dir", str(data_dir))
    assert f'eval "$(kaon init --data-dir {data_dir.resolve()} --shell)"' in done.stdout


def test_commands_default_to_the_only_workspace(data_dir: Path) -> None:
    made = ok_json("init", "--data-dir", str(data_dir), "--workspace", "demo", "--json")
    assert made["workspace"] == "demo"
    listed = ok_json("inputs", "--data-dir", str(data_dir), "--json", "list")
    assert {i["id"] for i in listed} == {i["id"] for i in made["inputs"]}
    # `kaon init` again without --workspace is the same workspace, not a new `default` one.
    assert ok_json("init", "--data-dir", str(data_dir), "--json") == made


def test_several_workspaces_need_workspace_named(data_dir: Path) -> None:
    ok_json("init", "--data-dir", str(data_dir), "--workspace", "a", "--json")
    ok_json("init", "--data-dir", str(data_dir), "--workspace", "b", "--json")
    where = ("--data-dir", str(data_dir), "--json")
    for args in (("inputs", *where, "list"), ("quarantine", "list", *where), ("init", *where)):
        done = run(*args)
        assert done.returncode == 2, (args, done.stdout)
        error = json.loads(done.stderr)["error"]
        assert "several workspaces (a, b)" in error and "--workspace" in error
    assert len(ok_json("inputs", "--data-dir", str(data_dir), "--workspace", "b", "--json", "list")) == 2


def test_no_workspace_yet_says_run_init(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    done = run("inputs", "--data-dir", str(data_dir), "--json", "list")
    assert done.returncode == 2 and "kaon init" in json.loads(done.stderr)["error"]
