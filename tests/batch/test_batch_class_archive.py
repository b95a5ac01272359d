"""The JVM class archive (`batch.class_archive`): a machine's first job records it, later jobs map
it, a partly written one is never kept, and the switch and folder settings are honoured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from batch import class_archive
from batch.class_archive import FOLDER, INSTALLATION, SUFFIX, SWITCH, ClassArchive
from batch.job import SCHEDULER_JAVA_OPTIONS
from tests.batch.conftest import Portfolio

ROOT = Path(__file__).resolve().parents[2]

# Two jobs in one process as `python -m batch score` runs each: the first on a new JVM that records
# the archive, the second on another new JVM (the first one shut down to save it). Each reports whether
# its JVM maps the archive file.
_JOBS = """
import json, sys
from pathlib import Path
from pyspark import SparkContext
from batch.job import JobConfig, score_portfolio, session_for, stop_session
found = []
for run in ("first", "second"):
    config = JobConfig(input=sys.argv[1], output=sys.argv[2] + "/" + run, model=Path(sys.argv[3]))
    spark = session_for(config, "local[2]")
    runtime = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    options = list(runtime.getInputArguments())
    with open(f"/proc/{SparkContext._gateway.proc.pid}/maps") as maps:
        mapped = sorted({line.split()[-1] for line in maps if line.rstrip().endswith(".jsa")})
    result = score_portfolio(spark, config, log=lambda line: None)
    print(f"-- {run} job done", file=sys.stderr, flush=True)
    stop_session(spark, log=lambda line: print(line, file=sys.stderr, flush=True))
    found.append({"scored": result.counts.scored, "mapped": mapped, "jvm_options": options})
