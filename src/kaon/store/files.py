"""The data directory's permissions: the directory (and each one in it) 0700, every file (databases, their
WAL and shared-memory files, the ingest log, keys, exports) 0600.

Kaon runs with umask 077, so whatever it creates is made that way; `secure` tightens what an earlier release
or a copy left more open.
"""

import os
import stat
from pathlib import Path

UMASK = 0o077


def secure(data_dir: Path) -> None:
    """Make `data_dir` and everything Kaon keeps in it private to this user (symbolic links left alone)."""
    if not data_dir.is_dir():
        return
    data_dir.chmod(0o700)
    for root, dirs, files in os.walk(data_dir):
        for name in dirs + files:
            path = Path(root) / name
            mode = path.lstat().st_mode
            if stat.S_ISDIR(mode) and stat.S_IMODE(mode) != 0o700:
                path.chmod(0o700)
            elif stat.S_ISREG(mode) and stat.S_IMODE(mode) & 0o077:
                path.chmod(stat.S_IMODE(mode) & 0o700 | 0o600)
