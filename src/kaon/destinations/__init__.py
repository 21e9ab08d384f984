"""Destinations: one module per vendor (settings model, pure transform, send policy), registered as plugins."""
