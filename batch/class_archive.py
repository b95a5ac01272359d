"""A class-data-sharing archive of the local driver JVM's classes: Spark starts in half the time.

A local `python -m batch score` JVM loads about 10,700 classes, from Spark's jars, at start-up and
in its first job. An AppCDS dynamic archive (JDK 13+) holds them parsed and verified, and a JVM
maps it instead of loading them again: Spark's start-up 4.1 -> 2.2 s, and the job's first tasks
start 0.15 s sooner (benchmarks/RESULTS.md §11).

The first run on a machine records it: its JVM writes the archive (about 120 MB) when it exits,
which takes 3-6 s, and `ClassArchive.finish` waits for that exit. The file is kept only if the
JVM exited cleanly and holds every region the JVM's log says it wrote: a truncated archive is not
ignored by a later JVM, it crashes it (SIGBUS). A recording that fails leaves a `.failed` marker
and is not tried again (each try costs the dump). Every later run maps the archive; a JVM that
cannot use it (another JDK, Spark release or class path) runs silently as without.

Where: `$BATCH_CLASS_ARCHIVE_DIR`, else `$XDG_CACHE_HOME/credit-scoring/jvm` (`~/.cache/...`), one
file per JDK, Spark installation (the path, size and modification time of every jar, which the JVM
checks before it maps an archive) and JVM options. Each saved archive has its `.installation`
beside it (java, jars folder, options): saving a new one removes what the same installation
saved before its jars changed, which no JVM would map again. `BATCH_CLASS_ARCHIVE=off` turns it
off, and so does a folder whose path a JVM option cannot carry (a space, `:` or `%`). Deleting the
folder is always safe (and retries a failed recording).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SWITCH = "BATCH_CLASS_ARCHIVE"
FOLDER = "BATCH_CLASS_ARCHIVE_DIR"
SUFFIX = ".jsa"
FAILED = ".failed"
INSTALLATION = ".installation"
"""Beside each saved archive: its `installation`, to find the archives that installation left before."""
EXIT_WAIT_S = 120.0
"""How long `finish` waits for the recording JVM to write the archive and exit."""

# The JVM's log line of each region it wrote:
# `Shared file region (rw )  0: 46057872 bytes, addr ... file offset 0x00001000 crc ...`
_REGION = re.compile(r"Shared file region .*?:\s+(\d+) bytes, .*?file offset (0x[0-9a-fA-F]+)")
_QUIET = "-Xlog:cds*=off"  # the JVM's CDS warnings (classes it cannot archive, an unusable archive) off stdout
# What this module leaves in the folder while a run records: `<key>.<pid>.partial` and `.log`.
_LEFTOVER = re.compile(r"^[0-9a-f]{16}\.(\d+)\.(partial|log)$")
# Spark's launcher splits extraJavaOptions on whitespace, and -Xlog reads `:` as a separator.
_UNSAFE_IN_OPTIONS = re.compile(r"[\s:%\"']")


def folder() -> Path | None:
    """Where the archives live; None when turned off."""
    if os.environ.get(SWITCH, "").strip().lower() in ("0", "off", "false", "no"):
        return None
    if configured := os.environ.get(FOLDER):
        return Path(configured)
    cache = os.environ.get("XDG_CACHE_HOME")
    if not cache:
        try:
            cache = str(Path.home() / ".cache")
        except RuntimeError:  # no home folder to be found: no archive
            return None
    return Path(cache) / "credit-scoring" / "jvm"


def _java() -> Path | None:
    """The java Spark's launcher runs: $JAVA_HOME/bin/java, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    return Path(found).resolve() if found and Path(found).exists() else None


def _launcher_files() -> tuple[Path, Path] | None:
    """The java and the Spark jars folder the launcher runs (None: no java found)."""
    from pyspark.find_spark_home import _find_spark_home  # SPARK_HOME first, else the installed package

    java = _java()
    return None if java is None else (java, Path(_find_spark_home()).resolve() / "jars")


def installation(java_options: str) -> str | None:
    """Which java, Spark jars folder and JVM options an archive is for, whatever the files hold now."""
    found = _launcher_files()
    return None if found is None else _installation(*found, java_options)


def _installation(java: Path, jars: Path, java_options: str) -> str:
    return json.dumps({"java": str(java), "jars": str(jars), "options": java_options})


def archive_key(java_options: str) -> str | None:
    """A name for this JDK, Spark installation and JVM options (None: no java found, no archive)."""
    found = _launcher_files()
    return None if found is None else _key(*found, java_options)


def _key(java: Path, jars: Path, java_options: str) -> str:
    import pyspark

    # The JVM maps an archive only if every jar on the class path has the path, size and modification
    # time it had at recording: a reinstalled environment (same release, new files) gets a new key.
    listing = sorted(_jar_entry(p) for p in jars.glob("*.jar")) if jars.is_dir() else []
    stat = java.stat()
    digest = hashlib.sha256(f"{java}\0{stat.st_size}\0{int(stat.st_mtime)}\0{pyspark.__version__}\0{jars}\0".encode())
    digest.update("\0".join([java_options, *listing]).encode())
    return digest.hexdigest()[:16]