print(json.dumps(found))
"""
SAVING = "saving the JVM's classes for faster start-ups"


def test_the_first_job_records_the_archive_and_the_next_one_maps_it(
    portfolio: Portfolio, model_path: Path, tmp_path: Path
) -> None:
    archives = tmp_path / "jvm"
    archives.mkdir()
    # What this installation saved before its jars were reinstalled (another key), and another
    # installation's archive: the first is superseded by the new recording, the second stays.
    superseded = archives / f"{'0' * 16}{SUFFIX}"
    superseded.write_bytes(b"old classes")
    superseded.with_suffix(INSTALLATION).write_text(class_archive.installation(SCHEDULER_JAVA_OPTIONS) or "")
    elsewhere = archives / f"{'1' * 16}{SUFFIX}"
    elsewhere.write_bytes(b"other classes")
    elsewhere.with_suffix(INSTALLATION).write_text('{"jars": "/opt/another/spark/jars"}')
    env = {**os.environ, FOLDER: str(archives), "PYTHONPATH": str(ROOT)}
    env.pop(SWITCH, None)
    done = subprocess.run(
        [sys.executable, "-c", _JOBS, str(portfolio.parquet), str(tmp_path / "out"), str(model_path)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = json.loads(done.stdout.strip().splitlines()[-1])
    said_first, said_second = done.stderr.split("-- second job done")
    assert not superseded.exists() and not superseded.with_suffix(INSTALLATION).exists()
    assert "removed this installation's earlier archive(s)" in said_first
    assert elsewhere.exists() and elsewhere.with_suffix(INSTALLATION).exists()
    elsewhere.unlink()
    elsewhere.with_suffix(INSTALLATION).unlink()
    saved = sorted(path for path in archives.iterdir() if path.suffix != INSTALLATION)
    assert [p.suffix for p in saved] == [SUFFIX], saved  # the archive alone: no partial file, no log left
    assert saved[0].stat().st_size > 10_000_000
    assert saved[0].with_suffix(INSTALLATION).read_text() == class_archive.installation(SCHEDULER_JAVA_OPTIONS)
    # The first job's JVM records it (the JDK's own archive is the only one it maps) and saves it ...
    assert SAVING in said_first and f"saved {saved[0]}" in said_first
    assert not [file for file in first["mapped"] if file.startswith(str(archives))]
    # ... the next JVM maps it (beside the JDK's own), and nothing is recorded again.
    assert str(saved[0]) in second["mapped"]
    assert SAVING not in said_second
    assert second["scored"] == first["scored"] > 0
    # Both JVMs only schedule: C1 only, the serial collector, a young generation for Spark's start-up.
    for run in (first, second):
        assert set(SCHEDULER_JAVA_OPTIONS.split()) <= set(run["jvm_options"]), run["jvm_options"]


def _log(tmp_path: Path, regions: list[tuple[int, int]]) -> Path:
    log = tmp_path / "dump.log"
    log.write_text(
        "[14.890s][info][cds] Dumping shared data to file:\n"
        + "".join(
            f"[14.9s][info][cds] Shared file region (rw ) {i}: {size} bytes, addr 0x0000000800bcb000 "
            f"file offset {offset:#010x} crc 0x204e5f3c\n"
            for i, (size, offset) in enumerate(regions)
        )
    )
    return log


def test_an_archive_is_whole_only_when_it_holds_every_region_the_log_names(tmp_path: Path) -> None:
    archive = tmp_path / "a.partial"
    log = _log(tmp_path, [(8192, 0x1000), (4096, 0x3000)])  # the last region ends at 0x4000
    archive.write_bytes(b"\0" * 0x4000)
    assert class_archive._whole(archive, log)
    archive.write_bytes(b"\0" * (0x4000 - 1))  # cut short by a byte: a later JVM would crash on it
    assert not class_archive._whole(archive, log)
    assert not class_archive._whole(archive, _log(tmp_path, []))  # a log that names no region: not kept
    assert not class_archive._whole(tmp_path / "absent.partial", log)


def test_the_switch_and_the_folder_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(FOLDER, raising=False)
    monkeypatch.delenv(SWITCH, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert class_archive.folder() == tmp_path / "cache" / "credit-scoring" / "jvm"
    monkeypatch.setenv(FOLDER, str(tmp_path / "mine"))
    assert class_archive.folder() == tmp_path / "mine"
    prepared = class_archive.prepare("-XX:TieredStopAtLevel=1")
    assert prepared is not None and prepared.recording and prepared.path.parent == tmp_path / "mine"
    assert "-XX:ArchiveClassesAtExit=" in prepared.java_options()
    prepared.path.write_bytes(b"saved")
    mapped = class_archive.prepare("-XX:TieredStopAtLevel=1")
    assert mapped == ClassArchive(prepared.path, recording=False)
    assert mapped.java_options().startswith(f"-XX:SharedArchiveFile={prepared.path} ")
    assert class_archive.prepare("-XX:TieredStopAtLevel=4") != mapped  # other JVM options, another archive
    # A folder this user cannot write to (simulated: the tests may run as root, who writes anywhere):
    # no archive to record, so no run pays for a JVM dump that cannot be saved; a saved one is still mapped.
    with monkeypatch.context() as denied:
        real_access, folder = os.access, tmp_path / "mine"
        denied.setattr(class_archive.os, "access", lambda path, mode: Path(path) != folder and real_access(path, mode))
        assert class_archive.prepare("-XX:TieredStopAtLevel=9") is None
        assert class_archive.prepare("-XX:TieredStopAtLevel=1") == mapped
    # A recording that failed once is not tried again until its marker is deleted.
    prepared.failed.write_text("JVM exit code 1\n")
    prepared.path.unlink()
    assert class_archive.prepare("-XX:TieredStopAtLevel=1") is None
    prepared.failed.unlink()
    assert class_archive.prepare("-XX:TieredStopAtLevel=1") == prepared
    # A folder a JVM option cannot carry: Spark splits the options on spaces, -Xlog reads ':'.
    for awkward in ("with space", "with:colon"):
        monkeypatch.setenv(FOLDER, str(tmp_path / awkward))
        assert class_archive.prepare("-XX:TieredStopAtLevel=1") is None
    for off in ("off", "0", "false"):
        monkeypatch.setenv(SWITCH, off)
        assert class_archive.folder() is None and class_archive.prepare("") is None


def test_leftovers_of_a_run_that_is_gone_are_removed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(FOLDER, str(tmp_path))
    monkeypatch.delenv(SWITCH, raising=False)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(gone.stdout)
    key = "0123456789abcdef"
    (tmp_path / f"{key}.{dead}.partial").write_bytes(b"half")
    (tmp_path / f"{key}.{dead}.log").write_text("")
    kept = [f"{key}.{os.getpid()}.partial", f"app.{dead}.log"]  # a run still going; a file not ours
    for name in kept:
        (tmp_path / name).write_bytes(b"kept")
    class_archive.prepare("")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)


def test_a_reinstalled_or_moved_spark_gets_a_new_archive(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The JVM refuses an archive whose class path jars changed path, size or modification time,
    # silently: the key must change with each, or a reinstalled environment would never map one again.
    home = tmp_path / "spark"
    (home / "jars").mkdir(parents=True)
    jar = home / "jars" / "spark-core.jar"
    jar.write_bytes(b"classes")
    monkeypatch.setenv("SPARK_HOME", str(home))
    first = class_archive.archive_key("-XX:TieredStopAtLevel=1")
    assert first is not None and class_archive.archive_key("-XX:TieredStopAtLevel=1") == first
    os.utime(jar, ns=(jar.stat().st_atime_ns, jar.stat().st_mtime_ns + 1_000_000_000))  # reinstalled: same bytes
    touched = class_archive.archive_key("-XX:TieredStopAtLevel=1")
    assert touched != first
    moved = tmp_path / "elsewhere"
    home.rename(moved)
    monkeypatch.setenv("SPARK_HOME", str(moved))
    assert class_archive.archive_key("-XX:TieredStopAtLevel=1") not in (first, touched)
