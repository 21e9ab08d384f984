"""Identity resolution: identities → one profile (`mpid`), with safeguards, merges, audit and undo."""
