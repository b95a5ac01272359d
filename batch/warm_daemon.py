"""A preloaded Python daemon that waits for Spark: `batch.daemon`'s preloading off the job's clock.

Spark starts its Python daemon when the first task needs a worker. On a local master the
daemon's preloading (0.3 s on one core, the other idle) then sits between the first task and its
first row (benchmarks/RESULTS.md §11, §19). So the driver starts a *warm* process as it launches the
JVM (`WarmDaemon.start`). It preloads while the JVM starts (1-2 s), then waits on a Unix socket
in a private folder (0700), whose path the executors get in `SOCKET_VARIABLE`.

When Spark runs `python -m batch.daemon`, that process (the launcher, `claim`) sends the warm one
its standard streams (SCM_RIGHTS), environment, working folder, import path and arguments. The
warm process takes them over and runs PySpark's daemon loop (`pyspark.daemon.manager`, unchanged),
forking the workers from what it preloaded. The launcher stays the process Spark knows: it
forwards SIGTERM (how Spark stops its daemon) and ends when the warm process does.

The warm process refuses (and the launcher preloads by itself, as before) when anything read at
interpreter start or import differs from what Spark gave the launcher (`STARTUP_VARIABLES`: the
string hash seed that keeps partitioning consistent across workers, the BLAS thread count, ...),
when preloading failed, or when it has more than one thread. It exits unclaimed when the driver
closes its stdin (`WarmDaemon.close`, or the driver's exit).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

SOCKET_VARIABLE = "CREDIT_SCORING_WARM_DAEMON"
"""The warm daemon's socket, in the executors' environment (`spark.executorEnv.`)."""
SPARK_STARTUP = {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "YES"}
"""What a local master's Spark sets for its Python daemon (unless configured otherwise); the warm one starts with it."""
STARTUP_VARIABLES = (
    *SPARK_STARTUP,
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONOPTIMIZE",
    "PYTHONWARNINGS",
    "PYTHONIOENCODING",
    "PYTHONUTF8",
    "PYTHONMALLOC",
    "PYTHONNOUSERSITE",
    "JE_ARROW_MALLOC_CONF",
)
"""Read when the interpreter starts or a preloaded library is imported: the warm daemon's must be Spark's."""
CLAIM_TIMEOUT_S = 30.0
"""How long a launcher waits for the warm daemon to finish preloading and answer."""
REFUSED = 2
"""The warm process's exit status when it would not serve a launcher."""
_STREAMS = (0, 1, 2)
_LENGTH = struct.Struct(">I")


class WarmDaemonRefused(RuntimeError):
    """The warm daemon cannot serve this launcher; the launcher preloads by itself."""


# --- the driver's side ------------------------------------------------------------------------------


@dataclass
class WarmDaemon:
    """A warm daemon the driver started; `close` once the session has stopped."""

    process: subprocess.Popen[bytes]
    folder: Path

    @property
    def socket_path(self) -> Path:
        return self.folder / "daemon.sock"

    @classmethod
    def start(cls, root: str | None = None) -> WarmDaemon:
        """Start preloading now, with the start-up Spark will give its daemon (`SPARK_STARTUP`)."""
        folder = Path(tempfile.mkdtemp(prefix="credit-scoring-warm-daemon-"))  # 0700: this user only
        env = {**os.environ, **SPARK_STARTUP}
        if root is not None:  # where `batch` is imported from, as the daemon's PYTHONPATH has it
            env["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
        command = [sys.executable, "-m", "batch.daemon", "--warm", str(folder / "daemon.sock")]
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
        return cls(process, folder)

    def conf(self) -> dict[str, str]:
        """The session settings that point the executors' daemon at this one."""
        return {f"spark.executorEnv.{SOCKET_VARIABLE}": str(self.socket_path)}

    def close(self, timeout_s: float = 10.0) -> None:
        """Unclaimed, it exits on its closed stdin; claimed, Spark's stop has ended it: reap it either way."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


# --- the warm process: preload, wait, become the daemon ---------------------------------------------


def serve(socket_path: str) -> int:
    """The warm process's life: preload, wait for one launcher (or the driver's goodbye), run PySpark's daemon."""
    from batch.daemon import NotPreloadable, preload, thread_count

    # Ctrl-C reaches the whole process group: the driver's exit (our stdin closing) is what ends us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)  # before preloading: a launcher that comes early waits in the backlog
    listener.listen(1)
    refusal = None
    try:
        preload()
    except Exception as exc:  # any failure: the launcher preloads by itself and says why
        refusal = f"preloading failed: {exc}"
    ready, _, _ = select.select([listener.fileno(), 0], [], [])
    if listener.fileno() not in ready:  # the driver closed our stdin: nobody will claim this daemon
        return 0
    connection, _ = listener.accept()
    listener.close()
    os.unlink(socket_path)
    try:
        request, streams = _receive(connection)
        if refusal is None:
            refusal = _mismatch(request["env"])
        if refusal is None and (threads := thread_count()) != 1:
            refusal = f"{threads} threads in the warm daemon"
        if refusal is not None:
            raise WarmDaemonRefused(refusal)
    except (WarmDaemonRefused, NotPreloadable, OSError, ValueError, KeyError) as exc:
        _send(connection, {"ok": False, "why": str(exc)})
        return REFUSED
    _adopt(request, streams)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as a daemon Spark started has it
    # The launcher waits for this connection to close: when this process ends, not when a worker does.
    os.register_at_fork(after_in_child=connection.close)
    _send(connection, {"ok": True, "pid": os.getpid()})
    from pyspark.daemon import manager

    manager()  # ends the process (PySpark's daemon exits 1 once Spark closes its stdin, as it always does)
    return 0


