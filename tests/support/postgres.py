"""A private PostgreSQL 15 server for a test: its own cluster (initdb) in a temporary directory,
listening on a free port of 127.0.0.1 only (and a Unix socket in that directory), stopped and
removed afterwards.

PostgreSQL 15 comes from Debian's packages (`postgresql-15`, in `make system-packages`); when it
is missing it is installed by tests/support/debian.py (scripts/ensure-apt-packages: root + apt-get), else
PostgresUnavailable carries that script's reason.
initdb and the server refuse to run as root: as root they run as the `postgres` user the
package creates, in a directory that user owns. Durability is off (fsync, synchronous_commit,
full_page_writes): the data lives as long as the test.

    with postgres.server() as pg:
        pg.url("airflow", driver="postgresql+psycopg2")  # after pg.create_database("airflow")
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support import debian, net

VERSION = "15"
BIN_DIR = Path(f"/usr/lib/postgresql/{VERSION}/bin")
PACKAGE = f"postgresql-{VERSION}"
SUPERUSER = "postgres"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL 15 is not installed and could not be installed here (the message says why)."""


def ensure_installed() -> Path:
    """The directory of initdb/pg_ctl, installing the Debian package when missing."""
    try:
        debian.ensure(str(BIN_DIR / "initdb"), PACKAGE)
    except debian.ProgramUnavailable as exc:
        raise PostgresUnavailable(f"PostgreSQL {VERSION} is needed: {exc}") from None
    return BIN_DIR


@dataclass
class Postgres:
    directory: Path
    port: int
    as_user: str | None  # run the binaries as this user (we are root), else as ourselves

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "postgres.log"

    def url(self, database: str, driver: str = "postgresql") -> str:
        return f"{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def run(self, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
        argv = ["runuser", "-u", self.as_user, "--", *cmd] if self.as_user else list(cmd)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              cwd=self.directory)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:2])} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}\n"
                               f"--- {self.log}\n{self.log.read_text(errors='replace')[-3000:] if self.log.exists() else ''}")
        return proc

    def create_database(self, name: str) -> None:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()


@contextlib.contextmanager
def server(max_connections: int = 200) -> Iterator[Postgres]:
    """initdb + pg_ctl start on a free 127.0.0.1 port; pg_ctl stop (fast, then immediate) and the
    directory removed at the end, after failures too."""
    bin_dir = ensure_installed()
    as_user = None
    directory = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
    if os.geteuid() == 0:
        as_user = SUPERUSER
        try:
            owner = pwd.getpwnam(as_user)
        except KeyError:
            shutil.rmtree(directory, ignore_errors=True)
            raise PostgresUnavailable(f"running as root and no user {as_user!r} to run PostgreSQL as") from None
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    pg = Postgres(directory, net.free_port(), as_user)
    started = False
    try:
        pg.run(str(bin_dir / "initdb"), "-D", str(pg.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
               "--no-locale", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -p {pg.port} -k {directory} -c max_connections={max_connections} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        started = True
        pg.run(str(bin_dir / "pg_ctl"), "-D", str(pg.data), "-l", str(pg.log), "-o", options, "-w", "-t", "60", "start")
        yield pg
    finally:
        if started:
            for mode in ("fast", "immediate"):
                with contextlib.suppress(Exception):
                    pg.run(str(bin_dir / "pg_ctl"), "-D", str(pg.data), "-m", mode, "-w", "-t", "30", "stop")
                    break
        shutil.rmtree(directory, ignore_errors=True)
