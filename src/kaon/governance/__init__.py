"""Governance: what data is allowed in, what arrives (the catalog), consent and data subject requests."""
