"""The durable ingest log between collect and process: interface, SQLite partitions, group commit."""
