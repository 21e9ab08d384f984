"""Destination reference pages generated from the registered destinations (run `python -m kaon.destinations.docs`).

A destination may add two class attributes for its page: `docs_notes` (a paragraph on endpoint, auth, limits
and error handling) and `mapping_notes` (pairs of canonical event → what the vendor receives).
"""

import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from kaon.destinations.base import SECRET_MARK, Destination
from kaon.destinations.registry import destinations

DEFAULT_ROOT = Path("docs/destinations")
HEADER = "<!-- Generated from the destination's code by `python -m kaon.destinations.docs`; do not edit. -->"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _type(spec: dict[str, Any], definitions: dict[str, Any]) -> str:
    if "$ref" in spec:
        return _type(definitions.get(spec["$ref"].split("/")[-1], {}), definitions)
    if "anyOf" in spec:
        return " or ".join(_type(s, definitions) for s in spec["anyOf"])
    if "enum" in spec:
        return " or ".join(f"`{v}`" for v in spec["enum"])
    kind = spec.get("type", "any")
    if kind == "array":
        return f"list of {_type(spec.get('items', {}), definitions)}"
    if kind == "object" and isinstance(spec.get("additionalProperties"), dict):
        return f"map of {_type(spec['additionalProperties'], definitions)}"
    return str(kind)


def _secret(spec: dict[str, Any]) -> bool:
    return bool(spec.get(SECRET_MARK)) or any(_secret(s) for s in spec.get("anyOf", ()))


def settings_rows(destination: Destination,
                  schema: dict[str, Any] | None = None) -> list[tuple[str, str, str, str, str]]:
    """(name, type, default, secret, description) per setting (of `schema`, else the output's settings), in
    declaration order."""
    schema = destination.settings_schema() if schema is None else schema
    definitions: dict[str, Any] = schema.get("$defs", {})
    target = definitions[schema["$ref"].split("/")[-1]] if "$ref" in schema else schema
    required = set(target.get("required", ()))
    rows = []
    for name, spec in target.get("properties", {}).items():
        default = "*required*" if name in required else f"`{json.dumps(spec.get('default'))}`"
        description = spec.get("description", "")
        if spec.get("title"):
            description = f"**{spec['title']}.** {description}"
        rows.append((f"`{name}`", _type(spec, definitions), default, "yes" if _secret(spec) else "",
                     _cell(description)))
    return rows


def destination_page(destination: Destination) -> str:
    """The Markdown reference page of one destination."""
    lines = [HEADER, "", f"# {destination.title}", "",
             f"Name: `{destination.name}` · Category: {destination.category}", "",
             " ".join(destination.description.split()), "", "## Endpoint, auth and errors", ""]
    notes = getattr(destination, "docs_notes", "")
    lines += [" ".join(str(notes).split()) if notes else "Not documented yet.", ""]
    policy = destination.policy
    rate = "unlimited" if policy.rate_limit_rps is None else f"{policy.rate_limit_rps:g} requests/s"
    lines += [f"Send policy: up to {policy.batch_size} events per transform, {policy.max_concurrency} requests in "
              f"parallel, {rate}, {policy.timeout_s:g} s timeout.", "", "## Settings", "",
              "| Setting | Type | Default | Secret | Description |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(_cell(c) if i < 4 else c for i, c in enumerate(row)) + " |"
              for row in settings_rows(destination)]
    if destination.audience:
        lines += ["", "## Audiences", "",
                  f"An audience output (see [audiences](../audiences.md)): a `sync` connection sends the members' "
                  f"{', '.join(f'`{t}`' for t in destination.identity_types)} identities"
                  f"{'' if destination.takes_events else '; it takes no other events'}."]
        if destination.connection_settings_type is not None:
            lines += ["", "Each audience connection gives it `settings.output`:", "",
                      "| Setting | Type | Default | Secret | Description |", "|---|---|---|---|---|"]
            schema = msgspec.json.schema(destination.connection_settings_type)
            lines += ["| " + " | ".join(_cell(c) if i < 4 else c for i, c in enumerate(row)) + " |"
                      for row in settings_rows(destination, schema)]
    lines += ["", "## Event mapping", ""]
    mapping = getattr(destination, "mapping_notes", ())
    if mapping:
        lines += ["| Kaon event | Sent as |", "|---|---|"]
        lines += [f"| {_cell(str(kind))} | {_cell(str(sent))} |" for kind, sent in mapping]
    else:
        lines.append("Not documented yet.")
    return "\n".join(lines) + "\n"


def write_pages(root: Path = DEFAULT_ROOT) -> list[Path]:
    """Write `<root>/<name>.md` for every registered destination; returns the paths written."""
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for name, destination in destinations().items():
        path = root / f"{name}.md"
        path.write_text(destination_page(destination), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    for path in write_pages(Path(argv[0]) if argv else DEFAULT_ROOT):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
