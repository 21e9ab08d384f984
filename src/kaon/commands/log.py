"""`kaon log accept-epoch`: accept a replaced ingest log partition as a new epoch (its entries renumbered)."""

import argparse
import json

from kaon.log.sqlite import DEFAULT_PARTITION, SqliteLog
from kaon.settings import Settings
from kaon.store.db import Database, DatabaseUrl
from kaon.store.offsets import OffsetStore

PARTITION = DEFAULT_PARTITION  # the partition `kaon serve` writes (kaon.runtime.PARTITION)


def run_log(settings: Settings, args: argparse.Namespace) -> int:
    """Renumber the partition's entries after the committed offset; run with `kaon serve` stopped."""
    if settings.on_postgres:
        # The PostgreSQL log lives in the store's own database: it cannot be replaced apart from the offsets.
        print(json.dumps({"partition": None, "entries_renumbered": 0,
                          "message": "the PostgreSQL ingest log has no epochs to accept"}))
        return 0
    db = Database(DatabaseUrl.parse(settings.database_url), data_dir=settings.data_dir)
    committed = OffsetStore(db.conn()).get(PARTITION)
    log = SqliteLog(settings.log_dir)
    try:
        renumbered = log.writer(PARTITION).continue_after(committed)
    finally:
        log.close()
    print(json.dumps({"partition": PARTITION, "processed_up_to": committed, "entries_renumbered": renumbered}))
    return 0
