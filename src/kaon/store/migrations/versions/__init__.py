"""Numbered revisions of the main store (see kaon.store.migrations)."""
