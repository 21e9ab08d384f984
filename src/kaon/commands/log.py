"""`kaon log accept-epoch`: accept a replaced ingest log partition as a new epoch (its entries renumbered)."""

import argparse
import json

from kaon.log.sqlite import SqliteLogWriter
from kaon.settings import Settings
from kaon.store.db import Database, DatabaseUrl
from kaon.store.offsets import OffsetStore

PARTITION = "0"  # the partition `kaon serve` writes (kaon.runtime.PARTITION)


def run_log(settings: Settings, args: argparse.Namespace) -> int:
    """Renumber the partition's entries after the committed offset; run with `kaon serve` stopped."""
    committed = OffsetStore(Database(DatabaseUrl.parse(settings.database_url)).conn()).get(PARTITION)
    writer = SqliteLogWriter(settings.log_dir, PARTITION)
    try:
        renumbered = writer.continue_after(committed)
    finally:
        writer.close()
    print(json.dumps({"partition": PARTITION, "processed_up_to": committed, "entries_renumbered": renumbered}))
    return 0
