"""The OpenDSR signing key on a full disk: no half-written file, the write's own error (RLIMIT_FSIZE, unprivileged)."""

import subprocess
import sys
import textwrap
from pathlib import Path

from kaon.governance.dsr_keys import FILE_NAME, SigningKey

# A child process whose files may not grow past 1000 bytes (the key file is about 2.9 KB): its writes fail with
# EFBIG the way they fail with ENOSPC on a full disk. SIGXFSZ is ignored so the write returns the error.
CHILD = textwrap.dedent("""
    import resource, signal, sys
    from pathlib import Path
    from kaon.governance.dsr_keys import SigningKey
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
    try:
        SigningKey.for_data_dir(Path(sys.argv[1]))
    except OSError as error:
        print(f"{type(error).__name__}: {error}")
        sys.exit(3)
""")


def test_a_full_disk_leaves_no_key_file_and_reports_the_write_error(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "File too large" in done.stdout, done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    # Once there is room again, the key is made whole and used.
    key = SigningKey.for_data_dir(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILE_NAME]
    assert SigningKey.for_data_dir(tmp_path).sign(b"x") == key.sign(b"x")