def _mismatch(env: dict[str, str]) -> str | None:
    """Why this process's start-up differs from what Spark gave the launcher, or None."""
    for name in STARTUP_VARIABLES:
        if os.environ.get(name) != env.get(name):
            return f"{name} is {env.get(name)!r} for Spark's daemon, {os.environ.get(name)!r} here"
    return None


def _adopt(request: dict[str, Any], streams: list[int]) -> None:
    """Become the process Spark started: its streams, environment, folder, path and arguments."""
    from batch.daemon import prefer_installed_pyspark

    for target, stream in zip(_STREAMS, streams, strict=True):
        os.dup2(stream, target)
        os.close(stream)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[:] = prefer_installed_pyspark(request["path"])
    sys.argv[:] = request["argv"]


# --- the launcher: the process Spark starts, handing over to the warm daemon ------------------------


def claim(socket_path: str) -> bool:
    """Hand this process's streams to the warm daemon and wait for it to end; False if it is not there.

    Raises WarmDaemonRefused if it answered but would not take over (this process then preloads).
    """
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(CLAIM_TIMEOUT_S)
    try:
        connection.connect(socket_path)
    except (FileNotFoundError, ConnectionRefusedError):  # claimed already, or gone
        connection.close()
        return False
    request = {"env": dict(os.environ), "cwd": os.getcwd(), "path": list(sys.path), "argv": list(sys.argv)}
    payload = json.dumps(request).encode()
    socket.send_fds(connection, [_LENGTH.pack(len(payload)) + payload], list(_STREAMS))
    answer = _receive_answer(connection)
    if not answer.get("ok"):
        raise WarmDaemonRefused(str(answer.get("why", "no answer")))
    warm = int(answer["pid"])
    # Spark reads the port from, and writes to, the warm daemon now: this process lets go of the streams.
    with open(os.devnull, "r+b") as null:
        for stream in _STREAMS:
            os.dup2(null.fileno(), stream)

    def forward(number: int, frame: FrameType | None) -> None:
        os.kill(warm, number)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    connection.settimeout(None)
    try:
        while connection.recv(1):  # nothing is ever sent: this returns b"" when the warm daemon ends
            pass
    except OSError:  # reset: it has ended all the same, and it served Spark (this process must not)
        pass
    return True


# --- the wire: one length-prefixed JSON message each way (the request carries the three streams) ----


def _send(connection: socket.socket, message: dict[str, Any]) -> None:
    payload = json.dumps(message).encode()
    connection.sendall(_LENGTH.pack(len(payload)) + payload)


def _receive(connection: socket.socket) -> tuple[dict[str, Any], list[int]]:
    connection.settimeout(CLAIM_TIMEOUT_S)
    data, fds, _, _ = socket.recv_fds(connection, 1 << 16, len(_STREAMS))
    streams = list(fds)
    if len(streams) != len(_STREAMS):
        for stream in streams:
            os.close(stream)
        raise ValueError(f"expected {len(_STREAMS)} streams, got {len(streams)}")
    return json.loads(_read_rest(connection, data)), streams


def _receive_answer(connection: socket.socket) -> dict[str, Any]:
    try:
        return dict(json.loads(_read_rest(connection, b"")))
    except (OSError, ValueError) as exc:  # timed out, closed without a word, garbled
        raise WarmDaemonRefused(f"no answer from the warm daemon ({exc or type(exc).__name__})") from None


def _read_rest(connection: socket.socket, data: bytes) -> bytes:
    """One length-prefixed message, `data` its first bytes as received."""
    buffer = bytearray(data)
    while len(buffer) < _LENGTH.size or len(buffer) < _LENGTH.size + _LENGTH.unpack_from(buffer)[0]:
        chunk = connection.recv(1 << 16)
        if not chunk:
            raise ValueError("the connection closed mid-message")
        buffer += chunk
    (length,) = _LENGTH.unpack_from(buffer)
    return bytes(buffer[_LENGTH.size : _LENGTH.size + length])
