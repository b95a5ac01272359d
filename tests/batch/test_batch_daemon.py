"""The preloading daemon (`batch.daemon`): the job's workers really fork from it, preloaded, with no
thread before the fork; the job scores the same on PySpark's own daemon; it falls back to that one."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyspark
import pytest

from batch.daemon import MODULE, PYSPARK_DAEMON, without_installed_pyspark_archives
from batch.job import JobConfig, preloading_daemon_conf, score_portfolio

ROOT = Path(__file__).resolve().parents[2]
INSTALLED_PYSPARK = Path(pyspark.__file__).parent  # the tests import it from site-packages


def _facts(spark: Any) -> list[dict[str, Any]]:
    """From each of two Python workers: where its PySpark and job code come from, what its daemon (its parent) holds."""

    def probe(_: Iterator[int]) -> Iterator[dict[str, Any]]:
        # Nested, so cloudpickle ships it by value: the worker imports nothing of this test module.
        import os
        import sys
        from zipimport import zipimporter

        import pyspark

        daemon = os.getppid()
        with open(f"/proc/{daemon}/cmdline") as cmdline, open(f"/proc/{daemon}/maps") as maps:
            command, mapped = cmdline.read().split("\0"), maps.read()
        columns = sys.modules.get("batch.columns")
        try:
            import pandas  # noqa: F401 (whether the worker can)

            pandas_import = "imported"
        except ModuleNotFoundError as refused:
            pandas_import = str(refused)
        yield {
            "daemon_command": command,
            "daemon_threads": len(os.listdir(f"/proc/{daemon}/task")),
            "daemon_has_arrow": "libarrow" in mapped,
            "daemon_has_pandas": "pandas/_libs" in mapped,
            "daemon_has_onnxruntime": "onnxruntime" in mapped,
            "pyspark": pyspark.__file__,
            "batch_columns": None if columns is None else columns.__file__,
            "pandas_import": pandas_import,
            "archives_on_path": [entry for entry in sys.path if entry.endswith((".zip", ".jar"))],
            "zip_importers": [key for key, found in sys.path_importer_cache.items() if isinstance(found, zipimporter)],
        }

    return spark.sparkContext.parallelize(range(2), 2).mapPartitions(probe).collect()


def test_the_jobs_workers_fork_from_the_preloading_daemon(spark: Any) -> None:
    assert spark.sparkContext.getConf().get("spark.python.daemon.module") == MODULE
    for facts in _facts(spark):
        assert facts["daemon_command"][1:3] == ["-m", MODULE]
        # Preloaded before the fork: pyarrow lives in the daemon itself, pandas nowhere (the tasks
        # never use it, and pyarrow would import it on its first array) ...
        assert facts["daemon_has_arrow"] and not facts["daemon_has_pandas"]
        assert facts["pandas_import"] == "No module named 'pandas': the batch job's workers run without pandas"
        # ... the job's code too, from the source tree (a task would import it from the shipped zip) ...
        assert facts["batch_columns"] == str(ROOT / "batch" / "columns.py")
        # ... PySpark from the installed package (its bytecode), not from pyspark.zip ...
        assert facts["pyspark"] == str(INSTALLED_PYSPARK / "__init__.py")
        # ... with none of its archives left on the path, nor their importers (each would read its
        # archive's directory again when PySpark invalidates the import caches on a first task) ...
        assert not [entry for entry in facts["archives_on_path"] if entry.startswith(str(INSTALLED_PYSPARK))]
        assert facts["zip_importers"] == []
        # ... and never anything that starts a thread: no onnxruntime, one thread in the daemon.
        assert not facts["daemon_has_onnxruntime"]
        assert facts["daemon_threads"] == 1


# Scores the portfolio on a session of its own, built without preload_workers: PySpark's own daemon.
_DEFAULT_DAEMON_RUN = """
import json, sys
from pathlib import Path
from batch.job import JobConfig, build_session, score_portfolio
from tests.batch.test_batch_daemon import _facts
spark = build_session("local[2]", app_name="default-daemon-test")
config = JobConfig(input=sys.argv[1], output=sys.argv[2], model=Path(sys.argv[3]))
result = score_portfolio(spark, config, log=lambda line: None)
facts = _facts(spark)
spark.stop()
print(json.dumps({"read": result.counts.read, "rejected": result.counts.rejected, "facts": facts}))
"""


@pytest.mark.slow
def test_the_job_scores_the_same_on_pysparks_own_daemon(
    spark: Any, portfolio: Any, model_path: Path, tmp_path: Path
) -> None:
    preloaded = score_portfolio(
        spark, JobConfig(input=str(portfolio.parquet), output=str(tmp_path / "preloaded"), model=model_path), log=print
    )
    arguments = [str(portfolio.parquet), str(tmp_path / "own"), str(model_path)]
    command = [sys.executable, "-c", _DEFAULT_DAEMON_RUN, *arguments]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert {tuple(facts["daemon_command"][1:3]) for facts in found["facts"]} == {("-m", PYSPARK_DAEMON)}
    assert all(".zip" in facts["pyspark"] for facts in found["facts"])  # PySpark's own way: from pyspark.zip
    assert (found["read"], found["rejected"]) == (preloaded.counts.read, preloaded.counts.rejected)

    def scored(folder: str) -> pd.DataFrame:
        return pd.read_parquet(tmp_path / folder / "scored").sort_values("row_number").reset_index(drop=True)

    pd.testing.assert_frame_equal(scored("own"), scored("preloaded"), check_exact=True)  # the same bits


def _start_daemon(env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", MODULE, "pyspark.worker"]
    pipe = subprocess.PIPE
    return subprocess.Popen(command, cwd=ROOT, env=env, stdin=pipe, stdout=pipe, stderr=pipe)


def _spark_like_env(**extra: str) -> dict[str, str]:
    """The environment Spark gives its daemon, near enough: PySpark's zip first on the path, one BLAS thread."""
    zips = sorted(str(path) for path in (INSTALLED_PYSPARK / "python" / "lib").glob("*.zip"))
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*zips, str(ROOT)]), "OMP_NUM_THREADS": "1", **extra}


