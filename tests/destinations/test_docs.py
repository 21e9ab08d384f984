"""Every registered destination has a generated reference page that matches its code."""

from pathlib import Path

import pytest

from kaon.destinations.docs import destination_page, settings_rows, write_pages
from kaon.destinations.registry import destinations

PAGES = Path(__file__).resolve().parents[2] / "docs" / "destinations"


@pytest.mark.parametrize("name", sorted(destinations()))
def test_page_matches_the_code(name: str) -> None:
    page = PAGES / f"{name}.md"
    expected = destination_page(destinations()[name])
    assert page.exists() and page.read_text(encoding="utf-8") == expected, (
        f"docs/destinations/{name}.md is missing or stale: run `python -m kaon.destinations.docs`")


def test_settings_table_marks_secrets_and_required_settings() -> None:
    rows = {row[0]: row for row in settings_rows(destinations()["webhook"])}
    assert rows["`signing_secret`"][3] == "yes" and rows["`base_url`"][2] == "*required*"
    assert rows["`batch`"][2] == "`false`"


def test_write_pages_writes_one_page_per_destination(tmp_path: Path) -> None:
    written = write_pages(tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{n}.md" for n in destinations())


@pytest.mark.parametrize("name", sorted(destinations()))
def test_every_built_in_destination_documents_its_endpoint_and_mapping(name: str) -> None:
    page = destination_page(destinations()[name])
    assert "Not documented yet" not in page, f"{name}: add docs_notes and mapping_notes to its module"
