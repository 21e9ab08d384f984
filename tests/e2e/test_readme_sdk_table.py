"""The README's "Point real SDKs at it" table shows exactly the init options the browser tests use."""

import re
from pathlib import Path

from support import browser_sdks as sdks

README = Path(__file__).resolve().parents[2] / "README.md"


def table_rows() -> list[tuple[str, str]]:
    text = README.read_text()
    section = text[text.index("Point real SDKs at it"):text.index("## Commands")]
    return [(m.group(1).strip(), m.group(2).strip()) for m in re.finditer(r"^\| (.+?) \| (.+) \|$", section, re.M)]


def test_every_browser_row_is_the_tested_options() -> None:
    rows = table_rows()
    for row in sdks.readme_rows():
        assert row in rows, f"README row missing or different; expected:\n| {row[0]} | {row[1]} |"


def test_the_rows_name_the_pinned_versions() -> None:
    text = README.read_text()
    for sdk in (sdks.SEGMENT, sdks.RUDDERSTACK_V3, sdks.RUDDERSTACK_V2):
        assert f"{sdk.package}@{sdk.version}" in text
    assert f"@mparticle/web-sdk@{sdks.MPARTICLE_WEBSDK_VERSION}" in text
