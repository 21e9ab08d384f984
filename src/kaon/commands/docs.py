"""Generated documentation: `python -m kaon.commands.docs` rewrites docs/cli.md and collect.md's error table."""

import argparse
import os
from pathlib import Path

from kaon.cli import build_parser
from kaon.collect.codes import error_table

ERROR_TABLE_MARKER = "<!-- generated from kaon.collect.codes.ERROR_CODES; a test fails when it drifts -->\n"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_reference() -> str:
    os.environ["COLUMNS"] = "100"  # stable wrapping whatever the terminal
    parser = build_parser()
    parts = ["# `kaon` command line\n", "Generated from `--help` by `python -m kaon.commands.docs`; "
             "a test fails when this file drifts.\n"]

    def walk(p: argparse.ArgumentParser, title: str) -> None:
        parts.append(f"## `{title}`\n\n```\n{p.format_help().rstrip()}\n```\n")
        for name, child in _subparsers(p).items():
            walk(child, f"{title} {name}")

    walk(parser, "kaon")
    return "\n".join(parts)


def collect_doc(current: str) -> str:
    """docs/api/collect.md with everything after the marker replaced by the generated error table."""
    head, marker, _ = current.partition(ERROR_TABLE_MARKER)
    if not marker:
        raise ValueError("docs/api/collect.md lacks the generated-table marker")
    return head + marker + error_table()


def write_docs(root: Path) -> None:
    (root / "docs/cli.md").write_text(cli_reference())
    collect = root / "docs/api/collect.md"
    collect.write_text(collect_doc(collect.read_text()))


if __name__ == "__main__":
    write_docs(Path.cwd())
