"""Generated documentation: the CLI reference from `--help` (`python -m kaon.commands.docs > docs/cli.md`)."""

import argparse
import os

from kaon.cli import build_parser


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


if __name__ == "__main__":
    print(cli_reference(), end="")
