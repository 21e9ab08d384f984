"""Which workspace a command works on: the one named by `--workspace`, else the only one there is."""

from kaon.errors import KaonError, NotFound
from kaon.store.config import ConfigStore, Workspace

INIT_DEFAULT = "default"


class AmbiguousWorkspace(KaonError):
    """Several workspaces exist and the command did not say which."""


def chosen_workspace(store: ConfigStore, name: str | None) -> Workspace:
    """`name`'s workspace; without a name, the only workspace (what `kaon init` made)."""
    if name is not None:
        found = store.workspace_by_name(name)
        if found is None:
            known = ", ".join(w.name for w in store.workspaces()) or "none yet"
            raise NotFound(f"workspace {name!r} not found (workspaces: {known}); run `kaon init --workspace {name}`")
        return found
    existing = store.workspaces()
    if not existing:
        raise NotFound("no workspace yet: run `kaon init` first")
    if len(existing) > 1:
        raise AmbiguousWorkspace(f"several workspaces ({', '.join(w.name for w in existing)}): "
                                 "say which with --workspace NAME")
    return existing[0]


def init_workspace_name(store: ConfigStore, name: str | None) -> str:
    """The workspace `kaon init` sets up: the named one; else `default` if it exists or nothing does; else the
    only one (so `kaon init` again after `kaon init --workspace demo` prints demo's credentials)."""
    if name is not None:
        return name
    existing = store.workspaces()
    if not existing or any(w.name == INIT_DEFAULT for w in existing):
        return INIT_DEFAULT
    return chosen_workspace(store, None).name
