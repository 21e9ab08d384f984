"""Audience activation: audiences joined to outputs (list sync to ad and marketing tools, or triggers)."""
