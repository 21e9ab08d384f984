"""The durable ingest log between collect and process: interface, SQLite and PostgreSQL logs, group commit, leases.

`open_log(database_url, log_dir)` (kaon.log.factory) returns the `IngestLog` (kaon.log.base) for a store.
"""
