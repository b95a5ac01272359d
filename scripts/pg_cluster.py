"""A throw-away PostgreSQL cluster in a folder: for the tests, the benchmarks and `make db`.

Uses Debian's server binaries (`postgresql` package, /usr/lib/postgresql/<version>/bin, or
$PG_BIN). initdb refuses to run as root, so as root every server command runs as the
`postgres` system user the package creates, in a folder handed to that user. The server
listens on 127.0.0.1 only, on a free port, with a random password for `postgres`.

    python scripts/pg_cluster.py start [--dir .pgdata] [--port 5433]   # prints DATABASE_URL
    python scripts/pg_cluster.py stop [--dir .pgdata]
"""

from __future__ import annotations

import argparse
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

SERVICE_USER = "postgres"


class ClusterError(RuntimeError):
    """The cluster could not be created, started or stopped; the message says why."""


def server_bin() -> Path:
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise ClusterError("PostgreSQL server binaries not found: apt-get install postgresql (or set PG_BIN)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalPostgres:
    def __init__(self, directory: Path | str, port: int | None = None, settings: dict[str, str] | None = None) -> None:
        self.directory = Path(directory).resolve()
        self.data = self.directory / "data"
        port_file = self.directory / "port"
        self.port = port or (int(port_file.read_text()) if port_file.is_file() else free_port())
        self.settings = settings or {}
        self._bin = server_bin()
        self._as_root = os.geteuid() == 0

    @property
    def password(self) -> str:
        return (self.directory / "password").read_text().strip()

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *command: str) -> str:
        argv = [str(self._bin / command[0]), *command[1:]]
        if self._as_root:
            argv = ["runuser", "-u", SERVICE_USER, "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, cwd=self.directory, check=False)
        if result.returncode != 0:
            log = self.directory / "server.log"
            tail = log.read_text()[-2000:] if log.is_file() else ""
            raise ClusterError(f"{command[0]} failed ({result.returncode}): {result.stderr.strip()}\n{tail}".strip())
        return result.stdout

    def init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if (self.data / "PG_VERSION").is_file():
            return
        password_file = self.directory / "password"
        password_file.write_text(secrets.token_urlsafe(18) + "\n")
        os.chmod(password_file, 0o600)
        if self._as_root:
            try:
                user = pwd.getpwnam(SERVICE_USER)
            except KeyError:
                raise ClusterError(f"no {SERVICE_USER!r} system user: apt-get install postgresql") from None
            for path in (self.directory, password_file):
                os.chown(path, user.pw_uid, user.pw_gid)
        os.chmod(self.directory, 0o700)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--pwfile={password_file}",
        )

    def start(self) -> None:
        self.init()
        (self.directory / "port").write_text(f"{self.port}\n")
        options = [f"-p {self.port}", f"-k {self.directory}", "-c listen_addresses=127.0.0.1"]
        options += [f"-c {name}={value}" for name, value in self.settings.items()]
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.directory / "server.log"), "-w", "-t", "30",
                  "-o", " ".join(options), "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def running(self) -> bool:
        argv = [str(self._bin / "pg_ctl"), "-D", str(self.data), "status"]
        if self._as_root:
            argv = ["runuser", "-u", SERVICE_USER, "--", *argv]
        return subprocess.run(argv, capture_output=True, check=False).returncode == 0

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def remove(self) -> None:
        if self.data.is_dir() and self.running():
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(prog="python scripts/pg_cluster.py", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    cli.add_argument("action", choices=["start", "stop", "url"])
    cli.add_argument("--dir", type=Path, default=Path(".pgdata"), help="cluster folder (default .pgdata/)")
    cli.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: 5433, or the one it had)")
    cli.add_argument("--db", default="credit_scoring", help="database to create at first start")
    args = cli.parse_args(argv)
    known = (args.dir / "port").is_file()
    cluster = LocalPostgres(args.dir, args.port or (None if known else 5433))
    try:
        if args.action == "stop":
            cluster.stop()
            print(f"stopped the cluster in {cluster.directory}", file=sys.stderr)
            return 0
        if args.action == "start":
            fresh = not (cluster.data / "PG_VERSION").is_file()
            if not (cluster.data.is_dir() and cluster.running()):
                cluster.start()
            if fresh:
                cluster.create_database(args.db)
            print(f"PostgreSQL on 127.0.0.1:{cluster.port}, data in {cluster.data}", file=sys.stderr)
        print(f"export DATABASE_URL={cluster.url(args.db)}")
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
