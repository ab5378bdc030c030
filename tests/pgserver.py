"""A real PostgreSQL server for the tests and the benchmarks: ``initdb`` in a temp dir,
``pg_ctl start`` on a free loopback port, one database per test, ``pg_ctl stop`` at the end.

Debian's ``postgresql`` package provides the binaries (``/usr/lib/postgresql/<v>/bin``);
``PG_BIN`` may point elsewhere. initdb refuses to run as root: as root, the server runs as
the ``postgres`` OS user (created by that package) through ``runuser``. Nothing is mocked
and nothing is skipped: missing binaries raise :class:`PgUnavailable`, whose message says
what to install.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

__all__ = ["PgServer", "PgUnavailable", "shared_server", "stop_shared_server"]

INSTALL_HINT = ("install Debian's PostgreSQL server: apt-get install -y postgresql "
                "(or set PG_BIN to a folder with initdb, pg_ctl and postgres)")
#: Roles the tests use to check the journal's errors (see ``PgServer.start``).
PASSWORD_USER, PASSWORD = "sw_password_user", "correct-horse"
REJECTED_USER = "sw_rejected_user"


class PgUnavailable(RuntimeError):
    """The PostgreSQL server binaries are missing or the server would not start."""


def find_bin_dir() -> Path:
    candidates = [os.environ.get("PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit()
                         else 0, reverse=True)
    which = shutil.which("pg_ctl")
    if which:
        candidates.append(str(Path(which).parent))
    for folder in filter(None, candidates):
        path = Path(folder)
        if all((path / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return path
    raise PgUnavailable(f"no PostgreSQL server binaries (initdb, pg_ctl, postgres) found: "
                        f"{INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One throw-away cluster. ``settings`` become ``-c name=value`` server options."""

    def __init__(self, *, settings: dict[str, str] | None = None) -> None:
        self.bin = find_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="sora-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self.settings = {"listen_addresses": "127.0.0.1", "max_connections": "200",
                         **(settings or {})}
        self._as_postgres = os.geteuid() == 0
        self.started = False

    # -- running ----------------------------------------------------------------------------

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              cwd=self.root, check=False)

    def _check(self, what: str, result: subprocess.CompletedProcess[str]) -> None:
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise PgUnavailable(f"{what} failed ({result.returncode}): {result.stdout}"
                                f"{result.stderr}{log}")

    def start(self) -> PgServer:
        if self._as_postgres:
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PgUnavailable("running as root, the server needs the 'postgres' OS "
                                    f"user, which Debian's package creates: {INSTALL_HINT}"
                                    ) from exc
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._check("initdb", self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--no-sync", "--no-instructions"))
        hba = self.data / "pg_hba.conf"
        # Checked first: a role that must give a password, and a role always rejected
        # (the journal's error advice is tested with both; everything else is trusted).
        rules = (f"host all {PASSWORD_USER} 127.0.0.1/32 scram-sha-256\n"
                 f"host all {REJECTED_USER} 127.0.0.1/32 reject\n")
        hba.write_text(rules + hba.read_text())
        options = f"-p {self.port} -k {self.root} " + " ".join(
            f"-c {name}={value}" for name, value in self.settings.items())
        self._check("pg_ctl start", self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
            "-w", "-t", "60", "start"))
        self.started = True
        self.sql(f"CREATE ROLE {PASSWORD_USER} LOGIN PASSWORD '{PASSWORD}'",
                 f"CREATE ROLE {REJECTED_USER} LOGIN")
        return self

    def stop(self) -> None:
        if self.started:
            self.started = False
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                      "stop", timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)

    # -- use --------------------------------------------------------------------------------

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def sql(self, *statements: str, database: str = "postgres") -> list[list[tuple[object, ...]]]:
        """Run statements in autocommit as the superuser; the rows of each."""
        import psycopg

        results = []
        with psycopg.connect(self.url(database), autocommit=True) as db:
            for statement in statements:
                cur = db.execute(statement)
                results.append(cur.fetchall() if cur.description else [])
        return results

    def create_database(self, prefix: str = "t") -> str:
        """A fresh empty database; returns its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_shared: PgServer | None = None
_shared_lock = threading.Lock()


def shared_server() -> PgServer:
    """The one server of this test session (started on first use, stopped at exit)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            server = PgServer(settings={"fsync": "off", "synchronous_commit": "off",
                                        "full_page_writes": "off"})
            try:
                server.start()
            except BaseException:
                server.stop()
                raise
            _shared = server
            atexit.register(stop_shared_server)
        return _shared


def stop_shared_server() -> None:
    global _shared
    with _shared_lock:
        server, _shared = _shared, None
    if server is not None:
        with contextlib.suppress(Exception):
            server.stop()
