"""PySpark's Python daemon, started with what every worker needs already imported.

Spark runs one Python daemon per executor, `python -m <spark.python.daemon.module> pyspark.worker`,
and forks a worker from it for each task slot. With PySpark's own daemon (`pyspark.daemon`) every
worker then imports PySpark, pyarrow, pandas and the job's code itself, and PySpark comes from the
`pyspark.zip` that Spark puts first on PYTHONPATH, which Python compiles from source each time
(zipimport never caches bytecode): 0.5 s of CPU in the daemon, more in every worker
(benchmarks/RESULTS.md §11). `batch.job.build_session` sets this module instead, on local masters,
and it:

1. imports PySpark from the installed package, with the bytecode compiled at install, when the zip
   on the path is that package's own copy (`<site-packages>/pyspark/python/lib/pyspark.zip`): the
   same files either way. That zip, py4j's, and spark-core's jar leave the path, with their
   importers (`without_installed_pyspark_archives`);
2. imports `PRELOADED` and freezes them out of the garbage collector's scans (`gc.freeze`), so the
   forked workers inherit them, and PySpark's `gc.collect()` after each task skips them;
3. keeps pandas out of the workers (`WithoutPandas`): the job's tasks never use it (they run on
   Arrow and NumPy, and pyarrow works without it), yet pyarrow imports it on its first array,
   and at 0.19 s it was half of the preloading that sits before the first task;
4. runs PySpark's own daemon loop (`pyspark.daemon.manager`), unchanged.

Nothing that starts a thread may be imported before a fork: the child keeps the forking thread
only, and a lock another thread held at that moment stays locked in the child. onnxruntime starts
one when imported, so each worker imports it and builds its session itself (`batch.executor`).
OpenBLAS (numpy) starts none since Spark sets OMP_NUM_THREADS to the task's cores; pyarrow's
bundled jemalloc would start its background thread, which is turned off while importing (Arrow's
default allocator here is mimalloc: jemalloc is loaded but unused). Whenever preloading fails or
leaves a second thread, the process turns into PySpark's own daemon (`os.execv`, same pid and pipes,
before the JVM has read a byte) and says why on stderr: the job never depends on this module.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.abc
import os
import sys
from collections.abc import Iterator
from pathlib import Path

MODULE = "batch.daemon"
"""This module's name, as `spark.python.daemon.module` names it."""
PYSPARK_DAEMON = "pyspark.daemon"

PRELOADED = (
    "pyspark.daemon",
    "pyspark.worker",  # PySpark's side of every task
    "numpy",
    "pyarrow",
    "pyarrow.compute",
    "pyarrow.fs",
    "pyarrow.parquet",
    "batch.columns",
    "batch.parts",
    "batch.reasons",
    "batch.executor",
    "batch.parquet_slices",  # the job's executor code (onnxruntime is imported on first use)
)
"""What the workers of a job import anyway, imported once before they are forked."""

_NO_JEMALLOC_THREAD = ("JE_ARROW_MALLOC_CONF", "background_thread:false")


class NotPreloadable(RuntimeError):
    """The daemon cannot preload safely; PySpark's own daemon runs instead."""


def without_installed_pyspark_archives(path: list[str]) -> list[str]:
    """`path` without the archives of an installed pyspark that Spark puts first on its workers' path.

    Those are the zips of its `python/lib` (the same release as the package itself, which is then
    imported, from its bytecode) and the jars of its `jars/` folder (Java classes: spark-core's is
    there for a PySpark packed inside it; a pip-installed one is not). Only archives inside an
    importable pyspark package (its `__init__.py` there, its parent folder on `path`) go.
    """
    return [entry for entry in path if _installed_pyspark_holding(entry) not in path]


def _installed_pyspark_holding(entry: str) -> str | None:
    """The folder holding the importable pyspark package that `entry` is an archive of, if it is one."""
    archive = Path(entry)
    if archive.suffix == ".zip" and archive.parent.name == "lib" and archive.parent.parent.name == "python":
        package = archive.parent.parent.parent
    elif archive.suffix == ".jar" and archive.parent.name == "jars":
        package = archive.parent.parent
    else:
        return None
    return str(package.parent) if package.name == "pyspark" and (package / "__init__.py").is_file() else None


def forget_importers(archives: set[str]) -> None:
    """Drop the path importers of `archives` (and of the folders inside them, for namespace packages).

    PySpark's worker calls `importlib.invalidate_caches()` on its first task (it puts the task's
    files folder on the path), and every zip importer then reads its archive's directory again:
    spark-core's jar (5,973 entries, twice) cost each worker about 55 ms before its first row."""
    for key in list(sys.path_importer_cache):
        if any(key == archive or key.startswith(archive + os.sep) for archive in archives):
            del sys.path_importer_cache[key]


def thread_count() -> int:
    """Threads of this process (Linux); NotPreloadable where they cannot be counted."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        raise NotPreloadable("cannot count this process's threads (no /proc)") from None


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """`name=value` while preloading (unless already set), then the environment Spark gave."""
    if name in os.environ:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        del os.environ[name]


class WithoutPandas(importlib.abc.MetaPathFinder):
    """Refuses to import pandas: pyarrow then runs without it (its pandas shim sees ImportError).

    Only the preloading daemon's workers get it, and only the batch job's sessions use that
    daemon (`batch.job.session_for`); a pandas UDF there would fail with this message."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(
                f"No module named {name!r}: the batch job's workers run without pandas", name=name
            )
        return None


def preload(modules: tuple[str, ...] = PRELOADED) -> None:
    """Import `modules` (PySpark from its installed bytecode); NotPreloadable if that starts a thread."""
    if thread_count() != 1:
        raise NotPreloadable(f"{thread_count()} threads before preloading")
    kept = without_installed_pyspark_archives(sys.path)
    forget_importers(set(sys.path) - set(kept))
    sys.path[:] = kept
    if "pandas" not in sys.modules:
        sys.meta_path.insert(0, WithoutPandas())
    # The JVM reads the daemon's port from stdout: nothing an import prints may land there.
    with _environment(*_NO_JEMALLOC_THREAD), contextlib.redirect_stdout(sys.stderr):
        for name in modules:
            importlib.import_module(name)
    if "onnxruntime" in sys.modules:
        raise NotPreloadable("onnxruntime was imported (it starts a thread); import it in the workers")
    if (threads := thread_count()) != 1:
        raise NotPreloadable(f"preloading started {threads - 1} thread(s)")
    gc.freeze()


def main() -> None:
    try:
        preload()
    except Exception as exc:  # anything at all: PySpark's own daemon is always there to fall back on
        print(f"{MODULE}: {exc}; running {PYSPARK_DAEMON} instead", file=sys.stderr, flush=True)
        os.execv(sys.executable, [sys.executable, "-m", PYSPARK_DAEMON, *sys.argv[1:]])
    from pyspark.daemon import manager

    manager()


if __name__ == "__main__":
    main()