def _serve_then_stop(daemon: subprocess.Popen[bytes]) -> tuple[int, list[str], str]:
    """The port the daemon announces (as Spark reads it), its command line then, and its stderr once stopped."""
    assert daemon.stdout is not None and daemon.stdin is not None and daemon.stderr is not None
    (port,) = struct.unpack(">i", daemon.stdout.read(4))
    command = Path(f"/proc/{daemon.pid}/cmdline").read_text().split("\0")
    daemon.stdin.close()  # how Spark tells its daemon to stop
    daemon.wait(timeout=30)
    return port, command, daemon.stderr.read().decode()


def test_the_daemon_serves_preloaded_on_its_own() -> None:
    port, command, stderr = _serve_then_stop(_start_daemon(_spark_like_env()))
    assert 0 < port < 65536
    assert command[1:3] == ["-m", MODULE] and MODULE not in stderr  # no fallback line


def test_a_preload_that_would_leave_a_thread_falls_back_to_pysparks_daemon() -> None:
    # The user's own jemalloc settings win over the daemon's: its background thread runs, so no fork is safe.
    env = _spark_like_env(JE_ARROW_MALLOC_CONF="background_thread:true")
    port, command, stderr = _serve_then_stop(_start_daemon(env))
    assert 0 < port < 65536  # still a working daemon for Spark ...
    assert command[1:3] == ["-m", PYSPARK_DAEMON]  # ... PySpark's own, in the same process
    assert f"{MODULE}: preloading started 1 thread(s); running {PYSPARK_DAEMON} instead" in stderr


def test_only_the_installed_packages_own_archives_leave_the_path(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    (site / "pyspark" / "python" / "lib").mkdir(parents=True)
    (site / "pyspark" / "jars").mkdir()
    (site / "pyspark" / "__init__.py").write_text("")
    lib, jars = site / "pyspark" / "python" / "lib", site / "pyspark" / "jars"
    spark_home_zip = str(tmp_path / "spark-4" / "python" / "lib" / "pyspark.zip")  # another release: stays
    other_jar = str(tmp_path / "spark-4" / "jars" / "spark-core.jar")
    own = [str(lib / "pyspark.zip"), str(lib / "py4j-src.zip"), str(jars / "spark-core.jar")]
    path = [str(tmp_path), *own, spark_home_zip, other_jar, str(site)]
    assert without_installed_pyspark_archives(path) == [str(tmp_path), spark_home_zip, other_jar, str(site)]
    no_package = [*own, spark_home_zip]  # the package itself is not importable from this path: all stay
    assert without_installed_pyspark_archives(no_package) == no_package


def test_the_daemon_is_set_only_where_the_workers_run_this_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    assert preloading_daemon_conf() == {
        "spark.python.daemon.module": MODULE,
        "spark.executorEnv.PYTHONPATH": str(ROOT),  # a source tree: the daemon finds `batch` there
    }
    monkeypatch.setenv("PYSPARK_PYTHON", "/opt/other/python3")
    assert preloading_daemon_conf() == {}
