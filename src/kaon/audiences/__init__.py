"""Audiences and calculated attributes: definitions, incremental per-profile state, membership and its changes.

Modules: `conditions` (value operators both use), `facts` (what an event contributes), `calculated` (calculated
attribute definitions and their incremental state), `definition` and `evaluate` (audience definitions and their
evaluation), `engine` (one profile's update inside a transaction), `store` (the tables), `backfill` (activation
over stored history), `schedule` (time-driven changes).
"""
