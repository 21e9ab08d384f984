"""Generated docs must match the code they describe."""

from pathlib import Path

from kaon.commands.docs import cli_reference, collect_doc

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_current() -> None:
    assert (ROOT / "docs" / "cli.md").read_text() == cli_reference(), (
        "docs/cli.md is stale: run `python -m kaon.commands.docs`"
    )


def test_collect_error_table_is_current() -> None:
    current = (ROOT / "docs" / "api" / "collect.md").read_text()
    assert current == collect_doc(current), "docs/api/collect.md is stale: run `python -m kaon.commands.docs`"
