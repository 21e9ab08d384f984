"""`kaon migrate`: bring the main store to the newest schema (`kaon serve` and `kaon init` do it too)."""

import argparse
import json

from kaon.settings import Settings
from kaon.store import migrations
from kaon.store.db import DatabaseUrl, migrate, schema_version


def run_migrate(settings: Settings, args: argparse.Namespace) -> int:
    url = DatabaseUrl.parse(settings.database_url)
    if args.check:
        found = schema_version(url)
        report = {"database": url.dialect, "version": found, "head": migrations.HEAD,
                  "up_to_date": found == migrations.HEAD}
        print(json.dumps(report) if args.json else
              f"schema {found or 'unversioned'}; newest {migrations.HEAD}"
              + ("" if found == migrations.HEAD else " (run `kaon migrate`)"))
        return 0 if found == migrations.HEAD else 1
    done = migrate(url)
    if args.json:
        print(json.dumps({"database": url.dialect, "before": done.before, "after": done.after}))
    elif done.before == done.after:
        print(f"schema already at {done.after}")
    else:
        print(f"schema migrated from {done.before or 'unversioned'} to {done.after}")
    return 0
