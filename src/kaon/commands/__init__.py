"""Implementations of the CLI's subcommands (kept out of cli.py so `--help` stays fast)."""
