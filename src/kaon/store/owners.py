"""Which module owns each table of the main store: its schema, every statement on it, its erase/export hooks.

Nothing else runs SQL on a table (`tests/store/test_ownership.py` fails when it does). Migrations
(`kaon/store/migrations/`) are the one other place a table's name appears in SQL.
"""

OWNERS: dict[str, tuple[str, ...]] = {
    "kaon.store.config": ("workspaces", "inputs", "config_version"),
    "kaon.store.tokens": ("admin_tokens",),
    "kaon.store.offsets": ("log_offsets",),
    "kaon.store.events": ("batches", "events"),
    "kaon.store.dedup": ("message_ids",),
    "kaon.store.metrics": ("input_stats", "rejections"),
    "kaon.store.outputs": ("outputs", "connections"),
    "kaon.identity.store": ("profiles", "identities", "profile_attributes", "merges", "alias_requests"),
    "kaon.delivery.store": ("delivery_jobs", "delivery_pending", "delivery_attempts", "delivery_drops",
                            "output_stats", "output_rates"),
    "kaon.governance.catalog_store": ("catalog_points", "catalog_series", "catalog_tallies", "catalog_types",
                                      "catalog_examples"),
    "kaon.governance.dsr_store": ("dsr_requests", "dsr_status_log", "dsr_callbacks", "dsr_settings",
                                  "dsr_progress", "suppressed_identities"),
    "kaon.governance.plans_store": ("plans", "plan_versions", "plan_report", "input_default_plans"),
    "kaon.governance.quarantine_store": ("quarantine",),
    "kaon.governance.consent_store": ("consent_history",),
    "kaon.store.processes": ("processes",),
    "kaon.audiences.store": ("segment_definitions", "profile_segments", "audience_members", "audience_changes"),
    "kaon.activation.store": ("audience_connections", "audience_synced", "audience_identity_updates"),
}


def owner_of(table: str) -> str:
    for module, tables in OWNERS.items():
        if table in tables:
            return module
    raise KeyError(f"table {table!r} has no owner in kaon.store.owners")
