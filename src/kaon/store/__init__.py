"""Stores: config (workspaces, inputs, tokens), events, dedup, offsets and metrics; one schema per dialect."""
