"""The driver: read the portfolio, ship the model and the code (not on a local master), score, write, count.

Output (docs/CONTRACTS.md, "Portfolio scoring output"):
- DIR/scored/  Parquet: [id column], row_number, probability, prediction, decision, model_version,
  threshold, and with --reasons `reasons` (the API's reasons of a refused row, null for an accepted one)
- DIR/rejects/ Parquet: row_number, [id column], problems (list of {field, problem}, the API's 422 words)
- DIR/summary.json: counts (read, scored, rejected), the model and the input

Who does the I/O: local Parquet is read by the executors with pyarrow (`batch.parquet_slices`),
anything else by Spark; a local output (or a folder every node mounts) is written by the
executors, a part per slice (or Spark partition), committed here (`batch.parts`), anything else
by Spark's writer. With both on the executors, no applicant's row passes through the JVM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from batch import class_archive, daemon
from batch.class_archive import ClassArchive
from batch.executor import PROBLEMS, ROW_ID_COLUMN, ROW_NUMBER, ArtifactMismatch, ScoreRows, Scoring
from batch.parquet_slices import ScoreSlices, group_slices, local_path, open_input, readable_here, text_columns
from batch.parts import REJECTS, SCORED, abandon, commit, new_staging
from batch.progress import StageProgress
from batch.reasons import DEFAULT_REASONS, MAX_REASONS, ReasonsUnavailable, load_explainer
from batch.shipping import ZIP_NAME, code_version, package_code
from contract.scorer import ModelLoadError, Scorer
from contract.spec import FeatureSpec

ID_COLUMNS = ("SK_ID_CURR", "application_id")
"""The first of these present in the input is carried to both outputs."""
FORMATS = ("csv", "parquet")


class InputError(RuntimeError):
    """The input cannot be scored (unreadable, malformed, a column missing); one line says why."""


@dataclass(frozen=True)
class JobConfig:
    input: str
    output: str
    model: Path
    input_format: str | None = None  # None: from the file name (.csv, else Parquet)
    overwrite: bool = False
    spark_reader: bool = False  # Parquet through Spark's reader even on a local path (slower)
    spark_writer: bool = False  # Spark writes the outputs even to a local path (slower)
    reasons: bool = False  # add each refused row's reasons (the API's), `reasons_count` of them at most
    reasons_count: int = DEFAULT_REASONS
    progress_every_s: float = 5.0


@dataclass(frozen=True)
class JobCounts:
    read: int
    scored: int
    rejected: int


@dataclass(frozen=True)
class JobResult:
    counts: JobCounts
    model_version: str
    threshold: float
    id_column: str | None
    seconds: float
    reasons: int = 0
    """Reasons per refused row (0: no `reasons` column)."""


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def input_format(path: str, requested: str | None) -> str:
    if requested is not None:
        return requested
    return "csv" if path.lower().rstrip("/").endswith((".csv", ".csv.gz")) else "parquet"


def check_local_paths(config: JobConfig) -> None:
    """Fail before Spark starts when a local input is missing or the output would be overwritten."""
    if readable_here(config.input) and not Path(local_path(config.input)).exists():
        raise InputError(f"input {config.input} does not exist")
    if readable_here(config.output) and not config.overwrite:
        for part in (SCORED, REJECTS):
            if (Path(local_path(config.output)) / part).exists():
                raise InputError(
                    f"{Path(local_path(config.output)) / part} already exists (pass --overwrite to replace it)"
                )


def executors_read(config: JobConfig) -> bool:
    """Local Parquet is read by the executors themselves (pyarrow slices); anything else by Spark."""
    return (
        input_format(config.input, config.input_format) == "parquet"
        and not config.spark_reader
        and readable_here(config.input)
    )


def executors_write(config: JobConfig) -> bool:
    """Executors write their own parts where they can reach the output; else Spark writes it."""
    return not config.spark_writer and readable_here(config.output)


def session_for(config: JobConfig, master: str | None, app_name: str = "credit-scoring-batch") -> Any:
    """The session `python -m batch score` runs `config` on.

    A JVM that only schedules when the executors do the I/O; on a local master, Python workers
    forked from the preloading daemon (`batch.daemon`).
    """
    return build_session(
        master,
        app_name,
        scheduler_only=executors_read(config) and executors_write(config),
        preload_workers=True,
    )


def build_session(
    master: str | None,
    app_name: str = "credit-scoring-batch",
    scheduler_only: bool = False,
    preload_workers: bool = False,
) -> Any:
    """A SparkSession for the job (master None: spark-submit's); locally the workers run this interpreter.

    `scheduler_only`: no row passes through the JVM (pyarrow reads and writes on the executors),
    so on a local master the driver JVM, which is also the executor, only schedules tasks: it
    compiles with the quick JIT only (C1), whose code is ready at once, instead of also spending
    CPU on C2 for hot loops it never runs (benchmarks/RESULTS.md §11); it collects its little
    garbage with the serial collector, which runs no threads beside the workers (G1's threads
    cost the job about 0.1 s, §22), in a young generation of 256 MB: the one collection of the
    objects Spark's start-up leaves then comes during that start-up, not as a 70 ms pause while
    the job's first tasks launch (§25); and it maps the class archive of `batch.class_archive` (or
    records it, on a machine's first run; `stop_session` then waits while the JVM saves it).
    `preload_workers`: on a local master, the Python workers are forked from `batch.daemon`
    (PySpark and the job's libraries imported once, before the fork) when they can import it
    (`preloading_daemon_conf`); elsewhere, and otherwise, from PySpark's own daemon.
    """
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    archive = None
    if master is not None:
        builder = builder.master(master)
        if is_local(master):
            # Spark starts `python3` for its workers unless told otherwise: use this environment.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            # A laptop job talks to itself only: bind the driver to loopback.
            builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
            if scheduler_only:
                archive = _class_archive(SCHEDULER_JAVA_OPTIONS)
                options = SCHEDULER_JAVA_OPTIONS + (f" {archive.java_options()}" if archive else "")
                builder = builder.config("spark.driver.extraJavaOptions", options)
            if preload_workers:
                for key, value in preloading_daemon_conf().items():
                    builder = builder.config(key, value)
    builder = (
        builder.appName(app_name)
        .config("spark.ui.showConsoleProgress", "false")  # the job prints its own progress
        .config("spark.sql.shuffle.partitions", "8")  # only the counts are shuffled
        # Smaller input splits than the 128 MB default: a book of a few hundred MB still makes
        # enough tasks to keep every core busy to the end.
        .config("spark.sql.files.maxPartitionBytes", "32m")
    )
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    if archive is not None:  # a JVM this call launched (a running one keeps what it had)
        global _archive
        _archive = archive if archive.applies_to(session) else None
    return session


SCHEDULER_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmn256m"
_archive: ClassArchive | None = None
"""The class archive of the JVM `build_session` started last, if that JVM maps or records one."""


def _class_archive(java_options: str) -> ClassArchive | None:
    """The class archive for a JVM this process is about to launch (None under spark-submit or with a JVM running)."""
    from pyspark import SparkContext

    if SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ:
        return None  # the JVM exists already: its options are set
    return class_archive.prepare(java_options)


def stop_session(spark: Any, log: Callable[[str], None] = say) -> None:
    """`spark.stop()`, then, on the first run on this machine, let the JVM save its class archive."""
    global _archive
    archive, _archive = _archive, None
    spark.stop()
    if archive is not None:
        archive.finish(log)


def preloading_daemon_conf() -> dict[str, str]:
    """The settings that fork a local master's Python workers from `batch.daemon`; empty where they could not import it.

    Spark starts its Python daemon (`python -m MODULE`) before any task, so before `addPyFile`
    ships the code: the daemon finds `batch.daemon` only on its own PYTHONPATH. Locally the
    workers run this interpreter (PYSPARK_PYTHON, set by `build_session` unless already set to
    another one) and get the folder `batch` is imported from on that path. On a cluster, where the
    executors' PYTHONPATH need not hold the code, PySpark's own daemon runs.
    """
    if os.environ.get("PYSPARK_PYTHON") != sys.executable:
        return {}
    conf = {"spark.python.daemon.module": daemon.MODULE}
    root = str(Path(__file__).resolve().parents[1])  # the folder `batch` is imported from
    if root not in site.getsitepackages():  # a source tree (an installed package is importable already)
        conf["spark.executorEnv.PYTHONPATH"] = root
    return conf


def load_model(config: JobConfig) -> Scorer:
    """The artifact, checked (and its explainer when `--reasons`); InputError saying why it is unusable."""
    scorer = Scorer(config.model)
    try:
        scorer.load()
    except ModelLoadError as exc:
        raise InputError(str(exc)) from None
    if config.reasons:
        try:
            load_explainer(scorer.metadata)
        except ReasonsUnavailable as exc:
            raise InputError(f"{config.model}: {exc}") from None
    return scorer


def score_portfolio(
    spark: Any, config: JobConfig, log: Callable[[str], None] = say, scorer: Scorer | None = None
) -> JobResult:
    """Score `config.input` into `config.output` on an existing session; raise InputError on bad input.

    `scorer`: the artifact already loaded by `load_model(config)` (the CLI checks it before Spark starts).
    """
    started = time.perf_counter()
    check_local_paths(config)
    if not 1 <= config.reasons_count <= MAX_REASONS:
        raise InputError(f"--reasons-count must be between 1 and {MAX_REASONS}, got {config.reasons_count}")
    scorer = scorer or load_model(config)
    metadata = scorer.metadata
    spec = metadata.feature_spec
    log(f"model {metadata.model_name} v{metadata.model_version}, threshold {metadata.threshold:.4f}")

    # The SparkContext's own settings, read key by key: spark-submit's keys are there as in
    # `spark.conf`, whose first use costs 0.1 s of JVM class loading (the SQL runtime's settings),
    # and `getConf()` would first copy every one of them: about 100 py4j calls, 24 ms (RESULTS.md §24).
    settings = spark.sparkContext._conf
    model_file = ship_model(spark, settings, config.model)
    if not settings.get("spark.submit.pyFiles", "") and not workers_import_this_code(settings):
        spark.sparkContext.addPyFile(str(_shipped_code()))  # (spark-submit --py-files ships it already)
    staging = new_staging(local_path(config.output)) if executors_write(config) else None
    kind = input_format(config.input, config.input_format)
    scoring = Scoring(  # the planner adds the id column it finds in the input
        model_file,
        id_column=None,
        id_type=None,
        reasons=config.reasons_count if config.reasons else 0,
        staging=staging,
        artifact_sha256=metadata.artifact_sha256,
    )
    if executors_read(config):
        plan = _plan_parquet_slices(spark, config, spec, scoring, log)
    else:
        plan = _plan_spark_reader(spark, config, spec, kind, scoring, log)
    try:
        if staging is not None:
            counts = _write_parts(spark, plan, config, staging, log)
        else:
            counts = _write_with_spark(spark, plan, config, log)
    except Exception as exc:
        if staging is not None:
            abandon(staging)
        raise _as_input_error(exc, config.input) from None

    if counts.scored + counts.rejected != counts.read:  # nothing may go missing silently
        raise RuntimeError(f"{counts.read} rows read but {counts.scored} scored and {counts.rejected} rejected")
    result = JobResult(
        counts,
        metadata.model_version,
        metadata.threshold,
        plan.scoring.id_column,
        round(time.perf_counter() - started, 3),
        plan.scoring.reasons,
    )
    _write_summary(config, result)
    return result


@dataclass(frozen=True)
class _Plan:
    results: Any  # what the executors hand back: their parts' reports (an RDD), or every row (a DataFrame)
    scoring: Scoring
    read: int


def _write_parts(spark: Any, plan: _Plan, config: JobConfig, staging: str, log: Callable[[str], None]) -> JobCounts:
    """Executors write their parts; only their reports come back; the driver commits them."""
    with StageProgress(spark.sparkContext, "scoring", log, config.progress_every_s):
        reports = [row if isinstance(row, dict) else row.asDict() for row in plan.results.collect()]
    committed = commit(local_path(config.output), staging, reports, plan.scoring.schemas())
    return JobCounts(read=plan.read, scored=committed.scored, rejected=committed.rejected)


def _write_with_spark(spark: Any, plan: _Plan, config: JobConfig, log: Callable[[str], None]) -> JobCounts:
    """An output only Spark can write (hdfs://, s3a://, ... or --spark-writer): the rows go through the JVM."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F  # noqa: N812 (Spark's own convention)

    schemas = plan.scoring.schemas()
    results = plan.results.persist(StorageLevel.MEMORY_AND_DISK)  # written twice, counted once
    try:
        scored = results.filter(F.col(PROBLEMS).isNull()).select(*schemas[SCORED].names)
        rejects = results.filter(F.col(PROBLEMS).isNotNull()).select(*schemas[REJECTS].names)
        mode = "overwrite" if config.overwrite else "errorifexists"
        with StageProgress(spark.sparkContext, "scoring", log, config.progress_every_s):
            scored.write.mode(mode).parquet(_join(config.output, SCORED))
        rejects.orderBy(ROW_NUMBER).write.mode(mode).parquet(_join(config.output, REJECTS))
        kinds = results.groupBy(F.col(PROBLEMS).isNotNull().alias("rejected")).count().collect()
    finally:
        results.unpersist()
    by_kind = {bool(row["rejected"]): int(row["count"]) for row in kinds}
    return JobCounts(read=plan.read, scored=by_kind.get(False, 0), rejected=by_kind.get(True, 0))


def _shipped_code() -> Path:
    """The code zip, at one path per version of the code (kept: Spark serves it to executors that join later).

    Built only when that version has no zip yet: compiling every module takes the driver 50 ms.
    """
    target = Path(tempfile.gettempdir()) / "credit-scoring-batch-code" / code_version() / ZIP_NAME
    if not target.exists():
        with tempfile.TemporaryDirectory(prefix="batch-code-") as scratch:
            built = package_code(Path(scratch))
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{os.getpid()}.tmp")
            shutil.move(built, partial)
            os.replace(partial, target)  # whole or absent, whoever runs at the same time
    return target


def _check_columns(config: JobConfig, columns: list[str], spec: FeatureSpec) -> str | None:
    """Raise InputError naming the model's columns the input lacks; return the id column, if any."""
    missing = [name for name in spec.names if name not in columns]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise InputError(f"{config.input} lacks {len(missing)} column(s) the model needs: {shown}")
    return next((name for name in ID_COLUMNS if name in columns), None)


def is_local(master: str) -> bool:
    """`local`, `local[N]`, `local[*]`, `local-cluster[...]`: Spark on this machine only."""
    return master.startswith("local")


def executors_share_files(settings: Any) -> bool:
    """A local master: the executors run on this machine (in the driver's JVM) and open its files where they are."""
    return is_local(str(settings.get("spark.master", "")))


def workers_import_this_code(settings: Any) -> bool:
    """Local Python workers forked from `batch.daemon` with this source tree on their path (or it installed):
    they import the driver's own code, so no zip of it needs shipping."""
    conf = preloading_daemon_conf()
    return bool(conf) and executors_share_files(settings) and all(settings.get(k) == v for k, v in conf.items())


def ship_model(spark: Any, settings: Any, model: Path) -> str:
    """Where the executors find the artifact: its SparkFiles name when shipped, else its path on a local master.

    spark-submit --files ships it already; a local master's executors read it in place (a copy
    per job costs the driver and each executor's first task 20-50 ms, RESULTS.md §23); any other
    master gets it from `addFile`. Every executor checks that its artifact is the driver's (`Scoring.runtime`)."""
    shipped = settings.get("spark.files", "")  # spark-submit --files
    if any(entry.rstrip("/").endswith("/" + model.name) for entry in shipped.split(",") if entry):
        return model.name
    if executors_share_files(settings):
        return str(model.resolve())
    spark.sparkContext.addFile(str(model.resolve()))  # reaches every executor as SparkFiles
    return model.name


def _plan_parquet_slices(
    spark: Any, config: JobConfig, spec: FeatureSpec, scoring: Scoring, log: Callable[[str], None]
) -> _Plan:
    """Parquet on a local path: executors read their slices with pyarrow (batch.parquet_slices)."""
    slots = spark.sparkContext.defaultParallelism  # the tasks that run at once
    try:
        source = open_input(config.input, slots=slots)
    except Exception as exc:  # pyarrow's ArrowInvalid, OSError, ...: the file is not readable Parquet
        raise InputError(f"cannot read {config.input} as PARQUET: {_first_line(exc)}") from None
    id_column = _check_columns(config, source.schema.names, spec)
    id_type = source.schema.field(id_column).type if id_column else None
    keep = spec.names + ([id_column] if id_column and id_column not in spec.names else [])
    scoring = replace(scoring, id_column=id_column, id_type=id_type)
    groups = group_slices(source.slices, slots)
    log(f"read {source.num_rows:,} rows in {len(source.slices)} slice(s), {len(groups)} task(s), from {config.input}")
    tasks = ScoreSlices(scoring, source.slices, tuple(keep), text_columns(source.schema, spec), groups)
    partitions = max(len(groups), 1)  # one task per group of slices
    if scoring.staging is not None:  # an RDD: no SQL plan, no Arrow stream, only the reports come back
        results = spark.sparkContext.parallelize([], partitions).mapPartitionsWithIndex(tasks.task)
    else:
        task_ids = spark.range(0, len(groups), 1, partitions)  # a task id per partition
        results = task_ids.mapInArrow(tasks, _spark_schema(scoring.rows_schema()))
    return _Plan(results, scoring, source.num_rows)


def _plan_spark_reader(
    spark: Any, config: JobConfig, spec: FeatureSpec, kind: str, scoring: Scoring, log: Callable[[str], None]
) -> _Plan:
    """Any source Spark reads (CSV, remote Parquet): rows reach the workers as Arrow batches."""
    from pyspark.sql import functions as F  # noqa: N812 (Spark's own convention)
    from pyspark.sql.pandas.types import to_arrow_type

    frame = _read(spark, config)
    id_column = _check_columns(config, frame.columns, spec)
    if kind == "csv":
        # CSV types are guessed: a level is text whatever it looks like.
        frame = frame.select(
            *[F.col(c).cast("string").alias(c) if c in spec.categorical_names else F.col(c) for c in frame.columns]
        )
    with StageProgress(spark.sparkContext, "counting rows", log, config.progress_every_s):
        try:
            per_partition = _count_partitions(frame, F)
        except Exception as exc:
            raise _as_input_error(exc, config.input) from None
    read = sum(per_partition)
    log(f"read {read:,} rows in {len(per_partition)} partition(s) from {config.input}")
    offsets = tuple(sum(per_partition[:index]) for index in range(len(per_partition)))

    keep = spec.names + ([id_column] if id_column and id_column not in spec.names else [])
    rows = frame.select(*keep).withColumn(ROW_ID_COLUMN, F.monotonically_increasing_id())
    id_type = to_arrow_type(frame.schema[id_column].dataType) if id_column else None
    score = ScoreRows(replace(scoring, id_column=id_column, id_type=id_type), offsets)
    results = rows.mapInArrow(score, _spark_schema(score.output_schema()))
    return _Plan(results, score.scoring, read)


def _read(spark: Any, config: JobConfig) -> Any:
    kind = input_format(config.input, config.input_format)
    try:
        if kind == "csv":
            # FAILFAST: a line that does not fit the header fails the job, nothing is guessed.
            reader = spark.read.options(header=True, inferSchema=True, mode="FAILFAST", enforceSchema=False)
            frame = reader.csv(config.input)
        else:
            frame = spark.read.parquet(config.input)
        frame.schema  # noqa: B018 (reading the schema is what proves the file readable)
    except Exception as exc:
        raise InputError(f"cannot read {config.input} as {kind.upper()}: {_first_line(exc)}") from None
    return frame


def _count_partitions(frame: Any, F: Any) -> list[int]:  # noqa: N803
    """Rows per input partition, in partition order (the input's order)."""
    counts = frame.select(F.spark_partition_id().alias("p")).groupBy("p").count().collect()
    by_partition = {row["p"]: row["count"] for row in counts}
    n_partitions = frame.rdd.getNumPartitions()
    return [by_partition.get(index, 0) for index in range(n_partitions)]


def _spark_schema(schema: Any) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def _join(base: str, part: str) -> str:
    return base.rstrip("/") + "/" + part


def _write_summary(config: JobConfig, result: JobResult) -> None:
    if not readable_here(config.output):
        return
    summary = {"input": config.input, "model": str(config.model), **asdict(result)}
    (Path(local_path(config.output)) / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


_MALFORMED = re.compile(r"\[(MALFORMED_[A-Z_]*|FAILED_READ_FILE[A-Z_.]*|CANNOT_READ_FILE[A-Z_.]*)\]")


_MISMATCH = re.compile(rf"{ArtifactMismatch.__name__}: ([^\n]+)")


def _as_input_error(exc: Exception, source: str) -> Exception:
    """Spark's read failures, and an executor's other artifact, as one line; the offending record
    stays out (it is client data)."""
    mismatch = _MISMATCH.search(str(exc))  # in the worker's traceback, inside Spark's error
    if mismatch:
        return InputError(mismatch.group(1))
    found = _MALFORMED.findall(str(exc))  # the outer class first, the cause's further on
    if not found:
        return exc
    if any(name.startswith("MALFORMED_CSV") for name in found):
        return InputError(f"{source} is malformed: a CSV line does not fit the header's columns (MALFORMED_CSV_RECORD)")
    specific = next((name for name in found if name.startswith("MALFORMED")), found[0])
    return InputError(f"{source} is malformed or unreadable ({specific})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:400]
