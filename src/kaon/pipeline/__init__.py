"""The process stage: claims ingest log slices and runs its steps over them in one transaction each."""
