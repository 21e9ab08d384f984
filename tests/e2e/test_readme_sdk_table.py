"""The README's "Point real SDKs at it" table shows exactly the settings the server and browser SDK tests use,
with the versions CI installs."""

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

from support import browser_sdks, server_sdks

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def table_rows() -> list[tuple[str, str]]:
    text = README.read_text()
    section = text[text.index("Point real SDKs at it"):text.index("## Commands")]
    return [(m.group(1).strip(), m.group(2).strip()) for m in re.finditer(r"^\| (.+?) \| (.+) \|$", section, re.M)
            if m.group(1).strip() != "client" and not m.group(1).startswith("---")]


def test_the_table_is_exactly_the_tested_settings() -> None:
    expected = server_sdks.readme_rows() + browser_sdks.readme_rows()
    rows = table_rows()
    missing = "".join(f"\n| {client} | {setting} |" for client, setting in expected if (client, setting) not in rows)
    extra = "".join(f"\n| {client} | {setting} |" for client, setting in rows if (client, setting) not in expected)
    assert not missing and not extra, f"README rows missing or different:{missing}\nnot tested:{extra}"
    assert rows == expected, "README rows in another order than support/server_sdks.py + browser_sdks.py"


def test_the_rows_name_the_pinned_versions() -> None:
    text = README.read_text()
    for sdk in (browser_sdks.SEGMENT, browser_sdks.RUDDERSTACK_V3, browser_sdks.RUDDERSTACK_V2,
                *server_sdks.NODE_SDKS):
        assert f"{sdk.package}@{sdk.version}" in text
    assert f"@mparticle/web-sdk@{browser_sdks.MPARTICLE_WEBSDK_VERSION}" in text
    for pypi in server_sdks.PYPI_SDKS:
        assert f"{pypi.distribution}=={pypi.version}" in text


def test_the_python_sdks_are_pinned_and_installed_at_the_rows_versions() -> None:
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    for pypi in server_sdks.PYPI_SDKS:
        assert f"{pypi.distribution}=={pypi.version}" in dev, f"pin {pypi.distribution}=={pypi.version} in dev"
        assert version(pypi.distribution) == pypi.version, f"{pypi.distribution} installed is not the pinned one"