def _jar_entry(jar: Path) -> str:
    stat = jar.stat()
    return f"{jar.name}:{stat.st_size}:{stat.st_mtime_ns}"


@dataclass(frozen=True)
class ClassArchive:
    """This run's archive: mapped (`recording` False) or written by this run's JVM at its exit."""

    path: Path
    recording: bool
    pid: int = field(default_factory=os.getpid)
    """The run's process, which names its partial files."""
    installation: str = field(default="", compare=False)
    """`installation()` of the JVM options it is for."""

    @property
    def partial(self) -> Path:
        return self.path.with_name(f"{self.path.stem}.{self.pid}.partial")

    @property
    def log(self) -> Path:
        return self.path.with_name(f"{self.path.stem}.{self.pid}.log")

    @property
    def failed(self) -> Path:
        return self.path.with_suffix(FAILED)

    def java_options(self) -> str:
        if self.recording:
            return f"-XX:ArchiveClassesAtExit={self.partial} {_QUIET} -Xlog:cds*=info:file={self.log}"
        return f"-XX:SharedArchiveFile={self.path} {_QUIET}"

    def applies_to(self, spark: Any) -> bool:
        """Whether the session's JVM was started with these options (not one that was running already)."""
        runtime = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
        arguments = runtime.getInputArguments()
        return any(str(self.partial if self.recording else self.path) in str(argument) for argument in arguments)

    def finish(self, log: Callable[[str], None]) -> None:
        """After `spark.stop()`: a recording JVM is shut down, its archive kept if whole; else nothing."""
        if not self.recording:
            return
        from pyspark import SparkContext

        gateway = SparkContext._gateway
        process = getattr(gateway, "proc", None)
        if gateway is None or process is None:  # not a JVM this process launched
            return
        log("saving the JVM's classes for faster start-ups (first run on this machine only) ...")
        gateway.shutdown()
        SparkContext._gateway = SparkContext._jvm = None  # a later session starts a new JVM
        if process.stdin is not None:
            process.stdin.close()  # PySpark's JVM exits when its stdin closes
        try:
            code = process.wait(timeout=EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            code = None
        try:
            self._keep_if_whole(code, log)
        except OSError as exc:  # the job is done: a cache that cannot be written must not fail it
            log(f"the JVM's class archive was not saved: {exc}")
        for leftover in (self.partial, self.log):
            with contextlib.suppress(OSError):
                leftover.unlink(missing_ok=True)

    def _keep_if_whole(self, code: int | None, log: Callable[[str], None]) -> None:
        if code == 0 and _whole(self.partial, self.log):
            os.replace(self.partial, self.path)
            log(f"saved {self.path} ({self.path.stat().st_size / 1e6:.0f} MB); later runs start faster")
            if self.installation:
                self.path.with_suffix(INSTALLATION).write_text(self.installation)
                self._remove_superseded(log)
            return
        self.failed.write_text(f"JVM exit code {code}\n")
        log(
            f"the JVM's class archive was not saved (JVM exit code {code}); not tried again "
            f"until {self.failed} is deleted"
        )

    def _remove_superseded(self, log: Callable[[str], None]) -> None:
        """The archives this installation saved before its files changed: no JVM can map them any more."""
        freed = 0
        for other in self.path.parent.glob(f"*{INSTALLATION}"):
            if other == self.path.with_suffix(INSTALLATION) or other.read_text() != self.installation:
                continue
            stale = other.with_suffix(SUFFIX)
            with contextlib.suppress(OSError):
                freed += stale.stat().st_size
                stale.unlink()
            other.unlink(missing_ok=True)
        if freed:
            log(f"removed this installation's earlier archive(s), {freed / 1e6:.0f} MB (its jars have changed)")


def _whole(archive: Path, log: Path) -> bool:
    """Whether `archive` holds every region `log` says the JVM wrote."""
    try:
        regions = _REGION.findall(log.read_text(errors="replace"))
        size = archive.stat().st_size
    except OSError:
        return False
    return bool(regions) and all(int(offset, 16) + int(length) <= size for length, offset in regions)


def prepare(java_options: str) -> ClassArchive | None:
    """The archive for a local JVM started with `java_options`: to map if saved, else to record; None when off."""
    where = folder()
    if where is None or _UNSAFE_IN_OPTIONS.search(str(where.absolute())):
        return None
    found = _launcher_files()  # looked up once: the key and the installation both name it
    if found is None:
        return None
    key = _key(*found, java_options)
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    path = where / f"{key}{SUFFIX}"
    if not path.is_file() and (path.with_suffix(FAILED).exists() or not os.access(where, os.W_OK)):
        return None  # recording failed before, or could not be saved there: do not pay for it at every run
    _remove_orphans(where)
    return ClassArchive(path.absolute(), recording=not path.is_file(), installation=_installation(*found, java_options))


def _remove_orphans(where: Path) -> None:
    """Partial archives and logs of runs that are gone (killed before they could finish)."""
    for leftover in where.iterdir():
        named = _LEFTOVER.match(leftover.name)
        if named and not _running(int(named.group(1))):
            with contextlib.suppress(OSError):
                leftover.unlink()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
