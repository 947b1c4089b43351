"""Real servers for the tests that need one, started here and stopped when the tests end.

PostgreSQL: ``LTIKIT_TEST_POSTGRES_URL`` points the tests at a server you run yourself;
otherwise a throw-away cluster is created with the machine's PostgreSQL binaries
(``python3 dev.py test`` installs Debian's ``postgresql`` package when they are missing)
and listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def started(process: subprocess.Popen[str], prefix: str) -> str:
    """The first line of ``process``'s output that starts with ``prefix``.

    The rest of the output is read on a thread from then on: a server whose pipe nobody
    reads blocks in its next write once the pipe's 64 KiB are full.  Each line is printed,
    and pytest shows what a test printed when that test fails."""
    assert process.stdout is not None
    for line in process.stdout:
        print(line, end="")
        if line.strip().startswith(prefix):
            threading.Thread(target=_echo, args=(process.stdout,), daemon=True).start()
            return line.strip()
    raise AssertionError(f"the server stopped before printing {prefix!r}")


def _echo(stream) -> None:
    with contextlib.suppress(ValueError, OSError):  # the stream closed with the process
        for line in stream:
            print(line, end="")


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian puts it off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_postgres_user(args: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI runs the tests as root.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class PostgresServer:
    """A cluster in a temporary directory; ``database()`` hands out empty databases."""

    def __init__(self, url: str, process: subprocess.Popen | None, directory: str | None):
        self.url = url  # the maintenance database
        self._process = process
        self._directory = directory
        self._admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        self._stop_command: list[str] | None = None

    @classmethod
    @contextmanager
    def running(cls):
        external = os.environ.get("LTIKIT_TEST_POSTGRES_URL")
        if external:
            server = cls(external, None, None)
            try:
                yield server
            finally:
                server._admin.dispose()
            return
        bindir = postgres_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed: run the tests with "
                               "`python3 dev.py test` (it installs it) or set "
                               "LTIKIT_TEST_POSTGRES_URL")
        directory = tempfile.mkdtemp(prefix="ltikit-pg-")
        data = os.path.join(directory, "data")
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        subprocess.run(_as_postgres_user([str(bindir / "initdb"), "-D", data, "-A", "trust",
                                          "-U", "postgres", "--no-sync", "-E", "UTF8"]),
                       check=True, capture_output=True)
        port = free_port()
        process = subprocess.Popen(
            _as_postgres_user([str(bindir / "postgres"), "-D", data, "-p", str(port),
                               "-k", directory, "-c", "listen_addresses=127.0.0.1",
                               "-c", "fsync=off", "-c", "max_connections=200"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        server = cls(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", process,
                     directory)
        server._stop_command = _as_postgres_user([str(bindir / "pg_ctl"), "stop", "-D", data,
                                                  "-m", "fast", "-w"])
        try:
            server._wait()
            yield server
        finally:
            server.stop()

    def _wait(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError("PostgreSQL did not start: "
                                   + self._process.stderr.read().decode(errors="replace"))
            try:
                with self._admin.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
                return
            except sa.exc.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def database(self) -> str:
        """A new, empty database: its SQLAlchemy URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        with self._admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        return self.url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        self._admin.dispose()
        if self._process is not None:
            if self._stop_command:  # "fast": disconnects the clients still in pools
                subprocess.run(self._stop_command, capture_output=True, timeout=60)
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._directory:
            shutil.rmtree(self._directory, ignore_errors=True)
