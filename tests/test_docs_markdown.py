"""The repository's Markdown: every relative link resolves to a file inside the repository, no table is split."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
_LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_stay_inside_the_repository_and_resolve(page: Path) -> None:
    for target in _LINK.findall(page.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        resolved = (page.parent / target.split("#", 1)[0]).resolve()
        assert resolved.is_relative_to(ROOT), f"{target} points outside the repository"
        assert resolved.exists(), f"{target} does not exist"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_table_rows_without_a_header(page: Path) -> None:
    lines = page.read_text(encoding="utf-8").splitlines()
    fenced = False
    for n, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
        if fenced or not line.startswith("|"):
            continue
        previous = lines[n - 1] if n else ""
        if previous.startswith("|"):
            continue
        # A table starts here: its next line must be the header separator, else rows were cut off their table.
        following = lines[n + 1] if n + 1 < len(lines) else ""
        assert re.match(r"^\|[\s:|-]+\|$", following), f"line {n + 1}: table rows without a header: {line[:80]}"
