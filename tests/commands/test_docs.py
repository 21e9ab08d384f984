"""Generated docs must match the code they describe."""

from pathlib import Path

from kaon.commands.docs import cli_reference

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_current() -> None:
    assert (ROOT / "docs" / "cli.md").read_text() == cli_reference(), (
        "docs/cli.md is stale: run `python -m kaon.commands.docs > docs/cli.md`"
    )
