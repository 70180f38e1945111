"""A PgBouncer started here, in front of a local PostgreSQL that trusts local connections.

For `load.py --pooler` and the tests that run workers through a real PgBouncer: Debian's `pgbouncer` binary
with the [pgbouncer] settings of compose/pgbouncer.ini (what docker-compose.yml runs: transaction mode),
on a free port of 127.0.0.1, its config written into a given directory.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

COMPOSE_INI = Path(__file__).resolve().parents[1] / "compose" / "pgbouncer.ini"


def pgbouncer_binary() -> str | None:
    """Debian's `pgbouncer` (in /usr/sbin, which a user's PATH may lack), or None."""
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")


def pgbouncer_settings(pool_size: int | None = None) -> dict[str, str]:
    """The [pgbouncer] settings of compose/pgbouncer.ini (what docker-compose runs), pool size optional."""
    ini = configparser.ConfigParser()
    ini.read_string(COMPOSE_INI.read_text())
    settings = dict(ini["pgbouncer"])
    if pool_size is not None:
        settings["default_pool_size"] = str(pool_size)
    return settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_config(path: Path, server: str, settings: dict[str, str]) -> None:
    """A pgbouncer.ini at `path` whose every database is on `server`'s host and port, with `settings`."""
    url = make_url(server)
    lines = ["[databases]", f"* = host={url.host} port={url.port or 5432}", "", "[pgbouncer]",
             *(f"{k} = {v}" for k, v in settings.items())]
    path.write_text("\n".join(lines) + "\n")


def here(port: int, auth_file: Path) -> dict[str, str]:
    """The settings that put a PgBouncer on 127.0.0.1:`port`, logging to stderr, its users in `auth_file`."""
    return {"listen_addr": "127.0.0.1", "listen_port": str(port), "unix_socket_dir": "", "logfile": "",
            "pidfile": "", "auth_file": str(auth_file)}


def as_user() -> list[str]:
    """PgBouncer refuses to run as root: then it switches to `nobody`, after it has read its files."""
    return ["-u", "nobody"] if os.geteuid() == 0 else []


@contextlib.contextmanager
def pgbouncer(server: str, directory: Path, settings: dict[str, str]) -> Iterator[int]:
    """A PgBouncer in front of `server` (which trusts local connections) on a free port of 127.0.0.1.

    `settings` fill its [pgbouncer] section; where it listens, and its trust authentication of the server's
    user, are set here. Yields the port.
    """
    binary = pgbouncer_binary()
    if binary is None:
        raise RuntimeError("no pgbouncer binary (apt-get install pgbouncer)")
    port = free_port()
    users = directory / "pgbouncer-users.txt"
    users.write_text(f'"{make_url(server).username}" ""\n')
    config = directory / "pgbouncer.ini"
    write_config(config, server, {**settings, **here(port, users), "auth_type": "trust"})
    with running([binary, *as_user(), str(config)], port, directory / "pgbouncer.log"):
        yield port


@contextlib.contextmanager
def running(command: list[str], port: int, log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    """Run `command` (a PgBouncer, or what starts one) until it listens on `port`; stop it afterwards."""
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            _wait_for_port(port, process, log)
            yield
        finally:
            process.terminate()
            process.wait(timeout=10)
def _wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited with {process.returncode}: {log.read_text()[-500:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on port {port} within {timeout} s")
