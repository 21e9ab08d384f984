"""A throwaway PostgreSQL cluster for tests: initdb into a temp dir, pg_ctl on a free port, torn down after.

The cluster authenticates TCP clients by password (so tests can present bad credentials) and trusts its
Unix socket. As root, initdb refuses to run: the cluster then belongs to the `postgres` OS user (Debian's
package creates it) and its commands run through `runuser`.
"""

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PASSWORD = "kaon-test-password"
DATABASE = "kaon"


def binaries() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian layout)."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    found.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return found[-1] if found else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresCluster:
    bin: Path
    root: Path
    port: int
    run_as: str | None  # OS user the server runs as (None: the current one)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sockets(self) -> Path:
        return self.root / "sockets"

    def dsn(self, user: str = "postgres", password: str = PASSWORD, database: str = DATABASE) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=self.root, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stdout}{result.stderr}")
        return result

    def start(self) -> None:
        self.run("pg_ctl", "start", "-w", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o",
                 f"-k {self.sockets} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off"
                 " -c max_connections=400")

    def stop(self) -> None:
        self.run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data))

    def sql(self, statement: str, database: str = DATABASE) -> str:
        """Run SQL as the superuser over the trusted socket (for setting up roles in tests)."""
        return self.run("psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", str(self.sockets), "-p",
                        str(self.port), "-U", "postgres", "-d", database, "-c", statement).stdout


def _switch_user() -> str | None:
    """None when initdb may run as we are; else the OS user to run it as (or skip, saying why)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no `postgres` OS user for initdb "
                    "(install Debian's postgresql package: scripts/install-system-deps.sh)")
    if shutil.which("runuser") is None:
        pytest.skip("running as root, and `runuser` is missing to run initdb as `postgres`")
    return "postgres"


@contextlib.contextmanager
def running_cluster() -> Iterator[PostgresCluster]:
    """initdb, start, createdb `kaon`; stop and remove everything afterwards."""
    bin_dir = binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb): "
                    "run scripts/install-system-deps.sh")
    run_as = _switch_user()
    # Not under pytest's tmp dir: that is private to root, and the server may run as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="kaon-pg-"))
    cluster = PostgresCluster(bin_dir, root, free_port(), run_as)
    try:
        cluster.sockets.mkdir()
        (root / "pwfile").write_text(PASSWORD + "\n")
        if run_as:
            owner = pwd.getpwnam(run_as)
            for path in (root, cluster.sockets, root / "pwfile"):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        cluster.run("initdb", "-D", str(cluster.data), "-U", "postgres", "--pwfile", str(root / "pwfile"),
                    "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
        cluster.start()
        try:
            cluster.run("createdb", "-h", str(cluster.sockets), "-p", str(cluster.port), "-U", "postgres",
                        DATABASE)
            yield cluster
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A session-wide cluster with a `kaon` database; `postgres_cluster.dsn()` connects as the superuser.

    Register it for the whole suite with `pytest_plugins = ["support.postgres"]` in tests/conftest.py, or
    wrap `running_cluster()` in a module's own session fixture."""
    with running_cluster() as cluster:
        yield cluster
