"""Connections: an input joined to an output with rules (filters, forwarding, consent, sampling, transforms)."""
