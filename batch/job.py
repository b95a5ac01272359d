"""The driver: read the portfolio, ship the model and the code, score, write, count.

Output (docs/CONTRACTS.md, "Portfolio scoring output"):
- DIR/scored/  Parquet: [id column], row_number, probability, prediction, decision, model_version, threshold
- DIR/rejects/ Parquet: row_number, [id column], problems (list of {field, problem}, the API's 422 words)
- DIR/summary.json: counts (read, scored, rejected), the model and the input
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from batch.executor import PROBLEMS, ROW_ID_COLUMN, ROW_NUMBER, ScoreBatches
from batch.parquet_slices import TASK_SCHEMA, ReadAndScore, open_input, readable_here
from batch.progress import StageProgress
from batch.shipping import package_code
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


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def input_format(path: str, requested: str | None) -> str:
    if requested is not None:
        return requested
    return "csv" if path.lower().rstrip("/").endswith((".csv", ".csv.gz")) else "parquet"


def check_local_paths(config: JobConfig) -> None:
    """Fail before Spark starts when a local input is missing or the output would be overwritten."""
    if "://" not in config.input and not Path(config.input).exists():
        raise InputError(f"input {config.input} does not exist")
    if "://" not in config.output and not config.overwrite:
        for part in ("scored", "rejects"):
            if (Path(config.output) / part).exists():
                raise InputError(f"{Path(config.output) / part} already exists (pass --overwrite to replace it)")


def build_session(master: str | None, app_name: str = "credit-scoring-batch") -> Any:
    """A SparkSession for the job (master None: spark-submit's); locally the workers run this interpreter."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    if master is not None:
        builder = builder.master(master)
        if master.startswith("local"):
            # Spark starts `python3` for its workers unless told otherwise: use this environment.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            # A laptop job talks to itself only: bind the driver to loopback.
            builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
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
    return session


def score_portfolio(spark: Any, config: JobConfig, log: Callable[[str], None] = say) -> JobResult:
    """Score `config.input` into `config.output` on an existing session; raise InputError on bad input."""
    from pyspark.sql import functions as F  # noqa: N812 (Spark's own convention)

    started = time.perf_counter()
    check_local_paths(config)
    scorer = _load_model(config.model)
    metadata = scorer.metadata
    spec = metadata.feature_spec
    log(f"model {metadata.model_name} v{metadata.model_version}, threshold {metadata.threshold:.4f}")

    shipped = spark.conf.get("spark.files", "")  # spark-submit --files
    if not any(entry.rstrip("/").endswith("/" + config.model.name) for entry in shipped.split(",") if entry):
        spark.sparkContext.addFile(str(config.model.resolve()))  # reaches every executor as SparkFiles
    if not spark.conf.get("spark.submit.pyFiles", ""):  # spark-submit --py-files ships it already
        spark.sparkContext.addPyFile(str(package_code(Path(tempfile.mkdtemp(prefix="batch-code-")))))

    kind = input_format(config.input, config.input_format)
    if kind == "parquet" and not config.spark_reader and readable_here(config.input):
        results, read, id_column = _plan_parquet_slices(spark, config, spec, log)
    else:
        results, read, id_column = _plan_spark_reader(spark, config, spec, kind, log)

    from pyspark import StorageLevel

    results = results.persist(StorageLevel.MEMORY_AND_DISK)  # written twice, counted once
    try:
        scored = results.filter(F.col(PROBLEMS).isNull()).select(
            *([id_column] if id_column else []),
            ROW_NUMBER,
            "probability",
            "prediction",
            "decision",
            F.lit(metadata.model_version).alias("model_version"),
            F.lit(metadata.threshold).alias("threshold"),
        )
        rejects = results.filter(F.col(PROBLEMS).isNotNull()).select(
            ROW_NUMBER, *([id_column] if id_column else []), PROBLEMS
        )
        mode = "overwrite" if config.overwrite else "errorifexists"
        with StageProgress(spark.sparkContext, "scoring", log, config.progress_every_s):
            scored.write.mode(mode).parquet(_join(config.output, "scored"))
        rejects.orderBy(ROW_NUMBER).write.mode(mode).parquet(_join(config.output, "rejects"))
        kinds = results.groupBy(F.col(PROBLEMS).isNotNull().alias("rejected")).count().collect()
        by_kind = {bool(row["rejected"]): int(row["count"]) for row in kinds}
    except Exception as exc:
        raise _as_input_error(exc, config.input) from None
    finally:
        results.unpersist()

    counts = JobCounts(read=read, scored=by_kind.get(False, 0), rejected=by_kind.get(True, 0))
    if counts.scored + counts.rejected != counts.read:  # nothing may go missing silently
        raise RuntimeError(f"{counts.read} rows read but {counts.scored} scored and {counts.rejected} rejected")
    result = JobResult(
        counts, metadata.model_version, metadata.threshold, id_column, round(time.perf_counter() - started, 3)
    )
    _write_summary(config, result)
    return result


def _check_columns(config: JobConfig, columns: list[str], spec: FeatureSpec) -> str | None:
    """Raise InputError naming the model's columns the input lacks; return the id column, if any."""
    missing = [name for name in spec.names if name not in columns]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise InputError(f"{config.input} lacks {len(missing)} column(s) the model needs: {shown}")
    return next((name for name in ID_COLUMNS if name in columns), None)


def _plan_parquet_slices(
    spark: Any, config: JobConfig, spec: FeatureSpec, log: Callable[[str], None]
) -> tuple[Any, int, str | None]:
    """Parquet on a local path: executors read their slices with pyarrow (batch.parquet_slices)."""
    try:
        source = open_input(config.input)
    except Exception as exc:  # pyarrow's ArrowInvalid, OSError, ...: the file is not readable Parquet
        raise InputError(f"cannot read {config.input} as PARQUET: {_first_line(exc)}") from None
    id_column = _check_columns(config, source.schema.names, spec)
    log(f"read {source.num_rows:,} rows in {len(source.slices)} slice(s) from {config.input}")
    id_type = source.schema.field(id_column).type if id_column else None
    keep = spec.names + ([id_column] if id_column and id_column not in spec.names else [])
    score = ScoreBatches(config.model.name, id_column, id_type, ())
    tasks = spark.createDataFrame(source.tasks(), _spark_schema(TASK_SCHEMA)).repartition(max(len(source.slices), 1))
    reader = ReadAndScore(score, tuple(keep))
    return tasks.mapInArrow(reader, _spark_schema(score.schema())), source.num_rows, id_column


def _plan_spark_reader(
    spark: Any, config: JobConfig, spec: FeatureSpec, kind: str, log: Callable[[str], None]
) -> tuple[Any, int, str | None]:
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
    score = ScoreBatches(config.model.name, id_column, id_type, offsets)
    return rows.mapInArrow(score, _spark_schema(score.schema())), read, id_column


def _load_model(path: Path) -> Scorer:
    scorer = Scorer(path)
    try:
        scorer.load()
    except ModelLoadError as exc:
        raise InputError(str(exc)) from None
    return scorer


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
    if "://" in config.output:
        return
    summary = {"input": config.input, "model": str(config.model), **asdict(result)}
    (Path(config.output) / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


_MALFORMED = re.compile(r"\[(MALFORMED_[A-Z_]*|FAILED_READ_FILE[A-Z_.]*|CANNOT_READ_FILE[A-Z_.]*)\]")


def _as_input_error(exc: Exception, source: str) -> Exception:
    """Spark's read failures as one line; the offending record stays out (it is client data)."""
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
