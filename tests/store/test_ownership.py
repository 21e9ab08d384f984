"""Every table has one owner: SQL naming a table appears only in the module that owns it (and in migrations)."""

import ast
import re
from pathlib import Path

import pytest

from kaon.store.owners import OWNERS, owner_of

SOURCE = Path(__file__).parents[2] / "src" / "kaon"
# Modules that may name tables in SQL besides owners: the schema and its migrations.
SCHEMA_MODULES = ("kaon.store.migrations",)
_SQL_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN|TABLE(?: IF NOT EXISTS)?|INDEX [a-z_]+ ON)\s+([a-z_]+)\b")
_SQL_WORD = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP)\b")

# Tables whose statements have not moved to their owner yet: module -> tables it still touches. Shrinks to empty.
PENDING: dict[str, set[str]] = {}


def _module_name(path: Path) -> str:
    return "kaon." + ".".join(path.relative_to(SOURCE).with_suffix("").parts)


def _sql_strings(tree: ast.AST) -> list[str]:
    """String literals that look like SQL; adjacent literals and f-string parts joined as Python joins them."""
    found: list[str] = []
    for node in ast.walk(tree):
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
        if text and _SQL_WORD.search(text):
            found.append(text)
    return found


def tables_named(path: Path) -> set[str]:
    tables = {t for ts in OWNERS.values() for t in ts}
    named: set[str] = set()
    for text in _sql_strings(ast.parse(path.read_text())):
        named |= {m.group(1) for m in _SQL_TABLE.finditer(text) if m.group(1) in tables}
    return named


def _trespasses() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        module = _module_name(path)
        if module.startswith(SCHEMA_MODULES) or module.startswith("kaon.destinations"):
            continue
        foreign = {t for t in tables_named(path) if owner_of(t) != module}
        if foreign:
            found[module] = foreign
    return found


def test_no_module_runs_sql_on_a_table_it_does_not_own() -> None:
    found = _trespasses()
    unexpected = {m: ts - PENDING.get(m, set()) for m, ts in found.items() if ts - PENDING.get(m, set())}
    assert not unexpected, f"SQL on tables outside their owner (call the owner instead): {unexpected}"


def test_pending_list_is_not_stale() -> None:
    found = _trespasses()
    stale = {m: ts - found.get(m, set()) for m, ts in PENDING.items() if ts - found.get(m, set())}
    assert not stale, f"these moved to their owner: remove them from PENDING: {stale}"


def test_every_table_the_migrations_create_has_exactly_one_owner() -> None:
    created: set[str] = set()
    for path in sorted((SOURCE / "store" / "migrations" / "versions").glob("0*.py")):
        created |= {m.group(1) for m in re.finditer(r"CREATE TABLE IF NOT EXISTS ([a-z_]+)", path.read_text())}
    owned = [t for ts in OWNERS.values() for t in ts]
    assert len(owned) == len(set(owned)), "a table is listed under two owners"
    assert created == set(owned)


def test_the_scanner_sees_sql_in_fstrings_and_joined_literals(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        'q = f"DELETE FROM {x} WHERE 1" " OR id IN (SELECT id FROM events)"\n'
        'r = "UPDATE delivery_pending SET a = 1"\n'
    )
    assert tables_named(probe) == {"events", "delivery_pending"}


@pytest.mark.parametrize("table", ["events", "delivery_jobs", "quarantine"])
def test_owner_of_names_the_module(table: str) -> None:
    assert owner_of(table) in OWNERS
